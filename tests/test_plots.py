"""Figures: each is a valid PNG, odd tables (empty cells, one cell, many axes) draw, and
``jaxlab plot`` redraws from the run directory without recomputing (more in test_figures.py)."""

import numpy as np
import pytest

from jaxlab import aggregate as A
from jaxlab import plots
from jaxlab.config import SweepConfig
from jaxlab.errors import ConfigError
from jaxlab.facets import facet_tables
from jaxlab.problems import network_figures, objective_figures
from jaxlab.sweep import SweepResult, run_sweep

PNG = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_kb=10):
    data = path.read_bytes()
    assert data[:8] == PNG, path
    assert len(data) > min_kb * 1024, (path, len(data))


@pytest.fixture(scope="module")
def net_run(tmp_path_factory):
    cfg = SweepConfig(n_runs=50, keep_runs=True).with_settings(
        lr={"log": [0.3, 3.0, 4]}, scale=[0.5, 1.0, 2.0]
    )
    return run_sweep(cfg, tmp_path_factory.mktemp("net") / "run", figures=True, progress=False)


@pytest.fixture(scope="module")
def obj_run(tmp_path_factory):
    cfg = SweepConfig(problem="objective", n_runs=1, keep_runs=True, threshold=1e-3)
    cfg = cfg.with_settings(
        objective="himmelblau",
        lr=[0.001, 0.01, 0.02],
        x1={"lin": [-5, 5, 21]},
        x2={"lin": [-5, 5, 21]},
        max_steps=500,
    )
    return run_sweep(cfg, tmp_path_factory.mktemp("obj") / "run", figures=True, progress=False)


