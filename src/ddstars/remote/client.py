"""TAP (pyvo) and plain-HTTP access with retries, back-off, a cross-process concurrency limit and masking.

Policy (one place, shared by every service):

* timeouts, connection errors, HTTP 5xx and 429 are retried ``retries.max`` times with jittered exponential
  back-off: attempt k waits ``uniform(0.5, 1) * min(max_s, base_s * 2**k)`` seconds; each retry is logged
  (WARNING) with the failure, the retry and attempt numbers and the wait;
* HTTP 4xx, a TAP query error (status ERROR, job phase ERROR/ABORTED) and a malformed response raise
  :class:`~ddstars.errors.DataError` at once, naming the service, the URL and the query;
* a result with ``QUERY_STATUS=OVERFLOW`` raises :class:`ChunkOverflowError`: the chunk is too big for the
  service's row cap, so it must be made smaller — it is never returned (and so never cached);
* at most ``max_concurrent`` requests per service run at a time, across processes (Snakemake jobs): each
  request holds an ``fcntl`` lock on one of N slot files ``<lock_dir>/<service>.<i>.lock``;
* credentials (from the environment or the file named by ``remote.credentials_file``) go into the HTTP session
  only; every error message is passed through :meth:`TapClient.mask` before it is raised.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random as _random
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.parsers.expat import ExpatError

import numpy as np
import pyarrow as pa
import requests
import yaml
from astropy.table import Table
from pyvo.dal import TAPService
from pyvo.dal.exceptions import DALFormatError, DALOverflowWarning, DALQueryError, DALServiceError
from pyvo.dal.tap import AsyncTAPJob

from ..errors import ConfigError, DataError
from ..io import atomic_path
from .services import strip_userinfo

log = logging.getLogger(__name__)


class ChunkOverflowError(DataError):
    """A service truncated a chunk's result at its row limit: the chunk must be made smaller."""


class RetryableError(Exception):
    """Internal: a transient failure (timeout, connection error, 5xx, 429)."""


@dataclass(frozen=True)
class RetryPolicy:
    max: int = 5
    base_s: float = 2.0
    max_s: float = 120.0

    def delay(self, attempt: int, rng: _random.Random | Any) -> float:
        return rng.uniform(0.5, 1.0) * min(self.max_s, self.base_s * 2.0**attempt)


