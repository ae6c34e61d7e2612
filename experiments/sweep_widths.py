"""How does the hidden width change the odds? The lab's network with 2, 3, 4 and 8 hidden units,
success rate over learning rate x initialisation scale, one heatmap per width.

    python experiments/sweep_widths.py [--out out/widths] [--n-runs 1000]
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
    ap.add_argument("--out", default="out/widths")
    ap.add_argument("--n-runs", type=int, default=1000)
    args = ap.parse_args()
    cfg = SweepConfig(name="widths", n_runs=args.n_runs).with_settings(
        widths=[[2, 2, 1], [2, 3, 1], [2, 4, 1], [2, 8, 1]],
        lr={"log": [0.1, 10.0, 9]},
        scale={"log": [0.25, 4.0, 5]},
    )
    res = run_sweep(cfg, Path(args.out) / "run")
    print(f"{'widths':>8} {'best lr':>8} {'best scale':>10} {'success':>8}  [95% CI]")
    for w in cfg.setting("widths").values:
        name = "-".join(map(str, w))
        sub = res.select(widths=name)
        best = best_index(sub.cells["success_rate"], sub.cells["ci_low"])
        c = {k: v[best] for k, v in sub.cells.items()}
        print(
            f"{name:>8} {c['lr']:8.3g} {c['scale']:10.3g} {c['success_rate']:8.3f}  "
            f"[{c['ci_low']:.3f}, {c['ci_high']:.3f}]"
        )
        plots.success_heatmap(sub, Path(args.out) / f"success_{name}.png")
    print(f"figures in {args.out}")


if __name__ == "__main__":
    main()
