"""Logging set-up for workflow scripts."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to_file(path: str | Path, level: int = logging.INFO) -> logging.Logger:
    """Send the package's log records (and Python warnings) to ``path``.

    Used by the Snakemake script adapters as their first call, so every rule's log under
    ``results/logs/<rule>/`` holds what the package reported.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    return logging.getLogger("ddstars")
