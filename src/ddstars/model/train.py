"""Training schedule of the paper (METHOD.md §4): rounds of epochs, reddening re-estimation in between.

Per round k (``n_rounds`` of them, default 20):

* k = 0: covariance = photometry + parallax; E input = the dust-map prior; stars with σ_E above
  ``round0_max_sigma_e`` (0.2) are left out.
* k ≥ 1, with the model of round k-1: each star's E′, σ_E′ from the *original* prior and the photometry
  (Eqs. 8-9); χ²/dof with E′ and C_pred (dof = observed components - 1); stars with χ²/dof ≥ τ_k or not
  finite and positive are left out (re-evaluated on all stars every round); covariance = photometry +
  parallax + J Cθ Jᵀ (J of M + E′R) + σ²_E′ RRᵀ.
* whitening W (Wᵀ W = masked precision), learning rate lr0 exp(-k / decay), ``epochs`` epochs of Adam
  at batch size 1024 minimising mean |W (BM + E B R - y)|² / 13 + L2/L1 penalties.

The inner loop is one XLA-compiled TensorFlow function per epoch (a while loop over batches, with the
permutation drawn by NumPy from the seeded generator), so an epoch costs one call. Between rounds the
covariances, Jacobians and reddening update run in NumPy across all stars (see covariance.py).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..bands import BAND_NAMES, N_BANDS, N_R_JUDGED
from ..config import defaults
from ..errors import DataError
from ..logs import progress
from . import covariance as cv
from . import network
from .data import Stars
from .likelihood import Normalisation, Prepared, evaluate_t, prepare
from .options import options

log = logging.getLogger(__name__)


CALL_STARS = 1 << 18  # star-steps per compiled call at most (several short epochs of a small catalog per call)


@dataclass(frozen=True)
class Schedule:
    """Batch size and epochs of every round (see :func:`schedule`)."""

    batch_size: int
    epochs: int  # the configured minimum per round
    min_steps: int

    def epochs_for(self, n_included: int) -> int:
        """Epochs of a round with ``n_included`` training stars: the configured epochs, or more to reach
        ``min_steps`` optimiser steps."""
        steps_per_epoch = max(-(-n_included // self.batch_size), 1)
        return max(self.epochs, -(-self.min_steps // steps_per_epoch))


def schedule(n_train: int, o: Mapping[str, Any]) -> Schedule:
    """The schedule for ``n_train`` usable training stars, counted in optimiser steps.

    The paper's 25 epochs at batch 1024 were set for 1.9 M training stars: 45,300 Adam steps per round.
    Convergence takes a number of *steps*, not epochs, so a smaller catalog needs more passes over its stars.
    Rule: every round makes at least ``min_steps_per_round`` steps. First the batch is halved (down to
    ``min_batch_size``) while ``epochs`` epochs fall short of that, because a step's cost is proportional to
    its batch (measured: 0.10 ms at 128, 0.70 ms at 1024 on 2 cores), so smaller batches buy steps at no cost
    in time per star; then the epochs are raised. At or above ``min_steps_per_round / epochs × batch_size``
    stars (16,000 / 25 × 1024 = 655,360 by default) this is the configured schedule itself; at the paper's
    size it is the paper's. ``min_steps_per_round: 0`` gives exactly ``epochs`` at ``batch_size``.
    """
    b, floor = int(o["batch_size"]), int(o["min_steps_per_round"])
    b_min = min(int(o["min_batch_size"]), b)
    while b > b_min and o["epochs"] * -(-n_train // b) < floor:
        b = max(b_min, b // 2)
    return Schedule(b, int(o["epochs"]), floor)


def _loss_drop(losses: np.ndarray) -> float:
    """Relative drop of the mean step loss from the third to the last quarter of a round's steps (> 0: still
    falling)."""
    q = len(losses) // 4
    if q < 1:
        return math.nan
    last = float(np.mean(losses[-q:]))
    return (float(np.mean(losses[-2 * q : -q])) - last) / abs(last)


def convergence(rounds: pd.DataFrame, o: Mapping[str, Any]) -> dict[str, Any]:
    """The verdict on a training run from its per-round diagnostics (``rounds.csv``).

    Converged when (1) every round from round 1 on (the rounds fitted with the model's own reddenings) settled:
    its mean loss changed by at most ``convergence.loss_drop`` (relative) from the third to the last quarter of
    its steps; and (2) the reddening vector at the median θ drifted by at most ``convergence.r_drift``
    (relative, any band G … Ks) over the last ``convergence.last_rounds`` rounds.

    Small changes in the last rounds alone prove nothing: the learning rate has decayed by then (to 2 % of its
    start), so an optimiser still far from its optimum moves little per round. Hence (1) looks at every round,
    and (2) at the net drift over several rounds, which an under-trained model shows as a steady walk of R
    (measured on the default sky: the paper's 1,550 steps per round leave rounds 1-6 still falling by 1-39 %
    and R_Ks walking 2.9 % over the last 5 rounds; 16,000 steps per round settle every round from 1 on within
    0.4 % and leave a drift of 0.4 %).
    """
    c = o["convergence"]
    later = rounds[rounds["round"] >= 1]
    drops = np.abs(later["loss_drop"].to_numpy())  # a loss that rises within a round has not settled either
    judged = np.isfinite(drops).any()
    drop = float(np.nanmax(drops)) if judged else math.nan
    worst = int(later["round"].to_numpy()[np.nanargmax(drops)]) if judged else None
    n = min(int(c["last_rounds"]), len(rounds) - 1)
    r = rounds[[f"r_{b}" for b in BAND_NAMES[:N_R_JUDGED]]].to_numpy()
    drift = float(np.max(np.abs(r[-1] / r[-1 - n] - 1))) if n >= 1 else math.nan
    span = [int(rounds["round"].iloc[-1 - n]), int(rounds["round"].iloc[-1])] if n >= 1 else None
    checks = {
        "loss_drop": {"value": drop, "max": float(c["loss_drop"]), "round": worst, "ok": bool(drop <= c["loss_drop"])},
        "r_drift": {"value": drift, "max": float(c["r_drift"]), "rounds": span, "ok": bool(drift <= c["r_drift"])},
    }
    failed = [k for k, v in checks.items() if not v["ok"]]
    verdict: dict[str, Any] = {"converged": not failed, "checks": checks}
    if failed:
        what = ", ".join(f"{k} {checks[k]['value']:.3g} > {checks[k]['max']:g}" for k in failed)
        verdict["advice"] = (
            f"not converged ({what}): give each round more optimiser steps (train.min_steps_per_round, now "
            f"{int(o['min_steps_per_round'])}; or a smaller train.batch_size / train.min_batch_size, or more "
            "train.epochs)"
        )
    return verdict


_CHI2_CUT = defaults("train.chi2_cut")  # the paper's schedule of τ (schema defaults)


def chi2_thresholds(
    n_rounds: int, start: float = _CHI2_CUT["start"], end: float = _CHI2_CUT["end"], rounds: int = _CHI2_CUT["rounds"]
) -> list[float]:
    """τ_k: none in round 0, log-spaced from ``start`` to ``end`` over rounds 1..``rounds``, then ``end``."""
    ramp = np.geomspace(start, end, rounds)
    return [math.inf] + [float(ramp[k - 1]) if k <= rounds else float(end) for k in range(1, n_rounds)]


@dataclass
class RoundState:
    """Per-star quantities of one round (all stars of a set)."""

    e: np.ndarray
    var_e: np.ndarray
    chi2_dof: np.ndarray
    w: np.ndarray  # (n, 13, 13) float32 whitening matrices for training (0 where not factorisable)
    factorised: np.ndarray  # (n,) bool: the covariance could be factorised (else the star is left out)
    e_k: np.ndarray | None = None  # (n, K-1): E_2 … E_K of a model with K > 1 reddening components
    cov_e: np.ndarray | None = None  # (n, K, K): the covariance of E_1 … E_K (K > 1)


def update(
    w: network.Weights,
    p: Prepared,
    stars: Stars,
    o: Mapping[str, Any],
    first: bool,
    chunk: int = 1024,
) -> RoundState:
    """Reddening update, χ²/dof and whitening matrices for every star.

    Stars are processed in chunks of ``chunk``, small enough for the 13×13 stacks to stay in cache
    (larger chunks are slower; threads do not help). Within a chunk everything is stars-last (13, 13, n),
    in the precision ``train.update_dtype`` (float32 by default: the whitening matrices the epochs use are
    float32 anyway, and it takes about 30 % less time; float64 for checks).
    """
    dtype = np.dtype(o["update_dtype"]).type
    n = len(p.x)
    e = np.empty(n)
    var_e = np.empty(n)
    chi2_dof = np.full(n, np.nan)
    wmat = np.empty((n, N_BANDS, N_BANDS), dtype=np.float32)
    infl, fall = tuple(o["diag_inflation"]), tuple(o["diag_inflation_fallback"])
    var0_all = stars.sigma_ebv_prior**2
    k = w.components
    e_k = np.zeros((n, k - 1)) if k > 1 else None
    cov_e = np.zeros((n, k, k)) if k > 1 else None

    def one(start: int) -> None:
        sl = slice(start, min(start + chunk, n))
        if first:
            e[sl], var_e[sl] = stars.ebv_prior[sl], var0_all[sl]
            if k > 1:  # round 0: E_2 … E_K at their prior mean, 0
                cov_e[sl, 0, 0] = var0_all[sl]
            obs_t = np.ascontiguousarray(p.observed[sl].T)
            a = cv.augmented_t(N_BANDS, N_BANDS, sl.stop - sl.start, dtype)
            a[:N_BANDS] = np.moveaxis(p.base[sl], 0, -1)
            cv.mask_t(a[:N_BANDS], obs_t)
        elif k > 1:
            e_all, cov_e[sl], chi2_dof[sl], _, _, a, obs_t = evaluate_t(w, p, stars, o, sl, True, dtype)
            e[sl], var_e[sl], e_k[sl] = e_all[:, 0], cov_e[sl, 0, 0], e_all[:, 1:]
        else:
            e[sl], var_e[sl], chi2_dof[sl], _, _, a, obs_t = evaluate_t(w, p, stars, o, sl, True, dtype)
        wmat[sl] = cv.whitening_t(a, obs_t, infl, fall).transpose(2, 1, 0)

    for start in range(0, n, chunk):  # chunks of stars, vectorised inside
        one(start)
    factorised = np.isfinite(wmat).all(axis=(1, 2))
    if not factorised.all():
        wmat[~factorised] = 0.0
        chi2_dof[~factorised] = np.nan
        log.warning("%d star(s) have a covariance that cannot be factorised; left out", int((~factorised).sum()))
    return RoundState(e, var_e, chi2_dof, wmat, factorised, e_k, cov_e)


class EpochRunner:
    """Epochs of Adam in XLA-compiled TensorFlow calls: one call runs a while loop over the batches of up to
    ``epochs_per_call`` epochs (each epoch a fresh permutation drawn by NumPy from the seeded generator), so a
    small catalog's many short epochs do not each pay a Python round trip and a validation evaluation."""

    def __init__(self, model, optimizer, batch_size: int, n_bands: int = N_BANDS, components: int = 1):
        import tensorflow as tf

        self.tf = tf
        self.model = model
        self.optimizer = optimizer
        self.batch = batch_size
        bt = tf.constant(cv.B.T, dtype=tf.float32)
        variables = model.trainable_variables
        k = components

        def batch_loss(xey, wb, wt):
            xb, eb, yb = xey[:, :3], xey[:, 3], xey[:, 3 + k :]
            if k == 1:
                bm, r = model(xb, training=True)
                pred = bm + tf.matmul(eb[:, None] * r, bt)
            else:  # paper Eq. 20: Σ_k E_k R_k, the further components orthonormalised against R
                bm, r, *raw = model(xb, training=True)
                a = eb[:, None] * r
                for i, c in enumerate(network.orthonormalise_tf(r, raw)):
                    a = a + xey[:, 4 + i, None] * c
                pred = bm + tf.matmul(a, bt)
            # W (pred - y) as a broadcast product and a sum: XLA fuses it (a batched matvec of 13 x 13 blocks
            # was measured 15-20 % slower per step)
            z = tf.reduce_sum(wb * (pred - yb)[:, None, :], axis=2)
            per_star = tf.reduce_sum(z * z, axis=1) / n_bands
            data = tf.reduce_sum(wt * per_star) / tf.maximum(tf.reduce_sum(wt), 1.0)
            return data, data + tf.add_n(model.losses)

        @tf.function(jit_compile=True, reduce_retracing=True, autograph=False)
        def epochs(xey, w, perm, wts, n_batches):
            def body(i, losses):
                idx = perm[i]  # two gathers a step: x, E and y packed in one row (measured 10 % faster than three)
                with tf.GradientTape() as tape:
                    _, loss = batch_loss(tf.gather(xey, idx), tf.gather(w, idx), wts[i])
                grads = tape.gradient(loss, variables)
                optimizer.apply(grads, variables)
                return i + 1, tf.tensor_scatter_nd_update(losses, i[None, None], loss[None])

            zeros = tf.zeros(tf.shape(perm)[:1], tf.float32)
            _, losses = tf.while_loop(lambda i, _: i < n_batches, body, (tf.constant(0), zeros))
            return losses

        @tf.function(jit_compile=True, reduce_retracing=True, autograph=False)
        def evaluate(xey, w, wt):
            data, total = batch_loss(xey, w, wt)
            return data, total

        self._epochs = epochs
        self._evaluate = evaluate

    def tensors(self, p: Prepared, state: RoundState):
        """The round's training inputs: [x, E, y] (n, 3 + K + 13; E = E_1 … E_K) and W (n, 13, 13), float32."""
        tf = self.tf
        e = state.e[:, None] if state.e_k is None else np.concatenate([state.e[:, None], state.e_k], axis=1)
        return (
            tf.constant(np.concatenate([p.x, e, p.y], axis=1), tf.float32),
            tf.constant(state.w, tf.float32),
        )

    def epochs_per_call(self, n_all: int) -> int:
        """Epochs one call can hold for a set of ``n_all`` stars: enough for about ``CALL_STARS`` star-steps."""
        n_max = -(-n_all // self.batch)
        return max(1, CALL_STARS // (n_max * self.batch))

    def run(self, data, include: np.ndarray, rng: np.random.Generator, n_epochs: int = 1) -> np.ndarray:
        """``n_epochs`` (at most :meth:`epochs_per_call`) epochs over the stars ``include``; the loss of every
        optimiser step, in order (data term + penalties, the mean over each batch's stars)."""
        tf = self.tf
        n_all = int(data[0].shape[0])
        n_max = -(-n_all // self.batch)
        cap = self.epochs_per_call(n_all)  # one fixed shape per set of stars: one XLA compilation
        if not 1 <= n_epochs <= cap:
            raise ValueError(f"n_epochs must be in 1..{cap}, got {n_epochs}")
        idx = np.flatnonzero(include).astype(np.int32)
        nb = -(-len(idx) // self.batch)
        perm = np.zeros((cap * n_max * self.batch,), dtype=np.int32)
        wts = np.zeros_like(perm, dtype=np.float32)
        used = perm[: n_epochs * nb * self.batch].reshape(n_epochs, nb * self.batch)
        used[:, : len(idx)] = rng.permuted(np.broadcast_to(idx, (n_epochs, len(idx))), axis=1)
        wts[: n_epochs * nb * self.batch].reshape(n_epochs, nb * self.batch)[:, : len(idx)] = 1.0
        losses = self._epochs(
            *data,
            tf.constant(perm.reshape(-1, self.batch)),
            tf.constant(wts.reshape(-1, self.batch)),
            tf.constant(n_epochs * nb, tf.int32),
        )
        return losses.numpy()[: n_epochs * nb]

    def evaluate(self, data, include: np.ndarray) -> tuple[float, float]:
        data_loss, total = self._evaluate(*data, self.tf.constant(include.astype(np.float32)))
        return float(data_loss), float(total)


@dataclass
class Result:
    model: Any
    norm: Normalisation
    history: pd.DataFrame
    rounds: pd.DataFrame
    states: dict[str, RoundState] = field(default_factory=dict)
    usable: dict[str, np.ndarray] = field(default_factory=dict)


def train(stars: Stars, user_options: Mapping[str, Any] | None = None) -> Result:
    """Fit the model to ``stars`` (all splits; trains on 'train', reports 'validation'); see module doc."""
    import keras
    import tensorflow as tf

    o = options(user_options)
    t_start = time.perf_counter()
    keras.utils.set_random_seed(o["seed"])
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(o["seed"])

    splits = {s: stars.split == s for s in ("train", "validation", "test")}
    if not splits["train"].any():
        raise DataError("the catalog has no star in the 'train' split; nothing to train on")
    norm = Normalisation.fit(stars.theta if o["normalisation"] == "catalog" else stars.theta[splits["train"]])
    sets = {s: stars.subset(m) for s, m in splits.items() if s != "test" and m.any()}
    prepared = {s: prepare(sets[s], norm) for s in sets}
    usable = {s: prepared[s].n_obs >= 2 for s in sets}  # at least one colour beyond the fitted E
    for s in sets:
        n_bad = int((~usable[s]).sum())
        if n_bad:
            log.warning("%s: %d star(s) have fewer than 2 observed components and are not used", s, n_bad)

    k = int(o["extinction_components"])
    model = network.build(o["hidden_units"], o["l2_hidden"], o["l1_reddening"], seed=o["seed"], components=k)
    optimizer = keras.optimizers.Adam(learning_rate=o["learning_rate"], **o["adam"])
    optimizer.build(model.trainable_variables)
    sched = schedule(int(usable["train"].sum()), o)
    runner = EpochRunner(model, optimizer, sched.batch_size, components=k)
    per_call = runner.epochs_per_call(len(sets["train"]))
    x_median = norm.x(np.median(stars.theta, axis=0)[None])
    log.info(
        "schedule: batch %d, at least %d epochs and %d optimiser steps per round (%d usable training stars)",
        sched.batch_size,
        sched.epochs,
        sched.min_steps,
        int(usable["train"].sum()),
    )
    taus = chi2_thresholds(o["n_rounds"], **o["chi2_cut"])
    history, rounds = [], []
    states: dict[str, RoundState] = {}
    r_prev = None
    for k in range(o["n_rounds"]):
        t0 = time.perf_counter()
        w = network.Weights.of(model)
        include = {}
        for s in sets:
            states[s] = update(w, prepared[s], sets[s], o, first=(k == 0))
            if k == 0:
                inc = sets[s].sigma_ebv_prior <= o["round0_max_sigma_e"]
            else:
                c = states[s].chi2_dof
                inc = np.isfinite(c) & (c > 0) & (c < taus[k])
            include[s] = inc & usable[s] & states[s].factorised
        t_update = time.perf_counter() - t0
        if not include["train"].any():
            raise DataError(
                f"round {k}: no training star is left (of {len(sets['train'])}: {int(usable['train'].sum())} with at "
                f"least one colour, {int(states['train'].factorised.sum())} with a factorisable covariance); check "
                "the catalog's errors and train.round0_max_sigma_e / train.chi2_cut"
            )
        lr = o["learning_rate"] * math.exp(-k / o["lr_decay_rounds"])
        optimizer.learning_rate.assign(lr)
        data = {s: runner.tensors(prepared[s], states[s]) for s in sets}
        n_epochs = sched.epochs_for(int(include["train"].sum()))
        t1 = time.perf_counter()
        t_epochs = 0.0  # the training epochs alone (fit_s also has the validation loss after each call)
        step_losses = []
        done = 0
        while done < n_epochs:
            n = min(per_call, n_epochs - done)
            t2 = time.perf_counter()
            losses = runner.run(data["train"], include["train"], rng, n)
            t_epochs += time.perf_counter() - t2
            step_losses.append(losses)
            val = runner.evaluate(data["validation"], include["validation"])[1] if "validation" in sets else math.nan
            for i, ep in enumerate(np.split(losses, n)):
                history.append(
                    {
                        "round": k,
                        "epoch": done + i,
                        "learning_rate": lr,
                        "steps": len(ep),
                        "loss": float(np.mean(ep)),
                        "val_loss": val if i == n - 1 else math.nan,
                    }
                )
            done += n
        t_fit = time.perf_counter() - t1
        step_losses = np.concatenate(step_losses)
        r_median = network.forward(network.Weights.of(model), x_median)[1][0]
        r_change = math.nan if r_prev is None else float(np.max(np.abs(r_median / r_prev - 1)[:N_R_JUDGED]))
        r_prev = r_median
        c = states["train"].chi2_dof
        fin = np.isfinite(c) & usable["train"]
        row = {
            "round": k,
            "tau": taus[k],
            "learning_rate": lr,
            "batch_size": sched.batch_size,
            "epochs": n_epochs,
            "steps": len(step_losses),
            "n_train": int(include["train"].sum()),
            "n_left_out": int((usable["train"] & ~include["train"]).sum()),
            "outlier_fraction": float(1 - include["train"].sum() / max(usable["train"].sum(), 1)),
            "mean_chi2_dof_lt5": float(np.mean(c[fin & (c < 5)])) if k and (fin & (c < 5)).any() else math.nan,
            "mean_chi2_dof_lt10": float(np.mean(c[fin & (c < 10)])) if k and (fin & (c < 10)).any() else math.nan,
            "loss": history[-1]["loss"],
            "val_loss": history[-1]["val_loss"],
            "loss_drop": _loss_drop(step_losses),
            "r_change": r_change,
            **{f"r_{b}": float(v) for b, v in zip(BAND_NAMES, r_median, strict=True)},
            "update_s": t_update,
            "fit_s": t_fit,
            "epochs_s": t_epochs,
            "elapsed_s": time.perf_counter() - t_start,
        }
        rounds.append(row)
        log.info(
            "round %2d/%d  loss %.4f  val %.4f  <chi2/dof> %.3f  left out %.2f%%  tau %.3g  %d steps (%d epochs)  "
            "loss drop %.2g  R change %.2g  update %.2f s  fit %.1f s  elapsed %.1f s",
            k + 1,
            o["n_rounds"],
            row["loss"],
            row["val_loss"],
            row["mean_chi2_dof_lt10"],
            100 * row["outlier_fraction"],
            taus[k],
            row["steps"],
            n_epochs,
            row["loss_drop"],
            r_change,
            t_update,
            t_fit,
            row["elapsed_s"],
        )
        progress("train_model", k + 1, o["n_rounds"], row["elapsed_s"], f"rounds (loss {row['loss']:.4f})")
    return Result(model, norm, pd.DataFrame(history), pd.DataFrame(rounds), states, usable)


def final_state(model, norm: Normalisation, stars: Stars, user_options: Mapping[str, Any] | None = None) -> RoundState:
    """E′, σ²_E′ and χ²/dof of ``stars`` under the final model (the paper's test-set evaluation).

    Always in float64 (whatever ``train.update_dtype``): these are outputs, computed once, and the validation
    stage computes the same quantities in float64."""
    o = options({**(user_options or {}), "update_dtype": "float64"})
    return update(network.Weights.of(model), prepare(stars, norm), stars, o, first=False)
