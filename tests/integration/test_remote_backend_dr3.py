"""The remote archive backend with ``archives.release: dr3`` against a real loopback TAP server (tests/tapserver.py).

A GAVO DaCHS server of its own serves the Gaia DR3 era's tables made from a 2000-Gaia-source slice of the small
simulated sky (the simulated sky's DR3 view, ddstars.simulate.release) under the archives' names, as the Gaia
archive lays them out: ``gaiadr3.tmass_psc_xsc_best_neighbour`` without the PSC designation, which lives in
``gaiadr3.tmass_psc_xsc_join`` (one clean 2MASS id there has a second designation, a suspected duplicate, as in
the real table). Every DR3 table but the APOGEE file (tests/integration/test_remote_backend.py covers the file
kind) is fetched in the DR3 query order by the functions the archive rules call, in several chunks each, and must
equal what is selected here from the served tables with astropy and pandas: the Gaia DR3 sources around the DR3
spectra (position upload), their best neighbours (id uploads, the 2MASS one with the JOIN), and the PS1, 2MASS
PSC and unWISE rows these point to. A rerun with the cache requests nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord
from tapserver import (
    assert_same_table,
    collect_sockets,  # noqa: F401  (autouse: sockets collected after each test)
    coords_of,
    fetch_like_the_workflow,
    rows_near,
)

from ddstars import archives, registry
from ddstars.remote import fetch, services
from ddstars.remote.client import TapClient
from ddstars.remote.services import chunk_dir

pytest.importorskip("pyvo")

DR3 = registry.release("dr3")
CONFIG_RELEASE = {"archives": {"release": "dr3"}}
GAIA, PS1_LINK, TMASS_LINK = DR3.surveys["gaia"].table, DR3.links()["ps1"], DR3.links()["tmass"]
PSC_KEY = DR3.link_keys()["tmass"]  # the designation, a column of tmass_psc_xsc_join
SPECTRA = [DR3.surveys[s].table for s in DR3.spectroscopic()]
FILE_TABLES = [t for t in DR3.query_order() if services.spec_for(t, CONFIG_RELEASE).kind == "file"]
FETCHED = [t for t in DR3.query_order() if t not in FILE_TABLES]  # queried from the TAP server, in this order
DUPLICATE = "99999999+9999999"  # a second designation of one clean 2MASS id: sorts after any real one
POLL_S = 0.05
# Where the served tables are published: the archives' own names, a schema of ours where theirs has none.
NAMES = {
    "lamost_dr5_ddpayne": "lamost.ddpayne",
    "galah_dr4": "galah_dr4.mainstartable",
    GAIA: "gaiadr3.gaia_source",
    PS1_LINK: "gaiadr3.panstarrs1_best_neighbour",
    TMASS_LINK: "gaiadr3.tmass_psc_xsc_best_neighbour",
    "tmass_psc_xsc_join": "gaiadr3.tmass_psc_xsc_join",
    "ps1_mean_object": "dbo.MeanObjectView",
    "tmass_psc": "twomass.fp_psc",
    "unwise": "unwise_dr1.object",
}


def dr3_slice(small_sky) -> dict[str, pd.DataFrame]:
    """The DR3 tables of a 2000-Gaia-source slice of the small sky, by archive table name (all of DR3's)."""
    from tapserver import SIMULATED_TABLE_NAMES, sky_slice

    from ddstars.simulate.release import DR2_INPUTS, dr3_tables

    paths = small_sky["paths"]
    dr2 = sky_slice({k: pd.read_parquet(paths[k]) for k in SIMULATED_TABLE_NAMES}, n_gaia=2000)
    truth = pd.read_parquet(paths["truth"], columns=["source_id", "galah_id"])
    new = dr3_tables({t: dr2[t] for t in DR2_INPUTS}, truth, seed=small_sky["cfg"]["seed"])
    out = {t: (new[t] if t in new else dr2[t]) for t in DR3.tables}
    return {t: df.reset_index(drop=True) for t, df in out.items()}


def published(tables: dict[str, pd.DataFrame], duplicate_oid: int) -> dict[str, pd.DataFrame]:
    """The served tables, by NAMES key: the 2MASS best neighbours split as in the Gaia archive (the designation
    in tmass_psc_xsc_join, joined on the clean 2MASS id), with a second designation of the clean 2MASS id
    ``duplicate_oid`` added to the join (a suspected duplicate)."""
    out = {t: tables[t] for t in NAMES if t in tables and t != TMASS_LINK}
    link = tables[TMASS_LINK]
    out[TMASS_LINK] = link.drop(columns=[PSC_KEY]).assign(original_ext_source_id=link[PSC_KEY].to_numpy())
    join = pd.DataFrame(
        {
            "clean_tmass_psc_xsc_oid": link["clean_tmass_psc_xsc_oid"],
            PSC_KEY: link[PSC_KEY],
            "original_xsc_source_id": "",
        }
    )
    dup = join[join["clean_tmass_psc_xsc_oid"] == duplicate_oid].assign(**{PSC_KEY: DUPLICATE})
    assert len(dup) == 1
    out["tmass_psc_xsc_join"] = pd.concat([join, dup], ignore_index=True)
    return out


@pytest.fixture(scope="module")
def dr3_server(small_sky):
    from tapserver import LocalTapServer, available

    ok, reason = available()
    if not ok:
        pytest.skip(f"local TAP server unavailable: {reason}")
    tables = dr3_slice(small_sky)
    expected = expected_tables(tables)
    duplicate_oid = int(expected[TMASS_LINK]["clean_tmass_psc_xsc_oid"].iloc[0])  # one the queries will ask for
    served = published(tables, duplicate_oid)
    server = LocalTapServer({NAMES[k]: df for k, df in served.items()})
    try:
        server.start()
    except Exception as e:  # the servers could not start here: report why and skip
        pytest.skip(f"local TAP server did not start: {e}")
    try:
        yield {"url": server.url, "tables": tables, "expected": expected, "duplicate_oid": duplicate_oid}
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------ expectations
def expected_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """What the DR3 queries must return from the served tables (the DR3 view's rows, by archive table)."""
    out = {t: tables[t] for t in SPECTRA}
    targets = SkyCoord(
        np.concatenate([tables[t][archives.TABLES[t].ra].to_numpy(float) for t in SPECTRA]) * u.deg,
        np.concatenate([tables[t][archives.TABLES[t].dec].to_numpy(float) for t in SPECTRA]) * u.deg,
    )
    gaia = rows_near(tables[GAIA], targets, 0.2)
    ids = set(gaia["source_id"])
    out[GAIA] = gaia
    for link in (PS1_LINK, TMASS_LINK):
        out[link] = tables[link][tables[link]["source_id"].isin(ids)]
    ps1 = tables["ps1_mean_object"]
    out["ps1_mean_object"] = ps1[ps1["objID"].isin(set(out[PS1_LINK][DR3.link_keys()["ps1"]]))]
    psc = tables["tmass_psc"]
    out["tmass_psc"] = psc[psc["designation"].isin(set(out[TMASS_LINK][PSC_KEY]))]
    out["unwise"] = rows_near(tables["unwise"], coords_of(gaia, "ra", "dec"), 0.4)
    for t, df in out.items():
        assert len(df) > 0, t
    return out


def remote_config(tap_url: str, cache_dir: Path, expected: dict[str, pd.DataFrame]) -> dict:
    """The DR3 remote config against the loopback server: every TAP service there, 3 chunks per id table."""
    tables: dict[str, dict] = {t: {"remote_table": NAMES[t]} for t in FETCHED}
    for t in ("lamost_dr5_ddpayne", "galah_dr4"):
        tables[t] |= {"n_chunks": 3}
    tables["lamost_dr5_ddpayne"]["columns"] = {"ra": "ra", "dec": "dec"}  # the server has ra/dec, not RAJ2000
    n_ids = {
        PS1_LINK: expected[GAIA]["source_id"].nunique(),
        TMASS_LINK: expected[GAIA]["source_id"].nunique(),
        "ps1_mean_object": expected[PS1_LINK][DR3.link_keys()["ps1"]].nunique(),
        "tmass_psc": expected[TMASS_LINK][PSC_KEY].nunique(),
    }
    for t, n in n_ids.items():
        tables[t]["chunk_size"] = -(-n // 3)
    for t in (GAIA, "unwise"):  # one chunk per HEALPix order-0 pixel; sync (a DaCHS async job costs ~2 s)
        tables[t] |= {"healpix_order": 0, "chunk_size": 1_000_000, "mode": "sync"}
    services_ = {
        s: {"url": tap_url, "max_concurrent": 2}
        for s in {services.spec_for(t, CONFIG_RELEASE).service for t in FETCHED}
    }
    return {
        "backend": "remote",
        "archives": {"release": "dr3"},
        "archive_cache": str(cache_dir.parent / "archives"),
        "remote": {
            "cache_dir": str(cache_dir),
            "timeout_s": 120.0,
            "poll_s": POLL_S,
            "retries": {"max": 2, "base_s": 0.1, "max_s": 0.2},
            "services": services_,
            "tables": tables,
        },
    }


@pytest.fixture(scope="module")
def dr3_run(dr3_server, tmp_path_factory):
    """Every DR3 TAP table fetched in the DR3 query order (the APOGEE DR17 file given, as a fetch left it), then
    the whole chain once more from the cache; the queries each run sent."""
    work = tmp_path_factory.mktemp("remote_dr3")
    expected = dr3_server["expected"]
    config = remote_config(dr3_server["url"], work / "raw", expected)
    paths: dict[str, Path] = {}
    for t in FILE_TABLES:
        paths[t] = archives.table_path(config, t)
        paths[t].parent.mkdir(parents=True, exist_ok=True)
        dr3_server["tables"][t].to_parquet(paths[t])
    requested: list[list[str]] = [[], []]
    query = TapClient.query
    seconds: dict[str, float] = {}
    with pytest.MonkeyPatch.context() as mp:
        for run in (0, 1):

            def counting(self, adql, uploads=None, mode="sync", _run=run):
                requested[_run].append(adql)
                return query(self, adql, uploads=uploads, mode=mode)

            mp.setattr(TapClient, "query", counting)
            for t in FETCHED:
                t0 = time.perf_counter()
                up = {u_: paths[u_] for u_ in DR3.tables[t].upstream_tables}
                paths[t] = fetch_like_the_workflow(t, up, config)
                seconds.setdefault(t, round(time.perf_counter() - t0, 2))
    return {
        "config": config,
        "paths": paths,
        "expected": expected,
        "requested": requested,
        "seconds": seconds,
        "duplicate_oid": dr3_server["duplicate_oid"],
    }


# ------------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("table", FETCHED)
def test_each_dr3_table_comes_in_chunks_and_equals_the_served_rows(table, dr3_run):
    config = dr3_run["config"]
    plan = fetch.read_plan(chunk_dir(config, table) / "plan")
    assert plan["n_chunks"] >= 3, (table, plan["n_chunks"])
    got = archives.read_table(dr3_run["paths"][table], table)
    columns = list(dict.fromkeys(services.spec_for(table, config).columns.values()))
    assert_same_table(got, dr3_run["expected"][table], table, columns)


def test_the_gaia_dr3_position_upload_and_the_2mass_join_ran_on_the_server(dr3_run):
    queries = dr3_run["requested"][0]
    gaia = [q for q in queries if "FROM gaiadr3.gaia_source AS t JOIN TAP_UPLOAD.ids" in q]
    assert len(gaia) >= 3 and all("CONTAINS(POINT('ICRS', t.ra, t.dec)" in q and "t.ruwe" in q for q in gaia)
    joins = [q for q in queries if "JOIN gaiadr3.tmass_psc_xsc_join AS j" in q]
    assert len(joins) == 3 and all(f"j.{PSC_KEY}" in q for q in joins)
    # the suspected duplicate came back from the server too, and the assembly kept the real designation
    link = archives.read_table(dr3_run["paths"][TMASS_LINK], TMASS_LINK)
    assert DUPLICATE not in set(link[PSC_KEY])
    cache = fetch.cache_for(dr3_run["config"])
    raw = pd.concat(
        [
            cache.read(TMASS_LINK, c)
            for c in fetch.read_plan(chunk_dir(dr3_run["config"], TMASS_LINK) / "plan")["chunks"]
        ]
    )
    assert DUPLICATE in set(raw[PSC_KEY]) and len(raw) == len(link) + 1
    kept = link.set_index("clean_tmass_psc_xsc_oid").loc[dr3_run["duplicate_oid"], PSC_KEY]
    assert (
        kept
        == dr3_run["expected"][TMASS_LINK].set_index("clean_tmass_psc_xsc_oid").loc[dr3_run["duplicate_oid"], PSC_KEY]
    )


def test_a_rerun_with_the_cache_requests_nothing(dr3_run):
    assert len(dr3_run["requested"][0]) >= 3 * len(FETCHED)
    assert dr3_run["requested"][1] == []
