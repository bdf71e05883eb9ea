"""Adapter of rule simulate_release_dr3: the simulated sky's DR2-era tables rewritten as the DR3 era's."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.logs import log_to_file
from ddstars.simulate.release import DR2_INPUTS, DR3_TABLES, write_dr3

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
out = {name: snakemake.output[name] for name in (*DR3_TABLES, "truth_dr3")}
write_dr3({name: snakemake.input[name] for name in DR2_INPUTS}, snakemake.input.truth, out, snakemake.params.seed)
