"""Adapter of rule train_model: fit the data-driven stellar model to the catalog."""

import os
from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter out of the log

from ddstars.logs import log_to_file  # noqa: E402
from ddstars.model.stage import OUTPUTS, run_training  # noqa: E402

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
run_training(snakemake.input.catalog, {k: snakemake.output[k] for k in OUTPUTS}, snakemake.params.options)
