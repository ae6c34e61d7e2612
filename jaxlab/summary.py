"""A :class:`~jaxlab.results.SweepResult` summarised: one line for ``repr`` (:func:`short`) and
an HTML table for notebooks (:func:`html_table`, ``SweepResult._repr_html_``): the problem, the
cells and restarts, the dtype, the best cell with its rate and 95% interval, then the first
rows of the cells table. Every text is HTML-escaped (a sweep's name or a user's problem may
hold ``<`` or ``&``). Reads the tables only."""

from __future__ import annotations

import html
import math

import numpy as np

from jaxlab import aggregate as A

__all__ = ["HTML_ROWS", "best", "html_table", "short"]

HTML_ROWS = 10  # cells-table rows shown in a notebook


def _rate(v) -> str:
    from jaxlab.plots import format_rate  # the figures' spelling: never 0 or 1 unless it is one

    return format_rate(v)


def _value(v) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):.4g}" if math.isfinite(v) else str(float(v))
    if isinstance(v, np.integer):
        return f"{int(v):,}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def best(res) -> tuple[str, str] | None:
    """The best cell (highest rate, ties: the higher lower bound, as the figures box it):
    ``("lr=1, scale=0.5", "0.62 [0.51, 0.72] of 100")``; None when every cell is empty."""
    c = res.cells
    if not len(np.asarray(c["n_runs"])):
        return None
    i = A.best_index(c["success_rate"], c["ci_low"])
    if i is None:
        return None
    names = [s.name for s in res.config.settings if s.name in c]
    where = ", ".join(f"{n}={_value(c[n][i])}" for n in names) or "the only cell"
    rate = (
        f"{_rate(c['success_rate'][i])} [{_rate(c['ci_low'][i])}, {_rate(c['ci_high'][i])}] "
        f"of {int(c['n_runs'][i]):,}"
    )
    return where, rate


def _facts(res) -> list[tuple[str, str]]:
    cfg = res.config
    n_cells = len(np.asarray(res.cells["n_runs"]))
    total = int(np.sum(res.cells["n_runs"]))
    axes = " x ".join(f"{a.name} {len(a.values)}" for a in cfg.axes)
    if getattr(cfg, "points", None) is not None:  # a list of points, not a product grid
        axes = "points over " + ", ".join(a.name for a in cfg.axes)
    b = best(res)
    rows = [
        ("problem", str(cfg.problem_label)),
        ("sweep", cfg.name),
        ("cells", f"{n_cells:,}" + (f" ({axes})" if axes else "")),
        ("restarts", f"{total:,} ({cfg.n_runs:,} per cell)"),
        ("dtype", str(res.meta.get("dtype", cfg.dtype))),
        ("best cell", "no runs" if b is None else f"{b[0]}: {b[1]}"),
    ]
    if res.run_dir is not None:
        rows.append(("run directory", str(res.run_dir)))
    return rows


def short(res) -> str:
    """One line: ``SweepResult(problem 'network', 18 cells, 288 restarts, float32, best
    lr=1, scale=0.5: 0.62 [0.4, 0.8] of 16)``."""
    n_cells = len(np.asarray(res.cells["n_runs"]))
    total = int(np.sum(res.cells["n_runs"]))
    b = best(res)
    text = f"best {b[0]}: {b[1]}" if b is not None else "no runs"
    where = f", run_dir={str(res.run_dir)!r}" if res.run_dir is not None else ""
    dtype = res.meta.get("dtype", res.config.dtype)
    return (
        f"SweepResult(problem {str(res.config.problem_label)!r}, {n_cells:,} cells, "
        f"{total:,} restarts, {dtype}, {text}{where})"
    )


def html_table(res, rows: int = HTML_ROWS) -> str:
    """The notebook summary: a table of facts, then the first ``rows`` rows of the cells
    table (every column), every text escaped."""
    e = html.escape
    facts = "".join(
        f'<tr><th style="text-align: left">{e(k)}</th><td style="text-align: left">{e(v)}</td></tr>'
        for k, v in _facts(res)
    )
    c = res.cells
    cols = list(c)
    n = len(np.asarray(c["n_runs"]))
    head = "".join(f"<th>{e(k)}</th>" for k in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(_value(c[k][i]))}</td>" for k in cols) + "</tr>"
        for i in range(min(rows, n))
    )
    more = f"<p>first {rows} of {n:,} cells (all in <code>.cells</code>)</p>" if n > rows else ""
    return (
        '<div class="jaxlab-sweep-result"><strong>jaxlab SweepResult</strong>'
        f"<table>{facts}</table>"
        f'<table class="jaxlab-cells"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        f"{more}</div>"
    )
