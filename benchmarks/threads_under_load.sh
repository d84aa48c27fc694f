#!/usr/bin/env bash
# Threads on a busy machine: 5 epochs of LightGCN (shipped ml-100k config), torch's default of one
# thread per core with libgomp's default wait policy ("before") against fusionrec's default (threads
# from the free cores, OMP_WAIT_POLICY=PASSIVE; "after"), alternated so both see the same load.
#   benchmarks/threads_under_load.sh [SPINNERS]   # SPINNERS busy-looping processes added as load (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
spinners=${1:-2}
pids=()
for _ in $(seq "$spinners"); do python3 -c "while True: pass" & pids+=($!); done
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
sleep 60  # let the load average see the spinners
cores=$(nproc)
for round in 1 2; do
  for mode in before after; do
    dir=$(mktemp -d)/run
    if [ "$mode" = before ]; then
      OMP_WAIT_POLICY= .venv/bin/fusionrec train -c ml100k/lightgcn -d ml-100k train.epochs=5 train.eval_every=5 \
        "train.num_threads=$cores" --run-dir "$dir" -q --no-test > /dev/null
    else
      .venv/bin/fusionrec train -c ml100k/lightgcn -d ml-100k train.epochs=5 train.eval_every=5 \
        --run-dir "$dir" -q --no-test > /dev/null
    fi
    python3 - "$dir/record.json" "$mode" "$round" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:6s} round {sys.argv[3]}: {r['timings']['train_s_total']:7.2f} s for 5 epochs, "
      f"{r['threads']['count']} thread(s) ({r['threads']['chosen_by']}), load {os.getloadavg()[0]:.1f}")
PY
  done
done
