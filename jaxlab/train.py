"""One training run of the network: the lab's Exercise 3 for a single start.

:func:`train` is written for ONE run; a sweep batches it with ``vmap`` at the edge.
"""

from __future__ import annotations

import jax
import optax

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
    * ``adam``: ``optax.adam(learning_rate, b1, b2)``.
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
    return optax.adam(lr, b1=b1, b2=b2)


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
