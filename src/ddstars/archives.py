"""The archive interface: one small description per archive table, and the backends that serve them.

Every table comes back as a pandas DataFrame with the archive's own column names (ARCHIVES.md §1-§8),
whichever backend serves it. A backend only decides *where* a table's file is:

* ``simulated`` reads ``resources/simulated/archives/<table>.parquet``, written by the simulated sky;
* ``remote`` reads ``resources/archives/<table>.parquet``, the cache the archive-query stage fills.

Rules receive the file path from :func:`table_path` and read it with :func:`read_table`, which checks the
file against the table's :class:`ArchiveTable` description and raises errors naming the file, the column
and the rows at fault. So rules never know which backend produced a table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import registry
from .config import get as config_value
from .errors import ConfigError, DataError, SchemaError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

# pandas and pyarrow are imported where tables are read, not here: the workflow imports this module (table_path)
# each time it is parsed.


def _kind_ok(kind: str, t: pa.DataType) -> bool:
    """Column kinds: "int" (integer), "float" (floating or integer), "num" (the same check, for flag columns that
    arrive as either), "str" (string), "list" (list of numbers)."""
    import pyarrow as pa

    is_ = pa.types
    return {
        "int": lambda: is_.is_integer(t),
        "float": lambda: is_.is_floating(t) or is_.is_integer(t),
        "num": lambda: is_.is_floating(t) or is_.is_integer(t),
        "str": lambda: is_.is_string(t) or is_.is_large_string(t),
        "list": lambda: is_.is_list(t) or is_.is_large_list(t) or is_.is_fixed_size_list(t),
    }[kind]()


@dataclass(frozen=True)
class ArchiveTable:
    """What the catalog stage needs from one archive table.

    ``columns`` maps every column the cuts and matches read to its kind (see ``_kind_ok``);
    ``key`` is the table's identifier column, ``ra``/``dec`` its position columns (None where the table
    has no positions, e.g. best-neighbour tables).
    """

    name: str
    archive: str
    service_table: str
    key: str
    columns: Mapping[str, str]
    ra: str | None = None
    dec: str | None = None


def _cols(kind: str, names: Iterable[str]) -> dict[str, str]:
    return dict.fromkeys(names, kind)


_BEST_NEIGHBOUR = {"source_id": "int", "angular_distance": "float"}
# gaia_source columns of every release: identity and astrometry, then G, BP, RP
_GAIA = {"source_id": "int", **_cols("float", ["ra", "dec", "l", "b", "parallax", "parallax_error"])}
_GAIA_PHOTOMETRY = _cols("float", [f"phot_{b}_mean_{k}" for b in ("g", "bp", "rp") for k in ("mag", "flux_over_error")])


def _table(name: str, key: str, columns: Mapping[str, str], ra: str | None = None, dec: str | None = None):
    """The description of registry table ``name`` (its archive and service table come from the registry)."""
    entry = registry.ALL_TABLES[name]
    return ArchiveTable(name, entry.archive, entry.service_table, key, columns, ra, dec)


_DESCRIPTIONS: dict[str, ArchiveTable] = {
    t.name: t
    for t in (
        _table(
            "gaia_source",
            "source_id",
            {
                **_GAIA,
                **_cols("num", ["visibility_periods_used", "astrometric_n_good_obs_al", "phot_g_n_obs"]),
                "astrometric_chi2_al": "float",
                **_GAIA_PHOTOMETRY,
            },
            "ra",
            "dec",
        ),
        _table(
            "panstarrs1_best_neighbour",
            "source_id",
            {**_BEST_NEIGHBOUR, "original_ext_source_id": "int"},
        ),
        _table(
            "tmass_best_neighbour",
            "source_id",
            {**_BEST_NEIGHBOUR, "original_ext_source_id": "str"},
        ),
        _table(
            "ps1_mean_object",
            "objID",
            {
                "objID": "int",
                "raMean": "float",
                "decMean": "float",
                **_cols("num", [f"n{b}" for b in "grizy"]),
                **_cols("float", [f"{b}{s}" for b in "grizy" for s in ("MeanPSFMag", "MeanPSFMagErr", "MeanApMag")]),
            },
            "raMean",
            "decMean",
        ),
        _table(
            "tmass_psc",
            "designation",
            {
                "designation": "str",
                "ra": "float",
                "dec": "float",
                **_cols("float", [f"{b}_{s}" for b in "jhk" for s in ("m", "msigcom")]),
                **_cols("str", ["ph_qual", "rd_flg", "cc_flg"]),
                **_cols("num", ["use_src", "gal_contam", "ext_key"]),
            },
            "ra",
            "dec",
        ),
        _table(
            "unwise",
            "unwise_objid",
            {
                "unwise_objid": "str",
                "ra": "float",
                "dec": "float",
                "primary": "num",
                **_cols("float", [f"{c}_{b}" for b in ("w1", "w2") for c in ("flux", "dflux", "rchi2", "fracflux")]),
                **_cols("num", ["flags_unwise_w1", "flags_unwise_w2"]),
            },
            "ra",
            "dec",
        ),
        _table(
            "lamost_dr5_ddpayne",
            "obsid",
            {
                "obsid": "int",
                "ra": "float",
                "dec": "float",
                **_cols("float", ["teff", "teff_err", "logg", "logg_err", "feh", "feh_err"]),
                **_cols("float", [f"snr_{b}" for b in "ugriz"]),
                **_cols("str", ["qflag_chi2", "flag_singlestar"]),
            },
            "ra",
            "dec",
        ),
        _table(
            "apogee_dr16_allstar",
            "APOGEE_ID",
            {
                "APOGEE_ID": "str",
                "RA": "float",
                "DEC": "float",
                "SNR": "float",
                "ASPCAPFLAG": "int",
                **_cols("float", ["TEFF_ERR", "LOGG_ERR", "M_H_ERR"]),
                **_cols("list", ["PARAM", "FPARAM_COV"]),
            },
            "RA",
            "DEC",
        ),
        _table(
            "galah_dr2",
            "sobject_id",
            {
                "sobject_id": "int",
                "ra": "float",
                "dec": "float",
                **_cols("float", ["teff", "e_teff", "logg", "e_logg", "fe_h", "e_fe_h"]),
                **_cols("float", [f"snr_c{i}" for i in range(1, 5)]),
                "flag_cannon": "num",
            },
            "ra",
            "dec",
        ),
        _table(
            "gaia_dr3_source",
            "source_id",
            {
                **_GAIA,
                **_cols("num", ["visibility_periods_used", "phot_g_n_obs", "astrometric_params_solved"]),
                **_cols("float", ["ruwe", "phot_bp_rp_excess_factor", "nu_eff_used_in_astrometry", "pseudocolour"]),
                "ecl_lat": "float",
                **_GAIA_PHOTOMETRY,
            },
            "ra",
            "dec",
        ),
        _table(
            "gaia_dr3_panstarrs1_best_neighbour",
            "source_id",
            {**_BEST_NEIGHBOUR, "original_ext_source_id": "int"},
        ),
        _table(
            "gaia_dr3_tmass_psc_xsc_best_neighbour",
            "source_id",
            {**_BEST_NEIGHBOUR, "clean_tmass_psc_xsc_oid": "int", "original_psc_source_id": "str"},
        ),
        _table(
            "apogee_dr17_allstar",
            "APOGEE_ID",
            {
                "APOGEE_ID": "str",
                "RA": "float",
                "DEC": "float",
                "SNR": "float",
                **_cols("int", ["ASPCAPFLAG", "EXTRATARG"]),
                "GAIAEDR3_SOURCE_ID": "int",
                **_cols("float", ["TEFF_ERR", "LOGG_ERR", "M_H_ERR"]),
                **_cols("list", ["PARAM", "FPARAM_COV"]),
            },
            "RA",
            "DEC",
        ),
        _table(
            "galah_dr4",
            "sobject_id",
            {
                "sobject_id": "int",
                "gaiadr3_source_id": "int",
                "ra": "float",
                "dec": "float",
                **_cols("float", ["teff", "e_teff", "logg", "e_logg", "fe_h", "e_fe_h"]),
                **_cols("float", [f"snr_px_ccd{i}" for i in range(1, 5)]),
                "flag_sp": "num",
            },
            "ra",
            "dec",
        ),
    )
}
# One description per registry table of every release, in the registry's order.
TABLES: dict[str, ArchiveTable] = {name: _DESCRIPTIONS[name] for name in registry.ALL_TABLES}
if set(_DESCRIPTIONS) != set(registry.ALL_TABLES):
    raise RuntimeError(
        f"archive descriptions and registry tables differ: {set(_DESCRIPTIONS) ^ set(registry.ALL_TABLES)}"
    )

BACKENDS = ("simulated", "remote")


@dataclass(frozen=True)
class Backend:
    """Where a backend keeps its archive tables: ``<folder>/<table>.parquet``.

    ``simulated``: the simulated sky's ``<root>/archives``; ``remote``: the archive-query stage's cache.
    """

    name: str
    folder: Path

    def path(self, table: str) -> Path:
        _spec(table)
        return self.folder / f"{table}.parquet"


def backend_from_config(config: Mapping[str, Any]):
    """The backend named by ``config["backend"]``."""
    name = config_value(config, "backend")
    if name == "simulated":
        return Backend(name, Path(config.get("simulated_root", "resources/simulated")) / "archives")
    if name == "remote":  # a release other than the paper's has a folder of its own (its queries differ)
        release = registry.configured(config).name
        folder = Path(config.get("archive_cache", "resources/archives"))
        return Backend(name, folder if release == registry.DEFAULT_RELEASE else folder / release)
    raise ConfigError(f"config key 'backend' is {name!r}; expected one of {', '.join(BACKENDS)}")


def table_path(config: Mapping[str, Any], table: str) -> Path:
    """Path of archive table ``table`` under the configured backend."""
    return backend_from_config(config).path(table)


def _spec(table: str) -> ArchiveTable:
    try:
        return TABLES[table]
    except KeyError:
        raise KeyError(f"unknown archive table {table!r}; known: {', '.join(TABLES)}") from None


def check_schema(schema: pa.Schema, spec: ArchiveTable, where: str) -> None:
    """Raise :class:`SchemaError` listing every missing column and every column of the wrong kind."""
    problems = []
    for col, kind in spec.columns.items():
        if col not in schema.names:
            problems.append(f"missing column {col!r}")
        elif not _kind_ok(kind, schema.field(col).type):
            problems.append(f"column {col!r} has type {schema.field(col).type}, expected {kind}")
    if problems:
        raise SchemaError(f"{where} ({spec.archive} {spec.service_table}): " + "; ".join(problems))


def read_table(path: str | Path, table: str, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Read archive table ``table`` from ``path``, checked against its description.

    Raises :class:`DataError` if the file is missing, unreadable or empty, or if a position column holds
    non-finite values (naming the column and the first offending rows), and :class:`SchemaError` if a
    column is missing or has the wrong kind. ``columns`` restricts the columns read (default: all).
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    spec = _spec(table)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: archive table {table!r} not found")
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(f"{path}: not a readable Parquet file ({err})") from err
    check_schema(pf.schema_arrow, spec, str(path))
    if pf.metadata.num_rows == 0:
        raise DataError(f"{path}: archive table {table!r} is empty (0 rows)")
    cols = None if columns is None else list(dict.fromkeys([spec.key, *columns]))
    df = pf.read(columns=cols).to_pandas()
    for col in (spec.ra, spec.dec):
        if col is not None and col in df.columns:
            bad = ~np.isfinite(pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan))
            if bad.any():
                rows = np.flatnonzero(bad)
                raise DataError(
                    f"{path}: column {col!r} has {len(rows)} non-finite value(s), first at row(s) "
                    f"{', '.join(map(str, rows[:5]))} ({spec.key} {', '.join(map(str, df[spec.key].iloc[rows[:5]]))})"
                )
    return df
