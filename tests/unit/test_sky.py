"""The simulated sky against its configuration and its truth table.

Expected schemas and cut semantics are written here from the archives' documentation
(shared/reference/ARCHIVES.md §1-§8), independently of the generator's code.
"""

from __future__ import annotations

import healpy as hp
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import sky_paths, small_config

# Columns the catalog stage relies on, with Parquet (Arrow) types, per archive table.
EXPECTED_SCHEMA = {
    "gaia_source": {
        "source_id": "int64",
        "ra": "double",
        "dec": "double",
        "parallax": "double",
        "parallax_error": "double",
        "parallax_over_error": "float",
        "l": "double",
        "b": "double",
        "visibility_periods_used": "int16",
        "astrometric_chi2_al": "float",
        "astrometric_n_good_obs_al": "int32",
        "phot_g_n_obs": "int32",
        "phot_g_mean_mag": "float",
        "phot_g_mean_flux_over_error": "float",
        "phot_bp_mean_mag": "float",
        "phot_bp_mean_flux_over_error": "float",
        "phot_rp_mean_mag": "float",
        "phot_rp_mean_flux_over_error": "float",
    },
    "ps1_mean_object": {
        "objID": "int64",
        "raMean": "double",
        "decMean": "double",
        **{f"{b}MeanPSFMag": "float" for b in "grizy"},
        **{f"{b}MeanPSFMagErr": "float" for b in "grizy"},
        **{f"{b}MeanApMag": "float" for b in "grizy"},
        **{f"n{b}": "int16" for b in "grizy"},
        "qualityFlag": "int16",
        "objInfoFlag": "int32",
    },
    "tmass_psc": {
        "designation": "string",
        "ra": "double",
        "dec": "double",
        **{f"{b}_m": "float" for b in "jhk"},
        **{f"{b}_msigcom": "float" for b in "jhk"},
        "ph_qual": "string",
        "rd_flg": "string",
        "cc_flg": "string",
        "use_src": "int16",
        "gal_contam": "int16",
        "ext_key": "int32",
    },
    "unwise": {
        "unwise_objid": "string",
        "ra": "double",
        "dec": "double",
        **{f"{c}_{b}": "float" for c in ("flux", "dflux", "rchi2", "fracflux") for b in ("w1", "w2")},
        "flags_unwise_w1": "int32",
        "flags_unwise_w2": "int32",
        "primary": "int16",
    },
    "lamost_dr5_ddpayne": {
        "obsid": "int64",
        "ra": "double",
        "dec": "double",
        **{k: "float" for k in ("teff", "teff_err", "logg", "logg_err", "feh", "feh_err")},
        **{f"snr_{b}": "float" for b in "ugriz"},
        "qflag_chi2": "string",
        "flag_singlestar": "string",
    },
    "apogee_dr16_allstar": {
        "APOGEE_ID": "string",
        "RA": "double",
        "DEC": "double",
        "ASPCAPFLAG": "int64",
        "TEFF_ERR": "float",
        "LOGG_ERR": "float",
        "M_H_ERR": "float",
        "PARAM": "list<element: float>",
        "FPARAM": "list<element: float>",
        "FPARAM_COV": "list<element: float>",
        "GAIA_SOURCE_ID": "int64",
    },
    "galah_dr2": {
        "sobject_id": "int64",
        "star_id": "string",
        "ra": "double",
        "dec": "double",
        **{k: "float" for k in ("teff", "e_teff", "logg", "e_logg", "fe_h", "e_fe_h")},
        **{f"snr_c{i}": "float" for i in range(1, 5)},
        "flag_cannon": "int32",
    },
    "panstarrs1_best_neighbour": {
        "source_id": "int64",
        "original_ext_source_id": "int64",
        "angular_distance": "double",
    },
    "tmass_best_neighbour": {"source_id": "int64", "original_ext_source_id": "string", "angular_distance": "double"},
}


def read(sky, name) -> pd.DataFrame:
    return pq.read_table(sky["paths"][name]).to_pandas()


