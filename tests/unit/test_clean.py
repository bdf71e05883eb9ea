"""Per-survey cleaning: standard columns, counts that balance, rejected rows with their reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ddstars import archives
from ddstars.bands import MAG_ERR
from ddstars.catalog import clean


@pytest.fixture(scope="module")
def tables(small_sky):
    return {
        name: archives.read_table(path, name) for name, path in small_sky["paths"].items() if name in archives.TABLES
    }


@pytest.mark.parametrize("survey", list(clean.SURVEY_TABLES))
def test_counts_balance_and_rejected_rows_carry_reasons(tables, survey):
    df = tables[clean.SURVEY_TABLES[survey]]
    res = clean.clean(survey, df)
    c = res.counts
    assert c["n_in"] == len(df) == len(res.table) + len(res.rejected)
    assert c["n_kept"] == len(res.table) and c["n_removed"] == len(res.rejected)
    names = {x["name"] for x in c["cuts"]}
    reasons = set(res.rejected["rejected_by"].str.split(",").explode().dropna()) if len(res.rejected) else set()
    assert reasons <= names
    for band, bc in c.get("bands", {}).items():
        assert bc["fail_flags_or_missing"] + bc["fail_error_gt_max"] + bc["usable"] == bc["rows"] == len(res.table)
        mag, err = res.table[f"mag_{band}"], res.table[f"err_{band}"]
        assert (mag.notna() == err.notna()).all() and int(mag.notna().sum()) == bc["usable"]
        assert (err.dropna() >= 0.02).all() and (err.dropna() <= 0.2).all()


def test_spectroscopic_columns_and_floors(tables):
    res = clean.clean("lamost", tables["lamost_dr5_ddpayne"])
    t = res.table
    np.testing.assert_allclose(t["var_teff"], t["sigma_teff_reported"] ** 2 + 10.0**2)
    np.testing.assert_allclose(t["var_feh"], t["sigma_feh_reported"] ** 2 + 0.03**2)
    assert (t[["cov_teff_logg", "cov_teff_feh", "cov_logg_feh"]] == 0).all().all()
    assert (np.sqrt(t["var_teff"]) <= 200).all() and (np.sqrt(t["var_logg"]) <= 0.5).all()


def test_apogee_covariance_indices(tables):
    df = tables["apogee_dr16_allstar"]
    paper = clean.clean("apogee", df).table
    code = clean.clean("apogee", df, {"apogee_cov_indices": [0, 1, 2]}).table
    fcov = np.vstack(df["FPARAM_COV"].to_numpy()).reshape(-1, 9, 9)
    row = df.index[df["APOGEE_ID"] == paper["survey_id"].iloc[0]][0]
    assert paper["cov_teff_feh"].iloc[0] == pytest.approx(fcov[row, 0, 3])  # Teff-[M/H]
    assert code["cov_teff_feh"].iloc[0] == pytest.approx(fcov[row, 0, 2])  # Teff-vmicro (authors' code)
    assert not np.allclose(paper["cov_teff_feh"], code["cov_teff_feh"])


def test_gaia_g_error_cut_at_the_floored_boundary():
    # floored G error = sqrt(s^2 + 0.02^2): exactly 0.2 kept, just above removed (G is required)
    s_edge = np.sqrt(0.2**2 - 0.02**2)
    n = 3
    df = pd.DataFrame(
        {
            "source_id": np.arange(n, dtype=np.int64),
            "ra": [1.0, 2.0, 3.0],
            "dec": [0.0, 0.0, 0.0],
            "l": [0.0] * n,
            "b": [0.0] * n,
            "parallax": [1.0] * n,
            "parallax_error": [0.1] * n,
            "visibility_periods_used": [12] * n,
            "astrometric_chi2_al": [100.0] * n,
            "astrometric_n_good_obs_al": [105] * n,
            "phot_g_n_obs": [100] * n,
            "phot_g_mean_mag": [15.0] * n,
            "phot_g_mean_flux_over_error": [MAG_ERR / 0.01, MAG_ERR / (s_edge * 0.999999), MAG_ERR / (s_edge * 1.01)],
            **{
                f"phot_{b}_mean_{k}": [15.0 if k == "mag" else 100.0] * n
                for b in ("bp", "rp")
                for k in ("mag", "flux_over_error")
            },
        }
    )
    res = clean.clean_gaia(df)
    assert res.table["source_id"].tolist() == [0, 1]
    assert res.rejected["rejected_by"].tolist() == ["g_error"]
