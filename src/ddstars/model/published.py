"""The published Green et al. (2021) model, loaded from its released files for comparison with ours.

The release is GitHub ``gregreen/green2020-stellar-model`` (commit 48225e8, identical to Zenodo
10.5281/zenodo.3902382), MIT licence. A copy is vendored in ``resources/published/green2020/``:

* ``green2020_nn_model.h5``: a tf.keras 2.2.4-tf full-model HDF5 file. Root attributes ``model_config``
  (JSON), ``training_config``, ``keras_version``, ``backend``; groups ``model_weights`` and
  ``optimizer_weights``. Each layer is a group ``model_weights/<layer>`` whose attribute ``weight_names``
  lists its datasets, e.g. ``model_weights/BM/BM/kernel:0`` (32, 13) and ``model_weights/BM/BM/bias:0`` (13,).
  Layers with weights: ``stellar_model_hidden_1`` (3, 32) + (32,), ``stellar_model_hidden_2`` (32, 32) + (32,),
  ``BM`` (32, 13) + (13,), ``R`` (3, 13) + (13,), ``BA`` (13, 13) frozen, no bias, equal to Bᵀ.
* ``green2020_theta_normalization.json``: ``{"theta_med": [Teff, logg, FeH], "theta_std": [...]}``.

The released network maps normalised θ (and E) to B(M + E R): output 0 is M_G + E R_G, output X is
(M_X - M_G) + E (R_X - R_G), in the band order G, BP, RP, PS1 g r i z y, 2MASS J H Ks, unWISE W1 W2 (the
order of :data:`ddstars.bands.BAND_NAMES`; unWISE in AB, as our catalog carries it). ``R`` (exp of a linear
function of θ) is the per-band extinction vector, which the frozen layer ``BA`` maps into the colour basis.
This is exactly the structure of our own network (:mod:`ddstars.model.network`), so the published weights are
placed into our Keras network and the result *is* a :class:`~ddstars.model.api.StellarModel`:

    >>> from ddstars.model.published import load_published
    >>> pub = load_published()  # the vendored files; or load_published(weights_path, normalisation_path)
    >>> pub.predict_absolute_magnitudes([[5780.0, 4.44, 0.0]])  # (1, 13), M_G ≈ 4.60

The HDF5 file is read with h5py only; its tf.keras 2 model config is parsed as JSON to check the layer
sizes and activations, never deserialised by Keras.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..bands import N_BANDS
from ..errors import DataError
from .api import StellarModel
from .likelihood import Normalisation
from .network import HIDDEN

RELEASE_REPOSITORY = "gregreen/green2020-stellar-model"
RELEASE_COMMIT = "48225e859e12bb59dcd1b8162f3a5ece121dc577"
RELEASE_DOI = "10.5281/zenodo.3902382"
WEIGHTS_FILE = "green2020_nn_model.h5"
NORMALISATION_FILE = "green2020_theta_normalization.json"
NORMALISATION_KEYS = ("theta_med", "theta_std")
# src/ddstars/model/published.py -> repository root; present in a source checkout, not in an installed wheel
VENDORED_DIR = Path(__file__).resolve().parents[3] / "resources" / "published" / "green2020"

# layer -> (kernel shape, bias shape or None, activation, units) in the released model
LAYERS: dict[str, tuple[tuple[int, int], tuple[int] | None, str, int]] = {
    "stellar_model_hidden_1": ((3, HIDDEN), (HIDDEN,), "sigmoid", HIDDEN),
    "stellar_model_hidden_2": ((HIDDEN, HIDDEN), (HIDDEN,), "sigmoid", HIDDEN),
    "BM": ((HIDDEN, N_BANDS), (N_BANDS,), "linear", N_BANDS),
    "R": ((3, N_BANDS), (N_BANDS,), "exponential", N_BANDS),
    "BA": ((N_BANDS, N_BANDS), None, "linear", N_BANDS),
}
OUR_LAYERS = ("stellar_model_hidden_1", "stellar_model_hidden_2", "BM", "R")


def colour_basis(n: int = N_BANDS) -> np.ndarray:
    """B (paper Eq. 5): the identity with -1 in column 0 below the diagonal, so (B m) = (m_G, m_X - m_G)."""
    b = np.eye(n)
    b[1:, 0] = -1.0
    return b


class PublishedModel(StellarModel):
    """The published model as a :class:`StellarModel` (same prediction API, same band order), plus where
    it came from and the released network's own output B(M + E R)."""

    def __init__(self, keras_model, norm: Normalisation, weights_path: Path, normalisation_path: Path, info: dict):
        super().__init__(keras_model, norm)
        self.weights_path = Path(weights_path)
        self.normalisation_path = Path(normalisation_path)
        self.info = dict(info)

    def predict_mag_colour(self, theta: Any, E: Any = 0.0) -> np.ndarray:
        """The released network's ``B_M_plus_A`` output, B(M + E R): (M_G + A_G, colours X - G incl.
        reddening) [mag], shape (n, 13); what the authors' tutorial prints as ``predict_mag_color``."""
        bm, r = self._forward(theta)
        e = np.asarray(E, dtype=np.float64).reshape(-1, 1)
        return bm + (e * r) @ colour_basis().T

    def __repr__(self) -> str:
        return f"PublishedModel(weights={str(self.weights_path)!r}, normalisation={str(self.normalisation_path)!r})"


