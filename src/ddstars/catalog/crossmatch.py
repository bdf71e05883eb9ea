"""Cross-match: spectroscopic rows to Gaia DR2 sources, and Gaia sources to PS1, 2MASS and unWISE.

Radii follow the paper (§3.4; ARCHIVES.md §0): 0.2" from each spectroscopic survey to Gaia and from
PS1 to Gaia, 0.4" from 2MASS and unWISE to Gaia, nearest neighbour inside the radius.

* Spectra to Gaia: a sky match against *all* Gaia sources (kept and rejected by the Gaia cuts), so a
  spectrum whose counterpart fails a Gaia cut is counted under that cut rather than as unmatched.
* PS1 and 2MASS: the Gaia archive's best-neighbour tables (which handle proper motion between epochs)
  with ``angular_distance`` below the radius; unWISE has none, so it is a sky match (astropy
  ``match_coordinates_sky``, a KD-tree on unit vectors: no loop over stars).
* Duplicates: a Gaia source matched by several spectra of one survey keeps the highest-S/N spectrum;
  a star in several surveys is kept once, from the first survey in ``priority`` (default APOGEE, GALAH,
  LAMOST: highest spectral resolution first). Every removed row is counted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..config import defaults
from ..errors import ConfigError

log = logging.getLogger(__name__)

_RADII = defaults("catalog.match_radius_arcsec")  # config catalog.match_radius_arcsec (the schema's defaults)
SPEC_RADIUS_ARCSEC = _RADII["spectroscopic"]
DEFAULT_PRIORITY = tuple(defaults("catalog")["survey_priority"])


#: The column of a best-neighbour table that holds the linked survey's identifier (Gaia DR2's name; other
#: releases' link tables are read with theirs renamed to it).
LINK_KEY = "original_ext_source_id"


def sky_match(ra1, dec1, ra2, dec2, radius_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
    """Nearest neighbour in catalogue 2 of every position in catalogue 1, within ``radius_arcsec``.

    Returns ``(index into catalogue 2, or -1 where nothing lies within the radius; separation [arcsec],
    NaN where unmatched)``. Positions in degrees (ICRS).
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord, match_coordinates_sky

    ra1, dec1 = np.asarray(ra1, float), np.asarray(dec1, float)
    n1 = len(ra1)
    if n1 == 0 or len(ra2) == 0:
        return np.full(n1, -1, dtype=np.int64), np.full(n1, np.nan)
    c1 = SkyCoord(ra1 * u.deg, dec1 * u.deg, copy=False)
    c2 = SkyCoord(np.asarray(ra2, float) * u.deg, np.asarray(dec2, float) * u.deg, copy=False)
    if len(c2) == 1:  # match_coordinates_sky needs at least two catalogue entries
        sep = c1.separation(c2[0]).arcsec
        idx = np.zeros(n1, dtype=np.int64)
    else:
        idx, sep2d, _ = match_coordinates_sky(c1, c2)
        sep = sep2d.arcsec
    ok = sep < radius_arcsec
    return np.where(ok, idx, -1).astype(np.int64), np.where(ok, sep, np.nan)


def _split_reasons(reasons: pd.Series) -> dict[str, int]:
    """Counts per cut name in comma-joined ``rejected_by`` strings (a row counts under each of its cuts)."""
    if len(reasons) == 0:
        return {}
    exploded = reasons.astype("string").str.split(",").explode()
    return {str(k): int(v) for k, v in exploded.value_counts().sort_index().items()}


