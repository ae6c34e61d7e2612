"""Smoke tests: each lab exercise script runs with no arguments but ``--out`` and prints what
the lab prints."""

import subprocess
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def run(script, cwd, *args):
    proc = subprocess.run(
        [sys.executable, str(EXPERIMENTS / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_ex1(tmp_path):
    out = run("ex1_gradient_descent.py", tmp_path, "--out", str(tmp_path))
    assert "[6, 6] - (1/2) * [-6, 6] = [9, 3]" in out
    assert "[9, 3] - (1/3) * [3, -3] = [8, 4]" in out
    assert "[8, 4] - (1/4) * [0, 0] = [8, 4]" in out
    assert "## [1] 7.943505 4.056495" in out
    assert (tmp_path / "trajectory.png").stat().st_size > 10_000


@pytest.mark.slow
def test_ex2(tmp_path):
    out = run("ex2_chain_rule.py", tmp_path, "--out", str(tmp_path))
    for q in ("Q1 ", "Q7 dL/dc", "Q8 dL/du1", "Q14 dL/db2", "Q15 dL/dw12", "Q16 dL/dx1"):
        assert q in out
    assert "WRONG" not in out
    assert '"Gradients are correct!"' in out


@pytest.mark.slow
def test_ex3(tmp_path):
    out = run("ex3_train_network.py", tmp_path, "--out", str(tmp_path))
    lines = [line for line in out.splitlines() if line.startswith("Loss ")]
    assert len(lines) == 10
    for line in lines:
        loss = float(line.split()[1])
        assert (line.rstrip().endswith("*")) == (loss < 0.1)
    for png in ("best_boundary.png", "random_scale5_boundary.png"):
        assert (tmp_path / png).stat().st_size > 10_000


@pytest.mark.slow
def test_float64_ablation_runs(tmp_path):
    """The benchmark script behind PERFORMANCE.md items 12, 13, 15, 17 still runs (tiny sizes)."""
    args = ["--per-device", "256", "--devices", "1", "--repeats", "1", "--steps", "3"]
    out = run("float64_ablation.py", tmp_path, *args)
    lines = [line for line in out.splitlines() if "restart-steps/s" in line]
    assert [line.split(",")[0] for line in lines] == [
        "float32",
        "float64",
        "float64 tanh=xla",
        "float64 tanh=xla sigmoid=xla",
        "float64 log=xla",
        "float64 draw=float64",
        "float64 draw=float64 log=xla",
    ]


@pytest.mark.slow
def test_bandwidth_runs(tmp_path):
    """The traffic measurement behind PERFORMANCE.md's float64 section (tiny sizes): one row per
    dtype, float64 reading and writing twice float32's bytes per restart-step, give or take the
    int32 status and counters and one kernel (float32's value tail fuses into one kernel less
    than float64's: 42 and 43)."""
    args = ["--per-device", "256", "--repeats", "1", "--steps", "3"]
    out = run("bandwidth.py", tmp_path, *args)
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert set(rows) == {"float32", "float64"}
    r32, r64 = (float(rows[d][2]) for d in ("float32", "float64"))
    assert abs(int(rows["float32"][1]) - int(rows["float64"][1])) <= 1, rows
    assert 1.7 < r64 / r32 <= 2.1, (r64, r32)
