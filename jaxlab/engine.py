"""The sweep engine: millions of restarts per compiled call, in chunks, over devices and hosts.

The global run index ``g = cell * n_runs + i`` names restart ``i`` of cell ``cell``; its key is
``fold_in(root_key, g)`` (``keys = "independent"``, the default) or ``fold_in(root_key, i)``
(``keys = "paired"``: restart i of every cell starts from the same key, common random numbers for
comparing settings), so a run's result does not depend on the chunk, device or process that
computes it. The index is cut into chunks (within one static combination, one compiled program
each); a chunk's runs are sharded over the local devices (``shard_map`` over a 1-D mesh), trained
with ``vmap(run_one)``, and reduced on the device to integer per-cell aggregates (``psum`` over
devices). The host adds chunks up, appends each finished chunk to the run directory's log, and
reports progress between chunks. Adaptive sweeps (:mod:`jaxlab.adaptive`) lay cells out
``max_runs`` apart (``g = cell * max_runs + i``) and run chunks of explicit run lists
(``ChunkTask.runs``) through the same programs; refined sweeps (:mod:`jaxlab.refine`) lay
their evaluated cells out one after another and decode each cell's settings and keys from its
quadtree node (``Plan.nodes``). With several processes (``jax.distributed``), process p takes chunks p, p + P, ...; the
integer aggregates are summed over processes at the end.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxlab.aggregate import Aggregates, chunk_aggregates, metric_aggregates, n_step_bins
from jaxlab.config import SweepConfig
from jaxlab.lanes import REFILL, dense, recycled
from jaxlab.loop import RunSpec, run_one, train_one

__all__ = [
    "ChunkTask",
    "Plan",
    "task_runs",
    "task_size",
    "make_plan",
    "output_names",
    "key_index",
    "precision",
    "root_key_data",
    "run_chunks",
    "chunk_fn",
    "chunk_call",
    "compile_all",
    "default_chunk_size",
    "replay",
    "replay_many",
    "run_keys",
]

CPU_RUNS_PER_DEVICE = 32768  # measured best of 2k/8k/32k per device (experiments/PERFORMANCE.md)
ADAPTIVE_SEGMENTS = 1024  # adaptive sweeps: most cells (first to last) one chunk spans


class ChunkTask(NamedTuple):
    index: int  # position in the plan
    combo: int  # which static combination
    start: int  # first global run index
    stop: int  # one past the last
    # Adaptive sweeps (jaxlab.adaptive): the chunk's global run indices, increasing (int64
    # array; start and stop are then its first and one past its last); None: range(start, stop).
    runs: np.ndarray | None = None


def task_runs(task: ChunkTask) -> np.ndarray:
    """The global run indices of ``task`` (int64)."""
    if task.runs is not None:
        return np.asarray(task.runs, np.int64)
    return np.arange(task.start, task.stop, dtype=np.int64)


def task_size(task: ChunkTask) -> int:
    """How many runs ``task`` holds."""
    return len(task.runs) if task.runs is not None else task.stop - task.start


@dataclass(frozen=True)
class Plan:
    """How a config's runs are laid out: cells, static combinations, chunks."""

    config: SweepConfig
    chunk_size: int
    n_devices: int
    combos: tuple  # of RunSpec, one per static combination
    cells_per_combo: int  # a grid's (0 for points: see cell_combo)
    tasks: tuple  # of ChunkTask
    # Points (config.points): each cell's static combination, (n_cells,) int64.
    cell_combo: np.ndarray | None = field(default=None, compare=False, hash=False)
    # Refined sweeps (config.refine, jaxlab.refine): each cell's quadtree node, (cells,) int64.
    nodes: np.ndarray | None = field(default=None, compare=False, hash=False)

    @functools.cached_property
    def _point_values(self) -> dict[str, np.ndarray]:
        cfg = self.config
        return {n: np.asarray(v, np.float64) for n, v in cfg.points if cfg.schema[n].traced}

    @property
    def block(self) -> int:
        """Lanes a device trains at once (``lane_block``, at most the chunk's share)."""
        return self.config.block

    @property
    def refill(self) -> int:
        """Recycled lanes: steps between refills (``refill``, 0: :data:`jaxlab.lanes.REFILL`)."""
        return self.config.refill or REFILL

    @property
    def lanes(self) -> int:
        """Lanes of a chunk's arrays: the chunk padded to whole blocks on every device."""
        per = self.n_devices * self.block
        return -(-self.chunk_size // per) * per

    @property
    def step_bins(self) -> int:
        """Width of the steps histogram: the largest budget's (each cell bins with its own)."""
        return n_step_bins(max(s.max_steps for s in self.combos))

    @property
    def n_seg(self) -> int:
        """Most cells a chunk can touch."""
        if self.config.ci_width is not None:  # rounds give a few restarts to many cells
            return max(1, min(self.cells_per_combo, ADAPTIVE_SEGMENTS))
        return self.chunk_size // self.config.n_runs + 2  # independent of the grid's size

    def hparams(self, g) -> dict[str, np.ndarray]:
        """Traced settings of the runs with global indices ``g`` (host numpy, in the config's
        dtype)."""
        cfg = self.config
        g = np.asarray(g, dtype=np.int64)
        cell = g // cfg.stride
        if self.nodes is not None:  # a refined cell: the centre of its node
            from jaxlab.refine import centres, geometry

            xy = dict(zip(geometry(cfg).names, centres(geometry(cfg), self.nodes[cell])))
            return {
                n: (xy[n] if n in xy else np.full(g.shape, cfg.setting(n).values[0])).astype(
                    cfg.dtype
                )
                for n in cfg.traced_names
            }
        if cfg.points is not None:  # each cell is a point: its row of the point table
            given = self._point_values
            return {
                n: (
                    given[n][cell] if n in given else np.full(g.shape, cfg.setting(n).values[0])
                ).astype(cfg.dtype)
                for n in cfg.traced_names
            }
        traced_axes = [a for a in cfg.axes if a.traced]
        sizes = [len(a.values) for a in traced_axes]
        local = cell % self.cells_per_combo
        coords = np.unravel_index(local, sizes) if sizes else ()
        out = {}
        for name in cfg.traced_names:
            axis = next((a for a in traced_axes if a.name == name), None)
            if axis is not None:
                vals = np.asarray(axis.values, dtype=np.float64)[coords[traced_axes.index(axis)]]
            else:
                vals = np.full(g.shape, cfg.setting(name).values[0], np.float64)
            out[name] = vals.astype(cfg.dtype)
        return out


def default_chunk_size(cfg: SweepConfig, n_devices: int, platform: str) -> int:
    """Runs per chunk: cache-sized per CPU device; on accelerators as many as memory allows
    (about 4 KB of device memory per run for the small networks swept here)."""
    if cfg.chunk_size:
        size = cfg.chunk_size
    elif platform == "cpu":
        # At least 32 restarts per lane: recycled lanes idle at a chunk's end while its last
        # restarts finish, a cost paid once per chunk.
        size = max(CPU_RUNS_PER_DEVICE, 32 * cfg.block) * n_devices
    else:
        try:
            limit = jax.local_devices()[0].memory_stats()["bytes_limit"]
        except (KeyError, TypeError, IndexError):
            limit = 8 << 30
        per_run = 4096 * max(1, _n_params(cfg) // 9)
        size = 2 ** int(math.log2(max(limit // 4 // per_run, 1 << 14))) * n_devices
        size = min(size, 1 << 24)
    size = -(-size // n_devices) * n_devices
    if cfg.chunk_size:
        return size
    # No chunk larger than one static combination needs.
    per_combo = cfg.runs_per_combo
    return max(n_devices, min(size, -(-per_combo // n_devices) * n_devices))


def _n_params(cfg: SweepConfig) -> int:
    """Parameters of one run of the first static combination (from the init's shapes)."""
    p = cfg.problem_obj
    if p.init is None:
        return 9
    s = {a.name: a.values[0] for a in cfg.settings}
    shapes = jax.eval_shape(lambda k: p.init(k, s), jax.eval_shape(lambda: jax.random.key(0)))
    return sum(math.prod(x.shape) for x in jax.tree.leaves(shapes))


def _spec(cfg: SweepConfig, chosen: dict) -> RunSpec:
    """The RunSpec of one static combination (``chosen``: the static values that vary)."""
    static_names = [a.name for a in cfg.settings if not a.traced]
    return RunSpec(
        problem=cfg.problem_obj,
        static=tuple((n, chosen.get(n, cfg.setting(n).values[0])) for n in static_names),
        method=cfg.method,
        dtype=cfg.dtype,
        tol=None if cfg.tol == "off" else float(cfg.tol),
        threshold=float(cfg.threshold),
    )


def _points_plan(cfg: SweepConfig, chunk: int, n_devices: int) -> Plan:
    """A sweep over points: one program per static combination; chunks cut from each run of
    consecutive points of one combination (keep them together for full chunks)."""
    from jaxlab.points import combos as point_combos

    found, which = point_combos(cfg)
    edges = [0, *(np.flatnonzero(np.diff(which)) + 1).tolist(), cfg.n_cells]
    tasks = []
    for a, b in itertools.pairwise(edges):
        lo, hi = a * cfg.n_runs, b * cfg.n_runs
        for s in range(lo, hi, chunk):
            tasks.append(ChunkTask(len(tasks), int(which[a]), s, min(s + chunk, hi)))
    combos = tuple(_spec(cfg, c) for c in found)
    return Plan(cfg, chunk, n_devices, combos, 0, tuple(tasks), which)


def make_plan(cfg: SweepConfig, n_devices: int = 1, platform: str = "cpu") -> Plan:
    cfg = cfg.validate()
    chunk = default_chunk_size(cfg, n_devices, platform)
    if cfg.points is not None:
        return _points_plan(cfg, chunk, n_devices)
    static_axes = [a for a in cfg.axes if not a.traced]
    combos = []
    for values in itertools.product(*(a.values for a in static_axes)):
        combos.append(_spec(cfg, {a.name: v for a, v in zip(static_axes, values)}))
    cells_per_combo = cfg.n_cells // len(combos)
    runs_per_combo = cells_per_combo * cfg.n_runs
    tasks = []
    rounds = cfg.ci_width is not None or cfg.refine  # adaptive or refined: rounds plan them
    for c in range(0 if rounds else len(combos)):
        base = c * runs_per_combo
        for s in range(0, runs_per_combo, chunk):
            tasks.append(ChunkTask(len(tasks), c, base + s, base + min(s + chunk, runs_per_combo)))
    return Plan(cfg, chunk, n_devices, tuple(combos), cells_per_combo, tuple(tasks))


def run_keys(root, g):
    """The PRNG keys ``fold_in(root, k)`` of the key indices ``k`` (uint32; see
    :func:`key_index`), the one rule that the sweep and the replays share."""
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(root, g)


def key_index(cfg: SweepConfig, g, nodes=None) -> np.ndarray:
    """The key index (uint32) of the runs with global indices ``g``: ``g`` itself for
    ``keys = "independent"``, the restart's index within its cell (``g % n_runs``) for
    ``keys = "paired"``. Host numpy, so it never depends on how runs are chunked. (Adaptive
    sweeps lay cells out ``max_runs`` apart: ``g = cell * max_runs + i``; refined ones give
    ``nodes``, each cell's quadtree node, and key restart ``i`` of a cell by its node:
    ``node * n_runs + i``.)"""
    g = np.asarray(g, dtype=np.int64)
    if nodes is not None:
        g = np.asarray(nodes, np.int64)[g // cfg.stride] * cfg.stride + g % cfg.stride
    k = g % cfg.stride if cfg.keys == "paired" else g
    return k.astype(np.uint32)


def root_key_data(seed: int) -> jax.Array:
    """The raw data of ``key(seed)``, the same whatever the process's x64 setting (with x64 off
    JAX would refuse seeds of 2**32 and above)."""
    with jax.enable_x64(True):
        return jax.random.key_data(jax.random.key(seed))


def precision(dtype: str):
    """The context a sweep of ``dtype`` computes in: x64 on exactly for float64, whatever the
    process's global setting (with x64 off JAX silently truncates float64 to float32)."""
    want = jnp.dtype(dtype) == jnp.float64
    if bool(jax.config.jax_enable_x64) == want:
        return contextlib.nullcontext()
    return jax.enable_x64(want)


def make_mesh(devices) -> Mesh:
    return Mesh(np.asarray(devices), ("runs",))


@functools.lru_cache(maxsize=64)
def chunk_fn(
    spec: RunSpec,
    n_seg: int,
    mesh: Mesh,
    keep_runs: bool,
    step_bins: int,
    block: int,
    lanes: str = "dense",
    refill: int = REFILL,
) -> Callable:
    """The compiled program for one chunk: ``f(k, seg, weight, hp, key_data) -> (agg, runs,
    sample, metrics, steps, periods)``.

    ``k`` (C,) uint32 key indices (:func:`key_index`), ``seg`` (C,) int32 cell offsets within the
    chunk, ``weight`` (C,) int32 (0 for padding, which comes last on each device), ``hp`` dict
    of (C,) traced settings, ``key_data`` the root key's raw data. ``step_bins`` is the sweep's
    width of the steps histogram (each spec bins with its own budget, padded to it). ``sample``
    is each device's first final loss, read back to record the dtype the runs computed in;
    ``steps`` every run's steps (the steps really taken); ``periods`` each device's refill
    periods (recycled lanes; 0 for dense). ``lanes``: ``"dense"`` (blocks of ``block`` restarts
    in sequence, each until its slowest stops) or ``"recycle"`` (:func:`jaxlab.lanes.recycled`,
    ``block`` lanes refilled every ``refill`` steps; padding never runs). Cached per static
    spec: new values of traced settings reuse it.
    """

    def shard(k, seg, weight, hp, key_data):
        keys = run_keys(jax.random.wrap_key_data(key_data), k)
        if lanes == "recycle":
            n_valid = jnp.sum(weight, dtype=jnp.int32)
            out, periods = recycled(spec, hp, keys, n_valid, block, refill)
        else:
            # Each device trains its lanes in blocks of `block` (a vmap of that width, blocks
            # in sequence): XLA orders a vmapped reduction (a loss summed over data points) by
            # the batch's width, so a fixed width keeps every restart's bits whatever the chunk
            # size or device count.
            out = (
                jax.lax.map(lambda x: run_one(spec, *x), (hp, keys), batch_size=block)
                if spec.problem.train is not None
                else dense(spec, hp, keys, block)
            )
            periods = jnp.zeros((), jnp.int32)
        agg = chunk_aggregates(out, seg, weight, n_seg, spec.max_steps, step_bins)
        agg = jax.tree.map(lambda a: jax.lax.psum(a, "runs"), agg)
        runs = out if keep_runs else None
        return agg, runs, out.loss[:1], out.metrics, out.steps, periods[None]

    run_spec = P("runs")
    sharded = jax.shard_map(
        shard,
        mesh=mesh,
        in_specs=(run_spec, run_spec, run_spec, run_spec, P()),
        out_specs=(P(), run_spec if keep_runs else P(), run_spec, run_spec, run_spec, run_spec),
        check_vma=False,  # run_one is written for one run, unaware of the mesh
    )
    return jax.jit(sharded)


COMPILE_STATS = {"compiles": 0, "seconds": 0.0}


@functools.lru_cache(maxsize=64)
def compiled_chunk(
    spec: RunSpec,
    n_seg: int,
    mesh: Mesh,
    keep_runs: bool,
    size: int,
    key_shape,
    step_bins: int,
    block: int,
    lanes: str = "dense",
    refill: int = REFILL,
):
    """:func:`chunk_fn` compiled ahead of time for chunks of ``size`` runs (timed apart)."""
    sharding = NamedSharding(mesh, P("runs"))
    dt = jnp.dtype(spec.dtype)

    def arg(dtype):
        return jax.ShapeDtypeStruct((size,), dtype, sharding=sharding)

    hp = {k: arg(dt) for k in spec.traced_names}
    key = jax.ShapeDtypeStruct(key_shape, jnp.uint32, sharding=NamedSharding(mesh, P()))
    t0 = time.perf_counter()
    exe = (
        chunk_fn(spec, n_seg, mesh, keep_runs, step_bins, block, lanes, refill)
        .lower(arg(jnp.uint32), arg(jnp.int32), arg(jnp.int32), hp, key)
        .compile()
    )
    COMPILE_STATS["compiles"] += 1
    COMPILE_STATS["seconds"] += time.perf_counter() - t0
    return exe


def _program(plan: Plan, spec: RunSpec, mesh: Mesh, key_shape, lanes: str = "dense"):
    cfg = plan.config
    return compiled_chunk(
        spec, plan.n_seg, mesh, cfg.keep_runs, plan.lanes, key_shape, plan.step_bins,
        plan.block, lanes, plan.refill,
    )  # fmt: skip


# Cost of a refill (writing the outcomes, gathering the next starts) in steps of the lanes, the
# cost model's one constant. On the peers' workload (87% of the budget used; 2-core AMD EPYC)
# recycled lanes took 2.96 s against dense's 2.38 (jaxlab bench --R 1000000 --lanes ...):
# about 1.5 steps a refill of 4; 2 keeps the choice on the safe side (dense there).
REFILL_COST = 2.0


class LaneChoice(NamedTuple):
    """How a static combination's lanes run: ``lanes`` "dense" or "recycle", and why."""

    lanes: str
    why: str


def initial_lanes(plan: Plan, combo: int) -> LaneChoice | None:
    """The choice made before any chunk runs: the config's, or dense for a problem that trains
    itself; ``None`` for ``lanes = "auto"`` (a probe decides: :func:`choose_lanes`)."""
    cfg = plan.config
    if plan.combos[combo].problem.train is not None:
        return LaneChoice("dense", "the problem trains itself (train): its own loop")
    if cfg.lanes != "auto":
        return LaneChoice(cfg.lanes, "lanes = " + cfg.lanes)
    return None


def choose_lanes(
    plan: Plan, combo: int, steps: np.ndarray, n: int, periods: np.ndarray
) -> LaneChoice:
    """The cost model's choice from a probe chunk run in recycled lanes: ``steps`` (the chunk's
    C lanes, the first ``n`` real), ``periods`` each device's refill periods. Dense lanes cost,
    per device, the sum over its blocks of their slowest restart's steps; recycled lanes cost
    ``periods * (refill + REFILL_COST)``; the cheaper wins (dense on a tie)."""
    D, B = plan.n_devices, plan.block
    s = np.where(np.arange(steps.size) < n, steps, 0).reshape(D, -1, B)
    dense = float(s.max(axis=2).sum(axis=1).max())
    rec = float(np.max(periods)) * (plan.refill + REFILL_COST)
    budget = plan.combos[combo].max_steps
    used = float(steps[:n].sum()) / max(1, n * budget)
    pick = "recycle" if rec < dense else "dense"
    return LaneChoice(
        pick,
        f"probe of {n:,} restarts used {used:.1%} of their budget: dense {dense:,.0f} block "
        f"steps, recycled {rec:,.0f} ({int(np.max(periods)):,} refills x {plan.refill} steps "
        f"+ {REFILL_COST:g})",
    )


class ChunkResult(NamedTuple):
    task: ChunkTask
    first_cell: int
    agg: Aggregates  # numpy
    runs: dict | None  # numpy per-run records (valid runs only)
    dtype: str  # the dtype the runs' losses came back in
    steps_run: int = 0  # steps the chunk's restarts really took (their sum)
    lanes: str = "dense"  # how its lanes ran


def _inputs(plan: Plan, task: ChunkTask, sharding):
    cfg, C = plan.config, plan.lanes
    runs = task_runs(task)
    n = len(runs)
    g = np.full(C, runs[0], np.int64)  # padding repeats the first run, weight 0
    g[:n] = runs
    weight = (np.arange(C) < n).astype(np.int32)
    first_cell = int(runs[0]) // cfg.stride
    seg = (g // cfg.stride - first_cell).astype(np.int32)
    hp = plan.hparams(g)
    put = functools.partial(jax.device_put, device=sharding)
    return first_cell, (
        put(key_index(cfg, g, plan.nodes)),
        put(seg),
        put(weight),
        {k: put(v) for k, v in hp.items()},
    )


def chunk_call(
    plan: Plan, task: ChunkTask, devices=None, lanes: str = "dense"
) -> tuple[Callable, tuple]:
    """``(program, args)`` of one chunk, compiled and placed: ``program(*args)`` runs it and
    returns ``(aggregates, runs, ...)`` on the devices. For timing the engine's chunk program
    alone (``experiments/``); sweeps go through :func:`run_chunks`."""
    devices = list(devices) if devices is not None else jax.local_devices()[: plan.n_devices]
    mesh = make_mesh(devices)
    key_data = root_key_data(plan.config.seed)
    program = _program(plan, plan.combos[task.combo], mesh, key_data.shape, lanes)
    _, args = _inputs(plan, task, NamedSharding(mesh, P("runs")))
    return program, (*args, key_data)


def run_chunks(
    plan: Plan,
    tasks,
    devices=None,
    on_chunk: Callable | None = None,
    choices: dict | None = None,
):
    """Run ``tasks`` (ChunkTasks of ``plan``) in order; call ``on_chunk(ChunkResult)`` after each.

    The next chunk is dispatched before the previous one is read back, so the host's work
    (reduction bookkeeping, checkpoint, progress) overlaps the device's. ``choices`` (a dict,
    filled in place: static combination -> :class:`LaneChoice`) says how each combination's
    lanes run; with ``lanes = "auto"`` a combination's first chunk runs in recycled lanes and
    :func:`choose_lanes` decides for the rest (a restart's results are the same either way).
    """
    devices = list(devices) if devices is not None else jax.local_devices()[: plan.n_devices]
    mesh = make_mesh(devices)
    sharding = NamedSharding(mesh, P("runs"))
    key_data = root_key_data(plan.config.seed)
    choices = {} if choices is None else choices
    for c in {t.combo for t in tasks}:
        if c not in choices and (first := initial_lanes(plan, c)) is not None:
            choices[c] = first
    probing: set[int] = set()  # combinations whose probe chunk is in flight
    pending = None
    for task in list(tasks) + [None]:
        launched = None
        if task is not None and task.combo in probing and task.combo not in choices:
            _read_back(plan, pending, choices, on_chunk)  # the probe decides this chunk's lanes
            pending = None
        if task is not None:
            mode = choices[task.combo].lanes if task.combo in choices else "recycle"
            probe = task.combo not in choices and task.combo not in probing
            if probe:
                probing.add(task.combo)
            f = _program(plan, plan.combos[task.combo], mesh, key_data.shape, mode)
            first_cell, args = _inputs(plan, task, sharding)
            launched = (task, first_cell, mode, probe, f(*args, key_data))
        if pending is not None:
            _read_back(plan, pending, choices, on_chunk)
        pending = launched


def _read_back(plan: Plan, pending, choices: dict, on_chunk) -> None:
    """Read a launched chunk back, decide its combination's lanes if it was a probe, and call
    ``on_chunk``."""
    ptask, pfirst, pmode, pprobe, (agg, runs, sample, metrics, steps, periods) = pending
    agg, runs, metrics, steps, periods = jax.device_get((agg, runs, metrics, steps, periods))
    g = task_runs(ptask)
    n = len(g)
    if pprobe:
        choices[ptask.combo] = choose_lanes(plan, ptask.combo, steps, n, periods)
    seg = g // plan.config.stride - pfirst
    names = tuple(metrics)
    metric = metric_aggregates({k: v[:n] for k, v in metrics.items()}, names, seg, plan.n_seg)
    records = None
    if runs is not None:
        records = {
            "run": g,
            "final_loss": np.asarray(runs.loss[:n], np.float64),
            "steps": np.asarray(runs.steps[:n]),
            "status": np.asarray(runs.status[:n]),
            "success": np.asarray(runs.success[:n]),
            **{k: np.asarray(v[:n]) for k, v in runs.metrics.items()},
            **{k: np.asarray(v[:n], np.float64) for k, v in runs.record.items()},
        }
    agg = Aggregates(*agg[:5], *metric)
    steps_run = int(np.asarray(steps[:n], np.int64).sum())
    on_chunk(ChunkResult(ptask, pfirst, agg, records, str(sample.dtype), steps_run, pmode))


def compile_all(plan: Plan, devices=None, both: bool = False) -> float:
    """Compile each static combination's first program before the run (the one its lanes are
    set to, else the recycled one the probe runs; with ``both``, for ``lanes = "auto"``, also
    the dense one the probe may choose); seconds spent compiling."""
    devices = list(devices) if devices is not None else jax.local_devices()[: plan.n_devices]
    mesh = make_mesh(devices)
    key_shape = root_key_data(0).shape
    before = COMPILE_STATS["seconds"]
    for c, spec in enumerate(plan.combos):
        first = initial_lanes(plan, c)
        for mode in [first.lanes] if first else ["recycle", "dense"] if both else ["recycle"]:
            _program(plan, spec, mesh, key_shape, mode)
    return COMPILE_STATS["seconds"] - before


def _restart_inputs(plan: Plan, runs) -> tuple[dict, jax.Array]:
    """Traced settings (dict of (n,) arrays) and keys (n,) of the restarts ``runs``: exactly
    what the sweep gave them."""
    cfg = plan.config
    for r in runs:
        if not 0 <= r < cfg.total_runs:
            raise ValueError(f"run: expected an index in [0, {cfg.total_runs}), got {r}")
    hp = {k: jnp.asarray(v) for k, v in plan.hparams(runs).items()}
    root = jax.random.wrap_key_data(root_key_data(cfg.seed))
    return hp, run_keys(root, jnp.asarray(key_index(cfg, runs, plan.nodes)))


@functools.lru_cache(maxsize=64)
def output_names(cfg: SweepConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names of a run's metrics and per-run records (``jax.eval_shape``: nothing runs).
    Cached: a sweep and a load ask for them several times (tables, checks, columns)."""
    plan = make_plan(cfg)
    spec = plan.combos[0]
    with precision(spec.dtype):
        hp = {k: jax.ShapeDtypeStruct((), jnp.dtype(spec.dtype)) for k in spec.traced_names}
        key = jax.eval_shape(lambda: jax.random.key(0))  # abstract: nothing runs
        out = jax.eval_shape(functools.partial(run_one, spec), hp, key)
    return tuple(out.metrics), tuple(out.record)


def _combo_of(plan: Plan, run: int) -> int:
    if plan.cell_combo is not None:
        return int(plan.cell_combo[run // plan.config.stride])
    if plan.nodes is not None:  # refined sweeps have one static combination
        return 0
    return run // (plan.cells_per_combo * plan.config.stride)


def replay(plan: Plan, run: int, trajectory: bool = False):
    """Recompute restart ``run`` (a global index) alone: ``(spec, hparams, DescentResult,
    final params)`` (params as the problem's init lays them out). Used for figures of chosen restarts (decision boundaries, trajectories)."""
    spec = plan.combos[_combo_of(plan, run)]
    with precision(spec.dtype):
        hp, keys = _restart_inputs(plan, [run])
        hp = {k: v[0] for k, v in hp.items()}
        res = train_one(spec, hp, keys[0], trajectory=trajectory)
        return spec, hp, res, res.params


@functools.lru_cache(maxsize=32)
def _replay_program(spec: RunSpec, fn: Callable) -> Callable:
    def one(hp, key, extra):
        res = train_one(spec, hp, key)
        return fn(spec, res, res.params, *extra)

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None)))


def replay_many(plan: Plan, runs, fn: Callable, extra: tuple = ()) -> dict:
    """Recompute several restarts, one compiled and vmapped call per static combination.

    Returns ``{run: (spec, hparams, fn(spec, DescentResult, final params, *extra))}`` with
    numpy values. ``fn`` should be a module-level function (the compiled program is cached per
    ``(spec, fn)``); batches are padded to a multiple of 16 so their sizes share compiles.
    """
    out = {}
    for c in sorted({_combo_of(plan, r) for r in runs}):
        mine = [r for r in runs if _combo_of(plan, r) == c]
        padded = mine + mine[:1] * (-len(mine) % 16)
        spec = plan.combos[c]
        with precision(spec.dtype):
            hp, keys = _restart_inputs(plan, padded)
            values = jax.device_get(_replay_program(spec, fn)(hp, keys, tuple(extra)))
        hp = jax.device_get(hp)  # once, not one read-back per run and setting
        for j, r in enumerate(mine):
            row_hp = {k: float(v[j]) for k, v in hp.items()}
            out[r] = (spec, row_hp, jax.tree.map(lambda a, j=j: np.asarray(a[j]), values))
    return out
