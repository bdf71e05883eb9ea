"""Loading the published Green et al. model from its released files (ddstars.model.published).

A synthetic HDF5 file in the release's layout (tf.keras 2 full-model file, weights under
``model_weights/<layer>/<layer>/kernel:0``) with random weights is loaded and checked against a plain-NumPy
forward pass written here; broken files must fail with errors naming the file and the dataset or key. The
vendored real release is checked against the authors' tutorial output.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from ddstars.bands import BAND_NAMES
from ddstars.errors import DataError
from ddstars.model.published import NORMALISATION_FILE, VENDORED_DIR, WEIGHTS_FILE, load_published

MED = [5372.01611328125, 4.066964149475098, -0.24608156085014343]
STD = [902.8016357421875, 0.8892691731452942, 0.3739211857318878]
# (name, kernel shape, has bias, activation) of the released layers that carry weights
SPEC = [
    ("stellar_model_hidden_1", (3, 32), True, "sigmoid"),
    ("R", (3, 13), True, "exponential"),
    ("stellar_model_hidden_2", (32, 32), True, "sigmoid"),
    ("BM", (32, 13), True, "linear"),
    ("BA", (13, 13), False, "linear"),
]
EMPTY = ["theta", "E", "A", "LT", "B_M_plus_A", "LT_B_M_plus_A"]
THETA = np.array([[5780.0, 4.44, 0.0], [4200.0, 1.8, -0.9], [6900.0, 4.1, 0.3], [3700.0, 4.7, -0.2]])


def _b():
    b = np.eye(13)
    b[1:, 0] = -1.0
    return b


def _random_weights(seed=3):
    rng = np.random.default_rng(seed)
    w = {}
    for name, shape, _, _ in SPEC:
        if name == "BA":
            w["BA/kernel"] = _b().T.astype(np.float32)
            continue
        w[f"{name}/kernel"] = rng.normal(0, 0.7, shape).astype(np.float32)
        w[f"{name}/bias"] = rng.normal(0, 0.3, shape[1]).astype(np.float32)
    w["R/kernel"] *= np.float32(0.1)
    w["R/bias"] = np.log(np.linspace(3.5, 0.05, 13)).astype(np.float32)
    return w


def _config(activation_override=None):
    layers = [{"class_name": "InputLayer", "config": {"name": n}, "name": n} for n in ("theta", "E", "LT")]
    for name, shape, bias, act in SPEC:
        act = (activation_override or {}).get(name, act)
        cfg = {"name": name, "units": shape[1], "activation": act, "use_bias": bias}
        layers.append({"class_name": "Dense", "config": cfg, "name": name})
    return json.dumps(
        {"class_name": "Model", "config": {"name": "green2020_stellar_photometry_model", "layers": layers}}
    )


def write_release(path, w, *, drop=(), full_model=True, config=None):
    """``w`` written as tf.keras 2.2.4 does: a full-model file (``model_config`` + ``model_weights``) or,
    with ``full_model=False``, a ``save_weights`` file (layer groups at the root, no config)."""
    with h5py.File(path, "w") as f:
        if full_model:
            f.attrs["keras_version"] = b"2.2.4-tf"
            f.attrs["backend"] = b"tensorflow"
            f.attrs["model_config"] = (config or _config()).encode()
            root = f.create_group("model_weights")
        else:
            root = f
        names = [s[0] for s in SPEC] + EMPTY
        root.attrs["layer_names"] = np.array([n.encode() for n in names])
        for name in EMPTY:
            root.create_group(name).attrs["weight_names"] = np.array([], dtype=np.float64)
        for name, _, bias, _ in SPEC:
            g = root.create_group(name)
            kinds = ["kernel", "bias"] if bias else ["kernel"]
            g.attrs["weight_names"] = np.array([f"{name}/{k}:0".encode() for k in kinds])
            for k in kinds:
                if f"{name}/{k}" not in drop:
                    g.create_dataset(f"{name}/{k}:0", data=w[f"{name}/{k}"])
        if full_model:
            f.create_group("optimizer_weights").create_dataset("Adam/iter:0", data=np.int64(7))


def write_norm(path, med=MED, std=STD, drop=None):
    d = {"theta_med": med, "theta_std": std}
    if drop:
        del d[drop]
    path.write_text(json.dumps(d))


def numpy_forward(w, theta, E):
    """Independent reference: normalise, two sigmoid layers, BM, R = exp(x Wr + br); M from the colour
    basis, and the network output B(M + E R) = BM + (E R) @ BA."""
    x = (np.asarray(theta, float) - np.array(MED)) / np.array(STD)
    k = {n: np.asarray(v, dtype=np.float64) for n, v in w.items()}
    h1 = 1 / (1 + np.exp(-(x @ k["stellar_model_hidden_1/kernel"] + k["stellar_model_hidden_1/bias"])))
    h2 = 1 / (1 + np.exp(-(h1 @ k["stellar_model_hidden_2/kernel"] + k["stellar_model_hidden_2/bias"])))
    bm = h2 @ k["BM/kernel"] + k["BM/bias"]
    r = np.exp(x @ k["R/kernel"] + k["R/bias"])
    m = np.linalg.solve(_b(), bm.T).T  # M = B^-1 (B M)
    out = bm + (np.asarray(E, float).reshape(-1, 1) * r) @ k["BA/kernel"]
    return m, r, out


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    d = tmp_path_factory.mktemp("published")
    w = _random_weights()
    write_release(d / WEIGHTS_FILE, w)
    write_norm(d / NORMALISATION_FILE)
    return d, w, load_published(d / WEIGHTS_FILE, d / NORMALISATION_FILE)


def test_synthetic_release_matches_numpy_forward_pass(synthetic):
    _, w, model = synthetic
    E = np.array([0.0, 0.3, 1.2, 2.5])
    mu = np.array([5.0, 10.0, 12.5, 8.0])
    m_ref, r_ref, out_ref = numpy_forward(w, THETA, E)
    np.testing.assert_allclose(model.predict_absolute_magnitudes(THETA), m_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.reddening_vector(THETA), r_ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(
        model.predict_apparent(THETA, mu, E), m_ref + mu[:, None] + E[:, None] * r_ref, atol=1e-9
    )
    np.testing.assert_allclose(model.predict_mag_colour(THETA, E), out_ref, atol=1e-9)
    frame = model.as_frame(THETA)
    assert list(frame.columns) == [f"M_{b}" for b in BAND_NAMES] + [f"R_{b}" for b in BAND_NAMES]
    np.testing.assert_allclose(frame[[f"R_{b}" for b in BAND_NAMES]].to_numpy(), r_ref, rtol=1e-12)
    assert model.info == {"keras_version": "2.2.4-tf", "model_name": "green2020_stellar_photometry_model"}


def test_published_model_is_a_stellar_model_and_its_keras_network_agrees(synthetic):
    from ddstars.model import StellarModel

    _, w, model = synthetic
    assert isinstance(model, StellarModel)
    x = ((THETA - np.array(MED)) / np.array(STD)).astype(np.float32)
    bm, r = model.keras_model.predict(x, verbose=0)
    m_ref, r_ref, _ = numpy_forward(w, THETA, 0.0)
    np.testing.assert_allclose(r, r_ref, rtol=1e-5)
    np.testing.assert_allclose(bm, (_b() @ m_ref.T).T, atol=1e-4)


def test_weights_only_layout_loads_too(tmp_path, synthetic):
    _, w, model = synthetic
    write_release(tmp_path / "w.h5", w, full_model=False)
    write_norm(tmp_path / "n.json")
    other = load_published(tmp_path / "w.h5", tmp_path / "n.json")
    np.testing.assert_array_equal(other.predict_apparent(THETA, 3.0, 0.5), model.predict_apparent(THETA, 3.0, 0.5))


@pytest.fixture
def files(tmp_path):
    write_norm(tmp_path / NORMALISATION_FILE)
    return tmp_path / WEIGHTS_FILE, tmp_path / NORMALISATION_FILE


def test_missing_dataset_names_file_and_dataset(files):
    wpath, npath = files
    write_release(wpath, _random_weights(), drop=("R/bias",))
    with pytest.raises(DataError, match=r"green2020_nn_model\.h5: dataset /model_weights/R/R/bias:0 is missing"):
        load_published(wpath, npath)


def test_missing_layer_group(files):
    wpath, npath = files
    write_release(wpath, _random_weights())
    with h5py.File(wpath, "a") as f:
        del f["model_weights/BM"]
    with pytest.raises(DataError, match=r"green2020_nn_model\.h5: group /model_weights/BM is missing"):
        load_published(wpath, npath)


def test_wrong_shape_names_dataset_and_shapes(files):
    wpath, npath = files
    w = _random_weights()
    w["BM/kernel"] = w["BM/kernel"][:, :12]
    write_release(wpath, w)
    with pytest.raises(
        DataError, match=r"dataset /model_weights/BM/BM/kernel:0 has shape \(32, 12\), expected \(32, 13\)"
    ):
        load_published(wpath, npath)


def test_ba_kernel_must_be_the_colour_basis(files):
    wpath, npath = files
    w = _random_weights()
    w["BA/kernel"] = np.eye(13, dtype=np.float32)
    write_release(wpath, w)
    with pytest.raises(DataError, match="'BA' kernel is not Bᵀ"):
        load_published(wpath, npath)


def test_config_with_other_activation_is_refused(files):
    wpath, npath = files
    write_release(wpath, _random_weights(), config=_config({"R": "softplus"}))
    with pytest.raises(DataError, match=r"model_config layer 'R' has .* \(13, 'softplus', True\)"):
        load_published(wpath, npath)


def test_non_hdf5_file(files):
    wpath, npath = files
    wpath.write_text("not hdf5")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        load_published(wpath, npath)


@pytest.mark.parametrize("key", ["theta_med", "theta_std"])
def test_missing_normalisation_key(files, key):
    wpath, npath = files
    write_release(wpath, _random_weights())
    write_norm(npath, drop=key)
    with pytest.raises(DataError, match=rf"green2020_theta_normalization\.json: key '{key}' is missing"):
        load_published(wpath, npath)


def test_bad_normalisation_values(files):
    wpath, npath = files
    write_release(wpath, _random_weights())
    write_norm(npath, std=[900.0, 0.0, 0.4])
    with pytest.raises(DataError, match="'theta_std' must be positive"):
        load_published(wpath, npath)
    write_norm(npath, med=[5000.0, 4.0])
    with pytest.raises(DataError, match="'theta_med' must hold 3 finite numbers"):
        load_published(wpath, npath)


def test_missing_files_say_where_to_get_them(tmp_path, files):
    wpath, npath = files
    with pytest.raises(FileNotFoundError, match="gregreen/green2020-stellar-model"):
        load_published(tmp_path / "absent.h5", npath)
    write_release(wpath, _random_weights())
    with pytest.raises(FileNotFoundError, match="zenodo.3902382"):
        load_published(wpath, tmp_path / "absent.json")


# --- the vendored release ---------------------------------------------------------------------------------

vendored = pytest.mark.skipif(
    not (VENDORED_DIR / WEIGHTS_FILE).is_file(), reason="resources/published/green2020 not in this checkout"
)


@pytest.fixture(scope="module")
def published():
    return load_published()


@vendored
def test_vendored_release_reproduces_the_tutorial(published):
    # the authors' Tutorial.ipynb prints B(M + E R) for θ = (5780, 4.44, 0), E = 1 (TensorFlow, float32)
    tutorial = [7.2703366, 1.1075444, -1.191765, 1.5100713, 0.05175792, -0.7712101, -1.2628962, -1.5787522,
                -2.9126182, -3.578178, -3.8257403, -1.3119253, -0.65782547]  # fmt: skip
    np.testing.assert_allclose(published.predict_mag_colour([[5780.0, 4.44, 0.0]], 1.0)[0], tutorial, atol=2e-5)
    # released R at the median θ = exp(R bias) (METHOD.md §3)
    r_med = published.reddening_vector([MED])[0]
    np.testing.assert_allclose(r_med[:12], [2.605, 3.414, 1.947, 3.863, 2.794, 2.063, 1.582, 1.266, 0.763, 0.399,
                                            0.207, 0.054], atol=6e-4)  # fmt: skip
    assert 0 < r_med[12] < 1e-6
    assert published.info["keras_version"] == "2.2.4-tf"


@vendored
def test_vendored_release_is_plausible_for_the_sun(published):
    sun = [[5772.0, 4.44, 0.0]]
    m = published.predict_absolute_magnitudes(sun)[0]
    r = published.reddening_vector(sun)[0]
    assert abs(m[0] - 4.6) < 0.5
    assert 2.0 < r[0] < 3.0
    assert m[1] > m[0] > m[2]  # BP fainter than G fainter than RP for a G2 dwarf
    np.testing.assert_allclose(published.predict_apparent(sun, 10.0, 0.2)[0], m + 10.0 + 0.2 * r)
