"""Figures of the photometric-inference stage, drawn from one joined table of its stars (one row per star).

The table: ``source_id``, ``l``, ``b`` [deg], ``mag_gaia_g``, ``parallax``, ``parallax_error``, ``n_bands``,
``flags`` (0 = valid), ``ess``; per parameter p of (teff, logg, feh, mu, ebv) the percentiles ``p_p2.5`` …
``p_p97.5`` and ``p_map``, and the stored joint posterior samples as list columns ``samples_p``. Optional: the
truth ``true_p`` (simulated stars; each figure draws what it can without it) and ``map_ebv``, the input dust
map's E at the star's inferred median distance. Statistics are over the valid stars (``flags == 0``).

* :func:`fig_inference_truth`: inferred median against the truth (needs ``true_*``);
* :func:`fig_inference_pit`: the PIT histograms and the 68 / 95 % coverage of the percentiles (needs ``true_*``);
* :func:`fig_inference_kiel`: the inferred Kiel diagram, beside the true one where known;
* :func:`fig_inference_cmd`: the model's colour-magnitude diagram at the inferred θ (needs the model);
* :func:`fig_inference_dust`: the inferred E per HEALPix pixel, beside the dust map's where known;
* :func:`fig_inference_examples`: the samples of a few stars across magnitude.

:func:`render_all` writes each figure's PDF, PNG and caption and skips those whose inputs are absent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..bands import band_index
from ..errors import DataError
from .plotting import LABEL_TEX, _binned, _col, _hist2d, plt, save

log = logging.getLogger(__name__)

PARAMS = ("teff", "logg", "feh", "mu", "ebv")
LABEL = {**LABEL_TEX, "mu": r"$\mu$ [mag]", "ebv": "$E$"}
NAME = {"teff": "Teff", "logg": "log g", "feh": "[Fe/H]", "mu": "μ", "ebv": "E"}
UNIT = {"teff": " K", "logg": "", "feh": "", "mu": " mag", "ebv": " mag"}
FORMAT = {"teff": ".0f", "logg": ".3f", "feh": ".3f", "mu": ".3f", "ebv": ".3f"}
MAD_SIGMA = 1.4826  # robust scatter: 1.4826 × the median absolute deviation is σ for a Gaussian


# ------------------------------------------------------------------------------------------------------------ helpers
def _valid(stars: pd.DataFrame) -> np.ndarray:
    return stars["flags"].to_numpy() == 0


def truth_params(stars: pd.DataFrame) -> list[str]:
    """The parameters whose truth ``true_<p>`` the table carries."""
    return [p for p in PARAMS if f"true_{p}" in stars.columns]


def _need_truth(stars: pd.DataFrame, figure: str) -> list[str]:
    params = truth_params(stars)
    if not params:
        raise DataError(f"{figure} needs the truth (columns true_{', true_'.join(PARAMS)}); the table has none")
    return params


def robust(x: np.ndarray) -> tuple[float, float]:
    """Median and robust scatter (1.4826 × median absolute deviation) of the finite values of x (NaN if none)."""
    x = x[np.isfinite(x)]
    if not len(x):
        return np.nan, np.nan
    med = float(np.median(x))
    return med, float(MAD_SIGMA * np.median(np.abs(x - med)))


def _range(*arrays: np.ndarray, q=(0.5, 99.5), pad=0.05) -> list[float]:
    """A plotting range covering the q-th percentiles of the finite values of the arrays, padded."""
    x = np.concatenate([a[np.isfinite(a)] for a in arrays])
    if not len(x):
        return [0.0, 1.0]
    lo, hi = np.percentile(x, q)
    d = (hi - lo) * pad if hi > lo else 0.5
    return [float(lo - d), float(hi + d)]


def samples(stars: pd.DataFrame, p: str) -> np.ndarray:
    """The stored samples of parameter p as an (n, K) float64 array; rows with fewer samples are padded with NaN."""
    col = stars[f"samples_{p}"].to_numpy()
    if not len(col):
        return np.zeros((0, 0))
    lengths = np.fromiter((len(s) for s in col), int, len(col))
    if (lengths == lengths[0]).all():
        return np.stack(col).astype(np.float64).reshape(len(col), lengths[0])
    out = np.full((len(col), lengths.max()), np.nan)
    for i, s in enumerate(col):  # ragged only when stars stored different numbers of samples
        out[i, : len(s)] = s
    return out


def pit(samp: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomised probability integral transform of the truth under each star's K samples (NaN samples ignored).

    With b samples below the truth and e equal to it, u = (b + V (e + 1)) / (K + 1), V ~ U(0, 1). If the truth
    and the K samples are independent draws of one distribution, the truth's rank among the K + 1 values is
    uniform on 0 … K (ties broken at random: uniform on b … b + e), and spreading each rank uniformly over its
    1 / (K + 1) wide cell makes u exactly U(0, 1), for any K and also for samples on a grid (ties). A posterior
    too narrow piles u at 0 and 1 (U shape), too wide in the middle, a biased one on one side."""
    k = np.isfinite(samp).sum(axis=1)
    t = truth[:, None]
    below = (samp < t).sum(axis=1)
    equal = (samp == t).sum(axis=1)
    u = (below + rng.random(len(truth)) * (equal + 1)) / (k + 1)
    return np.where(np.isfinite(truth) & (k > 0), u, np.nan)


