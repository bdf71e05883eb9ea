"""Benchmark: simulated-sky generation throughput and peak memory (run by `make bench`).

Each size runs in a fresh subprocess so its peak resident memory is measured on its own.
Usage: python benchmarks/bench_simulate.py [N ...]   (default: 100000 1000000)
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time, yaml
from pathlib import Path
from ddstars.simulate.sky import TABLES, generate
cfg = yaml.safe_load(open(sys.argv[1]))["simulate"]
cfg["n_stars"] = int(sys.argv[2])
out = Path(sys.argv[3])
paths = {k: out / f"{k}.parquet" for k in TABLES} | {"truth": out / "truth.parquet", "manifest": out / "manifest.json"}
t0 = time.perf_counter()
m = generate(cfg, paths)
print(json.dumps({"seconds": time.perf_counter() - t0, "rows": m["rows"],
                  "bytes": sum(p.stat().st_size for p in paths.values())}))
"""


def run(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        r = subprocess.run(
            [sys.executable, "-c", CHILD, str(ROOT / "config" / "config.yaml"), str(n), tmp],
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - t0
    res = json.loads(r.stdout.strip().splitlines()[-1])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "n_stars": n,
        "wall_s": wall,
        "generate_s": res["seconds"],
        "peak_rss_mb": peak_mb,
        "stars_per_s": n / res["seconds"],
        "output_mb": res["bytes"] / 1e6,
    }


def main(sizes: list[int]) -> None:
    print(f"{'stars':>10} {'generate s':>11} {'wall s':>8} {'stars/s':>9} {'peak RSS MB':>12} {'output MB':>10}")
    for n in sizes:
        r = run(n)
        print(
            f"{n:>10,} {r['generate_s']:>11.1f} {r['wall_s']:>8.1f} {r['stars_per_s']:>9,.0f} "
            f"{r['peak_rss_mb']:>12,.0f} {r['output_mb']:>10.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000, 1_000_000])
