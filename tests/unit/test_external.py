"""A catalog brought by the user (ddstars.catalog.external): schema tiers, derived columns, the split rule.

The reference is the catalog the workflow builds from the small simulated sky: its derived columns, split and
Galactic coordinates come from the build's own code path; a minimal file cut from it must import to the same.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ddstars.bands import BAND_NAMES, BANDS
from ddstars.catalog import build, schema
from ddstars.catalog.external import import_catalog
from ddstars.catalog.stages import run_check
from ddstars.errors import DataError

REQUIRED = [c.name for c in schema.columns() if c.tier == "required"]


@pytest.fixture(scope="module")
def built(small_catalog):
    return build.read_catalog(small_catalog["out"] / "stars").sort_values("source_id", ignore_index=True)


def _write(df: pd.DataFrame, path) -> str:
    df.to_parquet(path, index=False)
    return str(path)


def _imported(out) -> pd.DataFrame:
    return build.read_catalog(out).sort_values("source_id", ignore_index=True)


def test_the_required_tier_is_what_training_reads():
    from ddstars.model.data import COLUMNS

    derived = {c.name for c in schema.columns() if c.tier == "derived"}
    assert set(COLUMNS) <= set(REQUIRED) | derived  # everything training reads is given or derived
    assert {"ra", "dec", "survey", "ebv_sfd", "r_source", "survey_id"}.isdisjoint(REQUIRED)
    assert {"split", "parallax_usable", *(f"obs_{b}" for b in BAND_NAMES)} <= derived
    for c in schema.columns():
        assert c.tier in ("required", "derived", "optional"), c.name
        assert c.tier != "optional" or (c.nullable and c.enables), c.name


def test_minimal_catalog_imports_to_the_built_one(built, small_catalog, tmp_path):
    src = _write(built[REQUIRED], tmp_path / "mine.parquet")
    report = import_catalog(src, tmp_path / "stars", small_catalog["options"])
    got = _imported(tmp_path / "stars")
    assert len(got) == len(built) == report["rows"]
    import hashlib

    (read,) = report["source_files"]
    assert read["md5"] == hashlib.md5((tmp_path / "mine.parquet").read_bytes()).hexdigest()
    # derived columns equal the build's
    for col in ["parallax_usable", "split", *(f"obs_{b}" for b in BAND_NAMES)]:
        assert (got[col].to_numpy() == built[col].to_numpy()).all(), col
    assert report["split"]["source"].startswith("hash")
    assert sum(report["split"][s] for s in build.SPLITS) == len(built)
    for c in ("cov_teff_logg", "cov_teff_feh", "cov_logg_feh"):
        assert (got[c] == 0).all()
    # optional columns absent: null, and named with what they enable
    for c in ("ra", "dec", "l", "b", "survey", "ebv_sfd", "r_source"):
        assert got[c].isna().all(), c
    assert set(report["null_optional_columns"]) >= {"ra", "dec", "survey", "ebv_sfd"}
    assert "Table 1" in report["null_optional_columns"]["survey"]
    # no positions: one file, and the report says why
    assert report["partitioning"]["partitions"] == 1 and "ra/dec not given" in report["partitioning"]["why_not"]
    assert not any(p.name.startswith("healpix_") for p in (tmp_path / "stars").iterdir())
    # the imported catalog is valid in the full schema and trains (read_stars reads it)
    assert schema.check_catalog(tmp_path / "stars") == []
    from ddstars.model.data import read_stars

    assert len(read_stars(tmp_path / "stars", split="test")) == int((built["split"] == "test").sum())


def test_positions_give_galactic_coordinates_and_healpix_partitions(built, small_catalog, tmp_path):
    src = _write(built[[*REQUIRED, "ra", "dec", "survey"]], tmp_path / "mine.parquet")
    report = import_catalog(src, tmp_path / "stars", small_catalog["options"])
    got = _imported(tmp_path / "stars")
    np.testing.assert_allclose(got["l"], built["l"], atol=1e-7)
    np.testing.assert_allclose(got["b"], built["b"], atol=1e-7)
    order = small_catalog["options"]["healpix_order"]
    assert report["partitioning"]["partition_column"] == f"healpix_{order}"
    assert schema.check_catalog(tmp_path / "stars", order) == []
    assert (got["survey"] == built["survey"]).all()


def test_the_files_split_column_wins(built, small_catalog, tmp_path):
    mine = built[[*REQUIRED, "split"]].copy()
    mine["split"] = np.where(np.arange(len(mine)) % 2 == 0, "train", "test")  # not the hash's assignment
    src = _write(mine, tmp_path / "mine.parquet")
    report = import_catalog(src, tmp_path / "stars", small_catalog["options"])
    got = _imported(tmp_path / "stars")
    assert (got["split"].to_numpy() == mine.sort_values("source_id")["split"].to_numpy()).all()
    assert report["split"]["source"] == "file" and report["split"]["validation"] == 0


def test_a_different_seed_moves_stars_between_splits(built, small_catalog, tmp_path):
    src = _write(built[REQUIRED], tmp_path / "mine.parquet")
    options = json.loads(json.dumps(small_catalog["options"]))
    options["split"]["seed"] += 1
    import_catalog(src, tmp_path / "stars", options)
    got = _imported(tmp_path / "stars")
    moved = np.mean(got["split"].to_numpy() != built["split"].to_numpy())
    assert 0.3 < moved < 0.6  # independent 70/20/10 draws differ for 1 - (0.49 + 0.04 + 0.01) = 46 %


def test_problems_name_the_file_column_and_rows(built, small_catalog, tmp_path):
    mine = built[[*REQUIRED, "survey"]].copy()
    mine.loc[3, "source_id"] = mine.loc[1, "source_id"]
    mine = mine.drop(columns=["sigma_ebv_prior"])
    mine["my_flag"] = 1  # unknown columns are ignored, and listed
    src = _write(mine, tmp_path / "mine.parquet")
    with pytest.raises(DataError) as err:
        import_catalog(src, tmp_path / "stars", small_catalog["options"])
    text = str(err.value)
    assert "mine.parquet" in text and "'sigma_ebv_prior': missing column (required)" in text
    assert "duplicate source_id (2 rows, first [1, 3]" in text
    assert not (tmp_path / "stars").exists()
    # the validator's report lists what the run cannot produce without the optional columns
    with pytest.raises(DataError):
        run_check(src, tmp_path / "check.json", None, external=True)
    doc = json.loads((tmp_path / "check.json").read_text())
    assert doc["valid"] is False and doc["missing_required"] == ["sigma_ebv_prior"]
    assert "survey" not in doc["cannot_produce"] and "ra" in doc["cannot_produce"]
    assert "split" in doc["derived_on_import"]


def test_extra_columns_are_ignored_and_listed(built, small_catalog, tmp_path):
    mine = built[REQUIRED].assign(my_flag=1, healpix_9=0)
    report = import_catalog(_write(mine, tmp_path / "m.parquet"), tmp_path / "stars", small_catalog["options"])
    assert report["ignored_columns"] == ["my_flag", "healpix_9"]
    assert "my_flag" not in build.read_catalog(tmp_path / "stars").columns


def test_unwise_in_vega_is_a_warning_or_with_strict_an_error(built, small_catalog, tmp_path, caplog, capsys):
    mine = built[REQUIRED].copy()
    for b in BANDS:
        if b.survey == "unwise":
            mine[f"mag_{b.name}"] -= b.ab_minus_vega  # the catalog's AB magnitudes written in Vega
    src = _write(mine, tmp_path / "vega.parquet")
    with caplog.at_level(logging.WARNING, logger="ddstars.catalog.photsys"):
        report = import_catalog(src, tmp_path / "stars", small_catalog["options"])
    flagged = {f["column"]: f["cause"] for f in report["photometry"]["findings"]}
    assert flagged == {"mag_unwise_w1": "vega_instead_of_ab", "mag_unwise_w2": "vega_instead_of_ab"}
    assert "mag_unwise_w1" in caplog.text and "Vega" in caplog.text
    console = capsys.readouterr().err  # on the console too, not only in the rule's log
    assert "WARNING: " in console and "mag_unwise_w1 is 2.70 mag brighter" in console
    strict = {**small_catalog["options"], "strict_photometry": True}
    with pytest.raises(DataError, match="vega.parquet.*mag_unwise_w1"):
        import_catalog(src, tmp_path / "strict", strict)
    assert not (tmp_path / "strict").exists()
    # the correct catalog passes the same check
    ok = import_catalog(_write(built[REQUIRED], tmp_path / "ok.parquet"), tmp_path / "ok", strict)
    assert ok["photometry"]["findings"] == []


def test_a_pandas_float_id_column_gets_the_exact_fix(built, tmp_path):
    mine = built[[*REQUIRED, "ps1_objid"]].copy()
    mine["ps1_objid"] = mine["ps1_objid"].astype(float)  # what pandas does to an integer column with gaps
    problems = schema.validate_table(pa.Table.from_pandas(mine, preserve_index=False), "mine.parquet", external=True)
    assert [p["column"] for p in problems] == ["ps1_objid"]
    assert "astype('Int64')" in problems[0]["problem"]
    mine["ps1_objid"] = mine["ps1_objid"].astype("Int64")  # the fix it names
    assert schema.validate_table(pa.Table.from_pandas(mine, preserve_index=False), "mine.parquet", external=True) == []


def test_schema_command_line(built, tmp_path, capsys):
    with pytest.raises(SystemExit) as ex:
        schema.main(["--help"])
    assert ex.value.code == 0 and "--external" in capsys.readouterr().out
    src = _write(built[REQUIRED], tmp_path / "mine.parquet")
    assert schema.main(["--external", src]) == 0
    out = capsys.readouterr().out
    assert f"{src}: valid" in out and '"cannot_produce"' in out
    assert schema.main([src]) == 1  # as a built catalog it lacks columns
    assert "missing column" in capsys.readouterr().out


def test_progress_line_has_an_eta(capsys):
    from ddstars.logs import progress

    line = progress("train_model", 5, 20, 50.0, "rounds")
    assert line.startswith("train_model: 5/20 rounds, 50 s, about 150 s left (ETA ")
    assert capsys.readouterr().err.strip() == line
    assert progress("train_model", 20, 20, 200.0, "rounds") == "train_model: 20/20 rounds, 200 s"
