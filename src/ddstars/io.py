"""File output helpers: atomic writes (temporary file in the same folder, then ``os.replace``)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import DataError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as indented, key-sorted, strict JSON (NaN and infinities as null), atomically."""
    text = json.dumps(strict_json(obj), indent=2, sort_keys=True, default=_json_default, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


def strict_json(obj: Any) -> Any:
    """``obj`` with NaN and infinities replaced by null (strict JSON: a statistic with no stars)."""
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict_json(obj.tolist())
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    return obj


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def sha256(path: str | Path, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


class ParquetChunkWriter:
    """Append DataFrames as row groups of one Parquet file, written atomically on :meth:`close`.

    The schema is fixed by the first chunk; later chunks are cast to it, so a column whose dtype
    drifts between chunks raises with the column named rather than producing an unreadable file.
    """

    def __init__(self, path: str | Path, compression: str = "zstd"):
        self.path = Path(path)
        self.compression = compression
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None
        self.rows = 0

    def write(self, df: pd.DataFrame) -> None:
        if self.schema is None:
            table = pa.Table.from_pandas(df, preserve_index=False)
            # pandas' pyarrow-backed strings arrive as large_string; store the standard string type.
            fields = [pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) else f for f in table.schema]
            self.schema = pa.schema(fields, metadata=table.schema.metadata)
            table = table.cast(self.schema)
            self._writer = pq.ParquetWriter(self._tmp, self.schema, compression=self.compression)
        else:
            try:
                table = pa.Table.from_pandas(df, schema=self.schema, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as err:
                raise TypeError(f"{self.path}: chunk does not match the schema of the first chunk: {err}") from err
        assert self._writer is not None
        self._writer.write_table(table)
        self.rows += len(df)

    def close(self) -> None:
        if self._writer is None:
            raise DataError(f"{self.path}: no rows were written")
        self._writer.close()
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)


def write_parquet(df: pd.DataFrame, path: str | Path, compression: str = "zstd", row_group_size: int = 262144) -> None:
    """Write ``df`` (without its index) to one Parquet file, atomically; strings stored as ``string``."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    fields = [pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) else f for f in table.schema]
    table = table.cast(pa.schema(fields, metadata=table.schema.metadata))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression=compression, row_group_size=row_group_size)


def read_json(path: str | Path) -> Any:
    """Parse a JSON file, naming the file in the error if it is missing or malformed."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from err