def fake(cfg, n, k, steps=None):
    """A SweepResult with a made-up cells table (no computation)."""
    n = np.asarray(n, np.int64)
    k = np.asarray(k, np.int64)
    lo, hi = A.wilson(k, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    steps = np.where(n > 0, 50.0, np.nan) if steps is None else steps
    cells = {"n_runs": n, "n_success": k, "success_rate": rate, "ci_low": lo, "ci_high": hi}
    cells["median_steps"] = np.asarray(steps, np.float64)
    return SweepResult(cfg, cells)


def test_sweep_draws_network_figures(net_run):
    d = net_run.run_dir
    assert net_run.meta["figures"] == ["success_rate.png", "steps.png", "boundaries.png"]
    for name in net_run.meta["figures"]:
        assert_png(d / name)
    assert (d / "boundaries.npz").is_file()
    assert not list(d.glob(".tmp-*"))


def test_sweep_draws_objective_figures(obj_run):
    assert obj_run.meta["figures"] == ["success_rate.png", "steps.png", "basins.png"]
    for name in obj_run.meta["figures"]:
        assert_png(obj_run.run_dir / name)


def test_main_plot_redraws_without_recomputing(net_run, monkeypatch, capsys):
    import jaxlab.engine

    def boom(*a, **k):
        raise AssertionError("jaxlab plot must not rerun the sweep")

    monkeypatch.setattr(jaxlab.engine, "run_chunks", boom)
    monkeypatch.setattr("jaxlab.sweep.run_chunks", boom)
    monkeypatch.setattr(jaxlab.engine, "replay_many", boom)  # boundaries come from the file
    d = net_run.run_dir
    for name in ("success_rate.png", "steps.png", "boundaries.png"):
        (d / name).unlink()
    assert plots.main_plot(d) == 0
    out = capsys.readouterr().out
    for name in ("success_rate.png", "steps.png", "boundaries.png"):
        assert_png(d / name)
        assert name in out


def test_main_plot_rejects_a_non_run_dir(tmp_path):
    with pytest.raises(ConfigError, match="not a finished jaxlab run directory"):
        plots.main_plot(tmp_path)


def test_one_axis_draws_a_line(tmp_path):
    cfg = SweepConfig(n_runs=20).with_settings(lr={"log": [0.1, 10, 5]}, scale=1.0)
    res = fake(cfg, [20, 20, 0, 20, 20], [0, 3, 0, 12, 20])
    fig = plots.success_heatmap(res, tmp_path / "s.png")
    assert fig.axes and fig.axes[0].lines  # the figure drawn, returned
    assert_png(tmp_path / "s.png")
    plots.steps_heatmap(res, tmp_path / "t.png")
    assert_png(tmp_path / "t.png")


def test_three_axes_facet_the_third_and_pool_only_when_asked(tmp_path):
    cfg = SweepConfig(n_runs=10).with_settings(
        optimizer=["gd", "adam"], lr={"log": [0.1, 10, 3]}, scale=[0.5, 1.0]
    )
    rng = np.random.default_rng(0)
    n = np.full(cfg.n_cells, 10)
    k = rng.integers(0, 11, cfg.n_cells)
    res = fake(cfg, n, k)
    f = facet_tables(res)  # optimizer is the first (slowest) grid axis: a panel per half
    assert [p.where for p in f.panels] == [(("optimizer", "gd"),), (("optimizer", "adam"),)]
    assert np.array_equal(f.panels[0].k, k[:6].reshape(3, 2))
    assert np.array_equal(f.panels[1].k, k[6:].reshape(3, 2))
    pooled = facet_tables(res, x="lr", y="scale", facet=()).panels[0]
    assert pooled.n.shape == (3, 2) and np.all(pooled.n == 20)
    assert np.array_equal(pooled.k, (k[:6] + k[6:]).reshape(3, 2))
    plots.success_heatmap(res, tmp_path / "s.png")
    plots.steps_heatmap(res, tmp_path / "t.png", x="scale", y="optimizer")
    assert_png(tmp_path / "s.png")
    assert_png(tmp_path / "t.png")
    with pytest.raises(ConfigError, match="not an axis"):
        plots.success_heatmap(res, tmp_path / "u.png", x="momentum")


@pytest.mark.parametrize("case", ["all_empty", "some_empty", "single_cell", "all_zero"])
def test_odd_tables_do_not_crash(tmp_path, case):
    cfg = SweepConfig(n_runs=5).with_settings(lr=[0.5, 1.0, 2.0], scale=[1.0, 2.0])
    if case == "all_empty":
        res = fake(cfg, np.zeros(6), np.zeros(6))
    elif case == "some_empty":
        res = fake(cfg, [5, 0, 5, 0, 5, 5], [5, 0, 1, 0, 0, 5])
    elif case == "all_zero":
        res = fake(cfg, np.full(6, 5), np.zeros(6))
    else:
        res = fake(SweepConfig(n_runs=5).with_settings(lr=1.0, scale=1.0), [5], [2])
    plots.success_heatmap(res, tmp_path / "s.png")
    plots.steps_heatmap(res, tmp_path / "t.png")
    assert_png(tmp_path / "s.png")
    assert_png(tmp_path / "t.png")


def test_boundaries_replay_when_runs_were_not_kept(tmp_path):
    cfg = SweepConfig(n_runs=4).with_settings(lr=[1.0, 3.0], scale=1.0)
    res = fake(cfg, [4, 4], [1, 2])
    network_figures.boundary_atlas(res, tmp_path / "b.png", cells=[{"lr": 3.0}], k=1)
    assert_png(tmp_path / "b.png")


def test_figures_check_the_problem(net_run, obj_run, tmp_path):
    with pytest.raises(ConfigError, match="network sweeps only"):
        network_figures.boundary_atlas(obj_run, tmp_path / "b.png")
    with pytest.raises(ConfigError, match="objective sweeps only"):
        objective_figures.basin_map(net_run, tmp_path / "b.png")


def test_quadratic_preset_draws_its_basins(tmp_path):
    """The built-in Exercise 1 sweep: 19 learning rates, more than the basin map's panels."""
    from jaxlab.presets import preset

    res = run_sweep(preset("quadratic"), tmp_path / "run", progress=False)
    assert "basins.png" in res.meta["figures"] and "success_rate.png" in res.meta["figures"]
    assert_png(tmp_path / "run" / "basins.png", min_kb=20_000 / 1024)
