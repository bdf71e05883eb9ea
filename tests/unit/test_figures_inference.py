"""The inference-stage figures on synthetic posteriors whose calibration is known by construction.

Each star's truth x is observed as y = x + σ ε (ε ~ N(0, 1)); its posterior is N(y, (f σ)²): percentiles
y + f σ Φ⁻¹(q), K = 20 stored samples drawn from it. With f = 1 the posteriors are calibrated (the truth lies
within [p16, p84] for 68.3 % of the stars, and its PIT is uniform); with f = 1/2 they are over-confident
(P(|ε| < 1/2) = 38.3 % and P(|ε| < 0.98) = 67.3 %; PIT U-shaped). The captions' numbers are checked against these
expectations (within binomial tolerance) and against a recomputation from the table.
"""

from __future__ import annotations

import re

import healpy as hp
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ddstars.bands import BAND_NAMES, band_index
from ddstars.figures import inference as fi

N, K = 3000, 20
SIGMA = {"teff": 100.0, "logg": 0.15, "feh": 0.1, "mu": 0.2, "ebv": 0.03}
TRUTH = {
    "teff": (4000.0, 7000.0),
    "logg": (1.0, 5.0),
    "feh": (-1.5, 0.4),
    "mu": (8.0, 14.0),
    "ebv": (0.0, 0.8),
}
PCT = {"p2.5": 2.5, "p16": 16.0, "p50": 50.0, "p84": 84.0, "p97.5": 97.5}
MAP_OFFSET = 0.02  # the dust map's E is the true E plus this


class LinearModel:
    """A stand-in for StellarModel: M(θ) and R(θ) linear in θ, recording the ``outside`` it was called with."""

    def __init__(self):
        rng = np.random.default_rng(3)
        self.a = rng.normal(0, 1, (3, len(BAND_NAMES))) * np.array([[1e-3], [0.3], [0.2]])
        self.r = np.linspace(3.0, 0.3, len(BAND_NAMES))
        self.outside = []

    def predict_absolute_magnitudes(self, theta, outside=None):
        self.outside.append(outside)
        return 5.0 + (np.asarray(theta) - [5500.0, 3.5, -0.5]) @ self.a

    def reddening_vector(self, theta, outside=None):
        self.outside.append(outside)
        return np.tile(self.r, (len(theta), 1))


