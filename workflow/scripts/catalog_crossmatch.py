"""Adapter of rule crossmatch_spectra: cleaned spectra to Gaia DR2 sources."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.catalog.stages import run_crossmatch
from ddstars.logs import log_to_file
from ddstars.registry import SPECTROSCOPIC

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
run_crossmatch(
    {s: snakemake.input[s] for s in SPECTROSCOPIC},
    snakemake.input.gaia,
    snakemake.input.gaia_rejected,
    snakemake.output.table,
    snakemake.output.report,
    snakemake.params.options,
)
