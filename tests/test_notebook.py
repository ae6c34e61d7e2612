"""Results where people work: ``SweepResult.to_xarray``, its notebook summary and short repr,
figures drawn into the user's Axes or Figure (nothing written without a path), progress lines
in logs (stderr not a terminal) and a live display in a real Jupyter kernel."""

import html
import io
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure

from jaxlab import cli, plots, progress
from jaxlab.config import SweepConfig
from jaxlab.errors import ConfigError
from jaxlab.problems import objective_figures
from jaxlab.sweep import run_sweep

REPO = Path(__file__).resolve().parents[1]
NAME = "lab <b>&amp;</b>"  # a sweep name a notebook must not read as HTML


@pytest.fixture(scope="module")
def res():
    """1 static axis (objective: strings) x 2 traced axes (lr, the start's x1)."""
    cfg = SweepConfig(name=NAME, problem="objective", n_runs=16).with_settings(
        objective=["booth", "himmelblau"], lr=[0.01, 0.1], x1=[-1.0, 0.5, 2.0], max_steps=60
    )
    return run_sweep(cfg, None, figures=False, progress=False)


# --- xarray ----------------------------------------------------------------------------------
def test_to_xarray_holds_the_cells_table(res):
    ds = res.to_xarray()
    assert tuple(ds.sizes) == ("objective", "lr", "x1")
    assert ds.sizes == {"objective": 2, "lr": 2, "x1": 3}
    assert ds["objective"].values.tolist() == ["booth", "himmelblau"]
    assert ds["lr"].dtype == np.float64 and ds["lr"].values.tolist() == [0.01, 0.1]
    assert ds["lr"].attrs["kind"] == "traced" and ds["objective"].attrs["kind"] == "static"
    names = ("objective", "lr", "x1")
    assert set(ds.data_vars) == set(res.cells) - set(names)
    assert ds.attrs["n_runs_per_cell"] == 16 and ds.attrs["name"] == NAME
    assert int(ds["n_success"].sum()) > 0  # a table with something in it
    for i in range(len(res.cells["n_runs"])):
        at = {n: res.cells[n][i] for n in names}
        for k in ds.data_vars:
            got, want = ds[k].sel(at).item(), res.cells[k][i]
            assert got == want or (math.isnan(got) and math.isnan(want)), (k, at)


def test_to_xarray_of_a_selection_drops_its_axis(res):
    ds = res.select(objective="himmelblau").to_xarray()
    assert tuple(ds.sizes) == ("lr", "x1")
    row = res.cell(objective="himmelblau", lr=0.1, x1=2.0)
    assert ds["n_success"].sel(lr=0.1, x1=2.0).item() == row["n_success"]
    assert "objective=himmelblau" in ds.attrs["fixed_settings"]


def test_to_xarray_without_xarray_is_one_line(res, monkeypatch):
    monkeypatch.setitem(sys.modules, "xarray", None)  # what `import xarray` does when absent
    with pytest.raises(ConfigError, match=r"^xarray: .*pip install 'jaxlab\[xarray\]'$"):
        res.to_xarray()


# --- repr and the notebook summary -----------------------------------------------------------
class _Cells(HTMLParser):
    """The text of every <th>/<td>, row by row."""

    def __init__(self):
        super().__init__()
        self.rows, self.cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def test_repr_is_one_short_line(res):
    text = repr(res)
    assert "\n" not in text and len(text) < 200, text
    assert text.startswith(
        "SweepResult(problem 'objective', 12 cells, 192 restarts, float32, best "
    )


def test_repr_html_summarises_and_escapes(res):
    page = res._repr_html_()
    assert "<b>" not in page and html.escape(NAME) in page  # the name is text, not markup
    p = _Cells()
    p.feed(page)
    facts = {r[0]: r[1] for r in p.rows if len(r) == 2}
    assert facts["sweep"] == NAME and facts["problem"] == "objective"
    assert facts["restarts"] == "192 (16 per cell)" and facts["dtype"] == "float32"
    assert facts["cells"] == "12 (objective 2 x lr 2 x x1 3)"
    c = res.cells
    b = int(np.lexsort((-c["ci_low"], -c["success_rate"]))[0])  # best: rate, then lower bound
    where = f"objective={c['objective'][b]}, lr={c['lr'][b]:.4g}, x1={c['x1'][b]:.4g}"
    rate = plots.format_rate(c["success_rate"][b])
    assert facts["best cell"].startswith(f"{where}: {rate} [")
    head = next(r for r in p.rows if r and r[0] == "objective")
    assert head == list(c)
    body = [r for r in p.rows if len(r) == len(head) and r is not head]
    assert len(body) == 10 and "first 10 of 12 cells" in page
    assert body[0][:5] == ["booth", "0.01", "-1", "16", str(c["n_success"][0])]


