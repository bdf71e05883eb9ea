"""Per-survey cleaning: an archive table in, a cleaned table, a rejected table and counts out.

Each ``clean_<survey>`` function takes the archive's own columns (see :mod:`ddstars.archives`) and
returns a :class:`Cleaned` with

* ``table``: the kept rows in the project's standard columns (below),
* ``rejected``: identifier, position and ``rejected_by`` (comma-separated cut names) of every removed row,
* ``counts``: rows in, rows removed by each cut, rows out (and per-band counts for photometry).

Standard columns
    spectroscopic (LAMOST, APOGEE, GALAH): ``survey, survey_id, ra, dec, snr, teff, logg, feh`` (the
    survey's own scale, before zero-point offsets), ``sigma_<label>_reported`` (the survey's errors, used
    for the offsets), ``var_<label>`` (floored variances, METHOD.md §5), ``cov_teff_logg, cov_teff_feh,
    cov_logg_feh`` (APOGEE FPARAM_COV; 0 elsewhere).
    Gaia: ``source_id, ra, dec, l, b, parallax, parallax_error`` and ``mag_/err_`` for G, BP, RP.
    PS1, 2MASS, unWISE: the archive identifier, ``ra, dec`` and ``mag_<band>, err_<band>``.
Photometric errors have the 0.02 mag floor added in quadrature; a band whose floored error exceeds 0.2 mag
or that fails its quality flags has NaN magnitude and error (never a sentinel).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import registry
from ..config import defaults, with_defaults
from ..registry import SURVEY_TABLES
from . import cuts
from .cuts import MAG_ERROR_FLOOR as FLOOR
from .cuts import MAG_ERROR_MAX as MAX_ERROR
from .cuts import BandPhotometry, CutResult

log = logging.getLogger(__name__)

# The surveys and the archive table cleaned into each: the registry's (ddstars.registry).
LABELS = cuts.LABEL_NAMES  # teff, logg, feh
COV_PAIRS = (("teff", "logg"), ("teff", "feh"), ("logg", "feh"))
# APOGEE FPARAM_COV indices of (Teff, log g, [M/H]) in the 9-parameter order (METHOD.md §5). The authors'
# code used (0, 1, 2), i.e. v_micro instead of [M/H]; config may select it to reproduce that.
APOGEE_COV_INDICES = tuple(defaults("catalog")["apogee_cov_indices"])


@dataclass
class Cleaned:
    """Result of one cleaning rule."""

    survey: str
    table: pd.DataFrame
    rejected: pd.DataFrame
    counts: dict[str, Any] = field(default_factory=dict)


def _rejected(ids: pd.Series, ra: Any, dec: Any, result: CutResult, id_name: str) -> pd.DataFrame:
    """Identifier, position and the comma-joined names of the cuts each removed row fails."""
    bad = ~result.keep.to_numpy()
    reasons = np.full(int(bad.sum()), "", dtype=object)
    for name in result.fails.columns:  # loop over cuts, vectorised over rows
        reasons = reasons + np.where(result.fails[name].to_numpy()[bad], name + ",", "")
    reasons = pd.Series(reasons, dtype="string").str.rstrip(",")
    return pd.DataFrame(
        {
            id_name: np.asarray(ids)[bad],
            "ra": np.asarray(ra, dtype=float)[bad],
            "dec": np.asarray(dec, dtype=float)[bad],
            "rejected_by": reasons.to_numpy(),
        }
    )


def _counts(survey: str, table: str, result: CutResult, **extra: Any) -> dict[str, Any]:
    t = result.tally
    return {"survey": survey, "table": table, **t.to_dict(), **extra}


def _band_counts(before: BandPhotometry, after: BandPhotometry) -> dict[str, dict[str, int]]:
    """Per band: rows, usable after the flag cuts, removed by the 0.2 mag error cut, usable out."""
    out = {}
    for band in before.usable.columns:
        ok0 = int(before.usable[band].sum())
        ok1 = int(after.usable[band].sum())
        out[band] = {
            "rows": len(before.usable),
            "fail_flags_or_missing": len(before.usable) - ok0,
            "fail_error_gt_max": ok0 - ok1,
            "usable": ok1,
        }
    return out


def _mag_columns(phot: BandPhotometry) -> dict[str, np.ndarray]:
    cols = {}
    for band in phot.mag.columns:
        cols[f"mag_{band}"] = phot.mag[band].to_numpy(dtype=np.float64)
        cols[f"err_{band}"] = phot.err[band].to_numpy(dtype=np.float64)
    return cols


# --------------------------------------------------------------------------------------------- Gaia
def clean_gaia(
    df: pd.DataFrame,
    floor: float = FLOOR,
    max_error: float = MAX_ERROR,
    release: str = registry.DEFAULT_RELEASE,
    dr3: dict[str, Any] | None = None,
) -> Cleaned:
    """Gaia: astrometric and photometric cuts (rows); G, BP, RP with the error floor.

    A source whose G band is unusable after the floor (floored error > ``max_error``) is removed
    (cut ``g_error``): G is the reference band and is required (METHOD.md §5).

    Release ``dr2``: the paper's cuts (:func:`cuts.gaia_cuts`). Release ``dr3`` (options ``dr3``: config
    ``catalog.gaia_dr3``): RUWE in place of the astrometric χ² (:func:`cuts.gaia_dr3_cuts`); BP and RP dropped
    where the corrected flux excess C* is off by ``bp_rp_excess_nsigma`` σ (counted as ``bp_rp_excess``); the
    parallax zero-point of Lindegren et al. (2021) subtracted where valid, its value in column
    ``parallax_zero_point`` (NaN: not valid there, parallax as published; counted under ``parallax_zero_point``).
    """
    table = registry.release(release).surveys["gaia"].table
    extra_cols: dict[str, Any] = {}
    extra_counts: dict[str, Any] = {}
    parallax = cuts.float_column(df, "parallax")
    raw = cuts.gaia_photometry(df, table)
    if release == "dr2":
        base = cuts.gaia_cuts(df, table)
    else:
        o = {**defaults("catalog")["gaia_dr3"], **(dr3 or {})}
        base = cuts.gaia_dr3_cuts(df, table, o["ruwe_max"])
        excess = cuts.gaia_dr3_excess_fails(df, table, o["bp_rp_excess_nsigma"])
        usable = raw.usable.copy()
        usable.loc[excess, ["gaia_bp", "gaia_rp"]] = False
        raw = BandPhotometry(raw.mag.where(usable), raw.err.where(usable), usable, raw.extra)
        zp = cuts.gaia_dr3_parallax_zero_point(df, table) if o["parallax_zero_point"] else np.full(len(df), np.nan)
        parallax = np.where(np.isfinite(zp), parallax - zp, parallax)
        extra_cols["parallax_zero_point"] = zp
        extra_counts = {"bp_rp_excess": int(excess.sum()), "parallax_zero_point": {}}
    phot = raw.with_error_floor(floor, max_error)
    g_err = cuts.cut_result(
        table, df.index, {"g_error": ~phot.usable["gaia_g"].to_numpy() & raw.usable["gaia_g"].to_numpy()}
    )
    res = cuts.combine(table, base, g_err)
    keep = res.keep.to_numpy()
    out = pd.DataFrame(
        {
            "source_id": df["source_id"].to_numpy(dtype=np.int64),
            **{c: cuts.float_column(df, c) for c in ("ra", "dec", "l", "b")},
            "parallax": parallax,
            "parallax_error": cuts.float_column(df, "parallax_error"),
            **_mag_columns(phot),
            **extra_cols,
        }
    )[keep].reset_index(drop=True)
    if "parallax_zero_point" in extra_counts:
        applied = np.isfinite(out["parallax_zero_point"].to_numpy())
        extra_counts["parallax_zero_point"] = {
            "applied": int(applied.sum()),
            "not_valid": int((~applied).sum()) if o["parallax_zero_point"] else 0,
            "enabled": bool(o["parallax_zero_point"]),
            "median_mas": float(np.median(out["parallax_zero_point"][applied])) if applied.any() else None,
        }
        extra_counts["bp_rp_excess"] = int(excess[keep].sum())
    rejected = _rejected(df["source_id"], df["ra"], df["dec"], res, "source_id")
    kept = BandPhotometry(*(x[keep] for x in (raw.mag, raw.err, raw.usable)))
    kept_after = BandPhotometry(*(x[keep] for x in (phot.mag, phot.err, phot.usable)))
    return Cleaned(
        "gaia", out, rejected, _counts("gaia", table, res, bands=_band_counts(kept, kept_after), **extra_counts)
    )


# --------------------------------------------------------------------------------------------- photometry
def _photometric(
    survey: str,
    table: str,
    df: pd.DataFrame,
    key: str,
    ra: str,
    dec: str,
    raw: BandPhotometry,
    res: CutResult,
    floor: float,
    max_error: float,
    extra_cols: dict[str, Any] | None = None,
) -> Cleaned:
    phot = raw.with_error_floor(floor, max_error)
    keep = res.keep.to_numpy()
    out = pd.DataFrame(
        {
            key: df[key].to_numpy(),
            "ra": cuts.float_column(df, ra),
            "dec": cuts.float_column(df, dec),
            **_mag_columns(phot),
            **(extra_cols or {}),
        }
    )[keep].reset_index(drop=True)
    rejected = _rejected(df[key], df[ra], df[dec], res, key)
    bands = _band_counts(
        BandPhotometry(*(x[keep] for x in (raw.mag, raw.err, raw.usable))),
        BandPhotometry(*(x[keep] for x in (phot.mag, phot.err, phot.usable))),
    )
    return Cleaned(survey, out, rejected, _counts(survey, table, res, bands=bands))


def clean_ps1(df: pd.DataFrame, floor: float = FLOOR, max_error: float = MAX_ERROR) -> Cleaned:
    """PS1 mean photometry: per-band presence; a galaxy (PSF - aperture > 0.1 mag in any band) is removed."""
    table = SURVEY_TABLES["ps1"]
    raw = cuts.ps1_bands(df, table)
    res = cuts.cut_result(table, df.index, {"galaxy": raw.extra["galaxy"].to_numpy()})
    return _photometric("ps1", table, df, "objID", "raMean", "decMean", raw, res, floor, max_error)


def clean_tmass(df: pd.DataFrame, floor: float = FLOOR, max_error: float = MAX_ERROR) -> Cleaned:
    """2MASS PSC: per-band ph_qual/rd_flg/cc_flg and use_src/gal_contam; ``ext_key > 0`` rows are removed.

    A Gaia star whose 2MASS counterpart is removed by ``ext_key`` is dropped from the catalog (paper §3.2),
    which the cross-match does from the ``rejected`` table.
    """
    table = SURVEY_TABLES["tmass"]
    raw, ext = cuts.tmass_bands(df, table)
    return _photometric("tmass", table, df, "designation", "ra", "dec", raw, ext, floor, max_error)


def clean_unwise(df: pd.DataFrame, floor: float = FLOOR, max_error: float = MAX_ERROR) -> Cleaned:
    """unWISE: only primary objects (the paper's ``unwise_obj_primary``); per-band flags_unwise == 0,
    fracflux > 0.5, rchi2 <= 5; magnitudes converted to AB (cuts.unwise_bands)."""
    table = SURVEY_TABLES["unwise"]
    raw = cuts.unwise_bands(df, table)
    res = cuts.cut_result(table, df.index, {"not_primary": ~(cuts.float_column(df, "primary") == 1)})
    return _photometric("unwise", table, df, "unwise_objid", "ra", "dec", raw, res, floor, max_error)


# --------------------------------------------------------------------------------------------- spectra
def _spectra(
    survey: str,
    table: str,
    df: pd.DataFrame,
    survey_id: pd.Series,
    ra: np.ndarray,
    dec: np.ndarray,
    snr: np.ndarray,
    theta: np.ndarray,
    sigma_reported: np.ndarray,
    var: np.ndarray,
    cov: np.ndarray,
    base: CutResult,
    label_floor,
    label_max,
    extra_cols: dict[str, Any] | None = None,
) -> Cleaned:
    floored, sig = cuts.label_uncertainty_cuts(np.sqrt(var), label_floor, label_max, table)
    sig = CutResult(pd.Series(sig.keep.to_numpy(), index=df.index), sig.fails.set_index(df.index), sig.tally)
    res = cuts.combine(table, base, sig)
    keep = res.keep.to_numpy()
    cols: dict[str, Any] = {
        "survey": np.full(len(df), survey, dtype=object),
        "survey_id": survey_id.astype(str).to_numpy(dtype=object),
        "ra": ra,
        "dec": dec,
        "snr": snr,
    }
    for j, name in enumerate(LABELS):
        cols[name] = theta[:, j]
    for j, name in enumerate(LABELS):
        cols[f"sigma_{name}_reported"] = sigma_reported[:, j]
    for j, name in enumerate(LABELS):
        cols[f"var_{name}"] = floored[:, j] ** 2
    for k, (a, b) in enumerate(COV_PAIRS):
        cols[f"cov_{a}_{b}"] = cov[:, k]
    cols.update(extra_cols or {})
    out = pd.DataFrame(cols)[keep].reset_index(drop=True)
    out["survey"] = out["survey"].astype("string")
    out["survey_id"] = out["survey_id"].astype("string")
    rejected = _rejected(survey_id.astype(str), ra, dec, res, "survey_id")
    return Cleaned(survey, out, rejected, _counts(survey, table, res))


def _diagonal_spectra(
    survey: str,
    table: str,
    df: pd.DataFrame,
    base: CutResult,
    id_col: str,
    label_cols: tuple[str, str, str],
    error_cols: tuple[str, str, str],
    snr_cols: list[str],
    label_floor,
    label_max,
) -> Cleaned:
    """Surveys that report independent label errors (diagonal covariance); S/N = best of ``snr_cols``."""
    theta = np.stack([cuts.float_column(df, c) for c in label_cols], axis=1)
    sigma = np.stack([cuts.float_column(df, c) for c in error_cols], axis=1)
    snr = np.nanmax(np.stack([cuts.float_column(df, c) for c in snr_cols], axis=1), axis=1, initial=-np.inf)
    ra, dec = cuts.float_column(df, "ra"), cuts.float_column(df, "dec")
    zeros = np.zeros((len(df), 3))
    return _spectra(
        survey, table, df, df[id_col], ra, dec, snr, theta, sigma, sigma**2, zeros, base, label_floor, label_max
    )


def clean_lamost(df: pd.DataFrame, label_floor=cuts.LABEL_FLOOR, label_max=cuts.LABEL_MAX) -> Cleaned:
    """LAMOST DR5 DD-Payne: S/N, qflag_chi2, flag_singlestar, label sanity; diagonal label covariance."""
    table = SURVEY_TABLES["lamost"]
    base = cuts.lamost_cuts(df, table)
    errors = ("teff_err", "logg_err", "feh_err")
    snr = [f"snr_{b}" for b in "ugriz"]
    return _diagonal_spectra("lamost", table, df, base, "obsid", LABELS, errors, snr, label_floor, label_max)


def apogee_covariance(df: pd.DataFrame, indices=APOGEE_COV_INDICES, table: str = SURVEY_TABLES["apogee"]):
    """(values (n,3), reported errors (n,3), variances (n,3), covariances (n,3)) of APOGEE labels.

    Values are PARAM[0, 1, 3] (calibrated Teff, log g, [M/H]); variances max(calibrated err², FPARAM_COV
    diagonal); off-diagonals (Teff-logg, Teff-[M/H], logg-[M/H]) from FPARAM_COV at ``indices``.
    """
    param = cuts.list_column(df, table, "PARAM", 4)[:, list(cuts.APOGEE_PARAM_IDX)]
    fcov = cuts.list_column(df, table, "FPARAM_COV", 81).reshape(-1, 9, 9)
    idx = list(indices)
    sub = fcov[:, idx][:, :, idx]
    err = np.stack([cuts.float_column(df, c) for c in ("TEFF_ERR", "LOGG_ERR", "M_H_ERR")], axis=1)
    var = np.maximum(err**2, np.diagonal(sub, axis1=1, axis2=2))
    cov = np.stack([sub[:, 0, 1], sub[:, 0, 2], sub[:, 1, 2]], axis=1)
    return param, err, var, cov


def clean_apogee(
    df: pd.DataFrame,
    label_floor=cuts.LABEL_FLOOR,
    label_max=cuts.LABEL_MAX,
    cov_indices=APOGEE_COV_INDICES,
    release: str = registry.DEFAULT_RELEASE,
) -> Cleaned:
    """APOGEE DR16 (release dr2) or DR17 (dr3): STAR_WARN / STAR_BAD, label sanity (DR17 also drops the lower-S/N
    duplicates, EXTRATARG bit 4); covariance from FPARAM_COV (see apogee_covariance)."""
    table = registry.release(release).surveys["apogee"].table
    base = cuts.apogee_cuts(df, table, duplicates=release != registry.DEFAULT_RELEASE)
    theta, err, var, cov = apogee_covariance(df, cov_indices, table)
    gaia_col = next((c for c in ("GAIAEDR3_SOURCE_ID", "GAIA_SOURCE_ID") if c in df), None)
    gsid = pd.to_numeric(df[gaia_col], errors="coerce") if gaia_col else None
    extra = {"gaia_source_id_survey": gsid.fillna(-1).to_numpy(dtype=np.int64)} if gsid is not None else {}
    return _spectra(
        "apogee",
        table,
        df,
        df["APOGEE_ID"],
        cuts.float_column(df, "RA"),
        cuts.float_column(df, "DEC"),
        cuts.float_column(df, "SNR"),
        theta,
        err,
        var,
        cov,
        base,
        label_floor,
        label_max,
        extra,
    )


def clean_galah(
    df: pd.DataFrame,
    label_floor=cuts.LABEL_FLOOR,
    label_max=cuts.LABEL_MAX,
    release: str = registry.DEFAULT_RELEASE,
) -> Cleaned:
    """GALAH DR2 (release dr2: flag_cannon) or DR4 (dr3: flag_sp): S/N, label sanity; diagonal label covariance."""
    table = registry.release(release).surveys["galah"].table
    base = cuts.galah_cuts(df, table, release)
    labels, errors = ("teff", "logg", "fe_h"), ("e_teff", "e_logg", "e_fe_h")
    snr = [f"{cuts.galah_snr_prefix(release)}{i}" for i in range(1, 5)]
    return _diagonal_spectra("galah", table, df, base, "sobject_id", labels, errors, snr, label_floor, label_max)


def clean(survey: str, df: pd.DataFrame, options: dict[str, Any] | None = None) -> Cleaned:
    """Dispatch to ``clean_<survey>`` with the options of config section ``catalog``; ``options["release"]``
    (config ``archives.release``; absent: the paper's) chooses the release's table and cuts."""
    options = dict(options or {})
    release = options.pop("release", registry.DEFAULT_RELEASE)
    rel = registry.release(release)
    if survey not in rel.surveys:
        raise KeyError(f"unknown survey {survey!r}; known: {', '.join(rel.surveys)}")
    o = with_defaults(options, "catalog")
    floor, max_error = o["mag_error_floor"], o["mag_error_max"]
    lf, lm = tuple(o["label_floor"]), tuple(o["label_sigma_max"])
    if survey == "gaia":
        return clean_gaia(df, floor, max_error, release, o["gaia_dr3"])
    if survey == "ps1":
        return clean_ps1(df, floor, max_error)
    if survey == "tmass":
        return clean_tmass(df, floor, max_error)
    if survey == "unwise":
        return clean_unwise(df, floor, max_error)
    if survey == "lamost":
        return clean_lamost(df, lf, lm)
    if survey == "apogee":
        return clean_apogee(df, lf, lm, tuple(o["apogee_cov_indices"]), release)
    return clean_galah(df, lf, lm, release)
