"""Items 12, 13, 15 and 17 of PERFORMANCE.md, measured in one process: what float64 costs.

Each variant's chunk program (the lab workload: 2-2-1 network, GD, lr log-spaced over [0.1, 3],
scale 1) is compiled first; then the variants are timed in turns, ``--repeats`` times, and the
median is printed as restart-steps/s. Variants switch back one optimisation at a time:

* ``draw=float64``: each restart's start drawn in float64 (before item 12; now float32);
* ``log=xla``: the float64 loss's product logged by XLA's ``log`` (before item 13: a scalar
  libm call per element on the CPU; now :func:`jaxlab.vecmath.log_pos64`);
* ``tanh=xla``: XLA's float64 ``tanh`` for the hidden units (before item 17; now
  :func:`jaxlab.vecmath.tanh64`); with ``sigmoid=xla`` also the sigmoid as XLA's
  ``1 / (1 + exp(-x))`` (before item 15; now :func:`jaxlab.vecmath.sigmoid64`).

``--steps 1`` times chunks of one step: the cost outside the training loop.

    python experiments/float64_ablation.py [--per-device 32768] [--devices 2] [--repeats 9]
"""

import argparse
import os
import time

import jax

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--per-device", type=int, default=32768, help="restarts per device per chunk")
ap.add_argument("--devices", type=int, default=os.cpu_count() or 1)
ap.add_argument("--repeats", type=int, default=9)
ap.add_argument("--steps", type=int, nargs="+", default=[100])
args = ap.parse_args()
jax.config.update("jax_num_cpu_devices", args.devices)
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxlab import engine, problems, unrolled  # noqa: E402
from jaxlab.config import SweepConfig  # noqa: E402

NEG_SUM_LOG = unrolled.neg_sum_log


@jax.custom_jvp
def sigmoid_xla(x):
    """Item 15's sigmoid as it was: XLA's ``exp``, then a division."""
    return 1.0 / (1.0 + jnp.exp(-x))


@sigmoid_xla.defjvp
def _sigmoid_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    s = sigmoid_xla(x)
    return s, s * (1.0 - s) * t


@jax.custom_jvp
def neg_sum_log_xla(terms):
    """Item 13's plain product, logged by XLA's own ``log``."""
    prod = terms[0]
    for t in terms[1:]:
        prod = prod * t
    return -jnp.log(prod) + 0.0 * sum(terms)


@neg_sum_log_xla.defjvp
def _jvp(primals, tangents):
    (terms,), (dots,) = primals, tangents
    return neg_sum_log_xla(terms), -sum(d / t for t, d in zip(terms, dots))


XLA_TANH = {"tanh": jnp.tanh}
VARIANTS = [  # name, dtype, draw dtype, functions of jaxlab.unrolled replaced
    ("float32", "float32", jnp.float32, {}),
    ("float64", "float64", jnp.float32, {}),
    ("float64 tanh=xla", "float64", jnp.float32, XLA_TANH),
    ("float64 tanh=xla sigmoid=xla", "float64", jnp.float32, {**XLA_TANH, "sigmoid": sigmoid_xla}),
    ("float64 log=xla", "float64", jnp.float32, {"neg_sum_log": neg_sum_log_xla}),
    ("float64 draw=float64", "float64", jnp.float64, {}),
    ("float64 draw=float64 log=xla", "float64", jnp.float64, {"neg_sum_log": neg_sum_log_xla}),
]
CURRENT = {"tanh": unrolled.tanh, "sigmoid": unrolled.sigmoid, "neg_sum_log": NEG_SUM_LOG}


def main():
    devices = jax.local_devices()[: args.devices]
    size = args.per_device * len(devices)
    programs = {}
    for steps in args.steps:
        for name, dtype, draw, replaced in VARIANTS:
            problems.DRAW_DTYPE = draw
            for attr, fn in {**CURRENT, **replaced}.items():
                setattr(unrolled, attr, fn)
            engine.chunk_fn.cache_clear()
            engine.compiled_chunk.cache_clear()  # trace again with this variant's functions
            cfg = SweepConfig(n_runs=max(1, size // 1024), dtype=dtype, chunk_size=size)
            cfg = cfg.with_settings(lr={"log": [0.1, 3.0, 1024]}, scale=1.0, max_steps=steps)
            plan = engine.make_plan(cfg, len(devices))
            exe, call_args = engine.chunk_call(plan, plan.tasks[0], devices)
            agg = jax.block_until_ready(exe(*call_args))[0]
            label = f"{name}, {steps} step{'s' * (steps > 1)}"
            programs[label] = (exe, call_args, steps, int(np.asarray(agg.n_success).sum()))
    problems.DRAW_DTYPE = jnp.float32
    for attr, fn in CURRENT.items():
        setattr(unrolled, attr, fn)
    times = {k: [] for k in programs}
    for _ in range(args.repeats):
        for label, (exe, call_args, _, _) in programs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(exe(*call_args))
            times[label].append(time.perf_counter() - t0)
    print(f"{size:,} restarts per chunk on {len(devices)} device(s), median of {args.repeats}")
    for label, (_, _, steps, ok) in programs.items():
        t = float(np.median(times[label]))
        print(
            f"{label:<40} {t * 1e3:8.1f} ms  {size * steps / t / 1e6:7.1f} M restart-steps/s"
            f"  successes {ok}"
        )


if __name__ == "__main__":
    main()
