"""Adapter of rule provision_dustmaps: check the dust-map files and write the report, or stop with instructions.

The report goes to ``results/dustmaps/provision.json`` only when every file passes; otherwise the rule fails
with a message saying what to download, where to put it and how to verify it (ddstars.dustmaps_provision).
``dustmaps`` is configured per run (its config file beside the report), never through ``~/.dustmapsrc``.
"""

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.dustmaps_provision import DustMapProvisionError, dustmaps_config_env, provision
from ddstars.io import write_json
from ddstars.logs import log_to_file

if TYPE_CHECKING:
    from snakemake.script import snakemake

log = log_to_file(snakemake.log[0])
out = Path(snakemake.output.report)
dustmaps_config_env(out.parent / "dustmaps_config")
try:
    report = provision(
        snakemake.params.sfd_dir,
        snakemake.params.bayestar_file,
        checksums=snakemake.params.checksums,
        require_full_size=snakemake.params.require_full_size,
        smoke_query=True,
        simulated=not snakemake.params.require_full_size,  # the simulated backend's maps
    )
except DustMapProvisionError as err:
    logging.getLogger("ddstars").error("%s", err)
    raise SystemExit(f"\n{err}\n") from None
write_json(report, out)
log.info("dust maps ready: %s", ", ".join(e["path"] for e in report["files"].values()))
