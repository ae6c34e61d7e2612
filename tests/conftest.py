"""Tests are stricter than production: float64 available, rank promotion raises, and 8
simulated CPU devices so sharded code is exercised without hardware."""

import json
import os
import socket
import subprocess

import jax
import pytest

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    """Environment for `python -m jaxlab` subprocesses: a shared persistent compilation cache
    (each process would otherwise spend seconds compiling the same programs), no fault
    injection, no XLA flags inherited."""
    e = dict(os.environ)
    e["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.mktemp("jax-cache"))
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
