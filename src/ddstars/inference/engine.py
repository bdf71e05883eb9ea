"""The posterior of Eq. 19 on a grid of θ nodes, with the distance modulus μ and the reddening E integrated
in closed form and by quadrature.

    p(θ, μ, E | m̂, ϖ̂) ∝ N(m̂ | M(θ) + μ + E R(θ), C) · N(ϖ̂ | 10^(2 - μ/5) mas, σ_ϖ) · p(E) · p(μ) · p(θ)

* **θ**: the nodes of a regular grid (:class:`Grid`) where the model was trained (its training domain), with
  M(θ) and R(θ) evaluated once; p(θ) is the training stars' density there (``theta_prior="training"``) or flat.
* **Photometry**: C diagonal, σ² + ``mag_floor``² per observed band (the catalog's errors are floored already;
  unobserved bands carry no weight). At a
  node the photometric log-likelihood is a quadratic form in (μ, E), built for all stars × nodes at once from
  seven matrix products over the 13 bands.
* **E**: the prior N(E₀, σ_E₀) (the dust map's estimate), truncated at E ≥ 0; at fixed (θ, μ) the E integral is a
  Gaussian times Φ, in closed form.
* **μ**: the parallax term is not Gaussian in μ, so μ is integrated by quadrature on a per-star grid (``n_mu``
  points spanning the nodes kept) with p(μ) flat (``distance_prior="flat"``) or ∝ d³ (``"volume"``, a uniform
  density of stars), bounded to ``mu_range``.
* **Pruning**: nodes whose Gaussian evidence (photometry, E prior and a Gaussian parallax) falls below
  ``prune`` × the best are dropped before the quadrature, at most ``max_nodes`` kept per star.

Samples are drawn node by node (by evidence × prior), then μ on its quadrature grid (uniform within a cell),
then E from its truncated Gaussian; θ is spread uniformly within the node's grid cell, so that percentiles are
continuous. Summaries: 16/50/84th percentiles of every parameter, the best node's χ², its p-value and the
number of bands.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from ..bands import BAND_NAMES, N_BANDS
from ..errors import ConfigError, DataError

LABELS = ("teff", "logg", "feh")
LN10 = math.log(10.0)
LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class Grid:
    """θ nodes (K, 3) with M(θ), R(θ) (K, 13), ln p(θ) (K,) and the cell sizes (3,)."""

    theta: np.ndarray
    m_abs: np.ndarray
    r: np.ndarray
    log_prior: np.ndarray
    step: np.ndarray

    def __len__(self) -> int:
        return len(self.theta)

    @classmethod
    def from_model(
        cls,
        model,
        ranges: Mapping[str, tuple[float, float]] | None = None,
        steps: tuple[float, float, float] = (50.0, 0.05, 0.1),
        theta_prior: str = "training",
    ) -> Grid:
        """Nodes every ``steps`` (Teff [K], log g, [Fe/H]) over ``ranges`` (default: the training θ range),
        kept where the model was trained (its domain; all nodes for a model without one)."""
        domain = getattr(model, "domain", None)
        if ranges is None:
            if domain is None:
                raise ConfigError("inference grid: give the θ ranges for a model without a training domain")
            ranges = {k: (float(domain.lo[i]), float(domain.hi[i])) for i, k in enumerate(LABELS)}
        axes = [np.arange(ranges[k][0], ranges[k][1] + 0.5 * s, s) for k, s in zip(LABELS, steps, strict=True)]
        theta = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        if domain is not None:
            density = domain.density(model.norm.x(theta))
            keep = density >= domain.min_stars
            theta, density = theta[keep], density[keep]
        else:
            density = np.ones(len(theta))
        if not len(theta):
            raise DataError("inference grid: no θ node lies inside the model's training domain")
        if theta_prior == "training":
            log_prior = np.log(density.astype(np.float64))
        elif theta_prior == "flat":
            log_prior = np.zeros(len(theta))
        else:
            raise ConfigError(f"inference theta_prior is {theta_prior!r}; expected 'training' or 'flat'")
        m_abs, r = (
            model.predict_absolute_magnitudes(theta, outside="ignore"),
            model.reddening_vector(theta, outside="ignore"),
        )
        return cls(theta, m_abs, r, log_prior - log_prior.max(), np.asarray(steps, dtype=np.float64))


@dataclass(frozen=True)
class Photometry:
    """Stars to infer: magnitudes and errors (n, 13) in the catalog's systems (NaN: unobserved), parallax and its
    error [mas] (NaN: none), and the dust map's reddening prior E₀ ± σ_E₀ [mag]."""

    mag: np.ndarray
    err: np.ndarray
    parallax: np.ndarray
    parallax_error: np.ndarray
    ebv_prior: np.ndarray
    sigma_ebv_prior: np.ndarray

    def __len__(self) -> int:
        return len(self.mag)

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> Photometry:
        """From columns ``mag_<band>``, ``err_<band>``, ``parallax``, ``parallax_error``, ``ebv_prior``,
        ``sigma_ebv_prior`` (the catalog schema's names)."""
        need = [f"{q}_{b}" for q in ("mag", "err") for b in BAND_NAMES]
        need += ["parallax", "parallax_error", "ebv_prior", "sigma_ebv_prior"]
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise DataError(f"photometry: missing column(s) {', '.join(missing)}")

        def cols(q):
            return df[[f"{q}_{b}" for b in BAND_NAMES]].to_numpy(np.float64)

        def col(c):
            return df[c].to_numpy(np.float64)

        return cls(
            cols("mag"), cols("err"), *(col(c) for c in ("parallax", "parallax_error", "ebv_prior", "sigma_ebv_prior"))
        )

    def subset(self, sl: slice) -> Photometry:
        return Photometry(*(a[sl] for a in vars(self).values()))


