"""A problem checked before anything compiles: ``jax.eval_shape`` of its functions with the
sweep's settings, for every static combination (cached: once per problem, combination, dtype
and method).

Each failure is one line naming the function and the setting: a loss that is not a scalar, a
setting read but not declared, a traced setting used as a shape or a Python value, a metric
that is not a scalar, a hand-written ``grad`` whose structure differs from the params, and a
user function that raises while being traced (its own message and location).
"""

from __future__ import annotations

import functools
import itertools
import traceback

import jax
import jax.numpy as jnp

from jaxlab.contract import Problem
from jaxlab.errors import ConfigError, did_you_mean

__all__ = ["check_problem"]


class _Settings(dict):
    """The settings dict a traced check hands the user's functions: reading a setting that was
    not declared names it."""

    fn = "the problem"

    def __missing__(self, key):
        raise _Undeclared(key)


class _Undeclared(KeyError):
    pass


def _where(e: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "/jax/" not in f.filename]
    frames = [f for f in frames if "/jaxlab/" not in f.filename] or frames
    at = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first}{at}"


def check_problem(cfg) -> None:
    """Raise a one-line :class:`ConfigError` if ``cfg``'s problem does not fit the contract
    for any of its static combinations."""
    p = cfg.problem_obj
    static_axes = [a for a in cfg.settings if not a.traced]
    traced = tuple(a.name for a in cfg.settings if a.traced)
    for values in itertools.product(*(a.values for a in static_axes)):
        static = tuple((a.name, v) for a, v in zip(static_axes, values))
        _check(p, static, traced, cfg.dtype, cfg.method, cfg.problem_label)


@functools.lru_cache(maxsize=256)
def _check(p: Problem, static: tuple, traced: tuple, dtype: str, method: str, label: str) -> None:
    from dataclasses import replace

    from jaxlab.engine import precision

    named = p if p.name != "problem" else replace(p, name=label)
    with precision(dtype):
        _check_now(named, static, traced, dtype, method)


def _key():
    return jax.eval_shape(lambda: jax.random.key(0))  # abstract: nothing runs


def _shapes(dtype, traced):
    return {k: jax.ShapeDtypeStruct((), jnp.dtype(dtype)) for k in traced}


def _call(p: Problem, what: str, fn, static: tuple, traced: tuple, dtype, *args):
    """``jax.eval_shape`` of ``fn(*args, settings)``; its errors in the user's words."""
    known = [n for n, _ in static] + list(traced)

    def run(tr, *a):
        s = _Settings({**dict(static), **tr})
        return fn(*a, s)

    try:
        return jax.eval_shape(run, _shapes(dtype, traced), *args)
    except _Undeclared as e:
        name = e.args[0]
        raise ConfigError(
            "problem",
            f"{p.name}.{what} reads setting {name!r}, which it does not declare"
            f"{did_you_mean(str(name), known)}; declare it in traced= or static=",
        ) from None
    except ConfigError:
        raise
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError,
            jax.errors.TracerBoolConversionError, TypeError) as e:  # fmt: skip
        culprit = _culprit(run, static, traced, dtype, args)
        if culprit is not None:
            raise ConfigError(
                "problem",
                f"{p.name}.{what} uses traced setting {culprit!r} as a shape or Python value; "
                "declare it in static= (one compile per value)",
            ) from None
        raise ConfigError("problem", f"{p.name}.{what} raised {_where(e)}") from None
    except Exception as e:
        raise ConfigError("problem", f"{p.name}.{what} raised {_where(e)}") from None


def _culprit(run, static, traced, dtype, args):
    """The traced setting that, given as a Python number, lets ``run`` trace."""
    for name in traced:
        tr = {k: v for k, v in _shapes(dtype, traced).items() if k != name}

        def concrete(tr2, *a, name=name):
            return run({**tr2, name: 1}, *a)

        try:
            jax.eval_shape(concrete, tr, *args)
        except Exception:
            continue
        return name
    return None


def _is_scalar_float(x) -> bool:
    return x.shape == () and jnp.issubdtype(x.dtype, jnp.floating)


def _check_now(p: Problem, static, traced, dtype, method) -> None:
    if p.train is not None:
        out = _call(p, "train", lambda key, s: p.train(s, key), static, traced, dtype,
                    _key())  # fmt: skip
        for field in ("loss", "steps", "status"):
            if getattr(out, field, None) is None or getattr(out, field).shape != ():
                raise ConfigError(
                    "problem",
                    f"{p.name}.train must return a jaxlab.Outcome of scalars; {field} is not one",
                )
        _scalars(p, "train's metrics", dict(out.metrics or {}))
        return
    if p.init is None or p.loss is None:
        raise ConfigError("problem", f"{p.name}: a Problem needs init and loss (or train)")
    params = _call(p, "init", lambda key, s: p.init(key, s), static, traced, dtype,
                   _key())  # fmt: skip
    leaves = jax.tree.leaves(params)
    if not leaves or not all(jnp.issubdtype(x.dtype, jnp.floating) for x in leaves):
        raise ConfigError("problem", f"{p.name}.init must return a pytree of float arrays")
    value = _call(p, "loss", lambda q, s: p.loss(q, s), static, traced, dtype, params)
    if not hasattr(value, "shape") or not _is_scalar_float(value):
        got = (
            f"shape {getattr(value, 'shape', '?')} {getattr(value, 'dtype', type(value).__name__)}"
        )
        raise ConfigError("problem", f"{p.name}.loss must return a float scalar, got {got}")
    if method == "manual":
        out = _call(p, "grad", lambda q, s: p.grad(q, s), static, traced, dtype, params)
        ok = isinstance(out, tuple) and len(out) == 2
        if (
            not ok
            or jax.tree.structure(out[1]) != jax.tree.structure(params)
            or any(g.shape != q.shape for g, q in zip(jax.tree.leaves(out[1]), leaves))
        ):
            raise ConfigError(
                "problem", f"{p.name}.grad must return (loss, grad) with grad shaped like params"
            )
    if p.metrics is not None:
        _scalars(
            p,
            "metrics",
            _call(p, "metrics", lambda q, s: p.metrics(q, s), static, traced, dtype, params),
        )
    if p.record is not None:
        _scalars(
            p,
            "record",
            _call(p, "record", lambda q, s: p.record(q, s), static, traced, dtype, params),
        )


def _scalars(p: Problem, what: str, out) -> None:
    if not isinstance(out, dict):
        raise ConfigError(
            "problem", f"{p.name}.{what} must return a dict of scalars, got {type(out).__name__}"
        )
    for k, v in out.items():
        if not isinstance(k, str) or not k.isidentifier():
            raise ConfigError("problem", f"{p.name}.{what}: name {k!r} is not an identifier")
        if getattr(v, "shape", None) != ():
            raise ConfigError(
                "problem",
                f"{p.name}.{what}[{k!r}] must be a scalar, got shape {getattr(v, 'shape', '?')}",
            )
