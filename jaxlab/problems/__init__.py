"""Built-in problems, ordinary users of the public contract (:class:`jaxlab.Problem`), and how a
config names a problem: a built-in name, ``"module:attribute"`` (the config file's folder is
importable), or a :class:`jaxlab.Problem` given from Python. An attribute that is a function
returning a Problem is called with the config's ``problem_args``.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from pathlib import Path

from jaxlab.contract import Problem
from jaxlab.errors import ConfigError, did_you_mean
from jaxlab.problems.network import network
from jaxlab.problems.objective import objective

__all__ = ["BUILTIN", "import_attribute", "network", "objective", "resolve", "source_hash"]

BUILTIN = {"network": network, "objective": objective}


def resolve(spec, args: dict | None = None, base: Path | None = None) -> Problem:
    """The :class:`Problem` that ``spec`` names (see the module docstring); ``args`` are passed
    to a factory. One-line :class:`ConfigError` for anything else."""
    args = dict(args or {})
    if isinstance(spec, Problem):
        if args:
            raise ConfigError(
                "problem_args", "given with a Problem object; call its factory instead"
            )
        return spec
    if not isinstance(spec, str) or not spec:
        raise ConfigError(
            "problem", f"expected a built-in name, 'module:attribute' or a Problem, got {spec!r}"
        )
    if ":" not in spec:
        if spec not in BUILTIN:
            raise ConfigError(
                "problem",
                f"unknown problem {spec!r}{did_you_mean(spec, BUILTIN)}; built-in: "
                f"{', '.join(BUILTIN)}, or 'module:attribute' for your own",
            )
        return _call(BUILTIN[spec], args, spec)
    module, _, attr = spec.partition(":")
    obj = _import(module, attr, base)
    if isinstance(obj, Problem):
        if args:
            raise ConfigError(
                "problem_args", f"{spec} is a Problem, not a function taking arguments"
            )
        return obj
    if callable(obj):
        return _call(obj, args, spec)
    raise ConfigError(
        "problem",
        f"{spec} is {_a(type(obj).__name__)}; expected a jaxlab.Problem or a function returning one",
    )


def _call(factory, args: dict, spec: str) -> Problem:
    try:
        inspect.signature(factory).bind(**args)
    except TypeError as e:
        raise ConfigError("problem_args", f"{spec}: {e}") from None
    try:
        made = factory(**{k: tuple(v) if isinstance(v, list) else v for k, v in args.items()})
    except ConfigError:
        raise
    except Exception as e:  # the user's factory: its own message, its own location
        raise ConfigError("problem", f"{spec}(**problem_args) raised {_where(e)}") from None
    if not isinstance(made, Problem):
        raise ConfigError(
            "problem", f"{spec} returned {_a(type(made).__name__)}, not a jaxlab.Problem"
        )
    return made


def _a(name: str) -> str:
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"  # "an int", "a dict"


def _where(e: BaseException) -> str:
    import traceback

    frames = traceback.extract_tb(e.__traceback__)
    at = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(e).__name__}: {e}{at}"


def _import(module: str, attr: str, base: Path | None):
    if base is not None and str(base) not in sys.path:
        sys.path.insert(0, str(base))
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module or module.startswith(f"{e.name}."):
            where = f" (looked in {base} and sys.path)" if base is not None else ""
            raise ConfigError("problem", f"no module named {module!r}{where}") from None
        raise ConfigError("problem", f"importing {module} raised {_where(e)}") from None
    except Exception as e:
        raise ConfigError("problem", f"importing {module} raised {_where(e)}") from None
    if not hasattr(mod, attr):
        names = [n for n in dir(mod) if not n.startswith("_")]
        raise ConfigError(
            "problem", f"module {module!r} has no attribute {attr!r}{did_you_mean(attr, names)}"
        )
    return getattr(mod, attr)


def import_attribute(text: str, param: str, base: Path | None = None):
    """The object ``"module:attribute"`` names (one-line ConfigError naming ``param``)."""
    module, _, attr = text.partition(":")
    try:
        return _import(module, attr, base)
    except ConfigError as e:
        raise ConfigError(param, str(e).partition(": ")[2]) from None


def source_hash(spec) -> str | None:
    """sha256 of the source file of the module a ``"module:attribute"`` problem lives in (None
    for built-ins and Problem objects)."""
    if not isinstance(spec, str) or ":" not in spec:
        return None
    mod = sys.modules.get(spec.partition(":")[0])
    path = getattr(mod, "__file__", None)
    if not path:
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
