"""Box counting on sets whose dimension is known, and the rasters of uniform and refined
``cells.csv`` tables (``jaxlab.boxcount``)."""

import numpy as np
import pandas as pd
import pytest

from jaxlab import boxcount as bc
from jaxlab.errors import ConfigError

N = 512
YY, XX = np.mgrid[:N, :N]


def carpet(k: int) -> np.ndarray:
    """The Sierpinski carpet at 3**k pixels a side (True: in the set)."""
    a = np.ones((1, 1), bool)
    for _ in range(k):
        z = np.zeros_like(a)
        a = np.block([[a, a, a], [a, z, a], [a, a, a]])
    return a


@pytest.mark.parametrize(
    "name, success, expected, tol",
    [
        ("straight line", XX < 200.5 + 0.3 * YY, 1.0, 0.1),
        ("circle", (XX - 256) ** 2 + (YY - 256) ** 2 < 180**2, 1.0, 0.1),
        ("filled noise", np.random.default_rng(0).random((N, N)) < 0.5, 2.0, 0.01),
        ("Sierpinski carpet", carpet(6), np.log(8) / np.log(3), 0.02),
    ],
)
def test_known_dimensions(name, success, expected, tol):
    est = bc.dimension(success)
    assert abs(est.dimension - expected) < tol, (name, est[:4])
    assert est.r2 > 0.99 and est.stderr < 0.05
    assert est.lo == 2 and est.hi == min(success.shape) // 8


def test_sierpinski_triangle_counts_exactly():
    """Pascal's triangle mod 2 at 2**9 pixels: 3**(9 - k) boxes of 2**k, slope log2(3)."""
    i, j = np.mgrid[: 2**9, : 2**9]
    sizes, counts = bc.box_counts((i & j) == 0)
    np.testing.assert_array_equal(sizes, 2 ** np.arange(10))
    np.testing.assert_array_equal(counts, 3 ** np.arange(9, -1, -1))
    est = bc.fit(sizes, counts, 1, 64)
    assert est.dimension == pytest.approx(np.log2(3), abs=1e-12) and est.r2 == pytest.approx(1)


def test_boundary_pixels():
    s = np.zeros((4, 5), bool)
    s[:, 3:] = True
    edge = bc.boundary(s)
    np.testing.assert_array_equal(edge.any(axis=0), [False, False, True, True, False])
    assert edge[:, 2:4].all()


def test_refusals():
    with pytest.raises(ConfigError, match="no boundary"):
        bc.dimension(np.ones((64, 64), bool))
    with pytest.raises(ConfigError, match="at least 3 sizes"):
        bc.dimension(np.eye(16, dtype=bool))
    with pytest.raises(ConfigError, match="2-D boolean"):
        bc.boundary(np.zeros((4, 4)))


def _uniform_table(fn, n=8):
    """A uniform cells table over log-spaced a x b: success = fn(i, j) of the pixel indices."""
    a, b = np.geomspace(1e-2, 1e2, n), np.geomspace(1, 10, n)
    rows = [
        {"a": a[i], "b": b[j], "success_rate": float(fn(i, j))} for i in range(n) for j in range(n)
    ]
    return pd.DataFrame(rows).sample(frac=1, random_state=0), a, b


def test_rasterise_uniform():
    table, a, b = _uniform_table(lambda i, j: i > j)
    r = bc.rasterise(table, "a", "b")
    i, j = np.meshgrid(np.arange(8), np.arange(8))
    np.testing.assert_array_equal(r.success, i > j)  # row j is b's j-th value
    assert r.log == (True, True) and len(r.x_edges) == 9
    np.testing.assert_allclose(np.sqrt(r.x_edges[1:] * r.x_edges[:-1]), a)
    with pytest.raises(ConfigError, match="full grid"):
        bc.rasterise(table.iloc[1:], "a", "b")
    with pytest.raises(ConfigError, match="no such column"):
        bc.rasterise(table, "a", "c")


def _refined_table():
    """A 2 x 2 base grid over [0, 4] x [0, 4] (linear), its cell (0, 0) split once and that
    one's child (0, 0) split again: a pixel of 0.5 at depth 2, 8 x 8 pixels."""
    rows = []

    def cell(x0, y0, size, level, leaf, ok):
        rows.append(
            dict(x=x0 + size / 2, y=y0 + size / 2, x_lo=x0, x_hi=x0 + size, y_lo=y0,
                 y_hi=y0 + size, level=level, leaf=leaf, success_rate=float(ok))
        )  # fmt: skip

    for x0 in (0, 2):
        for y0 in (0, 2):
            cell(x0, y0, 2, 0, (x0, y0) != (0, 0), x0 > 0)
    for x0 in (0, 1):
        for y0 in (0, 1):
            cell(x0, y0, 1, 1, (x0, y0) != (0, 0), x0 > 0)
    for x0 in (0, 0.5):
        for y0 in (0, 0.5):
            cell(x0, y0, 0.5, 2, True, x0 > 0)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("log", [False, True])
def test_rasterise_refined(log):
    t = _refined_table()
    if log:  # the same quadtree on log axes: bounds 10**bound, centres the geometric means
        for c in ("x", "x_lo", "x_hi", "y", "y_lo", "y_hi"):
            t[c] = 10.0 ** t[c]
    r = bc.rasterise(t, "x", "y")
    assert r.success.shape == (8, 8) and r.log == (log, log)
    np.testing.assert_allclose(r.x_edges, 10 ** (np.arange(9) / 2) if log else np.arange(9) / 2)
    expected = np.zeros((8, 8), bool)
    expected[:, 4:] = True  # the base cells at x >= 2
    expected[:4, 2:4] = True  # level 1: x in [1, 2), y < 2
    expected[:2, 1] = True  # level 2: x in [0.5, 1), y < 1
    np.testing.assert_array_equal(r.success, expected)
    with pytest.raises(ConfigError, match="do not tile"):
        t = _refined_table()
        bc.rasterise(t[~((t["level"] == 2) & (t["x"] == 0.25) & (t["y"] == 0.25))], "x", "y")
