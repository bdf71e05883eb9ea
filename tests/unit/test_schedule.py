"""The training schedule counted in optimiser steps, the convergence verdict, and what a truncated schedule
does: a WARNING, a verdict in the summary, and with train.require_converged a failed job."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ddstars.bands import BAND_NAMES
from ddstars.errors import ConvergenceError
from ddstars.model import train

PAPER_TRAIN_STARS = 1_856_000  # 1,812 steps per epoch at batch 1024 (the released model's Adam step count)


def _steps(sched: train.Schedule, n: int) -> int:
    return sched.epochs_for(n) * -(-n // sched.batch_size)


def test_the_paper_size_gets_the_paper_schedule():
    o = train.options(None)
    s = train.schedule(PAPER_TRAIN_STARS, o)
    assert (s.batch_size, s.epochs_for(PAPER_TRAIN_STARS)) == (o["batch_size"], o["epochs"]) == (1024, 25)
    assert _steps(s, PAPER_TRAIN_STARS) == 25 * 1813


@pytest.mark.parametrize("n", [50, 3_500, 14_000, 62_677, 70_000, 300_000, 700_000, 3_000_000])
def test_every_size_gets_at_least_the_step_floor_at_the_largest_batch_that_reaches_it(n):
    o = train.options(None)
    s = train.schedule(n, o)
    assert _steps(s, n) >= o["min_steps_per_round"]
    assert o["min_batch_size"] <= s.batch_size <= o["batch_size"]
    assert s.epochs_for(n) >= o["epochs"]
    if s.batch_size < o["batch_size"]:  # halved only because the configured epochs at twice the batch fall short
        assert o["epochs"] * -(-n // (2 * s.batch_size)) < o["min_steps_per_round"]
    if s.epochs_for(n) > o["epochs"]:  # more epochs only at the smallest batch, and no more than the floor needs
        assert s.batch_size == o["min_batch_size"]
        assert (s.epochs_for(n) - 1) * -(-n // s.batch_size) < o["min_steps_per_round"]


@pytest.mark.parametrize("n", [500, 62_677, 2_000_000])
def test_min_steps_zero_gives_exactly_the_configured_epochs_and_batch(n):
    o = train.options({"min_steps_per_round": 0, "epochs": 7, "batch_size": 512})
    s = train.schedule(n, o)
    assert (s.batch_size, s.epochs_for(n)) == (512, 7)


ROUNDS = Path(__file__).resolve().parents[1] / "data" / "rounds"


def test_the_verdict_separates_the_paper_schedule_from_the_step_floor_on_the_default_sky():
    """rounds.csv of two real runs on the default sky (62,677 training stars): the paper's 25 epochs at batch
    1024 (1,550 steps a round; R_G 12 % below the truth) and the default step floor (16,000 steps a round)."""
    o = train.options(None)
    paper = train.convergence(pd.read_csv(ROUNDS / "paper_schedule_default_sky.csv"), o)
    assert not paper["converged"]
    assert not paper["checks"]["loss_drop"]["ok"] and not paper["checks"]["r_drift"]["ok"]
    assert "train.min_steps_per_round" in paper["advice"]
    floor = train.convergence(pd.read_csv(ROUNDS / "step_floor_default_sky.csv"), o)
    assert floor["converged"] and "advice" not in floor
    assert floor["checks"]["r_drift"]["rounds"] == [14, 19]


def _rounds(loss_drop, r_g):
    n = len(loss_drop)
    df = pd.DataFrame({"round": np.arange(n), "loss_drop": loss_drop})
    for b in BAND_NAMES:
        df[f"r_{b}"] = 1.0
    df["r_gaia_g"] = r_g
    return df


def test_each_check_fails_on_its_own():
    o = train.options(None)
    settled, steady = [0.5, 0.005, 0.004, 0.002, 0.001, 0.001, 0.0005], [1.0, 2.2, 2.2, 2.2, 2.2, 2.201, 2.2]
    assert train.convergence(_rounds(settled, steady), o)["converged"]  # round 0 is not judged
    v = train.convergence(_rounds([0.5, 0.005, 0.03, 0.002, 0.001, -0.001, 0.0005], steady), o)
    assert not v["converged"] and v["checks"]["loss_drop"]["round"] == 2 and v["checks"]["r_drift"]["ok"]
    v = train.convergence(_rounds([0.5, 0.005, 0.004, 0.002, 0.001, -0.02, 0.0005], steady), o)  # a rising loss
    assert not v["converged"] and v["checks"]["loss_drop"]["round"] == 5
    walking = [1.0, 2.19, 2.2, 2.21, 2.22, 2.23, 2.24]  # small steps, all one way: 2.3 % over the last 5 rounds
    v = train.convergence(_rounds(settled, walking), o)
    assert not v["converged"] and v["checks"]["loss_drop"]["ok"] and not v["checks"]["r_drift"]["ok"]
    assert v["checks"]["r_drift"]["value"] == pytest.approx(2.24 / 2.19 - 1)


def _outputs(d):
    from ddstars.model.stage import OUTPUTS

    names = ("model.keras", "normalisation.json", "history.csv", "rounds.csv", "reddening.parquet")
    names += ("test_predictions.parquet", "summary.json", "provenance.json")
    return {k: d / n for k, n in zip(OUTPUTS, names, strict=True)}


def test_a_truncated_schedule_warns_and_fails_when_convergence_is_required(small_catalog, tmp_path, caplog):
    from ddstars.model.stage import run_training

    # about 60 steps a round, far too few (and no outlier cut, which such a model would fail for every star)
    truncated = {
        "n_rounds": 3,
        "epochs": 2,
        "min_steps_per_round": 0,
        "chi2_cut": {"start": 1e6, "end": 1e5, "rounds": 2},
    }
    with caplog.at_level(logging.WARNING, logger="ddstars"):
        summary = run_training(small_catalog["out"] / "stars", _outputs(tmp_path / "a"), truncated)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("has NOT converged" in m and "min_steps_per_round" in m for m in warnings), warnings
    assert summary["convergence"]["converged"] is False
    on_disk = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert on_disk["convergence"]["converged"] is False
    assert on_disk["schedule"]["steps_per_round"] == pd.read_csv(tmp_path / "a" / "rounds.csv")["steps"].tolist()
    rounds = pd.read_csv(tmp_path / "a" / "rounds.csv")
    assert {"loss_drop", "r_change", "r_gaia_g", "r_tmass_ks", "steps", "epochs", "batch_size"} <= set(rounds.columns)
    assert (rounds["epochs"] == 2).all() and rounds["loss_drop"].abs().max() > 0.01  # far from settled
    with pytest.raises(ConvergenceError, match="min_steps_per_round.*require_converged: false"):
        run_training(small_catalog["out"] / "stars", _outputs(tmp_path / "b"), {**truncated, "require_converged": True})
    assert not (tmp_path / "b" / "model.keras").exists()
