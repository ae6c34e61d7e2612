"""The remaining doors of the contract and the user-visible modes, each run the way a user runs
it: metrics summarised per cell as the per-run records give them, an optimiser given as a
function of the settings, the lower door ``train(s, key)``, and the CLI in a clean process for
each gradient method, loss, keys mode, problem kind and static axis, compared byte for byte
with the same config run in this (x64-on, 8-device) process."""

import subprocess
import sys
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest

import jaxlab
from jaxlab import Outcome, Problem, Status
from jaxlab.config import from_toml
from jaxlab.sweep import load_run, run_sweep, write_csv

X = jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float32)[:, None]  # float32 data, as a user makes it
Y = (X[:, 0] > 0.2).astype(jnp.float32)


def _init(key, s):
    return {"w": s["scale"] * jax.random.normal(key, (2,))}


def _loss(p, s):
    z = X[:, 0] * p["w"][0] + p["w"][1]
    return jnp.mean(jnp.logaddexp(0.0, -z * (2 * Y - 1)))


def _metrics(p, s):
    z = X[:, 0] * p["w"][0] + p["w"][1]
    return {"accuracy": jnp.mean((z > 0) == (Y > 0)), "bias": p["w"][1]}


logistic = Problem(
    init=_init, loss=_loss, metrics=_metrics, traced={"lr": 0.5, "scale": 1.0}, name="logistic"
)


def test_metrics_per_cell_agree_with_the_per_run_records():
    cfg = jaxlab.SweepConfig(problem=logistic, n_runs=40, max_steps=30, keep_runs=True)
    cfg = cfg.with_settings(scale=[0.1, 1.0, 10.0])
    res = run_sweep(cfg, None, n_devices=2, figures=False, progress=False)
    runs, cells = pd.DataFrame(res.runs), res.cells
    for i, g in runs.groupby("cell"):
        for m in ("accuracy", "bias"):
            v = np.sort(g[m].to_numpy())
            assert abs(cells[f"mean_{m}"][i] - v.mean()) <= 2**-20 * 2  # fixed point, 2**-20
            assert cells[f"min_{m}"][i] == v[0] and cells[f"max_{m}"][i] == v[-1]
            for q, name in ((0.1, "p10"), (0.5, "median"), (0.9, "p90")):
                assert cells[f"{name}_{m}"][i] == v[int(np.ceil(q * len(v))) - 1]
    # Without per-run records: mean, min and max, identical to the ones above.
    lean = run_sweep(replace(cfg, keep_runs=False), None, figures=False, progress=False)
    for k in ("mean_accuracy", "min_bias", "max_bias"):
        np.testing.assert_array_equal(lean.cells[k], cells[k])
    assert "median_accuracy" not in lean.cells


def test_an_optimiser_given_as_a_function_of_the_settings():
    """``optimizer = f(s) -> optax transformation``: traced settings drive it; optax.sgd(lr) is
    the lab's step, so it gives gd's bits exactly."""
    base = jaxlab.SweepConfig(problem=logistic, n_runs=30, max_steps=25, keep_runs=True)
    base = base.with_settings(lr=[0.1, 1.0])
    named = run_sweep(base, None, figures=False, progress=False)

    def sgd(s):
        return optax.sgd(s["lr"])

    fn = run_sweep(base.with_settings(optimizer=sgd), None, figures=False, progress=False)
    for k in ("final_loss", "steps", "status"):
        np.testing.assert_array_equal(fn.runs[k], named.runs[k])

    def clipped(s):  # a chain whose clip is a traced setting
        return optax.chain(optax.clip(s["momentum"]), optax.sgd(s["lr"]))

    res = run_sweep(base.with_settings(optimizer=clipped, momentum=0.01), None, figures=False)
    assert not np.array_equal(res.runs["final_loss"], named.runs["final_loss"])


def test_the_lower_door_train():
    """A problem that owns its whole loop: ``train(s, key) -> Outcome``; jaxlab batches it,
    counts its statuses and successes, and keeps its metrics."""

    def train(s, key):
        x0 = s["scale"] * jax.random.normal(key, ())

        def body(c, _):
            x, v = c
            return (x - s["lr"] * 2 * x, x**2), None

        (x, _), _ = jax.lax.scan(body, (x0, x0**2), None, length=s["steps"])
        loss = x**2
        status = jnp.where(jnp.isfinite(loss), Status.MAX_STEPS, Status.DIVERGED)
        return Outcome(loss, jnp.int32(s["steps"]), status, {"x": x})

    bowl = Problem(train=train, traced={"lr": 0.1, "scale": 1.0}, static={"steps": 10})
    cfg = jaxlab.SweepConfig(problem=bowl, n_runs=50, keep_runs=True, threshold=1e-3)
    res = run_sweep(cfg.with_settings(lr=[0.01, 0.4, 1.2]), None, figures=False, progress=False)
    for i in range(3):
        rows = res.runs["cell"] == i
        assert np.all(res.runs["steps"][rows] == 10)
        np.testing.assert_allclose(
            res.runs["final_loss"][rows], res.runs["x"][rows] ** 2, rtol=1e-6
        )
        ok = res.runs["final_loss"][rows] < 1e-3
        assert res.cells["n_success"][i] == ok.sum()
        assert res.cells["mean_x"][i] == pytest.approx(res.runs["x"][rows].mean(), abs=1e-5)
    assert res.cells["n_success"][1] == 50 and res.cells["n_success"][0] < 50
    assert res.cells["n_success"][2] < 50  # |1 - 2 lr| > 1: it grows


# --- each mode from the CLI in a clean process --------------------------------------------------
# Two static combinations each (a compile apiece, in the subprocess and again here).
MODES = [
    ["--method", "manual", "--loss", "logit", "--keys", "paired", "--dataset", "lab,xor",
     "--widths", "2-3-1", "--optimizer", "momentum", "--lr", "0.5,2", "--scale", "1"],
    ["--problem", "objective", "--objective", "lab,himmelblau", "--keys", "paired",
     "--method", "manual", "--optimizer", "adam", "--lr", "0.01,0.1", "--threshold", "0.01"],
]  # fmt: skip


@pytest.mark.parametrize("flags", MODES, ids=["network-manual-logit-paired", "objective"])
def test_each_mode_in_a_clean_process_matches_this_process(flags, tmp_path, env):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "jaxlab", "sweep", *flags, "--n-runs", "20", "--max-steps", "30",
           "--keep-runs", "--no-figures", "--quiet", "--out", str(out)]  # fmt: skip
    p = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "Warning" not in p.stderr, p.stderr
    res = load_run(out)
    again = run_sweep(from_toml((out / "config.toml").read_text()), None, figures=False)
    write_csv(tmp_path / "cells.csv", again.cells)
    assert (tmp_path / "cells.csv").read_bytes() == (out / "cells.csv").read_bytes()
    np.testing.assert_array_equal(again.runs["final_loss"], res.runs["final_loss"])
