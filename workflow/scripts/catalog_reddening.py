"""Adapter of rule reddening_prior: SFD / Bayestar19 reddening prior of every matched star."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.catalog.stages import run_reddening
from ddstars.logs import log_to_file

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
run_reddening(
    snakemake.input.matched,
    snakemake.input.gaia,
    snakemake.params.sfd_dir,
    snakemake.input.bayestar,
    snakemake.output[0],
    snakemake.params.options,
)
