"""Refined sweeps (``refine = N``): restarts where the success map's boundary is.

Refinement maps two traced axes ``x`` and ``y`` (the grid's order). Their given values are the
centres of the base cells; an axis is *log*-spaced if its values are a positive geometric
progression, else *linear* if they are evenly spaced (anything else is refused). In that
spacing ``t`` (``log v`` or ``v``) with step ``h``, base cell ``i`` spans
``t_0 + (i - 1/2) h .. t_0 + (i + 1/2) h``. A split halves a cell on both axes in that spacing;
a cell's centre is the midpoint of its bounds there (the base cells' centres are the values
given). The finest depth ``L`` is the smallest with ``max(n_x, n_y) * 2**L >= N``.

Cells are the nodes of a quadtree: node ``(l, ix, iy)`` (``ix < n_x 2**l``) has the id
``offset(l) + ix * (n_y 2**l) + iy`` (``offset(l) = n_x n_y (4**l - 1) / 3``; level 0 is the
grid's own cell order). Restart ``i`` of node ``id`` has the key index ``id * n_runs + i``
(``keys = "paired"``: ``i``), so its bits depend on the node and the index only, never on the
chunks, devices, rounds or a resume. The engine lays the evaluated cells out compactly: the
sweep's ``s``-th cell (its *slot*) is node ``nodes[s]``; restart ``i`` of slot ``s`` has the
global index ``s * n_runs + i`` (:meth:`jaxlab.engine.Plan.hparams` decodes the centre,
:func:`jaxlab.engine.key_index` the key).

Round 0 is the base grid, ``n_runs`` restarts a cell; round ``l + 1`` gives ``n_runs`` restarts
to each of the four children of every leaf of level ``l`` that splits (:func:`split`). A round
is a range of global indices cut into ordinary chunks of the sweep's one compiled program
(:func:`round_tasks`): rounds never recompile.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from jaxlab import aggregate as A
from jaxlab.errors import ConfigError

__all__ = [
    "Geometry",
    "cell_columns",
    "check",
    "decode",
    "first_round",
    "geometry",
    "leaf_flags",
    "next_round",
    "raster",
    "round_tasks",
    "split",
]

# Cells of the whole tree, every level: at most this many may ever be evaluated (their
# aggregates take a few KB each, as a uniform grid's MAX_CELLS cells do).
MAX_NODES = 4_000_000


class Geometry(NamedTuple):
    """Where a refined sweep's cells are: the two axes' names, spacings (``"log"``/``"lin"``),
    given values (base centres), first value and step in that spacing, base sizes, depth."""

    names: tuple[str, str]
    spacing: tuple[str, str]
    values: tuple[np.ndarray, np.ndarray]
    t0: tuple[float, float]
    h: tuple[float, float]
    n: tuple[int, int]
    depth: int

    def offset(self, level) -> np.ndarray:
        """The first node id of ``level`` (int64; vectorised; ``check`` keeps the tree within
        :data:`MAX_NODES`, far from overflowing)."""
        level = np.asarray(level, np.int64)
        return self.n[0] * self.n[1] * ((np.int64(4) ** level - 1) // 3)

    @property
    def n_nodes(self) -> int:
        """Nodes of the whole tree, every level down to the finest (Python ints: exact for any
        depth, so the size checks see a too-deep tree as too big, not as a wrapped int64)."""
        return self.n[0] * self.n[1] * ((4 ** (self.depth + 1) - 1) // 3)

    @property
    def finest(self) -> tuple[int, int]:
        """Cells per axis at the finest depth."""
        return self.n[0] << self.depth, self.n[1] << self.depth


def _spacing(axis) -> tuple[str, float, float]:
    """``(spacing, t0, h)`` of an axis whose values are base-cell centres."""
    v = np.asarray(axis.values, np.float64)
    d = np.diff(v)
    if (v > 0).all() and (d > 0).all():
        lg = np.diff(np.log(v))
        if np.allclose(lg, lg[0], rtol=1e-6, atol=0.0):
            return "log", float(np.log(v[0])), float((np.log(v[-1]) - np.log(v[0])) / (len(v) - 1))
    if (d > 0).all() and np.allclose(d, d[0], rtol=1e-6, atol=0.0):
        return "lin", float(v[0]), float((v[-1] - v[0]) / (len(v) - 1))
    raise ConfigError(
        "refine",
        f"axis {axis.name} must be evenly spaced in value or in log (increasing, e.g. "
        f"{axis.name} = {{log = [0.1, 10, 8]}}) to be refined, got {list(axis.values)}",
    )


def check(cfg) -> None:
    """Refuse a refined config that cannot be refined (one-line ConfigErrors); nothing runs."""
    N = cfg.refine
    if isinstance(N, bool) or not isinstance(N, int) or N < 0:
        raise ConfigError(
            "refine", f"expected the finest cells per axis, an integer >= 2, got {N!r}"
        )
    levels = cfg.levels
    if not isinstance(levels, tuple) or not levels:
        raise ConfigError("levels", f"expected success levels in (0, 1), got {levels!r}")
    for v in levels:
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1:
            raise ConfigError("levels", f"expected success levels in (0, 1), got {v!r}")
    if len(set(levels)) != len(levels) or list(levels) != sorted(levels):
        raise ConfigError("levels", f"expected increasing levels, each once, got {list(levels)}")
    if not N:
        if levels != (0.5,):
            raise ConfigError("levels", "the success levels of refined sweeps: give refine too")
        return
    if cfg.points is not None:
        raise ConfigError("refine", "refinement splits the cells of a grid, not points")
    if cfg.ci_width is not None:
        raise ConfigError(
            "refine", "refinement and adaptive restarts (ci_width) are not combined: give one"
        )
    if cfg.keep_runs:
        raise ConfigError("keep_runs", "per-run records are not kept by refined sweeps (refine)")
    axes = cfg.axes
    static = [a.name for a in axes if not a.traced]
    if static:
        raise ConfigError(
            "refine",
            f"refinement maps two traced axes; {', '.join(static)} is a static axis (one compile "
            "a value): sweep one value of it at a time",
        )
    if len(axes) != 2:
        got = ", ".join(f"{a.name} ({len(a.values)} values)" for a in axes) or "none"
        raise ConfigError("refine", f"expected exactly two swept traced axes to refine, got {got}")
    geo = geometry(cfg)
    base = max(geo.n)
    if N < base:
        raise ConfigError(
            "refine",
            f"expected at least the base grid's {base} cells per axis, got {N} (give --refine "
            f"{base} or more: the finest cells per axis)",
        )
    fx, fy = geo.finest
    if geo.n_nodes > MAX_NODES:
        raise ConfigError(
            "refine",
            f"the finest grid {fx:,} x {fy:,} is too fine: its tree has {geo.n_nodes:,} cells, "
            f"at most {MAX_NODES:,} fit (a coarser --refine)",
        )
    top = geo.n_nodes * cfg.n_runs
    if top > 2**32 - 1:  # keys fold_in a uint32 index: node id * n_runs + i
        raise ConfigError(
            "refine",
            f"{geo.n_nodes:,} possible cells x {cfg.n_runs:,} restarts = {top:,} restart keys; "
            f"at most {2**32 - 1:,} fit in uint32 (fewer restarts, or a coarser --refine)",
        )


@functools.lru_cache(maxsize=32)
def geometry(cfg) -> Geometry:
    """The refined sweep's :class:`Geometry` (ConfigError for an axis not evenly spaced)."""
    ax, ay = cfg.axes
    (sx, tx, hx), (sy, ty, hy) = _spacing(ax), _spacing(ay)
    nx, ny = len(ax.values), len(ay.values)
    depth = 0
    while max(nx, ny) << depth < cfg.refine:
        depth += 1
    vals = (np.asarray(ax.values, np.float64), np.asarray(ay.values, np.float64))
    return Geometry((ax.name, ay.name), (sx, sy), vals, (tx, ty), (hx, hy), (nx, ny), depth)


