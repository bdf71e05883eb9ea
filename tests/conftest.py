"""Shared fixtures: the project's default config, a small variant of it, and a small simulated sky."""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def default_config() -> dict:
    """The shipped config/config.yaml, parsed."""
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def small_config(n_stars: int = 6000, seed: int | None = None) -> dict:
    """The default config scaled down for tests: fewer stars, two chunks, coarse grids and maps."""
    cfg = copy.deepcopy(default_config())
    sim = cfg["simulate"]
    sim["n_stars"] = n_stars
    sim["chunk_size"] = max(1000, n_stars // 2 + 1)
    sim["population"]["pool_size"] = 40000
    sim["selection"]["healpix_nside"] = 16
    sim["selection"]["n_distance_bins"] = 120
    sim["dust"]["sfd_n_pix"] = 128
    sim["dust"]["bayestar_nside"] = 8
    sim["dust"]["bayestar_n_samples"] = 8
    # a short schedule: these runs test the workflow, not the fit (tests/integration/test_training_truth.py
    # judges the default schedule), so they end with the not-converged WARNING
    cfg["train"]["min_steps_per_round"] = 500
    # the HATS copies are tested on their own (tests/integration/test_hats.py, tiny_run)
    cfg["hats"]["enabled"] = False
    if seed is not None:
        sim["seed"] = seed
    return cfg


@pytest.fixture(scope="session")
def sky_models():
    from ddstars.simulate.sky import Models

    return Models.build(small_config()["simulate"])


def sky_paths(out: Path) -> dict[str, Path]:
    from ddstars.simulate.sky import TABLES

    paths = {k: out / "archives" / f"{k}.parquet" for k in TABLES}
    return paths | {"truth": out / "truth.parquet", "manifest": out / "manifest.json"}


@pytest.fixture(scope="session")
def small_sky(tmp_path_factory, sky_models):
    """A small simulated sky (6000 stars, two chunks) shared by the tests that read it."""
    from ddstars.simulate.sky import generate

    cfg = small_config()["simulate"]
    out = tmp_path_factory.mktemp("sky")
    paths = sky_paths(out)
    manifest = generate(cfg, paths, models=sky_models)
    return {"cfg": cfg, "paths": paths, "manifest": manifest}


@pytest.fixture(scope="session")
def small_maps(small_sky):
    """SFD-like and Bayestar19-like maps of the small sky (coarse grids)."""
    from ddstars.simulate.maps import write_maps

    out = small_sky["paths"]["truth"].parent / "dustmaps"
    sfd_dir, bayestar = out / "sfd", out / "bayestar" / "bayestar2019.h5"
    cfg = copy.deepcopy(small_sky["cfg"])
    default_dust = default_config()["simulate"]["dust"]
    for key in ("bayestar_nside", "bayestar_n_samples"):  # the default map resolution (3 s to write)
        cfg["dust"][key] = default_dust[key]
    write_maps(cfg, sfd_dir, bayestar)
    return {"sfd_dir": sfd_dir, "bayestar": bayestar}


CATALOG_TARGETS = ("results/catalog/table1.csv", "results/catalog/check.json", "results/catalog/offsets.json")


def run_workflow(workdir: Path, cfg: dict, targets, sky: Path | None = None, timeout: int = 900) -> Path:
    """The real workflow (Snakemake, 2 cores) in ``workdir`` with config ``cfg``, up to ``targets``.

    ``sky``: a simulated sky already made (archive tables, truth, manifest and dust maps in the layout of
    ``resources/simulated/``), linked as the workdir's ``resources/simulated``: the workflow takes it as made and
    runs only what comes after it. Returns ``workdir``; a failed run raises with the end of Snakemake's output.
    """
    write_config(workdir, cfg)
    if sky is not None:
        (workdir / "resources").mkdir(parents=True, exist_ok=True)
        (workdir / "resources" / "simulated").symlink_to(sky, target_is_directory=True)
    r = snakemake("--cores", "2", *map(str, targets), workdir=workdir, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"snakemake in {workdir} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return workdir


@pytest.fixture(scope="session")
def small_catalog(small_sky, small_maps, tmp_path_factory):
    """The catalog stage of the workflow (Snakemake) on the small sky with the default catalog options."""
    cfg = small_config()
    sky = small_sky["paths"]["truth"].parent  # its dustmaps/ are small_maps
    work = run_workflow(tmp_path_factory.mktemp("catalog"), cfg, CATALOG_TARGETS, sky=sky)
    return {"out": work / "results" / "catalog", "options": cfg["catalog"], "release": "dr2", **small_sky}


@pytest.fixture(scope="session")
def small_catalog_dr3(small_catalog):
    """The catalog stage with ``archives.release: dr3`` in small_catalog's workdir, after its DR2 run: the DR3 view
    of the same sky (ddstars.simulate.release), results under results/dr3/ (truth_dr3: what the view changed)."""
    cfg = small_config()
    cfg["archives"] = {"release": "dr3"}
    work = small_catalog["out"].parents[1]
    targets = [t.replace("results/", "results/dr3/", 1) for t in CATALOG_TARGETS]
    run_workflow(work, cfg, targets)
    sky = small_catalog["paths"]["truth"].parent
    paths = {**small_catalog["paths"], **{p.stem: p for p in (sky / "archives").glob("*.parquet")}}
    return {
        **small_catalog,
        "out": work / "results" / "dr3" / "catalog",
        "options": cfg["catalog"],
        "paths": paths | {"truth_dr3": sky / "truth_dr3.parquet"},
        "release": "dr3",
        "workdir": work,
    }


@pytest.fixture(scope="session")
def trained_sky(tmp_path_factory):
    """A 60,000-star simulated sky, its catalog and a model trained on it with the default configuration (the
    schedule counted in optimiser steps: about 16,000 a round at batch 128 here), made by the workflow
    (Snakemake) up to the trained model. About 2 minutes on 2 cores."""
    from ddstars.model.stage import OUTPUTS

    cfg = default_config()
    cfg["simulate"]["n_stars"] = 60000
    model = Path("results", "model")
    work = run_workflow(tmp_path_factory.mktemp("trained"), cfg, [model / "summary.json"])
    files = (
        "model.keras",
        "normalisation.json",
        "history.csv",
        "rounds.csv",
        "reddening.parquet",
        "test_predictions.parquet",
        "summary.json",
        "provenance.json",
    )
    model_out = {k: work / model / name for k, name in zip(OUTPUTS, files, strict=True)}
    summary = json.loads(model_out["summary"].read_text())
    paths = sky_paths(work / "resources" / "simulated")
    return {"out": work / "results", "paths": paths, "model_out": model_out, "summary": summary, "cfg": cfg}


def snakemake(*args: str, workdir: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), *args]
    if workdir is not None:
        cmd += ["--directory", str(workdir)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _terminal_signals() -> None:
    """Ctrl-C as in a terminal: a run started from a background job (`cmd &` in a script, as a CI launcher may do)
    inherits SIGINT ignored, and an ignored signal stays ignored through exec; the run under test gets the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_runner(workdir: Path, target: str, cores: int = 2, **kw) -> subprocess.Popen:
    """`python -m ddstars.runner <target>` (what `make run` calls) on ``workdir``, in a process group of its own
    that a test can interrupt as a terminal would (os.killpg), its output piped."""
    cmd = [sys.executable, "-m", "ddstars.runner", target, "--cores", str(cores), "--directory", str(workdir)]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=_terminal_signals,
        **kw,
    )


def write_config(workdir: Path, cfg: dict) -> None:
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))


def jobs(dry_run_output: str) -> set[str]:
    """Rule names of the jobs a dry run lists."""
    lines = dry_run_output.splitlines()
    return {line.split()[1].rstrip(":") for line in lines if line.startswith(("rule ", "checkpoint "))}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A completed run of the whole workflow on a 3,000-star sky (about 40 s): (workdir, config, result)."""
    tmp_path = tmp_path_factory.mktemp("tiny")
    cfg = small_config(n_stars=3000)
    cfg["catalog"]["offsets"]["min_pairs"] = 10  # a 3000-star sky shares few stars between surveys
    cfg["hats"]["enabled"] = True  # the whole default run, with its HATS copies
    write_config(tmp_path, cfg)
    r = snakemake("--cores", "2", workdir=tmp_path)
    return tmp_path, cfg, r


# --- Local TAP server (remote archive backend integration tests) ---------------------------------------------
# A real GAVO DaCHS TAP server on 127.0.0.1 serving a slice of the small simulated sky (tests/tapserver.py).
# `tap_server.url` is the TAP endpoint, `tap_server.names["gaia_source"]` the published table name
# ("gaiadr2.gaia_source"), `tap_server.archives["gaia_source"]` the DataFrame published. Skips when DaCHS,
# PostgreSQL or pgsphere are missing (.ci/run installs them as root) or the server does not start.
@pytest.fixture(scope="session")
def tap_server(request):
    import pandas as pd
    from tapserver import SIMULATED_TABLE_NAMES, LocalTapServer, available, sky_slice

    ok, reason = available()
    if not ok:
        pytest.skip(f"local TAP server unavailable: {reason}")
    paths = request.getfixturevalue("small_sky")["paths"]  # only once the server can run
    archives = {k: pd.read_parquet(paths[k]) for k in SIMULATED_TABLE_NAMES}
    server = LocalTapServer.from_archives(sky_slice(archives, n_gaia=2000))
    try:
        server.start()
    except Exception as e:  # the servers could not start here: report why and skip
        pytest.skip(f"local TAP server did not start: {e}")
    try:
        yield server
    finally:
        server.stop()
