"""A slow, star-by-star reference of the paper's χ²/dof (METHOD.md §8, the definition [C] uses), independent
of the project's vectorised evaluation (ddstars.validation.evaluate):

* the network is evaluated by Keras itself, rebuilt in float64, and its Jacobian with respect to θ in
  physical units (K, dex, dex) comes from ``tf.GradientTape`` (the project uses its own NumPy forward pass
  and analytic Jacobians in normalised units);
* each star's covariance is built in magnitude space and mapped to colour space with an explicit B matrix,
  restricted to the observed components, and inverted with ``numpy.linalg.solve``;
* E′ from Eq. 8 with the original dust-map prior, clipped to [0, e_max]; χ² = Δᵀ C_pred⁻¹ Δ / (n_obs − 1),
  Δ = c_obs − B M(θ) − E′ B R(θ), C_pred = B diag(σ_m²) Bᵀ + σ_μ² e₀e₀ᵀ + B J_M Cθ J_Mᵀ Bᵀ; no inflation.

Used by tests/integration/test_validation_truth.py; ``python tests/chi2_reference.py`` checks the default run's
``results/`` (summary.json against the reference over every test star).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

LN10_5 = 5.0 / np.log(10.0)


def _float64_model(model):
    """The StellarModel's Keras network rebuilt in float64 with the same weights."""
    import keras

    def to64(node):  # every layer's dtype policy in the saved config names float32
        if isinstance(node, dict):
            return {k: to64(v) for k, v in node.items()}
        if isinstance(node, list):
            return [to64(v) for v in node]
        return "float64" if node == "float32" else node

    km = keras.Model.from_config(to64(model.keras_model.get_config()))
    km.set_weights([np.asarray(w, np.float64) for w in model.keras_model.get_weights()])
    if any(w.dtype != "float64" for w in km.weights):
        raise AssertionError("the reference network is not float64")
    return km


def network_with_jacobians(model, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BM(θ) (n, 13, the network's colour-space output), R(θ) (n, 13) and dBM/dθ (n, 13, 3) in physical θ."""
    import tensorflow as tf

    km = _float64_model(model)
    med = tf.constant(model.norm.median, tf.float64)
    std = tf.constant(model.norm.std, tf.float64)
    t = tf.constant(theta, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(t)
        bm, r = km((t - med) / std, training=False)
    jac = tape.batch_jacobian(bm, t)
    return bm.numpy(), r.numpy(), jac.numpy()


def chi2_one(
    mag: np.ndarray,
    err: np.ndarray,
    observed: np.ndarray,
    parallax: float,
    parallax_error: float,
    parallax_usable: bool,
    cov_theta: np.ndarray,
    bm: np.ndarray,
    r: np.ndarray,
    j_bm: np.ndarray,
    e0: float,
    sigma_e0: float,
    e_max: float = 10.0,
) -> tuple[float, float]:
    """(E′, χ²/dof) of one star in the paper's definition; NaN χ² when fewer than two components."""
    k = len(mag)
    b = np.eye(k)
    b[1:, 0] -= 1.0  # c_0 = m_G (- μ), c_i = m_i - m_G
    mu = 10.0 - 5.0 * np.log10(parallax) if parallax_usable and parallax > 0 else np.nan
    comp = observed.copy()
    comp[0] = observed[0] and np.isfinite(mu)
    comp[1:] &= observed[0]
    if comp.sum() < 2:
        return np.nan, np.nan
    m = np.where(observed, mag, 0.0)
    c_obs = b @ m
    c_obs[0] -= mu if comp[0] else 0.0
    cov_m = np.diag(np.where(observed, err, 0.0) ** 2)
    c = b @ cov_m @ b.T
    if comp[0]:
        c[0, 0] += (LN10_5 * parallax_error / parallax) ** 2
    c += j_bm @ cov_theta @ j_bm.T  # the network's output is already B M
    br = b @ r
    idx = np.flatnonzero(comp)
    c = c[np.ix_(idx, idx)]
    d0 = (c_obs - bm)[idx]
    br = br[idx]
    ci_br = np.linalg.solve(c, br)
    ci_d0 = np.linalg.solve(c, d0)
    prec = br @ ci_br + 1.0 / sigma_e0**2
    e = float(np.clip((e0 / sigma_e0**2 + br @ ci_d0) / prec, 0.0, e_max))
    d = d0 - e * br
    return e, float(d @ np.linalg.solve(c, d) / (len(idx) - 1))


def reference(model, stars, e_max: float = 10.0) -> pd.DataFrame:
    """E′ and χ²/dof of every star of ``stars`` (ddstars.model.data.Stars), one star at a time."""
    bm, r, jac = network_with_jacobians(model, stars.theta)
    out = np.full((len(stars), 2), np.nan)
    for i in range(len(stars)):  # deliberately one star at a time: this is the slow reference
        out[i] = chi2_one(
            stars.mag[i],
            stars.err[i],
            stars.observed[i],
            stars.parallax[i],
            stars.parallax_error[i],
            bool(stars.parallax_usable[i]),
            stars.cov_theta[i],
            bm[i],
            r[i],
            jac[i],
            stars.ebv_prior[i],
            stars.sigma_ebv_prior[i],
            e_max,
        )
    return pd.DataFrame({"source_id": stars.source_id, "ebv_fit": out[:, 0], "chi2_dof": out[:, 1]})


def headline(chi2: np.ndarray) -> dict[str, float]:
    """The summary's χ² numbers from per-star values (computed here, not with the project's helper)."""
    c = chi2[np.isfinite(chi2)]
    return {
        "n": len(c),
        "mean_chi2_dof": float(c.mean()),
        "mean_chi2_dof_lt5": float(c[c < 5].mean()),
        "mean_chi2_dof_lt10": float(c[c < 10].mean()),
        "fraction_chi2_dof_ge5": float((c >= 5).mean()),
        "median_chi2_dof": float(np.median(c)),
    }


def main(results: str = "results", catalog: str | None = None) -> int:
    """Compare a run's summary.json with the reference over all its test stars (``catalog``: the run's
    training catalog, by default ``<results>/catalog/stars``)."""
    import json

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from ddstars.model import load_model
    from ddstars.model.data import read_stars

    res = Path(results)
    summary = json.loads((res / "validation" / "summary.json").read_text())["chi2"]
    catalog = catalog or res / "catalog" / "stars"
    ref = reference(load_model(res / "model"), read_stars(catalog, split="test"))
    want = headline(ref["chi2_dof"].to_numpy())
    worst = 0.0
    for key, value in want.items():
        diff = abs(summary[key] - value)
        worst = max(worst, diff)
        print(f"{key}: summary {summary[key]!r}, reference {value!r}, |difference| {diff:.2e}")
    print(f"largest difference {worst:.2e} ({'within' if worst <= 1e-6 else 'OUTSIDE'} 1e-6)")
    return 0 if worst <= 1e-6 else 1


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
