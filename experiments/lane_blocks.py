"""Time one chunk of the lab's network for several lane blocks (the width each device trains at
once), in one run, side by side: what `lane_block`'s default (8192) was chosen by.

    python experiments/lane_blocks.py [--devices 2] [--repeats 5]

A block as wide as a device's share (32,768 lanes) is the single vmap the engine ran before.
"""

import argparse
import time

import jax

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--devices", type=int, default=2)
ap.add_argument("--repeats", type=int, default=5)
ap.add_argument("--blocks", type=int, nargs="+", default=[32768, 8192, 4096, 2048])
args = ap.parse_args()
jax.config.update("jax_num_cpu_devices", args.devices)

import numpy as np  # noqa: E402

from jaxlab import engine  # noqa: E402
from jaxlab.config import SweepConfig  # noqa: E402


def main():
    devices = jax.local_devices()[: args.devices]
    programs = {}
    for block in args.blocks:
        cfg = SweepConfig(n_runs=1000, lane_block=block).with_settings(
            lr={"log": [0.1, 3.0, 66]}, scale=1.0
        )
        plan = engine.make_plan(cfg, len(devices))
        exe, call_args = engine.chunk_call(plan, plan.tasks[0], devices)
        jax.block_until_ready(exe(*call_args))
        programs[block] = (exe, call_args, plan.lanes)
    times = {b: [] for b in programs}
    for _ in range(args.repeats):
        for b, (exe, call_args, _) in programs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(exe(*call_args))
            times[b].append(time.perf_counter() - t0)
    for b, (_, _, lanes) in programs.items():
        print(f"lane_block {b:6d}: {np.median(times[b]) * 1e3:7.1f} ms a chunk of {lanes:,} lanes")


if __name__ == "__main__":
    main()
