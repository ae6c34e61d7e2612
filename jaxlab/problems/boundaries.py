"""Decision boundaries of chosen restarts, computed once when a network sweep finishes and stored
in its run directory (``boundaries.npz``), so that ``jaxlab plot`` draws them from files alone.

* :func:`compute`: choose up to ``k`` successful and ``k`` failed restarts of a few cells and
  replay them (:func:`jaxlab.engine.replay_many`: the sweep's keys and settings, so the sweep's
  outcomes), each with its network's predicted probabilities on the lab's 101 x 101 grid;
* :func:`save` / :func:`load`: the :class:`Boundaries` on disk (atomic, no pickles);
* :func:`store`: what the sweep calls: the default choice, computed and saved.

Drawing them is :mod:`jaxlab.problems.network_figures`; this module draws nothing (no
matplotlib). ``jaxlab.boundaries`` is this module under its former name.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jaxlab import aggregate as A
from jaxlab import rundir
from jaxlab.config import config_hash
from jaxlab.errors import ConfigError

__all__ = [
    "FILE",
    "Boundaries",
    "cell_index",
    "compute",
    "default_cells",
    "load",
    "save",
    "store",
]

FILE = "boundaries.npz"
VERSION = 1
REPLAY_FIRST = 64  # restarts replayed per cell when no runs.csv says which succeeded


class Boundaries(NamedTuple):
    """The restarts a decision-boundary atlas draws: ``m`` of them, from ``c`` cells.

    Per cell (in row order): ``cells`` (c,) int64 flat cell indices, ``source`` (c,) str how
    its restarts were chosen. Per restart, grouped by cell, successes first: ``run`` (m,) int64
    global index, ``cell`` (m,) int64, ``success`` (m,) bool, ``loss`` (m,) float64 final loss,
    ``status`` (m,) int64 :class:`~jaxlab.descent.Status`, ``lr``, ``scale``, ``momentum`` (m,)
    float64 its settings, ``dataset`` (m,) str, ``prob`` (m, 101, 101) float32 P(class 1) on
    the grid ``[x2, x1]`` over ``extent`` (4,) = (x1 lo, x1 hi, x2 lo, x2 hi).
    ``k``: at most this many of each kind per cell; ``config_hash``: the sweep's.
    """

    version: int
    config_hash: str
    k: int
    cells: np.ndarray
    source: np.ndarray
    run: np.ndarray
    cell: np.ndarray
    success: np.ndarray
    loss: np.ndarray
    status: np.ndarray
    lr: np.ndarray
    scale: np.ndarray
    momentum: np.ndarray
    dataset: np.ndarray
    extent: np.ndarray
    prob: np.ndarray

    def covers(self, cells, k: int) -> bool:
        return k <= self.k and set(cells) <= set(self.cells.tolist())

    def subset(self, cells, k: int) -> Boundaries:
        """The rows of ``cells`` (in that order), at most ``k`` restarts of each kind: the
        restarts :func:`compute` would choose for them with this ``k``."""
        idx = []
        for c in cells:
            for ok in (True, False):
                idx += list(np.flatnonzero((self.cell == c) & (self.success == ok))[:k])
        pos = [self.cells.tolist().index(c) for c in cells]
        idx = np.asarray(idx, np.int64)
        per_run = {f: getattr(self, f)[idx] for f in _PER_RUN}
        return self._replace(k=k, cells=self.cells[pos], source=self.source[pos], **per_run)


_PER_RUN = (
    "run",
    "cell",
    "success",
    "loss",
    "status",
    "lr",
    "scale",
    "momentum",
    "dataset",
    "prob",
)


# --- which restarts ------------------------------------------------------------------------
def _key(v) -> str:
    if isinstance(v, tuple | list):
        return "-".join(map(str, v))
    return str(v)


def cell_index(res, where) -> int:
    """The flat index of a cell given as an index or a dict of axis values (nearest value for
    traced axes, on the log scale for log-spaced ones)."""
    if isinstance(where, int | np.integer):
        if not 0 <= int(where) < res.config.n_cells:
            raise ConfigError("cells", f"cell {where} is outside [0, {res.config.n_cells})")
        return int(where)
    if isinstance(where, dict):
        axes = res.config.axes
        idx = []
        for a in axes:
            if a.name not in where:
                raise ConfigError("cells", f"a cell needs a value for every axis; missing {a.name}")
            v = where[a.name]
            if a.traced:
                vals = np.asarray(a.values, np.float64)
                if a.spacing == "log":  # nearest on the log scale the axis was laid out on
                    vals, v = np.log(vals), math.log(v)
                idx.append(int(np.argmin(np.abs(vals - v))))
            else:
                keys = [_key(u) for u in a.values]
                if _key(v) not in keys:
                    raise ConfigError("cells", f"{a.name} {v!r} is not one of {', '.join(keys)}")
                idx.append(keys.index(_key(v)))
        return int(np.ravel_multi_index(idx, [len(a.values) for a in axes])) if axes else 0
    raise ConfigError("cells", f"expected cell indices or dicts of axis values, got {where!r}")


def default_cells(res) -> list[int]:
    """The best cell, and the one nearest the lab's lr = 1, scale = 1 (else the worst)."""
    rate = np.asarray(res.cells["success_rate"], np.float64)
    lo = np.asarray(res.cells["ci_low"], np.float64)
    hi = np.asarray(res.cells["ci_high"], np.float64)
    b = A.best_index(rate, lo)
    best = b if b is not None else 0
    cells = [best]
    axes = {a.name: a for a in res.config.axes}
    if "lr" in axes or "scale" in axes:
        lab = {a.name: (1.0 if a.name in ("lr", "scale") else a.values[0]) for a in axes.values()}
        near = cell_index(res, lab)
        if near != best:
            return cells + [near]
    if np.isfinite(rate).any():
        r = np.where(np.isfinite(rate), rate, np.inf)
        worst = int(np.lexsort((np.nan_to_num(hi, nan=np.inf), r))[0])
        if worst != best:
            cells.append(worst)
    return cells


