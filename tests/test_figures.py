"""What the figures show is what the sweep found (issue 10, items 4, 8 and 12):
``jaxlab plot`` reads files only (decision boundaries stored at sweep time, nothing compiled or
trained), no axis is pooled silently (one panel per value of every unmapped axis, each with its
own best cell), titles name the problem, and no non-zero bound prints as 0."""

import contextlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxlab.engine
import jaxlab.loop
from jaxlab import aggregate as A
from jaxlab import boundaries, cli, plots
from jaxlab.config import SweepConfig
from jaxlab.errors import ConfigError
from jaxlab.facets import TooManyPanels, facet_tables
from jaxlab.problems import network_figures
from jaxlab.sweep import SweepResult, load_run

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
ARGS = ["--optimizer", "gd,adam", "--lr", "0.3,1,3", "--scale", "0.5,2", "--n-runs", "40"]


def fake(cfg, n, k):
    """A SweepResult with a made-up cells table (no computation)."""
    n, k = np.asarray(n, np.int64), np.asarray(k, np.int64)
    rate, lo, hi = A.rate_ci(k, n)
    cells = {"n_runs": n, "n_success": k, "success_rate": rate, "ci_low": lo, "ci_high": hi}
    cells["median_steps"] = np.where(n > 0, 50.0, np.nan)
    return SweepResult(cfg, cells)


def _cli(*argv, env, timeout=300):
    e = {**env, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "jaxlab", *map(str, argv)]
    return subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def static_run(tmp_path_factory, env):
    """gd vs adam over lr x scale: a static axis. Run by the CLI, as a user would, with
    --no-figures: the decision boundaries must be stored all the same."""
    out = tmp_path_factory.mktemp("static") / "run"
    r = _cli("sweep", "--out", out, *ARGS, "--devices", "2", "--no-figures", "--quiet", env=env)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture
