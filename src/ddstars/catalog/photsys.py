"""Photometric-system check of a catalog against the dwarf stellar locus.

A band given in the wrong system (unWISE in Vega where the catalog expects AB, 2MASS or Gaia in AB where it
expects Vega), fluxes instead of magnitudes, or two swapped bands pass the schema validation and train a wrong
model. This check catches them from the colours of dwarfs (Teff 5000-6000 K, log g >= 4, E(B-V) prior <= 0.1):
for each band b other than the reference ``gaia_g``,

    offset_b = median over those stars of  (m_b - m_G) - ebv_prior (R_b - R_G) - locus_b(Teff),

with the dust-free colours ``locus_b`` and reddening differences ``R_b - R_G`` of two reference loci
(:data:`REFERENCES`), each band judged against the closer one: the bundled table ``ddstars/data/locus_dwarfs.csv``
(made by ``python -m ddstars.catalog.make_locus`` from the simulated sky's synthetic photometry; see that module
for its provenance), and the published Green et al. (2021) model at each star's θ (learned from real stars; it
differs from the simulated sky's colours by up to 0.26 mag in H and W2). A positive offset means the column is
fainter than predicted.

* A band is checked when at least ``min_stars`` selected stars have it and G; it is flagged when
  ``|offset| > threshold``.
* When at least 2/3 of the checked bands share an offset (within 0.1 mag of their median) larger than the threshold,
  the reference band is at fault: G is flagged with minus that offset and the other offsets are re-referenced.
* Causes, matched within 0.15 mag: Vega given where AB is expected (offset ``-(AB - Vega)``, unWISE), AB given where
  Vega is expected (``+(AB - Vega)``, Gaia and 2MASS), fluxes instead of magnitudes (|offset| > 8 mag or a median
  value outside 5-30 "mag"), two bands swapped (opposite offsets, both above half the threshold, that the exchanged
  columns bring back onto the locus), otherwise an unknown zero-point offset. The AB - Vega offsets are the
  project's published ones (:data:`ddstars.bands.BANDS`): m_Vega = m_AB - ab_minus_vega.

:func:`check_photometry` returns a :class:`PhotometryReport` (``to_dict()`` gives a JSON-serialisable dict);
:func:`enforce` logs one WARNING per finding and, when strict, raises :class:`ddstars.errors.DataError`.
``python -m ddstars.catalog.photsys PATH [--strict]`` checks the catalog at PATH and prints the report as JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from ..bands import BAND_NAMES, BANDS
from ..errors import ConfigError, DataError, SchemaError

log = logging.getLogger(__name__)

REFERENCE = "gaia_g"
#: Photometric system of each band's ``mag_`` column in the catalog (workflow/schemas/catalog.schema.yaml).
CATALOG_SYSTEM: dict[str, str] = {b.name: ("ab" if b.survey in ("ps1", "unwise") else "vega") for b in BANDS}
#: Published AB - Vega offsets [mag] (m_Vega = m_AB - ab_minus_vega).
AB_MINUS_VEGA: dict[str, float] = {b.name: b.ab_minus_vega for b in BANDS}
LOCUS_RESOURCE = "data/locus_dwarfs.csv"

SIGNATURE_TOL = 0.15  # mag: an offset matches a known signature within this
COMMON_TOL = 0.1  # mag: bands within this of the median offset share the common offset
COMMON_FRACTION = 2.0 / 3.0  # of the checked bands, for the reference band to be blamed
FLUX_OFFSET = 8.0  # mag: larger offsets mean fluxes, not magnitudes
PLAUSIBLE_MAG = (5.0, 30.0)  # median "magnitude" of the selected dwarfs outside this: fluxes

CAUSES = ("vega_instead_of_ab", "ab_instead_of_vega", "flux_instead_of_magnitude", "swapped", "zero_point")

OK, FLAGGED, NOT_CHECKED, REFERENCE_STATUS = "ok", "flagged", "not checked", "reference"


@dataclass
class BandCheck:
    """Outcome for one band: ``status`` is ok, flagged, not checked or reference (G when not flagged)."""

    band: str
    column: str
    status: str
    n_stars: int
    offset: float | None  # mag, given - reference (positive: fainter); None when not checked
    note: str = ""
    reference: str = ""  # which reference locus the offset is from (the closer of REFERENCES)
    offsets: dict[str, float] = field(default_factory=dict)  # the offset from each reference locus


@dataclass
class Finding:
    """One flagged band, its offset from the locus, the likely cause (one of :data:`CAUSES`) and a message."""

    band: str
    column: str
    offset: float | None  # mag, given - locus; None for a reference band holding fluxes
    n_stars: int
    cause: str
    message: str
    partner: str | None = None  # the other band of a swap


@dataclass
class PhotometryReport:
    """Result of :func:`check_photometry`; ``to_dict()`` is JSON-serialisable."""

    threshold: float
    selection: dict[str, Any]
    n_selected: int
    reference_offset: float  # common offset of the other bands blamed on G (0 if none)
    bands: list[BandCheck] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    locus: str = LOCUS_RESOURCE

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


# ------------------------------------------------------------------------------------------------- locus
@functools.lru_cache(maxsize=1)
def _locus_arrays() -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    with resources.files("ddstars").joinpath(LOCUS_RESOURCE).open() as fh:
        t = pd.read_csv(fh, comment="#")
    teff = t["teff"].to_numpy(float)
    colour = {b: t[f"c_{b}"].to_numpy(float) for b in BAND_NAMES if b != REFERENCE}
    dr = {b: t[f"dr_{b}"].to_numpy(float) for b in BAND_NAMES if b != REFERENCE}
    return teff, colour, dr


def load_locus() -> pd.DataFrame:
    """The bundled locus: ``teff`` [K], ``c_<band>`` = m_band - m_G and ``dr_<band>`` = R_band - R_G [mag]."""
    teff, colour, dr = _locus_arrays()
    return pd.DataFrame(
        {"teff": teff, **{f"c_{b}": v for b, v in colour.items()}, **{f"dr_{b}": v for b, v in dr.items()}}
    )


# ------------------------------------------------------------------------------------------------- check
def _column(df: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _median(x: np.ndarray) -> float:
    return float(np.median(x)) if x.size else float("nan")


def _direction(offset: float) -> str:
    return "fainter" if offset > 0 else "brighter"


def _system_signature(band: str) -> tuple[str, float] | None:
    """(cause, expected offset) of the band given in the other magnitude system, or None (PS1: AB only)."""
    d = AB_MINUS_VEGA[band]
    if d == 0:
        return None
    if CATALOG_SYSTEM[band] == "ab":
        return "vega_instead_of_ab", -d  # m_Vega = m_AB - d: the column is d brighter
    return "ab_instead_of_vega", d


def _explain(cause: str, band: str, median_value: float) -> str:
    d = AB_MINUS_VEGA[band]
    if cause == "vega_instead_of_ab":
        return f"it looks like Vega magnitudes, the catalog expects AB (add {d:.3f})"
    if cause == "ab_instead_of_vega":
        return f"it looks like AB magnitudes, the catalog expects Vega (subtract {d:.3f})"
    if cause == "flux_instead_of_magnitude":
        conv = "m = 22.5 - 2.5 log10(flux)"
        if band.startswith("unwise"):
            conv += f" for Vega nanomaggies, then add {d:.3f} for AB"
        return f"its median value {median_value:.4g} looks like fluxes (e.g. nanomaggies), not magnitudes ({conv})"
    return "unknown zero-point offset; check the band's photometric system and calibration"


def _message(band: str, offset: float, n: int, cause: str, median_value: float, extra: str = "") -> str:
    head = (
        f"mag_{band} is {abs(offset):.2f} mag {_direction(offset)} than the stellar locus predicts "
        f"(median of {n} dwarfs{extra})"
    )
    if cause == "zero_point":
        return f"{head}: unknown zero-point offset of {offset:+.2f} mag (check the band's photometric system)."
    return f"{head}: {_explain(cause, band, median_value)}."


def _classify(band: str, offset: float, median_value: float) -> str:
    lo, hi = PLAUSIBLE_MAG
    if abs(offset) > FLUX_OFFSET or not lo <= median_value <= hi:
        return "flux_instead_of_magnitude"
    sig = _system_signature(band)
    if sig is not None and abs(offset - sig[1]) <= SIGNATURE_TOL:
        return sig[0]
    return "zero_point"


#: The reference loci: the simulated sky's synthetic photometry (the bundled table), and the colours and
#: reddening vector of the published Green et al. (2021) model (real stars) at each star's θ. Each band is
#: judged against the closer of the two, so a catalog of real stars and the simulated sky both pass, while a
#: mistake of a magnitude system (0.9-3.3 mag) or a swap is far from both.
REFERENCES = ("locus", "published")


@functools.lru_cache(maxsize=1)
def _published():
    from ..model.published import load_published

    return load_published()


def _published_colours(theta: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(M_b - M_G, R_b - R_G) of the published model at ``theta`` (n, 3), per non-G band."""
    model = _published()
    m = model.predict_absolute_magnitudes(theta)
    r = model.reddening_vector(theta)
    i0 = BAND_NAMES.index(REFERENCE)
    return (
        {b: m[:, i] - m[:, i0] for i, b in enumerate(BAND_NAMES) if b != REFERENCE},
        {b: r[:, i] - r[:, i0] for i, b in enumerate(BAND_NAMES) if b != REFERENCE},
    )


