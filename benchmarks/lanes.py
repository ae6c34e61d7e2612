"""Before/after: the sweep's run time (compile apart) with an older jaxlab checked out beside this one.

    git worktree add --detach /tmp/jaxlab-old <commit>
    python benchmarks/lanes.py --old /tmp/jaxlab-old --steps 100 1000 5000 --repeats 3

For each repeat and budget, the default sweep (the lab's 99 cells x 1,000 restarts) runs once
with each tree, in alternating order, each in a fresh process (``python -m jaxlab sweep
--max-steps S --no-figures --quiet``, ``PYTHONPATH`` set to the tree); its ``meta.json`` gives the
run time (``timings.run_s_this_session``), the steps run and the lanes chosen. ``--peers-R R``
adds the peers' workload (``jaxlab bench --R R``, float32, autodiff: engine median seconds). The
table (medians, ratio old / new) goes to stdout and ``OUT/lanes.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _env(tree: Path) -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(tree)
    e.pop("XLA_FLAGS", None)
    return e


def sweep_once(tree: Path, steps: int, tmp: Path, extra=()) -> dict:
    out = tmp / f"run-{tree.name}-{steps}"
    cmd = [sys.executable, "-m", "jaxlab", "sweep", "--max-steps", str(steps), "--no-figures",
           "--quiet", "--out", str(out), *extra]  # fmt: skip
    p = subprocess.run(cmd, env=_env(tree), cwd=tmp, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{tree}: {' '.join(cmd)} failed: {p.stderr.strip()[-400:]}")
    meta = json.loads((out / "meta.json").read_text())
    t = meta["timings"]
    lanes = sorted({v["lanes"] for v in meta.get("lanes", {}).values()}) or ["dense (scan)"]
    subprocess.run(["rm", "-rf", str(out)])
    return {"run_s": t["run_s_this_session"], "compile_s": t["compile_s"],
            "steps_run": t.get("steps_run"), "budget_steps": 99_000 * steps,
            "lanes": "/".join(lanes)}  # fmt: skip


def bench_once(tree: Path, R: int, tmp: Path) -> dict:
    out = tmp / f"bench-{tree.name}"
    cmd = [sys.executable, "-m", "jaxlab", "bench", "--R", str(R), "--methods", "autodiff",
           "--dtypes", "float32", "--repeats", "1", "--out", str(out)]  # fmt: skip
    p = subprocess.run(cmd, env=_env(tree), cwd=tmp, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{tree}: {' '.join(cmd)} failed: {p.stderr.strip()[-400:]}")
    recs = json.loads((out / "bench.json").read_text())["measurements"]
    eng = next(r for r in recs if r["impl"] == "jaxlab" and r["variant"] == "engine")
    return {"run_s": eng["median_s"], "compile_s": eng["compile_s"],
            "steps_run": int(round(eng.get("budget_used", 1.0) * R * 100)),
            "budget_steps": R * 100, "lanes": eng.get("lanes", "dense (scan)")}  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, type=Path, help="the older jaxlab's source tree")
    ap.add_argument("--new", default=ROOT, type=Path, help="this tree (default)")
    ap.add_argument("--steps", type=int, nargs="+", default=[100, 1000, 5000])
    ap.add_argument("--peers-R", type=int, default=0, help="also the peers' workload at this R")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench_out/lanes"))
    args = ap.parse_args(argv)
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    cases = [("sweep", s) for s in args.steps] + ([("bench", args.peers_R)] if args.peers_R else [])
    got = {(k, c): [] for k in trees for c in cases}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i in range(args.repeats):
            for case in cases:
                order = list(trees) if i % 2 == 0 else list(trees)[::-1]
                for which in order:
                    kind, n = case
                    f = sweep_once if kind == "sweep" else bench_once
                    rec = f(trees[which], n, tmp)
                    got[which, case].append(rec)
                    print(f"{which} {kind} {n}: {rec}", flush=True)
    rows = []
    for case in cases:
        old = [r["run_s"] for r in got["old", case]]
        new = [r["run_s"] for r in got["new", case]]
        last = got["new", case][-1]
        rows.append({
            "case": f"default sweep, --max-steps {case[1]}" if case[0] == "sweep"
            else f"peers' workload, R = {case[1]:,}, 100 steps",
            "old_s": float(np.median(old)), "new_s": float(np.median(new)),
            "ratio": float(np.median(old) / np.median(new)), "old_runs": old, "new_runs": new,
            "budget_used": last["steps_run"] / last["budget_steps"] if last["steps_run"] else None,
            "lanes": last["lanes"],
            "new_exec_steps_per_s": last["steps_run"] / float(np.median(new)),
            "new_budget_steps_per_s": last["budget_steps"] / float(np.median(new)),
            "old_budget_steps_per_s": last["budget_steps"] / float(np.median(old)),
        })  # fmt: skip
    print(
        "\n| case | old run s | new run s | old / new | budget used | lanes | new steps/s run | new budget steps/s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for r in rows:
        used = "-" if r["budget_used"] is None else f"{r['budget_used']:.1%}"
        print(f"| {r['case']} | {r['old_s']:.3f} | {r['new_s']:.3f} | {r['ratio']:.2f}x | {used} "
              f"| {r['lanes']} | {r['new_exec_steps_per_s'] / 1e6:.1f} M "
              f"| {r['new_budget_steps_per_s'] / 1e6:.1f} M |")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lanes.json").write_text(json.dumps({"rows": rows, "runs": {
        f"{k} {c[0]} {c[1]}": v for (k, c), v in got.items()}}, indent=2) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
