"""Training options: their defaults and the merge of a user's ``config['train']`` over them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

DEFAULTS: dict[str, Any] = {
    "seed": 7,
    "n_rounds": 20,
    "epochs": 25,
    "batch_size": 1024,
    "learning_rate": 1e-3,
    "lr_decay_rounds": 5.0,
    "adam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "hidden_units": 32,
    "l2_hidden": 1e-4,
    "l1_reddening": 1e-2,
    "round0_max_sigma_e": 0.2,
    "chi2_cut": {"start": 100.0, "end": 5.0, "rounds": 14},
    "diag_inflation": [1e-4, 1e-3],
    "diag_inflation_fallback": [0.02, 0.02],
    "reddening_update": {"floor": 0.02, "relative": 0.1, "e_max": 10.0, "var_max": 100.0},
    "normalisation": "catalog",
    "update_dtype": "float32",
    "min_steps_per_round": 16000,
    "min_batch_size": 128,
    "convergence": {"loss_drop": 0.01, "r_drift": 0.01, "last_rounds": 5},
    "require_converged": False,
    "domain": {"cell": 0.25, "min_stars": 5},
}


def options(user: Mapping[str, Any] | None) -> dict[str, Any]:
    o = {**DEFAULTS, **(user or {})}
    for key in ("adam", "chi2_cut", "reddening_update", "convergence", "domain"):
        o[key] = {**DEFAULTS[key], **(user or {}).get(key, {})}
    if o["update_dtype"] not in ("float32", "float64"):
        raise ConfigError(f"train.update_dtype is {o['update_dtype']!r}; expected 'float32' or 'float64'")
    return o
