"""The engine's unrolled kernel is the same function as the array form, and its hand-written
backward rule is the same gradient: checked in float64 on batches of random parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxlab.datasets import DATASETS, Dataset
from jaxlab.gradients import network_loss
from jaxlab.losses import sigmoid
from jaxlab.network import from_vector, n_params, tanh, to_vector
from jaxlab.unrolled import fits, neg_sum_log, unrolled_loss
from jaxlab.vecmath import log_pos64, sigmoid64, tanh64

CASES = [(d, w, k) for d in DATASETS for w in [(2, 2, 1), (2, 3, 4, 1)] for k in ("lab", "logit")]


@pytest.mark.parametrize("dataset,widths,kind", CASES)
def test_unrolled_matches_array_form(dataset, widths, kind):
    data = DATASETS[dataset]
    n = n_params(widths)
    vecs = 3.0 * jax.random.normal(jax.random.key(7), (200, n), jnp.float64)

    def reference(v):
        f = network_loss(data, kind, "autodiff")
        value, grad = jax.value_and_grad(f)(from_vector(v, widths))
        return value, to_vector(grad)

    ref_v, ref_g = jax.jit(jax.vmap(reference))(vecs)
    for method in ("autodiff", "manual"):
        f = unrolled_loss(data, widths, kind, method)

        def mine(v, f=f):
            value, grad = jax.value_and_grad(f)(tuple(v[i] for i in range(n)))
            return value, jnp.stack(grad)

        v, g = jax.jit(jax.vmap(mine))(vecs)
        np.testing.assert_allclose(v, ref_v, rtol=1e-12, atol=1e-14)
        err = jnp.linalg.norm(g - ref_g, axis=1) / jnp.maximum(
            jnp.linalg.norm(ref_g, axis=1), 1e-12
        )
        assert float(err.max()) < 1e-10, (method, float(err.max()))


@pytest.mark.parametrize("kind", ["lab", "logit"])
def test_manual_unrolled_check_grads(kind):
    f = unrolled_loss(DATASETS["lab"], (2, 2, 1), kind, "manual")
    v = jax.random.normal(jax.random.key(3), (9,), jnp.float64)
    check_grads(lambda *p: f(p), tuple(v[i] for i in range(9)), order=1, modes=["rev"])


def test_general_labels_and_inputs():
    """Labels other than 0/1 and inputs other than 0/+-1 take the general (unfolded) terms."""
    data = Dataset(x=np.array([[0.5, -2.0], [1.5, 0.0], [0.0, 3.0]]), y=np.array([0.3, 1.0, 0.0]))
    v = jax.random.normal(jax.random.key(5), (n_params((2, 3, 1)),), jnp.float64)
    for kind in ("lab", "logit"):
        ref = jax.grad(network_loss(data, kind))(from_vector(v, (2, 3, 1)))
        for method in ("autodiff", "manual"):
            g = jax.grad(unrolled_loss(data, (2, 3, 1), kind, method))(tuple(v))
            np.testing.assert_allclose(jnp.stack(g), to_vector(ref), rtol=1e-10, atol=1e-14)


def test_saturated_float32_is_finite():
    """The lab's capped loss (34.5 per point) and a zero gradient once the output saturates."""
    f = jax.jit(jax.value_and_grad(unrolled_loss(DATASETS["lab"], (2, 2, 1), "lab", "manual")))
    v = tuple(jnp.float32(x) for x in (0, 0, 0, 0, 0, 0, -200.0, 0, 0))  # f_out = 0 everywhere
    value, grad = f(v)
    assert np.isfinite(float(value)) and float(value) == pytest.approx(34.538776 / 5, rel=1e-5)
    assert all(np.isfinite(float(g)) for g in grad)


def test_fits():
    assert fits(DATASETS["lab"], (2, 2, 1))
    assert not fits(Dataset(np.zeros((1000, 2)), np.zeros(1000)), (2, 64, 1))


def test_log_pos64_within_one_ulp():
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            10.0 ** rng.uniform(-307, 308, 100_000),
            rng.uniform(0.5, 2.0, 100_000),
            1.0 + rng.normal(0, 1e-9, 1000),
            [2.2250738585072014e-308, 1.0, 2.0, 0.5, np.sqrt(2.0), 1e-15, 1.7976931348623157e308],
        ]
    )
    got = np.asarray(jax.jit(log_pos64)(jnp.asarray(x)))
    ref = np.log(x)
    ulps = np.abs(got - ref) / np.spacing(np.abs(ref) + (ref == 0))
    assert got[np.flatnonzero(x == 1.0)[0]] == 0.0
    assert float(ulps.max()) <= 1.0
    with pytest.raises(TypeError, match="float64"):
        log_pos64(jnp.ones(3, jnp.float32))


