"""A catalog brought by the user (``catalog.external``), imported into the project's catalog layout.

The file (one Parquet file or a folder of them) needs only the ``required`` columns of the schema
(workflow/schemas/catalog.schema.yaml, ``tier``); rule ``import_catalog`` writes ``results/catalog/stars/`` in
the full schema, so every later stage reads one layout whatever the catalog's origin:

* ``derived`` columns absent from the file are computed (``obs_<band>`` from finite mag and err,
  ``parallax_usable`` from parallax / parallax_error >= 5, label covariances 0, Galactic l, b from ra, dec);
  present ones were checked against the same rule by the validator;
* the split: the file's ``split`` column when it has one, otherwise ``catalog.split`` (fractions and seed)
  through the same stable hash of ``source_id`` as a built catalog (:func:`.build.split_of`);
* ``optional`` columns absent from the file are null; ``results/catalog/import.json`` lists them with what
  they would have enabled, and every column of the file the schema does not know (kept out of the catalog);
* with ra and dec for every star the catalog is HEALPix-partitioned like a built one, otherwise one file;
* the photometric systems are checked against the stellar locus (:mod:`.photsys`): a warning per suspicious
  band, or an error with ``catalog.strict_photometry``.

Nothing is dropped: the imported catalog has exactly the file's rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import with_defaults
from ..errors import DataError
from ..io import write_json
from . import build, schema

log = logging.getLogger(__name__)

PathLike = str | Path


def _derive(df: pd.DataFrame, name: str, split: Mapping[str, Any]) -> Any:
    """The value of derived column ``name`` for every row of ``df``."""
    if name.startswith("obs_") or name == "parallax_usable":
        return schema.derive(df, name)
    if name.startswith("cov_"):
        return np.zeros(len(df))
    if name == "split":
        fractions = [split[k] for k in build.SPLITS]
        return build.split_of(df["source_id"].to_numpy(np.int64), fractions, int(split["seed"]))
    raise KeyError(name)


def _galactic(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Galactic (l, b) in degrees from ICRS ra, dec (NaN where a position is missing)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    ra = df["ra"].to_numpy(float, na_value=np.nan)
    dec = df["dec"].to_numpy(float, na_value=np.nan)
    ok = np.isfinite(ra) & np.isfinite(dec)
    l_deg, b_deg = np.full(len(df), np.nan), np.full(len(df), np.nan)
    if ok.any():
        g = SkyCoord(ra=ra[ok] * u.deg, dec=dec[ok] * u.deg, frame="icrs").galactic
        l_deg[ok], b_deg[ok] = g.l.deg, g.b.deg
    return l_deg, b_deg


def import_catalog(
    src: PathLike,
    out_dir: PathLike,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Import the catalog at ``src`` into ``out_dir`` (see the module docstring); the import report.

    ``options``: the config's ``catalog`` section (``healpix_order``, ``row_group_size``, ``split``,
    ``strict_photometry``). Raises :class:`DataError` naming the file, columns and rows when the catalog fails
    its schema, or (strict) its photometric check.
    """
    from . import photsys

    o = with_defaults(options, "catalog")
    src = Path(src)
    table = schema.open_catalog(src).to_table()
    problems = schema.validate_table(table, str(src), external=True)
    if table.num_rows == 0:
        problems.append({"file": str(src), "column": "", "problem": "catalog has no rows"})
    if problems:
        raise DataError(f"catalog {src} fails its schema:\n{schema.format_problems(problems)}")
    given = list(table.column_names)
    known = set(schema.column_names())
    df = table.select([c for c in given if c in known]).to_pandas()
    caps = schema.capabilities(given)
    derived: dict[str, str] = {}
    for c in schema.columns():
        if c.name in df.columns:
            continue
        if c.tier == "derived" and c.name not in ("l", "b"):
            df[c.name] = _derive(df, c.name, o["split"])
            derived[c.name] = c.derived_from
    have_position = {"ra", "dec"} <= set(df.columns)
    if have_position and not {"l", "b"} <= set(given):
        df["l"], df["b"] = _galactic(df)
        derived.update(l="ra, dec", b="ra, dec")
    filled = [c.name for c in schema.columns() if c.name not in df.columns]
    for name in filled:
        df[name] = None
    split_source = "file" if "split" in given else "hash of source_id (catalog.split)"

    phot = photsys.check_photometry(df)
    photsys.enforce(phot, bool(o["strict_photometry"]), str(src))

    positions = have_position and bool(
        np.isfinite(df["ra"].to_numpy(float, na_value=np.nan)).all()
        and np.isfinite(df["dec"].to_numpy(float, na_value=np.nan)).all()
    )
    order = int(o["healpix_order"]) if positions else None
    written = build.write_partitioned(df, out_dir, order, int(o["row_group_size"]))
    from .. import provenance

    report = {
        "source": str(src),
        "source_files": provenance.files_read(src),  # what was read: path, size, MD5
        "rows": len(df),
        "columns_given": given,
        "ignored_columns": [c for c in given if c not in known],
        "derived": derived,
        "null_optional_columns": {n: caps["cannot_produce"].get(n, "") for n in filled},
        "split": {"source": split_source, **{s: int((df["split"] == s).sum()) for s in build.SPLITS}},
        "partitioning": written,
        "photometry": phot.to_dict(),
    }
    if not positions:
        report["partitioning"]["why_not"] = (
            "ra/dec not given" if not have_position else "ra/dec missing for some stars"
        ) + ": the catalog is one file, not HEALPix partitions"
    log.info(
        "imported %d stars from %s: derived %s; null %s; split from %s",
        len(df),
        src,
        ", ".join(derived) or "nothing",
        ", ".join(filled) or "nothing",
        split_source,
    )
    return report


def run_import(catalog: PathLike, out_dir: PathLike, out_report: PathLike, options: Mapping[str, Any]) -> dict:
    """Rule import_catalog: the user's catalog in the full schema under ``out_dir``, and the import report."""
    report = import_catalog(catalog, out_dir, options)
    write_json(report, out_report)
    return report
