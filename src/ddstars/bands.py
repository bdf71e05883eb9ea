"""The 13 photometric bands of the model, in the fixed order used everywhere.

Band index b = 0..12: Gaia G, BP, RP; PS1 g r i z y; 2MASS J H Ks; unWISE W1 W2.
G is the reference band of the colour basis (paper Eqs. 5-6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAG_ERR = 2.5 / math.log(10)  # 1.0857: magnitude error per unit fractional flux error


@dataclass(frozen=True)
class Band:
    """One photometric band.

    Attributes
    ----------
    name : str
        Column-name stem used by the project (``gaia_g``, ``ps1_r``, ``tmass_ks``, ``unwise_w2``).
    survey : str
        ``gaia``, ``ps1``, ``tmass`` or ``unwise``.
    speclite : str
        Name of the passband curve in ``speclite.filters``.
    system : str
        Native magnitude system of the survey: ``"vega"`` or ``"ab"``.
    ab_minus_vega : float
        Published AB - Vega offset [mag] (0 for AB bands): m_Vega = m_AB - ab_minus_vega.
    """

    name: str
    survey: str
    speclite: str
    system: str
    ab_minus_vega: float


# Published AB - Vega offsets (shared/reference/SIMSKY.md §3): Gaia DR2 revised zero points
# (AB 25.7916/25.3862/25.1162 vs Vega 25.6884/25.3514/24.7619), 2MASS from Cohen et al. (2003)
# F0 = 1594/1024/666.7 Jy, WISE explanatory supplement §IV.4.h (2.699, 3.339).
_TABLE = """
gaia_g     gaia    gaiadr2-G     vega  0.103
gaia_bp    gaia    gaiadr2-BP    vega  0.035
gaia_rp    gaia    gaiadr2-RP    vega  0.354
ps1_g      ps1     panstarrs-g   ab    0.0
ps1_r      ps1     panstarrs-r   ab    0.0
ps1_i      ps1     panstarrs-i   ab    0.0
ps1_z      ps1     panstarrs-z   ab    0.0
ps1_y      ps1     panstarrs-y   ab    0.0
tmass_j    tmass   twomass-J     vega  0.894
tmass_h    tmass   twomass-H     vega  1.374
tmass_ks   tmass   twomass-Ks    vega  1.840
unwise_w1  unwise  wise2010-W1   vega  2.699
unwise_w2  unwise  wise2010-W2   vega  3.339
"""  # name, survey, speclite passband, native system, AB - Vega [mag]
BANDS: tuple[Band, ...] = tuple(
    Band(name, survey, passband, system, float(offset))
    for name, survey, passband, system, offset in (line.split() for line in _TABLE.strip().splitlines())
)

BAND_NAMES: tuple[str, ...] = tuple(b.name for b in BANDS)
N_BANDS = len(BANDS)
#: G ... Ks: the bands whose reddening vector the convergence and recovery criteria judge (unWISE R is ~0).
N_R_JUDGED = 11


def band_index(name: str) -> int:
    """Index of a band in :data:`BANDS`, raising ``KeyError`` naming the valid bands."""
    try:
        return BAND_NAMES.index(name)
    except ValueError:
        raise KeyError(f"unknown band {name!r}; valid bands: {', '.join(BAND_NAMES)}") from None
