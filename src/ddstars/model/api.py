"""Using a trained model: load it, predict absolute magnitudes, reddening vectors and apparent magnitudes.

    >>> from ddstars.model import load_model
    >>> m = load_model("results/model")
    >>> m.predict_absolute_magnitudes([[5780.0, 4.44, 0.0]])  # (1, 13): G, BP, RP, g r i z y, J H Ks, W1 W2

Labels θ are (Teff [K], log g [dex, cgs], [Fe/H] [dex]), given as an (n, 3) array, a single triple or a
pandas DataFrame with columns ``teff``, ``logg``, ``feh``. Magnitudes follow the catalog's systems (Gaia
and 2MASS Vega, PS1 AB, unWISE AB), band order of :data:`ddstars.bands.BAND_NAMES`.

The model knows where it was trained (:class:`Domain`, saved with it): a θ where the training stars are
sparse is flagged, by default with a WARNING naming how many and the first rows (``outside="nan"`` gives NaN
there, ``"error"`` raises, ``"ignore"`` says nothing). A NaN θ is always an error naming its rows.

    >>> m.in_domain([[5780.0, 4.44, 0.0], [20000.0, 4.0, 0.0]])  # array([ True, False])
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..bands import BAND_NAMES
from ..errors import ConfigError, DataError
from . import likelihood
from .covariance import from_colour
from .data import Stars
from .likelihood import Normalisation
from .network import Weights, components, forward

log = logging.getLogger(__name__)

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
        raise DataError(f"theta must have shape (n, 3) = (Teff, log g, [Fe/H]); got {arr.shape}")
    return arr


OUTSIDE = ("warn", "nan", "error", "ignore")


@dataclass(frozen=True)
class Domain:
    """Where the model was trained: training-star counts on a grid of normalised θ (cells of ``cell`` standard
    deviations of each label). A θ is inside when the cells around it (its own and the 26 next to it) hold at
    least ``min_stars`` training stars: a smoothed density threshold, as the paper restricts its use of the
    model to where the training density is high enough (Fig. 13)."""

    cell: float
    min_stars: int
    keys: np.ndarray  # (k,) int64, sorted: the occupied cells
    counts: np.ndarray  # (k,) int64: training stars per occupied cell
    lo: np.ndarray  # (3,) smallest training θ
    hi: np.ndarray  # (3,) largest training θ

    _OFFSET = 1 << 20  # cell indices are shifted to be non-negative, 21 bits each

    @classmethod
    def _key(cls, idx: np.ndarray) -> np.ndarray:
        i = idx.astype(np.int64) + cls._OFFSET
        return (i[:, 0] << 42) | (i[:, 1] << 21) | i[:, 2]

    @classmethod
    def fit(cls, x: np.ndarray, theta: np.ndarray, cell: float = 0.25, min_stars: int = 5) -> Domain:
        """The domain of training stars at normalised labels ``x`` (n, 3) (θ itself for the ranges)."""
        keys, counts = np.unique(cls._key(np.floor(x / cell)), return_counts=True)
        return cls(float(cell), int(min_stars), keys, counts.astype(np.int64), theta.min(axis=0), theta.max(axis=0))

    def density(self, x: np.ndarray) -> np.ndarray:
        """Training stars in the 27 cells around each normalised θ (n,)."""
        idx = np.floor(np.nan_to_num(x, nan=0.0) / self.cell).astype(np.int64)
        idx = np.clip(idx, -self._OFFSET + 1, self._OFFSET - 2)
        total = np.zeros(len(x), dtype=np.int64)
        for d in np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij")).reshape(3, -1).T:
            k = self._key(idx + d)
            pos = np.clip(np.searchsorted(self.keys, k), 0, len(self.keys) - 1)
            total += np.where(self.keys[pos] == k, self.counts[pos], 0)
        return total

    def inside(self, x: np.ndarray) -> np.ndarray:
        return self.density(x) >= self.min_stars

    def cell_indices(self) -> np.ndarray:
        """The occupied cells' integer indices (k, 3)."""
        mask = (1 << 21) - 1
        return np.stack([(self.keys >> 42) & mask, (self.keys >> 21) & mask, self.keys & mask], axis=1) - self._OFFSET

    def smoothed_density(self, x: np.ndarray, sigma: Any = (1.0, 1.0, 0.0)) -> np.ndarray:
        """Training stars per cell at each normalised θ (n,), from the single cells' counts smoothed by a Gaussian
        of ``sigma`` cells along each label: along a label with σ > 0 linear between the smoothed cells' centres,
        along one with σ = 0 the count of the θ's own cell (no smoothing there). Unlike :meth:`density` (the
        27-cell box, which widens the density by ±1 cell along every label), this keeps the widening to what
        ``sigma`` asks; the default smooths the Poisson noise in Teff and log g and leaves [Fe/H], which the
        photometry constrains least, at the resolution of its cells."""
        from scipy import ndimage

        s = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (3,))
        if np.any(s < 0) or not np.all(np.isfinite(s)):
            raise ConfigError(f"domain density: smoothing σ must be >= 0 cells; got {s.tolist()}")
        idx = self.cell_indices()
        pad = np.ceil(4 * s).astype(np.int64) + 2
        lo = idx.min(axis=0) - pad
        hist = np.zeros(tuple(idx.max(axis=0) - lo + pad + 1), dtype=np.float64)
        np.add.at(hist, tuple((idx - lo).T), self.counts)
        if np.any(s > 0):
            hist = ndimage.gaussian_filter(hist, s, mode="constant", truncate=4.0)
        u = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0) / self.cell
        coords = np.where(s > 0, u - 0.5, np.floor(u)) - lo  # cell-centre coordinates; own cell where σ = 0
        return np.maximum(ndimage.map_coordinates(hist, coords.T, order=1, mode="constant", cval=0.0), 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "cell": self.cell,
            "min_stars": self.min_stars,
            "theta_min": self.lo.tolist(),
            "theta_max": self.hi.tolist(),
            "cells": self.keys.tolist(),
            "counts": self.counts.tolist(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Domain:
        return cls(
            float(d["cell"]),
            int(d["min_stars"]),
            np.asarray(d["cells"], dtype=np.int64),
            np.asarray(d["counts"], dtype=np.int64),
            np.asarray(d["theta_min"], dtype=np.float64),
            np.asarray(d["theta_max"], dtype=np.float64),
        )


class StellarModel:
    """A trained data-driven stellar model: the Keras network, its label normalisation and (for a model trained
    here) its training domain. ``outside``: what predictions do at θ outside the domain (:data:`OUTSIDE`)."""

    def __init__(self, keras_model, norm: Normalisation, domain: Domain | None = None, outside: str = "warn"):
        if outside not in OUTSIDE:
            raise ConfigError(f"outside must be one of {', '.join(OUTSIDE)}; got {outside!r}")
        self.keras_model = keras_model
        self.norm = norm
        self.domain = domain
        self.outside = outside
        self._w = Weights.of(keras_model) if keras_model is not None else None

    @classmethod
    def from_weights(
        cls, weights: Weights, norm: Normalisation, domain: Domain | None = None, outside: str = "warn"
    ) -> StellarModel:
        """A model from the network's weights alone (no Keras model: it evaluates but cannot be saved)."""
        model = cls(None, norm, domain, outside)
        model._w = weights
        return model

    def in_domain(self, theta: Any) -> np.ndarray:
        """Whether each θ lies where the model was trained (True everywhere for a model without a domain)."""
        th = _theta(theta)
        if self.domain is None:
            return np.ones(len(th), dtype=bool)
        return self.domain.inside(self.norm.x(th))

    def _forward(self, theta: Any, outside: str | None = None, jacobian: bool = False) -> tuple[np.ndarray, ...]:
        th = _theta(theta)
        bad = ~np.isfinite(th).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise DataError(f"theta is NaN or infinite in {len(rows)} row(s), first {rows[:5].tolist()}")
        x = self.norm.x(th)
        out_arrays = forward(self._w, x, jacobian=jacobian)  # (BM, R) or (BM, R, dBM/dx, dR/dx)
        policy = outside or self.outside
        if self.domain is not None and policy != "ignore":
            out = ~self.domain.inside(x)
            if out.any():
                rows = np.flatnonzero(out)
                msg = (
                    f"{len(rows)} of {len(th)} θ outside the model's training domain (fewer than "
                    f"{self.domain.min_stars} training stars nearby; training θ spans Teff "
                    f"{self.domain.lo[0]:.0f}-{self.domain.hi[0]:.0f} K, log g {self.domain.lo[1]:.2f}-"
                    f"{self.domain.hi[1]:.2f}, [Fe/H] {self.domain.lo[2]:.2f}-{self.domain.hi[2]:.2f}), first rows "
                    f"{rows[:5].tolist()} (θ {th[rows[0]].tolist()})"
                )
                if policy == "error":
                    raise DataError(msg)
                if policy == "nan":
                    out_arrays = tuple(a.copy() for a in out_arrays)
                    for a in out_arrays:
                        a[out] = np.nan
                else:
                    log.warning("%s: predictions there are extrapolations", msg)
        return out_arrays

    def predict_absolute_magnitudes(self, theta: Any, outside: str | None = None) -> np.ndarray:
        """Dust-free absolute magnitudes M(θ) [mag], shape (n, 13)."""
        return from_colour(self._forward(theta, outside)[0])

    def reddening_vector(self, theta: Any, outside: str | None = None) -> np.ndarray:
        """Extinction per unit reddening R(θ) = A / E [mag per mag of E(B-V), SFD scale], shape (n, 13)."""
        return self._forward(theta, outside)[1]

    @property
    def components(self) -> int:
        """K, the reddening components (paper Eq. 20; 1 for the paper's model)."""
        return self._w.components

    def reddening_components(self, theta: Any, outside: str | None = None) -> np.ndarray:
        """The K reddening components R_1(θ) = R(θ), R_2(θ) … R_K(θ) [mag per unit E_k], shape (n, K, 13): the
        further ones orthogonal to R over the 13 bands and of its norm (``ddstars.model.network``)."""
        r = self._forward(theta, outside)[1]
        return components(self._w, self.norm.x(_theta(theta)), r)

    def predict_apparent(self, theta: Any, distance_modulus: Any, E: Any, outside: str | None = None) -> np.ndarray:
        """Apparent magnitudes m = M(θ) + μ + E R(θ) [mag], shape (n, 13).

        ``distance_modulus`` μ [mag] and ``E`` [mag, SFD E(B-V) scale] broadcast against the stars.
        """
        bm, r = self._forward(theta, outside)
        m = from_colour(bm)
        mu = np.asarray(distance_modulus, dtype=np.float64).reshape(-1, 1)
        e = np.asarray(E, dtype=np.float64).reshape(-1, 1)
        return m + mu + e * r

    def jacobians(self, theta: Any, outside: str | None = None) -> tuple[np.ndarray, ...]:
        """M(θ), R(θ) and their derivatives dM/dθ, dR/dθ [per unit of Teff, log g, [Fe/H]], shapes (n, 13) and
        (n, 13, 3); analytic, through the network's two sigmoid layers."""
        bm, r, j_bm, j_r = self._forward(theta, outside, jacobian=True)
        per_theta = 1.0 / self.norm.std  # dx/dθ
        return likelihood.from_colour(bm), r, likelihood.from_colour(j_bm) * per_theta, j_r * per_theta

    def prepare(self, stars: Stars) -> likelihood.Prepared:
        """``stars`` in the model's units: targets, observed components, photometry + parallax covariance."""
        return likelihood.prepare(stars, self.norm)

    def evaluate(
        self, stars: Stars, options: Any = None, paper: bool = True, prepared: likelihood.Prepared | None = None
    ) -> likelihood.Evaluation:
        """The likelihood of ``stars`` (a :class:`ddstars.model.data.Stars`) under this model, paper Eqs. 4-9:
        each star's E′, σ²_E′ from its original dust-map prior, χ²/dof with E′ and the full Eq. 4 covariance.

        ``options``: training options (``config['train']``) whose likelihood settings apply; ``paper``: the
        paper's χ² (no diagonal inflation; else training's). Memory is 13×13 doubles per star: evaluate a
        large catalog in chunks of stars (``stars.subset(slice)``). ``prepared``: :meth:`prepare` of the same
        stars, to evaluate them twice without preparing them twice."""
        o = likelihood.settings(options, paper=paper)
        p = self.prepare(stars) if prepared is None else prepared
        return likelihood.evaluate(self._w, p, stars, o)

    def as_frame(self, theta: Any, outside: str | None = None) -> pd.DataFrame:
        """M and R of each star as a DataFrame (columns M_<band>, R_<band>)."""
        bm, r = self._forward(theta, outside)
        m = from_colour(bm)
        return pd.DataFrame(
            {
                **{f"M_{b}": m[:, i] for i, b in enumerate(BAND_NAMES)},
                **{f"R_{b}": r[:, i] for i, b in enumerate(BAND_NAMES)},
            }
        )

    def save(self, folder: str | Path) -> None:
        """``<folder>/model.keras`` and ``<folder>/normalisation.json``, each written atomically."""
        from ..io import write_json

        if self.keras_model is None:
            raise TypeError("a model made from weights alone has no Keras model to save")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{os.getpid()}.{MODEL_FILE}"
        try:
            self.keras_model.save(tmp)
            os.replace(tmp, folder / MODEL_FILE)
        finally:
            tmp.unlink(missing_ok=True)
        doc = self.norm.to_json()
        if self.domain is not None:
            doc["domain"] = self.domain.to_json()
        write_json(doc, folder / NORMALISATION_FILE)


def load_model(path: str | Path, outside: str = "warn") -> StellarModel:
    """The model in folder ``path`` (``model.keras`` + ``normalisation.json``), or the ``.keras`` file
    ``path`` with ``normalisation.json`` beside it; ``outside`` as :class:`StellarModel`."""
    import keras

    path = Path(path)
    folder, model_file = (path.parent, path) if path.suffix == ".keras" else (path, path / MODEL_FILE)
    if not model_file.is_file():
        raise FileNotFoundError(f"{model_file}: no trained model there (run the train_model rule first)")
    norm_file = folder / NORMALISATION_FILE
    if not norm_file.is_file():
        raise DataError(f"{norm_file}: the label normalisation is missing; the model cannot be used without it")
    try:
        doc = json.loads(norm_file.read_text())
        norm = Normalisation.from_json(doc)
        domain = Domain.from_json(doc["domain"]) if "domain" in doc else None
    except (KeyError, ValueError, TypeError) as err:
        raise DataError(f"{norm_file}: not a valid normalisation file ({type(err).__name__}: {err})") from err
    try:
        keras_model = keras.saving.load_model(model_file, compile=False)
    except Exception as err:  # Keras raises many kinds (ValueError, OSError, zipfile.BadZipFile, KeyError, ...)
        raise DataError(
            f"{model_file}: not a readable Keras model ({type(err).__name__}: {err}); expected the model.keras "
            "(a zip archive) that rule train_model writes. Snakemake does not remake an output that is newer "
            "than its inputs: delete the file and run again, or run with --forcerun train_model"
        ) from None
    names = {layer.name for layer in keras_model.layers}
    if not {"BM", "R"} <= names:
        raise DataError(
            f"{model_file}: a Keras model without the stellar model's layers BM and R (has {sorted(names)}); "
            "not a model trained by this project"
        )
    return StellarModel(keras_model, norm, domain, outside)
