"""Sweep configuration: what to run, over which settings, parsed and validated at the boundary.

A sweep is a grid of *cells*; each cell runs ``n_runs`` restarts. Every sweepable setting takes
one value or several; several make it an *axis* of the grid:

* traced axes (``lr``, ``scale``, ``momentum``, ``x1``, ``x2``) are arrays inside one compiled
  program: new values never recompile;
* static axes (``objective``, ``dataset``, ``widths``, ``optimizer``, ``max_steps``) change the
  program: one compile per value.

Values are written the same way in TOML and on the command line: a number or name, a list
(``[0.5, 1, 2]`` / ``0.5,1,2``) or a range (``{log = [0.1, 10, 11]}`` / ``0.1:10:11:log``, and
``lin`` likewise). See :func:`from_toml` for the file format and ``jaxlab sweep --help``.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import tomli_w

from jaxlab.datasets import DATASETS, get_dataset
from jaxlab.descent import MAX_STEPS_LIMIT, check_tol
from jaxlab.errors import ConfigError, check_choice, check_finite_positive, check_int, did_you_mean
from jaxlab.gradients import METHODS
from jaxlab.losses import LOSSES
from jaxlab.network import check_widths
from jaxlab.objectives import OBJECTIVES
from jaxlab.train import OPTIMIZERS

__all__ = [
    "Axis",
    "SweepConfig",
    "TRACED",
    "STATIC",
    "config_hash",
    "from_dict",
    "from_toml",
    "parse_values",
    "to_toml",
]

TRACED = ("lr", "scale", "momentum", "x1", "x2")
STATIC = ("objective", "dataset", "widths", "optimizer", "max_steps")
SWEEPABLE = STATIC + TRACED
PROBLEMS = ("network", "objective")
DTYPES = ("float32", "float64")
KEYS = ("independent", "paired")
MAX_RUNS = 2**32 - 1  # restart keys fold_in a uint32 global index
MAX_CELLS = 1_000_000
MAX_AXIS_VALUES = 100_000

_ALLOWED = {
    "lr": "finite numbers > 0",
    "scale": "finite numbers > 0",
    "momentum": "numbers in [0, 1)",
    "x1": "finite numbers",
    "x2": "finite numbers",
    "objective": "names from " + ", ".join(OBJECTIVES),
    "dataset": "names from " + ", ".join(DATASETS),
    "widths": "lists of positive integers ending in 1, e.g. [2, 2, 1]",
    "optimizer": "names from " + ", ".join(OPTIMIZERS),
    "max_steps": f"integers in [1, {MAX_STEPS_LIMIT:,}]",
}


@dataclass(frozen=True)
class Axis:
    """A sweepable setting: its values (one value = fixed) and how they were spaced."""

    name: str
    values: tuple
    spacing: str = "list"  # "list", "lin" or "log"

    @property
    def traced(self) -> bool:
        return self.name in TRACED

    def to_toml(self) -> Any:
        if len(self.values) == 1:
            v = self.values[0]
            return list(v) if isinstance(v, tuple) else v
        if self.spacing in ("lin", "log"):
            return {self.spacing: [self.values[0], self.values[-1], len(self.values)]}
        return [list(v) if isinstance(v, tuple) else v for v in self.values]


def _range(name: str, kind: str, spec) -> tuple[float, ...]:
    what = f"a {kind} range [start, stop, num] with num >= 1"
    if not isinstance(spec, list | tuple) or len(spec) != 3:
        raise ConfigError(name, f"expected {what}, got {spec!r}")
    start, stop, num = spec
    for v in (start, stop):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ConfigError(name, f"expected {what} of finite numbers, got {spec!r}")
    if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= MAX_AXIS_VALUES:
        raise ConfigError(
            name, f"expected {what}, num an integer in [1, {MAX_AXIS_VALUES:,}], got {num!r}"
        )
    if num > 1 and not start < stop:
        raise ConfigError(name, f"empty or reversed range: start {start} must be < stop {stop}")
    if kind == "log":
        if start <= 0 or stop <= 0:
            raise ConfigError(name, f"a log range needs start and stop > 0, got {spec!r}")
        vals = np.geomspace(start, stop, num)
    else:
        vals = np.linspace(start, stop, num)
    return tuple(float(v) for v in vals)


def _parse_cli_string(name: str, text: str):
    """``"1"``, ``"0.5,1,2"``, ``"0.1:10:11:log"``, ``"2-2-1,2-4-1"`` -> a TOML-like value."""
    text = text.strip()
    if not text:
        raise ConfigError(name, f"empty value; expected {_ALLOWED.get(name, 'a value')}")

    def atom(s: str):
        s = s.strip()
        if name == "widths":
            try:
                return [int(p) for p in s.split("-")]
            except ValueError:
                raise ConfigError(name, f"expected widths like 2-2-1, got {s!r}") from None
        try:
            return int(s)
        except ValueError:
            pass
        try:
            return float(s)
        except ValueError:
            return s

    if ":" in text:
        parts = text.split(":")
        kind = "lin"
        if parts[-1] in ("log", "lin"):
            kind = parts.pop()
        if len(parts) != 3:
            raise ConfigError(name, f"expected a range start:stop:num[:log|lin], got {text!r}")
        return {kind: [atom(p) for p in parts]}
    items = [atom(p) for p in text.split(",")]
    return items if len(items) > 1 else items[0]


def _check_value(name: str, v):
    bad = ConfigError(name, f"expected {_ALLOWED[name]}, got {v!r}")
    if name in TRACED:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise bad
        v = float(v)
        if not math.isfinite(v):
            raise bad
        if name in ("lr", "scale") and v <= 0:
            raise bad
        if name == "momentum" and not 0 <= v < 1:
            raise bad
        return v
    if name == "objective":
        return check_choice(name, v, OBJECTIVES)
    if name == "dataset":
        return check_choice(name, v, DATASETS)
    if name == "optimizer":
        return check_choice(name, v, OPTIMIZERS)
    if name == "max_steps":
        return check_int(name, v, lo=1, hi=MAX_STEPS_LIMIT)
    if name == "widths":
        return check_widths(v)
    raise AssertionError(name)


def parse_values(name: str, spec) -> Axis:
    """A sweepable setting from a TOML value or a CLI string; validated, one-line errors."""
    if name not in SWEEPABLE:
        raise ConfigError(
            str(name),
            f"unknown setting{did_you_mean(name, SWEEPABLE)}; sweepable: {', '.join(SWEEPABLE)}",
        )
    if isinstance(spec, str) and name not in ("objective", "dataset", "optimizer"):
        spec = _parse_cli_string(name, spec)
    elif isinstance(spec, str) and ("," in spec):
        spec = [s.strip() for s in spec.split(",")]
    spacing = "list"
    if isinstance(spec, dict):
        if len(spec) != 1 or next(iter(spec)) not in ("lin", "log"):
            raise ConfigError(
                name, f"a range is {{lin = [start, stop, num]}} or {{log = [...]}}, got {spec!r}"
            )
        if name not in TRACED:
            raise ConfigError(
                name, f"ranges are for numeric settings ({', '.join(TRACED)}); give a list"
            )
        spacing, rng = next(iter(spec.items()))
        values = _range(name, spacing, rng)
        if len(values) == 1:
            spacing = "list"  # one value is a fixed setting: written back as a number
    elif (
        name == "widths"
        and isinstance(spec, list | tuple)
        and spec
        and all(isinstance(s, list | tuple) for s in spec)
    ):
        values = tuple(spec)
    elif isinstance(spec, list | tuple) and name != "widths":
        values = tuple(spec)
    else:
        values = (spec,)
    if not values:
        raise ConfigError(name, f"empty list; expected one or more {_ALLOWED[name]}")
    if len(values) > MAX_AXIS_VALUES:
        raise ConfigError(name, f"{len(values):,} values; at most {MAX_AXIS_VALUES:,} per axis")
    values = tuple(_check_value(name, v) for v in values)
    if len(set(values)) != len(values):
        raise ConfigError(name, f"repeated values in {list(values)!r}; each value once")
    return Axis(name, values, spacing)


def _default_axes() -> dict[str, Axis]:
    return {
        "objective": Axis("objective", ("lab",)),
        "dataset": Axis("dataset", ("lab",)),
        "widths": Axis("widths", ((2, 2, 1),)),
        "optimizer": Axis("optimizer", ("gd",)),
        "max_steps": Axis("max_steps", (100,)),
        # The main job: learning rate on a log grid around the lab's 1, scale 0.25 .. 4.
        "lr": parse_values("lr", {"log": [0.1, 10.0, 11]}),
        "scale": parse_values("scale", {"log": [0.25, 4.0, 9]}),
        "momentum": Axis("momentum", (0.9,)),
        "x1": Axis("x1", (None,)),  # None: start points drawn at random in the box
        "x2": Axis("x2", (None,)),
    }


@dataclass(frozen=True)
class SweepConfig:
    """Everything that defines a sweep; hashable, and written to ``config.toml`` in full."""

    name: str = "lab"
    problem: str = "network"
    loss: str = "lab"
    method: str = "autodiff"
    dtype: str = "float32"
    tol: float | str = 1e-4  # "off": no stopping rule, a fixed budget
    threshold: float = 0.1
    n_runs: int = 1000
    seed: int = 0
    keys: str = "independent"  # "paired": restart i of every cell starts from the same key
    chunk_size: int = 0  # 0: chosen from the devices and memory
    keep_runs: bool = False
    settings: tuple[Axis, ...] = field(default_factory=lambda: tuple(_default_axes().values()))

    # --- views ---------------------------------------------------------------------------
    def setting(self, name: str) -> Axis:
        for a in self.settings:
            if a.name == name:
                return a
        raise KeyError(name)

    @property
    def axes(self) -> tuple[Axis, ...]:
        """The settings with more than one value, static ones first (the grid's order)."""
        relevant = self.relevant_settings()
        swept = [a for a in self.settings if len(a.values) > 1 and a.name in relevant]
        return tuple(sorted(swept, key=lambda a: SWEEPABLE.index(a.name)))

    def relevant_settings(self) -> tuple[str, ...]:
        if self.problem == "network":
            return ("dataset", "widths", "optimizer", "max_steps", "lr", "scale", "momentum")
        return ("objective", "optimizer", "max_steps", "lr", "momentum", "x1", "x2")

    @property
    def n_cells(self) -> int:
        return math.prod(len(a.values) for a in self.axes)

    @property
    def total_runs(self) -> int:
        return self.n_cells * self.n_runs

    def with_settings(self, **values) -> SweepConfig:
        """A copy with some settings replaced (each value as :func:`parse_values` takes it)."""
        axes = {a.name: a for a in self.settings}
        for k, v in values.items():
            axes[k] = v if isinstance(v, Axis) else parse_values(k, v)
        return replace(self, settings=tuple(axes[k] for k in SWEEPABLE))

    def validate(self) -> SweepConfig:
        axes = self.settings if isinstance(self.settings, tuple | list) else ()
        names = [a.name if isinstance(a, Axis) else None for a in axes]
        if not axes or sorted(map(str, names)) != sorted(SWEEPABLE):
            raise ConfigError(
                "settings",
                f"expected one Axis for each of {', '.join(SWEEPABLE)} "
                "(build configs with with_settings), got "
                f"{[n or type(a).__name__ for n, a in zip(names, axes)] if axes else self.settings!r}",
            )
        check_choice("problem", self.problem, PROBLEMS)
        check_choice("loss", self.loss, LOSSES)
        check_choice("method", self.method, METHODS)
        check_choice("dtype", self.dtype, DTYPES)
        check_tol(self.tol)
        check_choice("keys", self.keys, KEYS)
        check_finite_positive("threshold", self.threshold, allow_zero=True)
        check_int("n_runs", self.n_runs, lo=1, hi=MAX_RUNS)
        check_int("seed", self.seed, lo=0, hi=2**63 - 1)
        check_int("chunk_size", self.chunk_size, lo=0, hi=2**28)
        if not isinstance(self.keep_runs, bool):
            raise ConfigError("keep_runs", f"expected true or false, got {self.keep_runs!r}")
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("name", f"expected a non-empty string, got {self.name!r}")
        if self.problem == "network":
            for d in self.setting("dataset").values:
                for w in self.setting("widths").values:
                    check_widths(w, get_dataset(d))
        if self.n_cells > MAX_CELLS:
            sizes = " x ".join(f"{a.name} {len(a.values):,}" for a in self.axes)
            raise ConfigError(
                "axes",
                f"the grid ({sizes}) has {self.n_cells:,} cells; at most {MAX_CELLS:,} fit "
                "(give fewer values per axis)",
            )
        if self.total_runs > MAX_RUNS:
            fit = MAX_RUNS // self.n_cells
            raise ConfigError(
                "n_runs",
                f"{self.n_cells:,} cells x {self.n_runs:,} runs = {self.total_runs:,} restarts; "
                f"at most {MAX_RUNS:,} fit in one sweep (n_runs <= {fit:,} for this grid)",
            )
        if self.keep_runs and self.total_runs > 10_000_000:
            raise ConfigError(
                "keep_runs",
                f"per-run records of {self.total_runs:,} restarts would not fit; "
                "allowed for sweeps of at most 10,000,000 restarts",
            )
        return self


_SCALARS = {f.name for f in fields(SweepConfig)} - {"settings"}


def from_dict(d: dict, base: SweepConfig | None = None) -> SweepConfig:
    """A validated config from a TOML-like dict; unknown keys fail with a did-you-mean hint."""
    if not isinstance(d, dict):
        raise ConfigError("config", f"expected a table of settings, got {type(d).__name__}")
    cfg = base or SweepConfig()
    known = sorted(_SCALARS | set(SWEEPABLE))
    scalars, sweep = {}, {}
    for k, v in d.items():
        if k in SWEEPABLE:
            sweep[k] = v
        elif k in _SCALARS:
            scalars[k] = v
        else:
            raise ConfigError(
                k, f"unknown setting{did_you_mean(k, known)}; known: {', '.join(known)}"
            )
    for k, v in scalars.items():
        if k == "tol" and isinstance(v, str):
            if v != "off":
                raise ConfigError("tol", f'expected a finite number >= 0 or "off", got {v!r}')
            continue
        expected = type(getattr(SweepConfig(), k))
        if expected is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, expected) or (expected is int and isinstance(v, bool)):
            raise ConfigError(k, f"expected {expected.__name__}, got {v!r} ({type(v).__name__})")
        scalars[k] = v
    cfg = replace(cfg, **scalars)
    if sweep:
        cfg = cfg.with_settings(**sweep)
    relevant = cfg.relevant_settings()
    defaults = _default_axes()
    for k in sweep:
        # A setting this problem does not read is refused rather than silently ignored (an
        # older config.toml holding its unchanged default still loads).
        if k not in relevant and cfg.setting(k).values != defaults[k].values:
            raise ConfigError(
                k,
                f"not a setting of problem {cfg.problem!r}; its settings: {', '.join(relevant)}",
            )
    return cfg.validate()


