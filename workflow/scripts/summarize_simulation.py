"""Adapter of rule summarize_simulation: what the simulated sky holds, against its configuration."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars import provenance
from ddstars.logs import log_to_file
from ddstars.simulate.summary import summarize

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
summarize(
    truth_path=snakemake.input.truth,
    sfd_dir=snakemake.input.sfd_ngp.rsplit("/", 1)[0],
    bayestar_path=snakemake.input.bayestar,
    cfg=snakemake.params.simulate,
    summary_path=snakemake.output.summary,
    coverage_path=snakemake.output.coverage,
)
provenance.write(snakemake.output.provenance, "simulation", {"simulate": snakemake.params.simulate})
