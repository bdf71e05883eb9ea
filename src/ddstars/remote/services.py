"""Which service serves each archive table, and how one chunk of it is queried (ARCHIVES.md §1-§8, §10).

Every table of :data:`ddstars.archives.TABLES` has a :class:`QuerySpec`. Its chunk ``kind`` says how the table
is cut into requests that stay under the service's row and upload caps:

* ``range``: a full-table slice ``lo <= range_column < hi`` (the spectroscopic catalogs, sliced in RA);
* ``position_upload``: the targets' positions of one HEALPix pixel (nested, ``healpix_order``), in blocks of at
  most ``chunk_size`` rows, uploaded as ``TAP_UPLOAD.ids`` and joined within ``radius_arcsec`` (Gaia DR2 for the
  spectroscopic targets at the paper's 0.2″, unWISE for the Gaia sources at 0.4″);
* ``id_upload``: sorted blocks of at most ``chunk_size`` identifiers, uploaded as ``TAP_UPLOAD.ids`` and joined
  on the key (Gaia best-neighbour tables by ``source_id``, 2MASS PSC by designation). Sorted Gaia ``source_id``
  blocks are sky-contiguous (the id encodes the HEALPix level-12 index);
* ``id_list``: sorted blocks of identifiers inlined as ``key IN (...)`` (MAST PS1, whose upload support is
  UNVERIFIED, ARCHIVES.md §3);
* ``file``: one download of a whole file (APOGEE DR16 allStar FITS, for which no TAP service with ``PARAM`` and
  ``FPARAM_COV`` is known, ARCHIVES.md §7);
* ``healpix``: every source of the given HEALPix pixels (nested, ``pixel_order``) in a window of one magnitude,
  one request per pixel refined to ``healpix_order``, as a ``source_id`` range (Gaia ids encode the level-12
  pixel: the photometric sample's Gaia sources, below).

**Samples.** The tables the training catalog is built from have the registry's names. The photometric-only sample
of the inference (``inference.input: photometric`` with ``backend: remote``: stars without spectra, from the Gaia
sources of ``inference.photometric_sample.pixels``) is a second set of the photometric tables, named
``photometric/<table>`` (:data:`SAMPLE_TABLES`): its ``gaia_source`` is of kind ``healpix``, the tables hanging off
Gaia are queried as the catalog's are, from the sample's Gaia sources; their files and chunks lie under
``<archive_cache>/photometric/`` (:func:`archive_file`), their raw chunks under ``<cache_dir>/photometric/``.

``columns`` maps remote column names to the archive names of :data:`ddstars.archives.TABLES` (identity where the
remote already uses them). The VizieR labels of LAMOST DD-Payne and GALAH DR2 are UNVERIFIED (ARCHIVES.md §6, §8):
only ``RAJ2000``/``DEJ2000`` are renamed by default; override the rest with ``remote.tables.<t>.columns``.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .. import registry
from ..archives import TABLES, table_path
from ..config import defaults
from ..errors import ConfigError

KINDS = ("range", "position_upload", "id_upload", "id_list", "file", "healpix")
UPLOAD_NAME = "ids"  # the uploaded table: TAP_UPLOAD.ids with columns id, or row_id/ra/dec


@dataclass(frozen=True)
class QuerySpec:
    """How archive table ``table`` is fetched from ``service`` (see the module docstring for ``kind``).

    ``columns``: remote name -> archive name; ``key``/``ra``/``dec``/``range_column`` are remote names.
    ``upstream``: (archive table, archive column) pairs whose values are the upload/list inputs.
    """

    table: str
    service: str
    remote_table: str
    kind: str
    columns: Mapping[str, str]
    key: str
    ra: str | None = None
    dec: str | None = None
    mode: str = "sync"
    chunk_size: int = 50_000
    healpix_order: int = 5
    radius_arcsec: float = 0.2
    range_column: str | None = None
    range: tuple[float, float] = (0.0, 360.0)
    n_chunks: int = 36
    upstream: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    name: str = ""  # the qualified name (``photometric/gaia_source``) of a sample's table; else ``table``
    pixels: tuple[int, ...] = ()  # kind healpix: the pixels (nested, pixel_order) whose sources are fetched
    pixel_order: int = 0
    mag_column: str | None = None  # kind healpix: remote column of the magnitude window mag_range [lo, hi)
    mag_range: tuple[float, float] | None = None
    # kind id_upload: further tables joined to the queried one (``t``), as ADQL ``JOIN … AS <alias> ON …``
    # clauses, and the remote columns read from them (remote name -> alias); e.g. Gaia DR3's 2MASS best
    # neighbours, whose PSC designation is in gaiadr3.tmass_psc_xsc_join
    joins: tuple[str, ...] = ()
    joined_columns: Mapping[str, str] = field(default_factory=dict)

    def archive_name(self, remote: str) -> str:
        return self.columns.get(remote, remote)

    def remote_name(self, archive: str) -> str:
        inverse = {v: k for k, v in self.columns.items()}
        return inverse.get(archive, archive)


def _identity(table: str, **renamed: str) -> dict[str, str]:
    """Remote -> archive mapping for every column of ``table``: identity, except ``renamed`` (remote=archive)."""
    cols = {c: c for c in TABLES[table].columns}
    for remote, archive in renamed.items():
        cols.pop(archive, None)
        cols[remote] = archive
    return cols


def _spec(table: str, kind: str, columns: Mapping[str, str], key: str, *pos: str | None, **kw: Any) -> QuerySpec:
    """The :class:`QuerySpec` of registry table ``table``: service, service table and upstream inputs from the
    registry, how it is cut into chunks here."""
    entry = registry.ALL_TABLES[table]
    return QuerySpec(table, entry.service, entry.service_table, kind, columns, key, *pos, upstream=entry.upstream, **kw)


_QUERIES = {
    s.table: s
    for s in (
        _spec(
            "lamost_dr5_ddpayne", "range", _identity("lamost_dr5_ddpayne", RAJ2000="ra", DEJ2000="dec"), "obsid",
            "RAJ2000", "DEJ2000", range_column="RAJ2000", n_chunks=72,
        ),
        _spec(
            "apogee_dr16_allstar", "file", {**_identity("apogee_dr16_allstar"), "GAIA_SOURCE_ID": "GAIA_SOURCE_ID"},
            "APOGEE_ID", "RA", "DEC", n_chunks=1,
        ),
        _spec(
            "galah_dr2", "range", _identity("galah_dr2", RAJ2000="ra", DEJ2000="dec"), "sobject_id",
            "RAJ2000", "DEJ2000", range_column="RAJ2000", n_chunks=12,
        ),
        _spec(
            "gaia_source", "position_upload", _identity("gaia_source"), "source_id", "ra", "dec", mode="async",
            chunk_size=50_000, healpix_order=5, radius_arcsec=0.2,
        ),
        _spec(
            "panstarrs1_best_neighbour", "id_upload", _identity("panstarrs1_best_neighbour"), "source_id",
            mode="async", chunk_size=100_000,
        ),
        _spec(
            "tmass_best_neighbour", "id_upload", _identity("tmass_best_neighbour"), "source_id", mode="async",
            chunk_size=100_000,
        ),
        _spec(
            "ps1_mean_object", "id_list", _identity("ps1_mean_object"), "objID", "raMean", "decMean", chunk_size=1_000
        ),
        _spec("tmass_psc", "id_upload", _identity("tmass_psc"), "designation", "ra", "dec", chunk_size=50_000),
        _spec(
            "unwise", "position_upload", _identity("unwise"), "unwise_objid", "ra", "dec", chunk_size=20_000,
            healpix_order=6, radius_arcsec=0.4,
        ),
        # the Gaia DR3 era (archives.release dr3; docs/releases.md)
        _spec(
            "gaia_dr3_source", "position_upload", _identity("gaia_dr3_source"), "source_id", "ra", "dec",
            mode="async", chunk_size=50_000, healpix_order=5, radius_arcsec=0.2,
        ),
        _spec(
            "gaia_dr3_panstarrs1_best_neighbour", "id_upload", _identity("gaia_dr3_panstarrs1_best_neighbour"),
            "source_id", mode="async", chunk_size=100_000,
        ),
        _spec(
            "gaia_dr3_tmass_psc_xsc_best_neighbour", "id_upload", _identity("gaia_dr3_tmass_psc_xsc_best_neighbour"),
            "source_id", mode="async", chunk_size=100_000,
            joins=("JOIN gaiadr3.tmass_psc_xsc_join AS j ON j.clean_tmass_psc_xsc_oid = t.clean_tmass_psc_xsc_oid",),
            joined_columns={"original_psc_source_id": "j"},
        ),
        _spec(
            "apogee_dr17_allstar", "file", _identity("apogee_dr17_allstar"), "APOGEE_ID", "RA", "DEC", n_chunks=1,
        ),
        _spec(
            "galah_dr4", "range", _identity("galah_dr4"), "sobject_id", "ra", "dec", range_column="ra", n_chunks=12,
        ),
    )
}  # fmt: skip
#: One query spec per registry table of the paper's release, in an order where each table comes after those its
#: queries need; :data:`ALL_SPECS`: those of every release (a table two releases share has one spec, whose
#: upstream inputs :func:`spec_for` takes from the configured release).
SPECS: dict[str, QuerySpec] = {name: _QUERIES[name] for name in registry.release().query_order()}
ALL_SPECS: dict[str, QuerySpec] = {name: _QUERIES[name] for name in registry.ALL_TABLES}

# The ``remote:`` config section's defaults: those of workflow/schemas/config.schema.yaml (ddstars.config).
DEFAULT_CONFIG: dict[str, Any] = defaults("remote")

_TABLE_KEYS = ("service", "remote_table", "mode", "chunk_size", "healpix_order", "radius_arcsec", "n_chunks", "range")


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


#: The photometric-only sample's name prefix, and its tables (qualified names) in query order: Gaia, then the
#: tables hanging off it (best neighbours, PS1, 2MASS, unWISE).
SAMPLE = "photometric"
SAMPLE_TABLES: tuple[str, ...] = tuple(
    f"{SAMPLE}/{t}" for t in SPECS if registry.TABLES[t].survey in registry.PHOTOMETRIC
)
#: Keys of ``inference.photometric_sample`` that only the remote sample reads (the simulated sample ignores them).
SAMPLE_REMOTE_KEYS = ("healpix_order", "pixels")


def split_name(name: str) -> tuple[str | None, str]:
    """(sample, archive table) of a table name: ``photometric/gaia_source`` -> ("photometric", "gaia_source"),
    ``gaia_source`` -> (None, "gaia_source")."""
    sample, sep, table = name.rpartition("/")
    if table not in ALL_SPECS or (sep and f"{sample}/{table}" not in SAMPLE_TABLES):
        known = ", ".join((*ALL_SPECS, *SAMPLE_TABLES))
        raise KeyError(f"unknown archive table {name!r}; known: {known}")
    return (sample or None), table


def archive_file(config: Mapping[str, Any], name: str) -> Path:
    """The assembled file of remote table ``name``: ``<archive_cache>/<table>.parquet`` for the catalog's tables,
    ``<archive_cache>/photometric/<table>.parquet`` for the photometric sample's."""
    sample, table = split_name(name)
    path = table_path({**config, "backend": "remote"}, table)
    return path if sample is None else path.parent / sample / path.name


