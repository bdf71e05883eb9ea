"""The config checked before any job (ddstars.configcheck) and the runner's YAML check: one line per problem."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import ROOT, default_config

from ddstars.configcheck import check_config
from ddstars.errors import ConfigError
from ddstars.runner import config_error

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def test_the_shipped_config_passes():
    check_config(default_config(), SCHEMA)


def test_every_problem_is_one_line_naming_its_key():
    cfg = copy.deepcopy(default_config())
    cfg["trian"] = {"epochs": 3}
    cfg["train"]["epoch"] = 3
    cfg["train"]["batch_size"] = 0
    with pytest.raises(ConfigError) as err:
        check_config(cfg, SCHEMA)
    lines = [line.strip() for line in str(err.value).splitlines()]
    assert lines[0] == "the config has 3 problem(s):"
    assert lines[1] == "train.batch_size: 0 is less than the minimum of 1"
    assert lines[2].startswith("train.epoch: unknown key (did you mean 'epochs'?); allowed keys of train: adam,")
    assert lines[3].startswith(
        "trian: unknown key (did you mean 'train'?); allowed keys at the top level: archives, backend,"
    )
    assert len(lines) == 4  # no schema dump


def test_what_a_schema_cannot_say():
    cfg = copy.deepcopy(default_config())
    cfg["catalog"]["split"]["test"] = 0.3
    cfg["validation"]["colours"] = [["gaia_g", "ps1_q"]]
    with pytest.raises(ConfigError) as err:
        check_config(cfg, SCHEMA)
    text = str(err.value)
    assert "catalog.split: train + validation + test must be 1, got 1.2" in text
    assert "validation.colours[0]: unknown band 'ps1_q'" in text


def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("train:\n  epochs: [25\n  batch_size: 1024\n")
    msg = config_error(bad)
    assert msg.startswith(f"{bad}: line ") and "column" in msg and "not valid YAML" in msg
    assert config_error(ROOT / "config" / "config.yaml") is None


def test_missing_config_paths_are_named(tmp_path, monkeypatch):
    from ddstars.configcheck import path_problems

    def check_paths(cfg):
        problems = path_problems(cfg)
        if problems:
            raise ConfigError("\n".join(["the config has problems:", *problems]))

    monkeypatch.chdir(tmp_path)
    cfg = copy.deepcopy(default_config())
    check_paths(cfg)  # the simulated maps are made by a rule: nothing needs to exist yet
    cfg["catalog"]["external"] = "mine.parquet"
    cfg["dustmaps"]["bayestar_file"] = "maps/bayestar2019.h5"
    cfg["validation"]["compare"] = {"label": "x", "model": "published"}
    with pytest.raises(ConfigError) as err:
        check_paths(cfg)
    lines = str(err.value).splitlines()[1:]
    assert len(lines) == 2  # "published" is the vendored release, not a path
    assert lines[0].strip().startswith("dustmaps.bayestar_file: maps/bayestar2019.h5 does not exist")
    assert lines[1].strip().startswith("catalog.external: mine.parquet does not exist")
    (tmp_path / "mine.parquet").touch()
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "bayestar2019.h5").touch()
    check_paths(cfg)


def _problems(cfg) -> list[str]:
    with pytest.raises(ConfigError) as err:
        check_config(cfg, SCHEMA)
    lines = str(err.value).splitlines()
    assert lines[0] == f"the config has {len(lines) - 1} problem(s):"
    return [line.strip() for line in lines[1:]]


@pytest.mark.parametrize(
    ("edit", "line"),
    [
        (
            lambda c: c["catalog"]["split"].update(train=0.8),
            "catalog.split: train + validation + test must be 1, got 1.1",
        ),
        (
            lambda c: c["validation"].update(colours=[["gaia_g", "ps1_r"], ["ps1_g", "gaia_q"]]),
            "validation.colours[1]: unknown band 'gaia_q'; valid: gaia_g, gaia_bp,",
        ),
        (
            lambda c: c["simulate"]["population"].update(teff_range_k=[8500.0, 3800.0]),
            "simulate.population.teff_range_k: the range [8500, 3800] is reversed; give it as [low, high]",
        ),
        (
            lambda c: c["catalog"].update(mag_error_max=0.015),
            "catalog.mag_error_max: 0.015 is not above catalog.mag_error_floor (0.02);",
        ),
        (
            lambda c: c["validation"].update(compare={"label": "old", "model": "nowhere/model"}),
            "validation.compare.model: nowhere/model does not exist",
        ),
        (
            lambda c: c["train"]["chi2_cut"].update(rounds=25),
            "train.chi2_cut.rounds: 25 is more than the 19 rounds that apply the cut (train.n_rounds: 20",
        ),
    ],
    ids=[
        "split-sum",
        "unknown-colour-band",
        "reversed-teff-range",
        "mag-error-max-below-floor",
        "missing-compare-model",
        "chi2-rounds-beyond-n-rounds",
    ],
)
def test_each_cross_field_problem_is_one_line_naming_its_key(edit, line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the compare model is looked for relative to the working folder
    cfg = copy.deepcopy(default_config())
    edit(cfg)
    (problem,) = _problems(cfg)
    assert problem.startswith(line), problem


def test_chi2_rounds_may_end_in_the_last_round_and_one_round_has_no_cut():
    cfg = copy.deepcopy(default_config())
    cfg["train"]["chi2_cut"]["rounds"] = cfg["train"]["n_rounds"] - 1  # rounds 1 .. n_rounds - 1 apply the cut
    check_config(cfg, SCHEMA)
    cfg["train"]["n_rounds"] = 1  # round 0 only: no cut to reach
    check_config(cfg, SCHEMA)


def test_every_range_of_the_config_is_checked_for_order():
    """Each [lo, hi] the schema calls a range (and each figure option named *_range or in `ranges`), reversed
    alone, is the one problem reported, under its own key."""
    from ddstars.configcheck import _ranges

    cfg = copy.deepcopy(default_config())
    cfg["validation"]["figures"] = {
        "labels": {"teff_range": [3000.0, 9000.0]},
        "residual_scores": {"ranges": {"logg": [1.0, 5.0]}},
    }
    cfg.setdefault("remote", {})["tables"] = {"galah_dr2": {"range": [0.0, 360.0]}}
    schema = yaml.safe_load(SCHEMA.read_text())
    found = [path for path, _ in _ranges(cfg, schema, schema, [])]
    keys = {".".join(map(str, p)) for p in found}
    surveys = [
        f"simulate.surveys.{s}.{k}" for s in ("lamost", "apogee", "galah") for k in ("dec_range_deg", "mag_range")
    ]
    assert keys == {
        *(f"simulate.galaxy.{c}.age_gyr" for c in ("thin_disk", "thick_disk", "halo")),  # by the schema, not by name
        *surveys,
        *(f"simulate.population.{k}" for k in ("teff_range_k", "logg_range", "feh_range")),
        "simulate.selection.gaia_g_range",
        "simulate.selection.distance_range_kpc",
        "simulate.astrometry.neighbour_separation_arcsec",  # by the schema
        "simulate.dust.wavelength_range_kpc",
        "simulate.dust.bayestar_dm_range",
        "validation.figures.labels.teff_range",  # figure options: by name
        "validation.figures.residual_scores.ranges.logg",
        "remote.tables.galah_dr2.range",
    }
    check_config(cfg, SCHEMA)
    for path in found:
        bad = copy.deepcopy(cfg)
        node = bad
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = node[path[-1]][::-1]
        (problem,) = _problems(bad)
        dotted = path[0] + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[1:])
        assert problem.startswith(f"{dotted}: the range ["), problem
        assert "is reversed" in problem


def test_more_cross_field_problems():
    cfg = copy.deepcopy(default_config())
    cfg["catalog"]["label_sigma_max"] = [200.0, 0.05, 0.5]  # log g: not above its floor 0.05
    cfg["validation"]["compare"] = {"label": "paper", "model": "published.h5"}
    problems = _problems(cfg)
    assert problems[0].startswith("catalog.label_sigma_max[1]: 0.05 is not above catalog.label_floor[1] (0.05)")
    assert problems[1].startswith("validation.compare.normalisation: required with the released-layout .h5 model")
    assert problems[2] == "validation.compare.model: published.h5 does not exist"


def test_a_compare_model_folder_must_hold_a_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "model.keras").touch()
    cfg = copy.deepcopy(default_config())
    cfg["validation"]["compare"] = {"label": "old", "model": "old"}
    assert _problems(cfg) == [
        "validation.compare.model: old is a folder without normalisation.json (a model of this project: "
        "results/model/ of another run)"
    ]
    (tmp_path / "old" / "normalisation.json").touch()
    check_config(cfg, SCHEMA)


def test_schema_and_cross_field_problems_are_one_list():
    cfg = copy.deepcopy(default_config())
    cfg["backend"] = "simulatd"
    cfg["train"]["chi2_cut"]["rounds"] = 30
    cfg["catalog"]["split"]["seed"] = "seven"
    cfg["catalog"]["split"]["test"] = 0.2
    problems = _problems(cfg)
    assert len(problems) == 4
    assert "backend: 'simulatd' is not one of 'simulated', 'remote' (did you mean 'simulated'?)" in problems
    assert "catalog.split.seed: expected integer, got 'seven' (str)" in problems
    assert any(p.startswith("catalog.split: train + validation + test must be 1, got 1.1") for p in problems)
    assert any(p.startswith("train.chi2_cut.rounds: 30 is more than") for p in problems)


@pytest.mark.parametrize(
    ("edit", "line"),
    [
        (lambda c: c["train"].update(normalisation="al"), "train.normalisation: 'al' is not one of 'catalog', 'train'"),
        (lambda c: c["validation"].update(compare=3), "validation.compare: expected object or null, got 3 (int)"),
        (lambda c: c["train"].update(learning_rate=0), "train.learning_rate: must be greater than 0, got 0"),
        (
            lambda c: c["catalog"].update(healpix_order=20),
            "catalog.healpix_order: 20 is greater than the maximum of 10",
        ),
        (lambda c: c["simulate"]["galaxy"].pop("r_sun_kpc"), "simulate.galaxy.r_sun_kpc: required key is missing"),
        (
            lambda c: c["simulate"]["population"].update(teff_range_k=[1.0]),
            "simulate.population.teff_range_k: expected exactly 2 item(s), got 1: [1.0]",
        ),
        (
            lambda c: c["catalog"].update(label_floor=[10.0, "0.05", 0.03]),
            "catalog.label_floor[1]: expected number, got '0.05' (str)",
        ),
        (
            lambda c: c["validation"].update(figures={"labls": {}}),
            "validation.figures.labls: unknown key (did you mean 'labels'?); allowed keys of validation.figures: chi2, "
            "cmd, cmd_labels,",
        ),
    ],
    ids=["enum", "type", "exclusiveMinimum", "maximum", "required", "minItems", "item-type", "patternProperties"],
)
def test_schema_messages_lead_with_the_key_and_what_is_allowed(edit, line):
    cfg = copy.deepcopy(default_config())
    edit(cfg)
    (problem,) = _problems(cfg)
    assert problem.startswith(line), problem
    assert "{" not in problem  # no schema dump


def test_one_of_lists_each_allowed_form(tmp_path):
    schema = tmp_path / "schema.yaml"
    schema.write_text(
        "type: object\nproperties:\n  clip:\n    oneOf:\n      - {type: 'null'}\n"
        "      - {type: number, minimum: 1}\n      - {enum: [auto]}\n"
    )
    with pytest.raises(ConfigError) as err:
        check_config({"clip": 0.5}, schema)
    assert str(err.value).splitlines()[1].strip() == (
        "clip: 0.5 matches none of the allowed forms: expected null, got 0.5 (float); "
        "or 0.5 is less than the minimum of 1; or 0.5 is not one of 'auto'"
    )


def test_project_errors_are_value_errors():
    """Code and tests that catch ValueError keep catching the project's errors for bad values."""
    from ddstars.errors import DataError, DDStarsError, SchemaError

    for cls in (ConfigError, SchemaError, DataError):
        assert issubclass(cls, ValueError) and issubclass(cls, DDStarsError)


