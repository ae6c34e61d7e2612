"""A sweep's progress, shown where the user is: a bar in a terminal, plain lines in a log, a
live display in a notebook.

* :func:`display_mode`: which of those a stream gets (``"bar"``, ``"lines"``, ``"notebook"``,
  ``"off"``);
* :class:`Progress`: the display itself, updated between chunks (never inside compiled code).

Off a terminal (a Slurm or CI log, a pipe) a line ``jaxlab: 12,000/99,000 restarts (12%),
8,123 restarts/s, ETA 10.7 s`` is written at most every :data:`INTERVAL_S` seconds, and one
more when the sweep ends; ``JAXLAB_PROGRESS_INTERVAL`` (seconds, e.g. ``0`` in tests)
overrides the interval. In Jupyter (an IPython kernel) the display is an HTML progress bar
updated in place (``IPython.display``; nothing is imported unless a kernel is running).
"""

from __future__ import annotations

import html
import math
import os
import sys
import time

from jaxlab.errors import ConfigError

__all__ = ["INTERVAL_S", "Progress", "display_mode", "in_notebook", "interval"]

INTERVAL_S = 30.0  # seconds between plain progress lines (logs); JAXLAB_PROGRESS_INTERVAL overrides
INTERVAL_ENV = "JAXLAB_PROGRESS_INTERVAL"
BAR_S = 0.1  # seconds between redraws of the terminal bar
NOTEBOOK_S = 0.5  # seconds between updates of the notebook display


def interval() -> float:
    """Seconds between plain progress lines: ``$JAXLAB_PROGRESS_INTERVAL`` if set, else
    :data:`INTERVAL_S`. A value that is not a finite number >= 0 is a ConfigError."""
    text = os.environ.get(INTERVAL_ENV)
    if text is None or not text.strip():
        return INTERVAL_S
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v < 0:
        raise ConfigError(INTERVAL_ENV, f"expected seconds, a finite number >= 0, got {text!r}")
    return v


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's ``ZMQInteractiveShell``, which has a kernel)."""
    if "ipykernel" not in sys.modules:  # no kernel running: IPython is never imported
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def display_mode(stream=None, enabled: bool | None = None, notebook: bool | None = None) -> str:
    """How progress is shown on ``stream`` (default ``sys.stderr``): ``"off"`` when
    ``enabled`` is False; ``"bar"`` (one line redrawn with ``\\r``) on a terminal;
    ``"notebook"`` when the stream is the process's stderr inside a Jupyter kernel
    (``notebook``: whether one runs, default :func:`in_notebook`); else ``"lines"``, a plain
    line every :func:`interval` seconds."""
    if enabled is False:
        return "off"
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return "bar"
    if stream is sys.stderr and (in_notebook() if notebook is None else notebook):
        return "notebook"
    return "lines"


def _seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(round(s)), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


class Progress:
    """Restarts done of ``total`` (``already``: done in an earlier session, not counted in the
    rate), their rate and the time left, on ``stream`` (default stderr) as
    :func:`display_mode` chooses; ``enabled=False`` shows nothing. Call :meth:`update` after
    each chunk and :meth:`close` at the end (a last line or redraw)."""

    def __init__(self, total: int, enabled: bool | None = None, stream=None, mode=None):
        self.stream = sys.stderr if stream is None else stream
        self.mode = mode or display_mode(self.stream, enabled)
        self.enabled = self.mode != "off"
        self.every = {"bar": BAR_S, "notebook": NOTEBOOK_S}.get(self.mode, 0.0)
        if self.mode == "lines":
            self.every = interval()
        self.total, self.done, self.already = total, 0, 0
        self.t0 = time.perf_counter()
        self.last = self.t0  # lines: the first one after a whole interval
        self.handle = None

    def update(self, n: int, already: int = 0) -> None:
        self.done += n
        self.already = already
        now = time.perf_counter()
        finished = self.done + already >= self.total
        if not self.enabled or (now - self.last < self.every and not finished):
            return
        if self.mode == "lines" and finished:
            return  # close() writes the last line
        self.last = now
        self._show(now)

    def _numbers(self, now: float):
        rate = self.done / max(now - self.t0, 1e-9)
        left = self.total - self.already - self.done
        eta = left / rate if rate > 0 else math.inf
        return self.already + self.done, rate, eta

    def _show(self, now: float) -> None:
        done, rate, eta = self._numbers(now)
        frac = done / self.total if self.total else 1.0
        if self.mode == "bar":
            bar = "#" * int(30 * frac)
            self.stream.write(
                f"\r[{bar:<30}] {done:,}/{self.total:,} restarts  {rate:,.0f}/s  ETA {eta:5.1f}s "
            )
            self.stream.flush()
        elif self.mode == "lines":
            self.stream.write(
                f"jaxlab: {done:,}/{self.total:,} restarts ({frac:.0%}), {rate:,.0f} restarts/s, "
                f"ETA {_seconds(eta)}\n"
            )
            self.stream.flush()
        elif self.mode == "notebook":
            self._notebook(_View(done, self.total, rate, eta, now - self.t0))

    def _notebook(self, view) -> None:
        from IPython.display import display

        if self.handle is None:
            self.handle = display(view, display_id=True)
        else:
            self.handle.update(view)

    def close(self) -> None:
        """The last report: the terminal bar ends its line; a log gets a line with the
        restarts done, the time and the rate (when any ran); a notebook its final state."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.mode == "bar":
            self.stream.write("\n")
            self.stream.flush()
        elif self.mode == "lines" and self.done:
            done, rate, _ = self._numbers(now)
            what = "done" if done >= self.total else "stopped"
            self.stream.write(
                f"jaxlab: {done:,}/{self.total:,} restarts {what} ({done / self.total:.0%}) in "
                f"{_seconds(now - self.t0)}, {rate:,.0f} restarts/s\n"
            )
            self.stream.flush()
        elif self.mode == "notebook" and (self.done or self.handle is not None):
            done, rate, eta = self._numbers(now)
            self._notebook(_View(done, self.total, rate, eta, now - self.t0, final=True))


class _View:
    """What the notebook shows: an HTML ``<progress>`` bar and the numbers (plain text too)."""

    def __init__(self, done, total, rate, eta, elapsed, final=False):
        self.done, self.total, self.rate, self.eta = done, total, rate, eta
        self.elapsed, self.final = elapsed, final

    def _text(self) -> str:
        frac = self.done / self.total if self.total else 1.0
        head = f"{self.done:,}/{self.total:,} restarts ({frac:.0%}), {self.rate:,.0f} restarts/s"
        if self.final:
            what = "done in" if self.done >= self.total else "stopped after"
            return f"{head}, {what} {_seconds(self.elapsed)}"
        return f"{head}, ETA {_seconds(self.eta)}"

    def __repr__(self) -> str:
        return f"jaxlab sweep: {self._text()}"

    def _repr_html_(self) -> str:
        return (
            f'<div class="jaxlab-progress"><progress value="{self.done}" max="{self.total}" '
            f'style="width: 20em"></progress> <span>jaxlab sweep: {html.escape(self._text())}'
            "</span></div>"
        )
