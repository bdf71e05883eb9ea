"""Figures of the training set and the training run: the labels and reddening of the training stars (Fig. 5)
and the training history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .inputs import Inputs
from .plotting import LABEL_TEX, _col, _hist2d, plt


def fig_labels(inp: Inputs, o: Mapping[str, Any]):
    """Fig. 5: the training set in Teff, log g, [Fe/H] and E."""
    cat = inp.catalog(["source_id", "split", "teff", "logg", "feh", "ebv_prior"])
    cat = cat[cat["split"] == "train"]
    red = inp.reddening.set_index("source_id")
    e_fit = red.loc[cat["source_id"], "ebv_fit"].to_numpy()
    t, g, f, e0 = (_col(cat, c) for c in ("teff", "logg", "feh", "ebv_prior"))
    fig, axs = plt.subplots(1, 4, figsize=(10, 2.5))
    b = o["bins"]
    _hist2d(axs[0], t, g, b, [o["teff_range"], o["logg_range"]])
    axs[0].set(
        xlabel=LABEL_TEX["teff"], ylabel=LABEL_TEX["logg"], xlim=o["teff_range"][::-1], ylim=o["logg_range"][::-1]
    )
    _hist2d(axs[1], t, f, b, [o["teff_range"], o["feh_range"]])
    axs[1].set(xlabel=LABEL_TEX["teff"], ylabel=LABEL_TEX["feh"], xlim=o["teff_range"][::-1])
    _hist2d(axs[2], g, f, b, [o["logg_range"], o["feh_range"]])
    axs[2].set(xlabel=LABEL_TEX["logg"], ylabel=LABEL_TEX["feh"])
    eb = np.linspace(0, o["ebv_max"], b)
    axs[3].hist(e0, eb, histtype="step", color="0.5", label="prior")
    axs[3].hist(e_fit, eb, histtype="step", color="k", label="fitted E′")
    axs[3].set(xlabel="E", ylabel="stars", yscale="log")
    axs[3].legend()
    p = np.percentile(np.stack([t, g, f], 1), [1, 99], axis=0)
    caption = (
        f"Training set ({len(cat)} stars): labels (log-scaled counts) and reddening (dust-map prior and "
        f"final E′). 1st-99th percentiles: Teff {p[0, 0]:.0f}-{p[1, 0]:.0f} K, log g {p[0, 1]:.2f}-{p[1, 1]:.2f}, "
        f"[Fe/H] {p[0, 2]:.2f}-{p[1, 2]:.2f}; median E prior {np.median(e0):.3f}, E′ {np.median(e_fit):.3f}."
    )
    return fig, caption


def fig_history(inp: Inputs, o: Mapping[str, Any]):
    """Training history: loss per optimiser step; per round ⟨χ²/dof⟩, outliers, τ and convergence diagnostics."""
    h, r = inp.history, inp.rounds
    fig, axs = plt.subplots(1, 4, figsize=(13, 2.8))
    step = h["steps"].cumsum().to_numpy()
    val = h["val_loss"].notna().to_numpy()  # evaluated once per compiled call of one or more epochs
    axs[0].plot(step, h["loss"], label="training")
    axs[0].plot(step[val], h["val_loss"].to_numpy()[val], ".", ms=2, label="validation")
    axs[0].set(xlabel="optimiser step (all rounds)", ylabel="loss")
    axs[0].set_yscale("log")
    axs[0].legend()
    axs[1].plot(r["round"], r["mean_chi2_dof_lt5"], "o-", ms=3, label=r"$\langle\chi^2/\mathrm{dof}\rangle$ (< 5)")
    axs[1].plot(r["round"], r["mean_chi2_dof_lt10"], "s-", ms=3, label="(< 10)")
    axs[1].set(xlabel="round", ylabel=r"$\chi^2/\mathrm{dof}$")
    axs[1].legend()
    axs[2].plot(r["round"], 100 * r["outlier_fraction"], "o-", ms=3, color="C3")
    axs[2].set(xlabel="round", ylabel="stars left out [%]")
    ax2 = axs[2].twinx()
    ax2.plot(r["round"], np.where(np.isfinite(r["tau"]), r["tau"], np.nan), "k:", label=r"$\tau$")
    ax2.set_yscale("log")
    ax2.set_ylabel(r"$\chi^2/\mathrm{dof}$ threshold $\tau$")
    # the convergence diagnostics of each round (results/model/summary.json judges the last rounds)
    axs[3].plot(r["round"], np.abs(r["loss_drop"]), "o-", ms=3, label="|loss drop|, last quarter")
    axs[3].plot(r["round"], r["r_change"], "s-", ms=3, label=r"max $|\Delta R/R|$ (G…Ks)")
    axs[3].set(xlabel="round", ylabel="relative change", yscale="log")
    axs[3].legend(fontsize="small")
    fig.get_layout_engine().set(wspace=0.08)  # room for the τ axis of the third panel
    last = r.iloc[-1]
    caption = (
        f"Training history over {len(r)} rounds ({len(h)} epochs, {int(r['steps'].sum()):,} optimiser steps at batch "
        f"{int(r['batch_size'].iloc[-1])}): final loss {last['loss']:.3f} (training), "
        f"{last['val_loss']:.3f} (validation); final ⟨χ²/dof⟩ {last['mean_chi2_dof_lt5']:.3f} (< 5), "
        f"{last['mean_chi2_dof_lt10']:.3f} (< 10); {100 * last['outlier_fraction']:.2f}% of training stars left out "
        f"in the last round (paper: 0.501, 0.502, 2.7%)."
    )
    return fig, caption
