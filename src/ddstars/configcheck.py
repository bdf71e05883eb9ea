"""The config checked before any job, with one short line per problem naming the key.

Snakemake's ``validate`` reports a schema error with the whole schema and config printed after it (thousands of
lines); :func:`check_config` runs first and reports, as one list, every problem of the config:

- the schema's (unknown keys with the allowed ones, wrong types, values out of range or not among the allowed
  ones, missing keys), each leading with the key;
- what a JSON schema cannot say: the split fractions sum to 1, the validation colours name known bands, no
  range ``[lo, hi]`` is reversed, the error maxima lie above the error floors, the χ² cut reaches its end
  within the rounds, a released-layout comparison model comes with its normalisation;
- the files the config names that are not there and that no rule makes (:func:`path_problems`).
"""

from __future__ import annotations

import copy
import difflib
import re
import reprlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import fill, resolve
from .config import get as config_value
from .errors import ConfigError

RANGE_REF = "#/definitions/range"
#: Config keys holding a range [lo, hi] by their name (figure options have no schema of their own):
#: teff_range, dec_range_deg, range, ...; the values of a mapping named ``ranges`` are ranges too.
RANGE_NAME = re.compile(r"(^|_)range(_|$)")
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60


def _where(path: Sequence[Any]) -> str:
    """``train.chi2_cut.rounds``, ``validation.colours[0]``; ``(top level)`` for the empty path."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _short(value: Any) -> str:
    return _SHORT.repr(value)


def _names(items) -> str:
    return ", ".join(str(i) for i in items)


def _hint(word: Any, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _pattern_names(pattern: str) -> list[str] | None:
    """The names a pattern like ``^(a|b|c)$`` allows, or None for any other pattern."""
    m = re.fullmatch(r"\^\(([\w|]+)\)\$", pattern)
    return m.group(1).split("|") if m else None


def _schema_messages(e) -> list[str]:
    """One line per problem of jsonschema error ``e``: the key first, then what is allowed (never the schema)."""
    path, kind, value, inst, schema = list(e.absolute_path), e.validator, e.validator_value, e.instance, e.schema
    where = _where(path)
    if kind == "additionalProperties" and value is False and isinstance(inst, Mapping):
        allowed = list(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        for p in patterns:
            allowed += _pattern_names(p) or []
        unknown = [k for k in inst if k not in allowed and not any(re.search(p, str(k)) for p in patterns)]
        of = f"of {where}" if path else "at the top level"
        return [
            f"{_where([*path, k])}: unknown key{_hint(k, allowed)}; allowed keys {of}: {_names(sorted(allowed))}"
            for k in unknown
        ]
    if kind == "required" and isinstance(inst, Mapping):
        return [f"{_where([*path, k])}: required key is missing" for k in value if k not in inst]
    if kind == "enum":
        return [f"{where}: {_short(inst)} is not one of {_names(map(repr, value))}{_hint(inst, value)}"]
    if kind == "type":
        types = " or ".join(value) if isinstance(value, list) else value
        return [f"{where}: expected {types}, got {_short(inst)} ({type(inst).__name__})"]
    if kind in ("exclusiveMinimum", "exclusiveMaximum"):
        return [
            f"{where}: must be {'greater' if kind == 'exclusiveMinimum' else 'less'} than {value}, got {_short(inst)}"
        ]
    if kind in ("minItems", "maxItems") and isinstance(inst, list):
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        n = f"exactly {lo}" if lo == hi else (f"at least {lo}" if kind == "minItems" else f"at most {hi}")
        return [f"{where}: expected {n} item(s), got {len(inst)}: {_short(inst)}"]
    if kind in ("oneOf", "anyOf"):
        alternatives = {}
        for sub in e.context or []:
            alternatives.setdefault(sub.schema_path[0], sub)
        return [
            f"{where}: {_short(inst)} matches none of the allowed forms: "
            + "; or ".join(_schema_messages(sub)[0].split(": ", 1)[-1] for sub in alternatives.values())
        ]
    return [f"{where}: {e.message if len(e.message) < 200 else e.message[:200] + ' ...'}"]


def schema_problems(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Every schema problem of ``config``, one line each, sorted by key (a missing key is reported once)."""
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    return sorted({m for e in validator.iter_errors(dict(config)) for m in _schema_messages(e)})


