"""Archive tables of the simulated sky, with the real services' column names, dtypes and flag semantics.

Each ``*_table`` function takes the chunk's truth (a dict of per-star arrays, updated in place with the
identifiers and the flags of which rows must fail which cut) and returns a DataFrame of the archive's own
columns (ARCHIVES.md §1-§8). Rows meant to fail a quality cut are injected at the configured rates
(``simulate.failures``); truth records them as ``inj_<cut>`` (injected) and ``fail_<cut>`` (the row fails
the cut, injected or by nature, e.g. a faint star's low S/N).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import registry
from ..bands import MAG_ERR
from .ids import gaia_source_id, ps1_obj_id, tmass_designation, unwise_objid

Truth = dict[str, np.ndarray]
PS1_MISSING = -999.0  # MAST's value for an absent PS1 mean magnitude
ARCSEC = 1.0 / 3600.0

# APOGEE ASPCAPFLAG bits (sdss apogee bitmask): STAR_WARN = 7, STAR_BAD = 23. Other bits are warnings
# that the paper's cut ignores; a few are set at random so that a cut on "any flag" would be caught.
APOGEE_STAR_WARN = 1 << 7
APOGEE_STAR_BAD = 1 << 23
APOGEE_BENIGN_BITS = np.array([1 << 0, 1 << 3, 1 << 13, 1 << 18], dtype=np.int64)
# unWISE flags_unwise bits that mark bright-star artefacts (Schlafly et al. 2019, table 6).
UNWISE_FLAG_BITS = np.array([1, 2, 4, 8, 16, 32], dtype=np.int32)
UNWISE_SATURATED_BIT = 1
# PS1 objInfoFlag GOOD and qualityFlag QF_OBJ_GOOD | QF_OBJ_GOOD_STACK; QF_OBJ_EXT marks extended objects.
PS1_OBJINFO_GOOD = 33554432
PS1_QF_GOOD = 4 | 16
PS1_QF_EXT = 1


def _bernoulli(rng: np.random.Generator, p: float, n: int) -> np.ndarray:
    return rng.random(n) < p


def _unreported(rng: np.random.Generator, cfg: dict[str, Any], shape) -> np.ndarray:
    """Calibration scatter [mag] that the archives' errors do not report (``photometry.unreported_scatter_mag``);
    the paper's 0.02 mag floor exists to cover it."""
    return rng.normal(size=shape) * cfg["photometry"]["unreported_scatter_mag"]


def offset_positions(
    rng: np.random.Generator, ra: np.ndarray, dec: np.ndarray, sigma_arcsec: float
) -> tuple[np.ndarray, np.ndarray]:
    """Scatter positions by a Gaussian of ``sigma_arcsec`` per coordinate (tangent-plane)."""
    n = len(ra)
    ddec = rng.normal(0, sigma_arcsec, n) * ARCSEC
    dra = rng.normal(0, sigma_arcsec, n) * ARCSEC / np.maximum(np.cos(np.radians(dec)), 1e-6)
    return (ra + dra) % 360.0, np.clip(dec + ddec, -90, 90)


