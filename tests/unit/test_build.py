"""Catalog output: split, parallax rule, partitioned files, atomic writes, the schema and its validator."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from ddstars.catalog import build, schema
from ddstars.errors import ConfigError, SchemaError


def test_split_is_a_function_of_the_star_id():
    ids = np.arange(1, 200001, dtype=np.int64) * 7919 + 2**40
    s = build.split_of(ids)
    for name, f in (("train", 0.7), ("validation", 0.2), ("test", 0.1)):
        frac = np.mean(s == name)
        assert abs(frac - f) < 4 * np.sqrt(f * (1 - f) / len(ids)), (name, frac)
    rng = np.random.default_rng(0)
    sub = rng.choice(len(ids), 1000, replace=False)
    np.testing.assert_array_equal(build.split_of(ids[sub]), s[sub])  # same star, same split, any company
    other = build.split_of(ids, seed=8)
    assert 0.4 < np.mean(other == s) < 0.7  # a new seed reshuffles
    assert set(build.split_of(ids[:1000], (0.0, 0.0, 1.0))) == {"test"}
    with pytest.raises(ConfigError, match="summing to 1"):
        build.split_of(ids, (0.7, 0.2, 0.2))


def test_parallax_used_from_snr_5():
    plx = np.array([1.0, 1.0, 1.0, -1.0, np.nan, 1.0])
    sig = np.array([0.2, 0.2000001, 0.1, 0.1, 0.1, 0.0])
    np.testing.assert_array_equal(build.parallax_usable(plx, sig), [True, False, True, False, False, False])


def test_schema_expands_band_columns_and_matches_docs():
    names = schema.column_names()
    assert len(names) == len(set(names))
    for b in ("gaia_g", "unwise_w2"):
        assert {f"mag_{b}", f"err_{b}", f"obs_{b}"} <= set(names)
    assert schema.partition_column(5) == "healpix_5"
    from conftest import ROOT

    assert (ROOT / "docs" / "catalog.md").read_text() == schema.markdown(), "run python -m ddstars.catalog.schema"


@pytest.fixture()
def catalog_copy(small_catalog, tmp_path):
    dst = tmp_path / "stars"
    shutil.copytree(small_catalog["out"] / "stars", dst)
    return dst


def test_built_catalog_is_valid_and_partitioned(small_catalog):
    path = small_catalog["out"] / "stars"
    order = small_catalog["options"]["healpix_order"]
    assert schema.check_catalog(path, order) == []
    cat = build.read_catalog(path)
    name = schema.partition_column(order)
    pixel = int(cat[name].value_counts().index[0])
    dataset = schema.open_catalog(path)
    fragments = list(dataset.get_fragments(filter=ds.field(name) == pixel))
    assert fragments and all(f"/{name}={pixel}/" in f.path for f in fragments)
    n_files = len(list(dataset.get_fragments()))
    assert len(fragments) < n_files
    one = dataset.to_table(filter=ds.field(name) == pixel).to_pandas()
    assert len(one) == int((cat[name] == pixel).sum())
    for f in fragments:  # row groups sized for columnar reads: one file per small partition
        meta = pq.ParquetFile(f.path).metadata
        assert meta.num_row_groups >= 1 and meta.row_group(0).num_rows <= small_catalog["options"]["row_group_size"]


def _rewrite(path, edit):
    """Apply ``edit`` to the catalog's data (partition column dropped) and write it back as one file."""
    t = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    df = t.drop_columns([c for c in t.column_names if c.startswith("healpix_")]).to_pandas()
    df = edit(df)
    shutil.rmtree(path)
    path.mkdir()
    df.to_parquet(path / "part-0.parquet", index=False)
    return df


@pytest.mark.parametrize(
    "edit, column, problem",
    [
        (lambda d: d.drop(columns=["var_logg"]), "var_logg", "missing column"),
        (lambda d: d.assign(teff=d["teff"].astype(str)), "teff", "expected double"),
        (lambda d: d.assign(teff=np.where(np.arange(len(d)) == 3, np.nan, d["teff"])), "teff", "null or NaN"),
        (lambda d: d.assign(r_source=np.where(np.arange(len(d)) == 7, "planck", d["r_source"])), "r_source", "outside"),
        (lambda d: d.assign(err_ps1_g=np.where(d["obs_ps1_g"], d["err_ps1_g"], 0.05)), "err_ps1_g", "finite exactly"),
        (lambda d: d.assign(obs_tmass_j=~d["obs_tmass_j"]), "obs_tmass_j", "mask disagrees"),
        (
            lambda d: d.assign(source_id=np.r_[d["source_id"].iloc[1], d["source_id"].iloc[1:]]),
            "source_id",
            "duplicate",
        ),
        (lambda d: d.assign(var_feh=-d["var_feh"]), "var_feh", "not above 0"),
        (lambda d: d.assign(parallax_usable=~d["parallax_usable"]), "parallax_usable", "disagrees"),
    ],
)
def test_validator_names_column_problem_and_rows(catalog_copy, edit, column, problem):
    _rewrite(catalog_copy, edit)
    problems = schema.check_catalog(catalog_copy)
    hit = [p for p in problems if p["column"] == column and problem in p["problem"]]
    assert hit, problems
    if "n_rows" in hit[0]:
        assert hit[0]["n_rows"] >= 1 and hit[0]["first_rows"]
    assert column in schema.format_problems(problems)


