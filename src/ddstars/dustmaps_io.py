"""Reading dust maps through the ``dustmaps`` package, for simulated and real maps alike.

* :func:`configure_dustmaps` points ``dustmaps`` at a project-local JSON config, so the user's
  ``~/.dustmapsrc`` is never read or written.
* :func:`query_sfd` and :func:`query_bayestar` take explicit file locations, check them (raising
  :class:`~ddstars.errors.DustMapMissingError`), load them once per path and modification time,
  and send the text that ``dustmaps`` prints while loading to this module's DEBUG log.

``dustmaps`` reads its config when ``dustmaps.config`` is first imported (``dustmaps.sfd`` and
``dustmaps.bayestar`` import it), so call :func:`configure_dustmaps` early. If nothing was
configured, the first query points ``DUSTMAPS_CONFIG_FNAME`` at ``os.devnull`` before importing
``dustmaps``, which again keeps ``~/.dustmapsrc`` out of use.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ddstars.errors import ConfigError, DataError, DustMapMissingError

log = logging.getLogger(__name__)

CONFIG_ENV = "DUSTMAPS_CONFIG_FNAME"
CONFIG_NAME = "dustmapsrc.json"
SFD_FILES = ("SFD_dust_4096_ngp.fits", "SFD_dust_4096_sgp.fits")
BAYESTAR_DATASETS = ("pixel_info", "samples", "best_fit")
BAYESTAR_MODES = (
    "random_sample",
    "random_sample_per_pix",
    "samples",
    "median",
    "mean",
    "best",
    "percentile",
)
_CONFIG_WARNINGS = (
    "Overriding default configuration file",
    "Configuration file not found",
)


@contextlib.contextmanager
def _quiet_config_warnings():
    with warnings.catch_warnings():
        for message in _CONFIG_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield


def configure_dustmaps(data_dir) -> Path:
    """Make ``dustmaps`` use ``<data_dir>/dustmapsrc.json`` (``{"data_dir": data_dir}``).

    Sets ``DUSTMAPS_CONFIG_FNAME`` for this process (and its children), then imports
    ``dustmaps.config`` with its ConfigWarning silenced. If ``dustmaps.config`` was already
    imported, its ``config`` object is re-pointed at the new file and reloaded. Safe to call
    repeatedly. Returns the config file path.
    """
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    fname = data_dir / CONFIG_NAME
    wanted = {"data_dir": str(data_dir)}
    current = None
    if fname.is_file():
        with contextlib.suppress(ValueError, OSError):
            current = json.loads(fname.read_text())
    if not isinstance(current, dict) or current.get("data_dir") != str(data_dir):
        options = dict(current) if isinstance(current, dict) else {}
        options.update(wanted)
        fd, tmp = tempfile.mkstemp(prefix=f".{CONFIG_NAME}.", suffix=".tmp", dir=data_dir)
        with os.fdopen(fd, "w") as f:
            json.dump(options, f, indent=2)
        os.replace(tmp, fname)
    os.environ[CONFIG_ENV] = str(fname)
    already = "dustmaps.config" in sys.modules
    with _quiet_config_warnings():
        import dustmaps.config as module  # reads the file named by the variable set above

        if already:
            module.config_fname = str(fname)
            module.config.fname = str(fname)
            module.config.load()
    log.debug("dustmaps configured with %s (data_dir %s)", fname, data_dir)
    return fname


def _ensure_config() -> None:
    """Keep ``~/.dustmapsrc`` out of use if :func:`configure_dustmaps` was not called."""
    if "dustmaps.config" not in sys.modules and not os.environ.get(CONFIG_ENV):
        os.environ[CONFIG_ENV] = os.devnull
        log.debug("dustmaps not configured; %s set to %s", CONFIG_ENV, os.devnull)


def _log_stdout(what: str, text: str) -> None:
    for line in text.splitlines():
        if line.strip():
            log.debug("%s: %s", what, line.rstrip())


def _mtimes(*paths: Path) -> tuple[int, ...]:
    return tuple(p.stat().st_mtime_ns for p in paths)


# ---------------------------------------------------------------------- SFD
def _sfd_paths(map_dir) -> tuple[Path, Path]:
    map_dir = Path(map_dir)
    paths = tuple(map_dir / name for name in SFD_FILES)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        where = "directory does not exist" if not map_dir.is_dir() else "missing " + ", ".join(missing)
        raise DustMapMissingError(
            f"SFD map not found in {map_dir} ({where}); expected the files "
            f"{' and '.join(SFD_FILES)} there (provision them, or write a simulated map with "
            "ddstars.simulate.dust.write_sfd_like)"
        )
    return paths  # type: ignore[return-value]


@functools.lru_cache(maxsize=8)
def _load_sfd(map_dir: str, mtimes: tuple[int, ...]):
    _ensure_config()
    buf = io.StringIO()
    with _quiet_config_warnings(), contextlib.redirect_stdout(buf):
        from dustmaps.sfd import SFDQuery

        try:
            query = SFDQuery(map_dir=map_dir)
        except Exception as err:  # astropy raises several types for a file that is not an SFD map
            raise DataError(
                f"SFD map in {map_dir} is not in the SFD layout (two ZEA FITS images with LAM_NSGP, "
                f"LAM_SCAL headers): {type(err).__name__}: {err}"
            ) from err
    _log_stdout(f"SFDQuery({map_dir})", buf.getvalue())
    log.debug("loaded SFD map from %s", map_dir)
    return query


def sfd_query_object(map_dir):
    """The cached ``dustmaps.sfd.SFDQuery`` for ``map_dir`` (reloaded if the files changed)."""
    paths = _sfd_paths(map_dir)
    return _load_sfd(str(Path(map_dir).resolve()), _mtimes(*paths))


def _galactic(l_deg, b_deg, d_kpc=None):
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    if d_kpc is None:
        l_deg, b_deg = np.broadcast_arrays(np.asarray(l_deg, float), np.asarray(b_deg, float))
        shape = l_deg.shape
        coords = SkyCoord(
            l=l_deg.ravel() * u.deg,
            b=b_deg.ravel() * u.deg,
            frame="galactic",
            copy=False,
        )
    else:
        l_deg, b_deg, d_kpc = np.broadcast_arrays(
            np.asarray(l_deg, float), np.asarray(b_deg, float), np.asarray(d_kpc, float)
        )
        shape = l_deg.shape
        coords = SkyCoord(
            l=l_deg.ravel() * u.deg,
            b=b_deg.ravel() * u.deg,
            distance=d_kpc.ravel() * u.kpc,
            frame="galactic",
            copy=False,
        )
    return coords, shape


def query_sfd(map_dir, l_deg, b_deg, order: int = 1) -> np.ndarray:
    """SFD E(B-V) from ``<map_dir>/SFD_dust_4096_{ngp,sgp}.fits`` at Galactic (l, b) in degrees.

    Arrays broadcast; the result has their shape (float64).
    """
    query = sfd_query_object(map_dir)
    coords, shape = _galactic(l_deg, b_deg)
    if coords.size == 0:
        return np.zeros(shape)
    return np.asarray(query.query(coords, order=order), dtype=float).reshape(shape)


# ---------------------------------------------------------------------- Bayestar
def _bayestar_path(map_fname) -> Path:
    path = Path(map_fname)
    if not path.is_file():
        raise DustMapMissingError(
            f"Bayestar map file {path} not found; expected an HDF5 file in the Bayestar19 "
            "layout (e.g. bayestar2019.h5 with /pixel_info, /samples, /best_fit), or a simulated "
            "map written by ddstars.simulate.dust.write_bayestar_like"
        )
    return path


@functools.lru_cache(maxsize=4)
def _load_bayestar(map_fname: str, mtime: tuple[int, ...], max_samples: int | None):
    import h5py

    try:
        with h5py.File(map_fname, "r") as f:
            missing = [k for k in BAYESTAR_DATASETS if k not in f]
            if not missing and "DM_bin_edges" not in f["pixel_info"].attrs:
                missing = ["pixel_info.attrs['DM_bin_edges']"]
    except OSError as err:
        raise DataError(f"Bayestar map {map_fname} is not a readable HDF5 file: {err}") from err
    if missing:
        raise DataError(f"Bayestar map {map_fname} lacks {', '.join(missing)}")
    _ensure_config()
    buf = io.StringIO()
    with _quiet_config_warnings(), contextlib.redirect_stdout(buf):
        from dustmaps.bayestar import BayestarQuery

        query = BayestarQuery(map_fname=map_fname, max_samples=max_samples)
    _log_stdout(f"BayestarQuery({map_fname})", buf.getvalue())
    log.debug("loaded Bayestar map %s", map_fname)
    return query


def bayestar_query_object(map_fname, max_samples: int | None = None):
    """The cached ``dustmaps.bayestar.BayestarQuery`` for ``map_fname`` (reloaded if changed)."""
    path = _bayestar_path(map_fname)
    return _load_bayestar(str(path.resolve()), _mtimes(path), max_samples)


def query_bayestar(
    map_fname,
    l_deg,
    b_deg,
    d_kpc=None,
    mode: str = "random_sample",
    rng_seed=None,
    pct=None,
    max_samples: int | None = None,
) -> np.ndarray:
    """Bayestar reddening at Galactic (l, b) [deg] and distance ``d_kpc`` [kpc].

    Output shape is the broadcast input shape, then:

    * with distances: ``mode="samples"`` adds a samples axis; ``"percentile"`` with a list ``pct``
      adds a percentile axis; the other modes add nothing;
    * without distances (``d_kpc=None``): a trailing axis over the DM bin edges, after the
      samples axis for ``mode="samples"``, i.e. (..., n_samples, n_dm).

    Coordinates outside the map's pixels (dec < -30 deg for Bayestar19) give NaN.
    ``random_sample`` and ``random_sample_per_pix`` draw from ``numpy.random.default_rng(rng_seed)``
    (not the global NumPy state that ``dustmaps`` would use), so results are reproducible.
    """
    if mode not in BAYESTAR_MODES:
        raise ConfigError(f"mode {mode!r} is not one of {', '.join(BAYESTAR_MODES)}")
    query = bayestar_query_object(map_fname, max_samples)
    coords, shape = _galactic(l_deg, b_deg, d_kpc)
    if mode in ("random_sample", "random_sample_per_pix"):
        samples = query.query(coords, mode="samples")  # (n, n_samples[, n_dm])
        n, n_samp = samples.shape[:2]
        rng = np.random.default_rng(rng_seed)
        if mode == "random_sample":
            pick = rng.integers(0, n_samp, n)
        else:
            pix = query._find_data_idx(coords.l.deg, coords.b.deg)
            pick = rng.integers(0, n_samp, query._n_pix + 1)[pix]
        ret = samples[np.arange(n), pick]
    elif mode == "percentile":
        ret = query.query(coords, mode=mode, pct=pct)
    else:
        ret = query.query(coords, mode=mode)
    ret = np.asarray(ret, dtype=float)
    return ret.reshape(shape + ret.shape[1:])
