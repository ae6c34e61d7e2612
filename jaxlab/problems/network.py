"""The lab's network as a :class:`jaxlab.Problem`: any widths, a named dataset or a file, the
lab's loss or the stable logit form, ``jax.grad`` or the hand-written VJPs, and the unrolled
kernel where it fits (:mod:`jaxlab.unrolled`: data points and units as ``(R,)`` vectors).

Settings: static ``dataset``, ``widths``, ``loss``; traced ``lr``, ``scale`` (weights and
biases ~ N(0, scale^2)), ``momentum``. Its figure is the decision-boundary atlas, from restarts
replayed when the sweep finishes (:mod:`jaxlab.problems.boundaries`), drawn by
:mod:`jaxlab.problems.network_figures`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxlab import unrolled
from jaxlab.contract import Problem
from jaxlab.datasets import DATASETS, dataset_digest, get_dataset, is_path
from jaxlab.errors import check_choice
from jaxlab.gradients import network_loss
from jaxlab.losses import LOSSES
from jaxlab.network import check_widths, from_vector, n_params

__all__ = ["DRAW_DTYPE", "KERNELS", "network", "params_as_layers"]

KERNELS = ("auto", "unrolled", "array")

# A restart's random start is drawn in float32 whatever the dtype it trains in, then
# converted: the same restart starts from the same point in float32 and float64 sweeps (only the
# arithmetic differs between them, as in the peers of ../shared/bench, which share their p0
# across dtypes), and float64 runs skip float64 sampling (64-bit random bits and a float64
# erfinv, recomputed by each kernel that reads a parameter before the loop): measured on one core,
# 110 ms of a 270 ms float64 chunk of 32k restarts x 100 steps, 25 ms once drawn in float32.
DRAW_DTYPE = jnp.float32


def _unrolled(kernel: str, data, widths) -> bool:
    if kernel != "auto":
        return kernel == "unrolled"
    return unrolled.fits(data, widths)


def _parts(kernel: str, s: dict):
    data = get_dataset(s["dataset"])
    widths = check_widths(s["widths"], data)
    return data, widths, _unrolled(kernel, data, widths)


def _loss_fn(kernel: str, s: dict, method: str):
    data, widths, flat = _parts(kernel, s)
    if flat:
        return unrolled.unrolled_loss(data, widths, s["loss"], method)
    return network_loss(data, s["loss"], method)


def params_as_layers(params, widths):
    """A network's params as Dense layers, from either kernel's layout."""
    if isinstance(params, tuple) and not hasattr(params[0], "W"):
        return from_vector(jnp.stack(params), widths)
    return params


def _check_dataset(v) -> bool:
    if not isinstance(v, str):
        return False
    if v in DATASETS or is_path(v):
        get_dataset(v)  # a file that cannot be read: its own one-line error, naming the file
        return True
    get_dataset(v)  # an unknown name: the registry's did-you-mean
    return False


def _check_widths(v) -> bool:
    try:
        check_widths(v)
    except ValueError:
        return False
    return True


@functools.cache
def network(kernel: str = "auto") -> Problem:
    """The lab's network problem (one object per ``kernel``: the same compiled programs).

    ``kernel``: ``"auto"`` (the unrolled form where it fits), ``"unrolled"`` or ``"array"``.
    """
    check_choice("kernel", kernel, KERNELS)

    def init(key, s):
        data, widths, flat = _parts(kernel, s)
        scale = jnp.asarray(s["scale"])
        z = jax.random.normal(key, (n_params(widths),), DRAW_DTYPE).astype(scale.dtype)
        vec0 = scale * z
        if flat:
            return tuple(vec0[i] for i in range(vec0.shape[0]))
        return from_vector(vec0, widths)

    def loss(params, s):
        return _loss_fn(kernel, s, "autodiff")(params)

    def grad(params, s):
        return jax.value_and_grad(_loss_fn(kernel, s, "manual"))(params)

    from jaxlab.problems import boundaries  # what the problem stores for its figure

    return Problem(
        init=init,
        loss=loss,
        grad=grad,
        static={"dataset": "lab", "widths": (2, 2, 1), "loss": "lab"},
        # The main job: learning rate on a log grid around the lab's 1, scale 0.25 .. 4.
        traced={"lr": {"log": [0.1, 10.0, 11]}, "scale": {"log": [0.25, 4.0, 9]}, "momentum": 0.9},
        checks={
            "dataset": (
                _check_dataset,
                "names from " + ", ".join(DATASETS) + ", or a path to "
                "a .csv or .npz file (feature columns, then a 0/1 label)",
            ),
            "widths": (_check_widths, "lists of positive integers ending in 1, e.g. [2, 2, 1]"),
            "loss": tuple(LOSSES),
            "scale": (lambda v: v > 0, "finite numbers > 0"),
        },
        digests={"dataset": dataset_digest},
        prepare=boundaries.store,
        figures={"boundaries.png": _draw_boundaries},
        describe=_describe,
        name="network",
    )


def _draw_boundaries(res, path):
    from jaxlab.problems import network_figures  # matplotlib only once a figure is drawn

    return network_figures.draw(res, path)


def _describe(cfg) -> str:
    def text(name):
        return ", ".join(
            "-".join(map(str, v)) if isinstance(v, tuple) else str(v)
            for v in cfg.setting(name).values
        )

    return f"network {text('widths')} on dataset {text('dataset')}"
