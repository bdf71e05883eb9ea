"""Adapter of rule table1: the paper's Table 1 (stars per survey and band) from the catalog."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.catalog.stages import run_table1
from ddstars.logs import log_to_file

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
run_table1(snakemake.input.catalog, snakemake.output.csv, snakemake.output.md)
