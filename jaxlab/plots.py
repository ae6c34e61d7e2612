"""Figures of a finished sweep, drawn from its files alone (``jaxlab plot RUN_DIR``).

* :func:`success_heatmap`: success rate over two axes (a line with its 95% Wilson band for one);
* :func:`steps_heatmap`: median steps to stop, same layout;
* :func:`draw_all`: those two, then the problem's own figures (``Problem.figures``);
* :func:`format_rate`: how rates and their bounds are written;
* :func:`new_figure`, :func:`save`, :func:`describe`, :func:`format_value`, :func:`say`: the
  helpers a problem's figures are built on (the built-in problems' figures are in
  :mod:`jaxlab.problems`).

Every axis not mapped is a facet: one panel (or line) per value, each with its own best cell
(:mod:`jaxlab.facets`); axes are pooled only when asked (``facet=``), and the figure says so.
Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
``pyplot``: no backend is switched and no figure is registered globally, so nothing leaks into a
notebook or a long-running process. PNGs are written atomically (:func:`jaxlab.rundir.atomic_write`).
This module reads results (:mod:`jaxlab.results`) only: it names no problem, and compiles and
trains nothing.
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
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from jaxlab import aggregate as A
from jaxlab import rundir
from jaxlab.errors import ConfigError
from jaxlab.facets import TooManyPanels, choose, facet_tables
from jaxlab.results import load_run

__all__ = [
    "NAN_GREY",
    "check_target",
    "describe",
    "draw_all",
    "finish",
    "format_rate",
    "format_value",
    "main_plot",
    "new_figure",
    "save",
    "say",
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
NAN_GREY = "#c8c8c8"
OUTLINE_CELLS = 64  # refined maps: leaves outlined down to this many cells per axis


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
def new_figure(w: float, h: float) -> Figure:
    """A ``w`` x ``h`` inch figure on the Agg canvas (constrained layout, 110 dpi), never
    registered with ``pyplot``."""
    fig = Figure(figsize=(w, h), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _write_png(fig: Figure, path, own: bool) -> None:
    buf = io.BytesIO()
    engine = fig.get_layout_engine()
    if own and engine is not None:  # lay out once, then draw once (savefig would draw twice)
        engine.execute(fig)
        fig.set_layout_engine(None)
    fig.savefig(buf, format="png")
    rundir.atomic_write(path, buf.getvalue())


def save(fig: Figure, path) -> str:
    """Write ``fig`` to ``path`` as a PNG, atomically, and free it; returns the path."""
    _write_png(fig, path, own=True)
    fig.clear()  # drop references early; the figure was never registered with pyplot
    return str(path)


def finish(fig, path=None, own: bool = True) -> Figure:
    """The end of every public figure function: write the root figure of ``fig`` (a Figure,
    SubFigure or Axes) to ``path`` as a PNG, atomically, when a path is given (none: nothing
    written), and return that :class:`~matplotlib.figure.Figure`. ``own``: jaxlab made the
    figure (its layout is then fixed before the one draw); a user's figure is left as it is."""
    root = _root(fig)
    if path is not None:
        _write_png(root, path, own)
    return root


def check_target(ax=None, fig=None) -> None:
    """Refuse a drawing target that is not one: ``ax`` must be a matplotlib Axes, ``fig`` a
    Figure or SubFigure, not both."""
    from matplotlib.axes import Axes
    from matplotlib.figure import FigureBase

    if ax is not None and fig is not None:
        raise ConfigError("ax", "give ax (one panel) or fig (a whole figure), not both")
    if ax is not None and not isinstance(ax, Axes):
        raise ConfigError("ax", f"expected a matplotlib Axes, got {type(ax).__name__}")
    if fig is not None and not isinstance(fig, FigureBase):
        raise ConfigError(
            "fig", f"expected a matplotlib Figure or SubFigure, got {type(fig).__name__}"
        )


def _root(artist) -> Figure:
    """The Figure an Axes, SubFigure or Figure belongs to (a Figure's ``figure`` is itself)."""
    while artist.figure is not artist:
        artist = artist.figure
    return artist


