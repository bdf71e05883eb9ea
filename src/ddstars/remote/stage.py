"""Entry point of the fetch_<table> rules: one archive table from its service, through the chunk cache.

Each rule fetches the table's chunks that the raw cache does not yet hold (an interrupted run resumes
where it stopped), assembles them under the archive's own column names and writes the file the catalog
stage reads (``resources/archives/<table>.parquet``, :func:`ddstars.archives.table_path`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..archives import read_table
from . import fetch
from . import services as sv

log = logging.getLogger(__name__)


def upstream_tables(table: str) -> list[str]:
    """The archive tables whose rows ``table``'s queries need (uploads, id lists); [] for the first ones."""
    return list(dict.fromkeys(up for up, _ in sv.SPECS[table].upstream))


def run_fetch(table: str, upstream: Mapping[str, str | Path], config: Mapping[str, Any], out: str | Path) -> Path:
    """Fetch ``table`` (missing chunks only) and write it to ``out``; ``upstream``: archive name -> file."""
    frames = {name: read_table(path, name) for name, path in upstream.items()}
    inputs = fetch.inputs_for(table, frames)
    paths = fetch.fetch_missing(table, config, inputs)
    log.info("%s: %d chunk(s) complete in the cache", table, len(paths))
    return fetch.assemble(table, paths, out, config)
