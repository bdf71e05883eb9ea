"""Adapter of rule inference_figures: the stage's stars against the truth, the PIT, Kiel, CMD, dust and examples."""

import os
from pathlib import Path
from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ddstars.figures.inference import render_all  # noqa: E402
from ddstars.inference.summary import figure_table  # noqa: E402
from ddstars.logs import log_to_file  # noqa: E402
from ddstars.model import load_model  # noqa: E402

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
stars = figure_table(snakemake.input.manifests, snakemake.input.get("truth"), snakemake.params.bayestar_file)
model = load_model(os.path.dirname(snakemake.input.model[0]), outside="ignore")
render_all(stars, Path(snakemake.output[0]).parent, dpi=snakemake.params.dpi, model=model)
