"""The network problem's figures: decision boundaries of chosen restarts.

* :func:`draw`: the figure a network sweep draws (``boundaries.png``), from the restarts stored
  in its run directory when it finished (:mod:`jaxlab.problems.boundaries`); nothing compiled;
* :func:`boundary_atlas`: the same for any cells, replaying the restarts not stored;
* :func:`draw_boundaries`: draws a :class:`~jaxlab.problems.boundaries.Boundaries`.

Built on the generic helpers of :mod:`jaxlab.plots` (figure, saving, titles, rate format).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from jaxlab import plots
from jaxlab.datasets import get_dataset
from jaxlab.descent import Status
from jaxlab.errors import ConfigError
from jaxlab.facets import check_cells
from jaxlab.problems import boundaries

__all__ = ["boundary_atlas", "draw", "draw_boundaries"]


# --- the atlas -------------------------------------------------------------------------------
def boundary_atlas(res, path=None, cells=None, k: int = 3, *, fig=None) -> Figure:
    """Decision boundaries of up to ``k`` successful and ``k`` failed restarts for a few cells
    (indices or dicts of axis values; default: the best cell and the one nearest the lab's
    lr = 1, scale = 1, else the worst). Drawn from the run directory's ``boundaries.npz`` when
    it holds them; otherwise the restarts are replayed from their keys here
    (:func:`jaxlab.problems.boundaries.compute`, which compiles). Network sweeps only.
    Returns the Figure (``path`` and ``fig`` as :func:`draw_boundaries`)."""
    cfg = res.config
    plots.check_target(fig=fig)
    if not {"dataset", "widths"} <= set(cfg.relevant_settings()):
        raise ConfigError("problem", "decision boundaries are drawn for network sweeps only")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ConfigError("k", f"expected an integer >= 1, got {k!r}")
    check_cells(res)
    if cells is None:
        want = boundaries.default_cells(res)
    else:
        want = [boundaries.cell_index(res, c) for c in cells]
    stored = None
    if res.run_dir is not None:
        try:
            stored = boundaries.load(res.run_dir, cfg)
        except ConfigError:
            stored = None
    if stored is not None and stored.covers(want, k):
        data = stored.subset(want, k)
    else:
        data = boundaries.compute(res, want, k)
    return draw_boundaries(res, data, path, fig=fig)


def draw_boundaries(res, data, path=None, *, fig=None) -> Figure:
    """Draw stored decision boundaries (a :class:`jaxlab.problems.boundaries.Boundaries`): a row per
    cell, its ``k`` successful (left) and ``k`` failed (right) restarts, each panel the
    predicted probability on the lab's 101 x 101 grid over [-2, 2]^2 (blue 0, white 0.5, red 1),
    the 0.5 contour and the data points by class. Compiles and trains nothing.

    Returns the :class:`~matplotlib.figure.Figure`; writes a PNG to ``path`` only when one is
    given. ``fig``: a Figure or SubFigure to draw into (the atlas has several panels, so it
    takes no ``ax``)."""
    plots.check_target(fig=fig)
    cfg = res.config
    k = int(data.k)
    rows = []
    for c, source in zip(data.cells.tolist(), data.source.tolist()):
        mine = data.cell == c
        rows.append(
            (c, np.flatnonzero(mine & data.success), np.flatnonzero(mine & ~data.success), source)
        )
    side = data.prob.shape[-1]
    extent = tuple(float(e) for e in data.extent)
    own = fig is None
    if own:
        fig = plots.new_figure(2.3 * 2 * k + 1.2, 2.5 * max(1, len(rows)) + 1.3)
    axs = fig.subplots(max(1, len(rows)), 2 * k, squeeze=False, sharex=True, sharey=True)
    cmap = colormaps["bwr"]
    im = None
    for row, (c, succ, fail, source) in enumerate(rows):
        for col in range(2 * k):
            ax = axs[row, col]
            ax.set_aspect("equal")
            group, j = (succ, col) if col < k else (fail, col - k)
            if j >= len(group):
                what = "successful" if col < k else "failed"
                ax.text(
                    0, 0, f"no {what}\nrestart\n({source})", ha="center", va="center", fontsize=8
                )
                ax.set_xlim(extent[0], extent[1])
                ax.set_ylim(extent[2], extent[3])
                continue
            r = int(group[j])
            prob = np.asarray(data.prob[r], np.float64)
            im = ax.imshow(
                prob, origin="lower", extent=extent, cmap=cmap, vmin=0, vmax=1,
                interpolation="nearest",
            )  # fmt: skip
            if np.nanmin(prob) < 0.5 < np.nanmax(prob):
                ax.contour(
                    np.linspace(extent[0], extent[1], side), np.linspace(extent[2], extent[3], side),
                    prob, levels=[0.5], colors="k", linewidths=0.8,
                )  # fmt: skip
            points = get_dataset(str(data.dataset[r]))
            for cls, mk, colour in ((1, "^", "red"), (0, "o", "blue")):
                pts = np.asarray(points.x)[np.asarray(points.y) == cls]
                ax.plot(pts[:, 0], pts[:, 1], mk, color=colour, mec="black", ms=7, ls="none")
            status = Status(int(data.status[r])).name.lower().replace("_", " ")
            mark = "success" if col < k else "failure"
            ax.set_title(
                f"lr {data.lr[r]:.3g}, scale {data.scale[r]:.3g}\n"
                f"loss {data.loss[r]:.3g}, {status} ({mark})",
                fontsize=8,
                color="darkgreen" if col < k else "darkred",
            )
        rate = float(res.cells["success_rate"][c])
        at = np.unravel_index(c, [len(a.values) for a in cfg.axes]) if cfg.axes else ()
        where = ", ".join(
            f"{a.name} {plots.format_value(a.values[i])}" for a, i in zip(cfg.axes, at)
        )
        axs[row, 0].set_ylabel(
            f"cell {c}: {where or 'the only cell'}\nrate {plots.format_rate(rate)}\nx2", fontsize=8
        )
    for ax in axs[-1]:
        ax.set_xlabel("x1")
    if im is not None:
        fig.colorbar(im, ax=axs, label="predicted P(class 1)", shrink=0.8)
    handles = [
        Line2D([], [], marker="^", color="red", mec="black", ls="none", label="class 1"),
        Line2D([], [], marker="o", color="blue", mec="black", ls="none", label="class 0"),
        Line2D([], [], color="black", lw=0.8, label="P = 0.5"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)
    fig.suptitle(
        f"Decision boundaries: {k} successful (left) and {k} failed (right) restarts per row, "
        f"replayed from their keys when the sweep finished\n" + plots.describe(cfg),
        fontsize=9,
    )
    return plots.finish(fig, path, own=own)


def draw(res, path=None) -> Figure | None:
    """The network problem's figure: the decision-boundary atlas from the stored
    ``boundaries.npz`` (nothing compiled); None, with one line on stderr saying how to get it,
    when the run directory has none."""
    d = Path(res.run_dir)
    try:
        data = boundaries.load(d, res.config)
        why = f"{d} has no {boundaries.FILE} (a run directory from before it was stored)"
    except ConfigError as e:
        data, why = None, str(e)
    if data is None:
        name = Path(path).name if path is not None else "boundaries.png"
        plots.say(
            f"{name} not drawn: {why}; to replay its restarts and store them: "
            f'python -c "import jaxlab, jaxlab.problems.boundaries as b; b.store(jaxlab.load_run('
            f'{str(d)!r}))", then jaxlab plot {d}'
        )
        return None
    return draw_boundaries(res, data, path)
