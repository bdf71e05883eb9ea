"""Training inputs from the catalog: labels, their covariances, photometry, parallaxes, reddening priors.

Only the needed columns are read (pyarrow, column projection), into float64 arrays of (n, ...) shape.
Bad input stops with a message naming the problem and the first offending source_ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..bands import BAND_NAMES
from ..errors import DataError

LABELS = ("teff", "logg", "feh")
COLUMNS = (
    "source_id",
    "split",
    *LABELS,
    *(f"var_{x}" for x in LABELS),
    "cov_teff_logg",
    "cov_teff_feh",
    "cov_logg_feh",
    "parallax",
    "parallax_error",
    "parallax_usable",
    *(f"mag_{b}" for b in BAND_NAMES),
    *(f"err_{b}" for b in BAND_NAMES),
    *(f"obs_{b}" for b in BAND_NAMES),
    "ebv_prior",
    "sigma_ebv_prior",
)


@dataclass
class Stars:
    """Per-star training inputs (all arrays share the first axis)."""

    source_id: np.ndarray  # (n,) int64
    split: np.ndarray  # (n,) str
    theta: np.ndarray  # (n, 3): Teff [K], log g, [Fe/H]
    cov_theta: np.ndarray  # (n, 3, 3)
    mag: np.ndarray  # (n, 13), NaN where unobserved
    err: np.ndarray  # (n, 13), NaN where unobserved
    observed: np.ndarray  # (n, 13) bool
    parallax: np.ndarray  # (n,) mas
    parallax_error: np.ndarray  # (n,) mas
    parallax_usable: np.ndarray  # (n,) bool
    ebv_prior: np.ndarray  # (n,)
    sigma_ebv_prior: np.ndarray  # (n,)

    def __len__(self) -> int:
        return len(self.source_id)

    def subset(self, mask: np.ndarray) -> Stars:
        return Stars(**{k: v[mask] for k, v in self.__dict__.items()})

    @classmethod
    def from_frame(cls, df: pd.DataFrame, where: str = "catalog") -> Stars:
        missing = [c for c in COLUMNS if c not in df.columns]
        if missing:
            raise DataError(f"{where}: missing column(s) {', '.join(missing)} needed for training")
        sid = df["source_id"].to_numpy(np.int64)

        def f(cols):
            return df[list(cols)].to_numpy(dtype=np.float64, na_value=np.nan)

        theta = f(LABELS)
        var = f(f"var_{x}" for x in LABELS)
        off = f(("cov_teff_logg", "cov_teff_feh", "cov_logg_feh"))
        for name, arr in (("labels (teff, logg, feh)", theta), ("label variances", var), ("label covariances", off)):
            bad = ~np.isfinite(arr).all(axis=1)
            if bad.any():
                raise DataError(
                    f"{where}: {int(bad.sum())} star(s) with non-finite {name}, e.g. source_id {sid[bad][:5].tolist()}"
                )
        cov = np.zeros((len(df), 3, 3))
        cov[:, [0, 1, 2], [0, 1, 2]] = var
        for k, (i, j) in enumerate(((0, 1), (0, 2), (1, 2))):
            cov[:, i, j] = cov[:, j, i] = off[:, k]
        mag = f(f"mag_{b}" for b in BAND_NAMES)
        err = f(f"err_{b}" for b in BAND_NAMES)
        obs = df[[f"obs_{b}" for b in BAND_NAMES]].to_numpy(dtype=bool) & np.isfinite(mag) & np.isfinite(err)
        prior = f(("ebv_prior", "sigma_ebv_prior"))
        bad = ~(np.isfinite(prior).all(axis=1) & (prior[:, 1] > 0))
        if bad.any():
            n_bad, first = int(bad.sum()), sid[bad][:5].tolist()
            raise DataError(f"{where}: {n_bad} star(s) without a usable reddening prior, e.g. source_id {first}")
        return cls(
            source_id=sid,
            split=df["split"].astype(str).to_numpy(),
            theta=theta,
            cov_theta=cov,
            mag=np.where(obs, mag, np.nan),
            err=np.where(obs, err, np.nan),
            observed=obs,
            parallax=df["parallax"].to_numpy(np.float64, na_value=np.nan),
            parallax_error=df["parallax_error"].to_numpy(np.float64, na_value=np.nan),
            parallax_usable=df["parallax_usable"].to_numpy(bool),
            ebv_prior=prior[:, 0],
            sigma_ebv_prior=prior[:, 1],
        )


def read_stars(path: str | Path, split: str | None = None) -> Stars:
    """The catalog at ``path`` (Hive-partitioned folder or Parquet file), sorted by source_id; only the
    stars of ``split`` ("train", "validation" or "test") when given."""
    import pyarrow.dataset as ds

    from ..catalog.schema import open_catalog

    where = None if split is None else ds.field("split") == split
    table = open_catalog(path).to_table(columns=list(COLUMNS), filter=where)
    if table.num_rows == 0:
        raise DataError(f"{path}: the catalog has no stars" + ("" if split is None else f" in split {split!r}"))
    df = table.to_pandas().sort_values("source_id", kind="stable").reset_index(drop=True)
    return Stars.from_frame(df, str(path))
