"""Figures of the reddening: the reddening vector against Teff (Fig. 10) and its slopes against extinction
curves (Fig. 11), both with the blackbody × F99 theory, and the refitted E′ against the prior and the truth."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..bands import BAND_NAMES, band_index
from ..validation.colours import SHORT
from .inputs import Inputs
from .plotting import LABEL_TEX, _binned, _col, _hist2d, _percentile_lines, plt


@functools.lru_cache(maxsize=4)
def _photometer(rv: float):
    from ..synphot import Photometer

    return Photometer(rv=rv, blanketing_amplitude=0.0, dtype=np.float64)


def theory_reddening_vector(teff: np.ndarray, rv: float = 3.1) -> np.ndarray:
    """R of a blackbody through the passbands with the F99 curve at ``rv`` [per unit E(B-V), N = 1]."""
    return _photometer(float(rv)).reddening_vector(np.asarray(teff, dtype=float), 0.0)


def fig_reddening_teff(inp: Inputs, o: Mapping[str, Any]):
    """Fig. 10: ΔR/R (Eq. 17, R0 at the mean θ) against Teff, pixels coloured by mean log g."""
    tb = inp.table
    theta = tb[["teff", "logg", "feh"]].to_numpy(np.float64)
    mean = theta.mean(0)
    r0 = inp.model.reddening_vector(mean)[0]
    bands = o["bands"]
    t_grid = np.linspace(*o["teff_range"], 60)
    r_th = theory_reddening_vector(t_grid, o["rv"])
    r_th0 = theory_reddening_vector(np.array([mean[0]]), o["rv"])[0]
    # the truth near the mean log g and [Fe/H], normalised at the mean Teff (where enough stars are there)
    truth = inp.truth
    if truth is not None:
        tt = truth.loc[tb["source_id"].to_numpy()]
        t_true = tt["true_teff"].to_numpy()
        near = (np.abs(tt["true_logg"].to_numpy() - mean[1]) < 0.5) & (
            np.abs(tt["true_feh"].to_numpy() - mean[2]) < 0.3
        )
        at_mean = near & (np.abs(t_true - mean[0]) < 150)
        if at_mean.sum() < 5:
            truth = None
    ncol = 3
    nrow = int(np.ceil(len(bands) / ncol))
    fig, axs = plt.subplots(nrow, ncol, figsize=(3.3 * ncol, 2.6 * nrow), sharex=True, squeeze=False)
    lines = []
    for ax, b in zip(axs.flat, bands, strict=False):
        i = band_index(b)
        d = _col(tb, f"R_{b}") / r0[i] - 1
        rng = [o["teff_range"], o["dr_range"]]
        im = _binned(ax, theta[:, 0], d, theta[:, 1], o["bins"], rng, o["min_count"], "viridis_r", 1.0, 5.0)
        ax.plot(t_grid, r_th[:, i] / r_th0[i] - 1, color="0.5", lw=2, alpha=0.7, label="blackbody × F99")
        if truth is not None:
            rt = tt[f"true_r_{b}"].to_numpy()
            rel = rt[near] / np.median(rt[at_mean]) - 1
            _percentile_lines(ax, t_true[near], rel, 30, o["teff_range"], color="k")
        p1, p99 = np.nanpercentile(d, [1, 99])
        lines.append(f"{SHORT[b]} {100 * p1:+.1f}/{100 * p99:+.1f}%")
        ax.set_title(SHORT[b])
        ax.set_ylim(*o["dr_range"])
        ax.axhline(0, color="k", lw=0.5)
    for ax in axs.flat[len(bands) :]:
        ax.set_visible(False)
    for ax in axs[-1]:
        ax.set_xlabel(LABEL_TEX["teff"])
    for ax in axs[:, 0]:
        ax.set_ylabel(r"$\Delta R / R$")
    fig.colorbar(im, ax=axs, label=r"mean $\log g$", shrink=0.6)
    dw = inp.model.reddening_vector([[4000.0, 4.6, mean[2]], [4000.0, 1.5, mean[2]]])[:, band_index("gaia_g")]
    caption = (
        f"Variation of the reddening vector with Teff, ΔR/R = R(θ)/R(θ̄) - 1 with θ̄ the mean test-set θ "
        f"({mean[0]:.0f} K, {mean[1]:.2f}, {mean[2]:+.2f}); pixels coloured by mean log g, blank where < "
        f"{o['min_count']} stars. Grey: a blackbody through the passbands with the F99 curve (R_V = {o['rv']})"
        + ("; black: the simulated truth near the mean log g and [Fe/H] (median, 16/84th)" if truth is not None else "")
        + ". 1st/99th percentiles: "
        + ", ".join(lines)
        + f". Dwarf vs giant at 4000 K: R_G = {dw[0]:.3f} (log g 4.6) vs {dw[1]:.3f} (log g 1.5)."
    )
    return fig, caption


def fig_reddening_slopes(inp: Inputs, o: Mapping[str, Any]):
    """Fig. 11: E(X-Y)/E(Y-Z) per band triple, model vs F99 curves over a range of R_V."""
    tb = inp.table
    triples = [tuple(t) for t in o["triples"]]
    idx = np.array([[band_index(b) for b in t] for t in triples])
    theta0 = np.median(tb[["teff", "logg", "feh"]].to_numpy(np.float64), axis=0)
    r0 = inp.model.reddening_vector(theta0)[0]
    r_all = np.stack([_col(tb, f"R_{b}") for b in BAND_NAMES], axis=1)

    def slopes(r):
        r = np.atleast_2d(r)
        return (r[:, idx[:, 0]] - r[:, idx[:, 1]]) / (r[:, idx[:, 1]] - r[:, idx[:, 2]])

    s0 = slopes(r0)[0]
    s_lo, s_hi = np.nanpercentile(slopes(r_all), [16, 84], axis=0)
    x = np.arange(len(triples))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.fill_between(x, s_lo / s0, s_hi / s0, color="0.8", step="mid", label="test set 16-84%")
    rvs = o["rv_values"]
    colors = plt.cm.coolwarm(np.linspace(0, 1, len(rvs)))
    th = {}
    for rv, col in zip(rvs, colors, strict=True):
        th[rv] = slopes(theory_reddening_vector(np.array([theta0[0]]), rv))[0]
        ax.plot(x, th[rv] / s0, "o-", color=col, ms=3, lw=0.8, label=f"F99 $R_V$={rv}")
    ax.axhline(1, color="k", lw=1, label="model (median θ)")
    ax.set_xticks(x, ["".join(SHORT[b] for b in t) for t in triples])
    ax.set_ylabel("slope / model slope")
    ax.legend(ncol=3, fontsize=7)
    caption = (
        "Reddening-vector slopes E(X-Y)/E(Y-Z) for band triples XYZ, relative to the model at the median "
        "test-set θ (grey: 16-84th percentile over the test stars). Coloured: a blackbody at the median Teff "
        "through the passbands with the F99 curve for several R_V (the S16 table of the paper is not "
        "available in a package; F99 curves are the nearest equivalent). Model slopes at the median θ: "
        + ", ".join(f"{''.join(SHORT[b] for b in t)} {v:.3f}" for t, v in zip(triples, s0, strict=True))
        + "."
    )
    return fig, caption


def fig_reddening_refit(inp: Inputs, o: Mapping[str, Any]):
    """The refitted reddening E′ of the test stars against the dust-map prior (and the truth, if known)."""
    tb = inp.table
    e0, e1 = _col(tb, "ebv_prior"), _col(tb, "ebv_fit")
    truth = inp.truth
    panels = [(e0, e1, "dust-map prior E", "fitted E′")]
    if truth is not None:
        et = truth.loc[tb["source_id"].to_numpy(), "true_ebv"].to_numpy()
        panels += [(et, e0, "true E", "dust-map prior E"), (et, e1, "true E", "fitted E′")]
    fig, axs = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.1), squeeze=False)
    rng = [[0, o["ebv_max"]], [0, o["ebv_max"]]]
    for ax, (x, y, xl, yl) in zip(axs[0], panels, strict=True):
        _hist2d(ax, x, y, o["bins"], rng)
        ax.plot([0, o["ebv_max"]], [0, o["ebv_max"]], "r-", lw=0.7)
        ax.set(xlabel=xl, ylabel=yl, xlim=rng[0], ylim=rng[1])
    caption = f"Reddening of the {len(tb)} test stars: fitted E′ (Eqs. 8-9) against the dust-map prior"
    slope, intercept = np.polyfit(e0, e1, 1)
    caption += f" (slope {slope:.3f}, intercept {intercept:+.3f}, median E′ - E_prior {np.median(e1 - e0):+.4f})"
    if truth is not None:
        s1, _ = np.polyfit(et, e1, 1)
        caption += (
            f", and both against the simulated truth: E′ - E_true scatter {np.std(e1 - et):.4f} (prior "
            f"{np.std(e0 - et):.4f}), slope of E′ on E_true {s1:.3f}"
        )
    return fig, caption + "."


def fig_residual_dust(inp: Inputs, o: Mapping[str, Any]):
    """Variable dust after the fact (Schlafly et al. 2016): the principal direction of the residual colours of
    reddened test stars, against F99's ∂R/∂R_V, and how the residual along it grows with E."""
    from scipy.stats import spearmanr

    from ..validation import dustvar

    tb = inp.table
    r = dustvar.residual_direction(tb, o["e_min"], o["e_clean"])
    theta = np.median(tb[["teff", "logg", "feh"]].to_numpy(np.float64), axis=0)
    step = 0.1
    d_rv = (
        theory_reddening_vector(np.array([theta[0]]), o["rv"] + step)[0]
        - theory_reddening_vector(np.array([theta[0]]), o["rv"] - step)[0]
    ) / (2 * step)
    r_model = dustvar.colours_of(inp.model.reddening_vector(theta)[0])
    theory = dustvar.without(dustvar.colours_of(d_rv), r_model)  # the refit of E absorbs the part along R
    fig, axs = plt.subplots(1, 3, figsize=(13.5, 3.8))
    x = np.arange(len(dustvar.BANDS))
    if r["status"] != "ok":
        for ax in axs:
            ax.text(0.5, 0.5, "too few reddened or unreddened test stars", ha="center", transform=ax.transAxes)
        caption = (
            f"Residual analysis for variable dust: not drawn - {r['n_reddened']} test stars with E′ > {o['e_min']}"
            f" and {r['n_clean']} with E′ < {o['e_clean']} (30 of each needed)."
        )
        return fig, caption
    if r["direction"] @ theory < 0:  # orient along F99's ∂R/∂R_V: a positive δR̂ is then a higher R_V
        r = {**r, "direction": -r["direction"], "projection": -r["projection"]}
    cos = dustvar.cosine(r["direction"], theory)
    scale = r["scatter"] if r["scatter"] > 0 else 1.0
    th = dustvar.unit(theory) * scale
    axs[0].plot(x, r["direction"] * scale, "o-", color="C0", label="residuals' principal direction × √λ")
    axs[0].plot(x, th, "s--", color="0.4", label=f"F99 ∂R/∂R_V at R_V {o['rv']}, less its part along R (scaled)")
    axs[0].axhline(0, color="k", lw=0.5)
    axs[0].set_xticks(x, [f"{SHORT[b]}−G" for b in dustvar.BANDS], rotation=60, fontsize=7)
    axs[0].set_ylabel("δR along the direction [mag / mag of E]")
    axs[0].legend(fontsize=7)
    # the residual along the direction against E (not divided by E): it widens with E if the law varies
    res = tb[list(dustvar.COLUMNS)].to_numpy(np.float64)
    e = tb["ebv_fit"].to_numpy(np.float64)
    ok = np.isfinite(res).all(axis=1) & np.isfinite(e)
    along = res[ok] @ r["direction"]
    e_hi = float(np.nanpercentile(e[ok], 99))
    axs[1].plot(e[ok], along, ",", color="0.6", alpha=0.5)
    _percentile_lines(axs[1], e[ok], along, 20, [0.0, e_hi], color="C0")
    axs[1].set_xlim(0, e_hi)
    axs[1].set_ylim(*np.nanpercentile(along, [0.5, 99.5]))
    axs[1].set_xlabel(r"$E'$ [mag]")
    axs[1].set_ylabel("residual colours along the direction [mag]")
    truth_note = ""
    rv_true = inp.truth_rv
    if rv_true is not None:
        rv = rv_true.reindex(r["source_id"]).to_numpy(np.float64)
        fine = np.isfinite(rv)
        rho = float(spearmanr(r["projection"][fine], rv[fine]).statistic)
        axs[2].plot(rv[fine], r["projection"][fine], ".", ms=2, color="C0")
        axs[2].set_xlabel(r"true $R_V$")
        axs[2].set_ylabel("δR̂ along the direction")
        truth_note = (
            f" Right: against the simulated truth, Spearman ρ = {rho:.2f} between δR̂ (oriented along F99's "
            "∂R/∂R_V) and the star's true R_V."
        )
    else:
        axs[2].hist(r["projection"], bins=60, color="C0")
        axs[2].set_xlabel("δR̂ along the direction")
    noise = ", ".join(f"{v:.2g}" for v in r["noise_eigenvalues"])
    caption = (
        f"Residual analysis for variable dust (Schlafly et al. 2016 style) on {r['n_reddened']} test stars with "
        f"E′ > {o['e_min']} mag: δR̂ = residual colours (X − G, observed − predicted, E refitted) / E′; the leading "
        f"eigenvector of their covariance less the noise's share (the residuals of {r['n_clean']} stars with "
        f"E′ < {o['e_clean']}, times the mean 1/E′²). λ = {r['eigenvalue']:.2g} (√λ = {r['scatter']:.3f} mag per "
        f"mag of E; next eigenvalues {noise}, λ₁/λ₂ = {r['ratio']:.1f}: a varying law stands out of them). "
        f"|cos| with F99's ∂R/∂R_V at R_V {o['rv']} (blackbody at the "
        f"median test Teff {theta[0]:.0f} K, less its part along the model's R) = {cos:.2f}. Middle: the residual "
        f"colours along the direction against E′ (16/50/84th percentiles): they widen with E′ when the law "
        f"varies.{truth_note}"
    )
    return fig, caption


