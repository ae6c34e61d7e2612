"""Optuna's ask-and-tell on top of point-list sweeps: a batch of trials in one compiled call.

:func:`optimize` asks a study for ``batch_size`` trials at a time, sweeps them as points (each
trial a cell of ``n_runs`` restarts, :mod:`jaxlab.points`) and tells each trial its cell's
success rate, or another column of ``cells.csv``. Only traced settings are searched: every batch
has the same static combination and the same shapes, so the program compiled for the first batch
runs every later one (no recompilation). Each batch's restarts use their own seed (``seed +
batch``), so no two trials share keys.

``optuna`` is an optional extra (``pip install 'jaxlab[optuna]'``), imported only here.
"""

from __future__ import annotations

import math
from dataclasses import replace

from jaxlab.config import SweepConfig
from jaxlab.errors import ConfigError, check_int, did_you_mean

__all__ = ["optimize"]


def _distributions(space: dict, cfg: SweepConfig) -> dict:
    """Optuna distributions of ``space`` (a distribution, or ``(low, high)`` / ``(low, high,
    "log")``), each name a traced setting of ``cfg``'s problem."""
    import optuna

    known = cfg.schema
    if not isinstance(space, dict) or not space:
        raise ConfigError(
            "space", f"expected {{name: distribution}} of traced settings, got {space!r}"
        )
    out = {}
    for name, d in space.items():
        if name not in known:
            raise ConfigError(
                str(name),
                f"unknown setting{did_you_mean(name, known)}; settings: {', '.join(known)}",
            )
        if not known[name].traced:
            traced = [n for n, s in known.items() if s.traced]
            raise ConfigError(
                name,
                "static: each value would compile its own program; search the traced settings "
                f"({', '.join(traced)}) and fix {name} in the base config",
            )
        if isinstance(d, tuple | list) and len(d) in (2, 3):
            log = len(d) == 3 and d[2] == "log"
            if len(d) == 3 and d[2] not in ("log", "lin"):
                raise ConfigError(name, f"expected (low, high[, 'log' | 'lin']), got {d!r}")
            d = optuna.distributions.FloatDistribution(float(d[0]), float(d[1]), log=log)
        if not isinstance(
            d, optuna.distributions.FloatDistribution | optuna.distributions.IntDistribution
        ):
            raise ConfigError(
                name, f"expected an optuna Float/IntDistribution or (low, high[, 'log']), got {d!r}"
            )
        out[name] = d
    return out


def optimize(
    study,
    base_config: SweepConfig,
    space: dict,
    n_batches: int,
    batch_size: int,
    objective: str = "success_rate",
    n_devices: int | None = None,
) -> list:
    """Run ``n_batches`` batches of ``batch_size`` trials of ``study`` (an ``optuna.Study``
    whose direction suits ``objective``); return each batch's :class:`~jaxlab.SweepResult` (its
    cells in the order the trials were asked, ``cells["point"]`` their index in the batch).

    ``space`` maps traced settings to what Optuna samples: an ``optuna.distributions``
    Float/IntDistribution or ``(low, high)`` / ``(low, high, "log")``. Every other setting of
    ``base_config`` must have one value. ``objective``: the cells column each trial is told
    (``success_rate``, ``ci_low``, ``median_steps``, ``mean_<metric>`` ...); a NaN (no finite
    value) tells the trial it failed.
    """
    import optuna

    from jaxlab import validate
    from jaxlab.sweep import run_sweep

    if not isinstance(base_config, SweepConfig):
        raise ConfigError("base_config", f"expected a SweepConfig, got {base_config!r}")
    check_int("n_batches", n_batches, lo=1)
    check_int("batch_size", batch_size, lo=1)
    dists = _distributions(space, base_config)
    metrics = validate.output_names(base_config)[0]
    columns = validate.CELL_COLUMNS + [f"{k}_{m}" for m in metrics for k in ("mean", "min", "max")]
    if objective not in columns:
        raise ConfigError(
            "objective",
            f"not a cells column{did_you_mean(objective, columns)}; columns: {', '.join(columns)}",
        )
    results = []
    for b in range(n_batches):
        trials = [study.ask(dists) for _ in range(batch_size)]
        rows = [{n: t.params[n] for n in dists} for t in trials]
        cfg = replace(base_config, points=rows, seed=base_config.seed + b).validate()
        res = run_sweep(cfg, progress=False, n_devices=n_devices)
        for t, v in zip(trials, res.cells[objective]):
            v = float(v)
            if math.isfinite(v):
                study.tell(t, v)
            else:
                study.tell(t, state=optuna.trial.TrialState.FAIL)
        results.append(res)
    return results
