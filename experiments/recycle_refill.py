"""How often recycled lanes should be refilled, and what a refill costs (the cost model's constant).

    python experiments/recycle_refill.py [--repeats 3]

1. The default sweep (99 cells x 1,000 restarts of the lab's network) at 100 and 5,000 steps in
   recycled lanes refilled every 1, 2, 4, 8, 16 steps: run time (compile apart), in one process,
   the refills interleaved over repeats.
2. The refill's cost in steps: a workload where every restart runs its whole budget (``tol =
   "off"``, 200 steps) in dense and in recycled lanes; recycled does ``refill + c`` steps' work
   per refill where dense does ``refill``, so ``c = refill * (t_recycle / t_dense - 1)``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from dataclasses import replace

import numpy as np

from jaxlab.config import SweepConfig
from jaxlab.sweep import run_sweep

REFILLS = (1, 2, 4, 8, 16)


def _run_s(cfg) -> float:
    return run_sweep(cfg, None, figures=False, progress=False).meta["timings"]["run_s_this_session"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if "Model name" in ln), "?"
    )
    print(f"CPU: {model}, {os.cpu_count()} cores")
    for steps in (100, 5000):
        base = replace(SweepConfig().with_settings(max_steps=steps), lanes="recycle")
        times = {k: [] for k in REFILLS}
        for k in REFILLS:  # compile (and warm) each first
            _run_s(replace(base, refill=k))
        for i in range(args.repeats):
            for k in REFILLS if i % 2 == 0 else REFILLS[::-1]:
                times[k].append(_run_s(replace(base, refill=k)))
        print(f"default sweep, {steps} steps, recycled: run s by refill")
        for k in REFILLS:
            print(f"  refill {k:>2}: {np.median(times[k]):.3f} s  {times[k]}")
    full = SweepConfig(tol="off").with_settings(max_steps=200, lr=[0.1, 0.3], scale=1.0)
    full = replace(full, n_runs=32768)
    variants = {"dense": replace(full, lanes="dense")}
    variants |= {f"recycle {k}": replace(full, lanes="recycle", refill=k) for k in (4, 8, 16)}
    t = {v: [] for v in variants}
    for cfg in variants.values():
        _run_s(cfg)
    for i in range(args.repeats):
        for v, cfg in variants.items() if i % 2 == 0 else list(variants.items())[::-1]:
            t[v].append(_run_s(cfg))
    dense = np.median(t["dense"])
    print("every restart runs its whole budget (tol off, 200 steps, 65,536 restarts):")
    print(f"  dense: {dense:.3f} s  {t['dense']}")
    for k in (4, 8, 16):
        rec = np.median(t[f"recycle {k}"])
        print(
            f"  recycle, refill {k}: {rec:.3f} s  {t[f'recycle {k}']}: "
            f"a refill costs {k * (rec / dense - 1):.2f} steps"
        )


if __name__ == "__main__":
    main()
