"""Find the learning rate and initialisation scale at which the lab's network trains most often,
with Optuna's TPE sampler driving jaxlab: each batch of trials is one point-list sweep (one
compiled call, every trial n_runs restarts), each trial told its success rate.

    python experiments/optuna_search.py [--batches 8] [--batch-size 32] [--n-runs 256]
"""

import argparse

import optuna

from jaxlab import engine
from jaxlab.config import SweepConfig
from jaxlab.search import optimize


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--n-runs", type=int, default=256)
    p.add_argument("--max-steps", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=a.seed, n_startup_trials=a.batch_size)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    base = SweepConfig(n_runs=a.n_runs, max_steps=a.max_steps, seed=a.seed)
    space = {"lr": (0.05, 20.0, "log"), "scale": (0.1, 8.0, "log")}
    results = optimize(study, base, space, a.batches, a.batch_size)
    for i, r in enumerate(results):
        rate = r.cells["success_rate"]
        print(f"batch {i}: best {rate.max():.3f}, mean {rate.mean():.3f}")
    best = study.best_trial
    n = len(study.trials)
    print(
        f"{n} trials in {a.batches} compiled batches ({engine.COMPILE_STATS['compiles']} compile): "
        f"best: lr={best.params['lr']:.4g}, scale={best.params['scale']:.4g}, "
        f"success rate {best.value:.3f} of {a.n_runs} restarts"
    )


if __name__ == "__main__":
    main()
