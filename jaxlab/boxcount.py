"""Box-counting dimension of the boundary of a 2-D success map.

A map is a boolean raster ``success[row, col]`` (rows: the second axis, columns: the first),
at its finest pixels. :func:`boundary` marks the pixels whose class differs from an edge
neighbour's (both sides of the boundary: a straight edge is two pixels wide).
:func:`box_counts` counts, for box sizes 1, 2, 4, ... pixels, the boxes of an aligned grid that
hold at least one marked pixel, and :func:`fit` fits ``log N = D log(1/size) + c`` by least
squares over a range of sizes: ``D`` is the dimension. :func:`dimension` does all three.

**The range of scales.** Boxes of 1 pixel see the raster's own grain (a boundary drawn in
pixels is a line of them whatever the set), and boxes within a factor ~8 of the raster see
only a handful of boxes; the default fit uses sizes from ``min_size = 2`` up to
``max_size = min(shape) / 8`` (at least three sizes: a raster smaller than 64 pixels a side is
refused). The counts at every size are returned, so another range can be fitted from them.

:func:`rasterise` turns a ``cells.csv``-like table into that raster: a uniform grid (the two
axis columns hold the cell centres) or a refined one (``<axis>_lo``, ``<axis>_hi``,
``level`` and ``leaf`` columns; the leaves tile the plane and each fills the finest pixels it
covers, ``base cells x 2**max_level`` a side).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxlab.errors import ConfigError

__all__ = ["BoxCount", "Raster", "box_counts", "boundary", "dimension", "fit", "rasterise"]


class BoxCount(NamedTuple):
    """A box-counting estimate: ``dimension`` (the fitted slope), ``intercept``, ``r2`` and the
    slope's ``stderr`` of the least-squares fit of ``log N`` on ``log(1/size)`` over the sizes
    ``lo`` .. ``hi``; ``sizes`` (int, pixels) and ``counts`` (int) at every size counted."""

    dimension: float
    intercept: float
    r2: float
    stderr: float
    lo: int
    hi: int
    sizes: np.ndarray
    counts: np.ndarray


class Raster(NamedTuple):
    """A map at its finest pixels: ``success`` (ny, nx) bool, row ``j`` is the second axis's
    ``j``-th pixel; ``x_edges`` (nx + 1,) and ``y_edges`` (ny + 1,) the pixels' bounds in the
    axes' units; ``log`` whether each axis is log-spaced (x, y)."""

    success: np.ndarray
    x_edges: np.ndarray
    y_edges: np.ndarray
    log: tuple[bool, bool]


def _check_raster(a, what: str = "success") -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2 or a.dtype != bool:
        raise ConfigError(what, f"expected a 2-D boolean array, got shape {a.shape} {a.dtype}")
    return a


def boundary(success) -> np.ndarray:
    """Boundary pixels of a boolean raster (ny, nx): those whose value differs from at least one
    of their four edge neighbours (pixels outside the raster do not count). Same shape, bool."""
    s = _check_raster(success)
    out = np.zeros_like(s)
    dx = s[:, 1:] != s[:, :-1]
    dy = s[1:, :] != s[:-1, :]
    out[:, 1:] |= dx
    out[:, :-1] |= dx
    out[1:, :] |= dy
    out[:-1, :] |= dy
    return out


