"""The figures by name: what each reproduces, the inputs it reads, its default options, and where its code is.

Light by design: importing this module imports no matplotlib, scipy or numpy, so the Snakefile can read
:data:`FIGURES` and check the options of the config at parse time. Each :class:`Spec` names its drawing
function by module and function name; :func:`render` imports that one module only when it draws, so a
figure's job (and its code inputs) depend on its own module, not on every figure's.

A figure function takes an :class:`~ddstars.figures.inputs.Inputs` (lazy access to the evaluation table,
catalog, model, training history, reddening estimates, optional truth and comparison) and its options
(defaults here, overridden by ``validation.figures.<name>`` in the config), and returns the matplotlib figure
and a caption that states what it shows and the numbers on it. :func:`render` writes the PDF, the PNG and
the caption atomically.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..validation.colours import NEIGHBOUR_COLOURS

if TYPE_CHECKING:
    from .inputs import Inputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Spec:
    """A figure: the module and function that draw it, the paper's figure it reproduces, the inputs it reads
    (keys of :class:`~ddstars.figures.inputs.Inputs`), its default options."""

    module: str
    function: str
    paper: str
    inputs: tuple[str, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def func(self) -> Callable[[Inputs, Mapping[str, Any]], tuple[Any, str]]:
        """The drawing function, imported on first use."""
        return getattr(importlib.import_module(self.module), self.function)


TEFF_RANGE = [3500.0, 8500.0]
COLOUR_COLOUR = {
    "n_points": 5000,
    "seed": 1,
    "arrow_ebv": 0.3,
    "pairs": [
        [["ps1_g", "ps1_r"], ["ps1_r", "ps1_i"]],
        [["gaia_bp", "gaia_g"], ["gaia_g", "gaia_rp"]],
        [["tmass_j", "tmass_h"], ["tmass_h", "tmass_ks"]],
        [["tmass_ks", "unwise_w1"], ["unwise_w1", "unwise_w2"]],
    ],
}
FIGURES: dict[str, Spec] = {
    "covariance": Spec(
        "ddstars.figures.covariance",
        "fig_covariance",
        "Fig. 2",
        ("table", "catalog", "model"),
        {
            "panels": [
                [["ps1_g", "ps1_r"], ["ps1_r", "ps1_i"]],
                [["tmass_j", "tmass_h"], ["tmass_h", "tmass_ks"]],
                [["gaia_bp", "gaia_rp"], ["gaia_g", None]],
            ]
        },
    ),
    "filters": Spec("ddstars.figures.passbands", "fig_filters", "Fig. 4", ()),
    "labels": Spec(
        "ddstars.figures.training",
        "fig_labels",
        "Fig. 5",
        ("catalog", "reddening"),
        {"bins": 80, "teff_range": TEFF_RANGE, "logg_range": [0.0, 5.5], "feh_range": [-2.5, 0.8], "ebv_max": 2.0},
    ),
    "cmd": Spec(
        "ddstars.figures.photometry",
        "fig_cmd",
        "Fig. 6",
        ("table", "model"),
        {"bins": 150, "colour_range": [-0.2, 2.5], "mag_range": [-3.0, 9.0], "arrow_ebv": 0.5, "arrow_at": [1.8, 0.0]},
    ),
    "cmd_labels": Spec(
        "ddstars.figures.photometry",
        "fig_cmd_labels",
        "Fig. 7",
        ("table",),
        {"bins": 80, "min_count": 3, "colour_range": [-0.2, 2.0], "mag_range": [-3.0, 9.0]},
    ),
    "colour_colour_logg": Spec(
        "ddstars.figures.photometry", "fig_colour_colour_logg", "Fig. 8", ("table", "model"), COLOUR_COLOUR
    ),
    "colour_colour_feh": Spec(
        "ddstars.figures.photometry", "fig_colour_colour_feh", "Fig. 9", ("table", "model"), COLOUR_COLOUR
    ),
    "reddening_teff": Spec(
        "ddstars.figures.reddening",
        "fig_reddening_teff",
        "Fig. 10",
        ("table", "model", "truth"),
        {
            "bands": ["gaia_g", "gaia_bp", "gaia_rp", "ps1_g", "ps1_r", "ps1_i", "ps1_z", "ps1_y", "tmass_j"],
            "bins": 60,
            "min_count": 10,
            "teff_range": [4000.0, 8000.0],
            "dr_range": [-0.2, 0.2],
            "rv": 3.1,
        },
    ),
    "reddening_slopes": Spec(
        "ddstars.figures.reddening",
        "fig_reddening_slopes",
        "Fig. 11",
        ("table", "model"),
        {
            "triples": [
                ["ps1_g", "ps1_r", "ps1_i"],
                ["ps1_r", "ps1_i", "ps1_z"],
                ["ps1_i", "ps1_z", "ps1_y"],
                ["ps1_z", "ps1_y", "tmass_j"],
                ["ps1_y", "tmass_j", "tmass_h"],
                ["tmass_j", "tmass_h", "tmass_ks"],
                ["tmass_h", "tmass_ks", "unwise_w1"],
                ["tmass_ks", "unwise_w1", "unwise_w2"],
                ["ps1_y", "tmass_j", "tmass_ks"],
            ],
            "rv_values": [2.5, 3.1, 3.3, 4.0, 5.0],
        },
    ),
    "residual_scores": Spec(
        "ddstars.figures.residuals",
        "fig_residual_scores",
        "Fig. 12",
        ("table", "compare_table"),
        {
            "colours": [["ps1_r", "ps1_i"], ["tmass_j", "tmass_h"], ["unwise_w1", "unwise_w2"], ["ps1_r", "gaia_g"]],
            "bins": 40,
            "score_limit": 4.0,
            "ranges": {"teff": [4000.0, 8000.0], "logg": [1.0, 5.0], "feh": [-2.0, 0.5], "ebv_fit": [0.0, 1.0]},
        },
    ),
    "residual_density": Spec(
        "ddstars.figures.residuals",
        "fig_density",
        "Fig. 13",
        ("table", "catalog"),
        {
            "bands": ["ps1_r", "tmass_j", "unwise_w1"],
            "bandwidth": [50.0, 0.05, 0.05],
            "teff_range": [2500.0, 9000.0],
            "logg_range": [-2.0, 7.0],
            "feh_range": [-2.5, 1.0],
            "bins": 12,
            "min_count": 20,
            "log_density_range": [-4.0, 0.0],
            "report_density": 1e-2,
        },
    ),
    "residual_maps": Spec(
        "ddstars.figures.residuals",
        "fig_residual_maps",
        "§6 residual maps",
        ("table", "compare_table"),
        {
            "colours": [list(c) for c in NEIGHBOUR_COLOURS],
            "bins": 40,
            "min_count": 10,
            "teff_range": TEFF_RANGE,
            "logg_range": [0.5, 5.2],
            "residual_limit": 0.05,
        },
    ),
    "chi2": Spec(
        "ddstars.figures.residuals",
        "fig_chi2",
        "§6 χ² distribution",
        ("table", "compare_table"),
        {"bins": 100, "max": 10.0},
    ),
    "nonlinearity": Spec("ddstars.figures.passbands", "fig_nonlinearity", "Appendix B", (), {"appendix_b": {}}),
    "reddening_refit": Spec(
        "ddstars.figures.reddening",
        "fig_reddening_refit",
        "§6 reddening estimates",
        ("table", "truth"),
        {"bins": 100, "ebv_max": 2.0},
    ),
    "residual_dust": Spec(
        "ddstars.figures.reddening",
        "fig_residual_dust",
        "§7 variable dust, after the fact",
        ("table", "model", "truth"),
        {"e_min": 0.3, "e_clean": 0.05, "rv": 3.1},
    ),
    "extinction_components": Spec(
        "ddstars.figures.reddening",
        "fig_extinction_components",
        "§7 Eq. 20 reddening components",
        ("table", "model", "truth", "catalog"),
        {"e_min": 0.3, "ratio_limit": 0.05},
    ),
    "history": Spec("ddstars.figures.training", "fig_history", "§4 training history", ("history", "rounds"), {}),
}


def options(name: str, user: Mapping[str, Any] | None) -> dict[str, Any]:
    """A figure's options: its defaults overridden by the config; unknown keys are a config error."""
    spec = FIGURES[name]
    user = dict(user or {})
    unknown = sorted(set(user) - set(spec.defaults))
    if unknown:
        raise ConfigError(
            f"validation.figures.{name}: unknown option(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(spec.defaults)) or '(none)'}"
        )
    return {**spec.defaults, **user}


