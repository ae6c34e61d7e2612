"""The problem contract from the user's side (issue 11, "Your own problems").

A user's problem is experiments/moons/moons.py (imported here by its path, as a user's script
would be) or a small problem written here. It sweeps from Python and from its TOML through the
CLI to the same bytes; its per-run results do not depend on chunks, devices or a SIGKILL and
resume; new traced values do not recompile; its success rates agree with a plain-JAX loop
written here; bad problems end in one line; the problem's provenance is recorded and a resume
after its source changed is refused; ``jaxlab gradcheck --config`` checks it.
"""

import hashlib
import importlib.util
import json
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import jaxlab
from jaxlab import engine
from jaxlab.cli import main
from jaxlab.config import from_toml
from jaxlab.sweep import SweepInterrupted, run_sweep

ROOT = Path(__file__).resolve().parents[1]
MOONS_DIR = ROOT / "experiments" / "moons"
MOONS_TOML = MOONS_DIR / "moons.toml"
QUIET = ["--no-figures", "--quiet"]


@pytest.fixture(scope="module")
def moons():
    """experiments/moons/moons.py imported by its path, under the name its TOML gives it (so
    that ``problem = "moons:moons"`` finds this very module in this process)."""
    if "moons" not in sys.modules:
        spec = importlib.util.spec_from_file_location("moons", MOONS_DIR / "moons.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["moons"] = module
        spec.loader.exec_module(module)
    module = sys.modules["moons"]
    assert Path(module.__file__).resolve() == MOONS_DIR / "moons.py"
    return module


@pytest.fixture(scope="module")
def cli_env(env):
    """``python -m jaxlab`` with default JAX settings, running this checkout's code."""
    return {**env, "PYTHONPATH": str(ROOT)}


def _jaxlab(cli_env, *args, cwd=ROOT, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jaxlab", *map(str, args)],
        env=cli_env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _cli(argv, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    got = capsys.readouterr()
    return rc, got.out, got.err


def _one_line(text: str) -> str:
    assert "Traceback" not in text
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    return text


def _same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


def _bytes(run: Path, *names) -> dict:
    return {n: (run / n).read_bytes() for n in names}


# --- small problems of a user's kind ----------------------------------------------------------
def _well_init(key, s):
    return {"x": s["scale"] * jax.random.normal(key, (s["dim"],))}


def _well_loss(params, s):
    """A tilted double well in x[0] (its left minimum, ~0.05, succeeds; the right one, ~0.64,
    does not), a bowl in the other coordinates."""
    x = params["x"]
    return (x[0] ** 2 - 1.0) ** 2 + 0.3 * x[0] + 0.35 + 0.5 * jnp.sum(x[1:] ** 2)


well = jaxlab.Problem(
    init=_well_init,
    loss=_well_loss,
    traced={"scale": 1.0},
    static={"dim": 2},
    metrics=lambda p, s: {"wnorm": jnp.linalg.norm(p["x"])},
)


# --- 1a. the moons module from Python, from its TOML, and from its run directory --------------
def test_moons_from_python_and_from_its_toml_give_the_same_bytes(moons, tmp_path, cli_env, capsys):
    cfg = jaxlab.SweepConfig(
        problem=moons.moons, optimizer="adam", max_steps=30, n_runs=30, threshold=0.05
    ).with_settings(lr={"log": [0.01, 1.0, 3]}, width=[4, 8])
    py = tmp_path / "py"
    res = run_sweep(cfg, py, figures=False, progress=False, n_devices=2)
    assert len(res.cells["n_runs"]) == 6
    # The user's way: the TOML in a fresh process, default JAX settings (x64 off, one device
    # unless --devices), settings overridden with --set.
    cli = tmp_path / "cli"
    proc = _jaxlab(
        cli_env, "sweep", "--config", MOONS_TOML.relative_to(ROOT), "--set", "width=4,8",
        "--set", "lr=0.01:1:3:log", "--n-runs", 30, "--max-steps", 30, "--devices", 2,
        "--out", cli, *QUIET,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (cli / "cells.csv").read_bytes() == (py / "cells.csv").read_bytes()
    # Both config.toml name the problem by the string every process (host) imports it by.
    for run in (py, cli):
        saved = tomllib.loads((run / "config.toml").read_text())
        assert saved["problem"] == "moons:moons", run
        assert Path(saved["problem_path"]) == MOONS_DIR, run
    # --lr is a short form of --set lr=...
    short = tmp_path / "short"
    rc, _, err = _cli(
        ["sweep", "--config", MOONS_TOML, "--set", "width=4,8", "--lr", "0.01:1:3:log",
         "--n-runs", 30, "--max-steps", 30, "--devices", 2, "--out", short, *QUIET],
        capsys,
    )  # fmt: skip
    assert rc == 0, err
    assert (short / "cells.csv").read_bytes() == (py / "cells.csv").read_bytes()
    # A run directory's config.toml reruns it in a fresh process started anywhere: the module
    # is found through problem_path (this one came from a sweep started in Python).
    again = tmp_path / "again"
    proc = _jaxlab(
        cli_env, "sweep", "--config", py / "config.toml", "--out", again, "--devices", 2, *QUIET,
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _bytes(again, "cells.csv", "config.toml") == _bytes(py, "cells.csv", "config.toml")


# --- 1b. per-run results: chunks, devices, SIGKILL + resume; no recompiles --------------------
CHUNKS_DEVICES = [(7, 1), (1000, 1), (48, 2), (48, 8)]  # (chunk size, devices)


def _moons_cfg(moons, **kw):
    return jaxlab.SweepConfig(
        problem=moons.moons, optimizer="adam", max_steps=20, n_runs=24, keep_runs=True,
        threshold=0.36, **kw,
    ).with_settings(lr=[0.03, 0.3], width=4, scale=[0.5, 2.0])  # fmt: skip


def _well_cfg(**kw):
    return jaxlab.SweepConfig(
        problem=well, optimizer="adam", max_steps=20, n_runs=24, keep_runs=True, threshold=0.25,
        **kw,
    ).with_settings(lr=[0.03, 0.3], scale=[0.5, 2.0], dim=[2, 3])  # fmt: skip


@pytest.fixture(scope="module")
def references(moons):
    """Each problem's sweep in one chunk per static combination, on one device."""
    return {
        "moons": run_sweep(_moons_cfg(moons, chunk_size=96), None, n_devices=1, figures=False),
        "well": run_sweep(_well_cfg(chunk_size=96), None, n_devices=1, figures=False),
    }


@pytest.mark.parametrize(("chunk", "n_devices"), CHUNKS_DEVICES)
def test_user_runs_are_bit_identical_across_chunks_and_devices(references, chunk, n_devices):
    res = run_sweep(_well_cfg(chunk_size=chunk), None, n_devices=n_devices, figures=False)
    assert res.meta["devices"]["local_used"] == n_devices and res.meta["chunk_size"] == chunk
    _same(res.runs, references["well"].runs)
    _same(res.cells, references["well"].cells)
    assert 0 < res.runs["success"].mean() < 1  # a comparison that could tell a difference


@pytest.mark.parametrize(("chunk", "n_devices"), CHUNKS_DEVICES)
def test_moons_runs_are_bit_identical_across_chunks_and_devices(
    moons, references, chunk, n_devices
):
    """The moons loss reduces over its 64 points (a matmul, a mean), and XLA:CPU orders such a
    vmapped reduction by the batch's width: each device trains its restarts in blocks of the
    config's ``lane_block`` lanes, so the width, and every bit, is the same whatever the chunk
    size or device count."""
    ref = references["moons"]
    res = run_sweep(_moons_cfg(moons, chunk_size=chunk), None, n_devices=n_devices, figures=False)
    assert res.meta["devices"]["local_used"] == n_devices and res.meta["chunk_size"] == chunk
    _same(res.runs, ref.runs)
    _same(res.cells, ref.cells)
    assert 0 < res.runs["success"].mean() < 1


def test_moons_sigkill_mid_sweep_then_resume_is_bit_identical(moons, tmp_path, cli_env, capsys):
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "jaxlab", "sweep", "--config", str(MOONS_TOML), "--set",
        "width=4,8", "--lr", "0.03,0.3", "--n-runs", "256", "--max-steps", "20",
        "--chunk-size", "16", "--keep-runs", "--devices", "2", "--out", str(out), *QUIET,
    ]  # fmt: skip
    p = subprocess.Popen(cmd, env=cli_env, cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
    log = out / "state.log"
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        if (log.exists() and log.stat().st_size > 0) or (out / "state.npz").exists():
            break  # a chunk is done
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    _, err = p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL, err
    assert not (out / "cells.csv").exists() and not (out / "meta.json").exists()
    # Resumed on another number of devices than it started on: the same bits all the same.
    rc, _, err = _cli(["sweep", "--resume", out, "--devices", 1, *QUIET], capsys)
    assert rc == 0, err
    meta = json.loads((out / "meta.json").read_text())
    assert 0 < meta["timings"]["resumed_chunks"] < meta["n_chunks"] == 64
    full = tmp_path / "full"
    cfg = from_toml((out / "config.toml").read_text())
    run_sweep(cfg, full, n_devices=2, figures=False, progress=False)
    names = ("cells.csv", "config.toml", "problem.json")
    assert _bytes(out, *names) == _bytes(full, *names)
    parts = sorted(p.relative_to(out) for p in out.glob("runs/part-*.parquet"))
    assert len(parts) == 64 and _bytes(out, *parts) == _bytes(full, *parts)


def test_moons_new_traced_values_do_not_recompile(moons, references):
    base = _moons_cfg(moons, chunk_size=96)  # compiled by the references
    before = engine.COMPILE_STATS["compiles"]
    for lr, scale in (([0.01, 0.5], [1.0, 3.0]), ({"log": [0.1, 10.0, 2]}, [0.25, 4.0])):
        res = run_sweep(base.with_settings(lr=lr, scale=scale), None, n_devices=1, figures=False)
        assert res.cells["lr"][-1] == (0.5 if isinstance(lr, list) else 10.0)
    assert engine.COMPILE_STATS["compiles"] == before
    # A static setting is a new program: the count above can move.
    run_sweep(base.with_settings(width=8), None, n_devices=1, figures=False)
    assert engine.COMPILE_STATS["compiles"] == before + 1


# --- 1c. success rates against a plain-JAX loop written here ----------------------------------
class _Carry(NamedTuple):
    params: dict
    value: jax.Array
    step: jax.Array
    stop: jax.Array
    bad: jax.Array


def _plain_counts(problem, static, lr, scale, n, max_steps, tol, threshold, seed):
    """(successes, divergences) of n restarts of plain gradient descent with the lab's rule
    (stop when loss_prev - loss_new < tol, keeping the new point; a non-finite loss or final
    parameter is a divergence), from keys fold_in(key(seed), i): nothing of jaxlab's loop."""
    tol = -jnp.inf if tol == "off" else tol

    def one(key, lr, scale):
        s = {**static, "lr": lr, "scale": scale}

        def f(params):
            return problem.loss(params, s)

        params0 = problem.init(key, s)
        value0 = f(params0)
        bad0 = ~jnp.isfinite(value0)

        def body(c: _Carry) -> _Carry:
            grad = jax.grad(f)(c.params)
            params = jax.tree.map(lambda w, g: w - lr * g, c.params, grad)
            value = f(params)
            bad = ~jnp.isfinite(value)
            return _Carry(params, value, c.step + 1, bad | (c.value - value < tol), bad)

        end = jax.lax.while_loop(
            lambda c: ~c.stop & (c.step < max_steps),
            body,
            _Carry(params0, value0, jnp.int32(0), bad0, bad0),
        )
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(w)) for w in jax.tree.leaves(end.params)]))
        diverged = end.bad | ~finite
        return ~diverged & (end.value - problem.minimum < threshold), diverged

    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(jnp.arange(n))
    ok, div = jax.jit(jax.vmap(one, in_axes=(0, None, None)))(keys, lr, scale)
    return int(ok.sum()), int(div.sum())


def _agree(k1, n1, k2, n2) -> bool:
    p = (k1 + k2) / (n1 + n2)
    return abs(k1 / n1 - k2 / n2) <= 4 * np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2)) + 1 / n1


