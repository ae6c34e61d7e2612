"""Figures of a finished sweep, drawn from its files alone (``jaxlab plot RUN_DIR``).

* :func:`success_heatmap`: success rate over two axes (a line with its 95% Wilson band for one);
* :func:`steps_heatmap`: median steps to stop, same layout;
* :func:`draw_boundaries`: decision boundaries of the restarts stored at sweep time
  (:mod:`jaxlab.boundaries`); :func:`boundary_atlas` replays other cells on request;
* :func:`basin_map`: which minimiser each start point reaches, per learning rate (objectives);
* :func:`format_rate`: how rates and their bounds are written.

Every axis not mapped is a facet: one panel (or line) per value, each with its own best cell
(:mod:`jaxlab.facets`); axes are pooled only when asked (``facet=``), and the figure says so.
Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
``pyplot``: no backend is switched and no figure is registered globally, so nothing leaks into a
notebook or a long-running process. PNGs are written atomically (:func:`jaxlab.rundir.atomic_write`).
Nothing here compiles or trains, except :func:`boundary_atlas` for cells that were not stored.
"""

from __future__ import annotations

import io
import math
import sys
import textwrap
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from jaxlab import aggregate as A
from jaxlab import boundaries, rundir
from jaxlab.descent import Status
from jaxlab.errors import ConfigError
from jaxlab.facets import TooManyPanels, check_cells, choose, facet_tables

__all__ = [
    "basin_map",
    "boundary_atlas",
    "draw_all",
    "draw_boundaries",
    "format_rate",
    "main_plot",
    "steps_heatmap",
    "success_heatmap",
]

INTERVAL_MAX = 20  # cells per side up to which "[lo, hi]" is written under the rate
ANNOTATE_MAX = 30  # cells per side up to which the value is written at all
ANNOTATE_CELLS_MAX = 900  # cells in a whole figure (all panels) up to which values are written
MIN_FONT = 5.0  # points: smaller type is not legible at the figures' 110 dpi
LINES_MAX = 8  # facets drawn as lines in one panel; more: one panel each
MAX_WIDTH_IN = 30.0  # widest figure the panel layout aims for
MAX_TICKS = 12
_LABELS = {
    "lr": "learning rate lr",
    "scale": "init scale (sd of the weights)",
    "momentum": "momentum",
    "x1": "start x1",
    "x2": "start x2",
}
_NAN_GREY = "#c8c8c8"


# --- numbers -------------------------------------------------------------------------------
def format_rate(v) -> str:
    """A rate or bound in [0, 1] written so that it never reads as 0 or 1 unless it is one:
    ``0`` and ``1`` exactly; otherwise two significant digits of its distance to the nearer end,
    trailing zeros dropped, at least two decimals (``0.36``, ``0.014``, ``0.0038``, ``0.9962``,
    ``0.9995``); within 1e-4 of an end in scientific notation (``3.8e-06``, ``1 - 3.8e-06``).
    Within 1e-12 of an end counts as the end: the float rounding of a Wilson bound at k = 0 or
    k = n (a real bound is above 1e-11 up to 1e11 restarts a cell). NaN: ``n/a``."""
    v = float(v)
    if math.isnan(v):
        return "n/a"
    if not 0 <= v <= 1:
        return f"{v:.3g}"
    m = min(v, 1 - v)
    if m < 1e-12:
        return "0" if v < 0.5 else "1"
    if m < 1e-4:
        return f"{v:.2g}" if v < 0.5 else f"1 - {m:.2g}"
    text = f"{v:.{max(2, 1 - math.floor(math.log10(m)))}f}"
    whole, frac = text.split(".")
    return f"{whole}.{frac[:2]}{frac[2:].rstrip('0')}"


def _rate_ci_text(r, lo, hi) -> str:
    return f"{format_rate(r)} [{format_rate(lo)}, {format_rate(hi)}]"


