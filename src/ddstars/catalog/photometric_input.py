"""The photometric inference's input from archive tables: stars without spectra through the catalog's own cuts.

:func:`photometric_input` turns the photometric archive tables (Gaia source, PS1, 2MASS, unWISE and the Gaia
best-neighbour tables; e.g. the simulated sky's photometric sample, :mod:`ddstars.simulate.photometric`) into one
Parquet file of :data:`INPUT_COLUMNS`, the columns the inference stage reads (``inference.input: <path>``;
docs/inference.md). It goes through what the catalog does to its stars, with the same functions and options
(config section ``catalog``):

* the per-survey quality cuts and cleaning (:func:`ddstars.catalog.clean.clean`: Gaia astrometric and photometric
  cuts, the 0.02 mag error floor, bands with a floored error above 0.2 mag or failing their flags unobserved);
* PS1 and 2MASS through the Gaia best-neighbour tables and unWISE by a sky match, at the catalog's radii
  (:func:`ddstars.catalog.crossmatch.attach_photometry`);
* a star whose 2MASS counterpart is an extended source (``ext_key``) dropped, as the catalog drops it.

The catalog applies no photometric zero-point offsets (its offsets are the spectroscopic labels'), so neither does
this. Magnitudes are in the catalog's systems (Gaia and 2MASS Vega, PS1 and unWISE AB).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import archives, registry
from ..bands import BAND_NAMES
from ..errors import DataError
from ..io import write_json, write_parquet
from . import clean, crossmatch
from .stages import photometry_radii

log = logging.getLogger(__name__)

PathLike = str | Path

#: The columns of the inference input (``ddstars.registry.INFERENCE_INPUT_COLUMNS``); the output has the Galactic
#: ``l``, ``b`` after the position.
INPUT_COLUMNS: tuple[str, ...] = registry.INFERENCE_INPUT_COLUMNS
OUTPUT_COLUMNS: tuple[str, ...] = ("source_id", "ra", "dec", "l", "b", *INPUT_COLUMNS[3:])
#: The archive tables read, by the key of ``archive_paths`` (the registry's table names).
TABLES: tuple[str, ...] = (*(registry.SURVEY_TABLES[s] for s in registry.PHOTOMETRIC), *registry.LINKS.values())


def photometric_input(
    archive_paths: Mapping[str, PathLike],
    out_path: PathLike,
    options: Mapping[str, Any] | None = None,
    out_report: PathLike | None = None,
) -> dict[str, Any]:
    """Write the inference input of the stars in the photometric archive tables; return (and write) a report.

    Parameters
    ----------
    archive_paths : mapping
        The archive tables' files by table name (:data:`TABLES`: ``gaia_source``, ``ps1_mean_object``,
        ``tmass_psc``, ``unwise``, ``panstarrs1_best_neighbour``, ``tmass_best_neighbour``).
    out_path : path
        The Parquet file written (atomically): one row per Gaia source kept, :data:`OUTPUT_COLUMNS`, sorted by
        ``source_id``.
    options : mapping, optional
        Config section ``catalog`` (error floor and maximum, match radii); absent keys take the schema defaults.
    out_report : path, optional
        Where to write the report as JSON too.

    Returns
    -------
    dict
        ``rows_in`` (Gaia archive rows), ``rows_out``, ``removed_by_cut`` (rows removed by each Gaia cut, a row
        failing several counted under each, and ``tmass_ext_key``: stars dropped for an extended 2MASS
        counterpart), ``removed_by_gaia_cuts`` (rows failing any Gaia cut), ``bands`` (stars observed in each
        band), ``clean`` (each survey's cleaning counts, with the per-band ones), ``match`` (the cross-match
        report) and ``seconds``. ``rows_in = removed_by_gaia_cuts + removed_by_cut["tmass_ext_key"] + rows_out``.
    """
    t0 = time.perf_counter()
    missing = [t for t in TABLES if t not in archive_paths]
    if missing:
        raise KeyError(f"photometric_input: archive paths missing for {', '.join(missing)}")
    opts = dict(options or {})
    cleaned = {
        s: clean.clean(
            s, archives.read_table(archive_paths[registry.SURVEY_TABLES[s]], registry.SURVEY_TABLES[s]), opts
        )
        for s in registry.PHOTOMETRIC
    }
    gaia = cleaned["gaia"].table
    if len(gaia) == 0:
        raise DataError(f"{archive_paths[registry.SURVEY_TABLES['gaia']]}: no Gaia source survives the quality cuts")
    links = {s: archives.read_table(archive_paths[t], t) for s, t in registry.LINKS.items()}
    phot, match = crossmatch.attach_photometry(
        gaia[["source_id", "ra", "dec"]],
        cleaned["ps1"].table,
        cleaned["ps1"].rejected,
        links["ps1"],
        cleaned["tmass"].table,
        cleaned["tmass"].rejected,
        links["tmass"],
        cleaned["unwise"].table,
        photometry_radii(opts),
    )
    extended = phot["tmass_extended"].to_numpy(bool)
    gaia_cols = [c for c in OUTPUT_COLUMNS if c in gaia.columns]
    out = gaia[gaia_cols].join(phot[[c for c in OUTPUT_COLUMNS if c in phot.columns]])[~extended]
    out = out[list(OUTPUT_COLUMNS)].sort_values("source_id", kind="stable").reset_index(drop=True)
    write_parquet(out, out_path)

    counts = {s: c.counts for s, c in cleaned.items()}
    g = counts["gaia"]
    report: dict[str, Any] = {
        "rows_in": g["n_in"],
        "rows_out": len(out),
        "removed_by_gaia_cuts": g["n_removed"],
        "removed_by_cut": {**{c["name"]: c["removed"] for c in g["cuts"]}, "tmass_ext_key": int(extended.sum())},
        "bands": {b: int(np.isfinite(out[f"mag_{b}"].to_numpy(float)).sum()) for b in BAND_NAMES},
        "clean": counts,
        "match": match,
        "archive_files": {t: str(archive_paths[t]) for t in TABLES},
        "output": str(out_path),
    }
    if report["rows_in"] != report["removed_by_gaia_cuts"] + int(extended.sum()) + len(out):
        raise DataError(f"photometric_input: Gaia rows unaccounted for: {report}")
    report["seconds"] = round(time.perf_counter() - t0, 3)
    if out_report is not None:
        write_json(report, out_report)
    log.info(
        "photometric input: %d Gaia rows, %d removed by the Gaia cuts, %d with an extended 2MASS counterpart, "
        "%d stars written to %s",
        report["rows_in"],
        report["removed_by_gaia_cuts"],
        int(extended.sum()),
        len(out),
        out_path,
    )
    return report


__all__ = ["INPUT_COLUMNS", "OUTPUT_COLUMNS", "TABLES", "photometric_input"]