def _child(node: Mapping[str, Any], key: Any, root: Mapping[str, Any]) -> Any:
    """The schema of ``key`` inside the object or array schema ``node`` (unresolved: its ``$ref`` is kept)."""
    node = resolve(node, root)
    if isinstance(key, int):
        return node.get("items", {})
    if key in node.get("properties", {}):
        return node["properties"][key]
    for pattern, sub in node.get("patternProperties", {}).items():
        if re.search(pattern, str(key)):
            return sub
    extra = node.get("additionalProperties", {})
    return extra if isinstance(extra, Mapping) else {}


def _ranges(value: Any, node: Any, root: Mapping[str, Any], path: list, named: bool = False) -> Iterator:
    """(path, [lo, hi]) of every range in ``value``: by the schema (``$ref: #/definitions/range``) or by name."""
    key = path[-1] if path else ""
    is_range = named or (isinstance(node, Mapping) and node.get("$ref") == RANGE_REF)
    is_range = is_range or (isinstance(key, str) and bool(RANGE_NAME.search(key)))
    if is_range and isinstance(value, list) and len(value) == 2:
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _ranges(v, _child(node, k, root), root, [*path, k], named=key == "ranges")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _ranges(v, _child(node, i, root), root, [*path, i])


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def cross_field_problems(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """What a JSON schema cannot say, one line per problem (values of the wrong type are left to the schema)."""
    problems = []

    def section(*keys) -> Mapping[str, Any]:
        node = config
        for k in keys:
            node = node.get(k) if isinstance(node, Mapping) else None
        return node if isinstance(node, Mapping) else {}

    catalog, train, validation = section("catalog"), section("train"), section("validation")
    fractions = [section("catalog", "split").get(k) for k in ("train", "validation", "test")]
    if all(_number(f) for f in fractions) and abs(sum(fractions) - 1.0) > 1e-9:
        problems.append(f"catalog.split: train + validation + test must be 1, got {sum(fractions):g}")

    colours = validation.get("colours")
    if isinstance(colours, list) and all(isinstance(c, list) and all(isinstance(b, str) for b in c) for c in colours):
        from .validation.colours import parse_colours

        try:
            parse_colours(colours)
        except ConfigError as err:
            problems.append(str(err))

    for path, (lo, hi) in _ranges(config, schema, schema, []):
        if lo > hi:
            problems.append(f"{_where(path)}: the range [{lo:g}, {hi:g}] is reversed; give it as [low, high]")

    floor, top = catalog.get("mag_error_floor"), catalog.get("mag_error_max")
    if _number(floor) and _number(top) and top <= floor:
        problems.append(
            f"catalog.mag_error_max: {top:g} is not above catalog.mag_error_floor ({floor:g}); every floored error "
            "is at least the floor, so every band would be unobserved"
        )
    floors, tops = catalog.get("label_floor"), catalog.get("label_sigma_max")
    if isinstance(floors, list) and isinstance(tops, list) and all(map(_number, floors + tops)):
        for i, (f, t) in enumerate(zip(floors, tops, strict=False)):
            if t <= f:
                problems.append(
                    f"catalog.label_sigma_max[{i}]: {t:g} is not above catalog.label_floor[{i}] ({f:g}); every "
                    "star would be removed"
                )

    rounds, n_rounds = section("train", "chi2_cut").get("rounds"), train.get("n_rounds")
    if isinstance(rounds, int) and isinstance(n_rounds, int) and n_rounds > 1 and rounds > n_rounds - 1:
        problems.append(
            f"train.chi2_cut.rounds: {rounds} is more than the {n_rounds - 1} rounds that apply the cut "
            f"(train.n_rounds: {n_rounds}, round 0 has none), so the cut would never reach chi2_cut.end; "
            f"set it to at most {n_rounds - 1}"
        )

    compare = validation.get("compare")
    if (
        isinstance(compare, Mapping)
        and str(compare.get("model", "")).endswith(".h5")
        and not compare.get("normalisation")
    ):
        problems.append(
            f"validation.compare.normalisation: required with the released-layout .h5 model {compare['model']} "
            "(its θ-normalisation JSON)"
        )
    return problems


def path_problems(config: Mapping[str, Any], sim_root: str = "resources/simulated") -> list[str]:
    """Each config path that does not exist and that no rule makes, so an earlier run's results never stand in
    for it.

    The simulated backend's dust maps are made by rule simulate_dustmaps under ``sim_root``; any other
    configured map must exist (with the remote backend a missing real map reaches rule provision_dustmaps,
    which says how to download it). A catalog of the user's own and a comparison model must exist
    (``"published"`` names the vendored release); a comparison model folder must hold model.keras and
    normalisation.json.
    """
    problems = []
    dustmaps = config.get("dustmaps") if isinstance(config.get("dustmaps"), Mapping) else {}
    if config_value(config, "backend") == "simulated":
        made = {f"{sim_root}/dustmaps/sfd", f"{sim_root}/dustmaps/bayestar/bayestar2019.h5"}
        for key in ("sfd_dir", "bayestar_file"):
            path = str(dustmaps.get(key) or "").rstrip("/")
            if path and path not in made and not Path(path).exists():
                problems.append(
                    f"dustmaps.{key}: {path} does not exist, and with backend 'simulated' only {sim_root}/dustmaps/ "
                    "is made by the workflow (rule simulate_dustmaps); point the key there or at an existing map"
                )
    validation = config.get("validation") if isinstance(config.get("validation"), Mapping) else {}
    compare = validation.get("compare") if isinstance(validation.get("compare"), Mapping) else {}
    for key in ("model", "normalisation"):
        path = compare.get(key)
        if isinstance(path, str) and path and path != "published" and not Path(path).exists():
            problems.append(f"validation.compare.{key}: {path} does not exist")
    model = compare.get("model")
    if isinstance(model, str) and model != "published" and Path(model).is_dir():
        absent = [f for f in ("model.keras", "normalisation.json") if not (Path(model) / f).is_file()]
        if absent:
            problems.append(
                f"validation.compare.model: {model} is a folder without {' and '.join(absent)} (a model of this "
                "project: results/model/ of another run)"
            )
    catalog = config.get("catalog") if isinstance(config.get("catalog"), Mapping) else {}
    external = catalog.get("external")
    if isinstance(external, str) and external and not Path(external).exists():
        problems.append(f"catalog.external: {external} does not exist (the catalog of your own to train on)")
    inference = config.get("inference") if isinstance(config.get("inference"), Mapping) else {}
    source = inference.get("input", "test")
    backend = config.get("backend", "simulated")
    release = (
        (config.get("archives") or {}).get("release", "dr2") if isinstance(config.get("archives"), Mapping) else "dr2"
    )
    if source == "photometric" and release != "dr2":
        problems.append(
            f"inference.input: 'photometric' reads the photometric-only sample in the DR2-era tables, which "
            f"archives.release {release!r} does not query yet; give test, catalog or the path of your own stars"
        )
    elif source == "photometric" and backend == "simulated" and external:
        problems.append(
            "inference.input: 'photometric' with backend 'simulated' is the built-in sky's photometric-only sample, "
            "not stars for a model of catalog.external; give test, catalog, the path of your own stars, or backend "
            "remote with inference.photometric_sample.pixels"
        )
    elif source == "photometric" and backend == "remote":
        from .remote.services import sample_problems  # only here: it imports the archive layer

        problems += sample_problems(config)
    elif isinstance(source, str) and source not in ("test", "catalog", "photometric") and not Path(source).exists():
        problems.append(
            f"inference.input: {source} does not exist (test, catalog, photometric or the path of a Parquet file or "
            "folder of your own stars)"
        )
    return problems


def check_config(config: Mapping[str, Any], schema_path: str | Path, sim_root: str = "resources/simulated") -> None:
    """Raise :class:`ConfigError` listing every problem of ``config`` (key: message), or return.

    Schema problems, cross-field problems (:func:`cross_field_problems`) and missing files
    (:func:`path_problems`) are reported together, one line each.
    """
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    # the cross-field checks see the config as the run will (absent keys at their defaults), so that a value
    # given alone is checked against the default of its partner
    filled = fill(copy.deepcopy(dict(config)), schema, schema) if isinstance(config, Mapping) else config
    problems = schema_problems(config, schema) + cross_field_problems(filled, schema)
    problems += path_problems(config, sim_root)
    if problems:
        raise ConfigError("the config has " + f"{len(problems)} problem(s):\n  " + "\n  ".join(problems))
