"""The photometric sample of the simulated sky: stars without spectra, to a fainter G limit, with known truth.

The input of the photometric inference (:mod:`ddstars.inference.stage`) on the simulated sky. Its stars come
from the same Galaxy, isochrone pools, 3D dust (the structure of ``simulate.seed``, so the dust maps of the
spectroscopic sky describe them too) and photometry as the spectroscopic sky (:func:`ddstars.simulate.sky.generate`),
drawn through the same code (:func:`~ddstars.simulate.sky.simulate_sample`), but

* in their own G window (``gaia_g_range``, fainter than the spectroscopic parent sample's),
* with no survey eligibility required and no spectra (every ``in_<survey>`` False),
* written as the photometric archive tables only (:data:`TABLES`: Gaia source, the Gaia best-neighbour tables,
  PS1, 2MASS, unWISE) in the archives' own formats, with the quality-cut failures injected at the rates of
  ``simulate.failures``, and a truth table of the spectroscopic sky's layout,
* from random streams of their own (``SeedSequence([seed, seed_offset])``), and
* with identifiers that cannot collide with the spectroscopic sky's (:data:`SERIAL_OFFSETS`).

Identifiers. Every archive identifier is built from a position and a serial number (:mod:`ddstars.simulate.ids`);
the spectroscopic sky's serials start at 0. Here they start at offsets far above anything the spectroscopic sky
reaches, in the same identifier format (so the ids stay valid archive ids):

* Gaia ``source_id`` = HEALPix level-12 index * 2^35 + serial: serials from 2^34, the upper half of the serial
  space (the spectroscopic sky would need 2^34 = 1.7e10 Gaia rows to reach it);
* ``star_id`` from 2^40, and the 2MASS best-neighbour ``tmass_oid`` from 2^34;
* unWISE ``objid`` = coadd tile + 7-digit serial (mod 10^7): serials from 5e6, so the two samples' serials are
  disjoint while each has fewer than 5e6 unWISE rows;
* PS1 ``objID`` (30" declination zone, RA to 1.3e-4 arcsec, 4-digit serial) and the 2MASS designation (RA to
  0.01 s, Dec to 0.1") are positional, as in the archives: two distinct stars share one only if they lie within
  those few milli-arcseconds (PS1) or 0.15" (2MASS) of each other, as in the real archives.

Deriving ids from a different seed space (e.g. hashing) would break the source_id's HEALPix prefix, which the
catalog and the inference rely on to partition the sky; offsetting the serials keeps every id well-formed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from .. import registry
from ..config import defaults as config_defaults
from ..errors import ConfigError
from .sky import TABLES as SKY_TABLES
from .sky import Models, Sample, simulate_sample

#: The archive tables of the photometric sample: those feeding a photometric survey (Gaia, PS1, 2MASS, unWISE and
#: the Gaia best-neighbour tables), in the spectroscopic sky's writing order.
TABLES: tuple[str, ...] = tuple(t for t in SKY_TABLES if registry.TABLES[t].survey in registry.PHOTOMETRIC)

#: The sample's options (``cfg["photometric"]``: config section ``inference.photometric_sample``).
#: ``n_stars``: stars drawn; ``gaia_g_range``: true apparent G window [mag]; ``seed_offset`` (>= 2): the
#: sample's random streams are ``SeedSequence([simulate.seed, seed_offset])`` (the spectroscopic sky uses
#: ``[seed]`` and ``[seed, 1]``); ``gaia_neighbours``: also write the unrelated Gaia neighbours the spectroscopic
#: sky has (rows without truth and with made-up colours; off, so every Gaia row of the sample is a star with truth).
DEFAULTS: dict[str, Any] = config_defaults("inference.photometric_sample")  # the config schema's defaults

#: First serial number of each identifier counter (see the module docstring).
SERIAL_OFFSETS: dict[str, int] = {
    "star": 2**40,
    "gaia": 2**34,
    "ps1": 0,
    "unwise": 5_000_000,
    "tmass": 2**34,
}


def options(cfg: dict[str, Any]) -> dict[str, Any]:
    """The sample's options: :data:`DEFAULTS` updated with ``cfg["photometric"]``, checked."""
    o = {**DEFAULTS, **(cfg.get("photometric") or {})}
    unknown = sorted(set(o) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"simulate.photometric: unknown key(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    g0, g1 = (float(x) for x in o["gaia_g_range"])
    if not g0 < g1:
        raise ConfigError(f"simulate.photometric.gaia_g_range: {o['gaia_g_range']} is not an increasing pair")
    if int(o["n_stars"]) < 1:
        raise ConfigError(f"simulate.photometric.n_stars: {o['n_stars']} (need at least 1)")
    if int(o["seed_offset"]) < 2:
        raise ConfigError("simulate.photometric.seed_offset: must be >= 2 (0 and 1 are the spectroscopic sky's)")
    return {**o, "n_stars": int(o["n_stars"]), "gaia_g_range": [g0, g1], "seed_offset": int(o["seed_offset"])}


def generate_photometric(
    cfg: dict[str, Any], paths: dict[str, str | Path], models: Models | None = None
) -> dict[str, Any]:
    """Generate the photometric sample of the simulated sky (see the module docstring).

    Parameters
    ----------
    cfg : dict
        The validated ``simulate`` section of the workflow config, with the sample's options under
        ``cfg["photometric"]`` (keys of :data:`DEFAULTS`; absent keys take the defaults).
    paths : dict
        Output paths: one per name in :data:`TABLES`, plus ``truth`` and ``manifest``.
    models : Models, optional
        Prebuilt isochrone/photometry/dust models (tests reuse them; built from ``cfg`` otherwise).

    Returns
    -------
    dict
        The manifest written to ``paths["manifest"]``: ``sample: photometric``, the options, the serial offsets,
        row counts, checksums and timings. The same config gives byte-identical files.
    """
    o = options(cfg)
    sim = copy.deepcopy({k: v for k, v in cfg.items() if k != "photometric"})
    if not o["gaia_neighbours"]:
        sim["astrometry"]["neighbour_fraction"]["gaia"] = 0.0
    sample = Sample(
        n_stars=o["n_stars"],
        g_range=(o["gaia_g_range"][0], o["gaia_g_range"][1]),
        spectroscopic=False,
        tables=TABLES,
        setup_seed=np.random.SeedSequence([cfg["seed"], o["seed_offset"]]).spawn(1)[0],
        chunk_seed=np.random.SeedSequence([cfg["seed"], o["seed_offset"], 1]),
        serial=dict(SERIAL_OFFSETS),
    )
    describe = {"sample": "photometric", "options": o, "serial_offsets": dict(SERIAL_OFFSETS)}
    return simulate_sample(sim, paths, sample, models, "simulate_photometric", describe)


__all__ = ["DEFAULTS", "SERIAL_OFFSETS", "TABLES", "generate_photometric", "options"]