def _node_quadratics(grid: Grid, ph: Photometry, mag_floor: float) -> dict[str, np.ndarray]:
    """Per star × node, ln L(μ, E) = -½ (a μ² + 2 h μ E + c E² - 2 b μ - 2 d E + q) with the E prior folded in;
    a (n, 1), the rest (n, K); and the number of bands (n,)."""
    obs = np.isfinite(ph.mag) & np.isfinite(ph.err)
    w = np.divide(1.0, np.nan_to_num(ph.err) ** 2 + mag_floor**2, out=np.zeros(ph.err.shape), where=obs)
    m = np.where(obs, ph.mag, 0.0)
    wm = w * m
    mt, rt = grid.m_abs.T, grid.r.T  # (13, K)
    tau = 1.0 / ph.sigma_ebv_prior**2
    return {
        "a": w.sum(axis=1)[:, None],
        "h": w @ rt,
        "c": w @ (rt * rt) + tau[:, None],
        "b": wm.sum(axis=1)[:, None] - w @ mt,
        "d": wm @ rt - w @ (rt * mt) + (tau * ph.ebv_prior)[:, None],
        "q": (wm * m).sum(axis=1)[:, None] - 2 * wm @ mt + w @ (mt * mt) + (tau * ph.ebv_prior**2)[:, None],
        "n_bands": obs.sum(axis=1),
        # the Gaussians' normalisations: the bands' and the E prior's
        "log_norm": 0.5 * (np.log(np.where(obs, w, 1.0)).sum(axis=1) + np.log(tau) - (obs.sum(axis=1) + 1) * LOG_2PI),
    }


def _mu_prior(mu: np.ndarray, kind: str) -> np.ndarray:
    if kind == "flat":
        return np.zeros_like(mu)
    if kind == "volume":  # p(d) ∝ d² dd -> p(μ) ∝ d³
        return 0.6 * LN10 * mu
    raise ConfigError(f"inference distance_prior is {kind!r}; expected 'flat' or 'volume'")


