"""jaxlab against its peers: the peer implementations of ``../shared/bench`` and jaxlab's own
throughput (:mod:`jaxlab.throughput`, the measurements of ``jaxlab bench``) in one invocation.

Run from a source checkout, with jaxlab importable (``pip install -e .``, or ``PYTHONPATH=.``)::

    python benchmarks/bench.py --peers numpy --R 1000000 --methods autodiff manual \\
        --dtypes float32 float64 --repeats 5 --out experiments/bench_cpu

``--peers`` runs the peer scripts (``numpy``, ``seed_loop``, ``torch``; no names: all available)
at the same R and reports jaxlab / peer at the same R and dtype, and a success-rate check against
each peer. Without ``--peers`` it measures jaxlab alone, as ``jaxlab bench`` does. Writes
``OUT/bench.json`` (machine, command line, every measurement, ratios, checks) and
``OUT/throughput.png``. Exit 0; 1 when a peer failed (the rest is still written); 2 for a bad
option (one line).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from jaxlab import throughput as tp
    from jaxlab.errors import ConfigError, check_choice
except ModuleNotFoundError as e:  # run from a checkout without jaxlab installed
    if e.name != "jaxlab":
        raise
    sys.exit("benchmarks/bench.py: jaxlab is not importable; pip install -e . (or PYTHONPATH=.)")

PROG = "benchmarks/bench.py"
PEER_SCRIPTS = {"numpy": "numpy_batched.py", "seed_loop": "seed_loop.py", "torch": "torch_vmap.py"}
SEED_LOOP_RUN = 1000  # seed_loop runs this many restarts and extrapolates beyond (0.014 M/s)
SUCCESS_TOL = 0.01  # |success rate(jaxlab) - success rate(peer)|
REPO = Path(__file__).resolve().parents[1]


def _parser():
    p = tp.parser(
        prog=PROG,
        description="jaxlab's restart-steps/s on the lab's workload (2-2-1 network, GD, "
        "max_steps=100, lr log-spaced in [0.1, 3]), compile time apart, and with --peers the "
        "peer implementations of shared/bench in the same run; writes bench.json and "
        "throughput.png.",
    )
    p.add_argument(
        "--peers",
        nargs="*",
        metavar="PEER",
        help="also run the peers: numpy, seed_loop, torch (no names: all available)",
    )
    p.add_argument("--peer-dtypes", nargs="+", default=["float32"], help="dtypes of the peers")
    p.add_argument("--peers-dir", help="folder of the peer scripts (default: ../shared/bench)")
    p.add_argument("--torch-python", help="a python with torch for torch_vmap.py")
    return p


def _validate(args) -> None:
    from jaxlab.config import DTYPES

    tp.validate(args)
    args.peer_dtypes = [check_choice("peer-dtypes", d, DTYPES) for d in args.peer_dtypes]
    if args.peers is not None:
        args.peers = [check_choice("peers", p, PEER_SCRIPTS) for p in args.peers]


# ---------------------------------------------------------------------------------- peers ----
def find_peers_dir(given: str | None) -> Path | None:
    """The folder holding the peer scripts: ``given``, else ``../shared/bench`` or
    ``shared/bench`` from the current folder, else the same beside this checkout."""
    if given is not None:
        cands = [Path(given)]
    else:
        cands = [Path.cwd() / "../shared/bench", Path.cwd() / "shared/bench",
                 REPO.parent / "shared/bench", REPO / "shared/bench"]  # fmt: skip
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
                cmd = [torch_python, script, "--R", *map(str, args.R), "--dtype", dt,
                       *repeats, *common]  # fmt: skip
                runs.append((name, cmd))
    return runs


def peer_records(cmd: list[str], peers_dir: Path) -> tuple[list[dict], str | None]:
    """Run one peer command (its ``--out`` a temporary folder); its records and an error. Each
    record gets a ``method`` for the table: ``autodiff`` for the vmapped-gradient variants, else
    ``manual`` (the peers' hand-written gradients)."""
    with tempfile.TemporaryDirectory(prefix="peer-") as tmp:
        try:
            r = subprocess.run([*cmd, "--out", tmp], cwd=peers_dir, capture_output=True, text=True)
        except OSError as e:
            return [], f"could not start: {e}"
        path = Path(tmp) / "results.jsonl"
        recs = [json.loads(s) for s in path.read_text().splitlines() if s] if path.exists() else []
    for rec in recs:
        rec.setdefault("method", "autodiff" if "vmap" in rec.get("variant", "") else "manual")
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()
        return recs, f"exit {r.returncode}: {tail[-1] if tail else '(no output)'}"
    return recs, None


# ------------------------------------------------------------------------------ reporting ----
def _budget_rate(rec: dict) -> float:
    """A jaxlab record's R x max_steps / wall seconds: the peers' figure of merit (records of
    an older jaxlab have only that one, as restart_steps_per_s)."""
    return rec.get("budget_steps_per_s") or rec["restart_steps_per_s"]


def _ratios(records: list[dict]) -> list[dict]:
    """jaxlab / peer at the same R and dtype, for every jaxlab record and peer record; each peer
    record gets ``jaxlab_over_peer`` (jaxlab's best engine figure over the peer's)."""
    out = []
    jl = [r for r in records if r["impl"] == "jaxlab"]
    for p in (r for r in records if r["impl"] != "jaxlab"):
        for j in jl:
            if j["R"] == p["R"] and j["dtype"] == p["dtype"] and p.get("restart_steps_per_s"):
                out.append({
                    "R": p["R"], "dtype": p["dtype"], "peer": f"{p['impl']} {p['variant']}",
                    "jaxlab": f"{j['variant']} {j['method']}",
                    "ratio": _budget_rate(j) / p["restart_steps_per_s"],
                })  # fmt: skip
        best = [
            _budget_rate(j)
            for j in jl
            if j["variant"] == "engine" and j["R"] == p["R"] and j["dtype"] == p["dtype"]
        ]
        if best and p.get("restart_steps_per_s"):
            p["jaxlab_over_peer"] = max(best) / p["restart_steps_per_s"]
    return out


def _peer_checks(records: list[dict]) -> list[dict]:
    """jaxlab's success rate against each peer's, at the largest R both ran."""
    eng = {
        (r["method"], r["dtype"], r["R"]): r
        for r in records
        if r["impl"] == "jaxlab" and r["variant"] == "engine"
    }
    peers = [r for r in records if r["impl"] != "jaxlab" and "success_rate" in r]
    common = {p["R"] for p in peers} & {k[2] for k in eng}
    checks = []
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


def _ratio_cell(rec: dict) -> str:
    ratio = rec.get("jaxlab_over_peer")
    return "-" if ratio is None else f"{ratio:.2f}x"


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
            key = f"{r['impl']} {r['variant']} ({r['method']}, {r['dtype']})"
            rate = _budget_rate(r) if r["impl"] == "jaxlab" else r["restart_steps_per_s"]
            series.setdefault(key, []).append((r["R"], rate))
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
    ax.set_ylabel(f"restart-steps / s (R x {tp.MAX_STEPS} / wall s)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if series:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# ----------------------------------------------------------------------------------- main ----
def main(argv=None) -> int:
    """Measure jaxlab and the peers, print the table and the checks, write bench.json and the
    png. Exit 0; 1 when a peer failed (the rest is still written); bad options raise
    ConfigError."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    _validate(args)
    tp.setup_jax(args)

    peers_dir = torch_python = None
    if args.peers is not None:
        peers_dir = find_peers_dir(args.peers_dir)
        if peers_dir is None:
            where = args.peers_dir or "../shared/bench or shared/bench beside the repository"
            raise ConfigError("peers-dir", f"no peer scripts ({PEER_SCRIPTS['numpy']}) in {where}")
        if not args.peers or "torch" in args.peers:
            torch_python = _torch_python(args, explicit="torch" in (args.peers or []))
    out = tp.make_out(args.out)
    devices = tp.devices_of(args)
    machine = tp.machine_info(devices)
    print(tp.banner(PROG, args, devices, machine), flush=True)
    t_start = time.perf_counter()
    records = tp.measure_all(args, devices, out)
    errors = []
    if peers_dir is not None:
        for name, cmd in _peer_runs(args, peers_dir, torch_python):
            recs, err = peer_records(cmd, peers_dir)
            for rec in recs:
                print(tp.format_line(rec), flush=True)
            records += recs
            if err:
                errors.append({"peer": name, "command": shlex.join(cmd), "error": err})
                print(f"{PROG}: peer {name} failed ({err})", file=sys.stderr, flush=True)
        if "torch" in (args.peers or list(PEER_SCRIPTS)) and torch_python is None:
            print("  (torch peer skipped: no python with torch; give --torch-python PATH)")
    ratios = _ratios(records)
    checks = tp.checks(records) + _peer_checks(records)
    extra = [("jaxlab/peer", _ratio_cell)] if peers_dir is not None else []
    tp.print_report(records, checks, extra)
    machine["loadavg_end"] = list(os.getloadavg())
    title = f"jaxlab throughput: {len(devices)} x {machine['device_kind']}, jax {machine['jax']}"
    plot(records, out / "throughput.png", title)
    doc = {
        "command": shlex.join(["python", PROG, *argv]), "argv": argv, "machine": machine,
        "workload": tp.WORKLOAD, "seconds_total": time.perf_counter() - t_start,
        "peers_dir": str(peers_dir or ""), "measurements": records, "ratios": ratios,
        "checks": checks, "peer_errors": errors,
    }  # fmt: skip
    (out / "bench.json").write_text(json.dumps(doc, indent=2, default=str))
    print(f"wrote {out / 'bench.json'} and {out / 'throughput.png'}")
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except ConfigError as e:
        sys.stderr.write(f"{PROG}: error: {e}\n")
        raise SystemExit(2) from None
