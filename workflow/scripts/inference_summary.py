"""Adapter of rule inference_summary: calibration, accuracy (with a prior-only baseline) and speed."""

import os
from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ddstars.inference.summary import summarize  # noqa: E402
from ddstars.logs import log_to_file  # noqa: E402

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
p = snakemake.params
summarize(
    snakemake.input.manifests,
    snakemake.output.summary,
    snakemake.output.accuracy,
    p.options,
    model_dir=os.path.dirname(snakemake.input.model[0]),
    truth_path=snakemake.input.get("truth"),
    sfd_dir=p.sfd_dir,
    bayestar_file=p.bayestar_file,
    simulated_galaxy=p.simulated_galaxy,
)