def within_binomial(k: int, n: int, p: float, nsig: float = 4.0) -> bool:
    return abs(k - n * p) <= nsig * np.sqrt(n * p * (1 - p)) + 1


@pytest.mark.parametrize("table", sorted(EXPECTED_SCHEMA))
def test_table_schema_and_dtypes(small_sky, table):
    schema = pq.read_schema(small_sky["paths"][table])
    types = {f.name: str(f.type) for f in schema}
    for col, typ in EXPECTED_SCHEMA[table].items():
        assert col in types, f"{table}: column {col} missing"
        assert types[col] == typ, f"{table}.{col}: {types[col]} != {typ}"
    assert pq.read_metadata(small_sky["paths"][table]).num_rows > 0


def test_row_counts_and_chunks(small_sky):
    truth = read(small_sky, "truth")
    cfg = small_sky["cfg"]
    assert len(truth) == cfg["n_stars"]
    assert truth["star_id"].is_unique and truth["source_id"].is_unique
    # Two chunks were written (two row groups), and ids stay unique across them.
    assert pq.read_metadata(small_sky["paths"]["truth"]).num_row_groups == 2
    gaia = read(small_sky, "gaia_source")
    assert gaia["source_id"].is_unique
    # Every star has a Gaia source; the extra rows are unrelated neighbours at the configured rate.
    k = len(gaia) - len(truth)
    assert within_binomial(k, len(truth), cfg["astrometry"]["neighbour_fraction"]["gaia"])
    for table, key in (("ps1_mean_object", "objID"), ("tmass_psc", "designation"), ("unwise", "unwise_objid")):
        assert read(small_sky, table)[key].is_unique, f"{table}.{key} not unique"


def test_truth_magnitudes_are_consistent(small_sky):
    t = read(small_sky, "truth")
    from ddstars.bands import BAND_NAMES

    for b in BAND_NAMES:
        m = t[f"true_abs_{b}"] + t["dm"] + t[f"true_ext_{b}"]
        np.testing.assert_allclose(t[f"true_mag_{b}"], m, atol=1e-9)
        assert (t[f"true_r_{b}"] > 0).all()
        # For small reddening the extinction is E·R (Appendix B non-linearity is second order in E).
        small = t["true_ebv"] < 0.05
        np.testing.assert_allclose(
            t.loc[small, f"true_ext_{b}"], (t["true_r_" + b] * t["true_ebv"])[small], rtol=0.02, atol=2e-4
        )
    np.testing.assert_allclose(t["dm"], 5 * np.log10(t["dist_kpc"] * 100), atol=1e-9)
    np.testing.assert_allclose(t["true_parallax_mas"], 1 / t["dist_kpc"], rtol=1e-12)
    # The parent-sample window in true G, and the label window in Teff.
    cfg = small_sky["cfg"]
    g0, g1 = cfg["selection"]["gaia_g_range"]
    assert t["true_mag_gaia_g"].between(g0, g1).all()
    t0, t1 = cfg["population"]["teff_range_k"]
    assert t["true_teff"].between(t0, t1).all()


