# Shared set-up: config validation, output paths, helpers. Stage files hold only rules.
from pathlib import Path

from snakemake.utils import validate

# Stop before any job runs if the config has an unknown key, a wrong type or a value out of range;
# the message names the key (jsonschema path) and the value found.
validate(config, schema="../schemas/config.schema.yaml")

SRC = Path(workflow.basedir) / "src"

SIM = "resources/simulated"
SIM_TABLES = [
    "gaia_source",
    "panstarrs1_best_neighbour",
    "tmass_best_neighbour",
    "ps1_mean_object",
    "tmass_psc",
    "unwise",
    "lamost_dr5_ddpayne",
    "apogee_dr16_allstar",
    "galah_dr2",
]


def package_code(*subpackages):
    """Package modules a rule depends on, listed as inputs so that a code change reruns the rule."""
    root = SRC / "ddstars"
    files = sorted(str(p) for sub in subpackages for p in (root / sub).glob("*.py"))
    return files + [str(root / "bands.py"), str(root / "io.py")]


def default_targets():
    """Outputs of the default run."""
    return [
        "results/simulation/summary.json",
    ]
