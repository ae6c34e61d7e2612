"""Lab 3, Exercise 2: the chain rule by hand, checked.

Each formula of the exercise (Q1-Q16) is checked at random points against ``jax.grad`` of the
literal function and against central differences (:func:`jaxlab.gradcheck.derivative_checks`);
then the network's full 9-element gradient (the lab's ``nnet.gradient``) is compared: hand-written
backward rules vs ``jax.grad`` vs finite differences, like the lab's "Gradients are correct!".

    python experiments/ex2_chain_rule.py [--out DIR] [--seed S]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/ex2"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=1000, help="random points per formula")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_enable_x64", True)  # before any array is made

    from jaxlab import gradcheck
    from jaxlab.gradients import network_loss
    from jaxlab.network import LAB_DATA, from_vector, init_params, to_vector

    records = gradcheck.derivative_checks(n=args.n, seed=args.seed)
    by_name: dict[str, dict[str, float]] = {}
    for r in records:
        by_name.setdefault(r.check, {})[r.pair] = r.error
    width = max(len(k) for k in by_name)
    print(f"Exercise 2 formulas at {args.n} random points each (worst error, see gradcheck):")
    print(f"{'formula':<{width}}  {'vs jax.grad':>11}  {'vs finite diff':>14}")
    ok = True
    for name, errs in by_name.items():
        e_grad, e_fd = errs["manual~autodiff"], errs["manual~fd"]
        good = e_grad <= gradcheck.TOL_MANUAL and e_fd <= gradcheck.TOL_FD
        ok &= good
        print(f"{name:<{width}}  {e_grad:>11.2e}  {e_fd:>14.2e}  {'ok' if good else 'WRONG'}")

    params = init_params(jax.random.key(args.seed))
    vec = to_vector(params)
    manual = to_vector(jax.grad(network_loss(LAB_DATA, "lab", "manual"))(params))
    auto = to_vector(jax.grad(network_loss(LAB_DATA, "lab", "autodiff"))(params))
    loss = network_loss(LAB_DATA, "lab", "autodiff")
    fd = gradcheck.fd_grad(lambda v: loss(from_vector(v)), vec)
    names = ("b1", "b2", "w11", "w12", "w21", "w22", "c", "u1", "u2")
    print("\nnnet.gradient(params) at a random point (params ~ N(0, 1)):")
    print(f"{'':>4} {'params':>10} {'manual':>12} {'jax.grad':>12} {'finite diff':>12}")
    for i, name in enumerate(names):
        print(f"{name:>4} {vec[i]:>10.6f} {manual[i]:>12.8f} {auto[i]:>12.8f} {fd[i]:>12.8f}")
    worst_auto = float(np.max(np.abs(np.asarray(manual) - np.asarray(auto))))
    worst_fd = float(np.max(np.abs(np.asarray(manual) - np.asarray(fd))))
    print(
        f"max |manual - jax.grad| = {worst_auto:.2e}, max |manual - finite diff| = {worst_fd:.2e}"
    )
    # the lab's own criterion: stopifnot(abs(gradient[i] - fdiff_gradient) < 1e-5)
    if ok and worst_fd < 1e-5 and worst_auto < 1e-10:
        print('[1] "Gradients are correct!"')
        return 0
    print("Gradients are WRONG")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
