"""A sweep's cells table as an :class:`xarray.Dataset` (:meth:`jaxlab.SweepResult.to_xarray`).

A product grid becomes one dimension per swept axis (static and traced, in the grid's order),
with the axis values as coordinates exactly as ``cells.csv`` writes them: traced axes as
float64, integer static axes (``max_steps``) as int64, the rest (``optimizer``, ``widths`` as
``"2-4-1"``, ``dataset``) as strings. Every other column of the cells table (counts, the rate
and its interval, status counts, step and loss quantiles, a problem's metric columns) is a
variable over those dimensions. A sweep with no axis is a Dataset of 0-d variables.

A refined sweep (``refine``) becomes a single ``cell`` dimension (the cells' quadtree node
ids), each cell's centre, bounds, ``level`` and ``leaf`` flag coordinates along it.

A design that is not a product grid (a list of points: the config carries ``points``, or the
table has another number of rows than the grid has cells) becomes a single ``point``
dimension, each swept setting a coordinate along it.

xarray is optional (``pip install 'jaxlab[xarray]'``) and imported only here.
"""

from __future__ import annotations

import math

import numpy as np

from jaxlab.errors import ConfigError

__all__ = ["to_dataset"]


def _xarray():
    try:
        import xarray
    except ImportError:
        raise ConfigError(
            "xarray", "SweepResult.to_xarray needs xarray: pip install 'jaxlab[xarray]'"
        ) from None
    return xarray


def to_dataset(res):
    """The cells table of ``res`` (a :class:`~jaxlab.results.SweepResult`) as an
    ``xarray.Dataset``; see the module's docstring. Raises ConfigError when xarray is not
    installed, or when a grid table's rows are not in the grid's order."""
    cfg, cells = res.config, res.cells
    xr = _xarray()
    if getattr(cfg, "refine", 0):
        # Refined cells: one `cell` dimension (cells.csv's node ids), each cell's centre,
        # bounds, level and leaf flag as coordinates along it.
        lead = ["node", *(a.name for a in cfg.axes)]
        lead += [f"{a.name}_{e}" for a in cfg.axes for e in ("lo", "hi")] + ["level", "leaf"]
        coords = {"cell": np.asarray(cells["node"])}
        coords.update({k: ("cell", np.asarray(cells[k])) for k in lead if k != "node"})
        data = {k: ("cell", np.asarray(cells[k]), _var_attrs(k)) for k in cells if k not in lead}
        return xr.Dataset(data, coords=coords, attrs={**_attrs(res), "design": "refined"})
    n_rows = len(np.asarray(cells["n_runs"]))
    settings = [s.name for s in cfg.settings if s.name in cells]  # the columns that are axes
    values = [k for k in cells if k not in settings]
    attrs = _attrs(res)
    if getattr(cfg, "points", None) is not None or n_rows != cfg.n_cells:
        # A point-list design: one row per point, its settings as coordinates along `point`.
        point = np.asarray(cells["point"]) if "point" in cells else np.arange(n_rows)
        coords = {"point": point}  # cells.csv's own point index, when it has one
        coords.update({k: ("point", np.asarray(cells[k])) for k in settings if k != "point"})
        data = {k: ("point", np.asarray(cells[k])) for k in values if k != "point"}
        return xr.Dataset(data, coords=coords, attrs={**attrs, "design": "points"})
    axes = cfg.axes
    dims = [a.name for a in axes]
    shape = tuple(len(a.values) for a in axes)
    coords = {}
    for i, a in enumerate(axes):
        col = np.asarray(cells[a.name]).reshape(shape)
        first = tuple(slice(None) if j == i else 0 for j in range(len(axes)))
        coord = col[first]
        if not np.array_equal(col, np.broadcast_to(coord.reshape(_along(i, shape)), shape)):
            raise ConfigError(
                "cells", f"the rows are not in the grid's order (axis {a.name} varies wrongly)"
            )
        kind = "traced" if a.traced else "static"
        coords[a.name] = (a.name, coord, {"kind": kind, "spacing": a.spacing})
    data = {k: (dims, np.asarray(cells[k]).reshape(shape), _var_attrs(k)) for k in values}
    return xr.Dataset(data, coords=coords, attrs={**attrs, "design": "grid"})


def _along(i: int, shape: tuple) -> tuple:
    return tuple(n if j == i else 1 for j, n in enumerate(shape))


def _attrs(res) -> dict:
    """What every cell ran, as netCDF-friendly attributes (strings and numbers)."""
    cfg = res.config
    fixed = [s for s in cfg.settings if len(s.values) == 1]
    spelled = ", ".join(f"{s.name}={_text(s.values[0])}" for s in fixed)
    attrs = {
        "problem": str(cfg.problem_label),
        "name": cfg.name,
        "n_runs_per_cell": int(cfg.n_runs),
        "threshold": float(cfg.threshold),
        "dtype": str(res.meta.get("dtype", cfg.dtype)),
        "seed": int(cfg.seed),
        "keys": cfg.keys,
        "fixed_settings": spelled,
    }
    if res.meta.get("config_hash"):
        attrs["config_hash"] = str(res.meta["config_hash"])
    if res.run_dir is not None:
        attrs["run_dir"] = str(res.run_dir)
    return attrs


def _text(v) -> str:
    if isinstance(v, tuple):
        return "-".join(map(str, v))
    if callable(v):
        return getattr(v, "__name__", repr(v))
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return str(v)


_DESCRIPTIONS = {
    "n_runs": "restarts",
    "n_success": "successful restarts",
    "success_rate": "n_success / n_runs",
    "ci_low": "95% Wilson interval, lower bound",
    "ci_high": "95% Wilson interval, upper bound",
}


def _var_attrs(name: str) -> dict:
    return {"description": _DESCRIPTIONS[name]} if name in _DESCRIPTIONS else {}