# ------------------------------------------------------------------------------------------- credentials
def load_credentials(
    service: str, credentials_file: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Credentials of ``service``: ``{"user", "password"}`` and/or ``{"token"}``, or ``{}`` (anonymous).

    The environment (``DDSTARS_<SERVICE>_USER``, ``_PASSWORD``, ``_TOKEN``) wins over the file, a YAML/JSON
    mapping ``service: {user: ..., password: ..., token: ...}``.
    """
    environ = os.environ if environ is None else environ
    creds: dict[str, str] = {}
    if credentials_file:
        path = Path(credentials_file)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            what = type(err).__name__
            raise ConfigError(f"config key 'remote.credentials_file': cannot read {path} ({what})") from None
        entry = data.get(service) or {}
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{path}: entry {service!r} must be a mapping of user/password/token")
        creds.update({k: str(entry[k]) for k in ("user", "password", "token") if entry.get(k) is not None})
    prefix = f"DDSTARS_{service.upper()}_"
    for k in ("user", "password", "token"):
        if environ.get(prefix + k.upper()):
            creds[k] = environ[prefix + k.upper()]
    return creds


# ----------------------------------------------------------------------------------------- concurrency
class ServiceSlots:
    """At most ``n`` holders at a time per service, across processes: ``fcntl`` locks on N slot files."""

    def __init__(
        self,
        lock_dir: str | Path,
        service: str,
        n: int,
        poll_s: float = 1.0,
        timeout_s: float = 24 * 3600.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if n < 1:
            raise ConfigError(f"config key 'remote.services.{service}.max_concurrent' must be >= 1, got {n}")
        self.dir = Path(lock_dir)
        self.service, self.n, self.poll_s, self.timeout_s, self.sleep = service, n, poll_s, timeout_s, sleep

    @contextmanager
    def slot(self) -> Iterator[int]:
        self.dir.mkdir(parents=True, exist_ok=True)
        waited = 0.0
        while True:
            for i in range(self.n):
                f = open(self.dir / f"{self.service}.{i}.lock", "a+")  # noqa: SIM115 (closed below)
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    f.close()
                    continue
                try:
                    yield i
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
                    f.close()
                return
            if waited >= self.timeout_s:
                raise DataError(
                    f"{self.service}: no free request slot of {self.n} in {self.dir} after {waited:.0f} s "
                    "(raise remote.services.<service>.max_concurrent or remove stale lock holders)"
                )
            self.sleep(self.poll_s)
            waited += self.poll_s


# ------------------------------------------------------------------------------------------------ HTTP
class _Session(requests.Session):
    """A requests session with a default timeout (pyvo passes none on most calls).

    pyvo reads most answers from ``stream=True`` responses and drops them once its parser is done, which may be
    before the end of the body: such a connection is never returned to the pool, and its socket would be left
    for the garbage collector. The session keeps those responses until :meth:`release` closes them.
    """

    def __init__(self, timeout: float):
        super().__init__()
        self.default_timeout = timeout
        self._streamed: list[requests.Response] = []

    def request(self, method, url, **kwargs):  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        resp = super().request(method, url, **kwargs)
        if kwargs.get("stream"):
            self._streamed.append(resp)
        return resp

    def release(self) -> None:
        """Close every streamed response still open (its connection goes back or is closed)."""
        streamed, self._streamed = self._streamed, []
        for resp in streamed:
            resp.close()

    def close(self) -> None:
        self.release()
        super().close()


def _http_code(err: BaseException) -> int | None:
    code = getattr(err, "code", None)
    if code:
        return int(code)
    resp = getattr(err, "response", None)
    if resp is not None and getattr(resp, "status_code", None):
        return int(resp.status_code)
    cause = getattr(err, "cause", None)
    return _http_code(cause) if cause is not None and cause is not err else None


def _transient(err: BaseException) -> bool:
    seen = err
    for _ in range(4):
        if isinstance(seen, requests.Timeout | requests.ConnectionError | TimeoutError):
            return True
        seen = getattr(seen, "cause", None) or seen.__cause__ or seen.__context__
        if seen is None:
            break
    code = _http_code(err)
    return code is not None and (code >= 500 or code == 429)


def to_arrow(tbl: Table) -> pa.Table:
    """An astropy table as an Arrow table: masked values as nulls, bytes decoded, array cells as lists."""
    arrays, names = [], []
    for name in tbl.colnames:
        col = tbl[name]
        mask = np.asarray(getattr(col, "mask", np.zeros(len(col), bool)))
        data = np.asarray(col)
        if data.dtype.byteorder not in "=|":  # FITS is big-endian; Arrow wants native order
            data = data.astype(data.dtype.newbyteorder("="))
        if data.ndim > 1:
            cells = [None if np.all(m) else np.ravel(v).tolist() for v, m in zip(data, mask, strict=True)]
            # keep the element type (allStar's float32 PARAM stays list<float>, as the simulated backend has it)
            item = pa.from_numpy_dtype(data.dtype) if data.dtype.kind in "biuf" else None
            arrays.append(pa.array(cells, type=None if item is None else pa.list_(item)))
        else:
            if mask.ndim > 1:
                mask = mask.reshape(len(mask), -1).all(axis=1)
            if data.dtype.kind == "S":
                data = np.char.decode(data, "utf-8")
            if data.dtype.kind == "O":
                values = [v.decode() if isinstance(v, bytes) else v for v in data]
                arrays.append(pa.array([None if m else v for v, m in zip(values, mask, strict=True)]))
            elif data.dtype.kind == "U":
                arrays.append(pa.array(data.astype(object), mask=mask, type=pa.string()))
            else:
                arrays.append(pa.array(data, mask=mask if mask.any() else None))
        names.append(name)
    return pa.table(arrays, names=names)


class TapClient:
    """One service: TAP queries (sync or async, with uploads) and file downloads under the retry policy.

    ``sleep`` and ``rng`` are injectable (tests); ``lock_dir`` holds the concurrency slot files.
    """

    def __init__(
        self,
        url: str,
        service: str,
        retries: RetryPolicy | Mapping[str, Any] | None = None,
        timeout: float = 600.0,
        max_concurrent: int = 2,
        credentials: Mapping[str, str] | None = None,
        lock_dir: str | Path | None = None,
        poll_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: Any = None,
    ):
        self.url = url.rstrip("/")
        self.public_url = strip_userinfo(self.url)
        self.service = service
        self.retries = retries if isinstance(retries, RetryPolicy) else RetryPolicy(**dict(retries or {}))
        self.timeout = timeout
        self.poll_s = poll_s
        self.sleep = sleep
        self.rng = rng if rng is not None else _random.Random()
        self._secrets = [v for v in (credentials or {}).values() if v]
        self.session = _Session(timeout)
        creds = dict(credentials or {})
        if creds.get("token"):  # a token wins over user/password
            self.session.headers["Authorization"] = f"Bearer {creds['token']}"
        elif creds.get("user") and creds.get("password"):
            self.session.auth = (creds["user"], creds["password"])
        self.slots = ServiceSlots(lock_dir or Path(".ddstars-locks"), service, max_concurrent, poll_s, sleep=sleep)
        self.attempts = 0  # HTTP request sequences started (for logs and tests)

    def close(self) -> None:
        """Close the HTTP session and every connection it holds."""
        self.session.close()

    def __enter__(self) -> TapClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------------- helpers
    def mask(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    def _fail(self, what: str, err: BaseException | str, adql: str | None, cls: type[DataError] = DataError):
        detail = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
        msg = f"{self.service} ({self.public_url}): {what}: {detail}"
        if adql:
            msg += f"\n  query: {adql}"
        return cls(self.mask(msg))

    def _with_retries(self, fn: Callable[[], Any], what: str, adql: str | None = None) -> Any:
        last: BaseException | None = None
        total = self.retries.max + 1
        for attempt in range(total):
            if attempt:
                wait = self.retries.delay(attempt - 1, self.rng)
                detail = self.mask(f"{type(last).__name__}: {last}")[:300]
                log.warning(
                    "%s (%s): %s failed (%s); retry %d of %d (attempt %d of %d) in %.1f s",
                    self.service, self.public_url, what, detail, attempt, self.retries.max, attempt + 1, total, wait,
                )  # fmt: skip
                self.sleep(wait)
            self.attempts += 1
            try:
                with self.slots.slot():
                    try:
                        return fn()
                    finally:
                        self.session.release()
            except (DataError, ConfigError):  # a ValueError, but not a malformed response
                raise
            except (RetryableError, TimeoutError) as err:
                last = err
            except (DALQueryError, DALServiceError, DALFormatError, requests.RequestException) as err:
                # pyvo wraps a read timeout while parsing as DALFormatError: classify by the cause first
                if _transient(err):
                    last = err
                elif isinstance(err, DALQueryError):
                    raise self._fail(f"{what} rejected by the service", err, adql) from None
                elif isinstance(err, DALFormatError):
                    raise self._fail(f"{what}: malformed response", err, adql) from None
                else:
                    code = _http_code(err)
                    raise self._fail(f"{what} failed (HTTP {code}, not retried)", err, adql) from None
            except (ExpatError, ValueError, KeyError, IndexError) as err:
                raise self._fail(f"{what}: malformed response", err, adql) from None
        raise self._fail(f"{what} still failing after {self.retries.max + 1} attempts", last, adql) from None

    def _result_table(self, result: Any, caught: list, adql: str) -> Table:
        overflow = any(issubclass(w.category, DALOverflowWarning) for w in caught)
        if overflow or str(getattr(result, "query_status", "OK")).upper() == "OVERFLOW":
            raise self._fail(
                f"result truncated at {len(result)} rows (QUERY_STATUS=OVERFLOW): the chunk is too big, "
                "make it smaller (remote.tables.<table>.chunk_size / healpix_order / n_chunks)",
                "overflow",
                adql,
                ChunkOverflowError,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return result.to_table()

    # ------------------------------------------------------------------------------------------ TAP
    def query(self, adql: str, uploads: Mapping[str, Table] | None = None, mode: str = "sync") -> Table:
        """Run ``adql`` (``uploads``: name -> astropy Table, as ``TAP_UPLOAD.<name>``); the result as a Table."""
        run = self._run_async if mode == "async" else self._run_sync
        return self._with_retries(lambda: run(adql, uploads), f"{mode} TAP query", adql)

    def _run_sync(self, adql: str, uploads: Mapping[str, Table] | None) -> Table:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            service = TAPService(self.url, session=self.session)
            result = service.run_sync(adql, uploads=dict(uploads) if uploads else None)
        return self._result_table(result, caught, adql)

    def _run_async(self, adql: str, uploads: Mapping[str, Table] | None) -> Table:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            job = AsyncTAPJob.create(self.url, adql, uploads=dict(uploads) if uploads else None, session=self.session)
            try:
                job.run()
                waited = 0.0
                while (phase := job.phase) not in ("COMPLETED", "ERROR", "ABORTED"):
                    if waited >= self.timeout:
                        raise RetryableError(f"async job {job.url} still {phase} after {waited:.0f} s")
                    self.sleep(self.poll_s)
                    waited += self.poll_s
                job.raise_if_error()
                result = job.fetch_result()
            finally:
                try:
                    job.delete()
                except (DALServiceError, requests.RequestException):
                    pass
        return self._result_table(result, caught, adql)

    # ----------------------------------------------------------------------------------------- files
    def download(self, url: str, dest: str | Path) -> Path:
        """Stream ``url`` to ``dest`` atomically, under the retry policy."""

        def get() -> Path:
            with self.session.get(url, stream=True) as resp:
                resp.raise_for_status()
                with atomic_path(dest) as tmp, open(tmp, "wb") as f:
                    for block in resp.iter_content(1 << 20):
                        f.write(block)
            return Path(dest)

        return self._with_retries(get, f"download of {strip_userinfo(url)}")
