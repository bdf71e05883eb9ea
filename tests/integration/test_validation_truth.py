"""The validation summary on a simulated sky, checked against numbers computed here from the truth table."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from ddstars import figures
from ddstars.bands import BAND_NAMES, BANDS
from ddstars.catalog.build import read_catalog
from ddstars.model import load_model
from ddstars.validation import stage
from ddstars.validation import summary as vsummary
from ddstars.validation.evaluate import COLOURS, colour_name

AB = np.array([b.ab_minus_vega if b.survey == "unwise" else 0.0 for b in BANDS])  # truth W1/W2 are Vega
SURVEYS = ("lamost", "apogee", "galah")


@pytest.fixture(scope="module")
def validated(trained_sky, tmp_path_factory):
    out = tmp_path_factory.mktemp("validation")
    catalog = trained_sky["out"] / "catalog" / "stars"
    model_dir = trained_sky["model_out"]["model"].parent
    table = stage.run_evaluate(catalog, model_dir, out / "test_stars.parquet", None, trained_sky["cfg"]["train"])
    files = {"summary": out / "summary.json", "provenance": out / "provenance.json"}
    summary = vsummary.run_summary(
        out / "test_stars.parquet", model_dir, catalog, files, truth_path=trained_sky["paths"]["truth"]
    )
    truth = pd.read_parquet(trained_sky["paths"]["truth"]).set_index("source_id")
    cat = read_catalog(catalog)
    test = cat[cat["split"] == "test"].set_index("source_id")
    return {
        "table": table,
        "summary": summary,
        "truth": truth,
        "test": test,
        "model": load_model(model_dir),
        "out": out,
    }


def test_summary_is_written_and_complete(validated):
    s = json.loads((validated["out"] / "summary.json").read_text())
    assert s == json.loads(json.dumps(validated["summary"]))
    for key in ("chi2", "colours", "reddening_vector", "reddening", "appendix_b", "counts", "truth"):
        assert key in s
    assert set(s["colours"]) == {colour_name(x, y) for x, y in COLOURS}
    assert set(s["reddening_vector"]["at_median_theta"]) == set(BAND_NAMES)


def test_counts_match_the_truth(validated):
    truth, test, s = validated["truth"], validated["test"], validated["summary"]["counts"]
    t = truth.loc[test.index]
    assert s["test_stars"] == len(t)
    # per band: the truth says which bands survive the cuts (expect_<band>)
    for b in BAND_NAMES:
        assert s["per_band"][b] == int(t[f"expect_{b}"].sum()), b
    # per survey: a star's labels come from the first survey (apogee > galah > lamost) whose spectrum no cut removes
    good = {}
    for sv in SURVEYS:
        fails = [c for c in t.columns if c.startswith(f"fail_{sv}_")]
        good[sv] = t[f"in_{sv}"].to_numpy() & ~t[fails].any(axis=1).to_numpy()
    survey = np.where(good["apogee"], "apogee", np.where(good["galah"], "galah", "lamost"))
    expected = pd.Series(survey).value_counts().to_dict()
    assert s["per_survey"] == expected


def test_reddening_vector_and_refit_against_the_truth(validated):
    truth, table, s = validated["truth"], validated["table"], validated["summary"]
    t = truth.loc[table["source_id"].to_numpy()]
    # R at the median θ: slope of true A on true E of the test stars whose true labels lie near that θ
    theta0 = np.median(table[["teff", "logg", "feh"]].to_numpy(np.float64), axis=0)
    d = np.abs((t[["true_teff", "true_logg", "true_feh"]].to_numpy() - theta0) / np.array([200.0, 0.3, 0.2]))
    near = (d < 1).all(axis=1)
    assert near.sum() > 30
    e = t.loc[near, "true_ebv"].to_numpy()
    r_true = np.array([np.sum(t.loc[near, f"true_ext_{b}"].to_numpy() * e) / np.sum(e * e) for b in BAND_NAMES])
    got = np.array([s["truth"]["reddening_vector_true_at_median_theta"][b] for b in BAND_NAMES])
    np.testing.assert_allclose(got, r_true, rtol=1e-9)
    e0 = np.array([s["truth"]["reddening_vector_true_e0_at_median_theta"][b] for b in BAND_NAMES])
    assert e0[0] > got[0]  # G: the E -> 0 slope exceeds the linear fit over the sky's reddenings
    r_model = validated["model"].reddening_vector(theta0)[0]
    rel = np.array([s["truth"]["reddening_vector_relative_error"][b] for b in BAND_NAMES])
    np.testing.assert_allclose(rel, r_model / r_true - 1, atol=1e-9)
    # the recovery criterion, R_model = k R_true + c over G ... Ks, as in test_training_truth (the grey offset c is
    # reported, not held to |c| <= 0.03: see there)
    k, c = np.linalg.lstsq(np.c_[r_true[:11], np.ones(11)], r_model[:11], rcond=None)[0]
    shape = (r_model - (k * r_true + c)) / r_true
    rec = s["truth"]["reddening_vector_recovery"]
    assert (rec["k"], rec["c"]) == (pytest.approx(k, rel=1e-9), pytest.approx(c, rel=1e-9, abs=1e-12))
    assert rec["max_abs_residual"] == pytest.approx(np.max(np.abs(shape[:11])), rel=1e-9)
    assert rec["ok"] == bool(abs(k - 1) <= 0.03 and abs(c) <= 0.03 and np.max(np.abs(shape[:11])) <= 0.02)
    assert abs(k - 1) <= 0.03 and np.all(np.abs(shape[:11]) <= 0.02) and -0.08 < c < 0.0, (k, c, shape)
    # E′ against the true E
    e_true = t["true_ebv"].to_numpy()
    slope, _ = np.polyfit(e_true, table["ebv_fit"].to_numpy(np.float64), 1)
    fit = s["truth"]["ebv_fit_vs_true"]
    assert fit["slope"] == pytest.approx(slope, rel=1e-6)
    assert fit["scatter"] == pytest.approx(np.std(table["ebv_fit"].to_numpy(np.float64) - e_true), rel=1e-5)
    assert abs(fit["slope"] - 1) < 0.05 and fit["scatter"] < 0.5 * fit["prior_scatter"]


def test_colour_residuals_against_noise_free_truth(validated):
    truth, table, s, model = validated["truth"], validated["table"], validated["summary"], validated["model"]
    t = truth.loc[table["source_id"].to_numpy()]
    theta = t[["true_teff", "true_logg", "true_feh"]].to_numpy()
    pred = model.predict_apparent(theta, t["dm"].to_numpy(), t["true_ebv"].to_numpy())
    true = np.stack([t[f"true_mag_{b}"].to_numpy() for b in BAND_NAMES], axis=1) + AB
    res = ((true - true[:, [0]]) - (pred - pred[:, [0]]))[:, 1:]
    low = t["true_ebv"].to_numpy() < 0.3
    got = s["truth"]["colour_residual_noise_free"]
    assert got["median_abs_ebv_lt_0.3"] == pytest.approx(np.median(np.abs(res[low])), rel=1e-5)
    assert got["p95_abs_ebv_lt_0.3"] == pytest.approx(np.percentile(np.abs(res[low]), 95), rel=1e-5)
    assert got["median_abs_ebv_lt_0.3"] < 0.01 and got["p95_abs_ebv_lt_0.3"] < 0.03


def test_observed_residuals_and_chi2_agree_with_the_training_stage(validated, trained_sky):
    """Two code paths: the summary (validation evaluation) and the model API with the training stage's E′."""
    table, s, test, model = validated["table"], validated["summary"], validated["test"], validated["model"]
    red = pd.read_parquet(trained_sky["model_out"]["reddening"]).set_index("source_id").loc[table["source_id"]]
    # the training stage's E′ has training's diagonal inflation in C_pred; the summary's is the paper's (none)
    assert np.median(np.abs(table["ebv_fit"].to_numpy() - red["ebv_fit"].to_numpy())) < 2e-3
    c = test.loc[table["source_id"]]
    theta = c[["teff", "logg", "feh"]].to_numpy(np.float64)
    pred = model.predict_apparent(theta, 0.0, table["ebv_fit"].to_numpy(np.float64))
    good = (table["chi2_dof"] < 5).to_numpy()
    for x, y in (("ps1_r", "ps1_i"), ("tmass_j", "tmass_h"), ("ps1_r", "gaia_g")):
        obs = np.where(c[f"obs_{x}"] & c[f"obs_{y}"], c[f"mag_{x}"] - c[f"mag_{y}"], np.nan)
        res = (obs - (pred[:, BAND_NAMES.index(x)] - pred[:, BAND_NAMES.index(y)]))[good]
        res = res[np.isfinite(res)]
        got = s["colours"][colour_name(x, y)]["residual"]
        assert got["n"] == len(res)
        assert got["median"] == pytest.approx(np.median(res), abs=2e-6)
        assert got["p84"] == pytest.approx(np.percentile(res, 84), abs=2e-6)
    # the training stage's χ² carries training's diagonal inflation: the summary's labelled extra, not its headline
    chi = red["chi2_dof"].to_numpy()
    chi = chi[np.isfinite(chi)]
    td = s["chi2"]["training_definition"]
    assert td["mean_chi2_dof_lt10"] == pytest.approx(np.mean(chi[chi < 10]), rel=1e-4)
    assert td["fraction_chi2_dof_ge5"] == pytest.approx(np.mean(chi >= 5), abs=1e-9)
    assert 0.85 < s["chi2"]["mean_chi2_dof_lt10"] < 1.15
    assert td["mean_chi2_dof_lt10"] < s["chi2"]["mean_chi2_dof_lt10"]  # inflating C can only lower χ²


