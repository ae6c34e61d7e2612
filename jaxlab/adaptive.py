"""Adaptive sweeps (``ci_width``): restarts in rounds to the cells whose answer is uncertain.

Round 1 gives every cell ``n_runs`` restarts. After each round, every cell whose anytime-valid
confidence sequence (:mod:`jaxlab.confseq`) is wider than ``ci_width`` and that has fewer than
``max_runs`` restarts gets more in the next round (:func:`jaxlab.confseq.next_targets`); the
sweep ends when no cell is open. Restart ``i`` of cell ``c`` has the global index
``g = c * max_runs + i`` and the key ``fold_in(key(seed), g)`` (``keys = "paired"``:
``fold_in(key(seed), i)``): a restart's key depends only on its cell and its index within the
cell, and how many restarts a cell gets depends only on its counts, so a sweep gives the same
bits for any chunk size, device count or resume.

A round's restarts run as ordinary chunks of the sweep's one compiled program per static
combination (:func:`round_tasks`: explicit lists of global indices, padded to the chunk's
lanes), so rounds never recompile.
"""

from __future__ import annotations

import numpy as np

from jaxlab.confseq import next_targets
from jaxlab.engine import ChunkTask, Plan

__all__ = ["first_round", "next_round", "round_tasks"]


def round_tasks(plan: Plan, have, target, base: int) -> tuple[ChunkTask, ...]:
    """The chunks of a round that takes each cell from ``have`` restarts to ``target``
    ((cells,) int arrays): restarts ``have[c] .. target[c] - 1`` of each cell in cell order, cut
    into chunks of at most ``plan.chunk_size`` runs, within one static combination and spanning
    at most ``plan.n_seg`` cells; numbered from ``base``. Depends on the plan's chunk size only
    in where the cuts fall."""
    cfg = plan.config
    have = np.asarray(have, np.int64)
    target = np.asarray(target, np.int64)
    extra = np.maximum(target - have, 0)
    tasks: list[ChunkTask] = []
    for combo in range(len(plan.combos)):
        cells = np.arange(combo * plan.cells_per_combo, (combo + 1) * plan.cells_per_combo)
        cell = np.repeat(cells, extra[cells])
        if not len(cell):
            continue
        # Index within the cell: have[cell] + position among that cell's new restarts.
        starts = np.cumsum(extra[cells]) - extra[cells]
        i = np.arange(len(cell)) - np.repeat(starts, extra[cells]) + have[cell]
        g = cell * cfg.stride + i
        j = 0
        while j < len(g):
            end = min(j + plan.chunk_size, len(g))
            end = min(end, int(np.searchsorted(cell, cell[j] + plan.n_seg)))
            runs = g[j:end]
            tasks.append(ChunkTask(base + len(tasks), combo, int(runs[0]), int(runs[-1]) + 1, runs))
            j = end
    return tuple(tasks)


def first_round(cfg) -> dict:
    """Round 1: ``n_runs`` restarts a cell (what the checkpoint holds besides the aggregates;
    the same keys as :func:`jaxlab.refine.first_round`'s, bar ``nodes``)."""
    n = cfg.n_cells
    return {
        "round": 1, "task_base": 0, "round_start": np.zeros(n, np.int64),
        "round_target": np.full(n, cfg.n_runs, np.int64),
    }  # fmt: skip


def next_round(cfg, rnd: dict, agg, n_tasks: int) -> tuple[dict, object]:
    """The round after ``rnd`` (``n_tasks`` chunks): each cell's restarts after it from the
    counts so far (its own where it is done), and the aggregates (unchanged: the cells are)."""
    target = next_targets(agg.n_success, agg.n_runs, float(cfg.ci_width), cfg.cap)
    out = {
        "round": rnd["round"] + 1, "task_base": rnd["task_base"] + n_tasks,
        "round_start": agg.n_runs.copy(), "round_target": target,
    }  # fmt: skip
    return out, agg
