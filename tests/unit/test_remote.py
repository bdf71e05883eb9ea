"""The remote backend's core (ddstars.remote) against recorded responses replayed with requests-mock.

The responses under tests/data/remote/ are in the services' formats (TAP VOTables with the remote column
names, UWS job documents, an allStar-like FITS file); tests/data/remote/make_fixtures.py regenerates them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import requests_mock
from astropy.table import Table

from ddstars import archives, registry
from ddstars.config import defaults
from ddstars.errors import ConfigError, DataError
from ddstars.remote import fetch, services
from ddstars.remote.cache import ChunkCache
from ddstars.remote.client import ChunkOverflowError, ServiceSlots, TapClient, load_credentials

DATA = Path(__file__).resolve().parents[1] / "data" / "remote"
TAP_TABLES = [t for t, s in services.ALL_SPECS.items() if s.kind != "file"]  # every release's
SECRET = "s3cr3t-Pa55"


def _url(service: str) -> str:
    return f"https://{service.replace('_', '-')}.example.org/tap"


@pytest.fixture
def config(tmp_path):
    return {
        "backend": "remote",
        "remote": {
            "cache_dir": str(tmp_path / "cache"),
            "poll_s": 1.0,
            "timeout_s": 30.0,
            "retries": {"max": 3, "base_s": 1.0, "max_s": 8.0},
            "services": {s: {"url": _url(s)} for s in defaults("remote")["services"]},
            "tables": {t: {"n_chunks": 1} for t, s in services.ALL_SPECS.items() if s.kind == "range"},
        },
    }


@pytest.fixture
def sleeps():
    return []


def _client(table, config, sleeps, **kw):
    return fetch.make_client(table, config, sleep=sleeps.append, rng=random.Random(1), **kw)


def _inputs(table: str) -> pd.DataFrame | None:
    """Inputs that give one chunk: one position, or the ids of the recorded rows."""
    spec = services.ALL_SPECS[table]
    if spec.kind == "position_upload":
        return pd.DataFrame({"ra": [10.0, 10.0001], "dec": [20.0, 20.0001]})
    if spec.kind in ("id_upload", "id_list"):
        return pd.DataFrame({"id": [1, 2, 3]}) if spec.key != "designation" else pd.DataFrame({"id": ["a", "b"]})
    return None


def _job_xml(phase: str, result_url: str | None = None, error: str | None = None) -> str:
    results = f'<uws:result id="result" xlink:type="simple" xlink:href="{result_url}"/>' if result_url else ""
    summary = (
        f'<uws:errorSummary type="fatal" hasDetail="false"><uws:message>{error}</uws:message></uws:errorSummary>'
        if error
        else ""
    )
    text = (DATA / "uws_job.xml").read_text()
    return text.replace("PHASE", phase).replace("RESULTS", results).replace("ERRORSUMMARY", summary)


def _mock(m: requests_mock.Mocker, table: str, body: bytes, status: int = 200, job_phase: str = "COMPLETED"):
    """Serve ``body`` for ``table``'s query: sync POST, or the async job's UWS flow then the result."""
    spec = services.ALL_SPECS[table]
    base = _url(spec.service)
    if spec.kind == "file":
        return m.get(f"{base}/{spec.remote_table}", content=body, status_code=status)
    if spec.mode == "sync":
        return m.post(f"{base}/sync", content=body, status_code=status, headers={"Content-Type": "text/xml"})
    job = f"{base}/async/1732800000000O"
    result = f"{job}/results/result"
    error = "Query too complex" if job_phase == "ERROR" else None
    m.post(f"{base}/async", status_code=303, headers={"Location": job})
    phases = ["PENDING", "PENDING", "QUEUED", "EXECUTING", job_phase]
    m.get(job, [{"text": _job_xml(p, result if p == "COMPLETED" else None, error)} for p in phases])
    m.post(f"{job}/phase", text="")
    m.delete(job, text="")
    return m.get(result, content=body, status_code=status, headers={"Content-Type": "text/xml"})


def _body(table: str, variant: str = "") -> bytes:
    ext = "fits" if services.ALL_SPECS[table].kind == "file" else "vot"
    return (DATA / f"{table}{'_' + variant if variant else ''}.{ext}").read_bytes()


# --------------------------------------------------------------------------------------- every service
@pytest.mark.parametrize("table", list(services.ALL_SPECS))
def test_normal_result_is_cached_and_assembles_to_the_archive_schema(table, config, sleeps, tmp_path):
    inputs = _inputs(table)
    ids = fetch.chunk_ids(table, config, inputs)
    assert len(ids) == 1
    with requests_mock.Mocker() as m:
        _mock(m, table, _body(table))
        path = fetch.fetch_chunk(table, ids[0], config, inputs, client=_client(table, config, sleeps))
        posts = [r for r in m.request_history if r.method == "POST" and not r.url.endswith("/phase")]
    spec = services.ALL_SPECS[table]
    if spec.kind != "file":
        query = posts[0].text if isinstance(posts[0].text, str) else posts[0].body.decode(errors="replace")
        assert "SELECT" in query and spec.remote_table.replace('"', "").split("/")[-1] in query.replace("%2F", "/")
        if spec.kind in ("id_upload", "position_upload"):
            assert "TAP_UPLOAD" in query and "ids%2Cparam%3Aids" in query or "ids,param:ids" in query
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["rows"] == 3 and meta["service"] == spec.service and meta["fetched_utc"]
    assert meta["url"].startswith(_url(spec.service))
    out = fetch.assemble(table, [path], tmp_path / "archives" / f"{table}.parquet", config)
    df = archives.read_table(out, table)  # the same checks the catalog stage applies
    assert len(df) == 3
    assert set(archives.TABLES[table].columns) <= set(df.columns)
    # the keys are those of the recorded response itself, read here with astropy
    ext = "fits" if spec.kind == "file" else "vot"
    recorded = Table.read(DATA / f"{table}.{ext}", format="fits" if ext == "fits" else "votable")
    key = archives.TABLES[table].key
    remote_key = next((r for r, a in spec.columns.items() if a == key), key)
    by_lower = {c.lower(): c for c in recorded.colnames}
    raw = recorded[by_lower[remote_key.lower()]]
    keys = [v.decode() if isinstance(v, bytes) else str(v).strip() for v in np.asarray(raw).tolist()]
    assert sorted(df[key].astype(str).str.strip()) == sorted(keys)


@pytest.mark.parametrize("table", ["gaia_source", "lamost_dr5_ddpayne", "apogee_dr16_allstar"])
def test_every_response_is_closed_after_a_chunk(table, config, sleeps, monkeypatch):
    """pyvo drops streamed responses it has parsed; their connections must not be left to the garbage collector.

    The three tables cover a sync query, an async job (several streamed UWS documents) and a file download; a
    client that fetch_chunk makes for itself is closed when the chunk is done.
    """
    inputs = _inputs(table)
    ids = fetch.chunk_ids(table, config, inputs)
    made: list[TapClient] = []
    seen: list[requests.Response] = []
    closed: list[str] = []
    make_client = fetch.make_client

    def recording(t, cfg):
        client = make_client(t, cfg, sleep=sleeps.append, rng=random.Random(1))
        client.session.hooks["response"].append(lambda r, *_, **__: seen.append(r))
        close = client.session.close
        client.session.close = lambda: (closed.append(t), close())
        made.append(client)
        return client

    monkeypatch.setattr(fetch, "make_client", recording)
    with requests_mock.Mocker() as m:
        _mock(m, table, _body(table))
        fetch.fetch_chunk(table, ids[0], config, inputs)
    assert len(made) == 1 and len(seen) >= (1 if services.SPECS[table].mode == "sync" else 4)
    still_open = [f"{r.request.method} {r.url}" for r in seen if not r.raw.closed]
    assert still_open == []
    assert closed == [table]


@pytest.mark.parametrize("table", TAP_TABLES)
def test_empty_result_is_a_complete_chunk_of_zero_rows(table, config, sleeps, tmp_path):
    inputs = _inputs(table)
    (cid,) = fetch.chunk_ids(table, config, inputs)
    with requests_mock.Mocker() as m:
        _mock(m, table, _body(table, "empty"))
        path = fetch.fetch_chunk(table, cid, config, inputs, client=_client(table, config, sleeps))
    assert fetch.cache_for(config).is_complete(table, cid)
    assert len(pd.read_parquet(path)) == 0
    with pytest.raises(DataError, match="empty"):
        fetch.assemble(table, [path], tmp_path / "out.parquet", config)


@pytest.mark.parametrize("table", TAP_TABLES)
def test_truncated_result_raises_overflow_and_caches_nothing(table, config, sleeps):
    inputs = _inputs(table)
    (cid,) = fetch.chunk_ids(table, config, inputs)
    with requests_mock.Mocker() as m:
        _mock(m, table, _body(table, "overflow"))
        with pytest.raises(ChunkOverflowError, match="OVERFLOW") as err:
            fetch.fetch_chunk(table, cid, config, inputs, client=_client(table, config, sleeps))
        assert sum(r.method == "POST" and r.url.endswith(("/sync", "/async")) for r in m.request_history) == 1
    assert services.ALL_SPECS[table].service in str(err.value) and "SELECT" in str(err.value)
    cache = fetch.cache_for(config)
    assert not cache.is_complete(table, cid)
    assert not cache.data_path(table, cid).exists() and not cache.meta_path(table, cid).exists()
    assert set(sleeps) <= {1.0}  # job polling (poll_s) only: no back-off, no retry


@pytest.mark.parametrize("table", list(services.ALL_SPECS))
def test_malformed_response_raises_and_caches_nothing(table, config, sleeps):
    inputs = _inputs(table)
    (cid,) = fetch.chunk_ids(table, config, inputs)
    with requests_mock.Mocker() as m:
        _mock(m, table, _body(table, "malformed"))
        with pytest.raises(DataError, match="malformed|not a readable") as err:
            fetch.fetch_chunk(table, cid, config, inputs, client=_client(table, config, sleeps))
    assert services.ALL_SPECS[table].service in str(err.value)
    cache = fetch.cache_for(config)
    assert not cache.data_path(table, cid).exists() and not cache.meta_path(table, cid).exists()


def test_async_job_error_phase_is_a_data_error_without_retry(config, sleeps):
    table = "panstarrs1_best_neighbour"
    inputs = _inputs(table)
    (cid,) = fetch.chunk_ids(table, config, inputs)
    with requests_mock.Mocker() as m:
        _mock(m, table, _body(table), job_phase="ERROR")
        with pytest.raises(DataError, match="Query too complex"):
            fetch.fetch_chunk(table, cid, config, inputs, client=_client(table, config, sleeps))
        assert sum(r.method == "POST" and r.url.endswith("/async") for r in m.request_history) == 1
    assert sleeps == [1.0, 1.0]  # polling QUEUED, EXECUTING (poll_s); no back-off


# ---------------------------------------------------------------------------------------------- retries
def test_503_then_success_is_retried_with_backoff(config, sleeps):
    table = "galah_dr2"
    (cid,) = fetch.chunk_ids(table, config)
    with requests_mock.Mocker() as m:
        m.post(f"{_url('vizier')}/sync", [{"status_code": 503, "text": "busy"}, {"content": _body(table)}])
        client = _client(table, config, sleeps)
        fetch.fetch_chunk(table, cid, config, client=client)
        assert m.call_count == 2
    assert client.attempts == 2
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.0  # uniform(0.5, 1) * base_s * 2**0


def test_each_retry_is_logged_with_its_attempt_and_wait(config, sleeps, caplog):
    table = "galah_dr2"
    (cid,) = fetch.chunk_ids(table, config)
    busy = {"status_code": 503, "text": "busy"}
    with requests_mock.Mocker() as m, caplog.at_level("WARNING", logger="ddstars.remote.client"):
        m.post(f"{_url('vizier')}/sync", [busy, busy, {"content": _body(table)}])
        fetch.fetch_chunk(table, cid, config, client=_client(table, config, sleeps))
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == len(sleeps) == 2
    total = services.remote_config(config)["retries"]["max"]
    for k, (msg, wait) in enumerate(zip(retries, sleeps, strict=True), start=1):
        assert msg.startswith(f"vizier ({_url('vizier')}): sync TAP query failed (")
        assert "503" in msg  # the failure that is retried
        assert f"retry {k} of {total} (attempt {k + 1} of {total + 1}) in {wait:.1f} s" in msg


def test_timeout_then_success_is_retried(config, sleeps):
    table = "lamost_dr5_ddpayne"
    (cid,) = fetch.chunk_ids(table, config)
    with requests_mock.Mocker() as m:
        m.post(f"{_url('vizier')}/sync", [{"exc": requests.exceptions.ReadTimeout}, {"content": _body(table)}])
        client = _client(table, config, sleeps)
        path = fetch.fetch_chunk(table, cid, config, client=client)
    assert client.attempts == 2 and len(sleeps) == 1 and len(pd.read_parquet(path)) == 3


def test_backoff_grows_exponentially_with_jitter_and_gives_up(config, sleeps):
    table = "galah_dr2"
    (cid,) = fetch.chunk_ids(table, config)
    with requests_mock.Mocker() as m:
        m.post(f"{_url('vizier')}/sync", status_code=502, text="bad gateway")
        with pytest.raises(DataError, match="after 4 attempts"):
            fetch.fetch_chunk(table, cid, config, client=_client(table, config, sleeps))
        assert m.call_count == 4
    caps = [1.0, 2.0, 4.0]
    assert all(c / 2 <= s <= c for s, c in zip(sleeps, caps, strict=True))
    assert not fetch.cache_for(config).meta_path(table, cid).exists()


def test_400_is_a_data_error_naming_service_url_and_query_without_retry(config, sleeps):
    table = "tmass_psc"
    inputs = _inputs(table)
    (cid,) = fetch.chunk_ids(table, config, inputs)
    with requests_mock.Mocker() as m:
        m.post(f"{_url('irsa')}/sync", status_code=400, text="syntax error", headers={"Content-Type": "text/plain"})
        with pytest.raises(DataError) as err:
            fetch.fetch_chunk(table, cid, config, inputs, client=_client(table, config, sleeps))
        assert m.call_count == 1
    msg = str(err.value)
    assert "irsa" in msg and _url("irsa") in msg and "HTTP 400" in msg and "FROM fp_psc" in msg
    assert sleeps == []


# ----------------------------------------------------------------------------------------------- resume
def test_rerun_fetches_only_missing_chunks(config, sleeps):
    table = "galah_dr2"
    config["remote"]["tables"][table] = {"n_chunks": 4}
    ids = fetch.chunk_ids(table, config)
    assert ids == ["r0000", "r0001", "r0002", "r0003"]
    cache = fetch.cache_for(config)
    with requests_mock.Mocker() as m:
        m.post(f"{_url('vizier')}/sync", content=_body(table))
        client = _client(table, config, sleeps)
        for cid in ids[:2]:
            fetch.fetch_chunk(table, cid, config, client=client)
        assert m.call_count == 2
        assert cache.missing(table, ids) == ids[2:]
        paths = fetch.fetch_missing(table, config, client=client)
        assert m.call_count == 4  # only the 2 missing chunks were requested
        fetch.fetch_missing(table, config, client=client)
        assert m.call_count == 4
    assert [p.stem for p in paths] == ids


def test_incomplete_or_stale_chunks_are_fetched_again(config, sleeps):
    table = "tmass_best_neighbour"
    inputs = _inputs(table)
    (cid,) = fetch.chunk_ids(table, config, inputs)
    cache = fetch.cache_for(config)
    with requests_mock.Mocker() as m:
        _mock(m, table, _body(table))
        client = _client(table, config, sleeps)
        fetch.fetch_chunk(table, cid, config, inputs, client=client)
        meta = json.loads(cache.meta_path(table, cid).read_text())
        cache.meta_path(table, cid).write_text(json.dumps({**meta, "rows": 2}))  # row count mismatch
        assert not cache.is_complete(table, cid)
        fetch.fetch_chunk(table, cid, config, inputs, client=client)
        assert cache.is_complete(table, cid)
        cache.meta_path(table, cid).unlink()  # interrupted before the sidecar: incomplete
        assert cache.missing(table, [cid]) == [cid]
        fetch.fetch_chunk(table, cid, config, inputs, client=client)
        new_inputs = pd.DataFrame({"id": [1, 2, 4]})  # same chunk id, other ids: the digest differs
        fetch.fetch_chunk(table, cid, config, new_inputs, client=client)
        assert sum(r.url.endswith("/async") and r.method == "POST" for r in m.request_history) == 4


@pytest.mark.parametrize("table", ["galah_dr2", "tmass_psc", "unwise"])  # range, id upload, position upload
def test_plan_only_builds_the_same_chunk_as_the_full_plan(table, config):
    config["remote"]["tables"][table] = {"n_chunks": 3} if table == "galah_dr2" else {"chunk_size": 2}
    inputs = {
        "tmass_psc": pd.DataFrame({"id": ["a", "b", "c", "d", "e"]}),
        "unwise": pd.DataFrame({"ra": [10.0, 10.01, 10.02, 200.0], "dec": [20.0, 20.0, 20.0, -40.0]}),
    }.get(table)
    full = fetch.plan(table, config, inputs)
    assert len(full) == 3
    for cid, chunk in full.items():
        (one,) = fetch.plan(table, config, inputs, only=cid).values()
        assert (one.id, one.adql, one.request_sha256) == (cid, chunk.adql, chunk.request_sha256)
        if chunk.upload is not None:
            assert one.upload.to_pandas().equals(chunk.upload.to_pandas())
    assert fetch.plan(table, config, inputs, only="nope") == {}
    assert fetch.plan("apogee_dr16_allstar", config, only="nope") == {}  # the file kind's one chunk is "all"
    assert list(fetch.plan("apogee_dr16_allstar", config, only="all")) == ["all"]


def test_planned_chunk_jobs_fetch_each_chunk_once_and_assemble(config, sleeps, tmp_path):
    """The workflow's three jobs: plan (ids + digests + inputs), one job per chunk, assembly from the cache."""
    table = "tmass_best_neighbour"
    config["remote"]["tables"][table] = {"chunk_size": 2}
    inputs = pd.DataFrame({"id": [3, 1, 2, 3]})  # unordered, with a repeat
    plan_dir = tmp_path / "plan"
    doc = fetch.write_plan(table, config, inputs, plan_dir)
    assert doc["n_chunks"] == 2 and doc["input_rows"] == 4 and list(doc["chunks"]) == ["b00000", "b00001"]
    assert doc["chunks"] == {c: k.request_sha256 for c, k in fetch.plan(table, config, inputs).items()}
    assert pd.read_parquet(plan_dir / fetch.INPUTS_FILE)["id"].tolist() == [1, 2, 3]
    assert doc["rows"] == {"b00000": [0, 2], "b00001": [2, 3]}  # each chunk job reads its own rows only
    with requests_mock.Mocker() as m:
        _mock(m, table, _body(table))
        client = _client(table, config, sleeps)
        metas = [fetch.fetch_planned(table, c, config, plan_dir, client=client) for c in doc["chunks"]]
        posts = sum(r.url.endswith("/async") and r.method == "POST" for r in m.request_history)
        assert posts == 2 and [mt["chunk_id"] for mt in metas] == list(doc["chunks"])
        fetch.fetch_planned(table, "b00001", config, plan_dir, client=client)  # a rerun job: from the cache
        assert sum(r.url.endswith("/async") and r.method == "POST" for r in m.request_history) == 2
    out = fetch.assemble_planned(table, plan_dir, config, tmp_path / "out.parquet")
    want = pd.concat([fetch.cache_for(config).read(table, c) for c in doc["chunks"]]).drop_duplicates("source_id")
    assert len(pd.read_parquet(out)) == len(want) > 0