def chunk_dir(config: Mapping[str, Any], name: str) -> Path:
    """``<folder of its file>/chunks/<table>``: the plan (``plan/``) and the chunk markers (``done/<chunk>.json``)
    of remote table ``name`` (:func:`archive_file`)."""
    return archive_file(config, name).parent / "chunks" / split_name(name)[1]


def sample_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """``inference.photometric_sample`` of ``config`` over the schema's defaults."""
    section = (config.get("inference") or {}).get("photometric_sample") or {}
    return _merge(defaults("inference")["photometric_sample"], section)


def sample_problems(config: Mapping[str, Any]) -> list[str]:
    """What keeps the remote photometric sample from being fetched, one line per problem naming the key."""
    s = sample_settings(config)
    order, pixels = int(s["healpix_order"]), list(s["pixels"])
    if not pixels:
        return [
            "inference.photometric_sample.pixels: empty; with backend remote, inference.input: photometric fetches "
            "the stars of these HEALPix pixels (nested, ICRS, order inference.photometric_sample.healpix_order)"
        ]
    bad = [p for p in pixels if not 0 <= int(p) < 12 * 4**order]
    if bad:
        return [
            f"inference.photometric_sample.pixels: {_names(bad)} not HEALPix pixels of order {order} "
            f"(0 … {12 * 4**order - 1})"
        ]
    return []


