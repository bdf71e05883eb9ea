"""Benchmark: photometric inference (Eq. 19) on the default run's test stars (run by `make bench`).

Needs the default run's model, catalog and dust maps (`make run`). The test split's stars were not used in
training; each is inferred from its photometry, parallax and the stage's priors (the simulated Galaxy, the
simulated Bayestar map), on one CPU thread, and compared with the simulated truth.

Printed: the θ grid (nodes inside the training domain), time per star and stars per second per core, peak RSS,
the coverage of the 68 % and 95 % intervals per parameter, and bias / scatter of the medians by parallax S/N.
With ``--million``: a 1,000,000-star photometric sample (the test stars' photometry and parallaxes redrawn
within their errors at random positions of the sky) through one job of the stage (``run_group``), with its
time, stars per second and peak memory, and the projected cost of 10⁸ stars.
Usage: python benchmarks/bench_inference.py [N_STARS] [--million]   (default 2000)
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _setup():
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from ddstars.config import with_defaults

    cfg = with_defaults(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    if not (ROOT / "results" / "model" / "model.keras").is_file():
        sys.exit("bench_inference: run `make run` first (it writes results/model and resources/simulated)")
    return cfg


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def coverage(n: int, cfg) -> None:
    from ddstars.catalog.build import read_catalog
    from ddstars.inference.stage import galaxy_parameters, grid_for, infer_frame, priors_for
    from ddstars.model import load_model

    icfg = cfg["inference"]
    model = load_model(ROOT / "results" / "model", outside="ignore")
    t0 = time.perf_counter()
    grid = grid_for(model, icfg)
    t_grid = time.perf_counter() - t0
    cat = read_catalog(ROOT / "results" / "catalog" / "stars")
    test = cat[cat["split"] == "test"].reset_index(drop=True).iloc[:n]
    cols = ["source_id", "true_teff", "true_logg", "true_feh", "dm", "true_ebv"]
    truth = pd.read_parquet(ROOT / "resources/simulated/truth.parquet", columns=cols)
    truth = truth.set_index("source_id").loc[test["source_id"]]
    galaxy = galaxy_parameters(icfg, cfg["simulate"]["galaxy"])
    d = cfg["dustmaps"]
    t0 = time.perf_counter()
    priors, _ = priors_for(test, icfg, galaxy, ROOT / d["sfd_dir"], ROOT / d["bayestar_file"])
    t_priors = time.perf_counter() - t0
    infer_frame(grid, test.iloc[: icfg["chunk"]], priors.subset(slice(0, icfg["chunk"])), icfg, seed=0)  # compile
    t0 = time.perf_counter()
    table = infer_frame(grid, test, priors, icfg, seed=1)
    dt = time.perf_counter() - t0
    print(
        f"grid: {len(grid):,} θ nodes ({' x '.join(f'{s:g}' for s in icfg['grid_steps'])} in Teff, log g, [Fe/H], "
        f"inside the training domain), built in {t_grid:.2f} s"
    )
    print(
        f"{len(test):,} test stars on 1 thread: {1e3 * dt / len(test):.2f} ms per star, "
        f"{len(test) / dt:.0f} stars/s per core (+ priors {1e3 * t_priors / len(test):.2f} ms per star); "
        f"median effective samples {np.median(table['ess']):.0f} of {icfg['n_draws']}; peak RSS {_rss_mb():.0f} MB"
    )
    true = {
        "teff": truth["true_teff"],
        "logg": truth["true_logg"],
        "feh": truth["true_feh"],
        "mu": truth["dm"],
        "ebv": truth["true_ebv"],
    }
    valid = table["flags"].to_numpy() == 0
    snr = (test["parallax"] / test["parallax_error"]).to_numpy()
    print(f"valid (flags 0): {valid.sum():,} of {len(table):,}")
    print(f"{'parameter':9s} {'c68':>6s} {'c95':>6s}   bias / robust scatter of the median by parallax S/N")
    for k, t in true.items():
        t = t.to_numpy()
        c68 = np.mean(((table[f"{k}_p16"] <= t) & (t <= table[f"{k}_p84"]))[valid])
        c95 = np.mean(((table[f"{k}_p2.5"] <= t) & (t <= table[f"{k}_p97.5"]))[valid])
        parts = []
        for name, m in (("<5", snr < 5), ("5-10", (snr >= 5) & (snr <= 10)), (">10", snr > 10)):
            e = (table[f"{k}_p50"].to_numpy() - t)[m & valid]
            med = np.median(e)
            parts.append(f"{name}: {med:+.3f} / {1.4826 * np.median(np.abs(e - med)):.3f} ({len(e)})")
        print(f"{k:9s} {c68:6.3f} {c95:6.3f}   " + ",  ".join(parts))


def million(cfg, n: int = 1_000_000) -> None:
    """One job of the stage on an n-star photometric sample (groups 1, one thread)."""
    from ddstars.bands import BAND_NAMES
    from ddstars.catalog.build import read_catalog
    from ddstars.inference.stage import run_group

    cat = read_catalog(ROOT / "results" / "catalog" / "stars")
    test = cat[cat["split"] == "test"].reset_index(drop=True)
    rng = np.random.default_rng(5)
    pick = rng.integers(0, len(test), n)
    src = test.iloc[pick].reset_index(drop=True)
    df = pd.DataFrame({"source_id": np.arange(n, dtype=np.int64)})
    z = rng.uniform(-1, 1, n)  # uniform on the sky
    df["ra"], df["dec"] = rng.uniform(0, 360, n), np.degrees(np.arcsin(z))
    for b in BAND_NAMES:
        err = src[f"err_{b}"].to_numpy()
        df[f"mag_{b}"] = src[f"mag_{b}"].to_numpy() + rng.normal(0, 1, n) * np.nan_to_num(err)
        df[f"err_{b}"] = err
    df["parallax"] = src["parallax"].to_numpy() + rng.normal(0, 1, n) * src["parallax_error"].to_numpy()
    df["parallax_error"] = src["parallax_error"].to_numpy()
    icfg = {**cfg["inference"], "groups": 1, "galaxy": "juric2008"}
    d = cfg["dustmaps"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample.parquet"
        df.to_parquet(path)
        del df, src, cat, test
        t0 = time.perf_counter()
        m = run_group(
            ROOT / "results" / "model",
            path,
            Path(tmp) / "out",
            Path(tmp) / "manifest.json",
            0,
            icfg,
            split=None,
            order=cfg["catalog"]["healpix_order"],
            sfd_dir=ROOT / d["sfd_dir"],
            bayestar_file=ROOT / d["bayestar_file"],
        )
        dt = time.perf_counter() - t0
    rate = m["computed_stars"] / dt
    print(
        f"{m['computed_stars']:,}-star photometric sample, one job (1 thread, batches of {icfg['batch_stars']:,}): "
        f"{dt / 60:.1f} min, {rate:.0f} stars/s, peak RSS {m['peak_rss_mb']:.0f} MB, "
        f"{len(m['partitions'])} partitions"
    )
    core_h = 1e8 / rate / 3600
    print(
        f"10^8 stars: {core_h:,.0f} core-hours at this rate, e.g. {core_h / 64:.1f} h on 64 one-core jobs "
        f"({icfg['mem_mb']} MB each)"
    )


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    cfg = _setup()
    coverage(int(args[0]) if args else 2000, cfg)
    if "--million" in sys.argv:
        million(cfg)
