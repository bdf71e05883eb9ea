"""Adapter of the fetch_<table> rules: the fetched chunks of one archive table, assembled (backend: remote)."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.logs import log_to_file
from ddstars.remote.stage import run_assemble

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
run_assemble(snakemake.params.table, snakemake.config, snakemake.input.plan, snakemake.output.table)
