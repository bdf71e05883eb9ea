"""Using a trained model: load it, predict absolute magnitudes, reddening vectors and apparent magnitudes.

    >>> from ddstars.model import load_model
    >>> m = load_model("results/model")
    >>> m.predict_absolute_magnitudes([[5780.0, 4.44, 0.0]])  # (1, 13): G, BP, RP, g r i z y, J H Ks, W1 W2

Labels θ are (Teff [K], log g [dex, cgs], [Fe/H] [dex]), given as an (n, 3) array, a single triple or a
pandas DataFrame with columns ``teff``, ``logg``, ``feh``. Magnitudes follow the catalog's systems (Gaia
and 2MASS Vega, PS1 AB, unWISE AB), band order of :data:`ddstars.bands.BAND_NAMES`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..bands import BAND_NAMES
from ..errors import DataError
from .covariance import from_colour
from .network import Weights, forward
from .train import Normalisation

MODEL_FILE = "model.keras"
NORMALISATION_FILE = "normalisation.json"


def _theta(theta: Any) -> np.ndarray:
    if isinstance(theta, pd.DataFrame):
        missing = [c for c in ("teff", "logg", "feh") if c not in theta.columns]
        if missing:
            raise DataError(f"theta frame lacks column(s) {', '.join(missing)}")
        arr = theta[["teff", "logg", "feh"]].to_numpy(dtype=np.float64)
    else:
        arr = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"theta must have shape (n, 3) = (Teff, log g, [Fe/H]); got {arr.shape}")
    return arr


class StellarModel:
    """A trained data-driven stellar model: the Keras network and its label normalisation."""

    def __init__(self, keras_model, norm: Normalisation):
        self.keras_model = keras_model
        self.norm = norm
        self._w = Weights.of(keras_model)

    def _forward(self, theta: Any) -> tuple[np.ndarray, np.ndarray]:
        return forward(self._w, self.norm.x(_theta(theta)))

    def predict_absolute_magnitudes(self, theta: Any) -> np.ndarray:
        """Dust-free absolute magnitudes M(θ) [mag], shape (n, 13)."""
        return from_colour(self._forward(theta)[0])

    def reddening_vector(self, theta: Any) -> np.ndarray:
        """Extinction per unit reddening R(θ) = A / E [mag per mag of E(B-V), SFD scale], shape (n, 13)."""
        return self._forward(theta)[1]

    def predict_apparent(self, theta: Any, distance_modulus: Any, E: Any) -> np.ndarray:
        """Apparent magnitudes m = M(θ) + μ + E R(θ) [mag], shape (n, 13).

        ``distance_modulus`` μ [mag] and ``E`` [mag, SFD E(B-V) scale] broadcast against the stars.
        """
        bm, r = self._forward(theta)
        m = from_colour(bm)
        mu = np.asarray(distance_modulus, dtype=np.float64).reshape(-1, 1)
        e = np.asarray(E, dtype=np.float64).reshape(-1, 1)
        return m + mu + e * r

    def as_frame(self, theta: Any) -> pd.DataFrame:
        """M and R of each star as a DataFrame (columns M_<band>, R_<band>)."""
        m = self.predict_absolute_magnitudes(theta)
        r = self.reddening_vector(theta)
        return pd.DataFrame(
            {
                **{f"M_{b}": m[:, i] for i, b in enumerate(BAND_NAMES)},
                **{f"R_{b}": r[:, i] for i, b in enumerate(BAND_NAMES)},
            }
        )

    def save(self, folder: str | Path) -> None:
        """``<folder>/model.keras`` and ``<folder>/normalisation.json``, each written atomically."""
        from ..io import write_json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{os.getpid()}.{MODEL_FILE}"
        try:
            self.keras_model.save(tmp)
            os.replace(tmp, folder / MODEL_FILE)
        finally:
            tmp.unlink(missing_ok=True)
        write_json(self.norm.to_json(), folder / NORMALISATION_FILE)


def load_model(path: str | Path) -> StellarModel:
    """The model in folder ``path`` (``model.keras`` + ``normalisation.json``), or the ``.keras`` file
    ``path`` with ``normalisation.json`` beside it."""
    import keras

    path = Path(path)
    folder, model_file = (path.parent, path) if path.suffix == ".keras" else (path, path / MODEL_FILE)
    if not model_file.is_file():
        raise FileNotFoundError(f"{model_file}: no trained model there (run the train_model rule first)")
    norm_file = folder / NORMALISATION_FILE
    if not norm_file.is_file():
        raise DataError(f"{norm_file}: the label normalisation is missing; the model cannot be used without it")
    try:
        norm = Normalisation.from_json(json.loads(norm_file.read_text()))
    except (KeyError, ValueError) as err:
        raise DataError(f"{norm_file}: not a valid normalisation file ({err})") from err
    return StellarModel(keras.saving.load_model(model_file, compile=False), norm)
