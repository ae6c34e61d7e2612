"""One restart of one sweep cell, written for a single run: ``run_one(spec, hparams, key)``.

:class:`RunSpec` holds what is compiled in (problem, sizes, optimiser family, step budget);
``hparams`` holds the traced settings of this run (learning rate, scale, momentum, start point).
The sweep engine batches :func:`run_one` with ``vmap`` and shards it; nothing here knows of
grids, chunks or devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxlab import unrolled
from jaxlab.datasets import get_dataset
from jaxlab.descent import Status, descend
from jaxlab.gradients import network_loss
from jaxlab.network import from_vector, n_params
from jaxlab.objectives import get_objective
from jaxlab.train import make_optimizer

__all__ = ["RunOut", "RunSpec", "final_params", "run_one", "succeeded", "train_one"]


@dataclass(frozen=True)
class RunSpec:
    """The compile-time part of a run (hashable: one compiled program per distinct spec)."""

    problem: str = "network"
    dataset: str = "lab"
    objective: str = "lab"
    widths: tuple = (2, 2, 1)
    optimizer: str = "gd"
    max_steps: int = 100
    loss: str = "lab"
    method: str = "autodiff"
    dtype: str = "float32"
    tol: float | None = 1e-4  # None: no stopping rule (a fixed budget)
    threshold: float = 0.1
    kernel: str = "auto"  # "auto", "unrolled" or "array" (network problems)

    def use_unrolled(self) -> bool:
        if self.kernel != "auto":
            return self.kernel == "unrolled"
        return unrolled.fits(get_dataset(self.dataset), self.widths)


class RunOut(NamedTuple):
    """Outcome of one restart. ``loss`` is the final loss (network) or the gap
    ``f - f_min`` (objective); ``point`` the final point of an objective run, else 0s."""

    loss: jax.Array
    steps: jax.Array
    status: jax.Array
    success: jax.Array
    point: jax.Array  # (2,)


# A restart's random start is drawn in float32 whatever the dtype it trains in, then
# converted: the same restart starts from the same point in float32 and float64 sweeps (only the
# arithmetic differs between them, as in the peers of ../shared/bench, which share their p0
# across dtypes), and float64 runs skip float64 sampling (64-bit random bits and a float64
# erfinv, recomputed by each kernel that reads a parameter before the loop): measured on one core,
# 110 ms of a 270 ms float64 chunk of 32k restarts x 100 steps, 25 ms once drawn in float32.
DRAW_DTYPE = jnp.float32


def _network(spec: RunSpec, hp: dict, key):
    dt = jnp.dtype(spec.dtype)
    data = get_dataset(spec.dataset)
    z = jax.random.normal(key, (n_params(spec.widths),), DRAW_DTYPE).astype(dt)
    vec0 = hp["scale"] * z
    if spec.use_unrolled():
        f = unrolled.unrolled_loss(data, spec.widths, spec.loss, spec.method)
        params0 = tuple(vec0[i] for i in range(vec0.shape[0]))
    else:
        f = network_loss(data, spec.loss, spec.method)
        params0 = from_vector(vec0, spec.widths)
    return jax.value_and_grad(f), params0, 0.0


def _objective(spec: RunSpec, hp: dict, key):
    dt = jnp.dtype(spec.dtype)
    obj = get_objective(spec.objective)
    (lo1, hi1), (lo2, hi2) = obj.box
    u = jax.random.uniform(key, (2,), DRAW_DTYPE).astype(dt)
    rand = jnp.stack([lo1 + (hi1 - lo1) * u[0], lo2 + (hi2 - lo2) * u[1]])
    given = jnp.stack([hp["x1"], hp["x2"]]).astype(dt)
    x0 = jnp.where(jnp.isnan(given), rand, given)  # NaN coordinate: drawn at random
    return jax.value_and_grad(obj.fn(spec.method)), x0, obj.minimum


def train_one(spec: RunSpec, hp: dict, key, trajectory: bool = False):
    """Train one restart; returns its :class:`jaxlab.descent.DescentResult` and the objective's
    minimum (0 for networks). Network params come back as the flat tuple or Dense layers,
    whichever the kernel uses; :func:`final_params` converts."""
    build = _network if spec.problem == "network" else _objective
    value_and_grad, params0, minimum = build(spec, hp, key)
    opt = make_optimizer(spec.optimizer, hp["lr"], momentum=hp["momentum"])
    res = descend(
        value_and_grad, params0, opt, max_steps=spec.max_steps, tol=spec.tol, trajectory=trajectory
    )
    return res, minimum


def final_params(spec: RunSpec, params):
    """A network's params as Dense layers (from either kernel's layout); a point unchanged."""
    if spec.problem == "network" and isinstance(params, tuple) and not hasattr(params[0], "W"):
        return from_vector(jnp.stack(params), spec.widths)
    return params


def succeeded(status, loss, threshold):
    """A restart's success: it did not diverge and its final loss (or gap) is below
    ``threshold``. Works on jax and numpy values alike."""
    return (status != Status.DIVERGED) & (loss < threshold)


def run_one(spec: RunSpec, hp: dict, key) -> RunOut:
    """Train one restart. ``hp`` maps ``lr``, ``scale``, ``momentum``, ``x1``, ``x2`` to scalars."""
    res, minimum = train_one(spec, hp, key)
    loss = res.value - minimum
    success = succeeded(res.status, loss, spec.threshold)
    if spec.problem == "objective":
        point = res.params
    else:
        point = jnp.zeros((2,), res.value.dtype)
    return RunOut(loss, res.steps, res.status, success, point)
