"""The training catalog's schema (workflow/schemas/catalog.schema.yaml): loading, Arrow schema, validation
of a catalog (built here or brought by the user) and the Markdown page docs/catalog.md.

``python -m ddstars.catalog.schema`` prints the Markdown page; ``python -m ddstars.catalog.schema PATH``
validates the catalog at PATH (a Hive-partitioned directory or one Parquet file) and prints every problem;
``--external PATH`` validates a catalog brought by the user (required columns only) and prints what it lacks.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import yaml

from ..bands import BAND_NAMES, BANDS
from ..errors import DataError, SchemaError

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "catalog.schema.yaml"
_ARROW = {
    "int8": pa.int8(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
}


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    unit: str
    nullable: bool
    description: str
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    tier: str = "required"  # required | derived | optional (what a catalog brought by the user must hold)
    derived_from: str = ""  # tier derived: how the import computes it when absent
    enables: str = ""  # tier optional: what it is needed for

    @property
    def arrow(self) -> pa.DataType:
        return _ARROW[self.dtype]


@functools.lru_cache(maxsize=2)
def load_schema(path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """The parsed schema file with ``columns`` expanded to one :class:`Column` per catalog column."""
    path = Path(path)
    if not path.is_file():
        raise SchemaError(f"catalog schema {path} not found (it ships with the repository in workflow/schemas/)")
    doc = yaml.safe_load(path.read_text())
    cols = []
    for c in doc["columns"]:
        names = [c["name"].format(band=b) for b in BAND_NAMES] if "{band}" in c["name"] else [c["name"]]
        for name in names:
            cols.append(
                Column(
                    name,
                    c["dtype"],
                    c.get("unit", ""),
                    bool(c["nullable"]),
                    " ".join(str(c["description"]).split()),
                    tuple(c["enum"]) if "enum" in c else None,
                    c.get("minimum"),
                    c.get("maximum"),
                    c.get("exclusive_minimum"),
                    c.get("tier", "required"),
                    str(c.get("derived_from", "")).replace("{band}", name.split("_", 1)[-1]),
                    str(c.get("enables", "")),
                )
            )
    return {**doc, "columns": tuple(cols)}


def columns() -> tuple[Column, ...]:
    return load_schema()["columns"]


def column_names() -> list[str]:
    return [c.name for c in columns()]


def partition_column(order: int) -> str:
    """Name of the Hive partition column at HEALPix ``order`` (e.g. ``healpix_5``)."""
    return load_schema()["partitioning"]["column"].format(order=order)


def arrow_schema() -> pa.Schema:
    """Arrow schema of the catalog files (without the partition column); each field carries the schema's
    ``unit`` ("" for a dimensionless column) and ``description`` as field metadata, stored in the Parquet files."""
    return pa.schema(
        [
            pa.field(c.name, c.arrow, nullable=c.nullable, metadata={"unit": c.unit, "description": c.description})
            for c in columns()
        ]
    )


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """The catalog DataFrame as an Arrow table in schema order and types (raises naming a bad column)."""
    missing = [c for c in column_names() if c not in df.columns]
    if missing:
        raise SchemaError(f"catalog frame lacks column(s) {', '.join(missing)}")
    arrays = []
    for c in columns():
        try:
            arrays.append(pa.array(df[c.name], type=c.arrow, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as err:
            raise SchemaError(f"catalog column {c.name!r} cannot be stored as {c.dtype}: {err}") from err
    return pa.Table.from_arrays(arrays, schema=arrow_schema())


# --------------------------------------------------------------------------------------------- validation
def open_catalog(path: str | Path) -> ds.Dataset:
    """The catalog at ``path`` (Hive-partitioned directory or one Parquet file) as a pyarrow dataset."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"catalog {path} not found")
    try:
        return ds.dataset(path, format="parquet", partitioning="hive" if path.is_dir() else None)
    except (pa.ArrowInvalid, OSError) as e:  # not Parquet, or cut short (no footer)
        raise DataError(
            f"catalog {path} cannot be read as Parquet ({e}); is it a complete Parquet file (or a folder of them)? "
            "A file cut short by an interrupted copy or a CSV/FITS table gives this error"
        ) from None