def test_planned_chunk_errors_name_the_plan_and_the_chunk(config, sleeps, tmp_path):
    table = "galah_dr2"
    config["remote"]["tables"][table] = {"n_chunks": 2}
    plan_dir = tmp_path / "plan"
    fetch.write_plan(table, config, None, plan_dir)
    with pytest.raises(DataError, match=r"chunk 'r0009' is not in the plan .*plan\.json"):
        fetch.fetch_planned(table, "r0009", config, plan_dir)
    edited = {**config, "remote": {**config["remote"], "tables": {table: {"n_chunks": 3}}}}
    with pytest.raises(DataError, match=r"chunk 'r0000' no longer matches its plan .*rerun"):
        fetch.fetch_planned(table, "r0000", edited, plan_dir)
    with pytest.raises(DataError, match=r"2 of 2 planned chunk\(s\) are not complete .*r0000, r0001"):
        fetch.assemble_planned(table, plan_dir, config, tmp_path / "out.parquet")
    upload_plan = tmp_path / "upload_plan"
    fetch.write_plan("tmass_psc", config, pd.DataFrame({"id": ["a", "b"]}), upload_plan)
    (upload_plan / fetch.INPUTS_FILE).unlink()
    with pytest.raises(DataError, match=r"inputs\.parquet: the plan's inputs are missing .*rerun plan_tmass_psc"):
        fetch.fetch_planned("tmass_psc", "b00000", config, upload_plan)
    (plan_dir / fetch.PLAN_FILE).write_text("{not json")
    with pytest.raises(DataError, match=r"plan\.json: not a readable chunk plan"):
        fetch.read_plan(plan_dir)
    with pytest.raises(DataError, match=r"tmass_psc: no chunks to fetch: the inputs from tmass_best_neighbour"):
        fetch.write_plan("tmass_psc", config, pd.DataFrame({"id": pd.Series([], dtype=object)}), plan_dir)
    assert not (tmp_path / "out.parquet").exists()


