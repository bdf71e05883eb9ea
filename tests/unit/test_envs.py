"""The per-stage conda environments (envs/*.yaml): each pins, exactly, a version of a package pyproject.toml
needs that satisfies its requirement there, the same version in every environment."""

from __future__ import annotations

import re
import tomllib

import yaml
from conftest import ROOT
from packaging.requirements import Requirement
from packaging.version import Version

WORKFLOW_ONLY = {"snakemake", "jsonschema"}  # the driver, not the jobs, needs these
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\d[\w.]*)$")


def _name(name: str) -> str:
    return name.lower().replace("_", "-")


def _envs() -> dict[str, dict[str, str]]:
    """Per env file: package -> the exact version pinned (pip section; the conda section holds Python and pip)."""
    out = {}
    for path in sorted((ROOT / "envs").glob("*.yaml")):
        deps: dict[str, str] = {}
        for d in yaml.safe_load(path.read_text())["dependencies"]:
            if isinstance(d, dict):
                for item in d["pip"]:
                    m = PIN.match(item)
                    assert m, f"{path.name}: {item!r} is not pinned exactly (name==version)"
                    deps[_name(m.group(1))] = m.group(2)
            else:
                assert re.fullmatch(r"python=3\.\d+|pip", d), f"{path.name}: {d!r}; packages go under pip:"
        out[path.name] = deps
    return out


def test_every_env_pins_project_dependencies_at_versions_pyproject_allows():
    project = {
        _name(r.name): r
        for r in map(Requirement, tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    }
    envs = _envs()
    assert {"simulate.yaml", "catalog.yaml", "training.yaml", "validation.yaml"} <= set(envs)
    pins: dict[str, set[str]] = {}
    for env, deps in envs.items():
        for name, version in deps.items():
            assert name in project, f"{env}: {name} is not in pyproject.toml"
            assert Version(version) in project[name].specifier, f"{env}: {name}=={version} vs {project[name]}"
            pins.setdefault(name, set()).add(version)
    differing = {n: sorted(v) for n, v in pins.items() if len(v) > 1}
    assert not differing, f"packages pinned at different versions in envs/*.yaml: {differing}"
    missing = set(project) - set(pins) - WORKFLOW_ONLY
    assert not missing, f"pyproject.toml dependencies in no envs/*.yaml: {sorted(missing)}"


def test_every_rule_names_an_environment_that_exists():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / env).resolve().is_file(), f"{smk.name}: {env}"


def test_every_script_imports_the_package_of_this_checkout():
    """The environments do not install ddstars: each script run by a rule imports _bootstrap before ddstars."""
    for script in (ROOT / "workflow" / "scripts").glob("*.py"):
        if script.name.startswith("_"):
            continue
        lines = script.read_text().splitlines()
        boot = [i for i, line in enumerate(lines) if line.startswith("import _bootstrap")]
        ours = [i for i, line in enumerate(lines) if re.match(r"\s*(from|import) ddstars\b", line)]
        assert boot and (not ours or boot[0] < ours[0]), f"{script.name}: ddstars imported before _bootstrap"
