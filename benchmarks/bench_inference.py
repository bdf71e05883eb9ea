"""Benchmark: photometric inference (Eq. 19) on the default run's test stars (run by `make bench`).

Needs the default run's model and catalog (`make run`). The test split's stars were not used in training; their
labels are ignored: each star is inferred from its photometry, parallax and dust-map prior alone, and compared
with the simulated truth (resources/simulated/truth.parquet). Printed: the θ grid (nodes inside the training
domain), time per star and stars per second in this process, peak RSS, the coverage of the 68 % and 95 %
intervals per parameter, and bias / scatter of the posterior medians by parallax S/N.
Usage: python benchmarks/bench_inference.py [N_STARS]   (default 2000)
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def main(n: int) -> None:
    from ddstars.catalog.build import read_catalog
    from ddstars.inference import Grid, Photometry, posterior
    from ddstars.model import load_model

    model_dir, catalog = ROOT / "results" / "model", ROOT / "results" / "catalog" / "stars"
    truth_path = ROOT / "resources" / "simulated" / "truth.parquet"
    if not (model_dir / "model.keras").is_file() or not truth_path.is_file():
        sys.exit("bench_inference: run `make run` first (it writes results/model and resources/simulated)")
    model = load_model(model_dir, outside="ignore")
    t0 = time.perf_counter()
    grid = Grid.from_model(model)
    t_grid = time.perf_counter() - t0
    cat = read_catalog(catalog)
    test = cat[cat["split"] == "test"].reset_index(drop=True).iloc[:n]
    cols = ["source_id", "true_teff", "true_logg", "true_feh", "dm", "true_ebv"]
    truth = pd.read_parquet(truth_path, columns=cols).set_index("source_id").loc[test["source_id"]]
    t0 = time.perf_counter()
    table, samples = posterior(grid, Photometry.from_frame(test), n_samples=200, seed=1)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"grid: {len(grid):,} θ nodes (50 K x 0.05 x 0.1 inside the training domain), built in {t_grid:.2f} s")
    print(
        f"{len(test):,} test stars in {dt:.1f} s: {1e3 * dt / len(test):.1f} ms per star, "
        f"{len(test) / dt:.0f} stars/s in this process; median effective samples {np.median(table['ess']):.0f}; "
        f"peak RSS {peak:.0f} MB"
    )
    true = {
        "teff": truth["true_teff"],
        "logg": truth["true_logg"],
        "feh": truth["true_feh"],
        "mu": truth["dm"],
        "ebv": truth["true_ebv"],
    }
    snr = (test["parallax"] / test["parallax_error"]).to_numpy()
    print(f"{'parameter':9s} {'c68':>6s} {'c95':>6s}   bias / scatter of the median by parallax S/N (<5, 5-10, >10)")
    for k, t in true.items():
        t = t.to_numpy()
        lo68, hi68, lo95, hi95 = np.percentile(samples[k], [16, 84, 2.5, 97.5], axis=1)
        med = np.median(samples[k], axis=1)
        parts = []
        for m in (snr < 5, (snr >= 5) & (snr <= 10), snr > 10):
            d = med[m] - t[m]
            parts.append(f"{np.median(d):+.3f} / {np.std(d):.3f} ({m.sum()})")
        c68 = np.mean((t >= lo68) & (t <= hi68))
        c95 = np.mean((t >= lo95) & (t <= hi95))
        print(f"{k:9s} {c68:6.3f} {c95:6.3f}   " + ",  ".join(parts))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
