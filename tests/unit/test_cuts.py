"""Survey quality cuts at their boundary values, and against the simulated sky's truth flags."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ddstars.catalog import cuts
from ddstars.errors import SchemaError


def _next_up(x: float) -> float:
    return float(np.nextafter(x, np.inf))


def _sigma_with_floored(target: float, floor: float) -> float:
    """A float64 sigma whose floored value sqrt(sigma**2 + floor**2) is exactly ``target``."""
    s = np.sqrt(target**2 - floor**2)
    for _ in range(200):
        f = np.sqrt(s**2 + floor**2)
        if f == target:
            return float(s)
        s = np.nextafter(s, -np.inf if f > target else np.inf)
    raise AssertionError("no float64 sigma floors exactly to the target")


def _check_tally(res: cuts.CutResult, n: int) -> None:
    t = res.tally
    assert t.n_in == n and t.n_kept + t.n_removed == n
    assert t.n_kept == int(res.keep.sum())
    assert t.n_removed == int(res.fails.any(axis=1).sum())
    for c in t.cuts:
        assert c.n_in == n and c.n_out == n - c.removed and c.removed == int(res.fails[c.name].sum())
    json.dumps(t.to_dict())


# --------------------------------------------------------------------------------------------- Gaia
def _gaia(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {
        "visibility_periods_used": [12] * n,
        "astrometric_chi2_al": [100.0] * n,
        "astrometric_n_good_obs_al": [105] * n,
        "phot_g_n_obs": [100] * n,
        "phot_g_mean_mag": [15.0] * n,
    }
    return pd.DataFrame(base | cols)


def test_gaia_visibility_periods_and_g_n_obs_boundaries():
    res = gaia_res = cuts.gaia_cuts(_gaia(visibility_periods_used=[8, 9, 12, 12], phot_g_n_obs=[100, 100, 2, 3]))
    assert res.keep.tolist() == [False, True, False, True]
    assert gaia_res.tally.removed("visibility_periods_used") == 1
    assert gaia_res.tally.removed("phot_g_n_obs") == 1
    _check_tally(res, 4)


def test_gaia_arenou_chi2_boundary():
    # n_good - 5 = 100, so the ratio is chi2/100; at G >= 19.5 the threshold is exactly 1.44
    # (144.0/100.0 is the double nearest 1.44, as is the literal 1.44 * 1.0).
    df = _gaia(
        astrometric_chi2_al=[144.0, 143.9, 144.0, 210.0, 210.0],
        phot_g_mean_mag=[19.5, 19.5, 20.5, 18.5, 19.5],
    )
    assert 144.0 / 100.0 == cuts.arenou_threshold(np.array([19.5]))[0] == cuts.arenou_threshold(np.array([21.0]))[0]
    res = cuts.gaia_cuts(df)
    # ratio == threshold fails (strict <); bright stars get 1.44 e^(-0.4 (G - 19.5)): 2.1 < 2.148 at G = 18.5.
    assert res.keep.tolist() == [False, True, False, True, False]
    assert res.tally.removed("astrometric_chi2") == 3
    _check_tally(res, 5)


def test_gaia_missing_g_and_bad_dof():
    res = cuts.gaia_cuts(_gaia(phot_g_mean_mag=[np.nan, 15.0], astrometric_n_good_obs_al=[105, 5]))
    assert res.keep.tolist() == [False, False]
    assert res.fails["g_missing"].tolist() == [True, False]
    assert res.fails["astrometric_chi2"].tolist() == [False, True]


def test_gaia_photometry_errors():
    df = pd.DataFrame(
        {
            "phot_g_mean_mag": [15.0],
            "phot_g_mean_flux_over_error": [1000.0],
            "phot_bp_mean_mag": [np.nan],
            "phot_bp_mean_flux_over_error": [np.nan],
            "phot_rp_mean_mag": [14.0],
            "phot_rp_mean_flux_over_error": [2.5 / np.log(10) / 0.01],
        }
    )
    ph = cuts.gaia_photometry(df)
    assert ph.err.loc[0, "gaia_g"] == pytest.approx(1.0857362 / 1000.0)
    assert ph.err.loc[0, "gaia_rp"] == pytest.approx(0.01)
    assert ph.usable.loc[0].tolist() == [True, False, True]
    assert np.isnan(ph.mag.loc[0, "gaia_bp"])


# --------------------------------------------------------------------------------------------- spectra
def _lamost(n: int, **cols) -> pd.DataFrame:
    base = {
        **{f"snr_{b}": [5.0] * n for b in "ugriz"},
        "qflag_chi2": ["good"] * n,
        "flag_singlestar": ["YES"] * n,
        "teff": [5000.0] * n,
        "teff_err": [50.0] * n,
        "logg": [4.0] * n,
        "logg_err": [0.1] * n,
        "feh": [0.0] * n,
        "feh_err": [0.05] * n,
    }
    base["snr_r"] = [50.0] * n
    return pd.DataFrame(base | cols)


def test_lamost_boundaries():
    df = _lamost(
        7,
        snr_r=[20.0, 20.01, 50, 50, 50, 50, 50],
        qflag_chi2=["good", "good", "bad", "good", "good", "good", "good"],
        flag_singlestar=["YES", "YES", "YES", "NO", "YES", "YES", "YES"],
        logg_err=[0.1, 0.1, 0.1, 0.1, 1e-5, 0.1, 0.1],
        feh=[0.0, 0.0, 0.0, 0.0, 0.0, np.nan, 0.0],
    )
    res = cuts.lamost_cuts(df)
    assert res.keep.tolist() == [False, True, False, False, False, False, True]
    assert res.tally.removed("low_snr") == 1
    assert res.tally.removed("label_error_too_small") == 1
    assert res.tally.removed("label_not_finite") == 1
    _check_tally(res, 7)


def test_lamost_bytes_flags_and_snr_in_other_band():
    df = _lamost(2, snr_r=[5.0, 5.0], snr_z=[21.0, 5.0], qflag_chi2=[b"good", b"good"], flag_singlestar=[b"YES"] * 2)
    assert cuts.lamost_cuts(df).keep.tolist() == [True, False]


def test_apogee_flags_benign_bits_kept():
    flags = [0, 1 | 8 | (1 << 13) | (1 << 18), 128, 1 << 23, 128 | (1 << 23), 0]
    param = [np.array([5000, 4.0, 1.2, 0.0, 0, 0, 0, 0, 0], dtype=np.float32) for _ in flags]
    param[5] = param[5].copy()
    param[5][3] = np.nan
    df = pd.DataFrame(
        {
            "ASPCAPFLAG": np.array(flags, dtype=np.int64),
            "TEFF_ERR": [50.0] * 6,
            "LOGG_ERR": [0.05] * 6,
            "M_H_ERR": [0.02] * 6,
            "PARAM": param,
        }
    )
    res = cuts.apogee_cuts(df)
    assert res.keep.tolist() == [True, True, False, False, False, False]
    assert res.tally.removed("star_warn") == 2 and res.tally.removed("star_bad") == 2
    _check_tally(res, 6)


def test_galah_boundaries():
    df = pd.DataFrame(
        {
            "flag_cannon": [0, 0, 1, 0],
            "snr_c1": [5.0] * 4,
            "snr_c2": [5.0] * 4,
            "snr_c3": [20.0, 20.01, 30.0, 30.0],
            "snr_c4": [5.0] * 4,
            "teff": [5000.0] * 4,
            "e_teff": [50.0, 50.0, 50.0, 0.0],
            "logg": [4.0] * 4,
            "e_logg": [0.1] * 4,
            "fe_h": [0.0] * 4,
            "e_fe_h": [0.05] * 4,
        }
    )
    res = cuts.galah_cuts(df)
    assert res.keep.tolist() == [False, True, False, False]
    _check_tally(res, 4)


def test_label_uncertainty_floor_then_max():
    # Floored sigma = sqrt(sigma^2 + floor^2) in float64, rejected when strictly greater than the maximum.
    s_t = _sigma_with_floored(200.0, 10.0)
    s_g = _sigma_with_floored(0.5, 0.05)
    sigma = np.array(
        [
            [s_t, 0.1, 0.1],  # floored Teff error exactly 200 K: kept
            [_next_up(s_t), 0.1, 0.1],  # just above: rejected
            [199.9, 0.1, 0.1],  # below 200 raw, above 200 after the floor: rejected
            [50.0, s_g, 0.1],  # floored log g exactly 0.5: kept
            [50.0, 0.1, 0.5],  # [Fe/H] above 0.5 after the 0.03 floor
            [50.0, np.nan, 0.1],
        ]
    )
    floored, res = cuts.label_uncertainty_cuts(sigma)
    assert floored[0, 0] == 200.0 and floored[1, 0] > 200.0 and floored[3, 1] == 0.5
    assert floored[4, 2] == pytest.approx(np.hypot(0.5, 0.03))
    assert res.keep.tolist() == [True, False, False, True, False, False]
    assert res.tally.removed("sigma_teff_max") == 2
    _check_tally(res, 6)


# --------------------------------------------------------------------------------------------- photometry
def test_apply_error_floor_boundary():
    s_edge = _sigma_with_floored(0.2, 0.02)
    sigma = np.array([0.01, s_edge, _next_up(s_edge), 0.2, np.nan])
    floored, ok = cuts.apply_error_floor(sigma)
    assert floored[0] == pytest.approx(np.hypot(0.01, 0.02))
    assert floored[1] == 0.2
    assert ok.tolist() == [True, True, False, False, False]
    assert np.isnan(floored[2:]).all()  # unobserved: NaN, not a sentinel


def test_band_photometry_error_floor_sets_nan_magnitudes():
    df = pd.DataFrame({"phot_g_mean_mag": [15.0, 20.0], "phot_g_mean_flux_over_error": [1000.0, 5.0]})
    for b in ("bp", "rp"):
        df[f"phot_{b}_mean_mag"] = [15.0, 20.0]
        df[f"phot_{b}_mean_flux_over_error"] = [1000.0, 1000.0]
    ph = cuts.gaia_photometry(df).with_error_floor()
    assert ph.usable["gaia_g"].tolist() == [True, False]
    assert np.isnan(ph.mag.loc[1, "gaia_g"]) and np.isnan(ph.err.loc[1, "gaia_g"])
    assert ph.err.loc[0, "gaia_g"] == pytest.approx(np.hypot(1.0857362 / 1000, 0.02))


def _tmass(rows: list[dict]) -> pd.DataFrame:
    base = {
        "j_m": 12.0,
        "h_m": 11.5,
        "k_m": 11.4,
        "j_msigcom": 0.02,
        "h_msigcom": 0.02,
        "k_msigcom": 0.02,
        "ph_qual": "AAA",
        "rd_flg": "222",
        "cc_flg": "000",
        "use_src": 1,
        "gal_contam": 0,
        "ext_key": pd.NA,
    }
    df = pd.DataFrame([base | r for r in rows])
    df["ext_key"] = df["ext_key"].astype("Int32")
    return df


def test_tmass_band_and_source_flags():
    df = _tmass(
        [
            {"ph_qual": "BBA", "rd_flg": "122"},  # J: B with rd 1 kept; H: B with rd 2 rejected; Ks: A kept
            {"ph_qual": "BAC", "rd_flg": "322", "cc_flg": "c00"},  # J: cc 'c' rejected; Ks: C rd 2 rejected
            {"use_src": 0},
            {"gal_contam": 1},
            {"ext_key": 5},
            {},  # null ext_key: kept
        ]
    )
    ph, ext = cuts.tmass_bands(df)
    assert ph.usable.to_numpy().tolist() == [
        [True, False, True],
        [False, True, False],
        [False, False, False],
        [False, False, False],
        [True, True, True],
        [True, True, True],
    ]
    assert ph.mag.loc[0, "tmass_ks"] == 11.4 and np.isnan(ph.mag.loc[0, "tmass_h"])
    assert ext.keep.tolist() == [True, True, True, True, False, True]
    _check_tally(ext, 6)


def _unwise(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {}
    for b in ("w1", "w2"):
        base |= {
            f"flux_{b}": [1000.0] * n,
            f"dflux_{b}": [10.0] * n,
            f"rchi2_{b}": [1.0] * n,
            f"fracflux_{b}": [0.9] * n,
            f"flags_unwise_{b}": [0] * n,
        }
    return pd.DataFrame(base | cols)


def test_unwise_boundaries_and_magnitudes():
    df = _unwise(
        rchi2_w1=np.array([5.0, 5.0001, 1, 1, 1, 1], dtype=np.float32),
        fracflux_w1=np.array([0.9, 0.9, 0.5, 0.5001, 0.9, 0.9], dtype=np.float32),
        flags_unwise_w1=[0, 0, 0, 0, 8, 0],
        flux_w1=[1000.0, 1000.0, 1000.0, 1000.0, 1000.0, -3.0],
    )
    ph = cuts.unwise_bands(df)
    assert ph.usable["unwise_w1"].tolist() == [True, False, False, True, False, False]
    assert ph.usable["unwise_w2"].all()
    assert ph.extra["mag_vega"].loc[0, "unwise_w1"] == pytest.approx(15.0)
    assert ph.mag.loc[0, "unwise_w1"] == pytest.approx(15.0 + 2.699)
    assert ph.mag.loc[0, "unwise_w2"] == pytest.approx(15.0 + 3.339)
    assert ph.err.loc[0, "unwise_w1"] == pytest.approx(2.5 / np.log(10) * 0.01)
    assert cuts.UNWISE_CATALOG_SYSTEM == "ab"


def test_ps1_presence_and_galaxy_cut():
    n = 4
    df = pd.DataFrame({f"n{b}": [10] * n for b in "grizy"})
    for b in "grizy":
        df[f"{b}MeanPSFMag"] = np.float32(16.1)
        df[f"{b}MeanPSFMagErr"] = np.float32(0.01)
        df[f"{b}MeanApMag"] = np.float32(16.1)
    df.loc[0, "rMeanApMag"] = np.float32(16.0)  # psf - ap = 0.1 (to float32 precision): kept
    df.loc[1, "rMeanApMag"] = np.float32(15.99)  # 0.11: the whole source is a galaxy
    df.loc[2, ["gMeanPSFMag", "gMeanPSFMagErr", "gMeanApMag"]] = -999.0
    df.loc[2, "ng"] = 0
    df.loc[3, "ny"] = 0  # no detections in y
    df.loc[3, "yMeanApMag"] = np.float32(15.0)  # ignored: y is absent
    for b in "grizy":
        df[f"n{b}"] = df[f"n{b}"].astype(np.int16)
    ph = cuts.ps1_bands(df)
    assert ph.extra["galaxy"].tolist() == [False, True, False, False]
    assert ph.usable.to_numpy().tolist() == [
        [True] * 5,
        [False] * 5,
        [False, True, True, True, True],
        [True, True, True, True, False],
    ]
    assert np.isnan(ph.mag.loc[2, "ps1_g"])  # never -999


# --------------------------------------------------------------------------------------------- schema
def test_missing_column_raises_schema_error():
    df = _gaia(phot_g_n_obs=[3]).drop(columns=["visibility_periods_used"])
    with pytest.raises(SchemaError, match=r"gaia_source.*visibility_periods_used.*found.*phot_g_n_obs"):
        cuts.gaia_cuts(df)
    with pytest.raises(SchemaError, match="tmass_psc.*cc_flg"):
        cuts.tmass_bands(_tmass([{}]).drop(columns=["cc_flg"]))


# --------------------------------------------------------------------------------------------- sky truth
def test_cuts_match_simulated_truth(small_sky):
    def read(name):
        return pq.read_table(small_sky["paths"][name]).to_pandas()

    truth = read("truth")

    gaia = read("gaia_source").set_index("source_id")
    g = cuts.gaia_cuts(gaia)
    stars_removed = ~g.keep.loc[truth["source_id"]].to_numpy()
    expect = truth[["fail_gaia_visibility_periods", "fail_gaia_astrometric_chi2", "fail_gaia_phot_g_n_obs"]].any(axis=1)
    assert stars_removed.sum() > 0
    np.testing.assert_array_equal(stars_removed, expect.to_numpy())

    lam = read("lamost_dr5_ddpayne").set_index("obsid")
    _, sig = cuts.label_uncertainty_cuts(cuts.lamost_sigma(lam))
    keep = cuts.lamost_cuts(lam).keep.to_numpy() & sig.keep.to_numpy()
    tl = truth[truth["lamost_id"] != -1]
    fail_cols = [c for c in truth.columns if c.startswith("fail_lamost_")]
    assert len(fail_cols) == 4
    removed = ~pd.Series(keep, index=lam.index).loc[tl["lamost_id"]].to_numpy()
    assert 0 < removed.sum() < len(removed)
    np.testing.assert_array_equal(removed, tl[fail_cols].any(axis=1).to_numpy())

    tm = read("tmass_psc").set_index("designation")
    ph, ext = cuts.tmass_bands(tm)
    ph = ph.with_error_floor()
    tt = truth[truth["tmass_designation"] != ""]
    got = ph.usable.loc[tt["tmass_designation"]].to_numpy()
    assert 0 < got.sum() < got.size and ext.tally.n_removed > 0
    np.testing.assert_array_equal(got, tt[["expect_tmass_j", "expect_tmass_h", "expect_tmass_ks"]].to_numpy())
    np.testing.assert_array_equal(~ext.keep.loc[tt["tmass_designation"]].to_numpy(), tt["fail_tmass_ext_key"])

    uw = read("unwise").set_index("unwise_objid")
    phw = cuts.unwise_bands(uw).with_error_floor()
    tw = truth[truth["unwise_objid"] != ""]
    got = phw.usable.loc[tw["unwise_objid"]].to_numpy()
    assert 0 < got.sum() < got.size
    np.testing.assert_array_equal(got, tw[["expect_unwise_w1", "expect_unwise_w2"]].to_numpy())


# --------------------------------------------------------------------------------------------- Gaia DR3 era
def _dr3(**cols):
    base = {
        "visibility_periods_used": [12] * 3,
        "ruwe": [1.0] * 3,
        "phot_g_n_obs": [200] * 3,
        "phot_g_mean_mag": [15.0] * 3,
    }
    return pd.DataFrame({**base, **cols})


def test_gaia_dr3_ruwe_cut_at_its_bound_and_a_missing_ruwe_fails():
    res = cuts.gaia_dr3_cuts(_dr3(ruwe=[1.3999, 1.4, np.nan]), "gaia_dr3_source")
    assert res.fails["ruwe"].tolist() == [False, True, True]
    assert res.tally.removed("ruwe") == 2
    assert cuts.gaia_dr3_cuts(_dr3(ruwe=[1.5] * 3), "t", ruwe_max=1.6).keep.all()


def test_bp_rp_excess_follows_riello_2021():
    # f(x) of Riello et al. (2021) Table 2, evaluated by hand in each colour range
    x = np.array([0.0, 0.4, 1.0, 4.0, 5.0])
    expected = [1.154360, 1.154360 + 0.033772 * 0.4 + 0.032277 * 0.16, 1.162004 + 0.011464 + 0.049255 - 0.005879]
    expected += [1.057572 + 0.140537 * 4.0, 1.057572 + 0.140537 * 5.0]
    np.testing.assert_allclose(cuts.bp_rp_excess_expected(x), expected, rtol=1e-12)
    np.testing.assert_allclose(
        cuts.bp_rp_excess_sigma([0.0, 20.0]), [0.0059898, 0.0059898 + 8.817481e-12 * 20**7.618399]
    )
    g, colour = 17.0, 1.0
    sigma = float(cuts.bp_rp_excess_sigma(g))
    c0 = float(cuts.bp_rp_excess_expected(colour))
    df = pd.DataFrame(
        {
            "phot_g_mean_mag": [g] * 4,
            "phot_bp_mean_mag": [g + 0.4, g + 0.4, g + 0.4, np.nan],
            "phot_rp_mean_mag": [g - 0.6] * 4,
            "phot_bp_rp_excess_factor": [c0 + 2.99 * sigma, c0 - 3.001 * sigma, c0 + 3.001 * sigma, c0 + 10 * sigma],
        }
    )
    assert cuts.gaia_dr3_excess_fails(df, "t", 3.0).tolist() == [False, True, True, False]  # no BP: nothing to drop


def test_parallax_zero_point_is_the_recipes_and_nan_where_it_is_not_valid():
    df = pd.DataFrame(
        {
            "phot_g_mean_mag": [15.0, 18.0, 12.0, 22.0, 15.0, 15.0],
            "nu_eff_used_in_astrometry": [1.5, 1.55, 1.6, 1.5, np.nan, 1.5],
            "pseudocolour": [np.nan, np.nan, np.nan, np.nan, 1.8, np.nan],
            "ecl_lat": [10.0, -30.0, 60.0, 10.0, 10.0, 10.0],
            "astrometric_params_solved": [31, 31, 31, 31, 95, 3],
        }
    )
    zp = cuts.gaia_dr3_parallax_zero_point(df, "gaia_dr3_source")
    # gaiadr3-zeropoint 0.1.0 for the first three (its own example values, run independently of this wrapper)
    np.testing.assert_allclose(zp[:3], [-0.042135, -0.027144, -0.034849], atol=2e-6)
    assert np.isnan(zp[3:]).all()  # G > 21; a 6-parameter pseudocolour beyond 1.72; a 2-parameter solution


def test_dr3_era_spectroscopic_cuts():
    apogee = pd.DataFrame(
        {
            "ASPCAPFLAG": [0, 0],
            "EXTRATARG": [0, 16],
            "TEFF_ERR": [50.0] * 2,
            "LOGG_ERR": [0.05] * 2,
            "M_H_ERR": [0.03] * 2,
            "PARAM": [np.array([5000.0, 4.0, 0.0, 0.1])] * 2,
        }
    )
    assert cuts.apogee_cuts(apogee, "apogee_dr17_allstar", duplicates=True).fails["duplicate"].tolist() == [False, True]
    assert "duplicate" not in cuts.apogee_cuts(apogee, "apogee_dr16_allstar").fails
    galah = pd.DataFrame(
        {
            "flag_sp": [0, 1, 0],
            **{f"snr_px_ccd{i}": [30.01, 30.01, 30.0] for i in range(1, 5)},
            **{c: [1.0] * 3 for c in ("teff", "e_teff", "logg", "e_logg", "fe_h", "e_fe_h")},
        }
    )
    res = cuts.galah_cuts(galah, "galah_dr4", "dr3")
    assert res.fails["flag_sp"].tolist() == [False, True, False]
    assert res.fails["low_snr"].tolist() == [False, False, True]  # snr_px_ccd3 > 30, strictly
    one_camera = galah.assign(snr_px_ccd3=[10.0, 10.0, 10.0], snr_px_ccd4=[50.0] * 3)
    assert cuts.galah_cuts(one_camera, "galah_dr4", "dr3").fails["low_snr"].all()  # only the red camera counts
