"""Variable dust after the fact: the principal direction of a one-component model's residual colours.

Schlafly et al. (2016) found the variation of the extinction curve as the principal direction of how stars'
reddening vectors differ from the mean. For a trained model with one reddening vector R(θ) the same shows in
the test residuals: a star behind dust whose law differs by δR has residual colours r ≈ E δR (minus the part
the refitted E absorbs), on top of noise. So, with residual colours X − G of every band (``res_<X>-gaia_g``,
observed − predicted with E refitted):

* per reddened star (E′ > ``e_min``) the estimate δR̂ = r / E′;
* its covariance over those stars, less the noise's share: the covariance of r over the unreddened stars
  (E′ < ``e_clean``) times the mean 1/E′² of the reddened ones;
* the leading eigenvector of that excess is the direction in which the law varies, its eigenvalue λ the
  variance of the law along it (√λ: the scatter of δR along the unit direction, in mag per mag of E).

The unreddened stars are brighter than the reddened ones, so this noise share is an underestimate and the
eigenvalues of a constant law stay a little above zero: λ is significant only where it stands out of the next
eigenvalues (``ratio`` = λ₁/λ₂; 1.7 on the built-in sky, whose law is constant; 1.9 with R_V varying by 0.3,
where the 419 reddened test stars' δR̂ along the direction still follows their true R_V with Spearman
ρ = 0.62). With R_V varying by σ, λ ≈ σ² ‖∂R/∂R_V‖² and the direction is parallel to ∂R/∂R_V once the part
along R itself is removed (the refit absorbs it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..bands import BAND_NAMES, N_R_JUDGED

REFERENCE = "gaia_g"
BANDS: tuple[str, ...] = tuple(b for b in BAND_NAMES if b != REFERENCE)
COLUMNS: tuple[str, ...] = tuple(f"res_{b}-{REFERENCE}" for b in BANDS)


def colours_of(vectors: np.ndarray) -> np.ndarray:
    """Per-band vectors (…, 13) as the residuals' colours X − G (…, 12)."""
    v = np.asarray(vectors, dtype=float)
    g = BAND_NAMES.index(REFERENCE)
    return v[..., [BAND_NAMES.index(b) for b in BANDS]] - v[..., g : g + 1]


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def without(v: np.ndarray, along: np.ndarray) -> np.ndarray:
    """``v`` less its projection on ``along``."""
    a = unit(along)
    return v - (v @ a) * a


def residual_direction(table: pd.DataFrame, e_min: float = 0.3, e_clean: float = 0.05, min_stars: int = 30) -> dict:
    """The principal direction of the residual colours' excess over noise among reddened test stars.

    Returns ``n_reddened``, ``n_clean``, ``direction`` (unit, over :data:`BANDS` as X − G), ``eigenvalue``
    (λ, mag² per mag² of E), ``scatter`` (√max(λ, 0)), ``noise_eigenvalues`` (the next three, for scale),
    ``projection`` (per reddened star: δR̂ along the direction) and ``source_id`` of those stars; or
    ``status: too_few`` with the counts.
    """
    res = table[list(COLUMNS)].to_numpy(np.float64)
    e = table["ebv_fit"].to_numpy(np.float64)
    usable = table["usable"].to_numpy(bool) if "usable" in table else np.ones(len(table), bool)
    ok = usable & np.isfinite(res).all(axis=1) & np.isfinite(e)
    hot, clean = ok & (e > e_min), ok & (e < e_clean)
    out: dict[str, Any] = {"n_reddened": int(hot.sum()), "n_clean": int(clean.sum()), "e_min": e_min}
    if hot.sum() < min_stars or clean.sum() < min_stars:
        return {**out, "status": "too_few"}
    d = res[hot] / e[hot, None]
    noise = np.cov(res[clean], rowvar=False) * np.mean(1.0 / e[hot] ** 2)
    excess = np.cov(d, rowvar=False) - noise
    w, v = np.linalg.eigh(excess)
    direction = v[:, -1]
    direction = direction * np.sign(direction[np.argmax(np.abs(direction))])  # the largest component positive
    return {
        **out,
        "status": "ok",
        "direction": direction,
        "eigenvalue": float(w[-1]),
        "scatter": float(np.sqrt(max(w[-1], 0.0))),
        "noise_eigenvalues": [float(x) for x in w[-4:-1][::-1]],
        "ratio": float(w[-1] / w[-2]) if w[-2] > 0 else float("inf"),
        "projection": (d - d.mean(0)) @ direction,
        "source_id": table["source_id"].to_numpy()[hot],
    }


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """|cos| of the angle between two directions (their sign is arbitrary)."""
    return float(abs(unit(a) @ unit(b)))


