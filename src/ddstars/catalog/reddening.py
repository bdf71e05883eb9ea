"""Reddening prior (Ê, σ_E) of every star from SFD and Bayestar19 (paper §3.3; METHOD.md §5).

Rules, in order (parallax ϖ and its error σ in mas, z0 in kpc):

1. ``sfd``: the star is beyond the dust layer even at its 5σ-upper-bound parallax,
   ϖ + 5σ < |sin b| / z0: Ê = SFD, σ_E = 0.1 SFD.
2. ``bayestar``: otherwise, if ϖ/σ > 5 and Bayestar19 is finite there (dec > -30° for the real map):
   draw ``n_samples`` parallaxes from the Gaia likelihood truncated at ϖ > 0, take d = 1/ϖ and one random
   map sample at each distance; Ê = mean, σ_E² = std² + (0.1 Ê)².
3. ``default``: Ê = 0, σ_E = SFD.

Then σ_E → sqrt(σ_E² + floor²) for every star (floor 0.02). SFD is used raw (no 0.86 rescaling). The
authors' code drew the parallaxes with truncnorm bounds in σ units (so only ϖ ≥ ϖ̂); the paper's
truncation at zero is used here. Maps are queried in batches of ``batch`` stars, never one at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import truncnorm

from ..config import with_defaults
from ..dustmaps_io import query_bayestar, query_sfd
from ..logs import progress

log = logging.getLogger(__name__)

R_SOURCES = ("sfd", "bayestar", "default")


def reddening_prior(
    l_deg: np.ndarray,
    b_deg: np.ndarray,
    parallax: np.ndarray,
    parallax_error: np.ndarray,
    sfd_dir,
    bayestar_fname,
    options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Columns ``ebv_sfd, ebv_prior, sigma_ebv_prior, r_source`` for the given stars (same order)."""
    o = with_defaults(options, "catalog.reddening")
    l_deg, b_deg = np.asarray(l_deg, float), np.asarray(b_deg, float)
    plx, sig = np.asarray(parallax, float), np.asarray(parallax_error, float)
    n = len(l_deg)
    sfd = query_sfd(sfd_dir, l_deg, b_deg)
    with np.errstate(invalid="ignore", divide="ignore"):
        beyond = (plx + 5 * sig) < np.abs(np.sin(np.radians(b_deg))) / o["z0_kpc"]
        snr_ok = (plx / sig > 5) & (sig > 0)
    beyond &= np.isfinite(plx) & np.isfinite(sig)
    cand = np.flatnonzero(~beyond & snr_ok)

    e_bay = np.full(n, np.nan)
    s_bay = np.full(n, np.nan)
    rng = np.random.default_rng(o["seed"])
    k = int(o["n_samples"])
    batch = int(o["batch"])
    n_batches, t0 = -(-len(cand) // batch), time.perf_counter()
    for start in range(0, len(cand), batch):  # batches of stars, vectorised inside
        idx = cand[start : start + batch]
        a = -plx[idx] / sig[idx]
        draws = truncnorm.rvs(
            a[:, None], np.inf, loc=plx[idx, None], scale=sig[idx, None], size=(len(idx), k), random_state=rng
        )
        d_kpc = 1.0 / draws
        ll = np.broadcast_to(l_deg[idx, None], d_kpc.shape)
        bb = np.broadcast_to(b_deg[idx, None], d_kpc.shape)
        seed = int(rng.integers(0, 2**63 - 1))
        e = query_bayestar(bayestar_fname, ll, bb, d_kpc, mode="random_sample", rng_seed=seed)
        e_bay[idx] = e.mean(axis=1)
        s_bay[idx] = e.std(axis=1)
        if n_batches > 1:
            progress("reddening_prior", start // batch + 1, n_batches, time.perf_counter() - t0, "Bayestar batches")

    use_bay = np.isfinite(e_bay) & np.isfinite(s_bay)
    ebv = np.where(beyond, sfd, np.where(use_bay, e_bay, 0.0))
    sigma = np.where(
        beyond, o["relative_sigma"] * sfd, np.where(use_bay, np.hypot(s_bay, o["relative_sigma"] * e_bay), sfd)
    )
    sigma = np.hypot(sigma, o["sigma_floor"])
    source = np.where(beyond, "sfd", np.where(use_bay, "bayestar", "default"))
    counts = {s: int((source == s).sum()) for s in R_SOURCES}
    log.info(
        "reddening prior of %d stars: %s",
        n,
        ", ".join(f"{s} {c} ({100 * c / max(n, 1):.1f}%)" for s, c in counts.items()),
    )
    return pd.DataFrame(
        {"ebv_sfd": sfd, "ebv_prior": ebv, "sigma_ebv_prior": sigma, "r_source": pd.array(source, dtype="string")}
    )
