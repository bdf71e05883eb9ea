"""Entry point of rule train_model: catalog in, trained model and its by-products out (results/model/)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import provenance
from ..bands import BAND_NAMES
from ..errors import ConvergenceError
from ..io import atomic_path, write_json, write_parquet
from . import covariance as cv
from . import likelihood, train
from .api import Domain, StellarModel
from .data import read_stars

log = logging.getLogger(__name__)

OUTPUTS = ("model", "normalisation", "history", "rounds", "reddening", "test_predictions", "summary", "provenance")


def _csv(df: pd.DataFrame, path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def _mean(x: np.ndarray) -> float:
    """The mean, NaN (null in the summary) when there is nothing to average."""
    return float(np.mean(x)) if len(x) else float("nan")


def run_training(catalog: str | Path, out: Mapping[str, str | Path], options: Mapping[str, Any]) -> dict[str, Any]:
    """Train on the catalog's train split; write the model, history, reddenings, test predictions."""
    t0 = time.perf_counter()
    stars = read_stars(catalog)
    t_read = time.perf_counter() - t0
    log.info("read %d stars from %s in %.1f s", len(stars), catalog, t_read)
    result = train.train(stars, options)
    o = train.options(options)
    verdict = train.convergence(result.rounds, o)
    if not verdict["converged"]:
        log.warning("the model has NOT converged: %s", verdict["advice"])
        if o["require_converged"]:
            raise ConvergenceError(
                f"train_model: {verdict['advice']}; or set train.require_converged: false to keep an unconverged "
                f"model (evidence: {verdict['checks']})"
            )
    train_set = stars.split == "train"
    domain = Domain.fit(
        result.norm.x(stars.theta[train_set]), stars.theta[train_set], o["domain"]["cell"], o["domain"]["min_stars"]
    )
    model = StellarModel(result.model, result.norm, domain)
    model.save(Path(out["model"]).parent)

    # Final reddenings and χ²/dof of every star under the final model (test stars from their own photometry).
    state = train.final_state(result.model, result.norm, stars, options)
    prep = likelihood.prepare(stars, result.norm)
    usable = prep.n_obs >= 2
    red = pd.DataFrame(
        {
            "source_id": stars.source_id,
            "split": stars.split,
            "ebv_prior": stars.ebv_prior,
            "sigma_ebv_prior": stars.sigma_ebv_prior,
            "ebv_fit": state.e,
            "sigma_ebv_fit": np.sqrt(state.var_e),
            "chi2_dof": state.chi2_dof,
            "n_dof": prep.n_obs - 1,
            "usable": usable,
        }
    )
    for j in range(1, model.components):  # K > 1 (paper Eq. 20): E_2 … E_K with their errors
        red[f"ebv_fit_{j + 1}"] = state.e_k[:, j - 1]
        red[f"sigma_ebv_fit_{j + 1}"] = np.sqrt(state.cov_e[:, j, j])
    write_parquet(red, out["reddening"])

    test = stars.split == "test"
    m_abs = model.predict_absolute_magnitudes(stars.theta[test])
    r = model.reddening_vector(stars.theta[test])
    mu = cv.distance_modulus(np.where(stars.parallax_usable[test], stars.parallax[test], np.nan))
    pred = pd.DataFrame(
        {"source_id": stars.source_id[test], "ebv_fit": state.e[test], "chi2_dof": state.chi2_dof[test]}
    )
    for i, b in enumerate(BAND_NAMES):
        pred[f"M_{b}"] = m_abs[:, i]
        pred[f"R_{b}"] = r[:, i]
        pred[f"m_pred_{b}"] = m_abs[:, i] + mu + state.e[test] * r[:, i]
    if model.components > 1:
        comps = model.reddening_components(stars.theta[test])
        extra = np.einsum("nk,nkb->nb", state.e_k[test], comps[:, 1:])
        for i, b in enumerate(BAND_NAMES):
            pred[f"m_pred_{b}"] += extra[:, i]
        for j in range(1, model.components):
            pred[f"ebv_fit_{j + 1}"] = state.e_k[test, j - 1]
    write_parquet(pred, out["test_predictions"])
    _csv(result.history, out["history"])
    _csv(result.rounds, out["rounds"])

    c = state.chi2_dof[test & usable]
    fin = np.isfinite(c)
    median_theta = np.median(stars.theta, axis=0)
    summary = {
        "n_stars": len(stars),
        "n_per_split": {s: int((stars.split == s).sum()) for s in ("train", "validation", "test")},
        "n_unusable": {s: int(((stars.split == s) & ~usable).sum()) for s in ("train", "validation", "test")},
        "final_loss": float(result.rounds["loss"].iloc[-1]),
        "final_val_loss": float(result.rounds["val_loss"].iloc[-1]),
        "test_mean_chi2_dof_lt5": _mean(c[fin & (c < 5)]),
        "test_mean_chi2_dof_lt10": _mean(c[fin & (c < 10)]),
        "test_fraction_chi2_dof_ge5": _mean(c[fin] >= 5),
        "test_chi2_definition": (
            "the schedule's own: with training's diagonal inflation (train.diag_inflation); the paper's "
            "definition, without it, is chi2 in results/validation/summary.json"
        ),
        "convergence": verdict,
        "schedule": {
            "batch_size": int(result.rounds["batch_size"].iloc[-1]),
            "epochs_per_round": result.rounds["epochs"].astype(int).tolist(),
            "steps_per_round": result.rounds["steps"].astype(int).tolist(),
            "total_steps": int(result.rounds["steps"].sum()),
        },
        "R_at_median_theta": dict(zip(BAND_NAMES, model.reddening_vector(median_theta)[0].tolist(), strict=True)),
        "extinction_components": model.components,
        "extinction_width": float(o["extinction_width"]),
        "R_components_at_median_theta": [
            dict(zip(BAND_NAMES, c.tolist(), strict=True)) for c in model.reddening_components(median_theta)[0]
        ],
        "median_theta": median_theta.tolist(),
        "seconds": {
            "read": t_read,
            "train": float(result.rounds["elapsed_s"].iloc[-1]),
            "total": time.perf_counter() - t0,
        },
    }
    write_json(summary, out["summary"])
    provenance.write(
        out["provenance"], "train_model", {"train": o}, catalog=str(catalog), files_read=provenance.files_read(catalog)
    )
    log.info(
        "done: test <chi2/dof> %.3f (chi2/dof < 10), %.2f%% with chi2/dof >= 5 (with training's diagonal "
        "inflation), %.1f s in all",
        summary["test_mean_chi2_dof_lt10"],
        100 * summary["test_fraction_chi2_dof_ge5"],
        summary["seconds"]["total"],
    )
    return summary
