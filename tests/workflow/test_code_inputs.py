"""Code inputs: each rule lists the code its job runs (ddstars.codedeps), so a code change reruns exactly the rules
that import it, and a moved or copied project with the same code reruns nothing.

The rules, their scripts and their code inputs are read from the parsed workflow (Snakemake's API), not from a
list kept here; the imports are compared with what Python really loads.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, jobs, small_config, write_config

from ddstars.codedeps import module_file

pytestmark = pytest.mark.workflow

# Prints {"rules": {name: {"script": path, "code": [...]}}, "figure_modules": {name: module or None}} for the
# workflow parsed with Snakemake's API in a working directory, with config overrides.
DUMP_RULES = r"""
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

snakefile, workdir, overrides = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
with SnakemakeApi(OutputSettings(quiet=set())) as api:
    wf = api.workflow(
        resource_settings=ResourceSettings(),
        config_settings=ConfigSettings(config=overrides),
        snakefile=snakefile,
        workdir=workdir,
    )._workflow
    rules = {
        r.name: {
            "script": str(Path(str(r.basedir)) / r.script) if r.script else None,
            "code": list(r.input.get("code") or []) if r.input.get("code") else None,
        }
        for r in wf.rules
    }
    figures = wf.globals["FIGURES"]
    modules = {n: s.module for n, s in figures.items()}
    inputs = {n: list(s.inputs) for n, s in figures.items()}
print("RULES=" + json.dumps({"rules": rules, "figure_modules": modules, "figure_inputs": inputs}))
"""

# Runs the import statements of a script (module level, as its job does before doing anything), then imports
# the named modules; prints the files loaded after each step.
RUN_IMPORTS = r"""
import ast, importlib, json, sys
from pathlib import Path

script, src = Path(sys.argv[1]), sys.argv[2]
extra, everything = json.loads(sys.argv[3]), json.loads(sys.argv[4])
sys.path[:0] = [str(script.parent), src]
tree = ast.parse(script.read_text())
imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
exec(compile(ast.Module(body=imports, type_ignores=[]), str(script), "exec"), {"__name__": "job"})
for name in extra:
    importlib.import_module(name)


def loaded():
    return sorted({str(Path(m.__file__).resolve()) for m in list(sys.modules.values()) if getattr(m, "__file__", None)})


first = loaded()
for name in everything:
    importlib.import_module(name)
print("LOADED=" + json.dumps([first, loaded()]))
"""


def workflow_rules(project: Path, workdir: Path, overrides: dict | None = None) -> dict:
    """The parsed workflow's rules: {"rules": {name: {"script", "code"}}, "figure_modules": {...}}."""
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    cmd = [sys.executable, "-c", DUMP_RULES, str(project / "Snakefile"), str(workdir), json.dumps(overrides or {})]
    r = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(x for x in r.stdout.splitlines() if x.startswith("RULES="))
    return json.loads(line.removeprefix("RULES="))


def module_name(path: Path, project: Path) -> str | None:
    """The name Python imports ``path`` under (None for a workflow script, which runs as a file)."""
    src, scripts = project / "src", project / "workflow" / "scripts"
    if path.is_relative_to(src):
        parts = path.relative_to(src).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    assert path.parent == scripts, path
    return path.stem if path.stem.startswith("_") else None


def ours(files, project: Path) -> set[Path]:
    """The project's own files among ``files``: the package and the workflow's scripts."""
    roots = (project / "src" / "ddstars", project / "workflow" / "scripts")
    return {Path(f) for f in files if any(Path(f).is_relative_to(r) for r in roots)}


@pytest.fixture(scope="module")
def external_catalog(tmp_path_factory):
    """A catalog path that exists, so that the workflow defines rule import_catalog (only parsed, never read)."""
    path = tmp_path_factory.mktemp("external") / "stars.parquet"
    path.write_bytes(b"")
    return path


