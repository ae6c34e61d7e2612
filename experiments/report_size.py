"""How large a self-contained report is with each plotting library: the report's two maps
drawn with Bokeh (what ``jaxlab report`` uses) and the same two heatmaps, with the same hover
text, drawn with plotly, each written as one HTML file with its library inline.

    python experiments/report_size.py RUN_DIR [--out DIR]

Needs bokeh (``pip install 'jaxlab[report]'``) and plotly (``pip install plotly``; measured
here only, jaxlab never imports it). Prints the size of each file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from jaxlab import report
from jaxlab.results import load_run


def plotly_page(res) -> str:
    """The success and steps maps of ``res`` (its first panel each) as plotly heatmaps with
    their hover text, in one HTML file with plotly.js inline."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ax, ay, panels = report._panels(res, None, None)
    rows = panels[0][1]
    xl, yl = report._labels(ax), report._labels(ay)
    at = report._cell_index(res.config)
    settings = report._settings_text(res.config)
    fig = make_subplots(1, 2, subplot_titles=("success rate", "median steps"))
    for col, name, scale in ((1, "success_rate", "Viridis"), (2, "median_steps", "YlGnBu")):
        z = np.full((len(yl), len(xl)), np.nan)
        text = np.full(z.shape, "", object)
        for r in rows:
            i, j = at[ay.name][r], at[ax.name][r]
            z[i, j] = res.cells[name][r]
            c = {k: v[r] for k, v in res.cells.items()}
            text[i, j] = (
                f"{settings[r]}<br>rate {c['success_rate']:.3g} [{c['ci_low']:.3g}, "
                f"{c['ci_high']:.3g}]<br>restarts {c['n_runs']}<br>converged "
                f"{c['n_converged']}, stalled {c['n_stalled']}, max_steps {c['n_max_steps']}, "
                f"diverged {c['n_diverged']}"
            )
        heat = go.Heatmap(z=z, x=xl, y=yl, text=text, hovertemplate="%{text}<extra></extra>")
        heat.update(colorscale=scale, reversescale=scale == "YlGnBu")
        fig.add_trace(heat, 1, col)
    return fig.to_html(include_plotlyjs=True, full_html=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--out", default=None, help="where to write the two files (default: RUN_DIR)")
    args = p.parse_args(argv)
    res = load_run(args.run_dir)
    out = Path(args.out or args.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    bokeh_path = Path(report.write_report(res, out / "report-bokeh.html"))
    try:
        text = plotly_page(res)
    except ImportError:
        sys.stderr.write("report_size.py: plotly is not installed: pip install plotly\n")
        return 2
    (out / "report-plotly.html").write_text(text)
    d = Path(res.run_dir)
    figures = [d / n for n in dict(res.config.problem_obj.figures) if (d / n).is_file()]
    embedded = sum(4 * -(-f.stat().st_size // 3) for f in figures)  # their base64
    size = bokeh_path.stat().st_size
    print(
        f"{bokeh_path.name}: {size / 1e6:.2f} MB (the whole report; without the problem's "
        f"figures, {embedded / 1e6:.2f} MB of base64: {(size - embedded) / 1e6:.2f} MB)"
    )
    plotly_path = out / "report-plotly.html"
    print(f"{plotly_path.name}: {plotly_path.stat().st_size / 1e6:.2f} MB (the two maps only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
