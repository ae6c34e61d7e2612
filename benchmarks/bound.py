"""The op-count bound of the lab's workload on this CPU, and how close jaxlab's engine gets.

The peers' README (``../shared/bench/README.md``) bounds one restart-step of the lab's formulas by
its operation counts: about 10 tanh, 5 exp, 5 log, 20 divisions and 180 other floating-point
operations (one forward and backward pass, no recomputation). This script measures the rate at
which XLA computes each kind of operation on this CPU, in float32, on every core at once (one
CPU device per core, each on its own lane-sized array), and turns the counts into the fastest a
restart-step can be: ``1 / sum(count / rate)``. It then reads the operations that jaxlab's
compiled training loop really performs per restart-step (from the optimised HLO of the peers'
workload, every kernel of one step) and times that chunk, so the figure reads "x% of the bound".

    python benchmarks/bound.py [--method autodiff] [--repeats 5] [--out bound.json]

Each rate is one fused kernel over 8,192 lanes a core that applies the operation to 16 offsets
of its input and averages them (16 independent operations a lane, as a step's are), looped
1,000 times inside one compiled program; the adds around each operation are taken off at the
measured rate of other operations (itself a multiply between the same two adds).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

N_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
LANES, WIDTH, ITERS = 8192, 16, 1000
PEER_COUNTS = {"tanh": 10, "exp": 5, "log": 5, "divide": 20, "other": 180}  # shared/bench README
# HLO opcodes of the loop body and the class each counts in ("other": one floating-point or
# integer vector operation; data movement such as bitcasts and broadcasts is free).
HLO_CLASS = {
    "tanh": "tanh", "exponential": "exp", "log": "log", "divide": "divide",
    **{op: "other" for op in (
        "add", "subtract", "multiply", "negate", "abs", "select", "compare", "and", "or", "not",
        "is-finite", "shift-right-arithmetic", "shift-right-logical", "shift-left", "maximum",
        "minimum", "clamp", "convert", "bitcast-convert", "xor", "sign",
    )},
}  # fmt: skip


def _median_times(programs: dict, repeats: int) -> dict:
    """Each ``name -> (fn, args)`` run once to warm, then timed once a round, the programs in
    turn (the machine's drift hits them alike); the median seconds of each."""
    import jax

    for fn, args in programs.values():
        jax.block_until_ready(fn(*args))
    ts = {k: [] for k in programs}
    for _ in range(repeats):
        for k, (fn, args) in programs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            ts[k].append(time.perf_counter() - t0)
    return {k: sorted(v)[len(v) // 2] for k, v in ts.items()}


# Each application: the offset's add, the operation, the sum's add (and exp's negation).
OPS = {"tanh": 2, "exp": 3, "log": 2, "divide": 2, "other": 3}


def rate_programs(width: int = WIDTH) -> dict:
    """One compiled program a class of operation: a fused kernel over ``LANES`` lanes a device
    that applies it to ``width`` offsets of its input and averages them, ``ITERS`` times."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    devices = jax.local_devices()
    mesh = Mesh(devices, ("d",))
    fns = {
        "tanh": jnp.tanh,
        "exp": lambda y: jnp.exp(-y),
        "log": jnp.log,
        "divide": lambda y: 1.0 / y,
        "other": lambda y: y * 0.999,  # the multiply: 3 ops with the two adds
    }
    y = jax.device_put(
        jnp.full((LANES * len(devices),), 0.5, jnp.float32), NamedSharding(mesh, P("d"))
    )
    out = {}
    for name, f in fns.items():

        def kernel(y, f=f):
            def body(_, y):
                terms = [f(y + (1.0 + k / width)) for k in range(width)]
                return sum(terms[1:], terms[0]) * (1.0 / width)

            return jax.lax.fori_loop(0, ITERS, body, y)

        shard = jax.shard_map(kernel, mesh=mesh, in_specs=P("d"), out_specs=P("d"), check_vma=False)
        out[name] = (jax.jit(shard), (y,))
    return out


def op_rates(seconds: dict, n_devices: int, width: int = WIDTH) -> dict[str, float]:
    """Operations per second, all cores together, for each class of :data:`PEER_COUNTS`, from
    the median seconds of :func:`rate_programs`; the adds around each operation are taken off
    at the rate of other operations."""
    n_elem = LANES * n_devices * width * ITERS
    rates = {"other": OPS["other"] * n_elem / seconds["other"]}
    for name, extra in OPS.items():
        if name != "other":
            t_op = seconds[name] - extra * n_elem / rates["other"]
            rates[name] = n_elem / max(t_op, 1e-12)
    return rates


def _here():
    """This checkout's :mod:`jaxlab.throughput` (its HLO reader and CPU name), also when an older
    jaxlab is the one imported (``PYTHONPATH`` = an old tree, to compare with)."""
    import importlib.util

    import jaxlab.throughput as tp

    if hasattr(tp, "loop_body"):
        return tp
    path = Path(__file__).resolve().parents[1] / "jaxlab" / "throughput.py"
    spec = importlib.util.spec_from_file_location("_jaxlab_throughput_here", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def bound(counts: dict, rates: dict) -> float:
    """Restart-steps per second if every operation ran at its measured rate, nothing else."""
    return 1.0 / sum(c / rates[k] for k, c in counts.items())


def loop_ops(hlo: str) -> tuple[int, Counter]:
    """``(kernels, op counts by class)`` of one step of the training loop in the optimised HLO
    (:func:`jaxlab.throughput.loop_body`), per restart (every kernel is over the lanes)."""
    body, comps = _here().loop_body(hlo)
    counts, kernels = Counter(), 0
    for line in body.splitlines():
        m = re.search(r" fusion\(.*calls=%([^,\s]+)", line)
        if not m:
            continue
        kernels += 1
        for op in re.findall(r"= \w+\[[\d,]*\]\S* ([\w-]+)\(", comps.get(m.group(1), "")):
            if op in HLO_CLASS:
                counts[HLO_CLASS[op]] += 1
    return kernels, counts


def engine_programs(method: str, R: int) -> dict:
    """The engine's chunk program on the peers' workload, dense lanes: with every restart running
    its 100 steps (``tol`` off: steps run = budget) and with the lab's rule."""
    import jax

    from jaxlab import engine
    from jaxlab.config import SweepConfig

    devices = jax.local_devices()
    out = {}
    for name, tol in (("engine", "off"), ("engine, lab's rule", 1e-4)):
        cfg = SweepConfig(
            n_runs=R // 1024, dtype="float32", chunk_size=R, method=method, lanes="dense", tol=tol
        ).with_settings(lr={"log": [0.1, 3.0, 1024]}, scale=1.0, max_steps=100)
        plan = engine.make_plan(cfg, len(devices))
        out[name] = engine.chunk_call(plan, plan.tasks[0], devices, "dense")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/bound.py", description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="autodiff", choices=["autodiff", "manual"])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--R", type=int, default=262144, help="restarts in the timed chunk")
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args(argv)
    import jax

    cpu_model = _here().cpu_model

    jax.config.update("jax_num_cpu_devices", N_CORES)
    n_dev = len(jax.local_devices())
    programs = rate_programs() | engine_programs(args.method, args.R)
    seconds = _median_times(programs, args.repeats)
    rates = op_rates(seconds, n_dev)
    peer_bound = bound(PEER_COUNTS, rates)
    rate = args.R * 100 / seconds["engine"]
    budget_rate = args.R * 100 / seconds["engine, lab's rule"]
    kernels, counts = loop_ops(programs["engine"][0].as_text())
    own = {k: counts.get(k, 0) for k in PEER_COUNTS}
    print(f"CPU: {cpu_model()}, {N_CORES} cores, {n_dev} devices; JAX {jax.__version__}; "
          f"medians of {args.repeats} interleaved rounds")  # fmt: skip
    print(
        "XLA float32 rates, all cores: "
        + ", ".join(f"{k} {v / 1e9:.2f} G/s" for k, v in rates.items())
    )
    print(
        "op-count bound (peers' counts " + ", ".join(f"{v} {k}" for k, v in PEER_COUNTS.items())
        + f"): {peer_bound / 1e6:.1f} M restart-steps/s"
    )  # fmt: skip
    print(
        f"jaxlab ({args.method}): {kernels} kernels a step, per restart-step "
        + ", ".join(f"{v} {k}" for k, v in own.items())
        + f"; its own counts at these rates: {bound(own, rates) / 1e6:.1f} M"
    )
    print(
        f"jaxlab engine, every restart 100 steps: {rate / 1e6:.1f} M restart-steps/s = "
        f"{rate / peer_bound:.0%} of the bound; with the lab's rule {budget_rate / 1e6:.1f} M "
        "budget restart-steps/s"
    )
    if args.out:
        Path(args.out).write_text(json.dumps({
            "cpu_model": cpu_model(), "cores": N_CORES, "jax": jax.__version__,
            "method": args.method, "rates": rates, "peer_counts": PEER_COUNTS,
            "bound": peer_bound, "kernels_per_step": kernels, "own_counts": own,
            "own_bound": bound(own, rates), "engine_steps_per_s": rate,
            "engine_budget_steps_per_s": budget_rate, "fraction_of_bound": rate / peer_bound,
        }, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