def coverage(stars: pd.DataFrame, p: str, lo: str, hi: str) -> tuple[float, int]:
    """Fraction of the stars (with a finite truth) whose truth lies within [p_lo, p_hi], and their number."""
    t = _col(stars, f"true_{p}")
    a, b = _col(stars, f"{p}_{lo}"), _col(stars, f"{p}_{hi}")
    ok = np.isfinite(t) & np.isfinite(a) & np.isfinite(b)
    n = int(ok.sum())
    return (float(np.mean((t[ok] >= a[ok]) & (t[ok] <= b[ok]))) if n else np.nan), n


def _one_to_one(ax, rng):
    ax.plot(rng, rng, "-", color="C3", lw=0.8)


# ------------------------------------------------------------------------------------------------------------ figures
def fig_inference_truth(stars: pd.DataFrame, bins: int = 80):
    """Inferred median against the truth, per parameter (binned density, 1:1 line); bias and robust scatter."""
    params = _need_truth(stars, "fig_inference_truth")
    v = stars[_valid(stars)]
    fig, axs = plt.subplots(1, len(params), figsize=(2.6 * len(params), 2.6), squeeze=False)
    parts = []
    for ax, p in zip(axs[0], params, strict=True):
        t, m = _col(v, f"true_{p}"), _col(v, f"{p}_p50")
        rng = _range(t, m)
        _hist2d(ax, t, m, bins, [rng, rng])
        _one_to_one(ax, rng)
        ax.set(xlabel=f"true {LABEL[p]}", ylabel=f"inferred {LABEL[p]}", xlim=rng, ylim=rng)
        if p == "teff":
            ax.set(xlim=rng[::-1], ylim=rng[::-1])
        bias, scatter = robust(m - t)
        n = int((np.isfinite(m) & np.isfinite(t)).sum())
        ax.set_title(f"bias {bias:{FORMAT[p]}}, scatter {scatter:{FORMAT[p]}}")
        parts.append(f"{NAME[p]} bias {bias:{FORMAT[p]}}{UNIT[p]}, scatter {scatter:{FORMAT[p]}}{UNIT[p]} ({n} stars)")
    caption = (
        f"Inferred posterior median against the truth for {len(v)} valid stars (flags = 0) of {len(stars)} "
        f"(log-scaled counts; red: 1:1). Bias = median of (median - truth), scatter = 1.4826 × MAD: "
        + "; ".join(parts)
        + "."
    )
    return fig, caption


def fig_inference_pit(stars: pd.DataFrame, bins: int = 20, seed: int = 1):
    """PIT histograms of the truth under the stored samples, per parameter; 68 % and 95 % coverage."""
    params = _need_truth(stars, "fig_inference_pit")
    v = stars[_valid(stars)]
    rng = np.random.default_rng(seed)
    fig, axs = plt.subplots(1, len(params), figsize=(2.4 * len(params), 2.3), squeeze=False, sharey=True)
    parts = []
    edges = np.linspace(0, 1, bins + 1)
    for ax, p in zip(axs[0], params, strict=True):
        u = pit(samples(v, p), _col(v, f"true_{p}"), rng)
        u = u[np.isfinite(u)]
        h, _ = np.histogram(u, edges)
        expect = len(u) / bins
        ax.stairs(h / max(expect, 1e-300), edges, color="k")
        ax.axhline(1.0, color="C3", lw=0.8)
        ax.set(xlabel=f"PIT of {LABEL[p]}", xlim=(0, 1))
        p_chi2 = float(stats.chisquare(h).pvalue) if len(u) else np.nan
        c68, n = coverage(v, p, "p16", "p84")
        c95, _ = coverage(v, p, "p2.5", "p97.5")
        ax.set_title(f"68%: {100 * c68:.1f}%, 95%: {100 * c95:.1f}%")
        parts.append(
            f"{NAME[p]} {100 * c68:.1f}% within [p16, p84] and {100 * c95:.1f}% within [p2.5, p97.5] "
            f"({n} stars; PIT χ² p = {p_chi2:.3g})"
        )
    axs[0, 0].set_ylabel("stars / expected")
    k = samples(v.iloc[:1], params[0]).shape[1] if len(v) else 0
    caption = (
        f"Probability integral transform of the truth under each valid star's {k} stored samples (randomised "
        f"within ties), {bins} bins, relative to a uniform distribution (red: calibrated posteriors), "
        f"{len(v)} valid stars (flags = 0) of {len(stars)}. Coverage of the percentile intervals (calibrated: 68.3% "
        f"and 95.4%) and χ² test of a flat PIT: " + "; ".join(parts) + "."
    )
    return fig, caption