def fig_extinction_components(inp: Inputs, o: Mapping[str, Any]):
    """Paper Eq. 20 (a model with K > 1 reddening components): R_k against wavelength, E_2/E_1 of the reddened
    test stars on the sky, and E_2/E_1 against the true R_V (simulated sky with varying dust) or against E′."""
    from scipy.stats import spearmanr

    from ..validation import dustvar

    tb, model = inp.table, inp.model
    if model.components == 1 or "ebv_fit_2" not in tb:
        return _one_component(inp, o)
    fig, axs = plt.subplots(1, 3, figsize=(14.0, 3.9))
    theta = np.median(tb[["teff", "logg", "feh"]].to_numpy(np.float64), axis=0)
    comps = model.reddening_components(theta, outside="ignore")[0]
    wl = np.arange(len(BAND_NAMES))  # bands in wavelength order
    for k, c in enumerate(comps):
        axs[0].plot(wl, c, "o-", label=f"R_{k + 1}", color=f"C{k}")
    axs[0].axhline(0, color="k", lw=0.5)
    axs[0].set_xticks(wl, [SHORT[b] for b in BAND_NAMES], rotation=60, fontsize=7)
    axs[0].set_ylabel("mag per unit E_k")
    truth_note, rho_note = "", ""
    truth = inp.truth
    rv = inp.truth_rv
    if truth is not None and rv is not None:
        d = dustvar.truth_rv_derivative(tb, truth.assign(true_rv=rv.reindex(truth.index)), theta)
        if d is not None:
            d_perp = dustvar.without(d, comps[0])
            scale = np.linalg.norm(comps[1]) / np.linalg.norm(d_perp)
            sign = np.sign(d_perp @ comps[1])
            axs[0].plot(wl, sign * scale * d_perp, "s--", color="0.4", label="true ∂R/∂R_V ⊥ R_1 (scaled)")
            n = 11
            c_perp = dustvar.cosine(comps[1][:n], dustvar.without(d[:n], comps[0][:n]))
            c_raw, c_par = dustvar.cosine(comps[1][:n], d[:n]), dustvar.cosine(d[:n], comps[0][:n])
            truth_note = (
                f" |cos| of R_2 with the truth's ∂R/∂R_V less its part along R_1 = {c_perp:.3f} over G … Ks (with "
                f"∂R/∂R_V itself {c_raw:.2f}: ∂R/∂R_V is {c_par:.3f} parallel to R_1, a change of E_1's scale)."
            )
    axs[0].legend(fontsize=7)
    ratio = dustvar.e2_ratio(tb)
    hot = tb["usable"].to_numpy(bool) & (_col(tb, "ebv_fit") > o["e_min"]) & np.isfinite(ratio)
    lim = o["ratio_limit"]
    _sky(fig, axs[1], inp, hot, ratio, "E_2 / E_1", cmap="coolwarm", vmin=-lim, vmax=lim)
    if truth is not None and rv is not None:
        t_rv = rv.reindex(tb["source_id"].to_numpy()).to_numpy(np.float64)
        t_e = truth["true_ebv"].reindex(tb["source_id"].to_numpy()).to_numpy(np.float64)
        sel = tb["usable"].to_numpy(bool) & (t_e > o["e_min"]) & np.isfinite(ratio)
        rho = spearmanr(ratio[sel], t_rv[sel]).statistic
        axs[2].plot(t_rv[sel], ratio[sel], ".", ms=2, color="C0")
        axs[2].set_xlabel("true R_V")
        rho_note = (
            f" Right: Spearman ρ = {rho:.2f} between E_2/E_1 and the true R_V ({int(sel.sum())} stars, true "
            f"E > {o['e_min']})."
        )
    else:
        axs[2].plot(_col(tb, "ebv_fit")[hot], ratio[hot], ".", ms=2, color="C0")
        axs[2].set_xlabel(r"$E'$ [mag]")
    axs[2].set_ylim(-lim, lim)
    axs[2].set_ylabel("E_2 / E_1")
    med, mad = dustvar.median_scatter(ratio[hot])
    caption = (
        f"Reddening components (paper Eq. 20), K = {model.components}. Left: R_1 … R_K at the median test θ "
        f"({theta[0]:.0f} K, {theta[1]:.2f}, {theta[2]:+.2f}); R_2 … R_K are orthogonal to R_1 over the 13 bands and "
        f"of its norm.{truth_note} Middle: E_2/E_1 of the {int(hot.sum())} usable test stars with E′ > {o['e_min']} "
        f"on the sky (median {med:+.4f}, scatter {mad:.4f} as 1.4826 MAD).{rho_note}"
    )
    return fig, caption


