"""--log mlflow: a sweep logged as one MLflow run in a real local file store, read back with
the MLflow client; a tracker that is unknown or not installed is refused before anything runs."""

import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from jaxlab import cli, trackers
from jaxlab.sweep import load_run


def test_cli_log_mlflow_one_run_with_config_rates_and_artifacts(tmp_path, env, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for sqlite otherwise
    store = tmp_path / "mlruns"
    env = {**env, "MLFLOW_TRACKING_URI": f"file:{store}", "MLFLOW_ALLOW_FILE_STORE": "true"}
    env["MLFLOW_EXPERIMENT_NAME"] = "jaxlab-test"
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "jaxlab", "sweep", "--lr", "0.5,1", "--scale", "1"]
    cmd += ["--n-runs", "8", "--max-steps", "20", "--out", str(out), "--log", "mlflow", "--quiet"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    client = mlflow.MlflowClient(f"file:{store}")
    exp = client.get_experiment_by_name("jaxlab-test")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1  # one tracker run for the sweep's 16 restarts
    run, res = runs[0], load_run(out)
    c = res.cells
    assert run.data.params["lr"] == "[0.5, 1.0]" and run.data.params["n_runs"] == "8"
    best = int(np.lexsort((-c["ci_low"], -c["success_rate"]))[0])
    assert run.data.params["best.lr"] == str(c["lr"][best])
    m = run.data.metrics
    assert m["best_success_rate"] == c["success_rate"][best]
    assert m["overall_success_rate"] == c["n_success"].sum() / 16 and m["total_runs"] == 16
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"cells.csv", "config.toml", "meta.json", "success_rate.png"} <= names
    local = client.download_artifacts(run.info.run_id, "cells.csv", str(tmp_path))
    assert Path(local).read_text() == (out / "cells.csv").read_text()


@pytest.mark.parametrize(
    "name, match",
    [
        ("mlfow", "log: unknown value 'mlfow' .did you mean 'mlflow'"),
        ("not_a_tracker_pkg", "log: not_a_tracker_pkg is not installed; install it with"),
    ],
)
def test_bad_tracker_exit_2_nothing_written(tmp_path, capsys, monkeypatch, name, match):
    # a tracker jaxlab knew but whose package is missing: find_spec finds nothing
    monkeypatch.setattr(trackers, "TRACKERS", (*trackers.TRACKERS, "not_a_tracker_pkg"))
    out = tmp_path / "run"
    assert cli.main(["sweep", "--n-runs", "4", "--out", str(out), "--log", name]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match.replace(".", "") in err[0].replace("(", "").replace(")", "")
    assert not out.exists()
