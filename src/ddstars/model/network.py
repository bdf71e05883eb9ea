"""The network of the paper (METHOD.md §3), in Keras 3 (backend-agnostic layers; TensorFlow by default).

Layers, named as in the authors' code and the released model:

* ``stellar_model_hidden_1``, ``_2``: Dense 32, sigmoid, L2 (λ_s = 1e-4) on the kernels;
* ``BM``: Dense 13, linear, no regularisation: M in the colour basis (M_G, M_X - M_G);
* ``R``: Dense 13 fed directly by θ, exponential activation (R > 0), L1 (λ_r = 1e-2) on the kernel;
* with ``components`` K > 1 (paper Eq. 20, ``train.extinction_components``), ``R2`` … ``RK``: Dense 13 fed
  directly by θ, linear, L1 (λ_r) on the kernel (so θ-dependent only where the data ask for it). Their raw
  outputs q_k become the reddening components by :func:`orthonormalise`: Gram–Schmidt against R and the
  earlier components, scaled to the norm of R at the same θ. That fixes the scale (E_k ↔ R_k) and the
  rotation between components exactly (docs/extinction.md).

Inputs are the normalised labels x = (θ - median) / std. The helper :func:`forward` evaluates
(BM, R) with NumPy from the weights, for the covariance and reddening updates between rounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..bands import N_BANDS

HIDDEN = 32
L2_HIDDEN = 1e-4
L1_R = 1e-2


def build(hidden: int = HIDDEN, l2: float = L2_HIDDEN, l1: float = L1_R, seed: int | None = None, components: int = 1):
    """The Keras model x (n, 3) -> [BM (n, 13), R (n, 13)] with Glorot-uniform kernels and zero biases; with
    ``components`` K > 1 also the raw outputs q_2 … q_K (n, 13) of layers ``R2`` … ``RK`` (random-normal biases,
    so that q_k is not near zero at the median θ, where :func:`orthonormalise` divides by its norm)."""
    import keras

    def dense(units, name, k, activation=None, regularizer=None, bias=None):
        init = keras.initializers.GlorotUniform(seed=None if seed is None else seed + k)
        extra = {} if bias is None else {"bias_initializer": bias}
        return keras.layers.Dense(
            units, activation=activation, kernel_regularizer=regularizer, kernel_initializer=init, name=name, **extra
        )

    x = keras.Input(shape=(3,), name="theta")
    h = dense(hidden, "stellar_model_hidden_1", 1, "sigmoid", keras.regularizers.L2(l2))(x)
    h = dense(hidden, "stellar_model_hidden_2", 2, "sigmoid", keras.regularizers.L2(l2))(h)
    bm = dense(N_BANDS, "BM", 3)(h)
    r = dense(N_BANDS, "R", 4, "exponential", keras.regularizers.L1(l1))(x)
    outputs = [bm, r]
    for k in range(2, components + 1):
        bias = keras.initializers.RandomNormal(seed=None if seed is None else seed + 100 + k)
        outputs.append(dense(N_BANDS, f"R{k}", 3 + k, None, keras.regularizers.L1(l1), bias)(x))
    return keras.Model(inputs=x, outputs=outputs, name="stellar_model")


def component_layers(model) -> list[str]:
    """The names of the further reddening components' layers (``R2`` … ``RK``) of a Keras model."""
    names = {layer.name for layer in model.layers}
    out = []
    while f"R{len(out) + 2}" in names:
        out.append(f"R{len(out) + 2}")
    return out


def orthonormalise(r: np.ndarray, raw: list[np.ndarray]) -> np.ndarray:
    """The reddening components (n, K, 13) from R (n, 13) and the raw outputs q_2 … q_K (each (n, 13)): each
    q_k less its projections on R and the earlier components (over the 13 bands, magnitude space), scaled to
    the norm of R at the same θ. With no raw outputs, R alone (n, 1, 13)."""
    comps = [np.asarray(r, dtype=np.float64)]
    norm = np.linalg.norm(comps[0], axis=1, keepdims=True)
    for q in raw:
        q = np.array(q, dtype=np.float64)
        for c in comps:
            q -= (np.sum(q * c, axis=1, keepdims=True) / np.sum(c * c, axis=1, keepdims=True)) * c
        comps.append(q * (norm / np.linalg.norm(q, axis=1, keepdims=True)))
    return np.stack(comps, axis=1)


def orthonormalise_tf(r, raw: list):
    """:func:`orthonormalise` in TensorFlow (the training loss), returning the further components only."""
    import tensorflow as tf

    comps = [r]
    norm = tf.norm(r, axis=1, keepdims=True)
    for q in raw:
        for c in comps:
            q = q - tf.reduce_sum(q * c, axis=1, keepdims=True) / tf.reduce_sum(c * c, axis=1, keepdims=True) * c
        comps.append(q * (norm / tf.norm(q, axis=1, keepdims=True)))
    return comps[1:]


