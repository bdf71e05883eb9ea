"""Tests of the inference's distance and reddening priors on the μ grid (ddstars.inference.priors)."""

from __future__ import annotations

import copy

import healpy as hp
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from conftest import default_config

from ddstars.dustmaps_io import query_bayestar, query_sfd
from ddstars.errors import ConfigError, DataError
from ddstars.galactic import JURIC2008
from ddstars.inference import priors
from ddstars.inference.priors import distance_log_prior, dust_prior_tables
from ddstars.simulate.dust import DustModel, write_bayestar_like, write_sfd_like

MU = np.arange(-2.0, 20.001, 0.1)
FLOOR, REL = 0.02, 0.1  # catalog.reddening defaults: sigma_floor, relative_sigma


def random_sky(n, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 360.0, n), np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))


# ---------------------------------------------------------------------- distance prior
@pytest.mark.parametrize("galaxy", ["juric", "simulated"])
def test_distance_prior_normalised(galaxy):
    gal = JURIC2008 if galaxy == "juric" else default_config()["simulate"]["galaxy"]
    lon, b = random_sky(50, seed=1)
    for mu in (MU, np.arange(3.0, 16.0, 0.05)):
        lnp = distance_log_prior(lon, b, mu, gal)
        assert lnp.shape == (50, mu.size) and np.all(np.isfinite(lnp))
        np.testing.assert_allclose(np.exp(lnp).sum(axis=1) * (mu[1] - mu[0]), 1.0, rtol=1e-12)


def test_distance_prior_chunks_agree(monkeypatch):
    lon, b = random_sky(37, seed=2)
    whole = distance_log_prior(lon, b, MU, JURIC2008)
    monkeypatch.setattr(priors, "MAX_CELLS", 3 * MU.size + 5)  # chunks of 3 stars
    np.testing.assert_array_equal(distance_log_prior(lon, b, MU, JURIC2008), whole)


@pytest.mark.parametrize("b_pole", [90.0, -90.0])
def test_distance_prior_at_pole_matches_juric_formula(b_pole):
    # Juric et al. (2008) Eqs. 22-24, normalised to the thin disk in the mid-plane at R_sun: toward a pole
    # R = R_sun and the Galactocentric height is z = Z_sun ± d; the halo carries our 1 kpc core.
    r_sun, z_sun, h1, f2, h2, f_h, q, n_h, rc = 8.0, 0.025, 0.3, 0.12, 0.9, 0.0051, 0.64, 2.77, 1.0

    def rho_d3(mu):
        d = 10 ** (mu / 5 - 2)
        z = z_sun + np.sign(b_pole) * d
        thin = np.exp(-abs(z) / h1)
        thick = f2 * np.exp(-abs(z) / h2)
        halo = f_h * ((r_sun**2 + rc**2) / (r_sun**2 + (z / q) ** 2 + rc**2)) ** (n_h / 2)
        return (thin + thick + halo) * d**3

    lnp = distance_log_prior([123.0], [b_pole], MU, JURIC2008)[0]
    for i, j in [(80, 120), (110, 140), (120, 160), (100, 200)]:  # 0.1-1 kpc, 0.6-2.5 kpc, 1-6.3 kpc, 0.4-63 kpc
        assert np.exp(lnp[i] - lnp[j]) == pytest.approx(rho_d3(MU[i]) / rho_d3(MU[j]), rel=1e-9)


def test_distance_prior_grows_as_d_cubed_nearby():
    # within 40 pc in the plane toward l = 90 deg, R and z hardly change: ln p rises by 3 ln(10)/5 per mag
    lnp = distance_log_prior([90.0], [0.0], MU, JURIC2008)[0]
    near = MU <= 3.0
    slope = np.diff(lnp[near]) / np.diff(MU[near])
    assert np.all(slope > 0)
    np.testing.assert_allclose(slope, 0.6 * np.log(10), rtol=2e-3)


