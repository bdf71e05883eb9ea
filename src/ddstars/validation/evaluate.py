"""The trained model evaluated on the test split: the table every figure and the summary read.

For each test star (paper §6: "all plots use the test set and the final model with the updated E′"):

* E′ and σ_E′ from the original dust-map prior and the star's photometry (Eqs. 8-9), χ²/dof with E′ and
  C_pred, dof = observed components - 1: the paper's definition (METHOD.md §8, the [C] χ² the paper's
  0.778 / 0.865 / 2.4 % are computed with), **without** the diagonal inflation (1e-4 + 1e-3 C_ii) that
  training adds before factorising. ``chi2_dof_training`` is the same statistic with the inflation, as the
  schedule's outlier cut sees it (a labelled extra; E′ refitted with the inflation too);
* the dust-free absolute magnitudes M(θ̂) and the reddening vector R(θ̂) in every band;
* for each colour X-Y of :data:`COLOURS`: observed minus predicted (with E′) and its standard deviation
  from the full Eq. 4 covariance, σ² = C_XX + C_YY - 2 C_XY (the Eq. 18 score is their ratio);
* the absolute-magnitude residual in G (m_G - μ - M_G - E′R_G) and its σ, where the parallax is usable.

Stars are processed in chunks, so memory stays at the inputs plus one chunk's 13×13 covariances.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..bands import BAND_NAMES, N_BANDS, band_index
from ..model import likelihood
from ..model.data import Stars
from .colours import COLOURS, colour_name

log = logging.getLogger(__name__)


def _colour_weights(colours: Sequence[tuple[str, str]]) -> np.ndarray:
    """(n_colours, 13) weights on the colour-space components c_k = m_k - m_G (k ≥ 1) giving X - Y.

    Component 0 (m_G - μ) never enters a colour; G itself is the zero of the colour basis.
    """
    a = np.zeros((len(colours), N_BANDS))
    for i, (x, y) in enumerate(colours):
        ix, iy = band_index(x), band_index(y)
        if ix:
            a[i, ix] += 1.0
        if iy:
            a[i, iy] -= 1.0
    return a


def evaluate(
    model,
    stars: Stars,
    train_options: Mapping[str, Any] | None = None,
    colours: Sequence[tuple[str, str]] | None = None,
    chunk: int = 4096,
) -> pd.DataFrame:
    """Per-star evaluation table of ``model`` (a :class:`ddstars.model.StellarModel`) on ``stars``.

    Returns one row per star (same order), float32 except identifiers and flags; see the module docstring.
    Stars with fewer than two observed colour-space components get NaN statistics (``usable`` False).
    """
    colours = list(COLOURS if colours is None else colours)
    a = _colour_weights(colours)
    n = len(stars)
    n_obs = np.empty(n, dtype=np.int64)
    e, var_e, chi2_dof, chi2_train = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    bm_all, br_all = np.empty((n, N_BANDS)), np.empty((n, N_BANDS))
    dc = np.empty((n, N_BANDS))  # observed - predicted, colour space (NaN where unobserved)
    var_c = np.empty((n, N_BANDS))
    res = np.empty((n, len(colours)))
    var_col = np.empty((n, len(colours)))
    k = model.components
    e_k = np.empty((n, k - 1))  # K > 1 (paper Eq. 20): E_2 … E_K and their variances
    var_k = np.empty((n, k - 1))
    for start in range(0, n, chunk):  # chunks of stars, vectorised inside
        sl = slice(start, min(start + chunk, n))
        # targets and covariances prepared per chunk (row by row, so the same numbers as for all stars at
        # once) rather than for all stars up front: the (n, 13, 13) base covariance alone is 1.35 GB at 10^6
        sub = stars.subset(sl)
        p = model.prepare(sub)
        # training's variant first: the arrays an evaluation returns may share buffers with the next one's
        chi2_train[sl] = model.evaluate(sub, train_options, paper=False, prepared=p).chi2_dof
        ev = model.evaluate(sub, train_options, paper=True, prepared=p)
        n_obs[sl] = ev.n_obs
        e[sl], var_e[sl], chi2_dof[sl] = ev.e, ev.var_e, ev.chi2_dof
        bm_all[sl], br_all[sl] = ev.bm, ev.br
        if k > 1:
            e_k[sl] = ev.e_k
            var_k[sl] = np.diagonal(ev.cov_e, axis1=1, axis2=2)[:, 1:]
        d = ev.residual
        dc[sl] = d
        var_c[sl] = np.diagonal(ev.c_full, axis1=1, axis2=2)
        missing = np.isnan(d).astype(np.float64) @ (a != 0).T > 0  # a colour needs both of its bands
        res[sl] = np.where(missing, np.nan, np.nan_to_num(d) @ a.T)
        var_col[sl] = np.einsum("ck,nkl,cl->nc", a, ev.c_full, a, optimize=True)
    usable = n_obs >= 2
    m_abs, r = likelihood.from_colour(bm_all), likelihood.from_colour(br_all)
    cols: dict[str, Any] = {
        "source_id": stars.source_id,
        "teff": stars.theta[:, 0],
        "logg": stars.theta[:, 1],
        "feh": stars.theta[:, 2],
        "sigma_teff": np.sqrt(stars.cov_theta[:, 0, 0]),
        "sigma_logg": np.sqrt(stars.cov_theta[:, 1, 1]),
        "sigma_feh": np.sqrt(stars.cov_theta[:, 2, 2]),
        "parallax_usable": stars.parallax_usable & np.isfinite(likelihood.distance_modulus(stars.parallax)),
        "distance_modulus": np.where(stars.parallax_usable, likelihood.distance_modulus(stars.parallax), np.nan),
        "ebv_prior": stars.ebv_prior,
        "sigma_ebv_prior": stars.sigma_ebv_prior,
        "ebv_fit": e,
        "sigma_ebv_fit": np.sqrt(var_e),
        **{f"ebv_fit_{j + 2}": e_k[:, j] for j in range(k - 1)},
        **{f"sigma_ebv_fit_{j + 2}": np.sqrt(var_k[:, j]) for j in range(k - 1)},
        "chi2_dof": np.where(usable, chi2_dof, np.nan),
        "chi2_dof_training": np.where(usable, chi2_train, np.nan),
        "n_dof": n_obs - 1,
        "usable": usable,
        "res_M_gaia_g": dc[:, 0],
        "sig_M_gaia_g": np.where(np.isfinite(dc[:, 0]), np.sqrt(var_c[:, 0]), np.nan),
    }
    for i, b in enumerate(BAND_NAMES):
        cols[f"mag_{b}"] = stars.mag[:, i]
        cols[f"err_{b}"] = stars.err[:, i]
        cols[f"M_{b}"] = m_abs[:, i]
        cols[f"R_{b}"] = r[:, i]
    for i, (x, y) in enumerate(colours):
        name = colour_name(x, y)
        cols[f"res_{name}"] = res[:, i]
        cols[f"sig_{name}"] = np.where(np.isfinite(res[:, i]), np.sqrt(var_col[:, i]), np.nan)
    # float64 columns stored as float32, each cast before the frame is built (no float64 copy of the table)
    out = pd.DataFrame({k: (v.astype(np.float32) if np.asarray(v).dtype == np.float64 else v) for k, v in cols.items()})
    log.info("evaluated %d test stars (%d usable)", n, int(usable.sum()))
    return out
