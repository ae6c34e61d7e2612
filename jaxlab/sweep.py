"""Run a sweep into a run directory, resumably: chunks, progress, Ctrl-C, checkpoints.

A run directory holds:

* ``config.toml``: the resolved config (``jaxlab sweep --config`` reruns it exactly);
* ``problem.json``: a user's problem (``"module:attribute"``): how it is imported, its
  ``problem_args`` and the sha256 of its module's source file, written with ``config.toml``; a
  resume after that file changed is refused (its finished chunks ran the old code);
* ``cells.csv``: one row per grid cell: a column per axis, then counts, the success rate and its
  95% Wilson interval, status counts, steps and final-loss quantiles (refined sweeps: one row
  per cell evaluated, with its node, bounds, level and leaf flag: :mod:`jaxlab.refine`);
* ``runs/part-NNNNNNN.parquet``: with ``keep_runs``, one row per restart, a Parquet file per chunk
  written as the chunk finishes (:mod:`jaxlab.records`; ``jaxlab export --runs-csv`` writes
  them as one ``runs.csv``);
* ``meta.json``: versions, devices, timings, the config's hash, the sha256 of the files above;
  written last, so that it marks a finished sweep (which a resume leaves as it is);
* ``state*.npz`` and ``state*.log``: the checkpoint: the aggregates so far and the chunks done,
  rewritten at most every ``CHECKPOINT_SECONDS``, and the checksummed log of every chunk finished
  since, appended the moment each chunk is done;
* ``boundaries.npz``: network sweeps: the restarts the decision-boundary figure draws, replayed
  when the sweep finished (:mod:`jaxlab.problems.boundaries`);
* the figures (``*.png``), redrawn from the files above by ``jaxlab plot``, and ``report.html``
  (:mod:`jaxlab.report`), written after ``meta.json`` and rewritten by ``jaxlab report``.

Reading a run directory back, and the tables themselves, are :mod:`jaxlab.results`
(:func:`~jaxlab.results.load_run`); every file is checked when it is read back
(:mod:`jaxlab.validate`).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import jax
import numpy as np

from jaxlab import adaptive, records, refine, rundir, validate
from jaxlab import aggregate as A
from jaxlab.checks import check_problem
from jaxlab.config import SweepConfig, config_hash, to_toml
from jaxlab.engine import (
    COMPILE_STATS,
    ChunkResult,
    compile_all,
    make_plan,
    precision,
    run_chunks,
    task_size,
)
from jaxlab.errors import ConfigError, check_int
from jaxlab.progress import Progress
from jaxlab.progress import interval as progress_interval
from jaxlab.results import SweepResult, cells_table, load_run, write_csv

# SweepResult, load_run, cells_table and write_csv live in jaxlab.results; they are re-exported
# here because callers import them from jaxlab.sweep.
__all__ = ["SweepInterrupted", "SweepResult", "cells_table", "load_run", "run_sweep", "write_csv"]

STATE_VERSION = 1
PROBLEM_FILE = "problem.json"
CHECKPOINT_SECONDS = 2.0  # full-state rewrites; every chunk is appended to the log at once


def _versions() -> dict:
    import jaxlib
    import optax

    from jaxlab import __version__

    return {
        "jaxlab": __version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
        "optax": optax.__version__, "numpy": np.__version__, "python": platform.python_version(),
    }  # fmt: skip


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _state_name(process_id: int, n_processes: int) -> str:
    return "state.npz" if n_processes == 1 else f"state-p{process_id}.npz"


class _Interrupt:
    """SIGINT sets a flag; the sweep stops at the next chunk boundary."""

    def __init__(self):
        self.hit = False
        self.old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, *_):
        if self.hit:  # a second Ctrl-C: stop now (the checkpoint on disk is still whole)
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)


class SweepInterrupted(Exception):
    """Ctrl-C stopped the sweep at a chunk boundary; ``str()`` says how to resume."""


def _prepare_dir(out: Path, cfg: SweepConfig | None, resume: bool) -> SweepConfig:
    if out.exists() and not out.is_dir():
        raise ConfigError("out", f"{out} exists and is not a directory")
    if resume:
        cfile = out / "config.toml"
        if not cfile.is_file():
            raise ConfigError("resume", f"{out} is not a jaxlab run directory (no config.toml)")
        try:
            saved = validate.read_config(cfile)
        except validate.Damaged as e:
            raise ConfigError(
                "resume", f"{cfile}: {e}; restore it, or start a new sweep with another --out"
            ) from None
        if cfg is not None and config_hash(cfg) != config_hash(saved):
            raise ConfigError(
                "resume",
                f"the config given differs from {cfile}; resume with --resume alone, "
                "or start a new sweep in another --out",
            )
        return saved
    if out.is_dir() and any(p.name in ("config.toml", "cells.csv") for p in out.iterdir()):
        rundir.RunLock(out).check_free()  # a sweep running there: say whose
        raise ConfigError(
            "out",
            f"{out} already holds a sweep; use --resume {out} to continue it, or another --out",
        )
    return cfg


def run_sweep(
    cfg: SweepConfig | None = None,
    out: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    progress: bool | None = None,
    n_devices: int | None = None,
    figures: bool = True,
    stop_after_chunks: int | None = None,
    log: str | None = None,
) -> SweepResult:
    """Run ``cfg`` (or resume the sweep in ``out``) and return its result.

    ``out=None`` keeps everything in memory (no checkpoint, no files). ``n_devices`` limits the
    local devices used (default: all). With ``jax.distributed`` initialised, every process calls
    this with the same arguments; process 0 writes the outputs. ``log="mlflow"`` logs the
    finished sweep as one tracker run (:mod:`jaxlab.trackers`; checked before anything runs).
    """
    if log is not None:
        from jaxlab.trackers import check_tracker

        check_tracker(log)
    if cfg is None and not resume:
        cfg = SweepConfig()
    if cfg is not None and not isinstance(cfg, SweepConfig):
        raise ConfigError("cfg", f"expected a SweepConfig, or None to resume, got {cfg!r}")
    if cfg is not None:
        cfg = cfg.validate()  # before anything touches the disk (or takes the lock)
        check_problem(cfg)  # jax.eval_shape of the problem's functions: nothing compiles
    if n_devices is not None:
        check_int("n_devices", n_devices, lo=1)
    if progress is not False:
        progress_interval()  # a bad JAXLAB_PROGRESS_INTERVAL: refused before anything is written
    n_proc, pid = jax.process_count(), jax.process_index()
    out_path = Path(out) if out is not None else None
    lock = None
    if out_path is not None:
        if pid == 0 or resume:
            cfg = _prepare_dir(out_path, cfg, resume)
        if cfg is not None and cfg.keep_runs:
            records.require()  # Parquet: one line if pyarrow is missing, before anything is written
        try:
            out_path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError("out", f"cannot create directory {out_path}: {e.strerror}") from None
        if not os.access(out_path, os.W_OK):
            raise ConfigError("out", f"{out_path} is not writable")
        if pid == 0:
            lock = rundir.RunLock(out_path).acquire()
    elif resume:
        raise ConfigError("resume", "resuming needs the run directory (out)")
    cfg = cfg.validate()
    if cfg.ci_width is not None and n_proc > 1:
        raise ConfigError("ci_width", "adaptive sweeps run in a single process")
    if cfg.refine and n_proc > 1:
        raise ConfigError("refine", "refined sweeps run in a single process")
    if cfg.keep_runs and n_proc > 1:
        raise ConfigError("keep_runs", "per-run records are kept by single-process sweeps only")
    try:
        if resume and validate.finished(out_path):  # nothing to compute, nothing to rewrite
            result = load_run(out_path)
            if result.runs is not None:
                result.runs.verify()  # every part read and checked: a damaged one is one line
        else:
            if resume:
                _check_source(out_path, cfg)
                check_problem(cfg)
            # float64 sweeps compute with x64 on and float32 ones with it off, whatever the
            # process's global setting: without x64 JAX truncates float64 to float32 silently.
            with precision(cfg.dtype):
                result = _run(
                    cfg, out_path, n_proc, pid, progress, n_devices, figures, stop_after_chunks
                )
        if log is not None and pid == 0:
            from jaxlab.trackers import log_result

            log_result(log, result)
        return result
    finally:
        if lock is not None:
            lock.release()


def _run(cfg, out, n_proc, pid, progress, n_devices, figures, stop_after_chunks) -> SweepResult:
    local = jax.local_devices()
    nd = len(local) if n_devices is None else max(1, min(int(n_devices), len(local)))
    if cfg.chunk_size and cfg.chunk_size % nd:  # a resumed sweep keeps its chunks
        nd = max(d for d in range(1, nd + 1) if cfg.chunk_size % d == 0)
    plan = make_plan(cfg, nd, local[0].platform)
    # Keep the resolved chunk size in config.toml: a resume must cut the same chunks.
    cfg = replace(cfg, chunk_size=plan.chunk_size, lane_block=plan.block)
    chash = config_hash(cfg)
    provenance = problem_provenance(cfg)
    if out is not None and pid == 0:
        rundir.clean_temporaries(out)
        if not (out / "config.toml").exists():
            rundir.atomic_write(out / "config.toml", to_toml(cfg))
        if provenance["source_sha256"] is not None and not (out / PROBLEM_FILE).exists():
            rundir.atomic_write(out / PROBLEM_FILE, json.dumps(provenance, indent=2) + "\n")
    mine = [t for t in plan.tasks if t.index % n_proc == pid]
    state_path = out / _state_name(pid, n_proc) if out is not None else None
    rnd = None  # adaptive and refined sweeps: the round under way
    rounds = refine if cfg.refine else adaptive if cfg.ci_width is not None else None
    if rounds is not None:
        rnd = rounds.first_round(cfg)
        if state_path is not None and state_path.exists():
            rnd = validate.read_round(state_path, cfg)
        if cfg.refine:  # refined: its cells are the nodes evaluated so far
            plan = replace(plan, nodes=rnd["nodes"])
        mine = _round(plan, rnd)
    max_steps = max(s.max_steps for s in plan.combos)
    metric_names = validate.output_names(cfg)[0]
    if metric_names and cfg.cap > A.MAX_METRIC_RUNS:
        raise ConfigError(
            "n_runs",
            f"a problem with metrics takes at most {A.MAX_METRIC_RUNS:,} restarts per cell "
            f"(their sums are exact in 64-bit fixed point), got {cfg.n_runs:,}",
        )
    n_cells = cfg.n_cells if rnd is None or "nodes" not in rnd else len(rnd["nodes"])
    agg = A.Aggregates.zeros(n_cells, max_steps, len(metric_names))
    done = 0
    if state_path is not None and state_path.exists():
        done, agg = validate.read_state(
            state_path, version=STATE_VERSION, chash=chash, plan=plan, mine=mine, template=agg,
            start=None if rnd is None else rnd["round_start"],
        )  # fmt: skip
    log = rundir.ChunkLog(state_path.with_suffix(".log")) if state_path is not None else None
    if log is not None:
        for task, first, rows in log.read():  # chunks finished after the last checkpoint
            if done < len(mine) and task == mine[done].index:
                agg.add_rows(first, A.Aggregates(*(rows[f] for f in A.Aggregates._fields)))
                done += 1
    runs_dir = out / "runs" if (out is not None and cfg.keep_runs) else None
    redo = []  # finished chunks whose per-run records are damaged: recomputed, not recounted
    if runs_dir is not None:
        runs_dir.mkdir(exist_ok=True)
        for task, why in validate.damaged_chunks(out, mine[:done], cfg):
            sys.stderr.write(f"jaxlab: {why}; recomputing that chunk\n")
            redo.append(task)
    mem_runs: list = []
    todo = mine[done:]
    already = sum(task_size(t) for t in mine[:done])
    t_compile = compile_all(plan, local[:nd]) if todo or redo else 0.0
    bar = Progress(sum(task_size(t) for t in mine), progress)  # its rate: after compiling
    _say_round(bar, rnd)
    t0 = time.perf_counter()
    counter = {"done": done, "steps_run": 0, "session": 0, "ran": 0, "budget": 0}
    choices: dict = {}  # static combination -> engine.LaneChoice
    lanes_ran: dict = {}  # static combination -> chunks run this session in each kind of lanes
    compiled_before = COMPILE_STATS["seconds"]
    computed_in: set[str] = set()  # the dtypes the chunks' losses came back in
    last_checkpoint = [time.perf_counter()]

    def checkpoint():
        if state_path is None:
            return
        rundir.save_npz(
            state_path, version=STATE_VERSION, config_hash=chash,
            chunk_size=plan.chunk_size, done=counter["done"], **agg._asdict(), **(rnd or {}),
        )  # fmt: skip
        log.reset()
        last_checkpoint[0] = time.perf_counter()

    def on_chunk(r: ChunkResult):
        computed_in.add(r.dtype)
        counter["steps_run"] += r.steps_run
        agg.add_rows(r.first_cell, r.agg)
        if r.runs is not None:
            if runs_dir is not None:
                records.write_part(out, cfg, r.task.index, r.runs)  # on disk as it finishes
            else:
                mem_runs.append(records.chunk_columns(cfg, r.runs))
        counter["done"] += 1
        counter["session"] += 1
        counter["ran"] += task_size(r.task)
        counter["budget"] += task_size(r.task) * plan.combos[r.task.combo].max_steps
        ran_as = lanes_ran.setdefault(r.task.combo, {"dense": 0, "recycle": 0})
        ran_as[r.lanes] += 1
        if log is not None:
            # The chunk is on disk now (a small append); the full state is rewritten at most
            # every CHECKPOINT_SECONDS, and then the log is emptied.
            log.append(r.task.index, r.first_cell, **r.agg._asdict())
            if time.perf_counter() - last_checkpoint[0] >= CHECKPOINT_SECONDS:
                checkpoint()
        bar.update(task_size(r.task), already)
        if stop_after_chunks is not None and counter["session"] >= stop_after_chunks:
            raise _StopNow
        if intr.hit:
            raise _StopNow

    if redo:
        run_chunks(
            plan, redo, local[:nd],
            lambda r: records.write_part(out, cfg, r.task.index, r.runs),
        )  # fmt: skip
    with _Interrupt() as intr:
        try:
            run_chunks(plan, todo, local[:nd], on_chunk, choices)
            while rnd is not None and mine:  # adaptive: the next round, from the counts
                bar.close()
                rnd, agg = rounds.next_round(cfg, rnd, agg, len(mine))  # from the counts
                if cfg.refine:  # the next level's cells
                    plan = replace(plan, nodes=rnd["nodes"])
                mine, counter["done"], already = _round(plan, rnd), 0, 0
                checkpoint()  # the round's plan is on disk before any of its chunks
                bar = Progress(sum(map(task_size, mine)), progress)
                _say_round(bar, rnd)
                run_chunks(plan, mine, local[:nd], on_chunk, choices)
        except _StopNow:
            checkpoint()
            bar.close()
            where = f" {out}" if out is not None else ""
            during = f" in round {rnd['round']}" if rnd is not None else ""
            raise SweepInterrupted(
                f"sweep stopped after {counter['done']} of {len(mine)} chunks{during}; "
                f"continue with: jaxlab sweep --resume{where}"
            ) from None
    checkpoint()
    bar.close()
    # A program compiled on the way (dense lanes chosen after a probe) is compile time too.
    t_late = COMPILE_STATS["seconds"] - compiled_before
    t_compile += t_late
    t_run = time.perf_counter() - t0 - t_late
    ran, budget = counter["ran"], counter["budget"]  # this session, every round
    steps_run = counter["steps_run"]
    if n_proc > 1:
        agg = _sum_over_processes(agg)
    cells = cells_table(cfg, agg, refine.cell_columns(cfg, plan.nodes) if cfg.refine else None)
    runs = None
    if cfg.keep_runs:  # on disk: read a column when used (the parts are never gathered here)
        runs = records.concat(mem_runs) if runs_dir is None else records.RunRecords(out, cfg)
        if A.metric_names(cells):
            cells.update(A.metric_quantiles(A.metric_names(cells), runs, cfg.n_cells))
    n_total = cfg.total_runs
    dtype = _computed_dtype(cfg, computed_in)
    meta = {
        "versions": _versions(),
        "devices": {
            "platform": local[0].platform, "kind": local[0].device_kind, "local_used": nd,
            "processes": n_proc, "global": jax.device_count(),
        },
        "dtype": dtype,
        "config_hash": chash,
        "problem": provenance,
        "chunk_size": plan.chunk_size,
        "n_chunks": len(plan.tasks) if rnd is None else rnd["task_base"],
        "total_runs": n_total,
        "timings": {
            "compile_s": t_compile,
            "run_s_this_session": t_run,
            "restarts_per_s": ran / t_run if t_run > 0 else None,
            # Steps the restarts really took, per second (what the machine did for them),
            # and the budget's steps per second (restarts x max_steps, the older figure).
            "restart_steps_per_s": steps_run / t_run if t_run > 0 else None,
            "budget_steps_per_s": budget / t_run if t_run > 0 else None,
            "steps_run": steps_run,
            "budget_steps": budget,
            "budget_used": steps_run / budget if budget else None,
            "resumed_chunks": done,
        },
        "lanes": {
            # The choice, why, and the chunks this session ran each way (a probe chunk runs
            # recycled whatever it then chooses; a one-chunk combination is its own probe).
            _combo_label(plan, c): {"lanes": ch.lanes, "why": ch.why, "chunks": lanes_ran.get(c)}
            for c, ch in sorted(choices.items())
        },
        "peak_rss_mb": _peak_rss_mb(),
        **({} if rnd is None or cfg.refine else {"adaptive": _adaptive_meta(cfg, cells, rnd)}),
        **({"refine": refine.meta(cfg, cells, rnd)} if cfg.refine else {}),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }  # fmt: skip
    result = SweepResult(cfg, cells, runs, meta, out)
    if out is not None and pid == 0:
        write_csv(out / "cells.csv", cells)
        prepare = cfg.problem_obj.prepare
        if (
            prepare is not None and cfg.points is None and not cfg.refine
        ):  # e.g. replayed boundaries: `jaxlab plot` then only reads files
            t_prep = time.perf_counter()
            prepare(result)
            # Its compile and replay, apart from the sweep's compile_s and run time.
            meta["timings"]["prepare_s"] = time.perf_counter() - t_prep
        if figures:
            from jaxlab import plots

            meta["figures"] = plots.draw_all(result)
        meta_text = validate.meta_text(out, meta)
        rundir.atomic_write(out / "meta.json", meta_text)
        if figures:  # from the files' values, as `jaxlab report` makes it; without bokeh: a line
            from jaxlab import report

            report.after_sweep(result, json.loads(meta_text))
    return result


class _StopNow(Exception):
    pass


def _round(plan, rnd: dict) -> list:
    """The chunks of an adaptive or refined sweep's round ``rnd`` (single process)."""
    if plan.nodes is not None:
        return refine.round_tasks(plan, rnd)
    return list(
        adaptive.round_tasks(plan, rnd["round_start"], rnd["round_target"], rnd["task_base"])
    )


