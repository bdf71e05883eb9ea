"""Survey quality cuts of the training catalog (METHOD.md §5; ARCHIVES.md §0-§8).

Pure, vectorised functions: a pandas DataFrame with the archive's own column names goes in.

* Row-level cuts (Gaia, LAMOST, APOGEE, GALAH, label uncertainties, 2MASS ``ext_key``) return a
  :class:`CutResult`: a boolean ``keep`` Series aligned with the input index, the per-cut failure
  masks and a :class:`Tally`.
* Band-level cuts (Gaia photometry, PS1, 2MASS, unWISE) return a :class:`BandPhotometry`: per-band
  magnitudes, errors and a boolean ``usable`` mask (columns named as in :mod:`ddstars.bands`).
  Unusable bands carry NaN magnitudes and errors, never a sentinel.

Comparisons follow the paper's code literally (strict ``>`` / ``<`` as written); float32 archive
columns are promoted to float64 before any arithmetic. The only tolerance is in the PS1 galaxy cut
(:data:`PS1_GALAXY_TOL`), where PSF and aperture magnitudes are stored as float32.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..bands import BANDS, MAG_ERR
from ..config import defaults
from ..errors import SchemaError
from ..registry import DEFAULT_RELEASE, SURVEY_TABLES

PS1_MISSING = -999.0
PS1_GALAXY_EXCESS = 0.1  # mag: PSF - aperture above this in any band marks a galaxy (ARCHIVES.md §0)
PS1_GALAXY_TOL = 1e-5  # mag: float32 storage of PS1 mags (ulp ~2e-6 at 16 mag); 0.1 + tol is the threshold
APOGEE_STAR_WARN = 1 << 7
APOGEE_STAR_BAD = 1 << 23
APOGEE_DUPLICATE = 1 << 4  # EXTRATARG (DR17): a lower-S/N duplicate of another row
MIN_LABEL_ERROR = 1e-5
LABEL_FLOOR = tuple(defaults("catalog")["label_floor"])  # Teff [K], log g, [Fe/H]
LABEL_MAX = tuple(defaults("catalog")["label_sigma_max"])
MAG_ERROR_FLOOR = defaults("catalog")["mag_error_floor"]  # [mag]
MAG_ERROR_MAX = defaults("catalog")["mag_error_max"]  # [mag]
LABEL_NAMES = ("teff", "logg", "feh")
# Which unWISE magnitude the catalog carries: "ab" (the paper's code adds 2.699 / 3.339 to the Vega
# magnitude; ARCHIVES.md §0, §5). ``unwise_bands`` returns both.
UNWISE_CATALOG_SYSTEM = "ab"


# --------------------------------------------------------------------------------------------- tallies
@dataclass(frozen=True)
class CutCount:
    """One cut: rows failing it (a row failing several cuts is counted under each), rows in and out.

    ``n_in`` is the table's row count and ``n_out = n_in - removed`` (cuts are counted independently,
    not in sequence).
    """

    name: str
    removed: int
    n_in: int
    n_out: int


@dataclass(frozen=True)
class Tally:
    """Per-cut counts of one table; ``n_kept + n_removed == n_in`` always holds."""

    table: str
    n_in: int
    n_kept: int
    n_removed: int
    cuts: tuple[CutCount, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {
            "table": self.table,
            "n_in": self.n_in,
            "n_kept": self.n_kept,
            "n_removed": self.n_removed,
            "cuts": [{"name": c.name, "removed": c.removed, "n_in": c.n_in, "n_out": c.n_out} for c in self.cuts],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per cut: name, removed, n_in, n_out."""
        return pd.DataFrame([c.__dict__ for c in self.cuts], columns=["name", "removed", "n_in", "n_out"])

    def removed(self, name: str) -> int:
        """Rows failing cut ``name``."""
        for c in self.cuts:
            if c.name == name:
                return c.removed
        raise KeyError(f"{self.table}: no cut named {name!r}; cuts: {', '.join(c.name for c in self.cuts)}")


