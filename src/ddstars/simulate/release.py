"""The simulated sky as the Gaia DR3 era's archives serve it (config ``archives.release: dr3``).

The DR3 tables are a seeded rewrite of the sky's DR2-era tables, so both releases describe the same stars and
every DR3 cut is tested against the truth as the DR2 cuts are:

* ``gaia_dr3_source``: the DR2 rows with DR3's columns. ``ruwe`` replaces the astrometric χ²: a row that fails
  DR2's cut (the injected ``fail_gaia_astrometric_chi2``) gets ruwe in 1.45–4, the others 1–1.35. The corrected
  BP/RP flux excess C* of Riello et al. (2021) is drawn within ±2 σ_C*(G) and, for a fraction
  :data:`BP_RP_EXCESS_FRACTION` of the sources with BP and RP, at 5–20 σ (``fail_gaia_bp_rp_excess``);
  ``phot_bp_rp_excess_factor`` = f(BP − RP) + C*. Sources with BP and RP are 5-parameter solutions with
  ν_eff from their colour; the others 6-parameter ones with a pseudocolour. The published parallax is the DR2
  one plus the Lindegren et al. (2021) zero-point (``gaiadr3-zeropoint``) where that recipe is valid, plus
  :data:`ZERO_POINT_OUTSIDE` [mas] where it is not, so the catalog's correction recovers the true parallax.
* ``gaia_dr3_panstarrs1_best_neighbour`` and ``gaia_dr3_tmass_psc_xsc_best_neighbour``: the DR2 links under
  DR3's names (2MASS: ``original_psc_source_id``, ``clean_tmass_psc_xsc_oid``). The sky keeps one source_id per
  star in both releases (the real DR3 renumbers some; ``gaiadr3.dr2_neighbourhood`` maps them).
* ``apogee_dr17_allstar``: DR16's rows with ``GAIAEDR3_SOURCE_ID`` and ``EXTRATARG``, and for a fraction
  :data:`APOGEE_DUPLICATE_FRACTION` of the stars a second, lower-S/N row of the same APOGEE_ID with EXTRATARG
  bit 4 (DR17's duplicates).
* ``galah_dr4``: DR2's rows with ``flag_sp`` (non-zero where DR2's ``flag_cannon`` is), ``snr_px_ccd1..4`` (1.5
  × DR2's, the red camera's 1.5 × DR2's best: DR4's S/N cut fails the stars DR2's does) and
  ``gaiadr3_source_id``.

The truth of what this adds is ``truth_dr3`` (one row per star: ``source_id``, ``fail_gaia_ruwe``,
``fail_gaia_bp_rp_excess``, ``dr3_parallax_zero_point`` [mas, what was added]); the tables the releases share
(PS1, 2MASS, unWISE, LAMOST) are the DR2 sky's own files.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import registry
from ..catalog import cuts
from .surveys import galah_sobject_id

DR3 = registry.release("dr3")
DR2 = registry.release(registry.DEFAULT_RELEASE)
#: The DR3 release's own tables, each with the DR2-era table it is rewritten from (the others are shared).
COUNTERPARTS: dict[str, str] = registry.counterparts("dr3")
DR3_TABLES: tuple[str, ...] = tuple(COUNTERPARTS)
DR2_INPUTS: tuple[str, ...] = tuple(COUNTERPARTS.values())
BP_RP_EXCESS_FRACTION = 0.02
APOGEE_DUPLICATE_FRACTION = 0.03
ZERO_POINT_OUTSIDE = -0.017  # mas: the quasars' median parallax in EDR3 (Lindegren et al. 2021)
SEED_SALT = 3  # the DR3 view's random stream: SeedSequence([simulate.seed, SEED_SALT])


def nu_eff(bp_rp: np.ndarray) -> np.ndarray:
    """ν_eff [μm⁻¹] of a 5-parameter solution from its colour (Lindegren et al. 2021, Eq. 3; clipped as there)."""
    x = np.clip(np.asarray(bp_rp, dtype=np.float64), -1e9, 1e9)
    return np.clip(1.76 - (1.61 / np.pi) * np.arctan(0.531 * x), 1.24, 1.72)


def ecliptic_latitude(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Ecliptic latitude [deg] of ICRS positions (astropy's barycentric true ecliptic)."""
    from astropy.coordinates import BarycentricTrueEcliptic, SkyCoord

    c = SkyCoord(np.asarray(ra), np.asarray(dec), unit="deg", frame="icrs")
    return c.transform_to(BarycentricTrueEcliptic()).lat.deg


