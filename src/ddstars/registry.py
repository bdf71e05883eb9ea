"""The one list of archive tables and surveys: what each table is, where it is served, which survey it feeds.

Everything that names archive tables or surveys reads them here: the workflow rules (one cleaning rule per
survey, one query chain per remote table), the cleaning (a survey's table), the simulated sky (the tables it
writes), the remote query specs (service, service table, upstream inputs), the archive interface (column
checks) and Table 1 (the spectroscopic surveys and the paper's counts). The bands and their photometric
systems live in :mod:`ddstars.bands`; a photometric survey's bands are looked up there by survey name.

A :class:`Release` is one consistent set of tables and surveys, chosen by config ``archives.release``:
``dr2`` (the paper's: Gaia DR2 with its best-neighbour tables, APOGEE DR16, GALAH DR2, LAMOST DR5 DD-Payne) and
``dr3`` (Gaia DR3 with its best-neighbour tables, APOGEE DR17, GALAH DR4, LAMOST DR5 DD-Payne); another data
release (Gaia DR4) is another :class:`Release` in :data:`RELEASES`. The surveys keep their names across
releases, the tables do not (except those a release shares with another, e.g. ``ps1_mean_object``). The
module-level names (:data:`TABLES`, :data:`SURVEYS`, ...) are those of :data:`DEFAULT_RELEASE`; code that
follows the configured release asks :func:`release` (or :func:`configured`). Orders are meaningful:
:data:`TABLES` is the order the simulated sky writes and the catalog rules list them, :data:`SURVEYS` the order
of the cleaning rules (photometric, then spectroscopic, the order the simulated sky draws them in).

Standard library only: the Snakefile imports this while parsing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .bands import BANDS

#: A table's role: ``survey`` (cleaned into a survey's table), ``link`` (a cross-match table between two
#: surveys, read by the photometry match as it is).
ROLES = ("survey", "link")
KINDS = ("spectroscopic", "photometric")


@dataclass(frozen=True)
class Table:
    """One archive table.

    ``name`` is the project's name (file stem, rule names); ``archive`` the data release in words;
    ``service`` the key of the remote service that serves it (``remote.services.<service>``) and
    ``service_table`` its name there; ``survey`` the survey it feeds (for a link table, the survey it links
    Gaia to); ``upstream``: (table, column) pairs whose values a remote query of this table needs (uploads,
    id lists), () for the tables queried first; ``link_key`` (link tables only) the column holding the linked
    survey's identifier.
    """

    name: str
    archive: str
    service: str
    service_table: str
    role: str
    survey: str
    upstream: tuple[tuple[str, str], ...] = ()
    link_key: str = ""

    @property
    def upstream_tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for t, _ in self.upstream))


@dataclass(frozen=True)
class Survey:
    """One survey: ``kind`` spectroscopic (labels) or photometric (bands), the archive ``table`` cleaned into
    it, its ``label`` in words and, for the spectroscopic ones, ``paper_n``: its stars in Green et al. (2021)
    Table 1 (``table1_row`` orders the rows as there)."""

    name: str
    kind: str
    table: str
    label: str
    paper_n: int | None = None
    table1_row: int | None = None

    @property
    def bands(self) -> tuple[str, ...]:
        """The survey's bands (names of :data:`ddstars.bands.BANDS`); () for a spectroscopic survey."""
        return tuple(b.name for b in BANDS if b.survey == self.name)