def posterior(
    model_or_grid: Any,
    photometry: Photometry | pd.DataFrame,
    n_samples: int = 100,
    mag_floor: float = 0.0,
    parallax_zero_point: float = 0.0,
    distance_prior: str = "flat",
    mu_range: tuple[float, float] = (-2.0, 20.0),
    n_mu: int = 64,
    prune: float = 1e-4,
    max_nodes: int = 3000,
    chunk: int = 16,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Posterior summaries (one row per star) and joint samples (arrays (n, n_samples) per parameter: teff, logg,
    feh, mu, ebv) of ``photometry`` under the model (a :class:`ddstars.model.StellarModel`, or a :class:`Grid`
    made from one). See the module docstring for the method and the options. ``mag_floor`` is added in
    quadrature to the errors: 0 for the project's catalog, whose errors carry catalog.mag_error_floor already."""
    grid = model_or_grid if isinstance(model_or_grid, Grid) else Grid.from_model(model_or_grid)
    ph = photometry if isinstance(photometry, Photometry) else Photometry.from_frame(photometry)
    if ph.mag.shape[1:] != (N_BANDS,):
        raise DataError(f"photometry: magnitudes of shape {ph.mag.shape}; expected (n, {N_BANDS})")
    if not np.all(ph.sigma_ebv_prior > 0):
        rows = np.flatnonzero(~(ph.sigma_ebv_prior > 0))
        raise DataError(
            f"photometry: sigma_ebv_prior must be > 0; not in {len(rows)} row(s), first {rows[:5].tolist()}"
        )
    zero = np.isfinite(ph.mag) & ~(np.nan_to_num(ph.err) ** 2 + mag_floor**2 > 0)
    if zero.any():
        rows = np.flatnonzero(zero.any(axis=1))
        raise DataError(
            f"photometry: an observed magnitude with zero or missing error in {len(rows)} row(s), first "
            f"{rows[:5].tolist()} (give its error, or a mag_floor > 0)"
        )
    rng = np.random.default_rng(seed)
    n = len(ph)
    out: dict[str, np.ndarray] = {k: np.empty((n, n_samples)) for k in (*LABELS, "mu", "ebv")}
    summary = {k: np.full(n, np.nan) for k in ("chi2_best", "ln_evidence", "n_nodes")}
    n_bands = np.zeros(n, dtype=np.int64)
    o = {
        "mag_floor": mag_floor,
        "parallax_zero_point": parallax_zero_point,
        "distance_prior": distance_prior,
        "mu_range": mu_range,
        "n_mu": n_mu,
        "prune": prune,
        "max_nodes": min(max_nodes, len(grid)),
    }
    for start in range(0, n, chunk):  # chunks of stars, vectorised over stars x nodes inside
        sl = slice(start, min(start + chunk, n))
        _chunk(grid, ph.subset(sl), sl, out, summary, n_bands, rng, o)
    table = _summaries(out, summary, n_bands)
    return table, out


def _chunk(grid, ph, sl, out, summary, n_bands, rng, o):
    """One chunk of stars: quadratics, pruning, μ quadrature, node evidences and samples."""
    qd = _node_quadratics(grid, ph, o["mag_floor"])
    a, h, c, b, d, q = (qd[k] for k in ("a", "h", "c", "b", "d", "q"))
    # Gaussian evidence of each node (parallax as a Gaussian in μ where it is informative), for pruning
    plx = ph.parallax - o["parallax_zero_point"]
    good = np.isfinite(plx) & (plx > 0) & np.isfinite(ph.parallax_error) & (plx > 3 * ph.parallax_error)
    mu_p = np.where(good, 10 - 5 * np.log10(np.where(good, plx, 1.0)), 0.0)
    t_p = np.where(good, (plx / (5 / LN10 * np.where(good, ph.parallax_error, 1.0))) ** 2, 0.0)[:, None]
    a_g, b_g, q_g = a + t_p, b + t_p * mu_p[:, None], q + t_p * mu_p[:, None] ** 2
    det = a_g * c - h * h
    mu_hat = (c * b_g - h * d) / det
    e_hat = (a_g * d - h * b_g) / det
    chi2_g = q_g - (mu_hat * b_g + e_hat * d)
    ln_z = -0.5 * chi2_g - 0.5 * np.log(det) + grid.log_prior[None, :]
    order = np.argsort(-ln_z, axis=1)[:, : o["max_nodes"]]
    lz_sorted = np.take_along_axis(ln_z, order, axis=1)
    keep = lz_sorted >= lz_sorted[:, :1] + math.log(o["prune"])  # (n, N) over the top nodes

    def pick(x):
        return np.take_along_axis(np.broadcast_to(x, ln_z.shape), order, axis=1)

    a_k, h_k, c_k, b_k, d_k, q_k = (pick(x) for x in (a, h, c, b, d, q))
    mu_hat_k, det_k = pick(mu_hat), pick(det)
    sd_mu = np.sqrt(c_k / det_k)  # marginal σ of μ at the node (with the Gaussian parallax)
    lo = np.where(keep, mu_hat_k - 6 * sd_mu, np.inf).min(axis=1)
    hi = np.where(keep, mu_hat_k + 6 * sd_mu, -np.inf).max(axis=1)
    lo = np.clip(lo, *o["mu_range"])
    hi = np.clip(np.maximum(hi, lo + 1e-3), *o["mu_range"])
    n_mu = o["n_mu"]
    mu = lo[:, None] + (hi - lo)[:, None] * (np.arange(n_mu) + 0.5) / n_mu  # (n, J) cell centres
    dmu = (hi - lo) / n_mu
    # ln L(μ_j) at each kept node, E integrated over E >= 0 in closed form
    mu3 = mu[:, None, :]  # (n, 1, J)
    lin_e = d_k[:, :, None] - h_k[:, :, None] * mu3  # (n, N, J)
    e_star = lin_e / c_k[:, :, None]
    sqrt_c = np.sqrt(c_k)[:, :, None]
    ln_l = -0.5 * (a_k[:, :, None] * mu3**2 - 2 * b_k[:, :, None] * mu3 + q_k[:, :, None] - c_k[:, :, None] * e_star**2)
    ln_l += 0.5 * np.log(2 * math.pi) - np.log(sqrt_c) + special.log_ndtr(e_star * sqrt_c)
    # the E prior's own truncation at 0 (its normalisation over E >= 0)
    ln_l -= special.log_ndtr(ph.ebv_prior / ph.sigma_ebv_prior)[:, None, None]
    # parallax (exact, on the μ grid) and the μ prior
    with np.errstate(over="ignore"):
        plx_model = 10 ** (2 - mu / 5)
    has_plx = np.isfinite(plx) & np.isfinite(ph.parallax_error) & (ph.parallax_error > 0)
    ln_plx = np.where(
        has_plx[:, None],
        -0.5 * ((np.nan_to_num(plx)[:, None] - plx_model) / np.where(has_plx, ph.parallax_error, 1.0)[:, None]) ** 2,
        0.0,
    )
    ln_l += (ln_plx + _mu_prior(mu, o["distance_prior"]))[:, None, :]
    ln_l = np.where(keep[:, :, None], ln_l, -np.inf)
    ln_node = special.logsumexp(ln_l, axis=2) + np.log(dmu)[:, None] + pick(grid.log_prior[None, :])
    ln_total = special.logsumexp(ln_node, axis=1)
    summary["ln_evidence"][sl] = ln_total + qd["log_norm"]
    summary["n_nodes"][sl] = keep.sum(axis=1)
    # χ² of the best node at its best (μ, E ≥ 0) on the μ grid
    e_best = np.maximum(e_star, 0.0)
    chi2 = (
        a_k[:, :, None] * mu3**2
        + 2 * h_k[:, :, None] * mu3 * e_best
        + c_k[:, :, None] * e_best**2
        - 2 * b_k[:, :, None] * mu3
        - 2 * d_k[:, :, None] * e_best
        + q_k[:, :, None]
    )
    tau = (1.0 / ph.sigma_ebv_prior**2)[:, None, None]
    chi2 = chi2 - tau * (e_best - ph.ebv_prior[:, None, None]) ** 2  # photometry only
    chi2 = np.where(keep[:, :, None], chi2, np.inf).reshape(len(mu), -1).min(axis=1)
    summary["chi2_best"][sl] = chi2
    n_bands[sl] = qd["n_bands"]
    # samples: node, then μ cell, then E
    s = out["mu"].shape[1]
    p_node = np.exp(ln_node - ln_total[:, None])
    node = _draw(rng, p_node, s)  # (n, S) index into the kept-node axis
    rows = np.arange(len(mu))[:, None]
    ln_mu = ln_l[rows, node]  # (n, S, J)
    p_mu = np.exp(ln_mu - special.logsumexp(ln_mu, axis=2, keepdims=True))
    j = _draw_last(rng, p_mu)
    mu_s = lo[:, None] + (j + rng.random(j.shape)) * dmu[:, None]
    c_s = c_k[rows, node]
    e_mean = (d_k[rows, node] - h_k[rows, node] * mu_s) / c_s
    e_sd = 1 / np.sqrt(c_s)
    u = rng.random(e_mean.shape)
    lo_cdf = special.ndtr(-e_mean / e_sd)  # P(E < 0) of the untruncated Gaussian
    e_s = e_mean + e_sd * special.ndtri(np.clip(lo_cdf + u * (1 - lo_cdf), 1e-300, 1 - 1e-16))
    theta_node = grid.theta[order[rows, node]]  # (n, S, 3)
    theta_s = theta_node + (rng.random(theta_node.shape) - 0.5) * grid.step
    for i, k in enumerate(LABELS):
        out[k][sl] = theta_s[..., i]
    out["mu"][sl] = mu_s
    out["ebv"][sl] = np.maximum(e_s, 0.0)


def _draw(rng, p: np.ndarray, s: int) -> np.ndarray:
    """``s`` draws per row of the categorical probabilities ``p`` (n, N)."""
    cdf = np.cumsum(p, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random((len(p), s))
    return np.minimum((u[:, :, None] > cdf[:, None, :]).sum(axis=2), p.shape[1] - 1)


def _draw_last(rng, p: np.ndarray) -> np.ndarray:
    """One draw along the last axis of ``p`` (..., J) per leading index."""
    cdf = np.cumsum(p, axis=-1)
    cdf /= cdf[..., -1:]
    u = rng.random(p.shape[:-1])
    return np.minimum((u[..., None] > cdf).sum(axis=-1), p.shape[-1] - 1)


def _summaries(samples: Mapping[str, np.ndarray], summary: Mapping[str, np.ndarray], n_bands: np.ndarray):
    cols: dict[str, Any] = {}
    for k, v in samples.items():
        p16, p50, p84 = np.percentile(v, [16, 50, 84], axis=1)
        cols[f"{k}_p16"], cols[f"{k}_p50"], cols[f"{k}_p84"] = p16, p50, p84
    d = 10 ** (samples["mu"] / 5 + 1) / 1000  # kpc
    cols["dist_kpc_p16"], cols["dist_kpc_p50"], cols["dist_kpc_p84"] = np.percentile(d, [16, 50, 84], axis=1)
    cols.update(summary)
    cols["n_bands"] = n_bands
    dof = np.maximum(n_bands - 2, 1)
    cols["p_value"] = stats.chi2.sf(summary["chi2_best"], dof)
    return pd.DataFrame(cols)
