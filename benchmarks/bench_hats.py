"""HATS writer against today's writer, and LSDB's cross-match against the catalog stage's positional match.

1. Write time, peak memory and size on disk at 10^6 catalog rows (every column of the catalog schema): the
   catalog's Hive writer (``ddstars.catalog.build.write_partitioned``, healpix_2) and the HATS collection
   (``ddstars.hatsio.write_hats``: adaptive partitions, _healpix_29, 5″ margin), each in a fresh process.
2. The unWISE-like positional match of the catalog stage (``ddstars.catalog.crossmatch.sky_match``, nearest
   neighbour within 0.4″) against LSDB's ``crossmatch`` (k-d tree per partition pair, the right catalog's
   margin) on the same 10^6 targets and 10^6 counterparts (the first 90 % within 0.3″, the rest unrelated):
   the pairs each finds, whether they are the same, and the time of each (the HATS writing of the two
   catalogs LSDB needs is counted separately).

Usage: ``python benchmarks/bench_hats.py [n_rows]`` (default 1,000,000; about 3 minutes on 2 cores).
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
sys.path.insert(0, str(ROOT / "src"))


def catalog(n: int, seed: int = 1):
    """n rows with every column of the catalog schema: positions uniform on the sky, numbers random."""
    import numpy as np
    import pandas as pd

    from ddstars.catalog import schema

    rng = np.random.default_rng(seed)
    cols = {}
    for c in schema.columns():
        if c.dtype in ("double", "float"):
            cols[c.name] = rng.normal(size=n)
        elif c.dtype.startswith("int"):
            cols[c.name] = rng.integers(0, 100, n).astype(c.dtype)
        elif c.dtype == "bool":
            cols[c.name] = rng.random(n) < 0.5
        else:
            cols[c.name] = np.array(c.enum or ("x",), dtype=object)[rng.integers(0, len(c.enum or ("x",)), n)]
    df = pd.DataFrame(cols)
    df["source_id"] = np.arange(n, dtype=np.int64)
    df["ra"] = rng.uniform(0, 360, n)
    df["dec"] = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    return df


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def child(kind: str, n: int, work: Path) -> dict:
    """One writer, in this (fresh) process: seconds, peak RSS, bytes."""
    import warnings

    warnings.simplefilter("ignore")
    from ddstars.catalog.build import write_partitioned
    from ddstars.hatsio import write_hats

    df = catalog(n)
    src = work / "hive"
    if kind == "hive":
        t0 = time.perf_counter()
        write_partitioned(df, src, 2)
        seconds = time.perf_counter() - t0
        out = src
    else:
        write_partitioned(df, src, 2)  # the HATS copy is written from the catalog's files, as rule hats_catalog does
        del df
        files = sorted(src.rglob("*.parquet"))
        out = work / "hats"
        t0 = time.perf_counter()
        write_hats(files, out, "stars", threads=2)
        seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {"writer": kind, "rows": n, "seconds": round(seconds, 2), "peak_rss_gb": round(rss, 2), "bytes": size(out)}


def crossmatch(n: int, work: Path) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    import lsdb
    import numpy as np
    import pandas as pd
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    from ddstars.catalog.crossmatch import sky_match

    rng = np.random.default_rng(2)
    ra, dec = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    near = np.arange(n) < int(0.9 * n)
    moved = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(
        rng.uniform(0, 360, n) * u.deg, np.where(near, rng.uniform(0, 0.3, n), 3600.0) * u.arcsec
    )
    left = pd.DataFrame({"id": np.arange(n), "ra": ra, "dec": dec})
    right = pd.DataFrame({"rid": np.arange(n), "ra": moved.ra.deg, "dec": moved.dec.deg})
    t0 = time.perf_counter()
    idx, _ = sky_match(left["ra"], left["dec"], right["ra"], right["dec"], 0.4)
    t_ours = time.perf_counter() - t0
    ours = {(int(i), int(j)) for i, j in zip(np.flatnonzero(idx >= 0), idx[idx >= 0], strict=True)}
    t0 = time.perf_counter()
    lsdb.from_dataframe(left, ra_column="ra", dec_column="dec").write_catalog(work / "l", progress_bar=False)
    lsdb.from_dataframe(right, ra_column="ra", dec_column="dec").write_catalog(work / "r", progress_bar=False)
    t_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = (
        lsdb.open_catalog(work / "l")
        .crossmatch(lsdb.open_catalog(work / "r"), radius_arcsec=0.4, suffixes=("", "_r"), suffix_method="all_columns")
        .compute(progress_bar=False)
    )
    t_lsdb = time.perf_counter() - t0
    theirs = {(int(i), int(j)) for i, j in zip(m["id"], m["rid_r"], strict=True)}
    return {
        "rows": n,
        "pairs_true": int(near.sum()),
        "pairs_sky_match": len(ours),
        "pairs_lsdb": len(theirs),
        "same_pairs": ours == theirs,
        "seconds_sky_match": round(t_ours, 2),
        "seconds_lsdb_crossmatch": round(t_lsdb, 2),
        "seconds_lsdb_writing_both": round(t_write, 2),
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, n, work = sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
        out = crossmatch(n, work) if kind == "crossmatch" else child(kind, n, work)
        print(json.dumps(out))
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rows = []
    for kind in ("hive", "hats", "crossmatch"):
        with tempfile.TemporaryDirectory(prefix="bench_hats_") as work:
            cmd = [sys.executable, __file__, "--child", kind, str(n), work]
            r = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
    print(f"HATS writer vs today's writer, {n:,} catalog rows (2 cores)")
    print(f"{'writer':<8}{'seconds':>9}{'peak RSS GB':>13}{'size MB':>10}")
    for r in rows[:2]:
        print(f"{r['writer']:<8}{r['seconds']:>9.1f}{r['peak_rss_gb']:>13.2f}{r['bytes'] / 1e6:>10.1f}")
    c = rows[2]
    print(f"\nPositional match within 0.4\u2033, {n:,} targets x {n:,} (of which {c['pairs_true']:,} true pairs)")
    print(f"  catalog stage (sky_match): {c['pairs_sky_match']:,} pairs in {c['seconds_sky_match']:.1f} s")
    print(
        f"  LSDB crossmatch: {c['pairs_lsdb']:,} pairs in {c['seconds_lsdb_crossmatch']:.1f} s "
        f"(+ {c['seconds_lsdb_writing_both']:.1f} s writing both as HATS); same pairs: {c['same_pairs']}"
    )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
