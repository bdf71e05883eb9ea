"""The Eq. 4 covariance of one test star, term by term (Fig. 2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..bands import BAND_NAMES, band_index
from ..validation.colours import SHORT, colour_label
from .inputs import Inputs
from .plotting import _col, plt


def _ellipse(ax, centre, cov, **kw):
    """The 1σ ellipse of a 2×2 covariance."""
    from matplotlib.patches import Ellipse

    vals, vecs = np.linalg.eigh(cov)
    vals = np.clip(vals, 0.0, None)
    angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
    ax.add_patch(Ellipse(centre, 2 * np.sqrt(vals[1]), 2 * np.sqrt(vals[0]), angle=angle, fill=False, **kw))


def fig_covariance(inp: Inputs, o: Mapping[str, Any]):
    """Fig. 2: the terms of the Eq. 4 covariance of one test star as 1σ ellipses around its prediction."""
    from ..model.data import read_stars

    tb = inp.table
    full = tb["usable"].to_numpy() & tb["parallax_usable"].to_numpy()
    full &= np.all([np.isfinite(_col(tb, f"mag_{b}")) for b in BAND_NAMES], axis=0)
    if not full.any():
        full = tb["usable"].to_numpy()
    chi = np.where(full, _col(tb, "chi2_dof"), np.nan)
    k = int(np.nanargmin(np.abs(chi - np.nanmedian(chi))))  # a typical star: median χ²/dof
    row = tb.iloc[k]
    stars = read_stars(inp.paths["catalog"], split="test")
    star = stars.subset(stars.source_id == row["source_id"])
    model = inp.model
    m_abs, r, dm_dtheta, dr_dtheta = model.jacobians(star.theta, outside="ignore")
    e, var_e = float(row["ebv_fit"]), float(row["sigma_ebv_fit"]) ** 2
    m_pred = m_abs[0] + e * r[0]
    j_m = dm_dtheta[0] + e * dr_dtheta[0]  # d(M + E′R)/dθ
    err = np.nan_to_num(star.err[0])
    s_mu2 = (5 / np.log(10) * star.parallax_error[0] / star.parallax[0]) ** 2 if star.parallax_usable[0] else 0.0
    n = len(BAND_NAMES)
    terms = {
        "photometry": np.diag(err**2),
        "parallax": s_mu2 * np.ones((n, n)),
        "labels (J Cθ Jᵀ)": j_m @ star.cov_theta[0] @ j_m.T,
        "reddening (σ²_E RRᵀ)": var_e * np.outer(r[0], r[0]),
    }
    terms["total"] = sum(terms.values())
    mu = float(row["distance_modulus"]) if np.isfinite(row["distance_modulus"]) else 0.0
    obs = np.where(np.isfinite(star.mag[0]), star.mag[0], np.nan)
    fig, axs = plt.subplots(1, len(o["panels"]), figsize=(3.2 * len(o["panels"]), 3.2), squeeze=False)
    colours = dict(zip(terms, ("C0", "C1", "C2", "C3", "k"), strict=True))
    for ax, ((x1, y1), (x2, y2)) in zip(axs[0], o["panels"], strict=True):
        a = np.zeros((2, n))
        for i, (p, q) in enumerate(((x1, y1), (x2, y2))):
            a[i, band_index(p)] += 1.0
            if q:
                a[i, band_index(q)] -= 1.0
        shift = np.array([0.0 if q else mu for _, q in ((x1, y1), (x2, y2))])  # absolute magnitude axes
        centre = a @ m_pred
        for name, c in terms.items():
            _ellipse(ax, centre, a @ c @ a.T, color=colours[name], lw=1.6 if name == "total" else 1.0, label=name)
        ax.plot(*(a @ obs - shift), "ko", ms=4, label="observed")
        ax.plot(*centre, "k+", ms=8)
        half = 4 * np.sqrt(np.diag(a @ terms["total"] @ a.T))
        ax.set_xlim(centre[0] - half[0], centre[0] + half[0])
        ax.set_ylim(centre[1] - half[1], centre[1] + half[1])
        lab = [colour_label(p, q) if q else f"M_{SHORT[p]}" for p, q in ((x1, y1), (x2, y2))]
        ax.set(xlabel=lab[0], ylabel=lab[1])
        if lab[1].startswith("M_"):
            ax.invert_yaxis()
    axs[0, 0].legend(fontsize=6, loc="best")
    sd = {n: np.sqrt(np.diag(c)).max() for n, c in terms.items()}
    caption = (
        f"The covariance of one test star (source_id {int(row['source_id'])}, Teff {row['teff']:.0f} K, log g "
        f"{row['logg']:.2f}, [Fe/H] {row['feh']:+.2f}, E′ {e:.3f} ± {np.sqrt(var_e):.3f}, "
        f"χ²/dof {row['chi2_dof']:.2f}, "
        "the median among stars with all bands and a usable parallax): 1σ ellipses of each term of Eq. 4 and their "
        "total around the model prediction (cross), the observation as a dot. Largest σ per term [mag]: "
        + ", ".join(f"{n} {v:.3f}" for n, v in sd.items())
        + "."
    )
    return fig, caption
