"""Adapter of rule infer_group: one group of HEALPix partitions through the photometric inference."""

import os
from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ddstars.inference.stage import run_group  # noqa: E402
from ddstars.logs import log_to_file  # noqa: E402

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
p = snakemake.params
run_group(
    os.path.dirname(snakemake.input.model[0]),
    p.source,
    p.out_dir,
    snakemake.output.manifest,
    int(snakemake.wildcards.group),
    p.options,
    split=p.split,
    order=p.order,
    sfd_dir=p.sfd_dir,
    bayestar_file=p.bayestar_file,
    simulated_galaxy=p.simulated_galaxy,
    threads=snakemake.threads,
)
