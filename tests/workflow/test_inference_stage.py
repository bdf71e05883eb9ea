"""The inference stage in the workflow: partitions written atomically, a stopped stage resumed partition by
partition, stars of your own checked and inferred, and the summary's numbers against the simulated truth."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import snakemake, start_runner, write_config

from ddstars.bands import BAND_NAMES
from ddstars.catalog.build import read_catalog
from ddstars.config import defaults
from ddstars.errors import DataError

pytestmark = pytest.mark.workflow

INF = "results/inference"


def _partitions(workdir: Path) -> dict[int, Path]:
    return {int(p.parent.name.split("=")[1]): p for p in (workdir / INF / "stars").glob("healpix_2=*/part-0.parquet")}


def _copy_run(src: Path, dst: Path) -> None:
    for name in ("config", "resources", "results", ".snakemake"):
        if (src / name).exists():
            shutil.copytree(src / name, dst / name, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))


def test_the_run_infers_every_test_star_once_and_summarises_against_the_truth(tiny_run):
    workdir, cfg, done = tiny_run
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((workdir / INF / "summary.json").read_text())
    test = read_catalog(workdir / "results/catalog/stars", columns=["source_id", "split"])
    n_test = int((test["split"] == "test").sum())
    assert summary["stars"] == n_test  # every test star, once
    parts = _partitions(workdir)
    stars = pd.concat([pd.read_parquet(p) for p in parts.values()], ignore_index=True)
    assert stars["source_id"].is_unique and len(stars) == n_test
    assert stars["samples_teff"].map(len).eq(cfg["inference"].get("samples_stored", 20)).all()
    # the summary's coverage, recomputed here from the partitions and the truth (the tiny run's model is not
    # converged: its calibration is judged by the benchmark on the default run, the engine's by
    # tests/unit/test_inference.py)
    truth = pd.read_parquet(workdir / "resources/simulated/truth.parquet", columns=["source_id", "dm", "true_ebv"])
    j = stars.merge(truth, on="source_id")
    valid = j["flags"] == 0
    for col, t in (("mu", j["dm"]), ("ebv", j["true_ebv"])):
        inside = ((j[f"{col}_p2.5"] <= t) & (t <= j[f"{col}_p97.5"]))[valid].mean()
        assert summary["calibration_valid"][col]["c95"] == pytest.approx(inside)
    # the photometry adds to the priors: the posterior's reddening beats the prior-only baseline's
    acc = pd.read_csv(workdir / INF / "accuracy.csv")
    row = acc[(acc["by"] == "all") & (acc["parameter"] == "teff")].iloc[0]
    assert row["scatter"] < row["baseline_scatter"]
    assert summary["speed"]["grid_nodes"] >= 1000


def test_a_stopped_stage_resumes_with_only_the_missing_partitions(tiny_run, tmp_path):
    reference, cfg, done = tiny_run
    assert done.returncode == 0
    _copy_run(reference, tmp_path)
    shutil.rmtree(tmp_path / INF)
    cfg = {**cfg, "inference": {**cfg.get("inference", {}), "groups": 1}}
    write_config(tmp_path, cfg)
    target = f"{INF}/summary.json"
    first = start_runner(tmp_path, target, cores=1)
    t0 = time.monotonic()
    while len(_partitions(tmp_path)) < 5:
        assert first.poll() is None, first.stdout.read()[-3000:]
        assert time.monotonic() - t0 < 600
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGINT)
    first.communicate(timeout=300)
    assert first.returncode != 0
    kept = {pix: (p.stat().st_ino, p.stat().st_mtime_ns) for pix, p in _partitions(tmp_path).items()}
    assert 5 <= len(kept) < len(_partitions(reference))
    assert not list((tmp_path / INF / "stars").rglob("*.tmp"))  # no partial file is left as a partition

    again = start_runner(tmp_path, target, cores=1)
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out[-3000:]
    manifest = json.loads((tmp_path / INF / "groups/0.json").read_text())
    status = {p["pixel"]: p["status"] for p in manifest["partitions"]}
    assert {pix for pix, s in status.items() if s == "reused"} == set(kept)
    assert all(s == "computed" for pix, s in status.items() if pix not in kept)
    for pix, stamp in kept.items():  # untouched
        p = _partitions(tmp_path)[pix]
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == stamp
    # the same results as the uninterrupted run (per-partition seeds: groups do not matter)
    assert set(_partitions(tmp_path)) == set(_partitions(reference))
    for pix, p in _partitions(reference).items():
        a, b = pd.read_parquet(p), pd.read_parquet(_partitions(tmp_path)[pix])
        pd.testing.assert_frame_equal(
            a.drop(columns=[c for c in a if c.startswith("samples_")]),
            b.drop(columns=[c for c in b if c.startswith("samples_")]),
        )


def _own_stars(reference: Path, n: int = 60) -> pd.DataFrame:
    cat = read_catalog(reference / "results/catalog/stars")
    cat = cat[cat["split"] == "test"].head(n)
    cols = ["source_id", "ra", "dec", *(f"{q}_{b}" for q in ("mag", "err") for b in BAND_NAMES)]
    return cat[[*cols, "parallax", "parallax_error"]].reset_index(drop=True)


def test_stars_of_your_own_are_checked_and_inferred(tiny_run, tmp_path):
    from ddstars.inference.stage import run_group

    reference, cfg, _ = tiny_run
    own = _own_stars(reference)
    path = tmp_path / "mine.parquet"
    own.to_parquet(path)
    options = {**defaults("inference"), "groups": 2}
    options["grid_steps"] = [100.0, 0.1, 0.1]  # a coarser grid: this test checks the plumbing
    common = dict(
        split=None,
        order=2,
        sfd_dir=reference / cfg["dustmaps"]["sfd_dir"],
        bayestar_file=reference / cfg["dustmaps"]["bayestar_file"],
    )
    rows = 0
    for g in range(2):
        m = run_group(reference / "results/model", path, tmp_path / "out", tmp_path / f"{g}.json", g, options, **common)
        rows += m["stars"]
        assert all(int(p["pixel"]) % 2 == g for p in m["partitions"])
    assert rows == len(own)
    got = pd.concat([pd.read_parquet(p) for p in (tmp_path / "out").rglob("part-0.parquet")])
    assert sorted(got["source_id"]) == sorted(own["source_id"])
    assert (got["dust_prior_source"].isin(["bayestar", "sfd"])).all()
    # a second run reuses every partition
    m = run_group(reference / "results/model", path, tmp_path / "out", tmp_path / "0.json", 0, options, **common)
    assert {p["status"] for p in m["partitions"]} == {"reused"}
    # bad input names the file, the column and the rows
    bad = own.copy()
    bad.loc[3, "err_ps1_g"] = 0.0
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad.parquet, column 'err_ps1_g': an observed magnitude without a posi"):
        run_group(
            reference / "results/model",
            tmp_path / "bad.parquet",
            tmp_path / "o2",
            tmp_path / "b.json",
            0,
            options,
            **common,
        )
    with pytest.raises(DataError, match=r"missing column\(s\) parallax_error"):
        own.drop(columns="parallax_error").to_parquet(tmp_path / "short.parquet")
        run_group(
            reference / "results/model",
            tmp_path / "short.parquet",
            tmp_path / "o3",
            tmp_path / "c.json",
            0,
            options,
            **common,
        )
    assert not (tmp_path / "o2").exists() or not list((tmp_path / "o2").rglob("*.parquet"))
    assert pq.read_schema(next((tmp_path / "out").rglob("part-0.parquet"))).metadata[b"ddstars.inference.key"]


def test_the_photometric_only_sample_goes_through_the_cuts_into_the_stage(tiny_run, tmp_path):
    """inference.input photometric: the sky's stars without spectra, simulated, cut and inferred, with their truth."""
    reference, cfg, done = tiny_run
    assert done.returncode == 0
    _copy_run(reference, tmp_path)
    inference = {**cfg.get("inference", {}), "input": "photometric", "groups": 2}
    inference["photometric_sample"] = {"n_stars": 1500, "gaia_g_range": [14.0, 18.0]}
    write_config(tmp_path, {**cfg, "inference": inference})
    r = snakemake("--cores", "2", f"{INF}/summary.json", workdir=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads((tmp_path / "results/catalog/photometric_input.json").read_text())
    stars = pd.read_parquet(tmp_path / "results/catalog/photometric_input.parquet")
    summary = json.loads((tmp_path / INF / "summary.json").read_text())
    assert summary["truth"] and summary["stars"] == len(stars) == report["rows_out"]
    assert 0 < len(stars) <= 1500
    truth = pd.read_parquet(tmp_path / "resources/simulated/photometric/truth.parquet", columns=["source_id"])
    assert stars["source_id"].isin(truth["source_id"]).all()
    # none of them is a catalog (spectroscopic) star
    cat = read_catalog(tmp_path / "results/catalog/stars", columns=["source_id"])
    assert not stars["source_id"].isin(cat["source_id"]).any()