def test_chunk_cache_write_read_and_layout(tmp_path):
    cache = ChunkCache(tmp_path)
    df = pd.DataFrame({"a": [1, 2]})
    path = cache.write("galah_dr2", "r0000", df, {"query": "SELECT 1"})
    assert path == tmp_path / "galah_dr2" / "r0000.parquet" and cache.is_complete("galah_dr2", "r0000")
    assert cache.read("galah_dr2", "r0000")["a"].tolist() == [1, 2]
    with pytest.raises(DataError, match="not complete"):
        cache.read("galah_dr2", "r0001")
    with pytest.raises(ValueError, match="invalid chunk id"):
        cache.data_path("galah_dr2", "../x")


def test_position_chunks_follow_healpix_and_respect_chunk_size(config):
    config["remote"]["tables"]["unwise"] = {"chunk_size": 2, "healpix_order": 3}
    inputs = pd.DataFrame({"ra": [10.0, 10.01, 10.02, 200.0], "dec": [20.0, 20.0, 20.0, -40.0]})
    plan = fetch.plan("unwise", config, inputs)
    assert [len(c.upload) for c in plan.values()] == [2, 1, 1]
    assert list(plan)[:2] == [
        "hpx3-" + list(plan)[0].split("-")[1] + "-0",
        "hpx3-" + list(plan)[0].split("-")[1] + "-1",
    ]
    assert "0.4" not in next(iter(plan.values())).adql  # radius in degrees
    assert f"{0.4 / 3600!r}" in next(iter(plan.values())).adql


