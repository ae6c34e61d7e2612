"""Lab 3, Exercise 3: train the 2-2-1 network on the five points, ten random restarts.

Rate 1, at most 100 steps, initial weights N(0, 1); prints the lab's ``Loss ... *`` lines (a
``*`` under 0.1) and writes ``best_boundary.png`` (the best network's predicted probability on
the lab's 101 x 101 grid) and ``random_scale5_boundary.png`` (a random network, weights N(0, 25)).

    python experiments/ex3_train_network.py [--out DIR] [--seed S]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

from jaxlab.network import LAB_DATA, grid, init_params, predict
from jaxlab.train import train

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESTARTS = 10


def plot_grid(params, path: Path, title: str) -> None:
    """The lab's ``plot_grid``: predictions on the grid, blue (0) - white (0.5) - red (1)."""
    pts = grid()
    m = int(round(np.sqrt(len(pts))))
    probs = np.asarray(predict(params, jnp.asarray(pts))).reshape(m, m)  # rows: x2, cols: x1
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    im = ax.imshow(
        probs,
        origin="lower",
        extent=(pts[0, 0], pts[-1, 0], pts[0, 1], pts[-1, 1]),
        cmap="bwr",
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
    )
    fig.colorbar(im, ax=ax, label="predicted P(y = 1)")
    x, y = LAB_DATA.x, LAB_DATA.y
    for label, color in ((1.0, "red"), (0.0, "blue")):
        sel = y == label
        ax.scatter(x[sel, 0], x[sel, 1], c=color, edgecolors="black", s=60, label=f"y = {label:g}")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/ex3"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_enable_x64", True)

    root = jax.random.key(args.seed)

    def one_run(i):
        params = init_params(jax.random.fold_in(root, i), scale=1.0)
        return train(params, LAB_DATA, 1.0, max_steps=100)

    results = jax.jit(jax.vmap(one_run))(jnp.arange(RESTARTS))
    losses = np.asarray(results.value)
    for loss in losses:
        print("Loss", f"{loss:.7g}", "*" if loss < 0.1 else "")
    best = int(np.argmin(losses))
    best_params = jax.tree.map(lambda a: a[best], results.params)
    print(
        f"best: restart {best + 1}, loss {losses[best]:.7g}; {int((losses < 0.1).sum())}/10 under 0.1"
    )

    plot_grid(best_params, args.out / "best_boundary.png", f"best network, loss {losses[best]:.4g}")
    random5 = init_params(jax.random.fold_in(root, RESTARTS), scale=5.0)
    plot_grid(random5, args.out / "random_scale5_boundary.png", "random network, weights N(0, 5^2)")
    print(f"wrote {args.out / 'best_boundary.png'} and {args.out / 'random_scale5_boundary.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
