"""Adapter of rule photometric_input: the photometric-only sample through the catalog's cuts and cross-matches."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.catalog.photometric_input import TABLES, photometric_input
from ddstars.logs import log_to_file

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
archives = {name: snakemake.input[name] for name in TABLES}
photometric_input(archives, snakemake.output.table, snakemake.params.options, snakemake.output.report)