def match_spectra_to_gaia(
    spectra: Mapping[str, pd.DataFrame],
    gaia: pd.DataFrame,
    gaia_rejected: pd.DataFrame,
    radius_arcsec: float = SPEC_RADIUS_ARCSEC,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Match each survey's cleaned spectra to Gaia; one row per (survey, Gaia source).

    Returns ``(matched, report)``. ``matched`` holds the spectra's columns plus ``source_id`` and
    ``match_sep_arcsec``; ``report`` counts, per survey, rows in, ``no_gaia_match``, ``gaia_rejected``
    (with the Gaia cuts they fail), ``duplicate_in_survey`` and rows out (rows in = sum of the rest).
    """
    pool = pd.concat(
        [
            gaia[["source_id", "ra", "dec"]].assign(rejected_by=pd.NA),
            gaia_rejected[["source_id", "ra", "dec", "rejected_by"]],
        ],
        ignore_index=True,
    )
    pool["rejected_by"] = pool["rejected_by"].astype("string")
    pool_ra, pool_dec = pool["ra"].to_numpy(float), pool["dec"].to_numpy(float)
    good = pool["rejected_by"].isna().to_numpy()
    out, report = [], {}
    for survey, spec in spectra.items():
        idx, sep = sky_match(spec["ra"], spec["dec"], pool_ra, pool_dec, radius_arcsec)
        matched = idx >= 0
        to_good = matched & good[np.maximum(idx, 0)]
        to_bad = matched & ~to_good
        rows = spec[to_good].copy()
        rows["source_id"] = pool["source_id"].to_numpy()[idx[to_good]]
        rows["match_sep_arcsec"] = sep[to_good]
        # Several spectra of one star in the same survey: keep the highest S/N (ties: smallest survey_id).
        rows = rows.sort_values(["source_id", "snr", "survey_id"], ascending=[True, False, True], kind="stable")
        dup = rows.duplicated("source_id", keep="first").to_numpy()
        rows = rows[~dup]
        entry: dict[str, Any] = {
            "n_in": len(spec),
            "no_gaia_match": int((~matched).sum()),
            "gaia_rejected": int(to_bad.sum()),
            "gaia_rejected_by_cut": _split_reasons(pool["rejected_by"].iloc[idx[to_bad]]),
            "duplicate_in_survey": int(dup.sum()),
            "n_out": len(rows),
            "match_rate": float(matched.mean()) if len(spec) else float("nan"),
        }
        if "gaia_source_id_survey" in rows:
            listed = rows["gaia_source_id_survey"].to_numpy() >= 0
            agree = rows["source_id"].to_numpy()[listed] == rows["gaia_source_id_survey"].to_numpy()[listed]
            entry["agrees_with_survey_gaia_id"] = float(agree.mean()) if listed.any() else float("nan")
            rows = rows.drop(columns="gaia_source_id_survey")
        report[survey] = entry
        log.info(
            "%s: %d spectra, %d matched to a good Gaia source (%.2f%% matched at all), %d duplicates",
            survey,
            len(spec),
            int(to_good.sum()),
            100 * entry["match_rate"],
            entry["duplicate_in_survey"],
        )
        out.append(rows)
    matched_all = pd.concat(out, ignore_index=True) if out else pd.DataFrame()
    return matched_all, report


def select_by_priority(
    matched: pd.DataFrame, priority: Sequence[str] = DEFAULT_PRIORITY
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Keep one row per Gaia source: the one from the first survey in ``priority``.

    Adds ``n_surveys`` (how many surveys observed the star) and ``in_<survey>`` (bool, one per survey).
    Returns the kept rows and, per survey, the rows dropped as ``duplicate_lower_priority``.
    """
    unknown = sorted(set(matched["survey"].astype(str)) - set(priority))
    if unknown:
        raise ConfigError(f"survey(s) {', '.join(unknown)} missing from catalog.survey_priority {list(priority)}")
    rank = {s: i for i, s in enumerate(priority)}
    m = matched.assign(_rank=matched["survey"].astype(str).map(rank).to_numpy())
    m = m.sort_values(["source_id", "_rank"], kind="stable")
    first = ~m.duplicated("source_id", keep="first").to_numpy()
    m["n_surveys"] = m.groupby("source_id", sort=False)["survey"].transform("size").to_numpy().astype(np.int8)
    survey = m["survey"].astype(str).to_numpy()
    for s in priority:
        m[f"in_{s}"] = m["source_id"].isin(m["source_id"].to_numpy()[survey == s]).to_numpy()
    dropped = m[~first]["survey"].astype(str).value_counts()
    report = {s: {"duplicate_lower_priority": int(dropped.get(s, 0))} for s in priority}
    kept = m[first].drop(columns="_rank").reset_index(drop=True)
    return kept, report


def attach_photometry(
    stars: pd.DataFrame,
    ps1: pd.DataFrame,
    ps1_rejected: pd.DataFrame,
    ps1_best_neighbour: pd.DataFrame,
    tmass: pd.DataFrame,
    tmass_rejected: pd.DataFrame,
    tmass_best_neighbour: pd.DataFrame,
    unwise: pd.DataFrame,
    radii: Mapping[str, float] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """PS1, 2MASS and unWISE photometry of Gaia sources ``stars`` (columns source_id, ra, dec).

    Returns a frame aligned with ``stars`` (same order) holding ``ps1_objid``, ``tmass_designation``,
    ``unwise_objid`` (null where unmatched), the ``mag_/err_`` columns of the ten bands, and
    ``tmass_extended`` (True where the 2MASS counterpart has ``ext_key > 0``: the star must be dropped).
    """
    r = {**_RADII, **(radii or {})}
    out = pd.DataFrame(index=stars.index)
    report: dict[str, Any] = {}
    sid = stars["source_id"].to_numpy(np.int64)

    def via_best_neighbour(name, bn, clean, rejected, key, radius):
        bn = bn[bn["angular_distance"].to_numpy(float) < radius]
        if bn["source_id"].duplicated().any():
            bn = bn.sort_values(["source_id", "angular_distance"]).drop_duplicates("source_id")
        ids = bn[LINK_KEY]
        # integer ids (PS1 objID ~1e17) as nullable integers: a float64 reindex would round them
        ids = ids.astype("Int64") if ids.dtype.kind in "iu" else ids
        ext_id = pd.Series(ids.array, index=bn["source_id"].to_numpy()).reindex(sid)
        has = ext_id.notna().to_numpy()
        found = ext_id[has].to_numpy(dtype=np.int64) if ids.dtype == "Int64" else ext_id[has].to_numpy()
        clean_idx = pd.Index(clean[key]).get_indexer(found)
        rej = pd.Index(found).isin(rejected[key].to_numpy())
        pos = np.full(len(sid), -1, dtype=np.int64)
        pos[np.flatnonzero(has)] = clean_idx
        report[name] = {
            "n_stars": len(sid),
            "best_neighbour_within_radius": int(has.sum()),
            "counterpart_rejected": int(rej.sum()),
            "counterpart_missing_from_table": int(((clean_idx < 0) & ~rej).sum()),
            "matched": int((pos >= 0).sum()),
            "match_rate": float((pos >= 0).mean()) if len(sid) else float("nan"),
        }
        rejected_mask = np.zeros(len(sid), dtype=bool)
        rejected_mask[np.flatnonzero(has)[rej]] = True
        return pos, rejected_mask

    def take(clean, pos, key, out_key):
        ok = pos >= 0
        safe = np.where(ok, pos, 0) if len(clean) else np.zeros(0, dtype=np.int64)
        ids = clean[key].to_numpy()
        kind = "Int64" if ids.dtype.kind in "iu" else "string"
        out[out_key] = pd.array(np.where(ok, ids[safe], None) if len(clean) else [None] * len(pos), dtype=kind)
        for col in clean.columns:
            if col.startswith(("mag_", "err_")):
                out[col] = np.where(ok, clean[col].to_numpy(float)[safe], np.nan) if len(clean) else np.nan

    pos, _ = via_best_neighbour("ps1", ps1_best_neighbour, ps1, ps1_rejected, "objID", r["ps1"])
    take(ps1, pos, "objID", "ps1_objid")
    pos, ext = via_best_neighbour("tmass", tmass_best_neighbour, tmass, tmass_rejected, "designation", r["tmass"])
    take(tmass, pos, "designation", "tmass_designation")
    out["tmass_extended"] = ext
    report["tmass"]["extended_source_dropped"] = int(ext.sum())

    idx, _ = sky_match(stars["ra"], stars["dec"], unwise["ra"], unwise["dec"], r["unwise"])
    take(unwise, idx, "unwise_objid", "unwise_objid")
    report["unwise"] = {
        "n_stars": len(sid),
        "matched": int((idx >= 0).sum()),
        "match_rate": float((idx >= 0).mean()) if len(sid) else float("nan"),
    }
    return out, report
