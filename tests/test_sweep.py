"""The sweep engine: invariances (chunks, devices), no recompiles, results on disk, the 2/3
boundary of Exercise 1, divergence counted, locks."""

import json
from dataclasses import replace

import jax
import numpy as np
import pandas as pd
import pytest

from jaxlab import engine
from jaxlab.config import SweepConfig, from_toml
from jaxlab.errors import ConfigError
from jaxlab.presets import preset
from jaxlab.rundir import RunLock
from jaxlab.sweep import Progress, load_run, run_sweep

SMALL = SweepConfig(n_runs=40, keep_runs=True).with_settings(
    lr={"log": [0.3, 3.0, 3]}, scale=[0.5, 2.0], max_steps=30
)


def _runs(res):
    return {k: np.asarray(v) for k, v in res.runs.items()}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


@pytest.fixture(scope="module")
def reference():
    """The SMALL sweep in one chunk on one device."""
    cfg = replace(SMALL, chunk_size=240)
    return run_sweep(cfg, None, n_devices=1, figures=False, progress=False)


@pytest.mark.parametrize("chunk", [7, 1000])
def test_chunk_invariance(reference, chunk):
    cfg = replace(SMALL, chunk_size=chunk)
    res = run_sweep(cfg, None, n_devices=1, figures=False, progress=False)
    assert res.meta["chunk_size"] == chunk
    _same(_runs(res), _runs(reference))
    _same(res.cells, reference.cells)


@pytest.mark.parametrize("n_devices", [2, 8])
def test_device_count_invariance(reference, n_devices):
    assert len(jax.devices()) >= n_devices
    cfg = replace(SMALL, chunk_size=48)
    res = run_sweep(cfg, None, n_devices=n_devices, figures=False, progress=False)
    assert res.meta["devices"]["local_used"] == n_devices
    _same(_runs(res), _runs(reference))
    _same(res.cells, reference.cells)


def test_keys_follow_global_index(reference):
    """Restart g's init is fold_in(key(seed), g): replaying one run alone gives its result."""
    plan = engine.make_plan(SMALL)
    for g in (0, 41, 239):
        _, _, res, _ = engine.replay(plan, g)
        assert float(res.value) == pytest.approx(float(reference.runs["final_loss"][g]), rel=1e-6)
        assert int(res.steps) == int(reference.runs["steps"][g])


def test_chunk_call_is_run_chunks_first_chunk():
    """engine.chunk_call (the experiments' way to time one chunk) runs the program and inputs
    that run_chunks gives the same chunk: same aggregates, no new compile."""
    plan = engine.make_plan(replace(SMALL, chunk_size=64))
    got = []
    engine.run_chunks(plan, plan.tasks[:1], on_chunk=got.append)
    before = engine.COMPILE_STATS["compiles"]
    program, args = engine.chunk_call(plan, plan.tasks[0], lanes=got[0].lanes)
    agg = jax.device_get(program(*args)[0])
    assert engine.COMPILE_STATS["compiles"] == before
    for mine, theirs in zip(agg, got[0].agg):
        np.testing.assert_array_equal(np.asarray(mine), theirs)


@pytest.mark.parametrize("chunk", [0, 64])
def test_new_traced_values_do_not_recompile(chunk):
    base = SweepConfig(n_runs=16, chunk_size=chunk).with_settings(
        lr=[0.5, 1.0], scale=[1.0, 2.0], max_steps=10
    )
    run_sweep(base, None, n_devices=1, figures=False, progress=False)
    before = engine.COMPILE_STATS["compiles"]
    grids = [([0.1, 7.0], [0.3, 3.0], 0.5), ([2.0, 3.0], {"log": [0.1, 10.0, 2]}, 0.1)]
    if chunk:  # with the chunk size fixed, even the grid's size may change
        grids.append(([2.0, 3.0, 4.0], [1.5], 0.2))
    for lr, scale, momentum in grids:
        cfg = base.with_settings(lr=lr, scale=scale, momentum=momentum)
        run_sweep(cfg, None, n_devices=1, figures=False, progress=False)
    assert engine.COMPILE_STATS["compiles"] == before
    # A static setting is a new program.
    run_sweep(
        base.with_settings(max_steps=12 if chunk else 11),
        None,
        n_devices=1,
        figures=False,
        progress=False,
    )
    assert engine.COMPILE_STATS["compiles"] == before + 1


