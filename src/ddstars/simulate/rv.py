"""Varying dust: a smooth field of R_V on the sky, and the photometry of stars reddened at their own R_V.

The built-in sky has one extinction law, F99 at R_V = ``simulate.dust.rv.mean`` (3.1), everywhere. With
``simulate.dust.rv.scatter`` > 0, each star's dust has the R_V of a Gaussian random field on the sphere:

* the field is a sum of spherical harmonics with a Gaussian angular power spectrum
  ``C_ℓ ∝ exp(-ℓ(ℓ+1) θ²/2)``, θ = ``scale_deg`` (its correlation length), drawn from
  ``SeedSequence([simulate.seed, RV_STREAM])`` (so the rest of the sky draws the same numbers as without it),
  made on a HEALPix map of ``nside`` 64 and rescaled to exactly mean ``mean`` and standard deviation ``scatter``
  over the sky, then clipped to ``mean ± 4 scatter``;
* a star takes the field's value at its (l, b), interpolated between pixel centres (dust at every distance on
  a sightline has the same R_V);
* its magnitudes are the passband integrals of the SED through F99 at that R_V (:class:`RVPhotometry`: exact
  tables every ``RV_STEP`` in R_V, linear in between; the interpolation error is below 1 mmag at E = 2).

E stays E(B-V) on the scale of ``simulate.photometry.extinction_norm``: ``A_λ = N R_V E k(λ; R_V)``, so at a
given E the stars behind high-R_V dust are dimmer and less reddened in the optical.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import healpy as hp
import numpy as np

from ..bands import N_BANDS
from ..config import defaults
from ..synphot import BCTable, Photometer

RV_STREAM = 77  # the field's random stream: SeedSequence([seed, RV_STREAM])
RV_STEP = 0.2  # spacing of the exact photometry tables in R_V
CLIP_SIGMA = 4.0
NSIDE = 64


@dataclass(frozen=True)
class RVField:
    """R_V(l, b): mean, scatter (standard deviation over the sky) and correlation length ``scale_deg``."""

    mean: float = 3.1
    scatter: float = 0.0
    scale_deg: float = 10.0
    seed: int = 0
    nside: int = NSIDE

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> RVField:
        """From the ``simulate`` config section (``dust.rv`` and ``seed``)."""
        rv = {**defaults("simulate.dust.rv"), **(cfg["dust"].get("rv") or {})}
        return cls(float(rv["mean"]), float(rv["scatter"]), float(rv["scale_deg"]), int(cfg["seed"]))

    @property
    def varies(self) -> bool:
        return self.scatter > 0

    @functools.cached_property
    def map(self) -> np.ndarray:
        """The field on a HEALPix map (RING order, Galactic coordinates)."""
        npix = hp.nside2npix(self.nside)
        if not self.varies:
            return np.full(npix, self.mean)
        lmax = 3 * self.nside - 1
        ell, m = hp.Alm.getlm(lmax)
        theta = np.radians(self.scale_deg)
        cl = np.exp(-0.5 * ell * (ell + 1.0) * theta**2)
        cl[ell == 0] = 0.0
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, RV_STREAM]))
        re, im = rng.standard_normal((2, ell.size))
        alm = np.sqrt(cl) * np.where(m == 0, re, (re + 1j * im) / np.sqrt(2.0))
        field = hp.alm2map(alm.astype(np.complex128), self.nside, lmax=lmax)
        field = (field - field.mean()) / field.std()
        return self.mean + self.scatter * np.clip(field, -CLIP_SIGMA, CLIP_SIGMA)

    def at(self, l_deg: np.ndarray, b_deg: np.ndarray) -> np.ndarray:
        """R_V at Galactic (l, b) [deg]."""
        if not self.varies:
            return np.full(np.shape(l_deg), self.mean)
        return hp.get_interp_val(self.map, np.asarray(l_deg, float), np.asarray(b_deg, float), lonlat=True)

    @property
    def range(self) -> tuple[float, float]:
        return (self.mean - CLIP_SIGMA * self.scatter, self.mean + CLIP_SIGMA * self.scatter)


class RVPhotometry:
    """Magnitudes and reddening vectors of stars reddened through F99 at their own R_V: exact tables
    (:class:`ddstars.synphot.BCTable`) on a grid of R_V, linearly interpolated between the two nodes around each
    star's R_V (a loop over the few tables, not over stars)."""

    def __init__(self, field: RVField, norm: float):
        lo, hi = field.range
        n = max(2, int(np.ceil((hi - lo) / RV_STEP - 1e-9)) + 1)
        self.rv_grid = np.linspace(lo, lo + (n - 1) * RV_STEP, n)
        self.tables = [BCTable.build(Photometer(rv=float(rv), norm=norm)) for rv in self.rv_grid]

    def _weights(self, rv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = (np.asarray(rv, float) - self.rv_grid[0]) / (self.rv_grid[1] - self.rv_grid[0])
        i = np.clip(np.floor(x).astype(np.int64), 0, len(self.rv_grid) - 2)
        return i, np.clip(x - i, 0.0, 1.0)

    def _mix(self, rv: np.ndarray, evaluate) -> np.ndarray:
        i, w = self._weights(rv)
        out = None
        for k, table in enumerate(self.tables):
            wk = np.where(i == k, 1.0 - w, 0.0) + np.where(i + 1 == k, w, 0.0)
            sel = np.flatnonzero(wk > 0)
            if sel.size == 0:
                continue
            values = evaluate(table, sel)
            if out is None:
                out = np.zeros((len(i), values.shape[1]))
            out[sel] += wk[sel, None] * values
        assert out is not None
        return out

    def absolute_magnitudes(self, teff, feh, log_l, ebv, rv) -> np.ndarray:
        """(n, 13) magnitudes at reddening ``ebv`` through F99 at ``rv`` (per star)."""
        teff, feh, log_l, ebv = (np.asarray(a, float) for a in (teff, feh, log_l, ebv))
        return self._mix(rv, lambda t, s: t.absolute_magnitudes(teff[s], feh[s], log_l[s], ebv[s]))

    def reddening_vector(self, teff, feh, rv) -> np.ndarray:
        """(n, 13) dm/dE at E → 0 through F99 at ``rv`` (per star)."""
        teff, feh = np.asarray(teff, float), np.asarray(feh, float)
        return self._mix(rv, lambda t, s: t.reddening_vector(teff[s], feh[s]))

    def rv_derivative(self, teff, feh, rv) -> np.ndarray:
        """(n, 13) ∂R/∂R_V at ``rv``: the reddening vectors of the neighbouring tables, differenced."""
        i, _ = self._weights(rv)
        teff, feh = np.asarray(teff, float), np.asarray(feh, float)
        out = np.zeros((len(i), N_BANDS))
        step = self.rv_grid[1] - self.rv_grid[0]
        for k in range(len(self.tables) - 1):
            sel = np.flatnonzero(i == k)
            if sel.size:
                lo = self.tables[k].reddening_vector(teff[sel], feh[sel])
                out[sel] = (self.tables[k + 1].reddening_vector(teff[sel], feh[sel]) - lo) / step
        return out
