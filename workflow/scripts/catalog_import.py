"""Adapter of rule import_catalog: the user's own catalog (catalog.external) into results/catalog/stars/."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.catalog.external import run_import
from ddstars.logs import log_to_file

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
run_import(snakemake.input.catalog, snakemake.output.catalog, snakemake.output.report, snakemake.params.options)