@dataclass(frozen=True)
class CutResult:
    """Outcome of row-level cuts: ``keep`` (bool Series on the input index), ``fails`` (one bool column
    per cut, True where the row fails it) and ``tally``."""

    keep: pd.Series
    fails: pd.DataFrame
    tally: Tally


def cut_result(table: str, index: pd.Index, fails: Mapping[str, Any]) -> CutResult:
    n = len(index)
    frame = pd.DataFrame({k: np.asarray(v, dtype=bool).reshape(n) for k, v in fails.items()}, index=index)
    any_fail = frame.to_numpy().any(axis=1) if frame.shape[1] else np.zeros(n, dtype=bool)
    cuts = tuple(CutCount(name, int(frame[name].sum()), n, n - int(frame[name].sum())) for name in frame.columns)
    tally = Tally(table, n, int(n - any_fail.sum()), int(any_fail.sum()), cuts)
    return CutResult(pd.Series(~any_fail, index=index, name="keep"), frame, tally)


def combine(table: str, *results: CutResult) -> CutResult:
    """Join the cuts of several results on the same rows into one result (cut names must differ)."""
    if not results:
        raise ValueError("combine: no results given")
    index = results[0].keep.index
    fails: dict[str, np.ndarray] = {}
    for r in results:
        if not r.keep.index.equals(index):
            raise ValueError(f"combine({table}): results are on different rows")
        for name in r.fails.columns:
            if name in fails:
                raise ValueError(f"combine({table}): cut {name!r} appears twice")
            fails[name] = r.fails[name].to_numpy()
    return cut_result(table, index, fails)