def box_counts(mask, sizes=None) -> tuple[np.ndarray, np.ndarray]:
    """``(sizes, counts)``: for each box size (default 1, 2, 4, ... up to the raster's shorter
    side), how many boxes of the aligned grid of that size (the last row and column of boxes may
    stick out of the raster) hold at least one ``True`` pixel of ``mask`` (ny, nx)."""
    m = _check_raster(mask, "mask")
    if sizes is None:
        sizes = 2 ** np.arange(int(np.log2(max(1, min(m.shape)))) + 1)
    sizes = np.asarray(sizes, np.int64)
    counts = []
    for s in sizes:
        ny, nx = -(-m.shape[0] // s), -(-m.shape[1] // s)
        pad = np.zeros((ny * s, nx * s), bool)
        pad[: m.shape[0], : m.shape[1]] = m
        counts.append(int(pad.reshape(ny, s, nx, s).any(axis=(1, 3)).sum()))
    return sizes, np.asarray(counts, np.int64)


def fit(sizes, counts, lo: int | None = None, hi: int | None = None) -> BoxCount:
    """Least squares of ``log N`` on ``log(1/size)`` over the sizes in ``[lo, hi]`` (default:
    all); at least three sizes with ``N > 0`` are needed."""
    sizes, counts = np.asarray(sizes), np.asarray(counts)
    lo = int(sizes.min()) if lo is None else int(lo)
    hi = int(sizes.max()) if hi is None else int(hi)
    use = (sizes >= lo) & (sizes <= hi) & (counts > 0)
    if use.sum() < 3:
        raise ConfigError(
            "box sizes", f"need at least 3 sizes in [{lo}, {hi}] with boxes, got {int(use.sum())}"
        )
    x, y = np.log(1.0 / sizes[use]), np.log(counts[use].astype(float))
    A = np.stack([x, np.ones_like(x)], 1)
    (slope, intercept), *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - (slope * x + intercept)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else 1.0
    dof = len(x) - 2
    se = float(np.sqrt((resid**2).sum() / dof / ((x - x.mean()) ** 2).sum())) if dof else 0.0
    return BoxCount(float(slope), float(intercept), r2, se, lo, hi, sizes, counts)


def dimension(success, min_size: int = 2, max_size: int | None = None) -> BoxCount:
    """The box-counting dimension of the boundary of ``success`` (ny, nx) bool, fitted over box
    sizes ``min_size`` .. ``max_size`` (default ``min(shape) // 8``); see the module docstring.
    Refused (ConfigError) when the map has no boundary or the range holds fewer than 3 sizes."""
    edge = boundary(success)
    if not edge.any():
        raise ConfigError("success", "the map has no boundary: every pixel is in one class")
    if max_size is None:
        max_size = min(edge.shape) // 8
    sizes, counts = box_counts(edge)
    return fit(sizes, counts, min_size, max_size)


def _spacing(lo: np.ndarray, hi: np.ndarray, centre: np.ndarray) -> bool:
    """Whether cells with bounds (lo, hi) and these centres are log-spaced (centre the geometric
    mean of its bounds) rather than linear (the arithmetic mean)."""
    if (lo <= 0).any():
        return False
    geo = np.abs(np.sqrt(lo * hi) - centre).max()
    ari = np.abs((lo + hi) / 2 - centre).max()
    return bool(geo < ari)


def _grid_edges(centres: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    """Pixel bounds of a uniform axis from its sorted cell centres (log-spaced when the centres
    are geometric), and whether it is log-spaced."""
    if len(centres) < 2:
        raise ConfigError(name, f"a map needs at least 2 values on each axis, got {len(centres)}")
    log = bool((centres > 0).all()) and np.allclose(
        np.diff(np.log(centres)), np.log(centres[1] / centres[0]), rtol=1e-6
    )
    t = np.log(centres) if log else centres
    mid = (t[1:] + t[:-1]) / 2
    edges = np.concatenate([[2 * t[0] - mid[0]], mid, [2 * t[-1] - mid[-1]]])
    return (np.exp(edges) if log else edges), log


def rasterise(table, x: str, y: str, value: str = "success_rate", threshold: float = 0.5) -> Raster:
    """The finest-pixel raster of a map given as a table (a pandas DataFrame or a dict of
    columns) with one row per cell: success where ``value >= threshold`` (the majority of a
    cell's restarts succeeded; with one restart a cell, the run did).

    * uniform (no ``<x>_lo`` column): the ``x`` and ``y`` columns hold cell centres of a full
      grid, one row per pair;
    * refined (``<axis>_lo``, ``<axis>_hi``, ``level``, ``leaf``): only the leaves are used; the
      finest pixel is a level-0 cell split ``max(level)`` times, and each leaf fills the pixels
      it covers; leaves that do not tile the plane exactly are refused.
    """
    import pandas as pd

    df = pd.DataFrame(table)
    for col in (x, y, value):
        if col not in df.columns:
            raise ConfigError(
                col, f"no such column; the table has {', '.join(map(str, df.columns))}"
            )
    if f"{x}_lo" not in df.columns:
        return _uniform(df, x, y, value, threshold)
    return _refined(df, x, y, value, threshold)


def _uniform(df, x, y, value, threshold) -> Raster:
    xs, ys = np.unique(df[x].to_numpy(float)), np.unique(df[y].to_numpy(float))
    if len(df) != len(xs) * len(ys) or df.duplicated([x, y]).any():
        raise ConfigError(
            "table", f"expected one row per ({x}, {y}) of a full grid: {len(df)} rows for "
            f"{len(xs)} x {len(ys)} values"
        )  # fmt: skip
    out = np.zeros((len(ys), len(xs)), bool)
    i = np.searchsorted(xs, df[x].to_numpy(float))
    j = np.searchsorted(ys, df[y].to_numpy(float))
    out[j, i] = df[value].to_numpy(float) >= threshold
    (xe, xlog), (ye, ylog) = _grid_edges(xs, x), _grid_edges(ys, y)
    return Raster(out, xe, ye, (xlog, ylog))


def _refined(df, x, y, value, threshold) -> Raster:
    for col in (f"{x}_hi", f"{y}_lo", f"{y}_hi", "level", "leaf"):
        if col not in df.columns:
            raise ConfigError(col, "missing: a refined table has <axis>_lo, <axis>_hi, level, leaf")
    base = df[df["level"] == 0]
    depth = int(df["level"].max())
    leaves = df[df["leaf"].astype(bool)]
    axes = []
    for name in (x, y):
        lo, hi = leaves[f"{name}_lo"].to_numpy(float), leaves[f"{name}_hi"].to_numpy(float)
        log = _spacing(lo, hi, leaves[name].to_numpy(float))
        t = np.log if log else (lambda v: v)
        n = len(np.unique(base[name].to_numpy(float))) * 2**depth
        a, b = t(lo.min()), t(hi.max())
        pix = (b - a) / n
        i0, i1 = np.rint((t(lo) - a) / pix).astype(int), np.rint((t(hi) - a) / pix).astype(int)
        edges = np.linspace(a, b, n + 1)
        axes.append((i0, i1, np.exp(edges) if log else edges, log, n))
    (xi0, xi1, xe, xlog, nx), (yj0, yj1, ye, ylog, ny) = axes
    out = np.zeros((ny, nx), bool)
    cover = np.zeros((ny, nx), np.int32)
    ok = leaves[value].to_numpy(float) >= threshold
    for k in range(len(leaves)):
        out[yj0[k] : yj1[k], xi0[k] : xi1[k]] = ok[k]
        cover[yj0[k] : yj1[k], xi0[k] : xi1[k]] += 1
    if (cover != 1).any():
        raise ConfigError(
            "table", f"the leaves do not tile the plane: {int((cover == 0).sum())} pixels "
            f"uncovered, {int((cover > 1).sum())} covered twice"
        )  # fmt: skip
    return Raster(out, xe, ye, (xlog, ylog))