def decode(geo: Geometry, node) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(level, ix, iy)`` of node ids (int64 arrays)."""
    node = np.asarray(node, np.int64)
    starts = geo.offset(np.arange(geo.depth + 2))
    level = np.searchsorted(starts, node, side="right") - 1
    local = node - starts[level]
    ny = np.int64(geo.n[1]) << level
    return level, local // ny, local % ny


def encode(geo: Geometry, level, ix, iy) -> np.ndarray:
    """Node ids of ``(level, ix, iy)`` (int64)."""
    level = np.asarray(level, np.int64)
    return geo.offset(level) + np.asarray(ix, np.int64) * (np.int64(geo.n[1]) << level) + iy


def _axis_bounds(geo: Geometry, a: int, level, i) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lo, centre, hi)`` in value space of cells ``i`` of ``level`` along axis ``a``."""
    level = np.asarray(level, np.int64)
    i = np.asarray(i, np.int64)
    w = geo.h[a] / np.exp2(level)
    lo = geo.t0[a] - geo.h[a] / 2 + i * w
    hi, mid = lo + w, lo + w / 2
    out = [np.exp(t) if geo.spacing[a] == "log" else t for t in (lo, mid, hi)]
    # The base cells' centres are the values given, bit for bit (i == n is the outer edge of
    # the last cell, asked for by the rasters' edges: no cell, no given centre).
    base = (level == 0) & (i < len(geo.values[a]))
    out[1] = np.where(base, geo.values[a][np.where(base, i, 0)], out[1])
    return out[0], out[1], out[2]