def test_distance_prior_peaks_further_toward_the_centre():
    # a little off the plane (in the plane the anticentre's d^3 exp(-d/L1) peaks at 3 L1, near R_sun too)
    mu = np.arange(-2.0, 20.001, 0.02)
    for b in (3.0, 5.0, -5.0):
        lnp = distance_log_prior([0.0, 180.0], [b, b], mu, JURIC2008)
        peak_gc, peak_anti = mu[np.argmax(lnp, axis=1)]
        assert peak_gc > peak_anti + 0.3, b
        # and the centre's sightline peaks within ~1.5 kpc of the Galactic centre
        assert abs(10 ** (peak_gc / 5 - 2) - 8.0) < 1.5


def test_distance_prior_errors():
    with pytest.raises(DataError, match="mu_grid.*regular"):
        distance_log_prior([0.0], [0.0], np.array([0.0, 0.1, 0.3]), JURIC2008)
    with pytest.raises(DataError, match="mu_grid.*increasing"):
        distance_log_prior([0.0], [0.0], MU[::-1], JURIC2008)
    with pytest.raises(DataError, match="mu_grid"):
        distance_log_prior([0.0], [0.0], MU[None, :], JURIC2008)
    with pytest.raises(DataError, match="same length"):
        distance_log_prior([0.0, 1.0], [0.0], MU, JURIC2008)
    with pytest.raises(DataError, match="b_deg"):
        distance_log_prior([0.0], [95.0], MU, JURIC2008)
    with pytest.raises(DataError, match="l_deg must be finite"):
        distance_log_prior([np.nan], [5.0], MU, JURIC2008)
    gal = copy.deepcopy(JURIC2008)
    del gal["halo"]["flattening"]
    with pytest.raises(ConfigError, match="halo.flattening"):
        distance_log_prior([0.0], [0.0], MU, gal)


# ---------------------------------------------------------------------- dust prior
NSIDE = 8


@pytest.fixture(scope="module")
def dust():
    return DustModel()


@pytest.fixture(scope="module")
def maps(tmp_path_factory, dust):
    out = tmp_path_factory.mktemp("priors_maps")
    write_sfd_like(out / "sfd", dust, n_pix=128)
    bayestar = write_bayestar_like(
        out / "bayestar_sim.h5", dust, nside=NSIDE, n_samples=16, rng=np.random.default_rng(1)
    )
    return {"sfd": out / "sfd", "bayestar": bayestar}


def pixel_centre_dec(lon, b):
    ipix = hp.ang2pix(NSIDE, lon, b, nest=True, lonlat=True)
    lc, bc = hp.pix2ang(NSIDE, ipix, nest=True, lonlat=True)
    return SkyCoord(lc, bc, unit="deg", frame="galactic").icrs.dec.deg


@pytest.fixture(scope="module")
def sky(maps):
    lon, b = random_sky(400, seed=7)
    covered = pixel_centre_dec(lon, b) >= -30.0  # the simulated Bayestar19-like footprint
    lon, b, covered = lon[:60], b[:60], covered[:60]
    assert 10 < covered.sum() < 60
    return {"l": lon, "b": b, "covered": covered, "prior": dust_prior_tables(lon, b, MU, maps["sfd"], maps["bayestar"])}


def test_dust_prior_shapes_and_sources(sky):
    p = sky["prior"]
    n = sky["l"].size
    assert p["ebv"].shape == p["sigma_ebv"].shape == (n, MU.size) and p["source"].shape == (n,)
    np.testing.assert_array_equal(p["source"], np.where(sky["covered"], "bayestar", "sfd"))
    assert np.all(np.isfinite(p["ebv"])) and np.all(p["ebv"] >= 0)
    assert np.all(p["sigma_ebv"] >= FLOOR)
    # on the map, E0 and sigma grow with distance from 0 and the floor
    cov = sky["covered"]
    assert np.all(np.diff(p["ebv"][cov], axis=1) >= -1e-7)
    assert np.all(p["ebv"][cov, 0] < 1e-3) and np.allclose(p["sigma_ebv"][cov, 0], FLOOR, atol=1e-4)


