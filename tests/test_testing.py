"""``jaxlab.testing``: the three-way gradient check of a user's :class:`jaxlab.Problem`, and proof
that it fails when the gradient is wrong.

The problem is written here as a user would: a one-hidden-layer tanh network on a few points,
params a dict, a static ``width`` (a shape) and traced ``scale`` (init) and ``decay`` (loss).
"""

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab import gradcheck, testing
from jaxlab.contract import Outcome, Problem
from jaxlab.errors import ConfigError

X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.5, -0.3], [-1.0, 2.0]])
Y = np.array([0.0, 1.0, 1.0, 0.0, 0.3, -0.5])


def init(key, s):
    # one draw, sliced into the leaves: threefry is slow to compile on CPU, and split would
    # triple it in every check here
    w = s["width"]
    z = s["scale"] * jax.random.normal(key, (4 * w + 1,))
    return {"W": z[: 2 * w].reshape(2, w), "b": z[2 * w : 3 * w], "u": z[3 * w : 4 * w], "c": z[-1]}


def _forward(p):
    a = jnp.tanh(X @ p["W"] + p["b"][None, :])
    return a, a @ p["u"] + p["c"]


def loss(p, s):
    _, f = _forward(p)
    return jnp.mean((f - Y) ** 2) + s["decay"] * jnp.sum(p["W"] ** 2)


def grad(p, s):
    """The chain rule by hand, as in the lab's Exercise 2."""
    a, f = _forward(p)
    df = 2.0 * (f - Y) / Y.shape[0]  # dL/df
    dz = df[:, None] * p["u"][None, :] * (1.0 - a**2)  # through u, then tanh' = 1 - tanh^2
    g = {
        "W": X.T @ dz + 2.0 * s["decay"] * p["W"],
        "b": jnp.sum(dz, axis=0),
        "u": a.T @ df,
        "c": jnp.sum(df),
    }
    return loss(p, s), g


def wrong_grad(p, s):
    value, g = grad(p, s)
    return value, {**g, "b": -g["b"]}  # a sign flipped in one leaf


SETTINGS = dict(traced={"scale": 1.0, "decay": 0.01}, static={"width": 4})
CHECKS = {"width": (lambda w: isinstance(w, int) and w >= 1, "an integer >= 1")}
PROBLEM = Problem(init=init, loss=loss, grad=grad, name="tanh-net", checks=CHECKS, **SETTINGS)
N = 300


def test_correct_grad_passes_with_tiny_errors():
    report = testing.check_problem(PROBLEM, n=N)
    assert report.ok and report.manual, str(report)
    assert (report.n_used, report.n_excluded) == (N, 0)
    assert set(report.errors) == {"manual~autodiff", "manual~fd", "autodiff~fd", "value~loss"}
    assert report.errors["manual~autodiff"] < 1e-13
    assert report.errors["value~loss"] < 1e-13
    assert 0 < report.errors["autodiff~fd"] < 1e-7
    assert report.settings == {"width": 4, "scale": 1.0, "decay": 0.01}
    text = str(report)
    assert text.splitlines() == report.lines()
    assert "problem tanh-net  manual~autodiff" in text and "4/4 checks passed - PASS" in text
    assert "FAIL" not in text
    assert testing.assert_gradients(PROBLEM, n=N).errors == report.errors  # deterministic
    # gradcheck's records, ready for its table
    records = gradcheck.problem_checks(PROBLEM, None, n=N, seed=0)
    assert [r.pair for r in records] == list(report.errors)
    assert not gradcheck.failures(records) and all(r.n == N for r in records)


def test_settings_override_and_reach_the_problem():
    report = testing.check_problem(PROBLEM, {"width": 7, "scale": 0.3, "lr": 0.5}, n=20)
    assert report.ok, str(report)
    assert report.settings == {"width": 7, "scale": 0.3, "decay": 0.01, "lr": 0.5}
    compiled = testing._run._cache_size()
    again = testing.check_problem(PROBLEM, {"width": 7, "scale": 2.0}, n=20, seed=3)
    assert again.ok and again.errors != report.errors
    assert testing._run._cache_size() == compiled  # traced values and the seed: no recompile
    with pytest.raises(ConfigError, match=r"unknown setting 'widht' \(did you mean 'width'\?\)"):
        testing.check_problem(PROBLEM, {"widht": 3})
    with pytest.raises(ConfigError, match="^scale: expected a finite number"):
        testing.check_problem(PROBLEM, {"scale": "big"})
    with pytest.raises(ConfigError, match="^width: expected an integer >= 1, got 0$"):
        testing.check_problem(PROBLEM, {"width": 0})  # the problem's own checks
    with pytest.raises(ConfigError, match="^width: expected a hashable value"):
        testing.check_problem(PROBLEM, {"width": [4]})


def test_wrong_grad_fails_and_names_the_pairs():
    bad = Problem(init=init, loss=loss, grad=wrong_grad, name="flipped", **SETTINGS)
    report = testing.check_problem(bad, n=N)
    assert not report.ok
    assert report.failed() == ["manual~autodiff", "manual~fd"]
    assert report.errors["autodiff~fd"] < 1e-7  # the reference pair still agrees
    with pytest.raises(AssertionError) as err:
        testing.assert_gradients(bad, n=N)
    msg = str(err.value)
    assert msg.startswith("gradient check failed for problem flipped")
    assert "FAIL: manual~autodiff, manual~fd" in msg
    assert any("manual~autodiff" in line and line.endswith("FAIL") for line in msg.splitlines())