@dataclass(frozen=True)
class Release:
    """One consistent set of archive tables and surveys (see the module docstring)."""

    name: str
    description: str
    tables: dict[str, Table] = field(default_factory=dict)
    surveys: dict[str, Survey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for t in self.tables.values():
            if t.role not in ROLES:
                raise ValueError(f"registry {self.name}: table {t.name!r} has role {t.role!r}; expected {ROLES}")
            if t.survey not in self.surveys:
                raise ValueError(f"registry {self.name}: table {t.name!r} feeds unknown survey {t.survey!r}")
            if (t.role == "link") != bool(t.link_key):
                raise ValueError(f"registry {self.name}: table {t.name!r}: a link table names its link_key, no other")
            for up, _ in t.upstream:
                if up not in self.tables:
                    raise ValueError(f"registry {self.name}: table {t.name!r} needs unknown table {up!r}")
        for s in self.surveys.values():
            if s.kind not in KINDS:
                raise ValueError(f"registry {self.name}: survey {s.name!r} has kind {s.kind!r}; expected {KINDS}")
            if self.tables.get(s.table) is None or self.tables[s.table].role != "survey":
                raise ValueError(f"registry {self.name}: survey {s.name!r} reads {s.table!r}, not a survey table")

    def spectroscopic(self) -> tuple[str, ...]:
        return tuple(s for s, v in self.surveys.items() if v.kind == "spectroscopic")

    def photometric(self) -> tuple[str, ...]:
        return tuple(s for s, v in self.surveys.items() if v.kind == "photometric")

    def links(self) -> dict[str, str]:
        """Survey -> the link (best-neighbour) table that matches Gaia sources to it."""
        return {v.survey: t for t, v in self.tables.items() if v.role == "link"}

    def link_keys(self) -> dict[str, str]:
        """Survey -> the column of its link table that holds the survey's identifier."""
        return {v.survey: v.link_key for v in self.tables.values() if v.role == "link"}

    def survey_tables(self) -> dict[str, str]:
        """Survey -> the archive table cleaned into it, in survey order."""
        return {s: v.table for s, v in self.surveys.items()}

    def table1_surveys(self) -> tuple[str, ...]:
        """The spectroscopic surveys in the row order of the paper's Table 1."""
        return tuple(sorted(self.spectroscopic(), key=lambda s: self.surveys[s].table1_row))

    def query_order(self) -> tuple[str, ...]:
        """The tables in an order where each comes after the tables its remote queries need."""
        done: list[str] = []
        while len(done) < len(self.tables):
            ready = [t for t, v in self.tables.items() if t not in done and set(v.upstream_tables) <= set(done)]
            if not ready:
                raise ValueError(f"registry {self.name}: the upstream tables form a cycle")
            done += ready
        return tuple(done)


def _surveys(gaia: tuple[str, str], apogee: tuple[str, str], galah: tuple[str, str]) -> dict[str, Survey]:
    """A release's surveys: Gaia, APOGEE and GALAH as (table, label) of that release; PS1, 2MASS, unWISE and
    LAMOST DR5 DD-Payne as in every release so far. ``paper_n``: Green et al. (2021) Table 1."""
    return {
        s.name: s
        for s in (
            Survey("gaia", "photometric", *gaia),
            Survey("ps1", "photometric", "ps1_mean_object", "Pan-STARRS1"),
            Survey("tmass", "photometric", "tmass_psc", "2MASS"),
            Survey("unwise", "photometric", "unwise", "unWISE"),
            Survey("lamost", "spectroscopic", "lamost_dr5_ddpayne", "LAMOST DR5 DD-Payne", 2586577, 0),
            Survey("apogee", "spectroscopic", *apogee, 179373, 2),
            Survey("galah", "spectroscopic", *galah, 122411, 1),
        )
    }


_SPECTRO_POSITIONS = (("lamost_dr5_ddpayne", "ra"), ("apogee_dr16_allstar", "RA"), ("galah_dr2", "ra"))

GAIA_DR2 = Release(
    "dr2",
    "Green et al. (2021): Gaia DR2 with its PS1 and 2MASS best neighbours, unWISE, LAMOST DR5, APOGEE DR16, "
    "GALAH DR2",
    tables={
        t.name: t
        for t in (
            Table("gaia_source", "Gaia DR2", "gaia", "gaiadr2.gaia_source", "survey", "gaia", _SPECTRO_POSITIONS),
            Table(
                "panstarrs1_best_neighbour", "Gaia DR2", "gaia", "gaiadr2.panstarrs1_best_neighbour", "link", "ps1",
                (("gaia_source", "source_id"),), "original_ext_source_id",
            ),
            Table(
                "tmass_best_neighbour", "Gaia DR2", "gaia", "gaiadr2.tmass_best_neighbour", "link", "tmass",
                (("gaia_source", "source_id"),), "original_ext_source_id",
            ),
            Table(
                "ps1_mean_object", "Pan-STARRS1 DR2", "mast_ps1", "dbo.MeanObjectView", "survey", "ps1",
                (("panstarrs1_best_neighbour", "original_ext_source_id"),),
            ),
            Table(
                "tmass_psc", "2MASS PSC", "irsa", "fp_psc", "survey", "tmass",
                (("tmass_best_neighbour", "original_ext_source_id"),),
            ),
            Table("unwise", "unWISE", "datalab", "unwise_dr1.object", "survey", "unwise", (("gaia_source", "ra"),)),
            Table("lamost_dr5_ddpayne", "LAMOST DR5 DD-Payne", "vizier", '"J/ApJS/245/34/catalog"', "survey", "lamost"),
            Table("apogee_dr16_allstar", "APOGEE DR16", "sdss", "allStar-r12-l33.fits", "survey", "apogee"),
            Table("galah_dr2", "GALAH DR2", "vizier", '"J/MNRAS/478/4513/galah"', "survey", "galah"),
        )
    },
    surveys=_surveys(("gaia_source", "Gaia DR2"), ("apogee_dr16_allstar", "APOGEE DR16"), ("galah_dr2", "GALAH DR2")),
)  # fmt: skip

_DR3_SPECTRO_POSITIONS = (("lamost_dr5_ddpayne", "ra"), ("apogee_dr17_allstar", "RA"), ("galah_dr4", "ra"))
_DR3_GAIA = "gaia_dr3_source"

GAIA_DR3 = Release(
    "dr3",
    "Gaia DR3 with its PS1 and 2MASS (PSC/XSC) best neighbours, unWISE, LAMOST DR5 DD-Payne, APOGEE DR17, "
    "GALAH DR4",
    tables={
        t.name: t
        for t in (
            Table(_DR3_GAIA, "Gaia DR3", "gaia", "gaiadr3.gaia_source", "survey", "gaia", _DR3_SPECTRO_POSITIONS),
            Table(
                "gaia_dr3_panstarrs1_best_neighbour", "Gaia DR3", "gaia", "gaiadr3.panstarrs1_best_neighbour", "link",
                "ps1", ((_DR3_GAIA, "source_id"),), "original_ext_source_id",
            ),
            Table(
                "gaia_dr3_tmass_psc_xsc_best_neighbour", "Gaia DR3", "gaia", "gaiadr3.tmass_psc_xsc_best_neighbour",
                "link", "tmass", ((_DR3_GAIA, "source_id"),), "original_psc_source_id",
            ),
            Table(
                "ps1_mean_object", "Pan-STARRS1 DR2", "mast_ps1", "dbo.MeanObjectView", "survey", "ps1",
                (("gaia_dr3_panstarrs1_best_neighbour", "original_ext_source_id"),),
            ),
            Table(
                "tmass_psc", "2MASS PSC", "irsa", "fp_psc", "survey", "tmass",
                (("gaia_dr3_tmass_psc_xsc_best_neighbour", "original_psc_source_id"),),
            ),
            Table("unwise", "unWISE", "datalab", "unwise_dr1.object", "survey", "unwise", ((_DR3_GAIA, "ra"),)),
            Table("lamost_dr5_ddpayne", "LAMOST DR5 DD-Payne", "vizier", '"J/ApJS/245/34/catalog"', "survey", "lamost"),
            Table(
                "apogee_dr17_allstar", "APOGEE DR17", "sdss_dr17", "allStar-dr17-synspec_rev1.fits", "survey", "apogee"
            ),
            Table("galah_dr4", "GALAH DR4", "datacentral", "galah_dr4.mainstartable", "survey", "galah"),
        )
    },
    surveys=_surveys((_DR3_GAIA, "Gaia DR3"), ("apogee_dr17_allstar", "APOGEE DR17"), ("galah_dr4", "GALAH DR4")),
)  # fmt: skip

RELEASES: dict[str, Release] = {r.name: r for r in (GAIA_DR2, GAIA_DR3)}
DEFAULT_RELEASE = "dr2"
#: Every table of every release by name (a table two releases share is the same entry in both).
ALL_TABLES: dict[str, Table] = {}
for _rel in RELEASES.values():
    for _name, _t in _rel.tables.items():
        if _name in ALL_TABLES and ALL_TABLES[_name].service_table != _t.service_table:
            raise ValueError(f"registry: table {_name!r} differs between releases; give it a release's own name")
        ALL_TABLES.setdefault(_name, _t)


def release(name: str = DEFAULT_RELEASE) -> Release:
    """The :class:`Release` called ``name``, raising ``KeyError`` naming the known ones."""
    try:
        return RELEASES[name]
    except KeyError:
        raise KeyError(f"unknown data release {name!r}; known: {', '.join(RELEASES)}") from None


def configured(config) -> Release:
    """The release config ``archives.release`` names (the default when the key is absent)."""
    return release(((config or {}).get("archives") or {}).get("release", DEFAULT_RELEASE))


def counterparts(new: str, old: str = DEFAULT_RELEASE) -> dict[str, str]:
    """The tables of release ``new`` that release ``old`` lacks, each with ``old``'s table of the same role and
    survey (e.g. Gaia DR3's best neighbours of PS1 -> Gaia DR2's), in ``new``'s order."""
    a, b = release(new), release(old)
    by_role = {(t.role, t.survey): name for name, t in b.tables.items()}
    return {name: by_role[(t.role, t.survey)] for name, t in a.tables.items() if name not in b.tables}


def results_dir(config) -> str:
    """Where the configured release's results go: ``results`` for the paper's release, ``results/<release>``
    for any other, so that switching the release and back reruns nothing that is cached."""
    name = configured(config).name
    return "results" if name == DEFAULT_RELEASE else f"results/{name}"


_DEFAULT = release()
#: Archive tables of the default release, by name, in the simulated sky's writing order.
TABLES: dict[str, Table] = _DEFAULT.tables
#: Surveys of the default release, by name: photometric, then spectroscopic.
SURVEYS: dict[str, Survey] = _DEFAULT.surveys
SPECTROSCOPIC: tuple[str, ...] = _DEFAULT.spectroscopic()
PHOTOMETRIC: tuple[str, ...] = _DEFAULT.photometric()
SURVEY_TABLES: dict[str, str] = _DEFAULT.survey_tables()
#: Survey -> its best-neighbour table (Gaia DR2 ``panstarrs1_best_neighbour``, ``tmass_best_neighbour``).
LINKS: dict[str, str] = _DEFAULT.links()


#: Gaia source_id // GAIA_HEALPIX_FACTOR is the source's level-GAIA_HEALPIX_LEVEL NESTED HEALPix index (ICRS), in
#: Gaia DR2 and DR3 alike (the gaia_source data model).
GAIA_HEALPIX_LEVEL = 12
GAIA_HEALPIX_FACTOR = 2**35


# Green et al. (2021) Table 1: the catalog's stars, those with parallax S/N > 5 and those with each band
# (the spectroscopic surveys' counts are their Survey.paper_n).
PAPER_TABLE1_N = 2888361
PAPER_TABLE1_PARALLAX = 2442856
PAPER_TABLE1_BANDS = {
    "gaia_g": 2888361,
    "gaia_bp": 2884921,
    "gaia_rp": 2885425,
    "ps1_g": 2360242,
    "ps1_r": 2032495,
    "ps1_i": 1853962,
    "ps1_z": 2121541,
    "ps1_y": 2428790,
    "tmass_j": 2742702,
    "tmass_h": 2687149,
    "tmass_ks": 2576599,
    "unwise_w1": 839532,
    "unwise_w2": 1857203,
}


def paper_table1(rel: Release | None = None) -> dict[str, int]:
    """The paper's Table 1 counts by row name: spectroscopic surveys, ``parallax_snr_gt_5``, then the bands."""
    rel = rel or _DEFAULT
    surveys = {s: rel.surveys[s].paper_n for s in rel.table1_surveys()}
    return {**surveys, "parallax_snr_gt_5": PAPER_TABLE1_PARALLAX, **PAPER_TABLE1_BANDS}


def survey_of_table(table: str) -> str:
    """The survey archive table ``table`` (of any release) feeds."""
    try:
        return ALL_TABLES[table].survey
    except KeyError:
        raise KeyError(f"unknown archive table {table!r}; known: {', '.join(ALL_TABLES)}") from None


#: Columns of the photometric inference's input (``inference.input: <path>``, and the simulated sky's
#: photometric-only sample): NaN marks an unobserved band or a missing parallax; magnitudes in the catalog's
#: systems (Gaia and 2MASS Vega, PS1 and unWISE AB), errors in mag with the catalog's floor, parallaxes in mas.
INFERENCE_INPUT_COLUMNS: tuple[str, ...] = (
    "source_id",
    "ra",
    "dec",
    *(f"mag_{b.name}" for b in BANDS),
    *(f"err_{b.name}" for b in BANDS),
    "parallax",
    "parallax_error",
)
