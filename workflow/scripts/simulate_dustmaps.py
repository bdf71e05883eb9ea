"""Adapter of rule simulate_dustmaps: write the SFD-like and Bayestar19-like maps of the simulated dust."""

from pathlib import Path
from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.logs import log_to_file
from ddstars.simulate.maps import write_maps

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
cfg = {"seed": snakemake.params.seed, "galaxy": snakemake.params.galaxy, "dust": snakemake.params.dust}
write_maps(cfg, sfd_dir=Path(snakemake.output.sfd_ngp).parent, bayestar_path=snakemake.output.bayestar)
