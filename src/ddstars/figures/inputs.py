"""The validation inputs of the figures, each read on first use (only what a figure needs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..bands import BAND_NAMES


@dataclass
class Inputs:
    """Paths of the validation inputs; each is read on first use (only what a figure needs)."""

    paths: Mapping[str, str]
    train_options: Mapping[str, Any] = field(default_factory=dict)
    compare_label: str | None = None
    _cache: dict[str, Any] = field(default_factory=dict)

    def _get(self, key: str, load: Callable[[str], Any]) -> Any:
        if key not in self._cache:
            path = self.paths.get(key)
            self._cache[key] = None if not path else load(path)
        return self._cache[key]

    def has(self, key: str) -> bool:
        return bool(self.paths.get(key))

    @property
    def table(self) -> pd.DataFrame:
        return self._get("table", pd.read_parquet)

    @property
    def compare_table(self) -> pd.DataFrame | None:
        return self._get("compare_table", pd.read_parquet)

    @property
    def model(self):
        from ..model import load_model

        return self._get("model", load_model)

    @property
    def history(self) -> pd.DataFrame:
        return self._get("history", pd.read_csv)

    @property
    def rounds(self) -> pd.DataFrame:
        return self._get("rounds", pd.read_csv)

    @property
    def reddening(self) -> pd.DataFrame:
        return self._get("reddening", pd.read_parquet)

    @property
    def truth(self) -> pd.DataFrame | None:
        cols = ["source_id", "true_teff", "true_logg", "true_feh", "true_ebv", *(f"true_r_{b}" for b in BAND_NAMES)]
        return self._get("truth", lambda p: pd.read_parquet(p, columns=cols).set_index("source_id"))

    @property
    def truth_rv(self) -> pd.Series | None:
        """Each star's true R_V by source_id, where the simulated sky's dust varies (simulate.dust.rv)."""

        def load(path: str) -> pd.Series | None:
            import pyarrow.parquet as pq

            if "true_rv" not in pq.read_schema(path).names:
                return None
            return pd.read_parquet(path, columns=["source_id", "true_rv"]).set_index("source_id")["true_rv"]

        if "truth_rv" not in self._cache:
            self._cache["truth_rv"] = load(self.paths["truth"]) if self.has("truth") else None
        return self._cache["truth_rv"]

    def catalog(self, columns: list[str]) -> pd.DataFrame:
        from ..catalog.build import read_catalog

        return read_catalog(self.paths["catalog"], columns=columns)