def test_every_rule_lists_exactly_the_code_its_job_imports(external_catalog):
    """For every rule (the default config, then a catalog of one's own for import_catalog): its code inputs hold its
    script, and every project file Python loads when the script's imports run (and, for a figure, the module the
    registry names for it, which the script imports by name) is among them; importing every module listed loads
    nothing more: the list is the closure of the real imports, not a guess."""
    project = ROOT.resolve()
    parsed = [
        workflow_rules(project, project),
        workflow_rules(project, project, {"catalog": {"external": str(external_catalog)}}),
    ]
    rules = {**parsed[0]["rules"], **parsed[1]["rules"]}
    modules = parsed[0]["figure_modules"]
    assert {"import_catalog", "build_catalog", "train_model", "validation_report"} <= set(rules)
    scripted = {name: rule for name, rule in rules.items() if rule["script"]}
    assert set(rules) - set(scripted) == {"all"}
    runs: dict[tuple, tuple[set[Path], set[Path]]] = {}
    for name, rule in sorted(scripted.items()):
        assert rule["code"], f"rule {name} lists no code inputs"
        # relative to the working directory (here the repository root): a moved project reruns nothing
        assert not any(Path(f).is_absolute() for f in rule["code"]), (name, rule["code"])
        code = {(project / f).resolve() for f in rule["code"]}
        script = Path(rule["script"]).resolve()
        assert script in code, name
        extra = [modules[name.removeprefix("figure_")]] if name.startswith("figure_") else []
        extra = [m for m in extra if m]
        listed = sorted(filter(None, (module_name(f, project) for f in code)))
        key = (script, tuple(extra), tuple(listed))
        if key not in runs:
            cmd = [sys.executable, "-c", RUN_IMPORTS, str(script), str(project / "src"), json.dumps(extra)]
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(project / "src")}
            r = subprocess.run([*cmd, json.dumps(listed)], capture_output=True, text=True, timeout=300, env=env)
            assert r.returncode == 0, f"{name}: {r.stderr[-3000:]}"
            first, everything = json.loads(next(x for x in r.stdout.splitlines() if x.startswith("LOADED="))[7:])
            runs[key] = ours(first, project), ours(everything, project)
        imported, closure = runs[key]
        assert len(imported) > 3, (name, imported)  # the script's imports did load the package
        assert imported <= code, f"rule {name} misses code it imports: {sorted(map(str, imported - code))}"
        assert closure | {script} == code, f"rule {name}: listed but not imported {sorted(map(str, code - closure))}"


# ---------------------------------------------------------------------------------------- reruns after a change
def run_snakemake(project: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Snakemake as a user runs it: from the project folder (the working directory), its own Snakefile."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(project / "Snakefile"), *args]
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    return subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=timeout, env=env)


CODE_PARTS = ("Snakefile", "workflow", "src", "envs")