def test_static_axes_compile_once_each_and_share_keys():
    cfg = SweepConfig(n_runs=20, keep_runs=True).with_settings(
        optimizer=["gd", "momentum", "adam"], lr=[0.1, 1.0], scale=1.0, max_steps=20
    )
    before = engine.COMPILE_STATS["compiles"]
    res = run_sweep(cfg, None, n_devices=1, figures=False, progress=False)
    assert engine.COMPILE_STATS["compiles"] - before <= 3
    assert list(res.cells["optimizer"]) == ["gd"] * 2 + ["momentum"] * 2 + ["adam"] * 2
    assert res.cells["n_runs"].sum() == 120
    assert len(set(res.cells["median_final_loss"])) > 1


def test_quadratic_boundary_at_two_thirds():
    """Exercise 1's f has Hessian eigenvalues 1 and 3: GD converges iff lr < 2/(3)."""
    res = run_sweep(preset("quadratic"), None, figures=False, progress=False)
    df = res.to_pandas().groupby("lr")["success_rate"].mean()
    ok = df[df == 1.0].index.max()
    bad = df[df < 0.5].index.min()
    assert ok < 2 / 3 < bad
    assert bad - ok <= 0.051  # neighbours on the 0.05 grid: the boundary is pinned to 2/3
    assert (df[df.index < 2 / 3] == 1.0).all() and (df[df.index > 2 / 3] < 0.5).all()


def test_divergence_is_counted_not_raised():
    cfg = SweepConfig(
        problem="objective", n_runs=200, dtype="float32", threshold=1e-3
    ).with_settings(objective="rosenbrock", lr=[1e-4, 1.0, 1e3, 1e6], max_steps=50)
    res = run_sweep(cfg, None, n_devices=2, figures=False, progress=False)
    c = res.cells
    assert c["n_diverged"][-1] > 0 and c["n_diverged"][0] == 0
    for k in ("success_rate", "ci_low", "ci_high", "median_steps"):
        assert np.all(np.isfinite(c[k])), k
    assert (c["n_runs"] == 200).all()
    assert (c["n_success"] <= c["n_runs"] - c["n_diverged"]).all()


def test_statuses_and_counts_add_up(reference):
    c = reference.cells
    total = c["n_converged"] + c["n_stalled"] + c["n_max_steps"] + c["n_diverged"]
    np.testing.assert_array_equal(total, c["n_runs"])
    assert (c["ci_low"] <= c["success_rate"]).all() and (c["success_rate"] <= c["ci_high"]).all()
    runs = reference.runs
    for cell in range(len(c["n_runs"])):
        mine = runs["cell"] == cell
        assert c["n_success"][cell] == runs["success"][mine].sum()
        assert c["median_steps"][cell] == np.percentile(
            runs["steps"][mine], 50, method="inverted_cdf"
        )


def test_run_directory(tmp_path):
    out = tmp_path / "run"
    res = run_sweep(SMALL, out, figures=False, progress=False)
    for f in ("config.toml", "cells.csv", "runs/part-0000000.parquet", "meta.json", "state.npz"):
        assert (out / f).is_file(), f
    df = pd.read_csv(out / "cells.csv")
    for col in (
        "lr",
        "scale",
        "n_runs",
        "n_success",
        "success_rate",
        "ci_low",
        "ci_high",
        "n_diverged",
        "median_steps",
        "median_final_loss",
    ):
        assert col in df.columns
    assert len(df) == 6 and (df["n_runs"] == 40).all()
    assert len(pd.read_parquet(out / "runs")) == 240  # the parts are one dataset
    meta = json.loads((out / "meta.json").read_text())
    assert meta["versions"]["jax"] == jax.__version__ and meta["config_hash"]
    assert meta["timings"]["compile_s"] >= 0
    # The saved config reruns the same sweep exactly.
    # chunk size and lane block resolved (they cut the same chunks and blocks on resume)
    resolved = replace(SMALL, chunk_size=res.meta["chunk_size"], lane_block=SMALL.block)
    assert from_toml((out / "config.toml").read_text()) == resolved
    back = load_run(out)
    _same(back.cells, res.cells)
    assert back.config == resolved
    assert not list(out.rglob(".tmp-*"))
    # The directory is not reused by accident.
    with pytest.raises(ConfigError, match="already holds a sweep"):
        run_sweep(SMALL, out, figures=False, progress=False)


