"""Three-way gradient checks (manual vs jax.grad vs finite differences) in float64, and proof
that the check can fail."""

import numpy as np
import pytest

from jaxlab import gradcheck
from jaxlab.losses import LOSSES

N = 1000
WIDTHS = ((2, 2, 1), (2, 4, 1), (2, 3, 3, 1))


@pytest.fixture(scope="module")
def records():
    """Every check of ``jaxlab gradcheck`` at its defaults (n = 1000), computed once."""
    return gradcheck.run_all(n=N, seed=0)


def test_network_three_way(records):
    net = [r for r in records if r.check.startswith("network")]
    assert len(net) == len(WIDTHS) * len(LOSSES) * 3
    assert {r.check for r in net} == {f"network {w} {k}" for w in WIDTHS for k in LOSSES}
    for r in records:
        assert r.n >= 1000
        tol = gradcheck.TOL_MANUAL if r.pair == "manual~autodiff" else gradcheck.TOL_FD
        assert r.error <= tol, r
    assert not gradcheck.failures(records)


def test_main_prints_every_check_and_passes(records, monkeypatch, capsys):
    # main's checks are exactly run_all's (already run by the fixture; reuse them, not recompile)
    calls = []
    monkeypatch.setattr(gradcheck, "run_all", lambda n, seed: calls.append((n, seed)) or records)
    assert gradcheck.main([]) == 0
    assert calls == [(1000, 0)]
    out = capsys.readouterr().out
    for name in ("network (2, 3, 3, 1) logit", "objective rosenbrock", "Q16 dL/dx1", "Q4 dtanh"):
        assert name in out
    assert "FAIL" not in out
    assert f"{len(records)}/{len(records)} checks passed" in out
    # a tolerance nothing can meet makes it fail
    assert gradcheck.main(["--tol-fd", "1e-20"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_a_wrong_gradient_is_caught():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((50, 9))
    ok = gradcheck.compare("ok", {"manual": g, "autodiff": g, "fd": g + 1e-9})
    assert not gradcheck.failures(ok)
    wrong = g.copy()
    wrong[7, 3] += 1e-3  # one coordinate of one point off
    bad = gradcheck.compare("bad", {"manual": wrong, "autodiff": g, "fd": g + 1e-9})
    failed = {r.pair for r in gradcheck.failures(bad)}
    assert failed == {"manual~autodiff", "manual~fd"}
    assert "FAIL" in gradcheck.format_table(bad)
    nan = gradcheck.compare("nan", {"manual": g * np.nan, "autodiff": g, "fd": g})
    assert all(r.error == np.inf for r in nan if "manual" in r.pair)


def test_rel_error_definition():
    a = np.array([[3.0, 4.0], [0.0, 0.0]])
    b = np.array([[3.0, 4.0 + 5e-3], [0.0, 0.0]])
    np.testing.assert_allclose(gradcheck.rel_error(a, b), [5e-3 / np.hypot(3.0, 4.005), 0.0])
    # the floor keeps 0 / 0 defined and makes tiny vectors absolute
    np.testing.assert_allclose(gradcheck.rel_error([[1e-12]], [[2e-12]], floor=1.0), [1e-12])
