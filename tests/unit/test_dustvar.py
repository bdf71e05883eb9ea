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
