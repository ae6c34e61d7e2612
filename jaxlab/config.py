"""Sweep configuration: what to run, over which settings, parsed and validated at the boundary.

A sweep is a grid of *cells*; each cell runs ``n_runs`` restarts. Every sweepable setting takes
one value or several; several make it an *axis* of the grid:

* traced axes (the problem's ``traced`` settings, and jaxlab's ``lr`` and ``momentum``) are
  arrays inside one compiled program: new values never recompile;
* static axes (the problem's ``static`` settings, and jaxlab's ``optimizer`` and
  ``max_steps``) change the program: one compile per value.

The settings are the problem's (:func:`schema`); the config names no built-in problem.

Values are written the same way in TOML and on the command line: a number or name, a list
(``[0.5, 1, 2]`` / ``0.5,1,2``) or a range (``{log = [0.1, 10, 11]}`` / ``0.1:10:11:log``, and
``lin`` likewise). See :func:`from_toml` for the file format and ``jaxlab sweep --help``.
"""

from __future__ import annotations

import functools
import hashlib
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from jaxlab.contract import JAXLAB_STATIC, JAXLAB_TRACED, Problem
from jaxlab.descent import MAX_STEPS_LIMIT, check_tol
from jaxlab.errors import ConfigError, check_choice, check_finite_positive, check_int, did_you_mean
from jaxlab.gradients import METHODS
from jaxlab.train import OPTIMIZERS

__all__ = [
    "Axis",
    "Setting",
    "SweepConfig",
    "config_hash",
    "from_dict",
    "from_toml",
    "parse_values",
    "schema",
    "to_toml",
]

DTYPES = ("float32", "float64")
KEYS = ("independent", "paired")
LANES = ("auto", "dense", "recycle")
# Each device trains its restarts in vmapped blocks of lane_block lanes: a fixed width keeps a
# restart's last bits independent of the chunk size and device count (XLA orders a vmapped
# reduction by the batch width). Auto: LANE_BLOCK, or less for a sweep too small to fill it
# (a power of two from the restarts of one static combination: the config alone decides it).
# 8192 measured as fast as one 32k block per device on the lab's network (219 vs 238 ms a 64k
# chunk on 2 cores; 4096: 251 ms, 2048: 266 ms).
LANE_BLOCK = 8192
MAX_RUNS = 2**32 - 1  # restart keys fold_in a uint32 global index
ADAPTIVE_CAP = 100  # adaptive sweeps: max_runs defaults to this many times n_runs (as fits)
MAX_CELLS = 1_000_000
MAX_AXIS_VALUES = 100_000


@dataclass(frozen=True)
class Axis:
    """A sweepable setting: its values (one value = fixed), how they were spaced, and whether
    it is traced (an array inside the compiled program) or static (one compile per value)."""

    name: str
    values: tuple
    spacing: str = "list"  # "list", "lin" or "log"
    traced: bool = False

    def to_toml(self) -> Any:
        if len(self.values) == 1:
            v = self.values[0]
            return list(v) if isinstance(v, tuple) else v
        if self.spacing in ("lin", "log"):
            return {self.spacing: [self.values[0], self.values[-1], len(self.values)]}
        return [list(v) if isinstance(v, tuple) else v for v in self.values]


@dataclass(frozen=True)
class Setting:
    """What a problem (or jaxlab) declares about one setting: traced or static, its default
    (a value, a list or a range), and the check its values pass."""

    name: str
    traced: bool
    default: Any
    check: Callable | None = None
    allowed: str = ""
    choices: tuple | None = None  # named values: a wrong name gets a did-you-mean


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.number) and not isinstance(v, bool)


def _positive(v) -> bool:
    return v > 0


def _in_unit(v) -> bool:
    return 0 <= v < 1


def _is_optimizer(v) -> bool:
    return v in OPTIMIZERS or callable(v)