def make_stars(f: float, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {
        "source_id": np.arange(1, N + 1, dtype=np.int64) * 17,
        "l": rng.uniform(0, 360, N),
        "b": np.degrees(np.arcsin(rng.uniform(-1, 1, N))),
        "mag_gaia_g": rng.uniform(10.0, 19.0, N),
        "n_bands": rng.integers(5, 14, N),
        "flags": np.where(rng.random(N) < 0.05, rng.choice([1, 2, 4, 8], N), 0),
        "ess": rng.uniform(20, 200, N),
    }
    for p, (lo, hi) in TRUTH.items():
        x = rng.uniform(lo, hi, N)
        y = x + SIGMA[p] * rng.normal(0, 1, N)  # the observation; the posterior is N(y, (f σ)²)
        s = f * SIGMA[p]
        cols[f"true_{p}"] = x
        for name, q in PCT.items():
            cols[f"{p}_{name}"] = y + s * stats.norm.ppf(q / 100)
        cols[f"{p}_map"] = y
        cols[f"samples_{p}"] = list((y[:, None] + s * rng.normal(0, 1, (N, K))).astype(np.float32))
    d = 10 ** (cols["mu_p50"] / 5 + 1) / 1000
    for name in (*PCT, "map"):
        cols[f"dist_kpc_{name}"] = d
    cols["parallax"] = 1 / d + rng.normal(0, 0.05, N)
    cols["parallax_error"] = np.full(N, 0.05)
    cols["map_ebv"] = cols["true_ebv"] + MAP_OFFSET
    stars = pd.DataFrame(cols)
    m = LinearModel()
    theta = stars[["true_teff", "true_logg", "true_feh"]].to_numpy()
    app = m.predict_absolute_magnitudes(theta) + (cols["true_mu"] + m.r[:, None] * cols["true_ebv"]).T
    stars["mag_gaia_g"] = app[:, band_index("gaia_g")]
    stars["mag_gaia_bp"] = app[:, band_index("gaia_bp")]
    stars["mag_gaia_rp"] = app[:, band_index("gaia_rp")]
    return stars


@pytest.fixture(scope="module")
def calibrated():
    return make_stars(1.0)


@pytest.fixture(scope="module")
def overconfident():
    return make_stars(0.5)


def no_truth(stars):
    return stars.drop(columns=[c for c in stars.columns if c.startswith("true_")] + ["map_ebv"])


def valid(stars):
    return stars[stars["flags"] == 0]


def close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


def coverage_in_caption(caption, name):
    m = re.search(
        rf"{re.escape(name)} ([\d.]+)% within \[p16, p84\] and ([\d.]+)% within \[p2\.5, p97\.5\] "
        r"\((\d+) stars; PIT χ² p = ([^)]+)\)",
        caption,
    )
    assert m, caption
    return float(m[1]) / 100, float(m[2]) / 100, int(m[3]), float(m[4])


# -------------------------------------------------------------------------------------------------------- PIT, coverage
@pytest.mark.parametrize("f", [1.0, 0.5])
def test_pit_caption_coverage_matches_the_construction(f, calibrated, overconfident):
    stars = calibrated if f == 1.0 else overconfident
    fig, caption = fi.fig_inference_pit(stars)
    assert len(fig.axes) == 5
    close(fig)
    v = valid(stars)
    for p in fi.PARAMS:
        c68, c95, n, _ = coverage_in_caption(caption, fi.NAME[p])
        assert n == len(v)
        # the theory: the truth within y ± z f σ iff |ε| < z f
        for got, q in ((c68, 0.84), (c95, 0.975)):
            z = stats.norm.ppf(q)
            expect = 2 * stats.norm.cdf(z * f) - 1
            assert abs(got - expect) < 4 * np.sqrt(expect * (1 - expect) / n) + 1e-3, (p, got, expect)
        # and the table itself
        t = v[f"true_{p}"]
        assert c68 == pytest.approx(((t >= v[f"{p}_p16"]) & (t <= v[f"{p}_p84"])).mean(), abs=6e-4)
        assert c95 == pytest.approx(((t >= v[f"{p}_p2.5"]) & (t <= v[f"{p}_p97.5"])).mean(), abs=6e-4)


def own_pit_pvalue(stars, p, bins=20, seed=0):
    """The PIT as the truth's rank among its K samples plus U(0, 1), over K + 1; χ² p-value of its histogram."""
    v = valid(stars)
    s = np.sort(np.stack(v[f"samples_{p}"].to_numpy()).astype(np.float64), axis=1)
    rank = np.array([np.searchsorted(row, t) for row, t in zip(s, v[f"true_{p}"], strict=True)])
    u = (rank + np.random.default_rng(seed).random(len(v))) / (s.shape[1] + 1)
    return stats.chisquare(np.histogram(u, np.linspace(0, 1, bins + 1))[0]).pvalue


def test_pit_is_flat_for_calibrated_posteriors_and_not_for_overconfident(calibrated, overconfident):
    _, cal = fi.fig_inference_pit(calibrated)
    _, over = fi.fig_inference_pit(overconfident)
    for p in fi.PARAMS:
        assert coverage_in_caption(cal, fi.NAME[p])[3] > 1e-3
        assert coverage_in_caption(over, fi.NAME[p])[3] < 1e-6
        assert own_pit_pvalue(calibrated, p) > 1e-3 and own_pit_pvalue(overconfident, p) < 1e-6
    import matplotlib.pyplot as plt

    plt.close("all")


def test_pit_is_uniform_with_ties_and_ignores_padding():
    """Truth and samples from one discrete distribution (many ties): the randomised PIT is still U(0, 1)."""
    rng = np.random.default_rng(5)
    n, k = 20000, 9
    samp = rng.integers(0, 4, (n, k)).astype(float)
    truth = rng.integers(0, 4, n).astype(float)
    u = fi.pit(samp, truth, np.random.default_rng(1))
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # a NaN-padded sample (a star with fewer samples) counts as absent
    padded = np.column_stack([samp, np.full(n, np.nan)])
    np.testing.assert_allclose(fi.pit(padded, truth, np.random.default_rng(1)), u)
    naive = (samp < truth[:, None]).sum(axis=1) / k  # without randomisation: far from uniform
    assert stats.kstest(naive, "uniform").pvalue < 1e-6


# ------------------------------------------------------------------------------------------------------------ truth
def test_truth_caption_bias_and_scatter(calibrated):
    fig, caption = fi.fig_inference_truth(calibrated, bins=40)
    assert len(fig.axes) == 5 and all(ax.collections for ax in fig.axes)
    close(fig)
    v = valid(calibrated)
    assert f"{len(v)} valid stars (flags = 0) of {N}" in caption
    for p in fi.PARAMS:
        m = re.search(
            rf"{re.escape(fi.NAME[p])} bias (\S+?)(?: K| mag)?, scatter (\S+?)(?: K| mag)? \((\d+) stars\)", caption
        )
        assert m, (p, caption)
        bias, scatter, n = float(m[1]), float(m[2]), int(m[3])
        d = (v[f"{p}_p50"] - v[f"true_{p}"]).to_numpy()
        med = np.median(d)
        assert n == len(v)
        assert bias == pytest.approx(med, abs=10 ** -(0 if p == "teff" else 3) * 0.51)
        assert scatter == pytest.approx(
            1.4826 * np.median(np.abs(d - med)), abs=10 ** -(0 if p == "teff" else 3) * 0.51
        )
        # the construction: p50 - truth = σ ε
        assert abs(bias) < 4 * 1.25 * SIGMA[p] / np.sqrt(n)
        assert scatter == pytest.approx(SIGMA[p], rel=0.08)


def test_truth_figures_without_truth_raise_a_clear_error(calibrated):
    from ddstars.errors import DataError

    for func in (fi.fig_inference_truth, fi.fig_inference_pit):
        with pytest.raises(DataError, match="needs the truth"):
            func(no_truth(calibrated))


def test_truth_draws_only_the_parameters_it_has(calibrated):
    stars = calibrated.drop(columns=["true_teff", "true_logg", "true_feh"])
    fig, caption = fi.fig_inference_truth(stars, bins=20)
    assert len(fig.axes) == 2 and "μ bias" in caption and "Teff" not in caption
    close(fig)


# -------------------------------------------------------------------------------------------- kiel, cmd, dust, examples
def test_kiel_counts(calibrated):
    fig, caption = fi.fig_inference_kiel(calibrated, bins=30)
    v = valid(calibrated)
    assert len([ax for ax in fig.axes if ax.collections]) == 3  # inferred, true, colour bar
    assert fig.axes[0].xaxis_inverted() and fig.axes[0].yaxis_inverted()
    close(fig)
    assert f"inferred: {len(v)} stars, median [Fe/H] {np.median(v['feh_p50']):.2f}" in caption
    assert f"true: {len(v)} stars, median [Fe/H] {np.median(v['true_feh']):.2f}" in caption
    fig, caption = fi.fig_inference_kiel(no_truth(calibrated), bins=30)
    assert "true:" not in caption and len(fig.axes) == 2
    close(fig)


def test_cmd_of_the_model_and_the_dereddened_observations(calibrated):
    model = LinearModel()
    fig, caption = fi.fig_inference_cmd(calibrated, model, bins=40)
    assert set(model.outside) == {"ignore"}
    assert len(fig.axes) == 2 and all(ax.yaxis_inverted() for ax in fig.axes)
    close(fig)
    v = valid(calibrated)
    theta = v[["teff_p50", "logg_p50", "feh_p50"]].to_numpy()
    mm = model.predict_absolute_magnitudes(theta)
    g, bp, rp = (band_index(b) for b in ("gaia_g", "gaia_bp", "gaia_rp"))
    e, r = v["ebv_p50"].to_numpy(), model.r
    d_col = v["mag_gaia_bp"] - v["mag_gaia_rp"] - e * (r[bp] - r[rp]) - (mm[:, bp] - mm[:, rp])
    d_mag = v["mag_gaia_g"] - v["mu_p50"] - e * r[g] - mm[:, g]
    assert f"{len(v)} valid stars" in caption
    assert f"BP - RP median {np.median(d_col):.3f} mag" in caption
    assert f"M_G median {np.median(d_mag):.3f} mag" in caption
    fig, caption = fi.fig_inference_cmd(calibrated.drop(columns=["mag_gaia_bp"]), model, bins=40)
    assert len(fig.axes) == 1 and "Observed minus model" not in caption
    close(fig)


def test_dust_per_pixel_medians(calibrated):
    order = 2
    fig, caption = fi.fig_inference_dust(calibrated, healpix_order=order)
    assert len(fig.axes) == 4  # two maps, the comparison, the colour bar
    close(fig)
    v = valid(calibrated)
    pix = hp.ang2pix(2**order, v["l"].to_numpy(), v["b"].to_numpy(), nest=True, lonlat=True)
    med = v[["ebv_p50", "map_ebv"]].groupby(pix).median()
    d = med["ebv_p50"] - med["map_ebv"]
    assert f"{len(med)} pixels with stars" in caption
    m = re.search(r"median (\S+) mag, robust scatter (\S+) mag", caption)
    assert float(m[1]) == pytest.approx(np.median(d), abs=6e-5)
    assert float(m[2]) == pytest.approx(1.4826 * np.median(np.abs(d - np.median(d))), abs=6e-5)
    # the construction: map = true E + offset, inferred median = true E + σ ε (≈ 19 stars per pixel)
    assert float(m[1]) == pytest.approx(-MAP_OFFSET, abs=0.005)
    fig, caption = fi.fig_inference_dust(no_truth(calibrated), healpix_order=order)
    assert len(fig.axes) == 2 and "dust map" not in caption
    close(fig)


def test_examples_span_the_magnitudes(calibrated):
    fig, caption = fi.fig_inference_examples(calibrated, n=4, seed=3)
    assert len(fig.axes) == 8 and all(len(ax.lines) == 3 for ax in fig.axes)  # samples, median, truth
    close(fig)
    found = re.findall(r"(\d+) \(G = ([\d.]+)\)", caption)
    assert len(found) == 4
    v = valid(calibrated).set_index("source_id")
    quartiles = np.quantile(v["mag_gaia_g"], [0, 0.25, 0.5, 0.75, 1.0])
    for j, (sid, g) in enumerate(found):
        assert float(g) == pytest.approx(v.loc[int(sid), "mag_gaia_g"], abs=0.006)
        assert quartiles[j] - 0.01 <= float(g) <= quartiles[j + 1] + 0.01
    assert fi.fig_inference_examples(calibrated, n=4, seed=3)[1] == caption  # seeded


# -------------------------------------------------------------------------------------------------------- render_all
def test_render_all_writes_every_figure_and_skips_what_it_cannot_draw(calibrated, tmp_path, caplog):
    sub = calibrated.iloc[:800]
    caps = fi.render_all(sub, tmp_path / "all", dpi=30, model=LinearModel(), healpix_order=1)
    names = ["inference_truth", "inference_pit", "inference_kiel", "inference_cmd", "inference_dust"]
    names.append("inference_examples")
    assert sorted(caps) == sorted(names)
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(
        f"{n}.{ext}" for n in names for ext in ("pdf", "png", "txt")
    )  # no temporaries
    for n in names:
        assert (tmp_path / "all" / f"{n}.pdf").read_bytes().startswith(b"%PDF")
        assert (tmp_path / "all" / f"{n}.png").read_bytes().startswith(b"\x89PNG")
        assert (tmp_path / "all" / f"{n}.txt").read_text() == caps[n] + "\n"
    with caplog.at_level("INFO", logger="ddstars.figures.inference"):
        caps = fi.render_all(no_truth(sub), tmp_path / "real", dpi=30)
    assert sorted(caps) == ["inference_dust", "inference_examples", "inference_kiel"]
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == sorted(
        f"{n}.{ext}" for n in caps for ext in ("pdf", "png", "txt")
    )
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert skipped == [
        "inference_truth: skipped (no truth)",
        "inference_pit: skipped (no truth)",
        "inference_cmd: skipped (no model)",
    ]
