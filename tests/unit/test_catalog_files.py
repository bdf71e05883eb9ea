"""A catalog file that is not Parquet, or cut short, stops with an error that names the file."""

from __future__ import annotations

import pytest

from ddstars.errors import DataError
from ddstars.model.data import read_stars


def test_a_truncated_or_non_parquet_catalog_names_the_file(small_catalog, tmp_path):
    part = next((small_catalog["out"] / "stars").rglob("*.parquet"))
    truncated = tmp_path / "truncated.parquet"
    data = part.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "catalog.parquet"
    text.write_text("source_id,teff,logg\n1,5000,4.5\n")
    for path in (truncated, text):
        with pytest.raises(DataError, match=f"catalog {path} cannot be read as Parquet"):
            read_stars(path)
    assert len(read_stars(part)) > 0  # the intact partition still reads
