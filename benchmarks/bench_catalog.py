"""Benchmark: catalog-stage throughput and peak memory on a simulated sky (run by `make bench`).

For each size the workflow (Snakemake, 2 cores) first makes the simulated sky and its dust maps, then runs
the catalog stage on it; the time and peak memory of every catalog job come from Snakemake's benchmark files
(results/benchmarks/catalog/<rule>.tsv, results/benchmarks/dustmaps/provision_dustmaps.tsv). The stage's
time is the wall time of that second Snakemake run (job start-up and DAG included); its peak memory is the
largest job's peak RSS.
Target (the issue): 1 million spectroscopic stars through the catalog stage in <= 10 min on 2 cores
and <= 8 GB peak memory; checked against the largest size.
Usage: python benchmarks/bench_catalog.py [N ...]   (default: 100000 1000000)
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from _workflow import CATALOG_TARGETS, SKY_TARGETS, config, jobs, snakemake

from ddstars import registry

TARGET_S = 600.0
TARGET_MB = 8 * 1024.0
TARGET_SPECTRA = 1_000_000


def run(n: int) -> dict:
    cfg = config(n)
    with tempfile.TemporaryDirectory(prefix="bench_catalog_", dir="/tmp") as tmp:
        work = Path(tmp)
        prepare_s = snakemake(work, cfg, SKY_TARGETS)
        catalog_s = snakemake(work, cfg, CATALOG_TARGETS)
        archives = work / "resources" / "simulated" / "archives"
        tables = [registry.SURVEY_TABLES[s] for s in registry.SPECTROSCOPIC]
        spectra = sum(pq.read_metadata(archives / f"{t}.parquet").num_rows for t in tables)
        stages = jobs(work, "catalog") | jobs(work, "dustmaps")
        stars = json.loads((work / "results" / "catalog" / "build.json").read_text())["stars"]
    return {
        "n_stars": n,
        "prepare_s": prepare_s,
        "spectra": spectra,
        "stars": stars,
        "catalog_s": catalog_s,
        "spectra_per_s": spectra / catalog_s,
        "peak_rss_mb": max((j["max_rss"] for j in stages.values() if not math.isnan(j["max_rss"])), default=math.nan),
        "stages": stages,
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
        print("    jobs s / MB: " + ", ".join(f"{k} {v['s']:.1f} / {v['max_rss']:.0f}" for k, v in r["stages"].items()))
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
