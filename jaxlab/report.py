"""One self-contained HTML report of a finished sweep (``jaxlab report RUN_DIR``).

``report.html`` in the run directory opens offline: every script and style is inline, nothing
is fetched. It holds the success-rate map as interactive heatmaps (one per facet value, laid out
as :mod:`jaxlab.facets` lays out the PNGs: every axis not mapped is a facet, nothing pooled)
whose hover shows the cell's settings, rate, 95% Wilson interval, restarts and status counts;
the median-steps map, the same way; the problem's own figures (its PNGs, embedded in base64);
``config.toml``; and the provenance from ``meta.json``.

The heatmaps are drawn with Bokeh (the optional extra ``report``, imported only here, only when
a report is written): its inline library is 1.3 MB against plotly's 4.8 MB for the same
picture, it draws on a canvas at the screen's resolution, and its hover tool takes a template
of the cell's columns. The colours are matplotlib's, as in the PNGs (viridis for rates,
YlGnBu for steps).

Like :mod:`jaxlab.plots`, this module reads results only (:func:`jaxlab.results.load_run`, which
checks every file): it compiles and trains nothing.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_hex

from jaxlab import aggregate as A
from jaxlab import rundir
from jaxlab.descent import Status
from jaxlab.errors import ConfigError
from jaxlab.facets import TooManyPanels, choose
from jaxlab.plots import NAN_GREY, describe, format_rate, format_value, say
from jaxlab.results import load_run

__all__ = ["REPORT", "main_report", "report_html", "write_report"]

REPORT = "report.html"
WRITE_MAX = 20  # cells per side up to which each cell's rate is written in it
CELL_PX = 56  # largest cell, in CSS pixels
_STATUSES = [s.name.lower() for s in Status]


def _bokeh():
    """Bokeh's modules, or a one-line error saying how to install them."""
    try:
        from bokeh import embed, models, plotting, resources
    except ImportError:
        raise ConfigError(
            "report", "the HTML report needs bokeh, not installed: pip install 'jaxlab[report]'"
        ) from None
    return embed, models, plotting, resources


def _palette(name: str) -> list[str]:
    """The matplotlib colormap ``name`` as 256 hex colours (the PNGs' colours)."""
    cmap = colormaps[name]
    return [to_hex(cmap(i / 255)) for i in range(256)]


def _labels(axis) -> list[str]:
    """Tick labels of ``axis``'s values, as the figures write them, with more digits where
    three significant ones would make two values read the same."""
    for digits in (3, 6, 12, 17):
        labels = [
            f"{float(v):.{digits}g}" if isinstance(v, float | np.floating) else format_value(v)
            for v in axis.values
        ]
        if len(set(labels)) == len(labels):
            return labels
    return [repr(v) for v in axis.values]


