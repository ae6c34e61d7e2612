"""The paper's own map: Sohl-Dickstein, "The boundary of neural network trainability is
fractal" (arXiv 2402.06184, 2024), its "tanh full batch" condition as a jaxlab problem.

Everything follows the paper's notebook (github.com/Sohl-Dickstein/fractal,
``the_boundary_of_neural_network_trainability_is_fractal.ipynb``, condition "tanh full batch"):

* **network**: one hidden layer of ``width = 16`` tanh units in the mean-field
  parameterisation, no biases: ``h = tanh(sqrt(2) X W0 / sqrt(d))``, ``f = h W1 / width``
  (the notebook divides each layer's pre-activation by the square root of its fan-in and the
  readout once more), ``W0`` ``(d, width)`` and ``W1`` ``(width, 1)`` drawn from N(0, 1);
* **data**: input dimension ``d = width``; as many points as the network has parameters
  (``n_points = width**2 + width = 272``: the notebook's ``dataset_param_multiple = 1``; the
  notebook's *minibatch* condition samples 16 of them per step); X and Y drawn from N(0, 1) by
  the notebook's own key sequence (``PRNGKey(0)``, split: the weights, split: X, split: Y),
  in float64 as the notebook draws them;
* **training**: full-batch gradient descent with one learning rate per layer, ``lr0`` for the
  input layer ``W0`` and ``lr1`` for the readout ``W1`` (:func:`per_layer_gd`, an
  ``optax.multi_transform`` built from the settings), a fixed budget of ``max_steps`` steps
  (the paper: 500 or 1,000; the notebook's default 100), mean squared error;
* **success** (trainable, the notebook's ``convergence_measure``): with ``v_t`` the loss
  before step ``t`` divided by the initial loss ``v_0`` (a non-finite loss counts as 1e6, and
  every ratio is capped at 1e6), training converges when the mean of the last 20 ``v_t`` is
  below 1. Otherwise the run ends with status ``DIVERGED``: a counted outcome, never an
  exception (a NaN or inf loss is just a ratio of 1e6).

The loop is the problem's own (``train(s, key)``, the contract's lower door) because that rule
reads the loss of the last 20 steps, not only the final one; it applies the setting
``optimizer`` (a function of the settings, default :func:`per_layer_gd`) to the hand-written
gradient :func:`grad`, which ``jaxlab gradcheck`` checks against ``jax.grad`` of :func:`loss`
and central differences in float64.

**The paper trains one fixed network for every pixel.** With ``keys = "paired"`` and
``n_runs = 1`` (``fractal.toml``) every cell gets the same restart key and so the same initial
weights: a deterministic map over (lr0, lr1), as the paper's. ``network = "paper"`` uses the
notebook's own initial weights (``PRNGKey(0)``) instead of the restart's key.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxlab
from jaxlab.descent import Status

CAP = 1e6  # the notebook's max_val: a non-finite or huge loss ratio counts as this
TAIL = 20  # the notebook averages the last 20 losses "over any oscillatory behavior"


@functools.cache
def paper_draws(width: int, n_points: int) -> dict[str, np.ndarray]:
    """The notebook's initial weights and data, float64 NumPy: ``W0`` (width, width), ``W1``
    (width, 1), ``X`` (n_points, width), ``Y`` (n_points, 1); the notebook's key sequence."""
    # Concrete values even when first called while a sweep traces (functools.cache keeps them).
    with jax.ensure_compile_time_eval(), jax.enable_x64(True):
        rng = jax.random.PRNGKey(0)
        rng, srng = jax.random.split(rng)
        k0, k1 = jax.random.split(srng, 2)
        w0 = jax.random.normal(k0, (width, width), jnp.float64)
        w1 = jax.random.normal(k1, (width, 1), jnp.float64)
        rng, srng = jax.random.split(rng)
        x = jax.random.normal(srng, (n_points, width), jnp.float64)
        rng, srng = jax.random.split(rng)
        y = jax.random.normal(srng, (n_points, 1), jnp.float64)
        return {k: np.asarray(v) for k, v in {"W0": w0, "W1": w1, "X": x, "Y": y}.items()}


def init(key, s):
    """``W0`` (width, width), ``W1`` (width, 1), N(0, 1): from the restart's key (the notebook's
    recipe), or the notebook's own weights with ``network = "paper"``."""
    w = s["width"]
    if s["network"] == "paper":
        d = paper_draws(w, s["n_points"])
        return {"W0": jnp.asarray(d["W0"]), "W1": jnp.asarray(d["W1"])}
    k0, k1 = jax.random.split(key)
    return {"W0": jax.random.normal(k0, (w, w)), "W1": jax.random.normal(k1, (w, 1))}


