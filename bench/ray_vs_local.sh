#!/usr/bin/env bash
# CI quick bench, all 8 tasks, local then ray, back to back; prints wall times.
set -u
cd "$(dirname "$0")/.." && export SLD_CORPUS="${SLD_CORPUS:-../shared/sldbench}" RAY_AUTH_MODE=disabled
OUT="${OUT:-/tmp/rayq}"; mkdir -p "$OUT"
Q="sld bench --method sld --proposer offline --backend none --budget-s 600 --max-candidates 40 --seed 0 --quiet"
t0=$(date +%s.%N); $Q --json $OUT/local.json > $OUT/local.md 2>$OUT/local.err; t1=$(date +%s.%N)
echo "local $(echo "$t1 - $t0" | bc)"
PORT=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ray start --head --num-cpus 2 --node-ip-address 127.0.0.1 --port $PORT --include-dashboard=false > $OUT/ray-start.log 2>&1
sleep 3
t0=$(date +%s.%N); $Q --executor ray --ray-address 127.0.0.1:$PORT --json $OUT/ray.json > $OUT/ray.md 2>$OUT/ray.err; t1=$(date +%s.%N)
echo "ray $(echo "$t1 - $t0" | bc)"
ray stop --force > /dev/null 2>&1
