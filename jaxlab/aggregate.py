"""Per-cell aggregates of a sweep: integer counts and histograms only, so that any chunking,
device count, process count or resume adds up to the same bits.

On the device each chunk is reduced to per-cell counts (runs, successes, statuses), a histogram
of steps taken and a log-spaced histogram of final losses; the host adds them up. Medians and
quantiles are read off the histograms: for steps exact up to a budget of 1000 steps, else
rounded down to a multiple of ``max_steps / 1000`` (each cell binned with its own budget); for
final losses the geometric centre of the bin holding the quantile (``LOSS_BINS_PER_DECADE``
bins a decade, so within a factor ``10**(1/40)`` = 1.06 of the quantile in [1e-12, 1e4];
0 below, inf above).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxlab.descent import Status

__all__ = [
    "Aggregates",
    "best_index",
    "chunk_aggregates",
    "loss_bin_edges",
    "quantile_from_hist",
    "wilson",
]

LOSS_LOG10_MIN = -12.0
LOSS_LOG10_MAX = 4.0
LOSS_BINS_PER_DECADE = 20
N_LOSS_BINS = int((LOSS_LOG10_MAX - LOSS_LOG10_MIN) * LOSS_BINS_PER_DECADE) + 2  # + under/over
MAX_STEP_BINS = 1001
N_STATUS = len(Status)


class Aggregates(NamedTuple):
    """Per cell (leading axis): integer counts, and for the problem's ``M`` metrics exact,
    order-independent summaries (so any chunking, device count or resume gives the same bits):
    the count of finite values, their sum in fixed point (``METRIC_SCALE`` units, each value
    clipped to ``METRIC_CLIP``), their minimum and maximum."""

    n_runs: np.ndarray  # (cells,)
    n_success: np.ndarray  # (cells,)
    status: np.ndarray  # (cells, 4) counts of each Status
    steps_hist: np.ndarray  # (cells, step bins)
    loss_hist: np.ndarray  # (cells, N_LOSS_BINS) over non-diverged runs
    # Filled on the host from the chunk's per-run metrics (None on the device):
    metric_n: np.ndarray | None = None  # (cells, M) int64 runs whose metric is finite
    metric_sum: np.ndarray | None = None  # (cells, M) int64 sum of round(value * METRIC_SCALE)
    metric_min: np.ndarray | None = None  # (cells, M) float64 (+inf: none)
    metric_max: np.ndarray | None = None  # (cells, M) float64 (-inf: none)

    @staticmethod
    def zeros(n_cells: int, max_steps: int, n_metrics: int = 0) -> Aggregates:
        nb = n_step_bins(max_steps)
        z, m = np.zeros, (n_cells, n_metrics)
        return Aggregates(
            z(n_cells, np.int64), z(n_cells, np.int64), z((n_cells, N_STATUS), np.int64),
            z((n_cells, nb), np.int64), z((n_cells, N_LOSS_BINS), np.int64),
            z(m, np.int64), z(m, np.int64), np.full(m, np.inf), np.full(m, -np.inf),
        )  # fmt: skip

    def add_rows(self, first: int, part: Aggregates) -> None:
        """Add a chunk's aggregates (rows for cells ``first, first+1, ...``) in place."""
        rows = min(part.n_runs.shape[0], self.n_runs.shape[0] - first)
        for name, mine, theirs in zip(self._fields, self, part):
            here = mine[first : first + rows]
            if name == "metric_min":
                np.minimum(here, np.asarray(theirs[:rows], np.float64), out=here)
            elif name == "metric_max":
                np.maximum(here, np.asarray(theirs[:rows], np.float64), out=here)
            else:
                here += np.asarray(theirs[:rows], dtype=np.int64)


METRIC_SCALE = 2.0**20  # fixed-point units of metric sums: means exact to about 1e-6
METRIC_CLIP = 2.0**20  # |value| clipped here, so that 2**23 runs of a cell cannot overflow int64
MAX_METRIC_RUNS = 2**23


