"""Tests of the simulated 3D dust model, the SFD/Bayestar-like map writers and dustmaps_io."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import healpy as hp
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from scipy.integrate import quad

from ddstars.dustmaps_io import configure_dustmaps, query_bayestar, query_sfd
from ddstars.errors import ConfigError, DustMapMissingError
from ddstars.simulate.dust import DustModel, write_bayestar_like, write_sfd_like

H, EBV, ZSUN = 0.12, 0.4, 0.02


def random_sky(n, seed, d_range=None):
    rng = np.random.default_rng(seed)
    lon = rng.uniform(0.0, 360.0, n)
    b = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    if d_range is None:
        return lon, b
    return lon, b, 10 ** rng.uniform(np.log10(d_range[0]), np.log10(d_range[1]), n)


def unit_vector(l_deg, b_deg):
    lr, br = np.radians(l_deg), np.radians(b_deg)
    return np.array([np.cos(br) * np.cos(lr), np.cos(br) * np.sin(lr), np.sin(br)])


@pytest.fixture(scope="module")
def model():
    return DustModel()


@pytest.fixture(scope="module")
def smooth():
    return DustModel(clump_amplitude=0.0)


# ---------------------------------------------------------------------- model
def test_vertical_column_matches_exponential_disk(smooth):
    # Sun at z_sun above the mid-plane, rho = A exp(-|Z|/h) with A = ebv exp(z_sun/h):
    # upward column = ebv h; downward = A h (1 - exp(-z_sun/h)) + A h = ebv h (2 exp(z_sun/h) - 1).
    up = smooth.ebv_infinity(123.0, 90.0)
    down = smooth.ebv_infinity(40.0, -90.0)
    assert up == pytest.approx(EBV * H, rel=5e-3)
    assert down == pytest.approx(EBV * H * (2 * np.exp(ZSUN / H) - 1), rel=5e-3)
    assert down / up == pytest.approx(2 * np.exp(ZSUN / H) - 1, rel=1e-3)  # not symmetric


def test_in_plane_reddening_grows_as_ebv_per_kpc(smooth):
    d = np.array([0.01, 0.05, 0.1, 0.2])
    assert smooth.ebv(90.0, 0.0, d) == pytest.approx(EBV * d, rel=1e-2)
    # toward the Galactic centre the exponential disk rises: E > ebv d, by ~d/(2L)
    assert smooth.ebv(0.0, 0.0, 0.6) == pytest.approx(EBV * 3.0 * (np.exp(0.6 / 3.0) - 1), rel=1e-3)


def test_ebv_matches_adaptive_quadrature_of_density(model):
    lon, b, d = random_sky(6, seed=11, d_range=(0.02, 8.0))
    b[:2] = [0.5, -1.5]  # long paths through the disk
    got = model.ebv(lon, b, d)
    for i in range(lon.size):
        u = unit_vector(lon[i], b[i])
        ref, _ = quad(
            lambda t, u=u: float(model.density(*(t * u))),
            0.0,
            d[i],
            limit=2000,
            epsrel=1e-7,
        )
        assert got[i] == pytest.approx(ref, rel=2e-3), (lon[i], b[i], d[i])


def test_ebv_non_decreasing_and_zero_at_origin(model):
    lon, b = random_sky(200, seed=3)
    grid = np.concatenate([[0.0], np.geomspace(1e-3, 40.0, 60)])
    prof = model.ebv_profile(lon, b, grid)
    assert prof.shape == (200, grid.size)
    assert np.all(prof[:, 0] == 0.0)
    assert np.all(np.diff(prof, axis=1) >= 0.0)
    assert np.all(prof[:, 1:] > 0.0)
    # the profile agrees with point evaluations, and with ebv_infinity at d >= d_max
    pts = model.ebv(
        np.repeat(lon[:20], 5),
        np.repeat(b[:20], 5),
        np.tile(grid[[3, 20, 40, 50, 60]], 20),
    )
    assert pts.reshape(20, 5) == pytest.approx(prof[:20, [3, 20, 40, 50, 60]], rel=1e-3)
    assert prof[:, -1] == pytest.approx(model.ebv_infinity(lon, b), rel=1e-3)


def test_quadrature_converged(model):
    lon, b, d = random_sky(1500, seed=5, d_range=(0.005, 30.0))
    b[:300] = np.random.default_rng(6).uniform(-3.0, 3.0, 300)  # in-plane, up to 30 kpc
    e1 = model.ebv(lon, b, d)
    e2 = model.ebv(lon, b, d, refine=2)
    assert np.max(np.abs(e1 / e2 - 1)) < 5e-3
    assert np.median(np.abs(e1 / e2 - 1)) < 1e-4


def test_nan_and_shapes(model):
    out = model.ebv([10.0, np.nan, 10.0], [5.0, 5.0, 5.0], [1.0, 1.0, np.nan])
    assert np.isfinite(out[0]) and np.isnan(out[1]) and np.isnan(out[2])
    assert model.ebv(np.zeros((2, 3)), 10.0, 1.0).shape == (2, 3)
    assert np.ndim(model.ebv(10.0, 10.0, 1.0)) == 0
    assert model.ebv(10.0, 10.0, 0.0) == 0.0
    with pytest.raises(ValueError):
        model.ebv_profile(0.0, 0.0, [1.0, 0.5])


def test_deterministic_given_seed():
    lon, b, d = random_sky(300, seed=9, d_range=(0.05, 5.0))
    a1 = DustModel(seed=4).ebv(lon, b, d)
    a2 = DustModel(seed=4).ebv(lon, b, d)
    a3 = DustModel(seed=5).ebv(lon, b, d)
    np.testing.assert_array_equal(a1, a2)
    assert np.median(np.abs(a1 / a3 - 1)) > 0.02


def test_clumps_modulate_but_respect_floor(model, smooth):
    rng = np.random.default_rng(2)
    x, y, z = rng.uniform(-3, 3, (3, 20000)) * np.array([[1], [1], [0.1]])
    ratio = model.density(x, y, z) / smooth.density(x, y, z)
    assert ratio.min() >= 0.05
    assert 0.9 < ratio.mean() < 1.15
    assert 0.4 < ratio.std() < 0.8  # unit-variance sum times amplitude 0.6, a little clipped


# ---------------------------------------------------------------------- maps
@pytest.fixture(scope="module")
def sfd_dir(tmp_path_factory, model):
    d = tmp_path_factory.mktemp("sfd")
    write_sfd_like(d, model, n_pix=128)
    return d


@pytest.fixture(scope="module")
def bayestar_file(tmp_path_factory, model):
    path = tmp_path_factory.mktemp("bayestar") / "bayestar_sim.h5"
    write_bayestar_like(path, model, nside=8, n_samples=16, rng=np.random.default_rng(1))
    return path


def test_sfd_like_files_and_header(sfd_dir):
    from astropy.io import fits

    assert sorted(p.name for p in sfd_dir.iterdir()) == [
        "SFD_dust_4096_ngp.fits",
        "SFD_dust_4096_sgp.fits",
    ]
    for pole, sign in (("ngp", 1), ("sgp", -1)):
        with fits.open(sfd_dir / f"SFD_dust_4096_{pole}.fits") as hdul:
            h, data = hdul[0].header, hdul[0].data
        assert data.shape == (128, 128) and data.dtype == np.dtype(">f4")
        assert np.all(np.isfinite(data)) and data.min() > 0
        assert (h["CTYPE1"], h["CTYPE2"]) == ("GLON-ZEA", "GLAT-ZEA")
        assert h["CRVAL2"] == 90.0 * sign and h["CRPIX1"] == h["CRPIX2"] == 64.5
        assert h["CD2_2"] == pytest.approx(0.0395647 * 32) and h["CD1_1"] == -sign * h["CD2_2"]


def test_sfd_like_round_trip(sfd_dir, model):
    lon, b = random_sky(3000, seed=21)
    keep = np.abs(b) > 25.0  # away from pixel-scale structure near the plane
    lon, b = lon[keep][:500], b[keep][:500]
    got = query_sfd(sfd_dir, lon, b)
    rel = np.abs(got / model.ebv_infinity(lon, b) - 1)
    assert np.median(rel) < 0.02 and np.percentile(rel, 95) < 0.05
    # and the hemispheres are not swapped: north and south differ at the same |b|
    n, s = query_sfd(sfd_dir, [30.0, 30.0], [60.0, -60.0])
    assert n == pytest.approx(model.ebv_infinity(30.0, 60.0), rel=0.03)
    assert s == pytest.approx(model.ebv_infinity(30.0, -60.0), rel=0.03)


def pixel_centre_dec(nside, lon, b):
    ipix = hp.ang2pix(nside, lon, b, nest=True, lonlat=True)
    lc, bc = hp.pix2ang(nside, ipix, nest=True, lonlat=True)
    return SkyCoord(lc, bc, unit="deg", frame="galactic").icrs.dec.deg


def test_bayestar_like_layout(bayestar_file):
    import h5py

    with h5py.File(bayestar_file, "r") as f:
        pi = f["pixel_info"][:]
        edges = f["pixel_info"].attrs["DM_bin_edges"]
        samples, best = f["samples"][:], f["best_fit"][:]
    assert edges == pytest.approx(np.arange(4, 19.01, 0.5))
    assert samples.shape == (pi.size, 16, edges.size) and best.shape == (
        pi.size,
        edges.size,
    )
    assert samples.dtype == best.dtype == np.float32
    assert np.all(pi["nside"] == 8) and np.all(pi["converged"] == 1)
    assert np.all(pi["DM_reliable_min"] == 4.0) and np.all(pi["DM_reliable_max"] == 19.0)
    dec = pixel_centre_dec(8, *hp.pix2ang(8, pi["healpix_index"].astype(int), nest=True, lonlat=True))
    assert dec.min() >= -30.0 and 0.6 < pi.size / hp.nside2npix(8) < 0.9
    assert np.all(np.diff(samples, axis=2) >= 0) and np.all(np.diff(best, axis=1) >= 0)
    # the samples carry within-pixel variation (nside 8 pixels are ~7 deg wide)
    far = samples[:, :, -1]
    assert np.median(far.std(axis=1) / far.mean(axis=1)) > 0.05
    assert not [p for p in bayestar_file.parent.iterdir() if p.name != bayestar_file.name]


def test_bayestar_like_round_trip(bayestar_file, model):
    lon, b, d = random_sky(3000, seed=31, d_range=(0.03, 10.0))
    best = query_bayestar(bayestar_file, lon, b, d, mode="best")
    samples = query_bayestar(bayestar_file, lon, b, d, mode="samples")
    assert best.shape == (3000,) and samples.shape == (3000, 16)
    covered = pixel_centre_dec(8, lon, b) >= -30.0
    assert np.all(np.isnan(best[~covered])) and np.all(np.isfinite(best[covered]))
    assert np.all(np.isnan(best[SkyCoord(lon, b, unit="deg", frame="galactic").icrs.dec.deg < -40]))
    truth = model.ebv(lon, b, d)[covered]
    err = np.abs(best[covered] - truth)
    std = samples[covered].std(axis=1)
    assert (err <= 2 * std + 0.1 * truth + 0.02).mean() >= 0.95
    # the spread is honest: neither negligible nor inflated (about 0.58 and 0.87 here)
    assert 0.4 < (err <= std).mean() < 0.8
    assert (err <= 2 * std).mean() > 0.75
    # the tolerance is not vacuous: a map of a different model fails it
    other = DustModel(seed=2).ebv(lon, b, d)[covered]
    assert (np.abs(best[covered] - other) <= 2 * samples[covered].std(axis=1) + 0.1 * other + 0.02).mean() < 0.9


def test_bayestar_modes(bayestar_file):
    lon, b = (
        np.array([100.0, 30.0, 320.0]),
        np.array([20.0, -10.0, -50.0]),
    )  # last one: dec < -30
    prof = query_bayestar(bayestar_file, lon, b, mode="samples")
    assert prof.shape == (3, 16, 31) and np.all(np.isnan(prof[2]))
    best = query_bayestar(bayestar_file, lon, b, mode="best")
    assert best.shape == (3, 31)
    r1 = query_bayestar(bayestar_file, lon, b, [1.0, 2.0, 1.0], rng_seed=3)
    r2 = query_bayestar(bayestar_file, lon, b, [1.0, 2.0, 1.0], rng_seed=3)
    np.testing.assert_array_equal(r1, r2)
    s = query_bayestar(bayestar_file, lon, b, [1.0, 2.0, 1.0], mode="samples")
    assert np.all((r1[:2] >= s[:2].min(axis=1)) & (r1[:2] <= s[:2].max(axis=1)))
    pct = query_bayestar(bayestar_file, lon[:2], b[:2], 1.0, mode="percentile", pct=[16, 84])
    assert pct.shape == (2, 2) and np.all(pct[:, 1] >= pct[:, 0])
    with pytest.raises(ConfigError, match="mode"):
        query_bayestar(bayestar_file, lon, b, 1.0, mode="nearest")


def test_missing_maps_raise(tmp_path):
    with pytest.raises(DustMapMissingError, match="SFD_dust_4096_ngp.fits") as err:
        query_sfd(tmp_path / "nowhere", 0.0, 10.0)
    assert str(tmp_path / "nowhere") in str(err.value)
    (tmp_path / "SFD_dust_4096_ngp.fits").write_bytes(b"")
    with pytest.raises(DustMapMissingError, match="SFD_dust_4096_sgp.fits"):
        query_sfd(tmp_path, 0.0, 10.0)
    missing = tmp_path / "bayestar2019.h5"
    with pytest.raises(DustMapMissingError, match=str(missing)):
        query_bayestar(missing, 0.0, 10.0, 1.0)


def test_configure_dustmaps_keeps_home_untouched(tmp_path):
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    code = textwrap.dedent(
        f"""
        import warnings
        warnings.simplefilter("error")
        from ddstars.dustmaps_io import configure_dustmaps
        configure_dustmaps({str(data)!r})
        configure_dustmaps({str(data)!r})
        from dustmaps.config import config
        import dustmaps.sfd, dustmaps.bayestar
        from dustmaps.std_paths import data_dir
        config["scratch"] = 1  # dustmaps writes on set: must go to our file
        print(config.fname, data_dir())
        """
    )
    env = {**os.environ, "HOME": str(home)}
    env.pop("DUSTMAPS_CONFIG_FNAME", None)
    res = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    fname = data / "dustmapsrc.json"
    assert res.stdout.split() == [str(fname), str(data.resolve())]
    assert not (home / ".dustmapsrc").exists()  # (astropy may create .config, .cache)
    assert json.loads(fname.read_text()) == {
        "data_dir": str(data.resolve()),
        "scratch": 1,
    }


def test_configure_dustmaps_after_import(tmp_path, monkeypatch):
    import dustmaps.config

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DUSTMAPS_CONFIG_FNAME", "unused")
    monkeypatch.setattr(dustmaps.config.config, "fname", dustmaps.config.config.fname)
    monkeypatch.setattr(dustmaps.config.config, "_options", dict(dustmaps.config.config._options))
    monkeypatch.setattr(dustmaps.config, "config_fname", dustmaps.config.config_fname)
    fname = configure_dustmaps(tmp_path / "d")
    assert fname == Path(tmp_path / "d" / "dustmapsrc.json").resolve()
    assert os.environ["DUSTMAPS_CONFIG_FNAME"] == str(fname)
    assert dustmaps.config.config.fname == str(fname)
    assert dustmaps.config.config["data_dir"] == str((tmp_path / "d").resolve())
    assert not (tmp_path / "home").exists()
