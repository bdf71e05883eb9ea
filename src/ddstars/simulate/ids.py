"""Archive identifiers built the way each archive builds them, vectorised."""

from __future__ import annotations

import healpy as hp
import numpy as np

from ..registry import GAIA_HEALPIX_FACTOR, GAIA_HEALPIX_LEVEL


def gaia_source_id(ra_deg: np.ndarray, dec_deg: np.ndarray, serial: np.ndarray) -> np.ndarray:
    """Gaia DR2-style source_id: level-12 NESTED HEALPix index (ICRS) times 2^35 plus a serial number."""
    pix = hp.ang2pix(2**GAIA_HEALPIX_LEVEL, ra_deg, dec_deg, nest=True, lonlat=True).astype(np.int64)
    serial = np.asarray(serial, dtype=np.int64)
    if serial.size and (serial.min() < 0 or serial.max() >= GAIA_HEALPIX_FACTOR):
        raise ValueError("gaia_source_id: serial numbers must lie in [0, 2**35)")
    return pix * GAIA_HEALPIX_FACTOR + serial


def _zpad(values: np.ndarray, width: int) -> np.ndarray:
    return np.char.zfill(np.asarray(values, dtype=np.int64).astype(str), width)


def tmass_designation(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """2MASS PSC designation 'hhmmssss+ddmmsss' (RA to 0.01 s, Dec to 0.1 arcsec, truncated)."""
    ra_cs = np.floor(np.asarray(ra_deg) / 15.0 * 3600 * 100 + 1e-9).astype(np.int64)  # centiseconds
    h, rem = np.divmod(ra_cs, 360000)
    m, cs = np.divmod(rem, 6000)
    dec = np.asarray(dec_deg)
    sign = np.where(dec < 0, "-", "+")
    dec_ds = np.floor(np.abs(dec) * 36000 + 1e-9).astype(np.int64)  # deci-arcseconds
    d, rem = np.divmod(dec_ds, 36000)
    dm, ds = np.divmod(rem, 600)
    parts = [_zpad(h, 2), _zpad(m, 2), _zpad(cs, 4), sign, _zpad(d, 2), _zpad(dm, 2), _zpad(ds, 3)]
    out = parts[0]
    for p in parts[1:]:
        out = np.char.add(out, p)
    return out


def ps1_obj_id(ra_deg: np.ndarray, dec_deg: np.ndarray, serial: np.ndarray) -> np.ndarray:
    """PS1-style objID: a declination zone of 30 arcsec, the RA inside it, and a serial digit block."""
    zone = np.floor((np.asarray(dec_deg) + 90.0) * 120).astype(np.int64)
    ra_part = np.floor(np.asarray(ra_deg) / 360.0 * 1e10).astype(np.int64)
    return zone * 10**14 + ra_part * 10**4 + np.asarray(serial, dtype=np.int64) % 10**4


def unwise_objid(ra_deg: np.ndarray, dec_deg: np.ndarray, serial: np.ndarray) -> np.ndarray:
    """unWISE-style objid: coadd tile name ('RRRR[pm]DDD') + 'o' + 7-digit serial."""
    ra_t = _zpad(np.floor(np.asarray(ra_deg) * 10) % 3600, 4)
    dec = np.asarray(dec_deg)
    sgn = np.where(dec < 0, "m", "p")
    dec_t = _zpad(np.floor(np.abs(dec) * 10), 3)
    ser = _zpad(np.asarray(serial) % 10**7, 7)
    return np.char.add(np.char.add(np.char.add(np.char.add(ra_t, sgn), dec_t), "o"), ser)
