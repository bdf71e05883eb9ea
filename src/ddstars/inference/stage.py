"""The photometric-inference stage: stars without spectra (or the test split, which the model never saw) through
:func:`ddstars.inference.posterior`, partition by partition.

* **Input** (config ``inference.input``): ``test`` (the catalog's test split), ``catalog`` (all its stars) or
  the path of a Parquet file or folder of your own stars (:data:`INPUT_COLUMNS`; docs/inference.md).
* **Partitions**: the catalog's HEALPix partitioning (``healpix_<order>``). Snakemake job ``g`` of ``G`` takes
  the pixels p with p mod G = g and writes one Parquet file per pixel,
  ``<out>/healpix_<order>=<p>/part-0.parquet``, atomically (a temporary file renamed when complete), stamped with
  a key of everything it was computed from (model files, options, priors, input file). A job that was stopped
  leaves its finished partitions; the rerun reuses each one whose key matches and computes the rest.
* **Priors** per star: p(μ | l, b) from a Galactic density model (:mod:`ddstars.inference.priors`; the simulated
  sky's own Galaxy, or Jurić et al. 2008), p(E | μ, l, b) from the Bayestar map (else bounded by SFD), p(θ) from
  the training stars' density.

Each group writes a manifest (JSON): its partitions, whether each was computed or reused, rows, seconds, and
the stars per second of its computing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .. import registry
from ..bands import BAND_NAMES
from ..errors import ConfigError, DataError
from ..galactic import JURIC2008
from ..io import write_json
from ..logs import progress
from .engine import ENGINE_OPTIONS, PARAMS, Grid, Photometry, Priors, posterior
from .priors import distance_log_prior, dust_prior_tables

log = logging.getLogger(__name__)

#: Columns of a Parquet file of your own stars (``inference.input: <path>``; see the registry's definition).
INPUT_COLUMNS = registry.INFERENCE_INPUT_COLUMNS
#: Input columns copied to the output beside the posterior.
CARRIED = ("source_id", "ra", "dec", "l", "b", "mag_gaia_g", "mag_gaia_bp", "mag_gaia_rp", "parallax", "parallax_error")
KEY = b"ddstars.inference.key"


def engine_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The engine's options from config section ``inference`` (mu_range as a tuple)."""
    o = {k: cfg[k] for k in ENGINE_OPTIONS if k in cfg and k != "seed"}
    o["mu_range"] = tuple(o["mu_range"])
    return o


def grid_for(model, cfg: Mapping[str, Any]) -> Grid:
    """The θ grid of config section ``inference`` (grid_steps, theta_prior, theta_prior_smoothing)."""
    return Grid.from_model(
        model,
        steps=tuple(cfg["grid_steps"]),
        theta_prior=cfg["theta_prior"],
        prior_smoothing=tuple(cfg["theta_prior_smoothing"]),
    )


