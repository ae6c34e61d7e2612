"""The public contract between jaxlab and a training problem: :class:`Problem` and
:class:`Outcome`.

A problem is a few pure functions written for ONE run; jaxlab batches them with ``vmap`` at the
edge, shards them over devices and hosts, and owns the loop (optimiser, stopping rule,
statuses)::

    def init(key, s):            # s: this run's settings; traced ones are scalars
        return {"w": s["scale"] * jax.random.normal(key, (s["width"],))}

    def loss(params, s):         # a scalar
        return jnp.mean((X @ params["w"] - Y) ** 2)

    problem = jaxlab.Problem(init=init, loss=loss,
                             traced={"lr": 0.1, "scale": 1.0},   # vmapped: never recompiles
                             static={"width": 8})                 # one compile per value

``s`` maps every setting of the run to its value: the problem's declared ``traced`` settings
(scalars, traced arrays under ``jit``/``vmap``), its ``static`` settings (Python values, usable
as shapes), and jaxlab's own: ``optimizer`` and ``max_steps`` (static), ``lr`` and ``momentum``
(traced, read by the named optimisers).

Optional parts:

* ``grad(params, s) -> (loss, grad)``: a hand-written ``value_and_grad`` (``method =
  "manual"``); ``jax.grad`` of ``loss`` otherwise;
* ``success(outcome, s) -> bool``: the default is "not diverged and final loss below the
  sweep's ``threshold``";
* ``metrics(params, s) -> {name: scalar}``: evaluated once on the final parameters; aggregated
  per cell (mean and quantiles) in ``cells.csv`` and kept per run in the records (``runs/``);
* ``record(params, s) -> {name: scalar}``: per-run values kept in the records (``runs/``) only (e.g. the
  final point of a 2-D objective);
* ``minimum``: the loss's known minimum: reported losses and the threshold are gaps
  ``loss - minimum`` (0 for a loss whose minimum is 0);
* ``train(s, key) -> Outcome``: the lower door, for a problem that owns its whole loop (then
  ``init``, ``loss`` and ``grad`` are unused and jaxlab's optimiser and rule do not apply);
* ``figures``: ``{file name: draw(result, path)}``, the problem's own figures, drawn from the
  run directory's files after the sweep and by ``jaxlab plot``;
* ``prepare``: ``prepare(result) -> None``, computed once when a sweep finishes and stored in
  the run directory, for figures that need more than the tables (jaxlab's network stores
  replayed decision boundaries this way);
* ``checks``: ``{setting: (predicate, allowed text)}`` (or a tuple of allowed names)
  validating values at the boundary;
* ``digests``: ``{setting: value -> str}`` for settings whose values name outside content (a
  data file): the digests go into the config hash, so a resume refuses changed content.

A :class:`Problem` is hashed by identity: the same object is the same compiled program.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["JAXLAB_STATIC", "JAXLAB_TRACED", "Outcome", "Problem"]

#: Settings jaxlab itself reads: the optimiser's name (or function) and the step budget
#: (static), the learning rate and momentum of the named optimisers (traced).
JAXLAB_STATIC = {"optimizer": "gd", "max_steps": 100}
JAXLAB_TRACED = {"lr": 1.0, "momentum": 0.9}


class Outcome(NamedTuple):
    """How one run ended: final ``loss`` (the gap ``loss - minimum``), ``steps`` taken (int32),
    ``status`` (int32 :class:`jaxlab.Status`) and ``metrics`` (``{name: scalar}``)."""

    loss: Any
    steps: Any
    status: Any
    metrics: Mapping[str, Any] = {}


@dataclass(frozen=True, eq=False)
class Problem:
    """A training problem for jaxlab to sweep; see the module docstring for the contract."""

    init: Callable | None = None
    loss: Callable | None = None
    traced: Mapping[str, float] = field(default_factory=dict)
    static: Mapping[str, Any] = field(default_factory=dict)
    grad: Callable | None = None
    success: Callable | None = None
    metrics: Callable | None = None
    record: Callable | None = None
    minimum: float = 0.0
    train: Callable | None = None
    figures: Mapping[str, Callable] = field(default_factory=dict)
    prepare: Callable | None = None
    checks: Mapping[str, tuple] = field(default_factory=dict)
    digests: Mapping[str, Callable] = field(default_factory=dict)
    name: str = "problem"
    describe: Callable | None = None  # (config) -> one line for figure titles
