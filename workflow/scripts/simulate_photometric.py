"""Adapter of rule simulate_photometric: the simulated sky's photometric-only sample (stars without spectra)."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.logs import log_to_file
from ddstars.simulate.photometric import TABLES, generate_photometric

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
paths = {name: snakemake.output[name] for name in (*TABLES, "truth", "manifest")}
generate_photometric({**snakemake.params.simulate, "photometric": snakemake.params.sample}, paths)
