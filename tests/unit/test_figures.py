"""Each figure on a small synthetic run: the numbers of its caption, recomputed here from the input tables, and
the artists it draws (panels, points, lines, meshes); the registry, importable without matplotlib.

The run: a catalog of 1,500 stars with photometry from an untrained network (all three splits; 8 % of the stars
with a wrong r magnitude), its evaluation table, the training's reddening estimates, a training history and a
simulated truth. Where a caption quotes a fit, the table is edited to plant a known answer (a slope, an
intercept, a constant score).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ddstars.bands import BAND_NAMES, band_index
from ddstars.figures import FIGURES, options, render
from ddstars.figures.inputs import Inputs
from ddstars.validation.colours import SHORT, colour_label, colour_name

ROOT = Path(__file__).resolve().parents[2]
N_STARS = 1500
LABEL = "the other model"


# ------------------------------------------------------------------------------------------------ the synthetic run
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from ddstars.model import StellarModel, network
    from ddstars.model.data import read_stars
    from ddstars.model.train import Normalisation
    from ddstars.validation import evaluate as ev

    rng = np.random.default_rng(42)
    out = tmp_path_factory.mktemp("figures")
    n = N_STARS
    model = StellarModel(
        network.build(seed=1), Normalisation(np.array([5500.0, 3.5, -0.5]), np.array([900.0, 1.1, 0.5]))
    )
    theta = np.column_stack([rng.uniform(4000, 7000, n), rng.uniform(1.0, 5.0, n), rng.uniform(-1.5, 0.4, n)])
    plx = rng.uniform(0.5, 5.0, n)
    plx_err = plx / rng.uniform(2.0, 40.0, n)
    e_true = rng.uniform(0.0, 0.6, n)
    err = rng.uniform(0.01, 0.05, (n, len(BAND_NAMES)))
    mag = model.predict_apparent(theta, 10 - 5 * np.log10(plx), e_true) + rng.normal(0, 1, err.shape) * err
    bad = rng.random(n) < 0.08  # outliers: r off by up to 1 mag, so that χ²/dof spans the caption's 5 and 10
    mag[bad, band_index("ps1_r")] += rng.uniform(0.05, 1.0, bad.sum())
    obs = rng.random(mag.shape) < 0.9
    obs[:, 0] = True
    cat = pd.DataFrame(
        {
            "source_id": np.arange(1, n + 1, dtype=np.int64) * 1000,
            "split": rng.choice(["train", "validation", "test"], n, p=[0.5, 0.1, 0.4]),
            "teff": theta[:, 0],
            "logg": theta[:, 1],
            "feh": theta[:, 2],
            "var_teff": 50.0**2,
            "var_logg": 0.1**2,
            "var_feh": 0.05**2,
            "cov_teff_logg": 0.0,
            "cov_teff_feh": 0.0,
            "cov_logg_feh": 0.0,
            "parallax": plx,
            "parallax_error": plx_err,
            "parallax_usable": plx / plx_err >= 5,
            "ebv_prior": np.clip(e_true + rng.normal(0, 0.05, n), 0, None),
            "sigma_ebv_prior": 0.05,
            **{f"mag_{b}": np.where(obs[:, i], mag[:, i], np.nan) for i, b in enumerate(BAND_NAMES)},
            **{f"err_{b}": np.where(obs[:, i], err[:, i], np.nan) for i, b in enumerate(BAND_NAMES)},
            **{f"obs_{b}": obs[:, i] for i, b in enumerate(BAND_NAMES)},
        }
    )
    paths = {k: out / name for k, name in (("catalog", "stars.parquet"), ("table", "test_stars.parquet"))}
    cat.to_parquet(paths["catalog"], index=False)
    table = ev.evaluate(model, read_stars(paths["catalog"], split="test"))
    table.to_parquet(paths["table"], index=False)
    # the comparison: the same stars, residuals half as large again, χ² a fifth larger
    cmp = table.copy()
    for c in cmp.columns:
        if c.startswith("res_"):
            cmp[c] *= 1.5
    cmp["chi2_dof"] *= 1.2
    paths["compare_table"] = out / "compare.parquet"
    cmp.to_parquet(paths["compare_table"], index=False)
    train = cat[cat["split"] == "train"]
    reddening = pd.DataFrame(
        {"source_id": train["source_id"], "ebv_fit": train["ebv_prior"] * 0.9 + rng.normal(0, 0.02, len(train))}
    )
    paths["reddening"] = out / "reddening.parquet"
    reddening.to_parquet(paths["reddening"], index=False)
    # the truth: every star at the test set's mean log g and [Fe/H], so the truth lines of Fig. 10 are drawn
    mean = table[["teff", "logg", "feh"]].to_numpy(np.float64).mean(0)
    truth = pd.DataFrame(
        {
            "source_id": cat["source_id"],
            "true_teff": cat["teff"],
            "true_logg": mean[1],
            "true_feh": mean[2],
            "true_ebv": e_true,
            **{f"true_r_{b}": 3.0 - 0.3 * i + 1e-4 * (cat["teff"] - 5000) for i, b in enumerate(BAND_NAMES)},
        }
    )
    paths["truth"] = out / "truth.parquet"
    truth.to_parquet(paths["truth"], index=False)
    epochs, n_rounds = 30, 5
    history = pd.DataFrame(
        {
            "steps": rng.integers(50, 150, epochs),
            "loss": np.geomspace(3.0, 0.6, epochs),
            "val_loss": np.where(np.arange(epochs) % 3 == 2, np.geomspace(3.2, 0.65, epochs), np.nan),
        }
    )
    rounds = pd.DataFrame(
        {
            "round": np.arange(n_rounds),
            "steps": rng.integers(500, 1500, n_rounds),
            "batch_size": [256, 256, 512, 1024, 2048],
            "loss": np.geomspace(2.0, 0.51, n_rounds),
            "val_loss": np.geomspace(2.1, 0.53, n_rounds),
            "mean_chi2_dof_lt5": np.linspace(1.4, 0.81, n_rounds),
            "mean_chi2_dof_lt10": np.linspace(1.7, 0.93, n_rounds),
            "outlier_fraction": np.linspace(0.0, 0.031, n_rounds),
            "tau": [np.inf, 40.0, 20.0, 10.0, 10.0],
            "loss_drop": -np.geomspace(0.1, 0.001, n_rounds),
            "r_change": np.geomspace(0.05, 0.002, n_rounds),
        }
    )
    paths["history"], paths["rounds"] = out / "history.csv", out / "rounds.csv"
    history.to_csv(paths["history"], index=False)
    rounds.to_csv(paths["rounds"], index=False)
    return {
        "out": out,
        "model": model,
        "paths": {k: str(v) for k, v in paths.items()},
        "catalog": cat,
        "table": table,
        "compare": cmp,
        "reddening": reddening,
        "truth": truth.set_index("source_id"),
        "history": history,
        "rounds": rounds,
    }


def inputs(run, compare=False, truth=True, **frames) -> Inputs:
    """The figure inputs of the run (``frames``: tables to use instead of the files, e.g. a planted table)."""
    paths = {k: v for k, v in run["paths"].items() if (compare or k != "compare_table") and (truth or k != "truth")}
    inp = Inputs({**paths, "model": "in memory"}, compare_label=LABEL if compare else None)
    inp._cache.update({"model": run["model"], **frames})
    return inp


@pytest.fixture
def draw():
    """Draw a figure with its default options (``over`` overrides some); closes the figures afterwards."""
    import matplotlib.pyplot as plt

    def _draw(name, inp, **over):
        return FIGURES[name].func(inp, options(name, over))

    yield _draw
    plt.close("all")


# ------------------------------------------------------------------------------------------------ helpers
def numbers(text: str, pattern: str) -> list[float]:
    """The numbers matched by the groups of ``pattern`` (thousands commas and signs allowed)."""
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in caption: {text}"
    return [float(g.replace(",", "")) for g in m.groups()]


def shown(got: float, want: float, decimals: int) -> None:
    """``got`` is ``want`` as printed with ``decimals`` decimals."""
    assert abs(got - want) <= 0.5 * 10.0**-decimals * (1 + 1e-6) + 1e-12, (got, want)


NUM = r"([+-]?[\d,]*\.?\d+(?:e[+-]?\d+)?)"


def panels(fig) -> list:
    """The visible axes of ``fig`` that are not colour bars."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def meshes(ax) -> list[np.ndarray]:
    """The data of the QuadMeshes (2-D histograms, binned statistics) of ``ax``."""
    from matplotlib.collections import QuadMesh

    return [np.ma.filled(c.get_array(), np.nan).astype(float) for c in ax.collections if isinstance(c, QuadMesh)]


