"""The simulated sky: stars with known truth, written as the seven archives' tables, chunk by chunk.

Entry point: :func:`generate`. Memory is bounded by ``simulate.chunk_size``; every chunk has its own
random stream derived from ``simulate.seed``, so the output is byte-identical for the same config.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import registry
from ..bands import BAND_NAMES, band_index
from ..io import ParquetChunkWriter, sha256, write_json
from ..logs import progress
from ..synphot import BCTable, Photometer
from . import surveys
from .dust import DustModel
from .galaxy import COMPONENTS, OVERLAP_PAIRS, SightlineGrid, build_sightline_grid, draw_pool, in_label_window
from .isochrones import MISTGrid
from .rv import RVField, RVPhotometry

log = logging.getLogger(__name__)

SURVEYS: tuple[str, ...] = registry.SPECTROSCOPIC  # the surveys drawn, in the order of the random draws
# Archive tables written by :func:`generate`: every table of the registry, in its order.
TABLES: tuple[str, ...] = tuple(registry.TABLES)
G, H = band_index("gaia_g"), band_index("tmass_h")


@dataclass
class Models:
    """The physical ingredients, built once per run."""

    grid: MISTGrid
    bc: BCTable  # F99 at the mean R_V
    dust: DustModel
    rv_field: RVField = field(default_factory=RVField)
    rv: RVPhotometry | None = None  # the tables over R_V when simulate.dust.rv.scatter > 0

    @classmethod
    def build(cls, cfg: dict[str, Any]) -> Models:
        t0 = time.perf_counter()
        grid = MISTGrid.load()
        rv_field, rv = cls.build_rv(cfg)
        bc = BCTable.build(Photometer(rv=rv_field.mean, norm=cfg["photometry"]["extinction_norm"]))
        log.info("isochrone grid and photometry tables built in %.1f s", time.perf_counter() - t0)
        return cls(grid, bc, dust_model(cfg), rv_field, rv)

    @staticmethod
    def build_rv(cfg: dict[str, Any]) -> tuple[RVField, RVPhotometry | None]:
        """The R_V field of ``simulate.dust.rv`` and, when it varies, the photometry tables over R_V."""
        field = RVField.from_config(cfg)
        return field, (RVPhotometry(field, cfg["photometry"]["extinction_norm"]) if field.varies else None)

    def reddened(self, teff, feh, log_l, ebv, lon, lat) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(magnitudes at ``ebv``, reddening vectors, R_V or None): through F99 at the mean R_V, or at each
        star's R_V of the field at (``lon``, ``lat``) when it varies."""
        if self.rv is None:
            return self.bc.absolute_magnitudes(teff, feh, log_l, ebv), self.bc.reddening_vector(teff, feh), None
        rv = self.rv_field.at(lon, lat)
        return self.rv.absolute_magnitudes(teff, feh, log_l, ebv, rv), self.rv.reddening_vector(teff, feh, rv), rv


def dust_model(cfg: dict[str, Any]) -> DustModel:
    """The 3D dust model of ``simulate.dust`` (structure drawn from ``simulate.seed``)."""
    d, gal = cfg["dust"], cfg["galaxy"]
    return DustModel(
        seed=cfg["seed"],
        ebv_per_kpc=d["ebv_per_kpc"],
        scale_length_kpc=d["scale_length_kpc"],
        scale_height_kpc=d["scale_height_kpc"],
        r_sun_kpc=gal["r_sun_kpc"],
        z_sun_kpc=gal["z_sun_kpc"],
        clump_amplitude=d["clump_amplitude"],
        n_modes=d["n_modes"],
        min_wavelength_kpc=d["wavelength_range_kpc"][0],
        max_wavelength_kpc=d["wavelength_range_kpc"][1],
    )


