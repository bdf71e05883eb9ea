"""K reddening components per star (paper Eq. 20): the closed-form update, the orthonormalised components, and
training recovering a second extinction law from synthetic stars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_model import _stars

from ddstars.model import StellarModel, load_model, network, train
from ddstars.model import covariance as cv


def test_the_k_component_update_is_the_gaussian_posterior():
    rng = np.random.default_rng(0)
    n = 500
    u = rng.normal(0, 30, (n, 2, 13))
    e_true = np.column_stack([rng.uniform(0.2, 1.0, n), rng.normal(0, 0.05, n)])
    v = np.einsum("nk,nkb->nb", e_true, u) + rng.normal(0, 1, (n, 13))
    e0, var0 = e_true[:, 0] + rng.normal(0, 0.05, n), np.full(n, 0.05**2)
    e, cov = cv.reddening_update_components(u, v, e0, var0, width=10.0, floor=0.0, relative=0.0)
    # the same posterior by brute force: normal equations of the stacked system [u; prior rows]
    for i in range(0, n, 97):
        a = np.vstack([u[i].T, np.diag([1 / 0.05, 1 / (10.0 * np.hypot(e0[i], 0.05))])])
        b = np.r_[v[i], e0[i] / 0.05, 0.0]
        want, *_ = np.linalg.lstsq(a, b, rcond=None)
        np.testing.assert_allclose(e[i], want, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(cov[i], np.linalg.inv(a.T @ a), rtol=1e-8)
    pulls = (e - e_true) / np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    assert 0.8 < pulls.std(axis=0).min() and pulls.std(axis=0).max() < 1.2  # the errors are the errors


def test_a_component_without_information_leaves_the_one_component_update():
    rng = np.random.default_rng(1)
    n = 200
    u1 = rng.normal(0, 30, (n, 13))
    v = rng.normal(0, 5, (n, 13))
    e0, var0 = rng.uniform(0, 1, n), np.full(n, 0.1**2)
    one, var_one = cv.reddening_update_whitened(u1, v, e0, var0)
    u = np.stack([u1, np.zeros_like(u1)], axis=1)
    e, cov = cv.reddening_update_components(u, v, e0, var0, width=0.1)
    np.testing.assert_allclose(e[:, 0], one, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cov[:, 0, 0], var_one, rtol=1e-10)
    np.testing.assert_allclose(e[:, 1], 0.0, atol=1e-12)  # its prior mean
    np.testing.assert_allclose(cov[:, 1, 1], (0.1**2) * (e0**2 + var0), rtol=1e-10)  # and its prior width


def test_components_are_orthogonal_to_r_with_its_norm():
    rng = np.random.default_rng(2)
    r = np.exp(rng.normal(0, 1, (50, 13)))
    q2, q3 = rng.normal(size=(2, 50, 13))
    c = network.orthonormalise(r, [q2, q3])
    assert c.shape == (50, 3, 13)
    np.testing.assert_array_equal(c[:, 0], r)
    gram = np.einsum("nkb,nlb->nkl", c, c)
    norm2 = (r * r).sum(axis=1)
    np.testing.assert_allclose(gram, norm2[:, None, None] * np.eye(3)[None], atol=1e-9 * norm2.max())
    # a raw output moved along R gives the same component: the rotation between components is fixed
    np.testing.assert_allclose(network.orthonormalise(r, [q2 + 3.0 * r])[:, 1], c[:, 1], atol=1e-10)


@pytest.fixture(scope="module")
def two_laws():
    """Synthetic stars reddened by R plus a second, orthogonal law of their own strength δ ~ N(0, 0.1); a K = 2
    model trained on them."""
    rng = np.random.default_rng(5)
    stars = _stars(4000, seed=5)
    r1 = np.linspace(3.0, 0.1, 13)
    q = rng.normal(size=13)
    r2 = network.orthonormalise(r1[None], [q[None]])[0, 1]
    e = np.clip(stars.ebv_prior, 0, None)  # close to the stars' true E (prior = truth + 0.03 noise)
    delta = rng.normal(0, 0.1, len(e))
    stars = type(stars)(**{**stars.__dict__, "mag": stars.mag + (e * delta)[:, None] * r2[None]})
    opts = {
        "n_rounds": 8,
        "min_steps_per_round": 4000,
        "extinction_components": 2,
        "extinction_width": 0.5,
        "chi2_cut": {"start": 1e6, "end": 1e5, "rounds": 2},
    }
    return stars, r2, delta, train.train(stars, opts), opts


def test_training_recovers_a_second_law_and_each_star_s_share(two_laws):
    stars, r2, delta, res, opts = two_laws
    model = StellarModel(res.model, res.norm)
    assert model.components == 2
    comps = model.reddening_components(stars.theta[:200])
    cos = np.abs(comps[:, 1] @ r2) / (np.linalg.norm(comps[:, 1], axis=1) * np.linalg.norm(r2))
    assert np.median(cos) > 0.95
    state = train.final_state(res.model, res.norm, stars, opts)
    red = np.clip(stars.ebv_prior, 0, None) > 0.25
    ratio = state.e_k[red, 0] / state.e[red]
    sign = np.sign(np.median(comps[:, 1] @ r2))
    rho = pd.Series(sign * ratio).corr(pd.Series(delta[red]), method="spearman")
    assert rho > 0.8, rho


def test_a_two_component_model_saves_and_loads(two_laws, tmp_path):
    stars, *_, res, _ = two_laws
    m = StellarModel(res.model, res.norm)
    m.save(tmp_path / "k2")
    back = load_model(tmp_path / "k2")
    assert back.components == 2
    theta = stars.theta[:5]
    np.testing.assert_allclose(back.reddening_components(theta), m.reddening_components(theta), rtol=1e-6)


def test_the_validation_table_and_summary_carry_the_components(two_laws):
    from ddstars.validation import dustvar
    from ddstars.validation.evaluate import evaluate

    stars, r2, delta, res, opts = two_laws
    model = StellarModel(res.model, res.norm)
    test = stars.subset(stars.split == "test")
    tb = evaluate(model, test, opts)
    assert {"ebv_fit_2", "sigma_ebv_fit_2"} <= set(tb.columns)
    # the residuals include E_2 R_2: with the second law fitted the χ² is no more than the noise's (below 1: the
    # labels' covariance J Cθ Jᵀ is in C_pred too)
    assert 0.4 < np.nanmedian(tb["chi2_dof"]) < 1.1
    k1 = evaluate(StellarModel.from_weights(network.Weights.of(res.model).__class__(
        *[getattr(network.Weights.of(res.model), f) for f in ("w1", "b1", "w2", "b2", "w3", "b3", "wr", "br")]),
        res.norm), test, opts)  # fmt: skip
    assert np.nanmedian(k1["chi2_dof"]) > 1.5 * np.nanmedian(tb["chi2_dof"])  # R alone leaves the second law
    s = dustvar.components_stats(model, tb, None, opts["extinction_width"])
    assert s["components"] == 2 and s["e2_over_e1"]["n"] > 50
    # the effective degrees of freedom: E_2 decided by the photometry takes about one
    dof = dustvar.effective_dof(tb, opts["extinction_width"])
    assert np.all(dof <= tb["n_dof"] + 1e-9) and np.median(tb["n_dof"] - dof) > 0.5
