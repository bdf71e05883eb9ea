"""Adapter of rule validation_summary: results/validation/summary.json."""

import os
from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ddstars.logs import log_to_file  # noqa: E402
from ddstars.validation.summary import run_summary  # noqa: E402

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
inp = snakemake.input
run_summary(
    inp.table,
    os.path.dirname(inp.model[0]),
    inp.catalog,
    snakemake.output,
    colours=snakemake.params.colours,
    truth_path=inp.get("truth"),
    compare=snakemake.params.compare,
    compare_table_path=inp.get("compare_table"),
    appendix_b_options=snakemake.params.appendix_b,
    training_summary_path=inp.training,
)
