"""Training options: a user's ``config['train']`` with the schema's defaults filled in (ddstars.config)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import with_defaults
from ..errors import ConfigError


def options(user: Mapping[str, Any] | None) -> dict[str, Any]:
    """Config section ``train`` with the schema's defaults filled in (ddstars.config)."""
    o = with_defaults(user, "train")
    if o["update_dtype"] not in ("float32", "float64"):
        raise ConfigError(f"train.update_dtype is {o['update_dtype']!r}; expected 'float32' or 'float64'")
    return o
