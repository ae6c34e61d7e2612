"""The paper's map and its dimension: sweep ``fractal.toml`` over the two layers' learning
rates, draw the trainable / diverged map, estimate the boundary's box-counting dimension.

    python experiments/fractal/map.py                       # 256 x 256 pixels, the default window
    python experiments/fractal/map.py --res 512 --lr0 ... --lr1 ...
    python experiments/fractal/map.py --res 64 --refine 2   # a 64 x 64 base grid, refined twice
    python experiments/fractal/map.py --res 64 --refine 2 --compare runs/uniform256  # same pixels?
    python experiments/fractal/map.py --from runs/fractal   # only the analysis, of a finished run

The sweep runs through the CLI (``jaxlab sweep --config fractal.toml --set lr0=LO:HI:N:log
... --out DIR``, one training a cell from the same key: the paper's fixed network);
``--refine K`` refines the grid K times (``jaxlab sweep --refine res * 2**K``, the finest cells
per axis: quadtree refinement where neighbours' classes differ; the base grid is placed so that
its finest pixels are those of the uniform ``res * 2**K`` map, :func:`base_range`), and
the map is rasterised from ``cells.csv`` at its finest pixels either way
(:func:`jaxlab.boxcount.rasterise`). Prints the fit (dimension, intercept, r^2, standard
error, the counts at every box size), the cost (trainings, wall time, the CPU) and, for a
refined map, the trainings against those of the uniform grid of its finest pixels. Draws
``experiments/figures/fractal_map.png`` (``--figure``).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from jaxlab import boxcount
from jaxlab.errors import ConfigError

HERE = Path(__file__).resolve().parent
FIGURE = HERE.parent / "figures" / "fractal_map.png"


def cpu_model() -> str:
    """``lscpu``'s model name (the platform's processor string where lscpu is missing)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def has_refine() -> bool:
    """Whether the installed jaxlab's ``sweep`` takes ``--refine`` (read from its parser)."""
    from jaxlab.cli import make_parser

    sub = next(a for a in make_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return "--refine" in sub.choices["sweep"]._option_string_actions


def sweep(args, out: Path) -> float:
    """Run the sweep into ``out``; its wall time in seconds (compiling included)."""
    cmd = [sys.executable, "-m", "jaxlab", "sweep", "--config", str(HERE / "fractal.toml")]
    cmd += ["--out", str(out), "--no-figures", "--quiet", "--max-steps", str(args.max_steps)]
    for name, (lo, hi) in (("lr0", args.lr0), ("lr1", args.lr1)):
        lo, hi = base_range(lo, hi, args.res, args.refine)
        cmd += ["--set", f"{name}={lo!r}:{hi!r}:{args.res}:log"]
    cmd += ["--set", f"network={args.network}"]
    if args.refine:
        cmd += ["--refine", str(args.res << args.refine)]  # jaxlab's N: finest cells per axis
    print("$", " ".join(cmd[1:]), flush=True)
    t0 = time.perf_counter()
    p = subprocess.run(cmd)
    if p.returncode:  # jaxlab said why in one line on stderr
        raise SystemExit(p.returncode)
    return time.perf_counter() - t0


def base_range(lo: float, hi: float, res: int, k: int) -> tuple[float, float]:
    """First and last centre of a ``res``-cell log axis whose ``k``-times refined pixels are the
    uniform ``res * 2**k`` grid's over ``lo .. hi`` (its first and last pixel centred on ``lo``
    and ``hi``): pixel step ``H`` in log, base step ``2**k H``, first base centre
    ``(2**k - 1) / 2`` pixels in. ``k = 0``: ``lo, hi``."""
    if not k:
        return lo, hi
    f = res << k
    H = (np.log(hi) - np.log(lo)) / (f - 1)
    first = np.log(lo) + (2**k - 1) / 2 * H
    return float(np.exp(first)), float(np.exp(first + (res - 1) * 2**k * H))


def refine_estimate(success: np.ndarray, base: int) -> tuple[int, np.ndarray, np.ndarray]:
    """What a quadtree refinement of this map would have cost and seen: ``(trainings, per level,
    map)``, for a
    ``base`` x ``base`` grid refined down to ``success``'s pixels (a power-of-two multiple),
    splitting each cell whose class differs from an edge neighbour's (as jaxlab's ``--refine``
    does for one restart a cell). A cell's class is read at the pixel nearest its centre: an
    estimate from the uniform map, not a refined run; ``map`` is the refined map at the finest
    pixels (each leaf filled with its class: islands no split reached are missing)."""
    n = success.shape[0]
    levels = int(round(np.log2(n / base)))
    if success.shape != (n, n) or base * 2**levels != n:
        raise ValueError(f"base {base} must divide {success.shape} by a power of two")
    exists = np.ones((base, base), bool)
    seen = np.zeros((base, base), bool)  # the class of the leaf covering each level-k cell
    counts = []
    for k in range(levels + 1):
        step = n // (base * 2**k)
        cls = success[step // 2 :: step, step // 2 :: step]  # every level-k cell, evaluated or not
        seen = np.where(exists, cls, seen)
        counts.append(int(exists.sum()))
        if k == levels:
            break
        split = exists & boxcount.boundary(seen)
        exists = np.repeat(np.repeat(split, 2, 0), 2, 1)
        seen = np.repeat(np.repeat(seen, 2, 0), 2, 1)
    return int(sum(counts)), np.asarray(counts), seen


def draw(raster: boxcount.Raster, est: boxcount.BoxCount, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 5), width_ratios=[1.1, 1])
    ax.pcolormesh(
        raster.x_edges, raster.y_edges, raster.success, cmap=ListedColormap(["#c0392b", "#2e86c1"]),
        rasterized=True,
    )  # fmt: skip
    ax.set_xscale("log" if raster.log[0] else "linear")
    ax.set_yscale("log" if raster.log[1] else "linear")
    ax.set_xlabel("input layer learning rate lr0")
    ax.set_ylabel("output layer learning rate lr1")
    ax.set_title(title, fontsize=9)
    sizes, counts = est.sizes, est.counts
    use = (sizes >= est.lo) & (sizes <= est.hi)
    bx.loglog(sizes, counts, "o", color="0.6", label="boxes holding boundary pixels")
    bx.loglog(sizes[use], counts[use], "o", color="k", label=f"fitted ({est.lo}..{est.hi} px)")
    s = sizes[use].astype(float)
    bx.loglog(s, np.exp(est.intercept) * s**-est.dimension, "-", color="#c0392b",
              label=f"D = {est.dimension:.3f} ± {est.stderr:.3f}, r² = {est.r2:.4f}")  # fmt: skip
    bx.set_xlabel("box size (pixels)")
    bx.set_ylabel("boxes")
    bx.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--res", type=int, default=256, help="pixels a side of the (base) grid")
    ap.add_argument("--lr0", type=float, nargs=2, default=(1e4, 1e6), metavar=("LO", "HI"))
    ap.add_argument("--lr1", type=float, nargs=2, default=(35.0, 150.0), metavar=("LO", "HI"))
    ap.add_argument("--max-steps", type=int, default=500)
    ap.add_argument("--network", default="restart", choices=("restart", "paper"))
    ap.add_argument(
        "--refine", type=int, default=0, metavar="K",
        help="refine the res x res grid K times (jaxlab sweep --refine res * 2**K)",
    )  # fmt: skip
    ap.add_argument("--out", type=Path, default=Path("runs/fractal"))
    ap.add_argument(
        "--compare", type=Path, metavar="RUN",
        help="a uniform run of the same pixels: the share of pixels in the same class",
    )  # fmt: skip
    ap.add_argument("--from", dest="source", type=Path, help="analyse this finished run only")
    ap.add_argument("--figure", type=Path, default=FIGURE)
    ap.add_argument("--min-size", type=int, default=2, help="smallest box fitted (pixels)")
    ap.add_argument("--max-size", type=int, default=None, help="largest (default: side / 8)")
    args = ap.parse_args(argv)
    if args.refine and not has_refine():
        print(
            "map.py: --refine needs jaxlab sweep --refine (quadtree refinement, branch "
            "i13-refine), which this jaxlab lacks; run without --refine for a uniform map",
            file=sys.stderr,
        )
        return 2
    wall = None
    for given, what in ((args.source, "--from"), (args.compare, "--compare")):
        if given is not None and not (given / "cells.csv").is_file():
            print(
                f"map.py: error: {what}: no finished run at {given} (no cells.csv)", file=sys.stderr
            )
            return 2
    run = args.source or args.out
    if args.source is None:
        wall = sweep(args, run)
    cells = pd.read_csv(run / "cells.csv")
    steps = tomllib.loads((run / "config.toml").read_text()).get("max_steps", args.max_steps)
    meta = json.loads((run / "meta.json").read_text()) if (run / "meta.json").exists() else {}
    raster = boxcount.rasterise(cells, "lr0", "lr1")
    est = boxcount.dimension(raster.success, args.min_size, args.max_size)
    trainings = int(cells["n_runs"].sum())
    pixels = raster.success.size
    ny, nx = raster.success.shape
    print(f"map: {nx} x {ny} pixels, {raster.success.mean():.3f} trainable")
    print(
        f"box counting: D = {est.dimension:.4f} (standard error {est.stderr:.4f}, r^2 "
        f"{est.r2:.5f}, intercept {est.intercept:.3f}) over boxes of {est.lo}..{est.hi} px"
    )
    local = -np.diff(np.log(np.maximum(est.counts, 1))) / np.diff(np.log(est.sizes))
    print("  size:   " + " ".join(f"{s:>7d}" for s in est.sizes))
    print("  boxes:  " + " ".join(f"{c:>7d}" for c in est.counts))
    print("  slope:  " + "        " + " ".join(f"{v:7.3f}" for v in local))
    cost = f"cost: {trainings:,} trainings of {steps} steps"
    if wall is not None:
        cost += f", {wall:.1f} s wall (compiling included)"
    dev = meta.get("devices", {})
    where = f"{dev.get('global', '?')} {dev.get('platform', '?')} devices" if dev else "?"
    print(cost + f", on {where}, {cpu_model()}")
    if "leaf" not in cells.columns and nx == ny and nx >= 64 and (nx & (nx - 1)) == 0:
        for base in (nx // 8, nx // 16):
            total, per, seen = refine_estimate(raster.success, base)
            d = boxcount.dimension(seen, args.min_size, args.max_size)
            print(
                f"refinement estimate: a {base} x {base} grid refined {len(per) - 1} times would "
                f"train {total:,} cells ({' + '.join(f'{c:,}' for c in per)}), "
                f"{total / pixels:.3f} of the uniform {pixels:,}; its map differs in "
                f"{int((seen != raster.success).sum()):,} pixels, D = {d.dimension:.4f} "
                f"(se {d.stderr:.4f})"
            )
    if "leaf" in cells.columns:
        print(
            f"refined: {trainings:,} trainings against {pixels:,} for the uniform {nx} x {ny} "
            f"grid ({trainings / pixels:.3f} of it, {pixels / trainings:.1f}x fewer)"
        )
    if args.compare is not None:
        other = boxcount.rasterise(pd.read_csv(args.compare / "cells.csv"), "lr0", "lr1")
        same_pixels = other.success.shape == raster.success.shape and all(
            np.allclose(getattr(other, e), getattr(raster, e), rtol=1e-6)
            for e in ("x_edges", "y_edges")
        )
        if not same_pixels:
            raise ConfigError(
                "compare",
                f"{args.compare} has {other.success.shape} pixels, not {raster.success.shape}",
            )
        o = boxcount.dimension(other.success, args.min_size, args.max_size)
        same = float((other.success == raster.success).mean())
        print(
            f"against {args.compare}: {same:.4f} of the pixels in the same class; its D = "
            f"{o.dimension:.4f} (se {o.stderr:.4f}), {int(other.success.size):,} trainings"
        )
    title = (
        f"fractal: tanh, full batch, {steps} steps, {nx} x {ny} px "
        f"({'refined' if 'leaf' in cells.columns else 'uniform'}); blue trainable, red diverged"
    )
    draw(raster, est, args.figure, title)
    print(f"figure: {args.figure}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as e:  # a map without a boundary, too few box sizes, a bad table
        print(f"map.py: error: {e}", file=sys.stderr)
        sys.exit(2)