def bounds(geo: Geometry, nodes) -> dict[str, np.ndarray]:
    """Each node's centre and bounds per axis (``x``, ``x_lo``, ``x_hi``, ... by the axes'
    names) and its ``level``."""
    level, ix, iy = decode(geo, nodes)
    out = {}
    for a, i in enumerate((ix, iy)):
        lo, mid, hi = _axis_bounds(geo, a, level, i)
        name = geo.names[a]
        out[name], out[f"{name}_lo"], out[f"{name}_hi"] = mid, lo, hi
    out["level"] = level
    return out


def centres(geo: Geometry, nodes) -> tuple[np.ndarray, np.ndarray]:
    """The two axes' values (float64) at the centres of ``nodes``."""
    level, ix, iy = decode(geo, nodes)
    return _axis_bounds(geo, 0, level, ix)[1], _axis_bounds(geo, 1, level, iy)[1]


def children(geo: Geometry, nodes) -> np.ndarray:
    """The four children of each of ``nodes``, all of them in increasing id order."""
    level, ix, iy = decode(geo, nodes)
    kids = [encode(geo, level + 1, 2 * ix + a, 2 * iy + b) for a in (0, 1) for b in (0, 1)]
    return np.sort(np.concatenate(kids)) if len(kids[0]) else np.zeros(0, np.int64)


def leaf_flags(geo: Geometry, nodes) -> np.ndarray:
    """Whether each of ``nodes`` is a leaf (none of its children is among ``nodes``)."""
    nodes = np.asarray(nodes, np.int64)
    level, ix, iy = decode(geo, nodes)
    first = encode(geo, level + 1, 2 * ix, 2 * iy)
    return ~np.isin(first, nodes)


def _neighbours(geo: Geometry, nodes, leaf, level: int) -> np.ndarray:
    """Pairs ``(p, q)`` (indices into ``nodes``, p < q) of leaves that share an edge, found on
    the raster of ``level`` (every leaf is at that level or coarser)."""
    lv, ix, iy = decode(geo, nodes)
    W, H = geo.n[0] << level, geo.n[1] << level
    owner = np.full((W, H), -1, np.int64)
    for m in range(level + 1):
        sel = np.flatnonzero(leaf & (lv == m))
        if not len(sel):
            continue
        grid = np.full((geo.n[0] << m, geo.n[1] << m), -1, np.int64)
        grid[ix[sel], iy[sel]] = sel
        up = grid.repeat(1 << (level - m), 0).repeat(1 << (level - m), 1)
        owner = np.where(up >= 0, up, owner)
    pairs = [
        np.stack([owner[:-1, :].ravel(), owner[1:, :].ravel()], 1),
        np.stack([owner[:, :-1].ravel(), owner[:, 1:].ravel()], 1),
    ]
    p = np.concatenate(pairs)
    p = p[(p[:, 0] != p[:, 1]) & (p >= 0).all(1)]
    return np.unique(np.sort(p, 1), axis=0)


def split(geo: Geometry, nodes, n_success, n_runs, levels, level: int) -> np.ndarray:
    """Which of ``nodes`` (every cell evaluated so far, with their counts) split next: leaves
    of ``level`` above the finest depth where

    (a) the 95% Wilson interval straddles a success level (``lo < level < hi``), or
    (b) an edge-neighbouring leaf (any size) is on the other side of a level (its success
        rate ``>= level`` and this one's not, or the reverse) and the two intervals are
        disjoint;

    with one restart a cell (``n_runs == 1``: every interval straddles 0.5) the rule is the
    class alone: split where an edge-neighbouring leaf's class (rate ``>= level``) differs.
    A pure function of the counts: (n,) bool."""
    nodes = np.asarray(nodes, np.int64)
    k, n = np.asarray(n_success, np.int64), np.asarray(n_runs, np.int64)
    lv = decode(geo, nodes)[0]
    leaf = leaf_flags(geo, nodes)
    out = np.zeros(len(nodes), bool)
    if level >= geo.depth:
        return out
    rate, lo, hi = A.rate_ci(k, n)
    levels = np.asarray(levels, np.float64)
    single = bool((n == 1).all())
    if not single:
        out |= ((lo[:, None] < levels) & (levels < hi[:, None])).any(1)
    pairs = _neighbours(geo, nodes, leaf, level)
    if len(pairs):
        p, q = pairs[:, 0], pairs[:, 1]
        cls = rate[:, None] >= levels  # (n, levels)
        differ = (cls[p] != cls[q]).any(1)
        if not single:
            differ &= (hi[p] < lo[q]) | (hi[q] < lo[p])
        np.logical_or.at(out, p[differ], True)
        np.logical_or.at(out, q[differ], True)
    return out & leaf & (lv == level)


