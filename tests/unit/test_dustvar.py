"""The residual analysis for variable dust (ddstars.validation.dustvar) on residuals with a known law variation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ddstars.validation import dustvar


def _table(rng, n, u, sigma_law, noise=0.02):
    """Test residuals of n stars: E′ uniform in 0-1, residual colours E′ δ u + noise, δ ~ N(0, sigma_law)."""
    e = rng.uniform(0, 1.0, n)
    delta = rng.normal(0, sigma_law, n)
    res = e[:, None] * delta[:, None] * u[None] + rng.normal(0, noise, (n, len(u)))
    df = pd.DataFrame(res, columns=list(dustvar.COLUMNS))
    return df.assign(ebv_fit=e, usable=True, source_id=np.arange(n)), delta


def test_a_varying_law_is_found_in_its_direction_with_its_scatter():
    rng = np.random.default_rng(2)
    u = dustvar.unit(rng.normal(size=len(dustvar.BANDS)))
    tb, delta = _table(rng, 20_000, u, 0.1)
    r = dustvar.residual_direction(tb)
    assert r["status"] == "ok"
    assert dustvar.cosine(r["direction"], u) > 0.99
    assert abs(r["scatter"] - 0.1) < 0.01  # the law's scatter along u, per mag of E
    assert r["ratio"] > 10
    hot = tb["ebv_fit"].to_numpy() > 0.3
    assert np.corrcoef(r["projection"], delta[hot])[0, 1] ** 2 > 0.8  # each star's own variation


def test_a_constant_law_gives_no_direction_above_the_noise():
    rng = np.random.default_rng(3)
    u = dustvar.unit(rng.normal(size=len(dustvar.BANDS)))
    tb, _ = _table(rng, 20_000, u, 0.0)
    r = dustvar.residual_direction(tb)
    assert r["ratio"] < 1.5 and r["scatter"] < 0.03


def test_too_few_reddened_stars_is_said():
    rng = np.random.default_rng(4)
    tb, _ = _table(rng, 40, np.ones(len(dustvar.BANDS)) / 3.5, 0.1)
    assert dustvar.residual_direction(tb)["status"] == "too_few"


def _sky(rng, n, bend=0.0, err=0.02):
    """A truth with a θ-dependent law R(θ, R_V) = R0(Teff) + (R_V - 3.1) d and extinction E R - bend (E R)²
    in every band; the test table gives every star all bands with error ``err``."""
    from ddstars.bands import BAND_NAMES

    nb = len(BAND_NAMES)
    teff = rng.uniform(4000, 7000, n)
    rv = rng.normal(3.1, 0.3, n)
    e = rng.uniform(0.0, 2.0, n)
    lam = np.linspace(0.5, 4.0, nb)
    r0 = 3.0 / lam[None] * (1 + 0.05 * (teff[:, None] - 5500) / 1000)
    d = 0.3 * np.exp(-lam)  # not parallel to R0
    r = r0 + (rv - 3.1)[:, None] * d[None]
    ext = e[:, None] * r - bend * (e[:, None] * r) ** 2
    truth = pd.DataFrame({"true_rv": rv, "true_ebv": e, "true_teff": teff, "true_logg": 4.0, "true_feh": 0.0})
    for i, b in enumerate(BAND_NAMES):
        truth[f"true_r_{b}"], truth[f"true_ext_{b}"] = r[:, i], ext[:, i]
    table = pd.DataFrame({"source_id": np.arange(n), "usable": True})
    for b in BAND_NAMES:
        table[f"err_{b}"] = err
    return table, truth.set_index(pd.Index(np.arange(n)))


def test_the_oracle_reaches_the_truth_without_noise_and_loses_it_to_noise_and_curvature():
    rng = np.random.default_rng(5)
    table, truth = _sky(rng, 4000)
    o = dustvar.oracle_spearman(table, truth)
    assert o["n"] == int((truth["true_ebv"] > 0.3).sum())
    assert o["linear_noise_free"] > 0.999 and o["true_extinction_noise_free"] > 0.999  # nothing bends
    assert o["linear_with_noise"] < 0.99  # 0.02 mag noise on a 0.3 × 0.3 mag signal per mag of E
    bent = dustvar.oracle_spearman(*_sky(np.random.default_rng(5), 4000, bend=0.05))
    assert bent["linear_noise_free"] > 0.999
    assert bent["true_extinction_noise_free"] < 0.95  # the curvature that a linear model cannot follow
    quiet = dustvar.oracle_spearman(*_sky(np.random.default_rng(5), 4000, err=0.001))
    assert quiet["linear_with_noise"] > o["linear_with_noise"]


def test_the_oracle_needs_the_truth_columns():
    rng = np.random.default_rng(6)
    table, truth = _sky(rng, 200)
    assert dustvar.oracle_spearman(table, truth.drop(columns="true_ext_gaia_g")) is None
    assert dustvar.oracle_spearman(table, truth, e_min=1.99) is None  # too few stars