def eligibility(truth: dict[str, np.ndarray], cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """Which stars lie in each survey's footprint and target-magnitude window."""
    out = {}
    for s in SURVEYS:
        sc = cfg["surveys"][s]
        mag = truth[f"true_mag_{sc['mag_band']}"]
        d0, d1 = sc["dec_range_deg"]
        m0, m1 = sc["mag_range"]
        out[s] = (truth["dec"] >= d0) & (truth["dec"] <= d1) & (mag >= m0) & (mag <= m1) & (sc["weight"] > 0)
    return out


def assign_surveys(truth: dict[str, np.ndarray], cfg: dict[str, Any], rng: np.random.Generator) -> None:
    """Give each star a primary survey (∝ weight among eligible ones) and overlaps with the others."""
    elig = eligibility(truth, cfg)
    w = np.stack([elig[s] * cfg["surveys"][s]["weight"] for s in SURVEYS], axis=1)
    cum = np.cumsum(w, axis=1)
    u = rng.random(len(w)) * cum[:, -1]
    primary = (u[:, None] >= cum).sum(axis=1)
    observed = {s: primary == i for i, s in enumerate(SURVEYS)}
    ov = cfg["surveys"]["overlap"]
    for a, b in OVERLAP_PAIRS:
        p = ov[f"{a}_{b}"]
        add_b = observed[a] & elig[b] & (rng.random(len(w)) < p)
        add_a = observed[b] & elig[a] & (rng.random(len(w)) < p)
        observed[b] = observed[b] | add_b
        observed[a] = observed[a] | add_a
    for s in SURVEYS:
        truth[f"in_{s}"] = observed[s]


def draw_stars(
    n: int,
    cfg: dict[str, Any],
    models: Models,
    sight: SightlineGrid,
    pools: dict,
    rng: np.random.Generator,
    g_range: tuple[float, float] | None = None,
    spectroscopic: bool = True,
) -> dict[str, np.ndarray]:
    """Draw ``n`` stars with their true parameters and photometry, true apparent G inside ``g_range``.

    ``g_range``: the G window (default ``simulate.selection.gaia_g_range``, the spectroscopic parent sample's);
    ``sight`` must have been built for the same window. ``spectroscopic``: keep only stars eligible for at
    least one survey (footprint and target window); False keeps every star of the window (the photometric
    sample).
    """
    pop = cfg["population"]
    g_range = tuple(cfg["selection"]["gaia_g_range"] if g_range is None else g_range)
    parts: list[dict[str, np.ndarray]] = []
    have = 0
    for _ in range(50):
        need = n - have
        if need <= 0:
            break
        m = int(need * 1.3) + 200
        pix, comp, d, lon, lat = sight.sample_cells(m, rng)
        lo, hi = sight.m_g_window(pix, d, g_range)
        eep = np.empty(m)
        log_age = np.empty(m)
        feh = np.empty(m)
        for c, name in enumerate(COMPONENTS):
            sel_c = comp == c
            k = pools[name].sample(lo[sel_c], hi[sel_c], rng)
            eep[sel_c], log_age[sel_c], feh[sel_c] = pools[name].eep[k], pools[name].log_age[k], pools[name].feh[k]
        # Smoothed bootstrap: jitter the resampled pool point so no two stars share parameters.
        j_eep = eep + rng.uniform(-0.5, 0.5, m)
        j_age = log_age + rng.normal(0, 0.01, m)
        j_feh = np.clip(feh + rng.normal(0, 0.02, m), *pop["feh_range"])
        iso = models.grid.interpolate(j_eep, j_age, j_feh).as_dict()
        ok = in_label_window(iso, pop)
        if (~ok).any():
            base = models.grid.interpolate(eep[~ok], log_age[~ok], feh[~ok])
            for key in iso:
                iso[key] = np.asarray(iso[key]).copy()
                iso[key][~ok] = np.asarray(base[key])
            j_eep[~ok], j_age[~ok], j_feh[~ok] = eep[~ok], log_age[~ok], feh[~ok]
        ebv = np.asarray(models.dust.ebv(lon, lat, d), dtype=float)
        # Beyond the photometry table (E > 5, A_G > 10 mag) no star reaches the G window; drop them.
        too_red = ebv > models.bc.ebv_grid[-1]
        ebv = np.minimum(ebv, models.bc.ebv_grid[-1])
        teff, log_l = iso["teff"], iso["log_l"]
        abs_mag = models.bc.absolute_magnitudes(teff, j_feh, log_l, np.zeros(m))
        red_mag, r_vec, rv = models.reddened(teff, j_feh, log_l, ebv, lon, lat)
        dm = 5 * np.log10(d * 100.0)
        app = red_mag + dm[:, None]
        t = {
            "component": comp.astype(np.int8),
            "l": lon,
            "b": lat,
            "dist_kpc": d,
            "dm": dm,
            "true_parallax_mas": 1.0 / d,
            "eep": j_eep,
            "log_age": j_age,
            "initial_mass": iso["initial_mass"],
            "true_teff": teff,
            "true_logg": iso["logg"],
            "true_feh": j_feh,
            "log_l": log_l,
            "phase": iso["phase"],
            "true_ebv": ebv,
        }
        if rv is not None:
            t["true_rv"] = rv
        for b, name in enumerate(BAND_NAMES):
            t[f"true_abs_{name}"] = abs_mag[:, b]
            t[f"true_ext_{name}"] = red_mag[:, b] - abs_mag[:, b]
            t[f"true_r_{name}"] = r_vec[:, b]
            t[f"true_mag_{name}"] = app[:, b]
        _equatorial(t)
        keep = (app[:, G] >= g_range[0]) & (app[:, G] <= g_range[1])
        if spectroscopic:
            keep &= np.any(list(eligibility(t, cfg).values()), axis=0)
        keep &= np.isfinite(app).all(axis=1) & ~too_red
        idx = np.flatnonzero(keep)[:need]
        parts.append({k: v[idx] for k, v in t.items()})
        have += len(idx)
    else:
        raise RuntimeError("simulate: could not draw enough stars inside the selection window")
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if len(out["l"]) < n:
        raise RuntimeError(f"simulate: drew only {len(out['l'])} of {n} stars")
    return out


def _equatorial(t: dict[str, np.ndarray]) -> None:
    from astropy.coordinates import SkyCoord

    c = SkyCoord(t["l"], t["b"], unit="deg", frame="galactic").icrs
    t["ra"], t["dec"] = c.ra.deg, c.dec.deg


def chunk_sizes(n: int, chunk: int) -> list[int]:
    """Split ``n`` stars into chunks of at most ``chunk``."""
    k = max(1, -(-n // chunk))
    base, extra = divmod(n, k)
    return [base + (1 if i < extra else 0) for i in range(k)]


def r_g_minimum(models: Models, cfg: dict[str, Any]) -> float:
    """Smallest R_G over the label window and the R_V of the sky (for a conservative parent-sample window)."""
    t0, t1 = cfg["population"]["teff_range_k"]
    f0, f1 = cfg["population"]["feh_range"]
    tt, ff = np.meshgrid(np.linspace(t0, t1, 40), np.linspace(f0, f1, 7))
    tables = [models.bc] if models.rv is None else [models.bc, *models.rv.tables]
    return float(min(bc.reddening_vector(tt.ravel(), ff.ravel())[:, G].min() for bc in tables))


def generate(cfg: dict[str, Any], paths: dict[str, str | Path], models: Models | None = None) -> dict[str, Any]:
    """Generate the simulated sky of config section ``simulate`` (``cfg``).

    Parameters
    ----------
    cfg : dict
        The validated ``simulate`` section of the workflow config.
    paths : dict
        Output paths: one per name in :data:`TABLES`, plus ``truth`` and ``manifest``.
    models : Models, optional
        Prebuilt isochrone/photometry/dust models (tests reuse them).

    Returns
    -------
    dict
        The manifest written to ``paths["manifest"]``: row counts, checksums and timings.
    """
    sample = Sample(
        n_stars=cfg["n_stars"],
        g_range=tuple(cfg["selection"]["gaia_g_range"]),
        spectroscopic=True,
        tables=TABLES,
        setup_seed=np.random.SeedSequence(cfg["seed"]).spawn(1)[0],
        chunk_seed=np.random.SeedSequence([cfg["seed"], 1]),
        serial=dict.fromkeys(("star", *registry.SURVEYS), 0),
    )
    return simulate_sample(cfg, paths, sample, models, "simulate_sky")


@dataclass
class Sample:
    """What one simulated sample is: its stars, G window, tables written, random streams and first serials.

    ``spectroscopic``: stars must be eligible for a survey and are assigned to surveys (:func:`make_tables`);
    False: every star of the G window, none observed by a spectroscopic survey. ``setup_seed`` draws the first
    chunk's isochrone pools; ``chunk_seed`` is spawned into one stream per chunk. ``serial``: the first serial
    number of each identifier counter (``star`` and the keys :func:`make_tables` advances).
    """

    n_stars: int
    g_range: tuple[float, float]
    spectroscopic: bool
    tables: tuple[str, ...]
    setup_seed: np.random.SeedSequence
    chunk_seed: np.random.SeedSequence
    serial: dict[str, int]


def simulate_sample(
    cfg: dict[str, Any],
    paths: dict[str, str | Path],
    sample: Sample,
    models: Models | None = None,
    stage: str = "simulate_sky",
    describe: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Draw ``sample`` chunk by chunk and write its archive tables, truth and manifest (see :func:`generate`);
    ``describe``: entries put first in the manifest (what the sample is)."""
    missing = [k for k in (*sample.tables, "truth", "manifest") if k not in paths]
    if missing:
        raise KeyError(f"{stage}: output paths missing for {', '.join(missing)}")
    t_start = time.perf_counter()
    models = models or Models.build(cfg)
    setup_rng = np.random.default_rng(sample.setup_seed)
    pool_n = cfg["population"]["pool_size"]
    pools = {
        c: draw_pool(models.grid, models.bc, cfg["galaxy"][c], cfg["population"], pool_n, setup_rng) for c in COMPONENTS
    }
    window = {**cfg, "selection": {**cfg["selection"], "gaia_g_range": list(sample.g_range)}}
    sight = build_sightline_grid(window, pools, models.dust, r_g_minimum(models, cfg))
    sizes = chunk_sizes(sample.n_stars, cfg["chunk_size"])
    chunk_seqs = sample.chunk_seed.spawn(len(sizes))
    writers = {k: ParquetChunkWriter(paths[k]) for k in (*sample.tables, "truth")}
    serial = dict(sample.serial)
    t_all = time.perf_counter()
    try:
        for i, (size, cseq) in enumerate(zip(sizes, chunk_seqs, strict=True)):
            t0 = time.perf_counter()
            rng = np.random.default_rng(cseq)
            chunk_pools = (
                pools
                if i == 0
                else {
                    c: draw_pool(models.grid, models.bc, cfg["galaxy"][c], cfg["population"], pool_n, rng)
                    for c in COMPONENTS
                }
            )
            truth = draw_stars(size, cfg, models, sight, chunk_pools, rng, sample.g_range, sample.spectroscopic)
            truth["star_id"] = serial["star"] + np.arange(size, dtype=np.int64)
            tables = make_tables(truth, cfg, rng, serial, sample.spectroscopic)
            tables = {name: tables[name] for name in sample.tables}
            for name, df in tables.items():
                writers[name].write(df)
            writers["truth"].write(truth_frame(truth))
            serial["star"] += size
            log.info(
                "chunk %d/%d: %d stars, %s rows in %.1f s",
                i + 1,
                len(sizes),
                size,
                ", ".join(f"{k} {len(v):,}" for k, v in tables.items()),
                time.perf_counter() - t0,
            )
            progress(stage, i + 1, len(sizes), time.perf_counter() - t_all, "chunks")
        for w in writers.values():
            w.close()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    manifest = {
        **(describe or {}),
        "seed": cfg["seed"],
        "n_stars": sample.n_stars,
        "rows": {k: w.rows for k, w in writers.items()},
        "sha256": {k: sha256(paths[k]) for k in (*sample.tables, "truth")},
        "runtime_s": round(time.perf_counter() - t_start, 2),
    }
    write_json(manifest, paths["manifest"])
    return manifest


def make_tables(
    truth: dict[str, np.ndarray],
    cfg: dict[str, Any],
    rng: np.random.Generator,
    serial: dict[str, int],
    spectroscopic: bool = True,
) -> dict[str, pd.DataFrame]:
    """All archive tables of one chunk; advances the per-table serial counters in ``serial``.

    ``spectroscopic`` False: no star is assigned to a survey (every ``in_<survey>`` False) and only the tables of
    the photometric surveys (Gaia, its best-neighbour tables, PS1, 2MASS, unWISE) are made; the truth then lacks
    the spectroscopic surveys' columns (``<survey>_id``, their ``inj_``/``fail_`` flags).
    """
    if spectroscopic:
        assign_surveys(truth, cfg, rng)
    else:
        for s in SURVEYS:
            truth[f"in_{s}"] = np.zeros(len(truth["ra"]), dtype=bool)
    frames = {"gaia": surveys.gaia_table(truth, cfg, rng, serial["gaia"])}
    truth["expect_gaia_g"] = np.ones(len(truth["ra"]), dtype=bool)
    if spectroscopic:
        frames["lamost"] = surveys.lamost_table(truth, cfg, rng, serial["lamost"])
        frames["apogee"] = surveys.apogee_table(truth, cfg, rng, serial["apogee"])
        frames["galah"] = surveys.galah_table(truth, cfg, rng, serial["galah"])
    frames["ps1"] = surveys.ps1_table(truth, cfg, rng, serial["ps1"])
    frames["tmass"] = surveys.tmass_table(truth, cfg, rng)
    frames["unwise"] = surveys.unwise_table(truth, cfg, rng, serial["unwise"])
    best = surveys.best_neighbour_tables(truth, frames["ps1"], frames["tmass"], serial["tmass"])
    for s, frame in frames.items():
        if s != "tmass":  # the 2MASS counter numbers the best-neighbour rows (tmass_oid)
            serial[s] += len(frame)
    serial["tmass"] += len(best[registry.LINKS["tmass"]])
    by_table = {registry.SURVEY_TABLES[s]: f for s, f in frames.items()} | best
    return {t: by_table[t] for t in TABLES if t in by_table}


def truth_frame(truth: dict[str, np.ndarray]) -> pd.DataFrame:
    """The truth table of one chunk, with a fixed column order (star_id first)."""
    first = ["star_id", "source_id", "ra", "dec", "l", "b", "component"]
    cols = first + sorted(k for k in truth if k not in first)
    df = pd.DataFrame({k: truth[k] for k in cols})
    for k in ("tmass_designation", "unwise_objid"):
        df[k] = df[k].astype(str)
    return df


__all__ = ["Models", "TABLES", "SURVEYS", "Sample", "generate", "simulate_sample"]
