"""One restart of one sweep cell, for any :class:`jaxlab.Problem`: ``run_one(spec, traced, key)``.

:class:`RunSpec` holds what is compiled in (the problem, its static settings, the optimiser,
the step budget, the gradient method, dtype and the success rule); ``traced`` holds this run's
traced settings (scalars; arrays under ``vmap``). The pieces are kept apart: :func:`settings`
(the dict the problem's functions see), :func:`optimizer` (the spec's optimiser for those
settings), :func:`train_one` (init from the key, then the bounded loop of
:func:`jaxlab.descent.descend`, whose one step and stopping rule live there), and
:func:`run_one` (the outcome, the success rule, metrics and records). Nothing here knows of
grids, chunks or devices.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxlab import descent
from jaxlab.contract import Outcome, Problem
from jaxlab.descent import DescentResult, DescentState, Status, descend
from jaxlab.train import make_optimizer

__all__ = [
    "RunOut",
    "RunSpec",
    "advance",
    "finish",
    "run_one",
    "running",
    "settings",
    "start",
    "succeeded",
    "train_one",
]


@dataclass(frozen=True)
class RunSpec:
    """The compile-time part of a run (hashable: one compiled program per distinct spec).
    ``static`` is a tuple of ``(name, value)``: the problem's static settings and jaxlab's
    ``optimizer`` and ``max_steps``."""

    problem: Problem
    static: tuple
    method: str = "autodiff"
    dtype: str = "float32"
    tol: float | None = 1e-4  # None: no stopping rule (a fixed budget)
    threshold: float = 0.1

    @property
    def traced_names(self) -> tuple[str, ...]:
        from jaxlab.config import schema

        return tuple(n for n, st in schema(self.problem).items() if st.traced)

    @property
    def max_steps(self) -> int:
        return int(dict(self.static)["max_steps"])

    @property
    def optimizer(self):
        return dict(self.static)["optimizer"]

    def value(self, name: str) -> Any:
        return dict(self.static)[name]


class RunOut(NamedTuple):
    """Outcome of one restart: final ``loss`` (the gap ``loss - minimum``), ``steps``,
    ``status``, ``success``, the problem's ``metrics`` and per-run ``record`` values."""

    loss: jax.Array
    steps: jax.Array
    status: jax.Array
    success: jax.Array
    metrics: dict
    record: dict


def settings(spec: RunSpec, traced: dict) -> dict:
    """The settings one run's functions see: static values (Python) and traced scalars."""
    return {**dict(spec.static), **traced}


def succeeded(status, loss, threshold):
    """The default success rule: not diverged and the final loss (gap) below ``threshold``.
    Works on jax and numpy values alike."""
    return (status != Status.DIVERGED) & (loss < threshold)


def minimum(problem: Problem, s: dict):
    m = problem.minimum
    return m(s) if callable(m) else m


def optimizer(spec: RunSpec, s: dict) -> optax.GradientTransformation:
    opt = spec.optimizer
    if callable(opt):
        return opt(s)
    return make_optimizer(opt, s["lr"], momentum=s["momentum"])


def _value_and_grad(spec: RunSpec, s: dict):
    p = spec.problem
    if spec.method == "manual":
        return functools.partial(_call, p.grad, s)
    return jax.value_and_grad(functools.partial(_call, p.loss, s))


def _call(fn, s, params):
    return fn(params, s)


def _cast(tree, dtype):
    """Floating leaves in the sweep's dtype (a problem's init may draw in another)."""
    dt = jnp.dtype(dtype)
    return jax.tree.map(
        lambda x: x.astype(dt) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else x, tree
    )


def train_one(spec: RunSpec, traced: dict, key, trajectory: bool = False) -> DescentResult:
    """Train one restart with jaxlab's loop (the problem's ``init``, ``loss``/``grad``, the
    spec's optimiser and stopping rule); returns its :class:`jaxlab.descent.DescentResult`."""
    s = settings(spec, traced)
    params0 = _cast(spec.problem.init(key, s), spec.dtype)
    return descend(
        _value_and_grad(spec, s),
        params0,
        optimizer(spec, s),
        max_steps=spec.max_steps,
        tol=spec.tol,
        trajectory=trajectory,
    )


def _scalars(d: dict, what: str) -> dict:
    return {k: jnp.asarray(v).reshape(()) for k, v in d.items()}


def start(spec: RunSpec, traced: dict, key) -> DescentState:
    """A restart's loop state before its first step (the problem's ``init`` from ``key``)."""
    s = settings(spec, traced)
    params0 = _cast(spec.problem.init(key, s), spec.dtype)
    return descent.start(_value_and_grad(spec, s), params0, optimizer(spec, s))


def advance(spec: RunSpec, traced: dict, state: DescentState) -> DescentState:
    """One step of a restart (a stopped one, or one at its budget, is left as it is)."""
    s = settings(spec, traced)
    return descent.advance(
        _value_and_grad(spec, s),
        optimizer(spec, s),
        state,
        max_steps=spec.max_steps,
        tol=descent.check_tol(spec.tol),
    )


def running(spec: RunSpec, state: DescentState) -> jax.Array:
    """Whether the restart goes on."""
    return descent.running(state, spec.max_steps)


def finish(spec: RunSpec, traced: dict, state: DescentState) -> RunOut:
    """The :class:`RunOut` of a restart whose loop has ended in ``state``."""
    return _outcome(spec, traced, descent.result(state))


def run_one(spec: RunSpec, traced: dict, key) -> RunOut:
    """One restart, start to end: its :class:`RunOut` (written for one run; ``vmap`` batches)."""
    p = spec.problem
    s = settings(spec, traced)
    if p.train is not None:
        out: Outcome = p.train(s, key)
        metrics = dict(out.metrics or {})
        return _pack(spec, s, out.loss, out.steps, out.status, metrics, {})
    return _outcome(spec, traced, train_one(spec, traced, key))


def _outcome(spec: RunSpec, traced: dict, res: DescentResult) -> RunOut:
    p = spec.problem
    s = settings(spec, traced)
    loss = res.value - minimum(p, s)
    metrics = dict(p.metrics(res.params, s)) if p.metrics is not None else {}
    record = dict(p.record(res.params, s)) if p.record is not None else {}
    return _pack(spec, s, loss, res.steps, res.status, metrics, record)


def _pack(spec: RunSpec, s: dict, loss, steps, status, metrics, record) -> RunOut:
    p = spec.problem
    dt = jnp.dtype(spec.dtype)
    loss = jnp.asarray(loss, dt)
    steps = jnp.asarray(steps, jnp.int32)
    status = jnp.asarray(status, jnp.int32)
    outcome = Outcome(loss, steps, status, metrics)
    if p.success is not None:
        success = jnp.asarray(p.success(outcome, s), bool) & (status != Status.DIVERGED)
    else:
        success = succeeded(status, loss, spec.threshold)
    return RunOut(
        loss, steps, status, success, _scalars(metrics, "metrics"), _scalars(record, "record")
    )
