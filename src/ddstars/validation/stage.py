"""Entry points of the validation rules: evaluation table, summary, figures and report."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ConfigError
from ..io import write_parquet
from . import evaluate as ev
from .colours import parse_colours

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
    table = ev.evaluate(m, stars, train_options, parse_colours(colours))
    write_parquet(table, out)
    return table
