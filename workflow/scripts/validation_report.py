"""Adapter of rule validation_report: results/validation/report.md linking every figure."""

from typing import TYPE_CHECKING

import _bootstrap  # noqa: F401  (puts src/ on sys.path)

from ddstars.logs import log_to_file
from ddstars.validation.report import write_report

if TYPE_CHECKING:
    from snakemake.script import snakemake

log_to_file(snakemake.log[0])
write_report(snakemake.input.summary, snakemake.input.table1, snakemake.input.captions, snakemake.output.report)
