#!/usr/bin/env bash
# gRPC benchmark (issue 18): KServe v2 ModelInfer over gRPC (raw_input_contents, @grpc/grpc-js
# load) vs the same tensors over HTTP (KServe v2 JSON), on bench/serving's models:
#   1. service overhead: tiny model at c=1, gRPC p50 minus the in-process forward p50
#   2. MiniLM-size BERT (seq 32) at c=32, gRPC vs HTTP requests/s
#   3. tracing on (OTLP to a local receiver) vs off, gRPC and HTTP at c=32
# Runs under flock /tmp/atenspace-bench.lock (the machine is shared). Usage: bash bench/grpc/run.sh
# Settings: LOAD_SECONDS=8 LOAD_WARMUP=2 (not WARMUP: that is a server setting). Results: bench/.work/grpc/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
# One benchmark at a time on the shared machine.
[ -n "${BENCH_LOCKED:-}" ] || exec env BENCH_LOCKED=1 flock /tmp/atenspace-bench.lock bash "$0" "$@"
LOAD_SECONDS="${LOAD_SECONDS:-8}"
LOAD_WARMUP="${LOAD_WARMUP:-2}"
WORK=bench/.work/grpc
MODELS=bench/.work/serving/models
mkdir -p "$WORK"
[ -f "$MODELS/minilm/model.pt" ] && [ -f "$MODELS/tiny/model.pt" ] || python3 bench/serving/make_models.py "$MODELS"
TS=(env TS_NODE_TRANSPILE_ONLY=1 node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs)
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

start_server() { # $1: label, then env assignments
  local label=$1; shift
  env "$@" MODEL_REPOSITORY="$MODELS" LOAD_MODELS=tiny,minilm DEVICE=cpu LOG_LEVEL=warn PORT=18080 GRPC_PORT=18081 HOST=127.0.0.1 \
    DATA_DIR="$(mktemp -d)" "${TS[@]}" src/server/main.ts >"$WORK/server-$label.log" 2>&1 &
  SERVER=$!
  PIDS+=("$SERVER")
  for _ in $(seq 1 120); do curl -sf 127.0.0.1:18080/health/ready >/dev/null && return 0; sleep 0.5; done
  echo "server $label did not become ready" >&2; tail "$WORK/server-$label.log" >&2; exit 1
}
stop_server() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; }
load() { "${TS[@]}" bench/grpc/load.ts "$@" --duration "$LOAD_SECONDS" --warmup "$LOAD_WARMUP" | tee -a "$RESULTS"; }

run() {
  load inproc --model-dir "$MODELS" --model tiny
  start_server off
  load grpc --port 18081 --model tiny --connections 1
  load http --port 18080 --model tiny --connections 1
  load grpc --port 18081 --model minilm --connections 32
  load http --port 18080 --model minilm --connections 32
  load grpc --port 18081 --model minilm --connections 32
  load http --port 18080 --model minilm --connections 32
  stop_server
  "${TS[@]}" bench/grpc/load.ts otlp --port 14318 &
  PIDS+=($!)
  start_server traced OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14318
  echo '{"tracing":"on"}' >>"$RESULTS"
  load grpc --port 18081 --model minilm --connections 32
  load http --port 18080 --model minilm --connections 32
  load grpc --port 18081 --model tiny --connections 1
  stop_server
}
run
