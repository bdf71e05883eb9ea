"""Photometric inference (Eq. 19) against stars drawn from its own generative model: θ from the grid's prior
(uniform within a node's cell), μ from its prior, E from the dust-map prior truncated at 0, photometry and
parallax with Gaussian noise. Then the posterior intervals must cover the truth at their nominal rates."""

from __future__ import annotations

import numpy as np
import pytest

from ddstars.bands import N_BANDS
from ddstars.errors import DataError
from ddstars.inference import Grid, Photometry, posterior
from ddstars.model import StellarModel, likelihood, network

RANGES = {"teff": (4000.0, 7000.0), "logg": (1.0, 5.0), "feh": (-1.5, 0.5)}
STEPS = (100.0, 0.1, 0.1)
MU_RANGE = (6.0, 14.0)


def make_grid() -> Grid:
    """A grid of a network with random weights, shaped like a stellar model (M_G about 4, R falling with λ)."""
    rng = np.random.default_rng(1)
    shapes = [(3, 32), (32,), (32, 32), (32,), (32, 13), (13,), (3, 13), (13,)]
    arrays = [rng.normal(0, 0.6, s) for s in shapes]
    arrays[5] = np.linspace(4.0, 2.0, 13) * np.r_[1.0, np.full(12, 0.1)]  # M_G about 4, colours of 0.1-0.4
    arrays[6] = rng.normal(0, 0.05, (3, 13))
    arrays[7] = np.log(np.linspace(3.0, 0.2, 13))  # a plausible R
    norm = likelihood.Normalisation(np.array([5500.0, 3.5, -0.4]), np.array([800.0, 1.0, 0.4]))
    model = StellarModel.from_weights(network.Weights(*arrays), norm)
    return Grid.from_model(model, RANGES, STEPS, theta_prior="flat")


@pytest.fixture(scope="module")
def grid():
    return make_grid()


def _draw_stars(grid: Grid, n: int, seed: int, sigma_mag=0.03, plx_snr=(2.0, 20.0), n_bands=N_BANDS):
    rng = np.random.default_rng(seed)
    k = rng.integers(0, len(grid), n)  # flat θ prior: every node alike
    theta = grid.theta[k] + (rng.random((n, 3)) - 0.5) * grid.step
    # M, R at the jittered θ are those of the node (the grid's model): the truth is what the grid can represent
    m_abs, r = grid.m_abs[k], grid.r[k]
    mu = rng.uniform(*MU_RANGE, n)
    e0 = rng.uniform(0.05, 0.6, n)
    s0 = 0.1 * e0 + 0.05
    e = np.empty(n)
    todo = np.ones(n, dtype=bool)
    while todo.any():  # the prior truncated at 0
        e[todo] = rng.normal(e0[todo], s0[todo])
        todo = e < 0
    err = np.full((n, N_BANDS), sigma_mag)
    mag = m_abs + mu[:, None] + e[:, None] * r + rng.normal(0, np.hypot(err, 0.02))
    if n_bands < N_BANDS:
        mag[:, n_bands:] = np.nan
    plx_true = 10 ** (2 - mu / 5)
    plx_err = plx_true / rng.uniform(*plx_snr, n)
    plx = plx_true + rng.normal(0, plx_err)
    ph = Photometry(mag, np.where(np.isfinite(mag), err, np.nan), plx, plx_err, e0, s0)
    truth = {"teff": theta[:, 0], "logg": theta[:, 1], "feh": theta[:, 2], "mu": mu, "ebv": e}
    return ph, truth


def test_intervals_cover_the_truth_at_their_nominal_rates(grid):
    ph, truth = _draw_stars(grid, 400, seed=2)
    table, samples = posterior(
        grid, ph, mag_floor=0.02, n_samples=200, distance_prior="flat", mu_range=MU_RANGE, seed=3
    )
    for k, t in truth.items():
        lo68, hi68 = np.percentile(samples[k], [16, 84], axis=1)
        lo95, hi95 = np.percentile(samples[k], [2.5, 97.5], axis=1)
        c68 = np.mean((t >= lo68) & (t <= hi68))
        c95 = np.mean((t >= lo95) & (t <= hi95))
        # 400 stars: binomial σ of 2.3 % (68 %) and 1.1 % (95 %); ±3.5σ
        assert 0.60 <= c68 <= 0.76, (k, c68)
        assert 0.91 <= c95 <= 0.99, (k, c95)
    assert np.all(table["n_bands"] == N_BANDS)
    assert np.all(np.isfinite(table["ln_evidence"]))