def _text_colour(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _colour(v: float, palette: list[str], high: float) -> str:
    """The colour Bokeh's linear mapper gives ``v`` on [0, high] (grey for NaN)."""
    if not math.isfinite(v):
        return NAN_GREY
    i = int(np.clip(math.floor(v / high * len(palette)), 0, len(palette) - 1))
    return palette[i]


def _cell_index(cfg) -> dict[str, np.ndarray]:
    """Each cell's index on each axis (cells.csv lists the grid in product order)."""
    if not cfg.axes:
        return {}
    idx = np.unravel_index(np.arange(cfg.n_cells), [len(a.values) for a in cfg.axes])
    return {a.name: i for a, i in zip(cfg.axes, idx)}


def _panels(res, x, y):
    """``(x axis, y axis, [(title, rows), ...])``: the rows of cells.csv in each facet panel
    (nothing pooled: every unmapped axis is a facet). Raises TooManyPanels as the PNGs do."""
    cfg = res.config
    ax, ay, fac, _ = choose(cfg, x, y, None)
    at = _cell_index(cfg)
    rows = np.arange(cfg.n_cells)
    out = []
    for combo in np.ndindex(*[len(a.values) for a in fac]):
        mask = np.ones(cfg.n_cells, bool)
        for a, i in zip(fac, combo):
            mask &= at[a.name] == i
        title = ", ".join(f"{a.name} {format_value(a.values[i])}" for a, i in zip(fac, combo))
        out.append((title, rows[mask]))
    return ax, ay, out


def _settings_text(cfg) -> list[str]:
    """Each cell's settings, ``lr=1, scale=0.5`` (axes in grid order), in cells.csv order."""
    if not cfg.axes:
        return ["(single cell)"] * cfg.n_cells
    at = _cell_index(cfg)
    cols = [[f"{a.name}={t}" for t in _labels(a)] for a in cfg.axes]
    return [
        ", ".join(col[i] for col, i in zip(cols, idx))
        for idx in zip(*(at[a.name] for a in cfg.axes))
    ]


def _figure(res, ax, ay, title, rows, kind: str, settings: list[str]):
    """One panel: a Bokeh figure of the cells ``rows`` over ``ax`` x ``ay``; ``settings``:
    :func:`_settings_text`."""
    _, models, plotting, _ = _bokeh()
    c = res.cells
    xl = _labels(ax) if ax is not None else [""]
    yl = _labels(ay) if ay is not None else [""]
    at = _cell_index(res.config)
    xi = at[ax.name][rows] if ax is not None else np.zeros(len(rows), int)
    yi = at[ay.name][rows] if ay is not None else np.zeros(len(rows), int)
    rate = np.asarray(c["success_rate"], np.float64)[rows]
    steps = np.asarray(c["median_steps"], np.float64)[rows]
    max_steps = float(max(res.config.setting("max_steps").values))
    if kind == "success":
        palette, high, value, label = _palette("viridis"), 1.0, rate, "success rate"
        shown = [format_rate(v) for v in rate]
    else:
        palette, high, value = _palette("YlGnBu"), max_steps, steps
        label = f"median steps (max_steps {max_steps:g})"
        shown = ["n/a" if not math.isfinite(v) else f"{v:g}" for v in steps]
    fill = [_colour(v, palette, high) for v in value]

    def col(name, dtype=np.int64):
        return np.asarray(c[name], dtype)[rows].tolist()

    def fmt(name):
        return [format_rate(v) for v in np.asarray(c[name], np.float64)[rows]]

    def step_text(name):
        return ["n/a" if not math.isfinite(v) else f"{v:g}" for v in col(name, np.float64)]

    data = {
        "x": [xl[i] for i in xi], "y": [yl[i] for i in yi], "fill": fill,
        "text": shown, "text_colour": [_text_colour(f) for f in fill],
        "settings": [settings[r] for r in rows],
        "rate": fmt("success_rate"), "lo": fmt("ci_low"), "hi": fmt("ci_high"),
        "n_runs": col("n_runs"), "n_success": col("n_success"),
        **{f"n_{s}": col(f"n_{s}") for s in _STATUSES},
        **{k: step_text(k) for k in ("p10_steps", "median_steps", "p90_steps")},
    }  # fmt: skip
    best = A.best_index(rate, np.asarray(c["ci_low"], np.float64)[rows])
    if kind == "success" and best is not None:
        pair = ((ax, data["x"][best]), (ay, data["y"][best]))
        where = ", ".join(f"{a.name} {v}" for a, v in pair if a is not None)
        b = f"best: {where or 'the only cell'}: {data['rate'][best]} "
        title = (title + "; " if title else "") + b + f"[{data['lo'][best]}, {data['hi'][best]}]"
    size = min(CELL_PX, 720 / len(xl), 480 / len(yl))
    fig = plotting.figure(
        x_range=xl, y_range=yl, tools="", toolbar_location=None, title=title or None,
        width=int(size * len(xl) + 190), height=int(size * len(yl) + 110),
        x_axis_label=_axis_label(ax), y_axis_label=_axis_label(ay),
    )  # fmt: skip
    source = models.ColumnDataSource(data)
    cells = fig.rect(
        "x", "y", width=1, height=1, source=source, fill_color="fill", line_color="fill",
        line_width=0.5,
    )  # fmt: skip
    if max(len(xl), len(yl)) <= WRITE_MAX:
        fig.text(
            "x", "y", text="text", text_color="text_colour", source=source,
            text_align="center", text_baseline="middle", text_font_size=f"{max(7, size / 5):.0f}px",
        )  # fmt: skip
    if kind == "success":
        if best is not None:
            fig.rect(
                [data["x"][best]], [data["y"][best]], width=1, height=1, fill_alpha=0,
                line_color="red", line_width=3,
            )  # fmt: skip
        head = ("success rate", "@rate [@lo, @hi] (@n_success of @n_runs)")
    else:
        head = ("median steps", "@median_steps [p10 @p10_steps, p90 @p90_steps]")
    tips = [
        ("settings", "@settings"), head, ("restarts", "@n_runs"),
        ("statuses", ", ".join(f"{s} @n_{s}" for s in _STATUSES)),
    ]  # fmt: skip
    if kind == "steps":
        tips.insert(2, ("success rate", "@rate [@lo, @hi]"))
    fig.add_tools(models.HoverTool(renderers=[cells], tooltips=tips))
    mapper = models.LinearColorMapper(palette=palette, low=0.0, high=high, nan_color=NAN_GREY)
    fig.add_layout(models.ColorBar(color_mapper=mapper, title=label, width=12), "right")
    fig.grid.visible = False
    fig.axis.major_tick_line_color = None
    fig.xaxis.major_label_orientation = 0.8 if len(xl) > 8 else 0.0
    return fig


def _refined_figure(res, kind: str):
    """A refined sweep's map (:mod:`jaxlab.refine`): each leaf cell a quad at its own bounds,
    log-spaced axes on log scales, the hover giving its centre, bounds, level and counts."""
    from jaxlab.refine import geometry

    _, models, plotting, _ = _bokeh()
    cfg, c = res.config, res.cells
    geo = geometry(cfg)
    leaf = np.flatnonzero(np.asarray(c["leaf"]) == 1)
    x, y = geo.names
    max_steps = float(max(cfg.setting("max_steps").values))
    if kind == "success":
        palette, high, label = _palette("viridis"), 1.0, "success rate"
        value = np.asarray(c["success_rate"], np.float64)[leaf]
    else:
        palette, high = _palette("YlGnBu"), max_steps
        label = f"median steps (max_steps {max_steps:g})"
        value = np.asarray(c["median_steps"], np.float64)[leaf]

    def col(name, dtype=np.int64):
        return np.asarray(c[name], dtype)[leaf].tolist()

    def num(name):
        return [f"{v:.4g}" for v in col(name, np.float64)]

    data = {
        "left": col(f"{x}_lo", np.float64), "right": col(f"{x}_hi", np.float64),
        "bottom": col(f"{y}_lo", np.float64), "top": col(f"{y}_hi", np.float64),
        "fill": [_colour(v, palette, high) for v in value],
        "x": num(x), "x_lo": num(f"{x}_lo"), "x_hi": num(f"{x}_hi"),
        "y": num(y), "y_lo": num(f"{y}_lo"), "y_hi": num(f"{y}_hi"), "level": col("level"),
        "rate": [format_rate(v) for v in col("success_rate", np.float64)],
        "lo": [format_rate(v) for v in col("ci_low", np.float64)],
        "hi": [format_rate(v) for v in col("ci_high", np.float64)],
        "n_runs": col("n_runs"), "n_success": col("n_success"),
        **{f"n_{s}": col(f"n_{s}") for s in _STATUSES},
        "median_steps": ["n/a" if not math.isfinite(v) else f"{v:g}" for v in
                         col("median_steps", np.float64)],
    }  # fmt: skip
    kinds = ["log" if s == "log" else "linear" for s in geo.spacing]
    fig = plotting.figure(
        x_axis_type=kinds[0], y_axis_type=kinds[1], tools="pan,wheel_zoom,box_zoom,reset",
        x_range=(min(data["left"]), max(data["right"])),
        y_range=(min(data["bottom"]), max(data["top"])),
        width=760, height=600, x_axis_label=f"{x} ({geo.spacing[0]})",
        y_axis_label=f"{y} ({geo.spacing[1]})",
        title=f"{len(leaf):,} cells ({len(c['node']):,} evaluated, levels 0 .. {geo.depth})",
    )  # fmt: skip
    quads = fig.quad(
        left="left", right="right", bottom="bottom", top="top", source=models.ColumnDataSource(data),
        fill_color="fill", line_color="white", line_alpha=0.4, line_width=0.3,
    )  # fmt: skip
    tips = [
        ("cell", f"{x}=@x (@x_lo .. @x_hi), {y}=@y (@y_lo .. @y_hi), level @level"),
        ("success rate", "@rate [@lo, @hi] (@n_success of @n_runs)"),
        ("median steps", "@median_steps"),
        ("statuses", ", ".join(f"{s} @n_{s}" for s in _STATUSES)),
    ]
    fig.add_tools(models.HoverTool(renderers=[quads], tooltips=tips))
    mapper = models.LinearColorMapper(palette=palette, low=0.0, high=high, nan_color=NAN_GREY)
    fig.add_layout(models.ColorBar(color_mapper=mapper, title=label, width=12), "right")
    fig.grid.visible = False
    return fig


def _axis_label(axis) -> str:
    if axis is None:
        return ""
    return axis.name + {"log": " (log-spaced)", "lin": " (linear)"}.get(axis.spacing, "")


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>\n{body}\n</section>"


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def _restarts_used(meta: dict) -> int:
    """Restarts the sweep ran: adaptive and refined sweeps' own count (their ``total_runs`` is
    the most they could use), else ``total_runs``."""
    for key in ("adaptive", "refine"):
        if isinstance(meta.get(key), dict) and "restarts" in meta[key]:
            return int(meta[key]["restarts"])
    return int(meta.get("total_runs", 0))


def _provenance(meta: dict) -> str:
    """A table of what made the results (from meta.json), then the whole file."""
    v, dev, t = meta.get("versions", {}), meta.get("devices", {}), meta.get("timings", {})
    prob = meta.get("problem", {})
    rows = [
        ("problem", prob.get("import")),
        ("problem source sha256", prob.get("source_sha256")),
        ("versions", ", ".join(f"{k} {x}" for k, x in v.items())),
        ("device", f"{dev.get('platform')} ({dev.get('kind')}), {dev.get('local_used')} used, "
                   f"{dev.get('processes')} process(es)"),
        ("dtype", meta.get("dtype")),
        ("restarts", f"{_restarts_used(meta):,}"),
        ("config hash", meta.get("config_hash")),
        ("compile / run", f"{t.get('compile_s', 0):.1f} s / {t.get('run_s_this_session', 0):.1f} s"),
        ("finished", meta.get("finished")),
    ]  # fmt: skip
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(x))}</td></tr>"
        for k, x in rows
        if x is not None
    )
    whole = json.dumps(meta, indent=2, default=str)
    return f"<table>{cells}</table>\n<details><summary>meta.json</summary>{_pre(whole)}</details>"


