"""Adapter of rule match_photometry: PS1, 2MASS and unWISE photometry of the matched Gaia sources."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.catalog.stages import run_photometry
from ddstars.logs import log_to_file

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
tables = {
    k: snakemake.input[k]
    for k in (
        "ps1",
        "ps1_rejected",
        "tmass",
        "tmass_rejected",
        "unwise",
        "panstarrs1_best_neighbour",
        "tmass_best_neighbour",
    )
}
run_photometry(
    snakemake.input.matched,
    snakemake.input.gaia,
    tables,
    snakemake.output.table,
    snakemake.output.report,
    snakemake.params.options,
)
