"""Gradient checks for any :class:`jaxlab.Problem`, for users' test suites; and the helpers that
every three-way check in jaxlab shares (``jaxlab gradcheck`` imports them from here).

:func:`check_problem` checks a problem the way the lab's Exercise 2 checks its chain rule, in
float64, at ``n`` random initialisations ``problem.init(fold_in(key(seed), i), s)``:

* ``manual~autodiff``: the hand-written ``problem.grad(params, s)[1]`` vs ``jax.grad`` of
  ``problem.loss``;
* ``manual~fd`` and ``autodiff~fd``: each vs central differences on the flattened parameters
  (:func:`jax.flatten_util.ravel_pytree`), ``(L(v + h e_j) - L(v - h e_j)) / 2h`` for every
  coordinate ``j``;
* ``value~loss``: the loss ``problem.grad`` returns vs ``problem.loss`` itself.

A problem without ``grad`` gets ``autodiff~fd`` only. Every evaluation is ``vmap``-ped, over the
points and over the coordinates, in one compiled call, compiled once per problem, static settings
and ``n`` (traced settings, the seed and the step are its arguments). ``s`` is jaxlab's defaults
(:data:`jaxlab.contract.JAXLAB_STATIC`, ``JAXLAB_TRACED``), then the problem's, then the
``settings`` passed, validated by the problem's ``checks``::

    import jaxlab.testing
    print(jaxlab.testing.check_problem(my_problem, {"width": 8}))   # the table, PASS/FAIL
    jaxlab.testing.assert_gradients(my_problem)                     # in a pytest suite

Error measure (one definition, :func:`rel_error`)::

    err(a, b) = ||a - b||_2 / max(||a||_2, ||b||_2, floor)

per gradient vector (norm-wise, so one tiny coordinate near zero does not blow up the ratio); the
worst over the points is reported. ``floor`` guards 0 / 0: ``1e-8`` for gradient vectors, ``1.0``
for scalars (relative above 1, absolute below). A central difference with step ``h = 1e-6`` in
float64 carries ``~eps |L| / h + h^2 |L'''|`` ~ 1e-10 error, well inside the default tolerance of
``1e-6``; hand-written vs autodiff should agree to rounding (tolerance ``1e-10``).

A point whose loss or ``jax.grad`` is non-finite (the function is not defined there) is excluded
and counted in the report. A non-finite hand-written gradient or difference where both are finite
is a failure (error ``inf``), not an exclusion: it is a bug the check exists to find.

Cost: ``2 k + 3`` loss evaluations per point for ``k`` parameters (the differences dominate);
points are evaluated in batches of about 16k loss evaluations (``lax.map`` over ``vmap``) so
memory stays bounded; for a large model pass a smaller ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from numbers import Real
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxlab.contract import Problem
from jaxlab.errors import ConfigError, check_finite_positive, check_int, did_you_mean

__all__ = [
    "FD_STEP",
    "PAIRS",
    "TOL_FD",
    "TOL_MANUAL",
    "VALUE_PAIR",
    "CheckRecord",
    "GradReport",
    "assert_gradients",
    "check_problem",
    "compare",
    "failures",
    "fd_grad",
    "format_table",
    "rel_error",
]

FD_STEP = 1e-6
VECTOR_FLOOR = 1e-8
SCALAR_FLOOR = 1.0
PAIRS = ("manual~autodiff", "manual~fd", "autodiff~fd")
VALUE_PAIR = "value~loss"
TOL_MANUAL = 1e-10
TOL_FD = 1e-6
# Each check program runs once on a few thousand points: compile time dominates, so skip XLA's
# backend optimisations (halves the compile of jaxlab gradcheck's programs, the run stays ~30 ms).
_FAST_COMPILE = {"xla_backend_optimization_level": 0}
# Loss evaluations per vmapped batch of points: bounds memory whatever n and the model's size.
_EVALS_PER_BATCH = 2**14


class CheckRecord(NamedTuple):
    """One comparison: which ``check`` (e.g. ``"network (2, 2, 1) lab"``), which ``pair`` of
    gradients, the worst :func:`rel_error` over ``n`` random points."""

    check: str
    pair: str
    error: float
    n: int

    @property
    def tol_kind(self) -> str:
        """``"manual"`` for exact-vs-exact pairs, ``"fd"`` for those involving differences."""
        return "fd" if "fd" in self.pair else "manual"


def rel_error(a, b, floor: float = VECTOR_FLOOR) -> np.ndarray:
    """``||a - b|| / max(||a||, ||b||, floor)`` over the last axis; ``a``, ``b`` (..., k).
    Computed on the host in float64 (NumPy); a NaN anywhere gives ``inf``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    num = np.linalg.norm(a - b, axis=-1)
    den = np.maximum(np.maximum(np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)), floor)
    err = num / den
    return np.where(np.isnan(err), np.inf, err)


