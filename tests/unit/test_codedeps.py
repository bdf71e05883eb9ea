"""ddstars.codedeps: the static import closure of a workflow script, on a small package written here."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ddstars.codedeps import CodeDepsError, module_closure, module_file, script_closure


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture
def project(tmp_path):
    """src/ddstars with a subpackage, relative, lazy and TYPE_CHECKING imports; scripts/ with a local helper."""
    write(
        tmp_path,
        {
            "src/ddstars/__init__.py": "",
            "src/ddstars/a/__init__.py": "from .c import G\n",
            "src/ddstars/a/b.py": """
                from typing import TYPE_CHECKING

                import numpy as np

                from ..d import X
                from . import c

                if TYPE_CHECKING:
                    from ddstars import e
                else:
                    import ddstars.h
            """,
            "src/ddstars/a/c.py": """
                G = 1

                def later():
                    import ddstars.f  # lazy: still a dependency
            """,
            "src/ddstars/d.py": "X = 1\n",
            "src/ddstars/e.py": "",
            "src/ddstars/f.py": "from ddstars.g import *\n",
            "src/ddstars/g.py": "",
            "src/ddstars/h.py": "",
            "src/ddstars/unused.py": "",
            "src/ddstars/other/__init__.py": "",
            "src/ddstars/other/deep.py": "",
            "scripts/_helper.py": "import sys\nfrom ddstars.other import deep\n",
            "scripts/run.py": """
                import os

                import _helper
                from ddstars.a import b

                def main():
                    from ddstars import d
            """,
        },
    )
    return tmp_path


def rel(root: Path, files) -> set[str]:
    return {str(p.relative_to(root.resolve())) for p in files}


def test_script_closure_follows_submodules_relative_lazy_and_local_imports(project):
    got = rel(project, script_closure(project / "scripts" / "run.py", project / "src"))
    pkg = "src/ddstars/"
    assert got == {
        "scripts/run.py",
        "scripts/_helper.py",
        *(pkg + f for f in ("__init__.py", "a/__init__.py", "a/b.py", "a/c.py", "d.py", "f.py", "g.py", "h.py")),
        *(pkg + f for f in ("other/__init__.py", "other/deep.py")),
    }
    # e.py is imported only for type checkers; unused.py by nobody; numpy and os are not ours
    assert not got & {pkg + "e.py", pkg + "unused.py"}


def test_module_closure_includes_the_packages_on_the_way(project):
    got = rel(project, module_closure("ddstars.a.c", project / "src"))
    # importing ddstars.a.c runs ddstars/__init__.py and ddstars/a/__init__.py, and c imports f (lazily), f g
    assert got == {f"src/ddstars/{f}" for f in ("__init__.py", "a/__init__.py", "a/c.py", "f.py", "g.py")}
    assert module_file("ddstars.a", project / "src") == project / "src/ddstars/a/__init__.py"
    assert module_file("ddstars.nothere", project / "src") is None


def test_an_import_of_a_missing_module_names_the_file_and_line(project):
    write(project, {"scripts/bad.py": "import os\nfrom ddstars.nothere import x\n"})
    with pytest.raises(CodeDepsError, match=r"bad\.py:2: imports 'ddstars.nothere'"):
        script_closure(project / "scripts" / "bad.py", project / "src")
    with pytest.raises(CodeDepsError, match="'ddstars.nowhere' is not a module"):
        module_closure("ddstars.nowhere", project / "src")
    with pytest.raises(FileNotFoundError, match="missing.py"):
        script_closure(project / "scripts" / "missing.py", project / "src")