def predict(params, x):
    """The mean-field network on a batch ``x`` (n, width): (n, 1)."""
    w0, w1 = params["W0"], params["W1"]
    h = jnp.tanh(jnp.sqrt(2.0).astype(w0.dtype) * (x @ w0) / np.sqrt(w0.shape[0]))
    return (h @ w1) / w1.shape[0]


def loss(params, s):
    """Mean squared error on the notebook's data (in the parameters' dtype)."""
    d = paper_draws(s["width"], s["n_points"])
    dt = params["W0"].dtype
    return jnp.mean((predict(params, jnp.asarray(d["X"], dt)) - jnp.asarray(d["Y"], dt)) ** 2)


def grad(params, s):
    """``(loss, grad)`` by hand, the chain rule through the network (what :func:`train` uses;
    ``jaxlab gradcheck`` compares it with ``jax.grad`` of :func:`loss` and finite differences).
    With ``a = sqrt(2) X W0 / sqrt(d)``, ``h = tanh(a)``, ``f = h W1 / width``, ``r = f - Y``:
    ``dL/df = 2 r / n``, ``dW1 = h^T dL/df / width``, ``dL/da = (dL/df W1^T / width) (1 - h^2)``,
    ``dW0 = sqrt(2) / sqrt(d) X^T dL/da``."""
    d = paper_draws(s["width"], s["n_points"])
    w0, w1 = params["W0"], params["W1"]
    x, y = jnp.asarray(d["X"], w0.dtype), jnp.asarray(d["Y"], w0.dtype)
    c = jnp.asarray(np.sqrt(2.0) / np.sqrt(w0.shape[0]), w0.dtype)
    width = w1.shape[0]
    h = jnp.tanh(c * (x @ w0))
    r = (h @ w1) / width - y
    df = 2.0 * r / r.shape[0]
    da = ((df @ w1.T) / width) * (1.0 - h**2)
    return jnp.mean(r**2), {"W0": c * (x.T @ da), "W1": (h.T @ df) / width}


def per_layer_gd(s) -> optax.GradientTransformation:
    """Plain gradient descent, ``W0 - lr0 * grad`` and ``W1 - lr1 * grad``: one learning rate
    per layer, both traced (a new value never recompiles)."""
    return optax.multi_transform(
        {"W0": optax.sgd(s["lr0"]), "W1": optax.sgd(s["lr1"])}, {"W0": "W0", "W1": "W1"}
    )


def train(s, key) -> jaxlab.Outcome:
    """One training run, ``max_steps`` steps of ``s["optimizer"](s)`` on :func:`grad`, judged
    by the notebook's rule (module docstring): status ``DIVERGED`` when the mean of the last 20
    loss ratios is not below 1, else ``MAX_STEPS``; ``metrics["tail"]`` is that mean (1e6 for
    a run whose loss overflowed). Final ``loss``: after the last step (NaN if it overflowed)."""
    params = init(key, s)
    opt = s["optimizer"](s)
    n = s["max_steps"]
    dt = params["W0"].dtype

    def ratio(v, v0):
        r = v / v0
        return jnp.where(jnp.isfinite(r), jnp.minimum(r, CAP), CAP).astype(dt)

    def step(carry, t):
        params, opt_state, v0, tail = carry
        v, g = grad(params, s)
        v0 = jnp.where(t == 0, v, v0)
        tail = tail + jnp.where(t >= n - TAIL, ratio(v, v0), 0.0)
        updates, opt_state = opt.update(g, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, v0, tail), None

    zero = jnp.zeros((), dt)
    carry = (params, opt.init(params), zero, zero)
    (params, _, v0, tail), _ = jax.lax.scan(step, carry, jnp.arange(n))
    mean_tail = tail / min(TAIL, n)
    status = jnp.where(mean_tail < 1, Status.MAX_STEPS, Status.DIVERGED)
    final = loss(params, s)
    return jaxlab.Outcome(final, jnp.asarray(n, jnp.int32), status, {"tail": mean_tail})


def success(outcome, s):
    """Trainable: the notebook's rule did not call the run diverged."""
    return outcome.status != Status.DIVERGED


fractal = jaxlab.Problem(
    init=init,
    loss=loss,
    grad=grad,
    train=train,
    success=success,
    traced={"lr0": 1.0, "lr1": 1.0},  # the two axes of the map: vmapped, never recompiled
    static={
        "width": 16,
        "n_points": 272,  # = width**2 + width, the network's parameter count
        "network": "restart",
        "optimizer": per_layer_gd,
        "max_steps": 500,
    },
    checks={
        "width": (lambda v: isinstance(v, int) and v >= 1, "integers >= 1"),
        "n_points": (lambda v: isinstance(v, int) and v >= 1, "integers >= 1"),
        "network": ("restart", "paper"),
        # train() calls it: a name such as "gd" would read jaxlab's single lr
        "optimizer": (
            callable,
            "a function settings -> optax transformation (fractal:per_layer_gd)",
        ),
    },
    name="fractal",
)
