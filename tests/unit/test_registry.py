"""The registry of archive tables and surveys (ddstars.registry) is the one list everything else reads."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ddstars import archives, registry
from ddstars.bands import BANDS
from ddstars.remote import services

ROOT = Path(__file__).resolve().parents[2]


def test_registry_imports_only_the_standard_library_and_bands():
    """The Snakefile imports it while parsing: no numpy, pandas or pyarrow behind it."""
    code = (
        "import sys; import ddstars.registry; "
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'yaml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_registry_table_is_described_and_queried_once():
    assert list(archives.TABLES) == list(registry.TABLES)
    assert set(services.SPECS) == set(registry.TABLES)
    for name, entry in registry.TABLES.items():
        spec = services.SPECS[name]
        assert (spec.service, spec.remote_table, spec.upstream) == (entry.service, entry.service_table, entry.upstream)
        assert (archives.TABLES[name].archive, archives.TABLES[name].service_table) == (
            entry.archive,
            entry.service_table,
        )
        for up, column in entry.upstream:  # an upstream input names a column its table has
            assert column in archives.TABLES[up].columns, (name, up, column)
        assert spec.service in services.remote_config({})["services"], name


def test_query_order_puts_every_table_after_its_upstream_tables():
    order = registry.release().query_order()
    assert sorted(order) == sorted(registry.TABLES)
    for t in order:
        for up in registry.TABLES[t].upstream_tables:
            assert order.index(up) < order.index(t), (up, t)
    assert list(services.SPECS) == list(order)


def test_surveys_tables_and_bands_agree():
    assert set(registry.SPECTROSCOPIC) | set(registry.PHOTOMETRIC) == set(registry.SURVEYS)
    assert not set(registry.SPECTROSCOPIC) & set(registry.PHOTOMETRIC)
    # every band belongs to exactly one photometric survey; spectroscopic surveys have none
    owned = [b for s in registry.PHOTOMETRIC for b in registry.SURVEYS[s].bands]
    assert sorted(owned) == sorted(b.name for b in BANDS)
    assert all(registry.SURVEYS[s].bands == () for s in registry.SPECTROSCOPIC)
    # each survey's table is a survey table feeding it; each link table feeds a photometric survey
    for s, t in registry.SURVEY_TABLES.items():
        assert registry.TABLES[t].survey == s and registry.TABLES[t].role == "survey"
    for s, t in registry.LINKS.items():
        assert s in registry.PHOTOMETRIC and registry.TABLES[t].role == "link"
    assert set(registry.SURVEY_TABLES.values()) | set(registry.LINKS.values()) == set(registry.TABLES)


def test_table1_rows_follow_the_paper():
    t1 = registry.paper_table1()
    assert list(t1)[:3] == ["lamost", "galah", "apogee"]  # the paper's row order
    assert sum(t1[s] for s in registry.SPECTROSCOPIC) == registry.PAPER_TABLE1_N
    assert list(t1)[4:] == [b.name for b in BANDS]


def test_a_broken_release_is_refused():
    import dataclasses

    t = registry.TABLES["gaia_source"]
    gaia = {"gaia": registry.SURVEYS["gaia"]}
    with pytest.raises(ValueError, match="needs unknown table 'nowhere'"):
        registry.Release("x", "", {t.name: dataclasses.replace(t, upstream=(("nowhere", "ra"),))}, gaia)
    with pytest.raises(ValueError, match="feeds unknown survey 'gaia'"):
        registry.Release("x", "", {t.name: dataclasses.replace(t, upstream=())}, {})
    with pytest.raises(KeyError, match="gaia_dr2"):
        registry.release("gaia_dr9")


def test_yaml_schemas_list_the_registry_surveys():
    """The schemas are YAML and cannot import the registry: they must agree with it."""
    cat = yaml.safe_load((ROOT / "workflow/schemas/catalog.schema.yaml").read_text())["columns"]
    by_name = {c["name"]: c for c in cat}
    assert by_name["survey"]["enum"] == list(registry.SPECTROSCOPIC)
    assert by_name["n_surveys"]["maximum"] == len(registry.SPECTROSCOPIC)
    assert sorted(n[3:] for n in by_name if n.startswith("in_")) == sorted(registry.SPECTROSCOPIC)
    cfg = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    sim_surveys = cfg["properties"]["simulate"]["properties"]["surveys"]
    assert set(sim_surveys["required"]) - {"overlap"} == set(registry.SPECTROSCOPIC)


# Files allowed to spell archive table names: the registry, the per-table column descriptions and query specs.
_TABLE_HOMES = {"src/ddstars/registry.py", "src/ddstars/archives.py", "src/ddstars/remote/services.py"}


def _strings(path: Path) -> tuple[list[str], list[list[str]]]:
    """The string constants of a Python file (docstrings left out) and its tuples/lists/sets of strings."""
    tree = ast.parse(path.read_text())
    docs = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    consts = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]
    seqs = [
        [e.value for e in n.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        for n in ast.walk(tree)
        if isinstance(n, ast.Tuple | ast.List | ast.Set)
    ]
    return consts, seqs


def test_no_module_keeps_its_own_list_of_tables_or_surveys():
    """Archive table names appear only where each table is described; no module lists three or more surveys."""
    tables = set(registry.TABLES) - {"unwise"}  # "unwise" is also the survey's name
    problems = []
    for path in sorted([*ROOT.glob("src/ddstars/**/*.py"), *ROOT.glob("workflow/scripts/*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        consts, seqs = _strings(path)
        if rel not in _TABLE_HOMES:
            problems += [f"{rel}: archive table {t!r}" for t in sorted(tables & set(consts))]
        if rel != "src/ddstars/registry.py":
            problems += [f"{rel}: a list of surveys {q}" for q in seqs if len(set(q) & set(registry.SURVEYS)) >= 3]
    for path in sorted(ROOT.glob("workflow/**/*.smk")):
        text = path.read_text()
        problems += [f"{path.name}: archive table {t!r}" for t in sorted(tables) if f'"{t}"' in text]
        names = "|".join(registry.SURVEYS)
        if re.search(rf'[\[(]\s*"({names})"\s*,\s*"({names})"\s*,\s*"({names})"', text):
            problems.append(f"{path.name}: a list of surveys")
    assert not problems, "\n".join(problems)


def test_the_registry_module_parses_without_running_the_package():
    ast.parse((ROOT / "src/ddstars/registry.py").read_text())  # a plain module the Snakefile can import
