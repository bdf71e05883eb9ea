"""Adapter of rule match_photometry: PS1, 2MASS and unWISE photometry of the matched Gaia sources."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.catalog.stages import run_photometry
from ddstars.logs import log_to_file

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
# the cleaned PS1, 2MASS and unWISE tables and the best-neighbour tables, under their input names
tables = {k: v for k, v in snakemake.input.items() if k not in ("matched", "gaia", "code")}
run_photometry(
    snakemake.input.matched,
    snakemake.input.gaia,
    tables,
    snakemake.output.table,
    snakemake.output.report,
    snakemake.params.options,
)
