"""Variable dust after the fact: the principal direction of a one-component model's residual colours.

Schlafly et al. (2016) found the variation of the extinction curve as the principal direction of how stars'
reddening vectors differ from the mean. For a trained model with one reddening vector R(θ) the same shows in
the test residuals: a star behind dust whose law differs by δR has residual colours r ≈ E δR (minus the part
the refitted E absorbs), on top of noise. So, with residual colours X − G of every band (``res_<X>-gaia_g``,
observed − predicted with E refitted):

* per reddened star (E′ > ``e_min``) the estimate δR̂ = r / E′;
* its covariance over those stars, less the noise's share: the covariance of r over the unreddened stars
  (E′ < ``e_clean``) times the mean 1/E′² of the reddened ones;
* the leading eigenvector of that excess is the direction in which the law varies, its eigenvalue λ the
  variance of the law along it (√λ: the scatter of δR along the unit direction, in mag per mag of E).

The unreddened stars are brighter than the reddened ones, so this noise share is an underestimate and the
eigenvalues of a constant law stay a little above zero: λ is significant only where it stands out of the next
eigenvalues (``ratio`` = λ₁/λ₂; 1.7 on the built-in sky, whose law is constant; 1.9 with R_V varying by 0.3,
where the 419 reddened test stars' δR̂ along the direction still follows their true R_V with Spearman
ρ = 0.62). With R_V varying by σ, λ ≈ σ² ‖∂R/∂R_V‖² and the direction is parallel to ∂R/∂R_V once the part
along R itself is removed (the refit absorbs it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..bands import BAND_NAMES

REFERENCE = "gaia_g"
BANDS: tuple[str, ...] = tuple(b for b in BAND_NAMES if b != REFERENCE)
COLUMNS: tuple[str, ...] = tuple(f"res_{b}-{REFERENCE}" for b in BANDS)


def colours_of(vectors: np.ndarray) -> np.ndarray:
    """Per-band vectors (…, 13) as the residuals' colours X − G (…, 12)."""
    v = np.asarray(vectors, dtype=float)
    g = BAND_NAMES.index(REFERENCE)
    return v[..., [BAND_NAMES.index(b) for b in BANDS]] - v[..., g : g + 1]


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def without(v: np.ndarray, along: np.ndarray) -> np.ndarray:
    """``v`` less its projection on ``along``."""
    a = unit(along)
    return v - (v @ a) * a


def residual_direction(table: pd.DataFrame, e_min: float = 0.3, e_clean: float = 0.05, min_stars: int = 30) -> dict:
    """The principal direction of the residual colours' excess over noise among reddened test stars.

    Returns ``n_reddened``, ``n_clean``, ``direction`` (unit, over :data:`BANDS` as X − G), ``eigenvalue``
    (λ, mag² per mag² of E), ``scatter`` (√max(λ, 0)), ``noise_eigenvalues`` (the next three, for scale),
    ``projection`` (per reddened star: δR̂ along the direction) and ``source_id`` of those stars; or
    ``status: too_few`` with the counts.
    """
    res = table[list(COLUMNS)].to_numpy(np.float64)
    e = table["ebv_fit"].to_numpy(np.float64)
    usable = table["usable"].to_numpy(bool) if "usable" in table else np.ones(len(table), bool)
    ok = usable & np.isfinite(res).all(axis=1) & np.isfinite(e)
    hot, clean = ok & (e > e_min), ok & (e < e_clean)
    out: dict[str, Any] = {"n_reddened": int(hot.sum()), "n_clean": int(clean.sum()), "e_min": e_min}
    if hot.sum() < min_stars or clean.sum() < min_stars:
        return {**out, "status": "too_few"}
    d = res[hot] / e[hot, None]
    noise = np.cov(res[clean], rowvar=False) * np.mean(1.0 / e[hot] ** 2)
    excess = np.cov(d, rowvar=False) - noise
    w, v = np.linalg.eigh(excess)
    direction = v[:, -1]
    direction = direction * np.sign(direction[np.argmax(np.abs(direction))])  # the largest component positive
    return {
        **out,
        "status": "ok",
        "direction": direction,
        "eigenvalue": float(w[-1]),
        "scatter": float(np.sqrt(max(w[-1], 0.0))),
        "noise_eigenvalues": [float(x) for x in w[-4:-1][::-1]],
        "ratio": float(w[-1] / w[-2]) if w[-2] > 0 else float("inf"),
        "projection": (d - d.mean(0)) @ direction,
        "source_id": table["source_id"].to_numpy()[hot],
    }


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """|cos| of the angle between two directions (their sign is arbitrary)."""
    return float(abs(unit(a) @ unit(b)))
