"""MIST v2.5 isochrone grid: dense cube, interpolation at fixed EEP, and the Kroupa IMF.

The grid is the ``mist_v2.5_vvcrit0.4.h5`` file shipped by the PyPI package
``lachesis-grids`` (layout ``sparse_v1``; see ``shared/reference/SIMSKY.md`` §1).
:meth:`MISTGrid.load` turns it into a dense float32 cube indexed by
([Fe/H], log age, EEP) for EEP 0..808 (phases -1..4: PMS to early AGB):

* rows whose ``phase`` lies outside -1..4 are dropped. Each isochrone is cut just
  before its first dropped row, so that an isochrone that goes through a Wolf-Rayet
  stretch (phase 9, young massive stars, 26 isochrones) ends there rather than being
  bridged across it;
* missing EEPs inside an isochrone (all-NaN rows) are bridged linearly along EEP
  (``phase`` takes the value of the nearer side, so it stays integer);
* ``first_eep``/``last_eep`` hold the valid EEP range of each isochrone; the cube is
  NaN outside it.

Interpolation is bilinear in ([Fe/H], log10 age) across the 4 corner isochrones at
fixed (possibly fractional) EEP, which is accurate on all evolutionary phases;
:meth:`MISTGrid.interpolate_mass` finds the EEP of a given initial mass by bisection.
Everything is vectorised over stars.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import DataError

__all__ = [
    "CUBE_COLUMNS",
    "EEP_MAX",
    "GRID_NAME",
    "PHASE_INVALID",
    "IsochronePoints",
    "MISTGrid",
    "kroupa_imf",
]

GRID_NAME = "mist_v2.5_vvcrit0.4.h5"
"""File name of the grid inside ``lachesis-grids``."""

EEP_MAX = 808
"""Last EEP kept (end of phase 4, early AGB); the cube holds EEP 0..EEP_MAX."""

CUBE_COLUMNS: tuple[str, ...] = (
    "initial_mass",
    "star_mass",
    "log_Teff",
    "log_g",
    "log_L",
    "log_R",
    "phase",
)
"""Columns of the cube (last axis), as named in the grid file."""

PHASE_MIN, PHASE_MAX = -1, 4
PHASE_INVALID = -99
"""Value of ``phase_int`` for stars that are not valid."""

_STORAGE = "sparse_v1"
_I_MASS = CUBE_COLUMNS.index("initial_mass")
_I_PHASE = CUBE_COLUMNS.index("phase")


@dataclass(frozen=True)
class IsochronePoints:
    """Interpolated isochrone quantities, one entry per star (shape of the inputs).

    Entries of invalid stars (``valid`` False) are NaN (``phase_int``: -99).

    Attributes
    ----------
    eep : ndarray of float64
        Equivalent evolutionary point used (fractional).
    initial_mass : ndarray of float64
        Initial (ZAMS) mass [M_sun].
    star_mass : ndarray of float64
        Present-day mass [M_sun].
    log_teff : ndarray of float64
        log10 effective temperature [log K] (blend of the corners).
    teff : ndarray of float64
        Effective temperature, ``10**log_teff`` [K].
    logg : ndarray of float64
        log10 surface gravity [log cm s^-2].
    log_l : ndarray of float64
        log10 luminosity [log L_sun].
    log_r : ndarray of float64
        log10 radius [log R_sun].
    phase : ndarray of float64
        MIST phase code blended like the other columns (-1 PMS, 0 MS, 2 RGB,
        3 CHeB, 4 EAGB); fractional where the corners disagree.
    phase_int : ndarray of int64
        Phase of the corner isochrone with the largest weight at the nearest
        integer EEP; -99 for invalid stars.
    dmass_deep : ndarray of float64
        d(initial_mass)/dEEP of the blended track [M_sun per EEP], central
        difference over +-1 EEP (one-sided at the ends of the common EEP range);
        >= 0. Jacobian for IMF weighting of EEP draws.
    valid : ndarray of bool
        True where all corner isochrones with non-zero weight cover the EEP, the
        inputs lie inside the grid and the results are finite.
    """

    eep: NDArray[np.float64]
    initial_mass: NDArray[np.float64]
    star_mass: NDArray[np.float64]
    log_teff: NDArray[np.float64]
    teff: NDArray[np.float64]
    logg: NDArray[np.float64]
    log_l: NDArray[np.float64]
    log_r: NDArray[np.float64]
    phase: NDArray[np.float64]
    phase_int: NDArray[np.int64]
    dmass_deep: NDArray[np.float64]
    valid: NDArray[np.bool_]

    def __getitem__(self, key: str) -> np.ndarray:
        """Dict-style access, ``points["teff"]``."""
        if key not in self.keys():
            raise KeyError(f"unknown key {key!r}; valid keys: {', '.join(self.keys())}")
        return getattr(self, key)

    def keys(self) -> tuple[str, ...]:
        """Names of the fields, in order."""
        return tuple(f.name for f in fields(self))

    def as_dict(self) -> dict[str, np.ndarray]:
        """The fields as a plain ``dict`` of arrays."""
        return {k: getattr(self, k) for k in self.keys()}


class MISTGrid:
    """Dense MIST isochrone cube with vectorised interpolation.

    Build it with :meth:`load`. The constructor takes already dense arrays (used
    by :meth:`load` and :meth:`subset`).

    Parameters
    ----------
    feh_values : array_like, shape (n_feh,)
        [Fe/H] of the grid nodes [dex], strictly increasing.
    log_age_values : array_like, shape (n_age,)
        log10 age of the grid nodes [log yr], strictly increasing.
    cube : ndarray, shape (n_feh, n_age, n_eep, len(columns))
        Isochrone values at EEP 0..n_eep-1, NaN outside each isochrone's valid range
        and no NaN inside it.
    first_eep, last_eep : ndarray of int, shape (n_feh, n_age)
        First and last valid EEP of each isochrone.
    columns : sequence of str
        Names of the last axis of ``cube``; must contain :data:`CUBE_COLUMNS`.
    path : Path, optional
        File the cube was read from (for messages).

    Attributes
    ----------
    feh_values : ndarray of float64, shape (n_feh,)
        [Fe/H] nodes [dex].
    log_age_values : ndarray of float64, shape (n_age,)
        log10 age nodes [log yr].
    eep_values : ndarray of int64, shape (n_eep,)
        EEPs of the cube, 0..n_eep-1.
    cube : ndarray of float32, shape (n_feh, n_age, n_eep, n_cols)
        The dense cube (read-only).
    columns : tuple of str
        Column names of the last axis of ``cube``.
    first_eep, last_eep : ndarray of int64, shape (n_feh, n_age)
        Valid EEP range of each isochrone (inclusive).
    path : Path or None
        Source file.
    """

    def __init__(
        self,
        feh_values: ArrayLike,
        log_age_values: ArrayLike,
        cube: np.ndarray,
        first_eep: ArrayLike,
        last_eep: ArrayLike,
        columns: tuple[str, ...] | list[str] = CUBE_COLUMNS,
        path: Path | None = None,
    ) -> None:
        self.feh_values = np.asarray(feh_values, dtype=np.float64).copy()
        self.log_age_values = np.asarray(log_age_values, dtype=np.float64).copy()
        self.columns = tuple(columns)
        self.path = path
        cube = np.ascontiguousarray(cube, dtype=np.float32)
        nf, na = self.feh_values.size, self.log_age_values.size
        if nf < 2 or na < 2:
            raise ValueError(f"need >= 2 [Fe/H] and age nodes, got {nf} and {na}")
        for name, g in (
            ("feh_values", self.feh_values),
            ("log_age", self.log_age_values),
        ):
            if not np.all(np.diff(g) > 0):
                raise ValueError(f"{name} must be strictly increasing")
        if cube.ndim != 4 or cube.shape[:2] != (nf, na) or cube.shape[3] != len(columns):
            raise ValueError(
                f"cube shape {cube.shape} does not match (n_feh={nf}, n_age={na}, n_eep, n_cols={len(columns)})"
            )
        missing = [c for c in CUBE_COLUMNS if c not in self.columns]
        if missing:
            raise ValueError(f"cube lacks columns {missing}")
        self.cube = cube
        self.cube.flags.writeable = False
        self.first_eep = np.asarray(first_eep, dtype=np.int64).reshape(nf, na).copy()
        self.last_eep = np.asarray(last_eep, dtype=np.int64).reshape(nf, na).copy()
        self.n_eep = cube.shape[2]
        self.eep_values = np.arange(self.n_eep, dtype=np.int64)

        # Private, NaN-free copy for interpolation: each isochrone is extended with its
        # edge rows outside [first, last] so that zero-weight corners and invalid
        # stars never produce NaN. Flattened to (n_iso * n_eep, n_cols).
        ncol = len(self.columns)
        cube3 = cube.reshape(nf * na, self.n_eep, ncol)
        first = self.first_eep.ravel()
        last = self.last_eep.ravel()
        e = np.clip(self.eep_values[None, :], first[:, None], last[:, None])
        filled = np.take_along_axis(cube3, e[:, :, None], axis=1)
        col_idx = [self.columns.index(c) for c in CUBE_COLUMNS]
        self._rows = np.ascontiguousarray(filled[:, :, col_idx]).reshape(-1, len(col_idx))
        self._mass = np.ascontiguousarray(self._rows[:, _I_MASS])
        self._phase = np.ascontiguousarray(self._rows[:, _I_PHASE])
        self._first = first
        self._last = last

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path | None = None) -> MISTGrid:
        """Read the sparse MIST grid file and build the dense cube (about 1 s).

        Parameters
        ----------
        path : str or Path, optional
            HDF5 grid file; default ``lachesis_grids.grid_path("mist_v2.5_vvcrit0.4.h5")``.

        Returns
        -------
        MISTGrid
            Cube of shape (n_feh, n_age, 809, 7) for EEP 0..808 with columns
            :data:`CUBE_COLUMNS`.

        Raises
        ------
        FileNotFoundError
            If the file does not exist.
        DataError
            If the file is not HDF5 or its layout is not the expected ``sparse_v1``.
        """
        import h5py

        if path is None:
            import lachesis_grids

            path = lachesis_grids.grid_path(GRID_NAME)
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"MIST grid file not found: {path}; expected the HDF5 grid "
                f"{GRID_NAME!r} of the lachesis-grids package (pip install lachesis-grids)"
            )
        expect = (
            "expected the lachesis-grids 'sparse_v1' layout (attrs storage/shape/columns; "
            "datasets feh_values, age_values, lengths, offsets, values)"
        )
        try:
            fh = h5py.File(path, "r")
        except OSError as exc:
            raise DataError(f"cannot read {path} as HDF5 ({exc}); {expect}") from exc
        with fh:
            try:
                storage = fh.attrs["storage"]
                storage = storage.decode() if isinstance(storage, bytes) else str(storage)
                shape = tuple(int(s) for s in fh.attrs["shape"])
                file_cols = [c.decode() if isinstance(c, bytes) else str(c) for c in fh.attrs["columns"]]
                feh = fh["feh_values"][:]
                age = fh["age_values"][:]
                lengths = fh["lengths"][:].astype(np.int64)
                offsets = fh["offsets"][:].astype(np.int64)
                vshape = fh["values"].shape
            except KeyError as exc:
                raise DataError(f"{path}: missing {exc}; {expect}") from exc
            problems = []
            if storage != _STORAGE:
                problems.append(f"storage={storage!r}")
            if len(shape) != 4 or shape[:2] != (feh.size, age.size):
                problems.append(f"shape={shape} vs {feh.size} [Fe/H] x {age.size} ages")
            n_iso = feh.size * age.size
            if lengths.shape != (n_iso,) or offsets.shape != (n_iso,):
                problems.append(f"lengths/offsets have {lengths.size}/{offsets.size} entries, not {n_iso}")
            elif len(vshape) != 2 or int(lengths.sum()) != vshape[0]:
                problems.append(f"values shape {vshape} vs sum(lengths)={int(lengths.sum())}")
            if len(vshape) == 2 and vshape[1] != len(file_cols):
                problems.append(f"values has {vshape[1]} columns, attrs list {len(file_cols)}")
            absent = [c for c in CUBE_COLUMNS if c not in file_cols]
            if absent:
                problems.append(f"columns {absent} absent")
            if problems:
                raise DataError(f"{path}: unexpected grid layout ({'; '.join(problems)}); {expect}")
            values = fh["values"][:]

        n_eep = EEP_MAX + 1
        col_idx = [file_cols.index(c) for c in CUBE_COLUMNS]
        # EEP of each row: offsets[k] is the EEP of the first row of isochrone k.
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        k = np.repeat(np.arange(n_iso), lengths)
        eep = offsets[k] + (np.arange(values.shape[0]) - starts[k])
        keep = (eep >= 0) & (eep < n_eep)
        k, eep = k[keep], eep[keep]
        vals = values[keep][:, col_idx]
        del values

        cube = np.full((n_iso, n_eep, len(CUBE_COLUMNS)), np.nan, dtype=np.float32)
        cube[k, eep] = vals
        ph = cube[:, :, _I_PHASE]
        present = np.isfinite(cube).all(axis=2)
        good = present & (ph >= PHASE_MIN) & (ph <= PHASE_MAX)
        dropped = present & ~good
        ar = np.arange(n_eep)
        big = n_eep + 1
        first = np.where(good, ar, big).min(axis=1)
        if np.any(first == big):
            raise DataError(f"{path}: isochrones without any row of phase -1..4")
        # cut each isochrone just before its first dropped-phase row after `first`
        cut = np.where(dropped & (ar >= first[:, None]), ar, big).min(axis=1)
        good &= ar < cut[:, None]
        last = np.where(good, ar, -1).max(axis=1)
        cube[~good] = np.nan

        # bridge missing rows inside [first, last] linearly along EEP
        prev = np.maximum.accumulate(np.where(good, ar, -1), axis=1)
        nxt = np.minimum.accumulate(np.where(good, ar, big)[:, ::-1], axis=1)[:, ::-1]
        gap = ~good & (ar > first[:, None]) & (ar < last[:, None])
        gi, ge = np.nonzero(gap)
        p, q = prev[gi, ge], nxt[gi, ge]
        t = ((ge - p) / (q - p)).astype(np.float32)[:, None]
        bridged = (1 - t) * cube[gi, p] + t * cube[gi, q]
        bridged[:, _I_PHASE] = np.where(t[:, 0] <= 0.5, cube[gi, p, _I_PHASE], cube[gi, q, _I_PHASE])
        cube[gi, ge] = bridged

        return cls(
            feh,
            age,
            cube.reshape(feh.size, age.size, n_eep, len(CUBE_COLUMNS)),
            first.reshape(feh.size, age.size),
            last.reshape(feh.size, age.size),
            CUBE_COLUMNS,
            path,
        )

    def subset(
        self,
        feh_index: ArrayLike | slice = slice(None),
        age_index: ArrayLike | slice = slice(None),
    ) -> MISTGrid:
        """A grid restricted to some [Fe/H] and age nodes (e.g. leave-one-out tests).

        Parameters
        ----------
        feh_index, age_index : slice or array_like of int
            Nodes to keep (increasing); default all.

        Returns
        -------
        MISTGrid
            New grid sharing no arrays with this one.
        """
        fi = np.arange(self.feh_values.size)[feh_index]
        ai = np.arange(self.log_age_values.size)[age_index]
        return MISTGrid(
            self.feh_values[fi],
            self.log_age_values[ai],
            self.cube[np.ix_(fi, ai)],
            self.first_eep[np.ix_(fi, ai)],
            self.last_eep[np.ix_(fi, ai)],
            self.columns,
            self.path,
        )

    # ------------------------------------------------------------ interpolation
    def _corners(self, log_age: np.ndarray, feh: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat row bases (4, n), bilinear weights (4, n) and in-grid mask (n,)."""

        def bracket(x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            ok = np.isfinite(x) & (x >= g[0]) & (x <= g[-1])
            xs = np.where(ok, x, g[0])
            i = np.clip(np.searchsorted(g, xs, "right") - 1, 0, g.size - 2)
            t = np.clip((xs - g[i]) / (g[i + 1] - g[i]), 0.0, 1.0)
            return i, t, ok

        i, tf, okf = bracket(feh, self.feh_values)
        j, ta, oka = bracket(log_age, self.log_age_values)
        na = self.log_age_values.size
        k00 = i * na + j
        iso = np.stack([k00, k00 + 1, k00 + na, k00 + na + 1])
        w = np.stack([(1 - tf) * (1 - ta), (1 - tf) * ta, tf * (1 - ta), tf * ta])
        return iso, w, okf & oka

    def _range(self, iso: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Common valid EEP range of the corners with non-zero weight."""
        active = w > 0
        lo = np.where(active, self._first[iso], -1).max(axis=0)
        hi = np.where(active, self._last[iso], self.n_eep).min(axis=0)
        return lo, hi

    def _mass_at_int(self, e: np.ndarray, base: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Blended initial mass at integer EEPs ``e`` (n,); ``base`` = iso * n_eep."""
        out = np.zeros(e.shape, dtype=np.float64)
        for c in range(4):
            out += w[c] * self._mass[base[c] + e]
        return out

    def _mass_at(self, x: np.ndarray, base: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Blended initial mass at fractional EEPs ``x`` in [0, n_eep-1]."""
        x0 = np.minimum(np.floor(x).astype(np.int64), self.n_eep - 2)
        f = x - x0
        return (1 - f) * self._mass_at_int(x0, base, w) + f * self._mass_at_int(x0 + 1, base, w)

    def _locate(self, x: ArrayLike, log_age: ArrayLike, feh: ArrayLike):
        """Broadcast (x, age, [Fe/H]) and find each point's isochrone corners and their EEP range: the input
        shape, x flattened, corner isochrones, weights, inside-grid mask, lowest and highest EEP."""
        x_b, age_b, feh_b = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, log_age, feh)))
        iso, w, inside = self._corners(age_b.ravel(), feh_b.ravel())
        return (x_b.shape, x_b.ravel(), iso, w, inside, *self._range(iso, w))

    def interpolate(self, eep: ArrayLike, log_age: ArrayLike, feh: ArrayLike) -> IsochronePoints:
        """Interpolate the grid at (EEP, log age, [Fe/H]).

        Linear in EEP between integer EEPs, then bilinear in ([Fe/H], log age) across
        the 4 corner isochrones at fixed EEP. Inputs broadcast together; out-of-grid
        or non-finite inputs give ``valid`` False, never an exception.

        Parameters
        ----------
        eep : array_like of float
            Equivalent evolutionary point (0..808; fractional allowed).
        log_age : array_like of float
            log10 age [log yr] (grid: 5.0..10.3).
        feh : array_like of float
            [Fe/H] [dex] (grid: -4.0..+0.5).

        Returns
        -------
        IsochronePoints
            Arrays of the broadcast input shape (see :class:`IsochronePoints`).
        """
        shape, e, iso, w, inside, lo, hi = self._locate(eep, log_age, feh)
        fin = np.isfinite(e)
        valid = inside & fin & (e >= lo) & (e <= hi) & (e >= 0) & (e <= self.n_eep - 1)
        ec = np.clip(np.where(fin, e, 0.0), 0.0, self.n_eep - 1)
        e0 = np.minimum(np.floor(ec).astype(np.int64), self.n_eep - 2)
        f = ec - e0
        base = iso * self.n_eep

        acc = np.zeros((e.size, self._rows.shape[1]), dtype=np.float64)
        for c in range(4):
            r0 = np.take(self._rows, base[c] + e0, axis=0)
            r1 = np.take(self._rows, base[c] + e0 + 1, axis=0)
            acc += (w[c] * (1 - f))[:, None] * r0
            acc += (w[c] * f)[:, None] * r1

        # d(initial_mass)/dEEP: central difference, one-sided at the range ends
        lo_c = np.clip(lo, 0, self.n_eep - 1).astype(np.float64)
        hi_c = np.clip(hi, 0, self.n_eep - 1).astype(np.float64)
        ep = np.clip(np.minimum(ec + 1, hi_c), 0, self.n_eep - 1)
        em = np.clip(np.maximum(ec - 1, lo_c), 0, self.n_eep - 1)
        span = ep - em
        dm = self._mass_at(ep, base, w) - self._mass_at(em, base, w)
        with np.errstate(invalid="ignore", divide="ignore"):
            dmass = np.where(span > 0, np.maximum(dm, 0.0) / np.where(span > 0, span, 1), 0.0)

        # phase of the corner with the largest weight at the nearest integer EEP
        cbest = np.argmax(w, axis=0)
        e_near = np.clip(np.rint(ec).astype(np.int64), 0, self.n_eep - 1)
        ph_near = self._phase[np.take_along_axis(base, cbest[None], axis=0)[0] + e_near]

        valid &= np.isfinite(acc).all(axis=1) & np.isfinite(dmass)
        nan = ~valid
        acc[nan] = np.nan
        dmass[nan] = np.nan
        phase_int = np.where(valid, np.rint(ph_near), PHASE_INVALID).astype(np.int64)
        eep_out = np.where(valid, e, np.nan)

        col = {name: acc[:, i].reshape(shape) for i, name in enumerate(CUBE_COLUMNS)}
        return IsochronePoints(
            eep=eep_out.reshape(shape),
            initial_mass=col["initial_mass"],
            star_mass=col["star_mass"],
            log_teff=col["log_Teff"],
            teff=np.asarray(10.0 ** col["log_Teff"]),
            logg=col["log_g"],
            log_l=col["log_L"],
            log_r=col["log_R"],
            phase=col["phase"],
            phase_int=phase_int.reshape(shape),
            dmass_deep=dmass.reshape(shape),
            valid=valid.reshape(shape),
        )

    def interpolate_mass(self, initial_mass: ArrayLike, log_age: ArrayLike, feh: ArrayLike) -> IsochronePoints:
        """Interpolate the grid at (initial mass, log age, [Fe/H]).

        Bisects on integer EEP for the blended initial-mass track of the 4 corner
        isochrones (over their common EEP range), interpolates linearly to a
        fractional EEP, then calls :meth:`interpolate`. Reliable on the main
        sequence; ill-conditioned for giants (tiny mass range), where EEP sampling
        is preferable.

        Parameters
        ----------
        initial_mass : array_like of float
            Initial mass [M_sun].
        log_age : array_like of float
            log10 age [log yr].
        feh : array_like of float
            [Fe/H] [dex].

        Returns
        -------
        IsochronePoints
            As :meth:`interpolate`; ``valid`` is also False where the mass is not
            on the isochrone at that age (e.g. already evolved off it).
        """
        shape, m, iso, w, inside, lo, hi = self._locate(initial_mass, log_age, feh)
        ok = inside & np.isfinite(m) & (hi > lo)
        eep = np.full(m.size, np.nan)
        idx = np.flatnonzero(ok)
        if idx.size:
            mi, wi, basei = m[idx], w[:, idx], iso[:, idx] * self.n_eep
            lo_i, hi_i = lo[idx], hi[idx]
            m_lo = self._mass_at_int(lo_i, basei, wi)
            m_hi = self._mass_at_int(hi_i, basei, wi)
            on = (mi >= m_lo) & (mi <= m_hi)
            idx, mi, wi, basei = idx[on], mi[on], wi[:, on], basei[:, on]
            lo_i, hi_i = lo_i[on], hi_i[on]
            # invariant M(lo) <= m <= M(hi); once hi = lo + 1, mid = lo keeps it
            while (hi_i - lo_i > 1).any():
                mid = (lo_i + hi_i) // 2
                up = self._mass_at_int(mid, basei, wi) <= mi
                lo_i = np.where(up, mid, lo_i)
                hi_i = np.where(up, hi_i, mid)
            m0 = self._mass_at_int(lo_i, basei, wi)
            m1 = self._mass_at_int(hi_i, basei, wi)
            dm = m1 - m0
            with np.errstate(invalid="ignore", divide="ignore"):
                f = np.where(dm > 0, (mi - m0) / np.where(dm > 0, dm, 1), 0.0)
            eep[idx] = lo_i + np.clip(f, 0.0, 1.0)
        return self.interpolate(eep.reshape(shape), log_age, feh)


def kroupa_imf(mass: ArrayLike) -> NDArray[np.float64]:
    """Unnormalised Kroupa (2001) initial mass function dN/dm.

    Broken power law dN/dm ∝ m^-alpha with alpha = 1.3 on 0.08..0.5 M_sun and 2.3
    above 0.5 M_sun (plus Kroupa's alpha = 0.3 below 0.08 M_sun, below the MIST
    grid), continuous at the breaks and scaled so that dN/dm = m**-1.3 on 0.08..0.5.

    Parameters
    ----------
    mass : array_like of float
        Initial mass [M_sun].

    Returns
    -------
    ndarray of float64
        dN/dm [arbitrary units per M_sun]; 0 for mass <= 0, NaN for NaN input.
    """
    m = np.asarray(mass, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.where(
            m < 0.08,
            (0.08 ** (-1.3 + 0.3)) * m**-0.3,
            np.where(m < 0.5, m**-1.3, 0.5 * m**-2.3),
        )
    return np.where(m > 0, xi, np.where(np.isnan(m), np.nan, 0.0))
