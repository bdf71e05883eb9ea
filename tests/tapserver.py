"""A real TAP server on 127.0.0.1 for integration tests: a private PostgreSQL and GAVO DaCHS.

``LocalTapServer(tables, workdir)`` publishes pandas DataFrames as TAP tables under schema-qualified names
("gaiadr2.gaia_source", "dbo.MeanObjectView", ...) and serves them at ``.url`` until it is stopped. It follows
the recipe in shared/reference/TAPSERVER.md:

* DaCHS comes from Debian (``python3-gavo``) and runs under ``/usr/bin/python3``, never the test venv;
* PostgreSQL listens only on a Unix socket in a short private directory, DaCHS only on 127.0.0.1;
* as root, both servers run as the ``postgres`` user (PostgreSQL refuses root);
* the launcher makes DaCHS honour ``PHASE=RUN`` in the job-creating POST (astroquery's ``launch_job_async``)
  and adds the ``/tap-server/tap`` alias that ``astroquery.gaia.GaiaClass`` builds;
* the sync upload limit is raised from 500 kB to 20 MB.

Column types come from the DataFrame dtypes: int8/int16/uint8 -> smallint, int32/uint16 -> integer,
int64/uint32 -> bigint, float32 -> real, float64 -> double precision, bool -> boolean, strings -> text.
List-typed columns (APOGEE's PARAM, FPARAM_COV) are published as text, e.g. "[4824.36, 2.05]"; pass
``list_columns="skip"`` to leave them out. Column names that are ADQL reserved words (unWISE's ``primary``)
become delimited identifiers: query them as ``"primary"``. Missing values become NULL, except in text columns,
where they become empty strings.

``available()`` says whether the Debian packages are there, ``install()`` installs them (root only).
"""

from __future__ import annotations

import gc
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd
import pytest

DACHS = Path("/usr/bin/dachs")
SYSTEM_PYTHON = Path("/usr/bin/python3")
APT_PACKAGES = ("python3-gavo", "postgresql-15-pgsphere", "postgresql-15-q3c")

# Where each table of the simulated sky is published: the archives' own names where they are schema.table,
# and a schema of our choosing where the archive's name has none or is a VizieR path or a file (DaCHS only
# serves schema.identifier). The remote backend must take its table names from configuration.
SIMULATED_TABLE_NAMES: dict[str, str] = {
    "gaia_source": "gaiadr2.gaia_source",
    "panstarrs1_best_neighbour": "gaiadr2.panstarrs1_best_neighbour",
    "tmass_best_neighbour": "gaiadr2.tmass_best_neighbour",
    "ps1_mean_object": "dbo.MeanObjectView",
    "tmass_psc": "twomass.fp_psc",
    "unwise": "unwise_dr1.object",
    "lamost_dr5_ddpayne": "lamost.ddpayne",
    "apogee_dr16_allstar": "apogee.allstar",
    "galah_dr2": "galah.dr2",
}

# The launcher (TAPSERVER.md): PHASE=RUN on job creation, and the /tap-server/tap alias for GaiaClass.
_LAUNCHER = """\
import sys
from gavo.protocols import uws
from gavo.web import asyncrender, root
from twisted.web import resource


def _render_post(self, request):  # honour PHASE=RUN in the job-creating POST
    job_id = self.workerSystem.getNewIdFromRequest(request)
    if str(request.uwsArgs.get("phase") or "").upper() == "RUN":
        self.workerSystem.changeToPhase(job_id, uws.QUEUED)
    asyncrender.redirectUWS(self.service.getURL(self.renderer), str(job_id))


asyncrender.JoblistResource.render_POST = _render_post


class TapServerAlias(resource.Resource):  # /tap-server/tap/... == /tap/... (GaiaClass layout)
    FORMATS = {"votable_gzip": "votable", "votable_plain": "votable"}

    def getChild(self, name, request):
        args = request.strargs
        for k in list(args):
            if k.upper() in ("FORMAT", "RESPONSEFORMAT"):
                args[k] = [self.FORMATS.get(v, v) if isinstance(v, str) else v for v in args[k]]
        return root.root.getChild(name, request)


root.ArchiveService.addStatic("tap-server", TapServerAlias())

from gavo.user.cli import main  # noqa: E402

sys.argv = ["dachs", "serve", "start", "--foreground"]
sys.exit(main())
"""

