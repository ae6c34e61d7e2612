"""One training run of the network: the lab's Exercise 3 for a single start.

:func:`train` is written for ONE run; a sweep batches it with ``vmap`` at the edge.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from optax._src import numerics

from jaxlab.descent import TOL, DescentResult, check_learning_rate, descend
from jaxlab.errors import ConfigError, check_choice, check_finite_positive
from jaxlab.gradients import network_loss
from jaxlab.network import LAB_DATA, Dataset, check_widths

__all__ = ["OPTIMIZERS", "make_optimizer", "train"]

OPTIMIZERS = ("gd", "momentum", "adam")


def make_optimizer(
    name: str = "gd", learning_rate=1.0, *, momentum=0.9, b1=0.9, b2=0.999
) -> optax.GradientTransformation:
    """An optimiser by name; every hyperparameter may be a traced array (swept without
    recompiling).

    * ``gd``: the lab's ``x - learning_rate * grad``;
    * ``momentum``: heavy-ball SGD, ``optax.sgd(learning_rate, momentum)``;
    * ``adam``: ``optax.adam(learning_rate, b1, b2)``, its bias corrections written as
      multiplications (:func:`scale_by_adam`: the same restart gives the same bits on any
      number of devices).
    """
    check_choice("optimizer", name, OPTIMIZERS)
    lr = check_learning_rate(learning_rate)
    if name == "gd":
        return optax.sgd(lr)
    if name == "momentum":
        _check_unit("momentum", momentum)
        return optax.sgd(lr, momentum=momentum)
    _check_unit("b1", b1)
    _check_unit("b2", b2)
    return optax.chain(scale_by_adam(b1, b2), optax.scale_by_learning_rate(lr))


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8) -> optax.GradientTransformation:
    """``optax.scale_by_adam`` with the bias corrections as multiplications by ``1 / (1 -
    b**t)``: optax divides each moment by the scalar ``1 - b**t``, and XLA rewrites that
    division into a multiplication by a reciprocal in some programs and not in others (it
    did so with the runs sharded over 2 devices, not on 1), so a restart's last bits depended
    on the device count. Written as a multiplication, every program computes the same
    thing. State: ``optax.ScaleByAdamState``."""

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=zeros)

    def update(updates, state, params=None):
        del params
        mu = optax.tree.update_moment(updates, state.mu, b1, 1)
        nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = numerics.safe_increment(state.count)
        c1, c2 = 1 / (1 - b1**count), 1 / (1 - b2**count)
        updates = jax.tree.map(
            lambda m, v: (m * c1.astype(m.dtype)) / (jnp.sqrt(v * c2.astype(v.dtype)) + eps),
            mu,
            nu,
        )
        return updates, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)


def _check_unit(param: str, value) -> None:
    """A decay rate in [0, 1) (traced arrays are checked where they are made: the config)."""
    if isinstance(value, jax.Array):
        return
    v = check_finite_positive(param, value, allow_zero=True)
    if v >= 1:
        raise ConfigError(param, f"expected a number in [0, 1), got {value!r}")


def train(
    params,
    data: Dataset = LAB_DATA,
    learning_rate=1.0,
    *,
    optimizer: optax.GradientTransformation | None = None,
    max_steps: int = 100,
    tol: float = TOL,
    loss: str = "lab",
    method: str = "autodiff",
    trajectory: bool = False,
) -> DescentResult:
    """Train the network from ``params`` on ``data`` with the lab's stopping rule.

    ``optimizer`` (any optax transformation) overrides the lab's plain step with
    ``learning_rate``. ``method`` picks the gradient: ``"autodiff"`` (``jax.grad``) or
    ``"manual"`` (the hand-written VJPs of :mod:`jaxlab.gradients`). Returns final params, final
    loss, steps taken and :class:`jaxlab.descent.Status`; never raises on NaN.
    """
    check_widths([params[0].W.shape[0]] + [layer.W.shape[1] for layer in params], data)
    opt = optimizer if optimizer is not None else make_optimizer("gd", learning_rate)
    vg = jax.value_and_grad(network_loss(data, loss, method))
    return descend(vg, params, opt, max_steps=max_steps, tol=tol, trajectory=trajectory)