# --- rounds in the sweep -------------------------------------------------------------------
def first_round(cfg) -> dict:
    """Round 0: the base grid (what the checkpoint holds besides the aggregates)."""
    n = cfg.n_cells
    return {
        "round": 0, "task_base": 0, "nodes": np.arange(n, dtype=np.int64),
        "round_start": np.zeros(n, np.int64), "round_target": np.full(n, cfg.n_runs, np.int64),
    }  # fmt: skip


def next_round(cfg, rnd: dict, agg: A.Aggregates, n_tasks: int) -> tuple[dict, A.Aggregates]:
    """The round after ``rnd`` (``n_tasks`` chunks) from the counts so far, and the aggregates
    grown by its new cells (zeros). No split: the same cells, nothing open."""
    geo = geometry(cfg)
    nodes = rnd["nodes"]
    grow = split(geo, nodes, agg.n_success, agg.n_runs, cfg.levels, int(rnd["round"]))
    new = children(geo, nodes[grow])
    n_old, n_new = len(nodes), len(nodes) + len(new)
    start = np.concatenate([np.full(n_old, cfg.n_runs, np.int64), np.zeros(len(new), np.int64)])
    out = {
        "round": int(rnd["round"]) + 1, "task_base": int(rnd["task_base"]) + n_tasks,
        "nodes": np.concatenate([nodes, new]), "round_start": start,
        "round_target": np.full(n_new, cfg.n_runs, np.int64),
    }  # fmt: skip
    zero = A.Aggregates.zeros(len(new), 1, agg.metric_n.shape[1])
    parts = []
    for name, a, z in zip(A.Aggregates._fields, agg, zero):
        if z.ndim == 2 and name in ("steps_hist", "loss_hist"):
            z = np.zeros((len(new), a.shape[1]), a.dtype)
        parts.append(np.concatenate([a, z.astype(a.dtype)]))
    return out, A.Aggregates(*parts)


def round_tasks(plan, rnd: dict):
    """The chunks of round ``rnd``: its new cells' restarts, a contiguous range of global
    indices, cut every ``plan.chunk_size``; numbered from ``rnd["task_base"]``."""
    from jaxlab.engine import ChunkTask

    stride = plan.config.stride
    new = np.flatnonzero(rnd["round_target"] > rnd["round_start"])
    if not len(new):
        return []
    lo, hi = int(new[0]) * stride, (int(new[-1]) + 1) * stride
    base = int(rnd["task_base"])
    return [
        ChunkTask(base + j, 0, s, min(s + plan.chunk_size, hi))
        for j, s in enumerate(range(lo, hi, plan.chunk_size))
    ]


def read_round(st: dict, cfg) -> dict:
    """A refined sweep's round from its checkpoint's arrays ``st``, checked (raises
    ``ValueError`` naming what is wrong)."""
    geo = geometry(cfg)
    need = ("round", "task_base", "nodes", "round_start", "round_target")
    missing = [k for k in need if k not in st]
    if missing:
        raise ValueError(f"damaged .npz archive (no {', '.join(missing)})")
    out = {k: st[k] for k in need}
    for k in ("round", "task_base"):
        if out[k].shape != () or out[k].dtype.kind not in "iu" or int(out[k]) < 0:
            raise ValueError(f"{k} is not a count")
        out[k] = int(out[k])
    nodes = out["nodes"]
    if nodes.ndim != 1 or nodes.dtype != np.int64 or len(nodes) < cfg.n_cells:
        raise ValueError("nodes is not a list of cells")
    if not (np.diff(nodes) > 0).all() or nodes[0] != 0 or nodes[-1] >= geo.n_nodes:
        raise ValueError("nodes are out of order or outside the tree")
    for k in ("round_start", "round_target"):
        if out[k].shape != nodes.shape or out[k].dtype != np.int64:
            raise ValueError(f"{k} is not one count per cell")
    a, b = out["round_start"], out["round_target"]
    if not ((a >= 0) & (a <= b) & (b == cfg.n_runs)).all():
        raise ValueError("round_start, round_target out of order")
    return out


