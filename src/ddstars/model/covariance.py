"""Per-star covariances, whitening matrices, χ² and the reddening update (paper Eqs. 4-9; METHOD.md §2).

Everything is vectorised across stars in NumPy float64; the 13×13 algebra (Cholesky factor, its inverse)
is written out over the 13 rows, each step acting on all stars at once, which beats general batched
LAPACK inverses by an order of magnitude for such small matrices.

Conventions
    Magnitude space m (13 bands, order of :mod:`ddstars.bands`); colour space c = B m with c0 = m_G and
    c_i = m_i - m_G (Eqs. 5-6). θ is the *normalised* label vector x = (θ - median) / std; its covariance
    is scaled to match. A component of c is *observed* when it has finite variance: c0 needs a usable
    parallax, c_i needs band i. Unobserved components are masked: their rows and columns of the
    covariance are replaced by the identity before factorising, and their columns of the whitening
    matrix are zero, so they contribute nothing to χ² (no 99-mag fill values).
"""

from __future__ import annotations

import numpy as np

from ..bands import N_BANDS

LN10_5 = 5.0 / np.log(10.0)


def colour_basis(n: int = N_BANDS) -> np.ndarray:
    """B: identity with -1 in column 0 below the diagonal (c = B m)."""
    b = np.eye(n)
    b[1:, 0] = -1.0
    return b


B = colour_basis()


def to_colour(v: np.ndarray) -> np.ndarray:
    """B v along axis 1 for stacks (n, 13, ...): component 0 kept, the others minus component 0."""
    out = v - v[:, :1]
    out[:, 0] = v[:, 0]
    return out


def from_colour(c: np.ndarray) -> np.ndarray:
    """B⁻¹ c along axis 1 (the inverse of :func:`to_colour`): X = (X - G) + G."""
    out = c + c[:, :1]
    out[:, 0] = c[:, 0]
    return out