def _rows(mask: np.ndarray, ids: np.ndarray, limit: int = 5) -> dict[str, Any]:
    idx = np.flatnonzero(mask)
    return {"n_rows": int(len(idx)), "first_rows": idx[:limit].tolist(), "first_source_ids": ids[idx[:limit]].tolist()}


def _kind_ok(want: pa.DataType, got: pa.DataType) -> bool:
    if pa.types.is_integer(want):
        return pa.types.is_integer(got)
    if pa.types.is_floating(want):
        return pa.types.is_floating(got) or pa.types.is_integer(got)
    if pa.types.is_string(want):
        return pa.types.is_string(got) or pa.types.is_large_string(got) or pa.types.is_dictionary(got)
    return got == want


def derive(cols: Any, name: str) -> np.ndarray:
    """The rule of a derived mask column from the columns it depends on (``cols[column]`` -> pandas Series):
    ``obs_<band>`` (mag and err both finite) or ``parallax_usable`` (parallax / parallax_error >= 5). The
    validator checks a given column against it; the import computes an absent one with it."""

    def f(col: str) -> np.ndarray:
        return cols[col].to_numpy(float, na_value=np.nan)

    if name.startswith("obs_"):
        band = name[4:]
        return np.isfinite(f(f"mag_{band}")) & np.isfinite(f(f"err_{band}"))
    if name == "parallax_usable":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nan_to_num(f("parallax") / f("parallax_error"), nan=-np.inf) >= 5
    raise KeyError(name)


def validate_table(table: pa.Table, where: str = "catalog", external: bool = False) -> list[dict[str, Any]]:
    """Every problem of ``table`` against the schema: one dict per (column, problem) with the rows at fault.

    With ``external`` (a catalog brought by the user) only the ``required`` columns must be there; a
    ``derived`` or ``optional`` column that is there is checked like any other.

    Checks: missing columns, wrong types, nulls/NaN where not allowed, values outside enum or range,
    duplicate source_id, errors without magnitudes (or the reverse), obs_<band> masks that disagree with
    mag/err, parallax_usable that disagrees with parallax/parallax_error >= 5. Row numbers count from 0 in
    the dataset's scan order.
    """
    problems: list[dict[str, Any]] = []

    def add(column: str, problem: str, mask: np.ndarray | None = None) -> None:
        entry = {"file": where, "column": column, "problem": problem}
        if mask is not None:
            entry.update(_rows(mask, ids))
        problems.append(entry)

    ids = (
        table.column("source_id").to_numpy(zero_copy_only=False)
        if "source_id" in table.column_names
        else np.arange(table.num_rows)
    )
    present = {}
    for c in columns():
        if c.name not in table.column_names:
            if not external or c.tier == "required":
                add(c.name, "missing column" + (" (required)" if external else ""))
            continue
        col = table.column(c.name)
        if not _kind_ok(c.arrow, col.type):
            hint = ""
            if pa.types.is_integer(c.arrow) and pa.types.is_floating(col.type):
                hint = (
                    f" (pandas stores an integer column with missing values as float: write it as a nullable "
                    f"integer, df[{c.name!r}] = df[{c.name!r}].astype('Int64'), before to_parquet)"
                )
            add(c.name, f"type {col.type}, expected {c.dtype}{hint}")
            continue
        values = col.to_pandas()
        null = values.isna().to_numpy()
        if not c.nullable and null.any():
            add(c.name, "null or NaN where a value is required", null)
        if c.enum is not None:
            bad = ~values.isin(c.enum).to_numpy() & ~null
            if bad.any():
                add(c.name, f"value outside {list(c.enum)}", bad)
        if pa.types.is_floating(c.arrow) or pa.types.is_integer(c.arrow):
            v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if pa.types.is_floating(c.arrow):
                inf = np.isinf(v)
                if inf.any():
                    add(c.name, "infinite value", inf)
            with np.errstate(invalid="ignore"):
                for bound, test, text in (
                    (c.minimum, lambda x, m: x < m, "below minimum"),
                    (c.maximum, lambda x, m: x > m, "above maximum"),
                    (c.exclusive_minimum, lambda x, m: x <= m, "not above"),
                ):
                    if bound is not None:
                        bad = test(v, bound)
                        if bad.any():
                            add(c.name, f"{text} {bound}", bad)
        present[c.name] = values
    if "source_id" in present:
        dup = present["source_id"].duplicated(keep=False).to_numpy()
        if dup.any():
            add("source_id", "duplicate source_id", dup)
    for band in BAND_NAMES:
        m, e, o = (present.get(f"{k}_{band}") for k in ("mag", "err", "obs"))
        if m is None or e is None or o is None:
            continue
        fm, fe = np.isfinite(m.to_numpy(float, na_value=np.nan)), np.isfinite(e.to_numpy(float, na_value=np.nan))
        if (fm != fe).any():
            add(f"err_{band}", "finite exactly where mag is finite: violated", fm != fe)
        bad = o.to_numpy(bool, na_value=False) != derive(present, f"obs_{band}")
        if bad.any():
            add(f"obs_{band}", "mask disagrees with finite mag/err", bad)
    if {"parallax", "parallax_error", "parallax_usable"} <= present.keys():
        bad = present["parallax_usable"].to_numpy(bool, na_value=False) != derive(present, "parallax_usable")
        if bad.any():
            add("parallax_usable", "disagrees with parallax / parallax_error >= 5", bad)
    return problems


