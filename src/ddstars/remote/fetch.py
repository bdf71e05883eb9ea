"""Plan, fetch and assemble the chunks of one archive table (one Snakemake job per chunk per service).

Typical use by the rules::

    ids = chunk_ids("gaia_source", config, inputs)           # inputs: inputs_for("gaia_source", frames)
    path = fetch_chunk("gaia_source", ids[0], config, inputs)  # no request if the chunk is already complete
    assemble("gaia_source", [cache.data_path(...) for ...], "resources/archives/gaia_source.parquet", config)

Chunk ids are deterministic functions of the config and the inputs; the sidecar stores a digest of the request
(query + uploaded rows), so a chunk whose inputs changed is fetched again rather than reused.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import healpy as hp
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.table import Table

from ..archives import TABLES, check_schema
from ..errors import DataError
from ..io import write_json, write_parquet
from . import services as sv
from .cache import ChunkCache
from .client import TapClient, load_credentials, to_arrow
from .services import strip_userinfo


@dataclass(frozen=True)
class Chunk:
    """One request: ``adql`` (or the file ``url``), its upload (``TAP_UPLOAD.ids``) and the request digest."""

    id: str
    adql: str | None
    upload: Table | None
    request_sha256: str
    url: str | None = None


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def inputs_for(
    table: str, frames: Mapping[str, pd.DataFrame], config: Mapping[str, Any] | None = None
) -> pd.DataFrame | None:
    """The upload/list inputs of ``table`` from its upstream archive tables (``frames``: archive name -> frame).

    The upstream tables are those of the release ``config`` names (``archives.release``; e.g. PS1's ids come
    from Gaia DR3's best neighbours with ``dr3``). Position kinds get a frame with ``ra``/``dec``
    (deduplicated); id kinds a frame with ``id`` (unique). ``range`` and ``file`` tables need no inputs (None).
    """
    spec = sv.spec_for(table, config)
    if spec.kind in ("range", "file", "healpix"):
        return None
    parts = []
    for up, col in spec.upstream:
        if up not in frames:
            raise DataError(f"{table}: inputs need archive table {up!r} (fetch it first)")
        df = frames[up]
        if spec.kind == "position_upload":
            t = TABLES[up]
            parts.append(pd.DataFrame({"ra": df[t.ra].to_numpy(float), "dec": df[t.dec].to_numpy(float)}))
        else:
            parts.append(pd.DataFrame({"id": df[col]}))
    out = pd.concat(parts, ignore_index=True).dropna().drop_duplicates(ignore_index=True)
    return out


def _blocks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, max(1, size))]


def ordered_inputs(table: str, config: Mapping[str, Any], inputs: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The inputs of an upload/list table in chunk order, and each chunk's rows: (frame, {chunk id: (start,
    stop)}). Positions are sorted by HEALPix pixel (nested, ``healpix_order``), then ra, dec, and cut into
    blocks of ``chunk_size`` within each pixel; ids are deduplicated, sorted and cut into blocks."""
    spec = sv.spec_for(table, config)
    rows: dict[str, tuple[int, int]] = {}
    if spec.kind == "position_upload":
        if inputs is None or not {"ra", "dec"} <= set(inputs.columns):
            raise DataError(f"{table}: position chunks need inputs with columns ra, dec")
        ra, dec = inputs["ra"].to_numpy(float), inputs["dec"].to_numpy(float)
        pix = hp.ang2pix(2**spec.healpix_order, ra, dec, nest=True, lonlat=True)
        order = np.lexsort((dec, ra, pix))
        pix = pix[order]
        starts = np.flatnonzero(np.r_[True, pix[1:] != pix[:-1]])
        ends = np.r_[starts[1:], len(pix)]
        for s, e in zip(starts, ends, strict=True):
            for part, sl in enumerate(_blocks(e - s, spec.chunk_size)):
                rows[f"hpx{spec.healpix_order}-{pix[s]}-{part}"] = (int(s + sl.start), int(s + sl.stop))
        return pd.DataFrame({"ra": ra[order], "dec": dec[order]}), rows
    if spec.kind not in ("id_upload", "id_list"):
        raise DataError(f"{table}: a {spec.kind!r} table has no inputs to order")
    if inputs is None or "id" not in inputs.columns:
        raise DataError(f"{table}: id chunks need inputs with a column id")
    v = inputs["id"].dropna()
    if pd.api.types.is_numeric_dtype(v.dtype):
        ids = np.unique(v.to_numpy().astype(np.int64))
    else:
        ids = np.array(sorted(set(map(str, v))), dtype=object)
    for i, sl in enumerate(_blocks(len(ids), spec.chunk_size)):
        rows[f"b{i:05d}"] = (sl.start, sl.stop)
    return pd.DataFrame({"id": ids}), rows


def chunk_of(table: str, config: Mapping[str, Any], chunk_id: str, rows: pd.DataFrame) -> Chunk:
    """The request of one upload/list chunk from its rows of :func:`ordered_inputs`."""
    spec = sv.spec_for(table, config)
    if spec.kind == "position_upload":
        r, d = rows["ra"].to_numpy(float), rows["dec"].to_numpy(float)
        adql = sv.adql_position_upload(spec)
        upload = Table({"row_id": np.arange(len(r), dtype=np.int64), "ra": r, "dec": d})
        return Chunk(chunk_id, adql, upload, _digest(adql, r.tobytes(), d.tobytes()))
    block = rows["id"].to_numpy()
    if block.dtype != np.int64:
        block = np.array([str(x) for x in block], dtype=object)
    if spec.kind == "id_list":
        adql = sv.adql_id_list(spec, list(block))
        return Chunk(chunk_id, adql, None, _digest(adql))
    adql = sv.adql_id_upload(spec)
    col = block.astype(str) if block.dtype == object else block
    return Chunk(chunk_id, adql, Table({"id": col}), _digest(adql, "\n".join(map(str, block))))


def plan(
    table: str, config: Mapping[str, Any], inputs: pd.DataFrame | None = None, only: str | None = None
) -> dict[str, Chunk]:
    """Every chunk of ``table``, by chunk id (ordered); with ``only``, just that chunk (or {} if unknown)."""
    spec = sv.spec_for(table, config)

    def wanted(cid: str) -> bool:
        return only is None or cid == only

    out: dict[str, Chunk] = {}
    if spec.kind == "range":
        lo, hi = spec.range
        edges = np.linspace(lo, hi, spec.n_chunks + 1)
        for i in range(spec.n_chunks):
            if not wanted(f"r{i:04d}"):
                continue
            adql = sv.adql_range(spec, float(edges[i]), float(edges[i + 1]), last=i == spec.n_chunks - 1)
            out[f"r{i:04d}"] = Chunk(f"r{i:04d}", adql, None, _digest(adql))
    elif spec.kind == "healpix":
        if not spec.pixels:
            raise DataError(f"{table}: {sv.sample_problems(config)[0]}")
        order, pixels = sv.chunk_pixels(spec)
        for pix in pixels:
            cid = f"hpx{order}-{pix}"
            if wanted(cid):
                adql = sv.adql_healpix(spec, pix, order)
                out[cid] = Chunk(cid, adql, None, _digest(adql))
    elif spec.kind == "file":
        url = sv.remote_config(config)["services"][spec.service]["url"].rstrip("/") + "/" + spec.remote_table
        if wanted("all"):
            out["all"] = Chunk("all", None, None, _digest(strip_userinfo(url)), url)
    else:
        ordered, rows = ordered_inputs(table, config, inputs)
        for cid, (a, b) in rows.items():
            if wanted(cid):
                out[cid] = chunk_of(table, config, cid, ordered.iloc[a:b])
    return out


def chunk_ids(table: str, config: Mapping[str, Any], inputs: pd.DataFrame | None = None) -> list[str]:
    """The chunk ids of ``table`` (deterministic given the config and the inputs)."""
    return list(plan(table, config, inputs))


def cache_for(config: Mapping[str, Any]) -> ChunkCache:
    return ChunkCache(sv.remote_config(config)["cache_dir"])


def make_client(table: str, config: Mapping[str, Any], **kw: Any) -> TapClient:
    """The :class:`TapClient` of ``table``'s service, from ``remote.services`` (``kw`` overrides, e.g. sleep)."""
    spec = sv.spec_for(table, config)
    cfg = sv.remote_config(config)
    svc = cfg["services"][spec.service]
    args = dict(
        url=svc["url"],
        service=spec.service,
        retries=cfg["retries"],
        timeout=float(cfg["timeout_s"]),
        max_concurrent=int(svc["max_concurrent"]),
        credentials=load_credentials(spec.service, cfg.get("credentials_file")),
        lock_dir=Path(cfg["cache_dir"]) / ".locks",
        poll_s=float(cfg["poll_s"]),
    )
    args.update(kw)
    return TapClient(**args)


def fetch_chunk(
    table: str,
    chunk_id: str,
    config: Mapping[str, Any],
    inputs: pd.DataFrame | None = None,
    client: TapClient | None = None,
    cache: ChunkCache | None = None,
    chunks: Mapping[str, Chunk] | None = None,
) -> Path:
    """Fetch one chunk into the raw cache unless it is already complete; its Parquet path."""
    spec = sv.spec_for(table, config)
    chunks = chunks if chunks is not None else plan(table, config, inputs)
    if chunk_id not in chunks:
        raise DataError(f"{table}: unknown chunk id {chunk_id!r} ({len(chunks)} chunks planned)")
    chunk = chunks[chunk_id]
    cache = cache or cache_for(config)
    if cache.is_complete(table, chunk_id, chunk.request_sha256):
        return cache.data_path(table, chunk_id)
    own = client is None
    client = client or make_client(table, config)
    t0 = time.monotonic()
    try:
        if spec.kind == "file":
            data = _fetch_file(spec, chunk, client, cache)
            query = None
        else:
            uploads = {sv.UPLOAD_NAME: chunk.upload} if chunk.upload is not None else None
            data = to_arrow(client.query(chunk.adql, uploads=uploads, mode=spec.mode))
            query = chunk.adql
    finally:
        if own:  # a client made here is closed here (its connections with it)
            client.close()
    meta = {
        "service": spec.service,
        "url": strip_userinfo(chunk.url or client.url),
        "remote_table": spec.remote_table,
        "kind": spec.kind,
        "mode": spec.mode,
        "query": query,
        "upload_rows": None if chunk.upload is None else len(chunk.upload),
        "request_sha256": chunk.request_sha256,
        "fetched_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - t0, 3),
        "format": "parquet",
    }
    return cache.write(table, chunk_id, data, meta)


def _fetch_file(spec: sv.QuerySpec, chunk: Chunk, client: TapClient, cache: ChunkCache) -> pa.Table:
    raw = cache.data_path(spec.table, chunk.id).with_suffix(".download")
    client.download(chunk.url, raw)
    try:
        tbl = Table.read(raw, hdu=1, memmap=True, format="fits")
    except (OSError, ValueError) as err:
        raise DataError(f"{spec.service} ({strip_userinfo(chunk.url)}): not a readable FITS table ({err})") from None
    wanted = [c for c in spec.columns if c in tbl.colnames]
    data = to_arrow(tbl[wanted])
    del tbl
    raw.unlink(missing_ok=True)
    return data


# ------------------------------------------------------------------- the workflow's plan / chunk / assemble jobs
PLAN_FILE = "plan.json"
INPUTS_FILE = "inputs.parquet"


def write_plan(table: str, config: Mapping[str, Any], inputs: pd.DataFrame | None, plan_dir: str | Path) -> dict:
    """Plan ``table``'s chunks into ``plan_dir``: ``plan.json`` (chunk id -> request digest) and the inputs.

    The inputs (upload ids or positions) are stored beside the plan in chunk order, with each chunk's rows in
    the plan, so each chunk job rebuilds its own request from its rows without reading the upstream archive
    tables or ordering the inputs again.
    """
    spec = sv.spec_for(table, config)
    chunks = plan(table, config, inputs)
    if not chunks:
        ups = ", ".join(up for up, _ in spec.upstream) or "the config"
        raise DataError(f"{table}: no chunks to fetch: the inputs from {ups} are empty")
    plan_dir = Path(plan_dir)
    plan_dir.mkdir(parents=True, exist_ok=True)
    rows = None
    if spec.kind not in ("range", "file", "healpix"):
        ordered, rows = ordered_inputs(table, config, inputs)
        write_parquet(ordered, plan_dir / INPUTS_FILE)
    doc = {
        "table": table,
        "service": spec.service,
        "kind": spec.kind,
        "n_chunks": len(chunks),
        "input_rows": None if inputs is None else len(inputs),
        "chunks": {cid: c.request_sha256 for cid, c in chunks.items()},
        "rows": None if rows is None else {cid: list(r) for cid, r in rows.items()},
    }
    write_json(doc, plan_dir / PLAN_FILE)
    return doc


def read_plan(plan_dir: str | Path) -> dict[str, Any]:
    """The plan written by :func:`write_plan` (a clear error naming the file when it is missing or broken)."""
    path = Path(plan_dir) / PLAN_FILE
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc.get("chunks"), dict):
            raise ValueError("no 'chunks' mapping")
    except (OSError, ValueError, AttributeError) as err:
        raise DataError(f"{path}: not a readable chunk plan ({err}); rerun the plan_<table> rule") from None
    return doc