# ------------------------------------------------------------------ a model with K > 1 components (Eq. 20)
def effective_dof(table: pd.DataFrame, width: float) -> np.ndarray:
    """Degrees of freedom of each star's χ² under a K > 1 model: observed components - 1 (E_1, as the paper
    counts it) - Σ_k≥2 h_k, with h_k = 1 - σ²_post(E_k) / σ²_prior(E_k) the share of a degree of freedom that
    E_k takes from the data (0 when its prior decides it, 1 when the photometry does)."""
    dof = table["n_dof"].to_numpy(np.float64).copy()
    prior = (width**2) * (table["ebv_prior"].to_numpy(np.float64) ** 2 + table["sigma_ebv_prior"].to_numpy() ** 2)
    k = 2
    while f"sigma_ebv_fit_{k}" in table:
        dof -= 1.0 - table[f"sigma_ebv_fit_{k}"].to_numpy(np.float64) ** 2 / prior
        k += 1
    return dof


def truth_rv_derivative(table: pd.DataFrame, truth: pd.DataFrame, theta: np.ndarray, window=(300.0, 0.5, 0.3)):
    """∂R/∂R_V of the simulated truth near θ (13,): each band's true reddening vector regressed on R_V, Teff,
    log g and [Fe/H] over the test stars within ``window`` of θ (None when the truth has no R_V or too few stars
    are near θ)."""
    if "true_rv" not in truth:
        return None
    t = truth.reindex(table["source_id"].to_numpy())
    lab = t[["true_teff", "true_logg", "true_feh"]].to_numpy(np.float64)
    near = np.all(np.abs(lab - theta) < np.asarray(window), axis=1) & t["true_rv"].notna().to_numpy()
    if near.sum() < 50:
        return None
    x = np.column_stack([np.ones(near.sum()), t["true_rv"].to_numpy()[near], lab[near] - theta])
    y = t[[f"true_r_{b}" for b in BAND_NAMES]].to_numpy(np.float64)[near]
    return np.linalg.lstsq(x, y, rcond=None)[0][1]


def oracle_spearman(table: pd.DataFrame, truth: pd.DataFrame, e_min: float = 0.3, seed: int = 0) -> dict | None:
    """The Spearman ρ between E_2/E_1 and the true R_V that an oracle reaches on the same stars: the ceiling a
    two-component linear model (Eq. 20) can attain on this sky, with which the model's ρ is compared (a ceiling
    in practice, not a strict bound: the oracle has no dust-map prior on E_1, the model has no true θ).

    The oracle knows each star's true θ, its true extinction in every band (``true_ext_*``, which bends away
    from E·R as Appendix B describes), the truth's reddening law at the median R_V (R_0(θ)) and the truth's
    ∂R/∂R_V less its part along R_0; it fits A = E_1 R_0 + E_2 ∂R/∂R_V⊥ by least squares over the bands the star
    has, weighted by their errors. Returned for four cases: the true extinction or its linear part E·R
    (``true_r_*``), each noise-free and with the star's photometric noise drawn once (``seed``). The law is a
    regression of ``true_r_*`` on R_V and a cubic in θ over the reddened usable stars (``None`` when the truth
    lacks these columns or fewer than 50 stars are selected)."""
    from scipy.stats import spearmanr

    need = ["true_rv", "true_ebv", "true_teff", "true_logg", "true_feh"]
    need += [f"true_{q}_{b}" for q in ("r", "ext") for b in BAND_NAMES]
    if any(c not in truth for c in need):
        return None
    t = truth.reindex(table["source_id"].to_numpy())
    e, rv = t["true_ebv"].to_numpy(np.float64), t["true_rv"].to_numpy(np.float64)
    usable = table["usable"].to_numpy(bool) & np.isfinite(rv) & np.isfinite(e)
    sel = usable & (e > e_min)
    if sel.sum() < 50:
        return None
    x = (t["true_teff"].to_numpy(np.float64) - 5000.0) / 1000.0
    g, f = t["true_logg"].to_numpy(np.float64) - 3.0, t["true_feh"].to_numpy(np.float64)
    rv0 = float(np.median(rv[usable]))
    design = np.column_stack([np.ones_like(x), rv - rv0, x, x**2, x**3, g, g**2, f, x * g])
    r = t[[f"true_r_{b}" for b in BAND_NAMES]].to_numpy(np.float64)
    fit = usable & (e > 0.05)
    coef = np.linalg.lstsq(design[fit], r[fit], rcond=None)[0]
    design[:, 1] = 0.0
    r0 = (design @ coef)[sel]
    d = np.broadcast_to(coef[1], r0.shape)
    d_perp = d - (np.sum(d * r0, axis=1) / np.sum(r0 * r0, axis=1))[:, None] * r0
    basis = np.stack([r0, d_perp], axis=-1)  # (n, bands, 2)
    err = table[[f"err_{b}" for b in BAND_NAMES]].to_numpy(np.float64)[sel]
    has = np.isfinite(err)
    err = np.where(has, err, 1.0)
    weighted = basis.transpose(0, 2, 1) * np.where(has, err**-2, 0.0)[:, None, :]
    normal = weighted @ basis
    noise = np.random.default_rng(seed).normal(size=err.shape) * err
    out: dict[str, Any] = {
        "selection": f"usable test stars with true E > {e_min}, the bands each has, weighted by their errors",
        "n": int(sel.sum()),
        "reference_rv": rv0,
    }
    for name, ext in (("true_extinction", t[[f"true_ext_{b}" for b in BAND_NAMES]].to_numpy()), ("linear", None)):
        a = e[:, None] * r if ext is None else np.asarray(ext, np.float64)
        for suffix, n in (("noise_free", 0.0), ("with_noise", 1.0)):
            obs = np.where(has, a[sel] + n * noise, 0.0)
            coeffs = np.linalg.solve(normal, weighted @ obs[:, :, None])[:, :, 0]
            out[f"{name}_{suffix}"] = float(abs(spearmanr(coeffs[:, 1] / coeffs[:, 0], rv[sel]).statistic))
    return out


