"""Dust maps of the simulated sky in the real file layouts (read by the same ``dustmaps`` code as real maps)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from .dust import write_bayestar_like, write_sfd_like
from .sky import dust_model

log = logging.getLogger(__name__)


def write_maps(cfg: dict[str, Any], sfd_dir: str | Path, bayestar_path: str | Path) -> None:
    """Write the SFD-like map (two ZEA hemispheres in ``sfd_dir``) and the Bayestar19-like HDF5 file.

    ``cfg`` holds ``seed``, ``galaxy`` and ``dust`` of the ``simulate`` config section.
    """
    d = cfg["dust"]
    model = dust_model(cfg)
    t0 = time.perf_counter()
    write_sfd_like(sfd_dir, model, n_pix=d["sfd_n_pix"])
    log.info("SFD-like map (%d^2 per hemisphere) written in %.1f s", d["sfd_n_pix"], time.perf_counter() - t0)
    t0 = time.perf_counter()
    dm0, dm1 = d["bayestar_dm_range"]
    rng = np.random.default_rng(np.random.SeedSequence([cfg["seed"], 2]))
    write_bayestar_like(
        bayestar_path,
        model,
        nside=d["bayestar_nside"],
        dm_edges=np.arange(dm0, dm1 + 1e-9, 0.5),
        n_samples=d["bayestar_n_samples"],
        dec_min_deg=d["bayestar_dec_min_deg"],
        rng=rng,
    )
    log.info("Bayestar19-like map (nside %d) written in %.1f s", d["bayestar_nside"], time.perf_counter() - t0)
