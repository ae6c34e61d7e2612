"""Figures of a finished sweep, drawn from its tables alone (``jaxlab plot RUN_DIR``).

* :func:`success_heatmap`: success rate over two axes (a line with its 95% Wilson band for one);
* :func:`steps_heatmap`: median steps to stop, same layout;
* :func:`boundary_atlas`: decision boundaries of a few successful and failed restarts (networks);
* :func:`basin_map`: which minimiser each start point reaches, per learning rate (objectives).

Axes beyond the two shown are pooled: counts are added and the rate and its interval recomputed.
Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
``pyplot``: no backend is switched and no figure is registered globally, so nothing leaks into a
notebook or a long-running process. PNGs are written atomically (:func:`jaxlab.rundir.atomic_write`).
"""

from __future__ import annotations

import io
import math
import textwrap
import warnings
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from jaxlab import aggregate as A
from jaxlab import rundir
from jaxlab.descent import Status
from jaxlab.errors import ConfigError

__all__ = [
    "basin_map",
    "boundary_atlas",
    "draw_all",
    "main_plot",
    "steps_heatmap",
    "success_heatmap",
]

ANNOTATE_INTERVAL_MAX = 12  # cells per side up to which "[lo, hi]" is written under the rate
ANNOTATE_MAX = 30  # cells per side up to which the value is written at all
MAX_TICKS = 12
_LABELS = {
    "lr": "learning rate lr",
    "scale": "init scale (sd of the weights)",
    "momentum": "momentum",
    "x1": "start x1",
    "x2": "start x2",
}
_NAN_GREY = "#c8c8c8"


# --- saving and describing ------------------------------------------------------------------
def _new_figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    fig.clear()  # drop references early; the figure was never registered with pyplot
    rundir.atomic_write(path, buf.getvalue())
    return str(path)


def _fmt(v) -> str:
    if isinstance(v, tuple):
        return "-".join(map(str, v))
    if isinstance(v, float | np.floating):
        return f"{float(v):.3g}"
    return str(v)


def _values_text(cfg, name: str) -> str:
    return ", ".join(_fmt(v) for v in cfg.setting(name).values)


def _describe(cfg) -> str:
    """One line saying what every cell ran: the problem, restarts, success rule, budget."""
    opt = _values_text(cfg, "optimizer")
    steps = _values_text(cfg, "max_steps")
    if cfg.problem == "network":
        what = f"{_values_text(cfg, 'widths')} network on dataset {_values_text(cfg, 'dataset')}"
        rule = f"final loss < {cfg.threshold:g}"
        fixed = [n for n in ("lr", "scale") if len(cfg.setting(n).values) == 1]
    else:
        what = f"objective {_values_text(cfg, 'objective')}"
        rule = f"f - f_min < {cfg.threshold:g}"
        fixed = [n for n in ("lr",) if len(cfg.setting(n).values) == 1]
    if any(o == "momentum" for o in cfg.setting("optimizer").values):
        fixed += [n for n in ("momentum",) if len(cfg.setting(n).values) == 1]
    extra = "".join(f", {n} {_values_text(cfg, n)}" for n in fixed)
    return (
        f"{what}, optimizer {opt}{extra}; {cfg.n_runs:,} restarts per cell, "
        f"max_steps {steps}; success = {rule} and not diverged"
    )


def _values_short(values) -> str:
    if len(values) <= 6:
        return ", ".join(_fmt(v) for v in values)
    return f"{len(values)} values, {_fmt(values[0])} .. {_fmt(values[-1])}"


