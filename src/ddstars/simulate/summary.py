"""Summary of a simulated sky: what it holds, against its configuration and the paper's Table 1."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .. import registry
from ..bands import BAND_NAMES
from ..io import atomic_path, write_json
from .galaxy import COMPONENTS, OVERLAP_PAIRS

log = logging.getLogger(__name__)

# Paper Table 1 (N = 2,888,361): fraction of stars per spectroscopic survey, with each band, and with
# parallax S/N > 5 (counts from the registry).
_PAPER = {k: n / registry.PAPER_TABLE1_N for k, n in registry.paper_table1().items()}
PAPER_SURVEY_FRACTION = {s: _PAPER[s] for s in registry.SPECTROSCOPIC}
PAPER_TABLE1_FRACTION = {k: f for k, f in _PAPER.items() if k not in PAPER_SURVEY_FRACTION}

# Injected cut failures: truth column -> (config key, truth column of the rows it applies to).
INJECTED = {
    "inj_gaia_visibility_periods": ("gaia_visibility_periods", None),
    "inj_gaia_astrometric_chi2": ("gaia_astrometric_chi2", None),
    "inj_gaia_phot_g_n_obs": ("gaia_phot_g_n_obs", None),
    "inj_lamost_low_snr": ("lamost_low_snr", "in_lamost"),
    "inj_lamost_qflag_chi2": ("lamost_qflag_chi2", "in_lamost"),
    "inj_lamost_not_single": ("lamost_not_single", "in_lamost"),
    "inj_lamost_large_errors": ("large_label_errors", "in_lamost"),
    "inj_apogee_star_warn": ("apogee_star_warn", "in_apogee"),
    "inj_apogee_star_bad": ("apogee_star_bad", "in_apogee"),
    "inj_apogee_large_errors": ("large_label_errors", "in_apogee"),
    "inj_galah_flag_cannon": ("galah_flag_cannon", "in_galah"),
    "inj_galah_low_snr": ("galah_low_snr", "in_galah"),
    "inj_galah_large_errors": ("large_label_errors", "in_galah"),
    "inj_ps1_extended": ("ps1_extended", "has_ps1"),
    "inj_tmass_use_src": ("tmass_use_src", "has_tmass"),
    "inj_tmass_gal_contam": ("tmass_gal_contam", "has_tmass"),
    "inj_tmass_ext_key": ("tmass_ext_key", "has_tmass"),
}


def injected_rates(truth: pd.DataFrame, failures: dict[str, float]) -> dict[str, dict[str, float]]:
    """Measured injection rate of each cut among the rows it applies to, with its configured value."""
    t = truth.assign(has_ps1=truth["ps1_objid"] >= 0, has_tmass=truth["tmass_designation"] != "")
    out = {}
    for col, (key, among) in INJECTED.items():
        rows = t[among].to_numpy() if among else np.ones(len(t), dtype=bool)
        n = int(rows.sum())
        out[col] = {
            "configured": failures[key],
            "measured": float(t[col].to_numpy()[rows].mean()) if n else float("nan"),
            "rows": n,
        }
    return out


def summarize(
    truth_path: str | Path,
    sfd_dir: str | Path,
    bayestar_path: str | Path,
    cfg: dict[str, Any],
    summary_path: str | Path,
    coverage_path: str | Path,
) -> dict[str, Any]:
    """Write ``summary.json`` (counts, mixes, injected rates, dust-map fidelity) and ``coverage.csv``."""
    from ..dustmaps_io import query_bayestar, query_sfd

    truth = pq.read_table(truth_path).to_pandas()
    n = len(truth)
    plx_snr = truth["obs_parallax_mas"] / truth["obs_parallax_error_mas"]
    cover = pd.DataFrame(
        {
            "band": [*BAND_NAMES, "parallax_snr_gt_5"],
            "fraction_simulated": [*(truth[f"expect_{b}"].mean() for b in BAND_NAMES), (plx_snr > 5).mean()],
        }
    )
    cover["fraction_paper_table1"] = cover["band"].map(PAPER_TABLE1_FRACTION)
    # Dust maps against the true reddening: SFD for stars > 400 pc off the plane, Bayestar where covered.
    z_kpc = truth["dist_kpc"] * np.sin(np.radians(truth["b"]))
    high = np.abs(z_kpc).to_numpy() > 0.4
    e_sfd = query_sfd(sfd_dir, truth["l"].to_numpy(), truth["b"].to_numpy())
    e_true = truth["true_ebv"].to_numpy()
    e_b19 = query_bayestar(
        bayestar_path, truth["l"].to_numpy(), truth["b"].to_numpy(), truth["dist_kpc"].to_numpy(), mode="best"
    )
    cov_b19 = np.isfinite(e_b19)
    sfd_ok = np.abs(e_sfd - e_true) <= np.hypot(0.1 * e_sfd, 0.02)
    summary = {
        "n_stars": n,
        "surveys": {
            s: {
                "stars": int(truth[f"in_{s}"].sum()),
                "fraction": float(truth[f"in_{s}"].mean()),
                "fraction_paper": PAPER_SURVEY_FRACTION[s],
            }
            for s in registry.SPECTROSCOPIC
        },
        "overlaps": {f"{a}_{b}": int((truth[f"in_{a}"] & truth[f"in_{b}"]).sum()) for a, b in OVERLAP_PAIRS},
        "components": {c: float((truth["component"] == i).mean()) for i, c in enumerate(COMPONENTS)},
        "giants_fraction_logg_lt_3.5": float((truth["true_logg"] < 3.5).mean()),
        "percentiles_1_50_99": {
            k: np.percentile(truth[k], [1, 50, 99]).round(4).tolist()
            for k in ("true_teff", "true_logg", "true_feh", "true_ebv", "dist_kpc", "true_mag_gaia_g")
        },
        "parallax_snr_gt_5": float((plx_snr > 5).mean()),
        "negative_parallax": float((truth["obs_parallax_mas"] < 0).mean()),
        "band_coverage": dict(zip(cover["band"], cover["fraction_simulated"].round(4), strict=True)),
        "injected_rates": injected_rates(truth, cfg["failures"]),
        "label_offsets_injected": cfg["label_offsets"],
        "dust_maps": {
            "sfd_vs_true_median_ratio_high_latitude": float(np.median(e_sfd[high] / np.maximum(e_true[high], 1e-4))),
            "sfd_within_10pct_high_latitude": float(sfd_ok[high].mean()),
            "bayestar_coverage": float(cov_b19.mean()),
            "bayestar_vs_true_median_abs_diff": float(np.median(np.abs(e_b19[cov_b19] - e_true[cov_b19]))),
        },
    }
    write_json(summary, summary_path)
    with atomic_path(coverage_path) as tmp:
        cover.to_csv(tmp, index=False, float_format="%.4f")
    log.info("summary: %d stars; coverage %s", n, summary["band_coverage"])
    return summary