def capabilities(names: list[str] | set[str]) -> dict[str, Any]:
    """For a catalog brought by the user with columns ``names``: the columns it lacks by tier, and what each
    missing optional column would have enabled (what the run cannot produce)."""
    have = set(names)
    missing = [c for c in columns() if c.name not in have]
    return {
        "missing_required": [c.name for c in missing if c.tier == "required"],
        "derived_on_import": {c.name: c.derived_from for c in missing if c.tier == "derived"},
        "cannot_produce": {c.name: c.enables for c in missing if c.tier == "optional"},
    }


def check_catalog(path: str | Path, order: int | None = None, external: bool = False) -> list[dict[str, Any]]:
    """Validate the catalog at ``path``; also checks the HEALPix partition column if ``order`` is given.
    ``external``: a catalog brought by the user (see :func:`validate_table`)."""
    dataset = open_catalog(path)
    table = dataset.to_table()
    problems = validate_table(table, str(path), external)
    if table.num_rows == 0:
        problems.append({"file": str(path), "column": "", "problem": "catalog has no rows"})
    if order is not None and table.num_rows:
        import healpy as hp

        name = partition_column(order)
        if name not in table.column_names:
            problems.append(
                {"file": str(path), "column": name, "problem": f"missing partition column (directories {name}=<pixel>)"}
            )
        elif {"ra", "dec"} <= set(table.column_names):
            ra = table.column("ra").to_numpy(zero_copy_only=False)
            dec = table.column("dec").to_numpy(zero_copy_only=False)
            ok = np.isfinite(ra) & np.isfinite(dec)
            pix = np.full(len(ra), -1)
            pix[ok] = hp.ang2pix(2**order, ra[ok], dec[ok], nest=True, lonlat=True)
            bad = pix != table.column(name).to_numpy(zero_copy_only=False).astype(np.int64)
            if bad.any():
                ids = table.column("source_id").to_numpy(zero_copy_only=False)
                problems.append(
                    {"file": str(path), "column": name, "problem": "pixel disagrees with ra/dec", **_rows(bad, ids)}
                )
    return problems


