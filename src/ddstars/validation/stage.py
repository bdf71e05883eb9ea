"""Entry points of the validation rules: evaluation table, summary, figures and report."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .. import provenance
from ..bands import BAND_NAMES
from ..errors import ConfigError
from ..io import atomic_path, read_json, write_json, write_parquet
from . import evaluate as ev

log = logging.getLogger(__name__)


def load_any_model(spec: str | Path, normalisation: str | Path | None = None):
    """A model from a config value: "published" (the released Green et al. network), a released-layout
    ``.h5`` file (with its normalisation JSON), or a folder / ``.keras`` file of this project."""
    from ..model import load_model
    from ..model.published import load_published

    spec = str(spec)
    if spec == "published":
        return load_published()
    if spec.endswith(".h5"):
        if normalisation is None:
            raise ConfigError(
                f"validation.compare: {spec} is a released-layout .h5 file; give its `normalisation` JSON"
            )
        return load_published(spec, normalisation)
    return load_model(spec)


def run_evaluate(
    catalog: str | Path,
    model: str | Path | Mapping[str, Any],
    out: str | Path,
    colours: Sequence[Sequence[str]] | None,
    train_options: Mapping[str, Any] | None,
) -> pd.DataFrame:
    """Evaluate a model (folder, or a ``validation.compare`` mapping) on the catalog's test split."""
    from ..model.data import read_stars

    m = (
        load_any_model(model["model"], model.get("normalisation"))
        if isinstance(model, Mapping)
        else load_any_model(model)
    )
    stars = read_stars(catalog, split="test")
    table = ev.evaluate(m, stars, train_options, ev.parse_colours(colours))
    write_parquet(table, out)
    return table


def _survey(catalog: str | Path, source_ids) -> pd.Series:
    from ..catalog.build import read_catalog

    cat = read_catalog(catalog, columns=["source_id", "survey", "split"])
    cat = cat[cat["split"] == "test"].set_index("source_id")
    return cat.loc[source_ids, "survey"]


def run_summary(
    table_path: str | Path,
    model_dir: str | Path,
    catalog: str | Path,
    out: Mapping[str, str | Path],
    colours: Sequence[Sequence[str]] | None = None,
    truth_path: str | Path | None = None,
    compare: Mapping[str, Any] | None = None,
    compare_table_path: str | Path | None = None,
    appendix_b_options: Mapping[str, Any] | None = None,
    training_summary_path: str | Path | None = None,
) -> dict[str, Any]:
    """Write results/validation/summary.json (see :mod:`.summary`) and its provenance."""
    from ..model import load_model
    from . import extinction, summary

    table = pd.read_parquet(table_path)
    model = load_model(model_dir)
    truth = None
    if truth_path:
        cols = ["source_id", "true_teff", "true_logg", "true_feh", "true_ebv", "dm"]
        cols += [f"true_{q}_{b}" for q in ("r", "ext", "mag") for b in BAND_NAMES]
        truth = pd.read_parquet(truth_path, columns=cols).set_index("source_id")
    comparison = None
    if compare:
        comparison = (
            compare["label"],
            load_any_model(compare["model"], compare.get("normalisation")),
            pd.read_parquet(compare_table_path),
        )
    doc = summary.summarize(
        model,
        table,
        ev.parse_colours(colours),
        extinction.appendix_b(**dict(appendix_b_options or {})),
        survey=_survey(catalog, table["source_id"].to_numpy()),
        truth=truth,
        comparison=comparison,
        training=read_json(training_summary_path) if training_summary_path else None,
    )
    write_json(doc, out["summary"])
    model_files = [Path(model_dir) / "model.keras", Path(model_dir) / "normalisation.json"]
    provenance.write(
        out["provenance"],
        "validation_summary",
        {"colours": colours, "compare": compare},
        model=str(model_dir),
        files_read=provenance.files_read([f for f in model_files if f.is_file()]),
    )
    return doc


def run_figure(
    name: str,
    inputs: Mapping[str, Any],
    out: Mapping[str, str | Path],
    options: Mapping[str, Any] | None,
    dpi: int = 150,
    compare_label: str | None = None,
) -> str:
    """Draw one figure from its inputs (keys of :class:`ddstars.figures.inputs.Inputs`)."""
    from ..figures import render
    from ..figures.inputs import Inputs

    paths = {k: (str(Path(v[0]).parent) if k == "model" else str(v)) for k, v in inputs.items() if k != "code"}
    return render(
        name, Inputs(paths, compare_label=compare_label), options, out["pdf"], out["png"], out["caption"], dpi
    )


#: Above this fraction of test stars with χ²/dof ≥ 5 (the paper's: 2.4 %) the report starts with a warning.
SUSPECT_GE5 = 0.10


