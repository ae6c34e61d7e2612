"""Faults: divergence and extreme numbers, two sweeps on one directory, stale locks, a full
disk, and bit-for-bit determinism across chunking, devices, resumes and fresh processes."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxlab import plots, rundir
from jaxlab.cli import main
from jaxlab.config import SweepConfig, config_hash
from jaxlab.errors import ConfigError
from jaxlab.losses import bce_logit
from jaxlab.network import LAB_DATA, from_vector, loss, n_params
from jaxlab.rundir import ChunkLog, RunLock
from jaxlab.sweep import SweepInterrupted, run_sweep

# --- divergence and extreme numbers ----------------------------------------------------------
AGGREGATES = (
    "success_rate", "ci_low", "ci_high", "p10_steps", "median_steps", "p90_steps",
    "p10_final_loss", "median_final_loss", "p90_final_loss",
)  # fmt: skip


def _check_extreme(res, tmp_path, n_runs):
    c = res.cells
    assert (c["n_runs"] == n_runs).all()
    total = c["n_converged"] + c["n_stalled"] + c["n_max_steps"] + c["n_diverged"]
    np.testing.assert_array_equal(total, c["n_runs"])
    assert (c["n_success"] <= c["n_runs"] - c["n_diverged"]).all()
    for k in AGGREGATES:
        if k.endswith("final_loss"):  # a diverged run's final loss is inf: counted, never NaN
            assert not np.any(np.isnan(c[k])), k
        else:
            assert np.all(np.isfinite(c[k])), k
    assert ((0 <= c["ci_low"]) & (c["ci_low"] <= c["success_rate"])).all()
    assert ((c["success_rate"] <= c["ci_high"]) & (c["ci_high"] <= 1)).all()
    plots.success_heatmap(res, tmp_path / "success.png")
    assert (tmp_path / "success.png").stat().st_size > 1000


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_objective_divergence_is_counted(tmp_path, dtype):
    cfg = SweepConfig(problem="objective", n_runs=16, dtype=dtype, threshold=1e-3).with_settings(
        objective="rosenbrock", lr=[1e-4, 1.0, 1e3, 1e6], max_steps=15
    )
    res = run_sweep(cfg, None, n_devices=2, figures=False, progress=False)
    _check_extreme(res, tmp_path, 16)
    c = res.cells  # lr 1e6: every run overflows or overshoots (the rule stops a rise)
    assert c["n_success"][-1] == 0 and c["n_diverged"][-1] + c["n_stalled"][-1] == 16
    assert res.cells["n_diverged"][0] == 0


@pytest.mark.parametrize(("dtype", "loss_kind"), [("float32", "lab"), ("float64", "logit")])
def test_network_extremes_are_counted(tmp_path, dtype, loss_kind):
    cfg = SweepConfig(n_runs=16, dtype=dtype).with_settings(
        loss=loss_kind, lr=[1e-2, 1.0, 1e6], scale=[1e-3, 1.0, 1e3], max_steps=15
    )
    res = run_sweep(cfg, None, n_devices=2, figures=False, progress=False)
    _check_extreme(res, tmp_path, 16)


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
finite64 = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=80, deadline=None)
@given(
    dtype=st.sampled_from(["float32", "float64"]),
    data=st.data(),
)
def test_bce_logit_never_nan(dtype, data):
    floats = finite32 if dtype == "float32" else finite64
    z = data.draw(st.lists(floats, min_size=1, max_size=6))
    y = data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=len(z), max_size=len(z)))
    out = bce_logit(jnp.asarray(z, dtype), jnp.asarray(y, dtype))
    assert out.dtype == jnp.dtype(dtype)
    assert not jnp.isnan(out)
    assert out >= 0


@settings(max_examples=60, deadline=None)
@given(dtype=st.sampled_from(["float32", "float64"]), data=st.data())
def test_network_logit_loss_never_nan_for_huge_params(dtype, data):
    # Bounded so the output logit itself (a sum of 3 terms) stays finite in the dtype.
    big = float(np.float32(1e37)) if dtype == "float32" else 1e307
    vec = data.draw(
        st.lists(
            st.floats(-big, big, width=32 if dtype == "float32" else 64),
            min_size=n_params(),
            max_size=n_params(),
        )
    )
    params = from_vector(jnp.asarray(vec, dtype))
    value = loss(params, LAB_DATA, "logit")
    assert value.dtype == jnp.dtype(dtype)
    assert jnp.isfinite(value) and value >= 0


# --- determinism -----------------------------------------------------------------------------
BASE = SweepConfig(n_runs=24, chunk_size=16).with_settings(
    lr=[0.5, 2.0], scale=[0.5, 2.0], max_steps=20
)
CLI_BASE = [
    "--n-runs", "24", "--chunk-size", "16", "--lr", "0.5,2", "--scale", "0.5,2",
    "--max-steps", "20", "--devices", "1", "--no-figures", "--quiet",
]  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    run_sweep(BASE, out, n_devices=1, figures=False, progress=False)
    return out


@pytest.mark.parametrize(("chunk", "n_devices"), [(16, 2), (40, 1), (96, 8)])
def test_cells_identical_across_chunks_and_devices(tmp_path, reference, chunk, n_devices):
    out = tmp_path / "run"
    res = run_sweep(
        replace(BASE, chunk_size=chunk), out, n_devices=n_devices, figures=False, progress=False
    )
    assert res.meta["devices"]["local_used"] == n_devices
    assert (out / "cells.csv").read_bytes() == (reference / "cells.csv").read_bytes()


def test_resume_identical_and_seed_matters(tmp_path, reference):
    out = tmp_path / "run"
    with pytest.raises(SweepInterrupted):
        run_sweep(BASE, out, n_devices=1, figures=False, progress=False, stop_after_chunks=2)
    run_sweep(None, out, resume=True, n_devices=1, figures=False, progress=False)
    assert (out / "cells.csv").read_bytes() == (reference / "cells.csv").read_bytes()
    other = run_sweep(replace(BASE, seed=1), tmp_path / "seed1", n_devices=1, figures=False)
    assert (tmp_path / "seed1" / "cells.csv").read_bytes() != (reference / "cells.csv").read_bytes()
    assert other.meta["config_hash"] != config_hash(BASE)


def test_meta_records_what_reproduces_the_run(reference):
    import jaxlib
    import optax

    import jaxlab

    meta = json.loads((reference / "meta.json").read_text())
    v = meta["versions"]
    assert v["jax"] == jax.__version__ and v["jaxlib"] == jaxlib.__version__
    assert v["numpy"] == np.__version__ and v["optax"] == optax.__version__
    assert v["jaxlab"] == jaxlab.__version__ and v["python"]
    assert meta["devices"]["platform"] == "cpu" and meta["devices"]["kind"]
    assert meta["dtype"] == BASE.dtype
    assert meta["config_hash"] == config_hash(BASE)
    assert meta["chunk_size"] == 16


# --- a full disk -----------------------------------------------------------------------------
def _fail_writes_from(monkeypatch, n):
    rundir._WRITES["n"] = 0
    monkeypatch.setenv("JAXLAB_FAULT_FAIL_AT_WRITE", str(n))


def test_disk_full_mid_sweep_then_resume(tmp_path, monkeypatch, capsys, reference):
    out = tmp_path / "run"
    # Writes: config.toml, then one log record per chunk: the 5th write is chunk 4's record
    # (it fails halfway through, leaving a torn record).
    _fail_writes_from(monkeypatch, 5)
    rc = main(["sweep", "--out", str(out), *CLI_BASE])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "out: could not write" in err and "No space left on device" in err
    records = ChunkLog(out / "state.log").read()
    assert [task for task, _, _ in records] == [0, 1, 2]
    assert sum(int(rows["n_runs"].sum()) for _, _, rows in records) == 3 * 16
    assert not list(out.rglob(".tmp-*")) and not (out / ".lock").exists()
    assert not (out / "cells.csv").exists()

    monkeypatch.delenv("JAXLAB_FAULT_FAIL_AT_WRITE")
    assert main(["sweep", "--resume", str(out), "--devices", "1", "--quiet", "--no-figures"]) == 0
    assert (out / "cells.csv").read_bytes() == (reference / "cells.csv").read_bytes()
    assert not list(out.rglob(".tmp-*")) and not (out / ".lock").exists()


def test_disk_full_at_first_write(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    _fail_writes_from(monkeypatch, 1)
    rc = main(["sweep", "--out", str(out), *CLI_BASE])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "config.toml" in err
    assert not list(out.rglob(".tmp-*")) and not list(out.glob("*"))


# --- locks: two sweeps on one directory, stale locks, racing takeovers -----------------------
@pytest.mark.parametrize("stale", [True, False])
def test_racing_for_a_lock_exactly_one_wins(tmp_path, stale, stale_lock):
    for round_ in range(10):
        d = tmp_path / f"r{round_}"
        d.mkdir()
        if stale:
            stale_lock(d)
        n = 8
        start, tried = threading.Barrier(n), threading.Barrier(n)
        won, refused = [], []

        def contend(won=won, refused=refused, start=start, tried=tried, d=d):
            lock = RunLock(d)
            start.wait()
            try:
                lock.acquire()
                won.append(lock)
            except ConfigError as e:
                refused.append(str(e))
            tried.wait()  # the winner holds the lock until everyone has tried
            lock.release()

        threads = [threading.Thread(target=contend) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(won) == 1, (won, refused)
        assert len(refused) == n - 1
        assert all(f"in use by another sweep (pid {os.getpid()}" in r for r in refused)
        assert not (d / ".lock").exists()
        assert not [p for p in d.iterdir()]  # no .lock.stale-* or other debris


def test_lock_of_another_host_is_refused(tmp_path):
    (tmp_path / ".lock").write_text(json.dumps({"pid": 1, "host": "elsewhere", "time": 0}))
    with pytest.raises(ConfigError, match="pid 1 on elsewhere"):
        RunLock(tmp_path).acquire()
    assert (tmp_path / ".lock").exists()


def _start(out, env):
    cmd = [sys.executable, "-m", "jaxlab", "sweep", "--out", str(out), *CLI_BASE]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _wait_for(pred, p, timeout=120):
    deadline = time.time() + timeout
    while not pred():
        assert p.poll() is None, p.communicate()[1]
        assert time.time() < deadline
        time.sleep(0.01)


def _lock_written(out):
    try:
        return bool(json.loads((out / ".lock").read_text() or "{}"))
    except (OSError, ValueError):
        return False


@pytest.mark.slow
def test_second_process_refused_first_finishes(tmp_path, env, reference):
    out = tmp_path / "run"
    first = _start(out, env)
    ok = False
    try:
        _wait_for(lambda: _lock_written(out), first)
        first.send_signal(signal.SIGSTOP)  # holds the lock while the second one tries
        second = _start(out, env)
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2, err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert f"in use by another sweep (pid {first.pid} on {socket.gethostname()}" in err
        ok = True
    finally:
        first.send_signal(signal.SIGCONT)
        if not ok:
            first.kill()
            first.communicate()
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert (out / "cells.csv").read_bytes() == (reference / "cells.csv").read_bytes()
    assert not (out / ".lock").exists()


@pytest.mark.slow
def test_stale_lock_of_killed_sweep_is_taken_over(tmp_path, env, reference, capsys):
    out = tmp_path / "run"
    p = _start(out, env)
    try:  # the lock is taken and config.toml written before the compile: stop it there
        _wait_for(lambda: _lock_written(out) and (out / "config.toml").exists(), p)
        p.send_signal(signal.SIGSTOP)
    finally:
        p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL
    info = json.loads((out / ".lock").read_text())
    assert info["pid"] == p.pid  # left behind by the dead process
    rc = main(["sweep", "--resume", str(out), "--devices", "1", "--quiet", "--no-figures"])
    assert rc == 0, capsys.readouterr().err
    assert (out / "cells.csv").read_bytes() == (reference / "cells.csv").read_bytes()
    assert not (out / ".lock").exists() and not list(out.rglob(".tmp-*"))
