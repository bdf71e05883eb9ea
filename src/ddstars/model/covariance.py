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


def diagonal_t(ct: np.ndarray) -> np.ndarray:
    """The diagonals (k, n) of a C-contiguous stars-last stack (k, k, n), as a writable view."""
    k = ct.shape[0]
    return ct.reshape(k * k, -1)[:: k + 1]


def _cholesky_aug_t(a: np.ndarray, out: np.ndarray, band: bool = False) -> np.ndarray:
    """Left-looking Cholesky, column by column, of the leading (k, k) block of a stars-last stack
    ``a`` (m, k, n), m >= k, continued over the rows below it: with A = [C; Bᵀ] it writes into ``out``
    [L; Bᵀ L⁻ᵀ] (L the lower Cholesky factor of C, NaN from a non-positive pivot on), i.e. the rows below
    are the forward substitutions L⁻¹ b of the columns b of B, computed with the same products as the
    factor itself. Only the lower triangle of C is read and only the lower triangle of L is written.

    With ``band`` (B = I, m = 2k) column j of the rows below is computed only for rows k..k+j, the others
    being zero (L⁻ᵀ is upper triangular); ``out`` must then hold those zeros. ``out`` may be ``a``
    (in place: each column is read before it is written).
    """
    m, k = a.shape[:2]
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(k):
            lj = out[j, :j]
            d = a[j, j] - np.einsum("kn,kn->n", lj, lj) if j else a[j, j].copy()
            d[~(d > 0)] = np.nan
            rpiv = 1.0 / np.sqrt(d, out=out[j, j])  # multiplying by it is 3x cheaper than dividing
            stop = k + j + 1 if band else m
            col = out[j + 1 : stop, j]
            if j:
                np.subtract(a[j + 1 : stop, j], np.einsum("ikn,kn->in", out[j + 1 : stop, :j], lj), out=col)
                col *= rpiv
            else:
                np.multiply(a[j + 1 : stop, 0], rpiv, out=col)
    return out


