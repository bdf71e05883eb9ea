"""Adapter of the plan_<table> checkpoints: the chunks of one remote archive table (backend: remote)."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.logs import log_to_file
from ddstars.remote.stage import run_plan

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
upstream = {k: v for k, v in snakemake.input.items() if k != "code"}
run_plan(snakemake.params.table, upstream, snakemake.config, snakemake.output.plan)
