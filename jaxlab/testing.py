"""The helpers every three-way gradient check in jaxlab shares (``jaxlab gradcheck`` imports them
from here; checks of users' problems will use them too).

Error measure (one definition, :func:`rel_error`)::

    err(a, b) = ||a - b||_2 / max(||a||_2, ||b||_2, floor)

per gradient vector (norm-wise, so one tiny coordinate near zero does not blow up the ratio); the
worst over the points is reported. ``floor`` guards 0 / 0: ``1e-8`` for gradient vectors, ``1.0``
for scalars (relative above 1, absolute below).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "FD_STEP",
    "PAIRS",
    "TOL_FD",
    "TOL_MANUAL",
    "CheckRecord",
    "compare",
    "failures",
    "fd_grad",
    "format_table",
    "rel_error",
]

FD_STEP = 1e-6
VECTOR_FLOOR = 1e-8
SCALAR_FLOOR = 1.0
PAIRS = ("manual~autodiff", "manual~fd", "autodiff~fd")
TOL_MANUAL = 1e-10
TOL_FD = 1e-6
# Each check program runs once on a few thousand points: compile time dominates, so skip XLA's
# backend optimisations (halves the compile of jaxlab gradcheck's programs, the run stays ~30 ms).
_FAST_COMPILE = {"xla_backend_optimization_level": 0}


class CheckRecord(NamedTuple):
    """One comparison: which ``check`` (e.g. ``"network (2, 2, 1) lab"``), which ``pair`` of
    gradients, the worst :func:`rel_error` over ``n`` random points."""

    check: str
    pair: str
    error: float
    n: int

    @property
    def tol_kind(self) -> str:
        """``"manual"`` for exact-vs-exact pairs, ``"fd"`` for those involving differences."""
        return "fd" if "fd" in self.pair else "manual"


def rel_error(a, b, floor: float = VECTOR_FLOOR) -> np.ndarray:
    """``||a - b|| / max(||a||, ||b||, floor)`` over the last axis; ``a``, ``b`` (..., k).
    Computed on the host in float64 (NumPy); a NaN anywhere gives ``inf``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    num = np.linalg.norm(a - b, axis=-1)
    den = np.maximum(np.maximum(np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)), floor)
    err = num / den
    return np.where(np.isnan(err), np.inf, err)


def fd_grad(f: Callable, x, h: float = FD_STEP) -> jax.Array:
    """Central differences of scalar ``f`` at ``x`` (k,): ``(f(x + h e_i) - f(x - h e_i)) / 2h``,
    vmapped over the coordinates ``i``. Returns (k,)."""
    basis = jnp.eye(x.shape[-1], dtype=x.dtype) * h
    diff = jax.vmap(lambda e: f(x + e) - f(x - e))(basis)
    return diff / (2.0 * h)


def compare(check: str, grads: dict, floor: float = VECTOR_FLOOR) -> list[CheckRecord]:
    """Records for every pair in :data:`PAIRS` of ``grads`` (``{"manual", "autodiff", "fd"}`` to
    arrays (n, k)); the worst error over the ``n`` rows."""
    out = []
    for pair in PAIRS:
        a, b = pair.split("~")
        err = rel_error(grads[a], grads[b], floor)
        worst = float(np.max(err))
        out.append(CheckRecord(check, pair, worst, int(np.shape(grads[a])[0])))
    return out


def failures(records, tol_manual: float = TOL_MANUAL, tol_fd: float = TOL_FD) -> list[CheckRecord]:
    """The records whose error exceeds their tolerance (``tol_fd`` for pairs with ``fd``); a NaN
    error (nothing measured) fails."""
    return [r for r in records if not r.error <= (tol_fd if r.tol_kind == "fd" else tol_manual)]


def format_table(records, tol_manual: float = TOL_MANUAL, tol_fd: float = TOL_FD) -> str:
    """One line per record: check, pair, worst error, tolerance, PASS/FAIL."""
    bad = set(failures(records, tol_manual, tol_fd))
    width = max([len(r.check) for r in records] + [5])
    lines = [f"{'check':<{width}}  {'pair':<16} {'n':>5}  {'worst err':>10}  {'tol':>7}  result"]
    for r in records:
        tol = tol_fd if r.tol_kind == "fd" else tol_manual
        res = "FAIL" if r in bad else "PASS"
        lines.append(
            f"{r.check:<{width}}  {r.pair:<16} {r.n:>5}  {r.error:>10.3e}  {tol:>7.0e}  {res}"
        )
    return "\n".join(lines)
