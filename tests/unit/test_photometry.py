"""Tests of ddstars.synphot against independent references.

References: speclite's own photometry on densely sampled SEDs built here from first principles
(astropy constants, Planck function), published AB-Vega offsets, and the measured numbers of
shared/reference/SIMSKY.md §3-§4.
"""

from __future__ import annotations

import numpy as np
import pytest
import speclite.filters
from astropy import constants as const
from astropy import units as u
from dust_extinction.parameter_averages import F99

from ddstars.bands import BAND_NAMES, BANDS, band_index
from ddstars.synphot import (
    BCTable,
    Photometer,
    _vega_spectrum,
    extinction_nonlinearity,
    vega_ab_offsets_synthetic,
)

G, BP, RP = band_index("gaia_g"), band_index("gaia_bp"), band_index("gaia_rp")
PS_G, PS_R = band_index("ps1_g"), band_index("ps1_r")
KS = band_index("tmass_ks")
OFFSETS = np.array([b.ab_minus_vega for b in BANDS])

# SIMSKY §4, F99, R_V = 3.1, N = 1, [Fe/H] = 0.
R_G_SIMSKY = {4000.0: 2.251, 5400.0: 2.494, 8000.0: 2.767}
R_ALL_5400_SIMSKY = [
    2.494,
    3.192,
    1.859,
    3.539,
    2.563,
    1.902,
    1.499,
    1.252,
    0.822,
    0.519,
    0.350,
    0.203,
    0.141,
]


@pytest.fixture(scope="module")
def phot() -> Photometer:
    return Photometer(dtype=np.float64)


@pytest.fixture(scope="module")
def phot32() -> Photometer:
    return Photometer()


@pytest.fixture(scope="module")
def filters() -> speclite.filters.FilterSequence:
    return speclite.filters.load_filters(*(b.speclite for b in BANDS))


@pytest.fixture(scope="module")
def small_table(phot: Photometer) -> BCTable:
    return BCTable.build(
        phot,
        log_teff_grid=np.round(np.arange(3.60, 3.7201, 0.002), 6),
        feh_grid=np.round(np.arange(-1.0, 0.501, 0.1), 6),
        ebv_grid=np.round(np.arange(0.0, 2.001, 0.1), 6),
    )


# ------------------------------------------------------------------ independent SED model
H = const.h.cgs.value
C = const.c.cgs.value
K_B = const.k_B.cgs.value
FINE = np.geomspace(2990.0, 55600.0, 60000)  # Å


def planck_lambda(lam_aa: np.ndarray, teff: float) -> np.ndarray:
    """B_λ [erg s⁻¹ cm⁻² Å⁻¹ sr⁻¹] from first principles."""
    lam = lam_aa * 1e-8
    with np.errstate(over="ignore"):  # far-UV tail of cool stars: e^x overflows, B_λ -> 0
        return 2 * H * C**2 / lam**5 / np.expm1(H * C / (lam * K_B * teff)) * 1e-8


def tau_blanket(lam_aa: np.ndarray, teff: float, feh: float, amp: float = 0.3) -> np.ndarray:
    z = 10.0**feh
    return (
        amp
        * z**0.6
        * np.clip(5772.0 / teff, 0.5, 2.5) ** 3
        * (4300.0 / lam_aa) ** 2
        / (1 + np.exp(np.minimum((lam_aa - 4300.0) / 300.0, 700)))
    )


def reference_flux(
    lam_aa: np.ndarray,
    teff: float,
    feh: float,
    log_l: float,
    ebv: float,
    norm: float = 1.0,
):
    """f_λ at 10 pc [erg s⁻¹ cm⁻² Å⁻¹] of the SIMSKY §4 model, normalised numerically."""
    bol = np.geomspace(5.0, 3e6, 400_000)
    sb = planck_lambda(bol, teff) * np.exp(-tau_blanket(bol, teff, feh))
    fbol = np.trapezoid(sb, bol)
    lum = 10.0**log_l * const.L_sun.cgs.value  # IAU nominal 3.828e33 erg/s
    flux_bol = lum / (4 * np.pi * (10 * u.pc).to_value(u.cm) ** 2)
    s = planck_lambda(lam_aa, teff) * np.exp(-tau_blanket(lam_aa, teff, feh)) / fbol
    a_lam = norm * 3.1 * ebv * F99.evaluate(1e4 / lam_aa, 3.1)
    return s * flux_bol * 10 ** (-0.4 * a_lam)


def speclite_mags(filters, flux: np.ndarray, lam: np.ndarray) -> np.ndarray:
    table = filters.get_ab_maggies(np.atleast_2d(flux), lam)
    return -2.5 * np.log10(np.stack([np.asarray(table[name]) for name in filters.names], axis=-1))


CASES = [  # teff, feh, log_l, ebv
    (3500.0, -1.5, 0.0, 0.0),
    (5772.0, 0.0, 0.0, 0.0),
    (4600.0, 0.4, 1.7, 0.8),
    (9000.0, -2.0, -0.5, 2.5),
]