def test_gaia_rows_match_truth(small_sky):
    t = read(small_sky, "truth").set_index("source_id")
    g = read(small_sky, "gaia_source").set_index("source_id").loc[t.index]
    # reported error, plus the calibration scatter that archives do not report
    sigma = np.hypot(
        1.0857 / g["phot_g_mean_flux_over_error"], small_sky["cfg"]["photometry"]["unreported_scatter_mag"]
    )
    pull = (g["phot_g_mean_mag"] - t["true_mag_gaia_g"]) / sigma
    assert abs(pull.mean()) < 0.1 and 0.9 < pull.std() < 1.1
    plx_pull = (g["parallax"] - t["true_parallax_mas"]) / g["parallax_error"]
    assert 0.9 < plx_pull.std() < 1.1
    # source_id // 2**35 is the level-12 NESTED HEALPix index of the position (Gaia DR2 datamodel).
    pix = hp.ang2pix(4096, g["ra"].to_numpy(), g["dec"].to_numpy(), nest=True, lonlat=True)
    np.testing.assert_array_equal(g.index.to_numpy() // 2**35, pix)
    # Cut semantics (METHOD.md §5) against the truth's flags.
    vis_fail = g["visibility_periods_used"] <= 8
    np.testing.assert_array_equal(vis_fail, t["fail_gaia_visibility_periods"])
    unit = g["astrometric_chi2_al"] / (g["astrometric_n_good_obs_al"] - 5)
    arenou = 1.44 * np.maximum(1, np.exp(-0.4 * (g["phot_g_mean_mag"] - 19.5)))
    np.testing.assert_array_equal(~(unit < arenou), t["fail_gaia_astrometric_chi2"])
    np.testing.assert_array_equal(g["phot_g_n_obs"] <= 2, t["fail_gaia_phot_g_n_obs"])
    # Low S/N and negative parallaxes occur.
    snr = g["parallax"] / g["parallax_error"]
    assert 0.03 < (snr < 5).mean() < 0.5
    assert (g["parallax"] < 0).sum() > 0


def test_injected_rates_match_config(small_sky):
    from ddstars.simulate.summary import injected_rates

    t = read(small_sky, "truth")
    rates = injected_rates(t, small_sky["cfg"]["failures"])
    for name, r in rates.items():
        assert r["rows"] > 200, name
        k = round(r["measured"] * r["rows"])
        assert within_binomial(k, r["rows"], r["configured"]), f"{name}: {r}"
    # Per-band injections, among stars that have a row in the catalogue.
    fl = small_sky["cfg"]["failures"]
    has_tmass = t["tmass_designation"] != ""
    for b in ("j", "h", "ks"):
        det = has_tmass & t[f"true_mag_tmass_{b}"].lt(17)
        assert t.loc[det, f"inj_tmass_cc_flg_{b}"].mean() == pytest.approx(fl["tmass_cc_flg"], abs=0.012)
    has_w = t["unwise_objid"] != ""
    for b in ("w1", "w2"):
        k = int(t.loc[has_w, f"inj_unwise_flags_{b}"].sum())
        assert within_binomial(k, int(has_w.sum()), fl["unwise_flags"])
        k = int(t.loc[has_w, f"inj_unwise_fracflux_{b}"].sum())
        assert within_binomial(k, int(has_w.sum()), fl["unwise_fracflux"])


def test_spectroscopic_flags_follow_archive_semantics(small_sky):
    t = read(small_sky, "truth")
    lam = read(small_sky, "lamost_dr5_ddpayne").set_index("obsid")
    tl = t[t["in_lamost"]].set_index("lamost_id").loc[lam.index]
    snr_ok = (lam[[f"snr_{b}" for b in "ugriz"]] > 20).any(axis=1)
    np.testing.assert_array_equal(~snr_ok, tl["fail_lamost_low_snr"])
    np.testing.assert_array_equal(lam["qflag_chi2"] != "good", tl["fail_lamost_qflag_chi2"])
    np.testing.assert_array_equal(lam["flag_singlestar"] != "YES", tl["fail_lamost_not_single"])
    big = (np.sqrt(lam["teff_err"] ** 2 + 10**2) > 200) | (np.sqrt(lam["logg_err"] ** 2 + 0.05**2) > 0.5)
    big |= np.sqrt(lam["feh_err"] ** 2 + 0.03**2) > 0.5
    np.testing.assert_array_equal(big, tl["fail_lamost_large_errors"])

    apo = read(small_sky, "apogee_dr16_allstar")
    ta = t[t["in_apogee"]].set_index("source_id").loc[apo["GAIA_SOURCE_ID"]]
    np.testing.assert_array_equal((apo["ASPCAPFLAG"] & 128) != 0, ta["fail_apogee_star_warn"])
    np.testing.assert_array_equal((apo["ASPCAPFLAG"] & 8388608) != 0, ta["fail_apogee_star_bad"])
    # Other ASPCAPFLAG bits are set too (a cut on "any flag" would remove good stars).
    assert ((apo["ASPCAPFLAG"] & ~(128 | 8388608)) != 0).any()

    gal = read(small_sky, "galah_dr2").set_index("sobject_id")
    tg = t[t["in_galah"]].set_index("galah_id").loc[gal.index]
    np.testing.assert_array_equal(gal["flag_cannon"] != 0, tg["fail_galah_flag_cannon"])
    snr_ok = (gal[[f"snr_c{i}" for i in range(1, 5)]] > 20).any(axis=1)
    np.testing.assert_array_equal(~snr_ok, tg["fail_galah_low_snr"])


def _label_residuals(obs: pd.DataFrame, truth: pd.DataFrame, cols, errs):
    res = np.stack([obs[c].to_numpy() - truth[k].to_numpy() for c, k in cols], axis=1)
    sig = np.stack([obs[e].to_numpy() for e in errs], axis=1)
    return res, sig


@pytest.mark.parametrize("survey", ["lamost", "apogee", "galah"])
def test_label_offsets_and_noise(small_sky, survey):
    """Survey labels = truth + injected offset + noise of the reported size."""
    t = read(small_sky, "truth")
    cfg = small_sky["cfg"]
    truth_cols = ["true_teff", "true_logg", "true_feh"]
    if survey == "lamost":
        obs = read(small_sky, "lamost_dr5_ddpayne")
        tt = t[t["in_lamost"]].set_index("lamost_id").loc[obs["obsid"]]
        res, sig = _label_residuals(
            obs, tt, zip(["teff", "logg", "feh"], truth_cols, strict=True), ["teff_err", "logg_err", "feh_err"]
        )
    elif survey == "galah":
        obs = read(small_sky, "galah_dr2")
        tt = t[t["in_galah"]].set_index("galah_id").loc[obs["sobject_id"]]
        res, sig = _label_residuals(
            obs, tt, zip(["teff", "logg", "fe_h"], truth_cols, strict=True), ["e_teff", "e_logg", "e_fe_h"]
        )
    else:
        obs = read(small_sky, "apogee_dr16_allstar")
        param = np.stack(obs["PARAM"].to_numpy())
        obs = obs.assign(t=param[:, 0], g=param[:, 1], m=param[:, 3])
        tt = t.set_index("source_id").loc[obs["GAIA_SOURCE_ID"]]
        res, sig = _label_residuals(
            obs, tt, zip(["t", "g", "m"], truth_cols, strict=True), ["TEFF_ERR", "LOGG_ERR", "M_H_ERR"]
        )
    expected = np.asarray(cfg["label_offsets"].get(survey, [0.0, 0.0, 0.0]))
    sig = np.hypot(sig, np.asarray(cfg["label_unreported_scatter"]))  # scatter the surveys do not report
    w = 1 / sig**2
    mean = (res * w).sum(0) / w.sum(0)
    err = 1 / np.sqrt(w.sum(0))
    assert np.all(np.abs(mean - expected) < 4 * err), (mean, expected, err)
    pull = (res - expected) / sig
    assert np.all(np.abs(pull.std(0) - 1) < 0.08), pull.std(0)


def test_survey_footprints_and_windows(small_sky):
    t = read(small_sky, "truth")
    sv = small_sky["cfg"]["surveys"]
    for s in ("lamost", "apogee", "galah"):
        sc = sv[s]
        rows = t[t[f"in_{s}"]]
        assert len(rows) > 100, s
        assert rows["dec"].between(*sc["dec_range_deg"]).all(), s
        assert rows[f"true_mag_{sc['mag_band']}"].between(*sc["mag_range"]).all(), s
    # Every star is observed by at least one survey, and some by two (offsets need shared stars).
    assert (t[["in_lamost", "in_apogee", "in_galah"]].any(axis=1)).all()
    assert (t["in_lamost"] & t["in_galah"]).sum() > 30
    assert (t["in_apogee"] & t["in_galah"]).sum() > 30
    # PS1 (dec > -30) footprint.
    ps1 = t["ps1_objid"] >= 0
    assert (t.loc[ps1, "dec"] >= small_sky["cfg"]["photometry"]["ps1_dec_min_deg"]).all()


def test_band_coverage_follows_limits_and_completeness(small_sky):
    t = read(small_sky, "truth")
    ps1 = read(small_sky, "ps1_mean_object").set_index("objID")
    ph = small_sky["cfg"]["photometry"]
    has = t["ps1_objid"] >= 0
    rows = ps1.loc[t.loc[has, "ps1_objid"]]
    tt = t[has]
    for b in "grizy":
        inside = (tt[f"true_mag_ps1_{b}"] > ph["ps1_saturation_mag"][b] + 0.05).to_numpy()
        present = (rows[f"{b}MeanPSFMag"] != -999).to_numpy()
        # Saturated bands are never present; inside the limits they are present at the completeness rate.
        sat = (tt[f"true_mag_ps1_{b}"] < ph["ps1_saturation_mag"][b] - 0.05).to_numpy()
        assert not present[sat].any(), b
        assert within_binomial(int(present[inside].sum()), int(inside.sum()), ph["completeness"]["ps1"]), b
    # unWISE: bright stars fail rchi2 <= 5 (PSF mismatch), so W1 coverage is well below W2 as in Table 1.
    assert t["expect_unwise_w1"].mean() < t["expect_unwise_w2"].mean()


def test_counterpart_separations_make_radii_matter(small_sky):
    bn = read(small_sky, "tmass_best_neighbour")
    assert (bn["angular_distance"] < 0.4).mean() > 0.99
    assert (bn["angular_distance"] > 0.2).mean() > 0.005  # a 0.2" radius would lose 2MASS matches
    pbn = read(small_sky, "panstarrs1_best_neighbour")
    assert (pbn["angular_distance"] < 0.2).mean() > 0.99
    # Unrelated neighbours lie beyond the radii but inside a few arcsec.
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    t = read(small_sky, "truth")
    tm = read(small_sky, "tmass_psc")
    stars = SkyCoord(t["ra"].to_numpy(), t["dec"].to_numpy(), unit="deg")
    cat = SkyCoord(tm["ra"].to_numpy(), tm["dec"].to_numpy(), unit="deg")
    idx, sep, _ = cat.match_to_catalog_sky(stars)
    own = tm["designation"].isin(set(t["tmass_designation"]))
    s = sep.to(u.arcsec).value[~own.to_numpy()]
    assert len(s) > 50 and s.min() > 0.35 and np.median(s) < 4.5


def test_designations_encode_positions(small_sky):
    tm = read(small_sky, "tmass_psc")
    d = tm["designation"].str
    ra = (d[0:2].astype(int) + d[2:4].astype(int) / 60 + d[4:8].astype(int) / 360000) * 15
    sign = np.where(d[8] == "-", -1, 1)
    dec = sign * (d[9:11].astype(int) + d[11:13].astype(int) / 60 + d[13:16].astype(int) / 36000)
    assert np.all(np.abs(ra - tm["ra"]) * np.cos(np.radians(tm["dec"])) * 3600 < 0.16)
    assert np.all(np.abs(dec - tm["dec"]) * 3600 < 0.11)


def test_same_seed_same_bytes_other_seed_differs(tmp_path, small_sky, sky_models):
    from ddstars.simulate.sky import generate

    again = generate(small_sky["cfg"], sky_paths(tmp_path / "a"), models=sky_models)
    assert again["sha256"] == small_sky["manifest"]["sha256"]
    other_cfg = small_config(seed=small_sky["cfg"]["seed"] + 1)["simulate"]
    other = generate(other_cfg, sky_paths(tmp_path / "b"), models=sky_models)
    assert all(other["sha256"][k] != again["sha256"][k] for k in again["sha256"])


def test_generate_names_missing_output_paths(tmp_path, sky_models):
    from ddstars.simulate.sky import generate

    paths = sky_paths(tmp_path)
    del paths["galah_dr2"]
    with pytest.raises(KeyError, match="galah_dr2"):
        generate(small_config()["simulate"], paths, models=sky_models)
