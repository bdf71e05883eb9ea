"""The catalog stage on the small simulated sky, compared with the simulation's truth table, for each data release
(archives.release dr2, the paper's, and dr3: the same sky as the Gaia DR3 era's archives serve it)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ddstars import registry
from ddstars.bands import BAND_NAMES
from ddstars.catalog import cuts
from ddstars.catalog.build import read_catalog

SURVEYS = ("lamost", "apogee", "galah")


@pytest.fixture(scope="module", params=["dr2", "dr3"])
def cat_run(request):
    """The catalog stage of the release (the session fixtures small_catalog and small_catalog_dr3)."""
    return request.getfixturevalue({"dr2": "small_catalog", "dr3": "small_catalog_dr3"}[request.param])


@pytest.fixture(scope="module")
def truth(cat_run):
    t = pd.read_parquet(cat_run["paths"]["truth"])
    if cat_run["release"] == "dr3":  # what the DR3 view changed, per star
        t = t.merge(pd.read_parquet(cat_run["paths"]["truth_dr3"]), on="source_id", how="left", validate="1:1")
    return t


@pytest.fixture(scope="module")
def catalog(cat_run):
    return read_catalog(cat_run["out"] / "stars")


def _bands_only(column: str) -> bool:
    """Truth flags of failures that drop bands, not the star."""
    return column == "fail_gaia_bp_rp_excess"


def _good_in(truth: pd.DataFrame, survey: str) -> np.ndarray:
    """Stars with a spectrum in ``survey`` that no survey cut should remove (from the truth flags)."""
    fails = [c for c in truth.columns if c.startswith(f"fail_{survey}_")]
    return truth[f"in_{survey}"].to_numpy() & ~truth[fails].any(axis=1).to_numpy()


def _expected(truth: pd.DataFrame) -> pd.DataFrame:
    gaia_fail = truth[[c for c in truth if c.startswith("fail_gaia_") and not _bands_only(c)]].any(axis=1).to_numpy()
    drop = gaia_fail | truth["fail_tmass_ext_key"].to_numpy()
    good = {s: _good_in(truth, s) & ~drop for s in SURVEYS}
    keep = good["lamost"] | good["apogee"] | good["galah"]
    # survey priority apogee > galah > lamost (config default)
    survey = np.where(good["apogee"], "apogee", np.where(good["galah"], "galah", "lamost"))
    exp = truth.loc[keep].copy()
    exp["exp_survey"] = survey[keep]
    return exp.set_index("source_id")


def test_catalog_holds_exactly_the_stars_the_truth_predicts(truth, catalog):
    exp = _expected(truth)
    assert len(exp) > 3000
    got = set(catalog["source_id"])
    assert got == set(exp.index), (len(got - set(exp.index)), len(set(exp.index) - got))
    c = catalog.set_index("source_id").loc[exp.index]
    np.testing.assert_array_equal(c["survey"].astype(str).to_numpy(), exp["exp_survey"].to_numpy())


def test_every_injected_failure_is_removed_by_its_own_cut(cat_run, truth):
    out = cat_run["out"]
    for survey, id_col in (("lamost", "lamost_id"), ("galah", "galah_id")):
        rejected = pd.read_parquet(out / "clean" / f"{survey}.rejected.parquet")
        reasons = rejected.set_index("survey_id")["rejected_by"].astype(str)
        t = truth[truth[f"in_{survey}"]]
        for inj, cut in {
            "lamost": {
                "inj_lamost_qflag_chi2": "qflag_chi2",
                "inj_lamost_not_single": "flag_singlestar",
                "inj_lamost_low_snr": "low_snr",
            },
            "galah": {"inj_galah_flag_cannon": cuts.galah_flag(cat_run["release"]), "inj_galah_low_snr": "low_snr"},
        }[survey].items():
            ids = t.loc[t[inj], id_col].astype(str)
            assert len(ids) > 0, inj
            assert reasons.reindex(ids).str.contains(cut).all(), (survey, inj)
        # no row without a failure flag was removed
        fails = [c for c in truth.columns if c.startswith(f"fail_{survey}_")]
        good_ids = set(t.loc[~t[fails].any(axis=1), id_col].astype(str))
        assert not good_ids & set(reasons.index)


def test_ledger_accounts_for_every_archive_row(cat_run, catalog):
    doc = json.loads((cat_run["out"] / "build.json").read_text())
    for s in SURVEYS:
        e = doc["ledger"][s]
        table = registry.release(cat_run["release"]).surveys[s].table
        n_archive = len(pd.read_parquet(cat_run["paths"][table]))
        assert e["archive_rows"] == n_archive
        assert e["in_catalog"] == int((catalog["survey"] == s).sum())
        assert e["gaia_rejected"] > 0 and e["removed_by_survey_cuts"] > 0
    assert doc["stars"] == len(catalog)


def test_table1_counts_equal_truth_predictions(cat_run, truth):
    exp = _expected(truth)
    t1 = pd.read_csv(cat_run["out"] / "table1.csv").set_index("name")["n"]
    assert t1["stars"] == len(exp)
    for s in SURVEYS:
        assert t1[s] == int((exp["exp_survey"] == s).sum()), s
    # unWISE is matched by position within 0.4": a true counterpart scattered beyond it (positional
    # jitter 0.1" per axis, so about 3 in 10,000) is, correctly, not matched.
    uw = pd.read_parquet(cat_run["paths"]["unwise"], columns=["unwise_objid", "ra", "dec"]).set_index("unwise_objid")
    has = exp["unwise_objid"].to_numpy() != ""
    pos = uw.reindex(exp["unwise_objid"])
    dra = (pos["ra"].to_numpy() - exp["ra"].to_numpy()) * np.cos(np.radians(exp["dec"].to_numpy()))
    sep = np.hypot(dra, pos["dec"].to_numpy() - exp["dec"].to_numpy()) * 3600
    in_radius = has & (sep < 0.4)
    for b in BAND_NAMES:
        expect = exp[f"expect_{b}"].to_numpy() if b != "gaia_g" else np.ones(len(exp), dtype=bool)
        if b.startswith("unwise"):
            expect = expect & in_radius
        if b in ("gaia_bp", "gaia_rp") and "fail_gaia_bp_rp_excess" in exp:  # DR3: dropped where C* is off
            expect = expect & ~exp["fail_gaia_bp_rp_excess"].to_numpy(bool)
        assert t1[b] == int(expect.sum()), b
    plx = exp["obs_parallax_mas"]
    if "dr3_zero_point_valid" in exp:  # DR3: the zero-point is taken out only where its recipe is valid
        plx = plx + np.where(exp["dr3_zero_point_valid"].to_numpy(bool), 0.0, exp["dr3_parallax_zero_point"])
    snr = plx / exp["obs_parallax_error_mas"]
    assert t1["parallax_snr_gt_5"] == int((snr >= 5).sum())


def test_zero_point_offsets_recover_the_injected_ones(cat_run):
    doc = json.loads((cat_run["out"] / "offsets.json").read_text())
    injected = cat_run["cfg"]["label_offsets"]  # survey - truth; GALAH carries the truth
    for s in ("lamost", "apogee"):
        for j, x in enumerate(("teff", "logg", "feh")):
            got = doc["offsets"][s][x]
            assert got["n_pairs"] >= 30
            assert abs(got["value"] - injected[s][j]) < 3 * got["error_scaled"], (s, x, got, injected[s][j])


def test_catalog_labels_are_on_the_truth_scale(cat_run, truth, catalog):
    offsets = json.loads((cat_run["out"] / "offsets.json").read_text())["offsets"]
    t = truth.set_index("source_id").loc[catalog["source_id"]]
    for x in ("teff", "logg", "feh"):
        d = catalog[x].to_numpy() - t[f"true_{x}"].to_numpy()
        for s in SURVEYS:
            m = (catalog["survey"] == s).to_numpy()
            # the mean residual is consistent with zero given the label noise and the offset's own error
            stderr = np.sqrt(np.mean(catalog[f"var_{x}"].to_numpy()[m]) / m.sum() + offsets[s][x]["error"] ** 2)
            assert abs(d[m].mean()) < 4 * stderr, (x, s, d[m].mean(), stderr)


def test_reddening_prior_contains_true_reddening(truth, catalog):
    t = truth.set_index("source_id").loc[catalog["source_id"]]
    z = (catalog["ebv_prior"].to_numpy() - t["true_ebv"].to_numpy()) / catalog["sigma_ebv_prior"].to_numpy()
    for s in ("sfd", "bayestar", "default"):
        m = (catalog["r_source"] == s).to_numpy()
        assert m.sum() > 100, s
        assert np.mean(np.abs(z[m]) <= 1) >= 0.95, (s, np.mean(np.abs(z[m]) <= 1))


def test_photometry_matches_truth_within_errors(truth, catalog):
    t = truth.set_index("source_id").loc[catalog["source_id"]]
    for b in BAND_NAMES:
        m = catalog[f"obs_{b}"].to_numpy()
        true = t[f"true_mag_{b}"].to_numpy()[m]
        if b.startswith("unwise"):
            true = true + {"unwise_w1": 2.699, "unwise_w2": 3.339}[b]  # truth is Vega, the catalog AB
        # the simulated noise is the reported error plus 0.02 mag of unreported scatter: the catalog error
        sigma = catalog[f"err_{b}"].to_numpy()[m]
        z = (catalog[f"mag_{b}"].to_numpy()[m] - true) / sigma
        assert abs(np.median(z)) < 0.1 and 0.85 < np.std(z) < 1.15, (b, np.median(z), np.std(z))
        assert catalog.loc[~catalog[f"obs_{b}"], f"mag_{b}"].isna().all()


def test_split_fractions_and_parallax_rule(catalog):
    frac = catalog["split"].value_counts(normalize=True)
    n = len(catalog)
    for s, f in (("train", 0.7), ("validation", 0.2), ("test", 0.1)):
        assert abs(frac[s] - f) < 4 * np.sqrt(f * (1 - f) / n), (s, frac[s])
    snr = catalog["parallax"] / catalog["parallax_error"]
    np.testing.assert_array_equal(catalog["parallax_usable"].to_numpy(), (snr >= 5).to_numpy())
    assert (~catalog["parallax_usable"]).sum() > 0  # low-S/N stars stay in the catalog


# ------------------------------------------------------------------------------------------------ DR3 only
@pytest.fixture(scope="module")
def dr3(small_catalog_dr3):
    t = pd.read_parquet(small_catalog_dr3["paths"]["truth"]).merge(
        pd.read_parquet(small_catalog_dr3["paths"]["truth_dr3"]), on="source_id", validate="1:1"
    )
    return small_catalog_dr3, t.set_index("source_id")


def test_dr3_parallaxes_lose_their_zero_point_where_it_is_valid_and_are_flagged_where_not(dr3):
    run, truth = dr3
    gaia = pd.read_parquet(run["out"] / "clean" / "gaia.parquet").set_index("source_id")
    t = truth.reindex(gaia.index).dropna(subset=["obs_parallax_mas"])
    g = gaia.loc[t.index]
    valid = t["dr3_zero_point_valid"].to_numpy(bool)
    assert valid.sum() > 1000 and (~valid).sum() > 0
    # where valid: the published parallax less the recipe's zero-point is the DR2-era measurement of the truth
    np.testing.assert_allclose(g["parallax"].to_numpy()[valid], t["obs_parallax_mas"].to_numpy()[valid], atol=1e-9)
    np.testing.assert_allclose(
        g["parallax_zero_point"].to_numpy()[valid], t["dr3_parallax_zero_point"].to_numpy()[valid], atol=1e-9
    )
    assert -0.06 < float(np.median(g["parallax_zero_point"][valid])) < -0.01  # Lindegren et al. (2021): ~ -0.02
    # where not: flagged (NaN), the parallax as published
    assert g["parallax_zero_point"].isna().to_numpy()[~valid].all()
    published = t["obs_parallax_mas"] + t["dr3_parallax_zero_point"]
    np.testing.assert_allclose(g["parallax"].to_numpy()[~valid], published.to_numpy()[~valid], atol=1e-9)
    counts = json.loads((run["out"] / "clean" / "gaia.counts.json").read_text())
    assert counts["parallax_zero_point"]["not_valid"] == int(gaia["parallax_zero_point"].isna().sum())


def test_dr3_bp_rp_are_dropped_exactly_where_the_corrected_excess_is_off(dr3):
    run, truth = dr3
    gaia = pd.read_parquet(run["out"] / "clean" / "gaia.parquet").set_index("source_id")
    t = truth.reindex(gaia.index).dropna(subset=["fail_gaia_bp_rp_excess"])
    bad = t["fail_gaia_bp_rp_excess"].to_numpy(bool)
    has_bp = gaia.loc[t.index, "mag_gaia_bp"].notna().to_numpy()
    assert bad.sum() > 20
    assert not (bad & has_bp).any()  # every injected excess loses BP
    np.testing.assert_array_equal(has_bp[~bad], t["expect_gaia_bp"].to_numpy(bool)[~bad])  # no good BP lost


def test_dr3_apogee_duplicates_go_and_the_best_row_of_each_star_stays(dr3):
    run, truth = dr3
    table = registry.release("dr3").surveys["apogee"].table
    archive = pd.read_parquet(run["paths"][table])
    dup = (archive["EXTRATARG"].to_numpy() & cuts.APOGEE_DUPLICATE) != 0
    assert dup.sum() > 5
    rejected = pd.read_parquet(run["out"] / "clean" / "apogee.rejected.parquet")
    by_dup = rejected["rejected_by"].astype(str).str.contains("duplicate")
    assert by_dup.sum() == dup.sum()  # each duplicate row removed by its own cut, no other row by it
    clean = pd.read_parquet(run["out"] / "clean" / "apogee.parquet")
    assert not clean["survey_id"].duplicated().any()


def test_switching_the_release_reruns_its_stages_and_switching_back_reruns_nothing(small_catalog_dr3):
    from conftest import CATALOG_TARGETS, jobs, small_config, snakemake, write_config

    work = small_catalog_dr3["workdir"]
    cfg = small_config()
    for release in ("dr2", "dr3"):  # both releases' results are cached side by side (results/, results/dr3/)
        cfg["archives"] = {"release": release}
        write_config(work, cfg)
        targets = [t.replace("results/", registry.results_dir(cfg) + "/", 1) for t in CATALOG_TARGETS]
        r = snakemake("-n", "--cores", "2", *targets, workdir=work)
        assert r.returncode == 0 and "Nothing to be done" in r.stdout, (release, r.stdout[-2000:])
    # what comes after the catalog follows the release too: a DR3 model is a job of its own, the sky is not
    r = snakemake("-n", "--cores", "2", "results/dr3/model/summary.json", workdir=work)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "train_model" in jobs(r.stdout) and not jobs(r.stdout) & {"simulate_sky", "clean_gaia", "build_catalog"}
