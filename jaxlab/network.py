"""The lab's network as pure functions on a parameter pytree, for any widths.

A network with widths ``(d, h1, ..., hk, 1)`` has tanh hidden units and one sigmoid output. Its
parameters are a tuple of :class:`Dense` layers, ``W`` of shape ``(d_in, d_out)`` and ``b`` of
shape ``(d_out,)``: ``z_j = tanh(b_j + sum_i x_i W_ij)``. The lab's 2-2-1 network is the default.

The lab's 9-element vector ``(b1, b2, w11, w12, w21, w22, c, u1, u2)`` is, layer by layer, the
biases followed by the weights in row-major order; :func:`to_vector` / :func:`from_vector` convert
for any widths, so numbers compare with the lab's own code.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.errors import ConfigError, check_finite_positive
from jaxlab.losses import bce_lab, bce_logit, sigmoid
from jaxlab.vecmath import tanh64

__all__ = [
    "LAB_DATA",
    "LAB_WIDTHS",
    "Dataset",
    "Dense",
    "check_widths",
    "forward",
    "from_vector",
    "grid",
    "init_params",
    "loss",
    "n_params",
    "predict",
    "tanh",
    "to_vector",
]

LAB_WIDTHS = (2, 2, 1)
MAX_WIDTH = 4096


class Dense(NamedTuple):
    """One layer: ``W`` (d_in, d_out), ``b`` (d_out,)."""

    W: jax.Array
    b: jax.Array


class Dataset(NamedTuple):
    """Inputs ``x`` (n, d) and binary labels ``y`` (n,) in {0, 1}."""

    x: np.ndarray
    y: np.ndarray


LAB_DATA = Dataset(
    x=np.array([[0.0, 0.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0], [0.0, 1.0]]),
    y=np.array([1.0, 0.0, 0.0, 0.0, 0.0]),
)


def check_widths(widths, data: Dataset | None = None) -> tuple[int, ...]:
    """Validate layer widths ``(d_in, h1, ..., 1)``; return them as a tuple of ints."""
    allowed = "a list of at least 2 positive integers ending in 1, e.g. [2, 2, 1]"
    try:
        w = tuple(widths)
    except TypeError:
        raise ConfigError("widths", f"expected {allowed}, got {widths!r}") from None
    if (
        len(w) < 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in w)
        or any(v < 1 or v > MAX_WIDTH for v in w)
    ):
        raise ConfigError("widths", f"expected {allowed} (each <= {MAX_WIDTH}), got {list(w)!r}")
    if w[-1] != 1:
        raise ConfigError(
            "widths", f"the output layer must have width 1 (one sigmoid), got {list(w)!r}"
        )
    if data is not None and w[0] != np.shape(data.x)[1]:
        raise ConfigError(
            "widths",
            f"the input width {w[0]} does not fit the data's {np.shape(data.x)[1]} features; "
            f"use [{np.shape(data.x)[1]}, ..., 1]",
        )
    return w


def n_params(widths=LAB_WIDTHS) -> int:
    """Number of parameters of a network with these widths (9 for the lab's)."""
    w = tuple(widths)
    return sum(a * b + b for a, b in zip(w[:-1], w[1:]))


def to_vector(params) -> jax.Array:
    """Flatten to the lab's order: per layer, ``b`` then ``W`` row-major. Shape (n_params,)."""
    return jnp.concatenate([jnp.concatenate([layer.b, layer.W.reshape(-1)]) for layer in params])


def from_vector(vec, widths=LAB_WIDTHS) -> tuple[Dense, ...]:
    """Inverse of :func:`to_vector`: ``vec`` (n_params,) to a tuple of :class:`Dense`."""
    widths = check_widths(widths)
    vec = jnp.asarray(vec)
    if vec.shape != (n_params(widths),):
        raise ConfigError(
            "vec",
            f"expected shape ({n_params(widths)},) for widths {list(widths)}, got {vec.shape}",
        )
    layers, k = [], 0
    for a, b in zip(widths[:-1], widths[1:]):
        bias = vec[k : k + b]
        k += b
        W = vec[k : k + a * b].reshape(a, b)
        k += a * b
        layers.append(Dense(W=W, b=bias))
    return tuple(layers)


def init_params(key, widths=LAB_WIDTHS, scale=1.0, dtype=None) -> tuple[Dense, ...]:
    """Every parameter i.i.d. N(0, scale^2), the lab's ``rnorm(9, sd = scale)``.

    ``scale`` may be a traced array (it is swept). One draw of ``n_params`` normals in the lab's
    vector order, so the same key gives the same network whatever the dtype's layout.
    """
    widths = check_widths(widths)
    if not isinstance(scale, jax.Array):
        check_finite_positive("scale", scale)
    dtype = dtype or jnp.result_type(float)
    z = jax.random.normal(key, (n_params(widths),), dtype=dtype)
    return from_vector(jnp.asarray(scale, dtype) * z, widths)


@jax.custom_jvp
def _tanh64(x):
    return tanh64(x)


@_tanh64.defjvp
def _tanh64_jvp(primals, tangents):
    (x,), (g,) = primals, tangents
    t = _tanh64(x)
    return t, (g + g * t) * (1.0 - t)  # jax's own rule for tanh: (1 - t^2) from the output


def tanh(x) -> jax.Array:
    """The hidden units' ``tanh``: XLA's in float32, :func:`jaxlab.vecmath.tanh64` (one
    division, vector code) in float64, with the derivative ``1 - tanh^2`` either way."""
    x = jnp.asarray(x)
    return _tanh64(x) if x.dtype == jnp.float64 else jnp.tanh(x)


def forward(params, x) -> jax.Array:
    """Output logits ``f_in`` (n,) for inputs ``x`` (n, d): tanh hidden layers, linear output."""
    h = jnp.asarray(x)
    for layer in params[:-1]:
        h = tanh(h @ layer.W + layer.b[None, :])  # explicit rank: no implicit promotion
    last = params[-1]
    return (h @ last.W + last.b[None, :])[..., 0]


def predict(params, x) -> jax.Array:
    """Probabilities ``f_out = sigmoid(f_in)`` (n,) for inputs ``x`` (n, d)."""
    return sigmoid(forward(params, x))


def loss(params, data: Dataset, kind: str = "lab") -> jax.Array:
    """Mean binary cross-entropy of the network on ``data``; ``kind`` is ``"lab"`` or ``"logit"``
    (see :mod:`jaxlab.losses`). Differentiated by ``jax.grad`` this is the ``autodiff`` method."""
    dtype = jax.tree.leaves(params)[0].dtype
    x = jnp.asarray(data.x, dtype)
    y = jnp.asarray(data.y, dtype)
    z = forward(params, x)
    if kind == "lab":
        return bce_lab(sigmoid(z), y)
    if kind == "logit":
        return bce_logit(z, y)
    raise ConfigError("loss", f"unknown value {kind!r}; allowed: lab, logit")


def grid(lo: float = -2.0, hi: float = 2.0, step: float = 1 / 25) -> np.ndarray:
    """The lab's plotting grid ``expand.grid(x1 = seq(lo, hi, step), x2 = ...)``: (m*m, 2),
    ``x1`` varying fastest; 101 x 101 = 10,201 points by default."""
    n = int(round((hi - lo) / step)) + 1
    s = lo + step * np.arange(n)
    x1, x2 = np.meshgrid(s, s, indexing="xy")
    return np.stack([x1.ravel(), x2.ravel()], axis=1)