def test_validator_pinpoints_rows_and_partition_pixels(catalog_copy):
    df = _rewrite(catalog_copy, lambda d: d.assign(teff=np.where(np.arange(len(d)) == 5, np.nan, d["teff"])))
    p = [x for x in schema.check_catalog(catalog_copy) if x["column"] == "teff"][0]
    assert p["first_rows"] == [5] and p["first_source_ids"] == [int(df["source_id"].iloc[5])]
    problems = schema.check_catalog(catalog_copy, order=2)
    assert any(x["column"] == "healpix_2" and "missing partition column" in x["problem"] for x in problems)


def test_partitioned_write_is_atomic(small_catalog, tmp_path, monkeypatch):
    cat = build.read_catalog(small_catalog["out"] / "stars")
    cat = cat.drop(columns=[c for c in cat.columns if c.startswith("healpix_")])
    out = tmp_path / "stars"
    info = build.write_partitioned(cat, out, order=1)
    assert info["rows"] == len(cat) and info["partition_column"] == "healpix_1"
    before = sorted(p.relative_to(out) for p in out.rglob("*.parquet"))
    with pytest.raises(SchemaError, match="teff"):  # a bad column fails before anything is written
        build.write_partitioned(cat.assign(teff="hot"), out, order=1)
    real = ds.write_dataset

    def dies_after_writing(*args, **kwargs):  # an interrupted job: files written, then a crash
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(build.ds, "write_dataset", dies_after_writing)
    with pytest.raises(KeyboardInterrupt):
        build.write_partitioned(cat.iloc[:10], out, order=1)
    assert sorted(p.relative_to(out) for p in out.rglob("*.parquet")) == before  # old catalog intact
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".stars")]  # no temporary left behind
    assert ds.dataset(out, partitioning="hive").count_rows() == len(cat)
    assert pa.types.is_int64(ds.dataset(out, partitioning="hive").schema.field("source_id").type)


def test_table1_counts(small_catalog):
    cat = build.read_catalog(small_catalog["out"] / "stars")
    t1 = build.table1(cat).set_index("name")
    assert t1.loc["stars", "n"] == len(cat)
    assert t1.loc["ps1_i", "n"] == int(cat["obs_ps1_i"].sum())
    assert t1.loc["lamost", "n"] + t1.loc["apogee", "n"] + t1.loc["galah", "n"] == len(cat)
    assert t1.loc["unwise_w1", "paper_n"] == 839532
    md = build.table1_markdown(build.table1(cat))
    assert "| unwise_w1 |" in md and "839,532" in md
    assert isinstance(pd.read_csv(small_catalog["out"] / "table1.csv"), pd.DataFrame)


def _field_metadata(path) -> dict[str, dict[str, str]]:
    """Per column of the Parquet files under ``path``: its field metadata as read back (the same in every file)."""
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    per_file = [
        {f.name: {k.decode(): v.decode() for k, v in (f.metadata or {}).items()} for f in pq.read_schema(p)}
        for p in files
    ]
    assert files and all(m == per_file[0] for m in per_file)
    return per_file[0]


def _schema_units() -> dict[str, dict[str, str]]:
    """Unit and description per column, straight from workflow/schemas/catalog.schema.yaml ({band}: 13 columns)."""
    import yaml
    from conftest import ROOT

    from ddstars.bands import BAND_NAMES

    doc = yaml.safe_load((ROOT / "workflow" / "schemas" / "catalog.schema.yaml").read_text())
    out = {}
    for c in doc["columns"]:
        for name in [c["name"].format(band=b) for b in BAND_NAMES] if "{band}" in c["name"] else [c["name"]]:
            out[name] = {"unit": str(c["unit"]), "description": " ".join(str(c["description"]).split())}
    return out


def test_catalog_files_carry_each_columns_unit_and_description(small_catalog):
    got = _field_metadata(small_catalog["out"] / "stars")
    want = _schema_units()
    assert {k: v for k, v in got.items() if k in want} == want
    assert got["teff"]["unit"] == "K" and got["ra"]["unit"] == "deg"


def test_an_imported_catalog_carries_them_too(small_catalog, tmp_path):
    from ddstars.catalog.external import import_catalog

    cat = build.read_catalog(small_catalog["out"] / "stars")
    required = [c.name for c in schema.columns() if c.tier == "required"]
    cat[required].to_parquet(tmp_path / "mine.parquet", index=False)  # pandas: no units in the user's file
    assert all(not f.metadata for f in pq.read_schema(tmp_path / "mine.parquet"))
    import_catalog(tmp_path / "mine.parquet", tmp_path / "stars", small_catalog["options"])
    got = _field_metadata(tmp_path / "stars")
    want = _schema_units()
    assert {k: v for k, v in got.items() if k in want} == want