def _images(res) -> str:
    d = Path(res.run_dir)
    parts = []
    for name in dict(res.config.problem_obj.figures):
        path = d / name
        if not path.is_file() or path.suffix.lower() != ".png":
            continue
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(name)}</figcaption></figure>"
        )
    if not parts:
        names = ", ".join(dict(res.config.problem_obj.figures)) or "none"
        return (
            f"<p>No figure of the problem's is in the run directory (its figures: "
            f"{html.escape(names)}; <code>jaxlab plot {html.escape(str(d))}</code> draws them).</p>"
        )
    return "\n".join(parts)


# Blocks of Bokeh's page template (bokeh.core.templates.FILE), which this one extends.
_TEMPLATE = """{% block resources %}
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.maps { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 12px; }
table { border-collapse: collapse; } th, td { text-align: left; padding: 2px 10px 2px 0; }
th { font-weight: 600; } figure { margin: 0 0 1em 0; } img { max-width: 100%; }
</style>
{{ bokeh_css if bokeh_css }}
{{ bokeh_js if bokeh_js }}
{% endblock %}
{% block inner_body %}{% from macros import embed %}
{% for part in parts %}{% if part is string %}{{ part | safe }}
{% else %}<div class="maps">{% for i in part %}{{ embed(roots[i]) }}{% endfor %}</div>
{% endif %}{% endfor %}
{{ plot_script }}
{% endblock %}
"""


