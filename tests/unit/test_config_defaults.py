"""The config's defaults live in one place: the schema's ``default:`` values (ddstars.config)."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from ddstars import config as dconfig

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SHIPPED = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def _leaves(d, prefix=()):
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from _leaves(v, (*prefix, k))
        else:
            yield (*prefix, k), v


def _schema_node(path):
    node = dconfig.schema()
    for key in path:
        node = dconfig.resolve(node.get("properties", {}).get(key, {}))
    return node


def test_schema_defaults_and_the_shipped_config_agree_where_both_exist():
    compared = 0
    for path, value in _leaves(SHIPPED):
        node = _schema_node(path)
        if "default" in node:
            assert node["default"] == value, f"{'.'.join(path)}: schema default {node['default']!r}, config {value!r}"
            compared += 1
    assert compared >= 70  # every key of train and catalog at least


@pytest.mark.parametrize("section", ["train", "catalog", "remote"])
def test_every_key_of_the_python_read_sections_has_a_default(section):
    """The sections Python code reads with defaults: every key of the shipped config (or, for remote, of the
    schema) is filled by with_defaults alone."""
    filled = dconfig.defaults(section)
    if section in SHIPPED:
        assert filled == SHIPPED[section]
    else:
        assert set(filled) == set(_schema_node((section,))["properties"])


def test_with_defaults_fills_absent_keys_and_keeps_given_ones():
    given = {"adam": {"beta_1": 0.5}, "seed": 11}
    o = dconfig.with_defaults(given, "train")
    assert o["seed"] == 11 and o["adam"]["beta_1"] == 0.5
    assert o["adam"]["beta_2"] == SHIPPED["train"]["adam"]["beta_2"]  # a nested object filled key by key
    assert o["chi2_cut"] == SHIPPED["train"]["chi2_cut"]  # an absent object filled whole
    assert given == {"adam": {"beta_1": 0.5}, "seed": 11}  # the caller's mapping is not changed
    with pytest.raises(KeyError, match="train.nothing"):
        dconfig.defaults("train.nothing")


def test_snakemake_validation_fills_the_same_defaults():
    """The workflow's validate(set_default=True) and with_defaults give the same config."""
    partial = copy.deepcopy(SHIPPED)
    del partial["train"]["chi2_cut"], partial["train"]["seed"], partial["catalog"]["reddening"]["n_samples"]
    del partial["catalog"]["offsets"], partial["validation"]
    filled = copy.deepcopy(partial)
    validate(filled, str(SCHEMA), set_default=True)
    assert filled == dconfig.with_defaults(partial)
    for section in ("train", "catalog", "validation"):
        assert filled[section] == SHIPPED[section], section


def _config_keys():
    keys = set()
    for section in ("train", "catalog", "remote"):
        for path, _ in _leaves(dconfig.defaults(section)):
            keys.update(path)
    return keys


def test_no_module_keeps_its_own_copy_of_a_default():
    """No ``DEFAULTS``-like dict of config values and no ``options.get("<config key>", <literal>)`` in src/."""
    keys = _config_keys()
    problems = []
    for path in sorted((ROOT / "src" / "ddstars").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value in keys
                and isinstance(node.args[1], ast.Constant | ast.Tuple | ast.List)
                and not (isinstance(node.args[1], ast.Constant) and node.args[1].value is None)
            ):
                problems.append(f"{rel}:{node.lineno}: .get({node.args[0].value!r}, <literal>)")
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                literal_keys = {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
                if any("DEFAULT" in n for n in names) and len(literal_keys & keys) >= 2:
                    problems.append(f"{rel}:{node.lineno}: {names[0]} repeats config defaults")
    assert not problems, "\n".join(problems)


def test_archive_query_overrides_have_one_source_of_built_in_values():
    """remote.tables.<table> holds overrides only: the schema gives no default for any key (the built-in query is
    ddstars.remote.services.ALL_SPECS, the one copy), and a config overriding one key keeps the others built in, also
    after the workflow's validation filled the config's defaults."""
    from ddstars.remote.services import ALL_SPECS, SPECS, spec_for

    tables = _schema_node(("remote", "tables"))["properties"]
    assert set(tables) == set(ALL_SPECS)  # every table of every release
    with_default = [f"{t}.{k}" for t, node in tables.items() for k, v in node["properties"].items() if "default" in v]
    assert with_default == []
    cfg = copy.deepcopy(SHIPPED)
    cfg.setdefault("remote", {})["tables"] = {"galah_dr2": {"n_chunks": 12}}
    validate(cfg, str(SCHEMA), set_default=True)
    assert cfg["remote"]["tables"] == {"galah_dr2": {"n_chunks": 12}}
    spec = spec_for("galah_dr2", cfg)
    assert spec.n_chunks == 12
    assert (spec.service, spec.remote_table, spec.mode) == (
        SPECS["galah_dr2"].service,
        SPECS["galah_dr2"].remote_table,
        SPECS["galah_dr2"].mode,
    )


def test_get_reads_a_value_or_its_schema_default():
    assert dconfig.get({"backend": "remote"}, "backend") == "remote"
    assert dconfig.get({}, "backend") == _schema_node(("backend",))["default"] == SHIPPED["backend"]
    assert dconfig.get({"train": {"seed": 3}}, "train.seed") == 3
    assert dconfig.get({"train": {}}, "train.seed") == SHIPPED["train"]["seed"]