def check_photometry(
    df: pd.DataFrame,
    threshold: float = 0.2,
    teff_range: tuple[float, float] = (5000.0, 6000.0),
    logg_min: float = 4.0,
    ebv_max: float = 0.1,
    feh_range: tuple[float, float] = (-1.0, 0.5),
    min_stars: int = 30,
    references: tuple[str, ...] = REFERENCES,
) -> PhotometryReport:
    """Compare each band's colour relative to G with the dwarf locus and name the likely cause of any offset.

    Parameters
    ----------
    df : pandas.DataFrame
        Columns ``teff``, ``logg``, ``feh``, ``ebv_prior`` and ``mag_<band>`` (NaN: unobserved; a missing band
        column is reported as not checked). ``err_<band>`` is not needed.
    threshold : float
        A band is flagged when its offset from the locus exceeds this [mag].
    teff_range, logg_min, ebv_max, feh_range
        Selection of the dwarfs compared with the locus (Teff [K] inside the locus grid, log g, E(B-V) prior, [Fe/H]).
    min_stars : int
        Fewest selected stars with the band and G for the band to be checked.
    references : tuple of str
        Reference loci among :data:`REFERENCES`; each band's offset is from the closest.

    Returns
    -------
    PhotometryReport

    Raises
    ------
    SchemaError
        If a label column, ``ebv_prior`` or ``mag_gaia_g`` is missing.
    ConfigError
        If ``teff_range`` leaves the locus grid or ``threshold`` is not positive.
    """
    need = ["teff", "logg", "feh", "ebv_prior", f"mag_{REFERENCE}"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise SchemaError(f"photometric-system check needs columns {', '.join(missing)} (missing from the table)")
    if not threshold > 0:
        raise ConfigError(f"threshold must be positive [mag]; got {threshold}")
    grid, colour, dr = _locus_arrays()
    if teff_range[0] < grid[0] or teff_range[1] > grid[-1] or teff_range[0] >= teff_range[1]:
        raise ConfigError(
            f"teff_range {teff_range} must be an interval inside the locus grid {grid[0]:.0f}-{grid[-1]:.0f} K"
        )

    teff, logg, feh, ebv = (_column(df, c) for c in need[:4])
    with np.errstate(invalid="ignore"):
        sel = (
            (teff >= teff_range[0])
            & (teff <= teff_range[1])
            & (logg >= logg_min)
            & (ebv <= ebv_max)
            & (feh >= feh_range[0])
            & (feh <= feh_range[1])
        )
    sel &= np.isfinite(ebv)
    mag_g = _column(df, f"mag_{REFERENCE}")
    base = sel & np.isfinite(mag_g)
    n_g = int(base.sum())
    selection = {
        "teff_range": [float(teff_range[0]), float(teff_range[1])],
        "logg_min": float(logg_min),
        "ebv_max": float(ebv_max),
        "feh_range": [float(feh_range[0]), float(feh_range[1])],
        "min_stars": int(min_stars),
    }
    report = PhotometryReport(float(threshold), selection, int(sel.sum()), 0.0)
    others = [b for b in BAND_NAMES if b != REFERENCE]

    def not_checked(note: str) -> None:
        report.bands = [BandCheck(REFERENCE, f"mag_{REFERENCE}", NOT_CHECKED, n_g, None, note)] + [
            BandCheck(b, f"mag_{b}", NOT_CHECKED, 0, None, note) for b in others
        ]

    if n_g < min_stars:
        not_checked(f"{n_g} selected stars with mag_{REFERENCE} (fewer than {min_stars})")
        return report
    med_g = _median(mag_g[base])
    if not PLAUSIBLE_MAG[0] <= med_g <= PLAUSIBLE_MAG[1]:
        not_checked(f"reference band mag_{REFERENCE} unusable")
        report.bands[0] = BandCheck(REFERENCE, f"mag_{REFERENCE}", FLAGGED, n_g, None, "")
        msg = (
            f"mag_{REFERENCE} (the reference band, {n_g} dwarfs): "
            f"{_explain('flux_instead_of_magnitude', REFERENCE, med_g)}; no other band could be checked."
        )
        report.findings.append(Finding(REFERENCE, f"mag_{REFERENCE}", None, n_g, "flux_instead_of_magnitude", msg))
        return report

    # Predicted m_b - m_G per selected star (vectorised over stars; the loop runs over the 12 bands).
    unknown = sorted(set(references) - set(REFERENCES))
    if unknown or not references:
        raise ConfigError(f"references must be some of {list(REFERENCES)}; got {list(references)}")
    t_sel, e_sel = teff[base], ebv[base]
    ref_colour: dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = {}
    if "locus" in references:
        ref_colour["locus"] = (
            {b: np.interp(t_sel, grid, colour[b]) for b in colour},
            {b: np.interp(t_sel, grid, dr[b]) for b in dr},
        )
    if "published" in references:
        ref_colour["published"] = _published_colours(np.column_stack([t_sel, logg[base], feh[base]]))
    mags: dict[str, np.ndarray] = {}
    pred: dict[str, np.ndarray] = {}
    all_preds: dict[str, dict[str, np.ndarray]] = {}
    raw: dict[str, dict[str, float]] = {}
    checks: dict[str, BandCheck] = {}
    medians: dict[str, float] = {}
    for b in others:
        col = f"mag_{b}"
        if col not in df.columns:
            checks[b] = BandCheck(b, col, NOT_CHECKED, 0, None, "column missing")
            continue
        mags[b] = _column(df, col)[base]
        ok = np.isfinite(mags[b])
        n = int(ok.sum())
        if n < min_stars:
            checks[b] = BandCheck(b, col, NOT_CHECKED, n, None, f"{n} selected stars (fewer than {min_stars})")
            continue
        medians[b] = _median(mags[b][ok])
        preds = {ref: c[b] + e_sel * d[b] for ref, (c, d) in ref_colour.items()}
        offsets = {ref: _median(mags[b][ok] - mag_g[base][ok] - p[ok]) for ref, p in preds.items()}
        best = min(offsets, key=lambda ref: abs(offsets[ref]))
        pred[b], all_preds[b], raw[b] = preds[best], preds, offsets
        rounded = {ref: round(v, 3) + 0.0 for ref, v in offsets.items()}
        checks[b] = BandCheck(b, col, OK, n, offsets[best], reference=best, offsets=rounded)

    # The reference band: a common offset shared by most checked bands is G's (with the opposite sign).
    checked = [b for b in others if checks[b].status == OK]
    common = 0.0
    if len(checked) >= 3:
        off = np.array([checks[b].offset for b in checked])
        c = float(np.median(off))
        n_close = int(np.sum(np.abs(off - c) <= COMMON_TOL))
        if abs(c) > threshold and n_close >= COMMON_FRACTION * len(checked):
            common = c
            for b in checked:  # each band against the reference closer once G's offset is taken out
                best = min(raw[b], key=lambda ref, b=b: abs(raw[b][ref] - c))
                checks[b].offset, checks[b].reference, pred[b] = raw[b][best] - c, best, all_preds[b][best]
            note = f", from the common offset of {n_close} of {len(checked)} other bands relative to it"
            cause = _classify(REFERENCE, -c, med_g)
            msg = _message(REFERENCE, -c, n_g, cause, med_g, note).replace(
                f"mag_{REFERENCE} is", f"mag_{REFERENCE} (the reference band) is", 1
            )
            report.findings.append(Finding(REFERENCE, f"mag_{REFERENCE}", round(-c, 3), n_g, cause, msg))
    report.reference_offset = round(common, 3) + 0.0
    g_status = FLAGGED if common else REFERENCE_STATUS
    report.bands.append(BandCheck(REFERENCE, f"mag_{REFERENCE}", g_status, n_g, round(-common, 3) + 0.0))

    # Swaps: two bands with opposite offsets above half the threshold that the exchanged columns explain.
    g_sel = mag_g[base]
    candidates = [b for b in checked if abs(checks[b].offset) > threshold / 2]
    pairs = []
    for b1, b2 in combinations(candidates, 2):
        o1, o2 = checks[b1].offset, checks[b2].offset
        if o1 * o2 >= 0:
            continue
        ok1, ok2 = np.isfinite(mags[b2]), np.isfinite(mags[b1])
        s1 = _median(mags[b2][ok1] - g_sel[ok1] - pred[b1][ok1]) - common  # column b2 read as band b1
        s2 = _median(mags[b1][ok2] - g_sel[ok2] - pred[b2][ok2]) - common
        worst = max(abs(s1), abs(s2))
        if worst <= SIGNATURE_TOL and worst < 0.5 * min(abs(o1), abs(o2)):
            pairs.append((worst, b1, b2))
    swapped: dict[str, tuple[str, float]] = {}
    for worst, b1, b2 in sorted(pairs):
        if b1 not in swapped and b2 not in swapped:
            swapped[b1], swapped[b2] = (b2, worst), (b1, worst)

    for b in others:
        chk = checks[b]
        if chk.status == OK:
            chk.offset = round(chk.offset, 3) + 0.0  # + 0.0: no -0.0
        if chk.status != OK or (abs(chk.offset) <= threshold and b not in swapped):
            report.bands.append(chk)
            continue
        chk.status = FLAGGED
        report.bands.append(chk)
        if b in swapped:
            partner, worst = swapped[b]
            po = round(checks[partner].offset, 3)
            msg = (
                f"mag_{b} is {abs(chk.offset):.2f} mag {_direction(chk.offset)} than the stellar locus predicts and "
                f"mag_{partner} {abs(po):.2f} mag {_direction(po)}; with the two columns exchanged both agree with "
                f"the locus within {worst:.2f} mag: mag_{b} and mag_{partner} look swapped."
            )
            report.findings.append(Finding(b, chk.column, chk.offset, chk.n_stars, "swapped", msg, partner))
            continue
        cause = _classify(b, chk.offset, medians[b])
        if cause == "zero_point":  # a known signature seen from the other reference locus names the cause
            for ref, off in raw[b].items():
                if _classify(b, off - common, medians[b]) != "zero_point":
                    chk.offset, chk.reference = round(off - common, 3) + 0.0, ref
                    cause = _classify(b, chk.offset, medians[b])
                    break
        msg = _message(b, chk.offset, chk.n_stars, cause, medians[b])
        report.findings.append(Finding(b, chk.column, chk.offset, chk.n_stars, cause, msg))
    return report


def enforce(report: PhotometryReport, strict: bool, where: str) -> dict[str, Any]:
    """Log one WARNING per finding (naming ``where``); raise :class:`DataError` when ``strict`` and any finding.

    Returns
    -------
    dict
        ``report.to_dict()``, JSON-serialisable, for a JSON report.
    """
    for b in report.bands:
        if b.status == NOT_CHECKED:
            log.info("%s: photometric-system check skipped %s: %s", where, b.column, b.note)
    for f in report.findings:
        log.warning("%s: %s", where, f.message)
        if not strict:  # on the console too (the rule's log alone is easily missed)
            print(f"WARNING: {where}: {f.message}", file=sys.stderr, flush=True)
    if strict and report.findings:
        raise DataError(
            f"{where}: photometric-system check failed for {', '.join(f.column for f in report.findings)}: "
            + " ".join(f.message for f in report.findings)
        )
    return report.to_dict()


def check_catalog(path, strict: bool = False, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read the catalog at ``path`` (Hive-partitioned directory or Parquet file), check it and :func:`enforce`."""
    from .schema import open_catalog

    dataset = open_catalog(path)
    want = ["teff", "logg", "feh", "ebv_prior", *(f"mag_{b}" for b in BAND_NAMES)]
    df = dataset.to_table(columns=[c for c in want if c in dataset.schema.names]).to_pandas()
    return enforce(check_photometry(df, **dict(options or {})), strict, str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddstars.catalog.photsys", description=__doc__.splitlines()[0])
    parser.add_argument("path", help="catalog: Hive-partitioned directory or one Parquet file")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when any band is flagged")
    parser.add_argument("--threshold", type=float, default=0.2, help="flag offsets above this [mag]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = check_catalog(args.path, strict=False, options={"threshold": args.threshold})
    print(json.dumps(result, indent=2))
    return 1 if args.strict and not result["ok"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