def run_copy(static_run, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(static_run, d)
    return d


@contextlib.contextmanager
def nothing_compiled_or_trained(monkeypatch):
    """Fail if anything is traced or compiled (JAX's own compile events, also persistent-cache
    hits) or any training entry point is called inside the block."""
    from jax import monitoring

    events = []

    def listen(event, duration, **kw):
        if event.startswith(("/jax/core/compile/", "/jax/compilation_cache/")):
            events.append(event)

    def boom(*a, **k):
        raise AssertionError("jaxlab plot must not replay or train restarts")

    for mod, name in [
        (jaxlab.engine, "replay_many"), (jaxlab.engine, "replay"), (jaxlab.engine, "train_one"),
        (jaxlab.engine, "run_chunks"), (jaxlab.loop, "train_one"), (boundaries, "compute"),
    ]:  # fmt: skip
        monkeypatch.setattr(mod, name, boom)
    monitoring.register_event_duration_secs_listener(listen)
    try:
        yield events
        assert events == [], events
        # The listener does see compiles: a fresh function, compiled here, is reported.
        import jax
        import jax.numpy as jnp

        jax.jit(lambda v: v * 3 + 1)(jnp.arange(7.0)).block_until_ready()
        assert events
    finally:
        monitoring.unregister_event_duration_listener(listen)


# --- item 4: `jaxlab plot` reads files only ---------------------------------------------------
def test_sweep_without_figures_stores_the_boundaries(static_run):
    assert not list(static_run.glob("*.png"))
    res = load_run(static_run)
    data = boundaries.load(static_run, res.config)
    assert data is not None and data.k == 3
    assert data.cells.tolist() == boundaries.default_cells(res)
    assert data.prob.shape == (len(data.run), 101, 101) and data.prob.dtype == np.float32
    assert np.all((data.prob >= 0) & (data.prob <= 1))
    assert set(data.dataset.tolist()) == {"lab"}
    for c in data.cells:
        # n_runs = 40 < 64: every restart of the cell was replayed and classified, so the
        # successes and failures found are exactly the counts the sweep recorded (capped at k).
        n, k = int(res.cells["n_runs"][c]), int(res.cells["n_success"][c])
        mine = data.cell == c
        assert int(np.sum(mine & data.success)) == min(3, k)
        assert int(np.sum(mine & ~data.success)) == min(3, n - k)
        assert np.all(data.run[mine] // 40 == c)
    ok = (data.loss < res.config.threshold) & (data.status != jaxlab.Status.DIVERGED)
    assert np.array_equal(ok, data.success)


def test_plot_compiles_and_trains_nothing(run_copy, monkeypatch, capsys):
    with nothing_compiled_or_trained(monkeypatch):
        assert plots.main_plot(run_copy) == 0
    out, err = capsys.readouterr()
    for name in ("success_rate.png", "steps.png", "boundaries.png"):
        assert (run_copy / name).read_bytes()[:8] == PNG
        assert name in out
    assert err == ""


def test_plot_of_an_old_run_dir_says_how_to_get_the_atlas(run_copy, monkeypatch, capsys):
    (run_copy / "boundaries.npz").unlink()  # as a run directory from before it was stored
    with nothing_compiled_or_trained(monkeypatch):
        assert plots.main_plot(run_copy) == 0
    out, err = capsys.readouterr()
    assert not (run_copy / "boundaries.png").exists()
    assert (run_copy / "success_rate.png").exists() and "success_rate.png" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "boundaries.png not drawn" in lines[0] and "boundaries.npz" in lines[0]
    assert "b.store(" in lines[0] and f"jaxlab plot {run_copy}" in lines[0]


def test_boundaries_of_another_sweep_are_refused(run_copy, capsys):
    other = SweepConfig(n_runs=41).with_settings(lr=[0.3, 1.0, 3.0], scale=[0.5, 2.0])
    with pytest.raises(ConfigError, match="belongs to another sweep"):
        boundaries.load(run_copy, other)
    res = load_run(run_copy)
    boundaries.save(
        run_copy / "boundaries.npz",
        boundaries.load(run_copy, res.config)._replace(config_hash="0" * 16),
    )
    assert plots.draw_all(res) == ["success_rate.png", "steps.png"]
    assert "belongs to another sweep" in capsys.readouterr().err


def test_cli_plot_draws_the_stored_boundaries(run_copy, env):
    """The user's path with default JAX settings; JAX_LOG_COMPILES would log any compile."""
    r = _cli("plot", run_copy, env={**env, "JAX_LOG_COMPILES": "1"}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Compiling" not in r.stderr and "Finished tracing" not in r.stderr, r.stderr
    assert (run_copy / "boundaries.png").read_bytes()[:8] == PNG
    assert str(run_copy / "boundaries.png") in r.stdout


def test_atlas_from_python_uses_the_stored_restarts(run_copy, monkeypatch, tmp_path):
    res = load_run(run_copy)
    stored = boundaries.load(run_copy, res.config)
    first = int(stored.cells[0])
    with nothing_compiled_or_trained(monkeypatch):  # a stored cell, a smaller k: no replay
        network_figures.boundary_atlas(res, tmp_path / "b.png", cells=[first], k=2)
    assert (tmp_path / "b.png").read_bytes()[:8] == PNG
    monkeypatch.undo()
    # The stored subset is what a replay for that cell and k chooses, with the same outcomes.
    sub, again = stored.subset([first], 2), boundaries.compute(res, [first], 2)
    assert sub.cells.tolist() == again.cells.tolist() == [first]
    for name in ("run", "cell", "success", "status", "dataset"):
        assert np.array_equal(getattr(sub, name), getattr(again, name)), name
    np.testing.assert_allclose(sub.loss, again.loss, rtol=1e-5)
    np.testing.assert_allclose(sub.prob, again.prob, atol=1e-5)


# --- item 8: no axis pooled silently ----------------------------------------------------------
def test_static_axis_gives_a_panel_per_value_with_its_own_best(static_run):
    res = load_run(static_run)
    f = facet_tables(res)
    assert (f.x.name, f.y.name) == ("lr", "scale")
    assert [a.name for a in f.facet] == ["optimizer"] and f.pooled == ()
    df = res.to_pandas()
    assert [p.where for p in f.panels] == [(("optimizer", "gd"),), (("optimizer", "adam"),)]
    for p in f.panels:
        sub = df[df["optimizer"] == p.where[0][1]].reset_index(drop=True)
        assert np.all(p.n == 40)  # nothing pooled: each map cell is one cell of cells.csv
        for i, lr in enumerate(f.x.values):
            for j, scale in enumerate(f.y.values):
                row = sub[np.isclose(sub["lr"], lr) & np.isclose(sub["scale"], scale)]
                assert p.rate[i, j] == row["success_rate"].item()
        b = A.best_index(sub["success_rate"], sub["ci_low"])  # the per-optimizer best
        i, j = p.best
        assert p.rate[i, j] == sub["success_rate"][b]
        assert (f.x.values[i], f.y.values[j]) == (sub["lr"][b], sub["scale"][b])


def _texts(fig):
    """The suptitle and every text of a figure drawn (the figure functions return it)."""
    from matplotlib.text import Text

    return {"suptitle": fig.get_suptitle(), "texts": [t.get_text() for t in fig.findobj(Text)]}


def test_the_figure_shows_each_optimizers_best(static_run, monkeypatch, tmp_path):
    res = load_run(static_run)
    seen = [_texts(plots.success_heatmap(res, tmp_path / "s.png"))]
    texts = seen[0]["texts"]
    assert not any("pooled over" in t for t in texts)
    for p in facet_tables(res).panels:
        best = plots._rate_ci_text(*(getattr(p, c)[p.best] for c in ("rate", "lo", "hi")))
        title = [t for t in texts if t.startswith(f"optimizer {p.where[0][1]}\nbest")]
        assert len(title) == 1 and title[0].endswith(best), (title, best)
    title = " ".join(seen[0]["suptitle"].split())
    assert title.startswith("Success rate") and "network 2-2-1 on dataset lab, sweep 'lab'" in title


def test_pooling_and_lines_only_when_asked(static_run, monkeypatch, tmp_path):
    res = load_run(static_run)
    f = facet_tables(res, facet="none")
    assert [a.name for a in f.pooled] == ["optimizer"] and len(f.panels) == 1
    p = f.panels[0]
    assert np.all(p.n == 80)
    gd, adam = res.select(optimizer="gd"), res.select(optimizer="adam")
    assert np.array_equal(p.k.ravel(), np.asarray(gd.cells["n_success"]) + adam.cells["n_success"])
    seen = [_texts(plots.success_heatmap(res, tmp_path / "p.png", facet=()))]
    assert any("pooled over optimizer (gd, adam), as asked" in t for t in seen[0]["texts"])
    # x mapped, the other two faceted: a line per (optimizer, scale), each with its own best.
    f = facet_tables(res, x="lr", facet="optimizer,scale")
    assert f.y is None and len(f.panels) == 4 and all(p.rate.shape == (3,) for p in f.panels)
    plots.steps_heatmap(res, tmp_path / "l.png", x="lr", facet=["optimizer", "scale"])
    assert (tmp_path / "l.png").read_bytes()[:8] == PNG


def test_objective_sweep_is_titled_by_its_objective(monkeypatch, tmp_path):
    cfg = SweepConfig(problem="objective", n_runs=10).with_settings(
        objective="himmelblau", lr=[0.001, 0.01, 0.02], x1={"lin": [-5, 5, 3]}
    )
    seen = [
        _texts(plots.success_heatmap(fake(cfg, np.full(9, 10), np.arange(9)), tmp_path / "s.png")),
        _texts(plots.steps_heatmap(fake(cfg, np.full(9, 10), np.arange(9)), tmp_path / "t.png")),
    ]
    for s in seen:
        assert "objective himmelblau, sweep 'lab'" in " ".join(s["suptitle"].split()), s["suptitle"]


@pytest.mark.parametrize(
    "argv, text",
    [
        (["--x", "nope"], "x: 'nope' is not an axis of this sweep; axes: optimizer, lr, scale"),
        (["--y", "lr", "--x", "lr"], "y: x and y must be different axes"),
        (["--facet", "optimizer,momentum"], "facet: 'momentum' is not an axis of this sweep"),
        (["--x", "lr", "--facet", "lr"], "facet: 'lr' is mapped"),
        (["--facet", "scale,scale"], "facet: each axis at most once"),
    ],
)
def test_plot_bad_axis_names_exit_2_in_one_line(run_copy, capsys, argv, text):
    assert cli.main(["plot", str(run_copy), *argv]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and text in err, err
    assert not list(run_copy.glob("*.png"))  # nothing drawn


def test_plot_bad_axis_name_in_a_subprocess(static_run, env):
    r = _cli("plot", static_run, "--facet", "optimiser", env=env, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "jaxlab: error: facet: 'optimiser' is not an axis of this sweep; axes: optimizer, lr, scale"
    ), r.stderr
    assert "Traceback" not in r.stderr and not list(static_run.glob("*.png"))


def test_too_many_panels_is_refused_in_one_line(tmp_path, capsys):
    cfg = SweepConfig(n_runs=4).with_settings(
        lr=[1.0, 2.0],
        scale=[1.0, 2.0],
        dataset=["lab", "xor"],
        optimizer=["gd", "momentum", "adam"],
        max_steps=[10, 20, 30, 40, 50],
    )
    res = fake(cfg, np.full(cfg.n_cells, 4), np.arange(cfg.n_cells) % 5)
    panels = r"30 panels \(2 dataset x 3 optimizer x 5 max_steps\)"
    with pytest.raises(TooManyPanels, match=panels + ".*--facet"):
        plots.success_heatmap(res, tmp_path / "s.png")
    # Faceted by one of them, the others pooled (and the figure says so): drawn.
    f = facet_tables(res, facet="optimizer")
    assert len(f.panels) == 3 and [a.name for a in f.pooled] == ["dataset", "max_steps"]
    assert np.all(f.panels[0].n == 4 * 2 * 5)
    plots.success_heatmap(res, tmp_path / "s.png", facet="optimizer")
    # At the end of a sweep, a figure that cannot be drawn is skipped with a line, not raised.
    res.run_dir = tmp_path
    assert plots.draw_all(res) == []
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2  # the maps, and the boundaries that were never stored
    assert lines[0].startswith("jaxlab: success_rate.png and steps.png not drawn: facet: 30 panels")


# --- item 12: numbers as precise as they are ---------------------------------------------------
def test_format_rate_cases():
    lo0, hi0 = A.wilson(0, 1000)  # 0 successes of 1,000
    lo1, hi1 = A.wilson(1000, 1000)
    cases = {
        0.0: "0", 1.0: "1", float(lo0): "0", float(hi0): "0.0038", float(hi1): "1",
        float(lo1): "0.9962", 0.36: "0.36", 0.5: "0.50", 0.014: "0.014", 0.0949: "0.095",
        0.9995: "0.9995", 0.08: "0.08", 3.8e-6: "3.8e-06", 1 - 3.8e-6: "1 - 3.8e-06",
        float("nan"): "n/a",
    }  # fmt: skip
    for v, text in cases.items():
        assert plots.format_rate(v) == text, (v, plots.format_rate(v))


def _parse(text: str) -> float:
    return 1 - float(text[4:]) if text.startswith("1 - ") else float(text)


@given(st.floats(min_value=2e-12, max_value=1 - 2e-12))
def test_format_rate_never_rounds_to_an_end(v):
    text = plots.format_rate(v)
    got = _parse(text)
    assert 0 < got < 1, (v, text)
    assert abs(got - v) <= 0.05 * min(v, 1 - v) * (1 + 1e-9), (v, text)  # 2 significant digits


def test_heatmap_writes_zero_of_a_thousand_with_its_bound(monkeypatch, tmp_path):
    cfg = SweepConfig(n_runs=1000).with_settings(lr=[0.5, 1.0], scale=[1.0, 2.0])
    seen = [
        _texts(plots.success_heatmap(fake(cfg, [1000] * 4, [0, 1000, 360, 1]), tmp_path / "s.png"))
    ]
    texts = seen[0]["texts"]
    for t in ("0", "[0, 0.0038]", "1", "[0.9962, 1]", "0.36", "0.001", "[0.00018, 0.0056]"):
        assert t in texts, (t, texts)
    assert not any("0.00 " in t or t.startswith("[0.00,") or "0.00]" in t for t in texts)
