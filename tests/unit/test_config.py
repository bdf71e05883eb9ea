"""Config schema: every key documented, the generated reference current, defaults valid."""

import jsonschema
import yaml
from conftest import ROOT, default_config

from ddstars.configdoc import SCHEMA, iter_keys, render


def test_every_schema_key_has_a_description():
    schema = yaml.safe_load(SCHEMA.read_text())
    missing = [key for key, node in iter_keys(schema) if not node.get("description")]
    assert not missing, f"keys without description: {missing}"


def test_config_readme_is_current():
    assert (ROOT / "config" / "README.md").read_text() == render(), "run `python -m ddstars.configdoc`"


def test_default_config_is_valid_and_fully_documented():
    schema = yaml.safe_load(SCHEMA.read_text())
    cfg = default_config()
    jsonschema.Draft202012Validator(schema).validate(cfg)
    documented = {key for key, _ in iter_keys(schema)}

    def leaves(d, prefix=""):
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else k
            yield key
            if isinstance(v, dict):
                yield from leaves(v, key)

    assert set(leaves(cfg)) <= documented
