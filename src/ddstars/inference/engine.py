"""The posterior of Eq. 19 on a grid of θ nodes, with the distance modulus μ and the reddening E integrated
in closed form and by quadrature.

    p(θ, μ, E | m̂, ϖ̂) ∝ N(m̂ | M(θ) + μ + E R(θ), C) · N(ϖ̂ | 10^(2 - μ/5) mas, σ_ϖ) · p(E | μ) · p(μ) · p(θ)

* **θ**: the nodes of a regular grid (:class:`Grid`) where the model was trained (its training domain), with
  M(θ) and R(θ) evaluated once; p(θ) is the training stars' density there (``theta_prior="training"``: the
  single cells' counts smoothed by a Gaussian of ``prior_smoothing`` cells, by default 1 in Teff and log g and
  none in [Fe/H]; ``"training_box"``: the 27-cell box that decides the domain, wider in [Fe/H] than the
  population) or flat.
* **Photometry**: C diagonal, σ² + ``mag_floor``² per observed band (the catalog's errors carry its floor
  already; unobserved bands carry no weight). At a node the photometric log-likelihood is a quadratic form in
  (μ, E), built for all stars × nodes at once from matrix products over the 13 bands.
* **Priors** (:class:`Priors`): p(μ) and p(E | μ) = N(E₀(μ), σ_E(μ)) truncated at E ≥ 0, tabulated per star on a
  regular μ grid (a Galactic density model and a distance-resolved dust map: :mod:`ddstars.inference.priors`),
  or without tables the star's single dust-map estimate E₀ ± σ_E₀ and p(μ) flat or ∝ d³ (``distance_prior``).
* **Step 1, all nodes** (float32, one XLA-compiled TensorFlow function: the same code on a GPU): each node's
  Gaussian evidence, with the parallax linearised in μ and a reference E prior that covers E₀(μ) ± σ_E(μ) over
  the star's plausible distances. No node is pruned: ``n_draws`` nodes per star are drawn from this evidence
  tempered (``temperature`` ≥ 1, a proposal wider than the posterior).
* **Step 2, drawn nodes** (float64): μ on ``n_mu`` cells spanning ±5σ of the node's Gaussian; at each μ, E is
  integrated over E ≥ 0 against its prior in closed form; the parallax enters exactly, p(μ) from its table.
  The node's exact evidence over its proposal probability weighs the draw (importance sampling); the mean
  weight is the evidence, and the weights' effective number (``ess``) says how well the proposal fitted.

Samples: draws resampled by weight, then μ by cell (uniform within it), then E from its truncated Gaussian; θ
is spread uniformly within the node's grid cell, so that percentiles are continuous. Summaries: the
2.5/16/50/84/97.5th percentiles and the joint MAP of every parameter, the ln evidence, the best χ² (photometry
only), its p-value (n_bands - 5 degrees of freedom: θ, μ and E fitted), the bands used and flags (:data:`FLAGS`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from ..bands import BAND_NAMES, N_BANDS
from ..config import defaults as config_defaults
from ..errors import ConfigError, DataError

LABELS = ("teff", "logg", "feh")
PARAMS = (*LABELS, "mu", "ebv")
#: Percentiles of every parameter in the summaries (columns <param>_p2.5, _p16, _p50, _p84, _p97.5).
PERCENTILES = (2.5, 16.0, 50.0, 84.0, 97.5)
LN10 = math.log(10.0)
LOG_2PI = math.log(2 * math.pi)
#: Flag bits of the per-star ``flags`` column.
FLAGS = {
    "outside_domain": 1,  # most posterior mass on nodes at the edge of the training domain
    "poor_fit": 2,  # p-value of the best fit below ``poor_fit_p``
    "multimodal": 4,  # the μ or log g samples split in two separated groups, each of >= 10 %
    "few_samples": 8,  # fewer than 20 effective samples in the importance sampling of the nodes
}
#: The engine's options and their defaults: config section ``inference`` (the schema's defaults), except
#: ``distance_prior``, which here is p(μ) without prior tables: "flat" or "volume" (∝ d³).
ENGINE_OPTIONS = (
    "n_samples",
    "mag_floor",
    "parallax_zero_point",
    "mu_range",
    "n_mu",
    "n_draws",
    "temperature",
    "chunk",
    "poor_fit_p",
    "seed",
)
DEFAULTS: dict[str, Any] = {k: v for k, v in config_defaults("inference").items() if k in ENGINE_OPTIONS} | {
    "distance_prior": "flat"
}
DEFAULTS["mu_range"] = tuple(DEFAULTS["mu_range"])
#: p(θ) on the grid: the training density smoothed per label (training), the domain's 27-cell box density
#: (training_box), or flat over the domain.
THETA_PRIORS = ("training", "training_box", "flat")
#: The Gaussian σ [domain cells, 0.25 σ of each label] of theta_prior "training": Teff, log g, [Fe/H].
PRIOR_SMOOTHING = tuple(config_defaults("inference")["theta_prior_smoothing"])
#: Stars per cell added to the smoothed density, so that a domain node whose cells are empty stays possible.
PRIOR_FLOOR = 0.1


@dataclass(frozen=True)
class Grid:
    """θ nodes (K, 3) with M(θ), R(θ) (K, 13), ln p(θ) (K,), the cell sizes (3,) and which nodes lie on the edge
    of the domain (K,)."""

    theta: np.ndarray
    m_abs: np.ndarray
    r: np.ndarray
    log_prior: np.ndarray
    step: np.ndarray
    edge: np.ndarray

    def __len__(self) -> int:
        return len(self.theta)

    @functools.cached_property
    def score_function(self):
        """Step 1 as one XLA-compiled TensorFlow function (the same code on a CPU or a GPU): every node's Gaussian
        ln evidence (float32, (n, K)) from the stars' per-band weights w and weighted magnitudes w m (n, 13) and
        per-star sums (see :func:`_step1`). Two matrix products against [R | R² | M | R M | M²] and [R | M]."""
        import tensorflow as tf

        m, r = self.m_abs.T, self.r.T
        g_w = tf.constant(np.concatenate([r, r * r, m, r * m, m * m], axis=1), dtype=tf.float32)
        g_wm = tf.constant(np.concatenate([r, m], axis=1), dtype=tf.float32)
        log_prior = tf.constant(self.log_prior, dtype=tf.float32)

        @tf.function(jit_compile=True, reduce_retracing=True)
        def score(w, wm, a, b0, d0, q0, tau):
            h, c, wmt, wrm, wmm = tf.split(tf.matmul(w, g_w), 5, axis=1)
            wmr, wmmt = tf.split(tf.matmul(wm, g_wm), 2, axis=1)
            b = b0[:, None] - wmt
            d = wmr - wrm + d0[:, None]
            q = wmm - 2 * wmmt + q0[:, None]
            c = c + tau[:, None]
            det = a[:, None] * c - h * h
            chi2 = q - (c * b * b - 2 * h * b * d + a[:, None] * d * d) / det
            return -0.5 * chi2 - 0.5 * tf.math.log(det) + log_prior

        return score

    @classmethod
    def from_model(
        cls,
        model,
        ranges: Mapping[str, tuple[float, float]] | None = None,
        steps: tuple[float, float, float] = (50.0, 0.05, 0.1),
        theta_prior: str = "training",
        prior_smoothing: tuple[float, float, float] = PRIOR_SMOOTHING,
    ) -> Grid:
        """Nodes every ``steps`` (Teff [K], log g, [Fe/H]) over ``ranges`` (default: the training θ range),
        kept where the model was trained (its domain; all nodes for a model without one). p(θ): see
        :data:`THETA_PRIORS`; ``prior_smoothing``: the Gaussian σ [domain cells] of ``"training"``."""
        if theta_prior not in THETA_PRIORS:
            raise ConfigError(f"inference theta_prior is {theta_prior!r}; expected one of {', '.join(THETA_PRIORS)}")
        domain = getattr(model, "domain", None)
        if ranges is None:
            if domain is None:
                raise ConfigError("inference grid: give the θ ranges for a model without a training domain")
            ranges = {k: (float(domain.lo[i]), float(domain.hi[i])) for i, k in enumerate(LABELS)}
        axes = [np.arange(ranges[k][0], ranges[k][1] + 0.5 * s, s) for k, s in zip(LABELS, steps, strict=True)]
        shape = tuple(len(a) for a in axes)
        theta = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        if domain is not None:
            density = domain.density(model.norm.x(theta))
            inside = density >= domain.min_stars
        else:
            density, inside = np.ones(len(theta)), np.ones(len(theta), dtype=bool)
        if not inside.any():
            raise DataError("inference grid: no θ node lies inside the model's training domain")
        # a node is on the edge when one of its 6 neighbours is outside the domain or off the grid
        cube = np.pad(inside.reshape(shape), 1, constant_values=False)
        core = tuple(slice(1, -1) for _ in range(3))
        edge = np.zeros(shape, dtype=bool)
        for ax in range(3):
            for sh in (-1, 1):
                edge |= ~np.roll(cube, sh, axis=ax)[core]
        edge = edge.reshape(-1)[inside]
        theta, density = theta[inside], density[inside]
        if domain is None or theta_prior == "flat":
            log_prior = np.zeros(len(theta))
        elif theta_prior == "training_box":
            log_prior = np.log(density.astype(np.float64))
        else:  # the smoothed single cells; a node of the domain whose cells are empty keeps a tenth of a star
            smooth = domain.smoothed_density(model.norm.x(theta), prior_smoothing)
            log_prior = np.log(smooth + PRIOR_FLOOR)
        m_abs, r = (
            model.predict_absolute_magnitudes(theta, outside="ignore"),
            model.reddening_vector(theta, outside="ignore"),
        )
        return cls(theta, m_abs, r, log_prior - log_prior.max(), np.asarray(steps, dtype=np.float64), edge)


@dataclass(frozen=True)
class Priors:
    """Per-star priors on a regular μ grid ``mu`` (M,): ln p(μ) (n, M), normalised over the grid, and the
    reddening prior's mean and σ as functions of μ (n, M each)."""

    mu: np.ndarray
    ln_p_mu: np.ndarray
    ebv: np.ndarray
    sigma_ebv: np.ndarray

    def __post_init__(self):
        d = np.diff(self.mu)
        if self.mu.ndim != 1 or len(self.mu) < 2 or not np.allclose(d, d[0]) or d[0] <= 0:
            raise DataError("inference priors: the μ grid must be 1-D, increasing and regular")
        for name in ("ln_p_mu", "ebv", "sigma_ebv"):
            a = getattr(self, name)
            if a.ndim != 2 or a.shape[1] != len(self.mu):
                raise DataError(f"inference priors: {name} has shape {a.shape}; expected (n, {len(self.mu)})")
        if not np.all(self.sigma_ebv > 0):
            rows = np.flatnonzero(~np.all(self.sigma_ebv > 0, axis=1))
            raise DataError(f"inference priors: sigma_ebv must be > 0; not in {len(rows)} row(s), first {rows[:5]}")

    def subset(self, sl: slice) -> Priors:
        return Priors(self.mu, self.ln_p_mu[sl], self.ebv[sl], self.sigma_ebv[sl])

    def at(self, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ln p(μ), E₀(μ), σ_E(μ) at ``mu`` (n, ...), linear between the grid's points, constant beyond."""
        n = len(mu)
        step = self.mu[1] - self.mu[0]
        x = np.clip((mu.reshape(n, -1) - self.mu[0]) / step, 0.0, len(self.mu) - 1.0)
        i = np.minimum(x.astype(np.int64), len(self.mu) - 2)
        f = x - i

        def interp(t):
            lo, hi = np.take_along_axis(t, i, axis=1), np.take_along_axis(t, i + 1, axis=1)
            return (lo + f * (hi - lo)).reshape(mu.shape)

        return interp(self.ln_p_mu), interp(self.ebv), interp(self.sigma_ebv)


@dataclass(frozen=True)
class Photometry:
    """Stars to infer: magnitudes and errors (n, 13) in the catalog's systems (NaN: unobserved), parallax and its
    error [mas] (NaN: none), the dust map's reddening prior E₀ ± σ_E₀ [mag] and, optionally, distance-resolved
    :class:`Priors` (which then replace E₀ ± σ_E₀ and ``distance_prior``)."""

    mag: np.ndarray
    err: np.ndarray
    parallax: np.ndarray
    parallax_error: np.ndarray
    ebv_prior: np.ndarray
    sigma_ebv_prior: np.ndarray
    priors: Priors | None = None

    def __len__(self) -> int:
        return len(self.mag)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, priors: Priors | None = None) -> Photometry:
        """From columns ``mag_<band>``, ``err_<band>``, ``parallax``, ``parallax_error``, ``ebv_prior``,
        ``sigma_ebv_prior`` (the catalog schema's names; the last two may be absent when ``priors`` are given)."""
        need = [f"{q}_{b}" for q in ("mag", "err") for b in BAND_NAMES] + ["parallax", "parallax_error"]
        if priors is None:
            need += ["ebv_prior", "sigma_ebv_prior"]
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise DataError(f"photometry: missing column(s) {', '.join(missing)}")

        def cols(q):
            return df[[f"{q}_{b}" for b in BAND_NAMES]].to_numpy(np.float64)

        def col(c, fill):
            return df[c].to_numpy(np.float64) if c in df.columns else np.full(len(df), fill)

        return cls(
            cols("mag"),
            cols("err"),
            col("parallax", np.nan),
            col("parallax_error", np.nan),
            col("ebv_prior", 0.0),
            col("sigma_ebv_prior", 1.0),
            priors,
        )

    def subset(self, sl: slice) -> Photometry:
        arrays = {k: v[sl] for k, v in vars(self).items() if k != "priors"}
        return Photometry(**arrays, priors=None if self.priors is None else self.priors.subset(sl))

    def validate(self, mag_floor: float) -> None:
        """Raise a :class:`DataError` naming the rows whose input the posterior cannot use."""
        if self.mag.shape[1:] != (N_BANDS,) or self.err.shape != self.mag.shape:
            raise DataError(f"photometry: magnitudes of shape {self.mag.shape}; expected (n, {N_BANDS})")
        if self.priors is None and not np.all(self.sigma_ebv_prior > 0):
            rows = np.flatnonzero(~(self.sigma_ebv_prior > 0))
            raise DataError(
                f"photometry: sigma_ebv_prior must be > 0; not in {len(rows)} row(s), first {rows[:5].tolist()}"
            )
        if self.priors is not None and len(self.priors.ln_p_mu) != len(self):
            raise DataError(f"photometry: priors for {len(self.priors.ln_p_mu)} stars, photometry for {len(self)}")
        zero = np.isfinite(self.mag) & ~(np.nan_to_num(self.err) ** 2 + mag_floor**2 > 0)
        if zero.any():
            rows = np.flatnonzero(zero.any(axis=1))
            raise DataError(
                f"photometry: an observed magnitude with zero or missing error in {len(rows)} row(s), first "
                f"{rows[:5].tolist()} (give its error, or a mag_floor > 0)"
            )