def _cholesky_t(ct: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors in the stars-last layout (k, k, n); NaN where not positive definite."""
    return _cholesky_aug_t(ct, np.zeros_like(ct))


def _lower_inverse_t(lt: np.ndarray) -> np.ndarray:
    """Inverses of lower-triangular matrices in the stars-last layout, by forward substitution (only the
    lower triangle of ``lt`` is read)."""
    k = lt.shape[0]
    inv = np.zeros_like(lt)
    for i in range(k):
        row = inv[i, : i + 1]  # columns > i of row i stay zero
        if i:
            np.einsum("jn,jmn->mn", lt[i, :i], inv[:i, :i], out=row[:i])
            row[:i] /= -lt[i, i]
        np.divide(1.0, lt[i, i], out=row[i])
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


def mask_t(ct: np.ndarray, obs_t: np.ndarray) -> np.ndarray:
    """In place on a stars-last stack (k, k, n): the unobserved rows and columns replaced by the identity."""
    obs_f = obs_t.astype(ct.dtype)
    ct *= obs_f[:, None, :]
    ct *= obs_f[None, :, :]
    diagonal_t(ct)[...] += ~obs_t
    return ct


def augmented_t(k: int, m: int, n: int, dtype=np.float64) -> np.ndarray:
    """An uninitialised (k + m, k, n) stars-last stack [C; Bᵀ] for :func:`whitening_t` (m = k) or
    :func:`whiten_vectors_t` (m vectors)."""
    return np.empty((k + m, k, n), dtype=dtype)


def _factor_masked_aug_t(a: np.ndarray, obs_t: np.ndarray, inflation, fallback, band: bool) -> np.ndarray:
    """In place on ``a`` = [C; Bᵀ] (m, k, n), C masked as :func:`mask_t` leaves it: ``inflation[0] +
    inflation[1] * C_ii`` added to the observed diagonal entries, then :func:`_cholesky_aug_t`.

    Stars whose factor is not finite are factorised again with ``fallback`` instead. The matrix they
    need is rebuilt from what the in-place factorisation leaves: the strict upper triangle of C (never
    written; C is symmetric), the raw diagonal kept here, and the rows below (the identity with ``band``,
    else a copy kept here)."""
    k = a.shape[1]
    dv = diagonal_t(a[:k])
    diag = dv.copy()  # raw C_ii; 1 where unobserved
    dv += obs_t * (inflation[0] + inflation[1] * diag)
    below = None if band else a[k:].copy()
    _cholesky_aug_t(a, a, band)
    bad = ~np.isfinite(diagonal_t(a[:k])).all(axis=0)  # a non-finite entry makes its row's diagonal NaN
    if bad.any():
        sub = a[:, :, bad]
        i, j = np.tril_indices(k, -1)
        sub[i, j] = sub[j, i]
        d = diag[:, bad]
        diagonal_t(sub[:k])[...] = d + obs_t[:, bad] * (fallback[0] + fallback[1] * d)
        if band:
            sub[k:] = np.eye(k)[:, :, None]
        else:
            sub[k:] = below[:, :, bad]
        a[:, :, bad] = _cholesky_aug_t(sub, sub, band)
    return a


def whitening_t(a: np.ndarray, obs_t: np.ndarray, inflation=(1e-4, 1e-3), fallback=(0.02, 0.02)) -> np.ndarray:
    """:func:`whitening` in the stars-last layout, in place: ``a`` (26, 13, n) from :func:`augmented_t`
    with the masked covariance (as :func:`mask_t` leaves it; only its lower triangle is read) in
    ``a[:13]``, and ``obs_t`` (13, n) -> Wᵀ (13, 13, n), a view of ``a[13:]`` (W = ``wt.transpose(2, 1, 0)``
    stars-first).

    The rows below are set to the identity and factorised with C (:func:`_cholesky_aug_t`), which leaves
    L⁻ᵀ = Wᵀ there: the same products as the Cholesky factor followed by forward substitution.
    """
    k = a.shape[1]
    a[k:] = 0.0
    diagonal_t(a[k:])[...] = 1.0
    _factor_masked_aug_t(a, obs_t, inflation, fallback, band=True)
    wt = a[k:]
    # the unobserved rows and columns of K are those of the identity, so are those of K⁻¹: masking the
    # columns (W = K⁻¹ D) only zeroes their diagonal 1
    diagonal_t(wt)[...] *= obs_t
    return wt


def whiten_vectors_t(a: np.ndarray, obs_t: np.ndarray, inflation=(1e-4, 1e-3), fallback=(0.02, 0.02)) -> np.ndarray:
    """:func:`whiten_vectors` in the stars-last layout, in place: ``a`` (13 + m, 13, n) from
    :func:`augmented_t`, the masked covariance in ``a[:13]`` and the m vectors, with their unobserved
    components zero, as the rows ``a[13:]`` -> (W v)ᵀ (m, 13, n), a view of ``a[13:]``."""
    k = a.shape[1]
    return _factor_masked_aug_t(a, obs_t, inflation, fallback, band=False)[k:]


def stars_last(c: np.ndarray, dtype=np.float64) -> np.ndarray:
    """(n, ...) -> a C-contiguous copy (float64 unless ``dtype``) with the stars axis last.

    Always a copy: callers work on it in place. (``np.ascontiguousarray`` returns a view when the moved axis
    has length 1, i.e. a chunk of one star, and the in-place masking then corrupted the caller's array.)"""
    return np.array(np.moveaxis(c, 0, -1), dtype=dtype, order="C", copy=True)


def whitening(c: np.ndarray, observed: np.ndarray, inflation=(1e-4, 1e-3), fallback=(0.02, 0.02)) -> np.ndarray:
    """W (n, 13, 13) with Wᵀ W = the masked precision, so χ² = |W Δc|² over the observed components.

    Before factorising, ``inflation[0] + inflation[1] * C_ii`` is added to each diagonal (the authors'
    code; about 0.01 mag in quadrature); stars whose matrix is still not positive definite get
    ``fallback`` instead (the code's second try). W = K⁻¹ D with K the Cholesky factor of the masked
    covariance and D the diagonal observed mask. Works in place on one stars-last copy of ``c``.
    """
    obs_t = np.ascontiguousarray(observed.T)
    n, k = c.shape[:2]
    a = augmented_t(k, k, n)
    a[:k] = np.moveaxis(c, 0, -1)
    mask_t(a[:k], obs_t)
    return whitening_t(a, obs_t, inflation, fallback).transpose(2, 1, 0)


def whiten_vectors(
    c: np.ndarray, observed: np.ndarray, vectors: np.ndarray, inflation=(1e-4, 1e-3), fallback=(0.02, 0.02)
) -> np.ndarray:
    """W v for a few vectors per star, (n, 13, m) -> (n, 13, m), without forming W (forward substitution).

    The same W as :func:`whitening`; cheaper when only a few products are needed (the reddening update).
    """
    obs_t = np.ascontiguousarray(observed.T)
    n, k, m = vectors.shape
    a = augmented_t(k, m, n)
    a[:k] = np.moveaxis(c, 0, -1)
    mask_t(a[:k], obs_t)
    np.multiply(vectors.transpose(2, 1, 0), obs_t, out=a[k:])  # masked components zeroed
    return whiten_vectors_t(a, obs_t, inflation, fallback).transpose(2, 1, 0)


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


def jacobian_term_t(
    j_t: np.ndarray, cov_x_t: np.ndarray, var: np.ndarray | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """J Cθ Jᵀ in the stars-last layout: j_t (13, 3, n), cov_x_t (3, 3, n) -> (13, 13, n).

    With ``var`` (n,), ``j_t`` has a fourth column v (13, n) and the result is J Cθ Jᵀ + var v vᵀ (the
    reddening term) in the same pass. (J Cθ) first, then its product with Jᵀ, as :func:`jacobian_term`."""
    q = cov_x_t.shape[0]
    m = np.empty_like(j_t)
    np.einsum("ian,abn->ibn", j_t[:, :q], cov_x_t, out=m[:, :q])
    if var is not None:
        np.multiply(j_t[:, q], var, out=m[:, q])
    return np.einsum("ibn,jbn->ijn", m, j_t, out=out)


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


def reddening_update_components(
    u: np.ndarray,
    v: np.ndarray,
    e0: np.ndarray,
    var0: np.ndarray,
    width: float,
    e_max: float = 10.0,
    floor: float = 0.02,
    relative: float = 0.1,
    var_max: float = 100.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Eqs. 8-9 for K reddening components (paper Eq. 20): the posterior of (E_1 … E_K) from the photometry and
    the priors E_1 ~ N(e0, var0) (the dust map's, as for one component) and E_k ~ N(0, (width s)²) for k ≥ 2
    with s = √(e0² + var0) (zero-mean, scaled by the star's prior reddening: no dust, no variation of its law).

    ``u`` (n, K, 13): the whitened components W B R_k; ``v`` (n, 13): W (ĉ - c_pred(E = 0)). A linear Gaussian
    problem, solved in closed form per star (batched K × K). E_1 is clipped to [0, e_max], the others then
    re-solved given it; the covariance is the posterior's, with E_1's variance floored and capped as for one
    component (its row and column rescaled with it, so it stays positive definite).

    Returns (E (n, K), covariance (n, K, K)).
    """
    n, k = u.shape[:2]
    prior_prec = np.zeros((n, k))
    prior_prec[:, 0] = 1.0 / var0
    prior_prec[:, 1:] = 1.0 / ((width**2) * (e0**2 + var0))[:, None]
    prec = np.einsum("nkb,nlb->nkl", u, u)
    prec[:, np.arange(k), np.arange(k)] += prior_prec
    b = np.einsum("nkb,nb->nk", u, v)
    b[:, 0] += e0 / var0
    e = np.linalg.solve(prec, b[..., None])[..., 0]
    e1 = np.clip(e[:, 0], 0.0, e_max)
    moved = e1 != e[:, 0]
    if moved.any():  # E_2 … E_K given the clipped E_1
        rest = b[moved, 1:] - prec[moved, 1:, 0] * e1[moved, None]
        e[moved, 1:] = np.linalg.solve(prec[moved, 1:, 1:], rest[..., None])[..., 0]
    e[:, 0] = e1
    cov = np.linalg.inv(prec)
    var1 = np.minimum(np.maximum(cov[:, 0, 0], floor**2 + (relative * e1) ** 2), var_max)
    scale = np.ones((n, k))
    scale[:, 0] = np.sqrt(var1 / cov[:, 0, 0])
    cov *= scale[:, :, None] * scale[:, None, :]
    return e, cov


def chi2(w: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """|W Δc|² per star (Δc with NaN in unobserved components is allowed: they are zeroed first)."""
    d = np.where(np.isfinite(delta), delta, 0.0)
    z = np.matmul(w, d[:, :, None])[:, :, 0]
    return (z * z).sum(axis=1)