# ------------------------------------------------------------------------------------- credentials & co
def test_credentials_are_used_but_never_in_errors_or_sidecars(config, sleeps, tmp_path, monkeypatch):
    creds = tmp_path / "creds.yaml"
    creds.write_text(f"gaia: {{user: alice, password: {SECRET}}}\n")
    config["remote"]["credentials_file"] = str(creds)
    assert load_credentials("gaia", creds, environ={}) == {"user": "alice", "password": SECRET}
    monkeypatch.setenv("DDSTARS_GAIA_TOKEN", SECRET + "-token")
    table = "panstarrs1_best_neighbour"
    inputs = _inputs(table)
    (cid,) = fetch.chunk_ids(table, config, inputs)
    with requests_mock.Mocker() as m:
        _mock(m, table, _body(table))
        fetch.fetch_chunk(table, cid, config, inputs, client=_client(table, config, sleeps))
        assert m.request_history[0].headers["Authorization"] == f"Bearer {SECRET}-token"
    sidecar = fetch.cache_for(config).meta_path(table, cid).read_text()
    assert SECRET not in sidecar and "alice" not in sidecar
    config["remote"]["services"]["gaia"]["url"] = f"https://alice:{SECRET}@gaia.example.org/tap"
    with requests_mock.Mocker() as m:
        m.post(requests_mock.ANY, status_code=403, text=f"bad password {SECRET} for alice")
        client = _client(table, config, sleeps)
        with pytest.raises(DataError) as err:
            client.query("SELECT 1", mode="async")
    assert SECRET not in str(err.value) and "***" in str(err.value)


