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
