"""Measure the engine's optimisations one at a time, in one process (see PERFORMANCE.md).

Each variant runs the lab workload (2-2-1 network, GD, 100 steps, lr log-spaced over [0.1, 3],
scale 1) for R restarts through the engine only (no files) and prints restart-steps/s:

* kernel: the array form (``jaxlab.network`` + ``jaxlab.gradients``; (R, 5) intermediates) vs the
  unrolled form (``jaxlab.unrolled``: (R,) vectors, data folded in as constants);
* devices: 1 vs 2 XLA host devices (this machine has 2 cores);
* chunk: restarts per device per compiled call.

    python experiments/perf_ablation.py [--R 262144] [--repeats 3]
"""

import argparse
import os
import time

import jax

jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)

import numpy as np  # noqa: E402

from jaxlab import engine  # noqa: E402
from jaxlab.config import SweepConfig  # noqa: E402
from jaxlab.problems import network  # noqa: E402


def measure(R, kernel, n_devices, per_device, method, dtype, repeats):
    k = 1024
    cfg = SweepConfig(
        problem=network(kernel),  # the kernel is the problem's choice, not the engine's
        n_runs=R // k,
        method=method,
        dtype=dtype,
        chunk_size=per_device * n_devices,
    )
    cfg = cfg.with_settings(lr={"log": [0.1, 3.0, k]}, scale=1.0, max_steps=100)
    plan = engine.make_plan(cfg, n_devices)
    devices = jax.local_devices()[:n_devices]
    engine.compile_all(plan, devices)
    times, rate = [], 0.0
    for _ in range(repeats):
        ok = np.zeros(1, np.int64)

        def on_chunk(r, ok=ok):
            ok[0] += int(r.agg.n_success.sum())

        t0 = time.perf_counter()
        engine.run_chunks(plan, plan.tasks, devices, on_chunk)
        times.append(time.perf_counter() - t0)
        rate = ok[0] / cfg.total_runs
    t = float(np.median(times))
    return cfg.total_runs * 100 / t, rate


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--R", type=int, default=262_144)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    variants = [
        ("array kernel, 1 device", "array", 1, 8192, "autodiff", "float32"),
        ("unrolled kernel, 1 device", "unrolled", 1, 8192, "autodiff", "float32"),
        ("unrolled, 2 devices, 2k/device", "unrolled", 2, 2048, "autodiff", "float32"),
        ("unrolled, 2 devices, 8k/device", "unrolled", 2, 8192, "autodiff", "float32"),
        ("unrolled, 2 devices, 32k/device", "unrolled", 2, 32768, "autodiff", "float32"),
        ("unrolled, 2 devices, manual VJP", "unrolled", 2, 8192, "manual", "float32"),
        ("array kernel, 2 devices, float64", "array", 2, 8192, "autodiff", "float64"),
        ("unrolled, 2 devices, float64", "unrolled", 2, 8192, "autodiff", "float64"),
    ]
    jax.config.update("jax_enable_x64", True)  # the float64 rows
    base = None
    print(f"R = {args.R:,}, median of {args.repeats}; {os.cpu_count()} cores")
    for name, kernel, nd, per, method, dtype in variants:
        if nd > len(jax.local_devices()):
            continue
        rs, rate = measure(args.R, kernel, nd, per, method, dtype, args.repeats)
        base = base or rs
        print(
            f"{name:<36} {rs / 1e6:7.1f} M restart-steps/s  x{rs / base:4.1f}  success {rate:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