def neighbour_positions(
    rng: np.random.Generator, ra: np.ndarray, dec: np.ndarray, sep_range: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unrelated sources at separations uniform in area over ``sep_range`` [arcsec]; returns ra, dec, sep."""
    n = len(ra)
    s0, s1 = sep_range
    sep = np.sqrt(s0**2 + rng.random(n) * (s1**2 - s0**2))
    pa = rng.uniform(0, 2 * np.pi, n)
    dec_n = np.clip(dec + sep * np.cos(pa) * ARCSEC, -90, 90)
    ra_n = (ra + sep * np.sin(pa) * ARCSEC / np.maximum(np.cos(np.radians(dec)), 1e-6)) % 360.0
    return ra_n, dec_n, sep


# --------------------------------------------------------------------------------------------- Gaia DR2
def gaia_table(truth: Truth, cfg: dict[str, Any], rng: np.random.Generator, serial0: int) -> pd.DataFrame:
    """``gaiadr2.gaia_source`` rows: one per star plus unrelated neighbours (ARCHIVES.md §1)."""
    ph, fl, ast = cfg["photometry"], cfg["failures"], cfg["astrometry"]
    n = len(truth["ra"])
    g_true = truth["true_mag_gaia_g"]
    bp_true = truth["true_mag_gaia_bp"]
    rp_true = truth["true_mag_gaia_rp"]
    sig_g = ph["gaia_g_error_mag"] * 10 ** (0.2 * np.maximum(g_true - 13, 0))
    sig_bp = ph["gaia_bprp_error_mag"] * 10 ** (0.25 * np.maximum(bp_true - 13, 0))
    sig_rp = ph["gaia_bprp_error_mag"] * 10 ** (0.25 * np.maximum(rp_true - 13, 0))
    sig_plx = ph["gaia_parallax_error_mas"] * 10 ** (0.2 * np.maximum(g_true - 14, 0))
    plx = truth["true_parallax_mas"] + rng.normal(0, 1, n) * sig_plx
    has_bp = _bernoulli(rng, ph["completeness"]["gaia_bp"], n)
    has_rp = _bernoulli(rng, ph["completeness"]["gaia_rp"], n)

    inj_vis = _bernoulli(rng, fl["gaia_visibility_periods"], n)
    inj_chi2 = _bernoulli(rng, fl["gaia_astrometric_chi2"], n)
    inj_gnobs = _bernoulli(rng, fl["gaia_phot_g_n_obs"], n)
    vis = np.where(inj_vis, rng.integers(5, 9, n), rng.integers(9, 21, n)).astype(np.int16)
    n_good = rng.integers(80, 450, n).astype(np.int32)
    g_obs = g_true + rng.normal(0, 1, n) * sig_g + _unreported(rng, cfg, n)
    arenou = 1.44 * np.maximum(1.0, np.exp(-0.4 * (g_obs - 19.5)))
    unit_chi2 = np.where(
        inj_chi2, arenou * rng.uniform(1.05, 3.0, n), np.minimum(1.0 + 0.12 * np.abs(rng.normal(size=n)), 1.40)
    )
    g_nobs = np.where(inj_gnobs, rng.integers(1, 3, n), rng.integers(60, 500, n)).astype(np.int32)

    truth["source_id"] = gaia_source_id(truth["ra"], truth["dec"], serial0 + np.arange(n))
    truth["obs_parallax_mas"] = plx
    truth["obs_parallax_error_mas"] = sig_plx
    truth["inj_gaia_visibility_periods"] = inj_vis
    truth["inj_gaia_astrometric_chi2"] = inj_chi2
    truth["inj_gaia_phot_g_n_obs"] = inj_gnobs
    truth["fail_gaia_visibility_periods"] = vis <= 8
    truth["fail_gaia_astrometric_chi2"] = unit_chi2 >= arenou
    truth["fail_gaia_phot_g_n_obs"] = g_nobs <= 2
    truth["expect_gaia_bp"] = has_bp & (np.hypot(sig_bp, 0.02) <= 0.2)
    truth["expect_gaia_rp"] = has_rp & (np.hypot(sig_rp, 0.02) <= 0.2)

    stars = pd.DataFrame(
        {
            "source_id": truth["source_id"],
            "ra": truth["ra"],
            "dec": truth["dec"],
            "parallax": plx,
            "parallax_error": sig_plx,
            "visibility_periods_used": vis,
            "astrometric_n_good_obs_al": n_good,
            "astrometric_chi2_al": (unit_chi2 * (n_good - 5)).astype(np.float32),
            "phot_g_n_obs": g_nobs,
            "phot_g_mean_mag": g_obs,
            "phot_g_mean_flux_over_error": MAG_ERR / sig_g,
            "phot_bp_n_obs": np.where(has_bp, rng.integers(8, 60, n), 0).astype(np.int32),
            "phot_bp_mean_mag": np.where(
                has_bp, bp_true + rng.normal(0, 1, n) * sig_bp + _unreported(rng, cfg, n), np.nan
            ),
            "phot_bp_mean_flux_over_error": np.where(has_bp, MAG_ERR / sig_bp, np.nan),
            "phot_rp_n_obs": np.where(has_rp, rng.integers(8, 60, n), 0).astype(np.int32),
            "phot_rp_mean_mag": np.where(
                has_rp, rp_true + rng.normal(0, 1, n) * sig_rp + _unreported(rng, cfg, n), np.nan
            ),
            "phot_rp_mean_flux_over_error": np.where(has_rp, MAG_ERR / sig_rp, np.nan),
        }
    )
    # Unrelated neighbours: fainter field stars near the targets.
    nb = _bernoulli(rng, ast["neighbour_fraction"]["gaia"], n)
    k = int(nb.sum())
    ra_n, dec_n, _ = neighbour_positions(rng, truth["ra"][nb], truth["dec"][nb], ast["neighbour_separation_arcsec"])
    g_n = np.minimum(g_true[nb] + rng.uniform(1.0, 5.0, k), 20.8)
    sg_n = ph["gaia_g_error_mag"] * 10 ** (0.2 * np.maximum(g_n - 13, 0))
    col_n = rng.uniform(0.5, 2.0, k)
    sbp_n = ph["gaia_bprp_error_mag"] * 10 ** (0.25 * np.maximum(g_n - 13, 0))
    n_good_n = rng.integers(80, 450, k).astype(np.int32)
    neigh = pd.DataFrame(
        {
            "source_id": gaia_source_id(ra_n, dec_n, serial0 + n + np.arange(k)),
            "ra": ra_n,
            "dec": dec_n,
            "parallax": rng.uniform(0.05, 1.0, k) + rng.normal(0, 1, k) * 0.1,
            "parallax_error": ph["gaia_parallax_error_mas"] * 10 ** (0.2 * np.maximum(g_n - 14, 0)),
            "visibility_periods_used": rng.integers(9, 21, k).astype(np.int16),
            "astrometric_n_good_obs_al": n_good_n,
            "astrometric_chi2_al": ((1.0 + 0.1 * np.abs(rng.normal(size=k))) * (n_good_n - 5)).astype(np.float32),
            "phot_g_n_obs": rng.integers(60, 500, k).astype(np.int32),
            "phot_g_mean_mag": g_n,
            "phot_g_mean_flux_over_error": MAG_ERR / sg_n,
            "phot_bp_n_obs": rng.integers(8, 60, k).astype(np.int32),
            "phot_bp_mean_mag": g_n + 0.4 * col_n,
            "phot_bp_mean_flux_over_error": MAG_ERR / sbp_n,
            "phot_rp_n_obs": rng.integers(8, 60, k).astype(np.int32),
            "phot_rp_mean_mag": g_n - 0.6 * col_n,
            "phot_rp_mean_flux_over_error": MAG_ERR / sbp_n,
        }
    )
    df = pd.concat([stars, neigh], ignore_index=True)
    nrow = len(df)
    from astropy.coordinates import SkyCoord  # local: astropy import is slow

    gal = SkyCoord(df["ra"].to_numpy(), df["dec"].to_numpy(), unit="deg", frame="icrs").galactic
    pos_err = 0.02 * 10 ** (0.2 * np.maximum(df["phot_g_mean_mag"].to_numpy() - 14, 0))
    out = pd.DataFrame(
        {
            "source_id": df["source_id"].astype(np.int64),
            "ref_epoch": np.full(nrow, 2015.5),
            "ra": df["ra"].astype(np.float64),
            "ra_error": pos_err.astype(np.float64),
            "dec": df["dec"].astype(np.float64),
            "dec_error": pos_err.astype(np.float64),
            "parallax": df["parallax"].astype(np.float64),
            "parallax_error": df["parallax_error"].astype(np.float64),
            "parallax_over_error": (df["parallax"] / df["parallax_error"]).astype(np.float32),
            "pmra": rng.normal(0, 5, nrow),
            "pmra_error": 1.5 * df["parallax_error"].to_numpy(),
            "pmdec": rng.normal(-3, 5, nrow),
            "pmdec_error": 1.5 * df["parallax_error"].to_numpy(),
            "l": gal.l.deg,
            "b": gal.b.deg,
        }
    )
    for col in [
        "visibility_periods_used",
        "astrometric_n_good_obs_al",
        "astrometric_chi2_al",
        "phot_g_n_obs",
    ]:
        out[col] = df[col].to_numpy()
    for band in ("g", "bp", "rp"):
        out[f"phot_{band}_mean_flux_over_error"] = df[f"phot_{band}_mean_flux_over_error"].astype(np.float32)
        out[f"phot_{band}_mean_mag"] = df[f"phot_{band}_mean_mag"].astype(np.float32)
        if band != "g":
            out[f"phot_{band}_n_obs"] = df[f"phot_{band}_n_obs"].to_numpy()
    out["phot_bp_rp_excess_factor"] = np.float32(1.2) + rng.normal(0, 0.02, nrow).astype(np.float32)
    return out


# --------------------------------------------------------------------------------------------- spectra
def _survey_snr(truth: Truth, scfg: dict[str, Any]) -> np.ndarray:
    mag = truth[f"true_mag_{scfg['mag_band']}"]
    return scfg["snr_at_ref"] * 10 ** (-0.2 * (mag - scfg["ref_mag"]))


def _label_sigma(snr: np.ndarray, scfg: dict[str, Any]) -> np.ndarray:
    floor = np.asarray(scfg["sigma_floor"])
    at20 = np.asarray(scfg["sigma_at_snr20"])
    return np.hypot(floor[None, :], at20[None, :] * (20.0 / snr)[:, None])


# Paper's label-variance floors and maximum uncertainties (METHOD.md §5): used to flag rows whose
# uncertainties the catalog stage must reject.
THETA_FLOOR = np.array([10.0, 0.05, 0.03])
THETA_MAX = np.array([200.0, 0.5, 0.5])


def _large_errors(rng: np.random.Generator, sigma: np.ndarray, inj: np.ndarray) -> np.ndarray:
    """Inflate one label's uncertainty above the paper's maximum for injected rows."""
    which = rng.integers(0, 3, len(sigma))
    big = THETA_MAX * rng.uniform(1.05, 2.0, (len(sigma), 3))
    out = sigma.copy()
    rows = np.flatnonzero(inj)
    out[rows, which[rows]] = big[rows, which[rows]]
    return out


def _fails_sigma_max(sigma: np.ndarray) -> np.ndarray:
    return np.any(np.sqrt(sigma**2 + THETA_FLOOR**2) > THETA_MAX, axis=1)


def _label_unreported(rng: np.random.Generator, cfg: dict[str, Any], n: int) -> np.ndarray:
    """Label scatter the surveys do not report (``label_unreported_scatter``; the paper's label floors)."""
    return rng.normal(size=(n, 3)) * np.asarray(cfg["label_unreported_scatter"])[None, :]


def _observed_labels(
    truth: Truth, idx: np.ndarray, sigma: np.ndarray, offset: np.ndarray, rng: np.random.Generator, cfg: dict[str, Any]
) -> np.ndarray:
    theta = np.stack([truth["true_teff"][idx], truth["true_logg"][idx], truth["true_feh"][idx]], axis=1)
    return theta + offset[None, :] + rng.normal(size=sigma.shape) * sigma + _label_unreported(rng, cfg, len(idx))


def _label_columns(theta: np.ndarray, sigma: np.ndarray, *names: tuple[str, str]) -> dict[str, np.ndarray]:
    """Columns of the labels (Teff, log g, [Fe/H]) and their errors under a survey's names, float32."""
    out = {}
    for k, (value, error) in enumerate(names):
        out[value], out[error] = theta[:, k].astype(np.float32), sigma[:, k].astype(np.float32)
    return out


def lamost_table(truth: Truth, cfg: dict[str, Any], rng: np.random.Generator, serial0: int) -> pd.DataFrame:
    """LAMOST DR5 DD-Payne rows (Xiang et al. 2019; ARCHIVES.md §6) for stars with ``in_lamost``."""
    scfg, fl = cfg["surveys"]["lamost"], cfg["failures"]
    idx = np.flatnonzero(truth["in_lamost"])
    n = len(idx)
    snr_g = _survey_snr(truth, scfg)[idx]
    inj_snr = _bernoulli(rng, fl["lamost_low_snr"], n)
    # Low S/N rows: scale the spectrum's S/N so that the best band lies in [4, 20].
    factors = np.array([0.3, 1.0, 1.35, 1.5, 1.15])  # u g r i z relative to g
    snr = snr_g[:, None] * factors[None, :] * rng.uniform(0.9, 1.1, (n, 5))
    best = snr.max(axis=1)
    scale = np.where(inj_snr, rng.uniform(4.0, 20.0, n) / best, 1.0)
    snr *= scale[:, None]
    sigma = _label_sigma(snr.max(axis=1), scfg)
    inj_err = _bernoulli(rng, fl["large_label_errors"], n)
    sigma = _large_errors(rng, sigma, inj_err)
    theta = _observed_labels(truth, idx, sigma, np.asarray(cfg["label_offsets"]["lamost"]), rng, cfg)
    inj_chi2 = _bernoulli(rng, fl["lamost_qflag_chi2"], n)
    inj_single = _bernoulli(rng, fl["lamost_not_single"], n)
    ra, dec = offset_positions(
        rng, truth["ra"][idx], truth["dec"][idx], cfg["astrometry"]["position_jitter_arcsec"]["spectroscopic"]
    )
    obsid = (serial0 + np.arange(n)).astype(np.int64) + 100_000_000

    _record(
        truth,
        idx,
        "lamost",
        obsid,
        {
            "inj_lamost_low_snr": inj_snr,
            "fail_lamost_low_snr": ~np.any(snr > 20, axis=1),
            "inj_lamost_qflag_chi2": inj_chi2,
            "fail_lamost_qflag_chi2": inj_chi2,
            "inj_lamost_not_single": inj_single,
            "fail_lamost_not_single": inj_single,
            "inj_lamost_large_errors": inj_err,
            "fail_lamost_large_errors": _fails_sigma_max(sigma),
        },
    )
    return pd.DataFrame(
        {
            "obsid": obsid,
            "ra": ra,
            "dec": dec,
            **_label_columns(theta, sigma, ("teff", "teff_err"), ("logg", "logg_err"), ("feh", "feh_err")),
            **{f"snr_{b}": snr[:, i].astype(np.float32) for i, b in enumerate("ugriz")},
            "chi2ratio": np.where(inj_chi2, rng.uniform(2.0, 6.0, n), rng.uniform(0.8, 1.3, n)).astype(np.float32),
            "qflag_chi2": np.where(inj_chi2, "bad", "good"),
            "flag_singlestar": np.where(inj_single, "NO", "YES"),
        }
    )


def apogee_table(truth: Truth, cfg: dict[str, Any], rng: np.random.Generator, serial0: int) -> pd.DataFrame:
    """APOGEE DR16 allStar rows (ASPCAP; ARCHIVES.md §7) for stars with ``in_apogee``.

    PARAM/FPARAM are 9-vectors [Teff, logg, vmicro, [M/H], [C/M], [N/M], [alpha/M], vsini, [O/M]];
    FPARAM_COV is the 9x9 fit covariance flattened row-major (81 values). The label noise is drawn from
    the covariance the paper builds (diagonal max(err², FPARAM_COV), off-diagonals FPARAM_COV, indices
    0, 1, 3), and the (Teff, logg, vmicro) block is deliberately different so the [C] index bug shows.
    """
    scfg, fl = cfg["surveys"]["apogee"], cfg["failures"]
    idx = np.flatnonzero(truth["in_apogee"])
    n = len(idx)
    snr = _survey_snr(truth, scfg)[idx]
    sigma = _label_sigma(snr, scfg)
    inj_err = _bernoulli(rng, fl["large_label_errors"], n)
    sigma = _large_errors(rng, sigma, inj_err)
    # Fit covariance: 60% of the variance, correlations Teff-logg 0.5, Teff-[M/H] 0.3, logg-[M/H] 0.4.
    corr = np.array([[1, 0.5, 0.3], [0.5, 1, 0.4], [0.3, 0.4, 1]])
    sf = np.sqrt(0.6) * sigma
    cov3 = corr[None] * sf[:, :, None] * sf[:, None, :]
    eff = cov3.copy()
    eff[:, [0, 1, 2], [0, 1, 2]] = sigma**2
    chol = np.linalg.cholesky(eff)
    noise = np.einsum("nij,nj->ni", chol, rng.normal(size=(n, 3)))
    theta_true = np.stack([truth["true_teff"][idx], truth["true_logg"][idx], truth["true_feh"][idx]], axis=1)
    theta = theta_true + np.asarray(cfg["label_offsets"]["apogee"])[None, :] + noise + _label_unreported(rng, cfg, n)
    param = np.zeros((n, 9), dtype=np.float32)
    param[:, 0], param[:, 1], param[:, 3] = theta[:, 0], theta[:, 1], theta[:, 2]
    param[:, 2] = rng.uniform(0.8, 2.2, n)
    param[:, 4:7] = rng.normal(0.0, 0.08, (n, 3))
    param[:, 7] = rng.uniform(0, 8, n)
    param[:, 8] = rng.normal(0.05, 0.08, n)
    fparam = param.copy()
    giant = truth["true_logg"][idx] < 3.5
    fparam[:, 1] += np.where(giant, 0.1, 0.0)  # uncalibrated spectroscopic log g of giants
    fcov = np.zeros((n, 9, 9), dtype=np.float64)
    diag_small = np.array([0, 0, 0.02, 0, 0.01, 0.01, 0.01, 0.5, 0.02]) ** 2
    fcov[:, np.arange(9), np.arange(9)] = diag_small
    sel = [0, 1, 3]
    for a in range(3):
        for b in range(3):
            fcov[:, sel[a], sel[b]] = cov3[:, a, b]
    # vmicro block: anti-correlated with Teff and logg (differs from the [M/H] block on purpose).
    fcov[:, 0, 2] = fcov[:, 2, 0] = -0.6 * sf[:, 0] * 0.02
    fcov[:, 1, 2] = fcov[:, 2, 1] = -0.5 * sf[:, 1] * 0.02
    inj_warn = _bernoulli(rng, fl["apogee_star_warn"], n)
    inj_bad = _bernoulli(rng, fl["apogee_star_bad"], n)
    benign = np.where(rng.random(n) < 0.2, APOGEE_BENIGN_BITS[rng.integers(0, len(APOGEE_BENIGN_BITS), n)], 0)
    flag = benign | np.where(inj_warn, APOGEE_STAR_WARN, 0) | np.where(inj_bad, APOGEE_STAR_BAD, 0)
    ra, dec = offset_positions(
        rng, truth["ra"][idx], truth["dec"][idx], cfg["astrometry"]["position_jitter_arcsec"]["spectroscopic"]
    )
    apogee_id = np.char.add("2M", tmass_designation(truth["ra"][idx], truth["dec"][idx]))
    serial = (serial0 + np.arange(n)).astype(np.int64)
    _record(
        truth,
        idx,
        "apogee",
        serial,
        {
            "inj_apogee_star_warn": inj_warn,
            "fail_apogee_star_warn": inj_warn,
            "inj_apogee_star_bad": inj_bad,
            "fail_apogee_star_bad": inj_bad,
            "inj_apogee_large_errors": inj_err,
            "fail_apogee_large_errors": _fails_sigma_max(sigma),
        },
    )
    return pd.DataFrame(
        {
            "APOGEE_ID": apogee_id,
            "TELESCOPE": np.where(dec < -20, "lco25m", "apo25m"),
            "FIELD": np.char.add("F", np.char.zfill((serial // 300 % 3000).astype(str), 4)),
            "RA": ra,
            "DEC": dec,
            "SNR": snr.astype(np.float32),
            "STARFLAG": np.zeros(n, dtype=np.int64),
            "ASPCAPFLAG": flag.astype(np.int64),
            "TEFF": param[:, 0],
            "TEFF_ERR": sigma[:, 0].astype(np.float32),
            "LOGG": param[:, 1],
            "LOGG_ERR": sigma[:, 1].astype(np.float32),
            "M_H": param[:, 3],
            "M_H_ERR": sigma[:, 2].astype(np.float32),
            "PARAM": list(param),
            "FPARAM": list(fparam),
            "FPARAM_COV": list(fcov.reshape(n, 81).astype(np.float32)),
            "GAIA_SOURCE_ID": truth["source_id"][idx],
        }
    )


def galah_sobject_id(serial: np.ndarray) -> np.ndarray:
    """GALAH's sobject_id of the row with serial number ``serial`` (the truth's ``galah_id``)."""
    return 1_403_010_000_000_000 + np.asarray(serial).astype(np.int64) * 1001


def galah_table(truth: Truth, cfg: dict[str, Any], rng: np.random.Generator, serial0: int) -> pd.DataFrame:
    """GALAH DR2 rows (Buder et al. 2018; ARCHIVES.md §8) for stars with ``in_galah``. True label scale."""
    scfg, fl = cfg["surveys"]["galah"], cfg["failures"]
    idx = np.flatnonzero(truth["in_galah"])
    n = len(idx)
    snr1 = _survey_snr(truth, scfg)[idx]
    factors = np.array([0.6, 1.0, 1.3, 1.5])  # blue, green, red, IR cameras
    snr = snr1[:, None] * factors[None, :] * rng.uniform(0.9, 1.1, (n, 4))
    inj_snr = _bernoulli(rng, fl["galah_low_snr"], n)
    scale = np.where(inj_snr, rng.uniform(4.0, 20.0, n) / snr.max(axis=1), 1.0)
    snr *= scale[:, None]
    sigma = _label_sigma(snr.max(axis=1), scfg)
    inj_err = _bernoulli(rng, fl["large_label_errors"], n)
    sigma = _large_errors(rng, sigma, inj_err)
    theta = _observed_labels(truth, idx, sigma, np.zeros(3), rng, cfg)
    inj_cannon = _bernoulli(rng, fl["galah_flag_cannon"], n)
    flag = np.where(inj_cannon, 1 << rng.integers(0, 10, n), 0).astype(np.int32)
    ra, dec = offset_positions(
        rng, truth["ra"][idx], truth["dec"][idx], cfg["astrometry"]["position_jitter_arcsec"]["spectroscopic"]
    )
    sobject = galah_sobject_id(serial0 + np.arange(n))
    _record(
        truth,
        idx,
        "galah",
        sobject,
        {
            "inj_galah_low_snr": inj_snr,
            "fail_galah_low_snr": ~np.any(snr > 20, axis=1),
            "inj_galah_flag_cannon": inj_cannon,
            "fail_galah_flag_cannon": flag != 0,
            "inj_galah_large_errors": inj_err,
            "fail_galah_large_errors": _fails_sigma_max(sigma),
        },
    )
    return pd.DataFrame(
        {
            "sobject_id": sobject,
            "star_id": tmass_designation(truth["ra"][idx], truth["dec"][idx]),
            "ra": ra,
            "dec": dec,
            **_label_columns(theta, sigma, ("teff", "e_teff"), ("logg", "e_logg"), ("fe_h", "e_fe_h")),
            **{f"snr_c{i + 1}": snr[:, i].astype(np.float32) for i in range(4)},
            "flag_cannon": flag,
        }
    )


def _record(truth: Truth, idx: np.ndarray, survey: str, ids: np.ndarray, flags: dict[str, np.ndarray]) -> None:
    """Store a survey's row ids and per-row flags in the star-indexed truth arrays."""
    n = len(truth["ra"])
    col = np.full(n, -1, dtype=np.int64)
    col[idx] = ids
    truth[f"{survey}_id"] = col
    for name, values in flags.items():
        full = np.zeros(n, dtype=bool)
        full[idx] = values
        truth[name] = full


# --------------------------------------------------------------------------------------------- photometry
def ps1_table(truth: Truth, cfg: dict[str, Any], rng: np.random.Generator, serial0: int) -> pd.DataFrame:
    """PS1 DR2 ``MeanObjectView`` rows (ARCHIVES.md §3, option B): AB mean PSF and aperture magnitudes.

    Bands brighter than the saturation limit or undetected are absent (-999 and n<band> = 0, as MAST
    writes them). Extended (injected) sources have aperture magnitudes > 0.1 mag brighter than PSF.
    """
    ph, fl, ast = cfg["photometry"], cfg["failures"], cfg["astrometry"]
    n = len(truth["ra"])
    in_fp = truth["dec"] >= ph["ps1_dec_min_deg"]
    names = ["g", "r", "i", "z", "y"]
    true = np.stack([truth[f"true_mag_ps1_{b}"] for b in names], axis=1)
    sig = np.hypot(0.003, ph["ps1_error_at_21"] * 10 ** (0.4 * (true - 21.0)))
    sat = np.array([ph["ps1_saturation_mag"][b] for b in names])
    det = (true > sat[None, :]) & (true < 23.0) & (rng.random((n, 5)) < ph["completeness"]["ps1"])
    det &= in_fp[:, None]
    has_row = det.any(axis=1)
    inj_ext = _bernoulli(rng, fl["ps1_extended"], n) & has_row
    obs = true + rng.normal(size=(n, 5)) * sig + _unreported(rng, cfg, (n, 5))
    ap_diff = np.where(
        inj_ext[:, None], -rng.uniform(0.15, 1.0, (n, 5)), np.clip(rng.normal(0, 0.02, (n, 5)), -0.08, 0.08)
    )
    ap = obs + ap_diff

    rows = np.flatnonzero(has_row)
    ra, dec = offset_positions(rng, truth["ra"][rows], truth["dec"][rows], ast["position_jitter_arcsec"]["ps1"])
    obj = ps1_obj_id(ra, dec, serial0 + np.arange(len(rows)))
    objid = np.full(n, -1, dtype=np.int64)
    objid[rows] = obj
    truth["ps1_objid"] = objid
    truth["inj_ps1_extended"] = inj_ext
    for j, b in enumerate(names):
        truth[f"expect_ps1_{b}"] = det[:, j] & ~inj_ext & (np.hypot(sig[:, j], 0.02) <= 0.2)

    nd = rng.integers(8, 20, (len(rows), 5)) * det[rows]
    data: dict[str, Any] = {"objID": obj, "raMean": ra, "decMean": dec, "nDetections": nd.sum(axis=1).astype(np.int16)}
    for j, b in enumerate(names):
        data[f"n{b}"] = nd[:, j].astype(np.int16)
    for j, b in enumerate(names):
        d = det[rows, j]
        data[f"{b}MeanPSFMag"] = np.where(d, obs[rows, j], PS1_MISSING).astype(np.float32)
        data[f"{b}MeanPSFMagErr"] = np.where(d, sig[rows, j], PS1_MISSING).astype(np.float32)
        data[f"{b}MeanApMag"] = np.where(d, ap[rows, j], PS1_MISSING).astype(np.float32)
    data["qualityFlag"] = np.where(inj_ext[rows], PS1_QF_GOOD | PS1_QF_EXT, PS1_QF_GOOD).astype(np.int16)
    data["objInfoFlag"] = np.full(len(rows), PS1_OBJINFO_GOOD, dtype=np.int32)
    stars = pd.DataFrame(data)
    return pd.concat([stars, _ps1_neighbours(truth, cfg, rng, serial0 + len(rows))], ignore_index=True)


def _ps1_neighbours(truth: Truth, cfg: dict[str, Any], rng: np.random.Generator, serial0: int) -> pd.DataFrame:
    ph, ast = cfg["photometry"], cfg["astrometry"]
    nb = _bernoulli(rng, ast["neighbour_fraction"]["ps1"], len(truth["ra"])) & (truth["dec"] >= ph["ps1_dec_min_deg"])
    k = int(nb.sum())
    ra, dec, _ = neighbour_positions(rng, truth["ra"][nb], truth["dec"][nb], ast["neighbour_separation_arcsec"])
    base = truth["true_mag_ps1_r"][nb] + rng.uniform(1.0, 5.0, k)
    col = rng.uniform(0.3, 1.5, k)
    data: dict[str, Any] = {"objID": ps1_obj_id(ra, dec, serial0 + np.arange(k)), "raMean": ra, "decMean": dec}
    data["nDetections"] = np.full(k, 50, dtype=np.int16)
    for b in "grizy":
        data[f"n{b}"] = np.full(k, 10, dtype=np.int16)
    for b, c in zip("grizy", [1.0, 0.0, -0.3, -0.45, -0.55], strict=True):
        m = (base + c * col).astype(np.float32)
        data[f"{b}MeanPSFMag"] = m
        data[f"{b}MeanPSFMagErr"] = np.hypot(0.003, ph["ps1_error_at_21"] * 10 ** (0.4 * (m - 21.0))).astype(np.float32)
        data[f"{b}MeanApMag"] = m
    data["qualityFlag"] = np.full(k, PS1_QF_GOOD, dtype=np.int16)
    data["objInfoFlag"] = np.full(k, PS1_OBJINFO_GOOD, dtype=np.int32)
    return pd.DataFrame(data)


def tmass_table(truth: Truth, cfg: dict[str, Any], rng: np.random.Generator) -> pd.DataFrame:
    """2MASS PSC rows (IRSA ``fp_psc`` names; ARCHIVES.md §4).

    ph_qual: 'A' for S/N >= 10, 'B' >= 7, 'C' >= 5, 'D' below, 'U' undetected (null magnitude).
    rd_flg: '1' (aperture, saturated core) brighter than 9 mag, '2' profile fit, '0' undetected.
    """
    ph, fl, ast = cfg["photometry"], cfg["failures"], cfg["astrometry"]
    n = len(truth["ra"])
    names = [("j", "tmass_j"), ("h", "tmass_h"), ("ks", "tmass_ks")]
    true = np.stack([truth[f"true_mag_{b}"] for _, b in names], axis=1)
    lim = np.array([ph["tmass_a_limit_mag"][b] for b, _ in names])
    snr = 10.0 * 10 ** (0.4 * (lim[None, :] - true))
    sig = np.hypot(0.015, MAG_ERR / snr)
    det = (snr >= 3.0) & (rng.random((n, 3)) < ph["completeness"]["tmass"])
    has_row = det.any(axis=1)
    inj_cc = _bernoulli(rng, fl["tmass_cc_flg"], 3 * n).reshape(n, 3) & det
    inj_use = _bernoulli(rng, fl["tmass_use_src"], n) & has_row
    inj_gal = _bernoulli(rng, fl["tmass_gal_contam"], n) & has_row
    inj_ext = _bernoulli(rng, fl["tmass_ext_key"], n) & has_row
    qual = np.select([~det, snr >= 10, snr >= 7, snr >= 5], ["U", "A", "B", "C"], "D")
    rd = np.where(~det, "0", np.where(true < 9.0, "1", "2"))
    cc = np.where(inj_cc, rng.choice(np.array(list("pcdhs")), (n, 3)), "0")
    good_band = det & ((qual == "A") | (rd == "1") | (rd == "3")) & (cc == "0")
    source_ok = ~inj_use & ~inj_gal
    obs = true + rng.normal(size=(n, 3)) * sig + _unreported(rng, cfg, (n, 3))

    rows = np.flatnonzero(has_row)
    ra, dec = offset_positions(rng, truth["ra"][rows], truth["dec"][rows], ast["position_jitter_arcsec"]["tmass"])
    desig = tmass_designation(ra, dec)
    full = np.full(n, "", dtype=object)
    full[rows] = desig
    truth["tmass_designation"] = full
    truth["inj_tmass_use_src"] = inj_use
    truth["inj_tmass_gal_contam"] = inj_gal
    truth["inj_tmass_ext_key"] = inj_ext
    truth["fail_tmass_ext_key"] = inj_ext
    for j, (b, band) in enumerate(names):
        truth[f"inj_tmass_cc_flg_{b}"] = inj_cc[:, j]
        truth[f"expect_{band}"] = good_band[:, j] & source_ok & (np.hypot(sig[:, j], 0.02) <= 0.2)

    def joined(a: np.ndarray) -> np.ndarray:
        return np.char.add(np.char.add(a[:, 0], a[:, 1]), a[:, 2])

    r = rows
    data: dict[str, Any] = {"designation": desig, "ra": ra, "dec": dec}
    for j, (b, _) in enumerate(names):
        m = "k" if b == "ks" else b
        data[f"{m}_m"] = np.where(det[r, j], obs[r, j], np.nan).astype(np.float32)
        data[f"{m}_msigcom"] = np.where(det[r, j], sig[r, j], np.nan).astype(np.float32)
    data["ph_qual"] = joined(qual[r].astype("U1"))
    data["rd_flg"] = joined(rd[r].astype("U1"))
    data["bl_flg"] = joined(np.where(det[r], "1", "0"))
    data["cc_flg"] = joined(cc[r].astype("U1"))
    data["use_src"] = np.where(inj_use[r], 0, 1).astype(np.int16)
    data["gal_contam"] = np.where(inj_gal[r], rng.integers(1, 3, len(r)), 0).astype(np.int16)
    data["mp_flg"] = np.zeros(len(r), dtype=np.int16)
    data["ext_key"] = pd.array(np.where(inj_ext[r], rng.integers(1, 10**6, len(r)), 0), dtype="Int32")
    data["ext_key"][~inj_ext[r]] = pd.NA
    data["jdate"] = rng.uniform(2450600.5, 2451941.5, len(r))
    stars = pd.DataFrame(data)
    return pd.concat([stars, _tmass_neighbours(truth, cfg, rng)], ignore_index=True)


def _tmass_neighbours(truth: Truth, cfg: dict[str, Any], rng: np.random.Generator) -> pd.DataFrame:
    ast = cfg["astrometry"]
    nb = _bernoulli(rng, ast["neighbour_fraction"]["tmass"], len(truth["ra"]))
    k = int(nb.sum())
    ra, dec, _ = neighbour_positions(rng, truth["ra"][nb], truth["dec"][nb], ast["neighbour_separation_arcsec"])
    j = np.minimum(truth["true_mag_tmass_j"][nb] + rng.uniform(1.0, 4.0, k), 16.5)
    data: dict[str, Any] = {"designation": tmass_designation(ra, dec), "ra": ra, "dec": dec}
    for b, c in (("j", 0.0), ("h", -0.5), ("k", -0.6)):
        data[f"{b}_m"] = (j + c).astype(np.float32)
        data[f"{b}_msigcom"] = np.full(k, 0.08, dtype=np.float32)
    data.update(
        ph_qual=np.full(k, "BBB"),
        rd_flg=np.full(k, "222"),
        bl_flg=np.full(k, "111"),
        cc_flg=np.full(k, "000"),
        use_src=np.ones(k, dtype=np.int16),
        gal_contam=np.zeros(k, dtype=np.int16),
        mp_flg=np.zeros(k, dtype=np.int16),
        ext_key=pd.array([pd.NA] * k, dtype="Int32"),
        jdate=rng.uniform(2450600.5, 2451941.5, k),
    )
    return pd.DataFrame(data)


def vega_nanomaggies(mag_vega: np.ndarray) -> np.ndarray:
    """unWISE flux [Vega nanomaggies] of a Vega magnitude: f = 10^(-0.4 (m - 22.5))."""
    return 10 ** (-0.4 * (np.asarray(mag_vega) - 22.5))


def unwise_table(truth: Truth, cfg: dict[str, Any], rng: np.random.Generator, serial0: int) -> pd.DataFrame:
    """unWISE rows (Schlafly et al. 2019; NOIRLab ``unwise_dr1.object`` names; ARCHIVES.md §5).

    Fluxes are Vega nanomaggies (forced in the band where the source was not detected). rchi2 grows
    with flux (PSF mismatch of bright stars) and crosses 5 at ``unwise_rchi2_5_mag``.
    """
    ph, fl, ast = cfg["photometry"], cfg["failures"], cfg["astrometry"]
    n = len(truth["ra"])
    bands = [("w1", "unwise_w1"), ("w2", "unwise_w2")]
    # Truth magnitudes of W1/W2 are Vega (native system of the survey).
    true = np.stack([truth[f"true_mag_{b}"] for _, b in bands], axis=1)
    f_true = vega_nanomaggies(true)
    f5 = np.array([vega_nanomaggies(ph["unwise_5sigma_mag"][b]) for b, _ in bands])
    dflux = np.hypot(f5[None, :] / 5.0, 0.004 * f_true)
    flux = (f_true + rng.normal(size=(n, 2)) * dflux) * 10 ** (-0.4 * _unreported(rng, cfg, (n, 2)))
    snr = flux / dflux
    det_any = (snr >= 5).any(axis=1) & (rng.random(n) < ph["completeness"]["unwise"])
    inj_flag = (rng.random((n, 2)) < fl["unwise_flags"]) & det_any[:, None]
    inj_frac = (rng.random((n, 2)) < fl["unwise_fracflux"]) & det_any[:, None]
    sat = np.array([ph["unwise_saturation_mag"][b] for b, _ in bands])
    flags = np.where(inj_flag, UNWISE_FLAG_BITS[rng.integers(0, len(UNWISE_FLAG_BITS), (n, 2))], 0)
    flags = np.where(true < sat[None, :], flags | UNWISE_SATURATED_BIT, flags).astype(np.int32)
    fracflux = np.where(inj_frac, np.round(rng.uniform(0.0, 0.5, (n, 2)), 3), rng.uniform(0.8, 1.0, (n, 2)))
    m5 = np.array([ph["unwise_rchi2_5_mag"][b] for b, _ in bands])
    rchi2 = 0.8 + 4.2 * 10 ** (-0.4 * (true - m5[None, :])) * rng.uniform(0.9, 1.1, (n, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        sig_mag = MAG_ERR * dflux / flux
    good = det_any[:, None] & (flags == 0) & (fracflux > 0.5) & (rchi2 <= 5) & (flux > 0)
    good &= np.hypot(sig_mag, 0.02) <= 0.2

    rows = np.flatnonzero(det_any)
    ra, dec = offset_positions(rng, truth["ra"][rows], truth["dec"][rows], ast["position_jitter_arcsec"]["unwise"])
    oid = unwise_objid(ra, dec, serial0 + np.arange(len(rows)))
    full = np.full(n, "", dtype=object)
    full[rows] = oid
    truth["unwise_objid"] = full
    for j, (b, band) in enumerate(bands):
        truth[f"inj_unwise_flags_{b}"] = inj_flag[:, j]
        truth[f"inj_unwise_fracflux_{b}"] = inj_frac[:, j]
        truth[f"expect_{band}"] = good[:, j]
    r = rows
    data: dict[str, Any] = {"unwise_objid": oid, "ra": ra, "dec": dec}
    for j, (b, _) in enumerate(bands):
        data[f"flux_{b}"] = flux[r, j].astype(np.float32)
        data[f"dflux_{b}"] = dflux[r, j].astype(np.float32)
        data[f"rchi2_{b}"] = rchi2[r, j].astype(np.float32)
        data[f"fracflux_{b}"] = fracflux[r, j].astype(np.float32)
        data[f"flags_unwise_{b}"] = flags[r, j]
        data[f"flags_info_{b}"] = np.zeros(len(r), dtype=np.int32)
        data[f"nm_{b}"] = rng.integers(10, 40, len(r)).astype(np.int16)
    data["primary"] = np.ones(len(r), dtype=np.int16)
    stars = pd.DataFrame(data)

    nb = _bernoulli(rng, ast["neighbour_fraction"]["unwise"], n)
    k = int(nb.sum())
    ra_n, dec_n, _ = neighbour_positions(rng, truth["ra"][nb], truth["dec"][nb], ast["neighbour_separation_arcsec"])
    nd: dict[str, Any] = {
        "unwise_objid": unwise_objid(ra_n, dec_n, serial0 + len(r) + np.arange(k)),
        "ra": ra_n,
        "dec": dec_n,
    }
    w1 = np.minimum(true[nb, 0] + rng.uniform(1.0, 4.0, k), 17.5)
    for j, (b, _) in enumerate(bands):
        f = vega_nanomaggies(w1 + 0.1 * j)
        nd[f"flux_{b}"] = f.astype(np.float32)
        nd[f"dflux_{b}"] = np.hypot(f5[j] / 5, 0.004 * f).astype(np.float32)
        nd[f"rchi2_{b}"] = np.ones(k, dtype=np.float32)
        nd[f"fracflux_{b}"] = rng.uniform(0.6, 1.0, k).astype(np.float32)
        nd[f"flags_unwise_{b}"] = np.zeros(k, dtype=np.int32)
        nd[f"flags_info_{b}"] = np.zeros(k, dtype=np.int32)
        nd[f"nm_{b}"] = np.full(k, 20, dtype=np.int16)
    nd["primary"] = np.ones(k, dtype=np.int16)
    return pd.concat([stars, pd.DataFrame(nd)], ignore_index=True)


def best_neighbour_tables(
    truth: Truth, ps1: pd.DataFrame, tmass: pd.DataFrame, tmass_serial0: int
) -> dict[str, pd.DataFrame]:
    """``gaiadr2.panstarrs1_best_neighbour`` and ``gaiadr2.tmass_best_neighbour`` for the targets.

    The best neighbour is the star's true counterpart; angular_distance is its separation [arcsec].
    """
    out = {}
    for name, key, table, ra_col, dec_col, id_col in (
        (registry.LINKS["ps1"], "ps1_objid", ps1, "raMean", "decMean", "objID"),
        (registry.LINKS["tmass"], "tmass_designation", tmass, "ra", "dec", "designation"),
    ):
        ids = truth[key]
        has = ids != -1 if ids.dtype.kind in "iu" else ids != ""
        pos = table.set_index(id_col)[[ra_col, dec_col]].loc[ids[has]]
        ra0, dec0 = truth["ra"][has], truth["dec"][has]
        dra = (pos[ra_col].to_numpy() - ra0) * np.cos(np.radians(dec0))
        sep = np.hypot(dra, pos[dec_col].to_numpy() - dec0) * 3600
        n = int(has.sum())
        df = pd.DataFrame(
            {
                "source_id": truth["source_id"][has],
                "original_ext_source_id": ids[has].astype(np.int64) if key == "ps1_objid" else ids[has].astype(str),
                "angular_distance": sep,
                "number_of_neighbours": np.ones(n, dtype=np.int32),
                "number_of_mates": np.zeros(n, dtype=np.int16),
                "best_neighbour_multiplicity": np.ones(n, dtype=np.int16),
            }
        )
        if key == "tmass_designation":
            df["tmass_oid"] = tmass_serial0 + np.arange(n, dtype=np.int64)
        out[name] = df
    return out
