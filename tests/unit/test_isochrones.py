"""Tests of the MIST isochrone cube and its interpolation (ddstars.simulate.isochrones)."""

from __future__ import annotations

from pathlib import Path

import h5py
import lachesis_grids
import numpy as np
import pytest

from ddstars.errors import DataError
from ddstars.simulate.isochrones import (
    CUBE_COLUMNS,
    EEP_MAX,
    GRID_NAME,
    PHASE_INVALID,
    MISTGrid,
    kroupa_imf,
)

I_MASS = CUBE_COLUMNS.index("initial_mass")
I_TEFF = CUBE_COLUMNS.index("log_Teff")
I_PHASE = CUBE_COLUMNS.index("phase")


@pytest.fixture(scope="module")
def grid() -> MISTGrid:
    return MISTGrid.load()


@pytest.fixture(scope="module")
def raw() -> dict[str, np.ndarray]:
    """The sparse grid read directly with h5py, with the EEP of every row."""
    path = lachesis_grids.grid_path(GRID_NAME)
    with h5py.File(path, "r") as f:
        cols = [str(c) for c in f.attrs["columns"]]
        values = f["values"][:]
        lengths = f["lengths"][:]
        offsets = f["offsets"][:]
        feh = f["feh_values"][:]
        age = f["age_values"][:]
    start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    k = np.repeat(np.arange(lengths.size), lengths)
    eep = offsets[k] + np.arange(values.shape[0]) - start[k]
    return {
        "values": values,
        "cols": cols,
        "k": k,
        "eep": eep,
        "feh": feh,
        "age": age,
    }


def test_grid_shape_and_axes(grid: MISTGrid) -> None:
    assert grid.cube.shape == (15, 107, EEP_MAX + 1, len(CUBE_COLUMNS))
    assert grid.cube.dtype == np.float32
    np.testing.assert_allclose(grid.feh_values[[0, 4, 14]], [-4.0, -2.0, 0.5])
    np.testing.assert_allclose(grid.log_age_values[[0, -1]], [5.0, 10.3])
    assert set(CUBE_COLUMNS) <= set(grid.columns)
    assert grid.first_eep.shape == grid.last_eep.shape == (15, 107)
    assert np.all(grid.first_eep < grid.last_eep)
    ph = grid.cube[..., I_PHASE]
    assert np.nanmin(ph) >= -1 and np.nanmax(ph) <= 4


def test_sun(grid: MISTGrid) -> None:
    r = grid.interpolate_mass(1.0, np.log10(4.57e9), 0.0)
    assert bool(r.valid)
    assert 5600 < float(r.teff) < 5900
    assert 4.35 < float(r.logg) < 4.55
    assert abs(float(r.log_l)) < 0.1
    assert int(r.phase_int) == 0
    assert float(r.initial_mass) == pytest.approx(1.0, abs=1e-9)


def test_leave_one_out_age_at_fixed_eep(grid: MISTGrid) -> None:
    """Drop every other age node, interpolate at the dropped nodes on the MS."""
    sub = grid.subset(age_index=slice(0, None, 2))
    odd = np.arange(1, grid.log_age_values.size - 1, 2)
    eeps = np.arange(202, 454)
    c = grid.cube
    ph = c[..., I_PHASE]
    ms = (ph[:, odd - 1] == 0) & (ph[:, odd] == 0) & (ph[:, odd + 1] == 0)
    ms = ms[:, :, eeps]
    fi, ji, ei = np.nonzero(ms)
    assert fi.size > 50_000
    jj = odd[ji]
    r = sub.interpolate(eeps[ei], grid.log_age_values[jj], grid.feh_values[fi])
    assert r.valid.mean() > 0.99
    ok = r.valid
    truth = c[fi, jj, eeps[ei], I_TEFF].astype(np.float64)
    d = np.abs(r.log_teff[ok] - truth[ok])
    p95 = np.percentile(d, 95)
    assert p95 < 0.005, p95
    # the neighbours alone (no interpolation) are clearly worse: the test can fail
    near = c[fi, jj - 1, eeps[ei], I_TEFF]
    assert np.percentile(np.abs(near[ok] - truth[ok]), 95) > 2 * p95


