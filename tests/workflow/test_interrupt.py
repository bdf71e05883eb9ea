"""Interrupted runs recover with `make run` alone (ddstars.runner, what `make run` calls).

A run of the tiny sky is interrupted while a given stage works (Ctrl-C to the whole process group, as a
terminal sends it, or kill -9 of everything, as a lost node does); the same command then finishes the run,
and its outputs equal those of the uninterrupted tiny run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import start_runner, write_config

from ddstars.catalog.build import read_catalog

pytestmark = pytest.mark.workflow


TARGET = "results/model/summary.json"  # through the sky, catalog and training stages (the figures add nothing here)


def _runner(workdir: Path, **kw) -> subprocess.Popen:
    return start_runner(workdir, TARGET, **kw)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    t0 = time.monotonic()
    while not (path.is_file() and path.stat().st_size > 0):
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {path} appeared:\n{proc.stdout.read()[-3000:]}")
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{path} did not appear in {timeout} s")
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("marker", "sig"),
    [
        ("results/logs/simulate_sky.log", signal.SIGINT),
        ("results/logs/catalog/build_catalog.log", signal.SIGKILL),
        ("results/logs/train_model.log", signal.SIGINT),
    ],
    ids=["sky-ctrl-c", "catalog-kill-9", "training-ctrl-c"],
)
def test_an_interrupted_run_recovers_with_the_same_command(tiny_run, tmp_path, marker, sig):
    reference, cfg, done = tiny_run
    assert done.returncode == 0, done.stderr[-2000:]
    write_config(tmp_path, cfg)
    first = _runner(tmp_path)
    _wait_for(tmp_path / marker, first)
    time.sleep(1.0)  # inside the stage's job
    os.killpg(first.pid, sig)
    first.communicate(timeout=300)
    assert first.returncode != 0
    assert not (tmp_path / TARGET).exists()

    again = _runner(tmp_path)
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out[-3000:]
    assert f"ddstars: done; results in {tmp_path}" in out
    if sig == signal.SIGKILL:
        assert "left locked by an interrupted run" in out
    # the same results as the uninterrupted run
    cats = [
        read_catalog(d / "results/catalog/stars").sort_values("source_id", ignore_index=True)
        for d in (tmp_path, reference)
    ]
    pd.testing.assert_frame_equal(cats[0], cats[1])
    truth = pd.read_parquet(tmp_path / "resources/simulated/truth.parquet")
    pd.testing.assert_frame_equal(truth, pd.read_parquet(reference / "resources/simulated/truth.parquet"))
    got, want = (json.loads((d / TARGET).read_text()) for d in (tmp_path, reference))
    for key in ("n_per_split", "final_loss", "final_val_loss", "test_mean_chi2_dof_lt10", "R_at_median_theta"):
        assert got[key] == want[key], key


def test_a_directory_in_use_is_not_unlocked(tiny_run, tmp_path):
    """Two runs in one directory: the second is refused and names the first; nothing is unlocked."""
    _, cfg, _ = tiny_run
    write_config(tmp_path, cfg)
    first = _runner(tmp_path)
    try:
        _wait_for(tmp_path / "results/logs/simulate_sky.log", first)
        second = _runner(tmp_path)
        out, _ = second.communicate(timeout=300)
        assert second.returncode != 0
        assert "is in use by another Snakemake run (process" in out
    finally:
        os.killpg(first.pid, signal.SIGINT)
        first.communicate(timeout=300)