def _width_in(fig) -> float:
    """Width in inches of a Figure or SubFigure."""
    return fig.bbox.width / _root(fig).dpi


def say(message: str) -> None:
    """One line on stderr (e.g. why a figure was not drawn and how to get it)."""
    sys.stderr.write(f"jaxlab: {message}\n")


def format_value(v) -> str:
    """A setting's value as figures write it: ``2-2-1`` for a tuple, 3 significant digits."""
    if isinstance(v, tuple):
        return "-".join(map(str, v))
    if isinstance(v, float | np.floating):
        return f"{float(v):.3g}"
    return str(v)


def _restarts_text(cfg) -> str:
    if cfg.ci_width is None:
        return f"{cfg.n_runs:,} restarts per cell"
    return (
        f"{cfg.n_runs:,} to {cfg.cap:,} restarts per cell, in rounds until the 95% "
        f"confidence sequence (the intervals shown) is at most {cfg.ci_width:g} wide"
    )


def _values_text(cfg, name: str) -> str:
    return ", ".join(format_value(v) for v in cfg.setting(name).values)


def _problem(cfg) -> str:
    """What was swept, in the problem's words (``Problem.describe``; else its name)."""
    p = cfg.problem_obj
    return p.describe(cfg) if p.describe is not None else f"problem {cfg.problem_label}"


def describe(cfg) -> str:
    """One line saying what every cell ran: the problem, restarts, success rule, budget (for a
    figure's title)."""
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
        f"{_problem(cfg)}, optimizer {opt}{extra}; {_restarts_text(cfg)}, "
        f"max_steps {steps}; success = {rule} and not diverged"
    )


def _values_short(values) -> str:
    if len(values) <= 6:
        return ", ".join(format_value(v) for v in values)
    return f"{len(values)} values, {format_value(values[0])} .. {format_value(values[-1])}"


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
    labels = [format_value(axis.values[i]) for i in idx]
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
    return ", ".join(f"{n} {format_value(v)}" for n, v in panel.where)


def _best_text(f, panel, mark: str = "red box") -> str:
    if panel.best is None:
        return "no runs"
    mapped = [a for a in (f.x, f.y) if a is not None]
    where = ", ".join(f"{a.name} {format_value(a.values[i])}" for a, i in zip(mapped, panel.best))
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
        per = f"{per:,}" if cfg.ci_width is None else f"at least {per:,}"
        note += f"\npooled over {names}, as asked: {per} restarts per cell shown"
    return note


def _columns(n: int, pw: float, ph: float) -> int:
    """Panels per row: the layout closest to 4:3 that stays within MAX_WIDTH_IN."""
    fits = [c for c in range(1, n + 1) if c * pw <= MAX_WIDTH_IN] or [1]
    return min(fits, key=lambda c: abs(math.log(c * pw / (math.ceil(n / c) * ph) / (4 / 3))))


def _draw(res, path, x, y, facet, kind: str, ax=None, fig=None) -> Figure:
    cfg = res.config
    check_target(ax, fig)
    if getattr(cfg, "refine", 0):  # cells of every size: their own map
        return _refined(res, path, kind, ax, fig)
    f = facet_tables(res, x, y, facet)
    max_steps = max(cfg.setting("max_steps").values)
    if kind == "success":
        title = "Success rate (95% Wilson interval)"
        cmap, vmax, clabel = colormaps["viridis"], 1.0, "success rate"
    else:
        title = f"Median steps to stop, all restarts ({A.steps_note(max_steps)})"
        cmap, vmax = colormaps["YlGnBu"], float(max_steps)
        clabel = f"median steps (max_steps {max_steps})"
    cmap = cmap.with_extremes(bad=NAN_GREY)
    if ax is not None:
        _into_axes(ax, f, kind, cmap, vmax, clabel, title)
        return finish(ax, path, own=False)
    note = describe(cfg) + _facet_note(f, cfg)
    if f.y is None:
        out = _lines(f, kind, vmax, clabel, note, fig)
    else:
        out = _maps(f, kind, cmap, vmax, clabel, note, fig)
    head = _wrap(f"{title}: {_problem(cfg)}, sweep '{cfg.name}'", _width_in(out), 12, 0.6)
    out.suptitle(head, fontsize=12, fontweight="bold")
    return finish(out, path, own=fig is None)


