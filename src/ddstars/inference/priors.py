"""Per-star prior tables of the photometric inference (Eq. 19) on a common distance-modulus grid.

Both priors are tabulated for n stars at Galactic (l, b) [deg] on ``mu_grid`` (M distance moduli [mag], 1-D,
increasing, regular), with d = 10^(μ/5 - 2) kpc:

* :func:`distance_log_prior`: ln p(μ | l, b), the stellar number density of a thin disk + thick disk + halo
  (:mod:`ddstars.galactic`) along the line of sight times the volume element. p(μ) dμ ∝ ρ(R, z) d² dd and
  dd = (ln 10 / 5) d dμ, so p(μ) ∝ ρ d³. Each star's row is normalised on the grid: Σ exp(ln p) Δμ = 1.
* :func:`dust_prior_tables`: the reddening prior E ~ N(E₀(μ), σ_E(μ)) [mag, SFD-scale E(B-V)] from Bayestar
  where it covers the star, else bounded by SFD (the rules of the catalog's reddening prior, in μ):

  - ``bayestar``: at each DM bin edge of the map, E₀ = the mean over the map's samples and
    σ_map² = std² + (``relative_sigma`` E₀)²; both are interpolated linearly in μ onto ``mu_grid``. Nearer than
    the first edge (DM₀, distance d₀) both fall linearly in distance to 0 at d = 0 (× d/d₀, as ``dustmaps``
    does for E); beyond the last edge they stay at the last edge's values.
  - ``sfd`` (the map gives NaN: outside its footprint, e.g. dec < -30° for Bayestar19): E₀ = 0 and
    σ_map = SFD at every μ (the catalog's ``default`` rule: the column to infinity bounds E).

  Then σ_E = sqrt(σ_map² + ``sigma_floor``²) everywhere. ``relative_sigma`` and ``sigma_floor`` are the options
  of config section ``catalog.reddening`` (the same values as the catalog's prior).

Maps are queried in batches of stars (``catalog.reddening.batch``), never one star at a time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import special

from ..config import with_defaults
from ..dustmaps_io import bayestar_query_object, query_bayestar, query_sfd
from ..errors import ConfigError, DataError
from ..galactic import COMPONENTS, density, galactocentric_rz

log = logging.getLogger(__name__)

#: Stars × grid points per chunk of the distance prior (bounds the temporaries to ~100 MB).
MAX_CELLS = 1 << 21
DUST_SOURCES = ("bayestar", "sfd")
_DISK_KEYS = ("local_fraction", "scale_length_kpc", "scale_height_kpc")
_HALO_KEYS = ("local_fraction", "power_law_index", "flattening", "core_radius_kpc")


def _check_mu_grid(mu_grid) -> np.ndarray:
    mu = np.asarray(mu_grid, dtype=float)
    if mu.ndim != 1 or mu.size < 2:
        raise DataError(f"mu_grid must be a 1-D array of at least 2 distance moduli; got shape {mu.shape}")
    if not np.all(np.isfinite(mu)):
        raise DataError("mu_grid must be finite")
    step = np.diff(mu)
    if not np.all(step > 0):
        raise DataError("mu_grid must be strictly increasing")
    if not np.allclose(step, step[0], rtol=1e-6, atol=1e-9 * max(1.0, float(np.abs(mu).max()))):
        raise DataError(f"mu_grid must be regular (one step Δμ); its steps range from {step.min():g} to {step.max():g}")
    return mu


def _check_lb(l_deg, b_deg) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.asarray(l_deg, dtype=float), np.asarray(b_deg, dtype=float)
    if lon.ndim != 1 or lat.ndim != 1:
        raise DataError(f"l_deg and b_deg must be 1-D arrays; got shapes {lon.shape} and {lat.shape}")
    if lon.shape != lat.shape:
        raise DataError(f"l_deg and b_deg must have the same length; got {lon.size} and {lat.size}")
    for name, a in (("l_deg", lon), ("b_deg", lat)):
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            raise DataError(f"{name} must be finite; not in {bad.size} row(s), first {bad[:5].tolist()}")
    bad = np.flatnonzero(np.abs(lat) > 90.0)
    if bad.size:
        raise DataError(f"b_deg must lie in [-90, 90]; not in {bad.size} row(s), first {bad[:5].tolist()}")
    return lon, lat


def _check_galaxy(galaxy: Mapping[str, Any]) -> None:
    if not isinstance(galaxy, Mapping):
        raise ConfigError(f"galaxy must be a mapping in the layout of simulate.galaxy; got {type(galaxy).__name__}")
    need = [k for k in ("r_sun_kpc", "z_sun_kpc", *COMPONENTS) if k not in galaxy]
    for name in COMPONENTS:
        if name in galaxy:
            keys = _HALO_KEYS if name == "halo" else _DISK_KEYS
            need += [f"{name}.{k}" for k in keys if k not in galaxy[name]]
    if need:
        raise ConfigError(f"galaxy lacks {', '.join(need)} (the layout of simulate.galaxy; see ddstars.galactic)")
    total = sum(float(galaxy[name]["local_fraction"]) for name in COMPONENTS)
    if not all(float(galaxy[name]["local_fraction"]) >= 0 for name in COMPONENTS) or total <= 0:
        raise ConfigError("galaxy: local_fraction must be >= 0 for every component and > 0 for one")


def distance_log_prior(l_deg, b_deg, mu_grid, galaxy: Mapping[str, Any]) -> np.ndarray:
    """ln p(μ | l, b) (n, M) on ``mu_grid`` for stars at Galactic (``l_deg``, ``b_deg``) [deg].

    p(μ) ∝ ρ(R, z) d³ with ρ the sum of the components of ``galaxy`` (a dict in the layout of the config section
    ``simulate.galaxy``, e.g. :data:`ddstars.galactic.JURIC2008`), d = 10^(μ/5 - 2) kpc. Each row is normalised
    on the grid, Σ_j exp(ln p_j) Δμ = 1 (the grid's rectangle rule), so the prior is that of μ restricted to the
    grid's range. Stars are processed in chunks of at most :data:`MAX_CELLS` stars × grid points.

    No luminosity function enters: this is the density of all stars. With a halo power law n < 3, ρ d³ ∝ d^(3-n)
    grows without bound far out, so off the plane the prior keeps weight up to the grid's far end (the
    photometric likelihood bounds μ in practice); choose the grid's upper end accordingly.
    """
    mu = _check_mu_grid(mu_grid)
    lon, lat = _check_lb(l_deg, b_deg)
    _check_galaxy(galaxy)
    r_sun, z_sun = float(galaxy["r_sun_kpc"]), float(galaxy["z_sun_kpc"])
    d = 10.0 ** (mu / 5.0 - 2.0)
    ln_vol = 3.0 * np.log(d)
    ln_dmu = math.log(float(mu[1] - mu[0]))
    n, m = lon.size, mu.size
    out = np.empty((n, m))
    step = max(1, MAX_CELLS // m)
    for start in range(0, n, step):
        sl = slice(start, start + step)
        r, z = galactocentric_rz(lon[sl, None], lat[sl, None], d[None, :], r_sun, z_sun)
        rho = sum(density(name, galaxy[name], r, z, r_sun, z_sun) for name in COMPONENTS)
        with np.errstate(divide="ignore"):
            lnp = np.log(rho) + ln_vol[None, :]
        out[sl] = lnp - (special.logsumexp(lnp, axis=1, keepdims=True) + ln_dmu)
    return out


def _bayestar_dm_edges(bayestar_file) -> np.ndarray:
    query = bayestar_query_object(bayestar_file)
    edges = getattr(query, "distmods", None)
    edges = np.asarray(getattr(edges, "value", edges) if edges is not None else query._DM_bin_edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise DataError(f"Bayestar map {bayestar_file}: DM_bin_edges must be 1-D and increasing")
    return edges


def _interp_rows(x_new: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Linear interpolation of every row of ``y`` (k, len(x)) at ``x_new`` (constant beyond x[-1], and before
    x[0]: the caller overrides that part)."""
    j = np.clip(np.searchsorted(x, x_new, side="right") - 1, 0, x.size - 2)
    t = np.clip((x_new - x[j]) / (x[j + 1] - x[j]), 0.0, 1.0)
    return y[:, j] * (1.0 - t) + y[:, j + 1] * t