def fig_inference_kiel(stars: pd.DataFrame, bins: int = 80, min_count: int = 3):
    """Kiel diagram of the inferred median (Teff, log g) coloured by the mean [Fe/H]; the true one beside it."""
    v = stars[_valid(stars)]
    truth = all(f"true_{p}" in stars.columns for p in ("teff", "logg", "feh"))
    sets = [("inferred", _col(v, "teff_p50"), _col(v, "logg_p50"), _col(v, "feh_p50"))]
    if truth:
        sets.append(("true", _col(v, "true_teff"), _col(v, "true_logg"), _col(v, "true_feh")))
    t_rng = _range(*(s[1] for s in sets))
    g_rng = _range(*(s[2] for s in sets))
    f_lim = _range(*(s[3] for s in sets), q=(2, 98), pad=0)
    fig, axs = plt.subplots(1, len(sets), figsize=(3.6 * len(sets), 3.0), squeeze=False)
    parts = []
    mesh = None
    for ax, (what, t, g, f) in zip(axs[0], sets, strict=True):
        mesh = _binned(ax, t, g, f, bins, [t_rng, g_rng], min_count, "viridis", *f_lim)
        ax.set(xlabel=LABEL["teff"], ylabel=LABEL["logg"], xlim=t_rng[::-1], ylim=g_rng[::-1], title=what)
        n = int((np.isfinite(t) & np.isfinite(g) & np.isfinite(f)).sum())
        parts.append(f"{what}: {n} stars, median [Fe/H] {np.nanmedian(f):.2f}")
    fig.colorbar(mesh, ax=axs[0, -1], label=f"mean {LABEL['feh']}")
    caption = (
        f"Kiel diagram of the {len(v)} valid stars (flags = 0) of {len(stars)}: "
        + ("inferred posterior medians (left) and the truth (right)" if truth else "inferred posterior medians")
        + f", coloured by the mean [Fe/H] per cell (white: fewer than {min_count} stars). "
        + "; ".join(parts)
        + "."
    )
    return fig, caption


def fig_inference_cmd(stars: pd.DataFrame, model: Any, bins: int = 120):
    """Colour-magnitude diagram of the model at the inferred θ; beside it the observed one, dereddened and
    shifted by the inferred E and μ, where the table has the BP and RP magnitudes."""
    if model is None:
        raise DataError("fig_inference_cmd needs the model")
    v = stars[_valid(stars)]
    theta = np.column_stack([_col(v, f"{p}_p50") for p in ("teff", "logg", "feh")])
    ig, ib, ir = (band_index(b) for b in ("gaia_g", "gaia_bp", "gaia_rp"))
    m = model.predict_absolute_magnitudes(theta, outside="ignore") if len(v) else np.zeros((0, 13))
    sets = [("model at inferred θ", m[:, ib] - m[:, ir], m[:, ig])]
    observed = all(f"mag_gaia_{b}" in v.columns for b in ("bp", "rp"))
    if observed:
        r = model.reddening_vector(theta, outside="ignore") if len(v) else np.zeros((0, 13))
        e, mu = _col(v, "ebv_p50"), _col(v, "mu_p50")
        colour = _col(v, "mag_gaia_bp") - _col(v, "mag_gaia_rp") - e * (r[:, ib] - r[:, ir])
        sets.append(("observed, dereddened", colour, _col(v, "mag_gaia_g") - mu - e * r[:, ig]))
    c_rng = _range(*(s[1] for s in sets))
    m_rng = _range(*(s[2] for s in sets))
    fig, axs = plt.subplots(1, len(sets), figsize=(3.2 * len(sets), 3.2), squeeze=False)
    for ax, (what, c, mg) in zip(axs[0], sets, strict=True):
        _hist2d(ax, c, mg, bins, [c_rng, m_rng])
        ax.set(xlabel=r"$(BP - RP)_0$", ylabel=r"$M_G$", xlim=c_rng, ylim=m_rng[::-1], title=what)
    n = int((np.isfinite(sets[0][1]) & np.isfinite(sets[0][2])).sum())
    caption = (
        f"Colour-magnitude diagram of the model's intrinsic BP - RP and M_G at the inferred posterior medians of "
        f"Teff, log g and [Fe/H], {n} valid stars (flags = 0) of {len(stars)} (log-scaled counts)"
    )
    if observed:
        dc, sc = robust(sets[1][1] - sets[0][1])
        dm, sm = robust(sets[1][2] - sets[0][2])
        caption += (
            "; beside it the observed BP - RP and G, less the inferred E × R and μ. Observed minus model: "
            f"BP - RP median {dc:.3f} mag, scatter {sc:.3f} mag; M_G median {dm:.3f} mag, scatter {sm:.3f} mag"
        )
    return fig, caption + "."


