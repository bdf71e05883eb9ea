"""Adapter of rules hats_catalog and hats_inference: a partitioned dataset (the catalog folder, or the files the
inference groups' manifests list) written as a HATS collection, and its summary."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.hatsio import run_hats
from ddstars.logs import log_to_file

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
source = snakemake.input.catalog if "catalog" in snakemake.input.keys() else list(snakemake.input.manifests)
run_hats(
    source,
    snakemake.output.collection,
    snakemake.output.report,
    snakemake.params.name,
    snakemake.params.description,
    threads=snakemake.threads,
    **snakemake.params.options,
)
