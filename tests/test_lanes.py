"""Recycled lanes (``lanes = "recycle"``): a lane whose restart stopped takes the next one. A
restart's results must not depend on the lane that ran it or when: identical to the dense
engine's, across lane counts, chunk sizes, devices and resume; the auto choice and the
throughput figures say what happened."""

import importlib.util
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import jaxlab
from jaxlab import engine
from jaxlab.config import SweepConfig
from jaxlab.sweep import SweepInterrupted, run_sweep

ROOT = Path(__file__).resolve().parents[1]


def _example(name):
    spec = importlib.util.spec_from_file_location(
        f"lanes_{name}", ROOT / "experiments" / name / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def _sweep(cfg, **kw):
    return run_sweep(cfg, None, figures=False, progress=False, **kw)


def _same_runs(a, b, what=""):
    assert set(a.runs) == set(b.runs), what
    for col, v in a.runs.items():
        np.testing.assert_array_equal(v, b.runs[col], err_msg=f"{what} {col}")
    for col, v in a.cells.items():
        np.testing.assert_array_equal(v, b.cells[col], err_msg=f"{what} cells {col}")


NET = SweepConfig(n_runs=40, keep_runs=True, lane_block=64, chunk_size=512)
CASES = {
    # The lab's network: early stops and runs to the budget side by side, two optimisers.
    "network": NET.with_settings(lr=[0.3, 3.0], scale=[0.5, 2.0], optimizer=["gd", "adam"]),
    "network64-manual": replace(NET, dtype="float64", method="manual").with_settings(
        loss="logit", lr=[1.0, 4.0], scale=1.0, max_steps=300
    ),
    "objective": SweepConfig(
        problem="objective",
        threshold=1e-2,
        n_runs=40,
        keep_runs=True,
        lane_block=64,
        chunk_size=512,
    ).with_settings(objective=["himmelblau", "rosenbrock"], optimizer="momentum", lr=[0.001, 0.01]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_recycled_runs_equal_the_dense_engines(name):
    """Statuses, steps, losses (to the last bit), every cell: recycled = dense."""
    cfg = CASES[name]
    dense = _sweep(replace(cfg, lanes="dense"))
    rec = _sweep(replace(cfg, lanes="recycle"))
    assert {v["lanes"] for v in rec.meta["lanes"].values()} == {"recycle"}
    assert {v["lanes"] for v in dense.meta["lanes"].values()} == {"dense"}
    _same_runs(dense, rec, name)


def test_user_problems_with_metrics_and_reductions():
    """A user problem with a 32-point loss, metrics and its own success rule (regression), and
    one with 64 points (moons): recycled = dense to the last bit at the same lane width."""
    reg = _example("regression")
    cfg = SweepConfig(
        problem=reg, n_runs=24, keep_runs=True, lane_block=32, chunk_size=256, tol=1e-6
    ).with_settings(optimizer="adam", max_steps=80, lr=[0.01, 0.05], frac=0.2)
    _same_runs(_sweep(replace(cfg, lanes="dense")), _sweep(replace(cfg, lanes="recycle")), "reg")
    moons = _example("moons")
    cfg = SweepConfig(problem=moons, n_runs=24, keep_runs=True, lane_block=32, chunk_size=256)
    cfg = cfg.with_settings(lr=[0.3, 3.0], max_steps=60)
    _same_runs(_sweep(replace(cfg, lanes="dense")), _sweep(replace(cfg, lanes="recycle")), "moon")


def test_recycled_runs_do_not_depend_on_lanes_chunks_devices_or_refills():
    """Each variant changes several of lane width, chunk size, refill period and device count at
    once (a program each: compiling is the cost of this test); any one of them moving a bit
    fails it."""
    cfg = replace(NET, lanes="recycle").with_settings(lr=[0.3, 3.0], scale=[0.5, 2.0])
    ref = _sweep(cfg)  # 8 devices, 64 lanes a block, refill 8 (the default)
    for what, variant, n_devices in (
        ("128 lanes, refill 7, 1 device", replace(cfg, lane_block=128, refill=7), 1),
        ("chunk 96, 2 devices", replace(cfg, chunk_size=96), 2),
        ("chunk 1000, refill 1", replace(cfg, chunk_size=1000, refill=1), None),
    ):
        kw = {} if n_devices is None else {"n_devices": n_devices}
        _same_runs(ref, _sweep(variant, **kw), what)


def test_recycled_resume_is_identical(tmp_path):
    cfg = replace(CASES["network"], lanes="recycle", chunk_size=128)
    ref = _sweep(cfg)
    out = tmp_path / "run"
    with pytest.raises(SweepInterrupted):
        run_sweep(cfg, out, figures=False, progress=False, stop_after_chunks=2)
    res = run_sweep(None, out, resume=True, figures=False, progress=False)
    assert res.meta["timings"]["resumed_chunks"] == 2
    _same_runs(ref, res, "resume")


def test_new_traced_values_do_not_recompile():
    cfg = replace(CASES["network"], lanes="recycle")
    _sweep(cfg)
    before = engine.COMPILE_STATS["compiles"]
    _sweep(cfg.with_settings(lr=[0.7, 1.9], scale=[0.9, 1.3]))
    assert engine.COMPILE_STATS["compiles"] == before


def test_auto_picks_dense_when_every_restart_runs_to_the_budget():
    """No stopping rule: every restart takes its whole budget, recycling only adds refills."""
    cfg = SweepConfig(n_runs=256, lane_block=64, chunk_size=512, tol="off")
    res = _sweep(cfg.with_settings(lr=[0.5, 1.0], scale=1.0, max_steps=40), n_devices=1)
    (choice,) = res.meta["lanes"].values()
    assert choice["lanes"] == "dense", choice
    assert "100.0% of their budget" in choice["why"]
    assert res.meta["timings"]["budget_used"] == 1.0


def test_auto_picks_recycle_when_restarts_stop_early():
    """The lab's network at 2,000 steps: restarts stop after about 150 on average."""
    cfg = SweepConfig(n_runs=512, lane_block=64, chunk_size=1024, keep_runs=True)
    res = _sweep(cfg.with_settings(lr=[1.0, 3.0], scale=1.0, max_steps=2000), n_devices=1)
    (choice,) = res.meta["lanes"].values()
    assert choice["lanes"] == "recycle", choice
    t = res.meta["timings"]
    # The figures agree with the per-run records they summarise.
    assert t["steps_run"] == int(res.runs["steps"].sum())
    assert t["budget_steps"] == 1024 * 2000
    assert t["budget_used"] == pytest.approx(t["steps_run"] / t["budget_steps"])
    assert t["restart_steps_per_s"] == pytest.approx(t["steps_run"] / t["run_s_this_session"])
    assert t["budget_used"] < 0.2


def test_a_problem_that_trains_itself_stays_dense():
    import jax.numpy as jnp

    from jaxlab.descent import Status

    def train(s, key):
        x = jnp.asarray(1.0) - s["lr"]
        return jaxlab.Outcome(x**2, jnp.int32(3), jnp.int32(Status.MAX_STEPS), {})

    own = jaxlab.Problem(train=train, traced={"lr": 0.5})
    res = _sweep(SweepConfig(problem=own, n_runs=8).with_settings(lr=[0.5, 0.9]))
    (choice,) = res.meta["lanes"].values()
    assert choice == {
        "lanes": "dense",
        "why": "the problem trains itself (train): its own loop",
        "chunks": {"dense": 1, "recycle": 0},
    }
    with pytest.raises(jaxlab.ConfigError, match="lanes"):
        SweepConfig(problem=own, lanes="recycle").validate()


def _cli(args, env, cwd):
    return subprocess.run(
        [sys.executable, "-m", "jaxlab", *args], env=env, cwd=cwd, capture_output=True, text=True
    )


def test_cli_lanes_in_a_clean_process(tmp_path, env):
    """`--lanes` from the command line with default JAX settings: recycled and dense write the
    same cells and runs; the summary and meta.json give steps run and budget apart."""
    common = ["--lr", "1,3", "--scale", "1", "--n-runs", "64", "--max-steps", "500",
              "--keep-runs", "--no-figures"]  # fmt: skip
    outs = {}
    for lanes in ("recycle", "dense"):
        out = tmp_path / lanes
        p = _cli(["sweep", *common, "--lanes", lanes, "--out", str(out)], env, tmp_path)
        assert p.returncode == 0, p.stderr
        assert "M restart-steps/s run (" in p.stdout and "of the budget used" in p.stdout
        assert f"lanes {lanes}" in p.stdout
        outs[lanes] = out
        meta = json.loads((out / "meta.json").read_text())
        ran = {"dense": 0, "recycle": 0} | {lanes: meta["n_chunks"]}
        assert meta["lanes"] == {"all": {"lanes": lanes, "why": f"lanes = {lanes}", "chunks": ran}}
        assert (out / "config.toml").read_text().count(f'lanes = "{lanes}"') == 1
    assert (outs["recycle"] / "cells.csv").read_bytes() == (
        outs["dense"] / "cells.csv"
    ).read_bytes()
    a, b = (jaxlab.load_run(outs[k]).runs for k in ("recycle", "dense"))
    for col in ("final_loss", "steps", "status", "success"):
        np.testing.assert_array_equal(a[col], b[col], err_msg=col)
    for bad in (["--lanes", "sparse"], ["--refill", "-1"]):
        out = tmp_path / "bad"
        p = _cli(["sweep", *common, *bad, "--out", str(out)], env, tmp_path)
        assert p.returncode == 2, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
        assert bad[0][2:] in p.stderr
        assert not out.exists()