# Imports all RDs in one process: `dachs imp` per schema costs about 1 s of start-up each.
_IMPORTER = """\
import sys
from gavo.user import cli, importing

rds = sys.argv[1:]
for i, rd in enumerate(rds):
    sys.argv = ["dachs", "imp", "--reckless", rd] if i == 0 else ["imp", "--reckless", rd]
    try:
        cli.main() if i == 0 else importing.main()
    except SystemExit as e:
        if e.code:
            raise
"""


def _pg_bin() -> Path | None:
    """The newest PostgreSQL server binaries that have pgsphere installed."""
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True):
        version = bindir.parent.name
        if (bindir / "initdb").exists() and Path(
            f"/usr/share/postgresql/{version}/extension/pg_sphere.control"
        ).exists():
            return bindir
    return None


def available() -> tuple[bool, str]:
    """(True, "") if DaCHS, PostgreSQL and pgsphere are installed, else (False, what is missing)."""
    if not DACHS.exists() or not SYSTEM_PYTHON.exists():
        return False, f"GAVO DaCHS not installed ({DACHS} missing; apt-get install {' '.join(APT_PACKAGES)})"
    if not any(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return False, "PostgreSQL server not installed (apt-get install postgresql-15)"
    if _pg_bin() is None:
        return False, "pgsphere not installed (apt-get install postgresql-15-pgsphere)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False, "running as root and there is no 'postgres' user to run the servers as"
    return True, ""


def install(timeout: float = 600) -> tuple[bool, str]:
    """Install the Debian packages with apt-get (root only, for CI): (success, message)."""
    ok, reason = available()
    if ok:
        return True, "already installed"
    if os.geteuid() != 0:
        return False, f"{reason}; not root, so not installing"
    if shutil.which("apt-get") is None:
        return False, f"{reason}; apt-get not found"
    pkgs = list(APT_PACKAGES)
    if not Path("/usr/lib/postgresql/15/bin/initdb").exists():
        pkgs.append("postgresql-15")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends", *pkgs]):
        try:
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            return False, f"{' '.join(cmd)} failed: {e}"
        if r.returncode != 0:
            return False, f"{' '.join(cmd)} failed (exit {r.returncode}): {r.stderr.strip()[-500:]}"
    return available()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sql_type(series: pd.Series) -> str | None:
    """The PostgreSQL type of a column, "list" for list-typed columns, None if unsupported."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        size = np.dtype(dtype.numpy_dtype if hasattr(dtype, "numpy_dtype") else dtype).itemsize
        unsigned = pd.api.types.is_unsigned_integer_dtype(dtype)
        size = size * 2 if unsigned else size
        return {1: "smallint", 2: "smallint", 4: "integer", 8: "bigint"}.get(size)
    if pd.api.types.is_float_dtype(dtype):
        return "real" if np.dtype(getattr(dtype, "numpy_dtype", dtype)).itemsize == 4 else "double precision"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        values = series.dropna()
        if values.empty or all(isinstance(v, str) for v in values):
            return "text"
        if all(isinstance(v, list | tuple | np.ndarray) for v in values):
            return "list"
    return None


def _list_to_text(value) -> str:
    if value is None or (np.isscalar(value) and pd.isna(value)):
        return ""
    return json.dumps(np.asarray(value).tolist())


class LocalTapServer:
    """A private PostgreSQL + GAVO DaCHS serving ``tables`` ({"schema.table": DataFrame}) over TAP.

    ``workdir`` is where the server's private directory is made (default /tmp). It must be short (PostgreSQL's
    socket path is limited to about 100 bytes) and, as root, open to the ``postgres`` user; pytest's
    ``tmp_path`` is neither. The private directory is removed on exit.

    Use it as a context manager, or call ``start()`` and ``stop()``::

        with LocalTapServer({"gaiadr2.gaia_source": df}) as tap:
            pyvo.dal.TAPService(tap.url).search("SELECT TOP 5 * FROM gaiadr2.gaia_source")
    """

    def __init__(
        self,
        tables: Mapping[str, pd.DataFrame],
        workdir: str | os.PathLike | None = None,
        *,
        port: int | None = None,
        list_columns: str = "text",
        start_timeout: float = 60,
        max_sync_upload: int = 20_000_000,
    ):
        for name in tables:
            schema, _, table = name.partition(".")
            if not (schema.isidentifier() and table.isidentifier()):
                raise ValueError(f"table name {name!r} is not 'schema.table' with identifiers (DaCHS needs that)")
        if list_columns not in ("text", "skip"):
            raise ValueError(f"list_columns must be 'text' or 'skip', not {list_columns!r}")
        self.tables = dict(tables)
        self.workdir = Path(workdir) if workdir is not None else Path("/tmp")
        self.port = port
        self.list_columns = list_columns
        self.start_timeout = start_timeout
        self.max_sync_upload = max_sync_upload
        self.names: dict[str, str] = {}  # archive table name -> "schema.table" (set by from_archives)
        self.archives: dict[str, pd.DataFrame] = {}  # archive table name -> the DataFrame published
        self.base: Path | None = None
        self.timings: dict[str, float] = {}
        self.columns: dict[str, dict[str, str]] = {}  # table -> {column: SQL type as published}
        self.skipped_columns: dict[str, list[str]] = {}
        self._proc: subprocess.Popen | None = None
        self._pg_started = False
        self._as_user: dict = {}
        self._env: dict[str, str] = {}

    @classmethod
    def from_archives(
        cls,
        archives: Mapping[str, pd.DataFrame],
        names: Mapping[str, str] = SIMULATED_TABLE_NAMES,
        workdir: str | os.PathLike | None = None,
        **kwargs,
    ) -> LocalTapServer:
        """A server for archive tables keyed by their ddstars names ("gaia_source", ...), published under
        ``names[key]``; ``.names`` and ``.archives`` then map those keys to the TAP names and the data."""
        server = cls({names[k]: df for k, df in archives.items()}, workdir, **kwargs)
        server.names = {k: names[k] for k in archives}
        server.archives = dict(archives)
        return server

    # -- public API --------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The TAP endpoint base, e.g. http://127.0.0.1:PORT/tap (sync at /sync, async at /async)."""
        return f"http://127.0.0.1:{self.port}/tap"

    @property
    def root_url(self) -> str:
        """The server root, for astroquery's GaiaClass (with tap_server_context="tap-server")."""
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> LocalTapServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> LocalTapServer:
        ok, reason = available()
        if not ok:
            raise RuntimeError(reason)
        t0 = time.perf_counter()
        try:
            self._setup()
            self._start_postgres()
            self._init_dachs()
            self._import()
            self._serve()
        except BaseException:
            self.stop()
            raise
        self.timings["start_total"] = time.perf_counter() - t0
        return self

    def stop(self) -> None:
        """Stop DaCHS and PostgreSQL and remove the private directory (safe to call twice)."""
        t0 = time.perf_counter()
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(self._proc.pid, signal.SIGKILL)
                    self._proc.wait(5)
            # async jobs run as `gavo taprun` children in the server's process group
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._proc = None
        if self._pg_started and self.base is not None:
            subprocess.run(
                [str(self._pg / "pg_ctl"), "-D", str(self.base / "pgdata"), "-m", "fast", "-w", "stop"],
                capture_output=True,
                env=self._env,
                **self._as_user,
            )
            self._pg_started = False
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None
        self.timings["stop"] = time.perf_counter() - t0

    def log_tail(self, n: int = 40) -> str:
        """The last lines of the DaCHS server and PostgreSQL logs (for failure messages)."""
        out = []
        if self.base is not None:
            for log in (self.base / "serve.log", self.base / "pg.log", self.base / "gavo" / "logs" / "dcErrors"):
                if log.exists():
                    lines = log.read_text(errors="replace").splitlines()[-n:]
                    out.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(out)

    # -- steps -------------------------------------------------------------------------------------------
    def _timed(self, key: str, cmd: list[str], timeout: float = 120) -> None:
        t0 = time.perf_counter()
        r = subprocess.run(
            cmd, cwd=self.base, env=self._env, capture_output=True, text=True, timeout=timeout, **self._as_user
        )
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}\n"
                + self.log_tail()
            )

    def _setup(self) -> None:
        t0 = time.perf_counter()
        self._pg = _pg_bin()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.base = Path(tempfile.mkdtemp(prefix="tap", dir=self.workdir))
        if len(str(self.base / "sock" / ".s.PGSQL.5432")) > 100:
            raise RuntimeError(f"workdir {self.workdir} is too long for a PostgreSQL socket path; use a short one")
        if self.port is None:
            self.port = _free_port()
        if os.geteuid() == 0:
            self._as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
            group = "postgres"
        else:
            group = grp.getgrgid(os.getgid()).gr_name
        self._env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        self._env |= {
            "GAVOSETTINGS": str(self.base / "gavo.rc"),
            "GAVOCUSTOM": "/nonexistent",
            "PATH": "/usr/bin:/bin:" + os.environ.get("PATH", ""),
            "HOME": str(self.base),
            "LC_ALL": "C.UTF-8",
        }
        (self.base / "gavo.rc").write_text(
            textwrap.dedent(f"""\
                [general]
                rootDir: {self.base}/gavo
                group: {group}
                gavoGroup: {group}
                [web]
                bindAddress: 127.0.0.1
                serverPort: {self.port}
                serverURL: http://127.0.0.1:{self.port}
                maxSyncUploadSize: {self.max_sync_upload}
                [db]
                profilePath: {self.base}/gavo/etc
                [ivoa]
                authority: test.invalid
                """)
        )
        (self.base / "dachs_serve.py").write_text(_LAUNCHER)
        (self.base / "dachs_import.py").write_text(_IMPORTER)
        self._write_resources()
        if self._as_user:
            os.chmod(self.base, 0o755)
            for path in [self.base, *self.base.rglob("*")]:
                shutil.chown(path, "postgres", "postgres")
            probe = subprocess.run(["test", "-w", str(self.base)], **self._as_user)
            if probe.returncode != 0:
                raise RuntimeError(f"user postgres cannot reach {self.base}; pass a workdir open to it (e.g. /tmp)")
        self.timings["write_inputs"] = time.perf_counter() - t0

    def _reserved_words(self) -> set[str]:
        r = subprocess.run(
            [str(SYSTEM_PYTHON), "-c", "from gavo import adql; print(' '.join(adql.ALL_RESERVED_WORDS))"],
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")},
        )
        return set(r.stdout.split()) if r.returncode == 0 else {"PRIMARY"}

    def _write_resources(self) -> None:
        reserved = self._reserved_words()
        by_schema: dict[str, list[str]] = {}
        for name in self.tables:
            schema, _, table = name.partition(".")
            by_schema.setdefault(schema, []).append(table)
        for schema, tables in by_schema.items():
            rd_dir = self.base / "gavo" / "inputs" / schema
            (rd_dir / "data").mkdir(parents=True)
            table_xml, data_xml = [], []
            for table in tables:
                df = self.tables[f"{schema}.{table}"]
                cols, out = [], {}
                self.columns[f"{schema}.{table}"] = {}
                for col in df.columns:
                    col = str(col)
                    sql = _sql_type(df[col])
                    if sql == "list":
                        if self.list_columns == "skip":
                            self.skipped_columns.setdefault(f"{schema}.{table}", []).append(col)
                            continue
                        sql = "text"
                        out[col] = df[col].map(_list_to_text)
                    elif sql is None:
                        raise TypeError(f"{schema}.{table}.{col}: unsupported dtype {df[col].dtype}")
                    else:
                        out[col] = df[col]
                    attr_name = f"quoted/{col}" if col.upper() in reserved else col
                    cols.append(f"    <column name={quoteattr(attr_name)} type={quoteattr(sql)}/>")
                    self.columns[f"{schema}.{table}"][col] = sql
                csv = rd_dir / "data" / f"{table}.csv"
                frame = pd.DataFrame(out, index=df.index)
                frame.to_csv(csv, index=False)
                table_xml.append(
                    f'  <table id="{table}" onDisk="True" adql="True">\n' + "\n".join(cols) + "\n  </table>"
                )
                data_xml.append(
                    f'  <data id="import_{table}">\n    <sources>data/{table}.csv</sources>\n    <csvGrammar/>\n'
                    f'    <make table="{table}"><rowmaker idmaps="*"/></make>\n  </data>'
                )
            rd = (
                f'<resource schema="{schema}">\n'
                '  <meta name="title">Simulated archive tables</meta>\n'
                '  <meta name="description">Test data for ddstars, not real.</meta>\n'
                '  <meta name="creationDate">2024-01-01T00:00:00Z</meta>\n'
                '  <meta name="subject">astrometry</meta>\n'
                '  <meta name="creator.name">ddstars test fixture</meta>\n'
                + "\n".join(table_xml + data_xml)
                + "\n</resource>\n"
            )
            (rd_dir / "q.rd").write_text(rd)
        self._schemas = list(by_schema)

    def _start_postgres(self) -> None:
        b, pg = self.base, self._pg
        self._timed(
            "initdb",
            [
                str(pg / "initdb"),
                "-D",
                f"{b}/pgdata",
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        )
        opts = f"-c listen_addresses='' -c unix_socket_directories='{b}/sock' -c fsync=off -c synchronous_commit=off"
        (b / "sock").mkdir()
        if self._as_user:
            shutil.chown(b / "sock", "postgres", "postgres")
        self._timed(
            "pg_start", [str(pg / "pg_ctl"), "-D", f"{b}/pgdata", "-l", f"{b}/pg.log", "-w", "-o", opts, "start"]
        )
        self._pg_started = True
        self._timed("createdb", [str(pg / "createdb"), "-h", f"{b}/sock", "-U", "postgres", "-T", "template0", "gavo"])

    def _init_dachs(self) -> None:
        self._timed("dachs_init", [str(DACHS), "init", "-d", f"host={self.base}/sock user=postgres dbname=gavo"])

    def _import(self) -> None:
        rds = [f"{schema}/q" for schema in self._schemas]
        self._timed("dachs_imp", [str(SYSTEM_PYTHON), str(self.base / "dachs_import.py"), *rds], timeout=600)

    def _serve(self) -> None:
        t0 = time.perf_counter()
        log = open(self.base / "serve.log", "wb")  # noqa: SIM115 (the server keeps it)
        self._proc = subprocess.Popen(
            [str(SYSTEM_PYTHON), str(self.base / "dachs_serve.py")],
            cwd=self.base,
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **self._as_user,
        )
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"DaCHS exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/availability", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"DaCHS not ready after {self.start_timeout} s:\n{self.log_tail()}")
            time.sleep(0.1)
        self.timings["serve_ready"] = time.perf_counter() - t0


