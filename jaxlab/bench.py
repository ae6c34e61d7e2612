"""``jaxlab bench``: restart-steps per second of the sweep engine on the lab's workload.

The workload is the one of the peer benchmarks (``shared/bench/README.md``): the 2-2-1 network,
the 5-point dataset, the lab's loss, gradient descent with a constant learning rate for at most
``max_steps = 100`` steps and the lab's stopping rule; R restarts, each with N(0, 1) initial
parameters and its own learning rate in [0.1, 3]. jaxlab expresses it as a sweep::

    SweepConfig(n_runs=R // K, method=..., dtype=..., seed=...).with_settings(
        lr={"log": [0.1, 3.0, K]}, scale=1.0, max_steps=100)

with ``K = min(1000, R)`` learning rates. The approximation: the learning rates lie on a log grid
of K values (R // K restarts each) instead of being drawn log-uniformly, and the initial
parameters come from jaxlab's keys (``fold_in(key(seed), g)``), not from the peers' arrays, so
success rates agree statistically, not restart by restart. When K does not divide R, K * (R // K)
restarts run and the figures count those.

Figure of merit: restart-steps/s = R x max_steps / wall seconds, compile time excluded and
reported apart. Two jaxlab figures per configuration:

* ``engine``: :func:`jaxlab.engine.run_chunks` over every chunk, the host only adding the
  aggregates;
* ``end-to-end``: :func:`jaxlab.sweep.run_sweep` into a fresh run directory (reduction, a
  checkpoint after every chunk, ``cells.csv``, ``meta.json``; no figures) minus its compile time.

The ratio end-to-end / engine is the price of the sweep's bookkeeping (the target: >= 80% at
R = 1e6). ``--peers`` runs the peer scripts in the same invocation and reports jaxlab / peer at the
same R and dtype. Writes ``OUT/bench.json`` (machine, command line, every measurement, ratios,
checks) and ``OUT/throughput.png``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jaxlab.errors import ConfigError, check_choice

__all__ = ["bench_config", "main", "measure_jaxlab", "peer_records", "find_peers_dir"]

DEFAULT_R = (1_000, 10_000, 100_000, 1_000_000)
QUICK_R = (1_000, 10_000)
MAX_STEPS = 100
LR_MIN, LR_MAX = 0.1, 3.0
MAX_LR_VALUES = 1000
BIG_R = 100_000  # above this, one timed repeat (as the peers do)
PEER_SCRIPTS = {"numpy": "numpy_batched.py", "seed_loop": "seed_loop.py", "torch": "torch_vmap.py"}
SEED_LOOP_RUN = 1000  # seed_loop runs this many restarts and extrapolates beyond (0.014 M/s)
E2E_TARGET = 0.8  # end-to-end / engine at R = 1e6
F64_TARGET = 0.5  # float64 / float32 throughput ("within 2x")
SUCCESS_TOL = 0.01  # |success rate(jaxlab) - success rate(peer)|


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError("bench", message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="jaxlab bench",
        description="Restart-steps/s of the sweep engine on the lab's workload (2-2-1 network, "
        "GD, max_steps=100, lr log-spaced in [0.1, 3]), compile time apart; with --peers, the "
        "peer implementations of shared/bench in the same run.",
    )
    p.add_argument("--R", type=int, nargs="+", help=f"restart counts (default {DEFAULT_R})")
    p.add_argument("--methods", nargs="+", default=["autodiff", "manual"])
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    p.add_argument(
        "--repeats",
        type=int,
        help=f"timed rounds, medians reported (default 3 up to R = {BIG_R:,}, 1 above); "
        "each round times the dtypes in turn, so their ratio compares runs made side by side",
    )
    p.add_argument("--devices", type=int, help="local devices (default: all; CPU: one per core)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--peers",
        nargs="*",
        metavar="PEER",
        help="also run the peers: numpy, seed_loop, torch (no names: all available)",
    )
    p.add_argument("--peer-dtypes", nargs="+", default=["float32"], help="dtypes of the peers")
    p.add_argument("--peers-dir", help="folder of the peer scripts (default: ../shared/bench)")
    p.add_argument("--torch-python", help="a python with torch for torch_vmap.py")
    p.add_argument("--out", default="bench_out", help="output folder (default bench_out)")
    p.add_argument("--quick", action="store_true", help="R = 1e3, 1e4 and one repeat (tests)")
    return p


def _validate(args) -> None:
    from jaxlab.config import DTYPES, MAX_RUNS
    from jaxlab.gradients import METHODS

    args.R = list(args.R or (QUICK_R if args.quick else DEFAULT_R))
    if args.repeats is None and args.quick:
        args.repeats = 1
    for r in args.R:
        if not 1 <= r <= MAX_RUNS:
            raise ConfigError("R", f"expected integers in [1, {MAX_RUNS:,}], got {r}")
    if args.repeats is not None and args.repeats < 1:
        raise ConfigError("repeats", f"expected an integer >= 1, got {args.repeats}")
    if args.devices is not None and args.devices < 1:
        raise ConfigError("devices", f"expected an integer >= 1, got {args.devices}")
    if args.seed < 0:
        raise ConfigError("seed", f"expected an integer >= 0, got {args.seed}")
    args.methods = [check_choice("methods", m, METHODS) for m in dict.fromkeys(args.methods)]
    args.dtypes = [check_choice("dtypes", d, DTYPES) for d in dict.fromkeys(args.dtypes)]
    args.peer_dtypes = [check_choice("peer-dtypes", d, DTYPES) for d in args.peer_dtypes]
    if args.peers is not None:
        args.peers = [check_choice("peers", p, PEER_SCRIPTS) for p in args.peers]
    args.R = sorted(set(args.R))


def _setup_jax(args) -> None:
    """x64 when asked for, and one CPU device per core, before JAX creates anything."""
    import jax

    if "float64" in args.dtypes:
        jax.config.update("jax_enable_x64", True)
    if jax.config.jax_num_cpu_devices != -1 and args.devices is None:
        return  # the embedding program chose already (tests: 8 simulated devices)
    try:
        jax.config.update("jax_num_cpu_devices", args.devices or os.cpu_count() or 1)
    except RuntimeError:
        pass  # backend already initialised: use the devices it has


# --------------------------------------------------------------------------- measurements ----
def bench_config(R: int, method: str, dtype: str, seed: int = 0):
    """The lab workload as a sweep: ``(SweepConfig, restarts run, K learning rates)``."""
    from jaxlab.config import SweepConfig

    k = min(MAX_LR_VALUES, R)
    lr = {"log": [LR_MIN, LR_MAX, k]} if k > 1 else math.sqrt(LR_MIN * LR_MAX)
    cfg = SweepConfig(name="bench", n_runs=R // k, method=method, dtype=dtype, seed=seed)
    cfg = cfg.with_settings(lr=lr, scale=1.0, max_steps=MAX_STEPS).validate()
    return cfg, cfg.total_runs, k


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _device_peak_mb(dev) -> float | None:
    try:
        return dev.memory_stats()["peak_bytes_in_use"] / 2**20
    except (KeyError, TypeError, AttributeError, RuntimeError):
        return None


def _summary(agg) -> dict:
    n = int(agg.n_runs.sum())
    steps = float((agg.steps_hist.sum(axis=0) * np.arange(agg.steps_hist.shape[1])).sum())
    return {"success_rate": int(agg.n_success.sum()) / n, "mean_steps": steps / n}


def _timed_runs(R, method, dtype, devices, seed, work_dir):
    """One configuration, compiled: ``(engine, end_to_end, base record)``; each call of the two
    functions is one timed run, ``-> (seconds, aggregates or SweepResult)``."""
    from jaxlab.aggregate import Aggregates
    from jaxlab.engine import compile_all, make_plan, run_chunks
    from jaxlab.sweep import run_sweep

    cfg, r_run, k = bench_config(R, method, dtype, seed)
    plan = make_plan(cfg, len(devices), devices[0].platform)
    compile_s = compile_all(plan, devices)

    def engine():
        agg = Aggregates.zeros(cfg.n_cells, MAX_STEPS)
        t0 = time.perf_counter()
        run_chunks(plan, plan.tasks, devices, lambda r: agg.add_rows(r.first_cell, r.agg))
        return time.perf_counter() - t0, agg

    def end_to_end(i):
        with tempfile.TemporaryDirectory(prefix="sweep-", dir=work_dir) as tmp:
            t0 = time.perf_counter()
            res = run_sweep(cfg, Path(tmp) / f"run{i}", progress=False, figures=False,
                            n_devices=len(devices))  # fmt: skip
            wall = time.perf_counter() - t0
        return wall - res.meta["timings"]["compile_s"], res

    base = {
        "impl": "jaxlab", "method": method, "dtype": dtype, "R": R, "R_run": r_run,
        "max_steps": MAX_STEPS, "lr_values": k, "n_devices": len(devices),
        "chunk_size": plan.chunk_size, "n_chunks": len(plan.tasks), "compile_s": compile_s,
    }  # fmt: skip
    return engine, end_to_end, base


def measure_jaxlab(R, method, dtypes, devices, repeats, seed, work_dir) -> list[dict]:
    """Engine-only and end-to-end records of one R and method, for each of ``dtypes``.

    ``repeats`` rounds (default 3 up to R = 1e5, 1 above); each round times every dtype's engine
    and end-to-end run once, the dtypes in the given order in the first, third, ... round and
    reversed in the others, so that the machine's drift (10-30% within minutes on the project's
    machine) hits the dtypes alike and the float64 / float32 ratio compares runs side by side.
    """
    runs = {d: _timed_runs(R, method, d, devices, seed, work_dir) for d in dtypes}
    if R <= BIG_R:
        for engine, _, _ in runs.values():
            engine()  # warm-up: first-call costs (transfers, allocations) are not throughput
    n = repeats if repeats is not None else (3 if R <= BIG_R else 1)
    t_eng = {d: [] for d in dtypes}
    t_e2e = {d: [] for d in dtypes}
    rss = {(d, v): 0.0 for d in dtypes for v in ("engine", "end-to-end")}
    last = {}
    for i in range(n):
        for d in dtypes if i % 2 == 0 else dtypes[::-1]:
            engine, end_to_end, _ = runs[d]
            _reset_peak_rss()
            t, agg = engine()
            t_eng[d].append(t)
            rss[d, "engine"] = max(rss[d, "engine"], _peak_rss_mb())
            _reset_peak_rss()
            t, res = end_to_end(i)
            t_e2e[d].append(t)
            rss[d, "end-to-end"] = max(rss[d, "end-to-end"], _peak_rss_mb())
            last[d] = (agg, res)
    out = []
    for d in dtypes:
        agg, res = last[d]
        base = {**runs[d][2], "device_peak_mb": _device_peak_mb(devices[0]), **_summary(agg)}
        recs = []
        for variant, times in (("engine", t_eng[d]), ("end-to-end", t_e2e[d])):
            med = float(np.median(times))
            rec = {**base, "variant": variant, "times_s": times, "median_s": med}
            rec["restart_steps_per_s"] = base["R_run"] * MAX_STEPS / med
            rec["peak_rss_mb"] = rss[d, variant]
            recs.append(rec)
        recs[1]["same_counts_as_engine"] = int(res.cells["n_success"].sum()) == int(
            agg.n_success.sum()
        )
        recs[1]["compile_s"] = float(res.meta["timings"]["compile_s"])
        out += recs
    return out


# ---------------------------------------------------------------------------------- peers ----
def find_peers_dir(given: str | None) -> Path | None:
    """The folder holding the peer scripts: ``given``, else ``../shared/bench`` from the current
    folder, else ``shared/bench`` beside the repository that holds this package."""
    import jaxlab

    if given is not None:
        cands = [Path(given)]
    else:
        here = Path(jaxlab.__file__).resolve()
        cands = [Path.cwd() / "../shared/bench", Path.cwd() / "shared/bench",
                 here.parents[2] / "shared/bench", here.parents[1] / "shared/bench"]  # fmt: skip
    for c in cands:
        if (c / PEER_SCRIPTS["numpy"]).is_file():
            return c.resolve()
    return None


def _python_has(python: str, module: str) -> bool:
    try:
        r = subprocess.run([python, "-c", f"import {module}, numpy"], capture_output=True,
                           timeout=120)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def _torch_python(args, explicit: bool) -> str | None:
    if args.torch_python:
        if not _python_has(args.torch_python, "torch"):
            raise ConfigError("torch-python", f"{args.torch_python} cannot import torch and numpy")
        return args.torch_python
    if importlib.util.find_spec("torch") is not None:
        return sys.executable
    if explicit:
        raise ConfigError("peers", "torch: no python with torch here; give --torch-python PATH")
    return None


def _peer_runs(args, peers_dir: Path, torch_python: str | None) -> list[tuple[str, list[str]]]:
    """``(name, command line)`` of every peer run asked for."""
    names = args.peers or list(PEER_SCRIPTS)
    common = ["--seed", str(args.seed), "--save-losses", "0"]
    repeats = ["--repeats", str(3 if args.repeats is None else args.repeats)]
    runs = []
    for name in names:
        script = str(peers_dir / PEER_SCRIPTS[name])
        if name == "numpy":
            cmd = [sys.executable, script, "--R", *map(str, args.R), "--dtype", *args.peer_dtypes,
                   "--variants", "chunked-2thr", *repeats, *common]  # fmt: skip
            runs.append((name, cmd))
        elif name == "seed_loop":  # its speed does not depend on R: run it once, at the least R
            for dt in args.peer_dtypes:
                cmd = [sys.executable, script, "--R", str(args.R[0]), "--dtype", dt,
                       "--direct-max", str(SEED_LOOP_RUN), "--subsample", str(SEED_LOOP_RUN),
                       "--repeats", "1", *common]  # fmt: skip
                runs.append((name, cmd))
        elif name == "torch" and torch_python is not None:
            for dt in args.peer_dtypes:
                cmd = [
                    torch_python,
                    script,
                    "--R",
                    *map(str, args.R),
                    "--dtype",
                    dt,
                    *repeats,
                    *common,
                ]
                runs.append((name, cmd))
    return runs


def peer_records(cmd: list[str], peers_dir: Path) -> tuple[list[dict], str | None]:
    """Run one peer command (its ``--out`` a temporary folder); its records and an error."""
    with tempfile.TemporaryDirectory(prefix="peer-") as tmp:
        try:
            r = subprocess.run([*cmd, "--out", tmp], cwd=peers_dir, capture_output=True, text=True)
        except OSError as e:
            return [], f"could not start: {e}"
        path = Path(tmp) / "results.jsonl"
        recs = [json.loads(s) for s in path.read_text().splitlines() if s] if path.exists() else []
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()
        return recs, f"exit {r.returncode}: {tail[-1] if tail else '(no output)'}"
    return recs, None


# ------------------------------------------------------------------------------ reporting ----
def _method_of(rec: dict) -> str:
    if rec["impl"] == "jaxlab":
        return rec["method"]
    return "autodiff" if "vmap" in rec["variant"] else "manual"


def _ratios(records: list[dict]) -> list[dict]:
    """jaxlab / peer at the same R and dtype, for every jaxlab record and peer record."""
    out = []
    jl = [r for r in records if r["impl"] == "jaxlab"]
    for p in (r for r in records if r["impl"] != "jaxlab"):
        for j in jl:
            if j["R"] == p["R"] and j["dtype"] == p["dtype"] and p.get("restart_steps_per_s"):
                out.append({
                    "R": p["R"], "dtype": p["dtype"], "peer": f"{p['impl']} {p['variant']}",
                    "jaxlab": f"{j['variant']} {j['method']}",
                    "ratio": j["restart_steps_per_s"] / p["restart_steps_per_s"],
                })  # fmt: skip
        best = [
            j["restart_steps_per_s"]
            for j in jl
            if j["variant"] == "engine" and j["R"] == p["R"] and j["dtype"] == p["dtype"]
        ]
        if best and p.get("restart_steps_per_s"):
            p["jaxlab_over_peer"] = max(best) / p["restart_steps_per_s"]
    return out


def _checks(records: list[dict]) -> list[dict]:
    """The issue's requirements, each with the numbers behind it."""
    jl = {
        (r["variant"], r["method"], r["dtype"], r["R"]): r for r in records if r["impl"] == "jaxlab"
    }
    eng = {k[1:]: r for k, r in jl.items() if k[0] == "engine"}
    rs = {k[3] for k in jl}
    checks = []
    if rs:
        R = 1_000_000 if 1_000_000 in rs else max(rs)  # the target is at R = 1e6
        for (v, m, d, r), e2e in jl.items():
            if v == "end-to-end" and r == R:
                ratio = e2e["restart_steps_per_s"] / eng[(m, d, R)]["restart_steps_per_s"]
                checks.append({
                    "check": "end-to-end / engine", "method": m, "dtype": d, "R": R,
                    "value": ratio, "target": f">= {E2E_TARGET}", "ok": ratio >= E2E_TARGET,
                })  # fmt: skip
    for m in dict.fromkeys(k[0] for k in eng):
        both = [r for (m2, d, r) in eng if m2 == m and d == "float64" and (m, "float32", r) in eng]
        if both:
            R = max(both)
            q = (
                eng[(m, "float64", R)]["restart_steps_per_s"]
                / eng[(m, "float32", R)]["restart_steps_per_s"]
            )
            # Round by round (the dtypes run side by side in each round, see measure_jaxlab).
            t32, t64 = eng[(m, "float32", R)]["times_s"], eng[(m, "float64", R)]["times_s"]
            rounds = [a / b for a, b in zip(t32, t64)]
            checks.append({
                "check": "float64 / float32", "method": m, "dtype": "float64", "R": R,
                "value": q, "target": f">= {F64_TARGET}", "ok": q >= F64_TARGET,
                "rounds": rounds, "detail": "by round: " + ", ".join(f"{r:.3f}" for r in rounds),
            })  # fmt: skip
    peers = [r for r in records if r["impl"] != "jaxlab" and "success_rate" in r]
    common = {p["R"] for p in peers} & rs
    if common:
        R = max(common)  # the largest R both ran: the smallest sampling error
        for (m, d, r), j in eng.items():
            for p in (p for p in peers if p["R"] == R and r == R):
                diff = j["success_rate"] - p["success_rate"]
                checks.append({
                    "check": f"success rate vs {p['impl']} {p['variant']} ({p['dtype']})",
                    "method": m, "dtype": d, "R": R, "value": diff,
                    "detail": f"{j['success_rate']:.4f} vs {p['success_rate']:.4f}",
                    "target": f"|diff| <= {SUCCESS_TOL}", "ok": abs(diff) <= SUCCESS_TOL,
                })  # fmt: skip
    return checks


