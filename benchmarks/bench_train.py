"""Benchmark: training with the default schedule (run by `make bench`).

For each size the workflow makes a simulated sky and its catalog first (not timed here; see bench_catalog.py), then
training runs in a fresh subprocess that reports its own peak memory. Printed per size: the schedule's batch
and optimiser steps per round, the time to the trained model and the convergence verdict, the epoch
throughput (star-epochs per second of the training epochs, excluding the one-off XLA compilation of round 0;
the next column includes the validation loss computed after each compiled call), the time per optimiser step,
the between-round update per 100,000 stars, and peak RSS. The 100,000-star sky trains at batch 128 (the step
floor), the 1,000,000-star sky at the paper's batch 1024; the smallest also with K = 2 reddening components.
Usage: python benchmarks/bench_train.py [N ...]   (default: 100000 1000000)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _workflow import CATALOG_TARGETS, config, snakemake

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "config.yaml"

TRAIN = r"""
import json, os, resource, sys, time, yaml
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from ddstars.model.data import read_stars
from ddstars.model import train
cfg = yaml.safe_load(open(sys.argv[1]))
cfg["train"].update(json.loads(sys.argv[3]))
t0 = time.perf_counter()
stars = read_stars(sys.argv[2])
t_read = time.perf_counter() - t0
res = train.train(stars, cfg["train"])
r = res.rounds
verdict = train.convergence(r, train.options(cfg["train"]))
n_fit = int((stars.split == "train").sum())
n_upd = int(((stars.split == "train") | (stars.split == "validation")).sum())
steady = r.iloc[1:]
print(json.dumps({
    "stars": len(stars), "train_stars": n_fit, "read_s": t_read, "train_s": float(r["elapsed_s"].iloc[-1]),
    "fit_s": float(r["fit_s"].sum()), "round0_fit_s": float(r["fit_s"].iloc[0]),
    "star_epochs_per_s": float((steady["n_train"] * steady["epochs"]).sum() / steady["epochs_s"].sum()),
    "star_epochs_per_s_with_val": float((steady["n_train"] * steady["epochs"]).sum() / steady["fit_s"].sum()),
    "ms_per_step": float(1e3 * steady["epochs_s"].sum() / steady["steps"].sum()),
    "batch": int(r["batch_size"].iloc[-1]), "steps_per_round": int(r["steps"].median()),
    "converged": bool(verdict["converged"]),
    "update_s_per_1e5": float(steady["update_s"].mean() / n_upd * 1e5),
    "final_loss": float(r["loss"].iloc[-1]),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


#: The schedules timed per size: the default, and on the smallest size also the paper's (25 epochs at batch 1024,
#: no step floor) for the epoch throughput at batch 1024, and the default with two reddening components per star
#: (paper Eq. 20, train.extinction_components: 2) beside the paper's one.
PAPER = {"min_steps_per_round": 0}
TWO_COMPONENTS = {"extinction_components": 2}
LABELS = {"{}": "default", json.dumps(PAPER): "paper", json.dumps(TWO_COMPONENTS): "K=2"}


def run(n: int, schedules: list[dict]) -> list[dict]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        snakemake(Path(tmp), config(n), CATALOG_TARGETS)  # the workflow's sky and catalog stages
        prep = time.perf_counter() - t0
        for options in schedules:
            r = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    TRAIN,
                    str(CONFIG),
                    str(Path(tmp) / "results" / "catalog" / "stars"),
                    json.dumps(options),
                ],
                capture_output=True,
                text=True,
            )
            if r.returncode:
                sys.exit(f"training failed:\n{r.stderr[-3000:]}")
            label = LABELS[json.dumps(options)]
            out.append({"n": n, "prepare_s": prep, "schedule": label, **json.loads(r.stdout.strip().splitlines()[-1])})
    return out


def main(sizes: list[int]) -> None:
    print("targets: 100,000-star sky converged in <= 90 s; >= 1.5e6 star-epochs/s at batch 1024; update <= 0.5 s")
    print("         per 1e5 stars; 1,000,000 stars within 8 GB")
    print(
        f"{'sky stars':>10} {'schedule':>8} {'catalog':>9} {'train':>8} {'batch':>5} {'steps/rnd':>9} {'train s':>8} "
        f"{'conv':>5} "
        f"{'star-ep/s':>10} {'(with val)':>11} {'ms/step':>8} {'upd s/1e5':>10} {'loss':>7} {'peak MB':>8}"
    )
    for i, n in enumerate(sizes):
        for r in run(n, [{}, PAPER, TWO_COMPONENTS] if i == 0 else [{}]):
            print(
                f"{n:>10,} {r['schedule']:>8} {r['stars']:>9,} {r['train_stars']:>8,} {r['batch']:>5} "
                f"{r['steps_per_round']:>9,} "
                f"{r['train_s']:>8.1f} {str(r['converged']):>5} {r['star_epochs_per_s']:>10,.0f} "
                f"{r['star_epochs_per_s_with_val']:>11,.0f} {r['ms_per_step']:>8.3f} "
                f"{r['update_s_per_1e5']:>10.2f} {r['final_loss']:>7.4f} {r['peak_rss_mb']:>8,.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000, 1_000_000])  # the paper's schedule timed on the first size
