"""Adapter of rules evaluate_test and evaluate_comparison: a model evaluated on the test split."""

import os
from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ddstars.logs import log_to_file  # noqa: E402
from ddstars.validation.stage import run_evaluate  # noqa: E402

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
model = snakemake.params.get("compare") or os.path.dirname(snakemake.input.model[0])
run_evaluate(snakemake.input.catalog, model, snakemake.output.table, snakemake.params.colours, snakemake.params.train)