def test_summaries_are_the_samples_percentiles_and_chi2_is_plausible(grid):
    ph, truth = _draw_stars(grid, 60, seed=4)
    table, samples = posterior(
        grid, ph, mag_floor=0.02, n_samples=100, distance_prior="flat", mu_range=MU_RANGE, seed=5
    )
    np.testing.assert_allclose(table["mu_p50"], np.median(samples["mu"], axis=1))
    np.testing.assert_allclose(
        table["dist_kpc_p50"], np.median(10 ** (samples["mu"] / 5 + 1) / 1000, axis=1), rtol=1e-5
    )
    # the best χ² over the grid is at most that of the true node: 13 bands, 2 fitted (μ, E) plus θ
    assert np.median(table["chi2_best"]) < 13
    assert (table["p_value"] > 0.001).mean() > 0.9


def test_a_precise_parallax_and_many_bands_pin_distance_and_reddening(grid):
    ph, truth = _draw_stars(grid, 100, seed=6, sigma_mag=0.01, plx_snr=(20.0, 50.0))
    table, _ = posterior(grid, ph, mag_floor=0.02, n_samples=100, distance_prior="flat", mu_range=MU_RANGE, seed=7)
    d_true = 10 ** (truth["mu"] / 5 + 1) / 1000
    assert np.median(np.abs(table["ebv_p50"] - truth["ebv"])) < 0.03
    assert np.std(table["dist_kpc_p50"] / d_true - 1) < 0.05


def test_missing_bands_widen_the_posterior_and_bad_priors_are_named(grid):
    ph, _ = _draw_stars(grid, 40, seed=8, n_bands=5)
    table, _ = posterior(grid, ph, mag_floor=0.02, n_samples=50, distance_prior="flat", mu_range=MU_RANGE, seed=9)
    assert np.all(table["n_bands"] == 5)
    full, _ = posterior(
        grid, _draw_stars(grid, 40, seed=8)[0], n_samples=50, distance_prior="flat", mu_range=MU_RANGE, seed=9
    )
    assert np.median(table["ebv_p84"] - table["ebv_p16"]) > np.median(full["ebv_p84"] - full["ebv_p16"])
    bad = Photometry(ph.mag, ph.err, ph.parallax, ph.parallax_error, ph.ebv_prior, np.where(np.arange(40) == 3, 0, 1.0))
    with pytest.raises(DataError, match=r"sigma_ebv_prior must be > 0; not in 1 row\(s\), first \[3\]"):
        posterior(grid, bad)
    err = ph.err.copy()
    err[7, 2] = np.nan  # an observed band without an error
    no_err = Photometry(ph.mag, err, ph.parallax, ph.parallax_error, ph.ebv_prior, ph.sigma_ebv_prior)
    with pytest.raises(DataError, match=r"zero or missing error in 1 row\(s\), first \[7\]"):
        posterior(grid, no_err)
    posterior(grid, no_err.subset(slice(5, 10)), mag_floor=0.02, n_samples=10)  # a floor gives it one


def test_prior_tables_interpolate_linearly_and_hold_their_ends():
    from ddstars.inference.engine import Priors

    rng = np.random.default_rng(11)
    mu = np.linspace(0.0, 10.0, 41)
    tables = [rng.normal(size=(3, 41)) for _ in range(2)] + [rng.uniform(0.01, 0.1, (3, 41))]
    pr = Priors(mu, *tables)
    x = rng.uniform(-2.0, 12.0, (3, 5, 7))
    got = pr.at(x)
    for t, g in zip(tables, got, strict=True):
        want = np.stack([np.interp(x[i], mu, t[i]) for i in range(3)])  # np.interp holds the end values too
        np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(DataError, match="regular"):
        Priors(np.r_[0.0, 1.0, 3.0], *(t[:, :3] for t in tables))
    with pytest.raises(DataError, match=r"sigma_ebv must be > 0; not in 1 row"):
        Priors(mu, tables[0], tables[1], np.where(np.arange(3)[:, None] == 1, 0.0, tables[2]))