def fd_grad(f: Callable, x, h: float = FD_STEP) -> jax.Array:
    """Central differences of scalar ``f`` at ``x`` (k,): ``(f(x + h e_i) - f(x - h e_i)) / 2h``,
    vmapped over the coordinates ``i``. Returns (k,)."""
    basis = jnp.eye(x.shape[-1], dtype=x.dtype) * h
    diff = jax.vmap(lambda e: f(x + e) - f(x - e))(basis)
    return diff / (2.0 * h)


def compare(check: str, grads: dict, floor: float = VECTOR_FLOOR) -> list[CheckRecord]:
    """Records for every pair in :data:`PAIRS` of ``grads`` (``{"manual", "autodiff", "fd"}`` to
    arrays (n, k)); the worst error over the ``n`` rows."""
    out = []
    for pair in PAIRS:
        a, b = pair.split("~")
        err = rel_error(grads[a], grads[b], floor)
        worst = float(np.max(err))
        out.append(CheckRecord(check, pair, worst, int(np.shape(grads[a])[0])))
    return out


def failures(records, tol_manual: float = TOL_MANUAL, tol_fd: float = TOL_FD) -> list[CheckRecord]:
    """The records whose error exceeds their tolerance (``tol_fd`` for pairs with ``fd``); a NaN
    error (nothing measured) fails."""
    return [r for r in records if not r.error <= (tol_fd if r.tol_kind == "fd" else tol_manual)]


def format_table(records, tol_manual: float = TOL_MANUAL, tol_fd: float = TOL_FD) -> str:
    """One line per record: check, pair, worst error, tolerance, PASS/FAIL."""
    bad = set(failures(records, tol_manual, tol_fd))
    width = max([len(r.check) for r in records] + [5])
    lines = [f"{'check':<{width}}  {'pair':<16} {'n':>5}  {'worst err':>10}  {'tol':>7}  result"]
    for r in records:
        tol = tol_fd if r.tol_kind == "fd" else tol_manual
        res = "FAIL" if r in bad else "PASS"
        lines.append(
            f"{r.check:<{width}}  {r.pair:<16} {r.n:>5}  {r.error:>10.3e}  {tol:>7.0e}  {res}"
        )
    return "\n".join(lines)


# --- checking a user's problem ------------------------------------------------------------------


