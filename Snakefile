# ddstars: Green et al. (2021) "Data-Driven Stellar Models" as a Snakemake workflow.
#
# Stages (one rule file each, workflow/rules/):
#   simulate.smk  the built-in simulated sky with known truth -> resources/simulated/
#   archives.smk  backend remote: each archive table fetched in chunks -> resources/archives/
#   dustmaps.smk  checks the SFD and Bayestar19 files (never downloads them) -> results/dustmaps/
#   catalog.smk   archive tables -> cuts, cross-match, offsets, reddening prior -> results/catalog/
#   training.smk  the data-driven stellar model fitted to the catalog -> results/model/
#   validation.smk  test-split evaluation, one rule per paper figure, summary and report
#                   -> results/validation/, results/figures/
#   inference.smk   photometric inference (Eq. 19) partition by partition, summary -> results/inference/
#   hats.smk        HATS copies of the catalog and the inference results, for LSDB -> results/*/hats/
#
# Run from the repository root: `make run` (sets up .venv) or `snakemake --cores all`.
from snakemake.utils import min_version

min_version("9.20")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/dustmaps.smk"
include: "workflow/rules/catalog.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/validation.smk"
include: "workflow/rules/inference.smk"
include: "workflow/rules/archives.smk"
include: "workflow/rules/hats.smk"


# Cheap bookkeeping rules run on the submitting node, not as cluster jobs.
localrules:
    all,
    validation_report,


rule all:
    default_target: True
    input:
        default_targets(),