def report_html(res, x: str | None = None, y: str | None = None) -> str:
    """The report of ``res`` (a :class:`~jaxlab.results.SweepResult` read from its run
    directory) as one HTML document, scripts and styles inline. ``x``/``y`` name the mapped
    axes (default: as the PNGs). Raises ConfigError for an unknown axis or without bokeh."""
    embed, _, _, resources = _bokeh()
    if res.run_dir is None:
        raise ConfigError("run_dir", "a report is made from a run directory (load_run)")
    cfg, d = res.config, Path(res.run_dir)
    choose(cfg, x, y, ())  # a bad axis name: one line, before anything is drawn
    title = f"jaxlab sweep '{cfg.name}'"
    parts: list = [f"<h1>{html.escape(title)}</h1><p>{html.escape(describe(cfg))}</p>"]
    figs = []
    panels = []
    if not cfg.refine:
        try:
            ax, ay, panels = _panels(res, x, y)
        except TooManyPanels as e:
            parts.append(_section("Success rate", f"<p>Maps not drawn: {html.escape(str(e))}</p>"))
    else:  # cells of every size: one map each, no facets
        for kind, head in (
            ("success", "Success rate, 95% Wilson interval, refined cells (hover a cell; zoom)"),
            ("steps", "Median steps to stop, all restarts, refined cells"),
        ):
            parts.append(_section(head, ""))
            figs.append(_refined_figure(res, kind))
            parts.append([len(figs) - 1])
    settings = _settings_text(cfg) if panels else []
    for kind, head in (
        ("success", "Success rate, 95% Wilson interval (hover a cell; best cell boxed in red)"),
        ("steps", "Median steps to stop, all restarts"),
    ):
        if not panels:
            break
        parts.append(_section(head, ""))
        first = len(figs)
        figs += [_figure(res, ax, ay, t, rows, kind, settings) for t, rows in panels]
        parts.append(list(range(first, len(figs))))
    parts.append(_section("The problem's figures", _images(res)))
    parts.append(_section("Config (config.toml)", _pre((d / "config.toml").read_text())))
    parts.append(_section("Provenance (meta.json)", _provenance(res.meta)))
    if not figs:  # Bokeh needs a root; an empty page still validates
        _, models, _, _ = _bokeh()
        figs.append(models.Spacer(width=0, height=0))
        parts.append([0])
    return embed.file_html(
        figs, resources.INLINE, title, template=_TEMPLATE, template_variables={"parts": parts}
    )


def write_report(res, path=None, x: str | None = None, y: str | None = None) -> str:
    """Write :func:`report_html` to ``path`` (default: ``report.html`` in the run directory),
    atomically; return the path."""
    text = report_html(res, x, y)
    path = Path(res.run_dir) / REPORT if path is None else Path(path)
    rundir.atomic_write(path, text)
    return str(path)


def after_sweep(res, meta: dict) -> str | None:
    """The report a sweep writes at its end (``meta``: what meta.json holds); without bokeh,
    one line on stderr instead, and the sweep goes on."""
    from dataclasses import replace

    try:
        return write_report(replace(res, meta=meta))
    except ConfigError as e:
        say(f"{REPORT} not written: {e}")
        return None


def main_report(run_dir, x: str | None = None, y: str | None = None) -> int:
    """``jaxlab report RUN_DIR``: write ``report.html`` from the run directory's files (each
    checked by :func:`~jaxlab.results.load_run`; nothing compiled, trained or recomputed)."""
    _bokeh()  # not installed: one line, nothing read or written
    res = load_run(run_dir)
    print(write_report(res, x=x, y=y))
    return 0