def e2_ratio(table: pd.DataFrame) -> np.ndarray:
    """E_2/E_1 of every star of a K = 2 evaluation table (inf or NaN where E′ = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return table["ebv_fit_2"].to_numpy(np.float64) / table["ebv_fit"].to_numpy(np.float64)


def median_scatter(x: np.ndarray) -> tuple[float, float]:
    """(median, 1.4826 MAD) of ``x``; NaN for none."""
    if not len(x):
        return float("nan"), float("nan")
    med = float(np.median(x))
    return med, float(1.4826 * np.median(np.abs(x - med)))


def components_stats(model, table: pd.DataFrame, truth: pd.DataFrame | None, width: float, e_min: float = 0.3):
    """What a K > 1 model found: its components at the median θ, E_2/E_1 of the reddened test stars, χ² with the
    effective degrees of freedom, and on a simulated sky with varying R_V the comparison with the truth."""
    from scipy.stats import spearmanr

    theta = np.median(table[["teff", "logg", "feh"]].to_numpy(np.float64), axis=0)
    comps = model.reddening_components(theta, outside="ignore")[0]
    ok = table["usable"].to_numpy(bool) & np.isfinite(table["chi2_dof"].to_numpy(np.float64))
    chi2 = table["chi2_dof"].to_numpy(np.float64) * table["n_dof"].to_numpy(np.float64)
    c_eff = chi2[ok] / effective_dof(table, width)[ok]
    hot = ok & (table["ebv_fit"].to_numpy(np.float64) > e_min)
    ratio = e2_ratio(table)  # E′ = 0 gives no ratio; those stars are not selected
    med, scatter = median_scatter(ratio[hot])
    out: dict[str, Any] = {
        "components": int(model.components),
        "median_theta": theta.tolist(),
        "R_at_median_theta": [dict(zip(BAND_NAMES, c.tolist(), strict=True)) for c in comps],
        "e2_over_e1": {
            "selection": f"usable test stars with E′ > {e_min}",
            "n": int(hot.sum()),
            "median": med,
            "scatter": scatter,
        },
        "chi2_effective_dof": {
            "definition": "χ² / (observed components - 1 - Σ_k≥2 (1 - σ²_post(E_k)/σ²_prior(E_k))): E_k's share of a "
            "degree of freedom counted, so that K = 1 and K > 1 compare like for like (for K = 1 the paper's)",
            "mean_lt10": float(np.mean(c_eff[c_eff < 10])),
            "fraction_ge5": float(np.mean(c_eff >= 5)),
        },
    }
    if truth is not None and "true_rv" in truth:
        t = truth.reindex(table["source_id"].to_numpy())
        sel = ok & (t["true_ebv"].to_numpy(np.float64) > e_min)
        rho = spearmanr(ratio[sel], t["true_rv"].to_numpy(np.float64)[sel]).statistic
        d = truth_rv_derivative(table, truth, theta)
        n = N_R_JUDGED
        block: dict[str, Any] = {"selection": f"usable test stars with true E > {e_min}", "n": int(sel.sum())}
        block["spearman_e2_over_e1_true_rv"] = float(abs(rho))
        if d is not None:
            d_perp = without(d[:n], comps[0][:n])
            block["dR_dRV_at_median_theta"] = dict(zip(BAND_NAMES, d.tolist(), strict=True))
            block["cos_R2_dR_dRV"] = cosine(comps[1][:n], d[:n])
            block["cos_R2_dR_dRV_orthogonal_to_R1"] = cosine(comps[1][:n], d_perp)
            block["cos_dR_dRV_R1"] = cosine(d[:n], comps[0][:n])
            block["bands"] = f"{BAND_NAMES[0]} … {BAND_NAMES[n - 1]}"
        oracle = oracle_spearman(table, truth, e_min)
        if oracle is not None:
            block["oracle_spearman"] = oracle
        out["truth"] = block
    return out
