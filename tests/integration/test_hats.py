"""The HATS copies (rules hats_catalog, hats_inference; ddstars.hatsio) against the catalogs they copy, opened with
LSDB as a user would (docs/hats.md)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from ddstars.catalog import schema

lsdb = pytest.importorskip("lsdb")
from hats.io.validation import is_valid_catalog  # noqa: E402

ORDER = 2  # the small catalog's healpix_order (config default)


@pytest.fixture(scope="module")
def hats_catalog(small_catalog):
    from conftest import run_workflow, small_config

    work = small_catalog["out"].parents[1]
    run_workflow(work, small_config(), ["results/catalog/hats.json"])
    return small_catalog["out"] / "hats", small_catalog["out"]


@pytest.fixture(scope="module")
def hive(hats_catalog):
    return ds.dataset(hats_catalog[1] / "stars", format="parquet", partitioning="hive").to_table().to_pandas()


def _compute(cat) -> pd.DataFrame:
    return cat.compute().reset_index()


def test_the_copy_is_a_valid_hats_collection_with_a_margin(hats_catalog):
    path, out = hats_catalog
    assert is_valid_catalog(str(path), strict=True)
    doc = json.loads((out / "hats.json").read_text())
    assert doc["rows"] > 3000 and doc["margins"] and doc["partitions"] >= 12
    cat = lsdb.open_catalog(path)
    assert cat.margin is not None  # the collection's default margin, which cross-matches need


def test_same_stars_columns_and_values_as_the_hive_catalog(hats_catalog, hive):
    got = _compute(lsdb.open_catalog(hats_catalog[0])).sort_values("source_id").reset_index(drop=True)
    want = hive.sort_values("source_id").reset_index(drop=True)
    part = schema.partition_column(ORDER)
    assert set(got.columns) == (set(want.columns) - {part}) | {"_healpix_29"}
    np.testing.assert_array_equal(got["source_id"].to_numpy(np.int64), want["source_id"].to_numpy(np.int64))
    for c in schema.column_names():
        if pd.api.types.is_float_dtype(want[c]):  # NaN (not observed) compares equal to NaN
            np.testing.assert_array_equal(got[c].to_numpy(float, na_value=np.nan), want[c].to_numpy(float), err_msg=c)
        else:
            assert pa.Array.from_pandas(got[c]).to_pylist() == pa.Array.from_pandas(want[c]).to_pylist(), c
    # the Hive partition is the spatial index at the catalog's order
    pix = got["_healpix_29"].to_numpy(np.int64) >> (2 * (29 - ORDER))
    np.testing.assert_array_equal(pix, want[part].to_numpy(np.int64))


def test_units_and_descriptions_are_in_the_hats_schema(hats_catalog):
    common = pq.read_schema(hats_catalog[0] / "stars" / "dataset" / "_common_metadata")
    for col in schema.columns():
        meta = common.field(col.name).metadata
        assert meta[b"unit"].decode() == col.unit and meta[b"description"].decode() == col.description, col.name


@pytest.mark.parametrize("radius_deg", [0.5, 8.0])  # one partition; several, across their boundaries
def test_a_cone_search_returns_exactly_the_rows_of_a_direct_filter(hats_catalog, hive, radius_deg):
    centre = hive.iloc[len(hive) // 3]
    got = _compute(lsdb.open_catalog(hats_catalog[0]).cone_search(centre["ra"], centre["dec"], radius_deg * 3600))
    sep = SkyCoord(hive["ra"].to_numpy() * u.deg, hive["dec"].to_numpy() * u.deg).separation(
        SkyCoord(centre["ra"] * u.deg, centre["dec"] * u.deg)
    )
    inside = sep.deg < radius_deg
    assert 0 < inside.sum() < len(hive)
    assert not np.any(np.abs(sep.deg - radius_deg) < 1e-9)  # no star on the edge, where rounding could differ
    assert set(got["source_id"]) == set(hive.loc[inside, "source_id"])


def test_a_crossmatch_with_another_hats_catalog_finds_each_counterpart(hats_catalog, hive, tmp_path):
    """The docs' example: a small HATS catalog of 500 of our stars, moved by 0.3″, cross-matched within 1″."""
    rng = np.random.default_rng(4)
    pick = hive.sample(500, random_state=4)
    pa_ = rng.uniform(0, 360, len(pick))
    moved = SkyCoord(pick["ra"].to_numpy() * u.deg, pick["dec"].to_numpy() * u.deg).directional_offset_by(
        pa_ * u.deg, 0.3 * u.arcsec
    )
    other = pd.DataFrame({"other_id": pick["source_id"].to_numpy(), "ra": moved.ra.deg, "dec": moved.dec.deg})
    lsdb.from_dataframe(other, ra_column="ra", dec_column="dec").write_catalog(tmp_path / "other", progress_bar=False)
    ours = lsdb.open_catalog(hats_catalog[0], columns=["source_id", "ra", "dec"])
    other_cat = lsdb.open_catalog(tmp_path / "other")
    m = _compute(ours.crossmatch(other_cat, radius_arcsec=1.0, suffixes=("", "_other"), suffix_method="all_columns"))
    assert len(m) == 500
    np.testing.assert_array_equal(m["source_id"].to_numpy(np.int64), m["other_id_other"].to_numpy(np.int64))
    np.testing.assert_allclose(m["_dist_arcsec"].to_numpy(float), 0.3, atol=1e-6)


def test_the_inference_results_have_a_hats_copy_too(tiny_run):
    work, _cfg, r = tiny_run
    assert r.returncode == 0, r.stderr[-2000:]
    path = work / "results" / "inference" / "hats"
    assert is_valid_catalog(str(path), strict=True)
    got = _compute(lsdb.open_catalog(path, columns=["source_id", "teff_p50"]))
    want = ds.dataset(work / "results" / "inference" / "stars", format="parquet", partitioning="hive").to_table(
        columns=["source_id", "teff_p50"]
    )
    assert sorted(got["source_id"]) == sorted(want.column("source_id").to_pylist())
