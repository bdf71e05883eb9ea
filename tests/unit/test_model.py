"""The model's algebra against slow per-star references, the network's Jacobian against finite differences,
masking, the reddening update, saving and loading, bad input, and repeatability."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ddstars.bands import BAND_NAMES, N_BANDS
from ddstars.errors import ConfigError, DataError
from ddstars.model import covariance as cv
from ddstars.model import network, train
from ddstars.model.data import Stars

INFL = (1e-4, 1e-3)


@pytest.fixture(scope="module")
def weights():
    rng = np.random.default_rng(1)
    shapes = [(3, 32), (32,), (32, 32), (32,), (32, 13), (13,), (3, 13), (13,)]
    arrays = [rng.normal(0, 0.6, s) for s in shapes]
    arrays[7] = np.log(np.linspace(3.0, 0.1, 13))  # a plausible R
    return network.Weights(*arrays)


def _star_inputs(rng, n):
    err = rng.uniform(0.01, 0.08, (n, N_BANDS))
    observed = rng.random((n, N_BANDS)) < 0.75
    observed[:, 0] = True
    err = np.where(observed, err, np.nan)
    plx = rng.uniform(0.5, 3.0, n)
    plx_err = plx / rng.uniform(3.0, 30.0, n)
    usable = plx / plx_err >= 5
    a = rng.normal(size=(n, 3, 3)) * 0.05
    cov_x = a @ np.swapaxes(a, 1, 2) + np.eye(3) * 0.01
    return err, observed, plx, plx_err, usable, cov_x


def _reference_precision(err, observed, plx, plx_err, usable, j_m, cov_x, r, var_e):
    """Eq. 4 for one star with explicit loops, in magnitude space, then the colour basis, then the
    inverse over the observed components only (with the same diagonal inflation)."""
    cm = np.zeros((13, 13))
    s_mu2 = (5 / np.log(10) * plx_err / plx) ** 2
    for i in range(13):
        for j in range(13):
            cm[i, j] += sum(j_m[i, k] * j_m[j, q] * cov_x[k, q] for k in range(3) for q in range(3))
            cm[i, j] += r[i] * r[j] * var_e
            cm[i, j] += s_mu2 if usable else 0.0
            if i == j and observed[i]:
                cm[i, j] += err[i] ** 2
    b = np.eye(13)
    b[1:, 0] = -1
    cc = b @ cm @ b.T
    obs = observed.copy()
    obs[0] = usable
    idx = np.flatnonzero(obs)
    sub = cc[np.ix_(idx, idx)].copy()
    sub[np.diag_indices(len(idx))] += INFL[0] + INFL[1] * np.diag(sub)
    p = np.zeros((13, 13))
    p[np.ix_(idx, idx)] = np.linalg.inv(sub)
    return p


def test_covariance_and_chi2_match_a_slow_reference(weights):
    rng = np.random.default_rng(2)
    n = 6
    err, observed, plx, plx_err, usable, cov_x = _star_inputs(rng, n)
    x = rng.normal(size=(n, 3))
    bm, r, j_bm, j_r = network.forward(weights, x, jacobian=True)
    e = rng.uniform(0, 1, n)
    var_e = rng.uniform(0.01, 0.05, n) ** 2
    # magnitude-space Jacobian of M + E R (BM is in colour space: M = B^-1 BM)
    binv = np.linalg.inv(cv.B)
    j_m = np.einsum("ab,nbi->nai", binv, j_bm) + e[:, None, None] * j_r
    obs_c = cv.observed_components(observed, usable)
    c = cv.base_covariance(err, np.where(usable, plx, np.nan), plx_err)
    j_c = np.einsum("ab,nbi->nai", cv.B, j_m)
    c += cv.jacobian_term(j_c, cov_x) + cv.reddening_term(r @ cv.B.T, var_e)
    w = cv.whitening(c, obs_c, INFL)
    delta = rng.normal(0, 0.1, (n, 13))
    for k in range(n):
        p = _reference_precision(err[k], observed[k], plx[k], plx_err[k], usable[k], j_m[k], cov_x[k], r[k], var_e[k])
        np.testing.assert_allclose(w[k].T @ w[k], p, rtol=1e-9, atol=1e-9)
        assert cv.chi2(w[k : k + 1], delta[k : k + 1])[0] == pytest.approx(delta[k] @ p @ delta[k], rel=1e-10)


def _masked_stars(n, seed):
    """Stars of :func:`_stars` with the errors, observed bands and parallaxes of :func:`_star_inputs`."""
    err, observed, plx, plx_err, usable, _ = _star_inputs(np.random.default_rng(seed), n)
    mag = np.where(observed, _stars(n=n, seed=seed).mag, np.nan)
    stars = _stars(
        n=n,
        seed=seed,
        err=err,
        observed=observed,
        parallax=plx,
        parallax_error=plx_err,
        parallax_usable=usable,
        mag=mag,
    )
    return stars, err, observed, plx, plx_err, usable


@pytest.mark.parametrize(("dtype", "tol"), [("float64", 1e-8), ("float32", 2e-4)])
def test_round_update_matches_the_slow_reference(weights, dtype, tol):
    """train.update (stars-last, chunked, in train.update_dtype) against Eqs. 4 and 8-9 star by star: E′ and
    σ²_E′ from the prior and C_pred, χ²/dof, and the whitening of the full covariance (WᵀW = C⁻¹)."""
    n = 40
    stars, err, observed, plx, plx_err, usable = _masked_stars(n, 5)
    norm = train.Normalisation.fit(stars.theta)
    p = train.prepare(stars, norm)
    o = train.options({"update_dtype": dtype})
    state = train.update(weights, p, stars, o, first=False, chunk=16)  # 3 chunks, the last one short
    assert state.factorised.all()
    other = "float64" if dtype == "float32" else "float32"  # the precision is really the one asked for
    assert not np.array_equal(state.e, train.update(weights, p, stars, train.options({"update_dtype": other}), False).e)
    bm, r, j_bm, j_r = network.forward(weights, p.x, jacobian=True)
    binv = np.linalg.inv(cv.B)
    br = r @ cv.B.T
    ru = o["reddening_update"]
    for k in range(n):
        j_m0 = binv @ j_bm[k]
        args = (err[k], observed[k], plx[k], plx_err[k], usable[k])
        p_pred = _reference_precision(*args, j_m0, p.cov_x[k], r[k], 0.0)
        delta = np.where(p.observed[k], p.y[k] - bm[k], 0.0)
        e0, var0 = stars.ebv_prior[k], stars.sigma_ebv_prior[k] ** 2
        prec = br[k] @ p_pred @ br[k] + 1 / var0
        e = min(max((e0 / var0 + br[k] @ p_pred @ delta) / prec, 0.0), ru["e_max"])
        var_e = min(max(1 / prec, ru["floor"] ** 2 + (ru["relative"] * e) ** 2), ru["var_max"])
        z = delta - e * br[k]
        chi2_dof = (z @ p_pred @ z) / (p.n_obs[k] - 1)
        p_full = _reference_precision(*args, j_m0 + e * j_r[k], p.cov_x[k], r[k], var_e)
        assert state.e[k] == pytest.approx(e, rel=tol, abs=tol)
        assert state.var_e[k] == pytest.approx(var_e, rel=tol)
        assert state.chi2_dof[k] == pytest.approx(chi2_dof, rel=tol)
        w = state.w[k].astype(np.float64)  # stored as float32 for the epochs, whatever the update's precision
        w_tol = max(tol, 1e-6)
        np.testing.assert_allclose(w.T @ w, p_full, rtol=w_tol, atol=w_tol * np.abs(p_full).max())


def test_update_precision_is_checked():
    with pytest.raises(ConfigError, match=r"train.update_dtype is 'float16'; expected 'float32' or 'float64'"):
        train.options({"update_dtype": "float16"})


def test_network_jacobian_matches_finite_differences(weights):
    x = np.random.default_rng(3).normal(size=(5, 3))
    _, _, j_bm, j_r = network.forward(weights, x, jacobian=True)
    h = 1e-6
    for i in range(3):
        dx = np.zeros(3)
        dx[i] = h
        bm_p, r_p = network.forward(weights, x + dx)
        bm_m, r_m = network.forward(weights, x - dx)
        np.testing.assert_allclose(j_bm[:, :, i], (bm_p - bm_m) / (2 * h), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(j_r[:, :, i], (r_p - r_m) / (2 * h), rtol=1e-6, atol=1e-8)


def test_forward_matches_the_keras_model():
    import keras

    model = network.build(seed=4)
    x = np.random.default_rng(4).normal(size=(7, 3)).astype(np.float32)
    bm_k, r_k = (keras.ops.convert_to_numpy(a) for a in model(x))
    bm, r = network.forward(network.Weights.of(model), x)
    np.testing.assert_allclose(bm, bm_k, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r, r_k, rtol=1e-5)
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) == 1665  # METHOD.md §3 (incl. R, BM)


def test_reddening_update_is_the_closed_form():
    rng = np.random.default_rng(5)
    n = 5
    a = rng.normal(size=(n, 13, 13)) * 0.05
    c = a @ np.swapaxes(a, 1, 2) + np.eye(13) * 0.02**2
    obs = rng.random((n, 13)) < 0.8
    obs[:, 0] = True
    w = cv.whitening(c, obs, (0.0, 0.0))
    br = rng.uniform(-2, 3, (n, 13))
    resid = rng.normal(0, 0.3, (n, 13))
    e0, var0 = rng.uniform(0, 0.5, n), rng.uniform(0.02, 0.2, n) ** 2
    e, var = cv.reddening_update(w, resid, br, e0, var0, floor=0.0, relative=0.0)
    for k in range(n):
        idx = np.flatnonzero(obs[k])
        p = np.linalg.inv(c[k][np.ix_(idx, idx)])
        rr, dd = br[k, idx], resid[k, idx]
        prec = rr @ p @ rr + 1 / var0[k]
        expect = (e0[k] / var0[k] + rr @ p @ dd) / prec
        assert e[k] == pytest.approx(max(expect, 0.0), rel=1e-9, abs=1e-12)
        assert var[k] == pytest.approx(1 / prec, rel=1e-9)
    # clipping at zero and the variance floor
    e2, var2 = cv.reddening_update(w, -10 * np.abs(br) * np.sign(br), br, e0 * 0, var0)
    assert (e2 == 0).all() and np.all(var2 >= 0.02**2)


def test_unobserved_bands_are_masked_not_filled():
    rng = np.random.default_rng(6)
    a = rng.normal(size=(1, 13, 13)) * 0.05
    c = a @ np.swapaxes(a, 1, 2) + np.eye(13) * 0.03**2
    obs = np.ones((1, 13), dtype=bool)
    obs[0, [4, 11]] = False
    w = cv.whitening(c, obs, (0.0, 0.0))
    assert np.all(w[0][:, [4, 11]] == 0)
    d = rng.normal(size=(1, 13))
    d2 = d.copy()
    d2[0, [4, 11]] = [99.0, np.nan]  # whatever sits in a masked component does not count
    assert cv.chi2(w, d)[0] == pytest.approx(cv.chi2(w, d2)[0])
    keep = np.flatnonzero(obs[0])
    reduced = d[0, keep] @ np.linalg.inv(c[0][np.ix_(keep, keep)]) @ d[0, keep]
    assert cv.chi2(w, d)[0] == pytest.approx(reduced, rel=1e-10)


def test_non_positive_definite_star_gets_the_fallback_inflation():
    c = np.tile(np.eye(13) * 0.01, (3, 1, 1))
    c[1] = np.ones((13, 13)) - 0.005 * np.eye(13)  # slightly indefinite: fixed by the fallback inflation
    c[2] = np.eye(13) * 1e-4
    c[2, 0, 1] = c[2, 1, 0] = 1.0  # hopeless
    w = cv.whitening(c, np.ones((3, 13), dtype=bool))
    assert np.isfinite(w[:2]).all() and not np.isfinite(w[2]).all()
    fixed = c[1] + np.diag(0.02 + 0.02 * np.diag(c[1]))
    np.testing.assert_allclose(w[1].T @ w[1], np.linalg.inv(fixed), rtol=1e-8)


def test_chi2_thresholds_follow_the_paper():
    taus = train.chi2_thresholds(20)
    assert taus[0] == np.inf and taus[1] == 100 and taus[14] == pytest.approx(5.0) and taus[19] == 5.0
    np.testing.assert_allclose(
        taus[2:14], [79.4, 63.1, 50.1, 39.8, 31.6, 25.1, 19.9, 15.8, 12.6, 9.98, 7.93, 6.30], rtol=3e-3
    )


def _stars(n=3000, seed=0, **over):
    """A small synthetic training set drawn from a known linear 'true' model."""
    rng = np.random.default_rng(seed)
    theta = np.column_stack([rng.uniform(4500, 6500, n), rng.uniform(2.0, 4.8, n), rng.uniform(-1.0, 0.3, n)])
    x = (theta - theta.mean(0)) / theta.std(0)
    m_abs = 4.0 + x @ rng.normal(0, 0.5, (3, 13)) + np.linspace(0, -3, 13)
    r_true = np.linspace(3.0, 0.1, 13)
    e = rng.uniform(0, 0.5, n)
    plx = rng.uniform(0.5, 5.0, n)
    mu = 10 - 5 * np.log10(plx)
    err = np.full((n, 13), 0.02)
    mag = m_abs + mu[:, None] + e[:, None] * r_true + rng.normal(0, 0.02, (n, 13))
    split = np.array(["train", "validation", "test"])[rng.choice(3, n, p=[0.7, 0.2, 0.1])]
    kw = dict(
        source_id=np.arange(n, dtype=np.int64),
        split=split,
        theta=theta,
        cov_theta=np.tile(np.diag([10.0**2, 0.05**2, 0.03**2]), (n, 1, 1)),
        mag=mag,
        err=err,
        observed=np.ones((n, 13), dtype=bool),
        parallax=plx,
        parallax_error=plx / 20,
        parallax_usable=np.ones(n, dtype=bool),
        ebv_prior=e + rng.normal(0, 0.03, n),
        sigma_ebv_prior=np.full(n, 0.05),
    )
    kw.update(over)
    return Stars(**kw)


# too short to fit: no cut, and exactly 3 epochs per round (no step floor)
FAST = {"n_rounds": 3, "epochs": 3, "min_steps_per_round": 0, "chi2_cut": {"start": 1e6, "end": 1e5, "rounds": 2}}
ONE = {"n_rounds": 1, "epochs": 1, "min_steps_per_round": 0}


def test_training_repeats_exactly_with_the_same_seed():
    stars = _stars()
    a = train.train(stars, FAST)
    b = train.train(stars, FAST)
    pd.testing.assert_frame_equal(a.history, b.history)
    np.testing.assert_array_equal(a.model.get_layer("R").get_weights()[1], b.model.get_layer("R").get_weights()[1])
    c = train.train(stars, {**FAST, "seed": 8})
    assert not np.array_equal(a.history["loss"].to_numpy(), c.history["loss"].to_numpy())


def test_bad_training_input_is_reported():
    stars = _stars(300)
    with pytest.raises(DataError, match="no star in the 'train' split"):
        train.train(stars.subset(stars.split != "train"), FAST)
    df = pd.DataFrame({"source_id": [1, 2], "split": ["train", "train"], "teff": [5000.0, np.nan]})
    with pytest.raises(DataError, match="round 0: no training star is left"):
        train.train(Stars(**{**stars.__dict__, "sigma_ebv_prior": np.full(len(stars), 0.5)}), FAST)
    with pytest.raises(DataError, match="missing column"):
        Stars.from_frame(df)
    # a star with only G and no usable parallax has no colour to fit: counted, not used, no crash
    obs = stars.observed.copy()
    obs[0] = False
    obs[0, 0] = True
    lonely = Stars(
        **{
            **stars.__dict__,
            "observed": obs,
            "mag": np.where(obs, stars.mag, np.nan),
            "err": np.where(obs, stars.err, np.nan),
            "parallax_usable": np.r_[False, stars.parallax_usable[1:]],
            "split": np.r_[["train"], stars.split[1:]],  # in the training set, whose stars are judged
        }
    )
    res = train.train(lonely, ONE)
    usable = res.usable["train"]
    assert not usable[0]  # the star with only G: the first of the training set
    assert usable[1:].all()  # every other star has 13 bands


def test_nan_labels_stop_with_the_source_id(small_catalog):
    from ddstars.catalog.build import read_catalog

    df = read_catalog(small_catalog["out"] / "stars")
    df.loc[3, "logg"] = np.nan
    with pytest.raises(DataError, match=rf"non-finite labels.*{df.loc[3, 'source_id']}"):
        Stars.from_frame(df)


def test_saved_model_loads_and_predicts_the_same(tmp_path):
    from ddstars.model import StellarModel, load_model

    stars = _stars(500)
    res = train.train(stars, ONE)
    m = StellarModel(res.model, res.norm)
    m.save(tmp_path / "model")
    back = load_model(tmp_path / "model")
    theta = pd.DataFrame({"teff": [5000.0, 6000.0], "logg": [4.5, 3.0], "feh": [0.0, -0.5]})
    np.testing.assert_allclose(back.predict_absolute_magnitudes(theta), m.predict_absolute_magnitudes(theta), rtol=1e-6)
    np.testing.assert_allclose(back.reddening_vector(theta.to_numpy()), m.reddening_vector(theta), rtol=1e-6)
    app = back.predict_apparent(theta, [10.0, 11.0], [0.1, 0.0])
    np.testing.assert_allclose(app[1], back.predict_absolute_magnitudes(theta)[1] + 11.0)
    np.testing.assert_allclose(
        app[0], back.predict_absolute_magnitudes(theta)[0] + 10.0 + 0.1 * back.reddening_vector(theta)[0]
    )
    assert back.as_frame(theta).shape == (2, 26) and list(back.as_frame(theta).columns)[0] == f"M_{BAND_NAMES[0]}"
    (tmp_path / "model" / "normalisation.json").unlink()
    with pytest.raises(DataError, match="normalisation is missing"):
        load_model(tmp_path / "model")
    with pytest.raises(FileNotFoundError, match="no trained model"):
        load_model(tmp_path / "nothing")
    json.dumps(res.norm.to_json())


def _untrained_model(theta):
    """A freshly built network with the normalisation and domain of the labels ``theta``."""
    from ddstars.model import network
    from ddstars.model.api import Domain, StellarModel

    norm = train.Normalisation.fit(theta)
    return StellarModel(network.build(seed=1), norm, Domain.fit(norm.x(theta), theta))


def test_model_knows_its_training_domain(tmp_path, caplog):
    import logging

    from ddstars.model import load_model

    rng = np.random.default_rng(4)
    n = 20000  # dwarfs and giants as the paper's catalog has them, nothing hotter than 7,000 K
    theta = np.column_stack([rng.uniform(4000, 7000, n), rng.uniform(1.0, 4.8, n), rng.normal(-0.2, 0.3, n)])
    m = _untrained_model(theta)
    probe = np.array(
        [
            [5500.0, 4.4, -0.1],  # in the middle of the training stars
            [20000.0, 4.0, 0.0],  # far hotter than any
            [-100.0, 4.0, 0.0],
            [5500.0, 9.0, 0.0],  # log g 9
            [5500.0, 4.4, 3.0],  # [Fe/H] +3
        ]
    )
    assert m.in_domain(probe).tolist() == [True, False, False, False, False]
    assert m.in_domain(theta[:2000]).mean() > 0.99  # the training stars themselves are inside
    with caplog.at_level(logging.WARNING, logger="ddstars.model.api"):
        mags = m.predict_absolute_magnitudes(probe)
    assert np.isfinite(mags).all() and "4 of 5 θ outside the model's training domain" in caplog.text
    assert "first rows [1, 2, 3, 4]" in caplog.text and "Teff 4000-7000 K" in caplog.text
    nan = m.predict_apparent(probe, 10.0, 0.1, outside="nan")
    assert np.isfinite(nan[0]).all() and np.isnan(nan[1:]).all()
    with pytest.raises(DataError, match="4 of 5 θ outside"):
        m.reddening_vector(probe, outside="error")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ddstars.model.api"):
        m.predict_absolute_magnitudes(probe, outside="ignore")
    assert caplog.text == ""
    with pytest.raises(DataError, match=r"NaN or infinite in 2 row\(s\), first \[1, 2\]"):
        m.predict_absolute_magnitudes([[5500.0, 4.4, 0.0], [np.nan, 4.0, 0.0], [5000.0, np.inf, 0.0]])
    # the domain travels with the saved model
    m.save(tmp_path / "model")
    back = load_model(tmp_path / "model", outside="error")
    assert back.in_domain(probe).tolist() == m.in_domain(probe).tolist()
    np.testing.assert_array_equal(back.domain.density(m.norm.x(theta[:100])), m.domain.density(m.norm.x(theta[:100])))
    with pytest.raises(DataError, match="outside"):
        back.predict_absolute_magnitudes(probe)


def test_corrupt_or_foreign_model_file_is_named(tmp_path):
    import keras

    from ddstars.model import load_model

    theta = np.column_stack([np.linspace(4000, 7000, 50), np.linspace(1, 5, 50), np.linspace(-1, 0.3, 50)])
    _untrained_model(theta).save(tmp_path / "model")
    model_file = tmp_path / "model" / "model.keras"
    good = model_file.read_bytes()
    model_file.write_bytes(good[: len(good) // 2])  # cut short, as an interrupted copy leaves it
    with pytest.raises(DataError, match=r"model\.keras: not a readable Keras model .*expected the model\.keras"):
        load_model(tmp_path / "model")
    model_file.write_text("not a model")
    with pytest.raises(DataError, match=r"model\.keras: not a readable Keras model"):
        load_model(tmp_path / "model")
    x = keras.Input(shape=(3,))
    keras.Model(x, keras.layers.Dense(2, name="other")(x)).save(model_file)
    with pytest.raises(DataError, match="without the stellar model's layers BM and R"):
        load_model(tmp_path / "model")
    (tmp_path / "model" / "normalisation.json").write_text('{"median": [1, 2]}')
    with pytest.raises(DataError, match=r"normalisation\.json: not a valid normalisation file \(KeyError"):
        load_model(tmp_path / "model")


def test_public_jacobians_are_derivatives_in_label_units(weights):
    """StellarModel.jacobians: dM/dθ and dR/dθ per unit of Teff, log g, [Fe/H] equal central differences of the
    public predictions (M in magnitude space, not the network's colour basis)."""
    from ddstars.model import StellarModel, likelihood

    norm = likelihood.Normalisation(np.array([5500.0, 4.0, -0.2]), np.array([900.0, 0.9, 0.4]))
    model = StellarModel.from_weights(weights, norm)
    theta = np.array([[5100.0, 4.4, -0.3], [6200.0, 3.9, 0.1], [4700.0, 2.5, -1.0]])
    m, r, dm, dr = model.jacobians(theta)
    np.testing.assert_array_equal(m, model.predict_absolute_magnitudes(theta))
    np.testing.assert_array_equal(r, model.reddening_vector(theta))
    for i, h in enumerate((0.5, 1e-4, 1e-4)):
        d = np.zeros(3)
        d[i] = h
        fd_m = (model.predict_absolute_magnitudes(theta + d) - model.predict_absolute_magnitudes(theta - d)) / (2 * h)
        fd_r = (model.reddening_vector(theta + d) - model.reddening_vector(theta - d)) / (2 * h)
        np.testing.assert_allclose(dm[:, :, i], fd_m, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(dr[:, :, i], fd_r, rtol=1e-5, atol=1e-8)


def test_public_evaluate_is_eq4_and_the_closed_form_update(weights):
    """StellarModel.evaluate on stars: the full covariance is Eq. 4 from the explicit per-star sums of
    _reference_precision's construction (magnitude space, then the colour basis), χ²/dof is ΔᵀC_pred⁻¹Δ / dof
    with E′, and E′ is the Gaussian product of the prior and the photometric estimate (Eqs. 8-9)."""
    from ddstars.model import StellarModel, likelihood

    n = 5
    stars, err, observed, plx, plx_err, usable = _masked_stars(n, 8)
    norm = likelihood.Normalisation.fit(_stars(n=200, seed=9).theta)
    model = StellarModel.from_weights(weights, norm)
    ev = model.evaluate(stars)  # the paper's definition: no diagonal inflation
    m, r, dm, dr = model.jacobians(stars.theta, outside="ignore")
    b = np.eye(13)
    b[1:, 0] = -1
    compared = 0
    for k in range(n):
        obs = observed[k].copy()
        mu = 10 - 5 * np.log10(plx[k])
        obs_c = obs.copy()
        obs_c[0] = usable[k]
        idx = np.flatnonzero(obs_c)
        y = b @ np.where(observed[k], stars.mag[k], 0.0)
        y[0] = stars.mag[k, 0] - mu
        s_mu2 = (5 / np.log(10) * plx_err[k] / plx[k]) ** 2 if usable[k] else 0.0
        c_phot = np.diag(np.where(observed[k], err[k], 0.0) ** 2) + s_mu2
        # C_pred: photometry + parallax + J_M Cθ J_Mᵀ (the Jacobian of M alone: E is being fitted)
        c_pred = b @ (c_phot + dm[k] @ stars.cov_theta[k] @ dm[k].T) @ b.T
        sub = np.linalg.inv(c_pred[np.ix_(idx, idx)])
        delta = (y - b @ m[k])[idx]
        br = (b @ r[k])[idx]
        var_phot = 1.0 / (br @ sub @ br)
        e_phot = var_phot * (br @ sub @ delta)
        var0, e0 = stars.sigma_ebv_prior[k] ** 2, stars.ebv_prior[k]
        var_e = 1.0 / (1.0 / var0 + 1.0 / var_phot)
        e = var_e * (e0 / var0 + e_phot / var_phot)
        if e > 0:  # the update is clipped at 0 (and floored in σ); compare where neither binds
            compared += 1
            assert ev.e[k] == pytest.approx(e, rel=1e-8)
            z = delta - e * br
            assert ev.chi2_dof[k] == pytest.approx(z @ sub @ z / (len(idx) - 1), rel=1e-8)
        j = dm[k] + ev.e[k] * dr[k]
        c_full = b @ (c_phot + j @ stars.cov_theta[k] @ j.T + ev.var_e[k] * np.outer(r[k], r[k])) @ b.T
        np.testing.assert_allclose(ev.c_full[k][np.ix_(idx, idx)], c_full[np.ix_(idx, idx)], rtol=1e-9, atol=1e-12)
    assert compared >= 3, compared
    np.testing.assert_array_equal(ev.n_obs, observed.sum(axis=1) - 1 + usable)


def test_jacobians_follow_the_domain_policy():
    """outside="nan": M, R and both derivatives are NaN at a θ outside the training domain, numbers inside."""
    theta = _stars(n=2000, seed=3).theta
    model = _untrained_model(theta)
    far = np.array([np.median(theta, axis=0), [20000.0, 4.0, 0.0]])
    for a in model.jacobians(far, outside="nan"):
        assert np.isfinite(a[0]).all() and np.isnan(a[1]).all()
