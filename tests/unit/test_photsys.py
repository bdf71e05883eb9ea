"""Photometric-system check (ddstars.catalog.photsys) on the small simulated sky's catalog.

The truth is the simulation: the built catalog is in the right systems, and each corruption below is applied with
the project's own conversions (ddstars.bands.BANDS: m_Vega = m_AB - ab_minus_vega), so the expected offsets come
from those constants, never from the check.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from ddstars.bands import BANDS
from ddstars.catalog import build, photsys
from ddstars.catalog.make_locus import compute_locus
from ddstars.errors import DataError

AB_MINUS_VEGA = {b.name: b.ab_minus_vega for b in BANDS}


@pytest.fixture(scope="module")
def catalog(small_catalog):
    return build.read_catalog(small_catalog["out"] / "stars")


def _selected(df):
    """The dwarfs the check compares with the locus, by its documented default selection."""
    return (
        df.teff.between(5000, 6000)
        & (df.logg >= 4.0)
        & (df.ebv_prior <= 0.1)
        & df.feh.between(-1.0, 0.5)
        & np.isfinite(df.mag_gaia_g)
    )


def _by_band(report):
    return {b.band: b for b in report.bands}


def test_bundled_locus_matches_the_simulated_truth(small_sky):
    """Dust-free colours and R differences of the sky's true dwarfs (catalog systems) lie on the bundled locus."""
    truth = pd.read_parquet(small_sky["paths"]["truth"])
    s = truth[(truth.true_logg >= 4) & truth.true_teff.between(5000, 6000) & truth.true_feh.between(-0.5, 0.3)]
    assert len(s) > 200
    locus = photsys.load_locus()
    for b in BANDS[1:]:
        to_catalog = b.ab_minus_vega if b.survey == "unwise" else 0.0  # truth unWISE is Vega, the catalog AB
        colour = s[f"true_abs_{b.name}"] + to_catalog - s.true_abs_gaia_g
        d_col = colour - np.interp(s.true_teff, locus.teff, locus[f"c_{b.name}"])
        d_r = s[f"true_r_{b.name}"] - s.true_r_gaia_g - np.interp(s.true_teff, locus.teff, locus[f"dr_{b.name}"])
        # the locus averages [Fe/H] -0.5..+0.3: single stars scatter about it by the metallicity dependence only
        assert abs(d_col.median()) < 0.01 and d_col.abs().max() < 0.04, b.name
        assert abs(d_r.median()) < 0.01 and d_r.abs().max() < 0.03, b.name


def test_bundled_locus_is_what_make_locus_computes():
    locus = photsys.load_locus()
    sub = locus.iloc[::7].reset_index(drop=True)
    fresh = compute_locus(teff_grid=sub.teff.to_numpy())
    assert list(fresh.columns) == list(locus.columns)
    np.testing.assert_allclose(fresh.to_numpy(), sub.to_numpy(), atol=2e-5)


def test_correct_catalog_passes_with_small_offsets(catalog):
    report = photsys.check_photometry(catalog)
    assert report.ok and report.findings == []
    assert report.n_selected == int(_selected(catalog).sum())
    bands = _by_band(report)
    assert bands["gaia_g"].status == "reference"
    for b in BANDS[1:]:
        assert bands[b.name].status == "ok", bands[b.name]
        assert abs(bands[b.name].offset) < 0.1, bands[b.name]
    json.dumps(report.to_dict())  # plain, JSON-serialisable


def test_unwise_in_vega_is_flagged_with_the_vega_cause(catalog):
    df = catalog.copy()
    for b in ("unwise_w1", "unwise_w2"):
        df[f"mag_{b}"] = df[f"mag_{b}"] - AB_MINUS_VEGA[b]  # AB -> Vega, the project's conversion
    report = photsys.check_photometry(df)
    assert sorted(f.band for f in report.findings) == ["unwise_w1", "unwise_w2"]
    for f in report.findings:
        assert f.cause == "vega_instead_of_ab"
        assert abs(f.offset - (-AB_MINUS_VEGA[f.band])) < 0.05  # Vega magnitudes are brighter
        assert f.column in f.message and "brighter" in f.message and f"add {AB_MINUS_VEGA[f.band]:.3f}" in f.message
        assert _by_band(report)[f.band].status == "flagged"


def test_tmass_ks_in_ab_is_flagged_with_the_ab_cause(catalog):
    df = catalog.copy()
    df["mag_tmass_ks"] = df["mag_tmass_ks"] + AB_MINUS_VEGA["tmass_ks"]  # Vega -> AB
    report = photsys.check_photometry(df)
    assert [f.band for f in report.findings] == ["tmass_ks"]
    (f,) = report.findings
    assert f.cause == "ab_instead_of_vega"
    assert abs(f.offset - AB_MINUS_VEGA["tmass_ks"]) < 0.05
    assert "mag_tmass_ks" in f.message and "fainter" in f.message


