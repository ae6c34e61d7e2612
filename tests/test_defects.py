"""Regression tests for silent wrong numbers (issue 10): float64 that ran in float32, steps
binned with the wrong budget, "the same restarts" that were not, finite parameters called
diverged, lookups that failed or snapped, a stopping rule that could not be switched off, and
bounds printed less exactly than they are.

The user's path is tested the user's way: the CLI in a subprocess whose JAX settings are the
defaults (x64 off, one device per core), compared with the same config run in this process
(x64 on, 8 devices): a sweep's results must not depend on the process it runs in.
"""

import hashlib
import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest

from jaxlab import aggregate as A
from jaxlab import engine
from jaxlab.cli import main, make_parser
from jaxlab.config import SweepConfig, from_toml, to_toml
from jaxlab.descent import Status, descend
from jaxlab.errors import ConfigError
from jaxlab.loop import RunOut
from jaxlab.presets import preset
from jaxlab.sweep import cells_table, load_run, run_sweep, write_csv


def _jaxlab(args, env, cwd, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "jaxlab", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _csv_text(table: dict, tmp_path: Path) -> str:
    p = tmp_path / f"t{len(list(tmp_path.iterdir()))}.csv"
    write_csv(p, table)
    return p.read_text()


# --- item 1: float64 is float64 ---------------------------------------------------------------
def _float32_representable(x: np.ndarray) -> bool:
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return bool(np.all(x.astype(np.float32).astype(np.float64) == x))


def test_float64_cli_in_a_clean_process_computes_in_float64(tmp_path, env):
    """`jaxlab sweep --dtype float64` from a process with JAX's default settings (x64 off):
    no truncation warning, per-run losses that float32 cannot hold, meta.json says float64,
    and the same bytes as the same config run in this (x64-on, 8-device) process."""
    out = tmp_path / "f64"
    args = ["sweep", "--dtype", "float64", "--n-runs", "40", "--lr", "0.5,2", "--scale", "1",
            "--max-steps", "200"]  # fmt: skip
    p = _jaxlab([*args, "--keep-runs", "--out", str(out), "--no-figures", "--quiet"], env, tmp_path)
    assert p.returncode == 0, p.stderr
    assert "truncated" not in p.stderr and "Warning" not in p.stderr, p.stderr
    meta = json.loads((out / "meta.json").read_text())
    assert meta["dtype"] == "float64"
    runs = load_run(out).runs
    assert not _float32_representable(runs["final_loss"])
    # The float32 sweep of the same restarts differs (it did not before: byte-identical).
    cfg32 = replace(from_toml((out / "config.toml").read_text()), dtype="float32")
    r32 = run_sweep(cfg32, None, figures=False, progress=False)
    assert not np.array_equal(r32.runs["final_loss"], runs["final_loss"])
    r64 = run_sweep(from_toml((out / "config.toml").read_text()), None, figures=False)
    assert _csv_text(r64.cells, tmp_path) == (out / "cells.csv").read_text()
    np.testing.assert_array_equal(r64.runs["final_loss"], runs["final_loss"])


def test_float64_python_api_in_a_clean_process(tmp_path, env):
    """run_sweep(SweepConfig(dtype="float64")) from plain Python, warnings as errors."""
    code = (
        "import numpy as np, jaxlab\n"
        "cfg = jaxlab.SweepConfig(dtype='float64', n_runs=20, keep_runs=True)"
        ".with_settings(lr=[1.0], scale=[1.0])\n"
        "res = jaxlab.run_sweep(cfg, None, figures=False, progress=False)\n"
        "x = np.asarray(res.runs['final_loss'])\n"
        "assert res.meta['dtype'] == 'float64', res.meta['dtype']\n"
        "assert np.any(x.astype(np.float32).astype(np.float64) != x)\n"
        "print('ok')\n"
    )
    p = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


def test_float32_sweep_ignores_the_global_x64_setting(tmp_path):
    """This process has x64 on; a float32 sweep computes as in a default process (x64 off):
    the default sweep's cells.csv, pinned (0 of 1,000 has ci_low exactly 0 instead of 2.2e-19;
    re-pinned, from a default process, when each point's delta became one division: 6 of the
    99,000 restarts changed success)."""
    assert jax.config.jax_enable_x64
    res = run_sweep(preset("lab"), None, figures=False, progress=False)
    assert res.meta["dtype"] == "float32"
    text = _csv_text(res.cells, tmp_path)
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert digest == "04abb24405fb09cb9d1981b7bf94caf413e7c5c6e97eeae949afc84d30774f1f"


# --- item 2 and the differential matrix -------------------------------------------------------
def _check_against_runs(res) -> None:
    """Every aggregate of cells.csv equals what the per-run records give: counts exactly,
    step quantiles to their bin (exact up to 1000 steps), loss quantiles within one bin."""
    cfg, c, r = res.config, res.cells, res.runs
    cell = np.asarray(r["cell"])
    budgets = (
        c["max_steps"]
        if "max_steps" in c
        else np.full(cfg.n_cells, cfg.setting("max_steps").values[0])
    )
    for i in range(cfg.n_cells):
        m = cell == i
        status, steps = np.asarray(r["status"])[m], np.asarray(r["steps"])[m]
        loss, ok = np.asarray(r["final_loss"])[m], np.asarray(r["success"])[m].astype(bool)
        assert c["n_runs"][i] == m.sum()
        np.testing.assert_array_equal(ok, (status != Status.DIVERGED) & (loss < cfg.threshold))
        assert c["n_success"][i] == ok.sum()
        for s in Status:
            assert c[f"n_{s.name.lower()}"][i] == np.sum(status == s)
        rate, lo, hi = A.rate_ci(ok.sum(), m.sum())
        assert (c["success_rate"][i], c["ci_low"][i], c["ci_high"][i]) == (rate, lo, hi)
        width = max(1.0, budgets[i] / 1000)
        srt = np.sort(steps)
        for q, name in ((0.1, "p10_steps"), (0.5, "median_steps"), (0.9, "p90_steps")):
            true = srt[max(math.ceil(q * len(srt)), 1) - 1]
            assert c[name][i] <= true < c[name][i] + width, (name, i, c[name][i], true)
            if width == 1.0:
                assert c[name][i] == true
        finite = np.sort(loss[status != Status.DIVERGED])
        for q, name in (
            (0.1, "p10_final_loss"),
            (0.5, "median_final_loss"),
            (0.9, "p90_final_loss"),
        ):
            if not len(finite):
                assert np.isnan(c[name][i])
                continue
            true = finite[max(math.ceil(q * len(finite)), 1) - 1]
            got = c[name][i]
            if true < 1e-12:
                assert got == 0.0
            elif true >= 1e4:
                assert got == np.inf  # above the last bin: reported as inf
            else:  # within one bin (a float32 rounding at an edge moves it at most one bin)
                assert 10 ** (-1 / 20) <= got / true <= 10 ** (1 / 20), (name, i, got, true)


NET = SweepConfig(n_runs=24, keep_runs=True, keys="paired", chunk_size=64)
OBJ = SweepConfig(
    problem="objective", threshold=1e-2, n_runs=24, keep_runs=True, keys="paired", chunk_size=64
)
# Static axes alone and in pairs (network: dataset x widths x max_steps, widths x optimizer,
# dataset x optimizer; objective: objective x optimizer x max_steps), both dtypes, both
# gradient methods, both losses. Each static combination is a compile, the cost of these tests:
# the four network axes are crossed in pairs and threes rather than all at once (16 programs).
MATRIX = [
    ("net-static", NET, {"dataset": ["lab", "xor"], "widths": [[2, 2, 1], [2, 3, 1]], "optimizer": "adam", "max_steps": [30, 300], "lr": 2.0, "scale": [0.5, 2.0]}),
    ("net64-manual-logit-widths-optimizer", replace(NET, dtype="float64", method="manual"), {"loss": "logit", "widths": [[2, 2, 1], [2, 4, 1]], "optimizer": ["gd", "momentum"], "lr": 2.0, "scale": [1.0, 2.0]}),
    ("net64-dataset-optimizer", replace(NET, dtype="float64"), {"dataset": ["lab", "xor"], "optimizer": ["gd", "adam"], "lr": [1.0, 3.0], "scale": 1.0}),
    ("obj-all-static", OBJ, {"objective": ["lab", "himmelblau"], "optimizer": ["gd", "momentum"], "max_steps": [20, 500], "lr": [0.01, 0.1]}),
    ("obj64-manual-objective-max_steps", replace(OBJ, dtype="float64", method="manual"), {"objective": ["booth", "rosenbrock"], "max_steps": [20, 2000], "lr": 0.002}),
]  # fmt: skip


@pytest.mark.parametrize("name,base,settings", MATRIX, ids=[m[0] for m in MATRIX])
def test_differential_matrix(name, base, settings):
    """For static axes alone and in pairs, both dtypes and both gradient methods: cells.csv
    agrees with the per-run records, and each static combination's cells and runs equal the
    same cells swept alone (paired keys: restart i of a cell is the same restart wherever the
    cell sits in the grid)."""
    cfg = base.with_settings(**settings)
    res = run_sweep(cfg, None, n_devices=2, figures=False, progress=False)
    assert res.meta["dtype"] == cfg.dtype
    _check_against_runs(res)
    static = [a for a in cfg.axes if not a.traced]
    assert static
    combos = list(np.ndindex(*[len(a.values) for a in static]))
    # Swept alone: the last combination (the furthest from the start of the grid) and the first
    # (with the smallest step budget, binned apart from the sweep's largest).
    for combo in {combos[0], combos[-1]}:
        fixed = {a.name: a.values[j] for a, j in zip(static, combo)}
        # Same devices and chunk size: the cached programs (device counts are tested apart).
        alone = run_sweep(
            cfg.with_settings(**fixed), None, n_devices=2, figures=False, progress=False
        )
        mask = np.ones(cfg.n_cells, bool)
        for a, j in zip(static, combo):
            want = "-".join(map(str, a.values[j])) if a.name == "widths" else a.values[j]
            mask &= res.cells[a.name] == want
        for col, v in alone.cells.items():
            np.testing.assert_array_equal(res.cells[col][mask], v, err_msg=f"{fixed} {col}")
        rows = np.isin(res.runs["cell"], np.flatnonzero(mask))
        for col in ("final_loss", "steps", "status"):
            np.testing.assert_array_equal(res.runs[col][rows], alone.runs[col], err_msg=col)


def test_max_steps_axis_cli(tmp_path, env):
    """`--max-steps 100,1000` ran into a broadcast error; `2000,3000` binned the 2000-step cells
    with the 3000-step bins. Now each budget's cells read as that budget swept alone."""
    out = tmp_path / "ms"
    p = _jaxlab(
        ["sweep", "--max-steps", "100,1000", "--n-runs", "50", "--lr", "1,4", "--scale", "1",
         "--out", str(out), "--no-figures", "--quiet", "--keep-runs"], env, tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    _check_against_runs(load_run(out))


def test_steps_binned_with_each_cells_own_budget():
    """The aggregation of a 2000-step chunk into a table sized for 3000 steps keeps the
    2000-step bins (width 2), not the 3000-step ones (width 3)."""
    steps = jnp.array([256, 257, 1999], jnp.int32)
    out = RunOut(jnp.zeros(3), steps, jnp.zeros(3, jnp.int32), jnp.zeros(3, bool), {}, {})
    agg = A.chunk_aggregates(out, jnp.zeros(3, jnp.int32), jnp.ones(3, jnp.int32), 1, 2000, 1001)
    hist = np.asarray(agg.steps_hist[0])
    assert hist.shape == (1001,) and hist[128] == 2 and hist[999] == 1
    with pytest.raises(ValueError, match="step_bins"):
        A.chunk_aggregates(out, jnp.zeros(3, jnp.int32), jnp.ones(3, jnp.int32), 1, 2000, 101)


# --- item 3: paired keys ----------------------------------------------------------------------
def test_paired_keys_start_every_cell_from_the_same_restarts():
    cfg = SweepConfig(n_runs=30, keep_runs=True, keys="paired").with_settings(
        lr=[0.5, 1.0, 2.0], scale=1.0, max_steps=1
    )
    assert list(engine.key_index(cfg, [0, 29, 30, 31, 89])) == [0, 29, 0, 1, 29]
    ind = replace(cfg, keys="independent")
    assert list(engine.key_index(ind, [0, 29, 30, 89])) == [0, 29, 30, 89]
    plan = engine.make_plan(cfg)
    starts = [engine.replay(plan, g, trajectory=True)[2].trajectory[0] for g in (3, 33, 63)]
    for s in starts[1:]:
        for a, b in zip(jax.tree.leaves(starts[0]), jax.tree.leaves(s)):
            np.testing.assert_array_equal(a[0], b[0])  # the same start point in every cell
    plan_i = engine.make_plan(ind)
    a = engine.replay(plan_i, 3, trajectory=True)[2].trajectory[0]
    b = engine.replay(plan_i, 33, trajectory=True)[2].trajectory[0]
    assert not all(
        np.array_equal(x[0], y[0]) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


def test_paired_keys_invariant_to_chunks_and_devices():
    """Also for Adam, whose last bits once depended on the device count (XLA rewrote optax's
    bias-correction division into a multiplication on 2 devices, not on 1)."""
    cfg = SweepConfig(n_runs=20, keep_runs=True, keys="paired").with_settings(
        optimizer="adam", lr=[0.5, 2.0], scale=1.0, max_steps=40
    )
    ref = run_sweep(replace(cfg, chunk_size=1000), None, n_devices=1, figures=False)
    for chunk, nd in ((16, 8),):
        got = run_sweep(replace(cfg, chunk_size=chunk), None, n_devices=nd, figures=False)
        for k in ref.runs:
            np.testing.assert_array_equal(np.asarray(got.runs[k]), np.asarray(ref.runs[k]))
    # ... and the configs differ (and hash differently) from independent keys
    assert 'keys = "paired"' in to_toml(cfg)
    assert from_toml(to_toml(cfg)).keys == "paired"


def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's own errors
        return e.code


def test_keys_bad_value_one_line(tmp_path, capsys):
    assert _exit_code(["sweep", "--keys", "pairs", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "keys" in err and "paired" in err and "did you mean" in err
    assert not (tmp_path / "o").exists()


# --- item 5: finite parameters at the edges of the float range ---------------------------------
@pytest.mark.parametrize("dtype,big", [("float32", 3e38), ("float64", 1.7e308)])
def test_huge_finite_parameters_are_not_diverged(dtype, big):
    def vg(p):  # a flat objective: the value is finite, the gradient zero
        return jnp.zeros((), p[0].dtype), jax.tree.map(jnp.zeros_like, p)

    with engine.precision(dtype):
        p = (jnp.asarray(big, dtype), jnp.asarray(big, dtype), jnp.asarray(-big, dtype))
        res = jax.jit(lambda p: descend(vg, p, optax.sgd(1.0), max_steps=3))(p)
        assert int(res.status) != Status.DIVERGED
        bad = (p[0], jnp.asarray(jnp.inf, dtype), p[2])
        assert int(descend(vg, bad, optax.sgd(1.0), max_steps=3).status) == Status.DIVERGED
        nan = (p[0], p[1], jnp.asarray(jnp.nan, dtype))
        assert int(descend(vg, nan, optax.sgd(1.0), max_steps=3).status) == Status.DIVERGED


# --- items 7 and 9: lookups -------------------------------------------------------------------
@pytest.fixture(scope="module")
def widths_res():
    cfg = SweepConfig(n_runs=10).with_settings(
        widths=[[2, 2, 1], [2, 4, 1]], lr={"log": [0.1, 10.0, 3]}, scale=1.0, max_steps=5
    )
    return run_sweep(cfg, None, figures=False, progress=False)


def test_select_in_the_configs_spellings(widths_res):
    a = widths_res.select(widths=[2, 4, 1])
    b = widths_res.select(widths="2-4-1")
    c = widths_res.select(widths=(2, 4, 1))
    for x in (b, c):
        for k in a.cells:
            np.testing.assert_array_equal(a.cells[k], x.cells[k])
    assert a.config.setting("widths").values == ((2, 4, 1),)
    assert len(a.cells["n_runs"]) == 3


@pytest.mark.parametrize(
    "call,text",
    [
        (lambda r: r.cell(typo=1.0), "typo: unknown setting"),
        (lambda r: r.cell(lrr=1.0, widths="2-2-1"), "did you mean 'lr'"),
        (lambda r: r.select(widths=[2, 3, 1]), "widths: (2, 3, 1) is not on the grid"),
        (lambda r: r.select(optimizer="adam"), "optimizer: not an axis of this sweep"),
        (lambda r: r.cell(lr=0.9, widths="2-2-1"), "lr: 0.9 is not on the grid; nearest values: 0.1, 1.0"),
        (lambda r: r.cell(lr=1.0), "2 cells match"),
        (lambda r: r.cell(lr="x", widths="2-2-1"), "lr: expected a number"),
    ],
)  # fmt: skip
def test_lookup_errors_are_one_line(widths_res, call, text):
    with pytest.raises(ConfigError) as e:
        call(widths_res)
    assert text in str(e.value) and "\n" not in str(e.value)


def test_cell_never_snaps_unless_asked(widths_res):
    row = widths_res.cell(lr=1.0, widths=[2, 2, 1])
    assert row["lr"] == 1.0 and row["widths"] == "2-2-1"
    assert widths_res.cell(lr=0.9, widths="2-2-1", nearest=True)["lr"] == 1.0
    assert widths_res.cell(lr=5.0, widths="2-2-1", nearest=True)["lr"] == 10.0  # log spacing
    assert widths_res.cell(lr=1.0 + 1e-12, widths="2-2-1")["lr"] == 1.0  # as written in csv


# --- item 11: the stopping rule switched off ---------------------------------------------------
def test_tol_off_cli(tmp_path, env):
    out = tmp_path / "off"
    p = _jaxlab(
        ["sweep", "--tol", "off", "--optimizer", "momentum", "--n-runs", "30", "--lr", "0.5",
         "--scale", "1,2", "--max-steps", "40", "--out", str(out), "--no-figures", "--quiet",
         "--keep-runs"], env, tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    res = load_run(out)
    assert res.config.tol == "off" and 'tol = "off"' in (out / "config.toml").read_text()
    st = np.asarray(res.runs["status"])
    assert set(np.unique(st)) <= {Status.MAX_STEPS, Status.DIVERGED}
    assert np.all(np.asarray(res.runs["steps"])[st == Status.MAX_STEPS] == 40)
    # With the rule, momentum stalls at the first rise of the loss.
    ruled = run_sweep(replace(res.config, tol=1e-4), None, figures=False, progress=False)
    assert ruled.cells["n_stalled"].sum() > 0


@pytest.mark.parametrize("value", ["-1", "-inf", "nan", "abc", "inf"])
def test_tol_bad_values(tmp_path, capsys, value):
    assert _exit_code(["sweep", f"--tol={value}", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "tol" in err and "off" in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_tol_off_in_the_library():
    def vg(x):
        return jnp.sum(x**2), 2 * x

    x0 = jnp.array([1.0, 1.0])
    r = descend(vg, x0, optax.sgd(0.1), max_steps=50, tol=None)
    assert int(r.steps) == 50 and int(r.status) == Status.MAX_STEPS
    assert int(descend(vg, x0, optax.sgd(0.1), max_steps=50, tol="off").steps) == 50
    assert int(descend(vg, x0, optax.sgd(0.1), max_steps=50).steps) < 50
    with pytest.raises(ConfigError, match="tol"):
        descend(vg, x0, optax.sgd(0.1), max_steps=5, tol=-math.inf)


# --- item 12: numbers as exact as they are ------------------------------------------------------
def test_wilson_exact_at_zero_and_all():
    lo, hi = A.wilson(np.array([0, 1000, 5]), np.array([1000, 1000, 10]))
    assert lo[0] == 0.0 and hi[1] == 1.0
    assert 0.0038 < hi[0] < 0.0039 and 0.99 < lo[1] < 1.0
    assert 0 < lo[2] < 0.5 < hi[2] < 1


def test_csv_writes_exact_bounds_and_reads_them_back(tmp_path):
    agg = A.Aggregates.zeros(2, 10)
    agg.n_runs[:] = [1000, 1000]
    agg.n_success[:] = [0, 1000]
    cfg = SweepConfig().with_settings(lr=[1.0, 2.0], scale=1.0, max_steps=10)
    write_csv(tmp_path / "c.csv", cells_table(cfg, agg))
    back = pd.read_csv(tmp_path / "c.csv")
    assert back["ci_low"][0] == 0.0 and back["ci_high"][1] == 1.0
    assert "2.2e-19" not in (tmp_path / "c.csv").read_text()


def test_summary_says_one_cell(tmp_path, capsys):
    out = tmp_path / "one"
    assert (
        main(
            [
                "sweep",
                "--lr",
                "1",
                "--scale",
                "1",
                "--n-runs",
                "20",
                "--out",
                str(out),
                "--no-figures",
            ]
        )
        == 0
    )
    assert "20 restarts in 1 cell," in capsys.readouterr().out


def test_config_toml_lists_only_the_problems_settings():
    text = to_toml(preset("quadratic"))
    assert "scale" not in text and "dataset" not in text and "widths" not in text
    assert from_toml(text) == preset("quadratic")
    net = to_toml(preset("lab"))
    assert "scale" in net and "objective" not in net and "x1" not in net
    with pytest.raises(ConfigError, match="scale: not a setting of problem 'objective'"):
        from_toml('problem = "objective"\nscale = [1.0, 2.0]\n')


# --- item 13: words that are true -------------------------------------------------------------
def test_cli_help_lists_the_registries(monkeypatch):
    from jaxlab import objectives

    monkeypatch.setitem(objectives.OBJECTIVES, "my_bowl", objectives.OBJECTIVES["booth"])
    text = make_parser()._subparsers._group_actions[0].choices["sweep"].format_help()
    assert "my_bowl" in " ".join(text.split())
    for name in ("rosenbrock", "himmelblau", "xor", "adam", "paired", "off"):
        assert name in text


def test_docstrings_say_what_the_code_does():
    from jaxlab import sweep

    for mod in (sweep, engine):
        assert "checkpoints after every chunk" not in (mod.__doc__ or "")
        assert "rewritten after each chunk" not in (mod.__doc__ or "")


# --- run directories written before today still load ------------------------------------------
@pytest.mark.parametrize("name", ["run-v1-lab", "run-v1-quadratic"])
def test_older_run_directories_load_and_plot(tmp_path, name, capsys):
    """Written by the release before problems named their own settings (config hash of the
    old flat settings list, ci_low 2.2e-19 for 0 successes): load_run and jaxlab plot work."""
    import shutil

    d = tmp_path / name
    shutil.copytree(Path(__file__).parent / "data" / name, d)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    res = load_run(d)
    assert len(res.cells["n_runs"]) == res.config.n_cells
    assert main(["plot", str(d)]) == 0
    assert (d / "success_rate.png").is_file()
    for f, data in before.items():
        assert (d / f).read_bytes() == data, f


# --- the built-ins through the public contract: their numbers did not move --------------------
PINNED = [
    ({"problem": "objective", "objective": "lab", "max_steps": 1000, "n_runs": 1,
      "keep_runs": True, "threshold": 1e-2, "lr": {"lin": [0.05, 0.95, 19]},
      "x1": {"lin": [-1.0, 15.0, 9]}, "x2": {"lin": [-5.0, 11.0, 9]}},
     "e5460b22b46123745bb3d974bb704dd9a5305736dca7df5db4bdd3cda5ef5249"),  # --preset quadratic
    ({"optimizer": "gd,momentum,adam", "widths": "2-2-1,2-4-1", "n_runs": 200},
     "c94fe1153f17e2934afc371960b670ee5acb8b4951856a1ee3be53a5b84c57d6"),
    ({"dataset": "xor", "loss": "logit", "method": "manual", "dtype": "float64", "n_runs": 300},
     "1c68c7df9c55e84f2411a827a71ffa219909d2f9b2bf9dec981f9dcbd49ed3e9"),
]  # fmt: skip


@pytest.mark.parametrize("flags,digest", PINNED, ids=["quadratic", "optimizers-widths", "xor64"])
def test_builtin_sweeps_byte_identical_through_the_contract(tmp_path, flags, digest):
    """Hashes of cells.csv as the sweeps gave them before the built-ins became Problems (and
    after this issue's fixes): the lab's default sweep is pinned above, these are the quadratic
    preset, every optimiser x two widths (re-pinned when the lab loss's deltas became one
    division each), and a float64 manual-VJP logit-loss XOR sweep."""
    from jaxlab.config import from_dict

    base = preset("quadratic") if flags.get("problem") == "objective" else preset("lab")
    cfg = from_dict({k: v for k, v in flags.items()}, base=base)
    res = run_sweep(cfg, None, figures=False, progress=False)
    assert hashlib.sha256(_csv_text(res.cells, tmp_path).encode()).hexdigest() == digest
