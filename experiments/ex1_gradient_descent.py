"""Lab 3, Exercise 1: gradient descent on f(x1, x2) = (x1 - 6)^2 + x2^2 - x1 x2.

Prints the pen-and-paper table (steps 1/2, 1/3, 1/4 from (6, 6)) and the lab's
``gradient_descent_optimizer(c(6, 6), func.value, func.gradient, 10, 0.1)``; writes
``trajectory.png`` (both runs over a contour plot of f).

    python experiments/ex1_gradient_descent.py [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

from jaxlab.descent import lab_schedule
from jaxlab.objectives import get_objective, minimize

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def vec(x) -> str:
    return "[" + ", ".join(f"{v:g}" for v in np.asarray(x)) + "]"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/ex1"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_enable_x64", True)
    f = get_objective("lab")

    x0 = [6.0, 6.0]
    print(
        f"f(6, 6) = {float(f.value(jnp.array(x0))):g}, grad f(6, 6) = {vec(f.grad(jnp.array(x0)))}"
    )
    sched = minimize("lab", x0, lab_schedule, max_steps=3, trajectory=True)
    pts, vals = map(np.asarray, sched.trajectory)
    print("\nPen and paper, step sizes 1/2, 1/3, 1/4:")
    print(f"{'t':>2}  {'x(t)':<10} {'f(x(t))':>8}  {'grad':<10} x(t+1)")
    for t in range(3):
        g = np.asarray(f.grad(jnp.asarray(pts[t])))
        rate = float(lab_schedule(t))
        print(
            f"{t + 1:>2}  {vec(pts[t]):<10} {vals[t]:>8g}  {vec(g):<10} "
            f"{vec(pts[t])} - (1/{round(1 / rate)}) * {vec(g)} = {vec(pts[t + 1])}"
        )
    print("The gradient at [8, 4] is zero: further steps do not move.")

    lab = minimize("lab", x0, 0.1, max_steps=10, trajectory=True)
    x = np.asarray(lab.params)
    print("\ngradient_descent_optimizer(c(6, 6), func.value, func.gradient, 10, 0.1)")
    print(f"## [1] {x[0]:.6f} {x[1]:.6f}")
    print(f"({int(lab.steps)} steps, f = {float(lab.value):.6f}; minimum f(8, 4) = {f.minimum:g})")

    (lo1, hi1), (lo2, hi2) = f.box
    g1, g2 = np.meshgrid(np.linspace(lo1, hi1, 200), np.linspace(lo2, hi2, 200))
    z = np.asarray(f.value(jnp.stack([g1, g2], axis=-1)))
    fig, ax = plt.subplots(figsize=(6, 5))
    cs = ax.contour(g1, g2, z, levels=30, cmap="viridis", linewidths=0.8)
    fig.colorbar(cs, ax=ax, label="f(x1, x2)")
    lab_pts = np.asarray(lab.trajectory[0])[: int(lab.steps) + 1]
    ax.plot(lab_pts[:, 0], lab_pts[:, 1], "o-", color="tab:red", ms=3, label="rate 0.1, 10 steps")
    ax.plot(pts[:, 0], pts[:, 1], "s--", color="tab:blue", ms=5, label="steps 1/2, 1/3, 1/4")
    ax.plot(*f.minimizers[0], "k*", ms=14, label="minimum (8, 4)")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title("Gradient descent on (x1 - 6)^2 + x2^2 - x1 x2")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(args.out / "trajectory.png", dpi=100)
    print(f"\nwrote {args.out / 'trajectory.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