def _one_component(inp: Inputs, o: Mapping[str, Any]):
    """:func:`fig_extinction_components` for a model with one component: R at the median θ and E′ on the sky."""
    tb = inp.table
    fig, axs = plt.subplots(1, 2, figsize=(9.5, 3.9))
    theta = np.median(tb[["teff", "logg", "feh"]].to_numpy(np.float64), axis=0)
    x = np.arange(len(BAND_NAMES))
    axs[0].plot(x, inp.model.reddening_vector(theta, outside="ignore")[0], "o-", label="R_1 = R")
    axs[0].set_xticks(x, [SHORT[b] for b in BAND_NAMES], rotation=60, fontsize=7)
    axs[0].set_ylabel("mag per unit E")
    axs[0].legend(fontsize=7)
    hot = tb["usable"].to_numpy(bool) & (_col(tb, "ebv_fit") > o["e_min"])
    _sky(fig, axs[1], inp, hot, _col(tb, "ebv_fit"), "E′", cmap="viridis")
    caption = (
        "Reddening components (paper Eq. 20): this model has one (train.extinction_components: 1), the paper's R, "
        f"shown at the median test θ ({theta[0]:.0f} K, {theta[1]:.2f}, {theta[2]:+.2f}), with E′ of the "
        f"{int(hot.sum())} usable test stars with E′ > {o['e_min']} on the sky. With K > 1 the figure shows R_2 … R_K "
        "and E_2/E_1."
    )
    return fig, caption


