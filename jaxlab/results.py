"""A finished sweep as data: :class:`SweepResult` (its config and tables, :meth:`~SweepResult.select`
and :meth:`~SweepResult.cell` to read them), :func:`load_run` to read a run directory back, and
the tables a sweep writes there: :func:`cells_table` (one row per grid cell, from the
aggregates), written by :func:`write_csv`; the per-run records are :mod:`jaxlab.records`.

Running sweeps is :mod:`jaxlab.sweep`; figures (:mod:`jaxlab.plots`) read results only. Nothing
here compiles or trains. Every file is checked when it is read back (:mod:`jaxlab.validate`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from jaxlab import aggregate as A
from jaxlab import rundir, validate
from jaxlab.config import SweepConfig
from jaxlab.descent import Status
from jaxlab.errors import ConfigError, did_you_mean

__all__ = ["SweepResult", "cells_table", "load_run", "write_csv"]


@dataclass
class SweepResult:
    """A finished sweep: its config, the per-cell table, optional per-run table, metadata."""

    config: SweepConfig
    cells: dict  # column name -> numpy array (one entry per cell)
    runs: Mapping | None = None  # per-run columns: a dict, or RunRecords (read when used)
    meta: dict = field(default_factory=dict)
    run_dir: Path | None = None

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.cells)

    def to_xarray(self):
        """The cells table as an ``xarray.Dataset``: a dimension per swept axis (its values as
        coordinates, as cells.csv writes them), every other column a variable over them
        (:mod:`jaxlab.xarrays`). Needs ``pip install 'jaxlab[xarray]'``."""
        from jaxlab.xarrays import to_dataset

        return to_dataset(self)

    def finest(self, column: str = "success_rate") -> dict:
        """A refined sweep's ``column`` on its finest grid (each finest cell takes its leaf's
        value): ``{"values": (n_x, n_y) array, x first; "x", "y": the finest cells' centres;
        "x_edges", "y_edges": their bounds}`` (:func:`jaxlab.refine.raster`). ``cells`` holds
        every evaluated cell with its bounds (``<axis>_lo``, ``<axis>_hi``), ``level`` and
        ``leaf``."""
        if not self.config.refine:
            raise ConfigError("refine", "finest() is for refined sweeps (refine); this one is not")
        if column not in self.cells:
            raise ConfigError("column", f"no column {column!r}{did_you_mean(column, self.cells)}")
        from jaxlab.refine import raster

        return raster(self.config, self.cells, column)

    def __repr__(self) -> str:
        from jaxlab.summary import short

        return short(self)

    def _repr_html_(self) -> str:
        """A summary table for notebooks (:func:`jaxlab.summary.html_table`)."""
        from jaxlab.summary import html_table

        return html_table(self)

    def runs_table(self, columns=None):
        """The per-run records (``keep_runs``) as a ``pyarrow.Table``: ``columns`` (default: all)
        in run order; from a run directory only those columns are read. Needs pyarrow."""
        from jaxlab.records import RunRecords, require, to_arrow

        if self.runs is None:
            raise ConfigError("keep_runs", "this result has no per-run records (keep_runs)")
        if isinstance(self.runs, RunRecords):
            return self.runs.table(columns)
        require("runs")
        import pyarrow as pa

        full = to_arrow(dict(self.runs))
        return pa.table({n: full[n] for n in (columns or list(self.runs))})

    def select(self, nearest: bool = False, **where) -> SweepResult:
        """The sub-grid where the given axes hold one value each, e.g.
        ``res.select(optimizer="adam")`` or ``res.select(widths=[2, 4, 1])`` (``"2-4-1"`` too):
        its cells, and a config in which those settings are fixed, so heatmaps treat the rest as
        the grid. Values are matched as :meth:`cell` matches them."""
        mask, fixed = self._match(where, nearest)
        cells = {k: c[mask] for k, c in self.cells.items() if k not in fixed}
        # Per-run records keep their global indices, which the sub-grid's config does not
        # describe: a selection carries cells only (what the heatmaps need).
        cfg = self.config
        if cfg.points is not None:  # the matching points, without the columns now fixed
            fixed.pop("point", None)
            rows = np.flatnonzero(mask)
            kept = tuple((n, tuple(v[i] for i in rows)) for n, v in cfg.points if n not in fixed)
            cfg = replace(cfg, points=kept or None)
        return SweepResult(cfg.with_settings(**fixed), cells, None, self.meta, None)

    def cell(self, nearest: bool = False, **where) -> dict:
        """The row of the cell whose axis values are ``where``, e.g. ``res.cell(lr=1.0,
        scale=0.5)``. A number must be on the grid (to 1e-9 relative: the value written in
        cells.csv or config.toml); one that is not raises a ConfigError naming the nearest grid
        values, unless ``nearest=True`` (nearest on the axis's own spacing, log or linear).
        Axes not given must have one value among the matching cells."""
        mask, _ = self._match(where, nearest)
        rows = np.flatnonzero(mask)
        if len(rows) > 1:
            free = [a.name for a in self.config.axes if a.name not in where]
            if self.config.points is not None:
                free.append("point")
            raise ConfigError(
                free[0] if free else "cell",
                f"{len(rows)} cells match {where}; give a value for {', '.join(free)} too",
            )
        i = int(rows[0])
        return {k: c[i] for k, c in self.cells.items()}

    def _match(self, where: dict, nearest: bool) -> tuple[np.ndarray, dict]:
        """Cells where each named axis holds the given value, and those values in the config's
        own spelling (for :meth:`select`'s fixed settings)."""
        axes = {a.name: a for a in self.config.axes}
        mask = np.ones(len(self.cells["n_runs"]), bool)
        fixed = {}
        for name, value in where.items():
            if name == "point" and self.config.points is not None:
                mask &= self.cells["point"] == value
                fixed[name] = value
                continue
            if name not in axes:
                known = [a.name for a in self.config.settings]
                if name in known:
                    raise ConfigError(
                        name,
                        f"not an axis of this sweep (it ran {name} = "
                        f"{_spell(name, self.config.setting(name).values[0])} only); "
                        f"axes: {', '.join(axes) or 'none'}",
                    )
                raise ConfigError(
                    str(name),
                    f"unknown setting{did_you_mean(name, list(axes) + known)}; "
                    f"axes of this sweep: {', '.join(axes) or 'none'}",
                )
            axis = axes[name]
            v = _grid_value(axis, value, nearest)
            col = self.cells[name]
            if axis.traced:
                mask &= np.isclose(col, v, rtol=1e-9, atol=0.0)
            else:
                mask &= col == _spell(name, v)
            fixed[name] = list(v) if isinstance(v, tuple) else v
        if not mask.any():
            raise ConfigError(next(iter(where)), f"no cell has {where}")
        return mask, fixed


def _spell(name: str, value) -> str | float | int:
    """A value as cells.csv writes it (a tuple ``2-2-1``, a function by its name)."""
    return _axis_text(value) if isinstance(value, tuple) or callable(value) else value


def _grid_value(axis, value, nearest: bool):
    """The value of ``axis`` that ``value`` names (in any of the config's spellings)."""
    vals = axis.values
    if isinstance(vals[0], tuple):  # e.g. widths: a list, a tuple or "2-4-1"
        if isinstance(value, str):
            try:
                value = tuple(int(p) for p in value.split("-"))
            except ValueError:
                example = _axis_text(vals[0])
                raise ConfigError(
                    axis.name, f"expected values like {example}, got {value!r}"
                ) from None
        elif isinstance(value, list | tuple | np.ndarray):
            value = tuple(int(p) for p in value)
        if value in vals:
            return value
        raise ConfigError(
            axis.name,
            f"{value!r} is not on the grid; values: {', '.join(map(_axis_text, vals))}",
        )
    if axis.traced:
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ConfigError(axis.name, f"expected a number, got {value!r}")
        grid = np.asarray(vals, np.float64)
        exact = np.flatnonzero(np.isclose(grid, float(value), rtol=1e-9, atol=0.0))
        if exact.size:
            return float(grid[exact[0]])
        scale = np.log if axis.spacing == "log" and value > 0 else (lambda x: x)
        order = np.argsort(np.abs(scale(grid) - scale(float(value))), kind="stable")
        if nearest:
            return float(grid[order[0]])
        near = sorted(grid[order[:2]])
        raise ConfigError(
            axis.name,
            f"{value!r} is not on the grid; nearest values: "
            f"{', '.join(repr(float(x)) for x in near)} (or nearest=True)",
        )
    if value in vals:
        return value
    raise ConfigError(
        axis.name,
        f"{value!r} is not on the grid{did_you_mean(str(value), map(str, vals))}; values: "
        f"{', '.join(map(_axis_text, vals))}",
    )


def _axis_text(v) -> str:
    if isinstance(v, tuple):
        return "-".join(map(str, v))
    if callable(v):
        return getattr(v, "__name__", repr(v))
    return str(v)


def _axis_columns(cfg: SweepConfig, cell: np.ndarray) -> dict:
    """A column per axis: each cell's value of it (tuples written ``2-2-1``)."""
    axes = cfg.axes
    if not axes:
        return {}
    if cfg.points is not None:  # cell i is point i: its row of the point table
        given = dict(cfg.points)
        return {a.name: _typed(a, given[a.name])[cell] for a in axes}
    idx = np.unravel_index(cell, [len(a.values) for a in axes])
    return {a.name: _typed(a, a.values)[ix] for a, ix in zip(axes, idx)}


def _typed(a, values) -> np.ndarray:
    """``values`` of axis ``a`` as cells.csv writes them (tuples and functions as text)."""
    v0 = a.values[0]
    if isinstance(v0, tuple | str) or callable(v0):
        return np.array([_axis_text(v) for v in values])
    if a.traced or isinstance(v0, float):
        return np.asarray(values, dtype=np.float64)
    return np.asarray(values, dtype=np.int64)


def cells_table(cfg: SweepConfig, agg: A.Aggregates, lead: dict | None = None) -> dict:
    """One row per cell of ``agg``: the axis columns (``lead``: given, as a refined sweep's
    bounds and levels, :func:`jaxlab.refine.cell_columns`), counts, rates, quantiles."""
    n_cells = len(agg.n_runs)
    if lead is not None:
        table = dict(lead)
    else:
        table = _axis_columns(cfg, np.arange(n_cells))
    if cfg.points is not None:
        table = {"point": np.arange(n_cells, dtype=np.int64), **table}
    n, k = agg.n_runs, agg.n_success
    rate, lo, hi = A.rate_ci(k, n)
    table["n_runs"] = n
    table["n_success"] = k
    table["success_rate"] = rate
    table["ci_low"] = lo
    table["ci_high"] = hi
    if cfg.ci_width is not None:  # adaptive sweeps: the interval their stopping rule used
        from jaxlab.confseq import confseq

        table["cs_low"], table["cs_high"] = confseq(k, n)
    for s in Status:
        table[f"n_{s.name.lower()}"] = agg.status[:, s]
    # Each cell's steps were binned with its own budget (aggregate.chunk_aggregates): read
    # them off with that budget's bins.
    budget = table["max_steps"] if "max_steps" in table else None
    for name in ("p10_steps", "median_steps", "p90_steps"):
        table[name] = np.full(n_cells, np.nan)
    for ms in cfg.setting("max_steps").values:
        rows = slice(None) if budget is None else (budget == ms)
        centers = A.step_bin_centers(ms)
        hist = agg.steps_hist[rows]
        centers = np.concatenate([centers, np.full(hist.shape[1] - len(centers), np.nan)])
        for q, name in ((0.1, "p10_steps"), (0.5, "median_steps"), (0.9, "p90_steps")):
            table[name][rows] = A.quantile_from_hist(hist, q, centers)
    lc = A.loss_bin_centers()
    for q, name in ((0.1, "p10_final_loss"), (0.5, "median_final_loss"), (0.9, "p90_final_loss")):
        table[name] = A.quantile_from_hist(agg.loss_hist, q, lc)
    if agg.metric_n is not None and agg.metric_n.shape[1]:
        table.update(A.metric_columns(validate.output_names(cfg)[0], agg))
    return table


def write_csv(path, table: dict) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = list(table)
    w.writerow(cols)
    for row in zip(*(table[c] for c in cols)):
        w.writerow([_fmt(v) for v in row])
    rundir.atomic_write(path, buf.getvalue())


def _fmt(v):
    if isinstance(v, float | np.floating):
        return (
            repr(float(v))
            if math.isfinite(v)
            else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
        )
    if isinstance(v, np.integer | np.bool_):
        return str(int(v))
    return str(v)


def load_run(run_dir) -> SweepResult:
    """Load a run directory written by :func:`jaxlab.sweep.run_sweep` (no recomputation). Each file is
    checked first (:mod:`jaxlab.validate`): a damaged one raises a one-line ConfigError that
    names it and says what to do. The per-run records (``keep_runs``) are not read here:
    ``result.runs`` (a :class:`~jaxlab.records.RunRecords`) reads a column when it is first
    used, and checks each part then; here each part is only seen to be there and whole at its
    end."""
    d = Path(run_dir)
    if not (d / "config.toml").is_file() or not (d / "cells.csv").is_file():
        raise ConfigError(
            "run_dir",
            f"{d} is not a finished jaxlab run directory (needs config.toml and cells.csv)",
        )
    files = validate.read_finished(d)  # each file checked: a damaged one is a one-line error
    cfg, meta = files["config.toml"], files["meta.json"] or {}
    runs = None
    if cfg.keep_runs:  # read when first used (jaxlab.records); here only glanced at
        from jaxlab.records import RunRecords

        runs = RunRecords(d, cfg, files["cells.csv"], meta)
        if not runs._legacy:
            validate.glance_parts(d, cfg)
    return SweepResult(cfg, files["cells.csv"], runs, meta, d)
