"""Provenance written beside each stage's results: config used, package versions, git commit, platform."""

from __future__ import annotations

import importlib.metadata as md
import platform
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .io import write_json

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "ddstars",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "astropy",
    "healpy",
    "dustmaps",
    "tensorflow",
    "keras",
    "snakemake",
)


def versions() -> dict[str, str]:
    """Python and package versions ('not installed' where absent)."""
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def git_commit(root: Path = ROOT) -> dict[str, Any]:
    """The checkout's commit and whether it had uncommitted changes (None outside a git checkout)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {
        "commit": head.stdout.strip() or None,
        "dirty": bool(dirty.stdout.strip()) if head.returncode == 0 else None,
    }


def write(path: str | Path, stage: str, config: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """Write ``path`` (JSON): the stage, the config sections that made it, versions, git state, time."""
    doc = {
        "stage": stage,
        "config": dict(config),
        "versions": versions(),
        "git": git_commit(),
        "platform": platform.platform(),
        "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }
    write_json(doc, path)
    return doc


def files_read(paths: Any) -> list[dict[str, Any]]:
    """What was read, for a provenance record: each file (folders expanded to the files in them, sorted, hidden
    ones left out) with its absolute path, size and MD5 (streamed; about 2 s a GB)."""
    import hashlib

    if isinstance(paths, str | Path):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():  # its data files (not Snakemake's hidden markers)
            files.extend(sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")))
        else:
            files.append(p)
    out = []
    for f in files:
        h = hashlib.md5()
        with open(f, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
        out.append({"path": str(f.resolve()), "bytes": f.stat().st_size, "md5": h.hexdigest()})
    return out
