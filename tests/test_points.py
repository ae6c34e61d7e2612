"""Sweeps over an explicit list of points (jaxlab.points): the CLI, equality with the grid,
resume, load_run, select / cell, and one-line errors for bad points."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from jaxlab import engine
from jaxlab.config import SweepConfig, config_hash, from_dict, from_toml, to_toml
from jaxlab.errors import ConfigError
from jaxlab.sweep import SweepInterrupted, load_run, run_sweep

BASE = dict(n_runs=8, max_steps=20)


def _cfg(points, **kw):
    return SweepConfig(points=points, **{**BASE, **kw})


def test_cli_points_file(tmp_path, env):
    pts = tmp_path / "points.csv"
    pts.write_text("optimizer,lr,scale\ngd,0.5,1\ngd,0.1,0.5\ngd,1,2\n")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "jaxlab", "sweep", "--points", str(pts), "--n-runs", "8"]
    cmd += ["--max-steps", "20", "--out", str(out), "--quiet"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    res = load_run(out)
    assert list(res.cells)[:4] == ["point", "optimizer", "lr", "scale"]
    assert res.cells["optimizer"].tolist() == ["gd", "gd", "gd"]
    assert res.cells["lr"].tolist() == [0.5, 0.1, 1.0]
    assert res.cells["n_runs"].tolist() == [8, 8, 8]
    assert res.cell(lr=1.0)["point"] == 2 and res.cell(point=1)["scale"] == 0.5
    sel = res.select(lr=0.5)
    assert sel.config.points == (("optimizer", ("gd",)), ("scale", (1.0,)))
    assert sel.cells["point"].tolist() == [0]
    # config.toml alone reruns it: the points are written inline
    again = from_toml((out / "config.toml").read_text())
    assert again.points == res.config.points


def test_points_equal_the_grid_with_paired_keys():
    grid = SweepConfig(keys="paired", **BASE).with_settings(lr=[0.5, 2.0], scale=[0.5, 1.0])
    rows = [{"lr": lr, "scale": s} for s in (1.0, 0.5) for lr in (2.0, 0.5)]  # another order
    g = run_sweep(grid, progress=False, n_devices=1)
    p = run_sweep(_cfg(pd.DataFrame(rows), keys="paired"), progress=False, n_devices=1)
    for i, r in enumerate(rows):
        cell = g.cell(**r)
        for k in ("n_success", "n_converged", "median_steps", "median_final_loss"):
            assert p.cells[k][i] == cell[k], (r, k)


def test_points_two_static_combinations_resume_identical_hash_covers_points(tmp_path):
    # gd, adam, gd, adam: two programs (gd's shared with the test above), a chunk per point
    rows = [
        {"optimizer": o, "lr": 0.5 * (i + 1), "scale": 1.0}
        for i, o in enumerate(["gd", "adam"] * 2)
    ]
    cfg = _cfg(rows, chunk_size=32)
    plan = engine.make_plan(cfg)
    assert len(plan.combos) == 2 and [t.combo for t in plan.tasks] == [0, 1, 0, 1]
    whole = run_sweep(cfg, progress=False, n_devices=1)
    sel = whole.select(optimizer="adam")
    assert sel.config.points == (("lr", (1.0, 2.0)), ("scale", (1.0, 1.0)))
    assert sel.cells["point"].tolist() == [1, 3]
    out = tmp_path / "run"
    with pytest.raises(SweepInterrupted):
        run_sweep(cfg, out, progress=False, n_devices=1, figures=False, stop_after_chunks=2)
    resumed = run_sweep(None, out, resume=True, progress=False, n_devices=1, figures=False)
    for k in ("n_success", "n_converged", "median_final_loss"):
        assert np.array_equal(resumed.cells[k], whole.cells[k])
    moved = _cfg([{**rows[0], "lr": 0.25}, *rows[1:]], chunk_size=32)
    assert config_hash(moved) != config_hash(cfg)
    with pytest.raises(ConfigError, match="differs"):
        run_sweep(moved, out, resume=True)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty points file"),
        ("lr,scale\n", "no points: only a header"),
        ("lr,scale\n0.5,1\n1\n", "line 3 has 1 fields, the header 2"),
        ("lrr,scale\n0.5,1\n", "column 'lrr': unknown setting .did you mean 'lr'"),
        ("n_runs\n5\n", "column 'n_runs': a sweep option, not a setting"),
        ("lr\n-1\n", "point 0: lr: expected finite numbers > 0, got -1"),
        ("lr\nfast\n", "point 0: lr: expected finite numbers > 0"),
        ("lr,momentum\n1,1.5\n", "point 0: momentum: expected numbers in"),
        ("lr,optimizer\n1,adamm\n", "point 0: optimizer: unknown value 'adamm'"),
        ("lr,max_steps\n1,0\n", "point 0: max_steps: expected integers in"),
        ("lr,widths\n1,2-x-1\n", "point 0: widths: expected values like 2-2-1"),
    ],
)
def test_bad_points_file_one_line(tmp_path, text, match):
    (tmp_path / "p.csv").write_text(text)
    with pytest.raises(ConfigError, match=match) as e:
        from_dict({"points": "p.csv"}, path=str(tmp_path))
    assert str(e.value).startswith("p.csv: ") and "\n" not in str(e.value)


def test_bad_points_in_python():
    with pytest.raises(ConfigError, match="point 1 sets lr; point 0 sets lr, scale"):
        _cfg([{"lr": 1, "scale": 1}, {"lr": 2}])
    with pytest.raises(ConfigError, match="ragged columns"):
        _cfg({"lr": [1, 2], "scale": [1]})
    with pytest.raises(ConfigError, match="points: no points"):
        _cfg([])
    with pytest.raises(ConfigError, match="scale: 9 values, but a sweep over points"):
        _cfg([{"lr": 1}]).validate()
    with pytest.raises(ConfigError, match="lr: set by the sweep's points"):
        _cfg([{"lr": 1}]).with_settings(lr=2)
    with pytest.raises(ConfigError, match="lr: given both as a setting and in the points"):
        from_dict({"points": {"lr": [1.0]}, "lr": 2.0})


def test_points_round_trip_through_toml():
    cfg = _cfg(
        [{"widths": (2, 4, 1), "lr": 1.0, "scale": 0.5}, {"widths": [2, 2, 1], "lr": 2, "scale": 1}]
    )
    assert from_toml(to_toml(cfg)) == cfg
    assert cfg.n_cells == 2 and [a.name for a in cfg.axes] == ["widths", "lr", "scale"]


def test_cli_bad_points_exit_2_nothing_written(tmp_path, env):
    pts = tmp_path / "points.csv"
    pts.write_text("lr,scale\n0.5,1\n2\n")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "jaxlab", "sweep", "--points", str(pts), "--out", str(out)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        f"jaxlab: error: {pts}: line 3 has 1 fields, the header 2 (lr, scale)"
    ]
    assert not out.exists()


def test_to_xarray_of_points_is_one_point_dimension():
    """A point list is not a product grid: one `point` dimension, each setting a coordinate
    along it, each variable the cells column in point order."""
    pytest.importorskip("xarray")
    pts = [{"lr": 0.5, "scale": 1.0}, {"lr": 0.1, "scale": 0.5}, {"lr": 1.0, "scale": 2.0}]
    res = run_sweep(_cfg(pts), None, figures=False, progress=False)
    ds = res.to_xarray()
    assert list(ds.sizes) == ["point"] and ds.sizes["point"] == 3
    np.testing.assert_array_equal(ds["lr"].values, res.cells["lr"])
    np.testing.assert_array_equal(ds["scale"].values, res.cells["scale"])
    for col in ("n_success", "success_rate", "ci_low", "ci_high"):
        np.testing.assert_array_equal(ds[col].values, res.cells[col], err_msg=col)