# --- saving and describing ------------------------------------------------------------------
def _new_figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path) -> str:
    buf = io.BytesIO()
    engine = fig.get_layout_engine()
    if engine is not None:  # lay out once, then draw once (savefig would draw twice)
        engine.execute(fig)
        fig.set_layout_engine(None)
    fig.savefig(buf, format="png")
    fig.clear()  # drop references early; the figure was never registered with pyplot
    rundir.atomic_write(path, buf.getvalue())
    return str(path)


def say(message: str) -> None:
    sys.stderr.write(f"jaxlab: {message}\n")


def _fmt(v) -> str:
    if isinstance(v, tuple):
        return "-".join(map(str, v))
    if isinstance(v, float | np.floating):
        return f"{float(v):.3g}"
    return str(v)


def _values_text(cfg, name: str) -> str:
    return ", ".join(_fmt(v) for v in cfg.setting(name).values)


def _problem(cfg) -> str:
    """What was swept, in the problem's words (``network 2-2-1 on dataset lab``)."""
    p = cfg.problem_obj
    return p.describe(cfg) if p.describe is not None else f"problem {cfg.problem_label}"


def _describe(cfg) -> str:
    """One line saying what every cell ran: the problem, restarts, success rule, budget."""
    p = cfg.problem_obj
    opt = _values_text(cfg, "optimizer")
    steps = _values_text(cfg, "max_steps")
    if p.success is not None:
        rule = "the problem's own rule"
    elif callable(p.minimum) or p.minimum != 0:
        rule = f"loss - its minimum < {cfg.threshold:g}"
    else:
        rule = f"final loss < {cfg.threshold:g}"
    momentum = any(o == "momentum" for o in cfg.setting("optimizer").values)
    fixed = [
        a.name
        for a in cfg.settings
        if a.traced
        and len(a.values) == 1
        and not (isinstance(a.values[0], float) and math.isnan(a.values[0]))
        and (a.name != "momentum" or momentum)
    ]
    extra = "".join(f", {n} {_values_text(cfg, n)}" for n in fixed)
    return (
        f"{_problem(cfg)}, optimizer {opt}{extra}; {cfg.n_runs:,} restarts per cell, "
        f"max_steps {steps}; success = {rule} and not diverged"
    )


def _values_short(values) -> str:
    if len(values) <= 6:
        return ", ".join(_fmt(v) for v in values)
    return f"{len(values)} values, {_fmt(values[0])} .. {_fmt(values[-1])}"


