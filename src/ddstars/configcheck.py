"""The config checked before any job, with one short line per problem naming the key.

Snakemake's ``validate`` reports a schema error with the whole schema and config printed after it (thousands of
lines); :func:`check_config` runs first and says only what is wrong and where. It also checks what a JSON
schema cannot say: the split fractions sum to 1, the validation colours name known bands. :func:`check_paths`
stops a run whose config names a file that is not there and that no rule makes.
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


def check_paths(config: Mapping[str, Any], sim_root: str = "resources/simulated") -> None:
    """Raise :class:`ConfigError` naming each config path that does not exist and that no rule makes, so an
    earlier run's results never stand in for it.

    The simulated backend's dust maps are made by rule simulate_dustmaps under ``sim_root``; any other
    configured map must exist (with the remote backend a missing real map reaches rule provision_dustmaps,
    which says how to download it). A catalog of the user's own and a comparison model must exist
    (``"published"`` names the vendored release).
    """
    problems = []
    if config.get("backend", "simulated") == "simulated":
        made = {f"{sim_root}/dustmaps/sfd", f"{sim_root}/dustmaps/bayestar/bayestar2019.h5"}
        for key in ("sfd_dir", "bayestar_file"):
            path = str(config["dustmaps"][key]).rstrip("/")
            if path not in made and not Path(path).exists():
                problems.append(
                    f"dustmaps.{key}: {path} does not exist, and with backend 'simulated' only {sim_root}/dustmaps/ "
                    "is made by the workflow (rule simulate_dustmaps); point the key there or at an existing map"
                )
    compare = (config.get("validation") or {}).get("compare") or {}
    for key in ("model", "normalisation"):
        path = compare.get(key)
        if path and path != "published" and not Path(path).exists():
            problems.append(f"validation.compare.{key}: {path} does not exist")
    external = config["catalog"].get("external")
    if external and not Path(external).exists():
        problems.append(f"catalog.external: {external} does not exist (the catalog of your own to train on)")
    if problems:
        raise ConfigError("the config names missing files:\n  " + "\n  ".join(problems))
