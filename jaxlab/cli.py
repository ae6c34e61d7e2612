"""The ``jaxlab`` command line: ``sweep``, ``plot``, ``report``, ``gradcheck``, ``bench``.

Bad input ends in one line on stderr naming the parameter and what is allowed, exit status 2,
and nothing written. Ctrl-C stops a sweep at a chunk boundary (exit 130) with the command that
resumes it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from jaxlab.errors import ConfigError, did_you_mean

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def _names(registry) -> str:
    return ", ".join(registry)


def _setting_help() -> dict[str, str]:
    """Help of each sweepable setting; the allowed names come from the registries."""
    from jaxlab.datasets import DATASETS
    from jaxlab.objectives import OBJECTIVES
    from jaxlab.train import OPTIMIZERS

    return {
        "lr": "learning rate(s): 1, 0.5,1,2 or a range 0.1:10:11:log (any declared setting "
        "also takes --set NAME=VALUES)",
        "scale": "initialisation scale(s) (std of N(0, scale^2)): as --lr",
        "momentum": "momentum(s) of the 'momentum' optimiser, in [0, 1)",
        "x1": "start x1 (objectives; default: random in the box): as --lr with lin ranges",
        "x2": "start x2 (objectives): as --x1",
        "objective": f"objective name(s) (problem=objective): {_names(OBJECTIVES)}",
        "dataset": f"dataset name(s) (problem=network): {_names(DATASETS)}",
        "widths": "layer widths, e.g. 2-2-1 or 2-2-1,2-4-1",
        "optimizer": f"optimiser(s): {_names(OPTIMIZERS)} (gd: the lab's step)",
        "max_steps": "step budget(s) per restart",
    }


def _tol(text: str):
    """``--tol``: a number, or ``off`` for no stopping rule (the range is checked by the
    config)."""
    if text == "off":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a finite number >= 0 or off, got {text!r}"
        ) from None


_SCALAR_FLAGS = {
    "name": (str, "name of the sweep (default: lab)"),
    "problem": (
        str,
        "network (the lab's Exercise 3), objective (Exercise 1 style), or your own: "
        "module:attribute naming a jaxlab.Problem (or a function returning one)",
    ),
    "loss": (str, "network: lab (the lab's BCE with 1e-15) or logit (stable)"),
    "method": (str, "gradient: autodiff (jax.grad) or manual (hand-written VJPs)"),
    "dtype": (str, "float32 or float64 (float64 turns on JAX's x64 for the sweep)"),
    "tol": (
        _tol,
        "stopping rule: stop when loss_prev - loss_new < tol (default 1e-4; it also fires "
        "when the loss rises); off: no rule, every restart runs its whole budget",
    ),
    "keys": (
        str,
        "independent (default: every restart its own key) or paired (restart i of every "
        "cell starts from the same key: common random numbers for comparing settings)",
    ),
    "threshold": (float, "success: final loss (objectives: f - f_min) below this (default 0.1)"),
    "n_runs": (int, "restarts per grid cell (default 1000)"),
    "seed": (int, "root seed; restart g uses fold_in(key(seed), g)"),
    "chunk_size": (int, "restarts per compiled call (default: from devices and memory)"),
    "ci_width": (
        float,
        "adaptive: after the first round of n_runs, more restarts in rounds to every cell whose "
        "95%% confidence sequence is wider than this, in (0, 1) (e.g. 0.05)",
    ),
    "max_runs": (
        int,
        "adaptive: at most this many restarts a cell (default 100 x n_runs, as fits)",
    ),
    "refine": (
        int,
        "refined: split in four, round by round, every cell where the success map's boundary "
        "is, down to this many cells per axis (two traced axes; e.g. 512)",
    ),
    "levels": (
        str,
        "refined: the success levels whose boundary is refined, in (0, 1) (default 0.5; e.g. "
        "0.1,0.5)",
    ),
    "lanes": (
        str,
        "auto (default: chosen per static combination by a probe), dense (a block of restarts "
        "runs until its slowest stops) or recycle (a lane whose restart stopped takes the next "
        "one); never changes a result",
    ),
    "refill": (int, "recycled lanes: steps between refills (default 0: jaxlab's choice)"),
}


def _all_flags(parser) -> list[str]:
    out = []
    for a in parser._actions:
        out += [s for s in a.option_strings if s.startswith("--")]
        if isinstance(a, argparse._SubParsersAction):
            for sp in a.choices.values():
                out += _all_flags(sp)
    return out


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (and a did-you-mean for unknown flags). Abbreviated flags
    are refused: ``--n-run 5`` is a typo to report, not a prefix of ``--n-runs`` to guess."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        if "unrecognized arguments" in message:
            flags = [a for a in message.split(":", 1)[1].split() if a.startswith("--")]
            known = _all_flags(self)
            if flags:
                message += did_you_mean(flags[0], known)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_BAD_INPUT)


def _sweep_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "sweep",
        help="run a sweep (default: the lab's network over learning rate x scale)",
        description="Map how often training succeeds over a grid of settings. Every setting takes "
        "one value, a list (a,b,c) or a range (start:stop:num[:log|lin]); several values make it "
        "an axis of the grid. Writes a run directory: config.toml, cells.csv, meta.json, figures.",
    )
    p.add_argument(
        "--config", metavar="FILE.toml", help="read settings from a TOML file (flags override)"
    )
    p.add_argument("--preset", default=None, help="a built-in sweep: lab (default) or quadratic")
    p.add_argument(
        "--out", metavar="DIR", help="run directory (default: runs/NAME-YYYYmmdd-HHMMSS)"
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted sweep in RUN_DIR with its config.toml (a finished one is "
        "left as it is); takes --no-figures, --quiet, --devices and the process flags",
    )
    for name, (typ, text) in _SCALAR_FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, help=text)
    for name, text in _setting_help().items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, metavar="VALUES", help=text)
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUES",
        default=[],
        help="any setting the problem declares, e.g. --set width=4,8 --set lr=0.01:1:5:log "
        "(repeatable; the flags above are short forms)",
    )
    p.add_argument(
        "--points",
        metavar="FILE.csv",
        help="sweep these points instead of a grid: a header of setting names, a row per point "
        "(each n_runs restarts)",
    )
    p.add_argument(
        "--keep-runs",
        action="store_true",
        default=None,
        help="also keep one record per restart: runs/part-*.parquet, a Parquet file per chunk "
        "(needs pyarrow; `jaxlab export RUN_DIR --runs-csv` writes them as one runs.csv)",
    )
    p.add_argument("--no-figures", action="store_true", help="skip drawing the figures")
    p.add_argument(
        "--log",
        metavar="TRACKER",
        help="log the finished sweep as one tracker run: mlflow (MLFLOW_TRACKING_URI says where)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument(
        "--devices",
        type=int,
        help="local devices to use (CPU: host devices; default: one per core)",
    )
    g = p.add_argument_group("several processes / hosts (jax.distributed)")
    g.add_argument("--processes", type=int, help="number of processes in the sweep")
    g.add_argument("--process-id", type=int, help="this process's index, 0 .. processes-1")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address")
    g.add_argument(
        "--distributed",
        action="store_true",
        help="initialise from the cluster's environment (Slurm, ...) via jax.distributed.initialize()",
    )
    return p


MAX_DEVICES = 4096


def _setup_devices(n: int | None, distributed: bool) -> None:
    import jax

    if n is not None and not 1 <= n <= MAX_DEVICES:
        raise ConfigError("devices", f"expected an integer in [1, {MAX_DEVICES}], got {n}")
    try:
        jax.config.update("jax_num_cpu_devices", n or os.cpu_count() or 1)
        if distributed:
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except RuntimeError:
        # JAX already started in this process (main() called from Python): its devices exist;
        # run_sweep(n_devices=...) picks --devices of them.
        pass


def _init_distributed(args) -> None:
    import jax

    if args.distributed:
        _initialize(jax, "distributed")
        return
    given = [args.processes is not None, args.process_id is not None, args.coordinator is not None]
    if not any(given):
        return
    if not all(given):
        raise ConfigError("processes", "--processes, --process-id and --coordinator go together")
    if args.processes < 1:
        raise ConfigError("processes", f"expected an integer >= 1, got {args.processes}")
    if not 0 <= args.process_id < args.processes:
        raise ConfigError(
            "process-id", f"expected an integer in [0, {args.processes - 1}], got {args.process_id}"
        )
    host, _, port = args.coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError("coordinator", f"expected HOST:PORT, got {args.coordinator!r}")
    _initialize(
        jax,
        "coordinator",
        coordinator_address=args.coordinator,
        num_processes=args.processes,
        process_id=args.process_id,
    )


def _initialize(jax, param: str, **kwargs) -> None:
    try:
        jax.distributed.initialize(**kwargs)
    except (RuntimeError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(param, f"jax.distributed.initialize failed: {first}") from None


_SHORT = tuple(_setting_help())  # settings with a flag of their own (when the problem has them)


def _sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise ConfigError("set", f"expected NAME=VALUES, got {item!r}")
        out[name.strip()] = value
    return out


def _build_config(args):
    from jaxlab.config import from_dict, from_file
    from jaxlab.presets import preset

    SWEEPABLE = _SHORT
    if args.resume:
        others = [k for k in ("config", "preset", "out") if getattr(args, k)]
        others += [k for k in list(_SCALAR_FLAGS) + list(SWEEPABLE) if getattr(args, k) is not None]
        others += ["keep_runs"] if args.keep_runs else []
        others += ["points"] if args.points else []
        others += ["set"] if args.set else []
        if others:
            flags = ", ".join("--" + k.replace("_", "-") for k in others)
            raise ConfigError(
                "resume",
                f"--resume takes the run directory alone (its config.toml is reused; only "
                f"--no-figures, --quiet, --devices and the process flags may be added), got "
                f"also {flags}; to change settings start a new sweep with another --out",
            )
        if not Path(args.resume).is_dir():
            raise ConfigError("resume", f"{args.resume} is not a directory; give a run directory")
        return None
    cfg = preset(args.preset or "lab")
    if args.config:
        cfg = from_file(args.config, base=cfg)
    flags = {k: getattr(args, k) for k in list(_SCALAR_FLAGS) + list(SWEEPABLE)}
    flags = {k: v for k, v in flags.items() if v is not None}
    for k, v in _sets(args.set).items():
        if k in flags:
            raise ConfigError(k, f"given twice (--{k.replace('_', '-')} and --set {k}=...)")
        flags[k] = v
    if args.keep_runs:
        flags["keep_runs"] = True
    if args.points:
        flags["points"] = args.points
    return from_dict(flags, base=cfg, path=os.getcwd()) if flags else cfg.validate()


def _summary(res, seconds: float) -> str:
    import numpy as np

    c, cfg = res.cells, res.config
    n_cells = len(c["n_runs"])
    cells = "cell" if n_cells == 1 else "cells"
    total = int(np.sum(c["n_runs"]))
    lines = [f"jaxlab: {total:,} restarts in {n_cells:,} {cells}, {seconds:.1f} s"]
    if "refine" in res.meta:
        rf = res.meta["refine"]
        fx, fy = rf["finest"]
        lines.append(
            f"  refined: {rf['rounds']} rounds, cells per level {rf['cells_per_level']}, "
            f"{rf['leaves']:,} leaves; a uniform {fx} x {fy} grid: {rf['uniform_restarts']:,} "
            f"restarts ({rf['saving']:.1f}x these)"
        )
    if "adaptive" in res.meta:
        ad = res.meta["adaptive"]
        lines.append(
            f"  adaptive: {ad['rounds']} rounds to ci_width {ad['ci_width']}; restarts a cell "
            f"{ad['min_runs']:,} .. {ad['max_runs_used']:,}; "
            f"{ad['cells_at_cap_wider']:,} cells wider at the cap ({ad['max_runs']:,})"
        )
    t = res.meta.get("timings", {})
    if t.get("restart_steps_per_s"):
        line = (
            f"  compile {t['compile_s']:.1f} s, {t['restarts_per_s']:,.0f} restarts/s, "
            f"{t['restart_steps_per_s'] / 1e6:,.1f} M restart-steps/s run"
        )
        if t.get("budget_steps_per_s"):  # older run directories have only the budget figure
            line += (
                f" ({t['budget_steps_per_s'] / 1e6:,.1f} M of budget; "
                f"{t['budget_used']:.0%} of the budget used)"
            )
        lanes = sorted({v["lanes"] for v in res.meta.get("lanes", {}).values()})
        if lanes:
            line += f", lanes {'/'.join(lanes)}"
        lines.append(line)
    from jaxlab.aggregate import best_index

    best = best_index(c["success_rate"], c["ci_low"]) or 0  # the figure's rule
    desc = ", ".join(
        f"{a.name}={c[a.name][best]:.4g}" if a.traced else f"{a.name}={c[a.name][best]}"
        for a in cfg.axes
    )
    lines.append(
        f"  best cell: {desc or '(single cell)'}: success {c['success_rate'][best]:.3f} "
        f"[{c['ci_low'][best]:.3f}, {c['ci_high'][best]:.3f}] of {c['n_runs'][best]:,}"
        + (
            f" (confidence sequence [{c['cs_low'][best]:.3f}, {c['cs_high'][best]:.3f}])"
            if "cs_low" in c
            else ""
        )
    )
    n_div = int(np.sum(c["n_diverged"]))
    lines.append(f"  diverged runs: {n_div:,}")
    if res.run_dir is not None:
        lines.append(f"  run directory: {res.run_dir}")
    return "\n".join(lines)


def cmd_sweep(args) -> int:
    if args.log is not None:  # before anything runs or is written
        from jaxlab.trackers import check_tracker

        check_tracker(args.log)
    distributed = args.distributed or args.processes is not None
    _setup_devices(args.devices, distributed)
    cfg = _build_config(args)
    _init_distributed(args)
    from jaxlab.sweep import SweepInterrupted, run_sweep
    from jaxlab.validate import finished

    out = args.resume or args.out
    already = bool(args.resume) and finished(out)  # then nothing is computed or rewritten
    if out is None:
        out = Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    t0 = time.perf_counter()
    try:
        res = run_sweep(
            cfg, out, resume=bool(args.resume), progress=False if args.quiet else None,
            figures=not args.no_figures, n_devices=args.devices, log=args.log,
        )  # fmt: skip
    except SweepInterrupted as e:
        sys.stderr.write(f"jaxlab: {e}\n")
        return EXIT_INTERRUPTED
    import jax

    if args.quiet or jax.process_index() != 0:
        return 0
    if already:
        print(
            f"{out}: sweep already finished ({int(sum(res.cells['n_runs'])):,} restarts); nothing to do "
            f"(redraw its figures with: jaxlab plot {out})"
        )
    else:
        print(_summary(res, time.perf_counter() - t0))
    return 0


def cmd_plot(args) -> int:
    from jaxlab import plots

    return plots.main_plot(args.run_dir, args.x, args.y, args.facet)


def cmd_report(args) -> int:
    from jaxlab import report

    return report.main_report(args.run_dir, args.x, args.y)


def cmd_export(args) -> int:
    from jaxlab.records import export_csv
    from jaxlab.results import load_run

    if args.runs_csv is None:
        raise ConfigError("export", "say what to export: --runs-csv [FILE]")
    res = load_run(args.run_dir)
    path = Path(args.runs_csv or Path(args.run_dir) / "runs.csv")
    if not path.parent.is_dir():
        raise ConfigError("runs_csv", f"{path.parent} is not a directory")
    print(export_csv(res, path))
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="jaxlab", description="How often does training succeed, and for which settings?"
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _sweep_parser(sub).set_defaults(func=cmd_sweep)
    pp = sub.add_parser(
        "plot",
        help="redraw every figure of a run directory from its saved results",
        description="Redraw a run directory's figures from its files (nothing is recomputed). "
        "The maps show one or two axes; every other axis is a facet: one panel per value.",
    )
    pp.add_argument("run_dir")
    pp.add_argument("--x", metavar="NAME", help="axis across the maps (default: traced axes first)")
    pp.add_argument("--y", metavar="NAME", help="axis up the maps (default: the next axis)")
    pp.add_argument(
        "--facet",
        metavar="NAME[,NAME]",
        help="axes to draw one panel per value of (default: every axis not mapped); the axes "
        "neither mapped nor named are pooled, and the figure says so; 'none' pools them all",
    )
    pp.set_defaults(func=cmd_plot)
    pr = sub.add_parser(
        "report",
        help="write report.html: a self-contained, interactive HTML report of a run directory",
        description="Write RUN_DIR/report.html from the run's files (nothing is recomputed): "
        "interactive success-rate and steps maps (hover a cell for its numbers), the problem's "
        "figures, config.toml and meta.json's provenance; it opens offline. Needs bokeh "
        "(pip install 'jaxlab[report]').",
    )
    pr.add_argument("run_dir")
    pr.add_argument("--x", metavar="NAME", help="axis across the maps (default: as jaxlab plot)")
    pr.add_argument("--y", metavar="NAME", help="axis up the maps (default: as jaxlab plot)")
    pr.set_defaults(func=cmd_report)
    pe = sub.add_parser(
        "export",
        help="write a run directory's per-run records (Parquet) as one runs.csv",
        description="Write the per-run records of a sweep run with --keep-runs (its Parquet "
        "dataset runs/part-*.parquet) as one CSV file, in the columns and number formatting "
        "runs.csv had before Parquet; streamed part by part.",
    )
    pe.add_argument("run_dir")
    pe.add_argument(
        "--runs-csv",
        nargs="?",
        const="",
        metavar="FILE",
        help="the CSV file to write (default: RUN_DIR/runs.csv)",
    )
    pe.set_defaults(func=cmd_export)
    # Listed for `jaxlab --help` only: main() hands these to their own parsers (_PASS_THROUGH).
    sub.add_parser("gradcheck", help="three-way gradient checks in float64", add_help=False)
    sub.add_parser(
        "bench",
        help="measure jaxlab's throughput (peers: python benchmarks/bench.py in a checkout)",
        add_help=False,
    )
    return p


_PASS_THROUGH = {"bench": "jaxlab.throughput", "gradcheck": "jaxlab.gradcheck"}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _PASS_THROUGH:  # these parse their own options (--help included)
        import importlib

        try:
            return importlib.import_module(_PASS_THROUGH[argv[0]]).main(argv[1:])
        except ConfigError as e:
            sys.stderr.write(f"jaxlab {argv[0]}: error: {e}\n")
            return EXIT_BAD_INPUT
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:
        from jaxlab.rundir import DiskError

        sys.stderr.write(f"jaxlab: error: {e}\n")
        return EXIT_FAILED if isinstance(e, DiskError) else EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write(
            "jaxlab: interrupted; a sweep continues with: jaxlab sweep --resume RUN_DIR\n"
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