def data_lines(ax) -> list:
    """The lines of ``ax`` with at least one finite point (axhline included)."""
    return [ln for ln in ax.lines if np.isfinite(np.asarray(ln.get_ydata(), dtype=float)).any()]


def col(t: pd.DataFrame, name: str) -> np.ndarray:
    return t[name].to_numpy(np.float64)


# ------------------------------------------------------------------------------------------------ the registry
def test_every_figure_names_its_module_and_function():
    import importlib

    for name, spec in FIGURES.items():
        assert spec.module.startswith("ddstars.figures.") and spec.module != "ddstars.figures.registry", name
        func = getattr(importlib.import_module(spec.module), spec.function)
        assert spec.func is func and func.__module__ == spec.module, name
        assert (
            func.__doc__
            and spec.paper
            and set(spec.inputs)
            <= {
                "table",
                "compare_table",
                "catalog",
                "model",
                "reddening",
                "history",
                "rounds",
                "truth",
            }
        ), name
    assert FIGURES["colour_colour_feh"].function == "fig_colour_colour_feh"
    assert FIGURES["colour_colour_feh"].defaults == FIGURES["colour_colour_logg"].defaults


def test_registry_and_snakefile_imports_leave_matplotlib_out():
    """The registry and every module the Snakefile imports at parse time load no plotting or archive-client
    library (each costs seconds on every `snakemake` call); drawing a figure then imports its module only."""
    lines = []
    for smk in [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]:
        lines += [ln for ln in smk.read_text().splitlines() if re.match(r"(from|import) ddstars\b", ln)]
    assert any("ddstars.figures" in ln for ln in lines), lines
    heavy = ["matplotlib", "scipy", "healpy", "pyvo", "astropy", "tensorflow", "keras", "speclite"]
    code = "\n".join(
        [
            "import sys",
            f"sys.path.insert(0, {str(ROOT / 'src')!r})",
            *(ln.split("#")[0] for ln in lines),
            "import ddstars.figures.registry",
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))",
            "import numpy as np; import pandas as pd",
            "from ddstars.figures import FIGURES",
            "from ddstars.figures.inputs import Inputs",
            "FIGURES['chi2'].func",
            "print(sorted(m for m in sys.modules if m.startswith('ddstars.figures.')))",
        ]
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, figure_modules = (json.loads(line.replace("'", '"')) for line in r.stdout.splitlines())
    assert loaded == []
    assert figure_modules == [f"ddstars.figures.{m}" for m in ("inputs", "plotting", "registry", "residuals")]


