"""The Optuna ask-and-tell driver (jaxlab.search) with the real optuna: a batch of trials in
one compiled call, nothing recompiled after the first batch, each trial told its cell's rate;
the example experiments/optuna_search.py run small."""

import runpy
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from jaxlab import engine
from jaxlab.config import SweepConfig
from jaxlab.errors import ConfigError
from jaxlab.search import optimize

BASE = SweepConfig(n_runs=16, max_steps=20)
SPACE = {
    "lr": (0.1, 10.0, "log"),
    "scale": optuna.distributions.FloatDistribution(0.25, 4, log=True),
}


def _study():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=4)
    return optuna.create_study(direction="maximize", sampler=sampler)


def test_optimize_compiles_once_and_tells_the_cells_rates(monkeypatch, capsys):
    # The example first (in this process, so its program is the one the calls below reuse)
    script = Path(__file__).resolve().parents[1] / "experiments" / "optuna_search.py"
    args = ["--batches", "2", "--batch-size", "4", "--n-runs", "16", "--max-steps", "20"]
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    runpy.run_path(str(script), run_name="__main__")
    assert "8 trials in 2 compiled batches" in capsys.readouterr().out
    study = _study()
    first = optimize(study, BASE, SPACE, n_batches=1, batch_size=4)
    compiles = engine.COMPILE_STATS["compiles"]
    later = optimize(study, BASE, SPACE, n_batches=2, batch_size=4)
    assert engine.COMPILE_STATS["compiles"] == compiles  # TPE's batches reuse the program
    told = [t.value for t in study.trials]
    rates = np.concatenate([r.cells["success_rate"] for r in first + later])
    assert len(told) == 12 and told == rates.tolist()
    lrs = np.concatenate([r.cells["lr"] for r in first + later])
    assert np.allclose(lrs, [t.params["lr"] for t in study.trials], rtol=1e-12)
    assert len({round(x, 9) for x in lrs}) == 12  # every trial its own point


def test_optimize_bad_input():
    with pytest.raises(ConfigError, match="optimizer: static"):
        optimize(_study(), BASE, {"optimizer": (0, 1)}, 1, 2)
    with pytest.raises(
        ConfigError, match="objective: not a cells column .did you mean 'success_rate'"
    ):
        optimize(_study(), BASE, SPACE, 1, 2, objective="succes_rate")
    with pytest.raises(ConfigError, match="scale: 9 values, but a sweep over points"):
        optimize(_study(), BASE, {"lr": (0.1, 1)}, 1, 2)
