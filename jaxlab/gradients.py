"""Hand-written backward rules (the lab's chain rule, Exercise 2) as ``jax.custom_vjp`` blocks.

Each block's forward sits right above its ``_fwd`` / ``_bwd`` pair; the backward rule reads like
the lab's derivation and names the residuals it saves. Composed, the blocks give the network's
loss gradient for any widths: ``jax.grad(manual_loss)`` never differentiates ``tanh``, ``exp`` or
``log`` itself. :func:`network_loss` picks the gradient ``method`` ("autodiff" or "manual"); both
work under ``jit``, ``vmap`` and ``grad``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlab.errors import check_choice
from jaxlab.losses import EPS, LOSSES, bce_lab, bce_logit, one_minus, sigmoid
from jaxlab.network import Dataset
from jaxlab.network import loss as autodiff_loss
from jaxlab.network import tanh as _tanh

__all__ = [
    "METHODS",
    "dense",
    "manual_loss",
    "network_loss",
    "sigmoid_bce_lab",
    "sigmoid_bce_logit",
    "tanh",
]

METHODS = ("autodiff", "manual")


# --- dense layer: z_in = b + x @ W ----------------------------------------------------------
@jax.custom_vjp
def dense(x, W, b):
    """``x`` (n, d_in) @ ``W`` (d_in, d_out) + ``b`` (d_out,) -> (n, d_out)."""
    return x @ W + b[None, :]  # explicit rank: no implicit promotion


def _dense_fwd(x, W, b):
    return dense(x, W, b), (x, W)


def _dense_bwd(res, g):
    x, W = res  # g = dL/dz_in, (n, d_out)
    dL_dx = g @ W.T  # dz_in/dx_i = W_ij          (Q13)
    dL_dW = x.T @ g  # dz_in_j/dW_ij = x_i        (Q12)
    dL_db = g.sum(axis=0)  # dz_in/db = 1        (Q11)
    return dL_dx, dL_dW, dL_db


dense.defvjp(_dense_fwd, _dense_bwd)


# --- tanh hidden unit: z_out = tanh(z_in) ---------------------------------------------------
@jax.custom_vjp
def tanh(z):
    """Elementwise ``tanh``; backward ``1 - tanh(z)^2`` from the saved output (Q4, Q10)."""
    return _tanh(z)


def _tanh_fwd(z):
    z_out = _tanh(z)
    return z_out, z_out


def _tanh_bwd(z_out, g):
    return (g * (1.0 - z_out * z_out),)


tanh.defvjp(_tanh_fwd, _tanh_bwd)


# --- sigmoid output and the lab's cross-entropy ---------------------------------------------
@jax.custom_vjp
def sigmoid_bce_lab(f_in, y):
    """The lab's loss of logits ``f_in`` (n,) against labels ``y`` (n,): mean BCE with ``1e-15``."""
    return bce_lab(sigmoid(f_in), y)


def _sigmoid_bce_lab_fwd(f_in, y):
    f_out = sigmoid(f_in)
    return bce_lab(f_out, y), (f_out, y)


def _sigmoid_bce_lab_bwd(res, g):
    f_out, y = res
    n = f_out.shape[-1]
    dL_dfout = -y / (f_out + EPS) + (1.0 - y) / (one_minus(f_out) + EPS)  # Q1, the lab's eps
    dfout_dfin = f_out * (1.0 - f_out)  # Q2, Q3
    return g * dL_dfout * dfout_dfin / n, None  # the mean over points; labels are data


sigmoid_bce_lab.defvjp(_sigmoid_bce_lab_fwd, _sigmoid_bce_lab_bwd)


# --- sigmoid output and the stable cross-entropy ---------------------------------------------
@jax.custom_vjp
def sigmoid_bce_logit(f_in, y):
    """Stable mean BCE from logits ``f_in`` (n,): ``mean(softplus(f_in) - y f_in)``."""
    return bce_logit(f_in, y)


def _sigmoid_bce_logit_fwd(f_in, y):
    return bce_logit(f_in, y), (sigmoid(f_in), y)


def _sigmoid_bce_logit_bwd(res, g):
    f_out, y = res
    n = f_out.shape[-1]
    return g * (f_out - y) / n, None  # dL/dfout * dfout/dfin simplifies to f_out - y


sigmoid_bce_logit.defvjp(_sigmoid_bce_logit_fwd, _sigmoid_bce_logit_bwd)

_OUTPUT_BLOCKS = {"lab": sigmoid_bce_lab, "logit": sigmoid_bce_logit}


def manual_loss(params, data: Dataset, kind: str = "lab"):
    """The network's loss built from the hand-written blocks; same value as
    :func:`jaxlab.network.loss`, gradient by the chain rule above."""
    check_choice("loss", kind, LOSSES)
    dtype = jax.tree.leaves(params)[0].dtype
    h = jnp.asarray(data.x, dtype)
    for layer in params[:-1]:
        h = tanh(dense(h, layer.W, layer.b))
    last = params[-1]
    f_in = dense(h, last.W, last.b)[:, 0]
    return _OUTPUT_BLOCKS[kind](f_in, jnp.asarray(data.y, dtype))


def network_loss(data: Dataset, kind: str = "lab", method: str = "autodiff"):
    """``params -> loss`` on ``data``, whose ``jax.grad`` is the ``method``'s gradient."""
    check_choice("loss", kind, LOSSES)
    check_choice("method", method, METHODS)
    base = manual_loss if method == "manual" else autodiff_loss
    return lambda params: base(params, data, kind)