def _is_steps(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_STEPS_LIMIT


# jaxlab's own settings: the named optimisers read lr and momentum; the loop reads the rest.
_JAXLAB = {
    "optimizer": Setting(
        "optimizer", False, JAXLAB_STATIC["optimizer"], _is_optimizer,
        "names from " + ", ".join(OPTIMIZERS) + " (or, from Python, a function settings -> optax "
        "GradientTransformation)", OPTIMIZERS,
    ),
    "max_steps": Setting(
        "max_steps", False, JAXLAB_STATIC["max_steps"], _is_steps,
        f"integers in [1, {MAX_STEPS_LIMIT:,}]",
    ),
    "lr": Setting("lr", True, JAXLAB_TRACED["lr"], _positive, "finite numbers > 0"),
    "momentum": Setting("momentum", True, JAXLAB_TRACED["momentum"], _in_unit, "numbers in [0, 1)"),
}  # fmt: skip


def schema(problem: Problem) -> dict[str, Setting]:
    """Every setting of ``problem``, in the grid's order: its static settings, jaxlab's
    ``optimizer`` and ``max_steps``, its traced settings, then ``lr`` and ``momentum`` where it
    did not declare them."""
    out: dict[str, Setting] = {}
    checks = dict(problem.checks or {})

    def add(name, traced, default):
        base = _JAXLAB.get(name)
        given = checks.get(name)
        choices = None
        if given is None:
            check, allowed = None, ""
        elif isinstance(given, list | dict) or (
            isinstance(given, tuple) and not (len(given) == 2 and callable(given[0]))
        ):  # a collection of names: checks={"loss": ("lab", "logit")}
            choices = tuple(given)
            check, allowed = (lambda v, c=choices: v in c), "names from " + ", ".join(choices)
        else:
            check, allowed = given
        if base is not None:
            check = check or base.check
            allowed = allowed or base.allowed
            choices = choices or base.choices
        if not allowed:
            allowed = "finite numbers" if traced else "values like the default"
        out[name] = Setting(name, traced, default, check, allowed, choices)

    for name, default in dict(problem.static).items():
        add(name, False, default)
    for name in ("optimizer", "max_steps"):
        if name not in out:
            add(name, False, _JAXLAB[name].default)
    for name, default in dict(problem.traced).items():
        if name in out:
            raise ConfigError(name, "declared both traced and static by the problem")
        add(name, True, default)
    for name in ("lr", "momentum"):
        if name not in out:
            add(name, True, _JAXLAB[name].default)
    return out


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


def _tuple_default(setting: Setting | None) -> bool:
    return setting is not None and isinstance(setting.default, tuple)


def _parse_cli_string(name: str, text: str, setting: Setting | None):
    """``"1"``, ``"0.5,1,2"``, ``"0.1:10:11:log"``, ``"2-2-1,2-4-1"`` -> a TOML-like value (a
    setting whose default is a tuple of integers is written ``a-b-c``)."""
    text = text.strip()
    if not text:
        allowed = setting.allowed if setting is not None else "a value"
        raise ConfigError(name, f"empty value; expected {allowed}")

    def atom(s: str):
        s = s.strip()
        if _tuple_default(setting):
            try:
                return [int(p) for p in s.split("-")]
            except ValueError:
                example = "-".join(map(str, setting.default))
                raise ConfigError(name, f"expected values like {example}, got {s!r}") from None
        try:
            return int(s)
        except ValueError:
            pass
        try:
            return float(s)
        except ValueError:
            return s

    if ":" in text and (setting is None or setting.traced):
        parts = text.split(":")
        kind = "lin"
        if parts[-1] in ("log", "lin"):
            kind = parts.pop()
        if len(parts) != 3:
            raise ConfigError(name, f"expected a range start:stop:num[:log|lin], got {text!r}")
        return {kind: [atom(p) for p in parts]}
    items = [atom(p) for p in text.split(",")]
    return items if len(items) > 1 else items[0]


def _check_value(setting: Setting, v):
    name = setting.name
    if setting.choices is not None and isinstance(v, str) and v not in setting.choices:
        check_choice(name, v, setting.choices)  # unknown value 'adamm' (did you mean 'adam'?)

    given = v

    def bad():  # built only when raised: points check many values
        return ConfigError(name, f"expected {setting.allowed}, got {given!r}")

    if setting.traced:
        if not _is_number(v):
            raise bad()
        v = float(v)
        if not (math.isfinite(v) or (math.isnan(v) and setting.check is not None)):
            raise bad()
    else:
        if isinstance(v, list):
            v = tuple(v)
        if isinstance(v, tuple) and not _tuple_default(setting):
            raise bad()
        if not isinstance(v, str | int | float | bool | tuple) and not callable(v):
            raise bad()
        if isinstance(setting.default, bool) != isinstance(v, bool):
            raise bad()
        if isinstance(setting.default, int) and not isinstance(setting.default, bool):
            if not isinstance(v, int) or isinstance(v, bool):
                raise bad()
    if setting.check is not None:
        try:
            ok = bool(setting.check(v))
        except ConfigError:
            raise  # the check's own one-line message (e.g. a data file that cannot be read)
        except Exception:
            ok = False
        if not ok:
            raise bad()
    return v


def parse_values(name: str, spec, setting: Setting | None = None) -> Axis:
    """A setting's values from a TOML value or a CLI string; validated, one-line errors.
    ``setting`` says what the problem declared (default: the lab network's settings)."""
    if setting is None:
        known = schema(_default_problem())
        if name not in known:
            raise ConfigError(
                str(name),
                f"unknown setting{did_you_mean(name, known)}; settings: {', '.join(known)}",
            )
        setting = known[name]
    numeric = _is_number(setting.default)  # e.g. max_steps = 100: "100,1000" from the CLI
    if isinstance(spec, str) and (setting.traced or _tuple_default(setting) or numeric):
        spec = _parse_cli_string(name, spec, setting)
    elif isinstance(spec, str) and ("," in spec):
        spec = [s.strip() for s in spec.split(",")]
    spacing = "list"
    if isinstance(spec, dict):
        if len(spec) != 1 or next(iter(spec)) not in ("lin", "log"):
            raise ConfigError(
                name, f"a range is {{lin = [start, stop, num]}} or {{log = [...]}}, got {spec!r}"
            )
        if not setting.traced:
            raise ConfigError(name, "ranges are for traced (numeric) settings; give a list")
        spacing, rng = next(iter(spec.items()))
        values = _range(name, spacing, rng)
        if len(values) == 1:
            spacing = "list"  # one value is a fixed setting: written back as a number
    elif (
        _tuple_default(setting)
        and isinstance(spec, list | tuple)
        and spec
        and all(isinstance(s, list | tuple) for s in spec)
    ):
        values = tuple(spec)
    elif isinstance(spec, list | tuple) and not _tuple_default(setting):
        values = tuple(spec)
    else:
        values = (spec,)
    if not values:
        raise ConfigError(name, f"empty list; expected one or more {setting.allowed}")
    if len(values) > MAX_AXIS_VALUES:
        raise ConfigError(name, f"{len(values):,} values; at most {MAX_AXIS_VALUES:,} per axis")
    if name == "optimizer":  # "module:function" (as config.toml writes a function) -> the function
        values = tuple(
            _import_function(v) if isinstance(v, str) and ":" in v else v for v in values
        )
    values = tuple(_check_value(setting, v) for v in values)
    if len(set(map(_key, values))) != len(values):
        raise ConfigError(name, f"repeated values in {list(values)!r}; each value once")
    return Axis(name, values, spacing, setting.traced)


def _import_function(text: str):
    from jaxlab.problems import import_attribute

    return import_attribute(text, "optimizer")


def _key(v):
    return ("nan",) if isinstance(v, float) and math.isnan(v) else v


def _default_problem() -> Problem:
    from jaxlab.problems import network

    return network()


def default_settings(problem: Problem) -> tuple[Axis, ...]:
    """The problem's declared defaults as axes (a default may be a list or a range)."""
    return tuple(parse_values(n, st.default, st) for n, st in schema(problem).items())


def _freeze(args) -> tuple:
    if isinstance(args, dict):
        args = args.items()
    return tuple(sorted((str(k), tuple(v) if isinstance(v, list) else v) for k, v in args))


def import_string(problem) -> str:
    """How config.toml names ``problem``: a built-in name or ``"module:attribute"`` as given,
    or, for a Problem object, where it can be imported from (``"module:attribute"`` found in
    the module that defined its functions; ``"<name>"`` when it cannot be found)."""
    if isinstance(problem, str):
        return problem
    import sys

    for fn in (problem.init, problem.loss, problem.train):
        mod = sys.modules.get(getattr(fn, "__module__", None) or "")
        for attr, value in vars(mod).items() if mod is not None else ():
            if value is problem:
                return f"{mod.__name__}:{attr}"
    return f"<{problem.name}>"


def import_folder(label: str) -> str:
    """The folder that ``"module:attribute"``'s module, already imported, is imported from (its
    top package's parent); "" for a built-in or a module without a file. config.toml records it
    so that another process (a rerun, a resume, another host) imports the same file."""
    import sys

    module, colon, _ = label.partition(":")
    file = getattr(sys.modules.get(module), "__file__", None) if colon else None
    if not file:
        return ""
    path = Path(file).resolve()
    return str(path.parents[module.count(".") + (path.name == "__init__.py")])


@dataclass(frozen=True)
class SweepConfig:
    """Everything that defines a sweep; written to ``config.toml`` in full.

    ``problem`` is a built-in name (``"network"``, ``"objective"``), ``"module:attribute"``
    or a :class:`jaxlab.Problem`; ``problem_args`` are passed to a problem factory;
    ``problem_path`` is the folder ``"module:attribute"`` is imported from (the config file's).
    ``settings`` default to the problem's declared defaults.
    """

    name: str = "lab"
    problem: Any = "network"
    problem_args: tuple = ()
    problem_path: str = ""
    method: str = "autodiff"
    dtype: str = "float32"
    tol: float | str = 1e-4  # "off": no stopping rule, a fixed budget
    threshold: float = 0.1
    n_runs: int = 1000
    seed: int = 0
    keys: str = "independent"  # "paired": restart i of every cell starts from the same key
    chunk_size: int = 0  # 0: chosen from the devices and memory
    keep_runs: bool = False
    lane_block: int = 0  # restarts a device trains at once (0: auto; part of the result's bits)
    # Adaptive sweeps (jaxlab.adaptive): rounds of restarts to the cells whose confidence
    # sequence is wider than ci_width, up to max_runs a cell (None: ADAPTIVE_CAP x n_runs).
    ci_width: float | None = None
    max_runs: int | None = None
    # Refined sweeps (jaxlab.refine): split cells in four where the success map's boundary is,
    # down to ``refine`` cells per axis (0: off), at the success ``levels``.
    refine: int = 0
    levels: tuple = (0.5,)
    # How lanes are kept busy (never part of the results: a restart's bits are the same either
    # way): "dense" (a block of restarts runs until its slowest stops), "recycle" (a lane whose
    # restart stopped takes the next one), "auto" (chosen per static combination by a probe).
    lanes: str = "auto"
    refill: int = 0  # recycle: steps between refills (0: REFILL)
    settings: tuple | None = None
    # Short forms of jaxlab's own settings, as in SweepConfig(problem=p, optimizer="adam",
    # max_steps=300): applied to ``settings`` on construction, then None.
    optimizer: Any = None
    max_steps: Any = None
    # A sweep over explicit points instead of the product grid (:mod:`jaxlab.points`): a CSV
    # path, a list of dicts, a DataFrame or a table of columns; stored as ((name, values), ...).
    points: Any = None

    def __post_init__(self):
        if isinstance(self.levels, list | float | int) and not isinstance(self.levels, bool):
            lv = self.levels if isinstance(self.levels, list) else [self.levels]
            object.__setattr__(self, "levels", tuple(lv))
        if not isinstance(self.problem_args, tuple):
            if not isinstance(self.problem_args, dict):
                raise ConfigError(
                    "problem_args", f"expected a table of arguments, got {self.problem_args!r}"
                )
            object.__setattr__(self, "problem_args", _freeze(self.problem_args))
        if self.settings is None:
            object.__setattr__(self, "settings", default_settings(self.problem_obj))
        short = {
            k: getattr(self, k) for k in ("optimizer", "max_steps") if getattr(self, k) is not None
        }
        if short:
            known = schema(self.problem_obj)
            axes = {a.name: a for a in self.settings}
            for k, v in short.items():
                axes[k] = v if isinstance(v, Axis) else parse_values(k, v, known[k])
                object.__setattr__(self, k, None)
            object.__setattr__(self, "settings", tuple(axes[k] for k in axes))
        if self.points is not None:
            from jaxlab import points as P

            known = schema(self.problem_obj)
            pts = P.normalize(self.points, known)
            object.__setattr__(self, "points", pts)
            axes = {a.name: a for a in self.settings}
            for name, vals in pts:  # each point name's axis: the values its points take
                axes[name] = Axis(name, P.unique(vals), "list", known[name].traced)
            object.__setattr__(self, "settings", tuple(axes[k] for k in axes))

    # --- views ---------------------------------------------------------------------------
    @property
    def problem_obj(self) -> Problem:
        """The :class:`jaxlab.Problem` this config sweeps."""
        return _resolve(self.problem, self.problem_args, self.problem_path)

    @property
    def schema(self) -> dict[str, Setting]:
        return schema(self.problem_obj)

    def setting(self, name: str) -> Axis:
        for a in self.settings:
            if a.name == name:
                return a
        raise KeyError(name)

    @property
    def axes(self) -> tuple[Axis, ...]:
        """The settings with more than one value, static ones first (the grid's order); for a
        sweep over points, the names its points set."""
        if self.points is not None:
            names = {n for n, _ in self.points}
            return tuple(a for a in self.settings if a.name in names)
        return tuple(a for a in self.settings if len(a.values) > 1)

    def relevant_settings(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.settings)

    @property
    def traced_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.settings if a.traced)

    @property
    def block(self) -> int:
        """The resolved ``lane_block``."""
        if self.lane_block:
            return self.lane_block
        per_combo = max(1, self.runs_per_combo)
        # About 64 restarts per lane: enough for recycled lanes to keep busy to the end.
        return min(LANE_BLOCK, max(64, 1 << math.ceil(math.log2(max(1, per_combo // 64)))))

    @functools.cached_property
    def runs_per_combo(self) -> int:
        """Restarts of the largest static combination (cached: a long point list is read
        once, not at every chunk)."""
        if self.points is not None:
            from jaxlab.points import combos

            return int(np.bincount(combos(self)[1]).max()) * self.n_runs
        combos = math.prod(len(a.values) for a in self.axes if not a.traced)
        return self.n_cells // max(1, combos) * self.n_runs

    @property
    def n_cells(self) -> int:
        if self.points is not None:
            return len(self.points[0][1])
        return math.prod(len(a.values) for a in self.axes)

    @property
    def cap(self) -> int:
        """Most restarts a cell can get: ``max_runs`` (adaptive sweeps), else ``n_runs``."""
        if self.ci_width is None:
            return self.n_runs
        if self.max_runs is not None:
            return self.max_runs
        fit = MAX_RUNS // max(1, self.n_cells)  # global indices cell * max_runs + i: uint32
        return min(ADAPTIVE_CAP * self.n_runs, max(self.n_runs, fit))

    @property
    def stride(self) -> int:
        """Restart ``i`` of cell ``c`` has global index ``c * stride + i`` (``stride`` is
        :attr:`cap`: ``n_runs``, or ``max_runs`` in adaptive sweeps)."""
        return self.cap

    @property
    def total_runs(self) -> int:
        """Restarts of the sweep (adaptive sweeps: the most it can use, every cell at its cap;
        refined ones: every cell of the tree evaluated)."""
        if self.refine:
            from jaxlab.refine import geometry

            return geometry(self).n_nodes * self.n_runs
        return self.n_cells * self.cap

    def with_settings(self, **values) -> SweepConfig:
        """A copy with some settings replaced (each value as :func:`parse_values` takes it)."""
        known = self.schema
        axes = {a.name: a for a in self.settings}
        for k, v in values.items():
            if k not in known:
                raise ConfigError(
                    str(k),
                    f"not a setting of problem {self.problem_label!r}{did_you_mean(k, known)}; "
                    f"its settings: {', '.join(known)}",
                )
            if k in dict(self.points or ()):
                raise ConfigError(
                    str(k), "set by the sweep's points; change it there (or drop the points)"
                )
            axes[k] = v if isinstance(v, Axis) else parse_values(k, v, known[k])
        return replace(self, settings=tuple(axes[k] for k in known))

    @property
    def problem_label(self) -> str:
        return import_string(self.problem)

    def validate(self) -> SweepConfig:
        known = self.schema
        axes = self.settings if isinstance(self.settings, tuple | list) else ()
        names = [a.name if isinstance(a, Axis) else None for a in axes]
        if not axes or names != list(known):
            raise ConfigError(
                "settings",
                f"expected one Axis for each of {', '.join(known)} "
                "(build configs with with_settings), got "
                f"{[n or type(a).__name__ for n, a in zip(names, axes)] if axes else self.settings!r}",
            )
        if self.points is not None:
            self._check_points()
        check_choice("method", self.method, METHODS)
        if (
            self.method == "manual"
            and self.problem_obj.grad is None
            and self.problem_obj.train is None
        ):
            raise ConfigError(
                "method",
                f"'manual' needs a hand-written grad; problem {self.problem_label!r} has none",
            )
        check_choice("dtype", self.dtype, DTYPES)
        check_tol(self.tol)
        check_choice("keys", self.keys, KEYS)
        check_finite_positive("threshold", self.threshold, allow_zero=True)
        check_int("n_runs", self.n_runs, lo=1, hi=MAX_RUNS)
        check_int("seed", self.seed, lo=0, hi=2**63 - 1)
        check_int("chunk_size", self.chunk_size, lo=0, hi=2**28)
        check_int("lane_block", self.lane_block, lo=0, hi=2**24)
        self._check_adaptive()
        from jaxlab.refine import check as check_refine

        check_refine(self)
        check_choice("lanes", self.lanes, LANES)
        if self.lanes == "recycle" and self.problem_obj.train is not None:
            raise ConfigError(
                "lanes",
                f"'recycle' needs jaxlab's loop; problem {self.problem_label!r} trains itself "
                "(train): use dense or auto",
            )
        check_int("refill", self.refill, lo=0, hi=MAX_STEPS_LIMIT)
        if not isinstance(self.keep_runs, bool):
            raise ConfigError("keep_runs", f"expected true or false, got {self.keep_runs!r}")
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("name", f"expected a non-empty string, got {self.name!r}")
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
                "n_runs" if self.ci_width is None else "max_runs",
                f"{self.n_cells:,} cells x {self.n_runs:,} runs = {self.total_runs:,} restarts; "
                f"at most {MAX_RUNS:,} fit in one sweep (n_runs <= {fit:,} for this grid)",
            )
        if self.keep_runs and self.ci_width is not None:
            raise ConfigError(
                "keep_runs", "per-run records are not kept by adaptive sweeps (ci_width)"
            )
        if self.keep_runs and self.total_runs > 10_000_000:
            raise ConfigError(
                "keep_runs",
                f"per-run records of {self.total_runs:,} restarts would not fit; "
                "allowed for sweeps of at most 10,000,000 restarts",
            )
        return self

    def _check_adaptive(self) -> None:
        if self.ci_width is not None and self.points is not None:
            raise ConfigError("ci_width", "adaptive sweeps take a grid, not points")
        if self.ci_width is None:
            if self.max_runs is not None:
                raise ConfigError(
                    "max_runs", "caps the restarts of adaptive sweeps: give ci_width too"
                )
            return
        w = self.ci_width
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0 < w < 1:
            raise ConfigError("ci_width", f"expected a width in (0, 1), got {w!r}")
        if self.max_runs is not None:
            check_int("max_runs", self.max_runs, lo=1, hi=MAX_RUNS)
            if self.max_runs < self.n_runs:
                raise ConfigError(
                    "max_runs",
                    f"expected at least n_runs ({self.n_runs:,}, the first round), "
                    f"got {self.max_runs:,}",
                )

    def _check_points(self) -> None:
        from jaxlab.points import unique

        given = dict(self.points)
        for a in self.settings:
            if a.name in given and a.values != unique(given[a.name]):
                raise ConfigError(
                    a.name,
                    "set by the sweep's points; give it in the points or drop the points",
                )
            if a.name not in given and len(a.values) > 1:
                raise ConfigError(
                    a.name,
                    f"{len(a.values)} values, but a sweep over points takes one value of each "
                    f"setting its points do not set (they set {', '.join(given)}); give "
                    f"{a.name} one value, or a column in the points",
                )


_RESOLVED: dict = {}


def _resolve(problem, args: tuple, path: str) -> Problem:
    if isinstance(problem, Problem):
        return problem
    key = (problem, args, path)
    if key not in _RESOLVED:
        from jaxlab.problems import resolve

        _RESOLVED[key] = resolve(problem, dict(args), Path(path) if path else None)
    return _RESOLVED[key]


_SCALARS = {f.name for f in fields(SweepConfig)} - {"settings", "optimizer", "max_steps", "points"}
_TYPES = {
    "name": str, "problem": str, "problem_args": dict, "problem_path": str, "method": str,
    "dtype": str, "tol": float, "threshold": float, "n_runs": int, "seed": int, "keys": str,
    "chunk_size": int, "keep_runs": bool, "lane_block": int, "lanes": str, "refill": int,
    "ci_width": float, "max_runs": int, "refine": int, "levels": list,
}  # fmt: skip


def _legacy(name: str, value) -> bool:
    """Whether ``name = value`` is a setting an older jaxlab wrote for every problem at its
    default (config.toml listed the network's settings in objective sweeps and the other way
    round): such a key is dropped, so that older run directories still load."""
    from jaxlab.problems import BUILTIN

    for factory in BUILTIN.values():
        st = schema(factory()).get(name)
        if st is not None:
            try:
                if (
                    parse_values(name, value, st).values
                    == parse_values(name, st.default, st).values
                ):
                    return True
            except ConfigError:
                pass
    return name in ("x1", "x2") and value is None


def _builtin_setting(name: str) -> bool:
    from jaxlab.problems import BUILTIN

    return any(name in schema(f()) for f in BUILTIN.values())


def _levels(v) -> tuple:
    """Success levels from TOML (a number or a list) or the CLI (``"0.1,0.5"``)."""
    items = v.split(",") if isinstance(v, str) else v if isinstance(v, list | tuple) else [v]
    out = []
    for x in items:
        try:
            f = float(x.strip()) if isinstance(x, str) else x
        except ValueError:
            f = None
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 < f < 1:
            raise ConfigError("levels", f"expected success levels in (0, 1), got {x!r}")
        out.append(float(f))
    return tuple(out)


def from_dict(d: dict, base: SweepConfig | None = None, path: str | None = None) -> SweepConfig:
    """A validated config from a TOML-like dict on top of ``base``; unknown keys fail with a
    did-you-mean hint. ``path`` is the folder a ``"module:attribute"`` problem is imported
    from when ``d`` names one (a config file's folder)."""
    if not isinstance(d, dict):
        raise ConfigError("config", f"expected a table of settings, got {type(d).__name__}")
    cfg = base or SweepConfig()
    scalars = {}
    for k in _SCALARS & set(d):
        v = d[k]
        if k == "levels":
            scalars[k] = _levels(v)
            continue
        if k == "tol" and isinstance(v, str):
            if v != "off":
                raise ConfigError("tol", f'expected a finite number >= 0 or "off", got {v!r}')
            scalars[k] = v
            continue
        expected = _TYPES[k]
        if expected is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, expected) or (expected is int and isinstance(v, bool)):
            raise ConfigError(k, f"expected {expected.__name__}, got {v!r} ({type(v).__name__})")
        scalars[k] = v
    if "problem_args" in scalars:
        scalars["problem_args"] = _freeze(scalars["problem_args"])
    if "problem" in scalars and ":" in scalars["problem"] and "problem_path" not in scalars:
        scalars["problem_path"] = str(path) if path is not None else ""
    new_problem = any(
        k in scalars and scalars[k] != getattr(cfg, k)
        for k in ("problem", "problem_args", "problem_path")
    )
    if new_problem:  # another problem: its own settings and defaults
        scalars.setdefault("problem_args", () if "problem" in scalars else cfg.problem_args)
        cfg = replace(cfg, **scalars, settings=None)
    else:
        cfg = replace(cfg, **scalars)
    known = cfg.schema
    sweep = {}
    for k, v in d.items():
        if k in _SCALARS or k == "points":
            continue
        if k in known:
            sweep[k] = v
        elif not _legacy(k, v):
            names = sorted(_SCALARS) + list(known)
            what = "unknown setting" if not _builtin_setting(k) else "not a setting of problem"
            raise ConfigError(
                k,
                f"{what} {cfg.problem_label!r}{did_you_mean(k, names)}; its settings: "
                f"{', '.join(known)}; the sweep's: {', '.join(sorted(_SCALARS))}"
                if what != "unknown setting"
                else f"unknown setting{did_you_mean(k, names)}; problem {cfg.problem_label!r} "
                f"has {', '.join(known)}; the sweep has {', '.join(sorted(_SCALARS))}",
            )
    if "points" in d:
        from jaxlab.points import normalize

        pts = normalize(d["points"], known, folder=path)
        both = [n for n, _ in pts if n in sweep]
        if both:
            raise ConfigError(both[0], "given both as a setting and in the points; give it once")
        cfg = replace(cfg, points=pts)
    if sweep:
        cfg = cfg.with_settings(**sweep)
    return cfg.validate()


def from_toml(text: str, base: SweepConfig | None = None, path: str | None = None) -> SweepConfig:
    """Parse a config file's text (``path``: its folder, from which ``"module:attribute"``
    problems are imported). Example::

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
    return from_dict(d, base, path)


def from_file(path, base: SweepConfig | None = None) -> SweepConfig:
    """A config file read as ``jaxlab sweep --config`` reads it (its folder is where a
    ``"module:attribute"`` problem is imported from); one-line errors for a missing or
    unreadable file."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError("config", f"no such file: {file}")
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("config", f"cannot read {file}: {e}") from None
    return from_toml(text, base=base, path=str(file.resolve().parent))


def _toml_value(v):
    if callable(v):
        return f"{getattr(v, '__module__', '?')}:{getattr(v, '__qualname__', repr(v))}"
    return v


def to_dict(cfg: SweepConfig) -> dict:
    d = {}
    for k in sorted(_SCALARS):
        v = getattr(cfg, k)
        if k == "problem":
            v = cfg.problem_label
        elif k == "problem_args":
            if not v:
                continue
            v = {a: list(b) if isinstance(b, tuple) else b for a, b in v}
        elif k == "problem_path":
            v = v or import_folder(cfg.problem_label)
            if not v:
                continue
        elif k in ("ci_width", "max_runs"):
            if cfg.ci_width is None:
                continue  # uniform sweeps: their config.toml (and hash) as before
            v = cfg.cap if k == "max_runs" else v
        elif k in ("refine", "levels"):
            if not cfg.refine:
                continue  # unrefined sweeps: their config.toml (and hash) as before
            v = list(v) if k == "levels" else v
        d[k] = v
    points = dict(cfg.points or ())
    for a in cfg.settings:
        if a.name in points:
            continue
        t = a.to_toml()
        d[a.name] = (
            [_toml_value(x) for x in t]
            if isinstance(t, list) and not isinstance(a.values[0], tuple)
            else _toml_value(t)
        )
    if points:  # written as a table of columns, so config.toml alone reruns the sweep
        d["points"] = {
            n: [list(v) if isinstance(v, tuple) else _toml_value(v) for v in vals]
            for n, vals in points.items()
        }
    return d


def to_toml(cfg: SweepConfig) -> str:
    """The full, resolved config; :func:`from_toml` of it gives the same config back."""
    head = "# jaxlab sweep config: `jaxlab sweep --config THIS_FILE` reruns this sweep exactly.\n"
    return head + tomli_w.dumps(to_dict(cfg))


def config_hash(cfg: SweepConfig) -> str:
    """A short stable hash of what determines the results (chunking, names and paths
    excluded)."""
    d = to_dict(cfg)
    for k in ("chunk_size", "name", "problem_path", "lane_block", "lanes", "refill"):
        # lane_block: resolved from the rest when 0, then kept in config.toml; lanes and
        # refill change how restarts are scheduled, never their results.
        d.pop(k, None)
    for name, digest in dict(cfg.problem_obj.digests or {}).items():  # e.g. a data file's bytes
        d[f"{name}_digest"] = [digest(v) for v in cfg.setting(name).values]
    return hashlib.sha256(tomli_w.dumps(d).encode()).hexdigest()[:16]
