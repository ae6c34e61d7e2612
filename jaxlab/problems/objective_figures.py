"""The objective problem's figure: basins of attraction (which minimiser each start point
reaches), for sweeps with start-point axes ``x1``, ``x2`` and per-run records.

* :func:`draw_basins`: the figure an objective sweep draws (``basins.png``) where it applies;
* :func:`basin_map`: the map itself, with one-line errors where it does not apply.

Built on the generic helpers of :mod:`jaxlab.plots`; reads the tables only (nothing compiled).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from jaxlab import plots
from jaxlab.descent import Status
from jaxlab.errors import ConfigError
from jaxlab.objectives import get_objective

__all__ = ["basin_map", "draw_basins"]


# --- the basin map ---------------------------------------------------------------------------
def _edges(values) -> np.ndarray:
    v = np.asarray(values, np.float64)
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def basin_map(res, path=None, max_panels: int = 6, *, fig=None) -> Figure:
    """For each learning rate (up to ``max_panels``, chosen evenly; other axes likewise), colour
    each start point ``(x1, x2)`` by the known minimiser its final point lies nearest to (within
    1% of the plotting box), grey if none, black if diverged; contours of ``f`` underneath.
    Needs an objective sweep with per-run records (``keep_runs``) and ``x1``, ``x2`` as axes.

    Returns the :class:`~matplotlib.figure.Figure`; writes a PNG to ``path`` only when one is
    given. ``fig``: a Figure or SubFigure to draw into (one panel per learning rate, so no
    ``ax``)."""
    plots.check_target(fig=fig)
    cfg = res.config
    names = [a.name for a in cfg.axes]
    if "objective" not in cfg.relevant_settings():
        raise ConfigError("problem", "basin maps are drawn for objective sweeps only")
    if not res.runs:
        raise ConfigError("keep_runs", "basin maps need per-run records; rerun with keep_runs")
    if "x1" not in names or "x2" not in names:
        raise ConfigError(
            "x1", "basin maps need x1 and x2 as axes (random start points are not stored)"
        )
    if len(cfg.setting("objective").values) != 1:
        raise ConfigError("objective", "basin maps are drawn for one objective at a time")
    obj = get_objective(cfg.setting("objective").values[0])
    mins = np.asarray(obj.all_minimizers, np.float64)
    (a1, b1), (a2, b2) = obj.box
    tol = 0.01 * max(b1 - a1, b2 - a2)
    runs = res.runs
    fin = np.stack([np.asarray(runs["x1_final"], float), np.asarray(runs["x2_final"], float)], 1)
    d = np.linalg.norm(fin[:, None, :] - mins[None], axis=-1)
    near = np.argmin(d, axis=1)
    cat = np.where(np.min(d, axis=1) <= tol, near, len(mins))  # len(mins): "none"
    cat = np.where(np.asarray(runs["status"]) == Status.DIVERGED, len(mins) + 1, cat)
    shape = [len(a.values) for a in cfg.axes]
    n_cells = math.prod(shape)
    # One category per cell: the most common among its restarts.
    counts = np.zeros((n_cells, len(mins) + 2), np.int64)
    np.add.at(counts, (np.asarray(runs["cell"], np.int64), cat), 1)
    cell_cat = np.where(counts.sum(1) > 0, counts.argmax(1), -1).reshape(shape)
    ix1, ix2 = names.index("x1"), names.index("x2")
    others = [i for i in range(len(shape)) if i not in (ix1, ix2)]
    combos = list(np.ndindex(*[shape[i] for i in others])) or [()]
    if len(combos) > max_panels:
        picks = np.unique(np.linspace(0, len(combos) - 1, max_panels).round().astype(int))
        combos = [combos[int(i)] for i in picks]
    colours = [colormaps["tab10"](i % 10) for i in range(len(mins))] + [plots.NAN_GREY, "black"]
    cmap = ListedColormap(colours).with_extremes(bad="white")
    norm = BoundaryNorm(np.arange(len(colours) + 1) - 0.5, len(colours))
    x1v, x2v = cfg.setting("x1").values, cfg.setting("x2").values
    s1 = np.linspace(min(x1v[0], a1), max(x1v[-1], b1), 200)
    s2 = np.linspace(min(x2v[0], a2), max(x2v[-1], b2), 200)
    g1, g2 = np.meshgrid(s1, s2)
    f = np.asarray(obj.value(np.stack([g1, g2], -1)), np.float64) - obj.minimum
    logf = np.log10(np.maximum(f, 1e-6))
    ncol = min(3, len(combos))
    nrow = math.ceil(len(combos) / ncol)
    own = fig is None
    if own:
        fig = plots.new_figure(4.2 * ncol + 1.5, 4.0 * nrow + 2.0)
    axs = fig.subplots(nrow, ncol, squeeze=False)
    for p, combo in enumerate(combos):
        ax = axs.flat[p]
        sl = [slice(None)] * len(shape)
        for i, v in zip(others, combo):
            sl[i] = v
        Z = cell_cat[tuple(sl)]
        if ix1 > ix2:
            Z = Z.T  # now Z[i1, i2]
        ax.pcolormesh(
            _edges(x1v), _edges(x2v), np.ma.masked_less(Z.T, 0), cmap=cmap, norm=norm, alpha=0.85
        )
        ax.contour(g1, g2, logf, levels=12, colors="k", linewidths=0.4, alpha=0.5)
        for j, (m1, m2) in enumerate(mins):
            ax.plot(m1, m2, "*", color=colours[j], mec="black", ms=14, ls="none")
        ax.set_xlim(s1[0], s1[-1])
        ax.set_ylim(s2[0], s2[-1])
        ax.set_aspect("equal")
        ax.set_xlabel("start x1")
        ax.set_ylabel("start x2")
        valid = Z[Z >= 0]
        reached = np.mean(valid < len(mins)) if valid.size else math.nan
        label = ", ".join(
            f"{cfg.axes[i].name} {plots.format_value(cfg.axes[i].values[v])}"
            for i, v in zip(others, combo)
        )
        ax.set_title(
            f"{label or 'all runs'}\n{reached:.0%} of starts reach a minimiser", fontsize=9
        )
    for ax in list(axs.flat)[len(combos) :]:
        ax.set_visible(False)
    n_global = len(obj.minimizers)
    handles = [
        Patch(
            color=colours[j],
            label=f"({m[0]:.2f}, {m[1]:.2f}) {'global' if j < n_global else 'local'}",
        )
        for j, m in enumerate(mins)
    ] + [
        Patch(color=plots.NAN_GREY, label=f"no minimiser within {tol:g}"),
        Patch(color="black", label="diverged"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=8)
    fig.suptitle(
        f"Basins of attraction of {obj.name}: colour = minimiser the run from (x1, x2) ends at "
        f"(stars; contours of log10(f - f_min))\n" + plots.describe(cfg),
        fontsize=9,
    )
    return plots.finish(fig, path, own=own)


def draw_basins(res, path=None, *, fig=None) -> Figure | None:
    """The objective problem's figure: :func:`basin_map` where it applies (one objective,
    per-run records, ``x1`` and ``x2`` as axes); None otherwise."""
    cfg = res.config
    names = {a.name for a in cfg.axes}
    if not res.runs or not {"x1", "x2"} <= names or len(cfg.setting("objective").values) != 1:
        return None
    return basin_map(res, path, fig=fig)