def options(**kw: Any) -> dict[str, Any]:
    """The engine's options: :data:`DEFAULTS` updated with ``kw`` (unknown names are an error)."""
    unknown = sorted(set(kw) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"inference: unknown option(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    o = {**DEFAULTS, **kw}
    if o["distance_prior"] not in ("flat", "volume"):
        raise ConfigError(f"inference distance_prior is {o['distance_prior']!r}; expected 'flat' or 'volume'")
    if o["temperature"] < 1:
        raise ConfigError(f"inference temperature is {o['temperature']}; expected >= 1 (a proposal at least as wide)")
    return o


def posterior(
    model_or_grid: Any, photometry: Photometry | pd.DataFrame, **kw: Any
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Posterior summaries (one row per star) and joint samples (float32 arrays (n, n_samples) per parameter:
    teff, logg, feh, mu, ebv) of ``photometry`` under the model (a :class:`ddstars.model.StellarModel`, or a
    :class:`Grid` made from one). Options (:data:`DEFAULTS`): see the module docstring. ``mag_floor`` is added in
    quadrature to the errors: 0 for the project's catalog, whose errors carry catalog.mag_error_floor already."""
    o = options(**kw)
    grid = model_or_grid if isinstance(model_or_grid, Grid) else Grid.from_model(model_or_grid)
    ph = photometry if isinstance(photometry, Photometry) else Photometry.from_frame(photometry)
    ph.validate(o["mag_floor"])
    if ph.priors is None:
        ph = replace(ph, priors=_constant_priors(ph, o))
    rng = np.random.default_rng(o["seed"])
    n = len(ph)
    samples = {k: np.empty((n, o["n_samples"]), dtype=np.float32) for k in PARAMS}
    cols: dict[str, np.ndarray] = {}
    for start in range(0, n, o["chunk"]):  # chunks of stars, vectorised over stars x nodes inside
        sl = slice(start, min(start + o["chunk"], n))
        part = _chunk(grid, ph.subset(sl), rng, o)
        for k in PARAMS:
            samples[k][sl] = part.pop(k)
        for k, v in part.items():
            cols.setdefault(k, np.empty(n, dtype=v.dtype))[sl] = v
    return _summaries(samples, cols, o), samples


def _constant_priors(ph: Photometry, o: Mapping[str, Any]) -> Priors:
    """Tables for the star's single E₀ ± σ_E₀ and a flat or d³ p(μ) over ``mu_range``."""
    mu = np.linspace(*o["mu_range"], 221)
    ln_p = np.zeros_like(mu) if o["distance_prior"] == "flat" else 0.6 * LN10 * mu
    ln_p = ln_p - special.logsumexp(ln_p) - math.log(mu[1] - mu[0])
    n = len(ph)
    return Priors(
        mu,
        np.broadcast_to(ln_p, (n, len(mu))),
        np.broadcast_to(ph.ebv_prior[:, None], (n, len(mu))),
        np.broadcast_to(ph.sigma_ebv_prior[:, None], (n, len(mu))),
    )


def _chunk(grid: Grid, ph: Photometry, rng: np.random.Generator, o: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """One chunk of stars: step 1 over all nodes, step 2 over the drawn ones, samples and per-star values."""
    obs = np.isfinite(ph.mag) & np.isfinite(ph.err)
    w = np.divide(1.0, np.nan_to_num(ph.err) ** 2 + o["mag_floor"] ** 2, out=np.zeros(ph.err.shape), where=obs)
    # the parallax, and a Gaussian in μ from it where it is informative (S/N > 3)
    plx = ph.parallax - o["parallax_zero_point"]
    sig = ph.parallax_error
    has_plx = np.isfinite(plx) & np.isfinite(sig) & (sig > 0)
    good = has_plx & (plx > 3 * np.where(has_plx, sig, np.inf))
    mu_p = np.where(good, 10 - 5 * np.log10(np.where(good, plx, 1.0)), 0.0)
    t_p = np.where(good, (plx / (5 / LN10 * np.where(good, sig, 1.0))) ** 2, 0.0)
    # magnitudes relative to a rough distance modulus, so that step 1's float32 sums do not cancel
    m_bar = grid.m_abs.mean(axis=0)
    mu0 = np.where(
        good, mu_p, np.nansum(w * (np.nan_to_num(ph.mag) - m_bar), axis=1) / np.maximum(w.sum(axis=1), 1e-30)
    )
    m = np.where(obs, ph.mag - mu0[:, None], 0.0)
    e_ref, s_ref = _reference_ebv(ph.priors, mu_p, t_p, good)
    nodes, ln_q = _step1(grid, w, m, mu_p - mu0, t_p, e_ref, s_ref, rng, o)
    out = _step2(grid, ph, nodes, ln_q, w, m, mu0, mu_p - mu0, t_p, e_ref, s_ref, plx, sig, has_plx, rng, o)
    out["n_bands"] = obs.sum(axis=1)
    # normalisations: the bands' Gaussians and the parallax's
    ln_norm = 0.5 * (np.log(np.where(obs, w, 1.0)).sum(axis=1) - obs.sum(axis=1) * LOG_2PI)
    ln_norm -= np.where(has_plx, np.log(np.where(has_plx, sig, 1.0)) + 0.5 * LOG_2PI, 0.0)
    out["ln_evidence"] += ln_norm
    return out


def _reference_ebv(pr: Priors, mu_p, t_p, good):
    """A Gaussian E prior for step 1 that covers E₀(μ) ± σ_E(μ) over the star's plausible μ: within 3σ of the
    parallax's μ where that is informative, over the whole grid otherwise."""
    s_mu = np.where(good, 1 / np.sqrt(np.where(good, t_p, 1.0)), np.inf)
    near = np.abs(pr.mu[None, :] - mu_p[:, None]) <= 3 * s_mu[:, None] + (pr.mu[1] - pr.mu[0])
    near[~near.any(axis=1)] = True
    lo = np.where(near, pr.ebv - pr.sigma_ebv, np.inf).min(axis=1)
    hi = np.where(near, pr.ebv + pr.sigma_ebv, -np.inf).max(axis=1)
    return 0.5 * (lo + hi), 0.5 * (hi - lo)


def _step1(grid, w, m, mu_p, t_p, e_ref, s_ref, rng, o):
    """Every node's Gaussian evidence (float32, XLA); then ``n_draws`` nodes per star drawn from it tempered
    (``temperature``), after the best node: indices (n, 1 + n_draws) and the draws' ln proposal probability."""
    n = len(w)
    pad = o["chunk"] - n  # one shape per run: XLA compiles once
    tau = 1 / s_ref**2
    t_w = 1e-2  # a weak μ prior (σ 10 mag about the rough μ) keeps nodes without a colour lever proper
    wm = w * m
    args = [
        w,
        wm,
        w.sum(axis=1) + t_p + t_w,
        wm.sum(axis=1) + t_p * mu_p,
        tau * e_ref,
        (wm * m).sum(axis=1) + t_p * mu_p**2 + tau * e_ref**2,
        tau,
    ]
    args = [np.pad(x, [(0, max(pad, 0))] + [(0, 0)] * (x.ndim - 1), mode="edge").astype(np.float32) for x in args]
    score = grid.score_function(*args).numpy()[:n]
    best = score.argmax(axis=1)
    top = score[np.arange(n), best][:, None]
    score -= top
    score /= o["temperature"]
    np.exp(score, out=score)
    cdf = np.cumsum(score, axis=1, dtype=np.float64)
    total = cdf[:, -1:].copy()
    cdf /= total
    # draws by inverse CDF: one sorted array for all rows, row i's CDF shifted by i
    k = cdf.shape[1]
    shift = np.arange(n)[:, None]
    u = rng.random((n, o["n_draws"]))
    cdf += shift
    draws = np.searchsorted(cdf.ravel(), (u + shift).ravel()).reshape(u.shape) - shift * k
    draws = np.clip(draws, 0, k - 1)
    ln_q = np.log(np.take_along_axis(score, draws, axis=1).astype(np.float64)) - np.log(total)
    return np.concatenate([best[:, None], draws], axis=1), ln_q


def _step2(grid, ph, idx, ln_q, w, m, mu0, mu_p, t_p, e_ref, s_ref, plx, sig, has_plx, rng, o):
    """The drawn nodes in float64: μ quadrature with E in closed form gives each node's exact evidence, whose
    ratio to the proposal weighs the draws (importance sampling); the evidence, MAP, best χ² and samples."""
    n, width = idx.shape
    mk, rk = grid.m_abs[idx], grid.r[idx]  # (n, N, 13)
    wk = w[:, None, :]
    mm = m[:, None, :]
    # photometric quadratic in (μ', E), μ' = μ - μ0: -½(a μ'² + 2 h μ' E + c E² - 2 b μ' - 2 d E + q)
    a = w.sum(axis=1)[:, None, None]
    h = (wk * rk).sum(axis=2)[..., None]
    c = (wk * rk * rk).sum(axis=2)[..., None]
    res = mm - mk
    b = (wk * res).sum(axis=2)[..., None]
    d = (wk * res * rk).sum(axis=2)[..., None]
    q = (wk * res * res).sum(axis=2)[..., None]
    # the node's Gaussian (linearised parallax, reference E prior) sets its μ cells: ±5σ about its mean
    tau_r = (1 / s_ref**2)[:, None, None]
    a_g = a + (t_p + 1e-2)[:, None, None]
    c_g = c + tau_r
    b_g = b + (t_p * mu_p)[:, None, None]
    d_g = d + tau_r * e_ref[:, None, None]
    det = a_g * c_g - h * h
    mu_hat = (c_g * b_g - h * d_g) / det + mu0[:, None, None]
    s_mu = np.sqrt(c_g / det)
    lo = np.clip(mu_hat - 5 * s_mu, *o["mu_range"])
    hi = np.clip(mu_hat + 5 * s_mu, *o["mu_range"])
    hi = np.maximum(hi, lo + 1e-3)
    j = o["n_mu"]
    dmu = (hi - lo) / j  # (n, N, 1)
    mu = lo + dmu * (np.arange(j) + 0.5)  # (n, N, J) cell centres
    ln_pmu, e0, s0 = ph.priors.at(mu)
    x = mu - mu0[:, None, None]
    tau = 1 / s0**2
    c_e = c + tau
    lin = d - h * x + tau * e0
    e_star = lin / c_e
    sqrt_c = np.sqrt(c_e)
    ln_f = -0.5 * (a * x * x - 2 * b * x + q + tau * e0 * e0 - c_e * e_star * e_star)
    ln_f += 0.5 * LOG_2PI - np.log(sqrt_c) + special.log_ndtr(e_star * sqrt_c)
    # the E prior's normalisation over E >= 0
    ln_f += 0.5 * np.log(tau) - 0.5 * LOG_2PI - special.log_ndtr(e0 / s0)
    with np.errstate(over="ignore"):
        plx_model = 10 ** (2 - mu / 5)
    z = (np.nan_to_num(plx)[:, None, None] - plx_model) / np.where(has_plx, sig, 1.0)[:, None, None]
    ln_f += np.where(has_plx[:, None, None], -0.5 * z * z, 0.0) + ln_pmu
    prior_k = grid.log_prior[idx]
    ln_node = special.logsumexp(ln_f, axis=2) + np.log(dmu[..., 0]) + prior_k  # (n, 1 + D)
    ln_w = ln_node[:, 1:] - ln_q  # the draws' importance weights (slot 0, the best node, is for the MAP)
    ln_sum = special.logsumexp(ln_w, axis=1)
    ln_total = ln_sum - math.log(ln_w.shape[1])
    p_draw = np.exp(ln_w - ln_sum[:, None])
    # the joint MAP on the evaluated points, and the best photometric χ² (E >= 0 at its conditional best)
    rows = np.arange(n)
    flat = (ln_f + prior_k[..., None]).reshape(n, -1).argmax(axis=1)
    kn, kj = np.unravel_index(flat, (width, j))
    e_b = np.maximum(e_star, 0.0)
    chi2 = a * x * x + 2 * h * x * e_b + c * e_b * e_b - 2 * b * x - 2 * d * e_b + q
    chi2 = chi2.reshape(n, -1).min(axis=1)
    out: dict[str, np.ndarray] = {
        "ln_evidence": ln_total,
        "chi2_best": chi2,
        "ess": 1 / (p_draw**2).sum(axis=1),
        "edge_mass": (p_draw * grid.edge[idx[:, 1:]]).sum(axis=1),
    }
    theta_map = grid.theta[idx[rows, kn]]
    for i, k in enumerate(LABELS):
        out[f"{k}_map"] = theta_map[:, i]
    out["mu_map"] = mu[rows, kn, kj]
    out["ebv_map"] = e_b[rows, kn, kj]
    # samples: node, then μ cell, then E
    s = o["n_samples"]
    node = 1 + _draw(rng, p_draw, s)  # (n, S) slots of the draws, by weight
    r2 = rows[:, None]
    ln_mu = ln_f[r2, node]  # (n, S, J)
    cell = _draw(rng, np.exp(ln_mu - ln_mu.max(axis=2, keepdims=True)))
    out["mu"] = mu[r2, node, cell] + (rng.random(cell.shape) - 0.5) * dmu[r2, node, 0]
    e_mean, e_sd = e_star[r2, node, cell], 1 / sqrt_c[r2, node, cell]
    lo_cdf = special.ndtr(-e_mean / e_sd)  # P(E < 0) of the untruncated Gaussian
    u = rng.random(e_mean.shape)
    out["ebv"] = np.maximum(e_mean + e_sd * special.ndtri(np.clip(lo_cdf + u * (1 - lo_cdf), 1e-300, 1 - 1e-16)), 0)
    theta_s = grid.theta[idx[r2, node]] + (rng.random((n, s, 3)) - 0.5) * grid.step
    for i, k in enumerate(LABELS):
        out[k] = theta_s[..., i]
    return out


def _draw(rng: np.random.Generator, p: np.ndarray, s: int | None = None) -> np.ndarray:
    """Draws from the categorical weights ``p`` along the last axis: ``s`` per row of a 2-D ``p``, or one per
    leading index (``s`` None)."""
    cdf = np.cumsum(p, axis=-1)
    cdf /= cdf[..., -1:]
    if s is None:
        u = rng.random(p.shape[:-1])
        return np.minimum((u[..., None] > cdf).sum(axis=-1), p.shape[-1] - 1)
    # one sorted array for all rows: row i's CDF shifted by i, searched with its draws shifted alike
    n, k = p.shape
    shift = np.arange(n)[:, None]
    u = rng.random((n, s)) * (1 - 1e-12)
    pos = np.searchsorted((cdf + shift).ravel(), (u + shift).ravel()).reshape(n, s) - shift * k
    return np.clip(pos, 0, k - 1)


def _split(v: np.ndarray) -> np.ndarray:
    """Whether each row's samples fall in two groups, each of >= 10 %, separated by a gap wider than the
    16-84 % range of the whole."""
    srt = np.sort(v, axis=1)
    s = v.shape[1]
    lo, hi = int(0.1 * s), int(0.9 * s)
    gaps = np.diff(srt, axis=1)[:, lo - 1 : hi]
    spread = srt[:, int(0.84 * s)] - srt[:, int(0.16 * s)]
    return gaps.max(axis=1) > np.maximum(spread, 1e-12)


def _summaries(samples: Mapping[str, np.ndarray], cols: Mapping[str, np.ndarray], o: Mapping[str, Any]):
    out: dict[str, Any] = {}
    dist = 10 ** (samples["mu"].astype(np.float64) / 5 + 1) / 1000  # kpc
    for k, v in (*samples.items(), ("dist_kpc", dist)):
        for q, val in zip(PERCENTILES, np.percentile(v, PERCENTILES, axis=1), strict=True):
            out[f"{k}_p{q:g}"] = val
        if k != "dist_kpc":
            out[f"{k}_map"] = cols[f"{k}_map"]
    out["dist_kpc_map"] = 10 ** (cols["mu_map"] / 5 + 1) / 1000
    for k in ("ln_evidence", "chi2_best", "n_bands", "ess"):
        out[k] = cols[k]
    out["p_value"] = stats.chi2.sf(cols["chi2_best"], np.maximum(cols["n_bands"] - 5, 1))
    flags = np.zeros(len(dist), dtype=np.int32)
    flags |= np.where(cols["edge_mass"] > 0.5, FLAGS["outside_domain"], 0)
    flags |= np.where(out["p_value"] < o["poor_fit_p"], FLAGS["poor_fit"], 0)
    flags |= np.where(_split(samples["mu"]) | _split(samples["logg"]), FLAGS["multimodal"], 0)
    flags |= np.where(cols["ess"] < 20, FLAGS["few_samples"], 0)
    out["flags"] = flags
    return pd.DataFrame(out)
