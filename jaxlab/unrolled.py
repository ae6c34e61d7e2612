"""The network's loss for small datasets, unrolled over data points and units at trace time.

The same function as :func:`jaxlab.network.loss`, in another layout for speed: the parameters are
a flat tuple of scalars in the lab's vector order, and the data are Python constants folded into
the trace (a term ``0 * w`` is dropped, ``1 * w`` is ``w``; a label picks its one log term).
Under ``vmap`` over restarts every intermediate is then one contiguous ``(R,)`` vector, where the
array form gives ``(R, n)`` arrays reduced along their short minor axis. Measured on the lab
workload: 2.3x from the layout and 1.8x from the constants (``experiments/PERFORMANCE.md``).

Meant for datasets of a few dozen points and networks of a few hundred parameters: the trace
grows as ``n_points * n_params``. :func:`fits` says whether a problem qualifies.

``method="manual"`` differentiates through one ``jax.custom_vjp`` whose backward pass is the
lab's chain rule (Exercise 2) written on these scalars: per point, ``delta = dL/df_out *
f_out (1 - f_out)`` at the output, then ``delta_j * h_i`` for each weight, ``delta_j`` for each
bias, and ``sum_j W_ij delta_j * (1 - z_i^2)`` back through each tanh layer.

Both methods write each point's output delta as one division (``f (1 - f) / (-n (f + eps))``
for a label 1). XLA materialises a division's result (it does not copy an expensive operation
into each kernel that reads it) but copies cheap ones: written as ``dL/df * f (1 - f) / n``, the
delta was recomputed in each of the nine gradient kernels of a step. With the division, a step
of the lab's network does 384 other operations a restart instead of 611 and runs 1.25x faster
with ``jax.grad`` (326 and 1.26x with the value's tail computed once too,
:func:`jaxlab.descent.advance`; ``benchmarks/bound.py``, ``experiments/PERFORMANCE.md``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlab.errors import check_choice
from jaxlab.gradients import METHODS
from jaxlab.losses import EPS, LOSSES, one_minus, sigmoid, softplus
from jaxlab.network import Dataset, check_widths, n_params, tanh
from jaxlab.vecmath import log_pos64

__all__ = ["fits", "neg_sum_log", "unrolled_loss"]

MAX_TERMS = 4096  # n_points * n_params above which the array form is used instead


def fits(data: Dataset, widths) -> bool:
    """Whether the unrolled form is worth tracing for this dataset and network."""
    return len(data.y) * n_params(widths) <= MAX_TERMS


def _lin(bias, terms):
    """``bias + sum_i h_i w_i`` with constant ``h_i`` folded: 0 drops the term, +-1 the product."""
    s = bias
    for h, w in terms:
        if isinstance(h, float):
            if h == 0.0:
                continue
            s = s + w if h == 1.0 else (s - w if h == -1.0 else s + h * w)
        else:
            s = s + h * w
    return s


def _scaled(h, d):
    """``h * d`` with a constant ``h`` folded, or None when it is zero."""
    if isinstance(h, float):
        if h == 0.0:
            return None
        return d if h == 1.0 else (-d if h == -1.0 else h * d)
    return h * d


_LOG_BLOCK = 60  # mantissas in [0.5, 1): a product of 60 stays above 2**-60, normal in float32
_PROD_BLOCK64 = 20  # float64 terms >= 1e-15: a product of 20 stays above 1e-300, normal
_LN2 = 0.6931471805599453


@jax.custom_jvp
def neg_sum_log(terms):
    """``-sum(log(t) for t in terms)`` for positive arrays (each >= 1e-15), with one ``log`` per
    block of terms.

    float32: ``frexp`` splits each term into a mantissa in [0.5, 1) and an exponent; the
    mantissas are multiplied (no underflow) and the exponents added, so the sum of logs is
    ``log(prod m) + (sum e) log 2``. float64: a product of 20 terms cannot underflow, so the
    terms are multiplied as they are and the product's log taken by :func:`jaxlab.vecmath.
    log_pos64` (XLA's float64 ``log`` is a scalar library call on the CPU; the bit operations
    of ``frexp`` need 64-bit integer shifts and conversions that AVX2 lacks). Same value up to
    a few ulps; ``log`` was the costliest operation of the lab's loss (5 per restart-step).
    A NaN or inf term gives a NaN or inf sum, as the logs would.
    """
    total = 0.0
    if terms[0].dtype == jnp.float64:
        for k in range(0, len(terms), _PROD_BLOCK64):
            prod = terms[k]
            for t in terms[k + 1 : k + _PROD_BLOCK64]:
                prod = prod * t
            total = total - log_pos64(prod)
    else:
        for k in range(0, len(terms), _LOG_BLOCK):
            prod, expo = 1.0, 0
            for t in terms[k : k + _LOG_BLOCK]:
                m, e = _frexp_normal(t)
                prod = prod * m
                expo = expo + e
            total = total - (jnp.log(prod) + expo.astype(prod.dtype) * _LN2)
    # inf or NaN terms: the bit tricks above would read them as finite numbers.
    return total + 0.0 * sum(terms)


def _frexp_normal(t):
    """``frexp`` for positive normal float32 (the terms are >= 1e-15): mantissa and exponent
    straight from the bits, without ``jnp.frexp``'s handling of zeros and subnormals."""
    bits = jax.lax.bitcast_convert_type(t, jnp.int32)
    e = (bits >> 23) - 126  # the sign bit is 0 for positive numbers
    m = jax.lax.bitcast_convert_type((bits & 0x007FFFFF) | 0x3F000000, t.dtype)  # 0.5's bits
    return m, e


@neg_sum_log.defjvp
def _neg_sum_log_jvp(primals, tangents):
    (terms,), (dots,) = primals, tangents
    return neg_sum_log(terms), -sum(d / t for t, d in zip(terms, dots))


def _log_arg(f, y: float):
    """The argument ``a`` of a 0/1-labelled point's ``-log(a)`` in the lab's loss."""
    return f + EPS if y == 1.0 else one_minus(f) + EPS


def _log_head(labels: tuple):
    """``zs -> -sum_i log(a_i)`` for logits ``zs`` and 0/1 ``labels``: ``a = sigmoid(z) + EPS``
    for a label 1, ``one_minus(sigmoid(z)) + EPS`` for a label 0 (one log per block, as
    :func:`neg_sum_log`). Its derivative is the chain rule through sigmoid, ``one_minus`` and
    the log, each point's coefficient written as one division: ``d/dz = -s (1 - s) / a`` for a
    label 1, ``s (1 - s) / a`` for a label 0 (the derivative of ``|1 - s|`` is ``-1`` on
    ``s < 1``, and ``s (1 - s)`` is 0 at ``s = 1``). XLA keeps a division's result in memory, so
    the gradient's kernels read each point's coefficient instead of each recomputing it."""

    def terms(zs):
        fs = [sigmoid(z) for z in zs]
        return fs, tuple(_log_arg(f, y) for f, y in zip(fs, labels))

    @jax.custom_jvp
    def head(zs):
        return neg_sum_log(terms(zs)[1])

    @head.defjvp
    def _head_jvp(primals, tangents):
        (zs,), (dzs,) = primals, tangents
        fs, ts = terms(zs)
        coef = [(f * (1.0 - f)) / (-t if y == 1.0 else t) for f, t, y in zip(fs, ts, labels)]
        return neg_sum_log(ts), sum(c * dz for c, dz in zip(coef, dzs))

    return head


def _layout(widths):
    """Per layer: (bias indices (d_out,), weight indices [i][j]) into the flat vector."""
    out, k = [], 0
    for din, dout in zip(widths[:-1], widths[1:]):
        b = list(range(k, k + dout))
        k += dout
        W = [list(range(k + i * dout, k + (i + 1) * dout)) for i in range(din)]
        k += din * dout
        out.append((b, W))
    return out


def unrolled_loss(data: Dataset, widths, kind: str = "lab", method: str = "autodiff"):
    """``vec -> loss`` where ``vec`` is a tuple of ``n_params`` scalars in the lab's order.

    Equal to ``jaxlab.network.loss(from_vector(vec), data, kind)`` up to rounding; its
    ``jax.grad`` uses ``method`` ("autodiff" or "manual").
    """
    widths = check_widths(widths, data)
    check_choice("loss", kind, LOSSES)
    check_choice("method", method, METHODS)
    layout = _layout(widths)
    xs = [tuple(float(v) for v in row) for row in data.x]
    ys = [float(v) for v in data.y]
    n = float(len(ys))

    def point(vec, x):
        """Hidden activations per layer and the output logit for one data point."""
        h, acts = list(x), []
        for li, (b, W) in enumerate(layout):
            z = [
                _lin(vec[b[j]], [(h[i], vec[W[i][j]]) for i in range(len(h))])
                for j in range(len(b))
            ]
            if li == len(layout) - 1:
                return acts, z[0]
            h = [tanh(zj) for zj in z]
            acts.append(h)

    def point_loss(z, y):
        """The point's loss, or for the lab's loss with a 0/1 label the argument ``a`` of its
        ``-log(a)`` (summed with one log, see :func:`neg_sum_log`); and what the backward rule
        needs: ``f_out`` (lab) or ``z`` (logit)."""
        if kind == "logit":
            if y == 0.0:
                return softplus(z), None, z
            loss = softplus(-z) if y == 1.0 else y * softplus(-z) + (1.0 - y) * softplus(z)
            return loss, None, z
        f = sigmoid(z)
        if y in (0.0, 1.0):
            return None, _log_arg(f, y), f
        return -(y * jnp.log(f + EPS) + (1.0 - y) * jnp.log(one_minus(f) + EPS)), None, f

    # The lab's loss with 0/1 labels: its log terms as one function of the logits, whose
    # derivative is one division per point (see _log_head); other labels and losses go term
    # by term.
    head = _log_head(tuple(ys)) if kind == "lab" and set(ys) <= {0.0, 1.0} else None

    def forward(vec):
        if head is not None and method == "autodiff":
            zs = [point(vec, x)[1] for x in xs]
            return head(tuple(zs)) / n, None
        total, args, res = 0.0, [], []
        for x, y in zip(xs, ys):
            acts, z = point(vec, x)
            loss, arg, saved = point_loss(z, y)
            if arg is None:
                total = total + loss
            else:
                args.append(arg)
            res.append((acts, saved))
        if args:
            total = total + neg_sum_log(tuple(args))
        return total / n, res

    def loss(vec):
        return forward(vec)[0]

    if method == "autodiff":
        return loss

    @jax.custom_vjp
    def manual(vec):
        return forward(vec)[0]

    def manual_fwd(vec):
        value, res = forward(vec)
        return value, (vec, res)

    def manual_bwd(saved, g):
        vec, res = saved
        grads = [None] * len(vec)

        def acc(k, v):
            if v is not None:
                grads[k] = v if grads[k] is None else grads[k] + v

        for (x, y), (acts, kept) in zip(zip(xs, ys), res):
            if kind == "logit":
                dL_dfin = (sigmoid(kept) - y) / n  # dL/dfout * dfout/dfin collapses
            else:
                f_out = kept
                # Q1-Q3, dL/dfin / n = (-y / (f + eps) + (1 - y) / (1 - f + eps)) f (1 - f) / n,
                # with a 0/1 label folded in as one division: XLA keeps a division's result in
                # memory, so the gradient's kernels read each point's delta instead of each
                # recomputing it from f_out.
                slope = f_out * (1.0 - f_out)
                if y == 1.0:
                    dL_dfin = slope / (-n * (f_out + EPS))
                elif y == 0.0:
                    dL_dfin = slope / (n * (one_minus(f_out) + EPS))
                else:
                    dL_dfin = (
                        (-y / (f_out + EPS) + (1.0 - y) / (one_minus(f_out) + EPS)) * slope / n
                    )
            deltas = [g * dL_dfin]
            for li in range(len(layout) - 1, -1, -1):
                b, W = layout[li]
                h = list(x) if li == 0 else acts[li - 1]
                for j, d in enumerate(deltas):
                    acc(b[j], d)  # dz_in/db = 1 (Q5, Q11)
                    for i in range(len(h)):
                        acc(W[i][j], _scaled(h[i], d))  # dz_in/dW_ij = h_i (Q6, Q12)
                if li > 0:  # back through tanh: dz_out/dz_in = 1 - z_out^2 (Q9, Q10)
                    deltas = [
                        sum(vec[W[i][j]] * d for j, d in enumerate(deltas)) * (1.0 - h[i] * h[i])
                        for i in range(len(h))
                    ]
        zero = jnp.zeros_like(vec[0])
        return (tuple(zero if gk is None else gk for gk in grads),)

    manual.defvjp(manual_fwd, manual_bwd)
    return manual
