"""The simulated sky's photometric sample (stars without spectra) and the inference input made from it by the
catalog's cuts (ddstars.simulate.photometric, ddstars.catalog.photometric_input)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import sky_paths, small_config

from ddstars.bands import BANDS
from ddstars.errors import ConfigError

N_STARS = 2000


def _paths(out):
    from ddstars.simulate.photometric import TABLES

    paths = {k: out / "archives" / f"{k}.parquet" for k in TABLES}
    return paths | {"truth": out / "truth.parquet", "manifest": out / "manifest.json"}


def _cfg(**photometric):
    cfg = small_config(n_stars=N_STARS)["simulate"]
    cfg["photometric"] = {"n_stars": N_STARS, **photometric}
    return cfg


@pytest.fixture(scope="module")
def sample(tmp_path_factory, sky_models):
    """A 2,000-star photometric sample (G 12-18), its inference input, and a spectroscopic sky of the same seed."""
    from ddstars.catalog.photometric_input import TABLES, photometric_input
    from ddstars.simulate.photometric import generate_photometric
    from ddstars.simulate.sky import generate

    out = tmp_path_factory.mktemp("photometric")
    cfg = _cfg()
    paths = _paths(out / "phot")
    manifest = generate_photometric(cfg, paths, models=sky_models)
    spec_paths = sky_paths(out / "spec")
    generate(small_config(n_stars=N_STARS)["simulate"], spec_paths, models=sky_models)
    report = photometric_input({t: paths[t] for t in TABLES}, out / "input.parquet", {}, out / "input.json")
    return {
        "cfg": cfg,
        "paths": paths,
        "manifest": manifest,
        "spec_paths": spec_paths,
        "input": pd.read_parquet(out / "input.parquet"),
        "report": report,
        "truth": pd.read_parquet(paths["truth"]),
        "out": out,
    }


def test_sample_is_the_configured_window_fainter_than_the_spectroscopic_one(sample):
    g = sample["truth"]["true_mag_gaia_g"]
    spec_g = pd.read_parquet(sample["spec_paths"]["truth"], columns=["true_mag_gaia_g"])["true_mag_gaia_g"]
    spec_hi = sample["cfg"]["selection"]["gaia_g_range"][1]
    assert len(g) == N_STARS and g.between(12.0, 18.0).all()
    assert spec_g.max() <= spec_hi < g.max()
    assert (g > spec_hi).mean() > 0.3  # the counts rise steeply towards the faint limit


def test_no_star_has_spectra_and_only_photometric_tables_are_written(sample):
    from ddstars import registry
    from ddstars.simulate.photometric import TABLES

    truth = sample["truth"]
    assert not truth[[f"in_{s}" for s in registry.SPECTROSCOPIC]].to_numpy().any()
    assert set(TABLES) == {t for t, v in registry.TABLES.items() if v.survey in registry.PHOTOMETRIC}
    assert set(sample["manifest"]["rows"]) == {*TABLES, "truth"}
    assert not any(registry.TABLES[t].survey in registry.SPECTROSCOPIC for t in TABLES)


def test_ids_do_not_collide_with_the_spectroscopic_sky_of_the_same_seed(sample):
    def ids(paths):
        t = pd.read_parquet(paths["truth"])
        tmass_bn = pd.read_parquet(paths["tmass_best_neighbour"])
        return {
            "star_id": set(t["star_id"]),
            "source_id": set(pd.read_parquet(paths["gaia_source"])["source_id"]),
            "objID": set(pd.read_parquet(paths["ps1_mean_object"])["objID"]),
            "designation": set(pd.read_parquet(paths["tmass_psc"])["designation"]),
            "unwise_objid": set(pd.read_parquet(paths["unwise"])["unwise_objid"]),
            "tmass_oid": set(tmass_bn["tmass_oid"]),
        }

    mine, theirs = ids(sample["paths"]), ids(sample["spec_paths"])
    for key in mine:
        assert mine[key] and theirs[key], key
        assert not mine[key] & theirs[key], key
    # the ids stay well-formed: source_id // 2**35 is the level-12 HEALPix pixel of the position
    import healpy as hp

    g = pd.read_parquet(sample["paths"]["gaia_source"])
    pix = hp.ang2pix(2**12, g["ra"].to_numpy(), g["dec"].to_numpy(), nest=True, lonlat=True)
    assert (g["source_id"].to_numpy() // 2**35 == pix).all()


def test_truth_rows_are_the_gaia_rows(sample):
    truth, gaia = sample["truth"], pd.read_parquet(sample["paths"]["gaia_source"])
    assert truth["source_id"].is_unique and set(truth["source_id"]) == set(gaia["source_id"])
    m = truth.merge(gaia, on="source_id", suffixes=("_truth", ""))
    np.testing.assert_allclose(m["ra"], m["ra_truth"], atol=1e-12)
    np.testing.assert_allclose(m["dec"], m["dec_truth"], atol=1e-12)
    assert list(truth.columns[:7]) == ["star_id", "source_id", "ra", "dec", "l", "b", "component"]


def test_same_config_same_bytes_other_seed_offset_differs(sample, tmp_path, sky_models):
    from ddstars.simulate.photometric import generate_photometric

    again = generate_photometric(sample["cfg"], _paths(tmp_path / "a"), models=sky_models)
    assert again["sha256"] == sample["manifest"]["sha256"]
    other = generate_photometric(_cfg(n_stars=300, seed_offset=7), _paths(tmp_path / "b"), models=sky_models)
    assert other["sha256"]["truth"] != again["sha256"]["truth"]


def test_options_are_checked():
    from ddstars.simulate.photometric import options

    with pytest.raises(ConfigError, match="seed_offset"):
        options({"photometric": {"seed_offset": 1}})
    with pytest.raises(ConfigError, match="unknown key"):
        options({"photometric": {"n_star": 5}})
    with pytest.raises(ConfigError, match="gaia_g_range"):
        options({"photometric": {"gaia_g_range": [18, 12]}})


def test_input_passes_the_inference_check_and_has_its_columns(sample):
    from ddstars.catalog.photometric_input import INPUT_COLUMNS, OUTPUT_COLUMNS
    from ddstars.inference import stage

    assert INPUT_COLUMNS == stage.INPUT_COLUMNS
    df = sample["input"]
    assert tuple(df.columns) == OUTPUT_COLUMNS
    stage.check_input(df, "input.parquet")
    assert df["source_id"].is_monotonic_increasing and len(df) > 0.9 * N_STARS


def test_input_magnitudes_agree_with_the_truth_within_the_errors(sample):
    df = sample["input"]
    truth = sample["truth"].set_index("source_id").loc[df["source_id"]]
    for b in BANDS:
        to_catalog = b.ab_minus_vega if b.survey == "unwise" else 0.0  # truth unWISE is Vega, the catalog AB
        z = (df[f"mag_{b.name}"].to_numpy() - truth[f"true_mag_{b.name}"].to_numpy() - to_catalog) / df[
            f"err_{b.name}"
        ].to_numpy()
        z = z[np.isfinite(z)]
        assert len(z) > 300, b.name
        chi2 = float(np.mean(z**2))
        assert 0.75 < chi2 < 1.3, (b.name, chi2)
        assert abs(np.median(z)) < 0.2, b.name
    plx = (df["parallax"].to_numpy() - truth["true_parallax_mas"].to_numpy()) / df["parallax_error"].to_numpy()
    assert 0.8 < np.mean(plx**2) < 1.25


def test_cuts_remove_what_they_should(sample):
    df, truth, rep = sample["input"], sample["truth"].set_index("source_id"), sample["report"]
    kept = truth.index.isin(df["source_id"])
    gaia_fail = truth[["fail_gaia_visibility_periods", "fail_gaia_astrometric_chi2", "fail_gaia_phot_g_n_obs"]]
    fails = gaia_fail.any(axis=1).to_numpy() | truth["fail_tmass_ext_key"].to_numpy()
    assert fails.sum() > 0 and (kept == ~fails).all()
    for cut in ("visibility_periods", "astrometric_chi2", "phot_g_n_obs"):
        assert rep["removed_by_cut"][cut.replace("periods", "periods_used")] == truth[f"fail_gaia_{cut}"].sum()
    assert rep["removed_by_cut"]["tmass_ext_key"] == (truth["fail_tmass_ext_key"] & ~gaia_fail.any(axis=1)).sum()
    assert rep["rows_in"] == N_STARS and rep["rows_out"] == len(df)
    # a PS1 galaxy (PSF - aperture > 0.1 mag) loses its PS1 bands, not the star; the match reports it rejected
    ext = truth.loc[df["source_id"], "inj_ps1_extended"].to_numpy()
    assert ext.any() and np.isnan(df.loc[ext, [f"mag_ps1_{b}" for b in "grizy"]].to_numpy()).all()
    assert rep["match"]["ps1"]["counterpart_rejected"] == ext.sum()
    assert rep["match"]["ps1"]["counterpart_missing_from_table"] == 0


def test_a_bad_astrometric_flag_in_the_table_removes_the_star(sample, tmp_path):
    from ddstars.catalog.photometric_input import TABLES, photometric_input

    paths = {t: sample["paths"][t] for t in TABLES}
    gaia = pd.read_parquet(paths["gaia_source"])
    victim = int(sample["input"]["source_id"].iloc[10])
    gaia.loc[gaia["source_id"] == victim, "visibility_periods_used"] = np.int16(6)
    paths["gaia_source"] = tmp_path / "gaia_source.parquet"
    gaia.to_parquet(paths["gaia_source"], index=False)
    rep = photometric_input(paths, tmp_path / "input.parquet", {})
    out = pd.read_parquet(tmp_path / "input.parquet")
    assert victim not in set(out["source_id"])
    assert len(out) == len(sample["input"]) - 1
    cut = "visibility_periods_used"
    assert rep["removed_by_cut"][cut] == sample["report"]["removed_by_cut"][cut] + 1