def cut_loss(p, s):
    """Undefined (NaN) where the first hidden bias is at most the traced ``cut``."""
    return jnp.where(p["b"][0] > s["cut"], loss(p, s), jnp.nan)


CUT = Problem(
    init=init, loss=cut_loss, traced={**SETTINGS["traced"], "cut": -1e3}, static={"width": 4}
)


def test_without_grad_autodiff_vs_fd_only():
    report = testing.check_problem(CUT, n=N)  # cut = -1e3: defined everywhere
    assert report.ok and not report.manual, str(report)
    assert list(report.errors) == ["autodiff~fd"] and report.n_excluded == 0
    assert "no hand-written grad: jax.grad vs finite differences only" in str(report)
    assert "1/1 checks passed - PASS" in str(report)


def test_nan_points_are_excluded_and_counted():
    compiled = testing._run._cache_size()
    report = testing.check_problem(CUT, {"cut": 0.0}, n=N)
    s = {**CUT.static, **CUT.traced}
    b0 = jax.vmap(lambda i: init(jax.random.fold_in(jax.random.key(0), i), s)["b"][0])
    assert report.n_excluded == int(np.sum(b0(jnp.arange(N)) <= 0.0)) > 0
    assert report.n_used + report.n_excluded == N
    assert report.ok, str(report)
    assert f"excluded {report.n_excluded}/{N} points: non-finite loss or jax.grad" in str(report)
    # nothing finite at all: not ok, and it says so
    report = testing.check_problem(CUT, {"cut": 1e3}, n=N)
    assert not report.ok and report.n_used == 0 and np.isnan(report.errors["autodiff~fd"])
    assert "nothing was checked - FAIL" in str(report)
    # a traced setting is an argument of the compiled check: new values, no new compile
    assert testing._run._cache_size() <= compiled + 1


def test_problems_that_cannot_be_checked_are_one_line_errors():
    train_only = Problem(train=lambda s, key: Outcome(0.0, 0, 0), name="own-loop")
    with pytest.raises(ConfigError, match="^problem: 'own-loop' has only train") as err:
        testing.check_problem(train_only)
    assert "\n" not in str(err.value)
    vector_loss = Problem(init=init, loss=lambda p, s: p["u"], **SETTINGS)
    with pytest.raises(ConfigError, match=r"^problem: loss\(params, s\) must return a scalar"):
        testing.check_problem(vector_loss)
    short_grad = Problem(init=init, loss=loss, grad=lambda p, s: (loss(p, s), p["W"]), **SETTINGS)
    with pytest.raises(ConfigError, match=r"^problem: grad\(params, s\)\[1\] must match params"):
        testing.check_problem(short_grad)
    with pytest.raises(ConfigError, match="^n: "):
        testing.check_problem(PROBLEM, n=0)


def test_batched_points_give_the_same_numbers(monkeypatch):
    """Past the memory budget the points go through ``lax.map`` in equal batches: the same
    values as one ``vmap`` over all of them (17 params, 37 loss evaluations a point)."""
    static, traced, _ = testing._settings(PROBLEM, None)
    with jax.enable_x64(True):
        whole = testing._evaluate(PROBLEM, static, traced, n=N, seed=0, fd_step=1e-6)
        # at most 41 points a batch: 8 batches of 38, the last padded past N
        monkeypatch.setattr(testing, "_EVALS_PER_BATCH", 41 * (2 * 17 + 3))
        batched = testing._evaluate(PROBLEM, static, traced, n=N, seed=0, fd_step=1e-6)
    assert whole.keys() == batched.keys() and batched["fd"].shape == (N, 17)
    for k in whole:  # a difference divides the loss's rounding by 2h: ~1e-9 between programs
        tol = 1e-7 if k == "fd" else 1e-12
        np.testing.assert_allclose(batched[k], whole[k], rtol=tol, atol=tol)


def test_checks_in_float64_from_a_default_process(env):
    """A user's script: JAX's default settings (x64 off), the problem's data in NumPy. The
    check still runs in float64 (a finite-difference error of ~1e-9 is impossible in float32,
    where x + 1e-6 barely moves) and leaves the process's setting as it was."""
    code = (
        "import jax, jaxlab.testing, test_testing as t\n"
        "r = jaxlab.testing.check_problem(t.PROBLEM, n=100)\n"
        "print(r)\n"
        "print(repr(r.errors['autodiff~fd']), jax.config.jax_enable_x64, jax.numpy.ones(1).dtype)\n"
    )
    here = Path(__file__).parent
    e = dict(env, PYTHONPATH=os.pathsep.join([str(here.parent), str(here)]))
    p = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        env=e, cwd=here, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    *table, last = p.stdout.strip().splitlines()
    assert "4/4 checks passed - PASS" in table[-1]
    err, x64, dtype = last.split()
    assert 1e-12 < float(err) < 1e-7
    assert (x64, dtype) == ("False", "float32")