def _choose_runs(res, cell: int, k: int) -> tuple[list[int], list[int] | None, str]:
    """Up to ``k`` successful and ``k`` failed restarts of ``cell`` from runs.csv; without it,
    the first restarts to replay and classify (failed: None)."""
    n_runs = res.config.n_runs
    if res.runs:
        sel = np.flatnonzero(np.asarray(res.runs["cell"]) == cell)
        ok = np.asarray(res.runs["success"]).astype(bool)[sel]
        ids = np.asarray(res.runs["run"])[sel]
        return list(map(int, ids[ok][:k])), list(map(int, ids[~ok][:k])), "runs.csv"
    base = cell * res.config.stride  # adaptive sweeps lay cells out max_runs apart
    first = list(range(base, base + min(n_runs, max(2 * k, REPLAY_FIRST))))
    return first, None, f"first {len(first)} restarts replayed"


# --- replaying them -----------------------------------------------------------------------
def _outputs(spec, res, params, xy):
    """Per replayed restart (traced): final loss, status, and P(class 1) on the points ``xy``."""
    from jaxlab.network import predict
    from jaxlab.problems.network import params_as_layers

    layers = params_as_layers(params, spec.value("widths"))
    return res.value, res.status, predict(layers, xy.astype(res.value.dtype))


