"""Zero-point offsets (weighted means, errors, modes) and the reddening-prior rules at their boundaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ddstars.catalog import offsets, reddening
from ddstars.errors import DataError


def _pairs(rng, n, offset, sig_s, sig_r):
    truth = np.column_stack([rng.uniform(4500, 6500, n), rng.uniform(1, 5, n), rng.uniform(-1, 0.3, n)])
    rows = []
    for survey, off, sig in (("lamost", offset, sig_s), ("galah", np.zeros(3), sig_r)):
        val = truth + off + rng.normal(size=(n, 3)) * sig
        rows.append(
            pd.DataFrame(
                {
                    "survey": survey,
                    "source_id": np.arange(n),
                    "teff": val[:, 0],
                    "logg": val[:, 1],
                    "feh": val[:, 2],
                    "sigma_teff_reported": sig[:, 0],
                    "sigma_logg_reported": sig[:, 1],
                    "sigma_feh_reported": sig[:, 2],
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_weighted_offset_and_its_error():
    rng = np.random.default_rng(3)
    n = 4000
    sig_s = rng.uniform(0.5, 2.0, (n, 1)) * np.array([50.0, 0.1, 0.05])
    sig_r = rng.uniform(0.5, 2.0, (n, 1)) * np.array([60.0, 0.12, 0.06])
    m = _pairs(rng, n, np.array([12.0, -0.03, 0.05]), sig_s, sig_r)
    res = offsets.measure_offsets(m, "galah", ["lamost"])
    for j, x in enumerate(offsets.LABELS):
        w = 1 / (sig_s[:, j] ** 2 + sig_r[:, j] ** 2)
        assert res["lamost"][x]["error"] == pytest.approx(1 / np.sqrt(w.sum()), rel=1e-12)
        assert res["lamost"][x]["n_pairs"] == n
        assert abs(res["lamost"][x]["value"] - [12.0, -0.03, 0.05][j]) < 4 * res["lamost"][x]["error"]
        assert 0.85 < res["lamost"][x]["chi2_dof"] < 1.15
    doc = offsets.offsets_document({"mode": "measure", "reference": "galah", "min_pairs": 30}, m)
    corrected = offsets.apply_offsets(m, doc)
    lam = corrected[corrected["survey"] == "lamost"]
    gal = corrected[corrected["survey"] == "galah"]
    assert abs(np.average(lam["teff"].to_numpy() - gal["teff"].to_numpy())) < 5
    assert doc["correction_added"]["lamost"][0] == pytest.approx(-res["lamost"]["teff"]["value"])


def test_offsets_need_enough_pairs_and_fixed_mode_uses_given_values():
    rng = np.random.default_rng(4)
    m = _pairs(rng, 10, np.zeros(3), np.full((10, 3), 1.0), np.full((10, 3), 1.0))
    with pytest.raises(DataError, match="only 10 stars shared by lamost and galah.*mode to 'fixed'"):
        offsets.offsets_document({"mode": "measure", "min_pairs": 30}, m)
    doc = offsets.offsets_document({"mode": "fixed", "fixed": {"lamost": [3.6, 0.014, -0.068]}}, m)
    assert doc["offsets"]["lamost"]["teff"]["value"] == 3.6 and doc["correction_added"]["lamost"][2] == 0.068
    assert doc["offsets"]["galah"]["feh"]["value"] == 0.0


def test_clipping_removes_an_outlier():
    # 100 pairs differing by exactly +-1 (sigma of the difference 1) plus one at +20.
    n = 101
    d = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    d[-1] = 20.0
    s = np.full(n, np.sqrt(0.5))
    frame = {
        "source_id": np.arange(n),
        "logg": 4.0,
        "feh": 0.0,
        "sigma_teff_reported": s,
        "sigma_logg_reported": s,
        "sigma_feh_reported": s,
    }
    m = pd.concat(
        [
            pd.DataFrame({**frame, "survey": "lamost", "teff": 5000.0 + d}),
            pd.DataFrame({**frame, "survey": "galah", "teff": 5000.0}),
        ],
        ignore_index=True,
    )
    plain = offsets.measure_offsets(m, "galah", ["lamost"])["lamost"]["teff"]
    clipped = offsets.measure_offsets(m, "galah", ["lamost"], clip_sigma=3)["lamost"]["teff"]
    # even count of +-1 among the first 100: mean 0; the outlier moves the plain mean to 20/101
    assert plain["value"] == pytest.approx(20 / 101) and plain["n_pairs"] == 101
    assert clipped["value"] == pytest.approx(0.0, abs=1e-9) and clipped["n_pairs"] == 100


@pytest.fixture(scope="module")
def maps(small_maps):
    return small_maps


def test_reddening_rules_at_their_boundaries(maps):
    # At b = 90 deg the layer edge |sin b| / 0.4 is exactly 2.5 mas.
    # Star 0: parallax + 5 sigma = 2.5 exactly -> not SFD (strict <); parallax S/N exactly 5 -> not Bayestar
    # (strict >) -> default. Star 1: a hair beyond the layer -> SFD. Star 2: S/N 5.0001 near the plane, in
    # the map -> Bayestar. Star 3: the same far south (dec < -30 deg, outside the Bayestar footprint) ->
    # default. Star 4: no parallax -> default.
    b = np.array([90.0, 90.0, 2.0, 2.0, 2.0])
    glon = np.array([0.0, 0.0, 120.0, 330.0, 120.0])
    plx = np.array([1.25, 1.25 - 1e-9, 2.0, 2.0, np.nan])
    sig = np.array([0.25, 0.25, 2.0 / 5.0001, 2.0 / 5.0001, np.nan])
    assert plx[0] + 5 * sig[0] == 2.5 and plx[0] / sig[0] == 5.0
    prior = reddening.reddening_prior(glon, b, plx, sig, maps["sfd_dir"], maps["bayestar"], {"seed": 1})
    from ddstars.dustmaps_io import query_sfd

    sfd = query_sfd(maps["sfd_dir"], glon, b)
    assert prior["r_source"].tolist() == ["default", "sfd", "bayestar", "default", "default"]
    np.testing.assert_allclose(prior["ebv_sfd"], sfd)
    np.testing.assert_allclose(prior["ebv_prior"].to_numpy()[[0, 1, 3, 4]], [0.0, sfd[1], 0.0, 0.0])
    np.testing.assert_allclose(prior["sigma_ebv_prior"].iloc[1], np.hypot(0.1 * sfd[1], 0.02))
    np.testing.assert_allclose(prior["sigma_ebv_prior"].to_numpy()[[0, 3, 4]], np.hypot(sfd[[0, 3, 4]], 0.02))
    assert prior["sigma_ebv_prior"].iloc[2] >= np.hypot(0.1 * prior["ebv_prior"].iloc[2], 0.02)
    again = reddening.reddening_prior(glon, b, plx, sig, maps["sfd_dir"], maps["bayestar"], {"seed": 1})
    pd.testing.assert_frame_equal(prior, again)  # seeded: identical


def test_bayestar_estimate_is_mean_and_spread_of_draws(maps):
    from ddstars.dustmaps_io import query_bayestar

    n = 400
    glon, b = np.full(n, 120.0), np.full(n, 1.0)
    plx, sig = np.full(n, 1.0), np.full(n, 0.05)  # ~1 kpc, S/N 20
    prior = reddening.reddening_prior(glon, b, plx, sig, maps["sfd_dir"], maps["bayestar"], {"seed": 2})
    assert (prior["r_source"] == "bayestar").all()
    samples = query_bayestar(maps["bayestar"], 120.0, 1.0, np.full(2000, 1.0), mode="random_sample", rng_seed=0)
    # Mean over stars of the per-star mean ~ map mean at 1 kpc (distance spread is small).
    assert abs(prior["ebv_prior"].mean() - samples.mean()) < 0.05 * samples.mean() + 0.01


def test_dust_map_problems_name_the_file(maps, tmp_path):
    import shutil

    import h5py

    from ddstars.errors import DataError, DustMapMissingError

    one = (np.array([120.0]), np.array([1.0]), np.array([1.0]), np.array([0.05]))
    with pytest.raises(DustMapMissingError, match="nowhere"):
        reddening.reddening_prior(*one, tmp_path / "nowhere", maps["bayestar"])
    with pytest.raises(DustMapMissingError, match="missing.h5"):
        reddening.reddening_prior(*one, maps["sfd_dir"], tmp_path / "missing.h5")
    bad = tmp_path / "bayestar_bad.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("pixel_info", data=np.zeros(3))
    with pytest.raises(DataError, match="bayestar_bad.h5 lacks samples, best_fit"):
        reddening.reddening_prior(*one, maps["sfd_dir"], bad)
    sfd_bad = tmp_path / "sfd_bad"
    shutil.copytree(maps["sfd_dir"], sfd_bad)
    for name in ("SFD_dust_4096_ngp.fits", "SFD_dust_4096_sgp.fits"):
        (sfd_bad / name).write_bytes(b"SIMPLE  = not a FITS file")
    with pytest.raises(DataError, match="sfd_bad is not in the SFD layout"):
        reddening.reddening_prior(*one, sfd_bad, maps["bayestar"])