def render(
    name: str,
    inp: Inputs,
    user_options: Mapping[str, Any] | None,
    pdf: str | Path,
    png: str | Path,
    caption: str | Path,
    dpi: int = 150,
) -> str:
    """Draw figure ``name`` and write its PDF, PNG and caption (each atomically); returns the caption.

    Imports the figure's own module (and with it matplotlib) here, not when the registry is imported."""
    spec = FIGURES[name]
    fig, text = spec.func(inp, options(name, user_options))
    from .plotting import save  # after the figure module, which selects the Agg backend

    text = f"{spec.paper}. {text}"
    save(fig, text, pdf, png, caption, dpi)
    log.info("%s: %s", name, text)
    return text


DOC = Path(__file__).resolve().parents[3] / "docs" / "figures.md"


def render_doc() -> str:
    """docs/figures.md: every figure rule, the paper's figure, its inputs, its module and default options (imports
    every figure module for the first line of each function's docstring)."""
    import json

    lines = [
        "# Figures",
        "",
        "Each figure is one Snakemake rule, `figure_<name>`, writing `results/figures/<name>.pdf`, `.png` and a",
        "caption `.txt` with the numbers it shows; `results/validation/report.md` collects them. Options go under",
        "`validation.figures.<name>` in the config (a changed option reruns only that figure; an unknown one stops",
        "the run). This page is generated (`python -m ddstars.figures`); edit the code, not the page.",
        "",
        "| name | reproduces | reads | code | what it shows |",
        "|---|---|---|---|---|",
    ]
    for name, spec in FIGURES.items():
        doc = (spec.func.__doc__ or "").strip().splitlines()[0]
        code = f"`{spec.module}.{spec.function}`"
        lines.append(f"| `{name}` | {spec.paper} | {', '.join(spec.inputs) or '-'} | {code} | {doc} |")
    lines += ["", "## Default options", ""]
    for name, spec in FIGURES.items():
        lines += [f"### `{name}`", "", "```json", json.dumps(dict(spec.defaults), indent=1), "```", ""]
    return "\n".join(lines)


def run_figure(
    name: str,
    inputs: Mapping[str, Any],
    out: Mapping[str, str | Path],
    options: Mapping[str, Any] | None,
    dpi: int = 150,
    compare_label: str | None = None,
) -> str:
    """Rule figure_<name>: draw one figure from its inputs (keys of :class:`ddstars.figures.inputs.Inputs`)."""
    from .inputs import Inputs

    paths = {k: (str(Path(v[0]).parent) if k == "model" else str(v)) for k, v in inputs.items() if k != "code"}
    return render(
        name, Inputs(paths, compare_label=compare_label), options, out["pdf"], out["png"], out["caption"], dpi
    )
