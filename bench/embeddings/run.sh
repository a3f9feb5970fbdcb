#!/usr/bin/env bash
# Embeddings benchmark (issues 5 and 13): served POST /embed, one text per request, on three
# workloads (short 4-12 tokens, mixed 6-62, long 64-256) at concurrency 8 and 32, against
#  - the in-process ceiling: the same TorchScript through the Node binding, length-sorted
#    batches, best of batch sizes 1-32;
#  - FastAPI + the same TorchScript, one request per call, as a user would write it.
# The server runs with its default settings. autocannon drives the load; /metrics before and
# after each point gives the mean batch and the queue/compute split. All on 127.0.0.1.
# Usage: bash bench/embeddings/run.sh [SECONDS=10] [WORKLOADS="short mixed long"] [CONCURRENCY="8 32"]
# ONLY_OURS=1 reruns only the server (keeping the baselines' last results); server settings
# may be given in the environment as usual (e.g. INSTANCES=2 INTRA_OP_THREADS=1).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN="${1:-10}"; WORKLOADS="${2:-short mixed long}"; CONCURRENCY="${3:-8 32}"
THREADS="${THREADS:-$(nproc)}"
WORK=bench/.work/embeddings
python3 -c 'import fastapi, uvicorn' 2>/dev/null || python3 -m pip install --disable-pip-version-check --retries 0 --timeout 5 -q fastapi uvicorn
[ -f "$WORK/texts-long.json" ] || python3 bench/embeddings/make_model.py "$WORK"
npx tsc -p tsconfig.build.json
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
wait_ready() { for _ in $(seq 300); do curl -fs -o /dev/null "$1" && return 0; sleep 0.5; done; echo "not ready: $1" >&2; return 1; }
OURS=http://127.0.0.1:18291
PEER=http://127.0.0.1:18292
if [ -n "${ONLY_OURS:-}" ]; then grep '"server":"fastapi"' "$WORK/points.jsonl" >"$WORK/points.fastapi" || true; fi
: >"$WORK/points.jsonl"

if [ -z "${ONLY_OURS:-}" ]; then
  for w in $WORKLOADS; do
    echo "in-process ceiling, $w:"
    INTRA_OP_THREADS="$THREADS" node dist/bench/embeddings/inprocess.js "$WORK" "texts-$w.json" | tee "$WORK/inprocess-$w.json"
  done
fi

echo "ATenSpace Serve (default settings):"
MODEL_REPOSITORY="$WORK/models" PORT=18291 HOST=127.0.0.1 LOG_LEVEL=warn DATA_DIR="$WORK/data" \
  node dist/src/server/main.js >"$WORK/server.log" 2>&1 &
PIDS+=($!)
wait_ready "$OURS/health/ready"
for w in $WORKLOADS; do
  for c in $CONCURRENCY; do
    before=$(node bench/embeddings/metrics.mjs "$OURS" minilm)
    result=$(node bench/embeddings/load.mjs "$OURS" "$WORK/texts-$w.json" "$c" "$SECONDS_PER_RUN")
    after=$(node bench/embeddings/metrics.mjs "$OURS" minilm)
    echo "{\"server\":\"ours\",\"workload\":\"$w\",\"c\":$c,\"load\":$result,\"before\":$before,\"after\":$after}" | tee -a "$WORK/points.jsonl"
  done
done
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true

if [ -n "${ONLY_OURS:-}" ]; then
  cat "$WORK/points.fastapi" >>"$WORK/points.jsonl"
  python3 bench/embeddings/report.py "$WORK" | tee "$WORK/report.md"
  exit 0
fi
echo "FastAPI + TorchScript peer:"
python3 bench/embeddings/fastapi_torchscript.py "$WORK/models/minilm" 18292 "$THREADS" >"$WORK/fastapi.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do curl -fs -o /dev/null -X POST "$PEER/embed" -H 'content-type: application/json' -d '{"inputs":"warm"}' && break; sleep 0.5; done
for w in $WORKLOADS; do
  for c in $CONCURRENCY; do
    result=$(node bench/embeddings/load.mjs "$PEER" "$WORK/texts-$w.json" "$c" "$SECONDS_PER_RUN")
    echo "{\"server\":\"fastapi\",\"workload\":\"$w\",\"c\":$c,\"load\":$result}" | tee -a "$WORK/points.jsonl"
  done
done

python3 bench/embeddings/report.py "$WORK" | tee "$WORK/report.md"