def test_render_writes_the_pdf_png_and_caption(run, tmp_path):
    out = {k: tmp_path / f"chi2.{k}" for k in ("pdf", "png", "txt")}
    text = render("chi2", inputs(run), {"bins": 20}, out["pdf"], out["png"], out["txt"], dpi=30)
    assert out["pdf"].read_bytes().startswith(b"%PDF") and out["png"].read_bytes().startswith(b"\x89PNG")
    assert out["txt"].read_text() == text + "\n" and text.startswith("§6 χ² distribution. χ²/dof of the ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chi2.pdf", "chi2.png", "chi2.txt"]  # no temporaries


#: Options for the run's 600 test stars: binned maps of 40 × 40 cells need more stars for 10 in a cell.
SPARSE = {
    "residual_maps": {"bins": 10},
    "reddening_teff": {"bins": 10, "min_count": 3, "dr_range": [-1.0, 1.0]},
    "residual_dust": {"e_min": 0.1, "e_clean": 0.1},  # 30 stars each side of E′
}


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_draws_data_in_every_panel(run, draw, name):
    """Every registered figure (default options but for the binning of sparse maps): each panel holds finite
    data, the caption no NaN."""
    from matplotlib.collections import PathCollection

    fig, caption = draw(name, inputs(run, compare=True), **SPARSE.get(name, {}))
    assert panels(fig), name
    for ax in panels(fig):
        has = (
            any(np.isfinite(m).any() for m in meshes(ax))
            or data_lines(ax)
            or any(isinstance(c, PathCollection) and len(c.get_offsets()) for c in ax.collections)
            or ax.patches
        )
        assert has, (name, ax.get_title(), ax.get_xlabel())
    assert "nan" not in caption.lower(), caption
    assert len(caption) > 80