def from_toml(text: str, base: SweepConfig | None = None) -> SweepConfig:
    """Parse a config file's text. Example::

    name = "lab"
    problem = "network"
    n_runs = 1000
    lr = {log = [0.1, 10.0, 11]}
    scale = [0.25, 0.5, 1.0, 2.0, 4.0]
    optimizer = ["gd", "adam"]
    """
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("config", f"not valid TOML: {e}") from None
    return from_dict(d, base)


def to_dict(cfg: SweepConfig) -> dict:
    d = {k: getattr(cfg, k) for k in sorted(_SCALARS)}
    relevant = cfg.relevant_settings()
    for a in cfg.settings:
        if a.values == (None,):
            continue  # random start points: the default, not representable in TOML
        if a.name not in relevant:
            continue  # not read by this problem (an objective sweep has no init scale)
        d[a.name] = a.to_toml()
    return d


def to_toml(cfg: SweepConfig) -> str:
    """The full, resolved config; :func:`from_toml` of it gives the same config back."""
    head = "# jaxlab sweep config: `jaxlab sweep --config THIS_FILE` reruns this sweep exactly.\n"
    return head + tomli_w.dumps(to_dict(cfg))


def config_hash(cfg: SweepConfig) -> str:
    """A short stable hash of what determines the results (chunking and paths excluded)."""
    d = to_dict(cfg)
    d.pop("chunk_size")
    d.pop("name")
    return hashlib.sha256(tomli_w.dumps(d).encode()).hexdigest()[:16]
