"""User-facing errors and the validators that raise them.

Every check runs in Python, at the boundary, before anything is traced. A failed check raises
:class:`ConfigError` whose message is one line naming the parameter, the value received and what
is allowed; the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from numbers import Real

__all__ = [
    "ConfigError",
    "check_choice",
    "check_finite_positive",
    "check_int",
    "did_you_mean",
]


class ConfigError(ValueError):
    """A bad argument, flag or config value. ``str(err)`` is a single line for the user."""

    def __init__(self, param: str, message: str):
        self.param = param
        text = f"{param}: {message}"
        # One line whatever it quotes (a TOML key or a file name may hold a newline).
        super().__init__(text.replace("\r", "\\r").replace("\n", "\\n"))


def did_you_mean(name: str, allowed: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest allowed name, or an empty string."""
    close = difflib.get_close_matches(str(name), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_finite_positive(param: str, value, *, allow_zero: bool = False) -> float:
    """Return ``float(value)``; raise unless it is a finite real number > 0 (>= 0 if allowed)."""
    bound = ">= 0" if allow_zero else "> 0"
    if not _is_real(value):
        raise ConfigError(param, f"expected a finite number {bound}, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ConfigError(param, f"expected a finite number {bound}, got {value!r}")
    return v


def check_int(param: str, value, *, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``int(value)``; raise unless it is an integer in ``[lo, hi]``."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and (lo is None or value >= lo) and (hi is None or value <= hi):
        return int(value)
    lo_s = "-inf" if lo is None else str(lo)
    hi_s = "inf" if hi is None else f"{hi:,}"
    raise ConfigError(param, f"expected an integer in [{lo_s}, {hi_s}], got {value!r}")


def check_choice(param: str, value, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``; raise with a "did you mean" hint otherwise."""
    allowed = list(allowed)
    if isinstance(value, str) and value in allowed:
        return value
    hint = did_you_mean(value, allowed) if isinstance(value, str) else ""
    raise ConfigError(param, f"unknown value {value!r}{hint}; allowed: {', '.join(allowed)}")
