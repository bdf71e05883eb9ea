"""Cross-match: radii at their boundaries, duplicates, survey priority, photometric counterparts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ddstars.catalog import crossmatch
from ddstars.errors import ConfigError

AS = 1 / 3600.0


def test_sky_match_radius_and_nearest():
    ra2 = np.array([10.0, 10.0, 50.0])
    dec2 = np.array([0.0 + 0.15 * AS, 0.0 + 0.05 * AS, 0.0])
    idx, sep = crossmatch.sky_match([10.0, 50.0, 50.0], [0.0, 0.19 * AS, 0.21 * AS], ra2, dec2, 0.2)
    np.testing.assert_array_equal(idx, [1, 2, -1])  # nearest of two; 0.19" in; 0.21" out
    np.testing.assert_allclose(sep[:2], [0.05, 0.19], atol=1e-6)
    assert np.isnan(sep[2])
    idx, _ = crossmatch.sky_match([], [], ra2, dec2, 0.2)
    assert idx.shape == (0,)
    idx, _ = crossmatch.sky_match([50.0], [0.0], [50.0], [0.1 * AS], 0.2)  # one-row catalogue
    assert idx.tolist() == [0]


def _spec(survey, ras, snr, ids):
    n = len(ras)
    return pd.DataFrame(
        {
            "survey": survey,
            "survey_id": ids,
            "ra": ras,
            "dec": np.zeros(n),
            "snr": snr,
            "teff": 5000.0,
            "logg": 4.0,
            "feh": 0.0,
        }
    )


def test_spectra_to_gaia_counts_rejected_unmatched_and_duplicates():
    gaia = pd.DataFrame({"source_id": [1, 2], "ra": [10.0, 20.0], "dec": [0.0, 0.0]})
    rejected = pd.DataFrame(
        {"source_id": [3], "ra": [30.0], "dec": [0.0], "rejected_by": pd.array(["astrometric_chi2,phot_g_n_obs"])}
    )
    lam = _spec(
        "lamost", [10.0, 10.0 + 0.1 * AS, 20.0, 30.0, 40.0], [30.0, 80.0, 50.0, 50.0, 50.0], ["a", "b", "c", "d", "e"]
    )
    matched, report = crossmatch.match_spectra_to_gaia({"lamost": lam}, gaia, rejected, 0.2)
    r = report["lamost"]
    assert (r["n_in"], r["no_gaia_match"], r["gaia_rejected"], r["duplicate_in_survey"], r["n_out"]) == (5, 1, 1, 1, 2)
    assert r["gaia_rejected_by_cut"] == {"astrometric_chi2": 1, "phot_g_n_obs": 1}
    assert matched.set_index("source_id").loc[1, "survey_id"] == "b"  # highest S/N of the two spectra
    assert r["n_in"] == r["no_gaia_match"] + r["gaia_rejected"] + r["duplicate_in_survey"] + r["n_out"]


def test_priority_keeps_one_row_per_star():
    m = pd.DataFrame(
        {
            "source_id": [1, 1, 1, 2, 3, 3],
            "survey": ["lamost", "galah", "apogee", "lamost", "lamost", "galah"],
            "teff": [1, 2, 3, 4, 5, 6],
        }
    )
    kept, report = crossmatch.select_by_priority(m, ("apogee", "galah", "lamost"))
    k = kept.set_index("source_id")
    assert k.loc[1, "survey"] == "apogee" and k.loc[3, "survey"] == "galah" and k.loc[2, "survey"] == "lamost"
    assert k["n_surveys"].tolist() == [3, 1, 2]
    assert k["in_lamost"].all() and k.loc[1, "in_galah"] and not k.loc[2, "in_galah"]
    assert report["lamost"]["duplicate_lower_priority"] == 2 and report["galah"]["duplicate_lower_priority"] == 1
    kept2, _ = crossmatch.select_by_priority(m, ("lamost", "galah", "apogee"))
    assert (kept2["survey"] == "lamost").all()
    with pytest.raises(ConfigError, match="apogee missing from catalog.survey_priority"):
        crossmatch.select_by_priority(m, ("galah", "lamost"))


def test_photometric_counterparts_via_best_neighbours_and_sky_match():
    stars = pd.DataFrame({"source_id": [1, 2, 3], "ra": [10.0, 20.0, 30.0], "dec": [0.0, 0.0, 0.0]})
    ps1 = pd.DataFrame(
        {
            "objID": [101, 102],
            "ra": [10.0, 20.0],
            "dec": [0.0, 0.0],
            "mag_ps1_r": [15.0, 16.0],
            "err_ps1_r": [0.03, 0.04],
        }
    )
    ps1_bn = pd.DataFrame(
        {"source_id": [1, 2], "original_ext_source_id": [101, 102], "angular_distance": [0.1999, 0.2]}
    )  # 0.2" exactly is outside (strict <)
    tmass = pd.DataFrame(
        {"designation": ["J1"], "ra": [10.0], "dec": [0.0], "mag_tmass_j": [12.0], "err_tmass_j": [0.03]}
    )
    tmass_rej = pd.DataFrame({"designation": ["J3"], "ra": [30.0], "dec": [0.0], "rejected_by": ["ext_key"]})
    tmass_bn = pd.DataFrame(
        {"source_id": [1, 3], "original_ext_source_id": ["J1", "J3"], "angular_distance": [0.39, 0.1]}
    )
    unwise = pd.DataFrame(
        {
            "unwise_objid": ["w2", "w3"],
            "ra": [20.0, 30.0 + 0.45 * AS],
            "dec": [0.3 * AS, 0.0],
            "mag_unwise_w1": [14.0, 15.0],
            "err_unwise_w1": [0.05, 0.05],
        }
    )
    out, rep = crossmatch.attach_photometry(stars, ps1, ps1.iloc[:0], ps1_bn, tmass, tmass_rej, tmass_bn, unwise)
    assert out["ps1_objid"].tolist()[0] == 101 and pd.isna(out["ps1_objid"].iloc[1])
    np.testing.assert_array_equal(out["mag_ps1_r"].isna(), [False, True, True])
    assert out["tmass_extended"].tolist() == [False, False, True]
    assert out["mag_tmass_j"].iloc[0] == 12.0
    assert out["unwise_objid"].tolist()[1] == "w2" and pd.isna(out["unwise_objid"].iloc[2])  # 0.45" > 0.4"
    assert rep["tmass"]["counterpart_rejected"] == 1 and rep["ps1"]["matched"] == 1 and rep["unwise"]["matched"] == 1


def test_no_photometric_counterparts_at_all():
    stars = pd.DataFrame({"source_id": [1, 2], "ra": [10.0, 20.0], "dec": [0.0, 0.0]})
    ps1 = pd.DataFrame({"objID": pd.Series([], dtype="int64"), "ra": [], "dec": [], "mag_ps1_g": [], "err_ps1_g": []})
    tmass = pd.DataFrame(
        {"designation": pd.Series([], dtype="str"), "ra": [], "dec": [], "mag_tmass_j": [], "err_tmass_j": []}
    )
    unwise = pd.DataFrame(
        {"unwise_objid": pd.Series([], dtype="str"), "ra": [], "dec": [], "mag_unwise_w1": [], "err_unwise_w1": []}
    )
    bn = pd.DataFrame({"source_id": pd.Series([], dtype="int64"), "original_ext_source_id": [], "angular_distance": []})
    out, rep = crossmatch.attach_photometry(stars, ps1, ps1, bn, tmass, tmass, bn, unwise)
    assert out["mag_ps1_g"].isna().all() and out["ps1_objid"].isna().all() and not out["tmass_extended"].any()
    assert rep["ps1"]["matched"] == rep["tmass"]["matched"] == rep["unwise"]["matched"] == 0
