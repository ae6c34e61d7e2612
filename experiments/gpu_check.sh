#!/usr/bin/env bash
# The accelerator check of the README's Performance section, as one script. On a machine with a
# GPU and jax[cuda] (jaxlab itself importable: `pip install -e .` or PYTHONPATH=.):
#   bash experiments/gpu_check.sh OUT_DIR
set -uo pipefail
out=${1:-gpu_out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import jax, jaxlib; print('jax', jax.__version__, jax.devices())" | tee -a "$out/gpu.txt"
# Engine and end-to-end throughput at 1e6 .. 1e8 restarts, both gradient methods, both dtypes
# (the harness of the source checkout: the same measurements as `jaxlab bench`, plus the png).
python3 "$(dirname "$0")/../benchmarks/bench.py" --R 1000000 10000000 100000000 \
  --methods autodiff manual --dtypes float32 float64 --repeats 1 --out "$out/bench" 2>&1 \
  | tee "$out/bench.log"
# The main job on the GPU, with 100x the restarts (9.9 million).
python3 -m jaxlab sweep --n-runs 100000 --out "$out/sweep" --no-figures --quiet
python3 -c "import json; m = json.load(open('$out/sweep/meta.json')); print('sweep', m['devices'], m['timings'])" | tee -a "$out/gpu.txt"
# Lanes (issue 12): the peers' workload at 1e7 and 1e8 restarts in dense and in recycled lanes,
# and the default sweep at a 5,000-step budget (steps run against budget steps in meta.json).
for lanes in dense recycle; do
  python3 -m jaxlab bench --R 10000000 100000000 --methods autodiff --dtypes float32 \
    --repeats 1 --lanes "$lanes" --out "$out/bench-$lanes" 2>&1 | tee "$out/bench-$lanes.log"
done
for lanes in dense recycle auto; do
  python3 -m jaxlab sweep --max-steps 5000 --lanes "$lanes" --out "$out/sweep5000-$lanes" \
    --no-figures --quiet
  python3 -c "import json; m = json.load(open('$out/sweep5000-$lanes/meta.json')); print('sweep 5000 $lanes', m['timings'], m['lanes'])" | tee -a "$out/gpu.txt"
done
