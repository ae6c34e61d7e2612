"""The anytime-valid confidence sequence (jaxlab.confseq): exact ends, the set it bounds, and
its coverage under the adaptive stopping rule by simulation."""

import numpy as np
import pytest

from jaxlab.aggregate import wilson
from jaxlab.confseq import _log_mixture, confseq, coverage, next_targets


def test_exact_at_the_ends_and_nan_when_empty():
    n = np.array([1, 10, 1000, 100000])
    lo, hi = confseq(np.zeros_like(n), n)
    # (a prior centred on p: the first restart alone says nothing, M_1(p) = 1)
    assert (lo == 0.0).all() and (hi[1:] < 1).all() and hi[0] == 1.0
    lo, hi = confseq(n, n)
    assert (hi == 1.0).all() and (lo[1:] > 0).all()
    lo, hi = confseq(0, 0)
    assert np.isnan(lo) and np.isnan(hi)


def test_symmetric_contains_the_rate_and_wider_than_wilson_in_the_middle():
    k = np.array([1, 3, 50, 499, 500, 999])
    n = np.full_like(k, 1000)
    lo, hi = confseq(k, n)
    lo2, hi2 = confseq(n - k, n)
    np.testing.assert_allclose(lo, 1 - hi2, atol=1e-12)
    assert ((lo <= k / n) & (k / n <= hi)).all()
    wl, wh = wilson(500, 1000)
    assert hi[4] - lo[4] > wh - wl  # the price of validity at every n
    assert 0.09 < hi[4] - lo[4] < 0.12  # about 4,000 restarts for 0.05 at p = 0.5


@pytest.mark.parametrize("n", [1, 7, 100, 3000, 100000])
def test_bounds_are_the_hull_of_the_set_on_a_fine_grid(n):
    """{p : M_n(p) < 1/alpha} on a fine logit grid lies in [lo, hi] and is contiguous."""
    p = 1 / (1 + np.exp(-np.linspace(-25, 25, 50001)))
    for k in sorted({0, 1, 2, n // 3, n // 2, n - 1, n}):
        if not 0 <= k <= n:
            continue
        inside = _log_mixture(p, k, n, 100.0) < np.log(20.0)
        idx = np.flatnonzero(inside)
        assert idx[-1] - idx[0] + 1 == len(idx), (k, n)
        lo, hi = confseq(k, n)
        assert lo <= p[idx[0]] and p[idx[-1]] <= hi
        # and not loose: the grid's neighbours outside the set are outside the bounds
        if idx[0] > 0 and k > 0:
            assert p[idx[0] - 1] <= lo + 1e-12
        if idx[-1] < len(p) - 1 and k < n:
            assert p[idx[-1] + 1] >= hi - 1e-12


def test_next_targets_grow_open_cells_only_and_respect_the_cap():
    k = np.array([0, 500, 500, 10, 0])
    n = np.array([1000, 1000, 1900, 20, 0])
    t = next_targets(k, n, 0.05, 2000)
    assert t[0] == 1000  # settled: [0, 0.004]
    assert 1100 <= t[1] <= 2000  # open: at least 1.1x, at most 2x
    assert t[2] == 2000  # capped
    assert t[3] == 40  # 2x at most
    assert t[4] == 0


def test_coverage_under_the_adaptive_rule():
    """1,000 simulated cells per probability, 100 restarts then rounds until the CS is at most
    0.1 wide (cap 4,000): the CS covers at least 95% for every probability; the Wilson interval
    of the same stopped counts misses more often (README: its coverage)."""
    ps = [0.0, 0.001, 0.01, 0.5, 0.99, 1.0]
    res = coverage(ps, 1000, 100, 0.1, 4000, seed=0)
    assert res["rounds"] >= 3
    for p in ps:
        assert res[p]["cs"] >= 0.95, (p, res[p])
    assert res[0.0]["n"] == 100 and res[0.5]["n"] > 900
    assert min(res[p]["wilson"] for p in ps) < 0.95  # p = 0.001: 0.905
