"""Gradient descent with the lab's stopping rule, as one pure, bounded ``lax.scan``.

The lab's loop (Exercise 1)::

    x = x0; v = f(x0)
    for i in 1..max_steps:
        x = x - alpha * grad(x)
        vnew = f(x)
        if v - vnew < tol: break      # also fires when f rises; the new x is kept
        v = vnew

:func:`descend` runs it for one start point and any optax optimiser (the lab's plain step is
``optax.sgd(alpha)``: ``x + (-(alpha g))`` equals ``x - alpha g`` bit for bit). It never raises on
bad numbers: a non-finite value or parameter stops the run with status ``DIVERGED``. Its pieces
are kept apart (:func:`start`, one :func:`advance`, :func:`running`, :func:`result`) so that the
sweep engine can also run restarts in recycled lanes. A stopped run is frozen by a ``select`` on
its update (not by scaling it by 0: a diverged run's update may be inf, and ``0 * inf`` is NaN).
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxlab.errors import ConfigError, check_finite_positive, check_int

__all__ = [
    "DescentResult",
    "Status",
    "check_learning_rate",
    "check_tol",
    "advance",
    "descend",
    "gd",
    "lab_schedule",
    "result",
    "running",
    "start",
]

MAX_STEPS_LIMIT = 10_000_000
TOL = 1e-4


class Status(enum.IntEnum):
    """Why a run stopped (an int32 array under ``jit``/``vmap``)."""

    CONVERGED = 0  #: the rule fired on a decrease smaller than ``tol``
    STALLED = 1  #: the rule fired because the value rose (the step overshot)
    MAX_STEPS = 2  #: ``max_steps`` steps taken without the rule firing
    DIVERGED = 3  #: the value or a parameter became NaN or infinite


class DescentState(NamedTuple):
    params: Any
    opt_state: Any
    value: jax.Array
    grad: Any
    steps: jax.Array  # int32: steps applied so far
    status: jax.Array  # int32 Status; MAX_STEPS while the run is still going


class DescentResult(NamedTuple):
    """Outcome of one run. ``trajectory`` is ``(params, values)`` stacked over
    ``max_steps + 1`` points (start included, the tail repeating the final point) or ``None``."""

    params: Any
    value: jax.Array
    steps: jax.Array
    status: jax.Array
    trajectory: Any = None


def check_learning_rate(learning_rate, param: str = "learning_rate"):
    """Validate a Python learning rate (a callable schedule or traced array passes through)."""
    if callable(learning_rate) or isinstance(learning_rate, jax.Array):
        return learning_rate
    return check_finite_positive(param, learning_rate)


def gd(learning_rate) -> optax.GradientTransformation:
    """The lab's plain gradient step ``x - learning_rate * grad``; ``learning_rate`` is a number,
    an array (traced in sweeps) or an optax schedule ``step -> rate``."""
    return optax.sgd(check_learning_rate(learning_rate))


def lab_schedule(step):
    """The lab's pen-and-paper step sizes 1/2, 1/3, 1/4, ...: ``1 / (step + 2)``."""
    return 1.0 / (step + 2.0)


def check_tol(tol) -> float:
    """The rule's threshold as a float: a finite number >= 0, or ``None`` / ``"off"`` for no rule
    (``-inf``: ``value_prev - value_new < -inf`` never holds)."""
    if tol is None or (isinstance(tol, str) and tol == "off"):
        return -math.inf
    if isinstance(tol, str) or isinstance(tol, bool):
        raise ConfigError("tol", f'expected a finite number >= 0 or "off", got {tol!r}')
    try:
        v = float(tol)
    except (TypeError, ValueError):
        raise ConfigError("tol", f'expected a finite number >= 0 or "off", got {tol!r}') from None
    if not math.isfinite(v) or v < 0:
        raise ConfigError("tol", f'expected a finite number >= 0 or "off", got {tol!r}')
    return v


def _all_finite(tree) -> jax.Array:
    # Each leaf tested on its own: a sum of the leaves would overflow for finite float32
    # parameters such as (3e38, 3e38) and call them diverged.
    leaves = jax.tree.leaves(tree)
    ok = jnp.ones((), bool)
    for leaf in leaves:
        ok = ok & jnp.all(jnp.isfinite(leaf))
    return ok


def _computed_once(value, steps):
    """``value`` exactly (``x / 1``), divided by a 1 that XLA cannot fold (``1 + 0 * steps``,
    ``steps`` a finite count): XLA copies cheap operations into every kernel that reads them but
    computes a division once, so the loss's tail is computed once a step instead of again in
    the kernel that applies the stopping rule."""
    return value / (1.0 + 0.0 * steps.astype(value.dtype))


