"""The 2-D test objectives of :mod:`jaxlab.objectives` as a :class:`jaxlab.Problem`: gradient
descent on the lab's f (Exercise 1), Rosenbrock, Himmelblau, ... from given or random start
points.

Settings: static ``objective``; traced ``lr``, ``momentum``, ``x1``, ``x2`` (a start
coordinate; NaN, the default, draws it uniformly in the objective's box). Reported losses are
gaps ``f - f_min``; each run's final point is recorded (``x1_final``, ``x2_final``). Its figure
is the basin map (which minimiser each start point reaches), for sweeps with start-point axes
(:mod:`jaxlab.problems.objective_figures`).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from jaxlab.contract import Problem
from jaxlab.objectives import OBJECTIVES, get_objective

__all__ = ["DRAW_DTYPE", "objective"]

DRAW_DTYPE = jnp.float32  # start points drawn in float32 whatever the dtype (as the network)


def _finite_or_nan(v) -> bool:
    return math.isfinite(v) or math.isnan(v)


@functools.cache
def objective() -> Problem:
    """The objectives problem (one object: the same compiled programs)."""

    def init(key, s):
        obj = get_objective(s["objective"])
        (lo1, hi1), (lo2, hi2) = obj.box
        dt = jnp.asarray(s["lr"]).dtype
        u = jax.random.uniform(key, (2,), DRAW_DTYPE).astype(dt)
        rand = jnp.stack([lo1 + (hi1 - lo1) * u[0], lo2 + (hi2 - lo2) * u[1]])
        given = jnp.stack([s["x1"], s["x2"]]).astype(dt)
        return jnp.where(jnp.isnan(given), rand, given)  # NaN coordinate: drawn at random

    def loss(x, s):
        return get_objective(s["objective"]).fn("autodiff")(x)

    def grad(x, s):
        return jax.value_and_grad(get_objective(s["objective"]).fn("manual"))(x)

    return Problem(
        init=init,
        loss=loss,
        grad=grad,
        static={"objective": "lab"},
        traced={"lr": {"log": [0.1, 10.0, 11]}, "momentum": 0.9, "x1": math.nan, "x2": math.nan},
        minimum=lambda s: get_objective(s["objective"]).minimum,
        record=lambda x, s: {"x1_final": x[0], "x2_final": x[1]},
        checks={
            "objective": tuple(OBJECTIVES),
            "x1": (_finite_or_nan, "finite numbers (nan: random in the box)"),
            "x2": (_finite_or_nan, "finite numbers (nan: random in the box)"),
        },
        figures={"basins.png": _draw_basins},
        describe=lambda cfg: (
            "objective " + ", ".join(str(v) for v in cfg.setting("objective").values)
        ),
        name="objective",
    )


def _draw_basins(res, path):
    from jaxlab.problems import objective_figures  # matplotlib only once a figure is drawn

    return objective_figures.draw_basins(res, path)
