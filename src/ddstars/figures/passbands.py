"""Figures of the passbands and of the extinction physics: the 13 passbands (Fig. 4) and the non-linearity of
extinction in the wide Gaia G band (Appendix B)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..validation.colours import SHORT
from .inputs import Inputs
from .plotting import plt


def fig_filters(inp: Inputs, o: Mapping[str, Any]):
    """Fig. 4: the 13 passbands; Gaia, 2MASS and WISE curves scaled to a peak of 1."""
    import speclite.filters

    from ..bands import BANDS

    fig, ax = plt.subplots(figsize=(7, 2.6))
    peaks = []
    for i, b in enumerate(BANDS):
        f = speclite.filters.load_filter(b.speclite)
        lam = np.asarray(f.wavelength) / 10.0
        resp = np.asarray(f.response, dtype=float)
        if b.survey != "ps1":  # PS1 curves are throughputs already; the others are normalised
            resp = resp / resp.max()
        peaks.append(lam[np.argmax(resp)])
        ax.plot(lam, resp, lw=1, color=plt.cm.turbo(i / 12))
        ax.text(lam[np.argmax(resp)], resp.max() + 0.03, SHORT[b.name], ha="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("wavelength [nm]")
    ax.set_ylabel("transmission")
    ax.set_ylim(0, 1.15)
    caption = (
        "Passbands of the 13 bands (speclite curves; Gaia, 2MASS and unWISE scaled to a peak of 1, PS1 as "
        f"published throughput). Peak wavelengths from {min(peaks):.0f} nm "
        f"({SHORT[BANDS[int(np.argmin(peaks))].name]}) "
        f"to {max(peaks):.0f} nm ({SHORT[BANDS[int(np.argmax(peaks))].name]})."
    )
    return fig, caption


def fig_nonlinearity(inp: Inputs, o: Mapping[str, Any]):
    """Appendix B: ΔA_G against A_G for a blackbody (Eq. B19) with the second-order estimate (Eq. B31)."""
    from ..validation import extinction

    res = extinction.appendix_b(**o["appendix_b"])
    st, mo = res["setup"], res["moments"]
    fig, axs = plt.subplots(1, 2, figsize=(7.5, 3.0))
    a = np.asarray(res["a_grid"])
    axs[0].plot(a, res["delta_a_numerical"], "k-", label=f"Eq. B19, {st['teff']:.0f} K blackbody")
    axs[0].plot(a, res["delta_a_perturbative"], "C1--", label="Eq. B31")
    axs[0].axhline(-st["floor"], color="0.5", ls=":", label=f"{st['floor']} mag floor")
    axs[0].set(xlabel=r"$A_G$ [mag]", ylabel=r"$\Delta A_G$ [mag]")
    axs[0].legend(fontsize=7)
    axs[1].plot(res["teff_grid"], res["delta_a_ref_vs_teff"], "ko-", ms=3)
    axs[1].axhline(res["paper"]["delta_a_ref"], color="C0", ls=":", label="paper, 6000 K")
    axs[1].set(xlabel="blackbody temperature [K]", ylabel=rf"$\Delta A_G$ at $A_G$ = {st['a_ref']:g}")
    axs[1].legend(fontsize=7)
    caption = (
        f"Non-linearity of extinction in the wide Gaia G band: ΔA_G, the extinction minus its linear "
        f"extrapolation from low optical depth, for a blackbody through the G passband ({st['passband']}) with "
        f"the F99 curve improved by Indebetouw et al. (2005) as tabulated by the SVO ({st['curve']}), photon "
        f"counting. At A_G = {st['a_ref']:g} for {st['teff']:.0f} K: ΔA_G = {res['delta_a_ref_numerical']:.4f} mag "
        f"(paper: -0.037); it varies by {100 * res['teff_variation']:.0f}% over {res['teff_grid'][0]:.0f}-"
        f"{res['teff_grid'][-1]:.0f} K. Eq. B31 with ν0 = {mo['nu0_nm']:.1f} nm, Δν = {mo['dnu_nm']:.1f} nm, "
        f"γ = {mo['gamma']:.3f}: ΔA_G = {mo['coefficient']:.4f} A_G² (paper: 640 nm, 144 nm, 1.31, -0.040). "
        f"|ΔA_G| reaches {st['floor']} mag at A_G = {res['a_at_floor_numerical']:.2f} (paper: about 0.7). With "
        f"the simulated sky's setup (dust_extinction F99, speclite G) it would be "
        f"{res['simulation_f99_speclite']:.4f} mag."
    )
    return fig, caption
