"""The paper's map (``experiments/fractal/``): its TOML sweeps through the CLI in a fresh
process with JAX's default settings, divergence is a counted outcome, the hand-written gradient
agrees three ways in float64, and ``map.py`` rasterises, box-counts and draws a finished run.
Tiny sizes: these test the user's path, not the paper's numbers."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FRACTAL = ROOT / "experiments" / "fractal"


def load_fractal():
    """``experiments/fractal/fractal.py`` as the module ``fractal`` (what the TOML imports)."""
    if "fractal" not in sys.modules:
        spec = importlib.util.spec_from_file_location("fractal", FRACTAL / "fractal.py")
        sys.modules["fractal"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["fractal"]


def load_map():
    """``experiments/fractal/map.py`` as a module."""
    spec = importlib.util.spec_from_file_location("fractal_map", FRACTAL / "map.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sweep_counts_divergence(env, tmp_path):
    out = tmp_path / "fractal"
    cmd = [
        sys.executable, "-m", "jaxlab", "sweep", "--config", str(FRACTAL / "fractal.toml"),
        "--out", str(out), "--no-figures", "--quiet", "--max-steps", "30",
        "--set", "lr0=0.01:1000:8:log", "--set", "lr1=0.1:3000:8:log",
    ]  # fmt: skip
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    cells = pd.read_csv(out / "cells.csv")
    assert len(cells) == 64 and (cells["n_runs"] == 1).all()
    # The notebook's rule: trainable iff the mean of the last 20 loss ratios is below 1; the
    # rest are counted as diverged (their NaN/inf losses count as a ratio of 1e6), none crashed.
    ok = cells["n_success"] == 1
    np.testing.assert_array_equal(ok, cells["mean_tail"] < 1)
    np.testing.assert_array_equal(~ok, cells["n_diverged"] == 1)
    assert 0 < ok.sum() < len(cells)
    assert (cells.loc[~ok, "mean_tail"] == 1e6).any()  # some overflowed, counted

    fig = tmp_path / "map.png"
    cmd = [sys.executable, str(FRACTAL / "map.py"), "--from", str(out), "--figure", str(fig)]
    cmd += ["--min-size", "1", "--max-size", "8", "--max-steps", "30"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "map: 8 x 8 pixels" in p.stdout and "box counting: D = " in p.stdout
    assert "cost: 64 trainings of 30 steps" in p.stdout and fig.stat().st_size > 0


def test_map_refine(env, tmp_path):
    """Without jaxlab's ``sweep --refine`` the script refuses in one line, exit 2, nothing
    written; with it (the refine branch merged) it passes the flag on and reports the refined
    map's trainings against the uniform grid's."""
    has_refine = load_map().has_refine()
    out, fig = tmp_path / "r", tmp_path / "r.png"
    cmd = [
        sys.executable,
        str(FRACTAL / "map.py"),
        "--refine",
        "1",
        "--res",
        "4",
        "--out",
        str(out),
    ]
    cmd += ["--max-steps", "30", "--lr0", "0.01", "1000", "--lr1", "0.1", "3000"]
    cmd += ["--min-size", "1", "--max-size", "8", "--figure", str(fig)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    if not has_refine:
        assert p.returncode == 2 and "needs jaxlab sweep --refine" in p.stderr, p.stderr
        assert not out.exists() and not fig.exists()
    else:
        assert p.returncode == 0, p.stderr
        assert "map: 8 x 8 pixels" in p.stdout and "against 64 for the uniform 8 x 8" in p.stdout


def test_gradcheck_three_ways(capsys):
    from jaxlab.gradcheck import main

    assert main(["--config", str(FRACTAL / "fractal.toml"), "--n", "4"]) == 0
    out = capsys.readouterr().out
    for pair in ("manual~autodiff", "manual~fd", "autodiff~fd"):
        assert pair in out
    assert out.rstrip().endswith("4/4 checks passed - PASS")


def test_paper_draws():
    """The notebook's key sequence (PRNGKey(0): weights, X, Y), float64, pinned."""
    d = load_fractal().paper_draws(16, 272)
    assert {k: v.shape for k, v in d.items()} == {
        "W0": (16, 16), "W1": (16, 1), "X": (272, 16), "Y": (272, 1)
    }  # fmt: skip
    assert d["W0"][0, 0] == -0.046975553888666456 and d["X"][0, 0] == 0.44320975123016443
    assert d["Y"][0, 0] == -0.3808255627057959


def test_refine_estimate():
    """The refinement a uniform map implies: a straight boundary is followed exactly (the
    refined map equals the uniform one) at the cost of the cells along it; an island smaller
    than a base cell, away from any split, is missed."""
    m = load_map()
    ok = np.zeros((64, 64), bool)
    ok[:, 21:] = True  # the boundary between columns 20 and 21
    total, per, seen = m.refine_estimate(ok, 8)
    np.testing.assert_array_equal(seen, ok)
    # 64 base cells; the 2 columns of 8 on either side split at each level, 4 children each
    np.testing.assert_array_equal(per, [64, 4 * 16, 4 * 32, 4 * 64])
    assert total == per.sum()
    ok[40, 40] = False  # one pixel inside a base cell far from the boundary
    assert m.refine_estimate(ok, 8)[2][40, 40]  # not seen: that base cell never split
