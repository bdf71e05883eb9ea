"""What every figure module shares: the matplotlib style, axis labels and the binned plotting helpers.

Density plots are binned (``numpy.histogram2d`` / ``scipy.stats.binned_statistic_2d``) and scatter plots
draw a random subset with rasterised points, so a figure of 10^6 test stars costs seconds. Importing this
module selects the non-interactive Agg backend and sets the house style.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from ..io import atomic_path  # noqa: E402

plt.rcParams.update(
    {
        "font.size": 9,
        "axes.labelsize": 9,
        "axes.titlesize": 9,
        "legend.fontsize": 8,
        "xtick.direction": "in",
        "ytick.direction": "in",
        "xtick.top": True,
        "ytick.right": True,
        "savefig.bbox": "tight",
        "image.cmap": "viridis",
        "figure.constrained_layout.use": True,
    }
)

LABEL_TEX = {"teff": r"$T_\mathrm{eff}$ [K]", "logg": r"$\log g$", "feh": "[Fe/H]", "ebv_fit": r"$E'$"}


def save(fig, text: str, pdf: str | Path, png: str | Path, caption: str | Path, dpi: int = 150) -> None:
    """Write a figure's PDF and PNG and its caption (each atomically: a file is complete or absent), then close it."""
    for path, fmt in ((pdf, "pdf"), (png, "png")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi)
    plt.close(fig)
    with atomic_path(caption) as tmp:
        Path(tmp).write_text(text + "\n")


def _subset(n: int, k: int, seed: int) -> np.ndarray:
    """Indices of a seeded random subset of size min(n, k), sorted."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, k), replace=False))


def _hist2d(ax, x, y, bins, rng_xy, log_scale=True, cmap="Greys"):
    """A 2-D histogram drawn as an image (white where empty); returns the counts."""
    ok = np.isfinite(x) & np.isfinite(y)
    h, xe, ye = np.histogram2d(x[ok], y[ok], bins=bins, range=rng_xy)
    img = np.where(h > 0, np.log10(np.maximum(h, 1)) if log_scale else h, np.nan)
    ax.pcolormesh(xe, ye, img.T, cmap=cmap, rasterized=True, shading="flat")
    return h


def _binned(ax, x, y, z, bins, rng_xy, min_count, cmap, vmin=None, vmax=None, statistic="mean"):
    """Mean (or median) of z in bins of (x, y), white where fewer than ``min_count`` stars."""
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    stat, xe, ye, _ = stats.binned_statistic_2d(x[ok], y[ok], z[ok], statistic=statistic, bins=bins, range=rng_xy)
    cnt, _, _, _ = stats.binned_statistic_2d(x[ok], y[ok], None, statistic="count", bins=bins, range=rng_xy)
    stat = np.where(cnt >= min_count, stat, np.nan)
    return ax.pcolormesh(xe, ye, stat.T, cmap=cmap, vmin=vmin, vmax=vmax, rasterized=True, shading="flat")


def _percentile_lines(ax, x, y, bins, rng_x, min_count=10, **kw):
    """16th, 50th and 84th percentiles of y in bins of x."""
    ok = np.isfinite(x) & np.isfinite(y)
    edges = np.linspace(*rng_x, bins + 1)
    idx = np.digitize(x[ok], edges) - 1
    yv = y[ok]
    mid = 0.5 * (edges[1:] + edges[:-1])
    q = np.full((bins, 3), np.nan)
    order = np.argsort(idx, kind="stable")
    idx_s, y_s = idx[order], yv[order]
    bounds = np.searchsorted(idx_s, np.arange(bins + 1))
    for k in range(bins):  # loop over bins (tens), vectorised within
        seg = y_s[bounds[k] : bounds[k + 1]]
        if len(seg) >= min_count:
            q[k] = np.percentile(seg, [16, 50, 84])
    style = {"color": "C1", **kw}
    ax.plot(mid, q[:, 1], "-", lw=1.2, **style)
    ax.plot(mid, q[:, 0], "--", lw=0.8, **style)
    ax.plot(mid, q[:, 2], "--", lw=0.8, **style)
    return mid, q


def _col(table: pd.DataFrame, name: str) -> np.ndarray:
    return table[name].to_numpy(np.float64)


def _colour_obs(table, x, y):
    return _col(table, f"mag_{x}") - _col(table, f"mag_{y}")


def _colour_pred(table, x, y):
    return _col(table, f"M_{x}") - _col(table, f"M_{y}")


def _pairs(spec) -> list[tuple[str, str]]:
    return [tuple(p) for p in spec]


def _r_arrow(ax, x0, y0, dx, dy):
    ax.annotate("", xy=(x0 + dx, y0 + dy), xytext=(x0, y0), arrowprops={"arrowstyle": "->", "color": "red", "lw": 1.2})
