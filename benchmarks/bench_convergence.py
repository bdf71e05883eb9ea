"""Benchmark: time to a converged model at every catalog size, through the bring-your-own path (`make bench`).

A simulated sky large enough for the largest size is made and put through the catalog stage once; for each
size N a random subsample of N catalog stars (their 70/20/10 split kept) is written as one Parquet file and
fed to the workflow as ``catalog.external``, which runs rule train_model with the default configuration.
A long-schedule reference (``train.min_steps_per_round`` × ``--long``, default 4) is fitted to the same
file. Printed per size: the schedule (batch, epochs and optimiser steps per round), the time to the
converged model (the train_model job's wall time from its Snakemake benchmark) and its peak memory, the
convergence verdict, and R at the median θ against the reference's: R = k R_ref + c fitted over G … Ks and
the largest band residual after removing k and c (the issue's criterion: within 3 %).
Usage: python benchmarks/bench_convergence.py [--long F] [N ...]   (default: 5000 20000 100000 1000000)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import yaml
from bench_train import PREPARE  # sky and catalog of a given size (benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "config.yaml"
CATALOG_PER_SKY_STAR = 0.89  # catalog stars per simulated sky star (89,805 of 100,000 in the default run)


def train(catalog: Path, workdir: Path, train_options: dict) -> dict:
    """Rule train_model on ``catalog`` through catalog.external, in a fresh workflow folder."""
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["catalog"]["external"] = str(catalog)
    cfg["train"].update(train_options)
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    target = "results/model/summary.json"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    r = subprocess.run([*cmd, "--cores", "2", target], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"training failed in {workdir}:\n{r.stderr[-3000:]}")
    bench = pd.read_csv(workdir / "results" / "benchmarks" / "train_model.tsv", sep="\t").iloc[0]
    summary = json.loads((workdir / target).read_text())
    return {"seconds": float(bench["s"]), "peak_mb": float(bench["max_rss"]), "summary": summary}


def compare(r: dict, ref: dict) -> tuple[float, float, float]:
    """R = k R_ref + c over G ... Ks at the median θ, and the largest band residual relative to R_ref."""
    from ddstars.bands import BAND_NAMES
    from ddstars.validation.summary import reddening_vector_recovery

    rec = reddening_vector_recovery([r[b] for b in BAND_NAMES], [ref[b] for b in BAND_NAMES])
    return rec["k"], rec["c"], rec["max_abs_residual"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--long", type=float, default=4.0, help="reference steps per round / the default's")
    ap.add_argument("sizes", type=int, nargs="*", default=[5000, 20000, 100000, 1000000])
    args = ap.parse_args()
    default = yaml.safe_load(CONFIG.read_text())["train"]
    long_steps = int(args.long * default["min_steps_per_round"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n_sky = max(100_000, int(max(args.sizes) / CATALOG_PER_SKY_STAR) + 1)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", PREPARE, str(CONFIG), str(n_sky), str(tmp / "sky")], check=True)
        from ddstars.catalog.schema import open_catalog

        full = open_catalog(tmp / "sky" / "catalog" / "stars").to_table()  # Arrow: the schema's types kept
        full = full.drop_columns([c for c in full.column_names if c.startswith("healpix_")])  # the Hive key
        print(f"sky of {n_sky:,} stars, catalog of {len(full):,} in {time.perf_counter() - t0:.0f} s", flush=True)
        print(f"reference: train.min_steps_per_round = {long_steps:,} (x{args.long:g} the default)")
        head = (
            f"{'catalog':>9} {'train':>8} {'batch':>5} {'epochs/round':>12} {'steps/round':>11} {'time s':>7} "
            f"{'peak MB':>8} {'converged':>9} | {'ref steps':>9} {'ref s':>7} {'ref conv':>8} | "
            f"{'k':>6} {'c':>7} {'max resid':>9}"
        )
        print(head, flush=True)
        for n in args.sizes:
            if n > len(full):
                sys.exit(f"size {n:,} exceeds the catalog's {len(full):,} stars")
            rows = np.sort(np.random.default_rng(n).choice(len(full), size=n, replace=False))
            path = tmp / f"catalog_{n}.parquet"
            pq.write_table(full.take(rows), path)
            run = train(path, tmp / f"run_{n}", {})
            ref = train(path, tmp / f"ref_{n}", {"min_steps_per_round": long_steps})
            s, rs = run["summary"], ref["summary"]
            k, c, resid = compare(s["R_at_median_theta"], rs["R_at_median_theta"])
            sch, rsch = s["schedule"], rs["schedule"]
            print(
                f"{n:>9,} {s['n_per_split']['train']:>8,} {sch['batch_size']:>5} "
                f"{min(sch['epochs_per_round']):>5}-{max(sch['epochs_per_round']):<6} "
                f"{int(np.median(sch['steps_per_round'])):>11,} {run['seconds']:>7.1f} {run['peak_mb']:>8,.0f} "
                f"{str(s['convergence']['converged']):>9} | {int(np.median(rsch['steps_per_round'])):>9,} "
                f"{ref['seconds']:>7.1f} {str(rs['convergence']['converged']):>8} | {k:>6.3f} {c:>+7.3f} "
                f"{100 * resid:>8.2f}%",
                flush=True,
            )
            for d in (tmp / f"run_{n}", tmp / f"ref_{n}"):
                shutil.rmtree(d)


if __name__ == "__main__":
    main()