RATE_CASES = {
    # name: (static settings, lr values, scale values, max_steps, tol, threshold)
    "moons gd": ({"width": 4}, [1.0, 3.0], [0.5, 3.0], 30, 1e-4, 0.3),
    "well": ({"dim": 2}, [0.03, 0.1, 0.4], [0.5, 2.0], 40, 1e-4, 0.25),
    "well, no rule": ({"dim": 3}, [0.1, 0.3], [0.5, 2.0], 30, "off", 0.25),
}


@pytest.mark.parametrize("case", RATE_CASES)
def test_success_rates_agree_with_a_plain_jax_loop(moons, case):
    static, lrs, scales, max_steps, tol, threshold = RATE_CASES[case]
    problem = moons.moons if case.startswith("moons") else well
    n = 400
    cfg = jaxlab.SweepConfig(
        problem=problem, max_steps=max_steps, n_runs=n, threshold=threshold, tol=tol,
        dtype="float64",
    ).with_settings(lr=lrs, scale=scales, **static)  # fmt: skip
    c = run_sweep(cfg, None, n_devices=2, figures=False).cells
    rates = []
    for i in range(len(c["n_runs"])):
        lr, scale = float(c["lr"][i]), float(c["scale"][i])
        settings = {**static, "optimizer": "gd", "max_steps": max_steps, "momentum": 0.9}
        ok, div = _plain_counts(
            problem, settings, lr, scale, n, max_steps, tol, threshold, 1000 + i
        )
        where = f"lr={lr}, scale={scale}: jaxlab {c['n_success'][i]}/{n}, plain {ok}/{n}"
        assert _agree(int(c["n_success"][i]), n, ok, n), where
        assert _agree(int(c["n_diverged"][i]), n, div, n), where + f", diverged {div}"
        rates.append(ok / n)
    # The comparison has power: rates strictly inside (0, 1) and different across cells.
    assert any(0.2 < r < 0.8 for r in rates) and max(rates) - min(rates) > 0.3, rates
    if tol == "off":
        assert c["n_diverged"].sum() > 0  # without the rule, large steps blow up


