"""Tests are stricter than production: float64 available, rank promotion raises, and 8
simulated CPU devices so sharded code is exercised without hardware."""

import os

os.environ.setdefault("XLA_FLAGS", "")
import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