def test_a_prior_without_photometry_returns_the_prior(grid):
    """No band observed: E's posterior is its prior (truncated at 0), whatever the θ and μ."""
    n = 300
    nan = np.full((n, N_BANDS), np.nan)
    e0, s0 = np.full(n, 0.3), np.full(n, 0.05)
    ph = Photometry(nan, nan, np.full(n, np.nan), np.full(n, np.nan), e0, s0)
    _, samples = posterior(grid, ph, n_samples=200, mu_range=MU_RANGE, seed=2)
    e = samples["ebv"].ravel()
    assert abs(e.mean() - 0.3) < 0.005 and abs(e.std() - 0.05) < 0.005


def _domain_model(x: np.ndarray) -> StellarModel:
    """The random-weights network of :func:`make_grid` with a training domain fitted at normalised labels ``x``."""
    from ddstars.model.api import Domain

    rng = np.random.default_rng(1)
    shapes = [(3, 32), (32,), (32, 32), (32,), (32, 13), (13,), (3, 13), (13,)]
    weights = network.Weights(*[rng.normal(0, 0.6, s) for s in shapes])
    norm = likelihood.Normalisation(np.array([5500.0, 3.5, -0.4]), np.array([800.0, 1.0, 0.4]))
    return StellarModel.from_weights(weights, norm, Domain.fit(x, x * norm.std + norm.median, cell=0.25, min_stars=5))


def test_the_training_prior_recovers_a_narrow_feh_distribution_that_the_box_widens():
    """Training labels of a narrow [Fe/H] population (σ 0.3 in normalised units, 1.2 domain cells) with label
    noise 0.1: the smoothed single cells (theta_prior training) give p([Fe/H]) about as wide as the noisy labels,
    the 27-cell box (training_box) wider by its ±1 cell; the domain's nodes are the same under both."""
    rng = np.random.default_rng(5)
    n = 200_000
    true = rng.normal(0.0, [1.0, 1.0, 0.3], (n, 3))
    x = true + rng.normal(0.0, 0.1, (n, 3))
    model = _domain_model(x)
    ranges = {"teff": (5100.0, 5900.0), "logg": (3.3, 3.7), "feh": (-1.15, 0.35)}
    steps = (100.0, 0.05, 0.1)
    grids = {p: Grid.from_model(model, ranges, steps, theta_prior=p) for p in ("training", "training_box", "flat")}
    np.testing.assert_array_equal(grids["training"].theta, grids["training_box"].theta)
    np.testing.assert_array_equal(grids["training"].edge, grids["training_box"].edge)
    assert np.all(grids["flat"].log_prior == 0)

    def feh_sd(g):  # the prior's [Fe/H] spread over the nodes, in normalised units
        w = np.exp(g.log_prior)
        f = model.norm.x(g.theta)[:, 2]
        mean = np.average(f, weights=w)
        return np.sqrt(np.average((f - mean) ** 2, weights=w))

    want = np.hypot(0.3, 0.1)  # the noisy labels' spread
    smooth, box = feh_sd(grids["training"]), feh_sd(grids["training_box"])
    assert abs(smooth - want) < 0.02, (smooth, want)
    assert box - want > 0.04 and abs(smooth - want) < 0.3 * (box - want), (smooth, box, want)


def test_the_smoothed_density_is_the_own_cell_count_without_smoothing_and_keeps_the_stars():
    from ddstars.errors import ConfigError

    rng = np.random.default_rng(6)
    x = rng.normal(0.0, 1.0, (20_000, 3))
    dom = _domain_model(x).domain
    q = rng.normal(0.0, 1.2, (500, 3))
    own = np.array([np.sum(np.all(np.floor(x / 0.25) == np.floor(p / 0.25), axis=1)) for p in q[:50]])
    np.testing.assert_array_equal(dom.smoothed_density(q[:50], (0.0, 0.0, 0.0)), own)
    # smoothing moves stars between cells but keeps their number: the density at the cells' centres sums to n
    idx = np.stack(np.meshgrid(*[np.arange(-25, 25)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    centres = (idx + 0.5) * 0.25
    assert dom.smoothed_density(centres, (0.7, 0.7, 0.0)).sum() == pytest.approx(len(x), rel=1e-6)
    with pytest.raises(ConfigError, match=">= 0 cells"):
        dom.smoothed_density(q, (-1.0, 0.0, 0.0))
    with pytest.raises(ConfigError, match="theta_prior"):
        Grid.from_model(_domain_model(x), RANGES, STEPS, theta_prior="box")