# --------------------------------------------------------------------------------------------- helpers
def require_columns(df: pd.DataFrame, table: str, columns: Iterable[str]) -> None:
    """Raise :class:`SchemaError` naming the table, the missing columns and the columns found."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{table}: missing column(s) {', '.join(missing)}; columns found: {', '.join(map(str, df.columns))}"
        )


def float_column(df: pd.DataFrame, col: str) -> np.ndarray:
    """Column as float64, nullable values (pd.NA) as NaN."""
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _text(s: pd.Series) -> pd.Series:
    """String view of a text column; bytes (FITS) are decoded and padding stripped; nulls become ''."""
    if s.dtype == object:
        s = s.map(lambda v: v.decode("ascii", "replace") if isinstance(v, bytes) else v)
    return s.astype("string").fillna("").str.strip()


def _char(s: pd.Series, i: int) -> np.ndarray:
    """The i-th character of each string ('' where shorter) as a NumPy array of str."""
    return s.str.slice(i, i + 1).to_numpy(dtype=object, na_value="").astype(str)


def list_column(df: pd.DataFrame, table: str, col: str, width: int) -> np.ndarray:
    """A list/array column (e.g. APOGEE PARAM) as an (n, width) float64 array."""
    values = df[col].to_numpy()
    if len(values) == 0:
        return np.zeros((0, width))
    arr = np.vstack(values).astype(np.float64)
    if arr.shape[1] < width:
        raise SchemaError(f"{table}: column {col} has {arr.shape[1]} elements per row, expected >= {width}")
    return arr


# --------------------------------------------------------------------------------------------- Gaia DR2
GAIA_CUT_COLUMNS = (
    "visibility_periods_used",
    "astrometric_chi2_al",
    "astrometric_n_good_obs_al",
    "phot_g_n_obs",
    "phot_g_mean_mag",
)


def arenou_threshold(g_mag: np.ndarray) -> np.ndarray:
    """1.44 max(1, exp(-0.4 (G - 19.5))): the unit-weight-error limit of Arenou et al. (2018)."""
    return 1.44 * np.maximum(1.0, np.exp(-0.4 * (np.asarray(g_mag, dtype=np.float64) - 19.5)))


def gaia_cuts(df: pd.DataFrame, table: str = SURVEY_TABLES["gaia"]) -> CutResult:
    """Gaia DR2 astrometric and photometric quality cuts (METHOD.md §5; ARCHIVES.md §0, §1).

    Cuts: ``visibility_periods_used > 8``; chi2_al / (n_good_obs_al - 5) < 1.44 max(1, e^(-0.4(G-19.5)))
    (fails if n_good_obs_al <= 5 or the ratio is not finite); ``phot_g_n_obs > 2``; G present (finite).
    """
    require_columns(df, table, GAIA_CUT_COLUMNS)
    g = float_column(df, "phot_g_mean_mag")
    dof = float_column(df, "astrometric_n_good_obs_al") - 5.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float_column(df, "astrometric_chi2_al") / dof
    chi2_ok = (dof > 0) & np.isfinite(ratio) & (ratio < arenou_threshold(np.where(np.isfinite(g), g, 0.0)))
    return cut_result(
        table,
        df.index,
        {
            "visibility_periods_used": ~(float_column(df, "visibility_periods_used") > 8),
            "astrometric_chi2": ~chi2_ok,
            "phot_g_n_obs": ~(float_column(df, "phot_g_n_obs") > 2),
            "g_missing": ~np.isfinite(g),
        },
    )


# --------------------------------------------------------------------------------------------- Gaia DR3
GAIA_DR3_CUT_COLUMNS = ("visibility_periods_used", "ruwe", "phot_g_n_obs", "phot_g_mean_mag")
GAIA_DR3_ZERO_POINT_COLUMNS = (
    "phot_g_mean_mag",
    "nu_eff_used_in_astrometry",
    "pseudocolour",
    "ecl_lat",
    "astrometric_params_solved",
)


def gaia_dr3_cuts(df: pd.DataFrame, table: str, ruwe_max: float = 1.4) -> CutResult:
    """Gaia DR3 astrometric and photometric quality cuts (docs/releases.md): the paper's
    ``visibility_periods_used > 8`` and ``phot_g_n_obs > 2`` and G present, with ``ruwe < ruwe_max`` (Lindegren
    et al. 2021, a column of DR3) in place of DR2's astrometric χ² cut (a missing RUWE fails)."""
    require_columns(df, table, GAIA_DR3_CUT_COLUMNS)
    g = float_column(df, "phot_g_mean_mag")
    return cut_result(
        table,
        df.index,
        {
            "visibility_periods_used": ~(float_column(df, "visibility_periods_used") > 8),
            "ruwe": ~(float_column(df, "ruwe") < ruwe_max),
            "phot_g_n_obs": ~(float_column(df, "phot_g_n_obs") > 2),
            "g_missing": ~np.isfinite(g),
        },
    )


def bp_rp_excess_expected(bp_rp: np.ndarray) -> np.ndarray:
    """f(BP − RP): the flux excess C = (I_BP + I_RP) / I_G of a well-measured source of that colour (Riello et al.
    2021, Eq. 6 and Table 2)."""
    x = np.asarray(bp_rp, dtype=np.float64)
    return np.select(
        [x < 0.5, x < 4.0],
        [
            1.154360 + 0.033772 * x + 0.032277 * x**2,
            1.162004 + 0.011464 * x + 0.049255 * x**2 - 0.005879 * x**3,
        ],
        1.057572 + 0.140537 * x,
    )


def bp_rp_excess_sigma(g_mag: np.ndarray) -> np.ndarray:
    """σ_C*(G), the 1σ scatter of C* of well-measured sources (Riello et al. 2021, Eq. 18)."""
    return 0.0059898 + 8.817481e-12 * np.asarray(g_mag, dtype=np.float64) ** 7.618399


def bp_rp_excess_star(df: pd.DataFrame, table: str) -> np.ndarray:
    """C* = C − f(BP − RP) of every row (NaN where BP, RP or the excess factor is missing)."""
    require_columns(df, table, ("phot_bp_rp_excess_factor", "phot_bp_mean_mag", "phot_rp_mean_mag"))
    colour = float_column(df, "phot_bp_mean_mag") - float_column(df, "phot_rp_mean_mag")
    return float_column(df, "phot_bp_rp_excess_factor") - bp_rp_excess_expected(colour)


