"""Per-run records (``keep_runs``) as a Parquet dataset: one file per chunk, written the moment
the chunk finishes, read back lazily, column by column.

A sweep with ``keep_runs`` writes ``runs/part-NNNNNNN.parquet`` for chunk ``NNNNNNN`` (atomically,
as every file of a run directory: :func:`jaxlab.rundir.atomic_write`), so the records are on disk
as the sweep goes, a killed sweep keeps every finished chunk's file, and no table of every
restart is ever assembled in memory. Together the parts are one dataset in global run order.
Columns (:func:`chunk_columns`): ``run`` int64, ``cell`` int32, a column per axis (float64 for
traced settings, int64 for integer ones, dictionary-encoded strings for the rest), ``final_loss``
float64, ``steps`` int32, ``status`` int32, ``success`` bool, ``status_name`` (dictionary-encoded:
a pandas categorical), then the problem's metrics and records (float64).

:class:`RunRecords` is the per-run table of a run directory (``load_run(d).runs``): a mapping
whose columns are read the first time they are used (a column alone reads only that column of
each part), each part checked first (:func:`jaxlab.validate.read_part`). ``runs.csv``, the
format before Parquet, is still read (old run directories) and written on demand
(:func:`export_csv`, ``jaxlab export RUN_DIR --runs-csv``).

Parquet is pyarrow's (``pip install 'jaxlab[parquet]'``), imported only here and only when
records are written or read: a sweep without ``keep_runs``, an in-memory sweep and an old run
directory never need it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from jaxlab.descent import Status
from jaxlab.errors import ConfigError

__all__ = ["RunRecords", "chunk_columns", "export_csv", "part_name", "require", "write_part"]

PARTS = "runs"  # the folder of the dataset inside a run directory
STATUS_NAMES = np.array([s.name.lower() for s in Status])
_BASE = ("run", "final_loss", "steps", "status", "success")


def require(param: str = "keep_runs"):
    """``pyarrow.parquet``, or a one-line ConfigError saying how to install it."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(
            param,
            "per-run records are stored as Parquet, which needs pyarrow: "
            "pip install 'jaxlab[parquet]' (or run without keep_runs)",
        ) from None
    return pq


def part_name(index: int) -> str:
    """The file of chunk ``index``'s records, relative to the run directory."""
    return f"{PARTS}/part-{index:07d}.parquet"


def chunk_columns(cfg, records: dict) -> dict[str, np.ndarray]:
    """The per-run table of one chunk: the engine's ``records`` (``run``, ``final_loss``,
    ``steps``, ``status``, ``success``, then metrics and records) with the cell, the axis values
    and the status's name added, each column in its stored dtype."""
    from jaxlab.results import _axis_columns

    run = np.asarray(records["run"], np.int64)
    cell = (run // cfg.stride).astype(np.int32)
    status = np.asarray(records["status"], np.int32)
    cols = {"run": run, "cell": cell, **_axis_columns(cfg, cell)}
    cols["final_loss"] = np.asarray(records["final_loss"], np.float64)
    cols["steps"] = np.asarray(records["steps"], np.int32)
    cols["status"] = status
    cols["success"] = np.asarray(records["success"]).astype(bool)
    cols["status_name"] = STATUS_NAMES[status]
    for k, v in records.items():  # the problem's metrics, then its per-run records
        if k not in _BASE:
            cols[k] = np.asarray(v, np.float64)
    return cols


def concat(chunks: list[dict]) -> dict[str, np.ndarray] | None:
    """The tables of chunks (:func:`chunk_columns`) as one, in run order."""
    if not chunks:
        return None
    table = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    order = np.argsort(table["run"], kind="stable")
    if np.any(order != np.arange(len(order))):
        table = {k: v[order] for k, v in table.items()}
    return table


def to_arrow(cols: dict[str, np.ndarray]):
    """A chunk's table as a ``pyarrow.Table``: strings dictionary-encoded."""
    import pyarrow as pa

    arrays = {}
    for name, col in cols.items():
        if name == "status_name":
            arrays[name] = pa.DictionaryArray.from_arrays(
                pa.array(cols["status"].astype(np.int8)), pa.array(STATUS_NAMES.tolist())
            )
        elif col.dtype.kind == "U":
            uniq, inv = np.unique(col, return_inverse=True)
            arrays[name] = pa.DictionaryArray.from_arrays(
                pa.array(inv.astype(np.int32)), pa.array(uniq.tolist(), pa.string())
            )
        else:
            arrays[name] = pa.array(col)
    return pa.table(arrays)


_FEW = {"cell", "steps", "status", "success", "status_name"}


def encode(cfg, table) -> bytes:
    """A chunk's table as the bytes of its Parquet part (deterministic: the same table gives
    the same bytes, which is how a part of an unfinished sweep, with no sha256 recorded yet, is
    checked whole); pages carry CRC-32 checksums, verified when read back."""
    import pyarrow as pa

    pq = require()
    axes = {a.name for a in cfg.axes}
    few = [
        f.name
        for f in table.schema
        if f.name in _FEW or f.name in axes or pa.types.is_dictionary(f.type)
    ]
    dense = {
        f.name: "BYTE_STREAM_SPLIT"
        for f in table.schema
        if f.name not in few and pa.types.is_floating(f.type)
    }
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        # Measured on a 64k-run chunk of the lab's sweep (2-core Zen 5, experiments/
        # PERFORMANCE.md): LZ4 with delta-coded run indices and byte-split floats writes as fast
        # as no compression, at a third of the size; zstd is smaller still but slower.
        compression="lz4",
        use_dictionary=few,
        column_encoding={"run": "DELTA_BINARY_PACKED", **dense},
        write_statistics=["run", "cell"],  # lets a filter on cells skip other parts
        write_page_checksum=True,
    )
    return sink.getvalue().to_pybytes()