def _say_round(bar: Progress, rnd: dict | None) -> None:
    """In adaptive sweeps, a line before each round's progress: the round, its open cells and
    the restarts used before it (where the progress display is on)."""
    if rnd is None or not bar.enabled:
        return
    n_open = int(np.sum(rnd["round_target"] > rnd["round_start"]))
    used = int(rnd["round_start"].sum())
    bar.stream.write(
        f"jaxlab: round {rnd['round']}: {n_open:,} open cells, {used:,} restarts used before it\n"
    )
    bar.stream.flush()


def _adaptive_meta(cfg: SweepConfig, cells: dict, rnd: dict) -> dict:
    """meta.json's summary of an adaptive sweep."""
    n = np.asarray(cells["n_runs"])
    wide = np.asarray(cells["cs_high"]) - np.asarray(cells["cs_low"]) > cfg.ci_width
    return {
        "ci_width": cfg.ci_width, "max_runs": cfg.cap, "rounds": rnd["round"] - 1,
        "restarts": int(n.sum()), "min_runs": int(n.min()), "max_runs_used": int(n.max()),
        "cells_at_cap_wider": int(np.sum(wide)),
    }  # fmt: skip


def _combo_label(plan, c: int) -> str:
    """A static combination's name in meta.json: its swept static values, or "all"."""
    swept = [a.name for a in plan.config.axes if not a.traced]
    static = dict(plan.combos[c].static)
    parts = []
    for name in swept:
        v = static[name]
        parts.append(f"{name}={'-'.join(map(str, v)) if isinstance(v, (list, tuple)) else v}")
    return ", ".join(parts) or "all"


