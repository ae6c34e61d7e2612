"""Recycled lanes: a fixed number of lanes kept busy until every restart of a chunk is done.

Under ``vmap`` a batch of restarts lasts as long as its slowest one: a restart that has stopped
is frozen and still costs a step every iteration. Here (as gymnax and PureJaxRL reset a finished
environment in place) each of ``width`` lanes runs one restart; every ``refill`` steps the lanes
whose restart stopped write its outcome into the chunk's output at the restart's own index and
take the next restart of the chunk. The starts are computed before the loop (one
:func:`jaxlab.loop.start` per restart, in blocks of ``width`` lanes as the dense engine computes
them), so a refill only gathers. A restart's arithmetic is the same whichever lane runs it and
whenever: the same step function, vmapped at the same width, on its own state.

:func:`recycled` is written for one device's share of a chunk; the engine calls it inside
``shard_map``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxlab import loop
from jaxlab.loop import RunOut, RunSpec

__all__ = ["REFILL", "dense", "recycled"]

# Steps between refills: a restart that stops waits at most refill - 1 steps for its lane to be
# refilled, and a refill costs about a step or two of the lanes' work (engine.REFILL_COST).
# Measured (experiments/recycle_refill.py, 2-core AMD EPYC, the default sweep in recycled lanes,
# medians of 2): refill 1, 2, 4, 8, 16 took 0.695, 0.414, 0.321, 0.259, 0.288 s at 100 steps and
# 1.74, 1.33, 1.12, 0.97, 1.09 s at 5,000: 8 is the fastest at both.
REFILL = 8


class _Carry(NamedTuple):
    state: object  # DescentState of every lane
    hp: dict  # each lane's traced settings
    run: jax.Array  # (width,) int32: the restart a lane runs (n: idle)
    next: jax.Array  # () int32: the next restart to hand out
    out: RunOut  # (n,) outcomes, written as restarts finish
    periods: jax.Array  # () int32: refill periods so far


def _blocks(tree, width: int):
    """(n, ...) leaves as (n // width, width, ...): a device's share in blocks of lanes."""
    return jax.tree.map(lambda a: a.reshape(a.shape[0] // width, width, *a.shape[1:]), tree)


def _unblock(tree):
    """The inverse of :func:`_blocks`."""
    return jax.tree.map(lambda a: a.reshape(a.shape[0] * a.shape[1], *a.shape[2:]), tree)


def _take(tree, idx):
    return jax.tree.map(lambda a: a[idx], tree)


def _where(mask, new, old):
    def pick(a, b):
        m = mask.reshape(mask.shape + (1,) * (a.ndim - 1))
        return jnp.where(m, a, b)

    return jax.tree.map(pick, new, old)


def recycled(
    spec: RunSpec, hp: dict, keys, n_valid, width: int, refill: int = REFILL
) -> tuple[RunOut, jax.Array]:
    """Train the restarts ``0 .. n_valid - 1`` of one device's share (``hp`` dict of (n,)
    traced settings, ``keys`` (n,) PRNG keys; ``n`` a multiple of ``width``) in ``width``
    recycled lanes. Returns their :class:`RunOut` of (n,) arrays (slots from ``n_valid`` on
    hold zeros) and the number of refill periods run (what the cost model reads)."""
    n = keys.shape[0]
    v_start = jax.vmap(functools.partial(loop.start, spec))
    starts = _unblock(lax.map(lambda x: v_start(*x), _blocks((hp, keys), width)))
    one = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), (hp, starts))
    shapes = jax.eval_shape(lambda h, s: loop.finish(spec, h, s), *one)
    out = jax.tree.map(lambda t: jnp.zeros((n, *t.shape), t.dtype), shapes)

    lane = jnp.arange(width, dtype=jnp.int32)
    run = jnp.where(lane < n_valid, lane, n).astype(jnp.int32)
    src = jnp.minimum(lane, n - 1)
    carry = _Carry(
        _take(starts, src),
        _take(hp, src),
        run,
        jnp.minimum(n_valid, width).astype(jnp.int32),
        out,
        jnp.zeros((), jnp.int32),
    )
    v_advance = jax.vmap(functools.partial(loop.advance, spec))
    v_running = jax.vmap(functools.partial(loop.running, spec))
    v_finish = jax.vmap(functools.partial(loop.finish, spec))

    def period(c: _Carry) -> _Carry:
        state = lax.fori_loop(0, refill, lambda _, s: v_advance(c.hp, s), c.state)
        done = (c.run < n) & ~v_running(state)
        # Finished restarts write their outcome at their own index (idle lanes write nowhere).
        res = v_finish(c.hp, state)
        at = jnp.where(done, c.run, n)
        out = jax.tree.map(lambda buf, v: buf.at[at].set(v, mode="drop"), c.out, res)
        # Each finished lane takes the next restart in order (or goes idle when none is left).
        cand = c.next + jnp.cumsum(done, dtype=jnp.int32) - 1
        fresh = done & (cand < n_valid)
        run = jnp.where(done, jnp.where(fresh, cand, n), c.run).astype(jnp.int32)
        src = jnp.clip(cand, 0, n - 1)
        state = _where(fresh, _take(starts, src), state)
        lane_hp = _where(fresh, _take(hp, src), c.hp)
        nxt = c.next + jnp.sum(fresh, dtype=jnp.int32)
        return _Carry(state, lane_hp, run, nxt, out, c.periods + 1)

    final = lax.while_loop(lambda c: jnp.any(c.run < n), period, carry)
    return final.out, final.periods


def dense(spec: RunSpec, hp: dict, keys, width: int) -> RunOut:
    """Train one device's share in blocks of ``width`` lanes, one block after another, each until
    its slowest restart stops: the dense engine, written at the block's level so that its loop
    body is the very step :func:`recycled` runs (the same vmapped :func:`jaxlab.loop.advance`,
    with no per-lane select around it), and so the same arithmetic: a ``vmap`` of a
    ``while_loop`` would wrap each step in selects, which XLA fuses with the step's arithmetic
    and rounds differently."""
    v_start = jax.vmap(functools.partial(loop.start, spec))
    v_advance = jax.vmap(functools.partial(loop.advance, spec))
    v_running = jax.vmap(functools.partial(loop.running, spec))
    v_finish = jax.vmap(functools.partial(loop.finish, spec))

    def block(x):
        h, k = x
        state = v_start(h, k)
        state = lax.while_loop(lambda s: jnp.any(v_running(s)), lambda s: v_advance(h, s), state)
        return v_finish(h, state)

    return _unblock(lax.map(block, _blocks((hp, keys), width)))