# --- figures: returned, drawn into the user's Axes or Figure, written only with a path --------
def test_heatmap_into_a_user_axes_writes_nothing(res, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fig = Figure()
    left, right = fig.subplots(1, 2)
    sub = res.select(objective="booth")  # one panel: lr x x1
    assert plots.success_heatmap(sub, ax=left) is fig
    assert plots.steps_heatmap(sub, ax=right) is fig
    for ax in (left, right):
        mesh = [c for c in ax.collections if isinstance(c, QuadMesh)]
        assert len(mesh) == 1 and mesh[0].get_array().size == 2 * 3
    title = left.get_title(loc="left")
    assert title.startswith("Success rate (95% Wilson interval)\nbest (red box): "), title
    assert {t.get_text() for t in left.texts} >= {plots.format_rate(sub.cells["success_rate"][0])}
    line = res.select(objective="himmelblau", x1=0.5)  # one axis: a line with its band
    ax = Figure().subplots()
    plots.success_heatmap(line, ax=ax)
    assert ax.lines and ax.collections  # the line and its Wilson band
    ax = Figure().subplots()
    plots.success_heatmap(sub, x="lr", facet="x1", ax=ax)  # a line per x1, in one Axes
    assert sorted(x.get_label() for x in ax.lines if x.get_label().startswith("x1 ")) == [
        "x1 -1", "x1 0.5", "x1 2"
    ]  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_several_panels_go_into_a_figure_not_an_axes(res, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ConfigError, match=r"^ax: this map has 2 panels \(one per objective\).*fig="
    ):
        plots.success_heatmap(res, ax=Figure().subplots())
    with pytest.raises(ConfigError, match="^ax: expected a matplotlib Axes"):
        plots.success_heatmap(res.select(objective="booth"), ax="left")
    mine = Figure(figsize=(10, 5))
    assert plots.success_heatmap(res, fig=mine) is mine
    panels = [ax for ax in mine.get_axes() if ax.get_label() != "<colorbar>"]
    assert len(panels) == 2  # one panel per objective
    assert all(any(isinstance(c, QuadMesh) for c in ax.collections) for ax in panels)
    own = plots.success_heatmap(res)  # no path: a Figure, no file
    assert isinstance(own, Figure) and own is not mine and own.axes
    assert list(tmp_path.iterdir()) == []
    plots.success_heatmap(res, tmp_path / "s.png")  # a path: the PNG
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_basin_map_into_a_user_figure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = SweepConfig(problem="objective", n_runs=1, keep_runs=True, threshold=1e-3)
    cfg = cfg.with_settings(
        objective="himmelblau", lr=0.01, x1={"lin": [-4, 4, 5]}, x2={"lin": [-4, 4, 5]},
        max_steps=50,
    )  # fmt: skip
    obj = run_sweep(cfg, None, figures=False, progress=False)
    mine = Figure()
    assert objective_figures.basin_map(obj, fig=mine) is mine
    assert any(isinstance(c, QuadMesh) for ax in mine.axes for c in ax.collections)
    assert list(tmp_path.iterdir()) == []


# --- progress ---------------------------------------------------------------------------------
def test_display_mode_follows_the_stream():
    assert progress.display_mode(io.StringIO(), enabled=False) == "off"
    assert progress.display_mode(io.StringIO()) == "lines"  # a log, a pipe
    assert progress.in_notebook() is False
    in_kernel = "bar" if sys.stderr.isatty() else "notebook"  # pytest -s in a terminal: a TTY
    assert progress.display_mode(None, notebook=True) == in_kernel  # stderr in a kernel
    assert progress.display_mode(io.StringIO(), notebook=True) == "lines"  # not its stderr
    leader, follower = os.openpty()
    with open(follower, "w") as tty:
        assert progress.display_mode(tty) == "bar"
        assert progress.display_mode(tty, notebook=True) == "bar"
    os.close(leader)


LINE = re.compile(r"^jaxlab: ([\d,]+)/([\d,]+) restarts \((\d+)%\), [\d,]+ restarts/s, ETA .+$")
LAST = re.compile(r"^jaxlab: ([\d,]+)/([\d,]+) restarts done \(100%\) in .+, [\d,]+ restarts/s$")


def test_progress_lines_at_the_interval(monkeypatch):
    buf = io.StringIO()
    p = progress.Progress(300, stream=buf)  # the default interval: 30 s
    p.update(100, already=100)
    p.update(100, already=100)
    p.close()
    assert LAST.match(buf.getvalue()) and buf.getvalue().count("\n") == 1, buf.getvalue()
    monkeypatch.setenv(progress.INTERVAL_ENV, "0")
    buf = io.StringIO()
    p = progress.Progress(300, stream=buf)
    for _ in range(3):
        p.update(100)
    p.close()
    lines = buf.getvalue().splitlines()
    assert [LINE.match(x).group(1) for x in lines[:2]] == ["100", "200"], lines
    assert len(lines) == 3 and LAST.match(lines[2]), lines
    monkeypatch.setenv(progress.INTERVAL_ENV, "soon")
    with pytest.raises(ConfigError, match="^JAXLAB_PROGRESS_INTERVAL: expected seconds"):
        progress.interval()


def _jaxlab(env, *argv, **extra):
    e = dict(env, PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]), **extra)
    cmd = [sys.executable, "-m", "jaxlab", *argv]
    return subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=300)