def problem_provenance(cfg: SweepConfig) -> dict:
    """Which problem ``cfg`` sweeps: ``{"import": "module:attribute" or a built-in name,
    "args": problem_args, "source_sha256": of its module's source file (None for built-ins)}``.
    Every process of a sweep imports the problem by that string (config.toml carries it)."""
    from jaxlab.problems import source_hash

    cfg.problem_obj  # noqa: B018  resolved: its module is imported, its file known
    label = cfg.problem_label
    return {"import": label, "args": dict(cfg.problem_args), "source_sha256": source_hash(label)}


def _check_source(out: Path, cfg: SweepConfig) -> None:
    """Refuse to resume a sweep whose problem module's source file changed since it started:
    its finished chunks ran the old code, the rest would run the new."""
    path = out / PROBLEM_FILE
    if not path.is_file():  # a built-in problem, or a directory of an older jaxlab
        return
    try:
        then = json.loads(path.read_text())["source_sha256"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise ConfigError(
            "resume", f"{path} is damaged; restore it, or start a new sweep with another --out"
        ) from None
    now = problem_provenance(cfg)
    if now["source_sha256"] != then:
        module = sys.modules.get(now["import"].partition(":")[0])
        where = getattr(module, "__file__", None) or now["import"]
        raise ConfigError(
            "resume",
            f"the source of problem {now['import']!r} ({where}) changed since this sweep started "
            f"(sha256 {str(then)[:12]} then, {str(now['source_sha256'])[:12]} now): its finished "
            "chunks ran the old code; restore the file, or start a new sweep with another --out",
        )


def _computed_dtype(cfg: SweepConfig, seen: set[str]) -> str:
    """The dtype the runs computed in, as read back from the chunks' results (what meta.json
    records); a chunk that came back in another dtype than the config's is a bug, never a
    silent float32 "float64" sweep."""
    if not seen:  # every chunk ran in an earlier session: ask JAX what this dtype becomes now
        seen = {str(jax.numpy.zeros((), cfg.dtype).dtype)}
    if seen != {cfg.dtype}:
        raise RuntimeError(f"dtype: the sweep asked for {cfg.dtype} but computed in {sorted(seen)}")
    return cfg.dtype


def _sum_over_processes(agg: A.Aggregates) -> A.Aggregates:
    from jax.experimental import multihost_utils

    parts = []
    for name, a in zip(agg._fields, agg):
        dtype = np.float64 if name in ("metric_min", "metric_max") else np.int64
        a = np.ascontiguousarray(a, dtype)
        if a.size == 0:  # no metrics: nothing to gather
            parts.append(a)
            continue
        gathered = multihost_utils.process_allgather(a.view(np.int32))  # exact: 64 bits as 2 x 32
        every = np.asarray(gathered).view(dtype).reshape((-1,) + a.shape)
        if name == "metric_min":
            parts.append(every.min(axis=0))
        elif name == "metric_max":
            parts.append(every.max(axis=0))
        else:
            parts.append(every.sum(axis=0))
    return A.Aggregates(*parts)
