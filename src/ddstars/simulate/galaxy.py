"""Galactic structure and the magnitude-limited parent sample of the simulated sky.

Three components (thin disk, thick disk, halo; Juric et al. 2008-like) each carry a stellar population
(constant star formation over an age range, a Gaussian metallicity distribution, a Kroupa IMF). Stars are
drawn from MIST isochrones by sampling (EEP, age, [Fe/H]) and weighting each draw by IMF(m)·dm/dEEP, which
gives evolved stars enough draws while keeping the population's true proportions.

The parent sample is a window in true apparent G. Positions are drawn exactly from

    n(pixel, d, c) ∝ ρ_c(x) d² Δd · P_c(G_lo - μ(d) - A_G(d) < M_G < G_hi - μ(d) - A_G(d)),

on a HEALPix × distance grid, where P_c is the component's luminosity function and A_G uses the pixel
centre's dust column with the smallest R_G of the grid (so that no star is excluded that could be in the
window). A star is then drawn from the component's weighted isochrone pool conditional on its M_G window,
its exact reddening and photometry are computed, and the true G window is applied exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import healpy as hp
import numpy as np

from ..bands import band_index
from ..errors import ConfigError
from ..galactic import COMPONENTS, density, galactocentric_rz
from .isochrones import MISTGrid, kroupa_imf

log = logging.getLogger(__name__)

#: Pairs of spectroscopic surveys that share stars (keys <a>_<b> of simulate.surveys.overlap), in draw order.
OVERLAP_PAIRS: tuple[tuple[str, str], ...] = (("lamost", "galah"), ("lamost", "apogee"), ("apogee", "galah"))
EEP_ZAMS = 202  # MIST primary EEP of the zero-age main sequence
EEP_MAX = 808  # end of the early AGB (phase <= 4)
G = band_index("gaia_g")
# Finest HEALPix level used to place stars inside a sightline pixel (~0.2 arcsec).
NSIDE_FINE = 2**20


@dataclass
class Pool:
    """One component's weighted isochrone draws inside the spectroscopic label window, sorted by M_G.

    ``cum_w`` is the cumulative weight normalised by the weight of *all* living stars drawn, so
    ``cum_w[-1]`` is the fraction of the component's stars inside the label window.
    """

    m_g: np.ndarray
    cum_w: np.ndarray
    eep: np.ndarray
    log_age: np.ndarray
    feh: np.ndarray

    def fraction_brighter(self, m: np.ndarray) -> np.ndarray:
        """Fraction of the component's stars in the label window with M_G < m."""
        k = np.searchsorted(self.m_g, m, side="left")
        c = np.concatenate([[0.0], self.cum_w])
        return c[k]

    def sample(self, m_lo: np.ndarray, m_hi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Indices of pool stars drawn with probability ∝ weight, conditional on m_lo < M_G < m_hi."""
        f_lo, f_hi = self.fraction_brighter(m_lo), self.fraction_brighter(m_hi)
        u = f_lo + rng.random(len(f_lo)) * (f_hi - f_lo)
        idx = np.searchsorted(self.cum_w, u, side="right")
        return np.clip(idx, 0, len(self.cum_w) - 1)


def draw_ages_fehs(
    comp: dict[str, Any], pop: dict[str, Any], n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """log10(age/yr) uniform in age over ``age_gyr`` and clipped Gaussian [Fe/H] for a component."""
    a0, a1 = comp["age_gyr"]
    log_age = np.log10(rng.uniform(a0, a1, n) * 1e9)
    feh = np.clip(rng.normal(comp["feh_mean"], comp["feh_sigma"], n), *pop["feh_range"])
    return log_age, feh


def in_label_window(iso: dict[str, np.ndarray], pop: dict[str, Any]) -> np.ndarray:
    """Stars that get spectroscopic labels: valid, phase 0..4, Teff and log g inside the configured ranges."""
    t0, t1 = pop["teff_range_k"]
    g0, g1 = pop["logg_range"]
    teff, logg = iso["teff"], iso["logg"]
    with np.errstate(invalid="ignore"):
        return (
            iso["valid"]
            & (iso["phase"] >= -0.5)
            & (iso["phase"] <= 4.5)
            & (teff >= t0)
            & (teff <= t1)
            & (logg >= g0)
            & (logg <= g1)
        )


def draw_pool(
    grid: MISTGrid, bc: Any, comp: dict[str, Any], pop: dict[str, Any], n: int, rng: np.random.Generator
) -> Pool:
    """Draw ``n`` (EEP, age, [Fe/H]) points of a component and weight them by IMF(m)·dm/dEEP."""
    log_age, feh = draw_ages_fehs(comp, pop, n, rng)
    eep = rng.uniform(EEP_ZAMS, EEP_MAX, n)
    iso = grid.interpolate(eep, log_age, feh)
    w = np.where(iso["valid"], kroupa_imf(iso["initial_mass"]) * iso["dmass_deep"], 0.0)
    w = np.nan_to_num(w, nan=0.0, posinf=0.0)
    total = w.sum()
    if total <= 0:
        raise ConfigError("isochrone pool has no valid stars: check the component's age and [Fe/H] ranges")
    keep = in_label_window(iso, pop) & (w > 0)
    m_g = bc.absolute_magnitudes(iso["teff"][keep], feh[keep], iso["log_l"][keep], np.zeros(keep.sum()))[:, G]
    order = np.argsort(m_g, kind="stable")
    return Pool(
        m_g=m_g[order],
        cum_w=np.cumsum(w[keep][order]) / total,
        eep=eep[keep][order],
        log_age=log_age[keep][order],
        feh=feh[keep][order],
    )


@dataclass
class SightlineGrid:
    """Expected parent-sample counts on (HEALPix pixel, component, distance bin) and its sampler."""

    nside: int
    l_deg: np.ndarray  # (n_pix,) pixel centres, Galactic, NESTED
    b_deg: np.ndarray
    d_edges: np.ndarray  # (n_d + 1,) [kpc]
    ebv: np.ndarray  # (n_pix, n_d + 1) dust column at the bin edges
    cdf: np.ndarray  # flattened (n_pix, n_comp, n_d) cumulative probability
    r_g_min: float

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.l_deg), len(COMPONENTS), len(self.d_edges) - 1

    def m_g_window(self, pix: np.ndarray, d_kpc: np.ndarray, g_range: tuple[float, float]):
        """M_G window [lo, hi] of the parent sample at (pixel, distance), from the pixel-centre dust column."""
        k = np.clip(np.searchsorted(self.d_edges, d_kpc) - 1, 0, len(self.d_edges) - 2)
        d0, d1 = self.d_edges[k], self.d_edges[k + 1]
        t = (d_kpc - d0) / (d1 - d0)
        e = (1 - t) * self.ebv[pix, k] + t * self.ebv[pix, k + 1]
        mu = 5 * np.log10(d_kpc * 100.0)
        a = self.r_g_min * e
        return g_range[0] - mu - a, g_range[1] - mu - a

    def sample_cells(self, n: int, rng: np.random.Generator):
        """Draw ``n`` (pixel, component, distance) triples; positions are uniform in volume within a cell."""
        cell = np.searchsorted(self.cdf, rng.random(n), side="right")
        cell = np.minimum(cell, len(self.cdf) - 1)
        n_pix, n_c, n_d = self.shape
        pix, rest = np.divmod(cell, n_c * n_d)
        comp, kd = np.divmod(rest, n_d)
        d0, d1 = self.d_edges[kd], self.d_edges[kd + 1]
        d = np.cbrt(d0**3 + rng.random(n) * (d1**3 - d0**3))
        # A uniform point inside the pixel: a random descendant at NSIDE_FINE plus sub-cell jitter.
        k = int(np.log2(NSIDE_FINE // self.nside))
        child = pix.astype(np.int64) * (4**k) + rng.integers(0, 4**k, n, dtype=np.int64)
        lon, lat = hp.pix2ang(NSIDE_FINE, child, nest=True, lonlat=True)
        half = np.degrees(hp.nside2resol(NSIDE_FINE)) / 2
        lat = np.clip(lat + rng.uniform(-half, half, n), -90.0, 90.0)
        lon = (lon + rng.uniform(-half, half, n) / np.maximum(np.cos(np.radians(lat)), 1e-3)) % 360.0
        return pix, comp, d, lon, lat


def build_sightline_grid(cfg: dict[str, Any], pools: dict[str, Pool], dust: Any, r_g_min: float) -> SightlineGrid:
    """Tabulate the expected parent-sample density on the sightline grid (see module docstring)."""
    sel, gal = cfg["selection"], cfg["galaxy"]
    nside = sel["healpix_nside"]
    n_pix = hp.nside2npix(nside)
    l_deg, b_deg = hp.pix2ang(nside, np.arange(n_pix), nest=True, lonlat=True)
    d0, d1 = sel["distance_range_kpc"]
    d_edges = np.geomspace(d0, d1, sel["n_distance_bins"] + 1)
    ebv = np.asarray(dust.ebv_profile(l_deg, b_deg, d_edges), dtype=float)
    d_mid = np.sqrt(d_edges[:-1] * d_edges[1:])
    e_mid = np.sqrt(np.maximum(ebv[:, :-1], 0) * np.maximum(ebv[:, 1:], 0))
    e_mid = np.where(ebv[:, :-1] > 0, e_mid, 0.5 * (ebv[:, :-1] + ebv[:, 1:]))
    vol = (d_edges[1:] ** 3 - d_edges[:-1] ** 3) / 3.0
    mu = 5 * np.log10(d_mid * 100.0)
    a = r_g_min * e_mid
    m_lo = sel["gaia_g_range"][0] - mu[None, :] - a
    m_hi = sel["gaia_g_range"][1] - mu[None, :] - a
    r, z = galactocentric_rz(l_deg[:, None], b_deg[:, None], d_mid[None, :], gal["r_sun_kpc"], gal["z_sun_kpc"])
    w = np.empty((n_pix, len(COMPONENTS), len(d_mid)))
    for c, name in enumerate(COMPONENTS):
        rho = density(name, gal[name], r, z, gal["r_sun_kpc"], gal["z_sun_kpc"])
        frac = pools[name].fraction_brighter(m_hi) - pools[name].fraction_brighter(m_lo)
        w[:, c, :] = rho * vol[None, :] * frac
    total = w.sum()
    if not np.isfinite(total) or total <= 0:
        raise ConfigError("simulate.selection: no star can fall inside gaia_g_range; widen it")
    frac_c = w.sum(axis=(0, 2)) / total
    log.info(
        "sightline grid: %d pixels x %d distance bins; expected mix %s",
        n_pix,
        len(d_mid),
        ", ".join(f"{n} {f:.3f}" for n, f in zip(COMPONENTS, frac_c, strict=True)),
    )
    cdf = np.cumsum(w.ravel())
    cdf /= cdf[-1]
    return SightlineGrid(nside, l_deg, b_deg, d_edges, ebv, cdf, r_g_min)
