"""Regenerate the recorded responses of tests/unit/test_remote.py (run from the repository root).

Each TAP table gets the VOTable a TAP service returns for one chunk (3 rows taken from the simulated archive
tables, with the remote column names of ddstars.remote.services), an empty result, a truncated (OVERFLOW)
result and a malformed (cut-off) document; APOGEE gets a tiny allStar-like FITS file. The UWS job documents
are hand-written in the UWS 1.1 format; their result href is the placeholder RESULT_URL.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.io.votable import from_table
from astropy.io.votable.tree import Info
from astropy.table import Table

from ddstars.remote import services as sv

OUT = Path(__file__).parent
SIM = Path("resources/simulated/archives")


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


def main() -> None:
    for table, spec in sv.SPECS.items():
        df = pd.read_parquet(SIM / f"{table}.parquet").head(3)
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
    main()
