"""A regression problem: a one-hidden-layer tanh network fit to noisy samples of sin(x) on
[-pi, pi], mean squared error, with its own success rule and accuracy-style metrics.

* ``metrics``: ``r2`` (1 - MSE / variance of the targets) and ``within`` (the fraction of points
  predicted within 0.2 of their target); ``cells.csv`` gets ``mean_r2``, ``min_r2``,
  ``max_r2``, ``mean_within``, ...; ``runs.csv`` (``--keep-runs``) each run's values;
* ``success``: final MSE below ``frac`` times the targets' variance AND at least 90% of the
  points within 0.2 (``frac`` is a traced setting: an axis costs no recompile).

Swept from Python (``python experiments/regression/regression.py``) or from its TOML
(``jaxlab sweep --config experiments/regression/regression.toml``).
"""

import jax
import jax.numpy as jnp
import numpy as np

import jaxlab

N_POINTS = 32
NOISE = 0.1
WITHIN = 0.2  # a point is fit when |prediction - target| < WITHIN
MIN_WITHIN = 0.9  # ... and a run succeeds only when at least this fraction of points is


def _noisy_sin(n: int = N_POINTS, noise: float = NOISE, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-np.pi, np.pi, n))
    y = np.sin(x) + noise * rng.normal(size=n)
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


X, Y = _noisy_sin()  # (n,), (n,)
VAR = float(np.var(np.asarray(Y)))  # the MSE of predicting the mean: r2 = 0


def init(key, s):
    """W, b, v: (width,); c: (). Weights ~ N(0, scale^2), biases zero."""
    k1, k2 = jax.random.split(key)
    w = s["width"]
    return {
        "W": s["scale"] * jax.random.normal(k1, (w,)),
        "b": jnp.zeros((w,)),
        "v": s["scale"] * jax.random.normal(k2, (w,)) / jnp.sqrt(w),
        "c": jnp.zeros(()),
    }


def predict(params, x):
    """The network's prediction at one point ``x`` (a scalar); ``vmap`` maps it over data."""
    return jnp.tanh(x * params["W"] + params["b"]) @ params["v"] + params["c"]


def errors(params):
    """Prediction minus target at every data point: (n,)."""
    return jax.vmap(predict, (None, 0))(params, X) - Y


def loss(params, s):
    return jnp.mean(errors(params) ** 2)


def metrics(params, s):
    err = errors(params)
    return {
        "r2": 1.0 - jnp.mean(err**2) / VAR,
        "within": jnp.mean(jnp.abs(err) < WITHIN),
    }


def success(outcome, s):
    """Fit the data (MSE below ``frac`` of its variance) and most points individually."""
    return (outcome.loss < s["frac"] * VAR) & (outcome.metrics["within"] >= MIN_WITHIN)


regression = jaxlab.Problem(
    init=init,
    loss=loss,
    metrics=metrics,
    success=success,
    traced={"lr": 0.01, "scale": 1.0, "frac": 0.1},  # vmapped: new values never recompile
    static={"width": 16},  # one compile per value
    name="regression",
)


if __name__ == "__main__":
    cfg = jaxlab.SweepConfig(
        problem=regression, optimizer="adam", max_steps=500, n_runs=200, tol="off"
    ).with_settings(lr={"log": [1e-3, 0.3, 6]}, scale=[0.5, 1.0, 2.0, 4.0], width=[4, 16])
    res = jaxlab.run_sweep(cfg, "runs/regression")
    cols = ["width", "lr", "scale", "success_rate", "mean_r2", "mean_within"]
    print(res.to_pandas().sort_values("success_rate")[cols].tail(5))