def _attr_text(value: Any) -> str:
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf-8")
    return str(value)


def _layer_root(f, path: Path):
    """The group holding one subgroup per layer: ``model_weights`` of a full-model file, or the root of a
    weights-only (``save_weights``) file."""
    if "model_weights" in f:
        return f["model_weights"]
    if "layer_names" in f.attrs or any(name in f for name in LAYERS):
        return f
    raise DataError(
        f"{path}: no group '/model_weights' (and no layer groups at the root); this is not a Keras HDF5 "
        f"model file in the layout of {RELEASE_REPOSITORY}"
    )


def _dataset(path: Path, root, layer: str, kind: str):
    """Dataset ``kind`` (``kernel`` or ``bias``) of ``layer``, located through the layer's ``weight_names``
    attribute as Keras writes it, else by searching the layer group."""
    expected = f"{root.name.rstrip('/')}/{layer}/{layer}/{kind}:0"
    group = root[layer]
    names = [_attr_text(n) for n in group.attrs.get("weight_names", [])]
    for name in names:
        if name.rsplit("/", 1)[-1].split(":")[0] == kind and name in group:
            return group[name]
    found = []

    def visit(name, obj):
        if hasattr(obj, "shape") and name.rsplit("/", 1)[-1].split(":")[0] == kind:
            found.append(obj)

    group.visititems(visit)
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(f"{path}: dataset {expected} is missing (layer '{layer}' has no {kind})")
    raise DataError(f"{path}: layer '{layer}' has several {kind} datasets: {', '.join(d.name for d in found)}")


