"""The per-stage conda environments (envs/*.yaml) name the packages pyproject.toml needs, at compatible versions."""

from __future__ import annotations

import re
import tomllib

import yaml
from conftest import ROOT

SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*(.*)$")
WORKFLOW_ONLY = {"snakemake", "jsonschema"}  # the driver, not the jobs, needs these


def _parse(spec: str) -> tuple[str, str]:
    name, version = SPEC.match(spec).groups()
    return name.lower().replace("_", "-"), version.strip().replace(" ", "")


def _envs() -> dict[str, dict[str, str]]:
    out = {}
    for path in sorted((ROOT / "envs").glob("*.yaml")):
        deps: dict[str, str] = {}
        for d in yaml.safe_load(path.read_text())["dependencies"]:
            for item in d["pip"] if isinstance(d, dict) else [d]:
                name, version = _parse(item.replace("=", "==", 1) if re.match(r"^[\w\-.]+=\d", item) else item)
                deps[name] = version
        out[path.name] = deps
    return out


def _lower_bound(version: str) -> str | None:
    m = re.search(r">=([\d.]+)", version)
    return m.group(1) if m else None


def test_every_env_package_is_a_project_dependency_with_the_same_lower_bound():
    project = dict(_parse(d) for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    envs = _envs()
    assert {"simulate.yaml", "catalog.yaml", "training.yaml"} <= set(envs)
    for env, deps in envs.items():
        for name, version in deps.items():
            if name in {"python", "pip"}:
                continue
            assert name in project, f"{env}: {name} is not in pyproject.toml"
            assert _lower_bound(version) == _lower_bound(project[name]), f"{env}: {name} {version} vs {project[name]}"
    used = set().union(*envs.values())
    missing = set(project) - used - WORKFLOW_ONLY
    assert not missing, f"pyproject.toml dependencies in no envs/*.yaml: {sorted(missing)}"


def test_every_rule_names_an_environment_that_exists():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / env).resolve().is_file(), f"{smk.name}: {env}"