def test_service_slots_limit_concurrency_across_holders(tmp_path):
    waits = []
    one = ServiceSlots(tmp_path, "gaia", 1, poll_s=1.0, timeout_s=3.0, sleep=waits.append)
    with one.slot() as i:
        assert i == 0
        with pytest.raises(DataError, match="no free request slot"):
            with one.slot():
                pass
    assert waits == [1.0, 1.0, 1.0]
    two = ServiceSlots(tmp_path, "vizier", 2, sleep=waits.append)
    with two.slot() as a, two.slot() as b:
        assert {a, b} == {0, 1}


def test_client_counts_attempts_and_masks(tmp_path):
    client = TapClient(_url("gaia"), "gaia", credentials={"token": SECRET}, lock_dir=tmp_path, sleep=lambda s: None)
    assert client.mask(f"token={SECRET}") == "token=***"


def test_config_overrides_and_errors(config):
    config["remote"]["tables"]["gaia_source"] = {"remote_table": "public.gaia", "radius_arcsec": 1.0}
    spec = services.spec_for("gaia_source", config)
    assert spec.remote_table == "public.gaia" and spec.radius_arcsec == 1.0
    config["remote"]["tables"]["galah_dr2"] = {"columns": {"Teff": "teff", "ra_deg": "ra"}}
    spec = services.spec_for("galah_dr2", config)
    assert spec.columns["Teff"] == "teff" and "teff" not in spec.columns and spec.ra == "ra_deg"
    assert spec.range_column == "ra_deg"
    config["remote"]["tables"]["nope"] = {}
    with pytest.raises(ConfigError, match="remote.tables.nope"):
        services.remote_config(config)


def test_specs_cover_every_archive_table_and_map_every_column():
    assert set(services.ALL_SPECS) == set(archives.TABLES)  # every release's tables
    assert set(services.SPECS) == set(registry.TABLES)  # the paper's, in query order
    for table, spec in services.ALL_SPECS.items():
        assert set(archives.TABLES[table].columns) <= set(spec.columns.values()), table


# ------------------------------------------------------------------------ the photometric sample by pixel
def _sample_config(config, order, pixels, chunk_order=None, g=(12.0, 18.0)):
    config = {**config, "inference": {"photometric_sample": {"healpix_order": order, "pixels": pixels}}}
    config["inference"]["photometric_sample"]["gaia_g_range"] = list(g)
    if chunk_order is not None:
        config["remote"] = {**config["remote"], "tables": {**config["remote"]["tables"]}}
        config["remote"]["tables"]["gaia_source"] = {"healpix_order": chunk_order}
    return config


def test_source_id_ranges_select_exactly_the_sources_of_each_pixel():
    """A source lies in pixel p of order k iff its id lies in p's range: ids made as Gaia makes them (the level-12
    pixel of the position times 2^35 plus a serial), pixels from healpy at order k."""
    import healpy as hp

    from ddstars.simulate.ids import gaia_source_id

    rng = np.random.default_rng(3)
    ra, dec = rng.uniform(0, 360, 20_000), np.degrees(np.arcsin(rng.uniform(-1, 1, 20_000)))
    ids = gaia_source_id(ra, dec, rng.integers(0, 2**35, 20_000))
    for order in (0, 3, 7, 12):
        pix = hp.ang2pix(2**order, ra, dec, nest=True, lonlat=True)
        for p in np.unique(pix)[:20]:
            lo, hi = services.source_id_range(int(p), order)
            assert np.array_equal((ids >= lo) & (ids < hi), pix == p), (order, p)
    assert services.source_id_range(12 * 4**12 - 1, 12)[1] <= np.iinfo(np.int64).max  # every id fits in int64
    with pytest.raises(ValueError, match="orders 0 … 12"):
        services.source_id_range(0, 13)


def test_the_sample_is_fetched_one_source_id_range_per_pixel_at_the_chunk_order(config):
    cfg = _sample_config(config, 2, [5, 100, 5], chunk_order=3, g=(12.0, 17.5))
    spec = services.spec_for("photometric/gaia_source", cfg)
    assert spec.kind == "healpix" and spec.upstream == () and spec.mag_range == (12.0, 17.5)
    plan = fetch.plan("photometric/gaia_source", cfg)
    want = [f"hpx3-{q}" for q in [*range(20, 24), *range(400, 404)]]  # each order-2 pixel: 4 of order 3, once
    assert list(plan) == want
    lo, hi = services.source_id_range(20, 3)
    adql = plan["hpx3-20"].adql
    assert f"source_id >= {lo} AND source_id < {hi}" in adql and "FROM gaiadr2.gaia_source" in adql
    assert "phot_g_mean_mag >= 12.0 AND phot_g_mean_mag < 17.5" in adql
    # a coarser chunk order than the pixels': one request per pixel
    assert list(fetch.plan("photometric/gaia_source", _sample_config(config, 2, [7], chunk_order=0))) == ["hpx2-7"]
    # what changes the requests changes the plan rule's params (so the plan is made again)
    assert services.request_params("photometric/gaia_source", cfg) != services.request_params(
        "photometric/gaia_source", _sample_config(config, 2, [5, 101], chunk_order=3, g=(12.0, 17.5))
    )
    # the tables hanging off Gaia are queried as the catalog's, into files and caches of their own
    ps1 = services.spec_for("photometric/panstarrs1_best_neighbour", cfg)
    assert ps1.kind == "id_upload" and ps1.upstream == services.SPECS["panstarrs1_best_neighbour"].upstream
    assert services.archive_file(cfg, "photometric/unwise") == services.archive_file(cfg, "unwise").parent / (
        "photometric/unwise.parquet"
    )
    assert services.chunk_dir(cfg, "photometric/unwise").parts[-3:] == ("photometric", "chunks", "unwise")
    assert fetch.cache_for(cfg).data_path("photometric/unwise", "b00000").parts[-3:] == (
        "photometric", "unwise", "b00000.parquet",
    )  # fmt: skip
    with pytest.raises(KeyError, match="unknown archive table 'photometric/galah_dr2'"):
        services.spec_for("photometric/galah_dr2", cfg)