def sky_slice(archives: Mapping[str, pd.DataFrame], n_gaia: int = 2000, radius_arcsec: float = 1.0) -> dict:
    """The first ``n_gaia`` Gaia rows of a simulated sky and the rows of the other tables that belong to them.

    Best-neighbour tables by source_id, PS1 and 2MASS rows through the best neighbours' original_ext_source_id,
    APOGEE by GAIA_SOURCE_ID, GALAH by star_id (a 2MASS designation), unWISE and LAMOST by position (within
    ``radius_arcsec`` of a kept Gaia source). Keys are the archive table names of ``archives``.
    """
    from scipy.spatial import cKDTree

    gaia = archives["gaia_source"].iloc[:n_gaia]
    ids = set(gaia["source_id"])
    out = {"gaia_source": gaia}
    for bn in ("panstarrs1_best_neighbour", "tmass_best_neighbour"):
        if bn in archives:
            out[bn] = archives[bn][archives[bn]["source_id"].isin(ids)]
    if "ps1_mean_object" in archives and "panstarrs1_best_neighbour" in out:
        ps1 = archives["ps1_mean_object"]
        out["ps1_mean_object"] = ps1[ps1["objID"].isin(set(out["panstarrs1_best_neighbour"]["original_ext_source_id"]))]
    designations = (
        set(out["tmass_best_neighbour"]["original_ext_source_id"]) if "tmass_best_neighbour" in out else set()
    )
    if "tmass_psc" in archives:
        out["tmass_psc"] = archives["tmass_psc"][archives["tmass_psc"]["designation"].isin(designations)]
    if "apogee_dr16_allstar" in archives:
        apogee = archives["apogee_dr16_allstar"]
        out["apogee_dr16_allstar"] = apogee[apogee["GAIA_SOURCE_ID"].isin(ids)]
    if "galah_dr2" in archives:
        out["galah_dr2"] = archives["galah_dr2"][archives["galah_dr2"]["star_id"].isin(designations)]

    def unit(ra, dec):
        ra, dec = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
        return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])

    tree = cKDTree(unit(gaia["ra"], gaia["dec"]))
    chord = 2 * np.sin(np.radians(radius_arcsec / 3600) / 2)
    for name in ("unwise", "lamost_dr5_ddpayne"):
        if name in archives:
            df = archives[name]
            d, _ = tree.query(unit(df["ra"], df["dec"]), distance_upper_bound=chord)
            out[name] = df[np.isfinite(d)]
    return {k: v.reset_index(drop=True) for k, v in out.items()}