def format_problems(problems: list[dict[str, Any]]) -> str:
    lines = []
    for p in problems:
        rows = (
            f" ({p['n_rows']} rows, first {p['first_rows']}, source_id {p['first_source_ids']})"
            if "n_rows" in p
            else ""
        )
        lines.append(f"{p['file']}: column {p['column']!r}: {p['problem']}{rows}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- docs
def markdown() -> str:
    """docs/catalog.md: every column with dtype, unit, null meaning and description."""
    doc = load_schema()
    lines = [
        "# The training catalog",
        "",
        "<!-- Generated from workflow/schemas/catalog.schema.yaml by `python -m ddstars.catalog.schema`;"
        " edit the schema, not this page. -->",
        "",
        f"Schema version {doc['version']}. One row per star, written by rule `build_catalog` to",
        "`results/catalog/stars/` as Hive-partitioned Parquet:",
        "",
        "    results/catalog/stars/"
        + doc["partitioning"]["column"].replace("{order}", "<order>")
        + "=<pixel>/part-0.parquet",
        "",
        " ".join(str(doc["partitioning"]["description"]).split()),
        "",
        "Read one pixel without touching the others:",
        "",
        "```python",
        "import pyarrow.dataset as ds",
        'cat = ds.dataset("results/catalog/stars", format="parquet", partitioning="hive")',
        'one = cat.to_table(filter=ds.field("healpix_2") == 37).to_pandas()',
        "```",
        "",
        "## Your own catalog",
        "",
        "A catalog of your own can replace the archive and catalog stages: set `catalog.external` in",
        "`config/config.yaml` to its path (one Parquet file or a folder of them). It needs only the columns of",
        "tier **required** below. Rule `check_catalog` checks the file and reports every problem with its column",
        "and rows (also `python -m ddstars.catalog.schema --external PATH`), and lists what the import derives and",
        "what the run cannot produce without the optional columns it lacks (`results/catalog/check.json`).",
        "Rule `import_catalog` then writes `results/catalog/stars/` in the full schema:",
        "",
        "- **derived** columns the file lacks are computed as the table says; present ones must agree with that rule;",
        "- the split: the file's `split` column when it has one, otherwise `catalog.split` (fractions and seed)",
        "  through the same stable hash of `source_id` as a built catalog;",
        "- **optional** columns the file lacks are null; columns the schema does not know are left out and listed",
        "  in `results/catalog/import.json`;",
        "- with `ra` and `dec` for every star the catalog is HEALPix-partitioned, otherwise it is one file;",
        "- the photometric systems are checked against the stellar locus of dwarfs at 5,000-6,000 K (a band",
        "  off by more than 0.2 mag: a warning naming the column and the likely cause, such as Vega magnitudes",
        "  where AB is expected; an error with `catalog.strict_photometry: true`).",
        "",
        "Magnitude systems: Gaia and 2MASS Vega, Pan-STARRS1 AB, unWISE AB (Vega + 2.699 in W1, + 3.339 in W2).",
        "Errors should include the 0.02 mag floor in quadrature, as the paper's catalog does.",
        "",
        "## Columns",
        "",
        "Band columns: `{band}` stands for " + ", ".join(f"`{b.name}`" for b in BANDS) + ".",
        "",
        "| column | dtype | unit | null allowed | tier (your own catalog) | description |",
        "|---|---|---|---|---|---|",
    ]
    for c in yaml.safe_load(SCHEMA_PATH.read_text())["columns"]:
        name = c["name"]
        extra = []
        if "enum" in c:
            extra.append("one of " + ", ".join(f"`{v}`" for v in c["enum"]))
        for key, text in (("minimum", ">="), ("exclusive_minimum", ">"), ("maximum", "<=")):
            if key in c:
                extra.append(f"{text} {c[key]}")
        desc = " ".join(str(c["description"]).split()) + (f" ({'; '.join(extra)})" if extra else "")
        null = "yes (NaN/null = not available)" if c["nullable"] else "no"
        tier = c.get("tier", "required")
        if tier == "derived":
            tier = f"derived: {c['derived_from']}"
        elif tier == "optional":
            tier = f"optional: {c['enables']}"
        lines.append(f"| `{name}` | {c['dtype']} | {c.get('unit') or '-'} | {null} | {tier} | {desc} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m ddstars.catalog.schema",
        description="Validate a training catalog against the schema and print every problem (exit status 1 if "
        "any); without PATH, print the Markdown page docs/catalog.md.",
    )
    parser.add_argument("path", nargs="?", help="catalog: one Parquet file or a Hive-partitioned folder")
    parser.add_argument(
        "--external",
        action="store_true",
        help="a catalog of your own (catalog.external): only the required columns must be there; also print what "
        "the import derives and what the run cannot produce",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.path is None:
        sys.stdout.write(markdown())
        return 0
    problems = check_catalog(args.path, external=args.external)
    if args.external:
        import json

        print(json.dumps(capabilities(open_catalog(args.path).schema.names), indent=1))
    if problems:
        print(format_problems(problems))
        return 1
    print(f"{args.path}: valid")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
