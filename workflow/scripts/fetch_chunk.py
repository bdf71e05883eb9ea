"""Adapter of the fetch_chunk_<table> rules: one planned chunk into the raw cache (backend: remote)."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.logs import log_to_file
from ddstars.remote.stage import run_chunk

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
run_chunk(
    snakemake.params.table, snakemake.wildcards.chunk, snakemake.config, snakemake.input.plan, snakemake.output.marker
)
