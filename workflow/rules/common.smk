# Shared set-up: config validation, output paths, helpers. Stage files hold only rules.
import os
import sys
from pathlib import Path

from snakemake.utils import validate

SRC = Path(workflow.basedir) / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))  # the archive interface decides where each archive table lives

from ddstars.configcheck import check_config  # noqa: E402

# Stop before any job runs if the config has an unknown key, a wrong type, a value out of range, values that
# contradict each other or a path that is not there and that no rule makes, with one line per problem naming
# the key (check_config); then Snakemake's own validation, which fills defaults.
check_config(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml", "resources/simulated")
validate(config, schema="../schemas/config.schema.yaml")

# Only light modules here (no matplotlib, scipy, healpy or pyvo): every `snakemake` call parses this file.
from ddstars import registry  # noqa: E402
from ddstars.archives import table_path  # noqa: E402
from ddstars.codedeps import module_closure, script_closure  # noqa: E402
from ddstars.figures import FIGURES, options as figure_options  # noqa: E402

SIM = "resources/simulated"
SIM_TABLES = list(registry.TABLES)  # the simulated sky's archive tables: the paper's release (ddstars.registry)
# the DR3 release's own tables, rewritten from the DR2-era ones by simulate_release_dr3 (ddstars.simulate.release)
SIM_DR3_TABLES = list(registry.counterparts("dr3"))
SIM_DR3_INPUTS = list(registry.counterparts("dr3").values())
# The configured data release (archives.release): its tables and surveys, and where its results go (results/
# for the paper's release, results/<release>/ for another, so that switching back reruns nothing cached).
REL = registry.configured(config)
RESULTS = registry.results_dir(config)
# the tables of the photometric-only sample, written by simulate_photometric: the photometric surveys' (of the
# paper's release; configcheck refuses the sample with another release)
PHOT_TABLES = [t for t in SIM_TABLES if registry.TABLES[t].survey in registry.PHOTOMETRIC]


def workflow_file(path):
    """A file of this checkout as a rule input. Relative to the working directory where one holds the other (the
    default: the repository root), so that the project moved or copied elsewhere with its results reruns
    nothing (Snakemake records each job's input paths and reruns a job whose paths changed); absolute otherwise,
    so that a working directory of its own (--directory) can move without rerunning."""
    path, cwd, base = Path(path).resolve(), Path.cwd().resolve(), Path(workflow.basedir).resolve()
    return os.path.relpath(path, cwd) if cwd.is_relative_to(base) or base.is_relative_to(cwd) else str(path)


RULES_DIR = Path(workflow.basedir) / "workflow" / "rules"


def code_inputs(script, *modules):
    """The code a rule's job runs, listed as inputs so that a change to any of it reruns the rule: ``script`` (as
    in the rule's ``script:``), the helpers and package modules it imports, at module level or in a function,
    and ``modules`` (dotted names the script imports by name at run time) with their imports. Computed from the
    source (ddstars.codedeps), so the list cannot fall behind the code."""
    files = set(script_closure(RULES_DIR / script))
    for name in modules:
        files |= module_closure(name)
    return sorted(workflow_file(f) for f in files)


CAT = f"{RESULTS}/catalog"
MODEL = f"{RESULTS}/model"
CATALOG_SCHEMA = workflow_file(Path(workflow.basedir) / "workflow" / "schemas" / "catalog.schema.yaml")
SPECTRO_SURVEYS = list(REL.spectroscopic())


CLEAN_OPTIONS = {
    "photometric": ["mag_error_floor", "mag_error_max"],
    "spectroscopic": ["label_floor", "label_sigma_max"],
}


def release_param():
    """{"release": <name>} for a release other than the paper's, {} for it (its rules' params as they always were,
    so that existing results rerun nothing)."""
    return {} if REL.name == registry.DEFAULT_RELEASE else {"release": REL.name}


def clean_params(survey):
    """Only the config values a survey's cleaning reads, so editing one survey's cut reruns only it."""
    kind = "spectroscopic" if survey in SPECTRO_SURVEYS else "photometric"
    keys = CLEAN_OPTIONS[kind] + (["apogee_cov_indices"] if survey == "apogee" else [])
    if REL.name != registry.DEFAULT_RELEASE and survey == "gaia":
        keys.append("gaia_dr3")
    return {k: config["catalog"][k] for k in keys} | release_param()


SURVEY_ARCHIVE = REL.survey_tables()  # survey -> the archive table cleaned into it


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


# Archive queries of the remote backend (archives.smk), in dependency order: the catalog's tables, then the
# photometric-only sample's (photometric/<table>: the stars of inference.photometric_sample.pixels).
REMOTE_TABLES = list(REL.query_order())


def remote_file(name):
    """The assembled file of remote table ``name`` (ddstars.remote.services.archive_file)."""
    from ddstars.remote.services import archive_file

    return str(archive_file(config, name))


def remote_upstream(name):
    """The files of the tables whose rows ``name``'s queries need (uploads, id lists), by archive table; {} for
    the first ones (the spectroscopic catalogs; the photometric sample's Gaia sources, fetched by pixel)."""
    from ddstars.remote.services import spec_for  # the query spec decides (a sample's Gaia table has none)

    sample = name.rpartition("/")[0]
    return {up: remote_file(f"{sample}/{up}" if sample else up) for up, _ in spec_for(name, config).upstream}


def simulated_sample():
    """inference.photometric_sample without the keys only the remote sample reads (editing its pixels reruns
    nothing of the built-in sky)."""
    from ddstars.remote.services import SAMPLE_REMOTE_KEYS

    return {k: v for k, v in config["inference"]["photometric_sample"].items() if k not in SAMPLE_REMOTE_KEYS}


def photometric_tables():
    """The photometric-only sample's archive tables, by table: written by simulate_photometric (backend
    simulated) or fetched from the archives for inference.photometric_sample.pixels (backend remote)."""
    if config["backend"] == "remote":
        return {t: remote_file(f"photometric/{t}") for t in PHOT_TABLES}
    return {t: f"{SIM}/photometric/archives/{t}.parquet" for t in PHOT_TABLES}

# Validation stage (validation.smk)
VAL = f"{RESULTS}/validation"
FIG = f"{RESULTS}/figures"


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
        return [workflow_file(root / name) for name in ("green2020_nn_model.h5", "green2020_theta_normalization.json")]
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
    """The files figure ``name`` reads, by the keys of ddstars.figures.inputs.Inputs."""
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


def figure_code(name):
    """Code inputs of the figure_<name> rule: those of its script and, where the registry names the module that
    draws the figure (the script imports it by name), that module's. A change to one figure's module reruns only
    that figure."""
    drawn_by = FIGURES[name].module  # (``module`` is a Snakemake keyword)
    return code_inputs("../scripts/validation_figure.py", drawn_by)


def default_targets():
    """Outputs of the default run."""
    targets = [
        f"{CAT}/table1.csv",
        f"{CAT}/table1.md",
        f"{CAT}/check.json",
        f"{MODEL}/summary.json",
        f"{VAL}/summary.json",
        f"{VAL}/report.md",
    ]
    if config["inference"]["enabled"]:
        targets += [f"{RESULTS}/inference/summary.json", f"{FIG}/inference_kiel.png"]
    if config["hats"]["enabled"]:  # HATS copies for LSDB (hats.smk)
        targets.append(f"{CAT}/hats.json")
        targets += [f"{RESULTS}/inference/hats.json"] if config["inference"]["enabled"] else []
    if external_catalog():
        targets.append(f"{CAT}/import.json")
    else:
        targets.append(f"{CAT}/offsets.json")
        if config["backend"] == "simulated":
            targets.insert(0, "results/simulation/summary.json")
    return targets


# --- Photometric inference (inference.smk) ---------------------------------------------------------------
INF = f"{RESULTS}/inference"
INF_CFG = config["inference"]


def inference_source():
    """The stars to infer: the catalog (its test split or all of it), the simulated sky's photometric-only sample
    through the catalog's cuts (rule photometric_input), or a Parquet file or folder of your own."""
    if INF_CFG["input"] in ("test", "catalog"):
        return catalog_dataset()
    if INF_CFG["input"] == "photometric":
        return f"{CAT}/photometric_input.parquet"
    return INF_CFG["input"]


def inference_truth():
    """The simulated truth of the stars inferred (None for stars of your own or a real catalog)."""
    if INF_CFG["input"] == "photometric":
        return f"{SIM}/photometric/truth.parquet" if config["backend"] == "simulated" else None
    return truth_table() if INF_CFG["input"] in ("test", "catalog") else None


def simulated_galaxy():
    """The simulated sky's own Galaxy (for inference.galaxy auto/simulated) where the stars come from it."""
    return config["simulate"]["galaxy"] if inference_truth() else None


def inference_maps():
    """The dust maps the priors read (only with dust_prior.source map)."""
    if INF_CFG["dust_prior"]["source"] != "map":
        return {}
    return {
        "sfd": dustmap_inputs(config)["sfd"],
        "bayestar": dustmap_inputs(config)["bayestar"],
        "provision": rules.provision_dustmaps.output.report,
    }


# paths as functions: Snakemake's lint asks that no parameter repeat an input's path as a literal
INFERENCE_PARAMS = dict(
    source=lambda wc: inference_source(),
    split="test" if INF_CFG["input"] == "test" else None,
    order=config["catalog"]["healpix_order"],
    sfd_dir=lambda wc: config["dustmaps"]["sfd_dir"],
    bayestar_file=lambda wc: config["dustmaps"]["bayestar_file"],
    simulated_galaxy=simulated_galaxy(),
)


INFERENCE_FIGURES = ["inference_kiel", "inference_cmd", "inference_dust", "inference_examples"]
if inference_truth():
    INFERENCE_FIGURES = ["inference_truth", "inference_pit", *INFERENCE_FIGURES]
