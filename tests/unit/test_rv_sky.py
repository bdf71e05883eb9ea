"""The sky with varying dust (simulate.dust.rv): the R_V field, and stars reddened through F99 at their own R_V."""

from __future__ import annotations

import copy

import healpy as hp
import numpy as np
import pandas as pd
import pytest
from conftest import sky_paths, small_config
from scipy.stats import spearmanr

from ddstars.bands import BAND_NAMES
from ddstars.simulate.rv import RVField, RVPhotometry
from ddstars.synphot import BCTable, Photometer


def test_the_field_has_the_configured_mean_scatter_and_correlation_length():
    field = RVField(mean=3.1, scatter=0.3, scale_deg=10.0, seed=5)
    m = field.map
    assert abs(m.mean() - 3.1) < 0.01 and abs(m.std() - 0.3) < 0.01  # clipping at 4σ barely matters
    assert m.min() >= 3.1 - 1.2 - 1e-9 and m.max() <= 3.1 + 1.2 + 1e-9
    # neighbours 2° apart are alike, points 60° apart are not
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(0, 360, 4000), np.degrees(np.arcsin(rng.uniform(-1, 1, 4000)))
    near = field.at(lon + 2.0 / np.cos(np.radians(lat)).clip(0.2), lat)
    far = field.at(lon + 60.0, lat)
    here = field.at(lon, lat)
    assert np.corrcoef(here, near)[0, 1] > 0.9 and abs(np.corrcoef(here, far)[0, 1]) < 0.3
    assert not np.array_equal(m, RVField(3.1, 0.3, 10.0, seed=6).map)  # the seed draws the field
    assert np.array_equal(RVField(3.1, 0.0).at(lon, lat), np.full(4000, 3.1))  # off: one law


def test_interpolated_photometry_equals_the_exact_law_at_the_star_s_rv():
    field = RVField(mean=3.1, scatter=0.3, seed=1)
    phot = RVPhotometry(field, norm=1.0)
    teff, feh, logl = np.array([4200.0, 5800.0, 7500.0]), np.array([-1.0, 0.0, 0.3]), np.zeros(3)
    ebv, rv = np.array([0.5, 1.0, 2.0]), np.array([2.63, 3.1, 3.77])
    got = phot.absolute_magnitudes(teff, feh, logl, ebv, rv)
    for i in range(3):  # exact tables at each star's own R_V
        exact = BCTable.build(Photometer(rv=float(rv[i]), norm=1.0))
        want = exact.absolute_magnitudes(teff[i : i + 1], feh[i : i + 1], logl[:1], ebv[i : i + 1])[0]
        assert np.abs(got[i] - want).max() < 2e-3, (i, np.abs(got[i] - want).max())
    # higher R_V: more extinction in the infrared bands relative to the optical at the same E(B-V)
    r_lo = phot.reddening_vector(teff[:1], feh[:1], np.array([2.8]))[0]
    r_hi = phot.reddening_vector(teff[:1], feh[:1], np.array([3.4]))[0]
    ks = BAND_NAMES.index("tmass_ks")
    assert r_hi[ks] > r_lo[ks]
    deriv = phot.rv_derivative(teff[:1], feh[:1], np.array([3.1]))[0]
    assert np.allclose(deriv, (r_hi - r_lo) / 0.6, atol=0.05 * np.abs(deriv).max())


@pytest.fixture(scope="module")
def rv_sky(tmp_path_factory, sky_models):
    from ddstars.simulate.sky import Models, generate

    cfg = copy.deepcopy(small_config(n_stars=3000)["simulate"])
    cfg["dust"]["rv"] = {"mean": 3.1, "scatter": 0.3, "scale_deg": 10.0}
    models = Models(sky_models.grid, sky_models.bc, sky_models.dust, *Models.build_rv(cfg))
    out = tmp_path_factory.mktemp("rvsky")
    generate(cfg, sky_paths(out), models=models)
    return cfg, pd.read_parquet(out / "truth.parquet"), models


def test_each_star_is_reddened_at_the_r_v_of_its_sightline(rv_sky):
    cfg, truth, models = rv_sky
    field = RVField.from_config(cfg)
    assert np.allclose(truth["true_rv"], field.at(truth["l"].to_numpy(), truth["b"].to_numpy()))
    assert 0.2 < truth["true_rv"].std() < 0.4
    # the per-band extinction is the exact law's at the star's R_V (a few stars checked against exact tables)
    red = truth[truth["true_ebv"] > 0.3].head(3)
    assert len(red) == 3
    for _, s in red.iterrows():
        exact = BCTable.build(Photometer(rv=float(s["true_rv"]), norm=cfg["photometry"]["extinction_norm"]))
        a = exact.absolute_magnitudes(s["true_teff"], s["true_feh"], s["log_l"], s["true_ebv"]) - (
            exact.absolute_magnitudes(s["true_teff"], s["true_feh"], s["log_l"], 0.0)
        )
        got = np.array([s[f"true_ext_{b}"] for b in BAND_NAMES])
        assert np.abs(a - got).max() < 2e-3
    # the reddening's colour follows R_V: at fixed E, E(BP-Ks)/E rises with R_V (Spearman over reddened stars)
    red = truth[truth["true_ebv"] > 0.1]
    ratio = (red["true_ext_gaia_bp"] - red["true_ext_tmass_ks"]) / red["true_ebv"]
    a_ks = red["true_ext_tmass_ks"] / red["true_ebv"]
    assert spearmanr(a_ks, red["true_rv"]).statistic > 0.8
    assert np.isfinite(ratio).all()
    assert hp.npix2nside(len(models.rv_field.map)) == 64
