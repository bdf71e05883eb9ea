"""The workflow through the Snakemake CLI: lint, dry-runs, config validation, a tiny end-to-end run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import ROOT, jobs, small_config, snakemake, write_config

from ddstars.figures import FIGURES

pytestmark = pytest.mark.workflow


def test_lint_is_clean():
    r = snakemake("--lint")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("release", ["dr2", "dr3"])
def test_remote_backend_fetches_every_archive_table_before_the_catalog(release):
    """backend: remote replaces the simulated sky by a plan and an assembly per archive table of the configured
    release (the chunk jobs between them appear once the plan has run), in dependency order."""
    from ddstars import registry

    rel = registry.release(release)
    maps = 'dustmaps={"sfd_dir": "data/dustmaps/sfd", "bayestar_file": "data/dustmaps/bayestar2019.h5"}'
    args = ["--config", "backend=remote", f'archives={{"release": "{release}"}}', maps]
    r = snakemake("-n", "--forceall", *args, "--cores", "1", workdir=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    ran = jobs(r.stdout)
    assert {f"fetch_{t}" for t in rel.tables} | {f"plan_{t}" for t in rel.tables} <= ran
    others = set(registry.ALL_TABLES) - set(rel.tables)  # the other release's own tables are not fetched
    assert not ran & ({f"fetch_{t}" for t in others} | {f"plan_{t}" for t in others})
    assert not ran & {"simulate_sky", "simulate_dustmaps", "summarize_simulation"}
    assert {"provision_dustmaps", "reddening_prior", "train_model", "validation_report"} <= ran
    order = [line.split()[1].rstrip(":") for line in r.stdout.splitlines() if line.startswith(("rule ", "checkpoint "))]
    for t in rel.tables:
        assert order.index(f"plan_{t}") < order.index(f"fetch_{t}"), t
    # spectra first, then Gaia around them, then the best neighbours, then the photometry they point to
    gaia = rel.surveys["gaia"].table
    spectra = [rel.surveys[s].table for s in rel.spectroscopic()]
    assert order.index(f"plan_{gaia}") > max(order.index(f"fetch_{t}") for t in spectra)
    for survey, link in rel.links().items():
        assert order.index(f"plan_{rel.surveys[survey].table}") > order.index(f"fetch_{link}"), survey
    # the photometry's plans read the release's own link tables (Gaia DR3's with dr3), from its archive folder
    folder = "resources/archives/" + ("" if release == registry.DEFAULT_RELEASE else f"{release}/")
    for survey, link in rel.links().items():
        m = re.search(rf"^checkpoint plan_{rel.surveys[survey].table}:\n    input: (.*)$", r.stdout, re.M)
        assert m and f"{folder}{link}.parquet" in m.group(1).split(", "), (survey, m and m.group(1)[:200])


def test_dry_run_default_config():
    r = snakemake("-n", "--forceall", "--quiet", "rules")
    assert r.returncode == 0, r.stdout + r.stderr
    for rule in (
        "simulate_sky",
        "simulate_dustmaps",
        "summarize_simulation",
        "clean_lamost",
        "clean_unwise",
        "crossmatch_spectra",
        "zero_point_offsets",
        "build_catalog",
        "table1",
        "check_catalog",
    ):
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
    assert "the config has 1 problem(s):" in out  # one line naming the key, no schema dump
    assert len(out) < 6000, out[-3000:]
    for w in words:
        assert w in out, f"{w!r} not named in:\n{out[-2000:]}"
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c["train"]["chi2_cut"].__setitem__("rounds", 25), "train.chi2_cut.rounds"),
        (lambda c: c["catalog"].__setitem__("mag_error_max", 0.01), "catalog.mag_error_max"),
        (lambda c: c["simulate"]["population"].__setitem__("teff_range_k", [8500.0, 3800.0]), "teff_range_k"),
        (lambda c: c["validation"]["figures"].__setitem__("labels", {"teff_range": [9000, 3000]}), "teff_range"),
    ],
    ids=["chi2-rounds", "mag-error-max", "reversed-teff-range", "reversed-figure-range"],
)
def test_contradictory_config_stops_the_dry_run_before_any_job(tmp_path, edit, key):
    """Values that pass the schema but contradict each other stop `snakemake -n` at parse time, naming the key."""
    cfg = small_config(n_stars=2000)
    edit(cfg)
    write_config(tmp_path, cfg)
    r = snakemake("-n", "--cores", "1", workdir=tmp_path)
    out = r.stdout + r.stderr  # a dry run logs its error to stdout
    assert r.returncode != 0
    assert "the config has 1 problem(s):" in out
    assert f"{key}: " in out, out[-2000:]
    assert not jobs(out) and "Job stats" not in out  # no job was even planned
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results").exists()


def test_tiny_end_to_end_run_then_nothing_to_do(tiny_run):
    tmp_path, cfg, r = tiny_run
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
    cat = tmp_path / "results/catalog"
    assert json.loads((cat / "check.json").read_text())["valid"] is True
    parts = [p.name for p in (cat / "stars").iterdir() if not p.name.startswith(".")]  # .snakemake_timestamp
    assert parts and all(p.startswith("healpix_2=") for p in parts)
    table1 = (cat / "table1.csv").read_text()
    assert "unwise_w2" in table1
    for survey in ("gaia", "ps1", "tmass", "unwise", "lamost", "apogee", "galah"):
        assert (cat / "clean" / f"{survey}.counts.json").exists()
    for stage in ("simulation", "catalog", "model"):  # each result folder says what made it
        prov = json.loads((tmp_path / "results" / stage / "provenance.json").read_text())
        assert prov["versions"]["snakemake"] and "commit" in prov["git"] and prov["config"]
    model = json.loads((tmp_path / "results/model/summary.json").read_text())
    assert model["n_stars"] == json.loads((cat / "build.json").read_text())["stars"]
    assert (tmp_path / "results/model/model.keras").stat().st_size > 0
    log = (tmp_path / "results/logs/train_model.log").read_text()
    assert log.count("round ") >= 20 and "<chi2/dof>" in log


SPECTRO_CLEAN = {"clean_lamost", "clean_apogee", "clean_galah"}
PHOTO_CLEAN = {"clean_gaia", "clean_ps1", "clean_tmass", "clean_unwise"}
SKY = {"simulate_sky", "simulate_dustmaps"}
MODEL_FIGURES = {f"figure_{n}" for n in FIGURES if n not in ("filters", "nonlinearity")}  # read model outputs
VALIDATION = {"evaluate_test", "validation_summary", "validation_report"}
INFERENCE = {"infer_group", "inference_summary", "inference_figures"}  # read the model
COMPARE_FIGURES = {f"figure_{n}" for n, spec in FIGURES.items() if "compare_table" in spec.inputs}  # draw a 2nd model


@pytest.mark.parametrize(
    ("section", "key", "value", "must_run", "must_not_run"),
    [
        (
            "catalog",
            "label_sigma_max",
            [150.0, 0.5, 0.5],
            SPECTRO_CLEAN | {"build_catalog", "table1", "train_model", "hats_catalog"} | VALIDATION | MODEL_FIGURES,
            SKY | PHOTO_CLEAN,
        ),
        (
            "catalog",
            "mag_error_max",
            0.15,
            PHOTO_CLEAN | {"build_catalog", "train_model", "hats_catalog"} | VALIDATION | MODEL_FIGURES,
            SKY | SPECTRO_CLEAN | {"figure_filters", "figure_nonlinearity"},
        ),
        (
            "train",
            "epochs",
            3,
            {"train_model", "all", "hats_inference"} | VALIDATION | MODEL_FIGURES | INFERENCE,
            SKY
            | SPECTRO_CLEAN
            | PHOTO_CLEAN
            | {"build_catalog", "table1", "figure_filters", "figure_nonlinearity"}
            | {"hats_catalog"},  # the catalog's HATS copy follows the catalog, not the model
        ),
        ("validation", "figures", {"chi2": {"bins": 40}}, {"figure_chi2", "validation_report", "all"}, set()),
        (
            "validation",
            "dpi",
            100,
            {f"figure_{n}" for n in FIGURES} | {"inference_figures", "validation_report", "all"},
            {"train_model", "infer_group"},
        ),
        (
            "validation",
            "compare",
            {"label": "Green et al. 2021", "model": "published"},
            {"evaluate_comparison", "validation_summary", "validation_report", "all"} | COMPARE_FIGURES,
            {f"figure_{n}" for n in FIGURES} - COMPARE_FIGURES,
        ),
        ("dustmaps", "sfd_dir", None, set(), set()),
    ],
    ids=[
        "label-cut",
        "photometric-cut",
        "training-hyperparameter",
        "one-figure-option",
        "figure-dpi",
        "comparison",
        "unchanged-value",
    ],
)
def test_config_changes_rerun_only_what_they_affect(tiny_run, section, key, value, must_run, must_not_run):
    tmp_path, cfg, _ = tiny_run
    edited = json.loads(json.dumps(cfg))
    if value is not None:
        edited[section][key] = value
    write_config(tmp_path, edited)
    try:
        r = snakemake("-n", "--cores", "1", workdir=tmp_path)
    finally:
        write_config(tmp_path, cfg)
    assert r.returncode == 0, r.stderr[-2000:]
    ran = jobs(r.stdout)
    if value is None:
        assert "Nothing to be done" in r.stdout + r.stderr
    if section in ("train", "validation"):
        assert ran == must_run
    assert must_run <= ran and not ran & must_not_run, ran


def test_every_json_the_run_writes_is_strict(tiny_run):
    """null, never a bare NaN or Infinity, in every JSON file of the run (a short run has statistics with no stars)."""
    tmp_path, _, r = tiny_run
    assert r.returncode == 0, r.stderr[-3000:]

    def refuse(name):
        raise ValueError(f"bare {name}")

    files = sorted((tmp_path / "results").rglob("*.json")) + sorted((tmp_path / "resources").rglob("*.json"))
    assert len(files) > 15
    for path in files:
        try:
            json.loads(path.read_text(), parse_constant=refuse)
        except ValueError as e:
            raise AssertionError(f"{path.relative_to(tmp_path)}: {e}") from None


def test_every_figure_summary_and_report(tiny_run):
    """The default run draws every figure (PDF, PNG, caption), the validation summary and the report."""
    tmp_path, _, r = tiny_run
    assert r.returncode == 0, r.stderr[-3000:]
    fig_dir = tmp_path / "results/figures"
    report = (tmp_path / "results/validation/report.md").read_text()
    for name, spec in FIGURES.items():
        pdf, png, txt = (fig_dir / f"{name}.{ext}" for ext in ("pdf", "png", "txt"))
        assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5000, name
        assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 5000, name
        caption = txt.read_text()
        assert caption.startswith(spec.paper) and len(caption) > 80, name
        assert f"(../figures/{name}.png)" in report and f"(../figures/{name}.pdf)" in report, name
    summary = json.loads((tmp_path / "results/validation/summary.json").read_text())
    model = json.loads((tmp_path / "results/model/summary.json").read_text())
    assert summary["counts"]["test_stars"] == model["n_per_split"]["test"]
    # the training stage's test χ² is the schedule's (inflated) one: the summary's labelled extra, not its headline
    training_chi2 = summary["chi2"]["training_definition"]
    assert training_chi2["mean_chi2_dof_lt10"] == pytest.approx(model["test_mean_chi2_dof_lt10"], rel=1e-4)
    assert summary["chi2"]["mean_chi2_dof_lt10"] > training_chi2["mean_chi2_dof_lt10"]
    assert "truth" in summary  # the simulated sky's truth is compared where it exists
    # 500 optimiser steps a round (small_config) are far too few: both summaries and the report say so
    assert model["convergence"]["converged"] is False and summary["training"]["converged"] is False
    assert report.splitlines()[2].startswith("> **WARNING: the model has not converged.**")
    assert "has NOT converged" in (tmp_path / "results/logs/train_model.log").read_text()
    assert "| ⟨χ²/dof⟩, χ²/dof < 10 |" in report and "## Table 1" in report
    # the Snakemake report holds every figure and Table 1
    r = snakemake("--report", "report.html", workdir=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    html = (tmp_path / "report.html").read_text()
    for name in FIGURES:
        assert f"{name}.png" in html, name
    assert "table1.csv" in html


def test_bring_your_own_catalog(tiny_run, tmp_path):
    """The README's recipe end to end: a Parquet file with the required columns and positions, nothing else (no
    split, no masks, no survey), through the whole workflow; then a broken one stops before training."""
    import shutil

    import pyarrow.dataset as ds

    from ddstars.catalog import schema

    built, cfg, _ = tiny_run
    data = ds.dataset(built / "results/catalog/stars", partitioning="hive").to_table().to_pandas()
    required = [c.name for c in schema.columns() if c.tier == "required"]
    (tmp_path / "mycat").mkdir()
    data[[*required, "ra", "dec"]].to_parquet(tmp_path / "mycat" / "stars.parquet", index=False)
    own = json.loads(json.dumps(cfg))
    own["catalog"]["external"] = "mycat/stars.parquet"
    write_config(tmp_path, own)
    r = snakemake("-n", "--cores", "1", workdir=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    # no archive or catalog-building stage, and no truth to compare with; the inference's reddening prior reads the
    # configured dust maps (here the simulated ones, made for it)
    assert jobs(r.stdout) == {"check_catalog", "import_catalog", "table1", "train_model", "all"} | VALIDATION | {
        f"figure_{n}" for n in FIGURES
    } | INFERENCE | {"simulate_dustmaps", "provision_dustmaps", "hats_catalog", "hats_inference"}
    r = snakemake("--cores", "2", workdir=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    validation = json.loads((tmp_path / "results/catalog/check.json").read_text())
    assert validation["valid"] is True and validation["missing_required"] == []
    assert "survey" in validation["cannot_produce"] and "split" in validation["derived_on_import"]
    imported = json.loads((tmp_path / "results/catalog/import.json").read_text())
    assert imported["rows"] == len(data) and imported["split"]["source"].startswith("hash")
    # the same stars in the same splits as the built catalog: the same rule
    cat = ds.dataset(tmp_path / "results/catalog/stars", partitioning="hive").to_table().to_pandas()
    assert (cat.set_index("source_id")["split"].sort_index() == data.set_index("source_id")["split"].sort_index()).all()
    assert imported["photometry"]["findings"] == []
    t1 = (tmp_path / "results/catalog/table1.md").read_text()
    assert "| lamost | not given |" in t1
    summary = json.loads((tmp_path / "results/validation/summary.json").read_text())
    assert summary["counts"]["test_stars"] == int((data["split"] == "test").sum())
    assert summary["counts"]["per_survey"] == {} and "truth" not in summary
    assert (tmp_path / "results/validation/report.md").is_file()
    for name in FIGURES:
        assert (tmp_path / f"results/figures/{name}.png").is_file(), name

    # A broken catalog: the run stops and the log names the file, the column and the rows.
    shutil.rmtree(tmp_path / "results")
    broken = data[required].drop(columns=["sigma_ebv_prior"]).assign(teff=lambda d: d["teff"].where(d.index != 2))
    broken.to_parquet(tmp_path / "mycat" / "stars.parquet", index=False)
    r = snakemake("--cores", "1", workdir=tmp_path)
    assert r.returncode != 0
    assert not (tmp_path / "results/model/summary.json").exists()  # training waits for a valid catalog
    log = (tmp_path / "results/logs/catalog/check_catalog.log").read_text()
    assert "column 'sigma_ebv_prior': missing column (required)" in log
    assert "column 'teff': null or NaN where a value is required (1 rows, first [2]" in log


def _summary_status(r) -> dict[str, str]:
    rows = [line.split("\t") for line in r.stdout.splitlines()[1:] if "\t" in line]
    return {row[0]: row[4] for row in rows}


def test_summary_shows_only_the_edited_figure_out_of_date(tiny_run):
    """`snakemake --summary` on the completed run: all outputs current; after one figure option, only its files."""
    tmp_path, cfg, _ = tiny_run
    r = snakemake("--summary", workdir=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    status = _summary_status(r)
    assert len(status) > 60 and set(status.values()) == {"ok"}, {k: v for k, v in status.items() if v != "ok"}
    edited = json.loads(json.dumps(cfg))
    edited.setdefault("validation", {}).setdefault("figures", {})["residual_maps"] = {"min_count": 5}
    write_config(tmp_path, edited)
    try:
        r = snakemake("--summary", workdir=tmp_path)
    finally:
        write_config(tmp_path, cfg)
    stale = {k for k, v in _summary_status(r).items() if v != "ok"}
    assert stale == {f"results/figures/residual_maps.{ext}" for ext in ("pdf", "png", "txt")}


def _used_folder(tiny_run, tmp_path):
    """A copy of the completed tiny run's folder: config, resources and results (an earlier run)."""
    import shutil

    built, cfg, _ = tiny_run
    for sub in ("config", "resources", "results", ".snakemake"):
        shutil.copytree(built / sub, tmp_path / sub, symlinks=True)
    return json.loads(json.dumps(cfg))


