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


def progress(stage: str, done: int, total: int, elapsed_s: float, what: str = "") -> str:
    """One progress line on the console (stderr, which Snakemake shows while the job runs; the rule's log file
    gets the details): ``<stage>: <done>/<total> <what>, <elapsed> s, about <left> s left (ETA hh:mm UTC)``."""
    import sys
    from datetime import UTC, datetime, timedelta

    left = elapsed_s / done * (total - done) if done else float("nan")
    eta = datetime.now(UTC) + timedelta(seconds=left) if done else None
    line = f"{stage}: {done}/{total} {what}".rstrip() + f", {elapsed_s:.0f} s"
    if done < total and eta is not None:
        line += f", about {left:.0f} s left (ETA {eta:%H:%M} UTC)"
    print(line, file=sys.stderr, flush=True)
    return line