def metric_aggregates(metrics: dict, names, seg, n_seg: int):
    """The metric fields of :class:`Aggregates` for one chunk, on the host: ``metrics`` maps
    each name to the (n,) values of the chunk's valid runs, ``seg`` (n,) their cells relative
    to the chunk's first cell."""
    m = len(names)
    n_ok = np.zeros((n_seg, m), np.int64)
    total = np.zeros((n_seg, m), np.int64)
    lo, hi = np.full((n_seg, m), np.inf), np.full((n_seg, m), -np.inf)
    for j, name in enumerate(names):
        v = np.asarray(metrics[name], np.float64)
        ok = np.isfinite(v)
        q = np.rint(np.clip(np.where(ok, v, 0.0), -METRIC_CLIP, METRIC_CLIP) * METRIC_SCALE)
        np.add.at(n_ok[:, j], seg, ok.astype(np.int64))
        np.add.at(total[:, j], seg, q.astype(np.int64))
        np.minimum.at(lo[:, j], seg, np.where(ok, v, np.inf))
        np.maximum.at(hi[:, j], seg, np.where(ok, v, -np.inf))
    return n_ok, total, lo, hi


def metric_columns(names, agg: Aggregates) -> dict:
    """``mean_NAME``, ``min_NAME``, ``max_NAME`` per cell over the runs whose metric is finite
    (NaN where none is)."""
    out = {}
    for j, name in enumerate(names):
        n = agg.metric_n[:, j]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = agg.metric_sum[:, j] / METRIC_SCALE / n
        out[f"mean_{name}"] = np.where(n > 0, mean, np.nan)
        out[f"min_{name}"] = np.where(n > 0, agg.metric_min[:, j], np.nan)
        out[f"max_{name}"] = np.where(n > 0, agg.metric_max[:, j], np.nan)
    return out


def metric_names(cells: dict) -> list[str]:
    """The metrics a cells table summarises (its ``mean_NAME`` columns)."""
    return [k[len("mean_") :] for k in cells if k.startswith("mean_")]


def metric_quantiles(names, runs: dict, n_cells: int) -> dict:
    """With per-run records: ``p10_NAME``, ``median_NAME``, ``p90_NAME`` per cell, exact (the
    ``ceil(q n)``-th smallest finite value, as for steps), NaN where a cell has none."""
    out = {}
    cell = np.asarray(runs["cell"], np.int64)
    for name in names:
        v = np.asarray(runs[name], np.float64)
        ok = np.isfinite(v)
        order = np.lexsort((v[ok], cell[ok]))
        c, x = cell[ok][order], v[ok][order]
        starts = np.searchsorted(c, np.arange(n_cells))
        counts = np.bincount(c, minlength=n_cells)
        for q, label in ((0.1, "p10"), (0.5, "median"), (0.9, "p90")):
            k = np.maximum(np.ceil(q * counts).astype(np.int64), 1) - 1
            idx = np.minimum(starts + k, max(len(x) - 1, 0))
            out[f"{label}_{name}"] = np.where(counts > 0, x[idx] if len(x) else np.nan, np.nan)
    return out


def n_step_bins(max_steps: int) -> int:
    return min(max_steps, MAX_STEP_BINS - 1) + 1


def step_bin_width(max_steps: int) -> float:
    return max(1.0, max_steps / (MAX_STEP_BINS - 1))


def loss_bin_edges() -> np.ndarray:
    """Edges of the interior loss bins (bin 0: below the first edge, incl. 0; last: above)."""
    return 10.0 ** np.linspace(LOSS_LOG10_MIN, LOSS_LOG10_MAX, N_LOSS_BINS - 1)


