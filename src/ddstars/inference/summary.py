"""The inference stage's summary: calibration and accuracy against the simulated truth, a prior-only baseline,
speed and memory from the groups' manifests (rule inference_summary; results/inference/summary.json).

* **Calibration**: the fraction of stars whose true value lies in the 68 % ([p16, p84]) and 95 %
  ([p2.5, p97.5]) intervals, per parameter, for the stars the flags call valid (flags == 0) and for all.
* **Accuracy**: bias (median of p50 - true) and robust scatter (1.4826 × the median absolute deviation) of
  every parameter, by Gaia G and by parallax S/N, and the same for the **prior-only baseline**: the same stars
  inferred from their parallax and the priors alone (no photometry), which says what the photometry adds.
  Distances are compared as d50 / d_true - 1.
* **Checks** of the issue's targets: for stars with ϖ/σ > 10 and ≥ 8 bands, the median |ΔE| and the distance
  scatter.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io import write_json
from .engine import Photometry, posterior
from .stage import galaxy_parameters, grid_for, priors_for, read_results

log = logging.getLogger(__name__)

PARAMS = ("teff", "logg", "feh", "mu", "ebv", "dist")
G_BINS = (-np.inf, 12.0, 14.0, 16.0, np.inf)
SNR_BINS = (-np.inf, 5.0, 10.0, np.inf)
TRUTH_COLUMNS = {"true_teff": "teff", "true_logg": "logg", "true_feh": "feh", "dm": "mu", "true_ebv": "ebv"}


def join_truth(stars: pd.DataFrame, truth_path: str | Path | None) -> pd.DataFrame:
    """``stars`` with columns true_teff, true_logg, true_feh, true_mu, true_ebv, true_dist_kpc (if truth)."""
    if truth_path is None:
        return stars
    truth = pd.read_parquet(truth_path, columns=["source_id", *TRUTH_COLUMNS]).rename(
        columns={k: f"true_{v}" for k, v in TRUTH_COLUMNS.items()}
    )
    out = stars.merge(truth, on="source_id", how="left", validate="one_to_one")
    out["true_dist_kpc"] = 10 ** (out["true_mu"] / 5 + 1) / 1000
    return out


def _errors(df: pd.DataFrame, p: str, truth: pd.DataFrame | None = None) -> np.ndarray:
    """Posterior median minus truth of parameter ``p`` (distance: d50 / d_true - 1); the truth from ``truth``
    (rows aligned with ``df``) or from ``df`` itself."""
    t = df if truth is None else truth
    if p == "dist":
        return df["dist_kpc_p50"].to_numpy() / t["true_dist_kpc"].to_numpy() - 1
    return df[f"{p}_p50"].to_numpy() - t[f"true_{p}"].to_numpy()


def _stat(err: np.ndarray) -> dict[str, Any]:
    err = err[np.isfinite(err)]
    if not len(err):
        return {"n": 0, "bias": None, "scatter": None}
    med = float(np.median(err))
    return {"n": int(len(err)), "bias": med, "scatter": float(1.4826 * np.median(np.abs(err - med)))}


def calibration(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    out = {}
    for p in PARAMS:
        t = df["true_dist_kpc"] if p == "dist" else df[f"true_{p}"]
        col = "dist_kpc" if p == "dist" else p
        c68 = (df[f"{col}_p16"] <= t) & (t <= df[f"{col}_p84"])
        c95 = (df[f"{col}_p2.5"] <= t) & (t <= df[f"{col}_p97.5"])
        out[p] = {"c68": float(c68.mean()), "c95": float(c95.mean()), "n": int(len(df))}
    return out


def accuracy(df: pd.DataFrame, baseline: pd.DataFrame | None) -> pd.DataFrame:
    """Bias and scatter per parameter by G and by parallax S/N (and overall), beside the prior-only baseline's
    on the stars it was computed for."""
    rows = []
    snr = (df["parallax"] / df["parallax_error"]).to_numpy()
    g = df["mag_gaia_g"].to_numpy()
    bins = [("all", "all", np.ones(len(df), dtype=bool))]
    bins += [("G", _label(lo, hi), (g >= lo) & (g < hi)) for lo, hi in zip(G_BINS[:-1], G_BINS[1:], strict=True)]
    bins += [
        ("parallax_snr", _label(lo, hi), (snr >= lo) & (snr < hi))
        for lo, hi in zip(SNR_BINS[:-1], SNR_BINS[1:], strict=True)
    ]
    base_idx = None
    if baseline is not None:
        base_idx = df["source_id"].isin(baseline["source_id"]).to_numpy()
        b = baseline.set_index("source_id").loc[df["source_id"][base_idx]].reset_index()
    for kind, name, m in bins:
        for p in PARAMS:
            row = {"by": kind, "bin": name, "parameter": p, **_stat(_errors(df[m], p))}
            if base_idx is not None:
                mb = m[base_idx]
                st = _stat(_errors(b[mb], p, truth=df[base_idx][mb]))
                row |= {"baseline_n": st["n"], "baseline_bias": st["bias"], "baseline_scatter": st["scatter"]}
            rows.append(row)
    return pd.DataFrame(rows)


def _label(lo: float, hi: float) -> str:
    if not np.isfinite(lo):
        return f"<{hi:g}"
    if not np.isfinite(hi):
        return f">={lo:g}"
    return f"{lo:g}-{hi:g}"


def prior_only(
    model_dir: str | Path,
    stars: pd.DataFrame,
    cfg: Mapping[str, Any],
    *,
    sfd_dir,
    bayestar_file,
    simulated_galaxy=None,
) -> pd.DataFrame:
    """The stars inferred from their parallax and the priors alone: every band unobserved."""
    from ..bands import BAND_NAMES
    from ..model import load_model
    from .stage import engine_options

    model = load_model(model_dir, outside="ignore")
    grid = grid_for(model, cfg)
    priors, _ = priors_for(stars, cfg, galaxy_parameters(cfg, simulated_galaxy), sfd_dir, bayestar_file)
    nan = np.full((len(stars), len(BAND_NAMES)), np.nan)
    ph = Photometry(
        nan,
        nan,
        stars["parallax"].to_numpy(float),
        stars["parallax_error"].to_numpy(float),
        np.zeros(len(stars)),
        np.ones(len(stars)),
        priors,
    )
    table, _ = posterior(grid, ph, seed=int(cfg["seed"]) + 1, **engine_options(cfg))
    return pd.concat([stars[["source_id"]].reset_index(drop=True), table], axis=1)


def summarize(
    manifests: Sequence[str | Path],
    out_json: str | Path,
    out_accuracy: str | Path,
    cfg: Mapping[str, Any],
    *,
    model_dir: str | Path,
    truth_path: str | Path | None,
    sfd_dir,
    bayestar_file,
    simulated_galaxy=None,
) -> dict[str, Any]:
    groups = [json.loads(Path(m).read_text()) for m in manifests]
    stars = join_truth(read_results(manifests, None), truth_path)
    stars = stars.drop(columns=[c for c in stars.columns if c.startswith("samples_")])
    valid = stars["flags"].to_numpy() == 0
    computed = sum(g["computed_stars"] for g in groups)
    seconds = sum(g["computed_seconds"] for g in groups)
    threads = max((g["threads"] for g in groups), default=1)
    summary: dict[str, Any] = {
        "stars": int(len(stars)),
        "valid": int(valid.sum()),
        "flags": {
            "outside_domain": int((stars["flags"] & 1 > 0).sum()),
            "poor_fit": int((stars["flags"] & 2 > 0).sum()),
            "multimodal": int((stars["flags"] & 4 > 0).sum()),
            "few_samples": int((stars["flags"] & 8 > 0).sum()),
        },
        "speed": {
            "computed_stars": int(computed),
            "computed_seconds": round(seconds, 2),
            "stars_per_second_per_thread": round(computed / seconds / threads, 1) if seconds else None,
            "threads_per_job": threads,
            "grid_nodes": next((g["grid_nodes"] for g in groups if g["grid_nodes"]), None),
            "peak_rss_mb_max": max((g["peak_rss_mb"] for g in groups), default=None),
        },
        "partitions": int(sum(len(g["partitions"]) for g in groups)),
        "truth": truth_path is not None,
    }
    if truth_path is not None and len(stars):
        baseline = None
        n_base = min(int(cfg["baseline_stars"]), len(stars))
        if n_base:
            pick = np.sort(np.random.default_rng(int(cfg["seed"])).choice(len(stars), n_base, replace=False))
            baseline = prior_only(
                model_dir,
                stars.iloc[pick].reset_index(drop=True),
                cfg,
                sfd_dir=sfd_dir,
                bayestar_file=bayestar_file,
                simulated_galaxy=simulated_galaxy,
            )
        summary["calibration_valid"] = calibration(stars[valid])
        summary["calibration_all"] = calibration(stars)
        table = accuracy(stars[valid], baseline)
        write_table(table, out_accuracy)
        summary["accuracy"] = table.to_dict(orient="records")
        snr = (stars["parallax"] / stars["parallax_error"]).to_numpy()
        sel = valid & (snr > 10) & (stars["n_bands"].to_numpy() >= 8)
        e = np.abs(_errors(stars[sel], "ebv"))
        dd = _errors(stars[sel], "dist")
        summary["precise_parallax"] = {
            "selection": "flags == 0, parallax S/N > 10, >= 8 bands",
            "n": int(sel.sum()),
            "median_abs_ebv_error": float(np.median(e)) if len(e) else None,
            "distance_scatter_robust": _stat(dd)["scatter"],
            "distance_scatter_std": float(np.std(dd)) if len(dd) else None,
            "targets": {"median_abs_ebv_error": 0.03, "distance_scatter": 0.05},
        }
    else:
        write_table(pd.DataFrame(columns=["by", "bin", "parameter", "n", "bias", "scatter"]), out_accuracy)
    write_json(summary, out_json)
    return summary


def figure_table(manifests: Sequence[str | Path], truth_path: str | Path | None, bayestar_file) -> pd.DataFrame:
    """The stage's stars joined with the truth (where known) and ``map_ebv``, the Bayestar map's median E at
    each star's inferred median distance (NaN outside the map): the table of the stage's figures."""
    from ..dustmaps_io import query_bayestar

    stars = join_truth(read_results(manifests, None), truth_path)
    stars["map_ebv"] = query_bayestar(
        bayestar_file, stars["l"].to_numpy(), stars["b"].to_numpy(), stars["dist_kpc_p50"].to_numpy(), mode="median"
    )
    return stars


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