def _names(values: list[Any], n: int = 5) -> str:
    return ", ".join(map(str, values[:n])) + (f" and {len(values) - n} more" if len(values) > n else "")


def source_id_range(pixel: int, order: int) -> tuple[int, int]:
    """[lo, hi): the Gaia ``source_id`` values of the sources in HEALPix ``pixel`` (nested, ``order`` ≤ 12)."""
    if not 0 <= order <= registry.GAIA_HEALPIX_LEVEL:
        raise ValueError(f"HEALPix order {order}: Gaia source ids resolve orders 0 … {registry.GAIA_HEALPIX_LEVEL}")
    step = 4 ** (registry.GAIA_HEALPIX_LEVEL - order) * registry.GAIA_HEALPIX_FACTOR
    return int(pixel) * step, (int(pixel) + 1) * step


def chunk_pixels(spec: QuerySpec) -> tuple[int, list[int]]:
    """(order, pixels) of a ``healpix`` table's requests: its pixels refined to ``healpix_order`` where that is
    finer, sorted, each once."""
    order = max(spec.pixel_order, spec.healpix_order)
    k = 4 ** (order - spec.pixel_order)
    return order, sorted({q for p in spec.pixels for q in range(int(p) * k, (int(p) + 1) * k)})


def remote_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``remote:`` section of the workflow config merged over :data:`DEFAULT_CONFIG`."""
    section = config.get("remote") or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"config key 'remote' must be a mapping, got {type(section).__name__}")
    cfg = _merge(DEFAULT_CONFIG, section)
    for name in cfg["tables"]:
        if name not in ALL_SPECS:
            known = ", ".join(ALL_SPECS)
            raise ConfigError(f"config key 'remote.tables.{name}': unknown archive table; known: {known}")
    return cfg


def spec_for(name: str, config: Mapping[str, Any] | None = None) -> QuerySpec:
    """The :class:`QuerySpec` of table ``name`` with the overrides of ``remote.tables.<table>`` applied.

    A photometric-sample table (``photometric/<table>``) takes its table's overrides too; its Gaia table is of
    kind ``healpix``: the pixels and the G window of ``inference.photometric_sample``, one request per pixel at
    order ``max(healpix_order of the pixels, remote.tables.gaia_source.healpix_order)``.
    """
    sample, table = split_name(name)
    # the configured release's tables; the photometric sample is queried in the paper's release's (its only one)
    rel = registry.configured(config or {}) if sample is None else registry.release()
    spec = ALL_SPECS[table]
    if table in rel.tables:  # the upstream inputs of the configured release (DR3's PS1 hangs off DR3's links)
        spec = replace(spec, upstream=rel.tables[table].upstream)
    over = remote_config(config or {})["tables"].get(table, {})
    kw = {k: over[k] for k in _TABLE_KEYS if over.get(k) is not None}
    if "range" in kw:
        kw["range"] = tuple(kw["range"])
    if over.get("columns"):
        # an override names remote -> archive; it replaces the default remote name of that archive column
        cols = {r: a for r, a in spec.columns.items() if a not in set(over["columns"].values())}
        kw["columns"] = {**cols, **over["columns"]}
        inverse = {a: r for r, a in kw["columns"].items()}
        for attr, archive in (("key", TABLES[table].key), ("ra", TABLES[table].ra), ("dec", TABLES[table].dec)):
            if archive is not None and archive in inverse:
                kw[attr] = inverse[archive]
        if spec.range_column and spec.range_column == spec.ra and "ra" in kw:
            kw["range_column"] = kw["ra"]
    if over.get("range_column"):
        kw["range_column"] = over["range_column"]
    spec = replace(spec, **kw)
    if spec.service not in remote_config(config or {})["services"]:
        raise ConfigError(f"config key 'remote.tables.{table}.service': unknown service {spec.service!r}")
    if spec.mode not in ("sync", "async"):
        raise ConfigError(f"config key 'remote.tables.{table}.mode' is {spec.mode!r}; expected sync or async")
    if sample is None:
        return replace(spec, name=table)
    spec = replace(spec, name=name)
    if table != registry.SURVEY_TABLES["gaia"]:  # the tables hanging off Gaia: queried as the catalog's
        return spec
    s = sample_settings(config or {})
    return replace(
        spec,
        kind="healpix",
        upstream=(),
        pixels=tuple(int(p) for p in s["pixels"]),
        pixel_order=int(s["healpix_order"]),
        mag_column=spec.remote_name("phot_g_mean_mag"),
        mag_range=(float(s["gaia_g_range"][0]), float(s["gaia_g_range"][1])),
    )


# ---------------------------------------------------------------------------------------------------- ADQL
def strip_userinfo(url: str) -> str:
    """``url`` without ``user:password@``."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def request_params(table: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """What decides ``table``'s requests: its resolved query spec and its service URL (the plan rule's params).

    Concurrency, retries, timeouts and credentials are left out: changing them must not refetch anything.
    """
    spec = spec_for(table, config)
    url = remote_config(config)["services"][spec.service]["url"]
    return {**dataclasses.asdict(spec), "url": strip_userinfo(url)}


_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESERVED = {"primary", "size", "distance", "value", "first", "last", "position", "date", "time", "user", "zone"}


def quote(name: str) -> str:
    """An ADQL column reference: quoted when it is a reserved word or not a regular identifier."""
    return name if _IDENT.match(name) and name.lower() not in _RESERVED else '"' + name.replace('"', '""') + '"'


def select_list(spec: QuerySpec, alias: str | None = None) -> str:
    """The columns of ``spec``, each prefixed by ``alias`` (or by its joined table's alias, ``joined_columns``)."""

    def pre(c: str) -> str:
        a = spec.joined_columns.get(c, alias)
        return f"{a}." if a else ""

    return ", ".join(pre(c) + quote(c) for c in spec.columns)


def adql_range(spec: QuerySpec, lo: float, hi: float, last: bool) -> str:
    col = quote(spec.range_column or spec.ra or spec.key)
    op = "<=" if last else "<"
    return f"SELECT {select_list(spec)} FROM {spec.remote_table} WHERE {col} >= {lo!r} AND {col} {op} {hi!r}"


def adql_id_upload(spec: QuerySpec) -> str:
    joins = "".join(f" {j}" for j in spec.joins)
    return (
        f"SELECT {select_list(spec, 't')} FROM {spec.remote_table} AS t "
        f"JOIN TAP_UPLOAD.{UPLOAD_NAME} AS u ON t.{quote(spec.key)} = u.id{joins}"
    )


def adql_position_upload(spec: QuerySpec) -> str:
    radius = spec.radius_arcsec / 3600.0
    return (
        f"SELECT {select_list(spec, 't')} FROM {spec.remote_table} AS t "
        f"JOIN TAP_UPLOAD.{UPLOAD_NAME} AS u ON 1 = CONTAINS(POINT('ICRS', t.{quote(spec.ra)}, t.{quote(spec.dec)}), "
        f"CIRCLE('ICRS', u.ra, u.dec, {radius!r}))"
    )


def adql_healpix(spec: QuerySpec, pixel: int, order: int) -> str:
    """The sources of one HEALPix pixel (a ``source_id`` range) in the window ``mag_range`` of ``mag_column``."""
    lo, hi = source_id_range(pixel, order)
    key = quote(spec.key)
    where = f"{key} >= {lo} AND {key} < {hi}"
    if spec.mag_column and spec.mag_range:
        mag = quote(spec.mag_column)
        where += f" AND {mag} >= {spec.mag_range[0]!r} AND {mag} < {spec.mag_range[1]!r}"
    return f"SELECT {select_list(spec)} FROM {spec.remote_table} WHERE {where}"


def adql_id_list(spec: QuerySpec, ids: list[Any]) -> str:
    def lit(v: Any) -> str:
        if isinstance(v, str):
            return "'" + v.replace("'", "''") + "'"
        return str(int(v))

    where = f"{quote(spec.key)} IN ({', '.join(map(lit, ids))})"
    return f"SELECT {select_list(spec)} FROM {spec.remote_table} WHERE {where}"
