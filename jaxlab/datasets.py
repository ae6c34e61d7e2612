"""Binary-classification datasets: the registered ones by name, or a user's CSV or NPZ file.

A CSV file holds one example per line, feature columns then a 0/1 label, comma-separated. An
optional header is the first row whose cells are not all numbers; blank lines and everything from
``#`` to the end of a line are ignored. An NPZ file holds arrays ``x`` (n, d) and ``y`` (n,) (or
``X`` and ``Y``). Every problem with a file is a one-line :class:`ConfigError` for ``dataset``
naming the file (and for a CSV the line and column); values come back as float64 arrays.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from pathlib import Path

import numpy as np

from jaxlab.errors import ConfigError, did_you_mean
from jaxlab.network import LAB_DATA, Dataset

__all__ = ["DATASETS", "dataset_digest", "get_dataset", "is_path", "load_dataset"]

DATASETS: dict[str, Dataset] = {
    # Lab 3, Exercise 3: the centre is class 1, its four neighbours class 0.
    "lab": LAB_DATA,
    # XOR on the corners of the square: the classic problem a 2-2-1 network can just solve.
    "xor": Dataset(
        x=np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]),
        y=np.array([0.0, 1.0, 1.0, 0.0]),
    ),
}

SUFFIXES = (".csv", ".npz")

# resolved path -> ((mtime_ns, size, inode), dataset, digest): one entry per file, so a sweep that
# asks for the same file at every compile reads it once, and a rewritten file is read again.
_CACHE: dict[str, tuple[tuple[int, int, int], Dataset, str]] = {}


def is_path(value) -> bool:
    """Whether a ``dataset`` value names a file: it ends in ``.csv`` or ``.npz`` or holds a path
    separator (a registered name never does)."""
    if isinstance(value, os.PathLike):
        return True
    if not isinstance(value, str):
        return False
    seps = {"/", os.sep, os.altsep} - {None}
    return value.lower().endswith(SUFFIXES) or any(s in value for s in seps)


def _resolve(value, base: Path | None) -> Path:
    p = Path(value).expanduser()
    return p if base is None or p.is_absolute() else Path(base) / p


def _unknown(value) -> ConfigError:
    hint = did_you_mean(value, DATASETS) if isinstance(value, str) else ""
    names = ", ".join(DATASETS)
    return ConfigError(
        "dataset",
        f"unknown value {value!r}{hint}; allowed: {names}, or a path to a .csv or .npz file",
    )


def get_dataset(name_or_path, base: Path | None = None) -> Dataset:
    """The registered dataset called ``name_or_path``, or the one in that file (see
    :func:`load_dataset`); a relative path is taken from ``base`` (e.g. the config file's folder)
    when given, else from the current directory."""
    if isinstance(name_or_path, str) and name_or_path in DATASETS:
        return DATASETS[name_or_path]
    if is_path(name_or_path):
        return _cached(_resolve(name_or_path, base))[0]
    raise _unknown(name_or_path)


def dataset_digest(name_or_path, base: Path | None = None) -> str:
    """Hex sha256 of the dataset file's bytes, or of the name of a registered dataset: a config
    hash that includes it refuses to resume over a changed file. Raises as :func:`get_dataset`."""
    if isinstance(name_or_path, str) and name_or_path in DATASETS:
        return hashlib.sha256(name_or_path.encode()).hexdigest()
    if is_path(name_or_path):
        return _cached(_resolve(name_or_path, base))[1]
    raise _unknown(name_or_path)


def load_dataset(path) -> Dataset:
    """Read a :class:`Dataset` from a ``.csv`` or ``.npz`` file: ``x`` (n, d) and ``y`` (n,),
    float64, n >= 1, d >= 1, every value finite, every label 0 or 1. Raises a one-line
    :class:`ConfigError` naming the file (and the line and column of a CSV) otherwise."""
    return _cached(Path(path))[0]


def _cached(path: Path) -> tuple[Dataset, str]:
    def fail(message):
        return ConfigError("dataset", f"{path}: {message}")

    if path.suffix.lower() not in SUFFIXES:
        raise fail("expected a .csv or .npz file")
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        key = str(path.resolve())
        hit = _CACHE.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1], hit[2]
        raw = path.read_bytes()
    except OSError as e:
        raise fail(f"cannot read the file ({e.strerror or e})") from None
    parse = _parse_npz if path.suffix.lower() == ".npz" else _parse_csv
    x, y = parse(raw, fail)
    for a in (x, y):
        a.flags.writeable = False  # shared by every caller through the cache
    data, digest = Dataset(x=x, y=y), hashlib.sha256(raw).hexdigest()
    _CACHE[key] = (stamp, data, digest)
    return data, digest


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _parse_csv(raw: bytes, fail) -> tuple[np.ndarray, np.ndarray]:
    try:
        text = raw.decode("utf-8-sig")  # a spreadsheet's byte-order mark is not a cell
    except UnicodeDecodeError as e:
        raise fail(f"not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
    rows, width = [], None
    for lineno, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            cells = [c.strip() for c in next(csv.reader([line]))]
        except csv.Error as e:
            raise fail(f"line {lineno}: {e}") from None
        if width is None:
            width = len(cells)
            if width < 2:
                raise fail(f"line {lineno} has 1 field; expected feature columns then a 0/1 label")
            if any(_number(c) is None for c in cells):
                continue  # the header
        elif len(cells) != width:
            n = len(cells)
            raise fail(f"line {lineno} has {n} field{'s' * (n != 1)}, expected {width}")
        row = []
        for col, cell in enumerate(cells, start=1):
            v = _number(cell)
            if v is None:
                raise fail(f"line {lineno}, column {col}: {cell!r} is not a number")
            if not math.isfinite(v):
                raise fail(f"line {lineno}, column {col}: {cell!r} is not finite")
            row.append(v)
        if row[-1] not in (0.0, 1.0):
            raise fail(f"line {lineno}: label {row[-1]}; labels must be 0 or 1")
        rows.append(row)
    if not rows:
        raise fail("no data rows (expected lines of feature columns then a 0/1 label)")
    table = np.array(rows, dtype=np.float64)
    return np.ascontiguousarray(table[:, :-1]), np.ascontiguousarray(table[:, -1])


def _parse_npz(raw: bytes, fail) -> tuple[np.ndarray, np.ndarray]:
    expected = "arrays 'x' (n, d) and 'y' (n,), or 'X' and 'Y'"
    if not raw.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # an NPZ is a zip of .npy files
        raise fail(f"not an NPZ archive; expected a zip of {expected}")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            names = [(a, b) for a, b in (("x", "y"), ("X", "Y")) if {a, b} <= set(z.files)]
            if not names:
                found = ", ".join(repr(k) for k in z.files) or "no arrays"
                raise fail(f"expected {expected}; found {found}")
            xk, yk = names[0]
            x, y = z[xk], z[yk]
    except ConfigError:
        raise
    except Exception as e:  # a corrupt zip, a bad member or pickled objects: all one answer
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise fail(f"not a readable NPZ archive ({reason})") from None
    for k, a, nd, shape in ((xk, x, 2, "(n, d)"), (yk, y, 1, "(n,)")):
        if a.dtype.kind not in "biuf":
            raise fail(f"array {k!r} has dtype {a.dtype}; expected numbers")
        if a.ndim != nd:
            raise fail(f"array {k!r} has shape {a.shape}; expected {shape}")
    if x.shape[0] != y.shape[0]:
        raise fail(f"{xk!r} has {x.shape[0]} rows but {yk!r} has {y.shape[0]} labels")
    if x.shape[0] == 0:
        raise fail("no data rows (the arrays are empty)")
    if x.shape[1] == 0:
        raise fail(f"array {xk!r} has shape {x.shape}; expected at least 1 feature column")
    x, y = np.array(x, dtype=np.float64), np.array(y, dtype=np.float64)
    for k, a in ((xk, x), (yk, y)):
        bad = np.argwhere(~np.isfinite(a))
        if bad.size:
            i = tuple(int(v) for v in bad[0])
            raise fail(f"{k}[{', '.join(map(str, i))}] is {a[i]}; values must be finite")
    bad = np.flatnonzero((y != 0.0) & (y != 1.0))
    if bad.size:
        raise fail(f"{yk}[{bad[0]}] is label {y[bad[0]]}; labels must be 0 or 1")
    return x, y
