"""float64 ``log`` and ``sigmoid`` that XLA's CPU backend compiles to cheap vector code.

* :func:`log_pos64`: XLA lowers ``jnp.log`` in float64 on the CPU to a call of the C library's
  scalar ``log`` per element (float32 gets an inline vectorised polynomial): on this project's
  2-core AVX2 machine it ran at 170-270 M elements/s against 1,200-1,500 M in float32. This is
  fdlibm's ``__ieee754_log`` (the reduction to ``m * 2**e`` with ``m`` in [sqrt(1/2), sqrt(2)),
  then ``log(1 + f)`` by its degree-14 polynomial in ``s = f / (2 + f)``), written with array
  operations only, so it vectorises: 960-1,040 M elements/s, within 1 ulp of the C library.
  Used by :func:`jaxlab.unrolled.neg_sum_log` for the lab's loss in float64.
* :func:`sigmoid64`: the lab's ``1 / (1 + exp(-x))`` with one division instead of two. XLA's
  float64 ``exp`` is Cephes' ``2**n * (1 + 2 P / (Q - P))``, a division of its own, and builds
  ``2**n`` with 64-bit integer multiplies and arithmetic shifts that AVX2 lacks. Written out,
  ``1 / (1 + 2**n (Q + P) / (Q - P)) = (Q - P) / ((Q - P) + 2**n (Q + P))``, with ``2**n`` from
  the bits by a logical shift: 919 against 448 M elements/s for XLA's form on one core, and as
  accurate (at most 2.5 ulp against 2.4, mean 0.43 against 0.41, in 80-bit arithmetic). Used by
  :func:`jaxlab.losses.sigmoid` in float64: the float64 training step 10% faster
  (``experiments/PERFORMANCE.md``, item 15).
* :func:`tanh64`: the same exponential for ``tanh(x) = (e - 1) / (e + 1)``, ``e = exp(2|x|)``,
  with one division: ``((2**n - 1) Q + (2**n + 1) P) / ((2**n + 1) Q + (2**n - 1) P)``, exact
  ``P / Q`` for ``n = 0`` (no cancellation near 0). XLA's float64 ``tanh`` is one rational
  function of degree 19 / 18 over [-17.7, 17.7] (18 multiply-adds and a division): ours is
  667 against 521 M elements/s on one core, and more accurate (at most 4.1 ulp against XLA's
  6.6, mean 0.72 against 0.87, in 80-bit arithmetic). Used by :func:`jaxlab.network.tanh` in
  float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["log_pos64", "sigmoid64", "tanh64"]

_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that e * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_LG = (
    6.666666666666735130e-01,
    3.999999999940941908e-01,
    2.857142874366239149e-01,
    2.222219843214978396e-01,
    1.818357216161805012e-01,
    1.531383769920937332e-01,
    1.479819860511658591e-01,
)
_TWO52 = 4503599627370496.0
_SQRT2 = 1.4142135623730951


def log_pos64(x: jax.Array) -> jax.Array:
    """``log(x)`` for float64 ``x`` that are positive, finite and normal (>= 2.2e-308).

    Other inputs give meaningless finite numbers: the caller guarantees the domain (as
    :func:`jaxlab.unrolled.neg_sum_log` does) or masks them.
    """
    if x.dtype != jnp.float64:
        raise TypeError(f"log_pos64 takes float64, got {x.dtype}")
    bits = lax.bitcast_convert_type(x, jnp.int64)
    # The biased exponent as a float without an int64 -> float conversion (AVX2 has none):
    # placed in the low bits of 2**52's mantissa it reads as 2**52 + e_biased.
    e_bits = lax.shift_right_logical(bits, jnp.int64(52)) | 0x4330000000000000
    e = lax.bitcast_convert_type(e_bits, jnp.float64) - (_TWO52 + 1023.0)
    m = lax.bitcast_convert_type((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000, jnp.float64)
    high = m > _SQRT2  # m in [1, 2): fold to [sqrt(1/2), sqrt(2))
    m = jnp.where(high, 0.5 * m, m)
    e = jnp.where(high, e + 1.0, e)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG[1] + w * (_LG[3] + w * _LG[5]))
    t2 = z * (_LG[0] + w * (_LG[2] + w * (_LG[4] + w * _LG[6])))
    hfsq = 0.5 * f * f
    return e * _LN2_HI - ((hfsq - (s * (hfsq + (t1 + t2)) + e * _LN2_LO)) - f)


# Cephes' exp: x = n ln2 + g with |g| <= ln2 / 2 (ln 2 in two parts, so that n * _C1 is exact),
# and exp(g) = 1 + 2 P / (Q - P), P = g p(g^2), Q = q(g^2).
_LOG2E = 1.4426950408889634
_C1 = 0.693145751953125
_C2 = 1.42860682030941723212e-6
_EXP_P = (1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1)
_EXP_Q = (
    3.00198505138664455042e-6,
    2.52448340349684104192e-3,
    2.27265548208155028766e-1,
    2.00000000000000000009e0,
)
# sigmoid(x) is 1 to the last bit for x > 40 (exp(-40) < 2**-54); for x < -708, 2**n would
# overflow, and the true value is below 3.4e-308: 0.
_SIG_LO, _SIG_HI = -40.0, 708.0


def _exp_parts(y):
    """``(P, Q, 2**n)`` with ``exp(y) = 2**n (Q + P) / (Q - P)``, for ``y`` clipped so that
    ``n + 1023`` is in [1, 2046]. ``2**n`` from the bits: ``n + 1023`` sits in the low bits of
    ``2**52 + n + 1023``, and a logical shift by 52 moves it into the exponent field."""
    n = jnp.floor(y * _LOG2E + 0.5)
    g = (y - n * _C1) - n * _C2
    g2 = g * g
    p = g * ((_EXP_P[0] * g2 + _EXP_P[1]) * g2 + _EXP_P[2])
    q = ((_EXP_Q[0] * g2 + _EXP_Q[1]) * g2 + _EXP_Q[2]) * g2 + _EXP_Q[3]
    bits = lax.bitcast_convert_type(n + (_TWO52 + 1023.0), jnp.int64)
    return p, q, lax.bitcast_convert_type(lax.shift_left(bits, jnp.int64(52)), jnp.float64)


def sigmoid64(x: jax.Array) -> jax.Array:
    """``1 / (1 + exp(-x))`` for float64 ``x``, with one division; NaN stays NaN, ``+inf``
    gives 1 and ``-inf`` gives 0."""
    if x.dtype != jnp.float64:
        raise TypeError(f"sigmoid64 takes float64, got {x.dtype}")
    p, q, scale = _exp_parts(jnp.clip(-x, _SIG_LO, _SIG_HI))  # n + 1023 in [965, 2044]
    q_minus_p = jnp.where(-x > _SIG_HI, 0.0, q - p)
    # The division last: XLA fuses cheap operations into every consumer of their result, but
    # not a division, so the sigmoid is computed once per use, not once per consumer.
    return q_minus_p / (q_minus_p + scale * (q + p))


def tanh64(x: jax.Array) -> jax.Array:
    """``tanh(x)`` for float64 ``x``, with one division; odd, NaN stays NaN, +-inf gives +-1."""
    if x.dtype != jnp.float64:
        raise TypeError(f"tanh64 takes float64, got {x.dtype}")
    # |x| > 20: tanh is 1 to the last bit (1 - tanh < 2 exp(-40) < 2**-56).
    p, q, scale = _exp_parts(jnp.minimum(2.0 * jnp.abs(x), 40.0))  # n in [0, 58]
    # exp(2|x|) = scale (Q + P) / (Q - P), so tanh |x| = (exp(2|x|) - 1) / (exp(2|x|) + 1) is:
    num = jnp.copysign((scale - 1.0) * q + (scale + 1.0) * p, x)
    den = (scale + 1.0) * q + (scale - 1.0) * p
    return num / den  # the division last, as in sigmoid64