def _fmt_rate(x) -> str:
    return "-" if x is None else f"{x / 1e6:,.2f} M"


def format_table(records: list[dict]) -> str:
    head = ("impl", "variant", "method", "dtype", "R", "median s", "restart-steps/s",
            "compile s", "peak RSS MB", "success", "mean steps", "jaxlab/peer")  # fmt: skip
    rows = [head]
    for r in records:
        ratio = r.get("jaxlab_over_peer")
        rows.append((
            r["impl"], r["variant"], _method_of(r), r["dtype"], f"{r['R']:,}",
            f"{r['median_s']:.4f}", _fmt_rate(r.get("restart_steps_per_s")),
            f"{r.get('compile_s', 0.0):.2f}", f"{r.get('peak_rss_mb', float('nan')):.0f}",
            f"{r.get('success_rate', float('nan')):.3f}", f"{r.get('mean_steps', float('nan')):.1f}",
            "-" if ratio is None else f"{ratio:.2f}x",
        ))  # fmt: skip
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = ["  ".join(str(c).rjust(w) if i >= 4 else str(c).ljust(w)
                       for i, (c, w) in enumerate(zip(row, widths))) for row in rows]  # fmt: skip
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _fmt_check(c: dict) -> str:
    val = f"{c['value']:+.4f}" if c["check"].startswith("success") else f"{c['value']:.3f}"
    extra = f" ({c['detail']})" if "detail" in c else ""
    tag = "ok" if c["ok"] else "BELOW TARGET"
    return (f"  {c['check']}: {c['method']} {c['dtype']} R={c['R']:,}: {val}{extra}, "
            f"target {c['target']}: {tag}")  # fmt: skip


