"""Galactic structure shared by the simulated sky and the inference: positions and stellar number densities.

Units: kpc, degrees (Galactic l, b). A galaxy is a dict in the layout of the config section
``simulate.galaxy``: ``r_sun_kpc``, ``z_sun_kpc`` and one dict per component of :data:`COMPONENTS`
(``local_fraction``, ``scale_length_kpc``, ``scale_height_kpc`` for the disks; ``local_fraction``,
``power_law_index``, ``flattening``, ``core_radius_kpc`` for the halo). ``local_fraction`` is the component's
density at the Sun's position (r_sun, z_sun) relative to the thin disk's there (see :func:`density`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

COMPONENTS: tuple[str, ...] = ("thin_disk", "thick_disk", "halo")


def galactocentric_rz(
    l_deg: np.ndarray, b_deg: np.ndarray, d_kpc: np.ndarray, r_sun_kpc: float, z_sun_kpc: float
) -> tuple[np.ndarray, np.ndarray]:
    """Galactocentric cylindrical radius R and height z [kpc] of heliocentric (l, b, d)."""
    lr, br = np.radians(l_deg), np.radians(b_deg)
    cb = np.cos(br)
    x = r_sun_kpc - d_kpc * cb * np.cos(lr)
    y = -d_kpc * cb * np.sin(lr)
    z = z_sun_kpc + d_kpc * np.sin(br)
    return np.hypot(x, y), z


def density(
    name: str, comp: dict[str, Any], r_kpc: np.ndarray, z_kpc: np.ndarray, r_sun: float, z_sun: float
) -> np.ndarray:
    """Number density of a component relative to the thin disk at the Sun.

    Disks are double exponentials in R and |z|; the halo is an oblate power law with a core:
    ρ ∝ (R² + (z/q)² + r_c²)^(-n/2). Each is normalised to ``local_fraction`` at (r_sun, z_sun).
    """
    f = comp["local_fraction"]
    if name == "halo":
        q, n, rc = comp["flattening"], comp["power_law_index"], comp["core_radius_kpc"]
        r2 = r_kpc**2 + (z_kpc / q) ** 2 + rc**2
        r2_sun = r_sun**2 + (z_sun / q) ** 2 + rc**2
        return f * (r2_sun / r2) ** (n / 2)
    ln, hz = comp["scale_length_kpc"], comp["scale_height_kpc"]
    return f * np.exp(-(r_kpc - r_sun) / ln - (np.abs(z_kpc) - abs(z_sun)) / hz)


def _juric2008() -> dict[str, Any]:
    """Juric et al. (2008, ApJ 673, 864), Table 10 "bias-corrected" values, in the layout above.

    Juric et al. normalise the thick disk (f = 0.12) and the halo (f_H = 0.0051) to the thin disk in the
    mid-plane at R_sun; :func:`density` normalises at the Sun, Z_sun = 25 pc above the plane. The fractions
    are converted here so that the two agree exactly: thin disk at the Sun exp(-Z_sun/H1), thick disk
    f exp(-Z_sun/H2), halo f_H ((R_sun² + r_c²) / (R_sun² + (Z_sun/q_H)² + r_c²))^(n_H/2).
    """
    r_sun, z_sun = 8.0, 0.025
    h1, l1 = 0.300, 2.6
    f2, h2, l2 = 0.12, 0.900, 3.6
    f_h, q_h, n_h = 0.0051, 0.64, 2.77
    # Ours, not Juric et al.'s: a 1 kpc core keeps the halo power law finite at the Galactic centre
    # (the halo is then f_H ((R_sun² + r_c²) / (R² + (z/q)² + r_c²))^(n_H/2) relative to the mid-plane thin disk).
    r_core = 1.0
    thin_at_sun = math.exp(-z_sun / h1)
    thick_at_sun = f2 * math.exp(-z_sun / h2)
    halo_at_sun = f_h * ((r_sun**2 + r_core**2) / (r_sun**2 + (z_sun / q_h) ** 2 + r_core**2)) ** (n_h / 2)
    return {
        "r_sun_kpc": r_sun,
        "z_sun_kpc": z_sun,
        "thin_disk": {"local_fraction": 1.0, "scale_length_kpc": l1, "scale_height_kpc": h1},
        "thick_disk": {
            "local_fraction": thick_at_sun / thin_at_sun,
            "scale_length_kpc": l2,
            "scale_height_kpc": h2,
        },
        "halo": {
            "local_fraction": halo_at_sun / thin_at_sun,
            "power_law_index": n_h,
            "flattening": q_h,
            "core_radius_kpc": r_core,
        },
    }


JURIC2008: dict[str, Any] = _juric2008()
"""Thin disk + thick disk + halo of Juric et al. (2008) Table 10 (bias-corrected), for real data: R_sun = 8 kpc,
Z_sun = 25 pc; thin disk H1 = 300 pc, L1 = 2600 pc; thick disk f = 0.12 (in the mid-plane; 0.1269 at the Sun),
H2 = 900 pc, L2 = 3600 pc; halo f_H = 0.0051 (in the mid-plane; 0.0055 at the Sun), q_H = 0.64, n_H = 2.77, and
our 1 kpc core. Copy it before changing it."""