def _pixel_medians(stars: pd.DataFrame, cols: list[str], nside: int) -> pd.DataFrame:
    import healpy as hp

    pix = hp.ang2pix(nside, _col(stars, "l"), _col(stars, "b"), nest=True, lonlat=True)
    return pd.DataFrame({c: _col(stars, c) for c in cols}).groupby(pix).median()


def _mollweide(ax, values: pd.Series, nside: int, vmin: float, vmax: float, cmap: str = "viridis"):
    """Per-pixel values (nested HEALPix, indexed by pixel) on a Mollweide axes in Galactic coordinates, l = 0 in
    the centre and increasing to the left; pixels without a value white."""
    import healpy as hp

    full = np.full(hp.nside2npix(nside), np.nan)
    full[values.index.to_numpy()] = values.to_numpy()
    x = np.linspace(-np.pi, np.pi, 361)
    y = np.linspace(-np.pi / 2, np.pi / 2, 181)
    xc, yc = np.meshgrid(0.5 * (x[1:] + x[:-1]), 0.5 * (y[1:] + y[:-1]))
    pix = hp.ang2pix(nside, np.degrees(-xc) % 360.0, np.degrees(yc), nest=True, lonlat=True)
    mesh = ax.pcolormesh(x, y, full[pix], cmap=cmap, vmin=vmin, vmax=vmax, rasterized=True, shading="flat")
    ticks = np.arange(-150, 151, 30)
    ax.set_xticks(np.radians(ticks), [f"{(-t) % 360:.0f}°" for t in ticks], fontsize=5)
    ax.tick_params(axis="y", labelsize=6)
    ax.grid(True, lw=0.3, color="0.6")
    return mesh


def fig_inference_dust(stars: pd.DataFrame, healpix_order: int = 3):
    """Median inferred E per HEALPix pixel; beside it the dust map's median E there, and the two compared."""
    v = stars[_valid(stars)]
    nside = 2**healpix_order
    has_map = "map_ebv" in v.columns
    cols = ["ebv_p50", "map_ebv"] if has_map else ["ebv_p50"]
    med = _pixel_medians(v, cols, nside)
    med = med[np.isfinite(med).all(axis=1)]
    vmin, vmax = _range(*(med[c].to_numpy() for c in cols), q=(1, 99), pad=0)
    ncol = 3 if has_map else 1
    fig = plt.figure(figsize=(4.2 * ncol - (1.2 if has_map else 0), 2.6))
    axs = [fig.add_subplot(1, ncol, i + 1, projection="mollweide") for i in range(len(cols))]
    mesh = None
    for ax, c, what in zip(axs, cols, ("inferred E", "dust map E"), strict=False):
        mesh = _mollweide(ax, med[c], nside, vmin, vmax)
        ax.set_title(f"median {what} per pixel")
    fig.colorbar(mesh, ax=axs, orientation="horizontal", shrink=0.6, label="$E$ [mag]")
    caption = (
        f"Median inferred E (posterior median) per HEALPix pixel (order {healpix_order}, nested; Galactic "
        f"Mollweide, l = 0 in the centre, increasing to the left) of the {len(v)} valid stars (flags = 0) of "
        f"{len(stars)}: {len(med)} pixels with stars"
    )
    if has_map:
        ax = fig.add_subplot(1, ncol, 3)
        ax.plot(med["map_ebv"], med["ebv_p50"], ".", ms=3, color="k", rasterized=True)
        rng = _range(med["map_ebv"].to_numpy(), med["ebv_p50"].to_numpy(), q=(0, 100))
        _one_to_one(ax, rng)
        ax.set(xlabel="dust map $E$ (pixel median)", ylabel="inferred $E$ (pixel median)", xlim=rng, ylim=rng)
        ax.set_aspect("equal")
        d, s = robust((med["ebv_p50"] - med["map_ebv"]).to_numpy())
        caption += (
            ", beside the dust map's median E at each star's inferred median distance, and the two per pixel "
            f"(red: 1:1). Inferred minus map per pixel: median {d:.4f} mag, robust scatter {s:.4f} mag"
        )
    return fig, caption + "."