def test_resume_in_process_is_bit_identical(tmp_path):
    cfg = replace(SMALL, chunk_size=48)
    out = tmp_path / "run"
    from jaxlab.sweep import SweepInterrupted

    with pytest.raises(SweepInterrupted, match="--resume"):
        run_sweep(cfg, out, figures=False, progress=False, stop_after_chunks=2)
    assert not (out / "cells.csv").exists()
    res = run_sweep(None, out, resume=True, figures=False, progress=False)
    assert res.meta["timings"]["resumed_chunks"] == 2
    full = run_sweep(cfg, tmp_path / "full", figures=False, progress=False)
    _same(res.cells, full.cells)
    _same(_runs(res), _runs(full))
    assert (out / "cells.csv").read_bytes() == (tmp_path / "full" / "cells.csv").read_bytes()


def test_resume_refuses_other_config(tmp_path):
    out = tmp_path / "run"
    from jaxlab.sweep import SweepInterrupted

    with pytest.raises(SweepInterrupted):
        run_sweep(
            replace(SMALL, chunk_size=48),
            out,
            figures=False,
            progress=False,
            stop_after_chunks=1,
        )
    other = SMALL.with_settings(lr=[0.1, 0.2])
    with pytest.raises(ConfigError, match="differs"):
        run_sweep(other, out, resume=True)
    with pytest.raises(ConfigError, match="not a jaxlab run directory"):
        run_sweep(None, tmp_path, resume=True)


def test_lock_refuses_second_sweep_and_takes_over_stale(tmp_path, stale_lock):
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):
        with pytest.raises(ConfigError, match=r"in use by another sweep \(pid \d+"):
            run_sweep(SMALL, out, figures=False, progress=False)
    # A lock left by a dead process on this host is stale: taken over.
    stale_lock(out)
    run_sweep(SMALL, out, figures=False, progress=False)
    assert not (out / ".lock").exists()


def test_progress_bar(capsys):
    import io

    buf = io.StringIO()
    p = Progress(1000, stream=buf, mode="bar")  # what a terminal gets
    p.update(500)
    p.update(500)
    p.close()
    text = buf.getvalue()
    assert "1,000/1,000 restarts" in text and "ETA" in text and "/s" in text and "\r" in text
    quiet = io.StringIO()
    q = Progress(10, enabled=False, stream=quiet)  # --quiet, progress=False
    q.update(10)
    q.close()
    assert quiet.getvalue() == ""


def test_memory_is_bounded_by_cells_not_runs():
    """Aggregates are per cell: a sweep's state does not grow with the number of restarts."""
    from jaxlab.aggregate import Aggregates

    small = Aggregates.zeros(99, 100)
    nbytes = sum(a.nbytes for a in small)
    assert nbytes < 2_000_000
    plan = engine.make_plan(SweepConfig(n_runs=100_000), n_devices=2)
    # 32 restarts per lane of a block (recycled lanes idle at a chunk's end), at least 32k a device.
    per_device = max(engine.CPU_RUNS_PER_DEVICE, 32 * plan.block)
    assert plan.chunk_size == 2 * per_device
    assert len(plan.tasks) == -(-plan.config.total_runs // plan.chunk_size)


@pytest.mark.parametrize("problem", ["network", "objective"])
def test_restart_starts_alike_in_float32_and_float64(problem):
    """Restart g starts from the same point whatever the dtype: only the arithmetic differs."""
    starts = {}
    for dtype in ("float32", "float64"):
        cfg = SweepConfig(n_runs=5, dtype=dtype, problem=problem).with_settings(lr=0.5, max_steps=3)
        _, _, res, _ = engine.replay(engine.make_plan(cfg), 3, trajectory=True)
        first = jax.tree.map(lambda a: np.asarray(a[0]), res.trajectory[0])
        starts[dtype] = np.concatenate([np.ravel(x) for x in jax.tree.leaves(first)])
    assert starts["float32"].dtype == np.float32 and starts["float64"].dtype == np.float64
    np.testing.assert_array_equal(starts["float32"].astype(np.float64), starts["float64"])
    assert len(set(starts["float64"])) == len(starts["float64"])  # drawn, not constant