def test_dust_prior_matches_the_map(sky, maps):
    # dustmaps interpolates each sample linearly in DM between the bin edges and scales it by d/d0 before the
    # first one, so the mean of its samples at d is E0(mu) for every mu up to the last edge
    cov = sky["covered"]
    lon, b, p = sky["l"][cov], sky["b"][cov], sky["prior"]
    mu = MU[(MU <= 19.0)]
    d = 10 ** (mu / 5 - 2)
    s = query_bayestar(maps["bayestar"], lon[:, None], b[:, None], d[None, :], mode="samples")  # (k, m, 16)
    np.testing.assert_allclose(p["ebv"][cov][:, : mu.size], s.mean(axis=2), rtol=1e-5, atol=1e-6)
    # sigma from the samples' spread at the bin edges and before the first edge (scaled by d/d0 there)
    at = (np.abs((mu - 4.0) / 0.5 - np.round((mu - 4.0) / 0.5)) < 1e-6) | (mu < 4.0)
    want = np.sqrt(s.std(axis=2) ** 2 + (REL * s.mean(axis=2)) ** 2 + FLOOR**2)
    np.testing.assert_allclose(p["sigma_ebv"][cov][:, : mu.size][:, at], want[:, at], rtol=1e-4, atol=1e-6)
    # beyond the last edge, constant
    far = p["ebv"][cov][:, MU >= 19.0]
    np.testing.assert_array_equal(far, np.broadcast_to(far[:, :1], far.shape))


def test_dust_prior_covers_the_true_reddening(sky, dust):
    # the map's pixels are ~7 deg wide: the truth at the star's exact (l, b) lies within the prior's spread
    cov = sky["covered"]
    lon, b, p = sky["l"][cov], sky["b"][cov], sky["prior"]
    pick = np.flatnonzero((MU >= 6.0) & (MU <= 17.0))[::5]
    d = 10 ** (MU[pick] / 5 - 2)
    e0, sig = p["ebv"][cov][:, pick], p["sigma_ebv"][cov][:, pick]
    truth = dust.ebv(lon[:, None], b[:, None], d[None, :])
    z = np.abs(e0 - truth) / sig
    assert (z <= 2).mean() > 0.95 and (z <= 1).mean() > 0.8  # 1.0 and 0.97 here
    # not vacuous: the reddening of another dust model is not covered as well
    other = DustModel(seed=2).ebv(lon[:, None], b[:, None], d[None, :])
    assert (np.abs(e0 - other) / sig <= 1).mean() < 0.3  # 0.07 here


def test_dust_prior_outside_bayestar_is_bounded_by_sfd(maps):
    lon, b = np.array([320.0, 100.0]), np.array([-50.0, 20.0])  # dec < -30 deg; inside the footprint
    assert pixel_centre_dec(lon, b)[0] < -30.0 < pixel_centre_dec(lon, b)[1]
    p = dust_prior_tables(lon, b, MU, maps["sfd"], maps["bayestar"])
    assert p["source"].tolist() == ["sfd", "bayestar"]
    sfd = query_sfd(maps["sfd"], lon, b)
    np.testing.assert_array_equal(p["ebv"][0], 0.0)
    np.testing.assert_allclose(p["sigma_ebv"][0], np.sqrt(sfd[0] ** 2 + FLOOR**2), rtol=1e-12)
    np.testing.assert_allclose(p["ebv_sfd"], sfd)
    # the options are those of catalog.reddening
    q = dust_prior_tables(lon, b, MU, maps["sfd"], maps["bayestar"], {"sigma_floor": 0.05, "batch": 1})
    np.testing.assert_allclose(q["sigma_ebv"][0], np.sqrt(sfd[0] ** 2 + 0.05**2), rtol=1e-12)
    np.testing.assert_allclose(q["ebv"], p["ebv"])
    assert q["sigma_ebv"][1].min() == pytest.approx(0.05, abs=1e-4)


def test_dust_prior_errors(maps):
    with pytest.raises(DataError, match="same length"):
        dust_prior_tables([0.0, 1.0], [0.0], MU, maps["sfd"], maps["bayestar"])
    with pytest.raises(DataError, match="mu_grid"):
        dust_prior_tables([0.0], [0.0], np.array([1.0, 1.0, 2.0]), maps["sfd"], maps["bayestar"])
