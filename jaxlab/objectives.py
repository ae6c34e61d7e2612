"""Two-dimensional test objectives with hand-derived gradients, usable by name.

Each :class:`Objective` carries its value ``f(x)`` for one point ``x`` of shape (2,), its
gradient derived by hand, its known minimisers and minimum value, and a plotting box. The
``manual`` method differentiates through a ``jax.custom_vjp`` whose backward rule is the
hand-derived gradient; ``autodiff`` lets ``jax.grad`` differentiate ``value``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jaxlab.descent import DescentResult, descend, gd
from jaxlab.errors import ConfigError, check_choice

__all__ = ["OBJECTIVES", "Objective", "get_objective", "minimize"]


@dataclass(frozen=True)
class Objective:
    """A 2-D test function. ``minimizers`` are the global ones, ``local_minimizers`` the rest."""

    name: str
    value: Callable
    grad: Callable
    minimizers: tuple[tuple[float, float], ...]
    minimum: float
    box: tuple[tuple[float, float], tuple[float, float]]
    local_minimizers: tuple[tuple[float, float], ...] = ()
    formula: str = ""

    def fn(self, method: str = "autodiff") -> Callable:
        """``x -> f(x)`` whose ``jax.grad`` uses ``method`` ("autodiff" or "manual")."""
        check_choice("method", method, ("autodiff", "manual"))
        return self.value if method == "autodiff" else _manual(self.name)

    @property
    def all_minimizers(self) -> tuple[tuple[float, float], ...]:
        return self.minimizers + self.local_minimizers


def _split(x):
    return x[..., 0], x[..., 1]


def _lab(x):
    x1, x2 = _split(x)
    return (x1 - 6.0) ** 2 + x2**2 - x1 * x2


def _lab_grad(x):
    x1, x2 = _split(x)
    return jnp.stack([2.0 * x1 - x2 - 12.0, -x1 + 2.0 * x2], axis=-1)


def _rosenbrock(x):
    x1, x2 = _split(x)
    return (1.0 - x1) ** 2 + 100.0 * (x2 - x1**2) ** 2


def _rosenbrock_grad(x):
    x1, x2 = _split(x)
    return jnp.stack([-2.0 * (1.0 - x1) - 400.0 * x1 * (x2 - x1**2), 200.0 * (x2 - x1**2)], axis=-1)


def _himmelblau(x):
    x1, x2 = _split(x)
    return (x1**2 + x2 - 11.0) ** 2 + (x1 + x2**2 - 7.0) ** 2


def _himmelblau_grad(x):
    x1, x2 = _split(x)
    a, b = x1**2 + x2 - 11.0, x1 + x2**2 - 7.0
    return jnp.stack([4.0 * x1 * a + 2.0 * b, 2.0 * a + 4.0 * x2 * b], axis=-1)


def _beale(x):
    x1, x2 = _split(x)
    return (
        (1.5 - x1 + x1 * x2) ** 2 + (2.25 - x1 + x1 * x2**2) ** 2 + (2.625 - x1 + x1 * x2**3) ** 2
    )


def _beale_grad(x):
    x1, x2 = _split(x)
    a = 1.5 - x1 + x1 * x2
    b = 2.25 - x1 + x1 * x2**2
    c = 2.625 - x1 + x1 * x2**3
    d1 = 2 * a * (x2 - 1.0) + 2 * b * (x2**2 - 1.0) + 2 * c * (x2**3 - 1.0)
    d2 = 2 * a * x1 + 2 * b * 2.0 * x1 * x2 + 2 * c * 3.0 * x1 * x2**2
    return jnp.stack([d1, d2], axis=-1)


def _booth(x):
    x1, x2 = _split(x)
    return (x1 + 2.0 * x2 - 7.0) ** 2 + (2.0 * x1 + x2 - 5.0) ** 2


def _booth_grad(x):
    x1, x2 = _split(x)
    a, b = x1 + 2.0 * x2 - 7.0, 2.0 * x1 + x2 - 5.0
    return jnp.stack([2 * a + 4 * b, 4 * a + 2 * b], axis=-1)


def _camel(x):
    x1, x2 = _split(x)
    return 2.0 * x1**2 - 1.05 * x1**4 + x1**6 / 6.0 + x1 * x2 + x2**2


def _camel_grad(x):
    x1, x2 = _split(x)
    return jnp.stack([4.0 * x1 - 4.2 * x1**3 + x1**5 + x2, x1 + 2.0 * x2], axis=-1)


_CAMEL_LOCAL = 1.7475523543  # the two local minima of the three-hump camel: (+-a, -+a/2)

OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective(
            "lab",
            _lab,
            _lab_grad,
            ((8.0, 4.0),),
            -12.0,
            ((-2.0, 14.0), (-4.0, 12.0)),
            formula="(x1 - 6)^2 + x2^2 - x1 x2",
        ),
        Objective(
            "rosenbrock",
            _rosenbrock,
            _rosenbrock_grad,
            ((1.0, 1.0),),
            0.0,
            ((-2.0, 2.0), (-1.0, 3.0)),
            formula="(1 - x1)^2 + 100 (x2 - x1^2)^2",
        ),
        Objective(
            "himmelblau",
            _himmelblau,
            _himmelblau_grad,
            ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)),
            0.0,
            ((-5.0, 5.0), (-5.0, 5.0)),
            formula="(x1^2 + x2 - 11)^2 + (x1 + x2^2 - 7)^2",
        ),
        Objective(
            "beale",
            _beale,
            _beale_grad,
            ((3.0, 0.5),),
            0.0,
            ((-4.5, 4.5), (-4.5, 4.5)),
            formula="(1.5 - x1 + x1 x2)^2 + (2.25 - x1 + x1 x2^2)^2 + (2.625 - x1 + x1 x2^3)^2",
        ),
        Objective(
            "booth",
            _booth,
            _booth_grad,
            ((1.0, 3.0),),
            0.0,
            ((-10.0, 10.0), (-10.0, 10.0)),
            formula="(x1 + 2 x2 - 7)^2 + (2 x1 + x2 - 5)^2",
        ),
        Objective(
            "three_hump_camel",
            _camel,
            _camel_grad,
            ((0.0, 0.0),),
            0.0,
            ((-2.5, 2.5), (-2.5, 2.5)),
            local_minimizers=((_CAMEL_LOCAL, -_CAMEL_LOCAL / 2), (-_CAMEL_LOCAL, _CAMEL_LOCAL / 2)),
            formula="2 x1^2 - 1.05 x1^4 + x1^6 / 6 + x1 x2 + x2^2",
        ),
    )
}


def get_objective(name: str) -> Objective:
    """The registered objective called ``name``; a clear error lists the others."""
    return OBJECTIVES[check_choice("objective", name, OBJECTIVES)]


def _make_manual(obj: Objective) -> Callable:
    @jax.custom_vjp
    def f(x):
        return obj.value(x)

    def f_fwd(x):
        return obj.value(x), x

    def f_bwd(x, g):
        return (g * obj.grad(x),)

    f.defvjp(f_fwd, f_bwd)
    return f


_MANUAL = {name: _make_manual(o) for name, o in OBJECTIVES.items()}


def _manual(name: str) -> Callable:
    return _MANUAL[name]


def minimize(
    objective: str | Objective,
    x0,
    learning_rate,
    *,
    max_steps: int = 100,
    tol: float = 1e-4,
    method: str = "autodiff",
    trajectory: bool = False,
) -> DescentResult:
    """Gradient descent with the lab's rule on a named objective from ``x0`` (2,).

    ``learning_rate`` is a number, a traced array or a schedule ``step -> rate``
    (e.g. :func:`jaxlab.descent.lab_schedule` for the lab's 1/2, 1/3, 1/4).
    """
    obj = get_objective(objective) if isinstance(objective, str) else objective
    f = obj.fn(method)
    x0 = jnp.asarray(x0, dtype=jnp.result_type(float))
    if x0.shape != (2,):
        raise ConfigError("x0", f"expected a start point of shape (2,), got shape {x0.shape}")
    return descend(
        jax.value_and_grad(f),
        x0,
        gd(learning_rate),
        max_steps=max_steps,
        tol=tol,
        trajectory=trajectory,
    )