@dataclass(frozen=True)
class Weights:
    """The network's weights as float64 NumPy arrays (kernels are (in, out))."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    w3: np.ndarray
    b3: np.ndarray
    wr: np.ndarray
    br: np.ndarray
    extra: tuple[tuple[np.ndarray, np.ndarray], ...] = ()  # (kernel, bias) of R2 … RK (K > 1 only)

    @classmethod
    def of(cls, model) -> Weights:
        get = [np.asarray(v, dtype=np.float64) for v in _layer_weights(model)]
        extra = tuple(
            tuple(np.asarray(v, dtype=np.float64) for v in model.get_layer(name).get_weights())
            for name in component_layers(model)
        )
        return cls(*get, extra=extra)

    @property
    def components(self) -> int:
        """K: the number of reddening components (1: the paper's model)."""
        return 1 + len(self.extra)


def components(w: Weights, x: np.ndarray, r: np.ndarray | None = None) -> np.ndarray:
    """The K reddening components at normalised labels x (n, 3): (n, K, 13), the first R itself."""
    x = np.asarray(x, dtype=np.float64)
    r = np.exp(x @ w.wr + w.br) if r is None else r
    return orthonormalise(r, [x @ k + b for k, b in w.extra])


def components_jacobian(w: Weights, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """d(components)/dx (n, K-1, 13, 3) of the further components, by central differences (they are smooth
    and cheap: a linear layer and a Gram–Schmidt step)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty((len(x), w.components - 1, N_BANDS, 3))
    for a in range(3):
        d = np.zeros(3)
        d[a] = h
        out[..., a] = (components(w, x + d)[:, 1:] - components(w, x - d)[:, 1:]) / (2 * h)
    return out


def _layer_weights(model):
    out = []
    for name in ("stellar_model_hidden_1", "stellar_model_hidden_2", "BM", "R"):
        k, b = model.get_layer(name).get_weights()
        out += [k, b]
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def forward(w: Weights, x: np.ndarray, jacobian: bool = False):
    """(BM, R) at normalised labels x (n, 3); with ``jacobian`` also dBM/dx and dR/dx, each (n, 13, 3).

    The Jacobians are analytic (chain rule through the two sigmoid layers), so they cost a few small
    matrix products across all stars.
    """
    x = np.asarray(x, dtype=np.float64)
    s1 = _sigmoid(x @ w.w1 + w.b1)
    s2 = _sigmoid(s1 @ w.w2 + w.b2)
    bm = s2 @ w.w3 + w.b3
    r = np.exp(x @ w.wr + w.br)
    if not jacobian:
        return bm, r
    n, h = s1.shape
    # derivatives laid out (n, 3, units) so that each layer is one 2-D matrix product over all stars
    d1 = (s1 * (1 - s1))[:, None, :] * w.w1[None]  # ds1/dx (n, 3, 32)
    d2 = (s2 * (1 - s2))[:, None, :] * (d1.reshape(n * 3, h) @ w.w2).reshape(n, 3, -1)  # ds2/dx
    j_bm = np.swapaxes((d2.reshape(n * 3, -1) @ w.w3).reshape(n, 3, -1), 1, 2)  # (n, 13, 3)
    j_r = r[:, :, None] * w.wr.T[None]
    return bm, r, j_bm, j_r


def _sigmoid_(z: np.ndarray) -> np.ndarray:
    """:func:`_sigmoid` in place."""
    z *= 0.5
    np.tanh(z, out=z)
    z += 1.0
    z *= 0.5
    return z


def forward_t(w: Weights, x_t: np.ndarray, block: int = 128, dtype=np.float64):
    """:func:`forward` with the Jacobians, in the stars-last layout: x_t (3, n) -> BM (13, n), R (13, n),
    dBM/dx (13, 3, n) and dR/dx (13, 3, n), all C-contiguous (for the covariance algebra of covariance.py).

    The stars are cut into blocks of ``block`` and each layer is one stacked matrix product over the
    blocks (and the three input directions for the Jacobian). Each product is then small enough for
    OpenBLAS to run it on the calling thread: the threaded large products were slower, and far slower
    when the other core is busy (the threads wait on each other). Computed in ``dtype`` (weights included).
    """
    if dtype != np.float64:
        w = Weights(*(np.asarray(a, dtype=dtype) for a in (w.w1, w.b1, w.w2, w.b2, w.w3, w.b3, w.wr, w.br)))
    x_t = np.asarray(x_t, dtype=dtype)
    n = x_t.shape[1]
    nb = max(-(-n // block), 1)
    xb = np.zeros((3, nb * block), dtype=dtype)
    xb[:, :n] = x_t
    xb = np.ascontiguousarray(xb.reshape(3, nb, block).transpose(1, 0, 2))  # (nb, 3, block)
    s1 = np.matmul(w.w1.T, xb)
    s1 += w.b1[:, None]
    _sigmoid_(s1)  # (nb, 32, block)
    s2 = np.matmul(w.w2.T, s1)
    s2 += w.b2[:, None]
    _sigmoid_(s2)
    bm = np.matmul(w.w3.T, s2)
    bm += w.b3[:, None]  # before s2 is overwritten by its derivative below
    r = np.matmul(w.wr.T, xb)
    r += w.br[:, None]
    np.exp(r, out=r)
    # ds2/dx along input a: s2' ⊙ (W2ᵀ diag(W1[a]) s1'), the three (32, 32) products stacked
    w21 = w.w2.T[None, :, :] * w.w1[:, None, :]  # (3, 32, 32)
    s1 *= 1 - s1  # s1' (s1 itself is no longer needed)
    d2 = np.matmul(w21, s1[:, None, :, :])  # (nb, 3, 32, block)
    s2 *= 1 - s2
    d2 *= s2[:, None, :, :]
    j = np.matmul(w.w3.T, d2)  # (nb, 3, 13, block)

    def back(a: np.ndarray) -> np.ndarray:  # (nb, ..., block) -> (..., n)
        a = np.moveaxis(a, 0, -2)
        return np.ascontiguousarray(a.reshape(*a.shape[:-2], nb * block)[..., :n])

    bm, r = back(bm), back(r)
    j_bm = back(np.swapaxes(j, 1, 2))  # (13, 3, n)
    j_r = r[:, None, :] * w.wr.T[:, :, None]
    return bm, r, j_bm, j_r
