"""Reading a run directory back: every file is checked before it is trusted.

A file cut short, emptied, overwritten with junk or with a flipped byte ends in one
:class:`ConfigError` that names the file, says what is wrong with it and what to do; the check
never writes, so the damaged file and every other file stay as they were.

What each file's check detects:

* ``meta.json`` (written last, when the sweep finishes): valid JSON, an object, and the sha256 of
  its own content (``meta_sha256``) matches. It records the sha256 of every file marked
  ``checksum`` in :data:`FILES`, as written (``checksums``).
* ``config.toml``: UTF-8, a valid config, its hash and chunk size equal to ``meta.json``'s, and
  its sha256. A resume also compares it with the checkpoint's config hash and chunk size.
* ``cells.csv``: UTF-8, ends in a newline, the columns of this config, one row per cell, every
  row whole, numbers that parse, axis values equal to the config's grid, integer counts
  non-negative and consistent (``n_success <= n_runs``, the status counts add up to ``n_runs =
  n_runs`` of the config), rates and intervals equal to the counts, quantiles ordered and in
  range. Then the sha256 recorded in ``meta.json``: a flipped digit that the checks above cannot
  see (in a quantile) is caught there.
* ``runs/part-NNNNNNN.parquet`` (the per-run records, :mod:`jaxlab.records`), when they are
  read (:func:`read_part`; ``load_run`` only glances: :func:`glance_parts`): the sha256 in
  ``meta.json``, a whole Parquet file (footer magic, CRC-32 of every page read), this config's
  schema, the chunk's row count, run indices, cells, statuses and their names, steps in range,
  and the counts adding up to ``cells.csv``'s (:func:`check_run_counts`). On resume, a finished
  chunk's part that is missing or damaged (the same checks, without a sha256) is *recovered*:
  that chunk is recomputed (results do not depend on chunking, so the part comes back
  bit-identical); its counts, already in the checkpoint, are not added again.
* ``runs.csv`` of a run directory written before Parquet (:func:`read_legacy_runs`): as
  ``cells.csv``, one row per restart, plus run indices, cells, statuses and their names, and its
  per-cell counts equal to ``cells.csv``'s.
* ``state.npz`` (resume): a whole ``.npz`` (zip CRC-32 on every array; a flipped byte anywhere
  is an error or reads back identical, tested byte by byte), every array of the shape the config
  gives, counts consistent with the chunks it says are done.

Not checked here: ``state.log`` (each record carries a CRC-32 over its header and payload: a
damaged record and everything after it is dropped and those chunks recomputed, see
:class:`jaxlab.rundir.ChunkLog`), ``.lock`` (the lock is the kernel's ``flock``; its content only
names the holder, and a damaged one is taken over), the figures (outputs only, redrawn by
``jaxlab plot``). Without ``meta.json`` (a run directory of an older version, or a sweep killed
just before writing it) only the consistency checks apply.

To add a file: write its check, ``check(data: bytes, seen: dict) -> value`` raising
:class:`Damaged` (``seen`` holds what the files before it gave), and add a :class:`RunFile` to
:data:`FILES` with what to do when it is damaged; ``checksum=True`` if it is written before
``meta.json``, so that its sha256 is recorded there and verified on load.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import numpy as np

from jaxlab import aggregate as A
from jaxlab.config import SweepConfig, config_hash, from_toml
from jaxlab.descent import Status
from jaxlab.errors import ConfigError

__all__ = [
    "FILES",
    "Damaged",
    "RunFile",
    "damaged_chunks",
    "finished",
    "meta_text",
    "read_config",
    "read_finished",
    "read_state",
]


class Damaged(Exception):
    """A file's content is not what jaxlab wrote; ``str()`` says how, in one clause."""


@dataclass(frozen=True)
class RunFile:
    """One file of a finished run directory and how it is checked when read back."""

    name: str  # path inside the run directory
    check: Callable[[bytes, dict], object]  # (its bytes, what earlier files gave) -> its value
    todo: str  # what to do when it is damaged; ``{d}`` is the run directory
    required: Callable[[dict], bool] = lambda seen: True
    checksum: bool = True  # sha256 recorded in meta.json at the end of the sweep, verified on load


