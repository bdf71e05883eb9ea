"""HATS copies of the project's partitioned catalogs, readable by LSDB (docs/hats.md).

The training catalog (``results/catalog/stars/``) and the photometric-inference results
(``results/inference/stars/``) are Hive datasets partitioned at one HEALPix order. :func:`write_hats` writes the
same rows and columns as a HATS *collection* through LSDB and the ``hats`` library (no hand-made layout):

* the primary catalog with HATS's adaptive partitions (a pixel is split until it holds at most
  ``pixel_threshold`` rows, down to order ``highest_order``), the ``_healpix_29`` spatial index, ``Norder=/Dir=/
  Npix=`` files, ``partition_info.csv``, ``_metadata``/``_common_metadata``, ``hats.properties`` and the sky maps
  (``lsdb.from_dataframe(...).write_catalog(as_collection=True)``);
* a margin cache of ``margin_arcsec`` (the sources within that distance outside each partition), the default
  margin of the collection, which LSDB's cross-match needs;
* each column's ``unit`` and ``description`` (the Arrow field metadata of the input files: the catalog's come
  from workflow/schemas/catalog.schema.yaml) in the catalog's ``dataset/_common_metadata``, where readers of the
  HATS schema find it (LSDB does not carry field metadata into the data files).

hats-import, the pipeline for catalogs beyond memory, cannot be installed beside Snakemake 9 today (it needs
packaging >= 26.1, Snakemake < 26); LSDB's writer holds the rows in memory: about 0.6 kB per catalog row, 2 GB at
the paper's 3 million stars.

The Hive partition key (``healpix_<order>``) is not a column of the files, so not of the HATS catalog; it is
``_healpix_29 >> 2 (29 - order)``. The collection is written to a temporary folder beside ``out`` and renamed
into place once it is complete and valid (``hats.io.validation.is_valid_catalog(strict=True)``).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import DataError

log = logging.getLogger(__name__)


def dataset_files(folder: str | Path) -> list[Path]:
    """The Parquet files of a Hive dataset folder, sorted (temporary and hidden files left out)."""
    folder = Path(folder)
    files = sorted(
        p for p in folder.rglob("*.parquet") if not any(x.startswith((".", "_")) for x in p.relative_to(folder).parts)
    )
    if not files:
        raise DataError(f"{folder}: no Parquet files to write as HATS")
    return files


def write_hats(
    files: Sequence[str | Path],
    out: str | Path,
    name: str,
    *,
    threads: int = 1,
    pixel_threshold: int = 250_000,
    highest_order: int = 7,
    margin_arcsec: float = 5.0,
    description: str = "",
) -> dict[str, Any]:
    """Write the rows of Parquet ``files`` (columns ``ra``, ``dec`` in degrees) as the HATS collection ``out``
    (primary catalog ``name``, its default margin cache, which LSDB names ``<name>_<margin>arcs``); returns a
    summary (rows, partitions, orders, bytes, seconds). Raises :class:`DataError` naming the folder if the result
    does not validate."""
    import dask
    import lsdb
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from hats.io.validation import is_valid_catalog

    out = Path(out)
    t0 = time.perf_counter()
    table = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
    fields = {f.name: f for f in table.schema}  # with their unit/description metadata
    df = table.to_pandas(types_mapper=pd.ArrowDtype)  # as LSDB keeps them (no int -> float where nulls)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with dask.config.set(scheduler="threads", num_workers=max(1, int(threads))):
            cat = lsdb.from_dataframe(
                df,
                ra_column="ra",
                dec_column="dec",
                partition_rows=int(pixel_threshold),
                highest_order=int(highest_order),
                margin_threshold=float(margin_arcsec),
                margin_order=-1,
            )
            cat.write_catalog(
                tmp,
                catalog_name=name,
                as_collection=True,
                overwrite=True,
                progress_bar=False,
                addl_hats_properties={"obs_description": description} if description else None,
            )
        primary = _primary(tmp)
        common = primary / "dataset" / "_common_metadata"
        schema = pq.read_schema(common)
        with_meta = pa.schema([fields[f.name].with_type(f.type) if f.name in fields else f for f in schema])
        pq.write_metadata(with_meta.with_metadata(schema.metadata), common)
        if not is_valid_catalog(str(tmp), strict=True):
            raise DataError(f"{tmp}: the HATS collection written does not validate (strict)")
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary(out, name, time.perf_counter() - t0)


def _primary(collection: Path) -> Path:
    """The primary catalog folder of a HATS collection (its ``collection.properties``)."""
    props = _properties(collection / "collection.properties")
    return collection / props["hats_primary_table_url"]


def _properties(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def summary(out: str | Path, name: str, seconds: float | None = None) -> dict[str, Any]:
    """Rows, partitions (per order), margin rows and bytes on disk of the HATS collection ``out``."""
    import hats

    out = Path(out)
    cat = hats.read_hats(_primary(out))
    orders: dict[str, int] = {}
    for p in cat.get_healpix_pixels():
        orders[str(p.order)] = orders.get(str(p.order), 0) + 1
    margin_dirs = [d for d in out.iterdir() if d.is_dir() and d != _primary(out)]
    margin_rows = sum(int(hats.read_hats(d).catalog_info.total_rows) for d in margin_dirs)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    doc: dict[str, Any] = {
        "path": str(out),
        "catalog": name,
        "rows": int(cat.catalog_info.total_rows),
        "partitions": len(cat.get_healpix_pixels()),
        "partitions_per_order": dict(sorted(orders.items())),
        "margins": [d.name for d in margin_dirs],
        "margin_rows": margin_rows,
        "bytes": size,
    }
    if seconds is not None:
        doc["seconds"] = round(seconds, 3)
    return doc


def source_files(source: str | Path | Sequence[str | Path]) -> list[Path]:
    """The Parquet files of ``source``: a dataset folder, or inference group manifests (JSON listing the
    partitions each group wrote)."""
    if isinstance(source, str | Path):
        return dataset_files(source)
    from .inference.stage import result_files

    files = result_files(source)
    if not files:
        raise DataError(f"{', '.join(map(str, source))}: the inference wrote no partitions to write as HATS")
    return sorted(Path(f) for f in files)


def run_hats(
    source: str | Path | Sequence[str | Path],
    out: str | Path,
    report: str | Path,
    name: str,
    description: str,
    threads: int = 1,
    **options: Any,
) -> dict[str, Any]:
    """Rules hats_catalog / hats_inference: :func:`write_hats` of ``source`` (:func:`source_files`), its summary
    written to ``report`` (atomically)."""
    import pyarrow.parquet as pq

    from .io import write_json

    files = source_files(source)
    names = set(pq.read_schema(files[0]).names)
    if not {"ra", "dec"} <= names or all(
        pq.read_table(f, columns=["ra"]).column(0).null_count == pq.read_metadata(f).num_rows for f in files
    ):
        # a catalog of your own without positions (catalog.external may leave them out): nothing to place on the sky
        why = f"{files[0].parent}: no ra/dec positions, so no HATS copy (HATS partitions by sky position)"
        log.warning(why)
        shutil.rmtree(out, ignore_errors=True)
        Path(out).mkdir(parents=True)
        (Path(out) / "NOT_WRITTEN.txt").write_text(why + "\n")
        doc = {"path": str(out), "written": False, "reason": why}
        write_json(doc, report)
        return doc
    doc = {"written": True, **write_hats(files, out, name, threads=threads, description=description, **options)}
    write_json(doc, report)
    log.info("%s: %d rows in %d partitions, %.1f s", out, doc["rows"], doc["partitions"], doc["seconds"])
    return doc
