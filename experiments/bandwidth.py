"""Memory traffic of the training loop: bytes per restart-step against the time per step.

For each dtype, the engine's chunk program for the lab workload (2-2-1 network, GD, lr
log-spaced over [0.1, 3], scale 1) is compiled; the loop body of its optimised HLO is read for
the kernels (fusions) of one step and the bytes each reads (its operands) and writes (its
result), per device. The chunk is then timed with ``--steps`` steps and with one step, in turns,
``--repeats`` times; the difference of the medians over ``steps - 1`` is the time of one step.
Bytes over time is the rate at which the step streams its arrays through the caches. If both
dtypes stream at about the same GB/s, the loop is bound by memory traffic, not arithmetic, and
float64 (twice the bytes) runs at about half the speed of float32 whatever its arithmetic costs.

    python experiments/bandwidth.py [--per-device 32768] [--devices 1] [--repeats 7] [--method manual]

Run it pinned to one core (``taskset -c 0``) with ``--devices 1`` to see one core's rate.
"""

import argparse
import os
import re
import time

import jax

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--per-device", type=int, default=32768, help="restarts per device per chunk")
ap.add_argument("--devices", type=int, default=1)
ap.add_argument("--repeats", type=int, default=7)
ap.add_argument("--steps", type=int, default=100)
ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
ap.add_argument("--method", default="autodiff", help="gradient method: autodiff or manual")
args = ap.parse_args()
jax.config.update("jax_num_cpu_devices", args.devices)
jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from jaxlab import engine  # noqa: E402
from jaxlab.config import SweepConfig  # noqa: E402
from jaxlab.throughput import loop_body  # noqa: E402

BYTES = {"f64": 8, "s64": 8, "u64": 8, "f32": 4, "s32": 4, "u32": 4, "pred": 1, "s8": 1, "u8": 1}
_DEF = re.compile(r"%(\S+) = (\w+)\[([\d,]*)\]")
_FUSION = re.compile(r"%(\S+) = (\w+)\[([\d,]*)\]\S* fusion\(([^)]*)\)")


def _nbytes(kind: str, dims: str) -> int:
    return BYTES.get(kind, 4) * int(np.prod([int(d) for d in dims.split(",") if d] or [1]))


def loop_traffic(hlo: str) -> tuple[int, int, int]:
    """``(kernels, bytes read, bytes written)`` of one iteration of the program's training loop
    (:func:`jaxlab.throughput.loop_body`), per device."""
    body, _ = loop_body(hlo)
    size = {m.group(1): _nbytes(m.group(2), m.group(3)) for m in _DEF.finditer(body)}
    n = read = written = 0
    for m in _FUSION.finditer(body):
        operands = re.sub(r"/\*index=\d+\*/", "", m.group(4)).split(",")
        read += sum(size.get(o.strip().lstrip("%"), 0) for o in operands if o.strip())
        written += _nbytes(m.group(2), m.group(3))
        n += 1
    return n, read, written


def main():
    devices = jax.local_devices()[: args.devices]
    size = args.per_device * len(devices)
    programs = {}
    for dtype in args.dtypes:
        for steps in sorted({1, args.steps}):
            # One lane block per device: the kernels of one training step, as before the blocks.
            cfg = SweepConfig(
                n_runs=max(1, size // 1024),
                dtype=dtype,
                chunk_size=size,
                lane_block=args.per_device,
                method=args.method,
            )
            cfg = cfg.with_settings(lr={"log": [0.1, 3.0, 1024]}, scale=1.0, max_steps=steps)
            plan = engine.make_plan(cfg, len(devices))
            exe, call_args = engine.chunk_call(plan, plan.tasks[0], devices)
            jax.block_until_ready(exe(*call_args))
            programs[dtype, steps] = (exe, call_args)
    times = {k: [] for k in programs}
    for _ in range(args.repeats):
        for k, (exe, call_args) in programs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(exe(*call_args))
            times[k].append(time.perf_counter() - t0)
    print(
        f"{args.per_device:,} restarts per device, {len(devices)} device(s), "
        f"{os.cpu_count()} cores; medians of {args.repeats}"
    )
    print(
        f"{'dtype':8} {'kernels':>7} {'B read':>7} {'B written':>9} {'ms/step':>8} "
        f"{'M restart-steps/s':>17} {'GB/s':>6}   (bytes per restart-step)"
    )
    for dtype in args.dtypes:
        exe, _ = programs[dtype, args.steps]
        n, read, written = loop_traffic(exe.as_text())
        t_step = (np.median(times[dtype, args.steps]) - np.median(times[dtype, 1])) / max(
            1, args.steps - 1
        )
        t_step = max(t_step, 1e-9)
        rate = size / t_step
        gbs = (read + written) * len(devices) / t_step / 1e9
        print(
            f"{dtype:8} {n:7d} {read / args.per_device:7.0f} {written / args.per_device:9.0f} "
            f"{t_step * 1e3:8.3f} {rate / 1e6:17.1f} {gbs:6.1f}"
        )


if __name__ == "__main__":
    main()