def gaia_dr3_excess_fails(df: pd.DataFrame, table: str, nsigma: float = 3.0) -> np.ndarray:
    """True where |C*| ≥ ``nsigma`` σ_C*(G): BP and RP of that source are not trusted (G is kept)."""
    c_star = bp_rp_excess_star(df, table)
    with np.errstate(invalid="ignore"):
        return np.abs(c_star) >= nsigma * bp_rp_excess_sigma(float_column(df, "phot_g_mean_mag"))


def gaia_dr3_parallax_zero_point(df: pd.DataFrame, table: str) -> np.ndarray:
    """The Lindegren et al. (2021) parallax zero-point [mas] of every row (``gaiadr3-zeropoint``; subtract it
    from ``parallax``), NaN where the recipe is not valid: G outside 6–21, ν_eff outside 1.1–1.9 (5-parameter
    solutions) or the pseudocolour outside 1.24–1.72 (6-parameter), and 2-parameter solutions, which have no
    parallax."""
    from zero_point import zpt

    require_columns(df, table, GAIA_DR3_ZERO_POINT_COLUMNS)
    if not getattr(zpt, "_ddstars_loaded", False):
        zpt.load_tables()
        zpt._ddstars_loaded = True
    solved = pd.to_numeric(df["astrometric_params_solved"], errors="coerce").to_numpy()
    ok = np.isin(solved, (31, 95))
    out = np.full(len(df), np.nan)
    if ok.any():
        cols = [float_column(df, c)[ok] for c in GAIA_DR3_ZERO_POINT_COLUMNS[:4]]
        out[ok] = zpt.get_zpt(*cols, solved[ok].astype(np.int64), _warnings=False)
    return out


@dataclass(frozen=True)
class BandPhotometry:
    """Per-band magnitudes ``mag``, errors ``err`` and ``usable`` mask (DataFrames on the input index,
    one column per band name of :mod:`ddstars.bands`). ``mag``/``err`` are NaN where not usable.
    ``extra`` holds survey-specific by-products (e.g. unWISE Vega magnitudes, the PS1 galaxy flag)."""

    mag: pd.DataFrame
    err: pd.DataFrame
    usable: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)

    def with_error_floor(self, floor: float = MAG_ERROR_FLOOR, max_error: float = MAG_ERROR_MAX) -> BandPhotometry:
        """Apply :func:`apply_error_floor` to every band."""
        err, ok = apply_error_floor(self.err, floor=floor, max_error=max_error)
        ok = ok & self.usable
        return BandPhotometry(self.mag.where(ok), err.where(ok), ok, dict(self.extra))


def _bands(index: pd.Index, names: Sequence[str], mag: np.ndarray, err: np.ndarray, ok: np.ndarray, **extra: Any):
    ok = ok & np.isfinite(mag) & np.isfinite(err)
    return BandPhotometry(
        pd.DataFrame(np.where(ok, mag, np.nan), index=index, columns=list(names)),
        pd.DataFrame(np.where(ok, err, np.nan), index=index, columns=list(names)),
        pd.DataFrame(ok, index=index, columns=list(names)),
        extra,
    )


