"""Three-way gradient checks in float64: hand-written rule vs ``jax.grad`` vs finite differences.

Three families of checks, each on batches of random points, every evaluation ``vmap``-ped:

* :func:`network_checks`: the network's loss gradient, ``method="manual"`` (the custom VJPs of
  :mod:`jaxlab.gradients`) vs ``method="autodiff"`` vs central differences on the flat vector;
* :func:`objective_checks`: every registered objective's hand-derived gradient, likewise;
* :func:`derivative_checks`: each formula of the lab's Exercise 2, written out as in the lab,
  against ``jax.grad`` of the literal function and against central differences;
* :func:`problem_checks`: a user's :class:`jaxlab.Problem`, by :func:`jaxlab.testing.check_problem`.

Error measure (one definition, :func:`jaxlab.testing.rel_error`, re-exported here)::

    err(a, b) = ||a - b||_2 / max(||a||_2, ||b||_2, floor)

per gradient vector (norm-wise, so one tiny coordinate near zero does not blow up the ratio),
and the worst over all random points is reported. ``floor`` guards 0 / 0: ``1e-8`` for gradient
vectors; ``1.0`` for the scalar formulas of Exercise 2, whose derivatives cross zero (e.g.
``dL/dw12 = ... * x1``), so there the error is relative above 1 and absolute below 1. A central
difference with step ``h = 1e-6`` in float64 carries ``~eps |f| / h + h^2 |f'''|`` ~ 1e-10 absolute
error, well inside the default tolerance of ``1e-6``; manual vs autodiff should agree to
rounding (tolerance ``1e-10``).

Everything needs float64: enable it (``jax.config.update("jax_enable_x64", True)``) before any
array is created; :func:`main` does so first thing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.contract import Problem
from jaxlab.errors import ConfigError, check_choice, check_int
from jaxlab.gradients import network_loss
from jaxlab.losses import LOSSES
from jaxlab.network import LAB_DATA, check_widths, from_vector, init_params, to_vector
from jaxlab.objectives import OBJECTIVES

# The generic pieces live in jaxlab.testing (public, for users' problems); one copy, re-exported.
from jaxlab.testing import (
    _FAST_COMPILE,
    FD_STEP,
    PAIRS,
    SCALAR_FLOOR,
    TOL_FD,
    TOL_MANUAL,
    VECTOR_FLOOR,
    CheckRecord,
    check_problem,
    compare,
    failures,
    fd_grad,
    format_table,
    rel_error,
)

__all__ = [
    "FD_STEP",
    "PAIRS",
    "CheckRecord",
    "compare",
    "derivative_checks",
    "fd_grad",
    "main",
    "network_checks",
    "objective_checks",
    "problem_checks",
    "rel_error",
    "run_all",
]


def _require_x64():
    if not jax.config.jax_enable_x64:
        raise ConfigError(
            "jax_enable_x64",
            "gradient checks need float64: call jax.config.update('jax_enable_x64', True) "
            "before creating any array",
        )


def _three_way(f_manual: Callable, f_autodiff: Callable, x) -> dict:
    """The gradient of two scalar functions of ``x`` (k,) and the central difference of the
    second: ``{"manual", "autodiff", "fd"}`` to (k,)."""
    return {
        "manual": jax.grad(f_manual)(x),
        "autodiff": jax.grad(f_autodiff)(x),
        "fd": fd_grad(f_autodiff, x),
    }


def _records(results: dict, order, floor: float = VECTOR_FLOOR) -> list[CheckRecord]:
    # a jitted function returns its dict with sorted keys: restore the order the checks were made
    return [r for name in order for r in compare(name, results[name], floor)]


def network_checks(
    widths_list: Sequence[Sequence[int]] = ((2, 2, 1), (2, 4, 1), (2, 3, 3, 1)),
    losses: Sequence[str] = LOSSES,
    n: int = 1000,
    seed: int = 0,
    data=LAB_DATA,
) -> list[CheckRecord]:
    """The network's loss gradient on ``data`` at ``n`` random N(0, 1) parameter vectors per
    widths (keys ``fold_in(fold_in(key(seed), widths index), i)``) and per loss: manual vs
    autodiff vs central differences on the flat vector. Everything runs in one compiled call."""
    _require_x64()
    n = check_int("n", n, lo=1)
    widths_list = [check_widths(w, data) for w in widths_list]
    losses = [check_choice("loss", kind, LOSSES) for kind in losses]

    def flat(widths, kind, method):
        loss_fn = network_loss(data, kind, method)
        return lambda v: loss_fn(from_vector(v, widths))

    @partial(jax.jit, compiler_options=_FAST_COMPILE)
    def run(idx):
        out = {}
        for wi, widths in enumerate(widths_list):
            root = jax.random.fold_in(jax.random.key(seed), wi)
            keys = jax.vmap(lambda i: jax.random.fold_in(root, i))(idx)  # noqa: B023
            vecs = jax.vmap(lambda k: to_vector(init_params(k, widths, 1.0, jnp.float64)))(keys)  # noqa: B023
            for kind in losses:
                f_man, f_auto = flat(widths, kind, "manual"), flat(widths, kind, "autodiff")
                out[f"network {tuple(widths)} {kind}"] = jax.vmap(
                    lambda v: _three_way(f_man, f_auto, v)  # noqa: B023
                )(vecs)
        return out

    names = [f"network {tuple(w)} {kind}" for w in widths_list for kind in losses]
    return _records(run(jnp.arange(n)), names)


def objective_checks(n: int = 1000, seed: int = 0) -> list[CheckRecord]:
    """Every objective in the registry at ``n`` uniform random points of its box (NumPy
    ``default_rng(seed)``), in one compiled call."""
    _require_x64()
    n = check_int("n", n, lo=1)

    rng = np.random.default_rng(seed)
    points = {}
    for name, obj in OBJECTIVES.items():
        (lo1, hi1), (lo2, hi2) = obj.box
        points[name] = rng.uniform([lo1, lo2], [hi1, hi2], (n, 2))

    @partial(jax.jit, compiler_options=_FAST_COMPILE)
    def run(points):
        out = {}
        for name, xs in points.items():
            obj = OBJECTIVES[name]
            f_man, f_auto = obj.fn("manual"), obj.fn("autodiff")
            out[f"objective {name}"] = jax.vmap(lambda x: _three_way(f_man, f_auto, x))(xs)  # noqa: B023
        return out

    return _records(run(points), [f"objective {name}" for name in points])


# --- Exercise 2: each formula of the lab, as the lab writes it ---------------------------------


def _sigmoid_literal(x):
    return 1.0 / (1.0 + jnp.exp(-x))


def _bce_literal(y, f):
    return -y * jnp.log(f) - (1.0 - y) * jnp.log(1.0 - f)


def _net_single(p):
    """The single-example 2-2-1 network of Exercise 2. ``p`` packs
    (b1, b2, w11, w12, w21, w22, c, u1, u2, x1, x2, y); returns the named intermediates."""
    b1, b2, w11, w12, w21, w22, c, u1, u2, x1, x2, y = (p[i] for i in range(12))
    z1in = b1 + w11 * x1 + w21 * x2
    z2in = b2 + w12 * x1 + w22 * x2
    z1out, z2out = jnp.tanh(z1in), jnp.tanh(z2in)
    fin = c + u1 * z1out + u2 * z2out
    fout = _sigmoid_literal(fin)
    return dict(
        b1=b1, b2=b2, w11=w11, w12=w12, w21=w21, w22=w22, c=c, u1=u1, u2=u2, x1=x1, x2=x2, y=y,
        z1in=z1in, z2in=z2in, z1out=z1out, z2out=z2out, fin=fin, fout=fout,
    )  # fmt: skip


_NET_INDEX = {k: i for i, k in enumerate("b1 b2 w11 w12 w21 w22 c u1 u2 x1 x2 y".split())}


def _net_loss(p):
    v = _net_single(p)
    return _bce_literal(v["y"], v["fout"])


def _dL_dfin(v):
    dL_dfout = -v["y"] / v["fout"] + (1.0 - v["y"]) / (1.0 - v["fout"])  # Q1
    s = _sigmoid_literal(v["fin"])
    return dL_dfout * s * (1.0 - s)  # Q2, Q3


def _derivative_table():
    """``name -> (formula(p), function(p), index, sampler(key, n))``: the formula is the
    derivative of ``function`` w.r.t. ``p[index]``."""

    # Samplers take a NumPy Generator: host-side draws cost no compile (threefry is slow to
    # compile on CPU and these points need no JAX key discipline).
    def uniform(lo, hi, k=1):
        return lambda rng, n: rng.uniform(lo, hi, (n, k))

    def normal(k):
        return lambda rng, n: rng.standard_normal((n, k))

    def bce_points(rng, n):
        y = rng.integers(0, 2, n).astype(np.float64)
        f = rng.uniform(0.05, 0.95, n)
        return np.stack([y, f], axis=1)

    def net_points(rng, n):
        p = rng.standard_normal((n, 11))
        y = rng.integers(0, 2, (n, 1)).astype(np.float64)
        return np.concatenate([p, y], axis=1)

    tanh_p = jnp.tanh
    t = {
        "Q3 dsigmoid/dx = s(1 - s)": (
            lambda p: _sigmoid_literal(p[0]) * (1.0 - _sigmoid_literal(p[0])),
            lambda p: _sigmoid_literal(p[0]),
            0,
            uniform(-8.0, 8.0),
        ),
        "Q4 dtanh/dx = 1 - tanh^2": (
            lambda p: 1.0 - tanh_p(p[0]) ** 2,
            lambda p: (jnp.exp(p[0]) - jnp.exp(-p[0])) / (jnp.exp(p[0]) + jnp.exp(-p[0])),
            0,
            uniform(-5.0, 5.0),
        ),
        "Q1 dL/df_out = -y/f + (1-y)/(1-f)": (
            lambda p: -p[0] / p[1] + (1.0 - p[0]) / (1.0 - p[1]),
            lambda p: _bce_literal(p[0], p[1]),
            1,
            bce_points,
        ),
        "Q2 df_out/df_in = e^-x / (1 + e^-x)^2": (
            lambda p: jnp.exp(-p[0]) / (1.0 + jnp.exp(-p[0])) ** 2,
            lambda p: _sigmoid_literal(p[0]),
            0,
            uniform(-8.0, 8.0),
        ),
    }
    # f_in = c + u1 z1out + u2 z2out, p = (c, u1, u2, z1out, z2out)
    f_in = lambda p: p[0] + p[1] * p[3] + p[2] * p[4]  # noqa: E731
    t["Q5 df_in/dc = 1"] = (lambda p: jnp.ones_like(p[0]), f_in, 0, normal(5))
    t["Q6 df_in/du1 = z1out"] = (lambda p: p[3], f_in, 1, normal(5))
    t["Q9 df_in/dz2out = u2"] = (lambda p: p[2], f_in, 4, normal(5))
    # z2in = b2 + w12 x1 + w22 x2, p = (b2, w12, w22, x1, x2)
    z2in = lambda p: p[0] + p[1] * p[3] + p[2] * p[4]  # noqa: E731
    t["Q11 dz2in/db2 = 1"] = (lambda p: jnp.ones_like(p[0]), z2in, 0, normal(5))
    t["Q12 dz2in/dw12 = x1"] = (lambda p: p[3], z2in, 1, normal(5))
    t["Q13 dz2in/dx1 = w12"] = (lambda p: p[1], z2in, 3, normal(5))

    def comp(name, formula):
        return (lambda p: formula(_net_single(p)), _net_loss, _NET_INDEX[name], net_points)

    t["Q7 dL/dc"] = comp("c", lambda v: _dL_dfin(v) * 1.0)
    t["Q8 dL/du1"] = comp("u1", lambda v: _dL_dfin(v) * v["z1out"])
    t["Q14 dL/db2"] = comp("b2", lambda v: _dL_dfin(v) * v["u2"] * (1.0 - jnp.tanh(v["z2in"]) ** 2))
    t["Q15 dL/dw12"] = comp(
        "w12", lambda v: _dL_dfin(v) * v["u2"] * (1.0 - jnp.tanh(v["z2in"]) ** 2) * v["x1"]
    )
    t["Q16 dL/dx1"] = comp(
        "x1",
        lambda v: (
            _dL_dfin(v) * v["u2"] * (1.0 - jnp.tanh(v["z2in"]) ** 2) * v["w12"]
            + _dL_dfin(v) * v["u1"] * (1.0 - jnp.tanh(v["z1in"]) ** 2) * v["w11"]
        ),
    )
    return t


def derivative_checks(n: int = 1000, seed: int = 0) -> list[CheckRecord]:
    """Each formula of Exercise 2 (the lab's own expression, the "manual" derivative) vs
    ``jax.grad`` of the literal function vs a central difference, at ``n`` random points.
    Errors use ``floor = 1`` (see the module docstring)."""
    _require_x64()
    n = check_int("n", n, lo=1)
    h = FD_STEP

    table = _derivative_table()
    rng = np.random.default_rng(seed)
    points = {name: sampler(rng, n) for name, (_, _, _, sampler) in table.items()}

    @partial(jax.jit, compiler_options=_FAST_COMPILE)
    def run(points):
        out = {}
        for name, (formula, fn, idx, _) in table.items():

            def all_three(p, formula=formula, fn=fn, idx=idx):
                e = jnp.zeros_like(p).at[idx].set(h)
                return {
                    "manual": formula(p)[None],
                    "autodiff": jax.grad(fn)(p)[idx][None],
                    "fd": ((fn(p + e) - fn(p - e)) / (2.0 * h))[None],
                }

            out[name] = jax.vmap(all_three)(points[name])
        return out

    return _records(run(points), list(table), floor=SCALAR_FLOOR)


def problem_checks(
    problem: Problem, settings=None, n: int = 1000, seed: int = 0
) -> list[CheckRecord]:
    """A user's :class:`jaxlab.Problem` checked by :func:`jaxlab.testing.check_problem` (in
    float64 whatever the process's settings), as records for :func:`format_table`: one per pair,
    ``n`` the points used (points with a non-finite loss or ``jax.grad`` are left out)."""
    return check_problem(problem, settings, n=n, seed=seed).records()


def run_all(n: int = 1000, seed: int = 0) -> list[CheckRecord]:
    """Every check: network, objectives, Exercise 2 formulas (float64 must be on)."""
    return (
        network_checks(n=n, seed=seed)
        + objective_checks(n=n, seed=seed)
        + derivative_checks(n=n, seed=seed)
    )


def config_checks(path: str, n: int = 1000, seed: int = 0) -> list[CheckRecord]:
    """The problem of the sweep config ``path`` (a TOML file, as ``jaxlab sweep --config``
    reads it) checked by :func:`jaxlab.testing.check_problem` at each combination of its static
    settings, its traced settings at their first value."""
    import itertools

    from jaxlab.config import from_file

    cfg = from_file(path)
    problem = cfg.problem_obj
    own = {**dict(problem.static), **dict(problem.traced)}
    static = [a for a in cfg.settings if not a.traced and a.name in own]
    traced = {a.name: a.values[0] for a in cfg.settings if a.traced and a.name in own}
    out = []
    for values in itertools.product(*(a.values for a in static)):
        settings = {**dict(zip((a.name for a in static), values)), **traced}
        report = check_problem(problem, settings, n=n, seed=seed)
        label = " ".join(f"{a.name}={v}" for a, v in zip(static, values))
        named = problem.name if problem.name != "problem" else cfg.problem_label
        check = f"problem {named} {label}".rstrip()
        out += [CheckRecord(check, r.pair, r.error, r.n) for r in report.records()]
    return out


def main(argv=None) -> int:
    """``jaxlab gradcheck``: run every check (or, with ``--config``, those of the config's
    problem), print the table, exit 0 iff all pass."""
    jax.config.update("jax_enable_x64", True)
    parser = argparse.ArgumentParser(
        prog="jaxlab gradcheck",
        description="Three-way gradient checks (manual vs jax.grad vs finite differences).",
    )
    parser.add_argument(
        "--config",
        metavar="FILE.toml",
        help="check the problem of this sweep config (e.g. your own module:attribute) at each "
        "of its static settings, traced ones at their first value, instead of jaxlab's "
        "built-in checks",
    )
    parser.add_argument("--n", type=int, default=1000, help="random points per check")
    parser.add_argument("--tol-manual", type=float, default=TOL_MANUAL)
    parser.add_argument("--tol-fd", type=float, default=TOL_FD)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n: expected an integer >= 1")
    for flag, v in (("--tol-manual", args.tol_manual), ("--tol-fd", args.tol_fd)):
        if not np.isfinite(v) or v <= 0:
            parser.error(f"{flag}: expected a finite number > 0, got {v!r}")
    if args.config:
        records = config_checks(args.config, n=args.n, seed=args.seed)
    else:
        records = run_all(n=args.n, seed=args.seed)
    print(format_table(records, args.tol_manual, args.tol_fd))
    bad = failures(records, args.tol_manual, args.tol_fd)
    print(f"{len(records) - len(bad)}/{len(records)} checks passed" + ("" if bad else " - PASS"))
    return 1 if bad else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