def test_the_sample_s_pixels_are_checked_naming_the_key(config):
    from ddstars.configcheck import path_problems

    base = {"inference": {"input": "photometric"}, "backend": "remote"}
    assert any("photometric_sample.pixels: empty" in p for p in path_problems(base))
    bad = {**base, "inference": {"input": "photometric", "photometric_sample": {"healpix_order": 1, "pixels": [3, 48]}}}
    assert any("pixels: 48 not HEALPix pixels of order 1 (0 … 47)" in p for p in path_problems(bad))
    ok = {**base, "inference": {"input": "photometric", "photometric_sample": {"healpix_order": 1, "pixels": [3, 47]}}}
    assert not [p for p in path_problems(ok) if "photometric" in p]
    with pytest.raises(DataError, match="photometric/gaia_source: inference.photometric_sample.pixels: empty"):
        fetch.plan("photometric/gaia_source", config)


# --------------------------------------------------------------------- the Gaia DR3 era (archives.release: dr3)
DR3 = registry.release("dr3")


@pytest.fixture
def dr3(config):
    """The recorded-response config with ``archives.release: dr3``."""
    return {**config, "archives": {"release": "dr3"}}


def _posted_query(m: requests_mock.Mocker) -> str:
    """The ADQL of the first query request (sync POST or async job creation), decoded."""
    from urllib.parse import unquote_plus

    post = next(r for r in m.request_history if r.method == "POST" and r.url.endswith(("/sync", "/async")))
    body = post.body if isinstance(post.body, bytes) else str(post.body).encode()
    text = body.decode(errors="replace")
    return text if "SELECT " in text else unquote_plus(text)


def _posted_bodies(m: requests_mock.Mocker) -> list[bytes]:
    return [
        r.body if isinstance(r.body, bytes) else str(r.body).encode()
        for r in m.request_history
        if r.method == "POST" and r.url.endswith(("/sync", "/async"))
    ]


def _recorded(table: str) -> Table:
    ext = "fits" if services.ALL_SPECS[table].kind == "file" else "vot"
    return Table.read(DATA / f"{table}.{ext}", format="fits" if ext == "fits" else "votable")


def _votable_bytes(tbl: Table) -> bytes:
    """A TAP result document (QUERY_STATUS=OK) holding ``tbl``."""
    import io

    from astropy.io.votable import from_table
    from astropy.io.votable.tree import Info

    vot = from_table(tbl)
    vot.resources[0].type = "results"
    vot.resources[0].infos.append(Info(name="QUERY_STATUS", value="OK"))
    buf = io.BytesIO()
    vot.to_xml(buf)
    return buf.getvalue()


def test_dr3_specs_follow_the_registry_and_the_configured_release(dr3):
    """The release decides the upstream inputs of the tables the releases share (PS1, 2MASS PSC, unWISE), and the
    DR3 tables' services are the new ones of remote.services with the archives' default URLs."""
    dr2 = registry.release()
    for table in ("ps1_mean_object", "tmass_psc", "unwise"):
        assert services.spec_for(table, dr3).upstream == DR3.tables[table].upstream
        assert services.spec_for(table, {}).upstream == dr2.tables[table].upstream
        assert services.spec_for(table, dr3).upstream != services.spec_for(table, {}).upstream
        # a plan made under one release is made again under the other (the plan rule's params differ)
        assert services.request_params(table, dr3) != services.request_params(table, {"archives": {"release": "dr2"}})
    assert services.spec_for("tmass_psc", dr3).upstream == (
        (DR3.links()["tmass"], DR3.link_keys()["tmass"]),
    )  # the PSC designation of the 2MASS best neighbour's join
    defaults_ = services.remote_config({})["services"]
    assert defaults_["datacentral"]["url"] == "https://datacentral.org.au/vo/tap"
    assert defaults_["sdss_dr17"]["url"].endswith("/dr17/apogee/spectro/aspcap/dr17/synspec_rev1")
    assert {services.spec_for(t, dr3).service for t in ("galah_dr4", "apogee_dr17_allstar")} == {
        "datacentral",
        "sdss_dr17",
    }


def test_dr3_gaia_source_is_an_async_position_upload_around_the_dr3_spectra(dr3, sleeps, tmp_path):
    table = DR3.surveys["gaia"].table
    spec = services.spec_for(table, dr3)
    assert (spec.kind, spec.mode, spec.radius_arcsec) == ("position_upload", "async", 0.2)
    positions = {  # one position per spectroscopic table of DR3, under its own column names
        up: pd.DataFrame({archives.TABLES[up].ra: [10.0 + i * 1e-4], archives.TABLES[up].dec: [20.0]})
        for i, up in enumerate(DR3.tables[table].upstream_tables)
    }
    assert set(positions) == {DR3.surveys[s].table for s in DR3.spectroscopic()}
    inputs = fetch.inputs_for(table, positions, dr3)
    assert sorted(inputs["ra"]) == [10.0, 10.0001, 10.0002]
    with pytest.raises(
        DataError, match=r"inputs need archive table 'apogee_dr17_allstar'"
    ):  # DR2's spectra will not do
        fetch.inputs_for(table, {"lamost_dr5_ddpayne": positions["lamost_dr5_ddpayne"]}, dr3)
    (cid,) = fetch.chunk_ids(table, dr3, inputs)
    with requests_mock.Mocker() as m:
        _mock(m, table, _body(table))
        path = fetch.fetch_chunk(table, cid, dr3, inputs, client=_client(table, dr3, sleeps))
        adql = _posted_query(m)
        body = _posted_bodies(m)[0]
        assert m.request_history[0].url == f"{_url('gaia')}/async"
    radius = 0.2 / 3600
    assert (
        "FROM gaiadr3.gaia_source AS t JOIN TAP_UPLOAD.ids AS u ON 1 = CONTAINS(POINT('ICRS', t.ra, t.dec), "
        f"CIRCLE('ICRS', u.ra, u.dec, {radius!r}))" in adql
    )
    for col in ("ruwe", "phot_bp_rp_excess_factor", "nu_eff_used_in_astrometry", "pseudocolour", "ecl_lat"):
        assert f"t.{col}" in adql, col
    assert b"10.0002" in body  # the uploaded positions
    meta = json.loads(path.with_suffix(".json").read_text())
    assert (meta["service"], meta["remote_table"], meta["kind"], meta["mode"], meta["upload_rows"]) == (
        "gaia", "gaiadr3.gaia_source", "position_upload", "async", 3,
    )  # fmt: skip
    out = archives.read_table(fetch.assemble(table, [path], tmp_path / f"{table}.parquet", dr3), table)
    rec = _recorded(table)
    assert sorted(out["source_id"]) == sorted(np.asarray(rec["source_id"]).tolist())
    got = out.set_index("source_id").loc[np.asarray(rec["source_id"])]
    for col in ("ruwe", "astrometric_params_solved", "nu_eff_used_in_astrometry", "pseudocolour", "ecl_lat"):
        np.testing.assert_array_equal(got[col].to_numpy(float), np.asarray(rec[col], float), err_msg=col)


