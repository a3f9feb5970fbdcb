#!/usr/bin/env bash
# Embeddings benchmark (issue 5): served /embed at concurrency 32 with texts of 8 to 128 tokens,
# against the in-process ceiling (length-sorted batches through the binding) and the
# FastAPI + transformers peer on the same checkpoint. All on 127.0.0.1; servers stopped on exit.
# Usage: bash bench/embeddings/run.sh [SECONDS=15] [CONNECTIONS=32]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN="${1:-15}"; CONNECTIONS="${2:-32}"; THREADS="${THREADS:-$(nproc)}"
WORK=bench/.work/embeddings
[ -f "$WORK/texts.json" ] || python3 bench/embeddings/make_model.py "$WORK"
npx tsc -p tsconfig.build.json
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
wait_ready() { for _ in $(seq 300); do curl -fs -o /dev/null "$1" && return 0; sleep 0.5; done; echo "not ready: $1" >&2; return 1; }

echo "in-process ceiling (Node binding, length-sorted batches of 32):"
node dist/bench/embeddings/inprocess.js "$WORK" 32 3 | tee "$WORK/inprocess.json"

echo "ATenSpace Serve /embed:"
MODEL_REPOSITORY="$WORK/models" PORT=18291 HOST=127.0.0.1 LOG_LEVEL=warn INTRA_OP_THREADS="$THREADS" DATA_DIR="$WORK/data" \
  node dist/src/server/main.js >"$WORK/server.log" 2>&1 &
PIDS+=($!)
wait_ready http://127.0.0.1:18291/health/ready
node bench/embeddings/load.mjs http://127.0.0.1:18291 "$WORK/texts.json" "$CONNECTIONS" "$SECONDS_PER_RUN" | tee "$WORK/ours.json"
curl -s http://127.0.0.1:18291/metrics | grep -E '^atenspace_(batch_size_(sum|count)|request_duration_seconds_(sum|count)\{model="minilm",task="embedding",stage="(queue|compute|preprocess|postprocess)")' >"$WORK/ours-metrics.txt" || true
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true

echo "FastAPI + transformers peer:"
python3 bench/embeddings/fastapi_transformers.py "$WORK/source" 18292 "$THREADS" >"$WORK/fastapi.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do curl -fs -o /dev/null -X POST http://127.0.0.1:18292/embed -H 'content-type: application/json' -d '{"inputs":"warm"}' && break; sleep 0.5; done
node bench/embeddings/load.mjs http://127.0.0.1:18292 "$WORK/texts.json" "$CONNECTIONS" "$SECONDS_PER_RUN" | tee "$WORK/fastapi.json"

python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
ceiling = json.load(open(f"{w}/inprocess.json"))["embeddings_per_s"]
ours = json.load(open(f"{w}/ours.json"))
peer = json.load(open(f"{w}/fastapi.json"))
print(f"\n| server | embeddings/s | p50 ms | p99 ms |\n|---|---:|---:|---:|")
print(f"| ATenSpace Serve /embed | {ours['embeddings_per_s']:.1f} | {ours['p50_ms']} | {ours['p99_ms']} |")
print(f"| FastAPI + transformers | {peer['embeddings_per_s']:.1f} | {peer['p50_ms']} | {peer['p99_ms']} |")
print(f"| in-process ceiling (sorted batches of 32) | {ceiling:.1f} | | |")
print(f"\nours / ceiling = {ours['embeddings_per_s'] / ceiling:.2f} (goal >= 0.9); ours / FastAPI = {ours['embeddings_per_s'] / peer['embeddings_per_s']:.2f} (goal >= 2)")
PY