def fetch_planned(
    table: str,
    chunk_id: str,
    config: Mapping[str, Any],
    plan_dir: str | Path,
    client: TapClient | None = None,
    cache: ChunkCache | None = None,
) -> dict[str, Any]:
    """One chunk job: fetch ``chunk_id`` of the plan in ``plan_dir`` unless cached; the chunk's sidecar.

    The request is rebuilt from the stored inputs and must have the digest the plan recorded (otherwise the
    config changed after planning, and the chunk would not be the one planned).
    """
    doc = read_plan(plan_dir)
    if chunk_id not in doc["chunks"]:
        raise DataError(f"{table}: chunk {chunk_id!r} is not in the plan {Path(plan_dir) / PLAN_FILE}")
    if doc.get("rows"):
        inputs_path = Path(plan_dir) / INPUTS_FILE
        a, b = doc["rows"][chunk_id]
        try:
            rows = pq.read_table(inputs_path).slice(a, b - a).to_pandas()
        except (OSError, pa.ArrowInvalid) as err:
            raise DataError(
                f"{inputs_path}: the plan's inputs are missing or unreadable ({err}); rerun plan_{table}"
            ) from None
        chunks = {chunk_id: chunk_of(table, config, chunk_id, rows)}
    else:
        chunks = plan(table, config, None, only=chunk_id)
    if chunk_id not in chunks or chunks[chunk_id].request_sha256 != doc["chunks"][chunk_id]:
        raise DataError(
            f"{table}: chunk {chunk_id!r} no longer matches its plan {Path(plan_dir) / PLAN_FILE} "
            f"(remote.tables.{table} or remote.services changed after planning); rerun so the plan is made again"
        )
    cache = cache or cache_for(config)
    fetch_chunk(table, chunk_id, config, None, client, cache, chunks)
    meta = cache.meta(table, chunk_id)
    assert meta is not None  # fetch_chunk has just written or verified it
    return meta