# --------------------------------------------------------------------------------- tests
def test_weight_matrix_matches_speclite(phot: Photometer, filters) -> None:
    """W-matrix photometry on the 600-point grid vs speclite on a 60k-point SED."""
    for teff, feh, log_l, ebv in CASES:
        ours = -2.5 * np.log10(phot.ab_maggies(reference_flux(phot.wavelength, teff, feh, log_l, ebv)))
        ref = speclite_mags(filters, reference_flux(FINE, teff, feh, log_l, ebv), FINE)[0]
        np.testing.assert_allclose(ours, ref, atol=2e-3, rtol=0, err_msg=f"{teff=} {feh=} {ebv=}")


def test_absolute_magnitudes_match_independent_model(phot: Photometer, phot32: Photometer, filters) -> None:
    """Full pipeline (SED, renormalisation, distance, extinction, Vega offsets) vs first principles."""
    t, f, ll, e = (np.array(x) for x in zip(*CASES, strict=True))
    ref = np.stack([speclite_mags(filters, reference_flux(FINE, *case), FINE)[0] for case in CASES]) - OFFSETS
    for p in (phot, phot32):
        np.testing.assert_allclose(p.absolute_magnitudes(t, f, ll, e), ref, atol=2e-3, rtol=0)


def test_sed_is_flux_at_10pc(phot: Photometer) -> None:
    flux = phot.sed(6000.0, -0.5, 0.3, 1.2)
    ref = reference_flux(phot.wavelength, 6000.0, -0.5, 1.2, 0.3)
    np.testing.assert_allclose(flux, ref, rtol=1e-6)


def test_bolometric_fraction_matches_direct_integral(phot: Photometer) -> None:
    bol = np.geomspace(5.0, 3e6, 400_000)
    for teff, feh in [(3000.0, 0.5), (5772.0, 0.0), (20000.0, -1.0)]:
        b = planck_lambda(bol, teff)
        ref = np.trapezoid(b * np.exp(-tau_blanket(bol, teff, feh)), bol) / np.trapezoid(b, bol)
        assert phot.bolometric_fraction(teff, feh) == pytest.approx(ref, rel=1e-6)


def test_float32_and_chunking_agree(phot: Photometer) -> None:
    rng = np.random.default_rng(7)
    n = 300
    t, f, ll, e = (
        10 ** rng.uniform(3.5, 4.0, n),
        rng.uniform(-2.5, 0.5, n),
        rng.uniform(-1, 3, n),
        rng.uniform(0, 4, n),
    )
    ref = phot.absolute_magnitudes(t, f, ll, e)
    small = Photometer(chunk_size=37)
    np.testing.assert_allclose(small.absolute_magnitudes(t, f, ll, e), ref, atol=1e-4, rtol=0)
    np.testing.assert_allclose(small.reddening_vector(t, f), phot.reddening_vector(t, f), rtol=1e-4)


def test_broadcasting_and_shapes(phot: Photometer) -> None:
    assert phot.absolute_magnitudes(5000.0, 0.0, 0.0).shape == (13,)
    assert phot.absolute_magnitudes([5000.0, 6000.0], 0.0, 0.0, 0.1).shape == (2, 13)
    assert phot.absolute_magnitudes(np.full((3, 1), 5000.0), [0.0, -1.0], 0.0).shape == (3, 2, 13)
    assert phot.reddening_vector([5000.0, 6000.0, 7000.0], 0.0).shape == (3, 13)
    m = phot.absolute_magnitudes([5000.0, 5000.0], 0.0, [0.0, 1.0])
    np.testing.assert_allclose(m[1] - m[0], -2.5, atol=1e-12)


def test_invalid_inputs_raise(phot: Photometer) -> None:
    with pytest.raises(ValueError, match="teff"):
        phot.absolute_magnitudes(-10.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="feh"):
        phot.absolute_magnitudes(5000.0, np.nan, 0.0)
    with pytest.raises(ValueError, match="broadcast"):
        phot.absolute_magnitudes([5000.0, 6000.0], [0.0, 0.1, 0.2], 0.0)
    with pytest.raises(ValueError, match="dtype"):
        Photometer(dtype=np.int32)


def test_synthetic_vega_offsets(phot: Photometer, filters) -> None:
    synth = vega_ab_offsets_synthetic(phot)
    for i, b in enumerate(BANDS):
        if b.survey != "ps1":
            assert abs(synth[i] - b.ab_minus_vega) < 0.025, b.name
    lam, flux = _vega_spectrum()
    np.testing.assert_allclose(synth, speclite_mags(filters, flux, lam)[0], atol=2e-3)


@pytest.mark.parametrize(("teff", "expected"), sorted(R_G_SIMSKY.items()))
def test_reddening_gaia_g_matches_simsky(phot: Photometer, teff: float, expected: float) -> None:
    assert phot.reddening_vector(teff, 0.0)[G] == pytest.approx(expected, abs=0.01)


def test_reddening_all_bands_5400(phot: Photometer) -> None:
    np.testing.assert_allclose(phot.reddening_vector(5400.0, 0.0), R_ALL_5400_SIMSKY, rtol=0.01)