def dust_prior_tables(
    l_deg,
    b_deg,
    mu_grid,
    sfd_dir,
    bayestar_file,
    options: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """The reddening prior E₀(μ) ± σ_E(μ) of stars at Galactic (``l_deg``, ``b_deg``) [deg] on ``mu_grid``.

    Rules in the module docstring. ``sfd_dir``: the folder of SFD_dust_4096_{ngp,sgp}.fits; ``bayestar_file``:
    a Bayestar19-layout HDF5 file; ``options``: config section ``catalog.reddening`` (``relative_sigma``,
    ``sigma_floor``, ``batch``; defaults filled in). Returns ``ebv`` and ``sigma_ebv`` (n, M) [mag], ``source``
    (n,) str, ``"bayestar"`` or ``"sfd"``, and ``ebv_sfd`` (n,), the SFD column of each star.
    """
    mu = _check_mu_grid(mu_grid)
    lon, lat = _check_lb(l_deg, b_deg)
    o = with_defaults(options, "catalog.reddening")
    rel, floor, batch = float(o["relative_sigma"]), float(o["sigma_floor"]), int(o["batch"])
    n, m = lon.size, mu.size

    sfd = query_sfd(sfd_dir, lon, lat)
    edges = _bayestar_dm_edges(bayestar_file)
    d_ratio = 10.0 ** (0.2 * (mu - edges[0]))  # d / d0
    near = mu < edges[0]

    ebv = np.zeros((n, m))
    sig_map = np.broadcast_to(sfd[:, None], (n, m)).copy()
    covered = np.zeros(n, dtype=bool)
    for start in range(0, n, batch):  # batches of stars, vectorised inside
        sl = slice(start, start + batch)
        samples = query_bayestar(bayestar_file, lon[sl], lat[sl], None, mode="samples")  # (k, n_samples, n_dm)
        if samples.shape[-1] != edges.size:
            raise DataError(
                f"Bayestar map {bayestar_file}: {samples.shape[-1]} distance bins per sample but "
                f"{edges.size} DM_bin_edges"
            )
        ok = np.all(np.isfinite(samples), axis=(1, 2))
        if not ok.any():
            continue
        s = samples[ok]
        e_edge = s.mean(axis=1)
        s_edge = np.hypot(s.std(axis=1), rel * e_edge)
        e_mu = _interp_rows(mu, edges, e_edge)
        s_mu = _interp_rows(mu, edges, s_edge)
        e_mu[:, near] = e_edge[:, :1] * d_ratio[near]
        s_mu[:, near] = s_edge[:, :1] * d_ratio[near]
        rows = np.arange(start, min(start + batch, n))[ok]
        ebv[rows], sig_map[rows], covered[rows] = e_mu, s_mu, True

    bad = np.flatnonzero(~covered & ~np.isfinite(sfd))
    if bad.size:
        raise DataError(
            f"SFD map in {sfd_dir} gives no finite E(B-V) for {bad.size} star(s) outside the Bayestar map, "
            f"first rows {bad[:5].tolist()}"
        )
    source = np.where(covered, "bayestar", "sfd")
    log.info(
        "dust prior of %d stars on %d distance moduli: bayestar %d, sfd %d (outside the Bayestar map)",
        n,
        m,
        int(covered.sum()),
        int(n - covered.sum()),
    )
    return {"ebv": ebv, "sigma_ebv": np.hypot(sig_map, floor), "source": source, "ebv_sfd": sfd}