def assemble_planned(
    table: str, plan_dir: str | Path, config: Mapping[str, Any], out_path: str | Path, cache: ChunkCache | None = None
) -> Path:
    """Assemble every planned chunk of ``table`` from the cache (each must be complete with its digest)."""
    doc = read_plan(plan_dir)
    cache = cache or cache_for(config)
    ids = list(doc["chunks"])
    missing = cache.missing(table, ids, doc["chunks"])
    if missing:
        raise DataError(
            f"{table}: {len(missing)} of {len(ids)} planned chunk(s) are not complete in the cache "
            f"{cache.root / table} (first: {', '.join(missing[:5])}): the cache was changed, or remote.cache_dir "
            f"moved, after they were fetched; rerun with --forcerun plan_{table}"
        )
    return assemble(table, [cache.data_path(table, c) for c in ids], out_path, config)


def fetch_missing(
    table: str,
    config: Mapping[str, Any],
    inputs: pd.DataFrame | None = None,
    client: TapClient | None = None,
    cache: ChunkCache | None = None,
) -> list[Path]:
    """Fetch every chunk of ``table`` that is not complete (sequentially); all chunks' Parquet paths."""
    chunks = plan(table, config, inputs)
    cache = cache or cache_for(config)
    return [fetch_chunk(table, c, config, inputs, client, cache, chunks) for c in chunks]


