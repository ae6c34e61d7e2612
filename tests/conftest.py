"""Tests are stricter than production: float64 available, rank promotion raises, and 8
simulated CPU devices so sharded code is exercised without hardware."""

import json
import os
import shutil
import socket
import subprocess
import tempfile

import jax
import pytest

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

# One persistent compilation cache for the whole run, shared by the xdist workers (they inherit
# the controller's environment) and the `python -m jaxlab` subprocesses (`env`): most of the
# suite's time is XLA compiling the same programs in different tests. A hit is the same
# executable, and `engine.COMPILE_STATS` still counts it as a compile, so the no-recompile
# tests hold; the tests that check the user's default settings set their own environment.
if "JAXLAB_TEST_JAX_CACHE" not in os.environ:
    os.environ["JAXLAB_TEST_JAX_CACHE"] = tempfile.mkdtemp(prefix="jaxlab-test-jax-cache-")
    _OWN_CACHE = True
else:
    _OWN_CACHE = False
JAX_CACHE = os.environ["JAXLAB_TEST_JAX_CACHE"]
jax.config.update("jax_compilation_cache_dir", JAX_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


def pytest_unconfigure(config):
    if _OWN_CACHE:  # the process that made it (xdist's controller, or a lone pytest)
        shutil.rmtree(JAX_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def env():
    """Environment for `python -m jaxlab` subprocesses: the run's persistent compilation cache
    (each process would otherwise spend seconds compiling the same programs), no fault
    injection, no XLA flags inherited."""
    e = dict(os.environ)
    e["JAX_COMPILATION_CACHE_DIR"] = JAX_CACHE
    e["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    for k in ("XLA_FLAGS", "JAXLAB_FAULT_FAIL_AT_WRITE", "JAXLAB_FAULT_KILL_AT_WRITE"):
        e.pop(k, None)
    return e


@pytest.fixture
def stale_lock():
    """``make(directory)``: leave the lock file a sweep would, from a process that has died."""

    def make(directory):
        dead = subprocess.Popen(["true"])
        dead.wait()
        (directory / ".lock").write_text(
            json.dumps({"pid": dead.pid, "host": socket.gethostname(), "time": 0})
        )

    return make


@pytest.fixture
def stop_and_resume():
    """``run(cfg, out, every, on_stop=None) -> (result, stops)``: a sweep on 8 devices stopped
    every ``every`` chunks (as Ctrl-C stops it, at a chunk's end: inside adaptive and refined
    rounds too) and resumed until it finishes. Each stop must name its round; ``on_stop(stops)``
    runs after each."""
    from jaxlab.sweep import SweepInterrupted, run_sweep

    def run(cfg, out, every, on_stop=None, tries=60):
        stops = 0
        for _ in range(tries):
            try:
                res = run_sweep(
                    cfg if stops == 0 else None, out, resume=stops > 0, n_devices=8,
                    progress=False, figures=False, stop_after_chunks=every,
                )  # fmt: skip
                return res, stops
            except SweepInterrupted as e:
                assert "in round" in str(e)
                stops += 1
                if on_stop is not None:
                    on_stop(stops)
        raise AssertionError(f"not finished after {tries} stops")

    return run