@pytest.fixture(autouse=True)
def collect_sockets():
    """pyvo's async jobs open HTTP connections of their own that close only when collected: a test module
    that talks to the server imports this fixture, so each test's sockets are collected right after it,
    where the warnings are expected, and none is left to a later module."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


# ------------------------------------------------------------------------------------------ expectations
def coords_of(df: pd.DataFrame, ra: str, dec: str):
    """The rows' positions as an astropy SkyCoord (ICRS, degrees)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    return SkyCoord(df[ra].to_numpy(float) * u.deg, df[dec].to_numpy(float) * u.deg)


def rows_near(rows: pd.DataFrame, targets, radius_arcsec: float) -> pd.DataFrame:
    """The rows (columns ``ra``, ``dec``) within ``radius_arcsec`` of any of ``targets`` (a SkyCoord), computed by
    astropy, independently of the server; asserts none lies within 1 mas of the radius, where the server's
    geometry (pgsphere) and astropy's could round differently."""
    import astropy.units as u
    from astropy.coordinates import search_around_sky

    _, idx, sep, _ = search_around_sky(targets, coords_of(rows, "ra", "dec"), 2 * radius_arcsec * u.arcsec)
    sep = sep.to_value(u.arcsec)
    assert not np.any(np.abs(sep - radius_arcsec) < 1e-3), "a row lies on the match radius"
    keep = np.zeros(len(rows), bool)
    keep[idx[sep < radius_arcsec]] = True
    return rows[keep]


