"""The core modules against the lab: gradient descent and its stopping rule, the objectives, the
network, the losses, hand-written gradients and training; plus the user-facing errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxlab.descent import Status, descend, gd, lab_schedule
from jaxlab.errors import ConfigError
from jaxlab.gradients import manual_loss, network_loss
from jaxlab.losses import EPS, bce_lab, bce_logit, sigmoid
from jaxlab.network import (
    LAB_DATA,
    from_vector,
    grid,
    init_params,
    n_params,
    predict,
    to_vector,
)
from jaxlab.objectives import OBJECTIVES, get_objective, minimize
from jaxlab.train import make_optimizer, train

METHODS = ("autodiff", "manual")
LAB_VECTOR = np.array([0.3, -1.2, 0.8, 1.5, -0.4, 0.9, -0.7, 1.1, -2.0])


def lab_predict(params, x1, x2):
    """The lab's ``nnet.predict``, transcribed to NumPy."""
    b1, b2, w11, w12, w21, w22, c, u1, u2 = params
    z1 = np.tanh(b1 + x1 * w11 + x2 * w21)
    z2 = np.tanh(b2 + x1 * w12 + x2 * w22)
    return 1 / (1 + np.exp(-(c + u1 * z1 + u2 * z2)))


def lab_loss(params, x1, x2, y):
    preds = lab_predict(params, x1, x2)
    return -np.mean(y * np.log(preds + 1e-15) + (1 - y) * np.log(1 - preds + 1e-15))


def tree_allclose(a, b, **kw):
    return all(jax.tree.leaves(jax.tree.map(lambda u, v: np.allclose(u, v, **kw), a, b)))


# --- Exercise 1: gradient descent ------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_pen_and_paper_steps(method):
    res = minimize("lab", [6.0, 6.0], lab_schedule, max_steps=3, method=method, trajectory=True)
    pts, vals = res.trajectory
    np.testing.assert_allclose(pts, [[6, 6], [9, 3], [8, 4], [8, 4]], atol=1e-12)
    np.testing.assert_allclose(vals, [0, -9, -12, -12], atol=1e-12)
    # the third step does not move: the decrease 0 < tol fires the rule
    assert int(res.steps) == 3 and int(res.status) == Status.CONVERGED
    np.testing.assert_allclose(res.params, [8, 4], atol=1e-12)


def test_lab_value_and_gradient_at_start():
    lab = get_objective("lab")
    assert float(lab.value(jnp.array([6.0, 6.0]))) == 0.0
    np.testing.assert_array_equal(lab.grad(jnp.array([6.0, 6.0])), [-6.0, 6.0])


@pytest.mark.parametrize("method", METHODS)
def test_lab_optimizer_constant_rate(method):
    """``gradient_descent_optimizer(c(6, 6), ..., 10, 0.1)`` prints ``7.943505 4.056495``."""
    res = minimize("lab", [6.0, 6.0], 0.1, max_steps=10, method=method)
    np.testing.assert_allclose(res.params, [7.943505, 4.056495], atol=5e-7)
    assert int(res.steps) == 10 and int(res.status) == Status.MAX_STEPS


def test_stops_on_rise_and_keeps_the_point():
    # (6, 6) - 1 * (-6, 6) = (12, 0), f = 36 > 0: the value rose
    res = minimize("lab", [6.0, 6.0], 1.0, max_steps=50, trajectory=True)
    assert int(res.status) == Status.STALLED and int(res.steps) == 1
    np.testing.assert_allclose(res.params, [12.0, 0.0])
    assert float(res.value) == 36.0
    np.testing.assert_allclose(res.trajectory[0][1:], np.tile([12.0, 0.0], (50, 1)))


def test_stops_on_small_decrease():
    res = minimize("lab", [6.0, 6.0], 0.1, max_steps=1000, tol=1e-4)
    assert int(res.status) == Status.CONVERGED
    assert 10 < int(res.steps) < 1000
    # the point after the firing step is kept, and the value is the value there
    np.testing.assert_allclose(float(res.value), float(get_objective("lab").value(res.params)))


def test_max_steps_status():
    res = minimize("lab", [6.0, 6.0], 0.01, max_steps=5)
    assert int(res.status) == Status.MAX_STEPS and int(res.steps) == 5


def test_overflow_is_diverged_not_an_exception():
    res = minimize("rosenbrock", [0.0, 0.0], 1e100, max_steps=20)
    assert int(res.status) == Status.DIVERGED and int(res.steps) == 1
    nan_start = minimize("lab", [math.nan, 0.0], 0.1, max_steps=5)
    assert int(nan_start.status) == Status.DIVERGED and int(nan_start.steps) == 0


