"""The workflow through the Snakemake CLI: lint, dry-runs, config validation, a tiny end-to-end run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, small_config

pytestmark = pytest.mark.workflow


def snakemake(*args: str, workdir: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), *args]
    if workdir is not None:
        cmd += ["--directory", str(workdir)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def write_config(workdir: Path, cfg: dict) -> None:
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))


def test_lint_is_clean():
    r = snakemake("--lint")
    assert r.returncode == 0, r.stdout + r.stderr


def test_dry_run_default_config():
    r = snakemake("-n", "--forceall", "--quiet", "rules")
    assert r.returncode == 0, r.stdout + r.stderr
    for rule in ("simulate_sky", "simulate_dustmaps", "summarize_simulation"):
        assert rule in r.stdout + r.stderr


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda c: c["simulate"].__setitem__("n_stars", -5), ["n_stars", "-5"]),
        (lambda c: c["simulate"].__setitem__("seed", "abc"), ["seed", "abc"]),
        (lambda c: c["simulate"]["photometry"].__setitem__("ps1_saturation", 14.0), ["ps1_saturation"]),
        (lambda c: c.__setitem__("backnd", "simulated"), ["backnd"]),
        (lambda c: c["simulate"]["failures"].__setitem__("tmass_cc_flg", 1.5), ["tmass_cc_flg", "1.5"]),
    ],
    ids=["negative-size", "wrong-type", "unknown-nested-key", "unknown-top-key", "out-of-range"],
)
def test_bad_config_stops_before_any_job(tmp_path, edit, words):
    cfg = small_config(n_stars=2000)
    edit(cfg)
    write_config(tmp_path, cfg)
    r = snakemake("--cores", "1", workdir=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "Error validating config" in out
    for w in words:
        assert w in out, f"{w!r} not named in:\n{out[-2000:]}"
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results").exists()


def test_tiny_end_to_end_run_then_nothing_to_do(tmp_path):
    cfg = small_config(n_stars=3000)
    write_config(tmp_path, cfg)
    r = snakemake("--cores", "2", workdir=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((tmp_path / "results/simulation/summary.json").read_text())
    assert summary["n_stars"] == 3000
    manifest = json.loads((tmp_path / "resources/simulated/manifest.json").read_text())
    assert manifest["rows"]["truth"] == 3000
    for name in ("SFD_dust_4096_ngp.fits", "SFD_dust_4096_sgp.fits"):
        assert (tmp_path / "resources/simulated/dustmaps/sfd" / name).stat().st_size > 0
    assert (tmp_path / "results/logs/simulate_sky.log").read_text().count("chunk") >= 2
    # A second run has nothing to do.
    r = snakemake("-n", "--cores", "1", workdir=tmp_path)
    assert r.returncode == 0
    assert "Nothing to be done" in r.stdout + r.stderr