def _into_axes(ax, f, kind, cmap, vmax, clabel, title) -> None:
    """The figure's one panel, drawn into the user's ``ax`` (its colour bar beside it; a line
    map: up to LINES_MAX lines in it); the figure's title and note are left out, the panel's
    own title kept."""
    one = len(f.panels) <= (LINES_MAX if f.y is None else 1)
    if not one:
        names = " x ".join(a.name for a in f.facet)
        raise ConfigError(
            "ax",
            f"this map has {len(f.panels)} panels (one per {names}); draw them into a figure "
            "with fig=, or one panel with res.select(NAME=VALUE) (or facet=() to pool them)",
        )
    if f.y is None:
        _line_panel(ax, f, list(range(len(f.panels))), kind, vmax, clabel)
    else:
        nx, ny = len(f.x.values), len(f.y.values)
        bbox = ax.get_window_extent()
        cell_in = min(bbox.width / nx, bbox.height / ny) / _root(ax).dpi
        big = max(nx, ny)
        write = big <= ANNOTATE_MAX and nx * ny <= ANNOTATE_CELLS_MAX
        mesh = _map_panel(ax, f, f.panels[0], kind, cmap, vmax, cell_in, write, True, True)
        ax.figure.colorbar(mesh, ax=ax, label=clabel + " (grey: no runs)")
    ax.set_title(f"{title}\n{ax.get_title(loc='left')}".strip(), fontsize=8, loc="left")


def _body(w: float, h: float, note: str, into=None):
    """A figure ``w`` inches wide, ``h`` for its panels plus the note's lines (or the user's
    figure ``into``, as it is); returns the figure and the sub-figure the panels go in (the
    note is its title)."""
    if into is None:
        text = _wrap(note, w)
        fig = new_figure(w, h + 0.6 + 0.16 * (text.count("\n") + 1))
    else:
        fig, text = into, _wrap(note, _width_in(into))
    body = fig.subfigures(1, 1)
    body.suptitle(text, fontsize=8, x=0.01, ha="left")
    return fig, body


def _maps(f, kind, cmap, vmax, clabel, note, into=None) -> Figure:
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
    fig, body = _body(max(7.0, ncols * pw + 1.4), nrows * ph, note, into)
    axs = body.subplots(nrows, ncols, squeeze=False)
    mesh = None
    for p, panel in enumerate(f.panels):
        mesh = _map_panel(
            axs.flat[p], f, panel, kind, cmap, vmax, s, write, p + ncols >= n, p % ncols == 0
        )
    for ax in list(axs.flat)[n:]:
        ax.set_visible(False)
    body.colorbar(mesh, ax=list(axs.flat)[:n], label=clabel + " (grey: no runs)")
    return fig


def _map_panel(ax, f, panel, kind, cmap, vmax, s, write, xlabel, ylabel):
    """One panel of a map into ``ax``: cells ``s`` inches wide, values written (``write``),
    the axis labels where asked; returns the mesh (for the colour bar)."""
    nx, ny = len(f.x.values), len(f.y.values)
    Z = panel.rate if kind == "success" else panel.steps
    mesh = ax.pcolormesh(
        np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5, np.ma.masked_invalid(Z.T),
        cmap=cmap, vmin=0.0, vmax=vmax,
    )  # fmt: skip
    _ticks(ax, "x", f.x, label=xlabel)
    _ticks(ax, "y", f.y, label=ylabel)
    if write:
        intervals = max(nx, ny) <= INTERVAL_MAX
        _annotate(ax, panel, Z, cmap, mesh.norm, kind, s * 72, intervals=intervals)
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
    return mesh


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


