"""`snakemake --profile slurm` through the real snakemake-executor-plugin-slurm, against mock SLURM commands
(tests/mock_slurm: sbatch runs the job in the background, sacct reports its state)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from conftest import ROOT, jobs, snakemake

pytestmark = pytest.mark.workflow
PROFILE = str(ROOT / "workflow" / "profiles" / "slurm")

pytest.importorskip("snakemake_executor_plugin_slurm")


def _copy_run(tiny_run, tmp_path):
    src, _, r = tiny_run
    assert r.returncode == 0, r.stderr[-2000:]
    dst = tmp_path / "run"
    shutil.copytree(src, dst, symlinks=True)
    return dst


def test_profiles_dry_run_without_slurm(tiny_run, tmp_path):
    work = _copy_run(tiny_run, tmp_path)
    for profile in (PROFILE, str(ROOT / "workflow" / "profiles" / "local")):
        r = snakemake("--profile", profile, "-n", "--sdm", "env-modules", "--forcerun", "train_model", workdir=work)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        assert "train_model" in jobs(r.stdout)


def test_jobs_go_to_slurm_with_the_profile_resources(tiny_run, tmp_path, monkeypatch):
    work = _copy_run(tiny_run, tmp_path)
    state = tmp_path / "slurm_state"
    monkeypatch.setenv("PATH", f"{ROOT / 'tests' / 'mock_slurm'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("MOCK_SLURM_STATE", str(state))
    r = snakemake(
        "--profile",
        PROFILE,
        "--sdm",
        "env-modules",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "results/model/summary.json",  # targets: the training and one CPU job, not the figures after them
        "results/catalog/table1.md",
        "results/inference/groups/0.json",  # one inference job, with the resources of config section inference
        "--forcerun",
        "train_model",
        "table1",
        "infer_group",
        workdir=work,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    calls = {}
    for line in (state / "sbatch_calls.log").read_text().splitlines():
        args = [a for a in json.loads(line) if not a.startswith("--wrap")]
        calls[args[args.index("--comment") + 1]] = args
    train, table1 = calls["rule_train_model"], calls["rule_table1"]
    # the training job asks for a GPU on the GPU partition, with the profile's memory and runtime
    assert "--gpus=a100:1" in train and "--cpus-per-gpu=8" in train
    assert train[train.index("-p") + 1] == "gpu" and train[train.index("-t") + 1] == "480"
    assert train[train.index("--mem") + 1] == "64000"
    # a CPU job gets the defaults and no GPU
    assert table1[table1.index("-p") + 1] == "cpu" and table1[table1.index("--mem") + 1] == "4000"
    assert table1[table1.index("-t") + 1] == "60" and not any(a.startswith("--gpus") for a in table1)
    # an inference job: the config's inference resources (memory, minutes), on the CPU partition
    infer = next(args for name, args in calls.items() if name.startswith("rule_infer_group"))
    assert infer[infer.index("--mem") + 1] == "4000" and infer[infer.index("-t") + 1] == "120"
    assert infer[infer.index("-p") + 1] == "cpu" and not any(a.startswith("--gpus") for a in infer)
    assert set(calls) == {"rule_train_model", "rule_table1", infer[infer.index("--comment") + 1]}
    assert (work / "results/model/model.keras").stat().st_size > 0


@pytest.mark.parametrize("release", ["dr2", "dr3"])
def test_archive_queries_and_bookkeeping_run_on_the_submitting_node(release):
    """Under any cluster executor the archive fetches (network) and `all`/`validation_report` stay local."""
    from pathlib import Path

    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings

    from ddstars import registry
    from ddstars.remote.services import SAMPLE_TABLES

    TABLES = registry.release(release).tables  # the configured release's archive tables
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        wapi = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(config={"backend": "remote", "archives": {"release": release}}),
            storage_settings=StorageSettings(),
            snakefile=ROOT / "Snakefile",
            workdir=Path(ROOT),
        )
        wf = wapi._workflow  # the parsed workflow; its local-rule set is what a cluster executor consults
        local = set(wf._localrules)
        names = {r.name for r in wf.rules}
    # the catalog's archive tables and the photometric sample's (photometric/<table>: rules *_photometric_<table>)
    tables = [*TABLES, *(t.replace("/", "_") for t in SAMPLE_TABLES)]
    archive_rules = {f"{kind}_{t}" for t in tables for kind in ("plan", "fetch_chunk", "fetch")}
    assert archive_rules | {"all", "validation_report"} == local
    assert "train_model" in names and "train_model" not in local
