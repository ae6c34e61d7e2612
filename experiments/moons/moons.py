"""A user's own problem: a one-hidden-layer tanh network on two interleaved half-moons.

Swept from Python (``python experiments/moons/moons.py``) or from its TOML
(``jaxlab sweep --config experiments/moons/moons.toml``); the module is the issue's example,
unchanged but for its data.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxlab


def _two_moons(n: int = 64, noise: float = 0.1, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    upper = np.stack([np.cos(t[: n // 2]), np.sin(t[: n // 2])], 1)
    lower = np.stack([1 - np.cos(t[n // 2 :]), 0.5 - np.sin(t[n // 2 :])], 1)
    x = np.concatenate([upper, lower]) + noise * rng.normal(size=(n, 2))
    y = np.concatenate([np.zeros(n // 2), np.ones(n - n // 2)])
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


X, Y = _two_moons()  # small arrays the user made


def init(key, s):  # s: this run's settings; traced ones are scalars
    k1, k2 = jax.random.split(key)
    return {
        "W": s["scale"] * jax.random.normal(k1, (2, s["width"])),
        "v": s["scale"] * jax.random.normal(k2, (s["width"],)),
    }


def loss(params, s):
    logits = jnp.tanh(X @ params["W"]) @ params["v"]
    return optax.sigmoid_binary_cross_entropy(logits, Y).mean()


moons = jaxlab.Problem(
    init=init,
    loss=loss,
    traced={"lr": 0.1, "scale": 1.0},  # vmapped: new values never recompile
    static={"width": 8},  # one compile per value
)


if __name__ == "__main__":
    cfg = jaxlab.SweepConfig(
        problem=moons, optimizer="adam", max_steps=300, n_runs=1000, threshold=0.05
    ).with_settings(lr={"log": [1e-3, 1.0, 13]}, width=[4, 8, 16])
    res = jaxlab.run_sweep(cfg, "runs/moons")
    print(res.to_pandas().sort_values("success_rate").tail(5))
