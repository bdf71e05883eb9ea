"""The model's likelihood (paper Eqs. 4-9), public for every stage that evaluates a model.

* :class:`Normalisation`: θ -> x, the network's input units;
* :func:`prepare`: a set of stars in the colour basis: targets y = B(m - μ), observed components and the
  model-independent covariance (photometry + parallax);
* :func:`evaluate`: with the network's weights, each star's reddening update E′, σ²_E′ from its original prior
  (Eqs. 8-9), χ²/dof with E′ and C_pred (dof = observed components - 1) and the full Eq. 4 covariance
  (J Cθ Jᵀ of M + E′R, σ²_E′ RRᵀ); :func:`evaluate_t` is the same in the stars-last layout that training's
  whitening uses;
* :func:`settings`: the options these read (``diag_inflation``, ``diag_inflation_fallback``,
  ``reddening_update``), filled from the training options' defaults; ``paper=True`` drops the diagonal
  inflation, which is the paper's χ² (METHOD.md §8). :func:`evaluate` runs in float64 always.

The per-star algebra (Cholesky factors, whitening, the closed-form update) lives in :mod:`.covariance`, the
network's forward pass and its Jacobians in :mod:`.network`; callers outside ``ddstars.model`` use this module
and :class:`ddstars.model.StellarModel` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..bands import N_BANDS
from ..errors import DataError
from . import covariance as cv
from . import network
from .data import Stars
from .options import options

#: The diagonal inflation of the paper's χ² (none; training's is ``train.diag_inflation``, METHOD.md §10-14).
PAPER_INFLATION = (0.0, 0.0)

# per-star helpers of the likelihood, public under these names
distance_modulus = cv.distance_modulus
photometric_covariance = cv.photometric_covariance
base_covariance = cv.base_covariance
to_colour = cv.to_colour
from_colour = cv.from_colour
reddening_update = cv.reddening_update  # Eqs. 8-9 from a whitened C_pred, per star
chi2 = cv.chi2  # |W Δ|² per star


def settings(train_options: Mapping[str, Any] | None = None, paper: bool = False) -> dict[str, Any]:
    """The likelihood settings from the training options (``config['train']``; defaults where absent).

    ``paper``: without training's diagonal inflation (the paper's χ² definition).
    """
    o = options(train_options)
    return {**o, "diag_inflation": PAPER_INFLATION} if paper else o


@dataclass
class Normalisation:
    """θ -> x = (θ - median) / std (population std), the units of the network's inputs."""

    median: np.ndarray
    std: np.ndarray

    def x(self, theta: np.ndarray) -> np.ndarray:
        return (np.asarray(theta, dtype=np.float64) - self.median) / self.std

    def cov_x(self, cov_theta: np.ndarray) -> np.ndarray:
        return cov_theta / (self.std[:, None] * self.std[None, :])

    def to_json(self) -> dict[str, Any]:
        return {"labels": ["teff", "logg", "feh"], "median": self.median.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Normalisation:
        return cls(np.asarray(d["median"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64))

    @classmethod
    def fit(cls, theta: np.ndarray) -> Normalisation:
        std = np.std(theta, axis=0)
        if not np.all(std > 0):
            raise DataError(f"labels have zero spread (std {std.tolist()}); cannot normalise")
        return cls(np.median(theta, axis=0), std)


@dataclass
class Prepared:
    """What a round needs for one set of stars, in colour space."""

    x: np.ndarray  # (n, 3) normalised labels
    cov_x: np.ndarray  # (n, 3, 3)
    y: np.ndarray  # (n, 13) target B(m - μ), 0 where unobserved
    observed: np.ndarray  # (n, 13) observed colour-space components
    base: np.ndarray  # (n, 13, 13) photometry + parallax covariance
    n_obs: np.ndarray  # (n,)


def prepare(stars: Stars, norm: Normalisation) -> Prepared:
    """Targets and model-independent covariance of ``stars``."""
    mu = cv.distance_modulus(stars.parallax)
    usable = stars.parallax_usable & np.isfinite(mu)
    c = stars.mag - stars.mag[:, [0]]
    c[:, 0] = stars.mag[:, 0] - mu
    observed = cv.observed_components(stars.observed, usable)
    y = np.where(observed, c, 0.0)
    return Prepared(
        x=norm.x(stars.theta),
        cov_x=norm.cov_x(stars.cov_theta),
        y=y,
        observed=observed,
        base=cv.base_covariance(stars.err, np.where(usable, stars.parallax, np.nan), stars.parallax_error),
        n_obs=observed.sum(axis=1),
    )


@dataclass
class Evaluation:
    """The model evaluated on a set of stars (colour space, paper Eqs. 4-9), with what the stars gave."""

    e: np.ndarray  # (n,) E′
    var_e: np.ndarray  # (n,) σ²_E′
    chi2_dof: np.ndarray  # (n,) χ²/dof with E′ and C_pred (NaN when dof < 1)
    bm: np.ndarray  # (n, 13) B M(θ̂)
    br: np.ndarray  # (n, 13) B R(θ̂)
    c_full: np.ndarray  # (n, 13, 13) Eq. 4 covariance in colour space (J of M + E′R, σ²_E′ RRᵀ)
    y: np.ndarray  # (n, 13) the target B(m - μ), 0 where unobserved
    observed: np.ndarray  # (n, 13) observed colour-space components
    n_obs: np.ndarray  # (n,) number of observed components (dof = n_obs - 1)
    # K > 1 reddening components (paper Eq. 20) only: E_2 … E_K, B R_2 … B R_K, the covariance of E_1 … E_K
    e_k: np.ndarray | None = None  # (n, K-1)
    br_k: np.ndarray | None = None  # (n, K-1, 13)
    cov_e: np.ndarray | None = None  # (n, K, K)

    @property
    def absolute_magnitudes(self) -> np.ndarray:
        """Dust-free M(θ̂) [mag], (n, 13)."""
        return cv.from_colour(self.bm)

    @property
    def reddening_vector(self) -> np.ndarray:
        """R(θ̂) per unit E, (n, 13)."""
        return cv.from_colour(self.br)

    @property
    def residual(self) -> np.ndarray:
        """Observed minus predicted (with E′) in colour space, NaN where unobserved, (n, 13)."""
        pred = self.bm + self.e[:, None] * self.br
        if self.e_k is not None:
            pred = pred + np.einsum("nk,nkb->nb", self.e_k, self.br_k)
        return np.where(self.observed, self.y - pred, np.nan)


def evaluate_t(
    w: network.Weights, p: Prepared, stars: Stars, o: Mapping[str, Any], sl: slice, masked: bool, dtype=np.float64
):
    """The work of :func:`evaluate` in the stars-last layout: (E′, σ²_E′, χ²/dof, BM (13, n), BR (13, n),
    C_full, observed (13, n)). C_full is (13, 13, n) C-contiguous, or if ``masked`` the (26, 13, n) stack
    of :func:`covariance.whitening_t` with C_full masked (as cv.mask_t leaves it) in its first 13 rows.

    The Jacobians come out of the network stars-last. The base covariance is transposed and masked once
    and shared by C_pred and C_full; the masking of the model terms is done on their factors (J and BR
    with the unobserved rows zeroed), which gives the same numbers as masking the sums. C_pred is
    factorised with BR and Δ appended as two more rows, which yields W_pred BR and W_pred Δ directly.
    The algebra runs in ``dtype``; E′, σ²_E′ and χ²/dof come back as float64.
    """
    if w.components > 1:
        return _evaluate_components_t(w, p, stars, o, sl, masked, dtype)
    infl, fall = tuple(o["diag_inflation"]), tuple(o["diag_inflation_fallback"])
    ru = o["reddening_update"]
    obs_t = np.ascontiguousarray(p.observed[sl].T)
    obs_f = obs_t.astype(dtype)
    bm, r, j_bm, j_r = network.forward_t(w, p.x[sl].T, dtype=dtype)
    n = bm.shape[1]
    br = cv.to_colour(r[None])[0]  # (13, n): B acts on axis 0
    base = cv.mask_t(cv.stars_last(p.base[sl], dtype), obs_t)
    cov_x = cv.stars_last(p.cov_x[sl], dtype)
    pred = cv.augmented_t(N_BANDS, 2, n, dtype)  # [C_pred; BRᵀ; Δᵀ] with Δ = y - BM, the unobserved components zero
    cv.jacobian_term_t(j_bm * obs_f[:, None, :], cov_x, out=pred[:N_BANDS])
    pred[:N_BANDS] += base
    br_m = np.multiply(br, obs_f, out=pred[N_BANDS])
    pred[N_BANDS + 1] = 0.0
    np.subtract(p.y[sl].T, bm, out=pred[N_BANDS + 1], where=obs_t)
    br_m = br_m.copy()
    u, v = cv.whiten_vectors_t(pred, obs_t, infl, fall)  # W_pred BR, W_pred Δ (13, n) each
    e0 = stars.ebv_prior[sl]
    var0 = stars.sigma_ebv_prior[sl] ** 2
    e, var_e = cv.reddening_update_whitened(u.T, v.T, e0, var0, ru["e_max"], ru["floor"], ru["relative"], ru["var_max"])
    e_d = e.astype(dtype)
    z = e_d * u - v  # W_pred (BM + E' BR - y)
    with np.errstate(invalid="ignore", divide="ignore"):
        chi2_dof = (z * z).sum(axis=0, dtype=np.float64) / (p.n_obs[sl] - 1)
    j4 = np.empty((N_BANDS, 4, n), dtype=dtype)  # [J_c, BR] with J_c = d(BM + E′ BR)/dx
    j_c = j4[:, :3]
    np.subtract(j_r, j_r[:1], out=j_c)  # B dR/dx
    j_c[0] = j_r[0]
    j_c *= e_d
    j_c += j_bm
    if masked:
        j_c *= obs_f[:, None, :]
        j4[:, 3] = br_m
        c_full = cv.augmented_t(N_BANDS, N_BANDS, n, dtype)
        cv.jacobian_term_t(j4, cov_x, var_e.astype(dtype), out=c_full[:N_BANDS])
        c_full[:N_BANDS] += base
    else:
        j4[:, 3] = br
        c_full = cv.stars_last(p.base[sl], dtype)
        c_full += cv.jacobian_term_t(j4, cov_x, var_e.astype(dtype))
    return e, var_e, chi2_dof, bm, br, c_full, obs_t


def _evaluate_components_t(
    w: network.Weights, p: Prepared, stars: Stars, o: Mapping[str, Any], sl: slice, masked: bool, dtype=np.float64
):
    """:func:`evaluate_t` for K > 1 reddening components (paper Eq. 20): E (n, K) and its covariance (n, K, K)
    from :func:`covariance.reddening_update_components`, χ²/dof with every component (dof = observed components
    - 1, as for one: E_2 … E_K have informative priors), BR (K, 13, n), and C_full with the Jacobian of
    M + Σ E_k R_k and Σ_kl Cov(E_k, E_l) BR_k BR_lᵀ. Float64 throughout (``dtype`` is not used: it serves the
    training epochs' float32 whitening, which this path makes in float64 and which is cast on assignment)."""
    infl, fall = tuple(o["diag_inflation"]), tuple(o["diag_inflation_fallback"])
    ru = o["reddening_update"]
    obs_t = np.ascontiguousarray(p.observed[sl].T)
    obs_f = obs_t.astype(np.float64)
    x = p.x[sl]
    bm, r, j_bm, j_r = network.forward_t(w, x.T)
    n, k = bm.shape[1], w.components
    comps = network.components(w, x, r.T)  # (n, K, 13)
    br = np.ascontiguousarray(cv.to_colour(comps.transpose(0, 2, 1)).transpose(2, 1, 0))  # (K, 13, n)
    base = cv.mask_t(cv.stars_last(p.base[sl]), obs_t)
    cov_x = cv.stars_last(p.cov_x[sl])
    pred = cv.augmented_t(N_BANDS, k + 1, n)  # [C_pred; BR_1ᵀ … BR_Kᵀ; Δᵀ]
    cv.jacobian_term_t(j_bm * obs_f[:, None, :], cov_x, out=pred[:N_BANDS])
    pred[:N_BANDS] += base
    np.multiply(br, obs_f[None], out=pred[N_BANDS : N_BANDS + k])
    pred[N_BANDS + k] = 0.0
    np.subtract(p.y[sl].T, bm, out=pred[N_BANDS + k], where=obs_t)
    br_m = pred[N_BANDS : N_BANDS + k].copy()
    wv = cv.whiten_vectors_t(pred, obs_t, infl, fall)  # (K + 1, 13, n)
    u, v = np.moveaxis(wv[:k], -1, 0), wv[k].T  # (n, K, 13), (n, 13)
    e0 = stars.ebv_prior[sl]
    var0 = stars.sigma_ebv_prior[sl] ** 2
    e, cov_e = cv.reddening_update_components(
        u, v, e0, var0, o["extinction_width"], ru["e_max"], ru["floor"], ru["relative"], ru["var_max"]
    )
    z = np.einsum("nk,nkb->bn", e, u) - v.T
    with np.errstate(invalid="ignore", divide="ignore"):
        chi2_dof = (z * z).sum(axis=0) / (p.n_obs[sl] - 1)
    # J of BM + Σ E_k BR_k: R's analytic, the further components' by central differences
    j_c = cv.to_colour(np.moveaxis(j_r, -1, 0)) * e[:, 0, None, None]  # (n, 13, 3)
    j_k = network.components_jacobian(w, x)  # (n, K-1, 13, 3)
    j_c += np.einsum("nk,nbka->nba", e[:, 1:], cv.to_colour(j_k.transpose(0, 2, 1, 3)))
    j_c = np.ascontiguousarray(np.moveaxis(j_c, 0, -1)) + j_bm  # (13, 3, n)
    vecs = br_m if masked else br
    if masked:
        j_c *= obs_f[:, None, :]
    red = np.einsum("kln,kin,ljn->ijn", np.moveaxis(cov_e, 0, -1), vecs, vecs)
    if masked:
        c_full = cv.augmented_t(N_BANDS, N_BANDS, n)
        cv.jacobian_term_t(j_c, cov_x, out=c_full[:N_BANDS])
        c_full[:N_BANDS] += base + red
    else:
        c_full = cv.stars_last(p.base[sl]) + cv.jacobian_term_t(j_c, cov_x) + red
    return e, cov_e, chi2_dof, bm, br, c_full, obs_t


def evaluate(
    w: network.Weights, p: Prepared, stars: Stars, o: Mapping[str, Any], sl: slice = slice(None)
) -> Evaluation:
    """Reddening update (Eqs. 8-9, from the original prior), χ²/dof and full covariance for stars ``sl``.

    ``o``: the likelihood settings of :func:`settings`. The arrays may share buffers with the next call's.
    """
    e, var_e, chi2_dof, bm, br, c_full, _ = evaluate_t(w, p, stars, o, sl, masked=False)
    c_full = np.moveaxis(c_full, -1, 0)
    if w.components == 1:
        return Evaluation(e, var_e, chi2_dof, bm.T, br.T, c_full, p.y[sl], p.observed[sl], p.n_obs[sl])
    return Evaluation(
        e[:, 0], var_e[:, 0, 0], chi2_dof, bm.T, br[0].T, c_full, p.y[sl], p.observed[sl], p.n_obs[sl],
        e_k=e[:, 1:], br_k=np.moveaxis(br[1:], -1, 0), cov_e=var_e,
    )  # fmt: skip
