"""Figures of the photometry against the model's prediction: the colour-magnitude diagrams (Figs. 6-7) and
the colour-colour diagrams (Figs. 8-9)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..bands import band_index
from ..validation.colours import colour_label
from .inputs import Inputs
from .plotting import LABEL_TEX, _binned, _col, _colour_obs, _colour_pred, _hist2d, _r_arrow, _subset, plt


def fig_cmd(inp: Inputs, o: Mapping[str, Any]):
    """Fig. 6: observed Gaia CMD (parallax stars) against the predicted E = 0 CMD from θ̂."""
    tb = inp.table
    tb = tb[tb["parallax_usable"].to_numpy()]
    obs_c = _colour_obs(tb, "gaia_bp", "gaia_rp")
    obs_m = _col(tb, "mag_gaia_g") - _col(tb, "distance_modulus")
    pred_c = _colour_pred(tb, "gaia_bp", "gaia_rp")
    pred_m = _col(tb, "M_gaia_g")
    theta_mean = tb[["teff", "logg", "feh"]].to_numpy(np.float64).mean(0)
    r = inp.model.reddening_vector(theta_mean)[0]
    ib, ir, ig = band_index("gaia_bp"), band_index("gaia_rp"), band_index("gaia_g")
    fig, axs = plt.subplots(1, 2, figsize=(7, 4), sharex=True, sharey=True)
    rng = [o["colour_range"], o["mag_range"]]
    for ax, c, m, title in ((axs[0], obs_c, obs_m, "observed"), (axs[1], pred_c, pred_m, "predicted, E = 0")):
        _hist2d(ax, c, m, o["bins"], rng)
        ax.set_title(title)
        ax.set_xlabel(r"$G_\mathrm{BP} - G_\mathrm{RP}$")
    e = o["arrow_ebv"]
    _r_arrow(axs[0], o["arrow_at"][0], o["arrow_at"][1], e * (r[ib] - r[ir]), e * r[ig])
    axs[0].set(ylabel=r"$M_G$", xlim=o["colour_range"], ylim=o["mag_range"][::-1])  # magnitudes grow downwards
    caption = (
        f"Colour-magnitude diagram of the {len(tb)} test stars with usable parallaxes: observed (left, "
        f"M_G = G - μ) and predicted by the model at E = 0 from the spectroscopic labels (right). The arrow "
        f"is the extinction at the mean θ for E = {e}: Δ(BP-RP) = {e * (r[ib] - r[ir]):.3f}, ΔM_G = {e * r[ig]:.3f}."
    )
    return fig, caption


def fig_cmd_labels(inp: Inputs, o: Mapping[str, Any]):
    """Fig. 7: mean Teff, log g and [Fe/H] in bins of the predicted de-reddened CMD (M_G vs g - r)."""
    tb = inp.table
    c = _colour_pred(tb, "ps1_g", "ps1_r")
    m = _col(tb, "M_gaia_g")
    fig, axs = plt.subplots(1, 3, figsize=(10, 3.6), sharex=True, sharey=True)
    rng = [o["colour_range"], o["mag_range"]]
    for ax, lab, cmap in zip(axs, ("teff", "logg", "feh"), ("RdYlBu", "viridis", "viridis"), strict=True):
        im = _binned(ax, c, m, _col(tb, lab), o["bins"], rng, o["min_count"], cmap)
        fig.colorbar(im, ax=ax, label=f"mean {LABEL_TEX[lab]}", orientation="horizontal", pad=0.15)
        ax.set_xlabel(r"$(g - r)_0$")
    axs[0].set_ylabel(r"$M_G$")
    axs[0].set_ylim(o["mag_range"][1], o["mag_range"][0])
    # the metallicity trend in g - r at fixed Teff, logg: slope of (g - r) on [Fe/H] among dwarfs near 5500 K
    near = (np.abs(_col(tb, "teff") - 5500) < 250) & (_col(tb, "logg") > 4)
    slope = np.polyfit(_col(tb, "feh")[near], c[near], 1)[0] if near.sum() > 10 else float("nan")
    caption = (
        f"Mean labels of the {len(tb)} test stars in bins of their predicted de-reddened CMD position "
        f"(M_G vs g - r at E = 0; bins with < {o['min_count']} stars blank). Dwarfs at 5500 ± 250 K: "
        f"d(g - r)/d[Fe/H] = {slope:.3f} mag/dex (metal-rich stars redder)."
    )
    return fig, caption


def _colour_colour(inp: Inputs, o: Mapping[str, Any], by: str):
    tb = inp.table
    idx = _subset(len(tb), o["n_points"], o["seed"])
    tb = tb.iloc[idx]
    theta0 = np.median(tb[["teff", "logg", "feh"]].to_numpy(np.float64), axis=0)
    r = inp.model.reddening_vector(theta0)[0]
    pairs = o["pairs"]
    fig, axs = plt.subplots(2, len(pairs), figsize=(2.6 * len(pairs), 5.2))
    z = _col(tb, by)
    vmin, vmax = np.nanpercentile(z, [2, 98])
    for k, ((x1, y1), (x2, y2)) in enumerate(pairs):
        obs_x, obs_y = _colour_obs(tb, x1, y1), _colour_obs(tb, x2, y2)
        ok = np.isfinite(obs_x) & np.isfinite(obs_y)
        if not ok.any():
            continue
        (x_lo, x_hi), (y_lo, y_hi) = np.percentile(obs_x[ok], [0.5, 99.5]), np.percentile(obs_y[ok], [0.5, 99.5])
        e = o["arrow_ebv"]
        dx = e * (r[band_index(x1)] - r[band_index(y1)])
        dy = e * (r[band_index(x2)] - r[band_index(y2)])
        for row, (fn, title) in enumerate(((_colour_obs, "observed"), (_colour_pred, "predicted, E = 0"))):
            ax = axs[row, k]
            sc = ax.scatter(fn(tb, x1, y1), fn(tb, x2, y2), c=z, s=1.5, lw=0, vmin=vmin, vmax=vmax, rasterized=True)
            ax.set(xlabel=colour_label(x1, y1), ylabel=colour_label(x2, y2), title=title)
            ax.set_xlim(x_lo - 0.05, x_hi + 0.05)  # the same axes for data and model
            ax.set_ylim(y_lo - 0.05, y_hi + 0.05)
            _r_arrow(ax, x_lo + 0.1 * (x_hi - x_lo), y_hi - 0.3 * (y_hi - y_lo), dx, dy)
    fig.colorbar(sc, ax=axs, label=LABEL_TEX[by], shrink=0.6)
    caption = (
        f"Colour-colour diagrams of {len(tb)} random test stars coloured by {by}: observed (top) and predicted "
        f"at E = 0 (bottom). Red arrows: R at the median θ for E = {o['arrow_ebv']}. Pairs: "
        + "; ".join(f"{colour_label(*a)} vs {colour_label(*b)}" for a, b in pairs)
        + "."
    )
    return fig, caption


def fig_colour_colour_logg(inp: Inputs, o: Mapping[str, Any]):
    """Fig. 8: colour-colour diagrams coloured by log g."""
    return _colour_colour(inp, o, "logg")


def fig_colour_colour_feh(inp: Inputs, o: Mapping[str, Any]):
    """Fig. 9: colour-colour diagrams coloured by [Fe/H]."""
    return _colour_colour(inp, o, "feh")