def test_reddening_vector_is_slope_of_magnitudes(phot: Photometer) -> None:
    t = np.array([3600.0, 5000.0, 7500.0])
    f = np.array([-2.0, 0.0, 0.5])
    h = 1e-4
    slope = (phot.absolute_magnitudes(t, f, 0.0, h) - phot.absolute_magnitudes(t, f, 0.0, 0.0)) / h
    np.testing.assert_allclose(phot.reddening_vector(t, f), slope, rtol=1e-3)


def test_metal_rich_is_redder(phot: Photometer) -> None:
    feh = np.array([-2.5, -1.0, 0.0, 0.5])
    for teff in (4500.0, 5800.0):
        m = phot.absolute_magnitudes(teff, feh, 0.0)
        assert np.all(np.diff(m[:, PS_G] - m[:, PS_R]) > 0)
        assert np.all(np.diff(m[:, BP] - m[:, RP]) > 0)
    m = phot.absolute_magnitudes(5800.0, np.array([-2.5, 0.0, 0.5]), 0.0)
    np.testing.assert_allclose(m[:, PS_G] - m[:, PS_R], [0.431, 0.480, 0.527], atol=0.01)


def test_sun_spot_check(phot: Photometer) -> None:
    m = phot.absolute_magnitudes(5772.0, 0.0, 0.0)
    assert m[G] == pytest.approx(4.66, abs=0.03)
    assert m[KS] == pytest.approx(3.33, abs=0.03)


def test_bctable_matches_exact(phot: Photometer, small_table: BCTable) -> None:
    rng = np.random.default_rng(11)
    n = 2000
    lt = small_table.log_teff_grid
    t = 10 ** rng.uniform(lt[0], lt[-1], n)
    f = rng.uniform(small_table.feh_grid[0], small_table.feh_grid[-1], n)
    e = rng.uniform(small_table.ebv_grid[0], small_table.ebv_grid[-1], n)
    ll = rng.uniform(-1.0, 3.0, n)
    err = np.abs(small_table.absolute_magnitudes(t, f, ll, e) - phot.absolute_magnitudes(t, f, ll, e))
    assert err.max() <= 2e-3
    assert err.max() > 0  # it interpolates, not a lookup of the same calculation
    np.testing.assert_allclose(small_table.reddening_vector(t, f), phot.reddening_vector(t, f), atol=1e-3)
    # Nodes and edges reproduce the exact values.
    edge = small_table.absolute_magnitudes(10 ** lt[[0, -1]], [-1.0, 0.5], 0.0, [0.0, 2.0])
    np.testing.assert_allclose(
        edge,
        phot.absolute_magnitudes(10 ** lt[[0, -1]], [-1.0, 0.5], 0.0, [0.0, 2.0]),
        atol=1e-5,
    )


@pytest.mark.parametrize(
    ("teff", "feh", "ebv", "name"),
    [
        (3000.0, 0.0, 0.5, "teff"),
        (6000.0, 0.0, 0.5, "teff"),
        (4500.0, -1.5, 0.5, "feh"),
        (4500.0, 0.7, 0.5, "feh"),
        (4500.0, 0.0, 2.5, "ebv"),
        (4500.0, 0.0, -0.1, "ebv"),
    ],
)
def test_bctable_out_of_range_raises(small_table: BCTable, teff: float, feh: float, ebv: float, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name} outside.*must lie in \["):
        small_table.absolute_magnitudes([4500.0, teff], [0.0, feh], 0.0, [0.0, ebv])
    if name != "ebv":
        with pytest.raises(ValueError, match=rf"^{name} outside"):
            small_table.reddening_vector(teff, feh)


def test_bctable_default_grid_shape() -> None:
    p = Photometer(n_lambda=150)
    table = BCTable.build(p)
    assert table.magnitudes.shape == (216, 31, 51, 13)
    assert table.log_teff_grid[[0, -1]].tolist() == [3.53, 3.96]
    assert table.feh_grid[[0, -1]].tolist() == [-2.5, 0.5]
    assert table.ebv_grid[[0, -1]].tolist() == [0.0, 5.0]


def test_extinction_nonlinearity_gaia_g(phot32: Photometer) -> None:
    assert extinction_nonlinearity(phot32, 6000.0) == pytest.approx(-0.048, abs=0.005)


def test_extinction_nonlinearity_solves_for_a_ref(phot: Photometer) -> None:
    teff = np.array([6000.0, 4500.0])
    r = band_index("ps1_r")
    da = extinction_nonlinearity(phot, teff, a_ref=2.0, band="ps1_r")
    assert da.shape == (2,) and np.all(da < 0)
    ebv = (2.0 - da) / phot.reddening_vector(teff, 0.0)[:, r]  # ΔA = a_ref - R0 E
    a_band = phot.absolute_magnitudes(teff, 0.0, 0.0, ebv)[:, r] - phot.absolute_magnitudes(teff, 0.0, 0.0)[:, r]
    np.testing.assert_allclose(a_band, 2.0, atol=1e-8)


def test_band_order_is_bands_module() -> None:
    p = Photometer(n_lambda=150)
    assert list(p.filters.names) == [b.speclite for b in BANDS]
    assert len(BAND_NAMES) == p.weights.shape[0] == 13