def test_dr3_2mass_best_neighbour_joins_the_psc_designation(dr3, sleeps, tmp_path):
    """gaiadr3.tmass_psc_xsc_best_neighbour has no PSC designation: the id upload joins gaiadr3.tmass_psc_xsc_join
    on the clean 2MASS id, and the joined column comes back under its archive name."""
    table = DR3.links()["tmass"]
    key = DR3.link_keys()["tmass"]
    spec = services.spec_for(table, dr3)
    assert spec.joined_columns == {key: "j"}
    adql = services.adql_id_upload(spec)
    assert adql.startswith("SELECT t.source_id, ")
    assert f"j.{key}" in adql and f"t.{key}" not in adql and "t.clean_tmass_psc_xsc_oid" in adql
    assert adql.endswith(
        "FROM gaiadr3.tmass_psc_xsc_best_neighbour AS t JOIN TAP_UPLOAD.ids AS u ON t.source_id = u.id "
        "JOIN gaiadr3.tmass_psc_xsc_join AS j ON j.clean_tmass_psc_xsc_oid = t.clean_tmass_psc_xsc_oid"
    )
    rec = _recorded(table)
    ids = pd.DataFrame({"id": np.asarray(rec["source_id"])[::-1]})
    (cid,) = fetch.chunk_ids(table, dr3, ids)
    with requests_mock.Mocker() as m:
        _mock(m, table, _body(table))
        path = fetch.fetch_chunk(table, cid, dr3, ids, client=_client(table, dr3, sleeps))
        assert _posted_query(m).count("JOIN gaiadr3.tmass_psc_xsc_join AS j") == 1
        assert str(int(rec["source_id"][0])).encode() in _posted_bodies(m)[0]  # the uploaded ids
    out = archives.read_table(fetch.assemble(table, [path], tmp_path / "link.parquet", dr3), table)
    assert key in out.columns and "j." + key not in out.columns
    want = dict(zip(np.asarray(rec["source_id"]).tolist(), [str(v) for v in rec[key]], strict=True))
    assert dict(zip(out["source_id"].tolist(), out[key].tolist(), strict=True)) == want


def test_dr3_2mass_join_duplicates_keep_the_same_row_whatever_the_order(dr3, sleeps, tmp_path):
    """A clean 2MASS id that the join maps to two PSC designations (suspected duplicates) gives its source two
    rows; the assembled table has one, the same whichever order the service sent them in."""
    table = DR3.links()["tmass"]
    key = DR3.link_keys()["tmass"]
    rec = _recorded(table)
    dup = rec[:1].copy()
    dup[key] = ["00000000+0000000"]  # sorts before any real designation of the first source
    outs = []
    for i, rows in enumerate(
        (
            Table(np.concatenate([rec.as_array(), dup.as_array()])),
            Table(np.concatenate([dup.as_array(), rec.as_array()])),
        )
    ):
        ids = pd.DataFrame({"id": np.asarray(rec["source_id"])})
        (cid,) = fetch.chunk_ids(table, dr3, ids)
        cfg = {**dr3, "remote": {**dr3["remote"], "cache_dir": str(tmp_path / f"cache{i}")}}
        with requests_mock.Mocker() as m:
            _mock(m, table, _votable_bytes(rows))
            path = fetch.fetch_chunk(table, cid, cfg, ids, client=_client(table, cfg, sleeps))
        assert len(pd.read_parquet(path)) == 4
        outs.append(archives.read_table(fetch.assemble(table, [path], tmp_path / f"o{i}.parquet", cfg), table))
    pd.testing.assert_frame_equal(outs[0], outs[1])
    assert len(outs[0]) == 3 and outs[0]["source_id"].is_unique
    first = outs[0].set_index("source_id").loc[int(rec["source_id"][0]), key]
    assert first == "00000000+0000000"


def _assembled(table: str, config, sleeps, tmp_path, inputs=None) -> Path:
    """``table``'s recorded response fetched and assembled as the fetch_<table> rule writes it."""
    (cid,) = fetch.chunk_ids(table, config, inputs)
    with requests_mock.Mocker() as m:
        _mock(m, table, _body(table))
        path = fetch.fetch_chunk(table, cid, config, inputs, client=_client(table, config, sleeps))
    return fetch.assemble(table, [path], tmp_path / f"{table}.parquet", config)


@pytest.mark.parametrize("survey", ["ps1", "tmass"])
def test_dr3_photometry_is_queried_for_the_ids_of_the_dr3_link_tables(survey, dr3, sleeps, tmp_path):
    """With archives.release dr3, the PS1 and 2MASS PSC plans take their ids from Gaia DR3's best neighbours (the
    2MASS ones: the designation joined from tmass_psc_xsc_join), through the plan rule's entry point."""
    from ddstars.remote.stage import run_chunk, run_plan

    link, key = DR3.links()[survey], DR3.link_keys()[survey]
    table = DR3.surveys[survey].table
    upstream = {link: _assembled(link, dr3, sleeps, tmp_path, _inputs(link))}
    linked = archives.read_table(upstream[link], link)[key]
    plan_dir = tmp_path / "plan"
    doc = run_plan(table, upstream, dr3, plan_dir)
    assert doc["input_rows"] == linked.nunique() == 3
    planned = pd.read_parquet(plan_dir / fetch.INPUTS_FILE)["id"]
    assert sorted(map(str, planned)) == sorted(map(str, linked))
    with pytest.raises(DataError, match=rf"{table}: inputs need archive table '{registry.release().links()[survey]}'"):
        run_plan(table, upstream, {**dr3, "archives": {"release": "dr2"}}, tmp_path / "plan_dr2")
    spec = services.spec_for(table, dr3)
    with requests_mock.Mocker() as m:
        _mock(m, table, _body(table))
        (cid,) = doc["chunks"]
        run_chunk(table, cid, dr3, plan_dir, tmp_path / "done" / f"{cid}.json")
        adql, body = _posted_query(m), _posted_bodies(m)[0]
    if spec.kind == "id_list":  # MAST PS1: the ids inline
        assert f"WHERE {spec.key} IN ({', '.join(str(int(v)) for v in sorted(linked))})" in adql
    else:  # IRSA 2MASS PSC: the designations uploaded
        assert "JOIN TAP_UPLOAD.ids AS u ON t.designation = u.id" in adql
        assert all(str(d).encode() in body for d in linked)
    assert json.loads((tmp_path / "done" / f"{cid}.json").read_text())["service"] == spec.service


