"""Sweeps over an explicit list of points instead of a product grid.

A point sets every swept name (its columns); each point is a cell of ``n_runs`` restarts, in the
order given (cell ``i`` is point ``i``, so its restarts' keys follow the grid's rule). Points are
given as a CSV file (a header of setting names, one row per point), a table of columns (what
``config.toml`` writes: ``[points]`` with ``lr = [...]``), a list of dicts, or a pandas
DataFrame; :func:`normalize` turns any of them into ``((name, values), ...)`` in the problem's
setting order, each value checked as a grid's value is (:func:`jaxlab.config.parse_values`).

Static names in the points split them into static combinations, one compiled program each;
traced names vary freely within one (:func:`combos`).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from jaxlab.errors import ConfigError, did_you_mean

__all__ = ["combos", "normalize", "unique"]

MAX_POINTS = 1_000_000


def _is_normal(spec) -> bool:
    return isinstance(spec, tuple) and all(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], tuple)
        for p in spec
    )


def _read_csv(file: Path, label: str) -> dict[str, list[str]]:
    if not file.is_file():
        raise ConfigError(label, f"no such points file: {file}")
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(label, f"cannot read {file}: {e}") from None
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r and any(c.strip() for c in r)]
    if not rows:
        raise ConfigError(
            label, "empty points file; expected a header of setting names and a row per point"
        )
    head = [h.strip() for h in rows[0]]
    if len(rows) == 1:
        raise ConfigError(label, f"no points: only a header ({', '.join(head)}), no rows")
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(head):
            raise ConfigError(
                label, f"line {i} has {len(r)} fields, the header {len(head)} ({', '.join(head)})"
            )
    return {h: [r[j].strip() for r in rows[1:]] for j, h in enumerate(head)}


def _columns(spec, label: str) -> dict[str, list]:
    """The points as ``{name: [values]}`` (values as given: strings from a file)."""
    if hasattr(spec, "columns") and hasattr(spec, "to_dict"):  # a pandas DataFrame
        return {str(c): list(spec[c]) for c in spec.columns}
    if isinstance(spec, dict):
        cols = {}
        for k, v in spec.items():
            if not isinstance(v, list | tuple):
                raise ConfigError(
                    label, f"{k}: expected a list of values (one per point), got {v!r}"
                )
            cols[str(k)] = list(v)
        n = {len(v) for v in cols.values()}
        if len(n) > 1:
            sizes = ", ".join(f"{k} {len(v)}" for k, v in cols.items())
            raise ConfigError(label, f"ragged columns ({sizes}); each column a value per point")
        return cols
    if isinstance(spec, list | tuple):
        if not all(isinstance(r, dict) for r in spec):
            bad = next(r for r in spec if not isinstance(r, dict))
            raise ConfigError(label, f"expected a list of dicts (one per point), got {bad!r}")
        names = list(spec[0]) if spec else []
        for i, r in enumerate(spec):
            if list(r) != names:
                raise ConfigError(
                    label,
                    f"point {i} sets {', '.join(map(str, r))}; point 0 sets {', '.join(names)}",
                )
        return {str(n): [r[n] for r in spec] for n in names}
    raise ConfigError(
        label, f"expected a CSV file, a list of dicts or a DataFrame, got {type(spec).__name__}"
    )


def normalize(spec, known: dict, folder: str | os.PathLike | None = None) -> tuple:
    """``((name, values), ...)`` in ``known``'s order (the problem's :func:`~jaxlab.config.schema`)
    from a path (relative to ``folder``, else the working directory), a table of columns, a list
    of dicts or a DataFrame. Every value is checked; a bad one raises a one-line ConfigError that
    names the file (or ``points``), the row and the setting."""
    if _is_normal(spec):
        return spec
    from jaxlab.config import _SCALARS

    label = "points"
    if isinstance(spec, str | os.PathLike):
        label = str(spec)
        file = Path(spec)
        if not file.is_absolute() and folder is not None:
            file = Path(folder) / file
        cols = _read_csv(file, label)
    else:
        cols = _columns(spec, label)
    n = len(next(iter(cols.values()))) if cols else 0
    if not cols or n == 0:
        raise ConfigError(label, "no points; give at least one row")
    if n > MAX_POINTS:
        raise ConfigError(label, f"{n:,} points; at most {MAX_POINTS:,}")
    for name in cols:
        if name not in known:
            what = "a sweep option, not a setting" if name in _SCALARS else "unknown setting"
            raise ConfigError(
                label,
                f"column {name!r}: {what}{did_you_mean(name, known)}; points set the problem's "
                f"settings: {', '.join(known)}",
            )
    out = []
    for name in (k for k in known if k in cols):
        values = []
        parse = _parser(known[name])
        for i, v in enumerate(cols[name]):
            try:
                values.append(parse(v))
            except ConfigError as e:
                raise ConfigError(label, f"point {i}: {e}") from None
        out.append((name, tuple(values)))
    return tuple(out)


def _parser(setting):
    """``value -> checked value`` of one setting: a number straight to its check for traced
    settings (points are many), else as a grid's value, each distinct value parsed once."""
    from jaxlab.config import _check_value, parse_values

    memo: dict = {}

    def one(v):
        if isinstance(v, np.generic):
            v = v.item()
        if setting.traced and isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                raise ConfigError(setting.name, f"expected {setting.allowed}, got {v!r}") from None
        if setting.traced and isinstance(v, int | float) and not isinstance(v, bool):
            return _check_value(setting, v)
        key = (type(v), v) if not isinstance(v, list) else (list, tuple(v))
        if key not in memo:
            axis = parse_values(setting.name, v, setting)
            if len(axis.values) != 1:
                raise ConfigError(setting.name, f"expected one value a point, got {v!r}")
            memo[key] = axis.values[0]
        return memo[key]

    return one


def unique(values: tuple) -> tuple:
    """The distinct values in order of first appearance (NaN counted once)."""
    from jaxlab.config import _key

    seen: dict = {}
    for v in values:
        seen.setdefault(_key(v), v)
    return tuple(seen.values())


def combos(cfg) -> tuple[list[dict], np.ndarray]:
    """The static combinations the points of ``cfg`` take (``{name: value}`` of the static
    names in the points, in order of first appearance) and each point's (cell's) combination
    index, an (n_cells,) int64 array."""
    from jaxlab.config import _key

    static = [(n, v) for n, v in cfg.points if not cfg.schema[n].traced]
    n = cfg.n_cells
    index: dict = {}
    which = np.zeros(n, np.int64)
    found = []
    for i in range(n):
        key = tuple(_key(v[i]) for _, v in static)
        if key not in index:
            index[key] = len(found)
            found.append({name: v[i] for name, v in static})
        which[i] = index[key]
    return found, which
