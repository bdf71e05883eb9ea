"""Benchmark: catalog-stage throughput and peak memory on a simulated sky (run by `make bench`).

For each size a simulated sky (archive tables and dust maps) is generated in one fresh subprocess, then
the whole catalog stage (``ddstars.catalog.stages.run_all``) runs in another, so the catalog stage's peak
resident memory is measured on its own (by the child itself: RUSAGE_CHILDREN in this process would
report the maximum over every child, sky generation included).
Target (the issue): 1 million spectroscopic stars through the catalog stage in <= 10 min on 2 cores
and <= 8 GB peak memory; checked against the largest size.
Usage: python benchmarks/bench_catalog.py [N ...]   (default: 100000 1000000)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "config.yaml"
TARGET_S = 600.0
TARGET_MB = 8 * 1024.0
TARGET_SPECTRA = 1_000_000

PREPARE = r"""
import json, sys, time, yaml
from pathlib import Path
from ddstars.simulate.maps import write_maps
from ddstars.simulate.sky import TABLES, generate
cfg = yaml.safe_load(open(sys.argv[1]))["simulate"]
cfg["n_stars"] = int(sys.argv[2])
out = Path(sys.argv[3])
paths = {k: out / "archives" / f"{k}.parquet" for k in TABLES} | {"truth": out / "truth.parquet",
                                                                   "manifest": out / "manifest.json"}
t0 = time.perf_counter()
generate(cfg, paths)
write_maps(cfg, out / "dustmaps" / "sfd", out / "dustmaps" / "bayestar" / "bayestar2019.h5")
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

CATALOG = r"""
import json, resource, sys, time, yaml
from pathlib import Path
import pyarrow.parquet as pq
from ddstars.catalog.stages import run_all
from ddstars.simulate.sky import TABLES
options = yaml.safe_load(open(sys.argv[1]))["catalog"]
out = Path(sys.argv[2])
paths = {k: out / "archives" / f"{k}.parquet" for k in TABLES}
spectra = sum(pq.read_metadata(paths[k]).num_rows for k in ("lamost_dr5_ddpayne", "apogee_dr16_allstar", "galah_dr2"))
t0 = time.perf_counter()
times = run_all(paths, out / "dustmaps" / "sfd", out / "dustmaps" / "bayestar" / "bayestar2019.h5",
                out / "catalog", options)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "stages": times, "spectra": spectra,
                  "stars": json.load(open(out / "catalog" / "build.json"))["stars"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(code: str, *args: object) -> dict:
    r = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise SystemExit(f"benchmark child failed with exit status {r.returncode}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def run(n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_catalog_", dir="/tmp") as tmp:
        prep = _child(PREPARE, CONFIG, n, tmp)
        res = _child(CATALOG, CONFIG, tmp)
    return {
        "n_stars": n,
        "prepare_s": prep["seconds"],
        "spectra": res["spectra"],
        "stars": res["stars"],
        "catalog_s": res["seconds"],
        "spectra_per_s": res["spectra"] / res["seconds"],
        "peak_rss_mb": res["peak_rss_mb"],
        "stages": res["stages"],
    }


def main(sizes: list[int]) -> None:
    print(
        f"target: {TARGET_SPECTRA:,} spectroscopic stars through the catalog stage in <= {TARGET_S / 60:.0f} min "
        f"on 2 cores, <= {TARGET_MB / 1024:.0f} GB peak memory"
    )
    print(
        f"{'stars':>10} {'prepare s':>10} {'spectra':>10} {'catalog':>10} {'catalog s':>10} {'spectra/s':>10} "
        f"{'peak RSS MB':>12}"
    )
    r = None
    for n in sizes:
        r = run(n)
        print(
            f"{n:>10,} {r['prepare_s']:>10.1f} {r['spectra']:>10,} {r['stars']:>10,} {r['catalog_s']:>10.1f} "
            f"{r['spectra_per_s']:>10,.0f} {r['peak_rss_mb']:>12,.0f}",
            flush=True,
        )
        print("    stages s: " + ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items()), flush=True)
    if r is not None:
        # Time scaled linearly to the target's 1e6 spectra when the largest size has another count.
        t_at_target = r["catalog_s"] * TARGET_SPECTRA / r["spectra"]
        ok_t = t_at_target <= TARGET_S
        ok_m = r["peak_rss_mb"] <= TARGET_MB
        print(
            f"largest size ({r['spectra']:,} spectra): time {r['catalog_s']:.1f} s "
            f"({t_at_target:.1f} s per {TARGET_SPECTRA:,} spectra) {'PASS' if ok_t else 'FAIL'}; "
            f"peak RSS {r['peak_rss_mb']:,.0f} MB {'PASS' if ok_m else 'FAIL'}"
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000, 1_000_000])