def _lines(f, kind, vmax, clabel, note, into=None) -> Figure:
    """One mapped axis (or none): a line per facet value in one panel, or a panel each."""
    n = len(f.panels)
    groups = [list(range(n))] if n <= LINES_MAX else [[p] for p in range(n)]
    pw, ph = (8.0, 5.0) if len(groups) == 1 else (5.0, 3.8)
    ncols = _columns(len(groups), pw, ph)
    nrows = math.ceil(len(groups) / ncols)
    fig, body = _body(ncols * pw, nrows * ph, note, into)
    axs = body.subplots(nrows, ncols, squeeze=False)
    for g, members in enumerate(groups):
        _line_panel(axs.flat[g], f, members, kind, vmax, clabel)
    for ax in list(axs.flat)[len(groups) :]:
        ax.set_visible(False)
    return fig


def _line_panel(ax, f, members, kind, vmax, clabel) -> None:
    """One panel of lines into ``ax``: a line per facet value in ``members``."""
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


def _line(ax, axis, panel, kind: str, max_steps: float, colour, label, first: bool, star) -> None:
    """The value against ``axis`` (None: the only cell), the Wilson band for success rates."""
    if axis is None:
        xs, labels, numeric = np.array([0.0]), ["the only cell"], False
    else:
        vals = axis.values
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals)
        xs = np.asarray(vals, np.float64) if numeric else np.arange(len(vals), dtype=np.float64)
        labels = [format_value(v) for v in vals]
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


def success_heatmap(
    res, path=None, x: str | None = None, y: str | None = None, facet=None, *, ax=None, fig=None
) -> Figure:
    """Success rate over axes ``x`` and ``y`` (default: traced axes first), each cell annotated
    with its rate and 95% Wilson interval, the best cell boxed. One axis: a line with the
    interval as a band. Every other axis is a facet, one panel (or line) per value, each with
    its own best cell; ``facet`` (names, or ``"a,b"``) picks the facet axes and pools the rest
    (``()``: pool all). Raises ConfigError for unknown axes or more than
    :data:`jaxlab.facets.MAX_PANELS` panels.

    Returns the :class:`~matplotlib.figure.Figure`; writes a PNG to ``path`` only when one is
    given. ``ax``: draw a single-panel map into that Axes (with its colour bar; the figure's
    title and note are left out); a map with several panels is refused there: pass ``fig``
    (a Figure or SubFigure to draw the whole figure into) or select one panel."""
    return _draw(res, path, x, y, facet, "success", ax, fig)


def steps_heatmap(
    res, path=None, x: str | None = None, y: str | None = None, facet=None, *, ax=None, fig=None
) -> Figure:
    """Median steps to stop (all restarts) over ``x`` and ``y``, faceted as
    :func:`success_heatmap`; pooled cells (when asked): the median of their medians. Returns
    the Figure; ``path``, ``ax`` and ``fig`` as :func:`success_heatmap`."""
    return _draw(res, path, x, y, facet, "steps", ax, fig)