def gaia_dr3(gaia: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``gaia_dr3_source`` from the DR2 rows, and the per-source truth of what changed (see the module)."""
    n = len(gaia)
    chi2_fails = cuts.gaia_cuts(gaia, DR2.surveys["gaia"].table).fails["astrometric_chi2"].to_numpy()
    ruwe = np.where(chi2_fails, rng.uniform(1.45, 4.0, n), np.minimum(1.0 + 0.12 * np.abs(rng.normal(size=n)), 1.35))
    g = cuts.float_column(gaia, "phot_g_mean_mag")
    bp, rp = cuts.float_column(gaia, "phot_bp_mean_mag"), cuts.float_column(gaia, "phot_rp_mean_mag")
    colour = bp - rp
    five = np.isfinite(colour)
    bad = five & (rng.random(n) < BP_RP_EXCESS_FRACTION)
    sigma = cuts.bp_rp_excess_sigma(g)
    c_star = np.where(bad, rng.choice([-1.0, 1.0], n) * rng.uniform(5.0, 20.0, n), rng.uniform(-2.0, 2.0, n)) * sigma
    excess = np.where(five, cuts.bp_rp_excess_expected(np.where(five, colour, 0.0)) + c_star, np.nan)
    out = gaia.drop(columns=["astrometric_chi2_al", "astrometric_n_good_obs_al"]).copy()
    out["ruwe"] = ruwe.astype(np.float32)
    out["phot_bp_rp_excess_factor"] = excess.astype(np.float32)
    out["astrometric_params_solved"] = np.where(five, 31, 95).astype(np.int16)
    out["nu_eff_used_in_astrometry"] = np.where(five, nu_eff(np.where(five, colour, 0.0)), np.nan).astype(np.float32)
    # 6-parameter pseudocolours scatter beyond the zero-point recipe's 1.24-1.72: those parallaxes stay uncorrected
    out["pseudocolour"] = np.where(five, np.nan, 1.48 + rng.normal(0, 0.12, n)).astype(np.float32)
    out["ecl_lat"] = ecliptic_latitude(gaia["ra"], gaia["dec"])
    zp = cuts.gaia_dr3_parallax_zero_point(out, DR3.surveys["gaia"].table)
    added = np.where(np.isfinite(zp), zp, ZERO_POINT_OUTSIDE)
    out["parallax"] = gaia["parallax"].to_numpy(np.float64) + added
    out["parallax_over_error"] = (out["parallax"] / out["parallax_error"]).astype(np.float32)
    truth = pd.DataFrame(
        {
            "source_id": gaia["source_id"].to_numpy(np.int64),
            "fail_gaia_ruwe": chi2_fails,
            "fail_gaia_bp_rp_excess": bad,
            "dr3_parallax_zero_point": added,
            "dr3_zero_point_valid": np.isfinite(zp),
        }
    )
    return out, truth


def apogee_dr17(apogee: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """``apogee_dr17_allstar`` from DR16's rows, with DR17's duplicates appended (see the module)."""
    out = apogee.rename(columns={"GAIA_SOURCE_ID": "GAIAEDR3_SOURCE_ID"}).copy()
    out["EXTRATARG"] = np.zeros(len(out), dtype=np.int64)
    dup = out[rng.random(len(out)) < APOGEE_DUPLICATE_FRACTION].copy()
    dup["SNR"] = (dup["SNR"].to_numpy() * rng.uniform(0.3, 0.9, len(dup))).astype(np.float32)
    dup["EXTRATARG"] = cuts.APOGEE_DUPLICATE
    dup["TELESCOPE"] = np.where(dup["TELESCOPE"] == "apo25m", "apo1m", dup["TELESCOPE"])
    return pd.concat([out, dup], ignore_index=True)


def galah_dr4(galah: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """``galah_dr4`` from DR2's rows (see the module); ``truth``: the sky's ``galah_id`` and ``source_id``."""
    t = truth[truth["galah_id"] >= 0]
    gaia_id = pd.Series(t["source_id"].to_numpy(), index=galah_sobject_id(t["galah_id"].to_numpy()))
    out = galah.drop(columns=["flag_cannon", *(f"snr_c{i}" for i in range(1, 5))])
    # DR4's per-CCD S/N: DR2's times 1.5, the red camera's set to 1.5 × DR2's best, so that DR4's snr_px_ccd3 > 30
    # and DR2's "any > 20" fail the same stars (the truth's fail_galah_low_snr)
    snr = np.stack([galah[f"snr_c{i}"].to_numpy(np.float64) for i in range(1, 5)], axis=1) * 1.5
    snr[:, 2] = snr.max(axis=1)
    for i in range(4):
        out[f"snr_px_ccd{i + 1}"] = snr[:, i].astype(np.float32)
    out["flag_sp"] = np.where(galah["flag_cannon"].to_numpy() != 0, 1, 0).astype(np.int32)
    out["gaiadr3_source_id"] = gaia_id.reindex(galah["sobject_id"].to_numpy()).fillna(-1).to_numpy(np.int64)
    return out


def dr3_tables(dr2: dict[str, pd.DataFrame], truth: pd.DataFrame, seed: int) -> dict[str, pd.DataFrame]:
    """The DR3 release's own tables (:data:`DR3_TABLES`) and ``truth_dr3`` from the DR2 sky's tables
    (:data:`DR2_INPUTS`) and its truth (``source_id``, ``galah_id``)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, SEED_SALT]))
    old = DR2.survey_tables() | {f"{s}_link": t for s, t in DR2.links().items()}
    new = DR3.survey_tables() | {f"{s}_link": t for s, t in DR3.links().items()}
    gaia, gaia_truth = gaia_dr3(dr2[old["gaia"]], rng)
    tmass = dr2[old["tmass_link"]].rename(columns={DR2.link_keys()["tmass"]: DR3.link_keys()["tmass"]})
    tmass.insert(1, "clean_tmass_psc_xsc_oid", np.arange(1, len(tmass) + 1, dtype=np.int64))
    ps1 = dr2[old["ps1_link"]].rename(columns={DR2.link_keys()["ps1"]: DR3.link_keys()["ps1"]})
    star_truth = gaia_truth[gaia_truth["source_id"].isin(truth["source_id"])].reset_index(drop=True)
    out = {
        new["gaia"]: gaia,
        new["ps1_link"]: ps1,
        new["tmass_link"]: tmass,
        new["apogee"]: apogee_dr17(dr2[old["apogee"]], rng),
        new["galah"]: galah_dr4(dr2[old["galah"]], truth),
    }
    if set(out) != set(DR3_TABLES):
        raise RuntimeError(f"the DR3 view writes {sorted(out)}, the registry's DR3 tables are {sorted(DR3_TABLES)}")
    return {**out, "truth_dr3": star_truth}


def write_dr3(inputs: dict[str, Any], truth_path: Any, out: dict[str, Any], seed: int) -> dict[str, int]:
    """Rule simulate_release_dr3: read the DR2 sky's tables and truth, write the DR3 tables (atomically)."""
    from ..io import write_parquet

    dr2 = {name: pd.read_parquet(inputs[name]) for name in DR2_INPUTS}
    truth = pd.read_parquet(truth_path, columns=["source_id", "galah_id"])
    tables = dr3_tables(dr2, truth, seed)
    for name, df in tables.items():
        write_parquet(df, out[name])
    return {name: len(df) for name, df in tables.items()}