def test_sigmoid64_as_accurate_as_xla_exp():
    """Within 3 ulp of 1 / (1 + exp(-x)) in 80-bit arithmetic wherever the value is normal (XLA's
    own exp-and-divide form reaches 2.4), and the edges: 0, 1, NaN, the overflow of exp."""
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [rng.uniform(-40, 40, 200_000), rng.uniform(-708, 708, 50_000), rng.normal(0, 3, 200_000)]
    )
    got = np.asarray(jax.jit(sigmoid64)(jnp.asarray(x)))
    ref = 1 / (1 + np.exp(-x.astype(np.longdouble)))
    ulps = np.abs(got - ref) / np.spacing(ref.astype(np.float64))
    assert float(ulps.max()) <= 3.0
    edges = np.array([np.inf, -np.inf, np.nan, 0.0, 40.0, 41.0, 1e300, -708.0, -709.0, -1e300])
    got = np.asarray(jax.jit(sigmoid64)(jnp.asarray(edges)))
    np.testing.assert_array_equal(got[[0, 4, 5, 6]], 1.0)
    np.testing.assert_array_equal(got[[1, 8, 9]], 0.0)
    assert np.isnan(got[2]) and got[3] == 0.5
    np.testing.assert_allclose(got[7], np.exp(-708.0), rtol=1e-14)
    # losses.sigmoid takes this form in float64 only; its derivative stays s (1 - s).
    z = jnp.linspace(-30.0, 30.0, 61)
    np.testing.assert_array_equal(sigmoid(z), sigmoid64(z))
    np.testing.assert_array_equal(jax.vmap(jax.grad(sigmoid))(z), sigmoid(z) * (1 - sigmoid(z)))
    z32 = z.astype(jnp.float32)
    np.testing.assert_array_equal(sigmoid(z32), jax.jit(lambda v: 1 / (1 + jnp.exp(-v)))(z32))
    with pytest.raises(TypeError, match="float64"):
        sigmoid64(z32)


def test_tanh64_more_accurate_than_xla_tanh():
    """Within 4.5 ulp of tanh in 80-bit arithmetic (XLA's own float64 tanh reaches 6.6), odd,
    exact near 0 (no cancellation), 1 past |x| = 20, NaN and the infinities kept."""
    rng = np.random.default_rng(2)
    x = np.concatenate(
        [
            rng.uniform(-20, 20, 200_000),
            rng.normal(0, 1, 200_000),
            rng.uniform(-0.4, 0.4, 100_000),  # n = 0 and n = 1 of the reduction
            10.0 ** rng.uniform(-300, 0, 20_000),
        ]
    )
    got = np.asarray(jax.jit(tanh64)(jnp.asarray(x)))
    ref = np.tanh(x.astype(np.longdouble))
    ulps = np.abs(got - ref) / np.spacing(np.abs(ref).astype(np.float64))
    assert float(ulps.max()) <= 4.5
    np.testing.assert_array_equal(np.asarray(jax.jit(tanh64)(jnp.asarray(-x))), -got)
    edges = np.array([0.0, -0.0, 1e-300, np.inf, -np.inf, np.nan, 20.5, -1e300])
    got = np.asarray(jax.jit(tanh64)(jnp.asarray(edges)))
    np.testing.assert_array_equal(got[[0, 1, 2, 3, 4, 6, 7]], [0.0, -0.0, 1e-300, 1, -1, 1, -1])
    assert np.signbit(got[1]) and np.isnan(got[5])
    # network.tanh takes this form in float64 only; its derivative stays 1 - tanh^2.
    z = jnp.linspace(-5.0, 5.0, 41)
    np.testing.assert_array_equal(tanh(z), tanh64(z))
    t = tanh(z)
    np.testing.assert_allclose(jax.vmap(jax.grad(tanh))(z), (1 + t) * (1 - t), rtol=0, atol=1e-15)
    z32 = z.astype(jnp.float32)
    np.testing.assert_array_equal(tanh(z32), jnp.tanh(z32))
    with pytest.raises(TypeError, match="float64"):
        tanh64(z32)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("n_terms", [1, 5, 20, 21, 130])
def test_neg_sum_log_is_the_sum_of_logs(dtype, n_terms):
    """One log per block (frexp in float32, a plain product in float64) equals the per-term
    logs, down to the lab's smallest term 1e-15 (whose products underflow float32)."""
    rng = np.random.default_rng(n_terms)
    vals = 10.0 ** rng.uniform(-15, 0, (n_terms, 64))
    vals[:, :8] = 1e-15  # every term at the floor: the worst case for underflow
    vals[:, 8:16] = 1.0 + 1e-15
    terms = tuple(jnp.asarray(v, dtype) for v in vals)
    got = jax.jit(neg_sum_log)(terms)
    ref = -sum(np.log(np.asarray(t, np.float64)) for t in terms)
    tol = 1e-6 if dtype == jnp.float32 else 1e-13
    np.testing.assert_allclose(np.asarray(got, np.float64), ref, rtol=tol, atol=tol * n_terms)
    g = jax.grad(lambda ts: jnp.sum(neg_sum_log(ts)))(terms)
    for t, gt in zip(terms, g):
        np.testing.assert_allclose(gt, -1.0 / t, rtol=1e-6)
    bad = terms[:-1] + (terms[-1].at[0].set(jnp.nan).at[1].set(jnp.inf),)
    out = np.asarray(jax.jit(neg_sum_log)(bad))
    assert np.isnan(out[0]) and not np.isfinite(out[1]) and np.isfinite(out[2:]).all()
