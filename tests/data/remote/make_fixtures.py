"""Regenerate the recorded responses of tests/unit/test_remote.py (run from the repository root).

Each TAP table gets the VOTable a TAP service returns for one chunk (3 rows taken from the simulated archive
tables, with the remote column names of ddstars.remote.services), an empty result, a truncated (OVERFLOW)
result and a malformed (cut-off) document; APOGEE gets a tiny allStar-like FITS file. The UWS job documents
are hand-written in the UWS 1.1 format; their result href is the placeholder RESULT_URL.

Usage: ``python tests/data/remote/make_fixtures.py [SKY] [TABLE ...]``: the simulated sky's folder (default
resources/simulated) and the tables to write (default: every table of every release). The Gaia DR3 era's own
tables (``archives.release: dr3``) come from the sky's DR3 files where it has them, otherwise from its DR2-era
tables through the simulated sky's DR3 view (ddstars.simulate.release.dr3_tables).
"""

import sys
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.io.votable import from_table
from astropy.io.votable.tree import Info
from astropy.table import Table

from ddstars.remote import services as sv

OUT = Path(__file__).parent
SKY = Path("resources/simulated")


def _votable(tbl: Table, status: str) -> bytes:
    vot = from_table(tbl)
    res = vot.resources[0]
    res.type = "results"
    res.infos.append(Info(name="QUERY_STATUS", value="OK"))
    if status != "OK":
        res.infos.append(Info(name="QUERY_STATUS", value=status))
    path = OUT / ".tmp.vot"
    vot.to_xml(str(path))
    data = path.read_bytes()
    path.unlink()
    return data


def _frames(sky: Path):
    """Archive table name -> its rows in ``sky`` (DR3 tables made from the DR2-era ones where the sky has none)."""

    @cache
    def dr3() -> dict[str, pd.DataFrame]:
        from ddstars.simulate.release import DR2_INPUTS, dr3_tables

        dr2 = {t: pd.read_parquet(sky / "archives" / f"{t}.parquet") for t in DR2_INPUTS}
        truth = pd.read_parquet(sky / "truth.parquet", columns=["source_id", "galah_id"])
        return dr3_tables(dr2, truth, seed=20210817)

    def frame(table: str) -> pd.DataFrame:
        path = sky / "archives" / f"{table}.parquet"
        return pd.read_parquet(path) if path.exists() else dr3()[table]

    return frame


def main(sky: Path = SKY, tables: list[str] | None = None) -> None:
    frame = _frames(sky)
    for table in tables or list(sv.ALL_SPECS):
        spec = sv.ALL_SPECS[table]
        df = frame(table).head(3)
        df = df[[spec.columns[r] for r in spec.columns]].rename(columns={a: r for r, a in spec.columns.items()})
        if spec.kind == "file":
            cols = []
            for name in df.columns:
                v = df[name]
                if name in ("PARAM", "FPARAM_COV"):
                    arr = np.stack([np.asarray(x, dtype=np.float32) for x in v])
                    if name == "FPARAM_COV":
                        arr = arr.reshape(len(arr), 9, 9)
                    fmt = f"{int(np.prod(arr.shape[1:]))}E"
                    cols.append(
                        fits.Column(name, fmt, dim=str(arr.shape[1:][::-1]) if arr.ndim > 2 else None, array=arr)
                    )
                elif v.dtype.kind in "OUT" or str(v.dtype).startswith("str"):
                    cols.append(fits.Column(name, "18A", array=np.array(v.astype(str))))
                elif v.dtype.kind == "f":
                    cols.append(fits.Column(name, "D", array=v.to_numpy()))
                else:
                    cols.append(fits.Column(name, "K", array=v.to_numpy()))
            hdul = fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)])
            hdul.writeto(OUT / f"{table}.fits", overwrite=True)
            data = (OUT / f"{table}.fits").read_bytes()
            (OUT / f"{table}_malformed.fits").write_bytes(data[: len(data) // 3])
            continue
        tbl = Table.from_pandas(df)
        for c in tbl.colnames:
            if tbl[c].dtype.kind == "O":
                tbl[c] = tbl[c].astype(str)
        (OUT / f"{table}.vot").write_bytes(_votable(tbl, "OK"))
        (OUT / f"{table}_empty.vot").write_bytes(_votable(tbl[:0], "OK"))
        (OUT / f"{table}_overflow.vot").write_bytes(_votable(tbl, "OVERFLOW"))
        good = (OUT / f"{table}.vot").read_bytes()
        (OUT / f"{table}_malformed.vot").write_bytes(good[: good.index(b"<TR>") + 40])


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else SKY, sys.argv[2:] or None)