# ------------------------------------------------------------------------------------------------ figure by figure
def test_filters(run, draw):
    import speclite.filters

    from ddstars.bands import BANDS

    fig, caption = draw("filters", inputs(run))
    (ax,) = panels(fig)
    assert len(ax.lines) == len(BANDS) and len(ax.texts) == len(BANDS) and ax.get_xscale() == "log"
    assert {t.get_text() for t in ax.texts} == {SHORT[b.name] for b in BANDS}
    peak = {}
    for b in BANDS:
        f = speclite.filters.load_filter(b.speclite)
        peak[b.name] = float(f.wavelength[np.argmax(f.response)]) / 10  # Å -> nm; a scale leaves the peak alone
    lo, hi = min(peak, key=peak.get), max(peak, key=peak.get)
    got = numbers(caption, rf"from {NUM} nm \(\w+\) to {NUM} nm")
    shown(got[0], peak[lo], 0)
    shown(got[1], peak[hi], 0)
    assert f"({SHORT[lo]})" in caption and f"({SHORT[hi]})" in caption


def test_labels(run, draw):
    fig, caption = draw("labels", inputs(run))
    cat = run["catalog"]
    train = cat[cat["split"] == "train"]
    assert numbers(caption, rf"Training set \({NUM} stars\)") == [len(train)]
    p = np.percentile(train[["teff", "logg", "feh"]].to_numpy(), [1, 99], axis=0)
    got = numbers(caption, rf"Teff {NUM}-{NUM} K, log g {NUM}-{NUM}, \[Fe/H\] {NUM}-{NUM};")
    for k, d in zip(range(6), (0, 0, 2, 2, 2, 2), strict=True):
        shown(got[k], p[k % 2, k // 2], d)
    e_fit = run["reddening"].set_index("source_id").loc[train["source_id"], "ebv_fit"]
    got = numbers(caption, rf"median E prior {NUM}, E′ {NUM}\.")
    shown(got[0], np.median(train["ebv_prior"]), 3)
    shown(got[1], np.median(e_fit), 3)
    axs = panels(fig)
    assert len(axs) == 4
    for ax in axs[:3]:  # log10 counts: the 10^k of the cells add up to the stars inside the ranges
        (m,) = meshes(ax)
        assert 0 < np.nansum(10**m) <= len(train)
    assert len(axs[3].patches) == 2  # prior and fitted E′


def test_cmd(run, draw):
    fig, caption = draw("cmd", inputs(run))
    t = run["table"][run["table"]["parallax_usable"]]
    assert numbers(caption, rf"diagram of the {NUM} test stars") == [len(t)]
    r = run["model"].reddening_vector(t[["teff", "logg", "feh"]].to_numpy(np.float64).mean(0))[0]
    e = options("cmd", None)["arrow_ebv"]
    got = numbers(caption, rf"Δ\(BP-RP\) = {NUM}, ΔM_G = {NUM}\.")
    shown(got[0], e * (r[band_index("gaia_bp")] - r[band_index("gaia_rp")]), 3)
    shown(got[1], e * r[band_index("gaia_g")], 3)
    axs = panels(fig)
    assert [ax.get_title() for ax in axs] == ["observed", "predicted, E = 0"]
    for ax in axs:
        (m,) = meshes(ax)
        assert np.isfinite(m).any()
    (arrow,) = axs[0].texts  # the reddening arrow, as long as the caption says
    np.testing.assert_allclose(np.subtract(arrow.xy, arrow.xyann), got, atol=5e-4)


def test_cmd_labels_finds_a_planted_metallicity_slope(run, draw):
    t = run["table"].copy()
    t["M_ps1_g"] = t["M_ps1_r"] + 0.45 + 0.17 * t["feh"]  # (g - r) rises by 0.17 mag per dex, exactly
    fig, caption = draw("cmd_labels", inputs(run, table=t))
    assert numbers(caption, rf"Mean labels of the {NUM} test stars") == [len(t)]
    shown(numbers(caption, rf"d\(g - r\)/d\[Fe/H\] = {NUM} mag/dex")[0], 0.17, 3)
    axs = panels(fig)
    assert len(axs) == 3
    for ax, lab in zip(axs, ("teff", "logg", "feh"), strict=True):  # bin means lie within the labels' range
        (m,) = meshes(ax)
        fin = m[np.isfinite(m)]
        assert len(fin) and fin.min() >= t[lab].min() - 1e-3 and fin.max() <= t[lab].max() + 1e-3


@pytest.mark.parametrize("by", ["logg", "feh"])
def test_colour_colour(run, draw, by):
    name = f"colour_colour_{by}"
    fig, caption = draw(name, inputs(run), n_points=200)
    t = run["table"]
    assert numbers(caption, rf"diagrams of {NUM} random test stars coloured by {by}") == [200]
    pairs = options(name, None)["pairs"]
    assert all(f"{colour_label(*a)} vs {colour_label(*b)}" in caption for a, b in pairs)
    axs = panels(fig)
    assert len(axs) == 2 * len(pairs)
    (x1, y1), (x2, y2) = pairs[0]
    ox, oy = col(t, f"mag_{x1}") - col(t, f"mag_{y1}"), col(t, f"mag_{x2}") - col(t, f"mag_{y2}")
    for ax in axs:
        (sc,) = ax.collections
        assert len(sc.get_offsets()) == 200
    # the observed panel of the first pair: 200 of the test stars, at their colours, coloured by their label
    pts = np.ma.filled(axs[0].collections[0].get_offsets(), np.nan)
    lab = axs[0].collections[0].get_array()
    stars = {(round(a, 4), round(b, 4)): v for a, b, v in zip(ox, oy, col(t, by), strict=True)}
    for (a, b), v in zip(pts, lab, strict=True):
        if np.isfinite(a) and np.isfinite(b):
            assert stars[(round(a, 4), round(b, 4))] == pytest.approx(v)


def test_reddening_teff(run, draw):
    fig, caption = draw("reddening_teff", inputs(run), **SPARSE["reddening_teff"])
    t = run["table"]
    o = options("reddening_teff", None)
    mean = t[["teff", "logg", "feh"]].to_numpy(np.float64).mean(0)
    got = numbers(caption, rf"θ \({NUM} K, {NUM}, {NUM}\)")
    for g, w, d in zip(got, mean, (0, 2, 2), strict=True):
        shown(g, w, d)
    r0 = run["model"].reddening_vector(mean)[0]
    for b in o["bands"]:
        d = col(t, f"R_{b}") / r0[band_index(b)] - 1
        got = numbers(caption, rf"[ ,]{re.escape(SHORT[b])} {NUM}/{NUM}%")
        shown(got[0], 100 * np.nanpercentile(d, 1), 1)
        shown(got[1], 100 * np.nanpercentile(d, 99), 1)
    dw = run["model"].reddening_vector([[4000.0, 4.6, mean[2]], [4000.0, 1.5, mean[2]]])[:, 0]
    got = numbers(caption, rf"R_G = {NUM} \(log g 4.6\) vs {NUM} \(log g 1.5\)")
    shown(got[0], dw[0], 3)
    shown(got[1], dw[1], 3)
    assert "black: the simulated truth" in caption
    axs = panels(fig)
    assert [ax.get_title() for ax in axs] == [SHORT[b] for b in o["bands"]]
    for ax in axs:
        (m,) = meshes(ax)
        assert np.isfinite(m).any() and np.nanmin(m) >= t["logg"].min() - 1e-3  # pixels: mean log g
        assert len(data_lines(ax)) == 5  # theory, truth median and 16/84th, zero line
    (theory, *_) = axs[0].lines
    assert len(theory.get_xdata()) == 60 and theory.get_ydata()[np.argmin(abs(theory.get_xdata() - mean[0]))] == (
        pytest.approx(0, abs=0.01)
    )  # normalised at the mean Teff
    fig, caption = draw("reddening_teff", inputs(run, truth=False))
    assert "simulated truth" not in caption and len(data_lines(panels(fig)[0])) == 2


def test_reddening_slopes(run, draw):
    fig, caption = draw("reddening_slopes", inputs(run))
    t = run["table"]
    o = options("reddening_slopes", None)
    r = run["model"].reddening_vector(np.median(t[["teff", "logg", "feh"]].to_numpy(np.float64), axis=0))[0]
    for x, y, z in o["triples"]:
        want = (r[band_index(x)] - r[band_index(y)]) / (r[band_index(y)] - r[band_index(z)])
        shown(numbers(caption, rf"{SHORT[x]}{SHORT[y]}{SHORT[z]} {NUM}[,.]")[0], want, 3)
    (ax,) = panels(fig)
    lines = data_lines(ax)
    assert len(lines) == len(o["rv_values"]) + 1
    assert all(len(ln.get_xdata()) == len(o["triples"]) for ln in lines[:-1])
    assert len(ax.collections) == 1  # the test set's 16-84th band


@pytest.mark.parametrize("compare", [False, True])
def test_residual_scores(run, draw, compare):
    fig, caption = draw("residual_scores", inputs(run, compare=compare))
    t = run["table"]
    colours = options("residual_scores", None)["colours"]
    for x, y in colours:
        s = col(t, f"res_{colour_name(x, y)}") / col(t, f"sig_{colour_name(x, y)}")
        s = s[np.isfinite(s)]
        got = numbers(caption, rf"{re.escape(colour_label(x, y))}: median {NUM}, 16/84th {NUM}/{NUM}")
        for g, w in zip(got, (np.median(s), np.percentile(s, 16), np.percentile(s, 84)), strict=True):
            shown(g, w, 2)
    assert (f"the comparison model ({LABEL})" in caption) is compare
    axs = panels(fig)
    assert len(axs) == 4 * len(colours)
    for ax in axs:
        (m,) = meshes(ax)
        fin = m[np.isfinite(m)]
        assert len(fin) and fin.max() <= 1 + 1e-9  # p(score | x): each column sums to at most 1
        assert len(data_lines(ax)) == (7 if compare else 4)  # 16/50/84th (twice with a comparison), zero


def test_residual_density_of_a_constant_score(run, draw):
    """Every residual 1.5 σ: ⟨score²⟩ is 2.25 at every density, for M_G and each colour."""
    t = run["table"].copy()
    o = options("residual_density", None)
    names = ["M_gaia_g"] + [colour_name(b, "gaia_g") for b in o["bands"]]
    for c in names:
        t[f"res_{c}"] = 1.5 * t[f"sig_{c}"]
    fig, caption = draw("residual_density", inputs(run, table=t), bandwidth=[250.0, 0.25, 0.2])
    got = numbers(caption, rf"At density 0.01: MG {NUM}, " + ", ".join(rf"{SHORT[b]} − G {NUM}" for b in o["bands"]))
    assert got == [2.25] * len(names)
    (ax,) = panels(fig)
    lines = data_lines(ax)
    assert len(lines) == len(names) + 1  # one per quantity and the ⟨score²⟩ = 1 line
    for ln in lines[:-1]:
        y = np.asarray(ln.get_ydata(), dtype=float)
        np.testing.assert_allclose(y[np.isfinite(y)], 2.25)


@pytest.mark.parametrize("compare", [False, True])
def test_residual_maps(run, draw, compare):
    fig, caption = draw("residual_maps", inputs(run, compare=compare), **SPARSE["residual_maps"])
    t = run["table"]
    colours = options("residual_maps", None)["colours"]
    for x, y in colours:
        r = col(t, f"res_{colour_name(x, y)}")
        shown(
            numbers(caption, rf"{re.escape(colour_label(x, y))} {NUM}(?:,|\.$)")[0],
            1000 * np.median(r[np.isfinite(r)]),
            1,
        )
    assert ("lower rows: the comparison model" in caption) is compare
    axs = panels(fig)
    assert len(axs) == len(colours) * (2 if compare else 1)
    v = options("residual_maps", None)["residual_limit"]
    for ax in axs:
        (m,) = meshes(ax)
        assert np.isfinite(m).any()
        assert ax.collections[0].get_clim() == (-v, v)


@pytest.mark.parametrize("compare", [False, True])
def test_chi2(run, draw, compare):
    fig, caption = draw("chi2", inputs(run, compare=compare))
    t = run["table"]
    c = col(t, "chi2_dof")
    c = c[np.isfinite(c) & (t["n_dof"].to_numpy() >= 1)]
    assert numbers(caption, rf"χ²/dof of the {NUM} usable test stars") == [len(c)]
    got = numbers(caption, rf"χ²/dof < 5: {NUM}; < 10: {NUM}; fraction ≥ 5: {NUM}%")
    for g, w, d in zip(got, (c[c < 5].mean(), c[c < 10].mean(), 100 * np.mean(c >= 5)), (3, 3, 2), strict=True):
        shown(g, w, d)
    (ax,) = panels(fig)
    assert len(ax.patches) == (2 if compare else 1)  # the step histograms
    (expected, *_) = data_lines(ax)
    assert (np.asarray(expected.get_ydata()) > 0).all()
    if compare:
        c2 = col(run["compare"], "chi2_dof")
        c2 = c2[np.isfinite(c2)]
        got = numbers(
            caption, rf"{LABEL}, blue\) on the same stars: mean over < 5 {NUM}, < 10 {NUM}, fraction ≥ 5 {NUM}%"
        )
        for g, w, d in zip(
            got, (c2[c2 < 5].mean(), c2[c2 < 10].mean(), 100 * np.mean(c2 >= 5)), (3, 3, 2), strict=True
        ):
            shown(g, w, d)
    else:
        assert "Comparison model" not in caption


def test_nonlinearity(run, draw):
    fig, caption = draw("nonlinearity", inputs(run))
    a_ref, d_ref = numbers(caption, rf"At A_G = {NUM} for \d+ K: ΔA_G = {NUM} mag")
    assert abs(d_ref - (-0.037)) < 0.005  # the paper's value, Appendix B
    axs = panels(fig)
    assert len(axs) == 2 and len(data_lines(axs[0])) == 3 and len(data_lines(axs[1])) == 2
    numerical = axs[0].lines[0]  # Eq. B19 as drawn, at the caption's A_G
    shown(d_ref, np.interp(a_ref, numerical.get_xdata(), numerical.get_ydata()), 4)


@pytest.mark.parametrize("truth", [False, True])
def test_reddening_refit_finds_a_planted_line(run, draw, truth):
    t = run["table"].copy()
    t["ebv_fit"] = 0.8 * t["ebv_prior"] + 0.03  # E′ = 0.8 E_prior + 0.03, exactly
    fig, caption = draw("reddening_refit", inputs(run, truth=truth, table=t))
    assert numbers(caption, rf"Reddening of the {NUM} test stars") == [len(t)]
    got = numbers(caption, rf"\(slope {NUM}, intercept {NUM}, median E′ - E_prior {NUM}\)")
    shown(got[0], 0.8, 3)
    shown(got[1], 0.03, 3)
    shown(got[2], np.median(col(t, "ebv_fit") - col(t, "ebv_prior")), 4)
    axs = panels(fig)
    assert len(axs) == (3 if truth else 1)
    if truth:
        et = run["truth"].loc[t["source_id"], "true_ebv"].to_numpy()
        e0, e1 = col(t, "ebv_prior"), col(t, "ebv_fit")
        got = numbers(caption, rf"scatter {NUM} \(prior {NUM}\), slope of E′ on E_true {NUM}")
        shown(got[0], np.std(e1 - et), 4)
        shown(got[1], np.std(e0 - et), 4)
        shown(got[2], np.polyfit(et, e1, 1)[0], 3)
    else:
        assert "truth" not in caption
    for ax in axs:
        (m,) = meshes(ax)
        assert 0 < np.nansum(10**m) <= len(t)


def test_history(run, draw):
    fig, caption = draw("history", inputs(run))
    h, r = run["history"], run["rounds"]
    got = numbers(caption, rf"over {NUM} rounds \({NUM} epochs, {NUM} optimiser steps at batch {NUM}\)")
    assert got == [len(r), len(h), r["steps"].sum(), r["batch_size"].iloc[-1]]
    last = r.iloc[-1]
    got = numbers(caption, rf"final loss {NUM} \(training\), {NUM} \(validation\); final ⟨χ²/dof⟩ {NUM} \(< 5\), {NUM}")
    for g, key in zip(got, ("loss", "val_loss", "mean_chi2_dof_lt5", "mean_chi2_dof_lt10"), strict=True):
        shown(g, last[key], 3)
    shown(numbers(caption, rf"; {NUM}% of training stars left out")[0], 100 * last["outlier_fraction"], 2)
    axs = panels(fig)
    assert len(axs) == 5  # four panels and the τ axis of the third
    train_line, val_points = axs[0].lines
    np.testing.assert_array_equal(train_line.get_xdata(), h["steps"].cumsum())
    np.testing.assert_array_equal(train_line.get_ydata(), h["loss"])
    assert len(val_points.get_xdata()) == h["val_loss"].notna().sum()


def test_covariance(run, draw):
    fig, caption = draw("covariance", inputs(run))
    t = run["table"]
    full = t["usable"] & t["parallax_usable"] & t[[f"mag_{b}" for b in BAND_NAMES]].notna().all(axis=1)
    sub = t[full]
    star = sub.loc[(sub["chi2_dof"] - sub["chi2_dof"].median()).abs().idxmin()]
    assert numbers(caption, rf"source_id {NUM}")[0] == star["source_id"]
    cat = run["catalog"].set_index("source_id").loc[int(star["source_id"])]
    got = numbers(caption, rf"photometry {NUM}, parallax {NUM}, labels \(J Cθ Jᵀ\) {NUM}, reddening \(σ²_E RRᵀ\) {NUM}")
    shown(got[0], max(cat[f"err_{b}"] for b in BAND_NAMES), 3)
    shown(got[1], 5 / np.log(10) * cat["parallax_error"] / cat["parallax"], 3)
    r = run["model"].reddening_vector(cat[["teff", "logg", "feh"]].to_numpy(np.float64))[0]
    shown(got[3], float(star["sigma_ebv_fit"]) * np.abs(r).max(), 3)
    axs = panels(fig)
    assert len(axs) == len(options("covariance", None)["panels"])
    for ax in axs:
        assert len(ax.patches) == 5  # photometry, parallax, labels, reddening, total
        assert len(data_lines(ax)) == 2  # the observation and the prediction
