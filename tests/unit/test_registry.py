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


RELEASES = list(registry.RELEASES.values())


def test_every_registry_table_is_described_and_queried_once():
    """Every table of every release: one column description, one query spec with the registry's service and
    service table, upstream inputs (those of the configured release) naming columns their tables have."""
    assert list(archives.TABLES) == list(registry.ALL_TABLES)
    assert list(services.ALL_SPECS) == list(registry.ALL_TABLES)
    assert set(services.SPECS) == set(registry.TABLES)  # the paper's release
    services_known = services.remote_config({})["services"]
    for rel in RELEASES:
        config = {"archives": {"release": rel.name}}
        for name, entry in rel.tables.items():
            shared = registry.ALL_TABLES[name]  # a table two releases share is one service table, one service
            assert (shared.service, shared.service_table) == (entry.service, entry.service_table), (rel.name, name)
            spec = services.spec_for(name, config)
            assert (spec.service, spec.remote_table, spec.upstream) == (
                entry.service,
                entry.service_table,
                entry.upstream,
            ), (rel.name, name)
            assert (services.ALL_SPECS[name].service, services.ALL_SPECS[name].remote_table) == (
                entry.service,
                entry.service_table,
            ), (rel.name, name)
            assert (archives.TABLES[name].archive, archives.TABLES[name].service_table) == (
                entry.archive,
                entry.service_table,
            ), (rel.name, name)
            for up, column in entry.upstream:  # an upstream input: a column of a table of the same release
                assert up in rel.tables, (rel.name, name, up)
                assert column in archives.TABLES[up].columns, (rel.name, name, up, column)
            if entry.role == "link":  # the linked survey's id is a column of the link table
                assert entry.link_key in archives.TABLES[name].columns, (rel.name, name, entry.link_key)
            assert spec.service in services_known, (rel.name, name)
            # every archive column has a remote name in the spec (joined columns included)
            assert set(archives.TABLES[name].columns) <= set(spec.columns.values()), (rel.name, name)
            assert set(spec.joined_columns) <= set(spec.columns), (rel.name, name)


@pytest.mark.parametrize("rel", RELEASES, ids=lambda r: r.name)
def test_query_order_puts_every_table_after_its_upstream_tables(rel):
    order = rel.query_order()
    assert sorted(order) == sorted(rel.tables)
    for t in order:
        for up in rel.tables[t].upstream_tables:
            assert order.index(up) < order.index(t), (rel.name, up, t)
    if rel.name == registry.DEFAULT_RELEASE:
        assert list(services.SPECS) == list(order)


@pytest.mark.parametrize("rel", RELEASES, ids=lambda r: r.name)
def test_surveys_tables_and_bands_agree(rel):
    spectro, phot, surveys = rel.spectroscopic(), rel.photometric(), rel.surveys
    assert set(spectro) | set(phot) == set(surveys)
    assert not set(spectro) & set(phot)
    # every band belongs to exactly one photometric survey; spectroscopic surveys have none
    owned = [b for s in phot for b in surveys[s].bands]
    assert sorted(owned) == sorted(b.name for b in BANDS)
    assert all(surveys[s].bands == () for s in spectro)
    # each survey's table is a survey table feeding it; each link table feeds a photometric survey
    for s, t in rel.survey_tables().items():
        assert rel.tables[t].survey == s and rel.tables[t].role == "survey"
    for s, t in rel.links().items():
        assert s in phot and rel.tables[t].role == "link"
    assert set(rel.survey_tables().values()) | set(rel.links().values()) == set(rel.tables)
    # the surveys are the same in every release (their tables differ)
    assert list(surveys) == list(registry.SURVEYS)


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
    with pytest.raises(KeyError, match="unknown data release 'gaia_dr9'; known: dr2, dr3"):
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
    tables = set(registry.ALL_TABLES) - {"unwise"}  # every release's; "unwise" is also the survey's name
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
