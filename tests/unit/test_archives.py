"""The archive interface: backends choose the file, read_table checks it and names what is wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ddstars import archives
from ddstars.errors import ConfigError, DataError, SchemaError


def _galah(n=3, **over):
    df = pd.DataFrame(
        {
            "sobject_id": np.arange(n, dtype=np.int64) + 140000000000000,
            "ra": np.linspace(10, 11, n),
            "dec": np.linspace(-40, -39, n),
            **{
                c: np.full(n, v)
                for c, v in (
                    ("teff", 5000.0),
                    ("e_teff", 80.0),
                    ("logg", 4.0),
                    ("e_logg", 0.1),
                    ("fe_h", 0.0),
                    ("e_fe_h", 0.05),
                )
            },
            **{f"snr_c{i}": np.full(n, 50.0) for i in range(1, 5)},
            "flag_cannon": np.zeros(n, dtype=np.int32),
        }
    )
    for k, v in over.items():
        df[k] = v
    return df


def test_backends_choose_the_file():
    sim = archives.backend_from_config({"backend": "simulated"})
    assert sim.path("gaia_source").as_posix() == "resources/simulated/archives/gaia_source.parquet"
    remote = archives.backend_from_config({"backend": "remote"})
    assert remote.path("galah_dr2").as_posix() == "resources/archives/galah_dr2.parquet"
    with pytest.raises(ConfigError, match="backend.*'nowhere'"):
        archives.backend_from_config({"backend": "nowhere"})
    with pytest.raises(KeyError, match="unknown archive table 'gaia'"):
        sim.path("gaia")


def test_every_table_named_by_the_simulated_sky_is_described():
    """The sky writes the paper's release's tables, its DR3 view the DR3 release's own: together, every table."""
    from ddstars.simulate.release import DR3_TABLES
    from ddstars.simulate.sky import TABLES

    assert set(TABLES) | set(DR3_TABLES) == set(archives.TABLES)
    assert not set(TABLES) & set(DR3_TABLES)


def test_read_table_round_trip(tmp_path):
    p = tmp_path / "galah_dr2.parquet"
    _galah().to_parquet(p)
    df = archives.read_table(p, "galah_dr2")
    assert len(df) == 3 and "flag_cannon" in df


def test_read_table_errors_name_file_column_and_rows(tmp_path):
    p = tmp_path / "galah_dr2.parquet"
    with pytest.raises(DataError, match="galah_dr2.parquet.*not found"):
        archives.read_table(p, "galah_dr2")
    _galah().drop(columns=["e_logg", "snr_c3"]).to_parquet(p)
    with pytest.raises(SchemaError, match="galah_dr2.parquet.*missing column 'e_logg'.*missing column 'snr_c3'"):
        archives.read_table(p, "galah_dr2")
    _galah(teff=["hot", "cool", "warm"]).to_parquet(p)
    with pytest.raises(SchemaError, match="column 'teff' has type (large_)?string, expected float"):
        archives.read_table(p, "galah_dr2")
    _galah(dec=[1.0, np.nan, np.inf]).to_parquet(p)
    with pytest.raises(DataError, match=r"column 'dec' has 2 non-finite value\(s\), first at row\(s\) 1, 2"):
        archives.read_table(p, "galah_dr2")
    _galah(n=0).to_parquet(p)
    with pytest.raises(DataError, match="galah_dr2.*is empty"):
        archives.read_table(p, "galah_dr2")
    p.write_text("not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        archives.read_table(p, "galah_dr2")
