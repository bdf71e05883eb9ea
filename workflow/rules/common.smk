# Shared set-up: config validation, output paths, helpers. Stage files hold only rules.
import sys
from pathlib import Path

from snakemake.utils import validate

SRC = Path(workflow.basedir) / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))  # the archive interface decides where each archive table lives

from ddstars.configcheck import check_config, check_paths  # noqa: E402

# Stop before any job runs if the config has an unknown key, a wrong type or a value out of range, with one
# line per problem naming the key (check_config); then Snakemake's own validation, which fills defaults.
check_config(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")
validate(config, schema="../schemas/config.schema.yaml")

from ddstars import registry  # noqa: E402
from ddstars.archives import table_path  # noqa: E402
from ddstars.validation.figures import FIGURES, options as figure_options  # noqa: E402

SIM = "resources/simulated"
SIM_TABLES = list(registry.TABLES)  # every archive table of the registry (ddstars.registry)


# Config paths that are not there and that no rule makes stop the run here, naming the key and the file.
check_paths(config, SIM)


def package_code(*subpackages):
    """Package modules a rule depends on, listed as inputs so that a code change reruns the rule."""
    root = SRC / "ddstars"
    files = sorted(str(p) for sub in subpackages for p in (root / sub).glob("*.py"))
    return files + [str(root / "bands.py"), str(root / "io.py")]


CAT = "results/catalog"
MODEL = "results/model"
CATALOG_SCHEMA = str(Path(workflow.basedir) / "workflow" / "schemas" / "catalog.schema.yaml")
SPECTRO_SURVEYS = list(registry.SPECTROSCOPIC)


CLEAN_OPTIONS = {
    "photometric": ["mag_error_floor", "mag_error_max"],
    "spectroscopic": ["label_floor", "label_sigma_max"],
}


def clean_params(survey):
    """Only the config values a survey's cleaning reads, so editing one survey's cut reruns only it."""
    kind = "spectroscopic" if survey in SPECTRO_SURVEYS else "photometric"
    keys = CLEAN_OPTIONS[kind] + (["apogee_cov_indices"] if survey == "apogee" else [])
    return {k: config["catalog"][k] for k in keys}


SURVEY_ARCHIVE = registry.SURVEY_TABLES  # survey -> the archive table cleaned into it


def archive_table(name):
    """Path of an archive table under the configured backend (simulated: resources/simulated/archives/)."""
    return str(table_path(config, name))


def external_catalog():
    """The user's own catalog (config catalog.external), or None when the workflow builds it."""
    return config["catalog"].get("external")


def catalog_dataset():
    """The training catalog every later stage reads: written by rule build_catalog, or by rule import_catalog
    from the user's own (catalog.external)."""
    return f"{CAT}/stars"


# Archive queries of the remote backend (archives.smk), in dependency order.
REMOTE_TABLES = list(registry.release().query_order())


def remote_upstream(table):
    """The archive tables whose rows ``table``'s queries need (uploads, id lists); [] for the first ones."""
    return list(registry.TABLES[table].upstream_tables)

# Validation stage (validation.smk)
VAL = "results/validation"
FIG = "results/figures"


# Unknown figure options stop the run here, before any job, with the figure and key named.
for _name in FIGURES:
    figure_options(_name, config["validation"]["figures"].get(_name))

MODEL_FILES = [f"{MODEL}/model.keras", f"{MODEL}/normalisation.json"]


def compare_config():
    return config.get("validation", {}).get("compare")


def compare_inputs():
    """The files the comparison model is read from, so that a changed file reruns its evaluation."""
    c = compare_config() or {}
    spec = str(c.get("model", ""))
    if not spec:
        return []
    if spec == "published":
        root = Path(workflow.basedir) / "resources" / "published" / "green2020"
        return [str(root / "green2020_nn_model.h5"), str(root / "green2020_theta_normalization.json")]
    if spec.endswith(".h5"):
        return [spec] + ([c["normalisation"]] if c.get("normalisation") else [])
    if spec.endswith(".keras"):
        return [spec, str(Path(spec).parent / "normalisation.json")]
    return [f"{spec}/model.keras", f"{spec}/normalisation.json"]


def truth_table():
    """The simulated truth, where the catalog comes from the built-in sky (else no truth is shown)."""
    if config["backend"] == "simulated" and not external_catalog():
        return f"{SIM}/truth.parquet"
    return None


def figure_inputs(name):
    """The files figure ``name`` reads, by the keys of ddstars.validation.figures.Inputs."""
    files = {
        "table": f"{VAL}/test_stars.parquet",
        "model": MODEL_FILES,
        "catalog": catalog_dataset(),
        "reddening": f"{MODEL}/reddening.parquet",
        "history": f"{MODEL}/history.csv",
        "rounds": f"{MODEL}/rounds.csv",
        "truth": truth_table(),
        "compare_table": f"{VAL}/compare/test_stars.parquet" if compare_config() else None,
    }
    keys = FIGURES[name].inputs
    return {k: files[k] for k in keys if files[k]}



def default_targets():
    """Outputs of the default run."""
    targets = [
        f"{CAT}/table1.csv",
        f"{CAT}/table1.md",
        f"{CAT}/validation.json",
        f"{MODEL}/summary.json",
        "results/validation/summary.json",
        "results/validation/report.md",
    ]
    if external_catalog():
        targets.append(f"{CAT}/import.json")
    else:
        targets.append(f"{CAT}/offsets.json")
        if config["backend"] == "simulated":
            targets.insert(0, "results/simulation/summary.json")
    return targets
