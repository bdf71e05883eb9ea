"""Adapter of rule zero_point_offsets: survey label offsets relative to the reference survey."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.catalog.stages import run_offsets
from ddstars.logs import log_to_file

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
run_offsets(snakemake.input.matched, snakemake.output[0], snakemake.params.options)