# --- 1d. bad user problems: one line, exit 2, nothing written ---------------------------------
BAD_MODULE = """
import jax
import jax.numpy as jnp

import jaxlab


def _init(key, s):
    return {"w": s["scale"] * jax.random.normal(key, (3,))}


def _loss(params, s):
    return jnp.sum(params["w"] ** 2)


def _raises(params, s):
    raise ValueError("boom in the user's loss")


vector_loss = jaxlab.Problem(init=_init, loss=lambda p, s: p["w"] ** 2, traced={"scale": 1.0})
undeclared = jaxlab.Problem(
    init=_init, loss=lambda p, s: s["temperature"] * _loss(p, s), traced={"scale": 1.0}
)
traced_shape = jaxlab.Problem(
    init=lambda key, s: {"w": jax.random.normal(key, (s["width"],))}, loss=_loss,
    traced={"width": 3.0},
)
vector_metric = jaxlab.Problem(
    init=_init, loss=_loss, traced={"scale": 1.0}, metrics=lambda p, s: {"w": p["w"]}
)
raising = jaxlab.Problem(init=_init, loss=_raises, traced={"scale": 1.0})
NUMBER = 42


def make(width=3):
    return jaxlab.Problem(init=lambda k, s: {"w": jax.random.normal(k, (width,))}, loss=_loss)
"""