def start(value_and_grad: Callable, params0, optimizer: optax.GradientTransformation):
    """The loop's state before its first step: ``params0``, the optimiser's state, the value and
    gradient at ``params0``, no step taken (status ``DIVERGED`` at once for a non-finite start)."""
    value0, grad0 = value_and_grad(params0)
    ok0 = jnp.isfinite(value0) & _all_finite(params0)
    return DescentState(
        params=params0,
        opt_state=optimizer.init(params0),
        value=value0,
        grad=grad0,
        steps=jnp.zeros((), jnp.int32),
        status=jnp.where(ok0, Status.MAX_STEPS, Status.DIVERGED).astype(jnp.int32),
    )


def running(s: DescentState, max_steps: int) -> jax.Array:
    """Whether the run goes on: status still ``MAX_STEPS`` and budget left."""
    return (s.status == Status.MAX_STEPS) & (s.steps < max_steps)


def advance(
    value_and_grad: Callable,
    optimizer: optax.GradientTransformation,
    s: DescentState,
    *,
    max_steps: int,
    tol: float,
) -> DescentState:
    """One step of the lab's loop; a run that has stopped (or spent its budget) is left as it
    is. ``tol`` as :func:`check_tol` returns it (``-inf``: no rule)."""
    updates, opt_state = optimizer.update(s.grad, s.opt_state, s.params)
    # A run goes on while its status is MAX_STEPS: the status is the only stop flag (a
    # separate flag was one more output for every kernel that computes the value, and XLA
    # recomputes the value's cheap tail in each of them).
    go = running(s, max_steps)
    # A select, not `p + go * u`: a stopped run's update may be inf (0 * inf = nan).
    params = jax.tree.map(lambda p, u: jnp.where(go, p + u, p), s.params, updates)
    value, grad = value_and_grad(params)
    value = _computed_once(value, s.steps)
    # The value alone, each step: a non-finite parameter makes the value or the next
    # gradient non-finite; one that does not (a saturated unit) is caught at the end.
    finite = jnp.isfinite(value)
    fired = (s.value - value) < tol  # False for NaN: caught by `finite`
    status = jnp.where(
        go & ~finite,
        Status.DIVERGED,
        jnp.where(
            go & fired,
            jnp.where(value > s.value, Status.STALLED, Status.CONVERGED),
            s.status,
        ),
    ).astype(jnp.int32)
    return DescentState(
        params=params,
        opt_state=opt_state,
        value=value,
        grad=grad,
        steps=s.steps + go.astype(jnp.int32),
        status=status,
    )


def result(s: DescentState, trajectory=None) -> DescentResult:
    """The run's :class:`DescentResult` from its last state: parameters that ended non-finite
    (a saturated unit can hide them from the value) make it ``DIVERGED``."""
    status = jnp.where(_all_finite(s.params), s.status, Status.DIVERGED).astype(jnp.int32)
    return DescentResult(s.params, s.value, s.steps, status, trajectory)


def descend(
    value_and_grad: Callable,
    params0,
    optimizer: optax.GradientTransformation,
    *,
    max_steps: int,
    tol: float = TOL,
    trajectory: bool = False,
) -> DescentResult:
    """Minimise from ``params0`` (any pytree) with the lab's stopping rule.

    Args:
      value_and_grad: ``params -> (value, grad)``, value a scalar.
      optimizer: an optax transformation; hyperparameters may be traced arrays.
      max_steps: static step budget (>= 1).
      tol: the rule's threshold: stop when ``value_prev - value_new < tol``; ``None`` (or
        ``"off"``) switches the rule off: a fixed budget, every run ends ``MAX_STEPS`` or
        ``DIVERGED``.
      trajectory: also return every point and value (``max_steps + 1`` of each).

    Returns a :class:`DescentResult`; the final ``value`` is the value at the returned params.
    The loop is a ``while_loop`` that ends when the run stops (under ``vmap``: when the batch's
    last run stops; the others are frozen meanwhile); with ``trajectory`` a ``scan`` of
    ``max_steps`` steps.
    """
    max_steps = check_int("max_steps", max_steps, lo=1, hi=MAX_STEPS_LIMIT)
    tol = check_tol(tol)
    state = start(value_and_grad, params0, optimizer)
    step = functools.partial(advance, value_and_grad, optimizer, max_steps=max_steps, tol=tol)
    if not trajectory:
        final = lax.while_loop(lambda s: running(s, max_steps), step, state)
        return result(final)

    def scan_step(s, _):
        new = step(s)
        return new, (new.params, new.value)

    final, (pts, vals) = lax.scan(scan_step, state, None, length=max_steps)
    pts = jax.tree.map(lambda a, p: jnp.concatenate([a[None], p]), params0, pts)
    return result(final, (pts, jnp.concatenate([state.value[None], vals])))
