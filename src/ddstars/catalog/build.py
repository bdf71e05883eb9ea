"""Assemble the training catalog: labels on one scale, one row per star, photometry, parallax, reddening
prior, split, and the HEALPix-partitioned Parquet output; plus the paper's Table 1.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from .. import registry
from ..bands import BAND_NAMES
from ..config import defaults, with_defaults
from ..errors import ConfigError, DataError
from . import schema
from .crossmatch import select_by_priority
from .offsets import apply_offsets

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
PARALLAX_MIN_SNR = defaults("catalog")["parallax_min_snr"]
_SPLIT = defaults("catalog")["split"]
TABLE1_PAPER = registry.paper_table1()  # Green et al. (2021) Table 1 by row name
TABLE1_PAPER_N = registry.PAPER_TABLE1_N


# --------------------------------------------------------------------------------------------- split
def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fixed, well-mixed 64-bit hash (vectorised, wraps modulo 2**64)."""
    z = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def split_of(
    star_id: np.ndarray,
    fractions: Sequence[float] = (_SPLIT["train"], _SPLIT["validation"], _SPLIT["test"]),
    seed: int = _SPLIT["seed"],
) -> np.ndarray:
    """'train' / 'validation' / 'test' per star, a pure function of (star id, seed): the same star lands
    in the same split on every run and whatever other stars are in the catalog."""
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise ConfigError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    ids = np.asarray(star_id).astype(np.int64).view(np.uint64)
    h = _splitmix64(ids ^ _splitmix64(np.array([seed], dtype=np.uint64))[0])
    u = (h >> np.uint64(11)).astype(np.float64) / float(2**53)
    cuts = np.cumsum(f)
    return np.asarray(SPLITS, dtype=object)[np.searchsorted(cuts[:2], u, side="right")]


