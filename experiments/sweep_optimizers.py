"""Plain gradient descent (the lab's) against heavy-ball momentum and Adam on the same grid of
learning rate x initialisation scale, on the same restarts (``keys = "paired"``: restart i of
every cell starts from the same key) and with the same stopping rule.

    python experiments/sweep_optimizers.py [--out out/optimizers] [--n-runs 1000]
"""

import argparse
from pathlib import Path

import jax

jax.config.update("jax_num_cpu_devices", 2)

from jaxlab import plots  # noqa: E402
from jaxlab.aggregate import best_index  # noqa: E402
from jaxlab.config import SweepConfig  # noqa: E402
from jaxlab.sweep import run_sweep  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/optimizers")
    ap.add_argument("--n-runs", type=int, default=1000)
    args = ap.parse_args()
    cfg = SweepConfig(name="optimizers", n_runs=args.n_runs, keys="paired").with_settings(
        optimizer=["gd", "momentum", "adam"],
        lr={"log": [0.01, 10.0, 10]},
        scale={"log": [0.25, 4.0, 5]},
        momentum=0.9,
    )
    res = run_sweep(cfg, Path(args.out) / "run")
    for opt in cfg.setting("optimizer").values:
        sub = res.select(optimizer=opt)
        best = best_index(sub.cells["success_rate"], sub.cells["ci_low"])
        c = {k: v[best] for k, v in sub.cells.items()}
        print(
            f"{opt:>9}: best lr {c['lr']:.3g}, scale {c['scale']:.3g}: success "
            f"{c['success_rate']:.3f} [{c['ci_low']:.3f}, {c['ci_high']:.3f}], "
            f"median steps {c['median_steps']:.0f}"
        )
        plots.success_heatmap(sub, Path(args.out) / f"success_{opt}.png")
    print(f"figures in {args.out}")


if __name__ == "__main__":
    main()