@pytest.mark.parametrize(
    ("section", "given", "line"),
    [
        ("catalog", {"split": {"train": 0.8}}, "catalog.split: train + validation + test must be 1, got 1.1"),
        ("catalog", {"mag_error_max": 0.01}, "catalog.mag_error_max: 0.01 is not above catalog.mag_error_floor (0.02)"),
        ("train", {"n_rounds": 5}, "train.chi2_cut.rounds: 14 is more than the 4 rounds that apply the cut"),
    ],
)
def test_a_value_given_alone_is_checked_against_the_defaults_of_its_partners(section, given, line):
    """A config that writes one side of a cross-field constraint and leaves the other to its schema default is
    checked as the run will see it (the defaults filled in), not let through."""
    cfg = copy.deepcopy(default_config())
    cfg[section] = given  # every other key of the section at its schema default
    assert any(p.startswith(line) for p in _problems(cfg)), _problems(cfg)


def test_the_release_is_one_of_the_registrys_and_the_dr2_era_sample_is_refused_with_another():
    from ddstars import registry

    cfg = copy.deepcopy(default_config())
    cfg["archives"] = {"release": "dr9"}
    with pytest.raises(ConfigError, match=r"archives\.release: 'dr9' is not one of 'dr2', 'dr3'"):
        check_config(cfg, SCHEMA)
    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["properties"]["archives"]["properties"]["release"]["enum"] == list(registry.RELEASES)
    cfg["archives"] = {"release": "dr3"}
    check_config(cfg, SCHEMA)
    cfg["inference"]["input"] = "photometric"
    with pytest.raises(ConfigError, match=r"inference\.input: 'photometric' .* archives\.release 'dr3'"):
        check_config(cfg, SCHEMA)