def test_descent_under_jit_and_vmap_matches_unjitted():
    cases = [
        ("lab", [6.0, 6.0], 0.1),
        ("lab", [6.0, 6.0], 1.0),
        ("lab", [0.0, 3.0], 0.01),
        ("rosenbrock", [0.0, 0.0], 1e100),
        ("rosenbrock", [-1.0, 2.0], 1e-3),
    ]
    for name in ("lab", "rosenbrock"):
        sub = [c for c in cases if c[0] == name]
        x0 = jnp.array([c[1] for c in sub])
        lrs = jnp.array([c[2] for c in sub])

        def run(x, lr, name=name):
            return minimize(name, x, lr, max_steps=30)

        batched = jax.jit(jax.vmap(run))(x0, lrs)
        for i, (_, x, lr) in enumerate(sub):
            single = minimize(name, x, lr, max_steps=30)
            jitted = jax.jit(run)(jnp.array(x), jnp.array(lr))
            for other in (jitted, jax.tree.map(lambda a, i=i: a[i], batched)):
                assert int(other.status) == int(single.status)
                assert int(other.steps) == int(single.steps)
                np.testing.assert_allclose(other.params, single.params, rtol=1e-12)


def test_descend_with_any_pytree():
    vg = jax.value_and_grad(lambda p: jnp.sum((p["a"] - 1.0) ** 2) + p["b"] ** 2)
    res = descend(vg, {"a": jnp.zeros(3), "b": jnp.array(2.0)}, gd(0.25), max_steps=200)
    np.testing.assert_allclose(res.params["a"], 1.0, atol=1e-2)
    assert int(res.status) == Status.CONVERGED