def test_dr3_galah_is_fetched_from_data_central_in_ra_slices_and_resumes(dr3, sleeps, tmp_path):
    table = DR3.surveys["galah"].table
    dr3["remote"]["tables"][table] = {"n_chunks": 4}
    ids = fetch.chunk_ids(table, dr3)
    assert ids == ["r0000", "r0001", "r0002", "r0003"]
    chunks = fetch.plan(table, dr3)
    assert chunks["r0000"].adql.endswith("FROM galah_dr4.mainstartable WHERE ra >= 0.0 AND ra < 90.0")
    assert chunks["r0003"].adql.endswith("WHERE ra >= 270.0 AND ra <= 360.0")  # the last slice keeps 360
    for col in ("sobject_id", "gaiadr3_source_id", "flag_sp", "snr_px_ccd3", "e_fe_h"):
        assert col in chunks["r0000"].adql.split(" FROM ")[0], col
    cache = fetch.cache_for(dr3)
    with requests_mock.Mocker() as m:
        m.post(f"{_url('datacentral')}/sync", content=_body(table), headers={"Content-Type": "text/xml"})
        client = _client(table, dr3, sleeps)
        for cid in ids[:2]:  # a run stopped after 2 of 4 chunks
            fetch.fetch_chunk(table, cid, dr3, client=client)
        assert m.call_count == 2 and cache.missing(table, ids) == ids[2:]
        paths = fetch.fetch_missing(table, dr3, client=client)
        assert m.call_count == 4  # only the 2 missing chunks
        fetch.fetch_missing(table, dr3, client=client)
        assert m.call_count == 4  # a rerun with the cache fetches nothing
        assert all(r.url == f"{_url('datacentral')}/sync" for r in m.request_history)
    metas = [cache.meta(table, c) for c in ids]
    assert {(mt["service"], mt["remote_table"], mt["url"]) for mt in metas} == {
        ("datacentral", "galah_dr4.mainstartable", _url("datacentral"))
    }
    out = archives.read_table(fetch.assemble(table, paths, tmp_path / "galah.parquet", dr3), table)
    assert len(out) == 4 * 3  # the 3 recorded rows from each slice (range slices are disjoint: no deduplication)
    assert set(archives.TABLES[table].columns) <= set(out.columns)


def test_dr3_apogee_allstar_is_one_download_from_the_dr17_folder(dr3, sleeps, tmp_path):
    table = DR3.surveys["apogee"].table
    (chunk,) = fetch.plan(table, dr3).values()
    url = f"{_url('sdss_dr17')}/allStar-dr17-synspec_rev1.fits"
    assert chunk.id == "all" and chunk.url == url
    default = fetch.plan(table, {"archives": {"release": "dr3"}})["all"].url
    assert default == services.remote_config({})["services"]["sdss_dr17"]["url"] + "/allStar-dr17-synspec_rev1.fits"
    with requests_mock.Mocker() as m:
        m.get(url, content=_body(table))
        client = _client(table, dr3, sleeps)
        path = fetch.fetch_missing(table, dr3, client=client)[0]
        fetch.fetch_missing(table, dr3, client=client)  # a rerun with the cache fetches nothing
        assert [r.url for r in m.request_history] == [url]
    assert not list(path.parent.glob("*.download"))
    meta = json.loads(path.with_suffix(".json").read_text())
    assert (meta["service"], meta["url"], meta["kind"], meta["query"]) == ("sdss_dr17", url, "file", None)
    out = archives.read_table(fetch.assemble(table, [path], tmp_path / "apogee.parquet", dr3), table)
    rec = _recorded(table)
    assert sorted(out["APOGEE_ID"]) == sorted(str(v).strip() for v in rec["APOGEE_ID"])
    got = out.set_index("APOGEE_ID").loc[[str(v).strip() for v in rec["APOGEE_ID"]]]
    assert got["GAIAEDR3_SOURCE_ID"].tolist() == np.asarray(rec["GAIAEDR3_SOURCE_ID"]).tolist()
    assert got["EXTRATARG"].tolist() == np.asarray(rec["EXTRATARG"]).tolist()
    np.testing.assert_array_equal(np.stack(got["PARAM"].to_numpy()), np.asarray(rec["PARAM"]))


def test_dr3_link_chunks_are_planned_fetched_once_and_resumed(dr3, sleeps, tmp_path):
    """The workflow's jobs on a DR3 best-neighbour table in 2 chunks: each chunk fetched once, a rerun from the
    cache, the assembly."""
    table = DR3.links()["ps1"]
    dr3["remote"]["tables"][table] = {"chunk_size": 2}
    inputs = pd.DataFrame({"id": [3, 1, 2, 3]})
    plan_dir = tmp_path / "plan"
    doc = fetch.write_plan(table, dr3, inputs, plan_dir)
    assert list(doc["chunks"]) == ["b00000", "b00001"] and doc["rows"] == {"b00000": [0, 2], "b00001": [2, 3]}
    with requests_mock.Mocker() as m:
        _mock(m, table, _body(table))
        client = _client(table, dr3, sleeps)
        for c in doc["chunks"]:
            fetch.fetch_planned(table, c, dr3, plan_dir, client=client)
        for c in doc["chunks"]:  # rerun jobs: from the cache
            fetch.fetch_planned(table, c, dr3, plan_dir, client=client)
        assert len(_posted_bodies(m)) == 2
        assert "FROM gaiadr3.panstarrs1_best_neighbour AS t JOIN TAP_UPLOAD.ids" in _posted_query(m)
    out = fetch.assemble_planned(table, plan_dir, dr3, tmp_path / "out.parquet")
    assert set(archives.TABLES[table].columns) <= set(pd.read_parquet(out).columns)