# --------------------------------------------------------------------------------------------- assembly
def parallax_usable(parallax, parallax_error, min_snr: float = PARALLAX_MIN_SNR) -> np.ndarray:
    """True where parallax / parallax_error >= ``min_snr`` (paper §3.2: parallaxes with S/N < 5 are
    disregarded; S/N exactly 5 is used). Missing values and non-positive errors give False."""
    plx = np.asarray(parallax, dtype=float)
    sig = np.asarray(parallax_error, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(sig > 0, plx / sig, np.nan)
    return np.nan_to_num(snr, nan=-np.inf) >= min_snr


def assemble(
    matched: pd.DataFrame,
    offsets: Mapping[str, Any],
    gaia: pd.DataFrame,
    photometry: pd.DataFrame,
    reddening: pd.DataFrame,
    options: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per star in schema order, and the counts of the rows removed on the way.

    ``matched``: spectra matched to good Gaia sources (one row per survey and source);
    ``gaia``: the cleaned Gaia table; ``photometry``/``reddening``: per source_id (index or column).
    """
    o = with_defaults(options, "catalog")
    labelled = apply_offsets(matched, offsets)
    stars, prio = select_by_priority(labelled, o["survey_priority"])
    g = gaia.set_index("source_id")
    phot = photometry.set_index("source_id") if "source_id" in photometry.columns else photometry
    red = reddening.set_index("source_id") if "source_id" in reddening.columns else reddening
    sid = stars["source_id"].to_numpy(np.int64)
    for name, frame in (("gaia", g), ("photometry", phot), ("reddening", red)):
        missing = ~pd.Index(sid).isin(frame.index)
        if missing.any():
            raise DataError(
                f"{name} table lacks {int(missing.sum())} matched source_id(s), e.g. {sid[missing][:5].tolist()}; "
                "were the catalog stages run on different inputs?"
            )
    cat = stars.drop(columns=[c for c in ("ra", "dec") if c in stars.columns]).reset_index(drop=True)
    gcols = [
        "ra",
        "dec",
        "l",
        "b",
        "parallax",
        "parallax_error",
        *(f"{k}_{b}" for b in BAND_NAMES[:3] for k in ("mag", "err")),
    ]
    cat = cat.join(g.loc[sid, gcols].reset_index(drop=True))
    cat = cat.join(phot.loc[sid].reset_index(drop=True))
    cat = cat.join(red.loc[sid].reset_index(drop=True))

    extended = cat["tmass_extended"].to_numpy(bool)
    dropped_ext = cat.loc[extended, "survey"].astype(str).value_counts()
    cat = cat[~extended].reset_index(drop=True)

    for b in BAND_NAMES:
        cat[f"obs_{b}"] = np.isfinite(cat[f"mag_{b}"].to_numpy(float)) & np.isfinite(cat[f"err_{b}"].to_numpy(float))
    cat["parallax_usable"] = parallax_usable(cat["parallax"], cat["parallax_error"], o["parallax_min_snr"])
    split = o["split"]
    cat["split"] = split_of(
        cat["source_id"].to_numpy(),
        tuple(split[s] for s in SPLITS),
        split["seed"],
    )
    cat = cat.sort_values("source_id", kind="stable").reset_index(drop=True)
    report = {
        s: {
            **prio.get(s, {}),
            "tmass_extended_source": int(dropped_ext.get(s, 0)),
            "in_catalog": int((cat["survey"].astype(str) == s).sum()),
        }
        for s in sorted(set(labelled["survey"].astype(str)))
    }
    return cat[schema.column_names()], report


def ledger(
    clean_counts: Mapping[str, Mapping[str, Any]], match_report: Mapping[str, Any], build_report: Mapping[str, Any]
):
    """Per spectroscopic survey, where every archive row went; raises DataError if a row is unaccounted for."""
    out = {}
    for s, counts in clean_counts.items():
        m, b = match_report[s], build_report.get(s, {})
        entry = {
            "archive_rows": counts["n_in"],
            "removed_by_survey_cuts": counts["n_removed"],
            "survey_cuts": {c["name"]: c["removed"] for c in counts["cuts"]},
            "no_gaia_match": m["no_gaia_match"],
            "gaia_rejected": m["gaia_rejected"],
            "gaia_rejected_by_cut": m["gaia_rejected_by_cut"],
            "duplicate_in_survey": m["duplicate_in_survey"],
            "duplicate_lower_priority": b.get("duplicate_lower_priority", 0),
            "tmass_extended_source": b.get("tmass_extended_source", 0),
            "in_catalog": b.get("in_catalog", 0),
        }
        total = sum(
            entry[k]
            for k in (
                "removed_by_survey_cuts",
                "no_gaia_match",
                "gaia_rejected",
                "duplicate_in_survey",
                "duplicate_lower_priority",
                "tmass_extended_source",
                "in_catalog",
            )
        )
        if total != entry["archive_rows"]:
            raise DataError(f"{s}: {entry['archive_rows']} archive rows but {total} accounted for: {entry}")
        out[s] = entry
    return out


# --------------------------------------------------------------------------------------------- output
def write_partitioned(
    cat: pd.DataFrame, out_dir: str | Path, order: int | None, row_group_size: int = 131072
) -> dict[str, Any]:
    """Write ``cat`` as Hive-partitioned Parquet by HEALPix pixel (nested) at ``order``, atomically
    (``order`` None: one partition, for an imported catalog without positions).

    The dataset is written into a temporary folder beside ``out_dir`` and renamed into place only when
    complete, so an interrupted job never leaves a partial catalog. Rows inside a partition are sorted
    by source_id (Gaia source ids are nested HEALPix level-12 ordered, so a partition is sky-contiguous).
    """
    import healpy as hp

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    table = schema.to_arrow(cat)
    if order is None:
        name, pix, partitioning = None, np.zeros(1), None
    else:
        name = schema.partition_column(order)
        pix = hp.ang2pix(2**order, cat["ra"].to_numpy(float), cat["dec"].to_numpy(float), nest=True, lonlat=True)
        table = table.append_column(name, pa.array(pix.astype(np.int32), type=pa.int32()))
        partitioning = ds.partitioning(table.select([name]).schema, flavor="hive")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        ds.write_dataset(
            table,
            tmp / "data",
            format="parquet",
            partitioning=partitioning,
            basename_template="part-{i}.parquet",
            max_rows_per_group=row_group_size,
            min_rows_per_group=min(row_group_size, 65536),
            max_rows_per_file=4 * row_group_size,
            file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
            existing_data_behavior="error",
        )
        if out_dir.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            os.replace(out_dir, trash / "old")
            shutil.rmtree(trash)
        os.replace(tmp / "data", out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n_part = len({int(p) for p in np.unique(pix)})
    log.info("catalog: %d stars in %d partition(s) (%s) at %s", len(cat), n_part, name or "none", out_dir)
    return {"rows": len(cat), "partitions": n_part, "partition_column": name, "order": order}


def read_catalog(path: str | Path, columns: Sequence[str] | None = None, filter=None) -> pd.DataFrame:
    """The catalog (or the rows passing a pyarrow ``filter``) as a DataFrame."""
    return schema.open_catalog(path).to_table(columns=columns, filter=filter).to_pandas()


def table1(cat: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 1: stars per spectroscopic survey, with a usable parallax and per band."""
    n = len(cat)
    # a catalog imported without its survey column has no per-survey counts (not zeros)
    known = cat["survey"].notna().any()
    rows = [
        ("spectra", s, int((cat["survey"].astype(str) == s).sum()) if known else pd.NA)
        for s in registry.release().table1_surveys()
    ]
    rows.append(("parallax", "parallax_snr_gt_5", int(cat["parallax_usable"].sum())))
    rows += [("band", b, int(cat[f"obs_{b}"].sum())) for b in BAND_NAMES]
    df = pd.DataFrame(rows, columns=["group", "name", "n"]).astype({"n": "Int64"})
    df["fraction"] = df["n"].astype(float) / n if n else np.nan
    df["paper_n"] = df["name"].map(TABLE1_PAPER).astype("Int64")
    df["paper_fraction"] = df["paper_n"].astype(float) / TABLE1_PAPER_N
    return pd.concat(
        [
            pd.DataFrame(
                [
                    {
                        "group": "total",
                        "name": "stars",
                        "n": n,
                        "fraction": 1.0,
                        "paper_n": TABLE1_PAPER_N,
                        "paper_fraction": 1.0,
                    }
                ]
            ),
            df,
        ],
        ignore_index=True,
    )


def table1_markdown(t1: pd.DataFrame) -> str:
    lines = [
        "# Table 1: the training catalog",
        "",
        "Stars per spectroscopic survey (after de-duplication), with parallax S/N >= 5, and with a usable",
        "magnitude in each band, next to Green et al. (2021) Table 1 (N = 2,888,361).",
        "",
        "| | N | % | paper N | paper % |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in t1.itertuples():
        paper_n = "" if pd.isna(r.paper_n) else f"{int(r.paper_n):,}"
        paper_f = "" if pd.isna(r.paper_fraction) else f"{100 * r.paper_fraction:.1f}"
        if pd.isna(r.n):
            lines.append(f"| {r.name} | not given | | {paper_n} | {paper_f} |")
        else:
            lines.append(f"| {r.name} | {r.n:,} | {100 * r.fraction:.1f} | {paper_n} | {paper_f} |")
    return "\n".join(lines) + "\n"
