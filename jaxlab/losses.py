"""The lab's sigmoid and binary cross-entropy, and a numerically stable variant.

Two losses, selected by name wherever a loss is taken (``loss="lab"`` or ``loss="logit"``):

* ``"lab"``: ``-mean(y * log(f + 1e-15) + (1 - y) * log(1 - f + 1e-15))`` with ``f = sigmoid(z)``,
  exactly as the lab writes it. Saturates: once ``f`` rounds to 0 or 1 the loss is capped near
  ``-log(1e-15) = 34.5`` and its gradient vanishes.
* ``"logit"``: ``mean(softplus(z) - y * z)``, the same function computed from the logit ``z``;
  finite for every finite ``z``, with the exact gradient ``sigmoid(z) - y``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlab.vecmath import sigmoid64

__all__ = ["EPS", "LOSSES", "bce_lab", "bce_logit", "one_minus", "sigmoid", "softplus"]

EPS = 1e-15  # the lab's epsilon inside log(), in the loss and in dL/df_out
LOSSES = ("lab", "logit")


@jax.custom_jvp
def sigmoid(x):
    """The lab's ``1 / (1 + exp(-x))``, with the derivative ``s * (1 - s)`` (Exercise 2, Q3).

    Differentiating the formula literally gives ``exp(-x) / (1 + exp(-x))**2``, which in float32
    is ``inf / inf = nan`` or a huge number once ``exp(-x)`` overflows, where ``s (1 - s)`` is 0.
    float64 goes through :func:`jaxlab.vecmath.sigmoid64`, the same formula with one division
    (XLA's float64 ``exp`` has a division of its own and 64-bit integer code AVX2 lacks).
    """
    x = jnp.asarray(x)
    if x.dtype == jnp.float64:
        return sigmoid64(x)
    return 1.0 / (1.0 + jnp.exp(-x))


@sigmoid.defjvp
def _sigmoid_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    s = sigmoid(x)
    return s, s * (1.0 - s) * t


def one_minus(f):
    """``1 - f`` for a probability ``f``, shielded from the ``+ EPS`` that follows it.

    Under ``jit`` XLA's simplifier folds ``(1 - f) + 1e-15`` into ``(1 + 1e-15) - f``, which is
    ``1 - f`` in float32: the lab's epsilon vanishes and ``log(1 - f + eps)`` becomes ``-inf``
    (the loss ``inf``, the gradient NaN) where the lab's own arithmetic gives 34.5. The
    ``abs`` is the identity on [0, 1] and blocks the fold (``maximum(1 - f, 0)`` does too, but
    its tie-breaking derivative cost 12% of the engine's throughput).
    """
    return jnp.abs(1.0 - f)


def softplus(z):
    """``log(1 + exp(z))`` without overflow: ``max(z, 0) + log1p(exp(-|z|))``."""
    return jnp.logaddexp(jnp.zeros_like(z), z)


def bce_lab(f, y):
    """Mean binary cross-entropy of probabilities ``f`` (n,) against labels ``y`` (n,), as the lab."""
    return -jnp.mean(y * jnp.log(f + EPS) + (1.0 - y) * jnp.log(one_minus(f) + EPS))


def bce_logit(z, y):
    """Mean binary cross-entropy from logits ``z`` (n,): ``mean(softplus(z) - y z)``, computed as
    ``y softplus(-z) + (1 - y) softplus(z)`` with each term dropped where its weight is 0, so it
    is never NaN, even where ``z`` itself overflowed to +-inf."""
    pos = jnp.where(y > 0, y * softplus(-z), 0.0)
    neg = jnp.where(y < 1, (1.0 - y) * softplus(z), 0.0)
    return jnp.mean(pos + neg)