def _sky(fig, ax, inp: Inputs, sel: np.ndarray, values: np.ndarray, label: str, **kw) -> None:
    """``values`` of the test stars ``sel`` at their Galactic (l, b) from the catalog; where the catalog has no
    positions (a catalog of your own may not), E′ against the prior instead."""
    import pyarrow.dataset as ds

    tb = inp.table
    if inp.has("catalog") and {"l", "b"} <= set(ds.dataset(inp.paths["catalog"]).schema.names):
        pos = inp.catalog(["source_id", "l", "b"]).set_index("source_id").reindex(tb["source_id"].to_numpy())
        lon = ((pos["l"].to_numpy() + 180.0) % 360.0) - 180.0
        sc = ax.scatter(lon[sel], pos["b"].to_numpy()[sel], c=values[sel], s=3, **kw)
        fig.colorbar(sc, ax=ax, label=label)
        ax.set_xlim(180, -180)
        ax.set_xlabel("l [deg]")
        ax.set_ylabel("b [deg]")
        return
    ax.scatter(_col(tb, "ebv_prior")[sel], _col(tb, "ebv_fit")[sel], c=values[sel], s=3, **kw)
    ax.set_xlabel("E prior [mag] (the catalog has no positions)")
    ax.set_ylabel("E′ [mag]")