def fetch_like_the_workflow(table: str, upstream, config: dict):
    """The jobs of archives.smk for one table, in this process: the plan_<table> checkpoint, one fetch_chunk
    job per planned chunk, the fetch_<table> assembly (same functions, same paths as the rules)."""
    from ddstars import archives
    from ddstars.remote import fetch
    from ddstars.remote.services import chunk_dir
    from ddstars.remote.stage import run_assemble, run_chunk, run_plan

    root = chunk_dir(config, table)
    run_plan(table, upstream, config, root / "plan")
    for cid in fetch.read_plan(root / "plan")["chunks"]:
        run_chunk(table, cid, config, root / "plan", root / "done" / f"{cid}.json")
    return run_assemble(table, config, root / "plan", archives.table_path(config, table))


def assert_same_table(got: pd.DataFrame, want: pd.DataFrame, table: str, columns: list[str]) -> None:
    """Same rows (by key), same columns, same values and types, as the simulated backend would read.

    The server keeps every value and type (float32 as real, float64 as double, int16/32/64 as smallint/integer/
    bigint, text as text, NULL floats as NULL). One normalisation: a nullable integer column with nulls (2MASS
    ext_key, pandas Int32) arrives with nulls intact, but a pandas frame holds it as float64 NaN after assembly;
    its values are compared as floats.
    """
    from ddstars import archives

    key = archives.TABLES[table].key
    assert sorted(got.columns) == sorted(columns), table
    assert got[key].is_unique, table
    got = got.sort_values(key, ignore_index=True)
    want = want[columns].sort_values(key, ignore_index=True)
    assert len(got) == len(want), table
    for col in columns:
        g, w = got[col], want[col]
        if isinstance(w.iloc[0], np.ndarray | list):  # APOGEE's PARAM / FPARAM_COV
            wa = np.stack([np.asarray(x) for x in w])
            ga = np.stack([np.asarray(x) for x in g])
            assert ga.dtype == wa.dtype, (table, col, ga.dtype, wa.dtype)
            np.testing.assert_array_equal(ga, wa, err_msg=f"{table}.{col}")
        elif pd.api.types.is_numeric_dtype(w.dtype):
            nullable_int = pd.api.types.is_extension_array_dtype(w.dtype) and w.dtype.kind in "iu"
            if nullable_int and w.isna().any():
                assert g.dtype == np.float64, (table, col, g.dtype)
            else:
                assert g.dtype == w.dtype, (table, col, g.dtype, w.dtype)
            np.testing.assert_array_equal(
                g.to_numpy(float, na_value=np.nan), w.to_numpy(float, na_value=np.nan), err_msg=f"{table}.{col}"
            )
            if w.dtype.kind in "iu" and not nullable_int:
                assert g.to_numpy().tolist() == w.to_numpy().tolist(), (table, col)  # exact beyond 2**53
        else:
            assert g.tolist() == w.tolist(), (table, col)
