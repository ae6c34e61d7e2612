"""A problem whose model is an Equinox module: ``eqx.nn.MLP`` classifying two concentric rings.

jaxlab trains pytrees of arrays, so the module is split once with ``eqx.partition``: its array
leaves are the params ``init`` returns; the rest (the structure, the activation) is rebuilt
from the static setting ``width`` and put back with ``eqx.combine`` inside ``loss``. ``init``
scales the initial weights by the traced setting ``scale`` (an axis costs no recompile).

Needs ``pip install -e '.[equinox]'``. Swept from Python
(``python experiments/equinox_mlp/equinox_mlp.py``) or from its TOML
(``jaxlab sweep --config experiments/equinox_mlp/equinox_mlp.toml``).
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxlab


def _rings(n: int = 64, noise: float = 0.1, seed: int = 0):
    """Inner ring (radius 0.5, label 0) and outer ring (radius 1, label 1): (n, 2), (n,)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 2 * np.pi, n)
    r = np.where(np.arange(n) < n // 2, 0.5, 1.0)
    x = np.stack([r * np.cos(t), r * np.sin(t)], 1) + noise * rng.normal(size=(n, 2))
    y = (np.arange(n) >= n // 2).astype(np.float32)
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


X, Y = _rings()


def _mlp(width: int, key):
    return eqx.nn.MLP(2, "scalar", width, depth=1, activation=jnp.tanh, key=key)


@functools.cache
def _structure(width: int):
    """The module without its arrays: built abstractly (nothing runs), once per width."""
    model = eqx.filter_eval_shape(_mlp, width, jax.random.key(0))
    return eqx.partition(model, lambda x: isinstance(x, jax.ShapeDtypeStruct))[1]


def init(key, s):
    model = _mlp(s["width"], key)
    model = eqx.tree_at(
        lambda m: [layer.weight for layer in m.layers],
        model,
        replace_fn=lambda w: s["scale"] * w,
    )
    params, _ = eqx.partition(model, eqx.is_inexact_array)
    return params


def _model(params, s):
    return eqx.combine(params, _structure(s["width"]))


def loss(params, s):
    logits = jax.vmap(_model(params, s))(X)  # the module acts on one point; vmap the data
    return optax.sigmoid_binary_cross_entropy(logits, Y).mean()


def metrics(params, s):
    logits = jax.vmap(_model(params, s))(X)
    return {"accuracy": jnp.mean((logits > 0) == (Y > 0.5))}


problem = jaxlab.Problem(
    init=init,
    loss=loss,
    metrics=metrics,
    traced={"lr": 0.03, "scale": 1.0},  # vmapped: new values never recompile
    static={"width": 8},  # one compile per value
    name="equinox_mlp",
)


if __name__ == "__main__":
    cfg = jaxlab.SweepConfig(
        problem=problem, optimizer="adam", max_steps=300, n_runs=200, threshold=0.1, tol="off"
    ).with_settings(lr={"log": [3e-3, 0.3, 5]}, scale=[0.5, 1.0, 2.0, 4.0], width=[4, 16])
    res = jaxlab.run_sweep(cfg, "runs/equinox_mlp")
    cols = ["width", "lr", "scale", "success_rate", "mean_accuracy"]
    print(res.to_pandas().sort_values("success_rate")[cols].tail(5))