def assemble(
    table: str, chunk_paths: Iterable[str | Path], out_path: str | Path, config: Mapping[str, Any] | None = None
) -> Path:
    """Concatenate the chunks, rename to archive names, check against ``archives.TABLES``, write atomically.

    Rows from upload chunks are deduplicated on the key (a source near two targets comes back twice); where a
    join gives a key several rows (``joined_columns``: Gaia DR3's 2MASS best neighbour whose clean id maps to
    several PSC designations, suspected duplicates), the one with the first joined value is kept, whatever the
    order the service returned them in.
    """
    spec = sv.spec_for(table, config)
    paths: Sequence[Path] = [Path(p) for p in chunk_paths]
    if not paths:
        raise DataError(f"{table}: no chunks to assemble")
    lower = {r.lower(): a for r, a in spec.columns.items()}
    tables = []
    for p in paths:
        try:
            t = pq.read_table(p)
        except (pa.ArrowInvalid, OSError) as err:
            raise DataError(f"{p}: not a readable Parquet chunk ({err})") from None
        tables.append(t.rename_columns([spec.columns.get(c, lower.get(c.lower(), c)) for c in t.column_names]))
    try:
        merged = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise DataError(f"{table}: chunks have incompatible columns ({err})") from None
    check_schema(merged.schema, TABLES[spec.table], f"{table} assembled from {len(paths)} chunk(s)")
    if merged.num_rows == 0:
        raise DataError(f"{table}: all {len(paths)} chunk(s) are empty; nothing to write to {out_path}")
    df = merged.to_pandas()
    key = TABLES[spec.table].key
    if spec.kind in ("position_upload", "id_upload", "id_list"):
        if spec.joined_columns:  # a join can give a key several rows (2MASS duplicates): keep the same one always
            by = [key, *(spec.archive_name(c) for c in spec.joined_columns)]
            df = df.sort_values(by, kind="stable", ignore_index=True, na_position="last")
        df = df.drop_duplicates(subset=key, ignore_index=True)
    df = df.sort_values(key, kind="stable", ignore_index=True)
    write_parquet(df, out_path)
    return Path(out_path)
