"""Adapter of rule check_catalog: check the catalog (built or the user's own) against its schema."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.catalog.stages import run_check
from ddstars.logs import log_to_file

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
run_check(snakemake.input.catalog, snakemake.output[0], snakemake.params.order, snakemake.params.external)
