"""Exercise 1's quadratic f(x1, x2) = (x1 - 6)^2 + x2^2 - x1 x2 over learning rate x start point.
The Hessian's largest eigenvalue is 3, so plain gradient descent converges iff lr < 2/3: the
success rate drops from 1 to the few starts on the slow eigenvector's line right there.

    python experiments/sweep_quadratic.py [--out out/quadratic]
"""

import argparse
from pathlib import Path

import jax

jax.config.update("jax_num_cpu_devices", 2)

from jaxlab.presets import preset  # noqa: E402
from jaxlab.sweep import run_sweep  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/quadratic")
    args = ap.parse_args()
    res = run_sweep(preset("quadratic"), Path(args.out) / "run")
    rate = res.to_pandas().groupby("lr")["success_rate"].mean()
    print(rate.to_string())
    below = rate[rate == 1.0].index.max()
    above = rate[rate < 0.5].index.min()
    print(f"boundary between lr = {below:.3f} and {above:.3f}; theory: 2/3 = {2 / 3:.3f}")
    print(f"figures in {Path(args.out) / 'run'}: {', '.join(res.meta.get('figures', []))}")


if __name__ == "__main__":
    main()