# --- refined sweeps --------------------------------------------------------------------------
def _refined(res, path, kind: str, ax=None, fig=None) -> Figure:
    """A refined sweep's map (:mod:`jaxlab.refine`): each leaf cell drawn at its own size and
    bounds (a raster on the finest grid), outlined down to :data:`OUTLINE_CELLS` cells per
    axis; log-spaced axes drawn on log scales."""
    from matplotlib.collections import LineCollection

    from jaxlab import refine

    cfg, c = res.config, res.cells
    geo = refine.geometry(cfg)
    if kind == "success":
        column, cmap, vmax, clabel = "success_rate", colormaps["viridis"], 1.0, "success rate"
        title = "Success rate, refined where the boundary is"
    else:
        max_steps = max(cfg.setting("max_steps").values)
        column, cmap, vmax = "median_steps", colormaps["YlGnBu"], float(max_steps)
        clabel = f"median steps (max_steps {max_steps})"
        title = f"Median steps to stop, all restarts ({A.steps_note(max_steps)})"
    r = refine.raster(cfg, c, column)
    own = ax is None
    if own:
        out = fig if fig is not None else new_figure(7.5, 6.4)
        ax = out.add_subplot()
    mesh = ax.pcolormesh(
        r["x_edges"], r["y_edges"], r["values"].T,
        cmap=cmap.with_extremes(bad=NAN_GREY), vmin=0.0, vmax=vmax,
    )  # fmt: skip
    # Outlines where cells are at least 1/64 of an axis (finer ones would be a solid mesh).
    level = np.asarray(c["level"])
    leaf = np.asarray(c["leaf"]).astype(bool)
    drawn = leaf & ((max(geo.n) << level) <= OUTLINE_CELLS)
    (x, y), segs = geo.names, []
    for x0, x1, y0, y1 in zip(*(np.asarray(c[k])[drawn] for k in (
        f"{x}_lo", f"{x}_hi", f"{y}_lo", f"{y}_hi"
    ))):  # fmt: skip
        segs.append([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)])
    ax.add_collection(LineCollection(segs, colors="white", linewidths=0.3, alpha=0.6))
    for a, which in enumerate("xy"):
        if geo.spacing[a] == "log":
            (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    ax.set_xlim(r["x_edges"][0], r["x_edges"][-1])
    ax.set_ylim(r["y_edges"][0], r["y_edges"][-1])
    ax.set_xlabel(_LABELS.get(x, x) + f" ({geo.spacing[0]})")
    ax.set_ylabel(_LABELS.get(y, y) + f" ({geo.spacing[1]})")
    _root(ax).colorbar(mesh, ax=ax, label=clabel)
    n_leaf, used = int(leaf.sum()), int(np.sum(c["n_runs"]))
    fx, fy = geo.finest
    ax.set_title(
        f"{n_leaf:,} cells ({len(leaf):,} evaluated, {used:,} restarts; uniform {fx} x {fy}: "
        f"{fx * fy * cfg.n_runs:,})",
        fontsize=9,
    )
    if not own:
        return finish(ax, path, own=False)
    note = describe(cfg) + "; " + refine.describe(cfg)
    out.suptitle(
        _wrap(f"{title}: {_problem(cfg)}, sweep '{cfg.name}'\n{note}", 7.5, 9, 0.6),
        fontsize=9,
    )
    return finish(out, path, own=fig is None)


# --- everything ------------------------------------------------------------------------------
def draw_all(res, x: str | None = None, y: str | None = None, facet=None) -> list[str]:
    """Draw every figure that applies into ``res.run_dir`` from its files: the success and
    steps maps, then the problem's own ``figures`` (what they need beyond the tables was stored
    by its ``prepare`` when the sweep finished); return the names written. Compiles and trains
    nothing. A figure that cannot be drawn (too many facet panels, a problem's file missing) is
    skipped with one line on stderr saying how to get it."""
    if res.run_dir is None:
        raise ConfigError("run_dir", "this sweep has no run directory to draw into")
    d = Path(res.run_dir)
    names = []
    if res.config.points is not None:  # the maps and the problem's figures read a grid
        say(f"no figures drawn: a sweep over points has no grid to map (see {d / 'cells.csv'})")
        return names
    try:
        success_heatmap(res, d / "success_rate.png", x, y, facet)
        names.append("success_rate.png")
        steps_heatmap(res, d / "steps.png", x, y, facet)
        names.append("steps.png")
    except TooManyPanels as e:
        say(f"success_rate.png and steps.png not drawn: {e}; then: jaxlab plot {d} --facet NAME")
    if getattr(res.config, "refine", 0):  # the problem's figures read a grid
        figs = ", ".join(dict(res.config.problem_obj.figures))
        if figs:
            say(f"{figs} not drawn: a refined sweep's figures are its maps")
        return names
    for name, draw in dict(res.config.problem_obj.figures).items():
        if draw(res, d / name) is not None:  # the problem's own figures (None: not applicable)
            names.append(name)
    return names


def main_plot(run_dir, x: str | None = None, y: str | None = None, facet=None) -> int:
    """``jaxlab plot RUN_DIR [--x NAME] [--y NAME] [--facet NAME,...]``: redraw a finished run's
    figures from its files (nothing is compiled, trained or recomputed)."""
    res = load_run(run_dir)
    choose(res.config, x, y, facet)  # bad names or too many panels: one line, nothing drawn
    for name in draw_all(res, x, y, facet):
        print(Path(run_dir) / name)
    return 0