def copy_code(dest: Path, *, keep_mtimes: bool = True) -> None:
    """The project's code as a clone has it (a clone gives every file a new modification time)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    copy = shutil.copy2 if keep_mtimes else shutil.copy
    for part in CODE_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=ignore, copy_function=copy)
        else:
            copy(src, dest / part)


@pytest.fixture(scope="module")
def project_run(tmp_path_factory):
    """A copy of the project (code and a 3,000-star config) with a complete run made in it, as from the repository
    root: (project folder, its rules as parsed there)."""
    project = tmp_path_factory.mktemp("project") / "ddstars"
    project.mkdir()
    copy_code(project)
    cfg = small_config(n_stars=3000)
    cfg["catalog"]["offsets"]["min_pairs"] = 10  # a 3000-star sky shares few stars between surveys
    write_config(project, cfg)
    r = run_snakemake(project, "--cores", "2")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return project, workflow_rules(project, project)


def dry_run_after_edit(project: Path, path: Path) -> set[str]:
    """The jobs a dry run plans after a harmless edit of ``path`` (a comment appended); the file is then restored
    with its modification time."""
    text, stat = path.read_text(), path.stat()
    path.write_text(text + "\n# an edit that changes no behaviour\n")
    try:
        r = run_snakemake(project, "-n", "--cores", "1")
    finally:
        path.write_text(text)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert r.returncode == 0, r.stderr[-2000:]
    return jobs(r.stdout)


MODEL_OUTPUTS = {"model", "table", "reddening", "history", "rounds"}  # keys of a figure's inputs made by training
UPSTREAM_OF_TRAINING = ("simulate_", "summarize_simulation", "provision_dustmaps", "clean_", "crossmatch_spectra")
UPSTREAM_OF_TRAINING += (
    "zero_point_offsets",
    "match_photometry",
    "reddening_prior",
    "build_catalog",
    "check_catalog",
)


def test_a_changed_model_module_reruns_training_evaluation_and_the_figures(project_run):
    project, parsed = project_run
    rules = parsed["rules"]
    model_figures = {f"figure_{n}" for n, keys in parsed["figure_inputs"].items() if set(keys) & MODEL_OUTPUTS}
    r = run_snakemake(project, "-n", "--cores", "1")
    assert "Nothing to be done" in r.stdout + r.stderr, r.stdout[-2000:]
    code = {name: set(rule["code"] or []) for name, rule in rules.items()}
    upstream = {name for name in rules if name.startswith(UPSTREAM_OF_TRAINING)}
    upstream_code = set().union(*(code[u] for u in upstream))
    # a module under model/ that training imports and no stage before it does (else those rerun too, rightly)
    model_code = sorted(f for f in code["train_model"] if "/model/" in f)
    assert not set(model_code) & upstream_code, "a stage before training imports the model"
    touched = next(f for f in model_code if f.endswith("model/likelihood.py"))
    # a new modification time alone (same content) reruns nothing: Snakemake compares the recorded checksum
    stat = (project / touched).stat()
    os.utime(project / touched)
    try:
        r = run_snakemake(project, "-n", "--cores", "1")
    finally:
        os.utime(project / touched, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert "Nothing to be done" in r.stdout + r.stderr, r.stdout[-2000:]
    ran = dry_run_after_edit(project, project / touched)
    must = {"train_model", "evaluate_test", "validation_summary", "validation_report", "all"} | model_figures
    assert must <= ran, (touched, must - ran)
    assert not ran & upstream, (touched, ran & upstream)
    # figures that read no model output rerun exactly when they import the module
    for name in {f"figure_{n}" for n in parsed["figure_modules"]} - model_figures:
        assert (name in ran) == (touched in code[name]), (touched, name)


def test_a_changed_figure_module_reruns_only_its_figures(project_run):
    project, parsed = project_run
    modules = parsed["figure_modules"]
    assert all(modules.values()), modules
    # the figure whose module draws the fewest figures
    name = min(modules, key=lambda n: (sum(m == modules[n] for m in modules.values()), n))
    drawn = {f"figure_{n}" for n, m in modules.items() if m == modules[name]}
    path = module_file(modules[name], project / "src")
    assert str(path.relative_to(project)) in parsed["rules"][f"figure_{name}"]["code"]
    ran = dry_run_after_edit(project, path)
    assert ran == drawn | {"validation_report", "all"}, (path, ran)


def test_a_moved_or_cloned_project_with_its_results_reruns_nothing(project_run, tmp_path):
    """The project folder copied elsewhere (modification times kept, as mv, cp -a or rsync -a do) plans no job;
    a fresh clone's code (new modification times) with the results copied in plans none either once Snakemake's
    `code` trigger, which compares a script's modification time only, is left out: the scripts are code inputs
    too, compared by content."""
    project, _ = project_run
    moved = tmp_path / "elsewhere" / "ddstars"
    shutil.copytree(project, moved, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    r = run_snakemake(moved, "-n", "--cores", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Nothing to be done" in r.stdout + r.stderr, r.stdout[-3000:]

    clone = tmp_path / "clone" / "ddstars"
    clone.mkdir(parents=True)
    time.sleep(0.01)
    copy_code(clone, keep_mtimes=False)  # newer than every result
    for part in ("config", "resources", "results", ".snakemake"):
        shutil.copytree(project / part, clone / part, symlinks=True)
    newest_result = max(p.stat().st_mtime for p in (clone / "results").rglob("*") if p.is_file())
    assert (clone / "src" / "ddstars" / "io.py").stat().st_mtime > newest_result
    triggers = ("--rerun-triggers", "mtime", "params", "input", "software-env")
    r = run_snakemake(clone, "-n", "--cores", "1", *triggers)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Nothing to be done" in r.stdout + r.stderr, r.stdout[-3000:]
    # without the `code` trigger a changed script still reruns its rule: it is among the rule's code inputs
    script = clone / "workflow" / "scripts" / "validation_report.py"
    script.write_text(script.read_text() + "\n# an edit that changes no behaviour\n")
    r = run_snakemake(clone, "-n", "--cores", "1", *triggers)
    assert r.returncode == 0, r.stderr[-2000:]
    assert jobs(r.stdout) == {"validation_report", "all"}
