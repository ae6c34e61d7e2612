"""The HTML report (``jaxlab report RUN_DIR``, and ``jaxlab sweep`` at its end): one
self-contained file, written from the run's files only; opened in a real headless chromium
(Debian's, driven through its chromedriver by selenium, which downloads nothing): no console
errors, nothing fetched, the heatmap's colours on screen, and a hover that shows a cell's
numbers. Bad input: one line, exit 2, nothing written."""

import base64
import csv
import html
import io
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from matplotlib import colormaps

from jaxlab import aggregate as A
from jaxlab import cli, report
from jaxlab.config import SweepConfig, to_toml
from jaxlab.plots import format_rate, format_value
from jaxlab.results import SweepResult, cells_table, load_run
from jaxlab.sweep import run_sweep

STATUSES = ("converged", "stalled", "max_steps", "diverged")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny sweep with its figures (and so its report): Himmelblau's function from 5 x 4
    start points, half of which reach a minimum in 30 steps; its own figure, basins.png.
    (An objective: a network sweep's boundary replay would triple the time.)"""
    cfg = SweepConfig(problem="objective", n_runs=1, keep_runs=True, threshold=1e-3)
    cfg = cfg.with_settings(
        objective="himmelblau", lr=0.02, max_steps=30,
        x1={"lin": [-2.0, 2.0, 5]}, x2={"lin": [-2.0, 2.0, 4]},
    )  # fmt: skip
    return run_sweep(cfg, tmp_path_factory.mktemp("rep") / "run", figures=True, progress=False)


def snapshot(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def test_sweep_writes_a_self_contained_report(run):
    d = run.run_dir
    text = (d / "report.html").read_text()
    markup = re.sub(r"(?s)<script\b[^>]*>.*?</script>", "<script></script>", text).lower()
    assert markup.count("<script></script>") >= 3  # Bokeh, the plots' data, their script
    assert "src=" not in markup.replace('src="data:image/png;base64,', "")  # all inline
    assert "<link" not in markup and "@import" not in markup and "http" not in markup
    assert "Bokeh" in text and "jaxlab sweep &#x27;lab&#x27;" in text
    png = base64.b64encode((d / "basins.png").read_bytes()).decode()
    assert f"data:image/png;base64,{png}" in text  # the problem's own figure, embedded
    assert html.escape((d / "config.toml").read_text()) in text
    assert run.meta["config_hash"] in text and "meta_sha256" in text  # meta.json as written
    assert "report.html" not in run.meta["figures"]  # meta.json is written before it
    load_run(d)  # the run directory still reads back whole


def test_report_subprocess_rewrites_it_from_the_files(run, env, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(run.run_dir, d)
    before = (d / "report.html").read_text()
    (d / "report.html").unlink()
    others = snapshot(d)
    cmd = [sys.executable, "-m", "jaxlab", "report", str(d)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(d / "report.html")
    after = (d / "report.html").read_text()
    assert snapshot(d).keys() - others.keys() == {"report.html"}
    assert all(snapshot(d)[k] == v for k, v in others.items())  # nothing else rewritten
    # The same page but for Bokeh's random element ids.
    assert abs(len(after) - len(before)) < 2000 and after.count("data-root-id") == 2


def test_report_compiles_and_trains_nothing(run, monkeypatch, tmp_path, capsys):
    import jaxlab.engine

    def boom(*a, **k):
        raise AssertionError("jaxlab report must not rerun the sweep")

    for target in ("run_chunks", "compile_all", "replay_many"):
        monkeypatch.setattr(jaxlab.engine, target, boom)
    monkeypatch.setattr("jaxlab.sweep.run_chunks", boom)
    d = tmp_path / "run"
    shutil.copytree(run.run_dir, d)
    (d / "report.html").unlink()
    assert cli.main(["report", str(d)]) == 0
    assert (d / "report.html").stat().st_size > 100_000
    assert capsys.readouterr().out.strip() == str(d / "report.html")


def test_report_of_a_non_run_is_one_line(tmp_path, capsys):
    (tmp_path / "junk.txt").write_text("x")
    assert cli.main(["report", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "not a finished jaxlab run directory" in err
    assert out == "" and [x.name for x in tmp_path.iterdir()] == ["junk.txt"]
    assert cli.main(["report", str(tmp_path / "nowhere")]) == 2
    assert "not a finished jaxlab run directory" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    "damage, argv, words",
    [
        ("cells", [], "cells.csv"),
        ("meta", [], "meta.json"),
        (None, ["--x", "nope"], "x: 'nope' is not an axis of this sweep; axes: x1, x2"),
    ],
)
def test_report_bad_input_is_one_line(run, tmp_path, capsys, damage, argv, words):
    d = tmp_path / "run"
    shutil.copytree(run.run_dir, d)
    (d / "report.html").unlink()
    if damage == "cells":  # one count changed: the checks (or the sha256) catch it
        rows = list(csv.reader(io.StringIO((d / "cells.csv").read_text())))
        col = rows[0].index("n_converged")
        rows[1][col] = str(int(rows[1][col]) + 1)
        (d / "cells.csv").write_text("".join(",".join(r) + "\n" for r in rows))
    elif damage == "meta":
        (d / "meta.json").write_bytes((d / "meta.json").read_bytes()[:-20])
    before = snapshot(d)
    assert cli.main(["report", str(d), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert snapshot(d) == before  # nothing written


def test_without_bokeh_the_report_is_one_line_and_the_sweep_goes_on(
    run, tmp_path, capsys, monkeypatch
):
    d = tmp_path / "run"
    shutil.copytree(run.run_dir, d)
    (d / "report.html").unlink()
    before = snapshot(d)
    monkeypatch.setitem(sys.modules, "bokeh", None)  # as if not installed: import fails
    assert cli.main(["report", str(d)]) == 2
    err = capsys.readouterr().err
    assert err == "jaxlab: error: report: the HTML report needs bokeh, not installed: " + (
        "pip install 'jaxlab[report]'\n"
    )
    assert report.after_sweep(load_run(d), {}) is None
    assert "report.html not written" in capsys.readouterr().err
    assert snapshot(d) == before


def test_facets_and_empty_cells(tmp_path):
    """A static axis not mapped: one panel per value in each map; a cell without runs draws
    (grey). Made-up counts: nothing computed."""
    cfg = SweepConfig(n_runs=10).with_settings(
        lr=[0.5, 1.0, 2.0], scale=[0.5, 1.0], optimizer=["gd", "adam"]
    )
    cfg = cfg.validate()
    agg = A.Aggregates.zeros(cfg.n_cells, 100)
    agg.n_runs[:] = [10, 10, 0, 10, 10, 10] * 2
    agg.n_success[:] = [0, 3, 0, 10, 7, 1] * 2
    agg.status[:, 0] = agg.n_runs
    agg.steps_hist[:, 5] = agg.n_runs
    agg.loss_hist[:, 100] = agg.n_runs
    (tmp_path / "config.toml").write_text(to_toml(cfg))
    res = SweepResult(cfg, cells_table(cfg, agg), None, {"config_hash": "abc"}, tmp_path)
    text = report.report_html(res)
    assert text.count("data-root-id") == 2 * 2  # success and steps, a panel per optimizer
    assert "optimizer gd" in text and "optimizer adam" in text
    assert "optimizer=adam, lr=1, scale=0.5" in text  # a hover's settings, in grid order
    assert report.NAN_GREY in text  # the empty cell


def test_too_many_panels_still_gives_a_report(tmp_path):
    """Past MAX_PANELS the maps are left out, saying why (as the PNGs are skipped); the rest
    of the report is there."""
    cfg = SweepConfig(n_runs=4).with_settings(
        lr=[1.0, 2.0], scale=[1.0, 2.0], dataset=["lab", "xor"],
        optimizer=["gd", "momentum", "adam"], max_steps=[10, 20, 30, 40, 50],
    )  # fmt: skip
    cfg = cfg.validate()
    agg = A.Aggregates.zeros(cfg.n_cells, 50)
    agg.n_runs[:] = 4
    agg.status[:, 0] = 4
    agg.steps_hist[:, 1] = 4
    agg.loss_hist[:, 100] = 4
    (tmp_path / "config.toml").write_text(to_toml(cfg))
    res = SweepResult(cfg, cells_table(cfg, agg), None, {}, tmp_path)
    text = report.report_html(res)
    assert "Maps not drawn: facet: 30 panels (2 dataset x 3 optimizer x 5 max_steps)" in text
    assert html.escape(to_toml(cfg)) in text


# --- in a real browser -------------------------------------------------------------------------
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
TOOLTIP_JS = """
const out = [];
function walk(node) {
  if (node.shadowRoot) walk(node.shadowRoot);
  for (const c of node.children || []) walk(c);
  const cls = (node.className && node.className.toString()) || "";
  if (/tooltip/i.test(cls) && node.textContent.trim()) out.push(node.textContent);
}
walk(document.body);
return out.join("\\n");
"""
RENDERED_JS = """
let n = 0;
function walk(node) {
  if (node.tagName === "CANVAS" && node.width > 0) n++;
  if (node.shadowRoot) walk(node.shadowRoot);
  for (const c of node.children || []) walk(c);
}
walk(document.body);
return n;
"""


@pytest.fixture
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "chromium and chromedriver not installed (apt-get install chromium chromium-driver; "
            ".ci/run installs them)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(a)
    opts.add_argument("--window-size=1300,1000")
    opts.add_argument("--force-device-scale-factor=1")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The system's driver, given by path: selenium-manager is never asked for one.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(fn, seconds=20.0):
    end = time.monotonic() + seconds
    while True:
        value = fn()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.1)


def pixels_near(img, rgb, tol=4):
    return int(np.sum(np.all(np.abs(img - np.asarray(rgb)) <= tol, axis=-1)))


@pytest.fixture
def shown(run):
    """The run the browser test opens: the module's, or the finished run directory named by
    JAXLAB_REPORT_RUN (the README's screenshot is of the default sweep)."""
    other = os.environ.get("JAXLAB_REPORT_RUN")
    return load_run(other) if other else run


def test_report_in_a_headless_browser(shown, browser):
    from PIL import Image
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    d = shown.run_dir
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    browser.get((d / "report.html").as_uri())
    assert wait_for(lambda: browser.execute_script(RENDERED_JS) >= 2), "the maps did not render"
    time.sleep(0.5)
    logs = browser.get_log("browser")
    assert not [e for e in logs if e["level"] == "SEVERE"], logs
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert all(u.startswith("data:") for u in fetched), fetched  # nothing from a network
    shot = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB"))
    img = shot.astype(int)

    # Every cell's colour of the success map (matplotlib's viridis, as the PNGs) is on screen.
    cells = load_run(d).cells  # as cells.csv has them
    for rate in np.unique(cells["success_rate"]):
        rgb = np.round(np.asarray(colormaps["viridis"](rate)[:3]) * 255)
        assert pixels_near(img, rgb) > 300, (rate, rgb)
    # The best cell's red box: hover its centre, the tooltip shows that cell's numbers.
    red = (img[..., 0] > 220) & (img[..., 1] < 40) & (img[..., 2] < 40)
    ys, xs = np.nonzero(red)
    assert len(xs) > 100, "no red box around the best cell"
    cx, cy = int((xs.min() + xs.max()) / 2), int((ys.min() + ys.max()) / 2)
    actions = ActionBuilder(browser)
    actions.pointer_action.move_to_location(cx - 3, cy - 3)
    actions.pointer_action.move_to_location(cx, cy)
    actions.perform()
    tip = wait_for(lambda: browser.execute_script(TOOLTIP_JS), 10.0)
    b = A.best_index(cells["success_rate"], cells["ci_low"])
    c = {k: v[b] for k, v in cells.items()}
    want = [
        ", ".join(f"{a.name}={format_value(c[a.name])}" for a in shown.config.axes),
        f"{format_rate(c['success_rate'])} [{format_rate(c['ci_low'])}, "
        f"{format_rate(c['ci_high'])}] ({c['n_success']} of {c['n_runs']})",
        ", ".join(f"{s} {c['n_' + s]}" for s in STATUSES),
    ]
    for w in want:
        assert w in tip, (w, tip)
    out = os.environ.get("JAXLAB_REPORT_SCREENSHOT")  # the README's picture
    if out:
        browser.save_screenshot(out)
