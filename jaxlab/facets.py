"""Which axes a figure maps and which it facets by, and the per-panel tables it draws.

A figure maps one axis (a line) or two (a heatmap, ``x`` across and ``y`` up); every other axis
is a *facet*: one panel (or one line) per value, each with its own best cell, so every number
shown is one that a setting of the sweep has. Nothing is pooled unless asked: ``facet=`` names
the facet axes, and the axes neither mapped nor named are then pooled (counts added, the rate and
its interval recomputed; the figure says so). ``facet=()`` (``--facet none``) pools them all.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

from jaxlab import aggregate as A
from jaxlab.config import Axis
from jaxlab.errors import ConfigError

__all__ = [
    "MAX_PANELS",
    "Facets",
    "Panel",
    "TooManyPanels",
    "check_cells",
    "choose",
    "facet_tables",
]

MAX_PANELS = 24  # more panels than this are not readable in one figure


class TooManyPanels(ConfigError):
    """The facets asked for (or the default, every unmapped axis) make more than MAX_PANELS."""


class Panel(NamedTuple):
    """One facet value's map. Arrays are shaped like the mapped axes, ``(nx,)`` or ``(nx, ny)``
    (``(1,)`` when nothing is mapped); counts are summed over the pooled axes, if any."""

    where: tuple  # ((facet axis name, value), ...), in facet order; () for a single panel
    n: np.ndarray  # int64 restarts
    k: np.ndarray  # int64 successes
    rate: np.ndarray  # float64, NaN where n = 0
    lo: np.ndarray  # float64 95% Wilson interval
    hi: np.ndarray
    steps: np.ndarray  # float64 median steps (pooled: the median of the cells' medians)
    best: tuple | None  # index of the highest rate (ties: the higher lower bound); None if empty


class Facets(NamedTuple):
    x: Axis | None
    y: Axis | None
    facet: tuple  # of Axis
    pooled: tuple  # of Axis
    panels: tuple  # of Panel, facet values in product order (the last facet axis fastest)


def _names(value, param: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [] if value.strip().lower() in ("", "none") else value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(param, f"expected axis names (a list, or NAME,NAME), got {value!r}")
    return [v.strip() for v in value]


def choose(cfg, x=None, y=None, facet=None) -> tuple:
    """Validate and resolve the axes of a figure: ``(x, y, facet, pooled)`` as Axis objects
    (``x``/``y`` None when not mapped). Defaults: the two traced axes with the most values
    (then static ones; ties in grid order; not the named facets), the first in grid order
    across, traced before static; every axis not mapped is a facet. Raises ConfigError
    naming the parameter and the axes allowed, :class:`TooManyPanels` past MAX_PANELS."""
    axes = {a.name: a for a in cfg.axes}
    allowed = ", ".join(axes) or "none (this sweep has a single cell)"
    for param, n in (("x", x), ("y", y)):
        if n is not None and n not in axes:
            raise ConfigError(param, f"{n!r} is not an axis of this sweep; axes: {allowed}")
    if x is not None and x == y:
        raise ConfigError("y", f"x and y must be different axes, both are {x!r}")
    named = _names(facet, "facet")
    for n in named or []:
        if n not in axes:
            raise ConfigError("facet", f"{n!r} is not an axis of this sweep; axes: {allowed}")
        if n in (x, y):
            raise ConfigError("facet", f"{n!r} is mapped (x or y); facet by the other axes")
    if named is not None and len(set(named)) != len(named):
        raise ConfigError("facet", f"each axis at most once, got {','.join(named)}")
    order = [n for n, a in axes.items() if a.traced] + [n for n, a in axes.items() if not a.traced]
    # Map the traced axes with the most values (fewest panels), laid out in `order`.
    rank = sorted(
        (n for n in order if n not in (named or []) and n not in (x, y)),
        key=lambda n: (not axes[n].traced, -len(axes[n].values), order.index(n)),
    )
    if x is None and y is None:
        x, y = sorted(rank[:2], key=order.index) + [None] * (2 - len(rank[:2]))
    elif x is None:
        x = rank[0] if rank else None
    elif y is None:
        y = rank[0] if rank else None
    mapped = {x, y}
    if named is None:
        named = [n for n in axes if n not in mapped]  # grid order
    pooled = [n for n in axes if n not in mapped and n not in named]
    n_panels = math.prod(len(axes[n].values) for n in named)
    if n_panels > MAX_PANELS:
        sizes = " x ".join(f"{len(axes[n].values)} {n}" for n in named)
        raise TooManyPanels(
            "facet",
            f"{n_panels} panels ({sizes}) are too many for one figure (at most {MAX_PANELS}); "
            "facet by fewer axes (--facet NAME; the others are then pooled, and the figure "
            "says so), map others (--x/--y), or draw a sub-grid (res.select(NAME=VALUE))",
        )
    pick = [axes[n] if n is not None else None for n in (x, y)]
    return pick[0], pick[1], tuple(axes[n] for n in named), tuple(axes[n] for n in pooled)


def check_cells(res) -> None:
    """Raise unless the cells table of ``res`` has one row per cell of its config's grid."""
    n_rows = len(np.asarray(res.cells.get("n_runs", [])))
    if n_rows != res.config.n_cells:
        raise ConfigError(
            "cells",
            f"the table has {n_rows} rows but the config's grid has {res.config.n_cells} cells",
        )


def facet_tables(res, x=None, y=None, facet=None) -> Facets:
    """The figure's numbers: one :class:`Panel` per combination of facet values, from the
    cells table of ``res`` (a :class:`~jaxlab.results.SweepResult`). See :func:`choose`."""
    cfg = res.config
    check_cells(res)
    ax, ay, fac, pool = choose(cfg, x, y, facet)
    names = [a.name for a in cfg.axes]
    shape = [len(a.values) for a in cfg.axes]
    mapped = [a for a in (ax, ay) if a is not None]
    order = [names.index(a.name) for a in (*mapped, *fac, *pool)]
    lead = [shape[i] for i in order[: len(mapped) + len(fac)]]

    def grid(col, dtype=np.float64):
        a = np.asarray(res.cells[col], dtype).reshape(shape).transpose(order)
        return a.reshape(lead + [-1])

    n_all, k_all, steps_all = (
        grid("n_runs", np.int64),
        grid("n_success", np.int64),
        grid("median_steps"),
    )
    panels = []
    for combo in np.ndindex(*[len(a.values) for a in fac]):
        at = (slice(None),) * len(mapped) + combo
        n, k = n_all[at].sum(axis=-1), k_all[at].sum(axis=-1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: an empty cell stays NaN
            steps = np.nanmedian(steps_all[at], axis=-1)
        n, k, steps = (np.reshape(v, v.shape or (1,)) for v in (n, k, steps))
        rate, lo, hi = A.rate_ci(k, n)
        if res.config.ci_width is not None:  # adaptive: the interval its stopping rule used
            from jaxlab.confseq import confseq

            lo, hi = confseq(k, n)
        b = A.best_index(rate, lo)
        best = None if b is None else tuple(int(i) for i in np.unravel_index(b, rate.shape))
        where = tuple((a.name, a.values[i]) for a, i in zip(fac, combo))
        panels.append(Panel(where, n, k, rate, lo, hi, steps, best))
    return Facets(ax, ay, fac, pool, tuple(panels))
