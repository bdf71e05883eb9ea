"""Resumable raw cache of archive responses: ``<root>/<table>/<chunk_id>.parquet`` plus a ``.json`` sidecar.

The Parquet file holds one chunk's response as returned (remote column names); the sidecar records the query,
the service URL (without user info), the fetch time, the row count and a digest of the request. A chunk is
complete only when both files exist, the sidecar parses, its row count equals the Parquet file's, and (when
asked) its request digest matches: so a chunk whose inputs changed, or that was interrupted between the two
writes, is fetched again. Writes are atomic (temporary file, then rename), the sidecar last.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DataError
from ..io import atomic_path, write_json

_CHUNK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class ChunkCache:
    """Raw chunk cache under ``root`` (config ``remote.cache_dir``)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _check(self, table: str, chunk_id: str) -> None:
        # a sample's table (photometric/gaia_source) is a folder of its own under the sample's folder
        for what, v in (*(("table", part) for part in table.split("/", 1)), ("chunk id", chunk_id)):
            if not _CHUNK_ID.match(v):
                raise ValueError(f"invalid {what} {v!r}: letters, digits, '_', '-' and '.' only")

    def data_path(self, table: str, chunk_id: str) -> Path:
        self._check(table, chunk_id)
        return self.root / table / f"{chunk_id}.parquet"

    def meta_path(self, table: str, chunk_id: str) -> Path:
        self._check(table, chunk_id)
        return self.root / table / f"{chunk_id}.json"

    def meta(self, table: str, chunk_id: str) -> dict[str, Any] | None:
        """The sidecar of a chunk, or None if it is missing or unreadable."""
        try:
            meta = json.loads(self.meta_path(table, chunk_id).read_text())
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) else None

    def is_complete(self, table: str, chunk_id: str, request_sha256: str | None = None) -> bool:
        meta = self.meta(table, chunk_id)
        data = self.data_path(table, chunk_id)
        if meta is None or not data.is_file():
            return False
        if request_sha256 is not None and meta.get("request_sha256") != request_sha256:
            return False
        try:
            rows = pq.ParquetFile(data).metadata.num_rows
        except (pa.ArrowInvalid, OSError):
            return False
        return meta.get("rows") == rows

    def missing(self, table: str, chunk_ids: Iterable[str], digests: Mapping[str, str] | None = None) -> list[str]:
        """The chunk ids (in the given order) that are not complete."""
        digests = digests or {}
        return [c for c in chunk_ids if not self.is_complete(table, c, digests.get(c))]

    def write(self, table: str, chunk_id: str, data: pd.DataFrame | pa.Table, meta: Mapping[str, Any]) -> Path:
        """Store one chunk: the Parquet file, then the sidecar (``rows`` is set from the data)."""
        tbl = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        path = self.data_path(table, chunk_id)
        meta_path = self.meta_path(table, chunk_id)
        meta_path.unlink(missing_ok=True)  # an old sidecar must not vouch for a half-written file
        with atomic_path(path) as tmp:
            pq.write_table(tbl, tmp, compression="zstd")
        write_json({**meta, "table": table, "chunk_id": chunk_id, "rows": tbl.num_rows}, meta_path)
        return path

    def read(self, table: str, chunk_id: str) -> pd.DataFrame:
        if not self.is_complete(table, chunk_id):
            raise DataError(f"{self.data_path(table, chunk_id)}: chunk {chunk_id!r} of {table!r} is not complete")
        return pd.read_parquet(self.data_path(table, chunk_id))
