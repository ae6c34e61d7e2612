"""``jaxlab bench``: restart-steps per second of jaxlab itself on the lab's workload.

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

Figures of merit, compile time excluded and reported apart: restart-steps/s of the steps the
restarts really took (their sum / wall seconds) and of the budget (R x max_steps / wall
seconds, the peers' figure: ratios to the peers are ratios of wall times), with the fraction of
the budget used and the lanes the engine chose (``lanes``: dense or recycled). Two figures per
configuration:

* ``engine``: :func:`jaxlab.engine.run_chunks` over every chunk, the host only adding the
  aggregates;
* ``end-to-end``: :func:`jaxlab.sweep.run_sweep` into a fresh run directory (reduction, a
  checkpoint after every chunk, ``cells.csv``, ``meta.json``; no figures) minus its compile time.

The ratio end-to-end / engine is the price of the sweep's bookkeeping (the target: >= 80% at
R = 1e6). ``jaxlab bench`` prints the table and the checks and writes ``OUT/bench.json``. The
comparison with the peer implementations (NumPy, PyTorch, the lab's loop) is not part of the
package: from a source checkout, ``python benchmarks/bench.py --peers ...`` runs them beside these
measurements, built from the functions here, and draws ``throughput.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jaxlab.errors import ConfigError, check_choice

__all__ = [
    "WORKLOAD",
    "banner",
    "bench_config",
    "cpu_model",
    "checks",
    "devices_of",
    "format_check",
    "format_line",
    "format_table",
    "loop_body",
    "machine_info",
    "main",
    "make_out",
    "measure",
    "measure_all",
    "parser",
    "print_report",
    "setup_jax",
    "validate",
]

DEFAULT_R = (1_000, 10_000, 100_000, 1_000_000)
QUICK_R = (1_000, 10_000)
MAX_STEPS = 100
LR_MIN, LR_MAX = 0.1, 3.0
MAX_LR_VALUES = 1000
BIG_R = 100_000  # above this, one timed repeat (as the peers do)
E2E_TARGET = 0.8  # end-to-end / engine at R = 1e6
F64_TARGET = 0.5  # float64 / float32 throughput ("within 2x")
PEERS_HINT = "python benchmarks/bench.py --peers ... from a source checkout"
_PEER_OPTIONS = ("--peers", "--peer-dtypes", "--peers-dir", "--torch-python")
WORKLOAD = {
    "network": "2-2-1", "dataset": "lab", "loss": "lab", "optimizer": "gd",
    "max_steps": MAX_STEPS, "lr": [LR_MIN, LR_MAX], "init": "N(0, 1)",
    "approximation": "jaxlab: lr on a log grid of K = min(1000, R) values, R // K "
    "restarts each (peers: log-uniform draws); jaxlab's own N(0, 1) draws",
}  # fmt: skip


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError("bench", message)


def parser(prog: str = "jaxlab bench", description: str | None = None) -> argparse.ArgumentParser:
    """The options that measure jaxlab (``benchmarks/bench.py`` adds its peer options)."""
    p = _Parser(
        prog=prog,
        description=description
        or "Restart-steps/s of jaxlab's sweep engine and of the whole sweep on the lab's workload "
        "(2-2-1 network, GD, max_steps=100, lr log-spaced in [0.1, 3]), compile time apart. "
        f"Peer comparisons (NumPy, PyTorch, the lab's loop): {PEERS_HINT}.",
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
    p.add_argument(
        "--lanes",
        default="auto",
        help="auto (default), dense or recycle: how the engine keeps its lanes busy",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench_out", help="output folder (default bench_out)")
    p.add_argument("--quick", action="store_true", help="R = 1e3, 1e4 and one repeat (tests)")
    return p


def validate(args) -> None:
    """Check and normalise the options of :func:`parser` in place (``ConfigError`` if bad)."""
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
    from jaxlab.config import LANES

    check_choice("lanes", args.lanes, LANES)
    if args.seed < 0:
        raise ConfigError("seed", f"expected an integer >= 0, got {args.seed}")
    args.methods = [check_choice("methods", m, METHODS) for m in dict.fromkeys(args.methods)]
    args.dtypes = [check_choice("dtypes", d, DTYPES) for d in dict.fromkeys(args.dtypes)]
    args.R = sorted(set(args.R))


def setup_jax(args) -> None:
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


def make_out(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError("out", f"cannot create directory {out}: {e.strerror}") from None
    return out


# --------------------------------------------------------------------------- measurements ----
def bench_config(R: int, method: str, dtype: str, seed: int = 0, lanes: str = "auto"):
    """The lab workload as a sweep: ``(SweepConfig, restarts run, K learning rates)``."""
    from jaxlab.config import SweepConfig

    k = min(MAX_LR_VALUES, R)
    lr = {"log": [LR_MIN, LR_MAX, k]} if k > 1 else math.sqrt(LR_MIN * LR_MAX)
    cfg = SweepConfig(
        name="bench", n_runs=R // k, method=method, dtype=dtype, seed=seed, lanes=lanes
    )
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


def _timed_runs(R, method, dtype, devices, seed, work_dir, lanes="auto"):
    """One configuration, compiled: ``(engine, end_to_end, base record)``; each call of the two
    functions is one timed run, ``-> (seconds, aggregates or SweepResult)``."""
    from jaxlab.aggregate import Aggregates
    from jaxlab.engine import compile_all, make_plan, run_chunks
    from jaxlab.sweep import run_sweep

    cfg, r_run, k = bench_config(R, method, dtype, seed, lanes)
    plan = make_plan(cfg, len(devices), devices[0].platform)
    compile_s = compile_all(plan, devices, both=True)

    last: dict = {}  # the last engine run's steps and lanes

    def engine():
        agg = Aggregates.zeros(cfg.n_cells, MAX_STEPS)
        ran = {"steps": 0, "lanes": set()}

        def on_chunk(r):
            agg.add_rows(r.first_cell, r.agg)
            ran["steps"] += r.steps_run
            ran["lanes"].add(r.lanes)

        t0 = time.perf_counter()
        run_chunks(plan, plan.tasks, devices, on_chunk)
        last["steps_run"] = ran["steps"]
        last["lanes"] = "/".join(sorted(ran["lanes"]))
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
    return engine, end_to_end, base, last


def measure(R, method, dtypes, devices, repeats, seed, work_dir, lanes="auto") -> list[dict]:
    """Engine-only and end-to-end records of one R and method, for each of ``dtypes``.

    ``repeats`` rounds (default 3 up to R = 1e5, 1 above); each round times every dtype's engine
    and end-to-end run once, the dtypes in the given order in the first, third, ... round and
    reversed in the others, so that the machine's drift (10-30% within minutes on the project's
    machine) hits the dtypes alike and the float64 / float32 ratio compares runs side by side.

    Up to R = 1e5 (``BIG_R``) one untimed run of each comes first. Above, first-call costs are
    small beside a run, except the sweep's one-off compile of its boundary replay (seconds, left
    out of its ``timings.compile_s``), which the first end-to-end round then includes.
    """
    runs = {d: _timed_runs(R, method, d, devices, seed, work_dir, lanes) for d in dtypes}
    if R <= BIG_R:
        # Warm-up: first-call costs (transfers, allocations; for the sweep, the compile of its
        # boundary replay) are not throughput.
        for engine, end_to_end, _, _ in runs.values():
            engine()
            end_to_end(-1)
    n = repeats if repeats is not None else (3 if R <= BIG_R else 1)
    t_eng = {d: [] for d in dtypes}
    t_e2e = {d: [] for d in dtypes}
    rss = {(d, v): 0.0 for d in dtypes for v in ("engine", "end-to-end")}
    last = {}
    for i in range(n):
        for d in dtypes if i % 2 == 0 else dtypes[::-1]:
            engine, end_to_end, _, _ = runs[d]
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
            # Steps the restarts took, per second, and the budget's (R x max_steps: the
            # peers' figure of merit, so ratios to them are ratios of wall times).
            ran = runs[d][3]
            rec["restart_steps_per_s"] = ran["steps_run"] / med
            rec["budget_steps_per_s"] = base["R_run"] * MAX_STEPS / med
            rec["budget_used"] = ran["steps_run"] / (base["R_run"] * MAX_STEPS)
            rec["lanes"] = ran["lanes"]
            rec["peak_rss_mb"] = rss[d, variant]
            recs.append(rec)
        recs[1]["same_counts_as_engine"] = int(res.cells["n_success"].sum()) == int(
            agg.n_success.sum()
        )
        recs[1]["compile_s"] = float(res.meta["timings"]["compile_s"])
        out += recs
    return out


def measure_all(args, devices, work_dir) -> list[dict]:
    """Every method and R of ``args`` (each record printed as it comes), in the table's order:
    by dtype, then method, then R (engine before end-to-end)."""
    records = []
    for method in args.methods:
        for R in args.R:
            recs = measure(
                R, method, args.dtypes, devices, args.repeats, args.seed, work_dir, args.lanes
            )
            for rec in recs:
                print(format_line(rec), flush=True)
            records += recs
    dt, me = args.dtypes.index, args.methods.index
    records.sort(key=lambda r: (dt(r["dtype"]), me(r["method"]), r["R"]))
    return records


# ------------------------------------------------------------------------------ reporting ----
def checks(records: list[dict]) -> list[dict]:
    """The issue's requirements on jaxlab's own records, each with the numbers behind it."""
    jl = {
        (r["variant"], r["method"], r["dtype"], r["R"]): r for r in records if r["impl"] == "jaxlab"
    }
    eng = {k[1:]: r for k, r in jl.items() if k[0] == "engine"}
    rs = {k[3] for k in jl}
    out = []
    if rs:
        R = 1_000_000 if 1_000_000 in rs else max(rs)  # the target is at R = 1e6
        for (v, m, d, r), e2e in jl.items():
            if v == "end-to-end" and r == R:
                ratio = e2e["budget_steps_per_s"] / eng[(m, d, R)]["budget_steps_per_s"]
                out.append({
                    "check": "end-to-end / engine", "method": m, "dtype": d, "R": R,
                    "value": ratio, "target": f">= {E2E_TARGET}", "ok": ratio >= E2E_TARGET,
                })  # fmt: skip
    for m in dict.fromkeys(k[0] for k in eng):
        both = [r for (m2, d, r) in eng if m2 == m and d == "float64" and (m, "float32", r) in eng]
        if both:
            R = max(both)
            q = (
                eng[(m, "float64", R)]["budget_steps_per_s"]
                / eng[(m, "float32", R)]["budget_steps_per_s"]
            )
            # Round by round (the dtypes run side by side in each round, see measure).
            t32, t64 = eng[(m, "float32", R)]["times_s"], eng[(m, "float64", R)]["times_s"]
            rounds = [a / b for a, b in zip(t32, t64)]
            out.append({
                "check": "float64 / float32", "method": m, "dtype": "float64", "R": R,
                "value": q, "target": f">= {F64_TARGET}", "ok": q >= F64_TARGET,
                "rounds": rounds, "detail": "by round: " + ", ".join(f"{r:.3f}" for r in rounds),
            })  # fmt: skip
    return out


def _fmt_rate(x) -> str:
    return "-" if x is None else f"{x / 1e6:,.2f} M"


def _fmt_frac(x) -> str:
    return "-" if x is None else f"{x:.1%}"


def format_table(records: list[dict], extra=()) -> str:
    """One row per record; ``extra``: further ``(header, record -> str)`` columns."""
    head = ("impl", "variant", "method", "dtype", "R", "median s", "restart-steps/s run",
            "budget steps/s", "budget used", "lanes", "compile s", "peak RSS MB", "success",
            "mean steps", *(h for h, _ in extra))  # fmt: skip
    rows = [head]
    for r in records:
        rows.append((
            r["impl"], r["variant"], r.get("method", "-"), r["dtype"], f"{r['R']:,}",
            f"{r['median_s']:.4f}", _fmt_rate(r.get("restart_steps_per_s")),
            _fmt_rate(r.get("budget_steps_per_s")), _fmt_frac(r.get("budget_used")),
            r.get("lanes", "-"), f"{r.get('compile_s', 0.0):.2f}", f"{r.get('peak_rss_mb', float('nan')):.0f}",
            f"{r.get('success_rate', float('nan')):.3f}", f"{r.get('mean_steps', float('nan')):.1f}",
            *(f(r) for _, f in extra),
        ))  # fmt: skip
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = ["  ".join(str(c).rjust(w) if i >= 4 else str(c).ljust(w)
                       for i, (c, w) in enumerate(zip(row, widths))) for row in rows]  # fmt: skip
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def format_check(c: dict) -> str:
    val = f"{c['value']:+.4f}" if c["check"].startswith("success") else f"{c['value']:.3f}"
    extra = f" ({c['detail']})" if "detail" in c else ""
    tag = "ok" if c["ok"] else "BELOW TARGET"
    return (f"  {c['check']}: {c['method']} {c['dtype']} R={c['R']:,}: {val}{extra}, "
            f"target {c['target']}: {tag}")  # fmt: skip


def format_line(rec: dict) -> str:
    return (f"{rec['impl']:>14} {rec['variant']:<24} {rec.get('method', '-'):<8} "
            f"{rec['dtype']:<7} R={rec['R']:>10,}  {rec['median_s']:9.4f} s  "
            f"{_fmt_rate(rec.get('restart_steps_per_s')):>11} restart-steps/s run, "
            f"{_fmt_rate(rec.get('budget_steps_per_s')):>11} of budget "
            f"({_fmt_frac(rec.get('budget_used'))} used, {rec.get('lanes', '-')} lanes)  "
            f"compile {rec.get('compile_s', 0.0):5.2f} s")  # fmt: skip


def loop_body(hlo: str) -> tuple[str, dict[str, str]]:
    """The training step's loop in a compiled program's optimised HLO text (``exe.as_text()``):
    of the innermost while bodies (not the map over lane blocks around them), the one with the
    most fusions; and every computation of the module by name (what its fusions call)."""
    comps = {}
    for block in re.split(r"\n(?=%|ENTRY)", hlo):
        m = re.match(r"%(\S+) ", block)
        if m:
            comps[m.group(1)] = block
    bodies = [comps[b] for b in set(re.findall(r"body=%([^,\s]+)", hlo)) if b in comps]
    inner = [c for c in bodies if " while(" not in c]
    return max(inner or bodies, key=lambda c: c.count(" fusion(")), comps


def cpu_model() -> str:
    """The host CPU as /proc/cpuinfo names it, with its family, model and widest vector ISA
    (a shared machine's CPU changes between sessions: every figure is recorded with it)."""
    info = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = line.partition(":")
            info.setdefault(k.strip(), v.strip())
    except OSError:
        return platform.processor() or "unknown"
    flags = info.get("flags", "").split()
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return (f"{info.get('model name', 'unknown')} (family {info.get('cpu family', '?')} model "
            f"{info.get('model', '?')}, {isa})")  # fmt: skip


def machine_info(devices) -> dict:
    import jax
    import jaxlib

    d = devices[0]
    return {
        "platform": d.platform, "device_kind": d.device_kind, "devices_used": len(devices),
        "local_devices": jax.local_device_count(), "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "host": platform.node(), "os": platform.platform(), "python": platform.python_version(),
        "jax": jax.__version__, "jaxlib": jaxlib.__version__, "numpy": np.__version__,
        "x64": bool(jax.config.jax_enable_x64), "loadavg_start": list(os.getloadavg()),
    }  # fmt: skip


def devices_of(args) -> list:
    import jax

    local = jax.local_devices()
    return local[: min(args.devices or len(local), len(local))]


def banner(prog: str, args, devices, machine) -> str:
    return (f"{prog}: {len(devices)} x {machine['device_kind']} ({machine['platform']}; "
            f"{machine['cpu_model']}), "
            f"R = {', '.join(f'{r:,}' for r in args.R)}, lr on a log grid of min(1000, R) values "
            f"in [{LR_MIN}, {LR_MAX}], N(0, 1) init, max_steps = {MAX_STEPS}")  # fmt: skip


def print_report(records: list[dict], found: list[dict], extra=()) -> None:
    print()
    print(format_table(records, extra))
    print("checks:")
    for c in found:
        print(format_check(c))


# ----------------------------------------------------------------------------------- main ----
def main(argv=None) -> int:
    """``jaxlab bench``: measure jaxlab, print the table and the checks, write bench.json.
    Exit 0; bad options (the peers' among them) raise ConfigError."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:  # ``jaxlab bench -- --R 1000``: a leading "--" is dropped
        argv = argv[1:]
    for a in argv:
        if a.split("=", 1)[0] in _PEER_OPTIONS:
            raise ConfigError(
                a.split("=", 1)[0].lstrip("-"),
                f"peer comparisons are not part of the jaxlab command; run {PEERS_HINT}",
            )
    args = parser().parse_args(argv)
    validate(args)
    setup_jax(args)
    out = make_out(args.out)
    devices = devices_of(args)
    machine = machine_info(devices)
    print(banner("jaxlab bench", args, devices, machine), flush=True)
    t_start = time.perf_counter()
    records = measure_all(args, devices, out)
    found = checks(records)
    print_report(records, found)
    machine["loadavg_end"] = list(os.getloadavg())
    doc = {
        "command": shlex.join(["jaxlab", "bench", *argv]), "argv": argv, "machine": machine,
        "workload": WORKLOAD, "seconds_total": time.perf_counter() - t_start,
        "measurements": records, "checks": found,
    }  # fmt: skip
    (out / "bench.json").write_text(json.dumps(doc, indent=2, default=str))
    print(f"wrote {out / 'bench.json'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    try:
        raise SystemExit(main())
    except ConfigError as e:
        sys.stderr.write(f"jaxlab bench: error: {e}\n")
        raise SystemExit(2) from None
