"""Entry points of the archive rules: one archive table from its service, through the chunk cache.

Per table the workflow runs three kinds of job (workflow/rules/archives.smk):

* ``plan_<table>`` (a checkpoint) lists the table's chunks from the config and the upstream tables;
* ``fetch_chunk_<table>`` fetches one chunk into the raw cache, unless the cache already holds it (a run that
  was stopped resumes with the missing chunks only), a few at a time per service;
* ``fetch_<table>`` assembles the chunks under the archive's own column names into the file the catalog stage
  reads (``resources/archives/<table>.parquet``, :func:`ddstars.archives.table_path`).

Which tables a table's queries need comes from the registry (:attr:`ddstars.registry.Table.upstream`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..archives import read_table
from ..io import write_json
from . import fetch

log = logging.getLogger(__name__)


def _inputs(table: str, upstream: Mapping[str, str | Path], config: Mapping[str, Any]):
    frames = {name: read_table(path, name) for name, path in upstream.items()}
    return fetch.inputs_for(table, frames, config)


def run_plan(table: str, upstream: Mapping[str, str | Path], config: Mapping[str, Any], plan_dir: str | Path) -> dict:
    """The plan_<table> checkpoint: the table's chunks (ids and request digests) and their inputs."""
    doc = fetch.write_plan(table, config, _inputs(table, upstream, config), plan_dir)
    log.info("%s: %d chunk(s) planned from %s input row(s)", table, doc["n_chunks"], doc["input_rows"])
    return doc


def run_chunk(table: str, chunk_id: str, config: Mapping[str, Any], plan_dir: str | Path, marker: str | Path) -> None:
    """A fetch_chunk_<table> job: one planned chunk into the raw cache; ``marker`` records its sidecar."""
    meta = fetch.fetch_planned(table, chunk_id, config, plan_dir)
    log.info("%s chunk %s: %d row(s), fetched %s", table, chunk_id, meta["rows"], meta.get("fetched_utc"))
    write_json(meta, marker)


def run_assemble(table: str, config: Mapping[str, Any], plan_dir: str | Path, out: str | Path) -> Path:
    """The fetch_<table> rule: the planned chunks, assembled under the archive's column names into ``out``."""
    path = fetch.assemble_planned(table, plan_dir, config, out)
    log.info("%s: assembled %d chunk(s) into %s", table, fetch.read_plan(plan_dir)["n_chunks"], path)
    return path
