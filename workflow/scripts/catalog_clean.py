"""Adapter of rules clean_<survey>: one archive table to its cleaned table, rejected rows and counts."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.catalog.stages import run_clean
from ddstars.logs import log_to_file

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
run_clean(snakemake.params.survey, snakemake.input.archive, dict(snakemake.output), snakemake.params.options)
