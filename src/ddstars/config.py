"""The config's defaults, in one place: the ``default:`` values of workflow/schemas/config.schema.yaml.

The workflow fills them when it validates the config (``snakemake.utils.validate``, which sets every absent key
that has a ``default:``); Python callers outside Snakemake (tests, notebooks, the functions each rule calls)
fill theirs the same way with :func:`with_defaults`, and :func:`defaults` gives a section's defaults alone.
No module keeps its own copy.

Filling follows JSON Schema default-filling: an absent key with a ``default:`` gets a copy of it; an object that
is present (or has just been given its default, such as ``{}``) is filled in turn, key by key.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


@functools.cache
def schema() -> dict[str, Any]:
    """The config schema, parsed once."""
    import yaml

    return yaml.load(SCHEMA_PATH.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def resolve(node: Any, root: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    """A schema node with its ``$ref`` to ``#/definitions/<name>`` of ``root`` (default: the config schema)
    followed, the node's own keys over the definition's; {} for what is not a mapping."""
    if not isinstance(node, Mapping):
        return {}
    ref = node.get("$ref")
    if ref is None:
        return node
    target = resolve((root if root is not None else schema())["definitions"][str(ref).rsplit("/", 1)[-1]], root)
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def _node(section: str | None) -> Mapping[str, Any]:
    node: Mapping[str, Any] = schema()
    for key in section.split(".") if section else []:
        try:
            node = resolve(node["properties"][key])
        except KeyError:
            raise KeyError(f"config key {section!r} is not in {SCHEMA_PATH.name}") from None
    return node


def fill(instance: dict[str, Any], node: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Fill ``instance`` in place with the defaults of schema ``node`` (JSON Schema default-filling; ``$ref`` into
    ``root``, default: the config schema); values of the wrong type are left as they are."""
    for key, sub in (node.get("properties") or {}).items():
        sub = resolve(sub, root)
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if isinstance(instance.get(key), dict):
            fill(instance[key], sub, root)
    return instance


def with_defaults(config: Mapping[str, Any] | None, section: str | None = None) -> dict[str, Any]:
    """A copy of ``config`` (the whole config, or config section ``section`` such as ``"train"`` or
    ``"catalog.reddening"``) with every absent key that has a schema default filled in."""
    return fill(copy.deepcopy(dict(config or {})), _node(section))


def defaults(section: str | None = None) -> dict[str, Any]:
    """The schema defaults of config section ``section`` (dotted, e.g. ``"remote"``; None: the whole config)."""
    return with_defaults({}, section)


def get(config: Mapping[str, Any], key: str) -> Any:
    """Config value ``key`` (dotted, e.g. ``"backend"``), or its schema default where the config lacks it."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return copy.deepcopy(_node(key).get("default"))
        node = node[part]
    return node
