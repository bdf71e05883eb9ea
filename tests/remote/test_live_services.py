"""One small live query per service (`pytest -m remote_data`; never in CI): do the services still answer
with the tables and columns the remote backend expects? Run these after a service announces a change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ddstars import registry
from ddstars.archives import TABLES
from ddstars.remote import fetch
from ddstars.remote import services as sv
from ddstars.remote.client import TapClient

pytestmark = pytest.mark.remote_data

# A few well-observed stars in the LAMOST/APOGEE footprint (Gaia DR2 positions, degrees).
POSITIONS = pd.DataFrame({"ra": [10.684708, 56.75, 83.822083], "dec": [41.26875, 24.1167, -5.391111]})


def _one_chunk(table: str, inputs: pd.DataFrame | None, tmp_path, **overrides):
    config = {"remote": {"cache_dir": str(tmp_path / "cache"), "tables": {table: overrides}}}
    chunks = fetch.plan(table, config, inputs)
    first = next(iter(chunks))
    path = fetch.fetch_chunk(table, first, config, inputs, chunks=chunks)
    return pd.read_parquet(path), config, path


@pytest.mark.parametrize("table", ["lamost_dr5_ddpayne", "galah_dr2"])
def test_spectroscopic_catalogue_slice(table, tmp_path):
    df, config, path = _one_chunk(table, None, tmp_path, n_chunks=720)  # a 0.5-degree RA slice
    assert len(df) > 0
    out = fetch.assemble(table, [path], tmp_path / f"{table}.parquet", config)
    assert set(TABLES[table].columns) <= set(pd.read_parquet(out).columns)


def test_gaia_position_upload(tmp_path):
    df, config, path = _one_chunk("gaia_source", POSITIONS, tmp_path)
    out = pd.read_parquet(fetch.assemble("gaia_source", [path], tmp_path / "g.parquet", config))
    assert len(out) >= 2 and np.all(out["source_id"] > 0)


@pytest.mark.parametrize("table", ["panstarrs1_best_neighbour", "tmass_best_neighbour"])
def test_gaia_best_neighbours(table, tmp_path):
    ids = pd.DataFrame({"id": [4295806720, 38655544960]})  # two Gaia DR2 source_ids
    df, _, _ = _one_chunk(table, ids, tmp_path)
    assert len(df) >= 1


@pytest.mark.parametrize(("table", "inputs"), [("unwise", POSITIONS)])
def test_unwise_position_upload(table, inputs, tmp_path):
    df, _, _ = _one_chunk(table, inputs, tmp_path)
    assert len(df) >= 1


def test_every_service_answers_a_trivial_query():
    cfg = sv.remote_config({})
    for name, svc in cfg["services"].items():
        if name in ("sdss", "sdss_dr17"):  # file servers, not TAP
            continue
        client = TapClient(url=svc["url"], service=name, retries={"max": 2, "base_s": 1.0, "max_s": 5.0})
        table = client.query("SELECT TOP 1 * FROM TAP_SCHEMA.tables")
        assert len(table) == 1, name


def test_the_photometric_sample_s_gaia_query_by_pixel(tmp_path):
    """One order-9 pixel (0.013 deg², near M31) of the photometric sample: the Gaia archive answers the source_id range
    query, and the sources returned lie in the pixel by their positions (all but a few near its edge: the id's pixel
    is that of the position when the id was given)."""
    import healpy as hp

    order = 9
    pixel = int(hp.ang2pix(2**order, 10.684708, 41.26875, nest=True, lonlat=True))
    config = {
        "remote": {"cache_dir": str(tmp_path / "cache")},
        "inference": {"photometric_sample": {"healpix_order": order, "pixels": [pixel], "gaia_g_range": [12, 19]}},
    }
    name = "photometric/gaia_source"
    chunks = fetch.plan(name, config)
    path = fetch.fetch_chunk(name, next(iter(chunks)), config, chunks=chunks)
    df = pd.read_parquet(fetch.assemble(name, [path], tmp_path / "g.parquet", config))
    assert len(df) > 0 and df["phot_g_mean_mag"].between(12, 19).all()
    assert np.mean(hp.ang2pix(2**order, df["ra"], df["dec"], nest=True, lonlat=True) == pixel) > 0.99


# ------------------------------------------------------------------------ the Gaia DR3 era (archives.release: dr3)
DR3 = registry.release("dr3")
DR3_CONFIG = {"archives": {"release": "dr3"}}
DR3_COLUMNS = (
    "ruwe", "phot_bp_rp_excess_factor", "nu_eff_used_in_astrometry", "pseudocolour", "ecl_lat",
    "astrometric_params_solved",
)  # fmt: skip


def _dr3_chunk(table: str, inputs: pd.DataFrame | None, tmp_path, **overrides):
    config = {**DR3_CONFIG, "remote": {"cache_dir": str(tmp_path / "cache"), "tables": {table: overrides}}}
    chunks = fetch.plan(table, config, inputs)
    first = next(iter(chunks))
    path = fetch.fetch_chunk(table, first, config, inputs, chunks=chunks)
    out = fetch.assemble(table, [path], tmp_path / f"{table}.parquet", config)
    return pd.read_parquet(out), config


def test_gaia_dr3_source_position_upload_has_the_dr3_columns(tmp_path):
    table = DR3.surveys["gaia"].table
    df, _ = _dr3_chunk(table, POSITIONS, tmp_path, mode="sync")
    assert len(df) >= 2 and np.all(df["source_id"] > 0)
    assert set(DR3_COLUMNS) <= set(df.columns)
    assert df["ruwe"].notna().all() and df["astrometric_params_solved"].isin([3, 31, 95]).all()


def _dr3_source_ids(tmp_path) -> pd.DataFrame:
    df, _ = _dr3_chunk(DR3.surveys["gaia"].table, POSITIONS, tmp_path / "gaia", mode="sync")
    return pd.DataFrame({"id": df["source_id"].to_numpy()})


def test_gaia_dr3_panstarrs1_best_neighbour(tmp_path):
    table = DR3.links()["ps1"]
    df, _ = _dr3_chunk(table, _dr3_source_ids(tmp_path), tmp_path, mode="sync")
    assert len(df) >= 1 and (df[DR3.link_keys()["ps1"]] > 0).all()


def test_gaia_dr3_tmass_best_neighbour_joins_the_psc_designation(tmp_path):
    """The id upload JOIN gaiadr3.tmass_psc_xsc_join: the joined PSC designation comes back (2MASS designations
    are 16 characters, hhmmssss+ddmmsss), and the 2MASS PSC query of IRSA finds those designations."""
    table = DR3.links()["tmass"]
    key = DR3.link_keys()["tmass"]
    df, config = _dr3_chunk(table, _dr3_source_ids(tmp_path), tmp_path, mode="sync")
    assert len(df) >= 1 and df[key].str.fullmatch(r"\d{8}[+-]\d{7}").all()
    psc, _ = _dr3_chunk("tmass_psc", pd.DataFrame({"id": df[key]}), tmp_path / "psc")
    assert set(psc["designation"].str.strip()) == set(df[key])


def test_galah_dr4_at_data_central(tmp_path):
    table = DR3.surveys["galah"].table
    df, _ = _dr3_chunk(table, None, tmp_path, n_chunks=3600)  # a 0.1-degree RA slice
    assert len(df) > 0 and set(TABLES[table].columns) <= set(df.columns)
    assert df["flag_sp"].notna().all()


def test_apogee_dr17_allstar_is_there(tmp_path):
    """The allStar file (about 4 GB): a HEAD request and its first 2880-byte FITS block only."""
    import requests

    table = DR3.surveys["apogee"].table
    (chunk,) = fetch.plan(table, DR3_CONFIG).values()
    with requests.Session() as s:
        head = s.head(chunk.url, allow_redirects=True, timeout=60)
        assert head.status_code == 200 and int(head.headers["Content-Length"]) > 1e9
        first = s.get(chunk.url, headers={"Range": "bytes=0-2879"}, timeout=60)
        assert first.status_code == 206 and first.content.startswith(b"SIMPLE  =                    T")
