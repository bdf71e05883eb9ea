"""Figures of the residuals of the test stars: Eq. 18 scores against the labels (Fig. 12) and against the
training density (Fig. 13), residual maps over the (Teff, log g) plane, and the χ²/dof distribution."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

from ..bands import BAND_NAMES
from ..validation.colours import SHORT, colour_label, colour_name
from .inputs import Inputs
from .plotting import LABEL_TEX, _binned, _col, _pairs, _percentile_lines, plt

SCORE_X = ("teff", "logg", "feh", "ebv_fit")


def fig_residual_scores(inp: Inputs, o: Mapping[str, Any]):
    """Fig. 12: Eq. 18 scores of a few colours against Teff, log g, [Fe/H] and E′."""
    tb = inp.table
    cmp = inp.compare_table
    colours = _pairs(o["colours"])
    fig, axs = plt.subplots(len(colours), 4, figsize=(10, 2.0 * len(colours)), sharey=True, squeeze=False)
    lim = o["score_limit"]
    lines = []
    for row, (x, y) in enumerate(colours):
        name = colour_name(x, y)
        score = _col(tb, f"res_{name}") / _col(tb, f"sig_{name}")
        for k, xv in enumerate(SCORE_X):
            ax = axs[row, k]
            xr = o["ranges"][xv]
            h, xe, ye = np.histogram2d(_col(tb, xv), score, bins=[o["bins"], o["bins"]], range=[xr, [-lim, lim]])
            with np.errstate(invalid="ignore", divide="ignore"):
                cond = h / h.sum(axis=1, keepdims=True)  # p(score | x)
            ax.pcolormesh(xe, ye, cond.T, cmap="Greys", rasterized=True, shading="flat")
            _percentile_lines(ax, _col(tb, xv), score, o["bins"] // 2, xr)
            if cmp is not None:
                sc2 = _col(cmp, f"res_{name}") / _col(cmp, f"sig_{name}")
                _percentile_lines(ax, _col(cmp, xv), sc2, o["bins"] // 2, xr, color="C0")
            ax.axhline(0, color="k", lw=0.5)
            if row == len(colours) - 1:
                ax.set_xlabel(LABEL_TEX[xv])
        axs[row, 0].set_ylabel(f"score {colour_label(x, y)}")
        ok = np.isfinite(score)
        lines.append(
            f"{colour_label(x, y)}: median {np.median(score[ok]):+.2f}, "
            f"16/84th {np.percentile(score[ok], 16):+.2f}/{np.percentile(score[ok], 84):+.2f}"
        )
    caption = (
        "Residual scores (Eq. 18: observed minus predicted colour with E′, over its standard deviation from "
        "the full covariance) of the test stars against the labels and E′; greyscale: conditional density, "
        "orange: 16/50/84th percentiles"
        + (f"; blue: the comparison model ({inp.compare_label})" if cmp is not None else "")
        + ". "
        + "; ".join(lines)
        + "."
    )
    return fig, caption


def fig_residual_maps(inp: Inputs, o: Mapping[str, Any]):
    """Median colour residual over the (Teff, log g) plane for each colour."""
    tables = [("this model", inp.table)]
    if inp.compare_table is not None:
        tables.append((inp.compare_label or "comparison", inp.compare_table))
    colours = _pairs(o["colours"])
    ncol = 5
    nrow_one = int(np.ceil(len(colours) / ncol))
    fig, axs = plt.subplots(
        nrow_one * len(tables),
        ncol,
        figsize=(2.3 * ncol, 2.1 * nrow_one * len(tables)),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    rng = [o["teff_range"], o["logg_range"]]
    v = o["residual_limit"]
    lines = []
    for t_i, (label, tb) in enumerate(tables):
        for k, (x, y) in enumerate(colours):
            ax = axs[t_i * nrow_one + k // ncol, k % ncol]
            res = _col(tb, f"res_{colour_name(x, y)}")
            im = _binned(
                ax, _col(tb, "teff"), _col(tb, "logg"), res, o["bins"], rng, o["min_count"], "RdBu_r", -v, v, "median"
            )
            ax.set_title(f"{colour_label(x, y)} ({label})" if len(tables) > 1 else colour_label(x, y), fontsize=7)
            ok = np.isfinite(res)
            if t_i == 0:
                lines.append(f"{colour_label(x, y)} {1000 * np.median(res[ok]):+.1f}")
        for ax in axs.flat[(t_i * nrow_one) * ncol + len(colours) : (t_i + 1) * nrow_one * ncol]:
            ax.set_visible(False)
    axs[0, 0].set_xlim(o["teff_range"][1], o["teff_range"][0])
    axs[0, 0].set_ylim(o["logg_range"][1], o["logg_range"][0])
    for ax in axs[:, 0]:
        ax.set_ylabel(LABEL_TEX["logg"])
    for ax in axs[-1]:
        ax.set_xlabel("Teff [K]")
    fig.colorbar(im, ax=axs, label="median observed - predicted [mag]", shrink=0.6)
    caption = (
        f"Median colour residual (observed minus predicted with E′) of the test stars over the (Teff, log g) "
        f"plane; colour scale ±{v} mag, blank where < {o['min_count']} stars"
        + ("; lower rows: the comparison model on the same stars" if len(tables) > 1 else "")
        + ". Overall medians [mmag]: "
        + ", ".join(lines)
        + "."
    )
    return fig, caption


def fig_chi2(inp: Inputs, o: Mapping[str, Any]):
    """χ²/dof of the test stars against the χ² distribution expected for their degrees of freedom."""
    tb = inp.table
    c = _col(tb, "chi2_dof")
    dof = tb["n_dof"].to_numpy()
    ok = np.isfinite(c) & (dof >= 1)
    c, dof = c[ok], dof[ok]
    edges = np.linspace(0, o["max"], o["bins"] + 1)
    mid = 0.5 * (edges[1:] + edges[:-1])
    ks, nk = np.unique(dof, return_counts=True)
    expected = sum(n * stats.chi2.pdf(mid * k, k) * k for k, n in zip(ks, nk, strict=True)) / nk.sum()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.hist(c, edges, density=True, histtype="step", color="k", label="test stars")
    ax.plot(mid, expected, color="C1", label=r"expected ($\chi^2_k/k$, observed dof mix)")
    extra = ""
    if inp.compare_table is not None:
        c2 = _col(inp.compare_table, "chi2_dof")
        c2 = c2[np.isfinite(c2)]
        ax.hist(c2, edges, density=True, histtype="step", color="C0", label=inp.compare_label)
        extra = (
            f" Comparison model ({inp.compare_label}, blue) on the same stars: mean over < 5 "
            f"{np.mean(c2[c2 < 5]):.3f}, < 10 {np.mean(c2[c2 < 10]):.3f}, fraction ≥ 5 {100 * np.mean(c2 >= 5):.2f}%."
        )
    ax.set(xlabel=r"$\chi^2/\mathrm{dof}$", ylabel="density", yscale="log")
    ax.axvline(5, color="0.5", ls=":")
    ax.legend()
    caption = (
        f"χ²/dof of the {len(c)} usable test stars (the paper's definition: E′ refitted from the prior, C_pred, "
        "dof = observed components - 1, no diagonal inflation) against the expected distribution. Mean over "
        f"χ²/dof < 5: {np.mean(c[c < 5]):.3f}; < 10: {np.mean(c[c < 10]):.3f}; fraction ≥ 5: "
        f"{100 * np.mean(c >= 5):.2f}% (paper, same definition, on its own real test stars: 0.778, 0.865, 2.4%)."
        + extra
    )
    return fig, caption


def fig_density(inp: Inputs, o: Mapping[str, Any]):
    """Fig. 13: ⟨score²⟩ against the training density in label space (M_G and colours against G)."""
    from scipy import ndimage

    cat = inp.catalog(["teff", "logg", "feh", "parallax_usable", *(f"obs_{b}" for b in BAND_NAMES)])
    tb = inp.table
    lo = np.array([o["teff_range"][0], o["logg_range"][0], o["feh_range"][0]])
    hi = np.array([o["teff_range"][1], o["logg_range"][1], o["feh_range"][1]])
    bw = np.asarray(o["bandwidth"], dtype=float)
    shape = np.ceil((hi - lo) / bw).astype(int)
    theta_cat = cat[["teff", "logg", "feh"]].to_numpy(np.float64)
    theta_test = tb[["teff", "logg", "feh"]].to_numpy(np.float64)
    cell = np.clip(((theta_test - lo) / bw).astype(int), 0, shape - 1)
    inside = ((theta_test >= lo) & (theta_test < hi)).all(axis=1)
    quantities = [("parallax_usable", "res_M_gaia_g", "sig_M_gaia_g", r"$M_G$")] + [
        (f"obs_{b}", f"res_{colour_name(b, 'gaia_g')}", f"sig_{colour_name(b, 'gaia_g')}", f"{SHORT[b]} − G")
        for b in o["bands"]
    ]
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    edges = np.linspace(o["log_density_range"][0], 0, o["bins"] + 1)
    mid = 0.5 * (edges[1:] + edges[:-1])
    lines = []
    for sel_col, res_col, sig_col, label in quantities:
        sel = cat[sel_col].to_numpy(bool)
        h, _ = np.histogramdd(theta_cat[sel], bins=shape, range=list(zip(lo, hi, strict=True)))
        kde = ndimage.gaussian_filter(h, 1.0, mode="constant")  # Gaussian kernel of one bandwidth per axis
        kde /= kde.max()
        dens = np.where(inside, kde[cell[:, 0], cell[:, 1], cell[:, 2]], 0.0)
        s2 = (_col(tb, res_col) / _col(tb, sig_col)) ** 2
        ok = np.isfinite(s2) & (dens > 0)
        idx = np.digitize(np.log10(dens[ok]), edges) - 1
        valid = (idx >= 0) & (idx < len(mid))
        sums = np.bincount(idx[valid], weights=s2[ok][valid], minlength=len(mid))
        cnt = np.bincount(idx[valid], minlength=len(mid))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(cnt >= o["min_count"], sums / cnt, np.nan)
        ax.plot(10**mid, mean, "o-", ms=3, label=label)
        at = (
            np.interp(np.log10(o["report_density"]), mid[np.isfinite(mean)], mean[np.isfinite(mean)])
            if np.isfinite(mean).any()
            else np.nan
        )
        lines.append(f"{label.replace('$', '').replace('_', '')} {at:.2f}")
    ax.set(
        xscale="log", yscale="log", xlabel="training density (peak = 1)", ylabel=r"$\langle (\Delta/\sigma)^2 \rangle$"
    )
    ax.axhline(1, color="0.5", ls=":")
    ax.legend(fontsize=7)
    caption = (
        "Mean squared score of the test stars against the density of training stars at their labels "
        f"(Gaussian kernel of width {tuple(o['bandwidth'])} in Teff, log g, [Fe/H], peak normalised to 1; M_G "
        "uses the density of stars with usable parallaxes, each colour that of stars observed in its band). "
        f"At density {o['report_density']:g}: " + ", ".join(lines) + " (paper: ≈ 3 for M_G at 1e-2)."
    )
    return fig, caption
