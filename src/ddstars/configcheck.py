"""The config checked before any job, with one short line per problem naming the key.

Snakemake's ``validate`` reports a schema error with the whole schema and config printed after it (thousands of
lines); :func:`check_config` runs first and says only what is wrong and where. It also checks what a JSON
schema cannot say: the split fractions sum to 1, the validation colours name known bands.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def check_config(config: Mapping[str, Any], schema_path: str | Path) -> None:
    """Raise :class:`ConfigError` listing every problem of ``config`` (key: message), or return."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = [
        f"{_where(e.absolute_path)}: {e.message}"
        for e in sorted(validator.iter_errors(dict(config)), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if not problems:
        split = (config.get("catalog") or {}).get("split") or {}
        fractions = [split.get(k) for k in ("train", "validation", "test")]
        if all(isinstance(f, int | float) for f in fractions) and abs(sum(fractions) - 1.0) > 1e-9:
            problems.append(f"catalog.split: train + validation + test must be 1, got {sum(fractions):g}")
        colours = (config.get("validation") or {}).get("colours")
        if colours is not None:
            from .validation.evaluate import parse_colours

            try:
                parse_colours(colours)
            except ConfigError as err:
                problems.append(str(err))
    if problems:
        raise ConfigError("the config has " + f"{len(problems)} problem(s):\n  " + "\n  ".join(problems))
