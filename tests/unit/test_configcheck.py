"""The config checked before any job (ddstars.configcheck) and the runner's YAML check: one line per problem."""

from __future__ import annotations

import copy

import pytest
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
    lines = str(err.value).splitlines()
    assert lines[0] == "the config has 3 problem(s):"
    assert "(top level): Additional properties are not allowed ('trian' was unexpected)" in lines[1]
    assert "train: Additional properties are not allowed ('epoch' was unexpected)" in lines[2]
    assert "train.batch_size: 0 is less than the minimum of 1" in lines[3]
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
    from ddstars.configcheck import check_paths

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