_REBUILD = (
    "delete it and meta.json, then `jaxlab sweep --resume {d}` rebuilds them from the checkpoint"
)
_REWRITE = "delete it, then `jaxlab sweep --resume {d}` rewrites it from the checkpoint"
_RESTORE = "restore it from a copy, or run the sweep again with another --out"
RESTORE = _RESTORE
CELL_COUNTS = ["n_runs", "n_success"] + [f"n_{s.name.lower()}" for s in Status]
CELL_COLUMNS = (
    ["n_runs", "n_success", "success_rate", "ci_low", "ci_high"]
    + [f"n_{s.name.lower()}" for s in Status]
    + ["p10_steps", "median_steps", "p90_steps"]
    + ["p10_final_loss", "median_final_loss", "p90_final_loss"]
)
CHUNK_ARRAYS = ("run", "final_loss", "steps", "status", "success")


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Damaged(f"not UTF-8 text (byte {e.start} is {data[e.start]:#04x})") from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _meta_digest(meta: dict) -> str:
    rest = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return _sha256(json.dumps(rest, sort_keys=True).encode())


# --- the files of a finished run -------------------------------------------------------------
def _check_meta(data: bytes, seen: dict) -> dict:
    text = _utf8(data)
    if not text.strip():
        raise Damaged("empty")
    try:
        meta = json.loads(text)
    except ValueError as e:
        raise Damaged(f"not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise Damaged("not a JSON object")
    sealed = [k for k in ("checksums", "meta_sha256") if k in meta]
    if len(sealed) == 1:  # written together: a bit flipped in the other one's name
        raise Damaged(f"'checksums' and 'meta_sha256' go together; it has only {sealed[0]!r}")
    if sealed and meta["meta_sha256"] != _meta_digest(meta):
        raise Damaged("its content does not match its own sha256 (meta_sha256)")
    if not isinstance(meta.get("checksums", {}), dict):
        raise Damaged("'checksums' is not an object")
    return meta


def _check_config(data: bytes, seen: dict) -> SweepConfig:
    text = _utf8(data)
    if not text.strip():
        raise Damaged("empty")  # which would read as the default config
    if not text.endswith("\n"):
        raise Damaged("truncated (the last line has no newline)")
    try:
        cfg = from_toml(text)
    except ConfigError as e:
        raise Damaged(f"not a valid config ({e})") from None
    meta = seen.get("meta.json") or {}
    if "config_hash" in meta and meta["config_hash"] not in (config_hash(cfg), legacy_hash(cfg)):
        names = ", ".join(cfg.problem_obj.digests or ())
        also = f" (or the content of its {names} changed since the sweep)" if names else ""
        raise Damaged(
            f"its config_hash {config_hash(cfg)!r} differs from meta.json's "
            f"{meta['config_hash']!r}{also}"
        )
    if "chunk_size" in meta and meta["chunk_size"] != cfg.chunk_size:
        raise Damaged(
            f"its chunk_size {cfg.chunk_size!r} differs from meta.json's {meta['chunk_size']!r}"
        )
    if "total_runs" in meta and meta["total_runs"] != cfg.total_runs:
        raise Damaged(f"it gives {cfg.total_runs} restarts, meta.json {meta['total_runs']!r}")
    return cfg


def legacy_hash(cfg: SweepConfig) -> str | None:
    """The config hash jaxlab wrote before configs named their problem's settings (one flat
    list of the lab's settings for every problem, no ``keys``): run directories from then still
    load. None for configs that version could not express."""
    import hashlib

    import tomli_w

    from jaxlab.problems import BUILTIN

    if cfg.problem not in BUILTIN or cfg.keys != "independent" or cfg.tol == "off":
        return None
    own = {a.name: a for a in cfg.settings}
    defaults = {a.name: a for a in SweepConfig().settings}
    d = {
        "dtype": cfg.dtype, "keep_runs": cfg.keep_runs,
        "loss": own["loss"].values[0] if "loss" in own else "lab",
        "method": cfg.method, "n_runs": cfg.n_runs, "problem": cfg.problem, "seed": cfg.seed,
        "threshold": cfg.threshold, "tol": cfg.tol,
    }  # fmt: skip
    if "loss" in own and len(own["loss"].values) > 1:
        return None
    for name in ("objective", "dataset", "widths", "optimizer", "max_steps", "lr", "scale",
                 "momentum", "x1", "x2"):  # fmt: skip
        a = own.get(name) or defaults.get(name)
        if a is None:
            if name == "objective":
                d[name] = "lab"
            continue
        v = a.values
        if all(isinstance(x, float) and math.isnan(x) for x in v):
            continue  # random start points: not written then
        d[name] = a.to_toml()
    return hashlib.sha256(tomli_w.dumps(d).encode()).hexdigest()[:16]


def _rows(data: bytes, want: list[str], n_rows: int) -> dict[str, np.ndarray]:
    """The columns of a CSV file written by ``write_csv``, as tuples of strings."""
    text = _utf8(data)
    if not text:
        raise Damaged("empty")
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as e:
        raise Damaged(f"not CSV ({e})") from None
    head, body = rows[0], rows[1:]
    if head != want:
        i, (got, exp) = next((i, p) for i, p in enumerate(zip_longest(head, want)) if p[0] != p[1])
        got, exp = ("none" if v is None else repr(v) for v in (got, exp))
        raise Damaged(
            f"header column {i + 1} is {got}, expected {exp} (this config's columns: "
            f"{', '.join(want)})"
        )
    bad = next((i for i, r in enumerate(body) if len(r) != len(want)), None)
    if bad is not None:
        what = f"row {bad + 1} of {n_rows} has {len(body[bad])} fields, expected {len(want)}"
        raise Damaged(f"truncated ({what})" if bad == len(body) - 1 else what)
    if not text.endswith("\n"):  # cut inside its last field
        raise Damaged(f"truncated (row {len(body)} of {n_rows} is cut short)")
    if len(body) != n_rows:
        if len(body) < n_rows:
            raise Damaged(f"truncated ({len(body)} of {n_rows} rows)")
        raise Damaged(f"{len(body)} rows, expected {n_rows}")
    cols = list(zip(*body)) if body else [()] * len(want)
    return dict(zip(want, cols))


def _numbers(table: dict, name: str, dtype) -> np.ndarray:
    try:
        return np.array(table[name], dtype=dtype)
    except ValueError:
        kind = "an integer" if dtype is np.int64 else "a number"
        for i, v in enumerate(table[name]):
            try:
                dtype(v)
            except ValueError:
                raise Damaged(f"row {i + 1}, column {name}: {v!r} is not {kind}") from None
        raise


def _axis_values(cfg: SweepConfig, table: dict, cell: np.ndarray) -> dict:
    """Check the axis columns' text against the config's grid; return them typed as written."""
    from jaxlab.results import _axis_columns, _fmt  # the writer's own formatting

    out = {}
    uniq, inv = np.unique(cell, return_inverse=True)
    for name, vals in _axis_columns(cfg, uniq).items():
        _same_text(table, name, np.array([_fmt(v) for v in vals], dtype=str)[inv],
                   lambda i: "the config's grid says")  # fmt: skip
        out[name] = vals[inv]
    return out


def _same_text(table: dict, name: str, text: np.ndarray, says) -> None:
    """Raise Damaged at the first row whose column ``name`` is not ``text`` (what the writer
    would write); ``says(i)`` names who says so."""
    bad = np.flatnonzero(np.array(table[name], dtype=str) != text)
    if bad.size:
        i = int(bad[0])
        raise Damaged(f"row {i + 1}, column {name}: {table[name][i]!r}, {says(i)} {str(text[i])!r}")


def _ensure(ok, why: str) -> None:
    if not np.all(ok):
        raise Damaged(why)


def _each(ok, what: str, label: str = "row", base: int = 1) -> None:
    """Raise ``"{label} i: {what}"`` for the first False of ``ok`` (counted from ``base``)."""
    ok = np.asarray(ok)
    if not ok.all():
        raise Damaged(f"{label} {int(np.flatnonzero(~ok)[0]) + base}: {what}")


def _check_cells(data: bytes, seen: dict) -> dict:
    cfg = seen["config.toml"]
    names = output_names(cfg)[0]
    metric_cols = [f"{k}_{m}" for m in names for k in ("mean", "min", "max")]
    if cfg.keep_runs:  # exact quantiles from the per-run records
        metric_cols += [f"{k}_{m}" for m in names for k in ("p10", "median", "p90")]
    columns = CELL_COLUMNS + metric_cols
    if cfg.ci_width is not None:  # adaptive: the confidence sequence beside Wilson
        columns = columns[:5] + ["cs_low", "cs_high"] + columns[5:]
    lead = ["point"] if cfg.points is not None else []
    if cfg.refine:  # refined: one row per cell evaluated, its node, bounds and level
        from jaxlab.refine import lead_names

        n_rows = ((seen.get("meta.json") or {}).get("refine") or {}).get("cells")
        if not isinstance(n_rows, int):
            n_rows = max(_utf8(data).count("\n") - 1, 0)
        table = _rows(data, lead_names(cfg) + columns, n_rows)
        out = _refined_cells(cfg, table)
    else:
        table = _rows(data, lead + [a.name for a in cfg.axes] + columns, cfg.n_cells)
        out = _axis_values(cfg, table, np.arange(cfg.n_cells))
    if lead:
        out = {"point": _numbers(table, "point", np.int64), **out}
        _each(out["point"] == np.arange(cfg.n_cells), "point is not the row's index")
    for name in columns:
        out[name] = _numbers(table, name, np.int64 if name in CELL_COUNTS else np.float64)
    n, k = out["n_runs"], out["n_success"]
    for name in CELL_COUNTS:
        _each(out[name] >= 0, f"{name} is negative")
    if cfg.ci_width is None:
        _each(n == cfg.n_runs, f"n_runs is not the config's {cfg.n_runs}")
    else:
        _each((n >= cfg.n_runs) & (n <= cfg.cap), f"n_runs is not in [{cfg.n_runs}, {cfg.cap}]")
    _each(k <= n, "n_success > n_runs")
    statuses = sum(out[f"n_{s.name.lower()}"] for s in Status)
    _each(statuses == n, "the status counts do not add up to n_runs")
    for name, want in zip(("success_rate", "ci_low", "ci_high"), A.rate_ci(k, n)):
        # atol 1e-15: versions before exact 0 and 1 wrote 2.2e-19 and 1 - 2.2e-16 there
        ok = np.isclose(out[name], want, rtol=1e-12, atol=1e-15, equal_nan=True)
        _each(ok, f"{name} does not match n_success / n_runs")
    if cfg.ci_width is not None:
        from jaxlab.confseq import confseq

        for name, want in zip(("cs_low", "cs_high"), confseq(k, n)):
            ok = np.isclose(out[name], want, rtol=1e-12, atol=1e-15, equal_nan=True)
            _each(ok, f"{name} does not match n_success / n_runs")
        width = out["cs_high"] - out["cs_low"]
        _each((width <= cfg.ci_width) | (n == cfg.cap), "the interval is wider than ci_width")
    max_steps = max(cfg.setting("max_steps").values)
    for kind, hi in (("steps", max_steps), ("final_loss", np.inf)):
        p10, med, p90 = (out[f"{q}_{kind}"] for q in ("p10", "median", "p90"))
        empty = np.isnan(p10) & np.isnan(med) & np.isnan(p90)  # final losses: all diverged
        ok = empty | ((0 <= p10) & (p10 <= med) & (med <= p90) & (p90 <= hi))
        _each(ok, f"the {kind} quantiles are out of order or range")
    return out


def _refined_cells(cfg: SweepConfig, table: dict) -> dict:
    """A refined sweep's leading columns, checked: the nodes in order (the base grid first),
    each split cell's four children there, and the centres, bounds, levels and leaf flags
    that the nodes give, as the writer formats them."""
    from jaxlab.refine import cell_columns, children, decode, encode, geometry
    from jaxlab.results import _fmt

    geo = geometry(cfg)
    nodes = _numbers(table, "node", np.int64)
    _each(nodes[: cfg.n_cells] == np.arange(cfg.n_cells), "node: the base grid comes first")
    _each(np.diff(nodes) > 0, "node is not after the row before it", base=2)
    _each(nodes < geo.n_nodes, f"node is outside the tree (at most {geo.n_nodes - 1})")
    want = cell_columns(cfg, nodes)
    for name, vals in want.items():
        text = np.array([_fmt(v) for v in vals], dtype=str)
        _same_text(table, name, text, lambda i: f"its node {nodes[i]} gives")
    split = np.flatnonzero(want["leaf"] == 0)
    kids = children(geo, nodes[split])
    _ensure(np.isin(kids, nodes), "a split cell's four children are not all there")
    level, ix, iy = decode(geo, nodes)
    deep = level > 0
    parents = encode(geo, level[deep] - 1, ix[deep] // 2, iy[deep] // 2)
    _ensure(np.isin(parents, nodes), "a cell's parent is not there")
    return want


def runs_columns(cfg: SweepConfig) -> list[str]:
    cols = ["run", "cell", *(a.name for a in cfg.axes)]
    cols += ["final_loss", "steps", "status", "success", "status_name"]
    metrics, records = output_names(cfg)
    return cols + list(metrics) + list(records)


def output_names(cfg: SweepConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names of the problem's per-run metrics and records (from their shapes, nothing
    run)."""
    p = cfg.problem_obj
    if p.metrics is None and p.record is None and p.train is None:
        return (), ()
    from jaxlab.engine import output_names as names

    return names(cfg)


def _check_runs(data: bytes, seen: dict) -> dict:
    cfg, cells = seen["config.toml"], seen["cells.csv"]
    table = _rows(data, runs_columns(cfg), cfg.total_runs)
    out = {"run": _numbers(table, "run", np.int64), "cell": _numbers(table, "cell", np.int64)}
    _each(out["run"] == np.arange(cfg.total_runs), "run is not the row's index")
    _each(out["cell"] == out["run"] // cfg.n_runs, "cell is not run // n_runs")
    out.update(_axis_values(cfg, table, out["cell"]))
    out["final_loss"] = _numbers(table, "final_loss", np.float64)
    for name in ("steps", "status", "success"):
        out[name] = _numbers(table, name, np.int64)
    out["status_name"] = np.array(table["status_name"], dtype=str)
    for name in sum(output_names(cfg), ()):
        out[name] = _numbers(table, name, np.float64)
    status, names = out["status"], np.array([s.name.lower() for s in Status])
    _each((status >= 0) & (status < len(Status)), f"status is not in 0-{len(Status) - 1}")
    _each(out["status_name"] == names[status], "status_name does not match status")
    _each((out["success"] == 0) | (out["success"] == 1), "success is not 0 or 1")
    max_steps = max(cfg.setting("max_steps").values)
    _each((out["steps"] >= 0) & (out["steps"] <= max_steps), f"steps not in [0, {max_steps}]")
    if cells is not None:  # the per-run records add up to the per-cell counts
        counts = {"n_success": np.bincount(out["cell"], out["success"], cfg.n_cells)}
        for s in Status:
            counts[f"n_{s.name.lower()}"] = np.bincount(out["cell"], status == s, cfg.n_cells)
        for name, count in counts.items():
            _each(count == cells[name], f"its {name} differs from cells.csv's", "cell", 0)
    return out


def _check_boundaries(data: bytes, seen: dict):
    from jaxlab.problems.boundaries import Boundaries

    z = _npz(data)
    missing = [f for f in Boundaries._fields if f not in z]
    if missing:
        raise Damaged(f"lacks {', '.join(missing)}")
    cfg = seen["config.toml"]
    if str(z["config_hash"]) != config_hash(cfg):
        raise Damaged("belongs to another sweep (its config hash differs from config.toml's)")
    return None  # read by jaxlab.problems.boundaries.load when the figure is drawn


_DROP = "delete it: `jaxlab plot {d}` then draws the other figures and says how to recompute it"

FILES: tuple[RunFile, ...] = (
    RunFile("meta.json", _check_meta, _REWRITE,
            required=lambda seen: False, checksum=False),
    RunFile("config.toml", _check_config, _RESTORE),
    RunFile("cells.csv", _check_cells, _REBUILD),
    RunFile("boundaries.npz", _check_boundaries, _DROP, required=lambda seen: False),
)  # fmt: skip


def _error(d: Path, name: str, why: str, todo: str) -> ConfigError:
    return ConfigError(str(d / name), f"{why}; {todo.format(d=d)}")


def read_finished(d: Path, files: tuple[RunFile, ...] = FILES) -> dict[str, object]:
    """Check and read each of ``files`` in ``d``: ``{name: value}`` (None for an absent optional
    file). Raise a one-line :class:`ConfigError` naming the first damaged file."""
    seen: dict[str, object] = {}
    for f in files:
        path = d / f.name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            if f.required(seen):
                raise _error(d, f.name, "missing", f.todo) from None
            seen[f.name] = None
            continue
        except OSError as e:
            raise _error(d, f.name, f"cannot be read ({e.strerror})", f.todo) from None
        try:
            seen[f.name] = f.check(data, seen)
            want = (seen.get("meta.json") or {}).get("checksums", {}).get(f.name)
            if f.checksum and want is not None and _sha256(data) != want:
                raise Damaged("does not match its sha256 in meta.json (changed or damaged)")
        except Damaged as e:
            raise _error(d, f.name, str(e), f.todo) from None
    return seen


def finished(d) -> bool:
    """Whether ``d`` holds a finished sweep (``meta.json`` is written last)."""
    return (Path(d) / "meta.json").exists()


def meta_text(d: Path, meta: dict) -> str:
    """``meta.json``'s text: ``meta`` with the sha256 of each checksummed file of :data:`FILES`
    now in ``d`` and of its own content."""
    meta = json.loads(json.dumps(meta, default=str))  # exactly what a reader will get back
    meta["checksums"] = {
        f.name: _sha256((d / f.name).read_bytes())
        for f in FILES
        if f.checksum and (d / f.name).is_file()
    }
    for p in sorted((d / "runs").glob("part-*.parquet")):  # the per-run records, part by part
        meta["checksums"][f"runs/{p.name}"] = _sha256(p.read_bytes())
    meta["meta_sha256"] = _meta_digest(meta)
    return json.dumps(meta, indent=2)


def read_config(path: Path) -> SweepConfig:
    """``config.toml``'s config; :class:`Damaged` if it is not one."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise Damaged(f"cannot be read ({e.strerror})") from None
    return _check_config(data, {})


# --- the checkpoint (resume) -----------------------------------------------------------------
def _npz(data: bytes) -> dict[str, np.ndarray]:
    if not data:
        raise Damaged("empty")
    if not data.startswith(b"PK\x03\x04"):
        raise Damaged("not an .npz archive (junk where its zip header should be)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001  zipfile, numpy and zlib each raise their own kinds
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:100]
        raise Damaged(f"truncated or damaged .npz archive ({why})") from None


def _need(arrays: dict, names) -> None:
    missing = [k for k in names if k not in arrays]
    if missing:
        raise Damaged(f"damaged .npz archive (no {', '.join(missing)})")


def runs_per_cell(tasks, n_cells: int, n_runs: int) -> np.ndarray:
    """How many restarts of each cell the chunks ``tasks`` hold (disjoint ranges of run index;
    ``n_runs``: the cells' stride)."""
    if not tasks:
        return np.zeros(n_cells, np.int64)
    if any(t.runs is not None for t in tasks):  # adaptive rounds: explicit run lists
        from jaxlab.engine import task_runs

        g = np.concatenate([task_runs(t) for t in tasks])
        return np.bincount(g // n_runs, minlength=n_cells).astype(np.int64)
    spans = sorted((t.start, t.stop) for t in tasks)
    starts = np.array([a for a, _ in spans], np.int64)
    lens = np.array([b - a for a, b in spans], np.int64)
    before = np.concatenate([[0], np.cumsum(lens)])
    edges = np.arange(n_cells + 1, dtype=np.int64) * n_runs
    i = np.searchsorted(starts, edges, side="right") - 1
    j = np.maximum(i, 0)
    below = np.where(i >= 0, before[j] + np.clip(edges - starts[j], 0, lens[j]), 0)
    return np.diff(below)


ROUND_ARRAYS = ("round", "task_base", "round_start", "round_target")


def _checkpoint_todo(path: Path) -> str:
    """What to do about a damaged checkpoint ``path``."""
    return (
        f"the checkpoint cannot be used: restore it, or delete {path.name} and "
        f"{path.with_suffix('.log').name} and `jaxlab sweep --resume {path.parent}` recomputes "
        "the sweep"
    )


def read_round(path: Path, cfg) -> dict:
    """An adaptive sweep's round from its checkpoint ``path``: ``round`` (from 1),
    ``task_base`` (chunks of the earlier rounds), and each cell's restarts at its start
    (``round_start``) and end (``round_target``), checked for shape and order."""
    d = path.parent
    todo = _checkpoint_todo(path)
    try:
        st = _npz(path.read_bytes())
        if cfg.refine:  # a refined sweep's round: its cells' nodes too (jaxlab.refine)
            from jaxlab.refine import read_round as refined_round

            try:
                return refined_round(st, cfg)
            except ValueError as e:
                raise Damaged(str(e)) from None
        _need(st, ROUND_ARRAYS)
        out = {k: st[k] for k in ROUND_ARRAYS}
        for k in ("round", "task_base"):
            if out[k].shape != () or out[k].dtype.kind not in "iu" or int(out[k]) < 0:
                raise Damaged(f"{k} is not a count")
            out[k] = int(out[k])
        for k in ("round_start", "round_target"):
            if out[k].shape != (cfg.n_cells,) or out[k].dtype != np.int64:
                raise Damaged(f"{k} is not one count per cell")
        a, b = out["round_start"], out["round_target"]
        _each(
            (a >= 0) & (a <= b) & (b <= cfg.cap),
            "round_start, round_target out of order",
            "cell",
            0,
        )
    except Damaged as e:
        raise _error(d, path.name, str(e), todo) from None
    return out


def read_state(path: Path, *, version: int, chash: str, plan, mine, template, start=None) -> tuple:
    """``(done, Aggregates)`` of the checkpoint ``path``, checked against ``plan``: ``mine`` are
    this process's chunks, ``template`` the zero Aggregates of the config; ``start``: each
    cell's restarts before ``mine`` (an adaptive sweep's round), default none."""
    d = path.parent
    todo = _checkpoint_todo(path)
    try:
        st = _npz(path.read_bytes())
        _need(st, ("version", "config_hash", "chunk_size"))
        same = (
            st["version"].shape == () and int(st["version"]) == version
            and str(st["config_hash"]) == chash
            and st["chunk_size"].shape == () and int(st["chunk_size"]) == plan.chunk_size
        )  # fmt: skip
        if not same:
            raise ConfigError(
                "resume",
                f"{path} belongs to another sweep or engine version (config hash "
                f"{str(st['config_hash'])[:16]!r}, config.toml's {chash!r}); if config.toml was "
                "changed or damaged restore it, else start a new sweep with another --out",
            )
        _need(st, ("done", *A.Aggregates._fields))
        done = st["done"]
        if done.shape != () or done.dtype.kind not in "iu" or not 0 <= int(done) <= len(mine):
            raise Damaged(f"done is not a chunk count in [0, {len(mine)}]")
        done = int(done)
        agg = A.Aggregates(*(st[f] for f in A.Aggregates._fields))
        for name, a, z in zip(A.Aggregates._fields, agg, template):
            if a.shape != z.shape or a.dtype != z.dtype:
                raise Damaged(
                    f"{name} is {a.dtype}{list(a.shape)}, expected {z.dtype}{list(z.shape)}"
                )
            if not name.startswith("metric_") and (a < 0).any():
                raise Damaged(f"{name} has negative counts")
        n, div = agg.n_runs, agg.status[:, Status.DIVERGED]
        done_runs = runs_per_cell(mine[:done], len(n), plan.config.stride)
        if start is not None:
            done_runs = done_runs + start
        _each(n == done_runs, f"n_runs does not match the {done} chunks done", "cell", 0)
        _each(agg.n_success <= n, "n_success > n_runs", "cell", 0)
        _each(agg.status.sum(1) == n, "the status counts do not add up to n_runs", "cell", 0)
        _each(agg.steps_hist.sum(1) == n, "the steps histogram does not add up", "cell", 0)
        _each(agg.loss_hist.sum(1) == n - div, "the loss histogram does not add up", "cell", 0)
    except Damaged as e:
        raise _error(d, path.name, str(e), todo) from None
    return done, agg


def damaged_chunks(run_dir: Path, tasks, cfg: SweepConfig) -> list[tuple[object, str]]:
    """``(task, why)`` for each of the finished chunks ``tasks`` whose per-run records part in
    ``run_dir`` (``runs/part-NNNNNNN.parquet``) is missing or damaged."""
    from jaxlab.records import part_name

    out = []
    for t in tasks:
        name = part_name(t.index)
        try:
            data = _part_bytes(run_dir / name)
            table = check_part(data, cfg, t, None)
            # No sha256 is recorded before the sweep finishes: the part must be what its own
            # table encodes to (a flip in a page header or the footer's metadata passes the
            # page CRCs).
            from jaxlab.records import encode

            if encode(cfg, table) != data:
                raise Damaged("its bytes are not what its records encode to (changed or damaged)")
        except Damaged as e:
            out.append((t, f"{name}: {e}"))
    return out


# --- the per-run records (Parquet parts) ----------------------------------------------------
PART_TODO = (
    "delete it and meta.json, then `jaxlab sweep --resume {d}` recomputes that chunk's restarts "
    "(only those)"
)


@functools.lru_cache(maxsize=16)
def part_schema(cfg: SweepConfig):
    """The ``pyarrow.Schema`` every part of ``cfg``'s records has."""
    from jaxlab.records import chunk_columns, to_arrow

    metrics, records = output_names(cfg)
    empty = {k: np.zeros(0) for k in ("run", "final_loss", "steps", "status", "success")}
    empty.update({k: np.zeros(0) for k in (*metrics, *records)})
    return to_arrow(chunk_columns(cfg, empty)).schema


def check_part(data: bytes, cfg: SweepConfig, task, columns, want_sha: str | None = None):
    """The columns ``columns`` (None: all) of one part's bytes as a ``pyarrow.Table``, after
    checking them: the sha256 recorded in meta.json (when given), a whole Parquet file (its
    footer, the CRC-32 of every page read), this config's schema, the chunk's row count, and the
    values of the columns read (run indices, cells, statuses and their names, steps); raises
    :class:`Damaged`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not data:
        raise Damaged("empty")
    if len(data) < 12 or not data.startswith(b"PAR1") or not data.endswith(b"PAR1"):
        raise Damaged("truncated or not a Parquet file (no PAR1 magic at both ends)")
    if want_sha is not None and _sha256(data) != want_sha:
        raise Damaged("does not match its sha256 in meta.json (changed or damaged)")
    want = part_schema(cfg)
    try:
        f = pq.ParquetFile(pa.BufferReader(data), page_checksum_verification=True)
        schema = f.schema_arrow
        if schema.names != want.names or schema.types != want.types:
            got = ", ".join(f"{n}: {t}" for n, t in zip(schema.names, schema.types))
            raise Damaged(f"not this sweep's columns (it has {got})")
        table = f.read(columns=list(want.names if columns is None else columns))
    except Damaged:
        raise
    except Exception as e:  # noqa: BLE001  pyarrow raises its own kinds (ArrowInvalid, OSError)
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:100]
        raise Damaged(f"damaged Parquet file ({why})") from None
    n = task.stop - task.start
    if table.num_rows != n:
        raise Damaged(f"{table.num_rows} rows, expected {n} (the chunk's restarts)")
    cols = {name: table.column(name) for name in table.column_names}
    if "run" in cols:
        _ensure(
            cols["run"].to_numpy() == np.arange(task.start, task.stop),
            "run indices not the chunk's",
        )
    if "cell" in cols:
        cell = np.arange(task.start, task.stop) // cfg.n_runs
        _ensure(cols["cell"].to_numpy() == cell, "cell is not run // n_runs")
    if "status" in cols:
        st = cols["status"].to_numpy()
        _ensure((st >= 0) & (st < len(Status)), f"status is not in 0-{len(Status) - 1}")
    if "status_name" in cols:
        for c in cols["status_name"].chunks:
            names = [s.name.lower() for s in Status]
            _ensure(c.dictionary.to_pylist() == names, "status_name's categories are not jaxlab's")
            if "status" in cols:
                _ensure(
                    c.indices.to_numpy() == cols["status"].to_numpy(),
                    "status_name does not match status",
                )
    if "steps" in cols:
        steps = cols["steps"].to_numpy()
        hi = max(cfg.setting("max_steps").values)
        _ensure((steps >= 0) & (steps <= hi), f"steps not in [0, {hi}]")
    return table


def _part_bytes(path: Path) -> bytes:
    """A Parquet part's bytes; :class:`Damaged` if it is missing or cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise Damaged("missing") from None
    except OSError as e:
        raise Damaged(f"cannot be read ({e.strerror})") from None


def read_part(d: Path, cfg: SweepConfig, task, columns, meta: dict):
    """:func:`check_part` of the part of chunk ``task`` in run directory ``d``; a damaged one
    is a one-line :class:`ConfigError` naming it and what to do."""
    from jaxlab.records import part_name

    name = part_name(task.index)
    try:
        data = _part_bytes(d / name)
        return check_part(data, cfg, task, columns, (meta.get("checksums") or {}).get(name))
    except Damaged as e:
        raise _error(d, name, str(e), PART_TODO) from None


def glance_parts(d: Path, cfg: SweepConfig) -> None:
    """What :func:`~jaxlab.results.load_run` checks of the records without reading them: every
    part is there and ends in Parquet's footer magic (the rest when a column is read)."""
    from jaxlab.engine import make_plan
    from jaxlab.records import part_name

    for t in make_plan(cfg).tasks:
        name = part_name(t.index)
        try:
            with open(d / name, "rb") as f:
                size = f.seek(0, 2)
                f.seek(max(size - 4, 0))
                tail = f.read(4)
        except FileNotFoundError:
            raise _error(d, name, "missing", PART_TODO) from None
        except OSError as e:
            raise _error(d, name, f"cannot be read ({e.strerror})", PART_TODO) from None
        if size == 0:
            raise _error(d, name, "empty", PART_TODO)
        if size < 12 or tail != b"PAR1":
            raise _error(d, name, "truncated or not a Parquet file (no PAR1 footer)", PART_TODO)


def check_run_counts(cfg: SweepConfig, cells: dict, cols: dict) -> None:
    """The per-run records add up to cells.csv's counts (:class:`Damaged` if not)."""
    cell = np.asarray(cols["cell"], np.int64)
    status = np.asarray(cols["status"])
    counts = {"n_success": np.bincount(cell, np.asarray(cols["success"]), cfg.n_cells)}
    for s in Status:
        counts[f"n_{s.name.lower()}"] = np.bincount(cell, status == s, cfg.n_cells)
    for name, count in counts.items():
        _each(count == cells[name], f"its {name} differs from cells.csv's", "cell", 0)


def read_legacy_runs(d: Path, cfg: SweepConfig, cells: dict | None, meta: dict) -> dict:
    """``runs.csv`` of a run directory written before Parquet, checked (:func:`_check_runs`,
    and its sha256 in meta.json), in the dtypes the Parquet records have."""
    path = d / "runs.csv"
    try:
        data = path.read_bytes()
        out = _check_runs(data, {"config.toml": cfg, "cells.csv": cells})
        want = (meta.get("checksums") or {}).get("runs.csv")
        if want is not None and _sha256(data) != want:
            raise Damaged("does not match its sha256 in meta.json (changed or damaged)")
    except OSError as e:
        raise _error(d, "runs.csv", f"cannot be read ({e.strerror})", _RESTORE) from None
    except Damaged as e:
        raise _error(d, "runs.csv", str(e), _RESTORE) from None
    out["cell"] = out["cell"].astype(np.int32)
    for name in ("steps", "status"):
        out[name] = out[name].astype(np.int32)
    out["success"] = out["success"].astype(bool)
    return out