def _wrap(text: str, width_in: float, fontsize: float = 8) -> str:
    """Wrap each line of ``text`` to fit a figure ``width_in`` inches wide."""
    chars = max(40, int(width_in * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def _axis_label(axis) -> str:
    label = _LABELS.get(axis.name, axis.name)
    return label + {"log": " (log-spaced)", "lin": " (linear)"}.get(axis.spacing, "")


# --- the grid of cells -----------------------------------------------------------------------
def _pick_xy(cfg, x, y) -> tuple[str | None, str | None]:
    """The axes to show: the given ones, else traced axes first, in grid order."""
    names = [a.name for a in cfg.axes]
    for param, n in (("x", x), ("y", y)):
        if n is not None and n not in names:
            raise ConfigError(
                param, f"{n!r} is not an axis of this sweep; axes: {', '.join(names) or 'none'}"
            )
    if x is not None and x == y:
        raise ConfigError("y", f"x and y must be different axes, both are {x!r}")
    order = [a.name for a in cfg.axes if a.traced] + [a.name for a in cfg.axes if not a.traced]
    if x is None:
        x = next((n for n in order if n != y), None)
    if y is None:
        y = next((n for n in order if n != x), None)
    return x, y


def _check_cells(res) -> None:
    n = len(np.asarray(res.cells.get("n_runs", [])))
    if n != res.config.n_cells:
        raise ConfigError(
            "cells", f"the table has {n} rows but the config's grid has {res.config.n_cells} cells"
        )


def _reduce(res, keep: list[str]) -> dict:
    """Counts summed over every axis not in ``keep``; arrays shaped like the kept axes."""
    cfg = res.config
    axes = cfg.axes
    shape = [len(a.values) for a in axes] or [1]
    pos = [[a.name for a in axes].index(k) for k in keep]
    rest = [i for i in range(len(shape)) if i not in pos]

    def arr(col, dtype=np.float64):
        a = np.asarray(res.cells[col], dtype).reshape(shape)
        return a.transpose(pos + rest).reshape([shape[i] for i in pos] + [-1])

    n = arr("n_runs").sum(axis=-1)
    k = arr("n_success").sum(axis=-1)
    rate, lo, hi = A.rate_ci(k, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: empty cells stay NaN
        steps = np.nanmedian(arr("median_steps"), axis=-1)
    pooled = [a for i, a in enumerate(axes) if i in rest]
    return {"n": n, "k": k, "rate": rate, "lo": lo, "hi": hi, "steps": steps, "pooled": pooled}


def _best(rate, lo) -> tuple | None:
    """Index of the highest rate (ties: highest lower bound); None if every cell is empty."""
    i = A.best_index(rate, lo)
    return None if i is None else np.unravel_index(i, rate.shape)


def _ticks(ax, which: str, axis) -> None:
    n = len(axis.values)
    step = max(1, math.ceil(n / MAX_TICKS))
    idx = np.arange(0, n, step)
    labels = [_fmt(axis.values[i]) for i in idx]
    if which == "x":
        ax.set_xticks(idx, labels, rotation=45 if n > 6 else 0, ha="right" if n > 6 else "center")
        ax.set_xlabel(_axis_label(axis))
    else:
        ax.set_yticks(idx, labels)
        ax.set_ylabel(_axis_label(axis))


def _text_colour(cmap, norm, v) -> str:
    if not np.isfinite(v):
        return "black"
    r, g, b, _ = cmap(norm(v))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _pooled_note(red: dict, cfg) -> str:
    if not red["pooled"]:
        return ""
    names = ", ".join(f"{a.name} ({_values_short(a.values)})" for a in red["pooled"])
    per = cfg.n_runs * math.prod(len(a.values) for a in red["pooled"])
    return f"\npooled over {names}: {per:,} restarts per cell shown"


def _draw(res, path, x, y, kind: str) -> str:
    cfg = res.config
    _check_cells(res)
    x, y = _pick_xy(cfg, x, y)
    keep = [n for n in (x, y) if n is not None]
    red = _reduce(res, keep)
    axes = {a.name: a for a in cfg.axes}
    max_steps = max(cfg.setting("max_steps").values)
    if kind == "success":
        title = "Success rate (95% Wilson interval)"
        Z, cmap, vmin, vmax, clabel = red["rate"], colormaps["viridis"], 0.0, 1.0, "success rate"
    else:
        title = f"Median steps to stop, all restarts ({A.steps_note(max_steps)})"
        Z, cmap, vmin, vmax = red["steps"], colormaps["YlGnBu"], 0.0, float(max_steps)
        clabel = f"median steps (max_steps {max_steps})"
    cmap = cmap.with_extremes(bad=_NAN_GREY)
    best = _best(red["rate"], red["lo"]) if kind == "success" else None
    sub = _describe(cfg) + _pooled_note(red, cfg)
    if len(keep) < 2:
        fig = _new_figure(8, 5)
        ax = fig.add_subplot()
        _line(ax, red, axes[x] if x else None, kind, vmax)
        ax.set_ylabel(clabel)
    else:
        nx, ny = Z.shape
        s = min(0.8, 12 / nx, 8 / ny)
        fig = _new_figure(max(7.0, 4 + s * nx), 3 + s * ny)
        ax = fig.add_subplot()
        mesh = ax.pcolormesh(
            np.arange(nx + 1) - 0.5,
            np.arange(ny + 1) - 0.5,
            np.ma.masked_invalid(Z.T),
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
        )
        fig.colorbar(mesh, ax=ax, label=clabel + " (grey: no runs)")
        _ticks(ax, "x", axes[x])
        _ticks(ax, "y", axes[y])
        if max(nx, ny) <= ANNOTATE_MAX:
            _annotate(ax, red, Z, cmap, mesh.norm, kind, small=max(nx, ny) <= ANNOTATE_INTERVAL_MAX)
        if best is not None:
            i, j = best
            ax.add_patch(Rectangle((i - 0.5, j - 0.5), 1, 1, fill=False, ec="red", lw=2.5))
            ax.plot([i], [j + 0.32], marker="*", color="red", ms=11, mec="white", ls="none")
        ax.set_xlim(-0.5, nx - 0.5)
        ax.set_ylim(-0.5, ny - 0.5)
    if best is not None:
        where = ", ".join(f"{n} {_fmt(axes[n].values[b])}" for n, b in zip(keep, best))
        r, lo, hi = (red[c][best] for c in ("rate", "lo", "hi"))
        mark = "red box" if len(keep) == 2 else "red star"
        sub += f"\nbest cell ({mark}): {where or 'the only cell'}: {r:.2f} [{lo:.2f}, {hi:.2f}]"
    ax.set_title(_wrap(sub, fig.get_figwidth()), fontsize=8, loc="left")
    fig.suptitle(f"{title}, sweep '{cfg.name}'", fontsize=12, fontweight="bold")
    return _save(fig, path)


def _annotate(ax, red, Z, cmap, norm, kind, small: bool) -> None:
    nx, ny = Z.shape
    fs = 9 if max(nx, ny) <= 8 else (7 if max(nx, ny) <= 16 else 5)
    for i in range(nx):
        for j in range(ny):
            v = Z[i, j]
            colour = _text_colour(cmap, norm, v)
            if not np.isfinite(v):
                ax.text(i, j, "no runs", ha="center", va="center", fontsize=fs - 1, color=colour)
                continue
            if kind == "success":
                ax.text(i, j, f"{v:.2f}", ha="center", va="center", fontsize=fs, color=colour)
                if small:
                    lo, hi = red["lo"][i, j], red["hi"][i, j]
                    ax.text(
                        i, j - 0.28, f"[{lo:.2f}, {hi:.2f}]",
                        ha="center", va="center", fontsize=fs - 2, color=colour,
                    )  # fmt: skip
            else:
                ax.text(i, j, f"{v:.0f}", ha="center", va="center", fontsize=fs, color=colour)


def _line(ax, red, axis, kind: str, max_steps: float) -> None:
    """One axis (or none): the value against the axis, the Wilson band for success rates."""
    if axis is None:
        xs, labels, numeric = np.array([0.0]), ["the only cell"], False
    else:
        vals = axis.values
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals)
        xs = np.asarray(vals, np.float64) if numeric else np.arange(len(vals), dtype=np.float64)
        labels = [_fmt(v) for v in vals]
    ys = red["rate"] if kind == "success" else red["steps"]
    ys = np.asarray(ys, np.float64).reshape(-1)
    if kind == "success":
        lo, hi = red["lo"].reshape(-1), red["hi"].reshape(-1)
        if numeric and len(xs) > 1:
            ax.fill_between(xs, lo, hi, color="C0", alpha=0.25, lw=0, label="95% Wilson interval")
        else:
            err = np.stack([ys - lo, hi - ys])
            ax.errorbar(xs, ys, yerr=np.nan_to_num(err), fmt="none", ecolor="C0", capsize=4)
        ax.set_ylim(-0.02, 1.02)
    else:
        ax.set_ylim(0, max_steps * 1.05)
    ax.plot(xs, ys, "o-", color="C0", label="success rate" if kind == "success" else "median")
    empty = ~np.isfinite(ys)
    if empty.any():
        base = np.zeros(int(empty.sum()))
        ax.plot(xs[empty], base, "x", color="grey", ms=9, ls="none", label="no runs")
    if kind == "success" and np.isfinite(ys).any():
        b = _best(ys, lo)[0]
        ax.plot(xs[b], ys[b], "*", color="red", mec="black", ms=16, ls="none", label="best cell")
    if axis is not None and numeric and axis.spacing == "log":
        ax.set_xscale("log")
    if not numeric or axis is None or len(xs) <= MAX_TICKS:
        ax.set_xticks(xs, labels)
        ax.minorticks_off()
    ax.set_xlabel(_axis_label(axis) if axis is not None else "(no swept axis)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)


def success_heatmap(res, path, x: str | None = None, y: str | None = None) -> str:
    """Success rate over axes ``x`` and ``y`` (default: the first two traced axes), each cell
    annotated with its rate and 95% Wilson interval, the best cell boxed. One axis: a line with
    the interval as a band. Other axes are pooled. Returns the path written."""
    return _draw(res, path, x, y, "success")


def steps_heatmap(res, path, x: str | None = None, y: str | None = None) -> str:
    """Median steps to stop (all restarts) over ``x`` and ``y``; other axes: the median of the
    pooled cells' medians. Returns the path written."""
    return _draw(res, path, x, y, "steps")


# --- decision boundaries ---------------------------------------------------------------------
def _cell_index(res, where) -> int:
    if isinstance(where, int | np.integer):
        if not 0 <= int(where) < res.config.n_cells:
            raise ConfigError("cells", f"cell {where} is outside [0, {res.config.n_cells})")
        return int(where)
    if isinstance(where, dict):
        axes = res.config.axes
        idx = []
        for a in axes:
            if a.name not in where:
                raise ConfigError("cells", f"a cell needs a value for every axis; missing {a.name}")
            v = where[a.name]
            if a.traced:
                vals = np.asarray(a.values, np.float64)
                if a.spacing == "log":  # nearest on the log scale the axis was laid out on
                    vals, v = np.log(vals), math.log(v)
                idx.append(int(np.argmin(np.abs(vals - v))))
            else:
                idx.append(list(map(_fmt, a.values)).index(_fmt(v)))
        return int(np.ravel_multi_index(idx, [len(a.values) for a in axes])) if axes else 0
    raise ConfigError("cells", f"expected cell indices or dicts of axis values, got {where!r}")


def _default_cells(res) -> list[int]:
    rate = np.asarray(res.cells["success_rate"], np.float64)
    lo = np.asarray(res.cells["ci_low"], np.float64)
    hi = np.asarray(res.cells["ci_high"], np.float64)
    b = _best(rate, lo)
    best = int(b[0]) if b is not None else 0
    cells = [best]
    axes = {a.name: a for a in res.config.axes}
    if "lr" in axes or "scale" in axes:
        lab = {a.name: (1.0 if a.name in ("lr", "scale") else a.values[0]) for a in axes.values()}
        near = _cell_index(res, lab)
        if near != best:
            return cells + [near]
    if np.isfinite(rate).any():
        r = np.where(np.isfinite(rate), rate, np.inf)
        worst = int(np.lexsort((np.nan_to_num(hi, nan=np.inf), r))[0])
        if worst != best:
            cells.append(worst)
    return cells


def _boundary_outputs(spec, res, params, xy):
    """Per replayed restart: final loss, status, and P(class 1) on the points ``xy``."""
    from jaxlab.network import predict

    return res.value, res.status, predict(params, xy.astype(res.value.dtype))


def _replay_many(plan, runs: list[int], xy: np.ndarray):
    """Several restarts recomputed at once (:func:`jaxlab.engine.replay_many`), with each
    final network's predicted probabilities on ``xy`` (m, 2). Same keys and settings as the
    sweep, so the same outcomes."""
    import jax.numpy as jnp

    from jaxlab.engine import replay_many

    done = replay_many(plan, runs, _boundary_outputs, (jnp.asarray(xy),))
    return {
        r: {
            "prob": np.asarray(prob, np.float64),
            "loss": float(value),
            "status": int(status),
            "hp": hp,
            "spec": spec,
        }
        for r, (spec, hp, (value, status, prob)) in done.items()
    }


def _choose_runs(res, cell: int, k: int) -> tuple[list[int], list[int], str]:
    """Up to ``k`` successful and ``k`` failed restarts of ``cell`` (global run indices)."""
    n_runs = res.config.n_runs
    base = cell * n_runs
    if res.runs:
        rc = np.asarray(res.runs["cell"])
        sel = np.flatnonzero(rc == cell)
        ok = np.asarray(res.runs["success"]).astype(bool)[sel]
        run_ids = np.asarray(res.runs["run"])[sel]
        return list(map(int, run_ids[ok][:k])), list(map(int, run_ids[~ok][:k])), "runs.csv"
    # No per-run records: replay the first few restarts and classify them here.
    first = list(range(base, base + min(n_runs, max(2 * k, 64))))  # enough to find both kinds
    return first, [], f"first {len(first)} restarts replayed"


def boundary_atlas(res, path, cells=None, k: int = 3) -> str:
    """Decision boundaries of up to ``k`` successful and ``k`` failed restarts for a few cells
    (default: the best cell and the one nearest the lab's lr = 1, scale = 1, else the worst).
    Each panel: the predicted probability on the lab's 101 x 101 grid over [-2, 2]^2 (blue 0,
    white 0.5, red 1), the 0.5 contour and the data points by class. Restarts are recomputed
    from their keys (the first 64 of each cell when no runs.csv). Network sweeps only."""
    from jaxlab.datasets import get_dataset
    from jaxlab.engine import make_plan
    from jaxlab.network import grid
    from jaxlab.problems import succeeded

    cfg = res.config
    if cfg.problem != "network":
        raise ConfigError("problem", "decision boundaries are drawn for network sweeps only")
    if not isinstance(k, int) or k < 1:
        raise ConfigError("k", f"expected an integer >= 1, got {k!r}")
    _check_cells(res)
    cells = [_cell_index(res, c) for c in cells] if cells is not None else _default_cells(res)
    plan = make_plan(cfg)
    picks = [_choose_runs(res, c, k) for c in cells]
    todo = sorted({r for s, f, _ in picks for r in s + f})
    xy = grid()
    done = _replay_many(plan, todo, xy)
    rows = []
    for (succ, fail, source), c in zip(picks, cells):
        if source != "runs.csv":  # classify the replayed restarts ourselves
            runs = succ
            good = [r for r in runs if succeeded(done[r]["status"], done[r]["loss"], cfg.threshold)]
            succ, fail = good[:k], [r for r in runs if r not in good][:k]
        rows.append((c, succ, fail, source))
    m = int(round(math.sqrt(len(xy))))
    fig = _new_figure(2.3 * 2 * k + 1.2, 2.5 * len(rows) + 1.3)
    axs = fig.subplots(len(rows), 2 * k, squeeze=False, sharex=True, sharey=True)
    cmap = colormaps["bwr"]
    im = None
    for row, (c, succ, fail, source) in enumerate(rows):
        for col in range(2 * k):
            ax = axs[row, col]
            ax.set_aspect("equal")
            group = succ if col < k else fail
            j = col if col < k else col - k
            if j >= len(group):
                what = "successful" if col < k else "failed"
                ax.text(
                    0, 0, f"no {what}\nrestart\n({source})", ha="center", va="center", fontsize=8
                )
                ax.set_xlim(-2, 2)
                ax.set_ylim(-2, 2)
                continue
            r = done[group[j]]
            prob = r["prob"].reshape(m, m)
            im = ax.imshow(
                prob, origin="lower", extent=(-2, 2, -2, 2), cmap=cmap, vmin=0, vmax=1,
                interpolation="nearest",
            )  # fmt: skip
            if np.nanmin(prob) < 0.5 < np.nanmax(prob):
                s = np.linspace(-2, 2, m)
                ax.contour(s, s, prob, levels=[0.5], colors="k", linewidths=0.8)
            data = get_dataset(r["spec"].dataset)
            for cls, mk, colour in ((1, "^", "red"), (0, "o", "blue")):
                pts = np.asarray(data.x)[np.asarray(data.y) == cls]
                ax.plot(pts[:, 0], pts[:, 1], mk, color=colour, mec="black", ms=7, ls="none")
            status = Status(int(r["status"])).name.lower().replace("_", " ")
            mark = "success" if col < k else "failure"
            ax.set_title(
                f"lr {r['hp']['lr']:.3g}, scale {r['hp']['scale']:.3g}\n"
                f"loss {r['loss']:.3g}, {status} ({mark})",
                fontsize=8,
                color="darkgreen" if col < k else "darkred",
            )
        rate = float(res.cells["success_rate"][c])
        at = np.unravel_index(c, [len(a.values) for a in cfg.axes]) if cfg.axes else ()
        where = ", ".join(f"{a.name} {_fmt(a.values[i])}" for a, i in zip(cfg.axes, at))
        axs[row, 0].set_ylabel(
            f"cell {c}: {where or 'the only cell'}\nrate {rate:.2f}\nx2", fontsize=8
        )
    for ax in axs[-1]:
        ax.set_xlabel("x1")
    if im is not None:
        fig.colorbar(im, ax=axs, label="predicted P(class 1)", shrink=0.8)
    handles = [
        Line2D([], [], marker="^", color="red", mec="black", ls="none", label="class 1"),
        Line2D([], [], marker="o", color="blue", mec="black", ls="none", label="class 0"),
        Line2D([], [], color="black", lw=0.8, label="P = 0.5"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)
    fig.suptitle(
        f"Decision boundaries: {k} successful (left) and {k} failed (right) restarts per row\n"
        + _describe(cfg),
        fontsize=9,
    )
    return _save(fig, path)


# --- basins of attraction --------------------------------------------------------------------
def _edges(values) -> np.ndarray:
    v = np.asarray(values, np.float64)
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def basin_map(res, path, max_panels: int = 6) -> str:
    """For each learning rate (up to ``max_panels``, chosen evenly; other axes likewise), colour
    each start point ``(x1, x2)`` by the known minimiser its final point lies nearest to (within
    1% of the plotting box), grey if none, black if diverged; contours of ``f`` underneath.
    Needs an objective sweep with per-run records (``keep_runs``) and ``x1``, ``x2`` as axes."""
    from jaxlab.objectives import get_objective

    cfg = res.config
    names = [a.name for a in cfg.axes]
    if cfg.problem != "objective":
        raise ConfigError("problem", "basin maps are drawn for objective sweeps only")
    if not res.runs:
        raise ConfigError("keep_runs", "basin maps need per-run records; rerun with keep_runs")
    if "x1" not in names or "x2" not in names:
        raise ConfigError(
            "x1", "basin maps need x1 and x2 as axes (random start points are not stored)"
        )
    if len(cfg.setting("objective").values) != 1:
        raise ConfigError("objective", "basin maps are drawn for one objective at a time")
    obj = get_objective(cfg.setting("objective").values[0])
    mins = np.asarray(obj.all_minimizers, np.float64)
    (a1, b1), (a2, b2) = obj.box
    tol = 0.01 * max(b1 - a1, b2 - a2)
    runs = res.runs
    fin = np.stack([np.asarray(runs["x1_final"], float), np.asarray(runs["x2_final"], float)], 1)
    d = np.linalg.norm(fin[:, None, :] - mins[None], axis=-1)
    near = np.argmin(d, axis=1)
    cat = np.where(np.min(d, axis=1) <= tol, near, len(mins))  # len(mins): "none"
    cat = np.where(np.asarray(runs["status"]) == Status.DIVERGED, len(mins) + 1, cat)
    shape = [len(a.values) for a in cfg.axes]
    n_cells = math.prod(shape)
    # One category per cell: the most common among its restarts.
    counts = np.zeros((n_cells, len(mins) + 2), np.int64)
    np.add.at(counts, (np.asarray(runs["cell"], np.int64), cat), 1)
    cell_cat = np.where(counts.sum(1) > 0, counts.argmax(1), -1).reshape(shape)
    ix1, ix2 = names.index("x1"), names.index("x2")
    others = [i for i in range(len(shape)) if i not in (ix1, ix2)]
    combos = list(np.ndindex(*[shape[i] for i in others])) or [()]
    if len(combos) > max_panels:
        picks = np.unique(np.linspace(0, len(combos) - 1, max_panels).round().astype(int))
        combos = [combos[int(i)] for i in picks]
    colours = [colormaps["tab10"](i % 10) for i in range(len(mins))] + [_NAN_GREY, "black"]
    cmap = ListedColormap(colours).with_extremes(bad="white")
    norm = BoundaryNorm(np.arange(len(colours) + 1) - 0.5, len(colours))
    x1v, x2v = cfg.setting("x1").values, cfg.setting("x2").values
    s1 = np.linspace(min(x1v[0], a1), max(x1v[-1], b1), 200)
    s2 = np.linspace(min(x2v[0], a2), max(x2v[-1], b2), 200)
    g1, g2 = np.meshgrid(s1, s2)
    f = np.asarray(obj.value(np.stack([g1, g2], -1)), np.float64) - obj.minimum
    logf = np.log10(np.maximum(f, 1e-6))
    ncol = min(3, len(combos))
    nrow = math.ceil(len(combos) / ncol)
    fig = _new_figure(4.2 * ncol + 1.5, 4.0 * nrow + 2.0)
    axs = fig.subplots(nrow, ncol, squeeze=False)
    for p, combo in enumerate(combos):
        ax = axs.flat[p]
        sl = [slice(None)] * len(shape)
        for i, v in zip(others, combo):
            sl[i] = v
        Z = cell_cat[tuple(sl)]
        if ix1 > ix2:
            Z = Z.T  # now Z[i1, i2]
        ax.pcolormesh(
            _edges(x1v), _edges(x2v), np.ma.masked_less(Z.T, 0), cmap=cmap, norm=norm, alpha=0.85
        )
        ax.contour(g1, g2, logf, levels=12, colors="k", linewidths=0.4, alpha=0.5)
        for j, (m1, m2) in enumerate(mins):
            ax.plot(m1, m2, "*", color=colours[j], mec="black", ms=14, ls="none")
        ax.set_xlim(s1[0], s1[-1])
        ax.set_ylim(s2[0], s2[-1])
        ax.set_aspect("equal")
        ax.set_xlabel("start x1")
        ax.set_ylabel("start x2")
        valid = Z[Z >= 0]
        reached = np.mean(valid < len(mins)) if valid.size else math.nan
        label = ", ".join(
            f"{cfg.axes[i].name} {_fmt(cfg.axes[i].values[v])}" for i, v in zip(others, combo)
        )
        ax.set_title(
            f"{label or 'all runs'}\n{reached:.0%} of starts reach a minimiser", fontsize=9
        )
    for ax in list(axs.flat)[len(combos) :]:
        ax.set_visible(False)
    n_global = len(obj.minimizers)
    handles = [
        Patch(
            color=colours[j],
            label=f"({m[0]:.2f}, {m[1]:.2f}) {'global' if j < n_global else 'local'}",
        )
        for j, m in enumerate(mins)
    ] + [
        Patch(color=_NAN_GREY, label=f"no minimiser within {tol:g}"),
        Patch(color="black", label="diverged"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=8)
    fig.suptitle(
        f"Basins of attraction of {obj.name}: colour = minimiser the run from (x1, x2) ends at "
        f"(stars; contours of log10(f - f_min))\n" + _describe(cfg),
        fontsize=9,
    )
    return _save(fig, path)


# --- everything ------------------------------------------------------------------------------
def _basins_apply(res) -> bool:
    cfg = res.config
    names = {a.name for a in cfg.axes}
    return (
        cfg.problem == "objective"
        and bool(res.runs)
        and {"x1", "x2"} <= names
        and len(cfg.setting("objective").values) == 1
    )


def draw_all(res) -> list[str]:
    """Draw every figure that applies into ``res.run_dir``; return the file names written."""
    if res.run_dir is None:
        raise ConfigError("run_dir", "this sweep has no run directory to draw into")
    d = Path(res.run_dir)
    names = []
    success_heatmap(res, d / "success_rate.png")
    names.append("success_rate.png")
    steps_heatmap(res, d / "steps.png")
    names.append("steps.png")
    if res.config.problem == "network":
        boundary_atlas(res, d / "boundaries.png")
        names.append("boundaries.png")
    if _basins_apply(res):
        basin_map(res, d / "basins.png")
        names.append("basins.png")
    return names


def main_plot(run_dir) -> int:
    """``jaxlab plot RUN_DIR``: redraw a finished run's figures from its files (no recompute)."""
    from jaxlab.sweep import load_run

    res = load_run(run_dir)
    for name in draw_all(res):
        print(Path(run_dir) / name)
    return 0