def _array(path: Path, ds, shape: tuple[int, ...]) -> np.ndarray:
    if tuple(ds.shape) != tuple(shape):
        raise DataError(f"{path}: dataset {ds.name} has shape {tuple(ds.shape)}, expected {tuple(shape)}")
    arr = np.asarray(ds[()], dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{path}: dataset {ds.name} has non-finite values")
    return arr


def _check_config(path: Path, f) -> dict[str, Any]:
    """Layer sizes and activations from the ``model_config`` JSON attribute, when the file has one."""
    if "model_config" not in f.attrs:
        return {}
    try:
        config = json.loads(_attr_text(f.attrs["model_config"]))
        layers = {lay["config"]["name"]: lay for lay in config["config"]["layers"]}
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: attribute 'model_config' is not a readable Keras model config ({err})") from err
    extra = sorted(n for n in layers if n.startswith("stellar_model_hidden_") and n not in LAYERS)
    if extra:
        raise DataError(f"{path}: model_config has extra hidden layer(s) {', '.join(extra)}; only two are supported")
    for name, (_, bias, activation, units) in LAYERS.items():
        if name not in layers:
            raise DataError(f"{path}: model_config has no layer '{name}'")
        cfg = layers[name]["config"]
        got = (cfg.get("units"), cfg.get("activation"), cfg.get("use_bias"))
        want = (units, activation, bias is not None)
        if got != want:
            raise DataError(
                f"{path}: model_config layer '{name}' has (units, activation, use_bias) = {got}, expected {want}"
            )
    return {"model_name": config["config"].get("name")}


def read_published_weights(weights_path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The released network's weights by our layer name (``<layer>/kernel``, ``<layer>/bias``; float64,
    kernels (in, out)) and a small dict about the file (Keras version, model name).

    Checks every dataset's name and shape, that the values are finite, that the model config (if present)
    declares the expected layers, and that the frozen ``BA`` kernel is Bᵀ, i.e. that ``R`` is the per-band
    extinction vector. Raises :class:`DataError` naming the file and dataset otherwise.
    """
    import h5py

    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: published model weights not found; get {WEIGHTS_FILE} from https://github.com/"
            f"{RELEASE_REPOSITORY} (commit {RELEASE_COMMIT[:7]}) or https://doi.org/{RELEASE_DOI}"
        )
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file ({err})") from err
    with f:
        info = {"keras_version": _attr_text(f.attrs.get("keras_version", "")) or None}
        info.update(_check_config(path, f))
        root = _layer_root(f, path)
        out: dict[str, np.ndarray] = {}
        for layer, (kshape, bshape, _, _) in LAYERS.items():
            if layer not in root:
                present = ", ".join(sorted(root.keys())) or "none"
                raise DataError(f"{path}: group {root.name.rstrip('/')}/{layer} is missing (layers present: {present})")
            out[f"{layer}/kernel"] = _array(path, _dataset(path, root, layer, "kernel"), kshape)
            if bshape is not None:
                out[f"{layer}/bias"] = _array(path, _dataset(path, root, layer, "bias"), bshape)
    ba = out.pop("BA/kernel")
    if not np.allclose(ba, colour_basis().T, rtol=0, atol=1e-6):
        raise DataError(
            f"{path}: the frozen 'BA' kernel is not Bᵀ (identity with -1 in row 0 right of the diagonal); "
            "R cannot be read as a per-band extinction vector"
        )
    return out, info


def read_published_normalisation(normalisation_path: str | Path) -> Normalisation:
    """The released θ normalisation (JSON with ``theta_med`` and ``theta_std``, each (Teff, log g, [Fe/H]))."""
    path = Path(normalisation_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: published θ normalisation not found; get {NORMALISATION_FILE} from https://github.com/"
            f"{RELEASE_REPOSITORY} or https://doi.org/{RELEASE_DOI}"
        )
    try:
        d = json.loads(path.read_text())
    except ValueError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(d, Mapping):
        raise DataError(f"{path}: expected a JSON object with keys {', '.join(NORMALISATION_KEYS)}")
    values = []
    for key in NORMALISATION_KEYS:
        if key not in d:
            raise DataError(f"{path}: key '{key}' is missing (expected keys {', '.join(NORMALISATION_KEYS)})")
        try:
            v = np.asarray(d[key], dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise DataError(f"{path}: key '{key}' is not a list of numbers ({err})") from err
        if v.shape != (3,) or not np.all(np.isfinite(v)):
            raise DataError(f"{path}: key '{key}' must hold 3 finite numbers (Teff, logg, [Fe/H]); got {d[key]!r}")
        values.append(v)
    if not np.all(values[1] > 0):
        raise DataError(f"{path}: key 'theta_std' must be positive; got {values[1].tolist()}")
    return Normalisation(values[0], values[1])


def load_published(
    weights_path: str | Path | None = None, normalisation_path: str | Path | None = None
) -> PublishedModel:
    """The published Green et al. model as a :class:`StellarModel` (a :class:`PublishedModel`).

    ``weights_path`` is the released ``green2020_nn_model.h5`` and ``normalisation_path`` the released
    ``green2020_theta_normalization.json``; either defaults to the copy vendored in
    ``resources/published/green2020/`` of a source checkout. Predictions are in the band order of
    :data:`ddstars.bands.BAND_NAMES` and take θ in physical units (the normalisation is applied inside).
    """
    from .network import build

    weights_path = Path(weights_path) if weights_path is not None else VENDORED_DIR / WEIGHTS_FILE
    normalisation_path = (
        Path(normalisation_path) if normalisation_path is not None else VENDORED_DIR / NORMALISATION_FILE
    )
    weights, info = read_published_weights(weights_path)
    norm = read_published_normalisation(normalisation_path)
    model = build()
    for layer in OUR_LAYERS:
        model.get_layer(layer).set_weights(
            [weights[f"{layer}/kernel"].astype(np.float32), weights[f"{layer}/bias"].astype(np.float32)]
        )
    return PublishedModel(model, norm, weights_path, normalisation_path, info)


__all__ = [
    "PublishedModel",
    "colour_basis",
    "load_published",
    "read_published_normalisation",
    "read_published_weights",
]