def galaxy_parameters(cfg: Mapping[str, Any], simulated_galaxy: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The Galactic density model of p(μ): None for ``distance_prior`` flat or volume."""
    if cfg["distance_prior"] != "galaxy":
        return None
    if cfg["galaxy"] == "juric2008" or (cfg["galaxy"] == "auto" and simulated_galaxy is None):
        return dict(JURIC2008)
    if simulated_galaxy is None:
        raise ConfigError("inference.galaxy: 'simulated' needs the simulated sky (backend simulated); use juric2008")
    return dict(simulated_galaxy)


def mu_grid(cfg: Mapping[str, Any]) -> np.ndarray:
    lo, hi = cfg["mu_range"]
    return np.linspace(lo, hi, int(round((hi - lo) / 0.05)) + 1)


def _input_partitions(source: str | Path, split: str | None, order: int, group: int, n_groups: int):
    """(pixel, reader, identity) of the group's pixels: reader() gives the pixel's stars as a DataFrame. ``split``
    (the catalog's test split, or None for all) applies to the catalog; input of your own is checked here."""
    col = f"healpix_{order}"
    path = Path(source)
    if not path.exists():
        raise DataError(f"inference input {path} does not exist")
    parts = sorted(path.glob(f"{col}=*")) if path.is_dir() else []
    if parts:  # the catalog's own partitions
        out = []
        for d in parts:
            pix = int(d.name.split("=", 1)[1])
            if pix % n_groups != group:
                continue
            files = sorted(d.glob("*.parquet"))
            ident = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]

            def reader(files=files, pix=pix):
                df = pq.ParquetDataset(files).read().to_pandas()
                df = df[df["split"] == split] if split else df
                return df.assign(**{col: pix}).reset_index(drop=True)

            out.append((pix, reader, ident))
        return out
    # a catalog without partitions, or stars of your own (one file or a folder of files): partitioned here
    try:
        df = ds.dataset(path, format="parquet").to_table().to_pandas()
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(f"inference input {path} cannot be read as Parquet: {err}") from err
    if split:
        df = df[df["split"] == split].reset_index(drop=True)
    else:
        check_input(df, path)
    import healpy as hp

    pix = hp.ang2pix(2**order, df["ra"].to_numpy(float), df["dec"].to_numpy(float), nest=True, lonlat=True)
    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    stamp = [(str(f.relative_to(path.parent)), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    out = []
    for p in np.unique(pix[pix % n_groups == group]):
        out.append((int(p), lambda p=p: df[pix == p].assign(**{col: p}).reset_index(drop=True), [*stamp, int(p)]))
    return out


def check_input(df: pd.DataFrame, path: str | Path) -> None:
    """Raise a :class:`DataError` naming the file, the column and the first rows of what cannot be used."""
    missing = [c for c in INPUT_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"inference input {path}: missing column(s) {', '.join(missing)} (see docs/inference.md)")

    def bad(mask, what, col):
        rows = np.flatnonzero(mask)
        if len(rows):
            ids = df["source_id"].to_numpy()[rows[:5]].tolist()
            raise DataError(
                f"inference input {path}, column {col!r}: {what} ({len(rows)} rows, first {rows[:5].tolist()}, "
                f"source_id {ids})"
            )

    if not pd.api.types.is_integer_dtype(df["source_id"]):
        raise DataError(f"inference input {path}, column 'source_id': type {df['source_id'].dtype}, expected int64")
    bad(df["source_id"].duplicated(keep=False).to_numpy(), "duplicate source_id", "source_id")
    for c in ("ra", "dec"):
        bad(~np.isfinite(df[c].to_numpy(float)), "null or NaN where a value is required", c)
    bad(np.abs(df["dec"].to_numpy(float)) > 90, "|dec| > 90", "dec")
    for b in BAND_NAMES:
        m, e = df[f"mag_{b}"].to_numpy(float), df[f"err_{b}"].to_numpy(float)
        bad(np.isfinite(m) & ~(e > 0), "an observed magnitude without a positive error", f"err_{b}")
    bad(~np.isfinite(df[[f"mag_{b}" for b in BAND_NAMES]].to_numpy(float)).any(axis=1), "no band observed", "mag_*")
    bad(df["parallax_error"].to_numpy(float) <= 0, "parallax_error <= 0", "parallax_error")


def _galactic(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if "l" in df.columns and "b" in df.columns:
        return df["l"].to_numpy(float), df["b"].to_numpy(float)
    from astropy.coordinates import SkyCoord

    c = SkyCoord(df["ra"].to_numpy(float), df["dec"].to_numpy(float), unit="deg").galactic
    return c.l.deg, c.b.deg


def priors_for(df: pd.DataFrame, cfg: Mapping[str, Any], galaxy, sfd_dir, bayestar_file) -> tuple[Priors, np.ndarray]:
    """The stars' prior tables on :func:`mu_grid` and the source of each star's reddening prior.

    p(E | μ): ``dust_prior.source`` ``map`` (Bayestar where it covers the star, else bounded by SFD) or
    ``catalog`` (the star's single catalog prior ebv_prior ± sigma_ebv_prior at every μ). p(μ): the Galactic
    density model (``distance_prior: galaxy``), flat, or ∝ d³ (``volume``)."""
    mu = mu_grid(cfg)
    n = len(df)
    l_deg, b_deg = _galactic(df)
    if cfg["dust_prior"]["source"] == "catalog":
        missing = [c for c in ("ebv_prior", "sigma_ebv_prior") if c not in df.columns]
        if missing:
            raise DataError(f"inference.dust_prior.source 'catalog': the input has no column(s) {', '.join(missing)}")
        ebv = np.broadcast_to(df["ebv_prior"].to_numpy(float)[:, None], (n, len(mu)))
        sigma = np.broadcast_to(df["sigma_ebv_prior"].to_numpy(float)[:, None], (n, len(mu)))
        source = df["r_source"].astype(str).to_numpy() if "r_source" in df.columns else np.full(n, "catalog")
    else:
        opts = {k: cfg["dust_prior"][k] for k in ("relative_sigma", "sigma_floor")}
        dust = dust_prior_tables(l_deg, b_deg, mu, sfd_dir, bayestar_file, opts)
        ebv, sigma, source = dust["ebv"], dust["sigma_ebv"], dust["source"]
    if galaxy is not None:
        ln_p = distance_log_prior(l_deg, b_deg, mu, galaxy)
    else:
        ln_p = np.zeros_like(mu) if cfg["distance_prior"] == "flat" else 0.6 * np.log(10.0) * mu
        ln_p = ln_p - (np.log(np.exp(ln_p - ln_p.max()).sum() * (mu[1] - mu[0])) + ln_p.max())
        ln_p = np.broadcast_to(ln_p, (n, len(mu)))
    return Priors(mu, ln_p, ebv, sigma), np.asarray(source, dtype=str)


def _model_digest(model_dir: str | Path) -> str:
    """The model's files and the code a partition is computed by (this module and what it imports)."""
    from ..codedeps import module_closure

    h = hashlib.sha256()
    for f in sorted(module_closure(__name__)):
        h.update(f.read_bytes())
    for f in sorted(Path(model_dir).glob("*")):
        if f.suffix in (".keras", ".json") and f.name != "provenance.json":
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


#: Config keys that change how the stage runs, not its results: a partition computed under other values is reused.
RUN_KEYS = ("enabled", "groups", "threads", "mem_mb", "runtime", "gpu", "baseline_stars")


def _partition_key(model_digest: str, cfg: Mapping[str, Any], galaxy, maps: tuple, ident: list) -> str:
    """What a partition's result depends on: the model, the options, the priors' maps and the input partition."""
    options = {k: v for k, v in cfg.items() if k not in RUN_KEYS}
    blob = json.dumps([model_digest, options, galaxy, _stamp(maps), ident], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _stamp(paths) -> list:
    """Name, size and modification time of the files at ``paths`` (a folder: the files in it)."""
    out = []
    for p in map(Path, paths):
        files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p] if p.is_file() else []
        out += [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return out


def _stored_key(path: Path) -> bytes | None:
    if not path.is_file():
        return None
    try:
        return (pq.read_schema(path).metadata or {}).get(KEY)
    except (pa.ArrowInvalid, OSError):
        return None


def infer_frame(grid: Grid, df: pd.DataFrame, priors: Priors, cfg: Mapping[str, Any], seed: int):
    """Posterior of the stars of ``df``: the carried input columns, the summaries and ``samples_stored`` joint
    samples per star as list columns ``samples_<param>``."""
    o = engine_options(cfg)
    ph = Photometry.from_frame(df, priors)
    table, samples = posterior(grid, ph, seed=seed, **o)
    out = pd.concat([df[[c for c in CARRIED if c in df.columns]].reset_index(drop=True), table], axis=1)
    k = min(int(cfg["samples_stored"]), int(cfg["n_samples"]))
    for p in PARAMS:
        out[f"samples_{p}"] = list(samples[p][:, :k])
    return out


def run_group(
    model_dir: str | Path,
    source: str | Path,
    out_dir: str | Path,
    manifest: str | Path,
    group: int,
    cfg: Mapping[str, Any],
    *,
    split: str | None,
    order: int,
    sfd_dir: str | Path,
    bayestar_file: str | Path,
    simulated_galaxy: Mapping[str, Any] | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Infer the group's partitions (rule infer_group); reuse each finished partition whose key matches."""
    from ..model import load_model

    t_start = time.perf_counter()
    n_groups = int(cfg["groups"])
    if not 0 <= group < n_groups:
        raise ConfigError(f"inference group {group} is not in 0..{n_groups - 1} (inference.groups)")
    galaxy = galaxy_parameters(cfg, simulated_galaxy)
    parts = _input_partitions(source, split, order, group, n_groups)
    out_dir = Path(out_dir)
    col = f"healpix_{order}"
    digest = _model_digest(model_dir)
    grid = None
    done: list[dict[str, Any]] = []
    computed_stars, computed_s = 0, 0.0
    keep = set()
    for i, (pix, reader, ident) in enumerate(parts):
        target = out_dir / f"{col}={pix}" / "part-0.parquet"
        keep.add(target.parent.name)
        key = _partition_key(digest, cfg, galaxy, (sfd_dir, bayestar_file), ident)
        if _stored_key(target) == key.encode():
            rows = pq.read_metadata(target).num_rows
            done.append({"pixel": pix, "rows": rows, "status": "reused", "path": str(target)})
            continue
        if grid is None:
            _threads(threads)
            model = load_model(model_dir, outside="ignore")
            grid = grid_for(model, cfg)
            log.info("θ grid: %d nodes inside the training domain", len(grid))
        t0 = time.perf_counter()
        rows = _infer_partition(grid, reader(), cfg, galaxy, sfd_dir, bayestar_file, target, key, pix)
        dt = time.perf_counter() - t0
        computed_stars += rows
        computed_s += dt
        done.append(
            {
                "pixel": pix,
                "rows": rows,
                "status": "computed",
                "seconds": round(dt, 3),
                "path": str(target) if rows else None,
            }
        )
        log.info("partition %s=%d: %d stars in %.1f s", col, pix, rows, dt)
        progress("infer_group", i + 1, len(parts), time.perf_counter() - t_start, "partitions")
    _remove_stale(out_dir, col, group, n_groups, keep)
    summary = {
        "group": group,
        "groups": n_groups,
        "partitions": done,
        "stars": int(sum(d["rows"] for d in done)),
        "computed_stars": computed_stars,
        "computed_seconds": round(computed_s, 2),
        "stars_per_second": round(computed_stars / computed_s, 1) if computed_s > 0 else None,
        "threads": threads,
        "grid_nodes": None if grid is None else len(grid),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "seconds": round(time.perf_counter() - t_start, 2),
    }
    write_json(summary, manifest)
    return summary


def _infer_partition(grid, df, cfg, galaxy, sfd_dir, bayestar_file, target: Path, key: str, pix: int) -> int:
    """One partition, in batches of ``batch_stars`` (bounded memory), written to a temporary file that is
    renamed into place when complete. A partition without stars writes nothing."""
    if not len(df):
        target.unlink(missing_ok=True)
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    writer = None
    batch = int(cfg["batch_stars"])
    try:
        for start in range(0, len(df), batch):
            part = df.iloc[start : start + batch].reset_index(drop=True)
            priors, source = priors_for(part, cfg, galaxy, sfd_dir, bayestar_file)
            out = infer_frame(grid, part, priors, cfg, seed=int(cfg["seed"]) + 7919 * pix + start)
            out.insert(len([c for c in CARRIED if c in out.columns]), "dust_prior_source", source)
            table = pa.Table.from_pandas(out, preserve_index=False)
            if writer is None:
                table = table.replace_schema_metadata({**(table.schema.metadata or {}), KEY: key.encode()})
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table.cast(writer.schema))
        writer.close()
        writer = None
        os.replace(tmp, target)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return len(df)


def _remove_stale(out_dir: Path, col: str, group: int, n_groups: int, keep: set[str]) -> None:
    """Partitions of this group that its input no longer has (and temporary files of stopped jobs)."""
    for d in out_dir.glob(f"{col}=*"):
        pix = int(d.name.split("=", 1)[1])
        if pix % n_groups != group:
            continue
        for f in d.glob(".*.tmp"):
            f.unlink(missing_ok=True)
        if d.name not in keep:
            for f in d.glob("*"):
                f.unlink()
            d.rmdir()


def _threads(n: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised in this process
        pass


def result_files(manifests: list[str | Path]) -> list[str]:
    """The partition files the groups' manifests list."""
    return [p["path"] for m in manifests for p in json.loads(Path(m).read_text())["partitions"] if p["path"]]


def read_results(manifests: list[str | Path], columns: list[str] | None = None) -> pd.DataFrame:
    """The stars of the groups' manifests, as one DataFrame."""
    files = result_files(manifests)
    if not files:
        return pd.DataFrame(columns=columns or [])
    return pq.ParquetDataset(files).read(columns=columns).to_pandas()
