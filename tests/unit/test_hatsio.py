"""ddstars.hatsio without LSDB's writer: what it reads and what it refuses."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ddstars import hatsio
from ddstars.errors import DataError


def test_a_catalog_without_positions_gets_no_hats_copy_and_says_why(tmp_path):
    (tmp_path / "stars" / "part").mkdir(parents=True)
    pd.DataFrame({"source_id": [1, 2], "teff": [5000.0, 6000.0]}).to_parquet(tmp_path / "stars" / "part" / "a.parquet")
    doc = hatsio.run_hats(tmp_path / "stars", tmp_path / "hats", tmp_path / "hats.json", "stars", "")
    assert doc["written"] is False and "no ra/dec" in doc["reason"]
    assert json.loads((tmp_path / "hats.json").read_text()) == doc
    assert "no ra/dec" in (tmp_path / "hats" / "NOT_WRITTEN.txt").read_text()


def test_the_dataset_files_are_found_and_an_empty_folder_is_named(tmp_path):
    for p in ("healpix_2=1/part-0.parquet", "healpix_2=0/part-0.parquet", ".tmp/x.parquet", "_common_metadata"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_bytes(b"")
    assert [f.relative_to(tmp_path).as_posix() for f in hatsio.dataset_files(tmp_path)] == [
        "healpix_2=0/part-0.parquet",
        "healpix_2=1/part-0.parquet",
    ]
    with pytest.raises(DataError, match=str(tmp_path / "empty")):
        hatsio.dataset_files(tmp_path / "empty")