SMALL = ["--problem", "objective", "--lr", "0.01,0.1", "--n-runs", "16", "--max-steps", "20",
         "--chunk-size", "8", "--devices", "1", "--no-figures"]  # fmt: skip


def test_cli_progress_lines_in_a_log(env, tmp_path):
    p = _jaxlab(env, "sweep", "--out", str(tmp_path / "a"), *SMALL, JAXLAB_PROGRESS_INTERVAL="0")
    assert p.returncode == 0, p.stderr
    lines = [x for x in p.stderr.splitlines() if x.startswith("jaxlab: ")]
    assert [LINE.match(x).group(1) for x in lines[:-1]] == ["8", "16", "24"], p.stderr
    assert LAST.match(lines[-1]) and lines[-1].startswith("jaxlab: 32/32 restarts done"), lines
    q = _jaxlab(env, "sweep", "--out", str(tmp_path / "b"), *SMALL, "--quiet",
                JAXLAB_PROGRESS_INTERVAL="0")  # fmt: skip
    assert q.returncode == 0 and q.stdout == "" and "restarts" not in q.stderr, q.stderr


def test_cli_bad_progress_interval_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(progress.INTERVAL_ENV, "-1")
    bad = tmp_path / "c"
    assert cli.main(["sweep", "--out", str(bad), *SMALL]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith("jaxlab: error: JAXLAB_PROGRESS_INTERVAL: expected seconds, a finite")
    assert not bad.exists()


# --- a real notebook ---------------------------------------------------------------------------
NOTEBOOK = [
    "%matplotlib inline\nimport jaxlab\nfrom jaxlab import plots",
    "cfg = jaxlab.SweepConfig(problem='objective', name='nb <&>', n_runs=16, chunk_size=8)\n"
    "res = jaxlab.run_sweep(cfg.with_settings(lr=[0.01, 0.1], max_steps=10), None, figures=False)\n"
    "res",
    "plots.success_heatmap(res)",
]
RUN = textwrap.dedent(
    """
    import json, sys
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in json.loads(sys.argv[1])]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    print(json.dumps([c.outputs for c in nb.cells]))
    """
)


@pytest.mark.slow  # a kernel starting, importing JAX and compiling: about 8-12 s on 2 cores
def test_a_notebook_shows_progress_summary_and_figure(env, tmp_path):
    e = dict(env, PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-c", RUN, json.dumps(NOTEBOOK)]
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    setup, sweep, figure = json.loads(p.stdout)
    assert not [o for o in setup if o["output_type"] == "error"], setup
    shown = [o for o in sweep if o["output_type"] == "display_data"]
    assert len(shown) == 1, sweep  # one display, updated in place
    assert '<progress value="32" max="32"' in shown[0]["data"]["text/html"]
    assert "32/32 restarts (100%)" in shown[0]["data"]["text/plain"]
    assert not [o for o in sweep if o["output_type"] == "stream"], sweep  # no log lines
    (result,) = [o for o in sweep if o["output_type"] == "execute_result"]
    assert result["data"]["text/plain"].startswith("SweepResult(problem 'objective', 2 cells")
    assert "nb &lt;&amp;&gt;" in result["data"]["text/html"]
    (fig,) = [o for o in figure if o["output_type"] == "execute_result"]
    assert "image/png" in fig["data"]
    assert list(tmp_path.iterdir()) == []  # nothing written by the sweep or the figure