# (problem, extra TOML, how it is run, what the one line says)
BAD_CASES = {
    "non-scalar loss": (
        "vector_loss", "", "in-process", "ct_bad:vector_loss.loss must return a float scalar"
    ),
    "undeclared setting": (
        "undeclared", "", "in-process", "reads setting 'temperature', which it does not declare"
    ),
    "traced setting as a shape": (
        "traced_shape", "", "subprocess",
        "init uses traced setting 'width' as a shape or Python value; declare it in static=",
    ),
    "non-scalar metric": (
        "vector_metric", "", "in-process", "ct_bad:vector_metric.metrics['w'] must be a scalar"
    ),
    "user function raises": (
        "raising", "", "subprocess", "ct_bad:raising.loss raised ValueError: boom in the user's"
    ),
    "no such attribute": ("nope", "", "in-process", "module 'ct_bad' has no attribute 'nope'"),
    "no such module": ("", "", "in-process", "no module named 'ct_nomodule'"),
    "not a Problem": (
        "NUMBER", "", "subprocess", "ct_bad:NUMBER is an int; expected a jaxlab.Problem"
    ),
    "factory, wrong problem_args": (
        "make", "problem_args = {widht = 3}\n", "in-process",
        "problem_args: ct_bad:make: got an unexpected keyword argument 'widht'",
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "ct_bad.py").write_text(BAD_MODULE)
    return d


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_user_problem_is_one_line_exit_2_nothing_written(
    bad_dir, tmp_path, cli_env, capsys, case
):
    attr, extra, how, says = BAD_CASES[case]
    spec = f"ct_bad:{attr}" if attr else "ct_nomodule:problem"
    toml = bad_dir / f"{case.replace(' ', '_').replace(',', '')}.toml"  # ct_bad.py beside it
    toml.write_text(f'problem = "{spec}"\n{extra}n_runs = 4\nmax_steps = 5\n')
    out = tmp_path / "out"
    argv = ["sweep", "--config", toml, "--out", out, *QUIET]
    if how == "subprocess":
        proc = _jaxlab(cli_env, *argv, cwd=tmp_path)
        rc, err = proc.returncode, proc.stderr
    else:
        rc, _, err = _cli(argv, capsys)
    assert rc == 2, err
    assert says in _one_line(err)
    assert err.startswith("jaxlab: error: problem")
    assert not out.exists()
    if case == "user function raises":  # the user's own line, none of jaxlab's
        line = BAD_MODULE.splitlines().index('    raise ValueError("boom in the user\'s loss")')
        assert f"{bad_dir / 'ct_bad.py'}:{line + 1}" in err
        assert "/jaxlab/" not in err and "/jax/" not in err


# --- 1e. metrics: a per-run column -------------------------------------------------------------
def test_metrics_are_a_per_run_column(tmp_path):
    cfg = jaxlab.SweepConfig(problem=well, n_runs=10, max_steps=20, keep_runs=True).with_settings(
        lr=[0.03, 0.1]
    )
    out = tmp_path / "run"
    run_sweep(cfg, out, n_devices=1, figures=False, progress=False)
    runs = pd.read_parquet(out / "runs")
    assert len(runs) == 20 and runs["wnorm"].notna().all()
    # The value is the metric of the run's final parameters (the restart replayed alone).
    plan = engine.make_plan(cfg)
    for g in (0, 13):
        *_, params = engine.replay(plan, g)
        assert runs["wnorm"][g] == pytest.approx(float(jnp.linalg.norm(params["x"])), rel=1e-6)


# --- 2. provenance: recorded, and a changed source refuses a resume ----------------------------
PROV_MODULE = """
import jax
import jax.numpy as jnp

import jaxlab


def make(dim=2):
    return jaxlab.Problem(
        init=lambda key, s: {"x": s["scale"] * jax.random.normal(key, (dim,))},
        loss=lambda p, s: jnp.sum((p["x"] - 1.0) ** 2),
        traced={"scale": 1.0},
    )
"""


def test_provenance_is_recorded_and_a_changed_source_refuses_resume(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    module = src / "ct_prov.py"
    module.write_text(PROV_MODULE)
    cfg = jaxlab.SweepConfig(
        problem="ct_prov:make", problem_args={"dim": 3}, problem_path=str(src), n_runs=16,
        chunk_size=8, max_steps=20,
    ).with_settings(lr=[0.1, 0.2])  # fmt: skip
    done = tmp_path / "done"
    run_sweep(cfg, done, n_devices=1, figures=False, progress=False)
    want = {
        "import": "ct_prov:make",
        "args": {"dim": 3},
        "source_sha256": hashlib.sha256(module.read_bytes()).hexdigest(),
    }
    assert json.loads((done / "meta.json").read_text())["problem"] == want
    assert json.loads((done / "problem.json").read_text()) == want
    # Interrupted: no meta.json yet; problem.json was written with config.toml.
    out = tmp_path / "run"
    with pytest.raises(SweepInterrupted):
        run_sweep(cfg, out, n_devices=1, figures=False, progress=False, stop_after_chunks=1)
    assert not (out / "meta.json").exists()
    module.write_text(PROV_MODULE + "# edited\n")
    rc, _, err = _cli(["sweep", "--resume", out, *QUIET], capsys)
    assert rc == 2, err
    assert "source of problem 'ct_prov:make'" in _one_line(err)
    assert "changed since this sweep started" in err and str(module) in err
    assert not (out / "cells.csv").exists()
    module.write_text(PROV_MODULE)  # restored: the resume goes on, to the same bytes
    record = (out / "problem.json").read_bytes()
    (out / "problem.json").write_text("{junk")
    rc, _, err = _cli(["sweep", "--resume", out, *QUIET], capsys)
    assert rc == 2 and "problem.json is damaged" in _one_line(err)
    (out / "problem.json").write_bytes(record)
    rc, _, err = _cli(["sweep", "--resume", out, *QUIET], capsys)
    assert rc == 0, err
    assert _bytes(out, "cells.csv", "config.toml") == _bytes(done, "cells.csv", "config.toml")


# --- 3. jaxlab gradcheck --config ---------------------------------------------------------------
WRONG_GRAD_MODULE = """
import jax
import jax.numpy as jnp

import jaxlab


def _loss(p, s):
    return jnp.sum(p["x"] ** 2)


wrong = jaxlab.Problem(
    init=lambda key, s: {"x": s["scale"] * jax.random.normal(key, (3,))},
    loss=_loss,
    grad=lambda p, s: (_loss(p, s), {"x": 2.0 * p["x"] + 1e-3}),  # d/dx is 2x: off by 1e-3
    traced={"scale": 1.0},
)
"""


def test_gradcheck_config_passes_on_moons(cli_env, tmp_path):
    proc = _jaxlab(cli_env, "gradcheck", "--config", MOONS_TOML, "--n", 50, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for width in (4, 8, 16):  # each static setting of the config
        assert f"problem moons:moons width={width} " in proc.stdout
    assert "autodiff~fd" in proc.stdout
    assert proc.stdout.rstrip().endswith("PASS")


def test_gradcheck_config_fails_on_a_wrong_grad(cli_env, tmp_path, capsys):
    (tmp_path / "ct_wrong.py").write_text(WRONG_GRAD_MODULE)
    toml = tmp_path / "wrong.toml"
    toml.write_text('problem = "ct_wrong:wrong"\nmethod = "manual"\n')
    proc = _jaxlab(cli_env, "gradcheck", "--config", toml, "--n", 20, cwd=ROOT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    fails = [ln for ln in proc.stdout.splitlines() if ln.rstrip().endswith("FAIL")]
    assert {ln.split()[2] for ln in fails} == {"manual~autodiff", "manual~fd"}, proc.stdout
    assert "2/4 checks passed" in proc.stdout
    # A bad config: one line, exit 2.
    for bad in (tmp_path / "missing.toml", toml.with_name("junk.toml")):
        if bad.name == "junk.toml":
            bad.write_text('problem = "ct_wrong:nope"\n')
        rc, out, err = _cli(["gradcheck", "--config", bad], capsys)
        assert rc == 2 and not out, err
        assert _one_line(err).startswith("jaxlab gradcheck: error: ")
