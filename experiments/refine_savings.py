"""What a refined sweep (--refine) saves against the uniform sweep of its finest grid, and how
well the two maps agree (README, "Refined sweeps").

    python experiments/refine_savings.py [--base 8] [--finest 512] [--n-runs 4] [--max-steps 100]

runs the lab's network over learning rate x init scale (log 0.1 .. 10 x 0.25 .. 4, the default
sweep's ranges) twice, with paired keys and the same lane block (so a finest refined cell and
the uniform cell at its centre run the same restarts, bit for bit): refined from a base x base
grid to ``finest`` cells per axis at success level 0.5, and the uniform finest x finest sweep
whose cells are the refined sweep's finest cells. Prints the trainings each used, their ratio,
the share of finest pixels whose success class (rate >= 0.5) agrees, the wall times and the
CPU; writes ``experiments/figures/refine_vs_uniform.png`` (the two maps side by side, and
where they differ).
"""

import argparse
import subprocess
import time
from pathlib import Path

import numpy as np

from jaxlab import refine
from jaxlab.config import SweepConfig
from jaxlab.plots import new_figure, save, success_heatmap
from jaxlab.sweep import run_sweep

FIGURE = Path(__file__).parent / "figures" / "refine_vs_uniform.png"


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=int, default=8, help="base grid cells per axis")
    ap.add_argument("--finest", type=int, default=512, help="finest cells per axis")
    ap.add_argument("--n-runs", type=int, default=4)
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--lane-block", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--figure", default=str(FIGURE))
    args = ap.parse_args()
    common = dict(
        n_runs=args.n_runs,
        max_steps=args.max_steps,
        keys="paired",
        lane_block=args.lane_block,
        seed=args.seed,
    )
    axes = dict(lr={"log": [0.1, 10.0, args.base]}, scale={"log": [0.25, 4.0, args.base]})
    cfg = SweepConfig(refine=args.finest, lanes="recycle", chunk_size=4096, **common)
    cfg = cfg.with_settings(**axes)
    t0 = time.perf_counter()
    ref = run_sweep(cfg, None, progress=False)
    t_ref = time.perf_counter() - t0

    xs, ys = refine.finest_values(cfg)  # the uniform grid: the refined sweep's finest cells
    uni_cfg = SweepConfig(**common).with_settings(lr=list(xs), scale=list(ys))
    t0 = time.perf_counter()
    uni = run_sweep(uni_cfg, None, progress=False)
    t_uni = time.perf_counter() - t0

    rf = ref.meta["refine"]
    fine = ref.finest()["values"]
    uniform = np.asarray(uni.cells["success_rate"]).reshape(len(xs), len(ys))
    agree = float(np.mean((fine >= 0.5) == (uniform >= 0.5)))
    n_ref, n_uni = rf["restarts"], int(uni.cells["n_runs"].sum())
    print(f"cpu: {cpu_model()}")
    print(
        f"grid: lr log 0.1 .. 10 x scale log 0.25 .. 4; base {args.base} x {args.base}, finest "
        f"{len(xs)} x {len(ys)}; n_runs {args.n_runs}, max_steps {args.max_steps}, paired keys, "
        f"lane_block {args.lane_block}, seed {args.seed}"
    )
    print("| sweep | cells | trainings | wall s |")
    print("| --- | ---: | ---: | ---: |")
    print(
        f"| refined (levels {rf['cells_per_level']}) | {rf['cells']:,} ({rf['leaves']:,} "
        f"leaves) | {n_ref:,} | {t_ref:.1f} |"
    )
    print(f"| uniform {len(xs)} x {len(ys)} | {len(xs) * len(ys):,} | {n_uni:,} | {t_uni:.1f} |")
    print(f"\ntrainings uniform / refined: {n_uni / n_ref:.1f}x")
    print(f"success class (rate >= 0.5) agreeing per finest pixel: {agree:.2%}")

    fig = new_figure(15, 5.6)
    a1, a2, a3 = fig.subplots(1, 3)
    r = ref.finest()
    for ax in (a1, a3):
        ax.set_xscale("log")
        ax.set_yscale("log")
    m = a1.pcolormesh(r["x_edges"], r["y_edges"], uniform.T, cmap="viridis", vmin=0, vmax=1)
    a1.set_title(f"uniform {len(xs)} x {len(ys)}: {n_uni:,} trainings", fontsize=10)
    fig.colorbar(m, ax=a1, label="success rate")
    success_heatmap(ref, ax=a2)
    a2.set_title(f"refined from {args.base} x {args.base}: {n_ref:,} trainings", fontsize=10)
    differ = ((fine >= 0.5) != (uniform >= 0.5)).astype(float)
    a3.pcolormesh(r["x_edges"], r["y_edges"], differ.T, cmap="Reds", vmin=0, vmax=1)
    a3.set_title(f"class differs (rate >= 0.5): {1 - agree:.2%} of pixels", fontsize=10)
    for ax in (a1, a3):
        ax.set_xlabel("learning rate lr (log)")
        ax.set_ylabel("init scale (log)")
    fig.suptitle(
        f"Lab network, success rate over lr x init scale, {args.n_runs} paired restarts a cell, "
        f"max_steps {args.max_steps}: {n_uni / n_ref:.1f}x fewer trainings, {agree:.2%} "
        "of pixels in the same class",
        fontsize=11,
    )
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    print(f"figure: {save(fig, args.figure)}")


if __name__ == "__main__":
    main()