def fig_inference_examples(stars: pd.DataFrame, n: int = 4, seed: int = 1):
    """Posterior samples of a few stars across magnitude in (Teff, log g) and (μ, E), the median and the truth."""
    v = stars[_valid(stars)]
    if not len(v):
        v = stars
    if not len(v):
        raise DataError("fig_inference_examples: the table has no stars")
    rng = np.random.default_rng(seed)
    g = _col(v, "mag_gaia_g")
    order = np.argsort(g, kind="stable")
    picks = [int(order[rng.choice(c)]) for c in np.array_split(np.arange(len(v)), min(n, len(v))) if len(c)]
    fig, axs = plt.subplots(2, len(picks), figsize=(2.5 * len(picks), 4.6), squeeze=False)
    names = []
    for j, i in enumerate(picks):
        row = v.iloc[i : i + 1]
        for ax, (x, y) in zip(axs[:, j], (("teff", "logg"), ("mu", "ebv")), strict=True):
            ax.plot(samples(row, x)[0], samples(row, y)[0], ".", ms=3, color="0.4", rasterized=True)
            ax.plot(_col(row, f"{x}_p50"), _col(row, f"{y}_p50"), "o", mfc="none", color="C0", label="median")
            if f"true_{x}" in row.columns and f"true_{y}" in row.columns:
                ax.plot(_col(row, f"true_{x}"), _col(row, f"true_{y}"), "x", color="C3", ms=7, label="truth")
            ax.set(xlabel=LABEL[x], ylabel=LABEL[y])
        axs[0, j].invert_xaxis()
        axs[0, j].invert_yaxis()
        sid, mag = int(row["source_id"].iloc[0]), float(row["mag_gaia_g"].iloc[0])
        axs[0, j].set_title(f"{sid}\nG = {mag:.2f}", fontsize=7)
        names.append(f"{sid} (G = {mag:.2f})")
    axs[0, 0].legend(fontsize=6)
    k = samples(v.iloc[picks[:1]], "teff").shape[1]
    truth = " and the truth (red ×)" if {"true_teff", "true_mu"} <= set(v.columns) else ""
    caption = (
        f"Posterior samples ({k} stored per star) in (Teff, log g) and (μ, E) of {len(picks)} "
        f"{'valid ' if (stars['flags'] == 0).any() else ''}stars drawn at random (seed {seed}) from "
        f"{len(picks)} equal-count bins in G, with the posterior median (blue ○){truth}: " + ", ".join(names) + "."
    )
    return fig, caption


# ------------------------------------------------------------------------------------------------------- render all
def render_all(
    stars: pd.DataFrame, out_dir: str | Path, dpi: int = 150, model: Any = None, healpix_order: int = 3
) -> dict[str, str]:
    """Draw every figure of the inference stage that the table allows and write ``<out_dir>/<name>.pdf``,
    ``.png`` and ``.txt`` (the caption), each atomically; returns the captions by name. Figures that need the
    truth (``true_*``) or the model are skipped, with a log line, when it is absent."""
    out = Path(out_dir)
    todo: dict[str, tuple[Callable[[], tuple[Any, str]], str | None]] = {
        "inference_truth": (lambda: fig_inference_truth(stars), None if truth_params(stars) else "no truth"),
        "inference_pit": (lambda: fig_inference_pit(stars), None if truth_params(stars) else "no truth"),
        "inference_kiel": (lambda: fig_inference_kiel(stars), None),
        "inference_cmd": (lambda: fig_inference_cmd(stars, model), None if model is not None else "no model"),
        "inference_dust": (lambda: fig_inference_dust(stars, healpix_order), None),
        "inference_examples": (lambda: fig_inference_examples(stars), None),
    }
    captions = {}
    for name, (draw, missing) in todo.items():
        if missing:
            log.info("%s: skipped (%s)", name, missing)
            continue
        fig, text = draw()
        save(fig, text, out / f"{name}.pdf", out / f"{name}.png", out / f"{name}.txt", dpi)
        log.info("%s: %s", name, text)
        captions[name] = text
    return captions