@pytest.mark.parametrize(
    ("section", "key", "value", "words"),
    [
        ("catalog", "external", "nowhere/mystars.parquet", "catalog.external: nowhere/mystars.parquet does not exist"),
        ("dustmaps", "bayestar_file", "resources/elsewhere/bayestar2019.h5", "dustmaps.bayestar_file: resources/else"),
        ("dustmaps", "sfd_dir", "resources/nosfd", "dustmaps.sfd_dir: resources/nosfd does not exist"),
    ],
)
def test_a_missing_config_path_stops_before_any_job_in_a_used_folder(tiny_run, tmp_path, section, key, value, words):
    """B21/D3: in a folder with an earlier run, a config path to a file that is not there must not let the old
    results stand in for it: the run stops before any job, naming the key and the file, and changes nothing."""
    cfg = _used_folder(tiny_run, tmp_path)
    cfg[section][key] = value
    write_config(tmp_path, cfg)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*") if p.is_file()}
    r = snakemake("--cores", "2", workdir=tmp_path)
    assert r.returncode != 0
    assert words in r.stderr + r.stdout
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*") if p.is_file()}
    assert after == before


def test_a_moved_dust_map_reruns_the_prior(tiny_run, tmp_path):
    """D3, the file exists elsewhere: the reddening prior and everything after it rerun from the map now named."""
    import shutil

    cfg = _used_folder(tiny_run, tmp_path)
    old = tmp_path / cfg["dustmaps"]["bayestar_file"]
    new = tmp_path / "resources" / "maps" / "bayestar2019.h5"
    new.parent.mkdir(parents=True)
    shutil.copy2(old, new)
    cfg["dustmaps"]["bayestar_file"] = "resources/maps/bayestar2019.h5"
    write_config(tmp_path, cfg)
    r = snakemake("-n", "--cores", "1", workdir=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    ran = jobs(r.stdout)
    assert {"provision_dustmaps", "reddening_prior", "build_catalog", "train_model"} <= ran
    assert "simulate_sky" not in ran


def test_provenance_records_the_files_read_with_checksums(tiny_run):
    import hashlib

    tmp_path, cfg, _ = tiny_run

    def md5(path):
        return hashlib.md5(Path(path).read_bytes()).hexdigest()

    cat = json.loads((tmp_path / "results/catalog/provenance.json").read_text())
    maps = cat["dust_maps"]
    bayestar = tmp_path / cfg["dustmaps"]["bayestar_file"]
    assert maps["bayestar2019.h5"]["path"] == str(bayestar.resolve())
    assert maps["bayestar2019.h5"]["checksum"]["md5"] == md5(bayestar)
    train = json.loads((tmp_path / "results/model/provenance.json").read_text())
    parts = sorted((tmp_path / "results/catalog/stars").rglob("*.parquet"))
    assert [f["path"] for f in train["files_read"]] == [str(p.resolve()) for p in parts]
    assert all(f["md5"] == md5(f["path"]) for f in train["files_read"])
    val = json.loads((tmp_path / "results/validation/provenance.json").read_text())
    assert {Path(f["path"]).name for f in val["files_read"]} == {"model.keras", "normalisation.json"}
