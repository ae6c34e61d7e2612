"""What an adaptive sweep (--ci-width) saves, and how its intervals cover (README, "Adaptive
sweeps").

    jaxlab sweep --ci-width 0.05 --n-runs 100 --out runs/adaptive --no-figures
    jaxlab sweep --n-runs 4000 --out runs/uniform --no-figures
    python experiments/adaptive_savings.py runs/adaptive runs/uniform [--coverage 4000]

prints the restarts each used and the widest 95% confidence sequence and Wilson interval of
each; the uniform sweep's size for which its widest Wilson interval would be as narrow; and,
with ``--coverage REPS``, the coverage of both intervals under the adaptive rule over REPS
simulated cells per success probability (jaxlab.confseq.coverage).
"""

import argparse

import numpy as np

from jaxlab import load_run
from jaxlab.aggregate import wilson
from jaxlab.confseq import confseq, coverage


def widest(cells):
    lo, hi = confseq(cells["n_success"], cells["n_runs"])
    return float(np.max(hi - lo)), float(np.max(cells["ci_high"] - cells["ci_low"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("adaptive")
    ap.add_argument("uniform")
    ap.add_argument("--coverage", type=int, default=0, metavar="REPS")
    args = ap.parse_args()
    a, u = load_run(args.adaptive), load_run(args.uniform)
    width = a.config.ci_width
    na, nu = int(a.cells["n_runs"].sum()), int(u.cells["n_runs"].sum())
    print("| sweep | restarts | widest confidence sequence | widest Wilson |")
    print("| --- | ---: | ---: | ---: |")
    print(
        f"| adaptive, ci_width {width} | {na:,} | {widest(a.cells)[0]:.4f} | {widest(a.cells)[1]:.4f} |"
    )
    print(
        f"| uniform, n_runs {u.config.n_runs:,} | {nu:,} | {widest(u.cells)[0]:.4f} | {widest(u.cells)[1]:.4f} |"
    )
    # The uniform size whose widest Wilson interval is at most the width, at the rates measured.
    rate = u.cells["success_rate"]
    n = 1
    while True:
        lo, hi = wilson(np.round(rate * n), n)
        if np.max(hi - lo) <= width:
            break
        n += 1
    cells = len(rate)
    print(
        f"| uniform, n_runs {n:,} (widest Wilson {width}, computed) | {n * cells:,} | | {width} |"
    )
    print(
        f"\nadaptive / uniform: {na / nu:.3f} (confidence sequence); {na / (n * cells):.3f} (Wilson)"
    )
    if args.coverage:
        ps = [0.0, 0.001, 0.01, 0.05, 0.2, 0.5, 0.99, 1.0]
        res = coverage(ps, args.coverage, 100, width, 10_000, seed=1)
        print(f"\ncoverage over {args.coverage:,} cells each: 100 restarts, then rounds to {width}")
        print("| p | confidence sequence | Wilson | mean restarts |")
        print("| ---: | ---: | ---: | ---: |")
        for p in ps:
            r = res[p]
            print(f"| {p} | {r['cs']:.4f} | {r['wilson']:.4f} | {r['n']:,.0f} |")


if __name__ == "__main__":
    main()