def test_swapped_ps1_r_and_i_are_flagged_as_swapped(catalog):
    df = catalog.copy()
    df[["mag_ps1_r", "mag_ps1_i"]] = catalog[["mag_ps1_i", "mag_ps1_r"]].to_numpy()
    df[["err_ps1_r", "err_ps1_i"]] = catalog[["err_ps1_i", "err_ps1_r"]].to_numpy()
    report = photsys.check_photometry(df)
    found = {f.band: f for f in report.findings}
    assert set(found) == {"ps1_r", "ps1_i"}
    assert found["ps1_r"].cause == found["ps1_i"].cause == "swapped"
    assert found["ps1_r"].partner == "ps1_i" and found["ps1_i"].partner == "ps1_r"
    assert found["ps1_r"].offset < 0 < found["ps1_i"].offset  # r holds the redder i: brighter relative to G
    assert "mag_ps1_r" in found["ps1_r"].message and "mag_ps1_i" in found["ps1_r"].message


def test_fluxes_and_reference_band_offsets(catalog):
    df = catalog.copy()
    vega = df["mag_unwise_w1"] - AB_MINUS_VEGA["unwise_w1"]
    df["mag_unwise_w1"] = 10 ** (-0.4 * (vega - 22.5))  # unWISE Vega nanomaggies, as the archive serves them
    (f,) = photsys.check_photometry(df).findings
    assert (f.band, f.cause) == ("unwise_w1", "flux_instead_of_magnitude")

    df = catalog.copy()
    df["mag_gaia_g"] = df["mag_gaia_g"] + 0.5  # every colour relative to G is then 0.5 mag too blue
    report = photsys.check_photometry(df)
    assert [f.band for f in report.findings] == ["gaia_g"]
    assert abs(report.findings[0].offset - 0.5) < 0.05 and report.findings[0].cause == "zero_point"
    assert all(abs(b.offset) < 0.1 for b in report.bands if b.band != "gaia_g")


def test_band_with_too_few_stars_is_not_checked(catalog):
    df = catalog.copy()
    sel = _selected(df).to_numpy()
    keep = np.flatnonzero(sel & np.isfinite(df["mag_unwise_w1"].to_numpy()))[:20]
    w1 = np.full(len(df), np.nan)
    w1[keep] = df["mag_unwise_w1"].to_numpy()[keep] - AB_MINUS_VEGA["unwise_w1"]  # wrong, but too few to judge
    df["mag_unwise_w1"] = w1
    report = photsys.check_photometry(df)
    b = _by_band(report)["unwise_w1"]
    assert (b.status, b.n_stars, b.offset) == ("not checked", 20, None)
    assert report.findings == []


def test_enforce_warns_and_strict_raises_naming_file_and_column(catalog, caplog):
    df = catalog.copy()
    df["mag_tmass_ks"] = df["mag_tmass_ks"] + AB_MINUS_VEGA["tmass_ks"]
    report = photsys.check_photometry(df)
    where = "results/catalog/stars"
    with caplog.at_level(logging.WARNING, logger="ddstars.catalog.photsys"):
        out = photsys.enforce(report, strict=False, where=where)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "ddstars.catalog.photsys"]
    assert len(warnings) == 1 and where in warnings[0].getMessage() and "mag_tmass_ks" in warnings[0].getMessage()
    assert json.loads(json.dumps(out))["findings"][0]["column"] == "mag_tmass_ks" and out["ok"] is False
    with pytest.raises(DataError, match=r"results/catalog/stars.*mag_tmass_ks"):
        photsys.enforce(report, strict=True, where=where)
    assert photsys.enforce(photsys.check_photometry(catalog), strict=True, where=where)["ok"] is True


def test_a_catalog_with_real_stars_colours_passes_through_the_published_reference(catalog):
    """Real stars' colours differ from the simulated sky's by up to 0.26 mag (H, W2): a catalog whose photometry
    is the published model's (learned from real stars) at each star's θ and prior E must pass, and unWISE in Vega
    must still be caught."""
    from ddstars.model.published import load_published

    pub = load_published()
    theta = catalog[["teff", "logg", "feh"]].to_numpy(float)
    e = catalog["ebv_prior"].to_numpy(float)
    rng = np.random.default_rng(3)
    real = catalog.copy()
    mags = pub.predict_apparent(theta, 10.0, e) + rng.normal(0, 0.02, (len(real), len(BANDS)))
    for i, b in enumerate(BANDS):
        real[f"mag_{b.name}"] = np.where(np.isfinite(catalog[f"mag_{b.name}"]), mags[:, i], np.nan)
    sim_only = photsys.check_photometry(real, references=("locus",))
    assert sim_only.findings  # the simulated sky's locus alone would flag real colours
    report = photsys.check_photometry(real)
    assert report.findings == []
    assert {b.reference for b in report.bands if b.status == "ok"} >= {"published"}
    vega = real.copy()
    for b in ("unwise_w1", "unwise_w2"):
        vega[f"mag_{b}"] -= AB_MINUS_VEGA[b]
    flagged = {f.band: f.cause for f in photsys.check_photometry(vega).findings}
    assert flagged == {"unwise_w1": "vega_instead_of_ab", "unwise_w2": "vega_instead_of_ab"}
