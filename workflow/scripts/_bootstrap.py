"""Make the workflow's own package (src/ddstars) importable in any environment that runs a job.

Snakemake puts this folder on ``sys.path`` before running a script, so every script imports this module
first. A per-rule conda env or a SLURM job then uses the package of this checkout without installing it.
"""

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))
