"""Adapter of rule build_catalog: the HEALPix-partitioned training catalog and its ledger."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars import provenance
from ddstars.catalog.stages import run_build
from ddstars.io import read_json
from ddstars.logs import log_to_file

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
inputs = {k: snakemake.input[k] for k in ("matched", "crossmatch", "offsets", "gaia", "photometry", "reddening")}
inputs["counts"] = dict(zip(snakemake.params.surveys, snakemake.input.counts, strict=True))
run_build(inputs, snakemake.output.catalog, snakemake.output.report, snakemake.params.options)
# the dust maps the reddening prior read, as rule provision_dustmaps checked them (path, size, MD5)
maps = read_json(snakemake.input.provision)["files"]
provenance.write(
    snakemake.output.provenance,
    "catalog",
    snakemake.params.provenance,
    dust_maps={name: {k: e[k] for k in ("path", "size", "checksum")} for name, e in maps.items()},
)