def test_nodes_reproduce_raw_file(grid: MISTGrid, raw: dict) -> None:
    """At (node [Fe/H], node age, integer EEP) interpolation returns the file's rows."""
    v, k, eep, cols = raw["values"], raw["k"], raw["eep"], raw["cols"]
    ph = v[:, cols.index("phase")]
    good = np.isfinite(ph) & (ph >= -1) & (ph <= 4) & (eep <= EEP_MAX)
    # rows after the first excluded-phase row (Wolf-Rayet stretches) are cut
    excluded = np.isfinite(ph) & ~((ph >= -1) & (ph <= 4)) & (eep <= EEP_MAX)
    first_good = np.full(raw["feh"].size * raw["age"].size, 10**6)
    np.minimum.at(first_good, k[good], eep[good])
    cut = np.full_like(first_good, 10**6)
    sel = excluded & (eep > first_good[k])
    np.minimum.at(cut, k[sel], eep[sel])
    keep = good & (eep < cut[k])
    assert keep.sum() > 800_000
    rng = np.random.default_rng(0)
    rows = rng.choice(np.flatnonzero(keep), 20_000, replace=False)
    # include the last [Fe/H] and age nodes, where the bracket is clipped (t = 1)
    edge = np.flatnonzero(keep & (k == k.max()))
    rows = np.concatenate([rows, edge])
    n_age = raw["age"].size
    feh = raw["feh"][k[rows] // n_age]
    age = raw["age"][k[rows] % n_age]
    r = grid.interpolate(eep[rows].astype(float), age, feh)
    assert r.valid.all()
    for key, col in [
        ("initial_mass", "initial_mass"),
        ("star_mass", "star_mass"),
        ("log_teff", "log_Teff"),
        ("logg", "log_g"),
        ("log_l", "log_L"),
        ("log_r", "log_R"),
        ("phase", "phase"),
    ]:
        expect = v[rows, cols.index(col)]
        np.testing.assert_allclose(r[key], expect, rtol=1e-7, atol=0, err_msg=key)
        assert r[key].astype(np.float32).tobytes() == expect.tobytes(), key
    np.testing.assert_array_equal(r.phase_int, v[rows, cols.index("phase")].astype(int))
    np.testing.assert_allclose(r.teff, 10.0 ** v[rows, cols.index("log_Teff")], rtol=1e-6)


def test_cut_only_wolf_rayet_isochrones(grid: MISTGrid, raw: dict) -> None:
    """The valid range ends at the raw last good EEP except where phase 5/9 intrudes."""
    v, k, eep, cols = raw["values"], raw["k"], raw["eep"], raw["cols"]
    ph = v[:, cols.index("phase")]
    good = np.isfinite(ph) & (ph >= -1) & (ph <= 4) & (eep <= EEP_MAX)
    last_raw = np.full(raw["feh"].size * raw["age"].size, -1)
    np.maximum.at(last_raw, k[good], eep[good])
    first_raw = np.full_like(last_raw, 10**6)
    np.minimum.at(first_raw, k[good], eep[good])
    np.testing.assert_array_equal(grid.first_eep.ravel(), first_raw)
    shorter = grid.last_eep.ravel() < last_raw
    assert 0 < shorter.sum() < 40
    wr = np.unique(k[(ph == 9) & (eep <= EEP_MAX)])
    assert set(np.flatnonzero(shorter)) <= set(wr)
    assert np.all(grid.last_eep.ravel() <= last_raw)


def test_no_nan_inside_valid_range(grid: MISTGrid) -> None:
    e = np.arange(EEP_MAX + 1)
    inside = (e >= grid.first_eep[..., None]) & (e <= grid.last_eep[..., None])
    finite = np.isfinite(grid.cube).all(axis=-1)
    assert finite[inside].all()
    assert not np.isfinite(grid.cube).any(axis=-1)[~inside].any()


def test_bridged_rows_are_linear(grid: MISTGrid, raw: dict) -> None:
    """All-NaN raw rows inside an isochrone equal the linear blend of their neighbours."""
    v, k, eep = raw["values"], raw["k"], raw["eep"]
    cols = raw["cols"]
    nan = ~np.isfinite(v[:, 0]) & (eep <= EEP_MAX)
    # a row missing in the middle of a run: find raw gaps with finite rows either side
    idx = np.flatnonzero(nan)
    lo = idx.copy()
    hi = idx.copy()
    while True:  # walk to the nearest finite rows in the same isochrone (vectorised)
        step = ~np.isfinite(v[lo, 0]) & (lo > 0) & (k[lo - 1] == k[idx])
        if not step.any():
            break
        lo = np.where(step, lo - 1, lo)
    while True:
        step = ~np.isfinite(v[hi, 0]) & (hi < len(k) - 1) & (k[np.minimum(hi + 1, len(k) - 1)] == k[idx])
        if not step.any():
            break
        hi = np.where(step, hi + 1, hi)
    both = np.isfinite(v[lo, 0]) & np.isfinite(v[hi, 0]) & (eep[hi] <= EEP_MAX)
    ph = v[:, cols.index("phase")]
    both &= (ph[lo] >= -1) & (ph[lo] <= 4) & (ph[hi] >= -1) & (ph[hi] <= 4)
    assert both.sum() > 10_000
    idx, lo, hi = idx[both], lo[both], hi[both]
    t = (eep[idx] - eep[lo]) / (eep[hi] - eep[lo])
    n_age = raw["age"].size
    fi, ji = k[idx] // n_age, k[idx] % n_age
    for col in ("initial_mass", "log_Teff", "log_L"):
        c = cols.index(col)
        expect = (1 - t) * v[lo, c] + t * v[hi, c]
        got = grid.cube[fi, ji, eep[idx], CUBE_COLUMNS.index(col)]
        np.testing.assert_allclose(got, expect, rtol=2e-6, err_msg=col)


def test_fractional_eep_is_linear(grid: MISTGrid) -> None:
    fi, ji = 12, 90
    e = np.arange(grid.first_eep[fi, ji], grid.last_eep[fi, ji])
    r = grid.interpolate(e + 0.25, grid.log_age_values[ji], grid.feh_values[fi])
    assert r.valid.all()
    c = grid.cube[fi, ji].astype(np.float64)
    np.testing.assert_allclose(r.log_l, 0.75 * c[e, 4] + 0.25 * c[e + 1, 4], rtol=1e-12)


def test_initial_mass_monotonic_and_jacobian(grid: MISTGrid) -> None:
    m = grid.cube[..., I_MASS]
    d = np.diff(m, axis=-1)
    assert np.all(d[np.isfinite(d)] >= 0)

    rng = np.random.default_rng(3)
    n = 200_000
    e = rng.uniform(0, EEP_MAX, n)
    a = rng.uniform(5.0, 10.3, n)
    f = rng.uniform(-4.0, 0.5, n)
    r = grid.interpolate(e, a, f)
    assert r.valid.mean() > 0.5
    assert np.all(r.dmass_deep[r.valid] >= 0)
    # along a blended track the interpolated mass never decreases with EEP
    r2 = grid.interpolate(e + 0.3, a, f)
    both = r.valid & r2.valid
    assert np.all(r2.initial_mass[both] >= r.initial_mass[both] - 1e-12)  # ties: 1 ulp

    # dmass_deep is the central difference of the blended track at integer EEP
    ei = np.floor(e[:5000])
    r0 = grid.interpolate(ei, a[:5000], f[:5000])
    rp = grid.interpolate(ei + 1, a[:5000], f[:5000])
    rm = grid.interpolate(ei - 1, a[:5000], f[:5000])
    ok = r0.valid & rp.valid & rm.valid
    assert ok.sum() > 1000
    fd = (rp.initial_mass - rm.initial_mass) / 2
    np.testing.assert_allclose(r0.dmass_deep[ok], fd[ok], rtol=1e-9, atol=1e-12)


def test_mass_round_trip(grid: MISTGrid) -> None:
    rng = np.random.default_rng(5)
    n = 50_000
    m = np.exp(rng.uniform(np.log(0.1), np.log(3.0), n))
    a = rng.uniform(8.0, 10.13, n)
    f = rng.uniform(-2.5, 0.5, n)
    r = grid.interpolate_mass(m, a, f)
    assert 0.6 < r.valid.mean() < 0.95
    np.testing.assert_allclose(r.initial_mass[r.valid], m[r.valid], rtol=1e-6)
    # low-mass stars at 1 Gyr are on the isochrone; 3 M_sun at 12 Gyr never
    assert grid.interpolate_mass(np.full(5, 0.5), 9.0, np.linspace(-2, 0.25, 5)).valid.all()
    # the file's [Fe/H] = +0.5 isochrones start at about 0.51 M_sun (data limitation)
    assert not grid.interpolate_mass(0.5, 9.0, 0.5).valid
    assert grid.interpolate_mass(0.6, 9.0, 0.5).valid
    assert not grid.interpolate_mass(3.0, np.log10(12e9), 0.0).valid


def test_metal_poor_is_hotter(grid: MISTGrid) -> None:
    r = grid.interpolate_mass([0.8, 0.8], 10.0, [-1.5, 0.0])
    assert r.valid.all()
    assert (r.phase_int == 0).all()
    assert r.teff[0] > r.teff[1] + 300


def test_out_of_grid_is_invalid(grid: MISTGrid) -> None:
    eep = np.array([300.0, 300.0, 300.0, 300.0, -1.0, 900.0, np.nan, 300.0, 5.0])
    age = np.array([9.0, 10.4, 4.9, 9.0, 9.0, 9.0, 9.0, np.nan, 10.0])
    feh = np.array([0.0, 0.0, 0.0, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0])
    r = grid.interpolate(eep, age, feh)
    assert r.valid.tolist() == [True] + [False] * 8
    assert np.isnan(r.teff[1:]).all() and np.isnan(r.dmass_deep[1:]).all()
    assert (r.phase_int[1:] == PHASE_INVALID).all()
    rm = grid.interpolate_mass([1.0, 1.0, 50.0, -1.0], [9.0, 11.0, 10.0, 9.0], [0.0, 0.0, 0.0, 0.0])
    assert rm.valid.tolist() == [True, False, False, False]


def test_missing_file_names_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "mist.h5"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        MISTGrid.load(missing)


def test_bad_layout_raises(tmp_path: Path) -> None:
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f.attrs["storage"] = "dense"
        f.attrs["shape"] = [2, 2, 3, 1]
        f.attrs["columns"] = ["eep"]
        f["feh_values"] = [0.0, 1.0]
        f["age_values"] = [9.0, 10.0]
        f["lengths"] = [1, 1, 1, 1]
        f["offsets"] = [0, 0, 0, 0]
        f["values"] = np.zeros((4, 1), "f4")
    with pytest.raises(DataError, match="sparse_v1") as exc:
        MISTGrid.load(bad)
    assert str(bad) in str(exc.value)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(DataError, match=str(text)):
        MISTGrid.load(text)


def test_kroupa_imf() -> None:
    m = np.array([0.05, 0.08, 0.2, 0.5, 1.0, 10.0])
    xi = kroupa_imf(m)
    # independent reference: piecewise power law, continuous
    np.testing.assert_allclose(xi[2], 0.2**-1.3)
    np.testing.assert_allclose(xi[4], 0.5**-1.3 * (1.0 / 0.5) ** -2.3)
    np.testing.assert_allclose(xi[5], 0.5**-1.3 * (10.0 / 0.5) ** -2.3)
    eps = 1e-9
    for br in (0.08, 0.5):
        lo, hi = kroupa_imf([br * (1 - eps), br * (1 + eps)])
        assert hi == pytest.approx(lo, rel=1e-6)

    def slope(a: float, b: float) -> float:
        return float(np.log(kroupa_imf(b) / kroupa_imf(a)) / np.log(b / a))

    assert slope(0.1, 0.4) == pytest.approx(-1.3)
    assert slope(0.6, 50.0) == pytest.approx(-2.3)
    assert slope(0.01, 0.07) == pytest.approx(-0.3)
    assert kroupa_imf(0.0) == 0 and kroupa_imf(-1.0) == 0
