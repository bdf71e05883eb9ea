"""Survey zero-point offsets of the spectroscopic labels (METHOD.md §5; paper §3.1).

The offset of survey s relative to the reference survey (GALAH) is the inverse-variance-weighted mean of
θ_s - θ_ref over the Gaia sources both surveys observed, with weights 1/(σ_s² + σ_ref²) from the surveys'
reported errors (before the label floors). Its uncertainty is (Σw)^-1/2; ``error_scaled`` multiplies it by
sqrt(max(1, χ²/dof)) in case the reported errors are too small. Corrected labels are θ_s - offset_s.

The paper gives no clipping; the authors' code adds three passes of 3σ clipping, available through
``clip_sigma`` / ``clip_passes`` (off by default).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import registry
from ..config import defaults, with_defaults
from ..errors import ConfigError, DataError
from .clean import LABELS

log = logging.getLogger(__name__)

_DEFAULTS = defaults("catalog.offsets")  # config catalog.offsets (schema defaults)


def _weighted_offset(d: np.ndarray, var: np.ndarray, clip_sigma: float | None, passes: int) -> dict[str, Any]:
    use = np.isfinite(d) & np.isfinite(var) & (var > 0)
    for _ in range(passes if clip_sigma else 0):
        w = 1.0 / var[use]
        mean = np.sum(w * d[use]) / np.sum(w)
        use = use & (np.abs(d - mean) <= clip_sigma * np.sqrt(var))
    n = int(use.sum())
    if n == 0:
        return {"value": float("nan"), "error": float("nan"), "error_scaled": float("nan"), "n_pairs": 0}
    w = 1.0 / var[use]
    mean = float(np.sum(w * d[use]) / np.sum(w))
    err = float(np.sqrt(1.0 / np.sum(w)))
    chi2_dof = float(np.sum(w * (d[use] - mean) ** 2) / max(n - 1, 1))
    return {
        "value": mean,
        "error": err,
        "error_scaled": err * float(np.sqrt(max(1.0, chi2_dof))),
        "chi2_dof": chi2_dof,
        "n_pairs": n,
    }


def measure_offsets(
    matched: pd.DataFrame,
    reference: str = _DEFAULTS["reference"],
    surveys: Sequence[str] | None = None,
    min_pairs: int = _DEFAULTS["min_pairs"],
    clip_sigma: float | None = _DEFAULTS["clip_sigma"],
    clip_passes: int = _DEFAULTS["clip_passes"],
) -> dict[str, Any]:
    """Offsets survey - reference from stars both observed; see the module docstring.

    ``matched`` has one row per (survey, Gaia source): columns survey, source_id, the labels and
    ``sigma_<label>_reported``. Raises :class:`DataError` naming the pair of surveys when fewer than
    ``min_pairs`` stars are shared (then use ``catalog.offsets.mode: fixed``). ``surveys``: default, every
    spectroscopic survey but the reference.
    """
    if surveys is None:
        surveys = [s for s in registry.SPECTROSCOPIC if s != reference]
    cols = ["source_id", *LABELS, *(f"sigma_{x}_reported" for x in LABELS)]
    ref = matched.loc[matched["survey"] == reference, cols].set_index("source_id")
    result: dict[str, Any] = {reference: {x: {"value": 0.0, "error": 0.0, "n_pairs": len(ref)} for x in LABELS}}
    for s in surveys:
        rows = matched.loc[matched["survey"] == s, cols].set_index("source_id")
        pair = rows.merge(ref, how="inner", left_index=True, right_index=True, suffixes=("_s", "_ref"))
        if len(pair) < min_pairs:
            raise DataError(
                f"zero-point offsets: only {len(pair)} stars shared by {s} and {reference} (need >= {min_pairs}); "
                "set catalog.offsets.mode to 'fixed' to use the paper's offsets instead"
            )
        result[s] = {}
        for x in LABELS:
            d = pair[f"{x}_s"].to_numpy(float) - pair[f"{x}_ref"].to_numpy(float)
            var = (
                pair[f"sigma_{x}_reported_s"].to_numpy(float) ** 2
                + pair[f"sigma_{x}_reported_ref"].to_numpy(float) ** 2
            )
            result[s][x] = _weighted_offset(d, var, clip_sigma, clip_passes)
        log.info(
            "offset %s - %s from %d shared stars: %s",
            s,
            reference,
            len(pair),
            ", ".join(f"{x} {result[s][x]['value']:+.4g} ± {result[s][x]['error']:.2g}" for x in LABELS),
        )
    return result


def offsets_document(options: Mapping[str, Any], matched: pd.DataFrame) -> dict[str, Any]:
    """The content of ``results/catalog/offsets.json`` for config section ``catalog.offsets``."""
    options = with_defaults(options, "catalog.offsets")
    mode = options["mode"]
    reference = options["reference"]
    surveys = sorted(set(matched["survey"].astype(str)) - {reference})
    if mode == "measure":
        offsets = measure_offsets(
            matched,
            reference,
            surveys,
            options["min_pairs"],
            options["clip_sigma"],
            options["clip_passes"],
        )
    elif mode == "fixed":
        # catalog.offsets.fixed: survey - GALAH, the paper's values by default (the schema's; the negatives of the
        # corrections in METHOD.md §5); GALAH itself is the zero
        fixed = {"galah": (0.0, 0.0, 0.0), **options["fixed"]}
        offsets = {
            s: {x: {"value": float(fixed[s][j]), "error": 0.0} for j, x in enumerate(LABELS)}
            for s in [reference, *surveys]
        }
    else:
        raise ConfigError(f"catalog.offsets.mode is {mode!r}; expected 'measure' or 'fixed'")
    return {
        "mode": mode,
        "reference": reference,
        "definition": (
            "offset = survey - reference (Teff [K], log g [dex], [Fe/H] [dex]); corrected label = survey value - offset"
        ),
        "offsets": offsets,
        "correction_added": {s: [-offsets[s][x]["value"] for x in LABELS] for s in offsets},
    }


def apply_offsets(matched: pd.DataFrame, document: Mapping[str, Any]) -> pd.DataFrame:
    """Return a copy of ``matched`` with each survey's labels moved onto the reference scale."""
    out = matched.copy()
    survey = out["survey"].astype(str).to_numpy()
    for s, per_label in document["offsets"].items():
        sel = survey == s
        for x in LABELS:
            out.loc[sel, x] = out.loc[sel, x].to_numpy(float) - float(per_label[x]["value"])
    missing = sorted(set(survey) - set(document["offsets"]))
    if missing:
        raise DataError(f"offsets.json has no offsets for survey(s) {', '.join(missing)}")
    return out