def test_headline_chi2_equals_a_slow_reference_of_the_paper_definition(validated, trained_sky):
    """The summary's χ² against tests/chi2_reference.py: one star at a time, Keras in float64 with GradientTape
    Jacobians in physical θ, explicit B matrix, numpy.linalg.solve, no diagonal inflation."""
    from chi2_reference import headline, reference

    from ddstars.model.data import read_stars

    stars = read_stars(trained_sky["out"] / "catalog" / "stars", split="test")
    ref = reference(validated["model"], stars).set_index("source_id")
    table = validated["table"].set_index("source_id").loc[ref.index]
    np.testing.assert_allclose(table["ebv_fit"], ref["ebv_fit"], rtol=1e-6, atol=1e-7)  # float32 storage
    np.testing.assert_allclose(table["chi2_dof"], ref["chi2_dof"], rtol=1e-6, atol=1e-7)
    want = headline(ref["chi2_dof"].to_numpy())
    got = validated["summary"]["chi2"]
    assert got["n"] == want["n"] == len(stars)
    for key in ("mean_chi2_dof", "mean_chi2_dof_lt5", "mean_chi2_dof_lt10", "fraction_chi2_dof_ge5"):
        assert got[key] == pytest.approx(want[key], abs=1e-6), key
    assert "no diagonal inflation" in got["definition"]