def _wrap(text: str, width_in: float, fontsize: float = 8, char_em: float = 0.55) -> str:
    """Wrap each line of ``text`` to fit a figure ``width_in`` inches wide (a character is
    about ``char_em`` of the type size wide: 0.55 regular, 0.65 bold)."""
    chars = max(40, int(width_in * 72 / (char_em * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def _axis_label(axis) -> str:
    label = _LABELS.get(axis.name, axis.name)
    return label + {"log": " (log-spaced)", "lin": " (linear)"}.get(axis.spacing, "")


# --- success and steps maps ------------------------------------------------------------------
def _ticks(ax, which: str, axis, label: bool = True) -> None:
    n = len(axis.values)
    step = max(1, math.ceil(n / MAX_TICKS))
    idx = np.arange(0, n, step)
    labels = [_fmt(axis.values[i]) for i in idx]
    if which == "x":
        ax.set_xticks(idx, labels, rotation=45 if n > 6 else 0, ha="right" if n > 6 else "center")
        if label:
            ax.set_xlabel(_axis_label(axis))
    else:
        ax.set_yticks(idx, labels)
        if label:
            ax.set_ylabel(_axis_label(axis))


def _text_colour(cmap, norm, v) -> str:
    if not np.isfinite(v):
        return "black"
    r, g, b, _ = cmap(norm(v))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _where_text(panel) -> str:
    return ", ".join(f"{n} {_fmt(v)}" for n, v in panel.where)


def _best_text(f, panel, mark: str = "red box") -> str:
    if panel.best is None:
        return "no runs"
    mapped = [a for a in (f.x, f.y) if a is not None]
    where = ", ".join(f"{a.name} {_fmt(a.values[i])}" for a, i in zip(mapped, panel.best))
    r, lo, hi = (getattr(panel, c)[panel.best] for c in ("rate", "lo", "hi"))
    return f"best ({mark}): {where or 'the only cell'}: {_rate_ci_text(r, lo, hi)}"


def _facet_note(f, cfg) -> str:
    note = ""
    if f.facet:
        what = "panel" if f.y is not None or len(f.panels) > LINES_MAX else "line"
        names = " x ".join(a.name for a in f.facet)
        note += f"\none {what} per {names} (nothing pooled), each with its own best cell"
    if f.pooled:
        names = ", ".join(f"{a.name} ({_values_short(a.values)})" for a in f.pooled)
        per = cfg.n_runs * math.prod(len(a.values) for a in f.pooled)
        note += f"\npooled over {names}, as asked: {per:,} restarts per cell shown"
    return note


def _columns(n: int, pw: float, ph: float) -> int:
    """Panels per row: the layout closest to 4:3 that stays within MAX_WIDTH_IN."""
    fits = [c for c in range(1, n + 1) if c * pw <= MAX_WIDTH_IN] or [1]
    return min(fits, key=lambda c: abs(math.log(c * pw / (math.ceil(n / c) * ph) / (4 / 3))))


def _draw(res, path, x, y, facet, kind: str) -> str:
    cfg = res.config
    f = facet_tables(res, x, y, facet)
    max_steps = max(cfg.setting("max_steps").values)
    if kind == "success":
        title = "Success rate (95% Wilson interval)"
        cmap, vmax, clabel = colormaps["viridis"], 1.0, "success rate"
    else:
        title = f"Median steps to stop, all restarts ({A.steps_note(max_steps)})"
        cmap, vmax = colormaps["YlGnBu"], float(max_steps)
        clabel = f"median steps (max_steps {max_steps})"
    cmap = cmap.with_extremes(bad=_NAN_GREY)
    note = _describe(cfg) + _facet_note(f, cfg)
    if f.y is None:
        fig = _lines(f, kind, vmax, clabel, note)
    else:
        fig = _maps(f, kind, cmap, vmax, clabel, note)
    head = _wrap(f"{title}: {_problem(cfg)}, sweep '{cfg.name}'", fig.get_figwidth(), 12, 0.6)
    fig.suptitle(head, fontsize=12, fontweight="bold")
    return _save(fig, path)


def _body(w: float, h: float, note: str):
    """A figure ``w`` inches wide, ``h`` for its panels plus the note's lines; returns the
    figure and the sub-figure the panels go in (the note is its title)."""
    text = _wrap(note, w)
    fig = _new_figure(w, h + 0.6 + 0.16 * (text.count("\n") + 1))
    body = fig.subfigures(1, 1)
    body.suptitle(text, fontsize=8, x=0.01, ha="left")
    return fig, body


def _maps(f, kind, cmap, vmax, clabel, note) -> Figure:
    nx, ny = len(f.x.values), len(f.y.values)
    big, n = max(nx, ny), len(f.panels)
    write = big <= ANNOTATE_MAX and n * nx * ny <= ANNOTATE_CELLS_MAX
    s = min(0.8, 12 / nx, 8 / ny)  # inches a cell
    if write and big <= INTERVAL_MAX:
        s = max(s, 0.6)  # room for the interval in legible type
    elif not write and n > 1:
        s = min(s, 5 / nx, 4 / ny)  # colours only: small panels
    pw, ph = s * nx + 1.7, s * ny + 1.5
    ncols = _columns(n, pw, ph)
    nrows = math.ceil(n / ncols)
    if not write:
        note += f"\n{n * nx * ny:,} cells: too many to write each value (they are in cells.csv)"
    fig, body = _body(max(7.0, ncols * pw + 1.4), nrows * ph, note)
    axs = body.subplots(nrows, ncols, squeeze=False)
    mesh = None
    for p, panel in enumerate(f.panels):
        ax = axs.flat[p]
        Z = panel.rate if kind == "success" else panel.steps
        mesh = ax.pcolormesh(
            np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5, np.ma.masked_invalid(Z.T),
            cmap=cmap, vmin=0.0, vmax=vmax,
        )  # fmt: skip
        _ticks(ax, "x", f.x, label=p + ncols >= n)
        _ticks(ax, "y", f.y, label=p % ncols == 0)
        if write:
            _annotate(ax, panel, Z, cmap, mesh.norm, kind, s * 72, intervals=big <= INTERVAL_MAX)
        lines = [_where_text(panel)] if panel.where else []
        if kind == "success":
            lines.append(_best_text(f, panel))
            if panel.best is not None:
                i, j = panel.best
                ax.add_patch(Rectangle((i - 0.5, j - 0.5), 1, 1, fill=False, ec="red", lw=2.5))
                ax.plot([i], [j + 0.32], marker="*", color="red", ms=11, mec="white", ls="none")
        ax.set_title("\n".join(lines), fontsize=8, loc="left")
        ax.set_xlim(-0.5, nx - 0.5)
        ax.set_ylim(-0.5, ny - 0.5)
    for ax in list(axs.flat)[n:]:
        ax.set_visible(False)
    body.colorbar(mesh, ax=list(axs.flat)[:n], label=clabel + " (grey: no runs)")
    return fig


def _fonts(cell_pt: float, texts: dict, largest: float) -> dict:
    """A type size (points) for each text: what fits a cell ``cell_pt`` wide, at most
    ``largest``, and at most what the 90th-percentile length gets (so a panel reads evenly);
    never below MIN_FONT (a rare long text may then overrun its cell a little)."""
    if not texts:
        return {}

    def fit(n):
        return 0.92 * cell_pt / (0.6 * max(n, 1))

    base = min(largest, fit(np.percentile([len(t) for t in texts.values()], 90)))
    return {ij: max(MIN_FONT, min(base, fit(len(t)))) for ij, t in texts.items()}


def _annotate(ax, panel, Z, cmap, norm, kind, cell_pt: float, intervals: bool) -> None:
    """Each cell's value, and under a rate its interval, in the largest type that fits (no
    text at all where even the typical one would be smaller than MIN_FONT)."""
    nx, ny = Z.shape
    ok = np.isfinite(Z)
    cells = [(int(i), int(j)) for i, j in zip(*np.nonzero(ok))]
    if kind == "success":
        text = {ij: format_rate(Z[ij]) for ij in cells}
        band = {ij: f"[{format_rate(panel.lo[ij])}, {format_rate(panel.hi[ij])}]" for ij in cells}
    else:
        text, band = {ij: f"{Z[ij]:.0f}" for ij in cells}, {}
    empty = [(i, j) for i in range(nx) for j in range(ny) if not ok[i, j]]
    if 0.92 * cell_pt / (0.6 * 4) < MIN_FONT:
        return  # not even "0.36" fits
    fs = _fonts(cell_pt, {**text, **dict.fromkeys(empty, "no runs")}, 9.0)
    fsb = _fonts(cell_pt, band, 7.0) if intervals else {}
    if band and 0.92 * cell_pt / (0.6 * 12) < MIN_FONT:  # a typical "[0.12, 0.34]"
        fsb = {}
    # Inside the cells: kept out of the layout, which would otherwise measure every one.
    kw = {"ha": "center", "va": "center", "in_layout": False}
    for ij in empty:
        ax.text(*ij, "no runs", fontsize=fs[ij] - 1, color="black", **kw)
    for (i, j), t in text.items():
        colour = _text_colour(cmap, norm, Z[i, j])
        ax.text(i, j, t, fontsize=fs[i, j], color=colour, **kw)
        if (i, j) in fsb:
            ax.text(i, j - 0.28, band[i, j], fontsize=fsb[i, j], color=colour, **kw)


def _lines(f, kind, vmax, clabel, note) -> Figure:
    """One mapped axis (or none): a line per facet value in one panel, or a panel each."""
    n = len(f.panels)
    groups = [list(range(n))] if n <= LINES_MAX else [[p] for p in range(n)]
    pw, ph = (8.0, 5.0) if len(groups) == 1 else (5.0, 3.8)
    ncols = _columns(len(groups), pw, ph)
    nrows = math.ceil(len(groups) / ncols)
    fig, body = _body(ncols * pw, nrows * ph, note)
    axs = body.subplots(nrows, ncols, squeeze=False)
    for g, members in enumerate(groups):
        ax = axs.flat[g]
        titles = []
        for c, p in enumerate(members):
            panel = f.panels[p]
            several = len(members) > 1
            label = _where_text(panel) if several else None
            colour = f"C{c % 10}"
            star = colour if several else "red"  # each line's best in its own colour
            _line(ax, f.x, panel, kind, vmax, colour, label, first=c == 0, star=star)
            if kind == "success":
                lead = f"{_where_text(panel)}: " if several else ""
                titles.append(lead + _best_text(f, panel, "star" if several else "red star"))
        if len(members) == 1 and f.panels[members[0]].where:
            titles.insert(0, _where_text(f.panels[members[0]]))
        ax.set_title("\n".join(titles), fontsize=8, loc="left")
        ax.set_ylabel(clabel)
        ax.legend(loc="best", fontsize=8)
    for ax in list(axs.flat)[len(groups) :]:
        ax.set_visible(False)
    return fig


def _line(ax, axis, panel, kind: str, max_steps: float, colour, label, first: bool, star) -> None:
    """The value against ``axis`` (None: the only cell), the Wilson band for success rates."""
    if axis is None:
        xs, labels, numeric = np.array([0.0]), ["the only cell"], False
    else:
        vals = axis.values
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals)
        xs = np.asarray(vals, np.float64) if numeric else np.arange(len(vals), dtype=np.float64)
        labels = [_fmt(v) for v in vals]
    ys = np.asarray(panel.rate if kind == "success" else panel.steps, np.float64).reshape(-1)
    if kind == "success":
        lo, hi = panel.lo.reshape(-1), panel.hi.reshape(-1)
        band = "95% Wilson interval" if first else None
        if numeric and len(xs) > 1:
            ax.fill_between(xs, lo, hi, color=colour, alpha=0.2, lw=0, label=band)
        else:
            err = np.stack([ys - lo, hi - ys])
            ax.errorbar(xs, ys, yerr=np.nan_to_num(err), fmt="none", ecolor=colour, capsize=4)
        ax.set_ylim(-0.02, 1.02)
    else:
        ax.set_ylim(0, max_steps * 1.05)
    default = "success rate" if kind == "success" else "median"
    ax.plot(xs, ys, "o-", color=colour, label=label or default)
    empty = ~np.isfinite(ys)
    if empty.any():
        base = np.zeros(int(empty.sum()))
        ax.plot(
            xs[empty], base, "x", color="grey", ms=9, ls="none", label="no runs" if first else None
        )
    if kind == "success" and panel.best is not None:
        b = panel.best[0]
        ax.plot(
            xs[b], ys[b], "*", color=star, mec="black", ms=16, ls="none",
            label="best cell" if first else None,
        )  # fmt: skip
    if axis is not None and numeric and axis.spacing == "log":
        ax.set_xscale("log")
    if not numeric or axis is None or len(xs) <= MAX_TICKS:
        ax.set_xticks(xs, labels)
        ax.minorticks_off()
    ax.set_xlabel(_axis_label(axis) if axis is not None else "(no swept axis)")
    ax.grid(alpha=0.3)


def success_heatmap(res, path, x: str | None = None, y: str | None = None, facet=None) -> str:
    """Success rate over axes ``x`` and ``y`` (default: traced axes first), each cell annotated
    with its rate and 95% Wilson interval, the best cell boxed. One axis: a line with the
    interval as a band. Every other axis is a facet, one panel (or line) per value, each with
    its own best cell; ``facet`` (names, or ``"a,b"``) picks the facet axes and pools the rest
    (``()``: pool all). Raises ConfigError for unknown axes or more than
    :data:`jaxlab.facets.MAX_PANELS` panels. Returns the path written."""
    return _draw(res, path, x, y, facet, "success")


def steps_heatmap(res, path, x: str | None = None, y: str | None = None, facet=None) -> str:
    """Median steps to stop (all restarts) over ``x`` and ``y``, faceted as
    :func:`success_heatmap`; pooled cells (when asked): the median of their medians."""
    return _draw(res, path, x, y, facet, "steps")


# --- decision boundaries ---------------------------------------------------------------------
def boundary_atlas(res, path, cells=None, k: int = 3) -> str:
    """Decision boundaries of up to ``k`` successful and ``k`` failed restarts for a few cells
    (indices or dicts of axis values; default: the best cell and the one nearest the lab's
    lr = 1, scale = 1, else the worst). Drawn from the run directory's ``boundaries.npz`` when
    it holds them; otherwise the restarts are replayed from their keys here
    (:func:`jaxlab.boundaries.compute`, which compiles). Network sweeps only."""
    cfg = res.config
    if not {"dataset", "widths"} <= set(cfg.relevant_settings()):
        raise ConfigError("problem", "decision boundaries are drawn for network sweeps only")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ConfigError("k", f"expected an integer >= 1, got {k!r}")
    check_cells(res)
    if cells is None:
        want = boundaries.default_cells(res)
    else:
        want = [boundaries.cell_index(res, c) for c in cells]
    stored = None
    if res.run_dir is not None:
        try:
            stored = boundaries.load(res.run_dir, cfg)
        except ConfigError:
            stored = None
    if stored is not None and stored.covers(want, k):
        data = stored.subset(want, k)
    else:
        data = boundaries.compute(res, want, k)
    return draw_boundaries(res, data, path)


def draw_boundaries(res, data, path) -> str:
    """Draw stored decision boundaries (a :class:`jaxlab.boundaries.Boundaries`): a row per
    cell, its ``k`` successful (left) and ``k`` failed (right) restarts, each panel the
    predicted probability on the lab's 101 x 101 grid over [-2, 2]^2 (blue 0, white 0.5, red 1),
    the 0.5 contour and the data points by class. Compiles and trains nothing."""
    from jaxlab.datasets import get_dataset

    cfg = res.config
    k = int(data.k)
    rows = []
    for c, source in zip(data.cells.tolist(), data.source.tolist()):
        mine = data.cell == c
        rows.append(
            (c, np.flatnonzero(mine & data.success), np.flatnonzero(mine & ~data.success), source)
        )
    side = data.prob.shape[-1]
    extent = tuple(float(e) for e in data.extent)
    fig = _new_figure(2.3 * 2 * k + 1.2, 2.5 * max(1, len(rows)) + 1.3)
    axs = fig.subplots(max(1, len(rows)), 2 * k, squeeze=False, sharex=True, sharey=True)
    cmap = colormaps["bwr"]
    im = None
    for row, (c, succ, fail, source) in enumerate(rows):
        for col in range(2 * k):
            ax = axs[row, col]
            ax.set_aspect("equal")
            group, j = (succ, col) if col < k else (fail, col - k)
            if j >= len(group):
                what = "successful" if col < k else "failed"
                ax.text(
                    0, 0, f"no {what}\nrestart\n({source})", ha="center", va="center", fontsize=8
                )
                ax.set_xlim(extent[0], extent[1])
                ax.set_ylim(extent[2], extent[3])
                continue
            r = int(group[j])
            prob = np.asarray(data.prob[r], np.float64)
            im = ax.imshow(
                prob, origin="lower", extent=extent, cmap=cmap, vmin=0, vmax=1,
                interpolation="nearest",
            )  # fmt: skip
            if np.nanmin(prob) < 0.5 < np.nanmax(prob):
                ax.contour(
                    np.linspace(extent[0], extent[1], side), np.linspace(extent[2], extent[3], side),
                    prob, levels=[0.5], colors="k", linewidths=0.8,
                )  # fmt: skip
            points = get_dataset(str(data.dataset[r]))
            for cls, mk, colour in ((1, "^", "red"), (0, "o", "blue")):
                pts = np.asarray(points.x)[np.asarray(points.y) == cls]
                ax.plot(pts[:, 0], pts[:, 1], mk, color=colour, mec="black", ms=7, ls="none")
            status = Status(int(data.status[r])).name.lower().replace("_", " ")
            mark = "success" if col < k else "failure"
            ax.set_title(
                f"lr {data.lr[r]:.3g}, scale {data.scale[r]:.3g}\n"
                f"loss {data.loss[r]:.3g}, {status} ({mark})",
                fontsize=8,
                color="darkgreen" if col < k else "darkred",
            )
        rate = float(res.cells["success_rate"][c])
        at = np.unravel_index(c, [len(a.values) for a in cfg.axes]) if cfg.axes else ()
        where = ", ".join(f"{a.name} {_fmt(a.values[i])}" for a, i in zip(cfg.axes, at))
        axs[row, 0].set_ylabel(
            f"cell {c}: {where or 'the only cell'}\nrate {format_rate(rate)}\nx2", fontsize=8
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
        f"Decision boundaries: {k} successful (left) and {k} failed (right) restarts per row, "
        f"replayed from their keys when the sweep finished\n" + _describe(cfg),
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
    if "objective" not in cfg.relevant_settings():
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
def draw_basins(res, path) -> str | None:
    """The objective problem's figure: :func:`basin_map` where it applies (one objective,
    per-run records, ``x1`` and ``x2`` as axes); None otherwise."""
    cfg = res.config
    names = {a.name for a in cfg.axes}
    if not res.runs or not {"x1", "x2"} <= names or len(cfg.setting("objective").values) != 1:
        return None
    return basin_map(res, path)


def draw_all(res, x: str | None = None, y: str | None = None, facet=None) -> list[str]:
    """Draw every figure that applies into ``res.run_dir`` from its files; return the names
    written. Compiles and trains nothing: decision boundaries come from ``boundaries.npz``.
    A figure that cannot be drawn (too many facet panels, boundaries not stored) is skipped
    with one line on stderr saying how to get it."""
    if res.run_dir is None:
        raise ConfigError("run_dir", "this sweep has no run directory to draw into")
    d = Path(res.run_dir)
    names = []
    try:
        success_heatmap(res, d / "success_rate.png", x, y, facet)
        names.append("success_rate.png")
        steps_heatmap(res, d / "steps.png", x, y, facet)
        names.append("steps.png")
    except TooManyPanels as e:
        say(f"success_rate.png and steps.png not drawn: {e}; then: jaxlab plot {d} --facet NAME")
    for name, draw in dict(res.config.problem_obj.figures).items():
        if draw(res, d / name) is not None:  # the problem's own figures (None: not applicable)
            names.append(name)
    return names


def main_plot(run_dir, x: str | None = None, y: str | None = None, facet=None) -> int:
    """``jaxlab plot RUN_DIR [--x NAME] [--y NAME] [--facet NAME,...]``: redraw a finished run's
    figures from its files (nothing is compiled, trained or recomputed)."""
    from jaxlab.sweep import load_run

    res = load_run(run_dir)
    choose(res.config, x, y, facet)  # bad names or too many panels: one line, nothing drawn
    for name in draw_all(res, x, y, facet):
        print(Path(run_dir) / name)
    return 0
