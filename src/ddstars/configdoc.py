"""Render the config schema (workflow/schemas/config.schema.yaml) as config/README.md.

``python -m ddstars.configdoc`` rewrites config/README.md; a test checks that it is current and that
every key of the schema carries a description.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .config import resolve

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
README = ROOT / "config" / "README.md"

HEADER = """# Configuration reference

`config/config.yaml` is validated against `workflow/schemas/config.schema.yaml` before any job runs:
an unknown key, a wrong type or a value out of range stops the run with the key named. This page is
generated from the schema (`python -m ddstars.configdoc`); edit the schema, not this page.

| key | type | description |
|---|---|---|
"""


def iter_keys(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(dotted key, resolved schema node) for every property, depth first."""

    def walk(node: dict[str, Any], prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for name, sub in node.get("properties", {}).items():
            full = dict(resolve(sub, schema))
            key = f"{prefix}.{name}" if prefix else name
            yield key, full
            yield from walk(full, key)

    yield from walk(schema, "")


def _type(node: dict[str, Any]) -> str:
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    t = node.get("type", "")
    if isinstance(t, list):
        t = " or ".join(t)
    if t == "array":
        item = node.get("items", {})
        items = item.get("type", "") or ("one of " + "/".join(item["enum"]) if "enum" in item else "")
        n = node.get("minItems")
        return f"{n} × {items}" if n and n == node.get("maxItems") else f"list of {items}"
    bounds = []
    for k, sym in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤")):
        if k in node:
            bounds.append(f"{sym} {node[k]}")
    return " ".join([t, *bounds]).strip()


def render(schema_path: Path = SCHEMA) -> str:
    schema = yaml.safe_load(schema_path.read_text())
    rows = [
        f"| `{key}` | {_type(node)} | {' '.join(str(node.get('description', '')).split())} |"
        for key, node in iter_keys(schema)
    ]
    return HEADER + "\n".join(rows) + "\n"


def main() -> None:
    README.write_text(render())
    print(f"wrote {README}", file=sys.stderr)


if __name__ == "__main__":
    main()