def write_part(run_dir: Path, cfg, index: int, records: dict) -> None:
    """Write chunk ``index``'s records (the engine's per-run arrays) to its part, atomically."""
    from jaxlab import rundir

    table = to_arrow(chunk_columns(cfg, records))
    rundir.atomic_write(Path(run_dir) / part_name(index), encode(cfg, table))


def _to_numpy(chunked) -> np.ndarray:
    """A ``pyarrow.ChunkedArray`` as numpy (dictionary-encoded strings as a ``str`` array)."""
    import pyarrow as pa

    if pa.types.is_dictionary(chunked.type):
        parts = [
            np.array(c.dictionary.to_pylist(), dtype=str)[c.indices.to_numpy(zero_copy_only=False)]
            for c in chunked.chunks
        ]
        return np.concatenate(parts) if parts else np.array([], dtype=str)
    return chunked.to_numpy()


class RunRecords(Mapping):
    """The per-run table of a finished run directory: ``records["final_loss"]`` (a numpy array in
    run order) reads that column of every part the first time, checked, and keeps it.

    :meth:`table` gives chosen columns as a ``pyarrow.Table``, :meth:`dataset` the parts as a
    ``pyarrow.dataset.Dataset`` (filters, batches, out-of-core), :meth:`to_pandas` a DataFrame.
    A directory of a jaxlab before Parquet has ``runs.csv`` instead: it is read whole, once.
    Iterating and ``len`` give the column names and read nothing.
    """

    def __init__(self, run_dir, cfg, cells: dict | None = None, meta: dict | None = None):
        from jaxlab import validate

        self.run_dir, self.config, self._cells = Path(run_dir), cfg, cells
        self._meta = meta or {}
        self._names = validate.runs_columns(cfg)
        self._cache: dict[str, np.ndarray] = {}
        self._legacy = (
            not (self.run_dir / part_name(0)).exists() and (self.run_dir / "runs.csv").is_file()
        )

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._cache:
            self._cache.update(self._read([name]))
        return self._cache[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        where = "runs.csv" if self._legacy else f"{PARTS}/part-*.parquet"
        return f"RunRecords({self.config.total_runs:,} runs in {self.run_dir / where})"

    def columns(self, names=None) -> dict[str, np.ndarray]:
        """Several columns at once (one pass over the parts): ``{name: numpy array}``."""
        names = list(self._names if names is None else names)
        self._known(names)
        todo = [n for n in names if n not in self._cache]
        if todo:
            self._cache.update(self._read(todo))
        return {n: self._cache[n] for n in names}

    def table(self, columns=None):
        """``columns`` (default: all) as a ``pyarrow.Table`` in run order, read from the parts
        (only those columns), each part checked."""
        require("runs")
        names = list(self._names if columns is None else columns)
        self._known(names)
        if self._legacy:
            import pyarrow as pa

            full = to_arrow(self._legacy_table())
            return pa.table({n: full[n] for n in names})
        return self._concat(self._parts(names))

    def dataset(self):
        """The parts as a ``pyarrow.dataset.Dataset`` (each part's sha256 checked first), e.g.
        ``records.dataset().to_table(filter=pyarrow.compute.field("cell") == 3)``."""
        require("runs")
        import pyarrow.dataset as ds

        if self._legacy:
            return ds.dataset(self.table())
        self.verify()
        paths = [str(self.run_dir / part_name(t.index)) for t in self._tasks()]
        return ds.dataset(paths, format="parquet")

    def to_pandas(self, columns=None):
        """``columns`` (default: all) as a pandas DataFrame (strings as categoricals)."""
        return self.table(columns).to_pandas()

    def verify(self) -> None:
        """Check every part (its sha256 in meta.json, its schema and row count) without keeping
        anything; a damaged part raises the one-line ConfigError that names it."""
        if self._legacy:
            self._legacy_table()
            return
        for _ in self._parts([]):
            pass

    # --- reading -------------------------------------------------------------------------
    def _known(self, names) -> None:
        bad = [n for n in names if n not in self._names]
        if bad:
            raise ConfigError(
                "columns", f"no per-run column {bad[0]!r}; columns: {', '.join(self._names)}"
            )

    def _tasks(self):
        from jaxlab.engine import make_plan

        return make_plan(self.config).tasks

    def _parts(self, names):
        from jaxlab import validate

        require("runs")
        for t in self._tasks():
            yield validate.read_part(self.run_dir, self.config, t, names, self._meta)

    @staticmethod
    def _concat(tables):
        import pyarrow as pa

        tables = list(tables)
        return pa.concat_tables(tables) if tables else None

    def _read(self, names) -> dict[str, np.ndarray]:
        if self._legacy:
            full = self._legacy_table()
            return {n: full[n] for n in names}
        table = self._concat(self._parts(names))
        out = {n: _to_numpy(table.column(n)) for n in names}
        if {"cell", "success", "status"} <= {*names, *self._cache} and self._cells is not None:
            self._check_counts({**self._cache, **out})
        return out

    def _check_counts(self, cols) -> None:
        from jaxlab import validate

        try:
            validate.check_run_counts(self.config, self._cells, cols)
        except validate.Damaged as e:
            raise ConfigError(
                str(self.run_dir / PARTS), f"{e}; {validate.RESTORE.format(d=self.run_dir)}"
            ) from None

    def _legacy_table(self) -> dict[str, np.ndarray]:
        if "run" not in self._cache:
            from jaxlab import validate

            table = validate.read_legacy_runs(self.run_dir, self.config, self._cells, self._meta)
            self._cache.update(table)
        return self._cache


def export_csv(result, path) -> Path:
    """Write ``result``'s per-run table to ``path`` as ``runs.csv`` was written before Parquet
    (same columns, same number formatting), streamed part by part: memory stays one part's."""
    from jaxlab.results import _fmt

    runs = result.runs
    if not runs:
        raise ConfigError(
            "runs_csv",
            f"{result.run_dir} has no per-run records (its sweep ran without keep_runs)",
        )
    path = Path(path)
    if isinstance(runs, RunRecords) and not runs._legacy:
        pieces = ({n: _to_numpy(t.column(n)) for n in runs} for t in runs._parts(list(runs)))
    else:
        pieces = iter([dict(runs)])
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            names = list(runs)
            f.write(",".join(names) + "\n")
            for cols in pieces:
                for row in zip(*(cols[n] for n in names)):
                    f.write(",".join(map(_fmt, row)) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