class GradReport(NamedTuple):
    """The result of :func:`check_problem`. ``errors``: pair (``"manual~autodiff"``,
    ``"manual~fd"``, ``"autodiff~fd"``, ``"value~loss"``; only ``"autodiff~fd"`` without a
    hand-written ``grad``) to the worst error over the ``n_used`` points (NaN if none);
    ``n_excluded`` points had a non-finite loss or ``jax.grad``; ``settings`` the problem's own
    settings it ran with. ``str(report)`` prints the table of ``jaxlab gradcheck``."""

    check: str
    errors: dict[str, float]
    n_used: int
    n_excluded: int
    tol_manual: float
    tol_fd: float
    ok: bool
    manual: bool
    settings: dict[str, Any]

    def records(self) -> list[CheckRecord]:
        """One :class:`CheckRecord` per pair, ``n`` the points used."""
        return [CheckRecord(self.check, p, e, self.n_used) for p, e in self.errors.items()]

    def failed(self) -> list[str]:
        """The pairs past their tolerance."""
        return [r.pair for r in failures(self.records(), self.tol_manual, self.tol_fd)]

    def lines(self) -> list[str]:
        out = format_table(self.records(), self.tol_manual, self.tol_fd).splitlines()
        if self.settings:
            out.append("settings: " + ", ".join(f"{k}={v!r}" for k, v in self.settings.items()))
        if not self.manual:
            out.append("no hand-written grad: jax.grad vs finite differences only")
        if self.n_excluded:
            total = self.n_used + self.n_excluded
            out.append(f"excluded {self.n_excluded}/{total} points: non-finite loss or jax.grad")
        if not self.n_used:
            out.append("no point had a finite loss and jax.grad: nothing was checked - FAIL")
            return out
        n_ok = len(self.errors) - len(self.failed())
        verdict = "PASS" if self.ok else "FAIL: " + ", ".join(self.failed())
        out.append(f"{n_ok}/{len(self.errors)} checks passed - {verdict}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _traced_value(name: str, v) -> float:
    dtype = getattr(v, "dtype", None)
    real_dtype = dtype is not None and (
        np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
    )
    scalar = isinstance(v, Real) or (real_dtype and np.ndim(v) == 0)
    if isinstance(v, bool) or not scalar or not math.isfinite(float(v)):
        raise ConfigError(name, f"expected a finite number (a traced setting), got {v!r}")
    return float(v)


def _settings(problem: Problem, settings) -> tuple[dict, dict, dict]:
    """``(static, traced, shown)``: the run's settings (defaults of jaxlab, then the problem's,
    then ``settings``), traced values as Python floats; ``shown`` those worth printing."""
    both = sorted(set(problem.static) & set(problem.traced))
    if both:
        raise ConfigError("problem", f"setting {both[0]!r} is declared both static and traced")
    from jaxlab.config import parse_values, schema

    # A declared default may be a list or a range (an axis): its first value is checked.
    known_settings = schema(problem)
    first = {n: parse_values(n, st.default, st).values[0] for n, st in known_settings.items()}
    static = {k: v for k, v in first.items() if not known_settings[k].traced}
    traced = {k: v for k, v in first.items() if known_settings[k].traced}
    settings = {} if settings is None else settings
    if not isinstance(settings, Mapping):
        raise ConfigError("settings", f"expected a dict of settings, got {type(settings).__name__}")
    known = [*static, *traced]
    for k, v in settings.items():
        if k not in known:
            hint = did_you_mean(k, known)
            raise ConfigError(
                "settings", f"unknown setting {k!r}{hint}; allowed: {', '.join(known)}"
            )
        (traced if k in traced else static)[k] = v
    traced = {k: _traced_value(k, v) for k, v in traced.items()}
    for k, v in static.items():
        try:
            hash(v)
        except TypeError:
            raise ConfigError(
                k, f"expected a hashable value (a static setting is compiled in), got {v!r}"
            ) from None
    merged = {**static, **traced}
    for k in problem.checks:  # as the schema reads them: a predicate or a tuple of names
        st = known_settings.get(k)
        if k in merged and st is not None and st.check is not None and not st.check(merged[k]):
            raise ConfigError(k, f"expected {st.allowed}, got {merged[k]!r}")
    shown = {k: merged[k] for k in merged if k in problem.static or k in problem.traced}
    shown.update({k: merged[k] for k in settings})
    return static, traced, shown


def _as_f64(tree):
    return jax.tree.map(lambda x: jnp.asarray(x).astype(jnp.float64), tree)


def _shapes(tree) -> str:
    return str(jax.tree.map(lambda x: tuple(getattr(x, "shape", ())), tree))


def _validate(problem: Problem, static: dict, traced: dict) -> int:
    """Check the functions' outputs with ``jax.eval_shape`` before anything runs; return the
    number of parameters ``k``."""
    tr = {k: jnp.float64(v) for k, v in traced.items()}
    params = jax.eval_shape(
        lambda key, t: problem.init(key, {**static, **t}), jax.random.key(0), tr
    )
    leaves = jax.tree_util.tree_leaves_with_path(params)
    if not leaves:
        raise ConfigError("problem", "init(key, s) returned no arrays")
    for path, leaf in leaves:
        if not jnp.issubdtype(getattr(leaf, "dtype", None), jnp.floating):
            where = f"params{jax.tree_util.keystr(path)}"
            raise ConfigError(
                "problem", f"init(key, s) gave {where} dtype {leaf.dtype}: need floating point"
            )
    p64 = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, jnp.float64), params)
    value = jax.eval_shape(lambda p, t: problem.loss(p, {**static, **t}), p64, tr)
    if getattr(value, "shape", None) != ():
        raise ConfigError("problem", f"loss(params, s) must return a scalar, got {_shapes(value)}")
    if value.dtype != jnp.float64:
        raise ConfigError(
            "problem", f"loss(params, s) returned {value.dtype} for float64 params: need float64"
        )
    if problem.grad is not None:
        out = jax.eval_shape(lambda p, t: problem.grad(p, {**static, **t}), p64, tr)
        pair = isinstance(out, tuple) and len(out) == 2
        if not pair or getattr(out[0], "shape", None) != ():
            raise ConfigError(
                "problem", f"grad(params, s) must return (loss, grad), got {_shapes(out)}"
            )
        if _shapes(out[1]) != _shapes(params):
            raise ConfigError(
                "problem",
                f"grad(params, s)[1] must match params {_shapes(params)}, got {_shapes(out[1])}",
            )
    return sum(math.prod(leaf.shape) for _, leaf in leaves)