def test_appendix_b_in_the_summary(validated):
    b = validated["summary"]["appendix_b"]
    assert abs(b["delta_a_ref_numerical"] - (-0.037)) < 0.005


def test_comparison_with_the_published_model(validated, trained_sky, tmp_path):
    """Comparison mode: the released Green et al. network on the same test stars, in the summary and figures."""
    catalog = trained_sky["out"] / "catalog" / "stars"
    model_dir = trained_sky["model_out"]["model"].parent
    compare = {"label": "Green et al. 2021", "model": "published"}
    other = stage.run_evaluate(catalog, compare, tmp_path / "cmp.parquet", None, trained_sky["cfg"]["train"])
    np.testing.assert_array_equal(other["source_id"], validated["table"]["source_id"])  # the same stars
    files = {"summary": tmp_path / "s.json", "provenance": tmp_path / "p.json"}
    s = vsummary.run_summary(
        validated["out"] / "test_stars.parquet",
        model_dir,
        catalog,
        files,
        compare=compare,
        compare_table_path=tmp_path / "cmp.parquet",
    )
    c = s["comparison"]
    assert c["label"] == "Green et al. 2021"
    # the published network at the median θ, straight from its API
    from ddstars.model.published import load_published

    theta0 = c["reddening_vector"]["median_theta"]
    r = load_published().reddening_vector(theta0)[0]
    assert c["reddening_vector"]["at_median_theta"]["gaia_g"] == pytest.approx(r[0], rel=1e-9)
    # blackbody stars are not real stars: the published model fits them far worse than the one trained on them
    assert c["chi2"]["mean_chi2_dof"] > s["chi2"]["mean_chi2_dof"]
    inputs = {"table": validated["out"] / "test_stars.parquet", "compare_table": tmp_path / "cmp.parquet"}
    said = {
        "residual_scores": "; blue: the comparison model (Green et al. 2021).",
        "residual_maps": "; lower rows: the comparison model on the same stars.",
        "chi2": "Comparison model (Green et al. 2021, blue) on the same stars",
    }
    for name, words in said.items():
        out = {k: tmp_path / f"{name}.{k}" for k in ("pdf", "png", "caption")}
        cap = figures.run_figure(name, inputs, out, None, dpi=40, compare_label=c["label"])
        assert out["png"].read_bytes().startswith(b"\x89PNG") and out["pdf"].read_bytes().startswith(b"%PDF")
        assert words in cap, cap
    # the χ² figure quotes the summary's numbers, for this model and the comparison
    num = r"(\d+\.\d+)"
    for stats, pattern in (
        (s["chi2"], rf"χ²/dof < 5: {num}; < 10: {num}; fraction ≥ 5: {num}%"),
        (c["chi2"], rf"on the same stars: mean over < 5 {num}, < 10 {num}, fraction ≥ 5 {num}%"),
    ):
        got = [float(x) for x in re.search(pattern, cap).groups()]
        want = [stats["mean_chi2_dof_lt5"], stats["mean_chi2_dof_lt10"], 100 * stats["fraction_chi2_dof_ge5"]]
        assert got == pytest.approx(want, abs=0.0051), pattern


def test_test_stars_are_inside_the_training_domain_and_far_labels_are_not(validated):
    """The test split is drawn like the training split: nearly all of it lies in the model's domain; labels no
    training star is near (a B star, a giant hotter than any, [Fe/H] +1) do not."""
    c = validated["summary"]["counts"]
    assert c["outside_training_domain"] <= 0.01 * c["test_stars"]
    far = [[15000.0, 4.0, 0.0], [7500.0, 1.0, 0.0], [5000.0, 4.5, 1.0]]
    assert not validated["model"].in_domain(far).any()
