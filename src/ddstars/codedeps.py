"""The package source files a workflow script can execute: its static import closure.

Each rule lists these files as its ``code`` inputs (``code_inputs`` in ``workflow/rules/common.smk``), so a
change to any module a job imports reruns that job, and nothing else does. The closure is read from the source
with :mod:`ast`, never by importing (parsing the Snakefile stays light):

- ``import ddstars.a.b``, ``from ddstars.a import b`` (``b`` a submodule or a name), relative imports inside
  the package, and imports inside functions (a lazy import is still a dependency);
- every package ``__init__.py`` on the way (Python runs them on import);
- a script's local helpers: ``import _bootstrap`` finds ``_bootstrap.py`` beside the script, as Python does
  (Snakemake puts the script's folder on ``sys.path``).

Imports under ``if TYPE_CHECKING:`` never run and are left out; imports by name at run time (``importlib``)
cannot be seen here: a rule adds such a module with ``module_closure``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

PACKAGE = "ddstars"
SRC = Path(__file__).resolve().parent.parent  # the folder holding the package (src/)


class CodeDepsError(ImportError):
    """An import of the package that names no module of it (the file and line are in the message)."""


@cache
def _parse(path: Path) -> tuple[tuple[int, str, tuple[str, ...], int], ...]:
    """The import statements of ``path`` as (level, module, names, line), those under TYPE_CHECKING left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str, tuple[str, ...], int]] = []

    def type_checking(test: ast.expr) -> bool:
        return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        )

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((0, alias.name, (), node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or "", tuple(a.name for a in node.names), node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return tuple(found)


def module_file(name: str, src: Path = SRC) -> Path | None:
    """The source file of module ``name`` under ``src`` (a package's ``__init__.py``), or None."""
    base = src.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _with_parents(name: str, src: Path) -> set[Path]:
    """The files Python runs to import ``name``: each package ``__init__.py`` on the way, then the module."""
    parts = name.split(".")
    files = {module_file(".".join(parts[: i + 1]), src) for i in range(len(parts))}
    return {f for f in files if f is not None}


def _imports_of(path: Path, src: Path, local: Path | None) -> set[Path]:
    """The files that the imports written in ``path`` load directly (package or local helper modules)."""
    in_package = path.is_relative_to(src / PACKAGE)
    here = _module_name(path, src) if in_package else ""
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out: set[Path] = set()

    def need(name: str, line: int) -> None:
        files = _with_parents(name, src)
        if module_file(name, src) is None:
            raise CodeDepsError(f"{path}:{line}: imports {name!r}, which is not a module under {src / PACKAGE}")
        out.update(files)

    for level, module, names, line in _parse(path):
        if level:
            if not in_package:
                continue  # a relative import outside the package: not ours
            base = package.split(".")
            if level > 1:
                base = base[: -(level - 1)]
            module = ".".join([*base, module] if module else base)
        top = module.split(".")[0]
        if top == PACKAGE:
            need(module, line)
            for name in names:  # ``from ddstars.a import b``: b may be a submodule
                sub = f"{module}.{name}"
                if name != "*" and module_file(sub, src) is not None:
                    out.add(module_file(sub, src))
        elif local is not None and not level and (local / f"{top}.py").is_file():
            out.add(local / f"{top}.py")  # a helper module beside the script
    return out


def _closure(start: Iterable[Path], src: Path, local: Path | None) -> frozenset[Path]:
    seen: set[Path] = set()
    todo = [p.resolve() for p in start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        helper_dir = local if local is not None and path.parent == local else None
        todo.extend(_imports_of(path, src, helper_dir) - seen)
    return frozenset(seen)


@cache
def script_closure(script: str | Path, src: Path = SRC) -> frozenset[Path]:
    """``script`` itself, the helpers it imports from its folder and every package file they import."""
    path = Path(script).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"workflow script {path} does not exist")
    return _closure([path], src.resolve(), path.parent)


@cache
def module_closure(name: str, src: Path = SRC) -> frozenset[Path]:
    """The files of module ``name`` (dotted), its packages' ``__init__.py`` and every package file it imports."""
    src = src.resolve()
    if module_file(name, src) is None:
        raise CodeDepsError(f"{name!r} is not a module under {src}")
    return _closure(_with_parents(name, src), src, None)
