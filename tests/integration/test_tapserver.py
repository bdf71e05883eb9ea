"""The local TAP server (tests/tapserver.py) does what the remote archive backend needs: sync and async ADQL,
table uploads joined against gaia_source, MAXREC overflow, and every simulated archive table under its name."""

from __future__ import annotations

import gc
import json
import time

import numpy as np
import pytest
from astropy.table import Table

pyvo = pytest.importorskip("pyvo")

from tapserver import SIMULATED_TABLE_NAMES, collect_sockets  # noqa: E402, F401  (autouse: sockets collected after each test)

GAIA_COLUMNS = "source_id, ra, dec, parallax, phot_g_mean_mag, visibility_periods_used"


@pytest.fixture(scope="module")
def session():
    """One HTTP session for the module's pyvo calls, closed at the end (no socket left to the collector)."""
    import requests

    with requests.Session() as s:
        yield s


@pytest.fixture(scope="module")
def svc(tap_server, session):
    return pyvo.dal.TAPService(tap_server.url, session=session)


@pytest.fixture(scope="module")
def gaia(tap_server):
    return tap_server.archives["gaia_source"].set_index("source_id")


def check_gaia_rows(result: Table, gaia) -> None:
    expected = gaia.loc[np.asarray(result["source_id"])]
    for col in ("ra", "dec", "parallax", "phot_g_mean_mag", "visibility_periods_used"):
        assert not np.ma.is_masked(result[col]), col
        got = np.asarray(result[col])
        # float32 columns are published as real and float64 as double precision: values come back exactly.
        assert got.dtype == expected[col].dtype, col
        np.testing.assert_array_equal(got, expected[col].to_numpy(), err_msg=col)


def test_sync_query_rows_and_values(svc, tap_server, gaia):
    name = tap_server.names["gaia_source"]
    assert name == "gaiadr2.gaia_source"
    result = svc.search(f"SELECT {GAIA_COLUMNS} FROM {name} WHERE phot_g_mean_mag < 16").to_table()
    assert len(result) == int((gaia["phot_g_mean_mag"] < 16).sum()) > 0
    assert result["source_id"].dtype == np.int64
    check_gaia_rows(result, gaia)


def test_sync_cone_search(svc, gaia):
    ra, dec = gaia["ra"].iloc[0], gaia["dec"].iloc[0]
    q = (
        "SELECT source_id FROM gaiadr2.gaia_source "
        f"WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, 0.001))"
    )
    assert gaia.index[0] in set(svc.search(q).to_table()["source_id"])


def test_async_job_submit_poll_fetch_delete(svc, gaia, session):
    job = svc.submit_job(f"SELECT {GAIA_COLUMNS} FROM gaiadr2.gaia_source WHERE parallax > 1")
    assert job.phase == "PENDING"
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    job.raise_if_error()
    assert job.phase == "COMPLETED"
    result = job.fetch_result().to_table()
    assert len(result) == int((gaia["parallax"] > 1).sum()) > 0
    check_gaia_rows(result, gaia)
    url = job.url
    job.delete()
    with pytest.raises(pyvo.dal.DALServiceError):
        pyvo.dal.AsyncTAPJob(url, session=session).phase  # noqa: B018 (the job is gone)


def test_async_run_async(svc, gaia):
    result = svc.run_async("SELECT COUNT(*) AS n FROM gaiadr2.gaia_source", timeout=60).to_table()
    assert int(result["n"][0]) == len(gaia)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_upload_join(svc, gaia, mode):
    rng = np.random.default_rng(1)
    ids = rng.choice(gaia.index.to_numpy(), 300, replace=False)
    upload = Table({"source_id": np.concatenate([ids, [1, 2, 3]]), "row": np.arange(len(ids) + 3)})
    q = (
        f"SELECT u.row, g.{GAIA_COLUMNS.replace(', ', ', g.')} FROM gaiadr2.gaia_source AS g "
        "JOIN TAP_UPLOAD.ids AS u ON g.source_id = u.source_id"
    )
    run = svc.search if mode == "sync" else svc.run_async
    result = run(q, uploads={"ids": upload}).to_table()
    assert sorted(result["source_id"]) == sorted(ids)  # the three unknown ids match nothing
    check_gaia_rows(result, gaia)


def test_maxrec_overflow(svc, gaia):
    # A client MAXREC that cuts the result: status OVERFLOW; pyvo >= 1.7 warns only when the cut is not the
    # client's own (and the module's `filterwarnings = error` would turn any warning into a failure).
    result = svc.search("SELECT source_id FROM gaiadr2.gaia_source", maxrec=100)
    assert result.query_status == "OVERFLOW"
    assert len(result) == 100 < len(gaia)
    # DaCHS reports OVERFLOW when the rows reach MAXREC, so allow one more than the table has.
    full = svc.search("SELECT source_id FROM gaiadr2.gaia_source", maxrec=len(gaia) + 1)
    assert full.query_status == "OK"
    assert len(full) == len(gaia)


def test_server_maxrec_overflow_warns(svc, gaia):
    # Without a client MAXREC the server's default (DaCHS: 20000 rows) cuts a 4-million-row cross join.
    q = "SELECT a.source_id FROM gaiadr2.gaia_source AS a, gaiadr2.gaia_source AS b"
    with pytest.warns(pyvo.dal.DALOverflowWarning, match="server limits"):
        result = svc.search(q)
    assert result.query_status == "OVERFLOW"
    assert len(result) == 20000 < len(gaia) ** 2


@pytest.mark.parametrize("table", sorted(SIMULATED_TABLE_NAMES))
def test_every_archive_table(svc, tap_server, table):
    name = tap_server.names[table]
    df = tap_server.archives[table]
    assert len(df) > 0
    n = svc.search(f"SELECT COUNT(*) AS n FROM {name}").to_table()["n"][0]
    assert int(n) == len(df)
    top = svc.search(f"SELECT TOP 5 * FROM {name}").to_table()
    assert list(top.colnames) == [str(c) for c in df.columns]  # the archives' own column names, case kept
    assert name.lower() in {t.lower() for t in svc.tables.keys()}


def test_reserved_and_list_columns(svc, tap_server):
    unwise = tap_server.archives["unwise"]
    primary = svc.search('SELECT SUM("primary") AS n FROM unwise_dr1.object').to_table()["n"][0]
    assert int(primary) == int(unwise["primary"].sum())
    apogee = tap_server.archives["apogee_dr16_allstar"]
    row = svc.search(f"SELECT APOGEE_ID, PARAM FROM apogee.allstar WHERE APOGEE_ID = '{apogee['APOGEE_ID'][0]}'")
    param = np.array(json.loads(row.to_table()["PARAM"][0]), dtype=np.float32)  # lists are published as text
    np.testing.assert_array_equal(param, apogee["PARAM"][0])


# astroquery's TAP connections are never closed: their ResourceWarnings are ignored here and collected below.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_astroquery_tapplus(tap_server, gaia):
    tap_mod = pytest.importorskip("astroquery.utils.tap.core")
    tap = tap_mod.TapPlus(url=tap_server.url, verbose=False)
    job = tap.launch_job("SELECT TOP 10 source_id FROM gaiadr2.gaia_source")
    assert len(job.get_results()) == 10
    t0 = time.perf_counter()
    job = tap.launch_job_async(  # autorun: needs the launcher's PHASE=RUN patch, or it would poll forever
        "SELECT COUNT(*) AS n FROM gaiadr2.gaia_source", verbose=False, background=False
    )
    assert int(job.get_results()["n"][0]) == len(gaia)
    assert time.perf_counter() - t0 < 30
    del tap, job
    gc.collect()
