"""Experiment trackers: a finished sweep logged as ONE tracker run (never one per restart: those
tools slow down past a few thousand runs).

:func:`log_mlflow` logs the resolved config as params, the best cell's settings (params
``best.NAME``) and its rate and interval, the overall rate and counts as metrics, and the run
directory's ``cells.csv``, ``config.toml``, ``meta.json``, figures and ``report.html`` as
artifacts. Where the run goes is MLflow's own setting (``MLFLOW_TRACKING_URI``,
``MLFLOW_EXPERIMENT_NAME``). ``mlflow`` is an optional extra (``pip install 'jaxlab[mlflow]'``),
imported only when a sweep is logged.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import numpy as np

from jaxlab.aggregate import best_index
from jaxlab.errors import ConfigError, check_choice

__all__ = ["TRACKERS", "check_tracker", "log_mlflow", "log_result"]

TRACKERS = ("mlflow",)
PARAM_CHARS = 500  # a longer value (a long list of grid values, the points) is summarised
ARTIFACTS = ("cells.csv", "config.toml", "meta.json", "report.html")


def check_tracker(name: str) -> None:
    """Raise a one-line ConfigError (``log``) unless ``name`` is a known tracker whose package is
    installed; imports nothing (a sweep checks this before it starts)."""
    check_choice("log", name, TRACKERS)
    if importlib.util.find_spec(name) is None:
        raise ConfigError(
            "log", f"{name} is not installed; install it with: pip install 'jaxlab[{name}]'"
        )


def _param(value) -> str:
    text = str(value)
    if len(text) <= PARAM_CHARS:
        return text
    n = f"{len(value)} values, " if isinstance(value, list | dict) else ""
    return f"{n}{text[: PARAM_CHARS - 40]}... (in full in config.toml)"


def _params(result) -> dict[str, str]:
    from jaxlab.config import config_hash, to_dict

    cfg = result.config
    d = to_dict(cfg)
    out = {k: _param(v) for k, v in d.items() if k != "points"}
    if cfg.points is not None:
        out["points"] = f"{cfg.n_cells} points of {', '.join(n for n, _ in cfg.points)}"
    out["config_hash"] = config_hash(cfg)
    c = result.cells
    best = best_index(c["success_rate"], c["ci_low"])
    if best is not None:
        for a in cfg.axes:
            out[f"best.{a.name}"] = _param(c[a.name][best])
        if "point" in c:
            out["best.point"] = str(int(c["point"][best]))
    return out


def _metrics(result) -> dict[str, float]:
    c = result.cells
    n, k = int(np.sum(c["n_runs"])), int(np.sum(c["n_success"]))
    out = {
        "overall_success_rate": k / n if n else float("nan"),
        "total_runs": float(n),
        "n_success": float(k),
        "n_cells": float(len(c["n_runs"])),
        "n_diverged": float(np.sum(c["n_diverged"])),
    }
    best = best_index(c["success_rate"], c["ci_low"])
    if best is not None:
        for name in ("success_rate", "ci_low", "ci_high", "median_steps"):
            out[f"best_{name}"] = float(c[name][best])
    t = result.meta.get("timings", {})
    for name in ("compile_s", "run_s_this_session", "restarts_per_s"):
        if isinstance(t.get(name), int | float):
            out[name] = float(t[name])
    return out


def log_mlflow(result, run_name: str | None = None) -> str:
    """Log ``result`` (a :class:`~jaxlab.SweepResult`) as one MLflow run; return its run id.
    A sweep without a run directory logs its ``cells.csv`` from a temporary folder."""
    import mlflow

    from jaxlab.results import write_csv

    with mlflow.start_run(run_name=run_name or result.config.name) as run:
        mlflow.log_params(_params(result))
        mlflow.log_metrics(_metrics(result))
        mlflow.set_tag("jaxlab.run_dir", str(result.run_dir or ""))
        if result.run_dir is not None:
            d = Path(result.run_dir)
            for p in [d / n for n in ARTIFACTS] + sorted(d.glob("*.png")):
                if p.is_file():
                    mlflow.log_artifact(str(p))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                write_csv(Path(tmp) / "cells.csv", result.cells)
                mlflow.log_artifact(str(Path(tmp) / "cells.csv"))
        return run.info.run_id


def log_result(tracker: str, result) -> str:
    """Log ``result`` to ``tracker`` (one of :data:`TRACKERS`); its run id."""
    check_tracker(tracker)
    return {"mlflow": log_mlflow}[tracker](result)
