"""Adapter of rule simulate_sky: unpack the snakemake object and call ddstars.simulate.sky.generate."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.logs import log_to_file
from ddstars.simulate.sky import TABLES, generate

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
paths = {name: snakemake.output[name] for name in (*TABLES, "truth", "manifest")}
generate(snakemake.params.simulate, paths)
