"""Built-in sweeps, by name: ``jaxlab sweep --preset NAME``."""

from __future__ import annotations

from jaxlab.config import SweepConfig
from jaxlab.errors import check_choice

__all__ = ["PRESETS", "preset"]


def _lab() -> SweepConfig:
    # The lab's network and data, its rule and 100 steps; learning rate on a log grid around the
    # lab's 1 and the initialisation scale 0.25 .. 4 (the lab uses 1 and shows 5).
    return SweepConfig(name="lab")


def _quadratic() -> SweepConfig:
    # Exercise 1's f over learning rate x start point. Its Hessian [[2, -1], [-1, 2]] has
    # eigenvalues 1 and 3: plain gradient descent converges iff lr < 2/3.
    return SweepConfig(
        name="quadratic",
        problem="objective",
        n_runs=1,
        keep_runs=True,
        threshold=1e-2,
    ).with_settings(
        objective="lab",
        max_steps=1000,
        lr={"lin": [0.05, 0.95, 19]},
        x1={"lin": [-1.0, 15.0, 9]},
        x2={"lin": [-5.0, 11.0, 9]},
    )


PRESETS = {"lab": _lab, "quadratic": _quadratic}


def preset(name: str) -> SweepConfig:
    """The built-in config called ``name`` (``lab``: the main job; ``quadratic``: Exercise 1)."""
    return PRESETS[check_choice("preset", name, PRESETS)]().validate()