def gaia_photometry(df: pd.DataFrame, table: str = SURVEY_TABLES["gaia"]) -> BandPhotometry:
    """G, BP, RP magnitudes with sigma = (2.5/ln 10) / phot_*_mean_flux_over_error (before any floor).

    A band is usable where its magnitude is finite and flux_over_error is finite and > 0.
    """
    cols = [f"phot_{b}_mean_{k}" for b in ("g", "bp", "rp") for k in ("mag", "flux_over_error")]
    require_columns(df, table, cols)
    mag = np.stack([float_column(df, f"phot_{b}_mean_mag") for b in ("g", "bp", "rp")], axis=1)
    foe = np.stack([float_column(df, f"phot_{b}_mean_flux_over_error") for b in ("g", "bp", "rp")], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = MAG_ERR / foe
    return _bands(df.index, ["gaia_g", "gaia_bp", "gaia_rp"], mag, err, foe > 0)


# --------------------------------------------------------------------------------------------- spectra
def _label_fails(df: pd.DataFrame, values: Sequence[np.ndarray], errors: Sequence[np.ndarray]) -> dict[str, Any]:
    err = np.stack(errors, axis=1)
    val = np.stack(values, axis=1)
    return {
        "label_error_too_small": ~np.all(err > MIN_LABEL_ERROR, axis=1),  # NaN errors fail too
        "label_not_finite": ~np.all(np.isfinite(val), axis=1),
    }


LAMOST_COLUMNS = (
    *(f"snr_{b}" for b in "ugriz"),
    "qflag_chi2",
    "flag_singlestar",
    "teff",
    "teff_err",
    "logg",
    "logg_err",
    "feh",
    "feh_err",
)


def lamost_cuts(df: pd.DataFrame, table: str = SURVEY_TABLES["lamost"]) -> CutResult:
    """LAMOST DR5 DD-Payne cuts: any snr_[ugriz] > 20; qflag_chi2 == 'good'; flag_singlestar == 'YES';
    all three errors > 1e-5; finite labels. (Uncertainty maxima: :func:`label_uncertainty_cuts`.)"""
    require_columns(df, table, LAMOST_COLUMNS)
    snr = np.stack([float_column(df, f"snr_{b}") for b in "ugriz"], axis=1)
    return cut_result(
        table,
        df.index,
        {
            "low_snr": ~np.any(snr > 20, axis=1),
            "qflag_chi2": (_text(df["qflag_chi2"]) != "good").to_numpy(),
            "flag_singlestar": (_text(df["flag_singlestar"]) != "YES").to_numpy(),
            **_label_fails(
                df,
                [float_column(df, c) for c in ("teff", "logg", "feh")],
                [float_column(df, c) for c in ("teff_err", "logg_err", "feh_err")],
            ),
        },
    )


def lamost_sigma(df: pd.DataFrame) -> np.ndarray:
    """(n, 3) reported LAMOST label errors (teff_err, logg_err, feh_err), float64."""
    return np.stack([float_column(df, c) for c in ("teff_err", "logg_err", "feh_err")], axis=1)


APOGEE_COLUMNS = ("ASPCAPFLAG", "TEFF_ERR", "LOGG_ERR", "M_H_ERR", "PARAM")
APOGEE_PARAM_IDX = (0, 1, 3)  # Teff, logg, [M/H] in PARAM/FPARAM


def apogee_cuts(df: pd.DataFrame, table: str = SURVEY_TABLES["apogee"], duplicates: bool = False) -> CutResult:
    """APOGEE DR16 cuts: ASPCAPFLAG has neither STAR_WARN (bit 7) nor STAR_BAD (bit 23); TEFF_ERR,
    LOGG_ERR, M_H_ERR > 1e-5; PARAM[0], PARAM[1], PARAM[3] finite. Other ASPCAPFLAG bits are ignored.
    ``duplicates`` (DR17, with the same ASPCAPFLAG bits): also cut ``duplicate``, EXTRATARG bit 4 (the lower-S/N
    entries of a star observed more than once, which DR17 keeps as rows of their own)."""
    require_columns(df, table, (*APOGEE_COLUMNS, *(("EXTRATARG",) if duplicates else ())))
    flag = pd.to_numeric(df["ASPCAPFLAG"]).fillna(0).to_numpy().astype(np.int64)
    param = list_column(df, table, "PARAM", 4)[:, list(APOGEE_PARAM_IDX)]
    extra = {}
    if duplicates:
        extra["duplicate"] = (
            pd.to_numeric(df["EXTRATARG"]).fillna(0).to_numpy().astype(np.int64) & APOGEE_DUPLICATE
        ) != 0
    return cut_result(
        table,
        df.index,
        {
            "star_warn": (flag & APOGEE_STAR_WARN) != 0,
            "star_bad": (flag & APOGEE_STAR_BAD) != 0,
            **extra,
            **_label_fails(
                df,
                [param[:, 0], param[:, 1], param[:, 2]],
                [float_column(df, c) for c in ("TEFF_ERR", "LOGG_ERR", "M_H_ERR")],
            ),
        },
    )


def galah_snr_prefix(release: str = DEFAULT_RELEASE) -> str:
    """Column prefix of GALAH's per-CCD S/N: ``snr_c`` (DR2, release dr2), ``snr_px_ccd`` (DR4, release dr3)."""
    return "snr_c" if release == DEFAULT_RELEASE else "snr_px_ccd"


def galah_flag(release: str = DEFAULT_RELEASE) -> str:
    """GALAH's overall quality flag: ``flag_cannon`` (DR2), ``flag_sp`` (DR4; the release advises ``flag_sp == 0``
    and not to cut on ``flag_fe_h``, which is known to be wrong)."""
    return "flag_cannon" if release == DEFAULT_RELEASE else "flag_sp"


GALAH_DR4_SNR_MIN = 30.0  # snr_px_ccd3 above this (GALAH DR4 "using the data": stellar parameters)


def galah_cuts(df: pd.DataFrame, table: str = SURVEY_TABLES["galah"], release: str = DEFAULT_RELEASE) -> CutResult:
    """GALAH DR2 cuts: flag_cannon == 0; any snr_c1..c4 > 20; e_teff, e_logg, e_fe_h > 1e-5; finite labels.
    DR4 (release dr3), as that release advises for stellar parameters: flag_sp == 0 in place of flag_cannon and
    snr_px_ccd3 > 30 (the red camera) in place of the S/N rule."""
    flag, prefix = galah_flag(release), galah_snr_prefix(release)
    labels = ("teff", "e_teff", "logg", "e_logg", "fe_h", "e_fe_h")
    require_columns(df, table, (flag, *(f"{prefix}{i}" for i in range(1, 5)), *labels))
    if release == DEFAULT_RELEASE:
        snr = np.stack([float_column(df, f"{prefix}{i}") for i in range(1, 5)], axis=1)
        low_snr = ~np.any(snr > 20, axis=1)
    else:
        low_snr = ~(float_column(df, f"{prefix}3") > GALAH_DR4_SNR_MIN)
    return cut_result(
        table,
        df.index,
        {
            flag: ~(float_column(df, flag) == 0),
            "low_snr": low_snr,
            **_label_fails(
                df,
                [float_column(df, c) for c in ("teff", "logg", "fe_h")],
                [float_column(df, c) for c in ("e_teff", "e_logg", "e_fe_h")],
            ),
        },
    )


def label_uncertainty_cuts(
    sigma: Any,
    floor: Sequence[float] = LABEL_FLOOR,
    sigma_max: Sequence[float] = LABEL_MAX,
    table: str = "labels",
) -> tuple[np.ndarray, CutResult]:
    """Add the label floors in quadrature, then reject rows whose floored sigma exceeds the maximum.

    ``sigma`` is an (n, 3) array or DataFrame of (Teff, log g, [Fe/H]) uncertainties. The floored value
    is ``sqrt(sigma**2 + floor**2)`` in float64 and a row fails when it is *strictly greater* than
    ``sigma_max`` (a floored value equal to the maximum is kept) or not finite.
    Returns ``(sigma_floored, result)``; the cuts are ``sigma_teff_max``, ``sigma_logg_max``,
    ``sigma_feh_max``.
    """
    index = sigma.index if isinstance(sigma, pd.DataFrame) else None
    s = np.asarray(sigma, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != 3:
        raise ValueError(f"label_uncertainty_cuts: sigma must have shape (n, 3), got {s.shape}")
    floored = np.sqrt(s**2 + np.asarray(floor, dtype=np.float64) ** 2)
    bad = ~(floored <= np.asarray(sigma_max, dtype=np.float64))  # NaN fails
    idx = index if index is not None else pd.RangeIndex(len(s))
    res = cut_result(table, idx, {f"sigma_{name}_max": bad[:, j] for j, name in enumerate(LABEL_NAMES)})
    return floored, res


# --------------------------------------------------------------------------------------------- photometry
def apply_error_floor(sigma: Any, floor: float = MAG_ERROR_FLOOR, max_error: float = MAG_ERROR_MAX) -> tuple[Any, Any]:
    """sigma -> sqrt(sigma**2 + floor**2); bands whose floored error is strictly greater than
    ``max_error`` (or not finite) are unobserved.

    Returns ``(sigma_floored, usable)`` of the input's type (DataFrame or array): ``sigma_floored`` is NaN
    where not usable, ``usable`` a bool mask. Floored values exactly equal to ``max_error`` are kept.
    """
    if isinstance(sigma, pd.DataFrame):
        s = sigma.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        s = np.asarray(sigma, dtype=np.float64)
    floored = np.sqrt(s**2 + float(floor) ** 2)
    ok = floored <= max_error
    floored = np.where(ok, floored, np.nan)
    if isinstance(sigma, pd.DataFrame):
        return (
            pd.DataFrame(floored, index=sigma.index, columns=sigma.columns),
            pd.DataFrame(ok, index=sigma.index, columns=sigma.columns),
        )
    return floored, ok


TMASS_BANDS = (("j", "tmass_j"), ("h", "tmass_h"), ("k", "tmass_ks"))
TMASS_COLUMNS = (
    *(f"{b}_m" for b, _ in TMASS_BANDS),
    *(f"{b}_msigcom" for b, _ in TMASS_BANDS),
    "ph_qual",
    "rd_flg",
    "cc_flg",
    "use_src",
    "gal_contam",
    "ext_key",
)


def tmass_bands(df: pd.DataFrame, table: str = SURVEY_TABLES["tmass"]) -> tuple[BandPhotometry, CutResult]:
    """2MASS PSC band cuts (ARCHIVES.md §4) and the row-level extended-source cut.

    Band b is usable if ``(ph_qual[b] == 'A' or rd_flg[b] in '13') and cc_flg[b] == '0'`` and the source
    has ``use_src == 1 and gal_contam == 0`` (and a finite magnitude and error). The second value is a
    :class:`CutResult` with one cut, ``ext_key``: a star with ``ext_key > 0`` is dropped; a null
    ext_key means no associated extended source.
    """
    require_columns(df, table, TMASS_COLUMNS)
    qual, rd, cc = (_text(df[c]) for c in ("ph_qual", "rd_flg", "cc_flg"))
    source_ok = (float_column(df, "use_src") == 1) & (float_column(df, "gal_contam") == 0)
    ok = np.stack(
        [
            ((_char(qual, i) == "A") | np.isin(_char(rd, i), ["1", "3"])) & (_char(cc, i) == "0") & source_ok
            for i in range(3)
        ],
        axis=1,
    )
    mag = np.stack([float_column(df, f"{b}_m") for b, _ in TMASS_BANDS], axis=1)
    err = np.stack([float_column(df, f"{b}_msigcom") for b, _ in TMASS_BANDS], axis=1)
    ext = float_column(df, "ext_key")
    ext_cut = cut_result(table, df.index, {"ext_key": np.nan_to_num(ext, nan=0.0) > 0})
    return _bands(df.index, [n for _, n in TMASS_BANDS], mag, err, ok), ext_cut


UNWISE_BANDS = (("w1", "unwise_w1"), ("w2", "unwise_w2"))
_AB_MINUS_VEGA = {b.name: b.ab_minus_vega for b in BANDS}


def unwise_bands(df: pd.DataFrame, table: str = SURVEY_TABLES["unwise"]) -> BandPhotometry:
    """unWISE band cuts and magnitudes (ARCHIVES.md §0, §5).

    Band usable if ``flags_unwise == 0``, ``fracflux > 0.5``, ``rchi2 <= 5`` and ``flux > 0``.
    Vega magnitude 22.5 - 2.5 log10(flux) [flux in Vega nanomaggies], error (2.5/ln 10) dflux/flux.
    ``mag`` is the AB magnitude (Vega + 2.699 for W1, + 3.339 for W2), which is what the catalog carries
    (:data:`UNWISE_CATALOG_SYSTEM`, as in the paper's code); ``extra["mag_vega"]`` holds the Vega values.
    """
    cols = [f"{c}_{b}" for b, _ in UNWISE_BANDS for c in ("flux", "dflux", "rchi2", "fracflux", "flags_unwise")]
    require_columns(df, table, cols)
    names = [n for _, n in UNWISE_BANDS]
    flux = np.stack([float_column(df, f"flux_{b}") for b, _ in UNWISE_BANDS], axis=1)
    dflux = np.stack([float_column(df, f"dflux_{b}") for b, _ in UNWISE_BANDS], axis=1)
    ok = np.stack(
        [
            (float_column(df, f"flags_unwise_{b}") == 0)
            & (float_column(df, f"fracflux_{b}") > 0.5)
            & (float_column(df, f"rchi2_{b}") <= 5)
            for b, _ in UNWISE_BANDS
        ],
        axis=1,
    ) & (flux > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vega = 22.5 - 2.5 * np.log10(np.where(flux > 0, flux, np.nan))
        err = MAG_ERR * dflux / flux
    ab = vega + np.array([_AB_MINUS_VEGA[name] for _, name in UNWISE_BANDS])[None, :]
    res = _bands(df.index, names, ab, err, ok)
    res.extra["mag_vega"] = pd.DataFrame(np.where(res.usable, vega, np.nan), index=df.index, columns=names)
    return res


PS1_FILTERS = "grizy"


def ps1_bands(df: pd.DataFrame, table: str = SURVEY_TABLES["ps1"]) -> BandPhotometry:
    """PS1 mean PSF photometry (ARCHIVES.md §0, §3; public MeanObject approximation of the paper's ubercal).

    Band present where ``n<band> > 0``, the PSF magnitude is not -999 and magnitude and error are finite.
    Galaxy cut: a source with PSF - aperture > 0.1 mag in any present band loses all its PS1 photometry
    (``extra["galaxy"]``). Because PS1 magnitudes are float32, the comparison is
    ``psf - ap > 0.1 + PS1_GALAXY_TOL`` (1e-5 mag) so that a stored excess of 0.1 is kept.
    """
    cols = [
        f"{p}{b}{s}" for b in PS1_FILTERS for p, s in (("", "MeanPSFMag"), ("", "MeanPSFMagErr"), ("", "MeanApMag"))
    ]
    require_columns(df, table, [*(f"n{b}" for b in PS1_FILTERS), *cols])
    psf = np.stack([float_column(df, f"{b}MeanPSFMag") for b in PS1_FILTERS], axis=1)
    err = np.stack([float_column(df, f"{b}MeanPSFMagErr") for b in PS1_FILTERS], axis=1)
    ap = np.stack([float_column(df, f"{b}MeanApMag") for b in PS1_FILTERS], axis=1)
    nobs = np.stack([float_column(df, f"n{b}") for b in PS1_FILTERS], axis=1)
    present = (nobs > 0) & (psf != PS1_MISSING) & (err != PS1_MISSING) & np.isfinite(psf) & np.isfinite(err)
    ap_ok = present & (ap != PS1_MISSING) & np.isfinite(ap)
    excess = np.where(ap_ok, psf - ap, -np.inf)
    galaxy = np.any(excess > PS1_GALAXY_EXCESS + PS1_GALAXY_TOL, axis=1)
    names = [f"ps1_{b}" for b in PS1_FILTERS]
    return _bands(df.index, names, psf, err, present & ~galaxy[:, None], galaxy=pd.Series(galaxy, index=df.index))
