"""File-level entry points of the catalog rules (one function per rule; paths in, files out).

Every output is written atomically (temporary name, then rename). Options come from config section
``catalog`` (see config/README.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import archives, registry
from ..config import with_defaults
from ..errors import DataError
from ..io import read_json, write_json, write_parquet
from . import build, clean, crossmatch, offsets, reddening, schema

log = logging.getLogger(__name__)

PathLike = str | Path


def _read(path: PathLike) -> pd.DataFrame:
    return pd.read_parquet(path)


def run_clean(survey: str, archive_path: PathLike, out: Mapping[str, PathLike], options: Mapping[str, Any]) -> dict:
    """Rule clean_<survey>: archive table -> ``out["table"]``, ``out["rejected"]``, ``out["counts"]``."""
    t0 = time.perf_counter()
    rel = registry.release(options.get("release", registry.DEFAULT_RELEASE))
    table = rel.surveys[survey].table
    df = archives.read_table(archive_path, table)
    result = clean.clean(survey, df, dict(options))
    if survey in rel.spectroscopic() and len(result.table) == 0:
        raise DataError(f"{archive_path}: no {survey} row survives the quality cuts ({result.counts['cuts']})")
    write_parquet(result.table, out["table"])
    write_parquet(result.rejected, out["rejected"])
    counts = {**result.counts, "archive_file": str(archive_path), "seconds": round(time.perf_counter() - t0, 3)}
    write_json(counts, out["counts"])
    log.info("%s: %d rows in, %d kept, %d removed", survey, counts["n_in"], counts["n_kept"], counts["n_removed"])
    return counts


def run_crossmatch(
    spectra: Mapping[str, PathLike],
    gaia: PathLike,
    gaia_rejected: PathLike,
    out_table: PathLike,
    out_report: PathLike,
    options: Mapping[str, Any],
) -> dict:
    """Rule crossmatch_spectra: cleaned spectra + Gaia -> matched spectra (one row per survey and source)."""
    radius = with_defaults(options, "catalog")["match_radius_arcsec"]["spectroscopic"]
    matched, report = crossmatch.match_spectra_to_gaia(
        {s: _read(p) for s, p in spectra.items()}, _read(gaia), _read(gaia_rejected), radius
    )
    write_parquet(matched, out_table)
    write_json({"radius_arcsec": radius, "surveys": report}, out_report)
    return report


def _stars(matched: PathLike, gaia: PathLike, columns: list[str]) -> pd.DataFrame:
    sid = np.unique(pd.read_parquet(matched, columns=["source_id"])["source_id"].to_numpy(np.int64))
    g = pd.read_parquet(gaia, columns=["source_id", *columns]).set_index("source_id")
    return g.loc[sid].reset_index()


def photometry_radii(options: Mapping[str, Any]) -> dict[str, float]:
    """Match radii [arcsec] of the photometric surveys matched to Gaia (``catalog.match_radius_arcsec``)."""
    matched_to_gaia = [s for s in registry.PHOTOMETRIC if s != "gaia"]
    return {k: v for k, v in with_defaults(options, "catalog")["match_radius_arcsec"].items() if k in matched_to_gaia}


def run_photometry(
    matched: PathLike,
    gaia: PathLike,
    tables: Mapping[str, PathLike],
    out_table: PathLike,
    out_report: PathLike,
    options: Mapping[str, Any],
) -> dict:
    """Rule match_photometry: PS1, 2MASS (best-neighbour tables) and unWISE (sky match) for matched stars.

    ``tables``: the cleaned ``ps1``, ``tmass``, ``unwise`` (and ``ps1_rejected``, ``tmass_rejected``), and the
    best-neighbour archive tables as ``ps1_link``, ``tmass_link`` (:meth:`ddstars.registry.Release.links` of
    ``options["release"]``, absent: the paper's; each link's identifier column, e.g. DR3's
    ``original_psc_source_id``, read as the ``original_ext_source_id`` of DR2's).
    """
    stars = _stars(matched, gaia, ["ra", "dec"])
    radii = photometry_radii(options)
    rel = registry.release(options.get("release", registry.DEFAULT_RELEASE))

    def link(survey: str) -> pd.DataFrame:
        df = archives.read_table(tables[f"{survey}_link"], rel.links()[survey])
        return df.rename(columns={rel.link_keys()[survey]: crossmatch.LINK_KEY})

    phot, report = crossmatch.attach_photometry(
        stars,
        _read(tables["ps1"]),
        _read(tables["ps1_rejected"]),
        link("ps1"),
        _read(tables["tmass"]),
        _read(tables["tmass_rejected"]),
        link("tmass"),
        _read(tables["unwise"]),
        radii,
    )
    phot.insert(0, "source_id", stars["source_id"].to_numpy())
    write_parquet(phot, out_table)
    write_json({"radii_arcsec": radii, "surveys": report}, out_report)
    return report


def run_reddening(
    matched: PathLike,
    gaia: PathLike,
    sfd_dir: PathLike,
    bayestar: PathLike,
    out_table: PathLike,
    options: Mapping[str, Any],
) -> pd.DataFrame:
    """Rule reddening_prior: (Ê, σ_E, r_source) per matched Gaia source from the configured maps."""
    stars = _stars(matched, gaia, ["l", "b", "parallax", "parallax_error"])
    prior = reddening.reddening_prior(
        stars["l"], stars["b"], stars["parallax"], stars["parallax_error"], sfd_dir, bayestar, options
    )
    prior.insert(0, "source_id", stars["source_id"].to_numpy())
    write_parquet(prior, out_table)
    return prior


def run_offsets(matched: PathLike, out: PathLike, options: Mapping[str, Any]) -> dict:
    """Rule zero_point_offsets: offsets.json from stars shared between surveys."""
    doc = offsets.offsets_document(options, _read(matched))
    write_json(doc, out)
    return doc


def run_build(inputs: Mapping[str, Any], out_dir: PathLike, out_report: PathLike, options: Mapping[str, Any]) -> dict:
    """Rule build_catalog: the partitioned catalog and build.json (where every spectroscopic row went)."""
    options = with_defaults(options, "catalog")
    t0 = time.perf_counter()
    cat, report = build.assemble(
        _read(inputs["matched"]),
        read_json(inputs["offsets"]),
        _read(inputs["gaia"]),
        _read(inputs["photometry"]),
        _read(inputs["reddening"]),
        options,
    )
    counts = {s: read_json(p) for s, p in inputs["counts"].items()}
    match_report = read_json(inputs["crossmatch"])["surveys"]
    written = build.write_partitioned(cat, out_dir, options["healpix_order"], options["row_group_size"])
    doc = {
        **written,
        "stars": len(cat),
        "ledger": build.ledger(counts, match_report, report),
        "r_source": {s: int((cat["r_source"] == s).sum()) for s in reddening.R_SOURCES},
        "split": {s: int((cat["split"] == s).sum()) for s in build.SPLITS},
        "seconds": round(time.perf_counter() - t0, 3),
    }
    write_json(doc, out_report)
    return doc


def run_table1(catalog: PathLike, out_csv: PathLike, out_md: PathLike) -> pd.DataFrame:
    """Rule table1: results/catalog/table1.csv and table1.md from the catalog."""
    cols = ["survey", "parallax_usable", *(f"obs_{b}" for b in build.BAND_NAMES)]
    t1 = build.table1(build.read_catalog(catalog, columns=cols))
    from ..io import atomic_path

    with atomic_path(out_csv) as tmp:
        t1.to_csv(tmp, index=False)
    with atomic_path(out_md) as tmp:
        tmp.write_text(build.table1_markdown(t1))
    return t1


def run_check(catalog: PathLike, out: PathLike, order: int | None, external: bool = False) -> list:
    """Rule check_catalog: check a catalog against the schema; write the report, fail on problems.

    ``external``: the user's own catalog, as given: only the required columns must be there, and the report
    lists what the import will derive and what the run cannot produce without the optional columns it lacks.
    """
    problems = schema.check_catalog(catalog, order, external)
    doc: dict[str, Any] = {"catalog": str(catalog), "valid": not problems, "problems": problems}
    if external:
        doc.update(schema.capabilities(schema.open_catalog(catalog).schema.names))
        for name, what in doc["cannot_produce"].items():
            log.warning("catalog %s has no column %r: the run cannot produce %s", catalog, name, what)
    write_json(doc, out)
    if problems:
        message = f"catalog {catalog} fails its schema:\n{schema.format_problems(problems)}"
        log.error(message)
        raise DataError(message)
    log.info("catalog %s is valid", catalog)
    return problems