def _point(i, tr, seed, fd_step, *, problem: Problem, static: dict):
    """Everything at point ``i``, in float64: ``{"loss": (), "autodiff", "fd"[, "manual"]: (k,)
    [, "value": ()]}``."""
    s = {**static, **tr}
    params = _as_f64(problem.init(jax.random.fold_in(jax.random.key(seed), i), s))
    flat, unravel = ravel_pytree(params)
    loss, g = jax.value_and_grad(lambda p: problem.loss(p, s))(params)
    out = {
        "loss": loss,
        "autodiff": ravel_pytree(g)[0],
        "fd": fd_grad(lambda v: problem.loss(unravel(v), s), flat, fd_step),
    }
    if problem.grad is not None:
        value, g_manual = problem.grad(params, s)
        out["value"] = jnp.asarray(value, jnp.float64)
        out["manual"] = ravel_pytree(_as_f64(g_manual))[0]
    return out


# Compiled once per (problem, static settings, n, batch); traced settings, seed and step are
# arguments, so checking another scale or seed does not recompile.
@partial(
    jax.jit,
    static_argnames=("problem", "static", "n", "batch"),
    compiler_options=_FAST_COMPILE,
)
def _run(tr, seed, fd_step, *, problem: Problem, static: tuple, n: int, batch: int):
    one = partial(_point, tr=tr, seed=seed, fd_step=fd_step, problem=problem, static=dict(static))
    if batch >= n:
        return jax.vmap(one)(jnp.arange(n))
    # equal batches (the last padded with points past n, then dropped): one body to compile
    n_batches = -(-n // batch)
    batch = -(-n // n_batches)
    out = jax.lax.map(one, jnp.arange(n_batches * batch), batch_size=batch)
    return jax.tree.map(lambda x: x[:n], out)


def _evaluate(problem: Problem, static: dict, traced: dict, n: int, seed: int, fd_step: float):
    """:func:`_point` at ``i = 0 .. n-1``, as NumPy float64 arrays (n, ...); x64 must be on.
    Points go in batches of about :data:`_EVALS_PER_BATCH` loss evaluations."""
    k = _validate(problem, static, traced)
    batch = max(1, _EVALS_PER_BATCH // (2 * k + 3))
    tr = {name: jnp.float64(v) for name, v in traced.items()}
    out = _run(tr, seed, fd_step, problem=problem, static=tuple(static.items()), n=n, batch=batch)
    return jax.device_get(out)


def check_problem(
    problem: Problem,
    settings: Mapping[str, Any] | None = None,
    *,
    n: int = 1000,
    seed: int = 0,
    fd_step: float = FD_STEP,
    tol_manual: float = TOL_MANUAL,
    tol_fd: float = TOL_FD,
) -> GradReport:
    """Three-way gradient check of ``problem`` at ``n`` random inits, in float64 whatever the
    process's JAX settings (see the module docstring). ``settings`` overrides the problem's
    (and jaxlab's) defaults; traced ones must be finite numbers. Raises :class:`ConfigError`
    (one line) for a problem that cannot be checked (``train`` only, no ``init``/``loss``,
    outputs of the wrong shape or dtype) or a bad argument; never for a bad gradient."""
    if not isinstance(problem, Problem):
        raise ConfigError("problem", f"expected a jaxlab.Problem, got {type(problem).__name__}")
    if problem.loss is None:
        if problem.train is not None:
            raise ConfigError(
                "problem",
                f"{problem.name!r} has only train(s, key), no loss(params, s) to differentiate: "
                "give it init and loss to check its gradients",
            )
        raise ConfigError("problem", f"{problem.name!r} has no loss(params, s) to check")
    if problem.init is None:
        raise ConfigError("problem", f"{problem.name!r} has no init(key, s) to draw points from")
    n = check_int("n", n, lo=1)
    seed = check_int("seed", seed, lo=0, hi=2**63 - 1)
    fd_step = check_finite_positive("fd_step", fd_step)
    tol_manual = check_finite_positive("tol_manual", tol_manual)
    tol_fd = check_finite_positive("tol_fd", tol_fd)
    static, traced, shown = _settings(problem, settings)

    with jax.enable_x64(True):
        out = _evaluate(problem, static, traced, n, seed, fd_step)

    used = np.isfinite(out["loss"]) & np.all(np.isfinite(out["autodiff"]), axis=-1)
    n_used = int(np.sum(used))

    def worst(a, b, floor=VECTOR_FLOOR):
        return float(np.max(rel_error(a[used], b[used], floor))) if n_used else math.nan

    manual = problem.grad is not None
    errors = {}
    if manual:
        errors["manual~autodiff"] = worst(out["manual"], out["autodiff"])
        errors["manual~fd"] = worst(out["manual"], out["fd"])
    errors["autodiff~fd"] = worst(out["autodiff"], out["fd"])
    if manual:
        errors[VALUE_PAIR] = worst(out["value"][:, None], out["loss"][:, None], SCALAR_FLOOR)
    check = f"problem {problem.name}"
    records = [CheckRecord(check, p, e, n_used) for p, e in errors.items()]
    ok = n_used > 0 and not failures(records, tol_manual, tol_fd)
    return GradReport(check, errors, n_used, n - n_used, tol_manual, tol_fd, ok, manual, shown)


def assert_gradients(
    problem: Problem, settings: Mapping[str, Any] | None = None, **kw
) -> GradReport:
    """:func:`check_problem`, raising ``AssertionError`` with the report's table (naming the
    failing pairs) unless it passes; returns the report. ``kw``: ``check_problem``'s keywords."""
    report = check_problem(problem, settings, **kw)
    if not report.ok:
        raise AssertionError(f"gradient check failed for {report.check}\n{report}")
    return report