def compute(res, cells=None, k: int = 3) -> Boundaries:
    """Choose and replay the restarts an atlas of ``cells`` (indices or dicts of axis values;
    default :func:`default_cells`) draws: up to ``k`` successful and ``k`` failed of each,
    the first in runs.csv, else classified among the cell's first 64 restarts. Compiles one
    vmapped program per static combination involved. Network sweeps only."""
    import jax.numpy as jnp

    from jaxlab.engine import make_plan, replay_many
    from jaxlab.loop import succeeded
    from jaxlab.network import grid

    cfg = res.config
    if not {"dataset", "widths"} <= set(cfg.relevant_settings()):
        raise ConfigError("problem", "decision boundaries are drawn for network sweeps only")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ConfigError("k", f"expected an integer >= 1, got {k!r}")
    cells = [cell_index(res, c) for c in cells] if cells is not None else default_cells(res)
    picks = [_choose_runs(res, c, k) for c in cells]
    todo = sorted({r for s, f, _ in picks for r in s + (f or [])})
    xy = grid()
    side = int(round(math.sqrt(len(xy))))
    done = replay_many(make_plan(cfg), todo, _outputs, (jnp.asarray(xy),)) if todo else {}
    rows: list[tuple[int, int, bool]] = []  # (cell, run, success)
    for c, (succ, fail, _) in zip(cells, picks):
        if fail is None:  # replayed the first restarts: classify them as the sweep did
            ok = [
                r for r in succ if bool(succeeded(int(done[r][2][1]), done[r][2][0], cfg.threshold))
            ]
            succ, fail = ok[:k], [r for r in succ if r not in ok][:k]
        rows += [(c, r, True) for r in succ] + [(c, r, False) for r in fail]

    def col(f, dtype):
        return np.asarray([f(c, r, ok) for c, r, ok in rows], dtype)

    prob = [np.asarray(done[r][2][2], np.float32).reshape(side, side) for _, r, _ in rows]
    return Boundaries(
        version=VERSION,
        config_hash=config_hash(cfg),
        k=k,
        cells=np.asarray(cells, np.int64),
        source=np.asarray([s for _, _, s in picks], str),
        run=col(lambda c, r, ok: r, np.int64),
        cell=col(lambda c, r, ok: c, np.int64),
        success=col(lambda c, r, ok: ok, bool),
        loss=col(lambda c, r, ok: float(done[r][2][0]), np.float64),
        status=col(lambda c, r, ok: int(done[r][2][1]), np.int64),
        lr=col(lambda c, r, ok: done[r][1]["lr"], np.float64),
        scale=col(lambda c, r, ok: done[r][1]["scale"], np.float64),
        momentum=col(lambda c, r, ok: done[r][1]["momentum"], np.float64),
        dataset=col(lambda c, r, ok: done[r][0].value("dataset"), str),
        extent=np.asarray([xy[0, 0], xy[-1, 0], xy[0, 1], xy[-1, 1]], np.float64),
        prob=np.stack(prob) if prob else np.zeros((0, side, side), np.float32),
    )


# --- on disk -------------------------------------------------------------------------------
def save(path, data: Boundaries) -> None:
    rundir.save_npz(path, **data._asdict())


def load(run_dir, cfg) -> Boundaries | None:
    """The run directory's stored boundaries; None if it has none (a run from before they were
    stored). Raises :class:`ConfigError` if the file is unreadable or belongs to another sweep."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        return None
    try:
        z = rundir.load_npz(path)
        data = Boundaries(**{f: z[f] for f in Boundaries._fields})
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
        raise ConfigError("boundaries", f"{path} is unreadable ({type(e).__name__})") from None
    data = data._replace(
        version=int(data.version), config_hash=str(data.config_hash), k=int(data.k)
    )
    if data.version != VERSION:
        raise ConfigError("boundaries", f"{path} has version {data.version}, expected {VERSION}")
    if data.config_hash != config_hash(cfg):
        raise ConfigError("boundaries", f"{path} belongs to another sweep (config hash differs)")
    return data


def store(res) -> str | None:
    """Compute the default choice of restarts of a finished network sweep and save it into its
    run directory; return the file name (None for other problems)."""
    if res.run_dir is None:
        return None
    save(Path(res.run_dir) / FILE, compute(res))
    return FILE