def plot(records: list[dict], path: Path, title: str) -> None:
    """restart-steps/s against R, log-log, one labelled line per impl/variant/method/dtype."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    series: dict = {}
    for r in records:
        if r.get("restart_steps_per_s"):
            key = f"{r['impl']} {r['variant']} ({_method_of(r)}, {r['dtype']})"
            series.setdefault(key, []).append((r["R"], r["restart_steps_per_s"]))
    for key, pts in series.items():
        pts.sort()
        x, y = zip(*pts)
        style = (
            "-" if key.startswith("jaxlab engine") else "--" if key.startswith("jaxlab") else ":"
        )
        ax.plot(x, y, style, marker="o", label=key)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("restarts R")
    ax.set_ylabel(f"restart-steps / s (R x {MAX_STEPS} / wall s)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if series:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _machine(devices) -> dict:
    import jax
    import jaxlib

    d = devices[0]
    return {
        "platform": d.platform, "device_kind": d.device_kind, "devices_used": len(devices),
        "local_devices": jax.local_device_count(), "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "host": platform.node(), "os": platform.platform(), "python": platform.python_version(),
        "jax": jax.__version__, "jaxlib": jaxlib.__version__, "numpy": np.__version__,
        "x64": bool(jax.config.jax_enable_x64), "loadavg_start": list(os.getloadavg()),
    }  # fmt: skip


def _line(rec: dict) -> str:
    return (f"{rec['impl']:>14} {rec['variant']:<24} {_method_of(rec):<8} {rec['dtype']:<7} "
            f"R={rec['R']:>10,}  {rec['median_s']:9.4f} s  "
            f"{_fmt_rate(rec.get('restart_steps_per_s')):>11} restart-steps/s  "
            f"compile {rec.get('compile_s', 0.0):5.2f} s")  # fmt: skip


# ----------------------------------------------------------------------------------- main ----
def main(argv=None) -> int:
    """``jaxlab bench``: measure, print the table and the checks, write bench.json and the png.
    Exit 0; 1 when a peer failed (the rest is still written); bad options raise ConfigError."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:  # ``jaxlab bench -- --R 1000``: a leading "--" is dropped
        argv = argv[1:]
    args = _parser().parse_args(argv)
    _validate(args)
    _setup_jax(args)
    import jax

    peers_dir = torch_python = None
    if args.peers is not None:
        peers_dir = find_peers_dir(args.peers_dir)
        if peers_dir is None:
            where = args.peers_dir or "../shared/bench or shared/bench beside the repository"
            raise ConfigError("peers-dir", f"no peer scripts ({PEER_SCRIPTS['numpy']}) in {where}")
        if not args.peers or "torch" in args.peers:
            torch_python = _torch_python(args, explicit="torch" in (args.peers or []))
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError("out", f"cannot create directory {out}: {e.strerror}") from None
    local = jax.local_devices()
    devices = local[: min(args.devices or len(local), len(local))]
    machine = _machine(devices)
    print(f"jaxlab bench: {len(devices)} x {machine['device_kind']} ({machine['platform']}), "
          f"R = {', '.join(f'{r:,}' for r in args.R)}, lr on a log grid of min(1000, R) values "
          f"in [{LR_MIN}, {LR_MAX}], N(0, 1) init, max_steps = {MAX_STEPS}", flush=True)  # fmt: skip
    records, errors = [], []
    t_start = time.perf_counter()
    for method in args.methods:
        for R in args.R:
            recs = measure_jaxlab(R, method, args.dtypes, devices, args.repeats, args.seed, out)
            for rec in recs:
                print(_line(rec), flush=True)
            records += recs
    # The table by dtype, then method, then R (stable: engine before end-to-end).
    dt, me = args.dtypes.index, args.methods.index
    records.sort(key=lambda r: (dt(r["dtype"]), me(r["method"]), r["R"]))
    if peers_dir is not None:
        for name, cmd in _peer_runs(args, peers_dir, torch_python):
            recs, err = peer_records(cmd, peers_dir)
            for rec in recs:
                print(_line(rec), flush=True)
            records += recs
            if err:
                errors.append({"peer": name, "command": shlex.join(cmd), "error": err})
                print(f"jaxlab bench: peer {name} failed ({err})", file=sys.stderr, flush=True)
        if "torch" in (args.peers or list(PEER_SCRIPTS)) and torch_python is None:
            print("  (torch peer skipped: no python with torch; give --torch-python PATH)")
    ratios = _ratios(records)
    checks = _checks(records)
    print()
    print(format_table(records))
    print("checks:")
    for c in checks:
        print(_fmt_check(c))
    machine["loadavg_end"] = list(os.getloadavg())
    title = f"jaxlab bench: {len(devices)} x {machine['device_kind']}, jax {machine['jax']}"
    plot(records, out / "throughput.png", title)
    doc = {
        "command": shlex.join(["jaxlab", "bench", *argv]), "argv": argv, "machine": machine,
        "workload": {
            "network": "2-2-1", "dataset": "lab", "loss": "lab", "optimizer": "gd",
            "max_steps": MAX_STEPS, "lr": [LR_MIN, LR_MAX], "init": "N(0, 1)",
            "approximation": "jaxlab: lr on a log grid of K = min(1000, R) values, R // K "
            "restarts each (peers: log-uniform draws); jaxlab's own N(0, 1) draws",
        },
        "seconds_total": time.perf_counter() - t_start, "peers_dir": str(peers_dir or ""),
        "measurements": records, "ratios": ratios, "checks": checks, "peer_errors": errors,
    }  # fmt: skip
    (out / "bench.json").write_text(json.dumps(doc, indent=2, default=str))
    print(f"wrote {out / 'bench.json'} and {out / 'throughput.png'}")
    return 1 if errors else 0


if __name__ == "__main__":  # pragma: no cover
    try:
        raise SystemExit(main())
    except ConfigError as e:
        sys.stderr.write(f"jaxlab bench: error: {e}\n")
        raise SystemExit(2) from None
