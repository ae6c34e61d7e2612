"""Crashes: SIGKILL at random moments (during writes too) and Ctrl-C, then resume; the final
results must be bit-identical to an uninterrupted sweep, with no temporary files left."""

import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxlab.config import from_toml
from jaxlab.sweep import load_run, run_sweep

ARGS = [
    "--n-runs", "64", "--lr", "0.3:3:4:log", "--scale", "0.5,2", "--max-steps", "30",
    "--chunk-size", "16", "--keep-runs", "--no-figures", "--quiet", "--devices", "2",
]  # fmt: skip


def _start(out, env, *extra, fault=None):
    e = dict(env)
    if fault is not None:
        e["JAXLAB_FAULT_KILL_AT_WRITE"] = str(fault)
    cmd = [sys.executable, "-m", "jaxlab", "sweep", "--out", str(out), *ARGS, *extra]
    return subprocess.Popen(
        cmd, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _wait(p, timeout=300):
    _, err = p.communicate(timeout=timeout)
    return p.returncode, err


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
    out = tmp_path_factory.mktemp("ref") / "run"
    rc, err = _wait(_start(out, env))
    assert rc == 0, err
    return out


def _running(out: Path) -> bool:
    """A chunk has finished: its record is in the log (or a checkpoint exists)."""
    log = out / "state.log"
    return (log.exists() and log.stat().st_size > 0) or (out / "state.npz").exists()


def _finish(out: Path):
    """Resume in this process (results do not depend on the device count)."""
    if not (out / "config.toml").exists():  # killed while writing the very first file
        return None
    return run_sweep(None, out, resume=True, figures=False, progress=False)


def _records(d: Path) -> tuple[dict, dict]:
    """The per-run records: each Parquet part's bytes, and the loaded table's columns' bytes."""
    parts = {p.name: p.read_bytes() for p in sorted((d / "runs").glob("part-*.parquet"))}
    runs = load_run(d).runs
    return parts, {k: np.asarray(runs[k]).tobytes() for k in runs}


def _assert_identical(out: Path, reference: Path):
    for name in ("cells.csv", "config.toml"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert _records(out) == _records(reference)
    assert not list(out.rglob(".tmp-*"))
    assert not (out / ".lock").exists()


def test_sigkill_mid_sweep_then_resume(tmp_path, env):
    out = tmp_path / "run"
    p = _start(out, env, "--n-runs", "1024", "--chunk-size", "64")  # 128 chunks
    deadline = time.time() + 120
    while not _running(out) and time.time() < deadline and p.poll() is None:
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    rc, _ = _wait(p)
    assert rc == -signal.SIGKILL
    assert not (out / "cells.csv").exists()
    res = _finish(out)
    assert 0 < res.meta["timings"]["resumed_chunks"] < 128
    full = run_sweep(
        from_toml((out / "config.toml").read_text()),
        tmp_path / "full",
        figures=False,
        progress=False,
    )
    _assert_identical(out, full.run_dir)


@pytest.mark.slow
def test_twenty_kills(tmp_path, env, reference):
    """20 SIGKILLs: 14 inside a file write (halfway through writing it), 6 at random times."""
    rng = random.Random(1234)
    # Writes in a full run: config.toml, then per chunk its runs file and its log record, then
    # the final checkpoint and outputs (a few more): every write up to 68 happens.
    n_writes = 1 + 2 * 32 + 3
    moments = [("write", w) for w in rng.sample(range(1, n_writes + 1), 14)]
    moments += [("time", rng.uniform(0.0, 1.0)) for _ in range(6)]
    outcomes = []
    for i, (kind, at) in enumerate(moments):
        out = tmp_path / f"run{i}"
        if kind == "write":
            rc, _ = _wait(_start(out, env, fault=at))
        else:
            for attempt in range(5):  # until the kill lands while chunks run
                p = _start(out, env)
                while not _running(out) and p.poll() is None:
                    time.sleep(0.002)
                time.sleep(0.04 * at / (attempt + 1))  # somewhere among the chunks
                p.send_signal(signal.SIGKILL)
                rc, _ = _wait(p)
                if rc == -signal.SIGKILL:
                    break
                shutil.rmtree(out)  # it finished first: start that moment again
        outcomes.append(rc)
        res = _finish(out)
        if res is None:  # nothing recorded yet: the sweep simply starts again
            rc, err = _wait(_start(out, env))
            assert rc == 0, err
        _assert_identical(out, reference)
    assert outcomes == [-signal.SIGKILL] * 20, outcomes


def test_ctrl_c_stops_at_chunk_boundary(tmp_path, env):
    out = tmp_path / "run"
    # 128 chunks: time to land the signal mid-sweep (it is sent as the first chunk's record
    # appears), and a resume that finishes in seconds.
    p = _start(out, env, "--n-runs", "1024", "--chunk-size", "64", "--max-steps", "100")
    deadline = time.time() + 120
    while not _running(out) and time.time() < deadline and p.poll() is None:
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    rc, err = _wait(p, 120)
    assert rc == 130, err
    assert f"jaxlab sweep --resume {out}" in err
    assert "Traceback" not in err
    assert not (out / "cells.csv").exists()
    res = _finish(out)
    assert res.meta["timings"]["resumed_chunks"] > 0