# --- the objective registry -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_objective_minimizers(name):
    obj = OBJECTIVES[name]
    for x in obj.minimizers:
        np.testing.assert_allclose(float(obj.value(jnp.array(x))), obj.minimum, atol=1e-8)
    for x in obj.all_minimizers:
        # stationary (to the digits the minimisers are given with)
        np.testing.assert_allclose(obj.grad(jnp.array(x)), 0.0, atol=1e-4)
    for x in obj.local_minimizers:
        assert float(obj.value(jnp.array(x))) > obj.minimum


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_objective_gradient_matches_autodiff(name):
    obj = OBJECTIVES[name]
    (lo1, hi1), (lo2, hi2) = obj.box
    xs = np.random.default_rng(0).uniform([lo1, lo2], [hi1, hi2], (200, 2))
    hand = jax.vmap(obj.grad)(xs)
    auto = jax.vmap(jax.grad(obj.value))(xs)
    manual = jax.vmap(jax.grad(obj.fn("manual")))(xs)
    np.testing.assert_allclose(hand, auto, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(manual, hand)
    check_grads(obj.fn("manual"), (jnp.asarray(xs[0]),), order=1, modes=["rev"])


# --- the network ------------------------------------------------------------------------------


def test_vector_round_trip_and_lab_order():
    params = from_vector(LAB_VECTOR)
    (h, out) = params
    b1, b2, w11, w12, w21, w22, c, u1, u2 = LAB_VECTOR
    np.testing.assert_array_equal(h.b, [b1, b2])
    np.testing.assert_array_equal(h.W, [[w11, w12], [w21, w22]])  # W[i, j]: input i -> unit j
    np.testing.assert_array_equal(out.b, [c])
    np.testing.assert_array_equal(out.W, [[u1], [u2]])
    np.testing.assert_array_equal(to_vector(params), LAB_VECTOR)
    deep = init_params(jax.random.key(1), (2, 3, 4, 1))
    assert to_vector(deep).shape == (n_params((2, 3, 4, 1)),)
    assert tree_allclose(from_vector(to_vector(deep), (2, 3, 4, 1)), deep, rtol=0, atol=0)


def test_predict_and_loss_match_the_lab_code():
    x1, x2 = LAB_DATA.x[:, 0], LAB_DATA.x[:, 1]
    params = from_vector(LAB_VECTOR)
    np.testing.assert_allclose(predict(params, LAB_DATA.x), lab_predict(LAB_VECTOR, x1, x2))
    want = lab_loss(LAB_VECTOR, x1, x2, LAB_DATA.y)
    for method in METHODS:
        got = network_loss(LAB_DATA, "lab", method)(params)
        np.testing.assert_allclose(got, want, rtol=1e-14)


def test_grid():
    g = grid()
    assert g.shape == (10201, 2)
    assert g.min() == -2.0 and g.max() == pytest.approx(2.0)
    np.testing.assert_allclose(g[:3], [[-2, -2], [-1.96, -2], [-1.92, -2]])  # x1 fastest
    np.testing.assert_allclose(g[101], [-2, -1.96])


@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_init_scale(scale):
    keys = jax.random.split(jax.random.key(0), 2000)
    vecs = jax.jit(jax.vmap(lambda k: to_vector(init_params(k, scale=scale))))(keys)
    assert vecs.shape == (2000, 9)
    assert abs(float(jnp.std(vecs)) / scale - 1.0) < 0.03
    assert abs(float(jnp.mean(vecs))) < 0.05 * scale


def test_deeper_widths_train():
    for widths in [(2, 3, 3, 1), (2, 1)]:
        params = init_params(jax.random.key(3), widths)
        assert predict(params, grid()).shape == (10201,)
    res = jax.jit(lambda p: train(p, max_steps=3))(params)
    assert jnp.isfinite(res.value)


# --- losses -----------------------------------------------------------------------------------


def test_lab_loss_formula():
    f = jnp.array([0.2, 0.9, 0.5, 1e-3, 0.999])
    y = jnp.array([1.0, 0.0, 1.0, 0.0, 1.0])
    want = -np.mean(y * np.log(f + 1e-15) + (1 - y) * np.log(1 - f + 1e-15))
    np.testing.assert_allclose(bce_lab(f, y), want, rtol=1e-15)
    assert EPS == 1e-15


def test_logit_loss_equals_lab_loss_for_moderate_logits():
    z = jnp.linspace(-10.0, 10.0, 41)
    y = (jnp.arange(41) % 2).astype(z.dtype)
    np.testing.assert_allclose(bce_logit(z, y), bce_lab(sigmoid(z), y), rtol=1e-10)
    lab_no_eps = -jnp.mean(y * jnp.log(sigmoid(z)) + (1 - y) * jnp.log(1 - sigmoid(z)))
    np.testing.assert_allclose(bce_logit(z, y), lab_no_eps, rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_stable_loss_never_nan(dtype):
    z = jnp.array([1e30, -1e30, 1e30, -1e30, 0.0], dtype)
    y = jnp.array([1.0, 0.0, 0.0, 1.0, 1.0], dtype)
    value, grad = jax.value_and_grad(bce_logit)(z, y)
    assert value.dtype == dtype
    assert jnp.isfinite(value) and bool(jnp.all(jnp.isfinite(grad)))
    np.testing.assert_allclose(grad, (sigmoid(z) - y) / 5, atol=1e-7)
    # the lab's loss saturates at -log(1e-15) instead of growing
    assert jnp.isfinite(bce_lab(sigmoid(z), y))


def test_sigmoid_derivative_where_it_saturates():
    x = jnp.array([-100.0, -50.0, 0.0, 100.0], jnp.float32)
    literal = jax.jit(jax.vmap(jax.grad(lambda v: 1.0 / (1.0 + jnp.exp(-v)))))(x)
    ours = jax.jit(jax.vmap(jax.grad(sigmoid)))(x)
    assert bool(jnp.isnan(literal[0]))  # inf / inf once exp(100) overflows float32
    assert bool(jnp.all(jnp.isfinite(ours)))
    np.testing.assert_array_equal(ours[np.array([0, 3])], 0.0)
    np.testing.assert_allclose(ours[2], 0.25)


# --- hand-written gradients -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, widths", [("lab", (2, 2, 1)), ("logit", (2, 2, 1)), ("lab", (2, 3, 3, 1))]
)
def test_check_grads_manual_loss(kind, widths):
    params = init_params(jax.random.key(7), widths)
    check_grads(lambda p: manual_loss(p, LAB_DATA, kind), (params,), order=1, modes=["rev"])


@pytest.mark.parametrize("kind", ["lab"])
def test_manual_gradients_under_jit_vmap_and_grad_of_vmap(kind):
    keys = jax.random.split(jax.random.key(11), 8)
    batch = jax.vmap(lambda k: init_params(k, (2, 3, 1)))(keys)
    grads = {}
    for method in METHODS:
        f = network_loss(LAB_DATA, kind, method)
        grads[method] = (
            jax.jit(jax.grad(f))(jax.tree.map(lambda a: a[0], batch)),
            jax.jit(jax.vmap(jax.grad(f)))(batch),
            jax.jit(jax.grad(lambda b, f=f: jnp.sum(jax.vmap(f)(b))))(batch),
        )
    for got, want in zip(grads["manual"], grads["autodiff"]):
        assert tree_allclose(got, want, rtol=1e-12, atol=1e-14)
    # grad of a sum over a batch = per-example grads
    assert tree_allclose(grads["manual"][1], grads["manual"][2], rtol=1e-12, atol=1e-14)


# --- training ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_train_jit_vmap_match_unjitted(method):
    keys = [jax.random.fold_in(jax.random.key(0), i) for i in range(16)]
    inits = [init_params(k) for k in keys]

    def run(params, lr):
        return train(params, LAB_DATA, lr, max_steps=100, method=method)

    batched = jax.jit(jax.vmap(run, in_axes=(0, None)))(
        jax.tree.map(lambda *a: jnp.stack(a), *inits), jnp.array(1.0)
    )
    jitted = jax.jit(run)
    i = 3
    single = train(inits[i], LAB_DATA, 1.0, max_steps=100, method=method)
    for other in (jitted(inits[i], jnp.array(1.0)), jax.tree.map(lambda a: a[i], batched)):
        assert int(other.status) == int(single.status)
        assert int(other.steps) == int(single.steps)
        np.testing.assert_allclose(other.value, single.value, rtol=1e-10)
        assert tree_allclose(other.params, single.params, rtol=1e-10, atol=1e-12)
    # the loop of single runs over all 16 equals the batch
    loop = [jitted(p, jnp.array(1.0)) for p in inits]
    np.testing.assert_allclose([float(r.value) for r in loop], batched.value, rtol=1e-10)
    np.testing.assert_array_equal([int(r.steps) for r in loop], batched.steps)


def test_train_reproduces_the_lab_loss_with_manual_and_autodiff():
    params = init_params(jax.random.key(5))
    a = train(params, method="autodiff")
    m = train(params, method="manual")
    np.testing.assert_allclose(a.value, m.value, rtol=1e-10)
    assert int(a.steps) == int(m.steps)


def test_new_learning_rate_does_not_recompile():
    traces = []

    @jax.jit
    def step(params, lr):
        traces.append(1)
        opt = make_optimizer("gd", lr)
        return train(params, LAB_DATA, optimizer=opt, max_steps=5).value

    params = init_params(jax.random.key(0))
    values = [float(step(params, jnp.array(lr))) for lr in (0.1, 0.5, 2.0)]
    assert len(traces) == 1
    assert len(set(values)) == 3


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("lr", [-1.0, 0.0, math.nan, math.inf, "fast", True])
def test_bad_learning_rate(lr):
    params = init_params(jax.random.key(0))
    for call in (
        lambda: make_optimizer("gd", lr),
        lambda: train(params, learning_rate=lr),
        lambda: minimize("lab", [6.0, 6.0], lr),
    ):
        with pytest.raises(ConfigError, match=r"learning_rate.*finite number > 0"):
            call()


def test_bad_max_steps():
    with pytest.raises(ConfigError, match=r"max_steps.*integer in \[1,"):
        minimize("lab", [6.0, 6.0], 0.1, max_steps=0)
    with pytest.raises(ConfigError, match="max_steps"):
        train(init_params(jax.random.key(0)), max_steps=-3)


def test_widths_that_do_not_fit():
    with pytest.raises(ConfigError, match=r"widths: the input width 3 does not fit.*2 features"):
        train(init_params(jax.random.key(0), (3, 2, 1)), LAB_DATA)
    with pytest.raises(ConfigError, match="widths: the output layer must have width 1"):
        init_params(jax.random.key(0), (2, 2, 2))
    with pytest.raises(ConfigError, match="widths"):
        init_params(jax.random.key(0), (2, 0, 1))


def test_unknown_names():
    with pytest.raises(ConfigError, match=r"objective: .*did you mean 'rosenbrock'.*allowed: lab"):
        minimize("rosenbrok", [0.0, 0.0], 0.1)
    with pytest.raises(ConfigError, match=r"loss: unknown value 'bce'.*allowed: lab, logit"):
        network_loss(LAB_DATA, "bce")
    with pytest.raises(ConfigError, match=r"method: unknown value 'numeric'.*autodiff, manual"):
        network_loss(LAB_DATA, "lab", "numeric")
    with pytest.raises(ConfigError, match=r"method: .*did you mean 'manual'"):
        OBJECTIVES["lab"].fn("manul")
    with pytest.raises(ConfigError, match=r"optimizer: .*did you mean 'adam'"):
        make_optimizer("adem")
    with pytest.raises(ConfigError, match="loss"):
        train(init_params(jax.random.key(0)), loss="mse")