# --- tables and pictures -------------------------------------------------------------------
def cell_columns(cfg, nodes) -> dict:
    """cells.csv's leading columns of a refined sweep: ``node``, the two axes' centres, their
    bounds, ``level`` (0: the base grid) and ``leaf`` (1: not split)."""
    geo = geometry(cfg)
    nodes = np.asarray(nodes, np.int64)
    b = bounds(geo, nodes)
    x, y = geo.names
    out = {"node": nodes, x: b[x], y: b[y]}
    for name in (x, y):
        out[f"{name}_lo"], out[f"{name}_hi"] = b[f"{name}_lo"], b[f"{name}_hi"]
    out["level"] = b["level"]
    out["leaf"] = leaf_flags(geo, nodes).astype(np.int64)
    return out


def lead_names(cfg) -> list[str]:
    """The names of :func:`cell_columns`, in order."""
    x, y = (a.name for a in cfg.axes)
    return ["node", x, y, f"{x}_lo", f"{x}_hi", f"{y}_lo", f"{y}_hi", "level", "leaf"]


def raster(cfg, cells: dict, column: str = "success_rate") -> dict:
    """A refined sweep's ``column`` on its finest grid: every finest cell takes the value of
    the leaf that covers it. Returns ``{"values": (n_x 2**L, n_y 2**L) float64 (x first),
    "x_edges", "y_edges": the finest cells' bounds (n + 1,), "x", "y": their centres}``."""
    geo = geometry(cfg)
    nodes = np.asarray(cells["node"], np.int64)
    leaf = np.asarray(cells["leaf"]).astype(bool)
    lv, ix, iy = decode(geo, nodes)
    L = geo.depth
    val = np.asarray(cells[column], np.float64)
    out = np.full(geo.finest, np.nan)
    for m in range(L + 1):
        sel = np.flatnonzero(leaf & (lv == m))
        if len(sel):
            grid = np.full((geo.n[0] << m, geo.n[1] << m), np.nan)
            grid[ix[sel], iy[sel]] = val[sel]
            up = grid.repeat(1 << (L - m), 0).repeat(1 << (L - m), 1)
            out = np.where(np.isnan(up), out, up)
    res = {"values": out}
    for a, name in enumerate(("x", "y")):
        j = np.arange(geo.finest[a] + 1)
        lo = _axis_bounds(geo, a, np.full(len(j), L), j)[0]
        res[f"{name}_edges"] = lo
        res[name] = _axis_bounds(geo, a, np.full(len(j) - 1, L), j[:-1])[1]
    return res


def finest_values(cfg) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The centres of the finest grid's cells along each axis: the axes of the uniform sweep
    that a refined one is compared with (its cells are the finest cells)."""
    geo = geometry(cfg)
    out = []
    for a in (0, 1):
        j = np.arange(geo.finest[a])
        out.append(tuple(float(v) for v in _axis_bounds(geo, a, np.full(len(j), geo.depth), j)[1]))
    return out[0], out[1]


def meta(cfg, cells: dict, rnd: dict) -> dict:
    """meta.json's summary of a refined sweep."""
    geo = geometry(cfg)
    level = np.asarray(cells["level"])
    fx, fy = geo.finest
    used = int(np.sum(cells["n_runs"]))
    uniform = fx * fy * cfg.n_runs
    return {
        "refine": cfg.refine, "levels": list(cfg.levels), "depth": geo.depth,
        "spacing": dict(zip(geo.names, geo.spacing)), "finest": [fx, fy],
        "rounds": int(rnd["round"]), "cells": len(level),
        "leaves": int(np.sum(cells["leaf"])),
        "cells_per_level": np.bincount(level, minlength=geo.depth + 1).tolist(),
        "restarts": used, "uniform_restarts": uniform,
        "saving": uniform / used if used else None,
    }  # fmt: skip


def describe(cfg) -> str:
    """A sentence for figure captions."""
    geo = geometry(cfg)
    fx, fy = geo.finest
    lv = ", ".join(f"{v:g}" for v in cfg.levels)
    rule = "an interval straddles" if cfg.n_runs > 1 else "a neighbour's class differs at"
    return (
        f"refined from {geo.n[0]} x {geo.n[1]} to at most {fx} x {fy} cells where {rule} "
        f"success level {lv}"
    )
