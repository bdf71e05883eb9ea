"""Adapter of the figure_<name> rules: one paper figure as PDF, PNG and caption."""

import os
from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ddstars.figures import run_figure  # noqa: E402
from ddstars.logs import log_to_file  # noqa: E402

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
p = snakemake.params
inputs = {k: snakemake.input[k] for k in snakemake.input.keys()}
run_figure(p.name, inputs, snakemake.output, p.options, p.dpi, p.compare_label)