def write_report(
    summary_path: str | Path, table1_path: str | Path, captions: Sequence[str | Path], out: str | Path
) -> None:
    """A one-page Markdown report: the key numbers, Table 1 and every figure with its caption."""
    s = read_json(summary_path)
    out = Path(out)
    c = s["chi2"]
    lines = ["# Validation report", ""]
    training = s.get("training") or {}
    if training.get("converged") is False:
        lines += [
            f"> **WARNING: the model has not converged.** {training['convergence'].get('advice', '')}. Every number "
            "and figure below comes from an under-trained model.",
            "",
        ]
    ge5 = c.get("fraction_chi2_dof_ge5")
    if ge5 is not None and ge5 > SUSPECT_GE5:
        lines += [
            f"> **WARNING: {100 * ge5:.1f}% of the test stars have χ²/dof ≥ 5** (paper: 2.4%): the model does not "
            "describe them. Typical causes: a model that has not converged, a band in the wrong photometric system "
            "(results/catalog/import.json for a catalog of your own), or labels on another scale.",
            "",
        ]
    lines += [
        "Generated by the workflow (rule validation_report) from `results/validation/summary.json`; every figure "
        "is the PNG copy of the PDF beside it in `results/figures/`.",
        "",
        "## Key numbers (test split)",
        "",
        "The value column is this run's test split. The paper column is Green et al. (2021) on its own test stars "
        "(real Gaia/PS1/2MASS/unWISE stars with LAMOST/APOGEE/GALAH labels; the χ² numbers are those of the "
        "published model's test subset, METHOD.md §8): the same definitions, other stars. χ² is "
        f"{c.get('definition', '')}.",
        "",
        "| quantity | value | paper |",
        "|---|---|---|",
        f"| converged (results/model/summary.json) | {training.get('converged')} | |",
        f"| usable test stars | {c.get('n', 0)} | |",
        f"| ⟨χ²/dof⟩, χ²/dof < 5 | {c.get('mean_chi2_dof_lt5', float('nan')):.3f} | 0.778 |",
        f"| ⟨χ²/dof⟩, χ²/dof < 10 | {c.get('mean_chi2_dof_lt10', float('nan')):.3f} | 0.865 |",
        f"| fraction with χ²/dof ≥ 5 | {100 * c.get('fraction_chi2_dof_ge5', float('nan')):.2f}% | 2.4% |",
    ]
    td = c.get("training_definition")
    if td:
        lines.append(
            f"| ⟨χ²/dof⟩ < 5, < 10 with training's diagonal inflation (not the paper's definition) | "
            f"{td.get('mean_chi2_dof_lt5', float('nan')):.3f}, {td.get('mean_chi2_dof_lt10', float('nan')):.3f} | |"
        )
    lines += [
        f"| ΔA_G at A_G = 1 (6000 K, Appendix B) | {s['appendix_b']['delta_a_ref_numerical']:.4f} mag | −0.037 mag |",
        f"| R_G at the median θ | {s['reddening_vector']['at_median_theta']['gaia_g']:.3f} | |",
    ]
    if "truth" in s:
        t = s["truth"]
        worst = max(abs(v) for b, v in t["reddening_vector_relative_error"].items() if not b.startswith("unwise"))
        fit = t["ebv_fit_vs_true"]
        rec = t["reddening_vector_recovery"]
        lines += [
            f"| largest |R/R_true - 1|, G to Ks (simulated truth) | {100 * worst:.1f}% | |",
            f"| R = k R_true + c (G to Ks): k, c, largest residual | {rec['k']:.3f}, {rec['c']:+.3f}, "
            f"{100 * rec['max_abs_residual']:.1f}% ({'meets' if rec['ok'] else 'FAILS'} the criterion) | |",
            f"| E′ vs true E: slope, scatter | {fit['slope']:.3f}, {fit['scatter']:.4f} | |",
        ]
    if "comparison" in s:
        cc, label = s["comparison"]["chi2"], s["comparison"]["label"]
        lines.append(f"| comparison ({label}): ⟨χ²/dof⟩ < 10 | {cc.get('mean_chi2_dof_lt10', float('nan')):.3f} | |")
    lines += [
        "",
        "## Table 1: stars per survey and band",
        "",
        Path(table1_path).read_text().strip(),
        "",
        "## Figures",
        "",
    ]
    for cap in captions:
        cap = Path(cap)
        name = cap.stem
        rel = Path("..") / "figures"
        lines += [
            f"### {name}",
            "",
            f"![{name}]({rel / (name + '.png')})",
            "",
            cap.read_text().strip() + f" ([PDF]({rel / (name + '.pdf')}))",
            "",
        ]
    with atomic_path(out) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
