"""The examples of ``experiments/`` run as the README says: each TOML through the CLI in a fresh
process with JAX's default settings, the moons module from Python, and every example's
gradients agree with finite differences (``jaxlab.testing.check_problem``). Tiny sizes: these
test the user's path, not the results."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import jaxlab
from jaxlab.testing import check_problem

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "experiments"


def load(name: str):
    """``experiments/NAME/NAME.py`` as the module ``NAME`` (what a TOML's ``NAME:attr``
    imports)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / name / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def sweep(env, tmp_path, name: str, *args):
    """``jaxlab sweep --config experiments/NAME/NAME.toml ARGS`` in a subprocess; its run
    directory."""
    out = tmp_path / name
    toml = EXAMPLES / name / f"{name}.toml"
    cmd = [sys.executable, "-m", "jaxlab", "sweep", "--config", str(toml), "--out", str(out)]
    cmd += ["--no-figures", "--quiet", *args]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    return out


def test_regression_cli_success_rule_and_metrics(env, tmp_path):
    reg = load("regression")
    out = sweep(
        env, tmp_path, "regression", "--n-runs", "16", "--max-steps", "300", "--keep-runs",
        "--set", "width=4", "--set", "lr=0.03,0.3", "--set", "scale=1,4",
    )  # fmt: skip
    cells = pd.read_csv(out / "cells.csv")
    runs = pd.read_parquet(out / "runs")  # the per-run records: one Parquet dataset
    assert len(cells) == 4 and (cells["n_runs"] == 16).all() and len(runs) == 64
    for name in ("r2", "within"):
        for agg in ("mean", "min", "max"):
            assert f"{agg}_{name}" in cells.columns
        by_cell = runs.groupby("cell")[name]
        np.testing.assert_array_equal(cells[f"min_{name}"], by_cell.min())
        np.testing.assert_array_equal(cells[f"max_{name}"], by_cell.max())
        np.testing.assert_allclose(cells[f"mean_{name}"], by_cell.mean(), rtol=1e-6)

    # The custom rule, recomputed from the per-run records as the device computed it (float32):
    # MSE below frac * var(y) (frac = 0.1 from the TOML) and 90% of points within 0.2.
    frac = np.float32(0.1) * np.float32(reg.VAR)
    rule = (
        (runs["status_name"] != "diverged")
        & (runs["final_loss"].astype(np.float32) < frac)
        & (runs["within"] >= reg.MIN_WITHIN)
    )
    np.testing.assert_array_equal(runs["success"].astype(bool), rule)
    np.testing.assert_array_equal(cells["n_success"], rule.groupby(runs["cell"]).sum())
    assert 0 < rule.sum() < len(runs)  # the rule decides: some runs pass, some fail


def test_equinox_cli(env, tmp_path):
    pytest.importorskip("equinox")
    out = sweep(
        env, tmp_path, "equinox_mlp", "--n-runs", "8", "--max-steps", "50",
        "--set", "width=4", "--set", "lr=0.1", "--set", "scale=1,2",
    )  # fmt: skip
    cells = pd.read_csv(out / "cells.csv")
    assert list(cells["scale"]) == [1.0, 2.0] and (cells["n_runs"] == 8).all()
    assert ((cells["mean_accuracy"] > 0) & (cells["max_accuracy"] <= 1)).all()


def test_moons_from_python():
    moons = load("moons")
    cfg = jaxlab.SweepConfig(
        problem=moons.moons, optimizer="adam", max_steps=50, n_runs=16, threshold=0.05
    ).with_settings(lr=[0.01, 0.1], width=[4])
    res = jaxlab.run_sweep(cfg, None, progress=False, figures=False)
    df = res.to_pandas()
    assert len(df) == 2 and (df["n_runs"] == 16).all()
    assert df["median_final_loss"].iloc[1] < df["median_final_loss"].iloc[0]  # lr 0.1 fits faster


@pytest.mark.parametrize(
    "name, attr",
    [("moons", "moons"), ("regression", "regression"), ("equinox_mlp", "problem")],
)
def test_gradients(name, attr):
    if name == "equinox_mlp":
        pytest.importorskip("equinox")
    problem = getattr(load(name), attr)
    report = check_problem(problem, {"width": 4}, n=8)
    assert report.ok and report.n_used == 8, str(report)


def test_jaxlab_never_imports_equinox():
    """equinox is an optional extra for the example only."""
    for path in (ROOT / "jaxlab").rglob("*.py"):
        text = path.read_text()
        assert "import equinox" not in text and "from equinox" not in text, path


def test_gradcheck_config(capsys):
    """``jaxlab gradcheck --config``: the config's problem at each of its static settings."""
    from jaxlab.gradcheck import main

    assert main(["--config", str(EXAMPLES / "regression" / "regression.toml"), "--n", "4"]) == 0
    out = capsys.readouterr().out
    assert "problem regression width=4 " in out and "problem regression width=16 " in out
    assert out.rstrip().endswith("2/2 checks passed - PASS")
