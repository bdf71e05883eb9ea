"""The data-driven stellar model: training (train.py) and use (api.py)."""

from .api import StellarModel, load_model

__all__ = ["StellarModel", "load_model"]
