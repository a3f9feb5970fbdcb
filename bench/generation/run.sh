#!/usr/bin/env bash
# Generation benchmark (issue 14): GPT-2-shaped models (6 x 384 and GPT-2 small's 12 x 768, random
# init, exported with past key/values), MAX_TOKENS greedy tokens per request, mixed prompt lengths
# (8-64 tokens). For each model:
#  - ours, POST /v1/completions streamed, 1 client and CLIENTS clients (time to first token at the client);
#  - the in-process ceiling: the same model_with_past.pt decoding a batch of CLIENTS in Python;
#  - FastAPI + transformers generate(), one request per call, CLIENTS clients.
# Server with default settings. All on 127.0.0.1.
# Usage: bash bench/generation/run.sh [SECONDS=20] [CLIENTS=16] [MAX_TOKENS=32] [MODELS="gpt2-6x384 gpt2-small"]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN="${1:-20}"; CLIENTS="${2:-16}"; MAX_TOKENS="${3:-32}"; MODELS="${4:-gpt2-6x384 gpt2-small}"
THREADS="${THREADS:-$(nproc)}"
WORK=bench/.work/generation
python3 -c 'import fastapi, uvicorn' 2>/dev/null || python3 -m pip install --disable-pip-version-check --retries 0 --timeout 5 -q fastapi uvicorn
python3 bench/generation/make_models.py "$WORK"
npx tsc -p tsconfig.build.json
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
wait_ready() { for _ in $(seq 600); do curl -fs -o /dev/null "$1" && return 0; sleep 0.5; done; echo "not ready: $1" >&2; return 1; }
OUT="$WORK/points.jsonl"
: >"$OUT"

MODEL_REPOSITORY="$WORK/models" PORT=18391 HOST=127.0.0.1 LOG_LEVEL=warn DATA_DIR="$WORK/data" node dist/src/server/main.js >"$WORK/server.log" 2>&1 &
PIDS+=($!)
wait_ready http://127.0.0.1:18391/health/ready
for m in $MODELS; do node bench/generation/load.mjs http://127.0.0.1:18391 "$m" "$WORK/prompts.json" 1 2 4 >/dev/null; done # every model loaded and warm
RSS_BEFORE=$(ps -o rss= -p "${PIDS[0]}")
for m in $MODELS; do
  node bench/generation/load.mjs http://127.0.0.1:18391 "$m" "$WORK/prompts.json" 1 4 "$MAX_TOKENS" >/dev/null # warm-up
  for c in 1 "$CLIENTS"; do
    node bench/generation/load.mjs http://127.0.0.1:18391 "$m" "$WORK/prompts.json" "$c" "$SECONDS_PER_RUN" "$MAX_TOKENS" | tee -a "$OUT"
  done
done
curl -s http://127.0.0.1:18391/metrics | grep -E '^atenspace_decode_batch_rows_(sum|count)' >"$WORK/metrics.txt" || true
RSS_AFTER=$(ps -o rss= -p "${PIDS[0]}")
sleep "${IDLE_SECONDS:-20}" # idle: the GC and the periodic malloc_trim (MEMORY_TRIM_INTERVAL_MS) return what the load freed
RSS_IDLE=$(ps -o rss= -p "${PIDS[0]}")
echo "{\"kind\":\"rss\",\"rss_kib_before\":$RSS_BEFORE,\"rss_kib_after_load\":$RSS_AFTER,\"rss_kib_after_idle\":$RSS_IDLE}" | tee -a "$OUT"
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true

for m in $MODELS; do
  python3 bench/generation/inprocess.py "$WORK/models/$m" "$WORK/prompts.json" "$CLIENTS" "$MAX_TOKENS" 3 "$THREADS" | sed 's/^{/{"kind":"inprocess",/' | tee -a "$OUT"
done

for m in $MODELS; do
  python3 bench/generation/fastapi_generate.py "$WORK/sources/$m" 18392 "$THREADS" >"$WORK/fastapi-$m.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 600); do curl -fs -o /dev/null -X POST http://127.0.0.1:18392/generate -H 'content-type: application/json' -d '{"prompt":"warm","max_new_tokens":2}' && break; sleep 0.5; done
  node bench/generation/load.mjs http://127.0.0.1:18392 "$m" "$WORK/prompts.json" "$CLIENTS" "$SECONDS_PER_RUN" "$MAX_TOKENS" peer | tee -a "$OUT"
  kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
done
python3 bench/generation/report.py "$WORK" | tee "$WORK/report.md"