def chunk_aggregates(
    out, seg, weight, n_seg: int, max_steps: int, step_bins: int | None = None
) -> Aggregates:
    """Reduce per-run outcomes of a chunk (``out`` a RunOut of (C,) arrays) to ``n_seg`` cells.

    ``seg`` (C,) int32: each run's cell relative to the chunk's first cell; ``weight`` (C,) int32:
    1 for a real run, 0 for padding. Steps are binned with this chunk's own budget
    ``max_steps`` (as a sweep of it alone would bin them) into the first
    ``n_step_bins(max_steps)`` of ``step_bins`` columns (default: just those), so that cells of
    several budgets share one table. Runs in JAX on the device; returns int32 arrays.
    """
    nb = n_step_bins(max_steps)
    step_bins = nb if step_bins is None else step_bins
    if step_bins < nb:
        raise ValueError(f"step_bins: expected at least {nb} for max_steps {max_steps}")
    w = weight.astype(jnp.int32)
    diverged = out.status == Status.DIVERGED
    n_runs = jnp.zeros((n_seg,), jnp.int32).at[seg].add(w)
    n_success = jnp.zeros((n_seg,), jnp.int32).at[seg].add(w * out.success.astype(jnp.int32))
    status = jnp.zeros((n_seg, N_STATUS), jnp.int32).at[seg, out.status].add(w)
    sbin = jnp.floor(out.steps.astype(jnp.float32) / step_bin_width(max_steps)).astype(jnp.int32)
    sbin = jnp.clip(sbin, 0, nb - 1)
    steps_hist = jnp.zeros((n_seg, step_bins), jnp.int32).at[seg, sbin].add(w)
    # Log-spaced loss bins, computed in float32 from the loss in any dtype.
    tiny = 10.0**LOSS_LOG10_MIN
    lg = jnp.log10(jnp.maximum(out.loss.astype(jnp.float32), tiny))
    lbin = jnp.floor((lg - LOSS_LOG10_MIN) * LOSS_BINS_PER_DECADE).astype(jnp.int32) + 1
    lbin = jnp.where(out.loss < tiny, 0, jnp.clip(lbin, 1, N_LOSS_BINS - 1))
    lw = w * (~diverged).astype(jnp.int32)
    loss_hist = jnp.zeros((n_seg, N_LOSS_BINS), jnp.int32).at[seg, lbin].add(lw)
    return Aggregates(n_runs, n_success, status, steps_hist, loss_hist)


def quantile_from_hist(hist: np.ndarray, q: float, centers: np.ndarray) -> np.ndarray:
    """The q-quantile of each row of ``hist`` (cells, bins), as the centre of the bin holding it;
    NaN for an empty row."""
    hist = np.asarray(hist)
    total = hist.sum(axis=1)
    cum = np.cumsum(hist, axis=1)
    target = np.maximum(np.ceil(q * total), 1)
    idx = np.argmax(cum >= target[:, None], axis=1)
    return np.where(total > 0, centers[idx], np.nan)


def loss_bin_centers() -> np.ndarray:
    edges = np.log10(loss_bin_edges())
    mids = 10.0 ** ((edges[:-1] + edges[1:]) / 2)
    return np.concatenate([[0.0], mids, [np.inf]])


def step_bin_centers(max_steps: int) -> np.ndarray:
    width = step_bin_width(max_steps)
    return np.floor(np.arange(n_step_bins(max_steps)) * width).astype(np.float64)


def best_index(rate, ci_low) -> int | None:
    """Flat index of the best cell: highest success rate, ties broken by the higher lower
    bound, then the first; None when every cell is empty (NaN)."""
    rate, ci_low = np.ravel(rate), np.ravel(ci_low)
    if not np.isfinite(rate).any():
        return None
    r = np.where(np.isfinite(rate), rate, -1.0)
    lo = np.where(np.isfinite(ci_low), ci_low, -1.0)
    return int(np.lexsort((-lo, -r))[0])


def rate_ci(k, n):
    """Success rate ``k / n`` (NaN where ``n = 0``) and its 95% Wilson interval ``(lo, hi)``."""
    k, n = np.asarray(k), np.asarray(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    return rate, *wilson(k, n)


def wilson(k, n, z: float = 1.959963984540054):
    """95% Wilson score interval for ``k`` successes out of ``n`` (arrays); NaN where n = 0."""
    k = np.asarray(k, np.float64)
    n = np.asarray(n, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        lo, hi = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    # Exact bounds where they are exact: 0 successes -> lo = 0, all -> hi = 1 (the formula
    # gives 1e-19 and 1 - 2e-16 there).
    lo, hi = np.where(k <= 0, 0.0, lo), np.where(k >= n, 1.0, hi)
    bad = n <= 0
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def steps_note(max_steps: int) -> str:
    w = step_bin_width(max_steps)
    return "exact" if w == 1.0 else f"to within {math.ceil(w)} steps"
