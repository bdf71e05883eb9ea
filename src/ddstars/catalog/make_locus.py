"""Generate the bundled dwarf stellar locus ``ddstars/data/locus_dwarfs.csv`` used by :mod:`ddstars.catalog.photsys`.

``python -m ddstars.catalog.make_locus [--out PATH] [--extinction-norm N]`` rewrites the file.

The locus comes from the simulated sky's own synthetic photometry (:class:`ddstars.synphot.Photometer`:
toy blanketed blackbody SED, speclite passbands, F99 extinction at R_V = 3.1, published AB - Vega offsets;
``shared/reference/SIMSKY.md`` §2-4), in float64 arithmetic:

* ``c_<band>``: dust-free colour ``m_band - m_G`` in the catalog's systems (Gaia and 2MASS Vega, PS1 AB, unWISE AB,
  i.e. unWISE Vega + ``ab_minus_vega``), averaged over [Fe/H] = -0.5, -0.4, ..., +0.3 (uniform weights);
* ``dr_<band>``: reddening-vector difference ``R_band - R_G`` (exact E -> 0 slopes dA/dE per unit SFD-scale
  E(B-V), extinction normalisation N = ``simulate.photometry.extinction_norm``, 1.0 by default), averaged the same way;

on a Teff grid 4800-6200 K every 50 K. The toy SED depends on Teff and [Fe/H] only (not on log g), so the locus
holds for every star of these temperatures; the check applies it to dwarfs (log g >= 4) because those are the stars
a real locus would describe. Caveat: blackbody colours are redder than real stars' (SIMSKY §4), so this locus
describes the simulated sky, not the real one; for real stars :mod:`ddstars.catalog.photsys` also compares
with the published Green et al. (2021) model and judges each band against the closer of the two.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from ..bands import BAND_NAMES, BANDS

#: Where the bundled locus lives inside the package.
LOCUS_PATH = Path(__file__).resolve().parents[1] / "data" / "locus_dwarfs.csv"
TEFF_GRID = np.arange(4800.0, 6200.0 + 1.0, 50.0)
FEH_GRID = np.round(np.arange(-0.5, 0.3 + 1e-9, 0.1), 10) + 0.0  # + 0.0: no -0.0
RV = 3.1
EXTINCTION_NORM = 1.0  # config simulate.photometry.extinction_norm
CATALOG_SYSTEM_SHIFT = np.array([b.ab_minus_vega if b.survey == "unwise" else 0.0 for b in BANDS])
"""Added to the native-system magnitudes to reach the catalog's systems (unWISE Vega -> AB)."""


def compute_locus(
    teff_grid: np.ndarray = TEFF_GRID,
    feh_grid: np.ndarray = FEH_GRID,
    rv: float = RV,
    extinction_norm: float = EXTINCTION_NORM,
) -> pd.DataFrame:
    """Tabulate the dust-free colours ``m_b - m_G`` and ``R_b - R_G`` of the 12 non-G bands.

    Returns
    -------
    pandas.DataFrame
        Columns ``teff``, ``c_<band>`` and ``dr_<band>`` for the bands other than ``gaia_g`` (catalog systems),
        one row per ``teff_grid`` node, each value the mean over ``feh_grid``.
    """
    from ..synphot import Photometer

    teff_grid = np.asarray(teff_grid, dtype=np.float64)
    feh_grid = np.asarray(feh_grid, dtype=np.float64)
    phot = Photometer(rv=rv, norm=extinction_norm, dtype=np.float64)
    t, f = np.meshgrid(teff_grid, feh_grid, indexing="ij")  # (n_teff, n_feh)
    mags = phot.absolute_magnitudes(t, f, 0.0) + CATALOG_SYSTEM_SHIFT  # (n_teff, n_feh, 13)
    red = phot.reddening_vector(t, f)
    colour = (mags - mags[..., :1]).mean(axis=1)
    dr = (red - red[..., :1]).mean(axis=1)
    out = {"teff": teff_grid}
    for b, name in enumerate(BAND_NAMES):
        if b:
            out[f"c_{name}"] = np.round(colour[:, b], 5)
    for b, name in enumerate(BAND_NAMES):
        if b:
            out[f"dr_{name}"] = np.round(dr[:, b], 5)
    return pd.DataFrame(out)


def header(feh_grid: np.ndarray = FEH_GRID, rv: float = RV, extinction_norm: float = EXTINCTION_NORM) -> str:
    """Comment lines (``#``) that record the locus's provenance at the top of the CSV."""
    return (
        "# Dust-free dwarf stellar locus of the ddstars simulated sky (python -m ddstars.catalog.make_locus)\n"
        "# c_<band> = m_band - m_gaia_g in the catalog systems (Gaia/2MASS Vega, PS1 AB, unWISE AB) [mag]\n"
        "# dr_<band> = R_band - R_gaia_g, extinction per unit SFD-scale E(B-V) (E -> 0 slope) [mag]\n"
        f"# Photometer(rv={rv}, norm={extinction_norm}, float64), mean over [Fe/H] = "
        f"{', '.join(f'{x:+.1f}' for x in feh_grid)}\n"
    )


def write_locus(
    path: str | Path = LOCUS_PATH,
    teff_grid: np.ndarray = TEFF_GRID,
    feh_grid: np.ndarray = FEH_GRID,
    rv: float = RV,
    extinction_norm: float = EXTINCTION_NORM,
) -> pd.DataFrame:
    """Compute the locus and write it (with its provenance header) to ``path``; return it."""
    locus = compute_locus(teff_grid, feh_grid, rv, extinction_norm)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fh.write(header(feh_grid, rv, extinction_norm))
        locus.to_csv(fh, index=False, float_format="%.5f")
    return locus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddstars.catalog.make_locus", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(LOCUS_PATH), help="output CSV (default: the bundled file)")
    parser.add_argument("--extinction-norm", type=float, default=EXTINCTION_NORM, help="dust normalisation N")
    args = parser.parse_args(argv)
    locus = write_locus(args.out, extinction_norm=args.extinction_norm)
    print(f"wrote {args.out}: {len(locus)} Teff nodes {locus.teff.iloc[0]:.0f}-{locus.teff.iloc[-1]:.0f} K")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
