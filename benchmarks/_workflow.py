"""The benchmarks run the real workflow (Snakemake) and read its per-job benchmark files.

Every rule of the sky and catalog stages has a ``benchmark:`` directive: Snakemake writes the job's wall time
(``s``) and peak resident memory (``max_rss``, MB) to ``results/benchmarks/<stage>/<rule>.tsv``.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "config.yaml"
SKY_TARGETS = ("resources/simulated/manifest.json", "resources/simulated/dustmaps/bayestar/bayestar2019.h5")
CATALOG_TARGETS = ("results/catalog/table1.csv", "results/catalog/check.json", "results/catalog/offsets.json")


def config(n_stars: int) -> dict:
    """The shipped config with a sky of ``n_stars`` stars."""
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["simulate"]["n_stars"] = int(n_stars)
    return cfg


def snakemake(workdir: Path, cfg: dict, targets, cores: int = 2) -> float:
    """Run the workflow in ``workdir`` with config ``cfg`` up to ``targets``; its wall time [s]."""
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    t0 = time.perf_counter()
    r = subprocess.run([*cmd, "--cores", str(cores), *targets], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-3000:] + r.stderr[-3000:])
        raise SystemExit(f"snakemake in {workdir} failed with exit status {r.returncode}")
    return time.perf_counter() - t0


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # "NA": a job too short for a memory sample
        return float("nan")


def jobs(workdir: Path, stage: str) -> dict[str, dict[str, float]]:
    """Per rule of ``stage`` (a folder of results/benchmarks/): its job's time ``s`` and ``max_rss`` [MB]."""
    out = {}
    for path in sorted((workdir / "results" / "benchmarks" / stage).glob("*.tsv")):
        with path.open() as f:
            row = next(csv.DictReader(f, delimiter="\t"))
        out[path.stem] = {k: _number(row[k]) for k in ("s", "max_rss")}
    return out
