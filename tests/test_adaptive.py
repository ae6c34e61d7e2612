"""Adaptive sweeps (--ci-width): rounds to a target precision, the same bits for any chunking,
device count or resume (Ctrl-C and SIGKILL mid-round), keys that depend on (cell, index) only,
one compile for every round, bad values refused in one line."""

import json
import subprocess
import sys

import numpy as np
import pytest

from jaxlab import engine, plots
from jaxlab.cli import main
from jaxlab.config import SweepConfig
from jaxlab.confseq import confseq
from jaxlab.facets import facet_tables
from jaxlab.results import load_run
from jaxlab.sweep import SweepInterrupted, run_sweep

GRID = dict(lr=[0.5, 1.0, 4.0], scale=[1.0, 2.0])


def _cfg(**kw):
    base = dict(n_runs=32, ci_width=0.25, max_runs=300)
    base.update(kw)
    return SweepConfig(**base).with_settings(**GRID)


def _same(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.fixture(scope="module")
def reference():
    before = engine.COMPILE_STATS["compiles"]
    res = run_sweep(_cfg(chunk_size=48), None, n_devices=2, progress=False)
    return res, engine.COMPILE_STATS["compiles"] - before


def test_rounds_reach_the_width_with_one_compile(reference):
    res, compiles = reference
    c, ad = res.cells, res.meta["adaptive"]
    n = c["n_runs"]
    # lanes = "auto": a recycled-lanes probe, then the mode it chose; rounds reuse them
    assert ad["rounds"] >= 3 and compiles <= 2
    assert n.min() > 32 and len(set(n.tolist())) >= 4  # cells got what they needed
    lo, hi = confseq(c["n_success"], n)
    np.testing.assert_array_equal(c["cs_low"], lo)
    assert ((hi - lo <= 0.25) | (n == 300)).all()
    assert ad["restarts"] == n.sum() < 6 * 300
    assert "32 to 300 restarts per cell, in rounds until" in plots.describe(res.config)
    (panel,) = facet_tables(res).panels  # the heatmap draws the confidence sequence
    np.testing.assert_array_equal(np.sort(panel.lo.ravel()), np.sort(c["cs_low"]))


def test_same_bits_across_chunks_devices_and_ctrl_c_mid_round(reference, tmp_path, stop_and_resume):
    ref = reference[0].cells
    out = tmp_path / "run"
    cfg = _cfg(chunk_size=16)  # on 8 devices: other chunks, other devices, same bits
    res, stops = stop_and_resume(cfg, out, 20)  # interrupted every 20 chunks: inside rounds
    assert stops >= 2
    _same(ref, res.cells)
    _same(ref, load_run(out).cells)  # cells.csv checked against the confidence sequence


def test_paired_keys_are_the_uniform_sweeps_restarts(reference):
    """With paired keys restart i of a cell is restart i of a uniform paired sweep, so a cell
    that ended with n restarts counts what a uniform sweep of n restarts counts there."""
    res = run_sweep(_cfg(keys="paired", chunk_size=48), None, n_devices=2, progress=False)
    c = res.cells
    j = int(np.argmax(c["n_runs"]))
    assert c["n_runs"][j] > 32
    uni = SweepConfig(n_runs=int(c["n_runs"][j]), keys="paired").with_settings(
        lr=float(c["lr"][j]), scale=float(c["scale"][j])
    )
    u = run_sweep(uni, None, progress=False).cells
    for k in ("n_success", "n_converged", "n_stalled", "n_diverged", "n_max_steps"):
        assert u[k][0] == c[k][j], k


ARGS = [
    "--lr", "0.5,1,4", "--scale", "1,2", "--n-runs", "32", "--ci-width", "0.25",
    "--max-runs", "300", "--chunk-size", "16", "--devices", "2",
]  # fmt: skip


def test_cli_adaptive_sweep(reference, tmp_path, env):
    out = tmp_path / "run"
    p = subprocess.run(
        [sys.executable, "-m", "jaxlab", "sweep", *ARGS, "--no-figures", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "adaptive: " in p.stdout and " rounds to ci_width 0.25" in p.stdout, p.stdout
    header = (out / "cells.csv").read_text().splitlines()[0].split(",")
    assert header[header.index("ci_high") + 1 : header.index("ci_high") + 3] == [
        "cs_low",
        "cs_high",
    ]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["adaptive"]["rounds"] >= 3
    assert "ci_width = 0.25" in (out / "config.toml").read_text()
    _same(reference[0].cells, load_run(out).cells)


def test_sigkill_mid_round_then_resume(reference, tmp_path, env):
    """Killed by fault injection halfway through a write after round 1 (writes: config.toml, the
    12 chunk-log records of round 1, its checkpoint (2), then the next rounds'), resumed."""
    out = tmp_path / "run"
    args = [*ARGS, "--quiet", "--no-figures", "--out", str(out)]
    e = dict(env, JAXLAB_FAULT_KILL_AT_WRITE="22")
    p = subprocess.run([sys.executable, "-m", "jaxlab", "sweep", *args], env=e, timeout=300)
    assert p.returncode == -9
    assert not (out / "cells.csv").exists()
    assert int(np.load(out / "state.npz")["round"]) >= 2
    res = run_sweep(None, out, resume=True, n_devices=2, progress=False, figures=False)
    assert res.meta["timings"]["resumed_chunks"] > 0
    _same(reference[0].cells, res.cells)
    assert not list(out.rglob(".tmp-*"))


BAD = [
    (["--ci-width", "0"], "ci_width: expected a width in (0, 1), got 0.0"),
    (["--ci-width", "1"], "ci_width: expected a width in (0, 1), got 1.0"),
    (["--ci-width", "-0.1"], "ci_width: expected a width in (0, 1)"),
    (["--ci-width", "nan"], "ci_width: expected a width in (0, 1)"),
    (["--ci-width", "0.1", "--n-runs", "100", "--max-runs", "50"], "max_runs: expected at least"),
    (["--max-runs", "500"], "max_runs: caps the restarts of adaptive sweeps"),
    (["--ci-width", "0.1", "--keep-runs"], "keep_runs: per-run records are not kept"),
]


@pytest.mark.parametrize("extra,message", BAD)
def test_bad_values_one_line_exit_2_nothing_written(extra, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["sweep", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_bad_width_from_the_cli_process(tmp_path, env):
    out = tmp_path / "run"
    p = subprocess.run(
        [sys.executable, "-m", "jaxlab", "sweep", "--ci-width", "1.5", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 2
    assert p.stderr == "jaxlab: error: ci_width: expected a width in (0, 1), got 1.5\n"
    assert not out.exists()


def test_progress_shows_rounds_and_a_cap_stops_a_cell(reference, capsys):
    """The progress line names the round, its open cells and the restarts used; a cell at
    max_runs stops there, its interval still wider (the same compiled program: no compile)."""
    before = engine.COMPILE_STATS["compiles"]
    res = run_sweep(_cfg(chunk_size=48, max_runs=64), None, n_devices=2, progress=True)
    assert engine.COMPILE_STATS["compiles"] == before
    err = capsys.readouterr().err
    assert "round 1: 6 open cells, 0 restarts used before it\n" in err
    assert "round 2: 6 open cells, 192 restarts used before it\n" in err
    n, ref = res.cells["n_runs"], reference[0].cells
    np.testing.assert_array_equal(n, np.minimum(ref["n_runs"], 64))
    assert res.meta["adaptive"]["cells_at_cap_wider"] > 0
    # a cell the cap did not touch ran the reference's restarts: the same (cell, index) keys
    done = ref["n_runs"] <= 64
    assert done.any()
    np.testing.assert_array_equal(res.cells["n_success"][done], ref["n_success"][done])


def test_round_tasks_cover_each_restart_once_within_bounds(monkeypatch):
    """Chunks of a round: every restart of have..target once, in order, at most chunk_size
    runs and n_seg cells each, never across static combinations."""
    cfg = SweepConfig(n_runs=5, ci_width=0.1, max_runs=50, chunk_size=16).with_settings(
        optimizer="gd,adam", lr=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    )
    monkeypatch.setattr(engine, "ADAPTIVE_SEGMENTS", 3)  # chunks cut at 3 cells' span too
    plan = engine.make_plan(cfg, 2)
    assert plan.chunk_size == 16 and plan.n_seg == 3
    rng = np.random.default_rng(0)
    have = rng.integers(0, 30, cfg.n_cells)
    target = have + rng.integers(0, 20, cfg.n_cells) * (rng.random(cfg.n_cells) < 0.7)
    from jaxlab.adaptive import round_tasks

    tasks = round_tasks(plan, have, target, base=7)
    assert [t.index for t in tasks] == list(range(7, 7 + len(tasks)))
    g = np.concatenate([t.runs for t in tasks])
    want = np.concatenate([c * 50 + np.arange(have[c], target[c]) for c in range(cfg.n_cells)])
    np.testing.assert_array_equal(g, want)
    for t in tasks:
        cells = t.runs // 50
        assert len(t.runs) <= 16 and cells[-1] - cells[0] < plan.n_seg
        assert (cells // plan.cells_per_combo == t.combo).all()


def test_a_damaged_round_in_the_checkpoint_is_named(reference, tmp_path):
    """A checkpoint whose round is out of order is refused in one line naming the file; an
    intact one resumes to the reference's bits."""
    from jaxlab import rundir
    from jaxlab.errors import ConfigError

    out = tmp_path / "run"
    with pytest.raises(SweepInterrupted):
        run_sweep(_cfg(chunk_size=48), out, n_devices=2, progress=False, stop_after_chunks=6)
    st = rundir.load_npz(out / "state.npz")
    assert int(st["round"]) >= 2
    good = (out / "state.npz").read_bytes()
    st["round_target"] = st["round_start"] - 1
    rundir.save_npz(out / "state.npz", **st)
    with pytest.raises(ConfigError, match=r"state\.npz.*round_start, round_target out of order"):
        run_sweep(None, out, resume=True, n_devices=2, progress=False, figures=False)
    (out / "state.npz").write_bytes(good)
    res = run_sweep(None, out, resume=True, n_devices=2, progress=False, figures=False)
    _same(reference[0].cells, res.cells)