def _cholesky_t(ct: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors in the stars-last layout (k, k, n); NaN where not positive definite."""
    k = ct.shape[0]
    low = np.zeros_like(ct)
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(k):
            d = ct[j, j] - np.einsum("kn,kn->n", low[j, :j], low[j, :j])
            low[j, j] = np.sqrt(np.where(d > 0, d, np.nan))
            if j + 1 < k:
                low[j + 1 :, j] = (ct[j + 1 :, j] - np.einsum("ikn,kn->in", low[j + 1 :, :j], low[j, :j])) / low[j, j]
    return low


def _lower_inverse_t(lt: np.ndarray) -> np.ndarray:
    """Inverses of lower-triangular matrices in the stars-last layout, by forward substitution."""
    k = lt.shape[0]
    inv = np.zeros_like(lt)
    for i in range(k):
        row = -np.einsum("jn,jmn->mn", lt[i, :i], inv[:i, : i + 1])  # columns > i of row i stay zero
        row[i] += 1.0
        inv[i, : i + 1] = row / lt[i, i]
    return inv


def cholesky(c: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of symmetric matrices (n, k, k); NaN where not positive definite.

    Works in a stars-last layout (k, k, n), so each of the ~k²/2 steps is one vector operation over all
    stars (a failing star does not stop the others, unlike ``numpy.linalg.cholesky`` on a stack).
    """
    return np.moveaxis(_cholesky_t(np.ascontiguousarray(np.moveaxis(c, 0, -1))), -1, 0)


def lower_inverse(low: np.ndarray) -> np.ndarray:
    """Inverses of a stack of lower-triangular matrices (n, k, k)."""
    return np.moveaxis(_lower_inverse_t(np.ascontiguousarray(np.moveaxis(low, 0, -1))), -1, 0)


def mask_covariance(c: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Replace unobserved components' rows and columns by the identity (decoupled, unit variance)."""
    both = observed[:, :, None] & observed[:, None, :]
    eye = np.broadcast_to(np.eye(c.shape[1], dtype=bool), c.shape)
    return np.where(both, c, np.where(eye, 1.0, 0.0))


def _masked_inflated_t(ct: np.ndarray, obs_t: np.ndarray, add: tuple[float, float]) -> np.ndarray:
    """In place on a stars-last copy: diagonal + add[0] + add[1] C_ii, then the unobserved rows/columns
    replaced by the identity."""
    idx = np.arange(ct.shape[0])
    ct[idx, idx] += add[0] + add[1] * ct[idx, idx]
    ct *= obs_t[:, None, :]
    ct *= obs_t[None, :, :]
    ct[idx, idx] += ~obs_t
    return ct


def _factor_t(c: np.ndarray, observed: np.ndarray, inflation, fallback) -> tuple[np.ndarray, np.ndarray]:
    """(Cholesky factor of the inflated, masked covariance, observed mask), both stars-last."""
    obs_t = np.ascontiguousarray(observed.T)
    raw = np.ascontiguousarray(np.moveaxis(c, 0, -1), dtype=np.float64)
    low = _cholesky_t(_masked_inflated_t(raw.copy(), obs_t, inflation))
    bad = ~np.isfinite(low).all(axis=(0, 1))
    if bad.any():
        low[:, :, bad] = _cholesky_t(_masked_inflated_t(raw[:, :, bad].copy(), obs_t[:, bad], fallback))
    return low, obs_t


def whitening(c: np.ndarray, observed: np.ndarray, inflation=(1e-4, 1e-3), fallback=(0.02, 0.02)) -> np.ndarray:
    """W (n, 13, 13) with Wᵀ W = the masked precision, so χ² = |W Δc|² over the observed components.

    Before factorising, ``inflation[0] + inflation[1] * C_ii`` is added to each diagonal (the authors'
    code; about 0.01 mag in quadrature); stars whose matrix is still not positive definite get
    ``fallback`` instead (the code's second try). W = K⁻¹ D with K the Cholesky factor of the masked
    covariance and D the diagonal observed mask. Works in place on one stars-last copy of ``c``.
    """
    low, obs_t = _factor_t(c, observed, inflation, fallback)
    inv = _lower_inverse_t(low)
    inv *= obs_t[None, :, :]
    return np.moveaxis(inv, -1, 0)


def whiten_vectors(
    c: np.ndarray, observed: np.ndarray, vectors: np.ndarray, inflation=(1e-4, 1e-3), fallback=(0.02, 0.02)
) -> np.ndarray:
    """W v for a few vectors per star, (n, 13, m) -> (n, 13, m), without forming W (forward substitution).

    The same W as :func:`whitening`; cheaper when only a few products are needed (the reddening update).
    """
    low, obs_t = _factor_t(c, observed, inflation, fallback)
    b = np.moveaxis(vectors, 0, -1) * obs_t[:, None, :]  # (13, m, n), masked components zeroed
    k = low.shape[0]
    z = np.zeros_like(b)
    for i in range(k):
        acc = b[i] - np.einsum("jn,jmn->mn", low[i, :i], z[:i])
        z[i] = acc / low[i, i]
    return np.moveaxis(z, -1, 0)


def photometric_covariance(err: np.ndarray) -> np.ndarray:
    """B diag(σ_m²) Bᵀ in colour space; NaN errors (unobserved bands) count as 0 here (masked later)."""
    s2 = np.where(np.isfinite(err), err, 0.0) ** 2
    g = s2[:, 0]
    c = np.broadcast_to(g[:, None, None], (len(err), N_BANDS, N_BANDS)).copy()
    c[:, 0, 1:] = -g[:, None]
    c[:, 1:, 0] = -g[:, None]
    idx = np.arange(1, N_BANDS)
    c[:, idx, idx] += s2[:, 1:]
    return c


def observed_components(band_observed: np.ndarray, parallax_usable: np.ndarray) -> np.ndarray:
    """Which of the 13 colour-space components have finite variance (c0: parallax and G; c_i: band i and G)."""
    obs = band_observed.copy()
    obs[:, 0] = band_observed[:, 0] & parallax_usable
    obs[:, 1:] &= band_observed[:, [0]]
    return obs


def distance_modulus(parallax_mas: np.ndarray) -> np.ndarray:
    """μ = 10 - 5 log10(ϖ / mas) (naive; METHOD.md Appendix A correction not applied). NaN for ϖ <= 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(parallax_mas > 0, 10.0 - 5.0 * np.log10(parallax_mas), np.nan)


def base_covariance(err: np.ndarray, parallax: np.ndarray, parallax_error: np.ndarray) -> np.ndarray:
    """Photometry + distance modulus (Eq. 4 terms that do not depend on the model), colour space."""
    c = photometric_covariance(err)
    with np.errstate(invalid="ignore", divide="ignore"):
        s_mu = LN10_5 * parallax_error / parallax
    c[:, 0, 0] += np.where(np.isfinite(s_mu), s_mu, 0.0) ** 2
    return c


def jacobian_term(j_c: np.ndarray, cov_x: np.ndarray) -> np.ndarray:
    """J Cθ Jᵀ for colour-space Jacobians j_c (n, 13, 3) and normalised label covariances (n, 3, 3)."""
    return np.matmul(np.matmul(j_c, cov_x), np.swapaxes(j_c, 1, 2))


def reddening_term(br: np.ndarray, var_e: np.ndarray) -> np.ndarray:
    """σ_E² (B R)(B R)ᵀ."""
    return var_e[:, None, None] * br[:, :, None] * br[:, None, :]


def reddening_update(w_pred: np.ndarray, residual: np.ndarray, br: np.ndarray, e0, var0, **limits):
    """Eqs. 8-9 with the whitening matrix of C_pred (photometry, parallax, J_M Cθ J_Mᵀ) given in full:
    ``residual`` = ĉ - c_pred(E = 0) and ``br`` = B R in colour space; see :func:`reddening_update_whitened`."""
    uv = np.matmul(w_pred, np.stack([br, residual], axis=2))  # (n, 13, 2): W BR and W Δ
    return reddening_update_whitened(uv[:, :, 0], uv[:, :, 1], e0, var0, **limits)


def reddening_update_whitened(
    u: np.ndarray,
    v: np.ndarray,
    e0: np.ndarray,
    var0: np.ndarray,
    e_max: float = 10.0,
    floor: float = 0.02,
    relative: float = 0.1,
    var_max: float = 100.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Eqs. 8-9: posterior reddening from the dust-map prior N(e0, var0) and the photometry, from the
    whitened vectors u = W B R and v = W (ĉ - c_pred(E = 0)), W whitening C_pred.

    Returns (E′ clipped to [0, e_max], σ²_E′ floored at floor² + (relative E′)² and capped at var_max).
    """
    prec = (u * u).sum(axis=1) + 1.0 / var0
    mean = (e0 / var0 + (u * v).sum(axis=1)) / prec
    e = np.clip(mean, 0.0, e_max)
    var = np.minimum(np.maximum(1.0 / prec, floor**2 + (relative * e) ** 2), var_max)
    return e, var


def chi2(w: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """|W Δc|² per star (Δc with NaN in unobserved components is allowed: they are zeroed first)."""
    d = np.where(np.isfinite(delta), delta, 0.0)
    z = np.matmul(w, d[:, :, None])[:, :, 0]
    return (z * z).sum(axis=1)
