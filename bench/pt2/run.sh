#!/usr/bin/env bash
# .pt2 (torch.export + AOTInductor) vs TorchScript (issue 19), MiniLM-size BERT (6 x 384):
#  1. forward time through our binding at 1x16, 8x32, 32x32, 8x128 (bench/pt2/forward.ts), the
#     .pt2 with and without Inductor's freezing;
#  2. load time and RSS growth of each loaded model, one per process, against its weights;
#  3. served POST /embed embeddings/s at concurrency 32 (the mixed workload of bench/embeddings:
#     6-62 tokens), the server with default settings, one model loaded.
# Takes the bench lock (the machine is shared). The exports (two AOTInductor compiles) are made
# once into bench/.work/pt2.
# Usage: bash bench/pt2/run.sh [ROUNDS=30] [SECONDS=15]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS="${1:-30}"; SECONDS_PER_RUN="${2:-15}"
WORK=bench/.work/pt2
mkdir -p "$WORK"
exec 9>/tmp/atenspace-bench.lock
flock 9
[ -d "$WORK/models/minilm-pt2-nofreeze" ] || python3 bench/pt2/make_models.py "$WORK" 2>&1 | grep -v Warning | tee "$WORK/make.log"
[ -n "${SKIP_BUILD:-}" ] || npx tsc -p tsconfig.build.json  # SKIP_BUILD=1: use dist/ as it is

echo "== forward time through the binding"
node dist/bench/pt2/forward.js "$WORK/models" "$ROUNDS" | tee "$WORK/forward.json"

echo "== load time and RSS (one model per process)"
: >"$WORK/load.jsonl"
for f in minilm/model.pt minilm-pt2/model.pt2 minilm-pt2-nofreeze/model.pt2; do
  for _ in 1 2 3; do node dist/bench/pt2/forward.js load "$WORK/models/$f" | tee -a "$WORK/load.jsonl"; done
done
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
params = json.load(open(f"{work}/models/minilm/atenspace.json"))["parameters"]
print(json.dumps({"parameters": params, "weights_mib": round(params * 4 / 2**20, 1)}))
PY

echo "== served /embed at c=32"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
: >"$WORK/served.jsonl"
for name in minilm minilm-pt2 minilm-pt2-nofreeze; do
  MODEL_REPOSITORY="$WORK/models" LOAD_MODELS="$name" EMBED_MODEL="$name" PORT=18293 HOST=127.0.0.1 LOG_LEVEL=warn \
    GRPC_PORT=0 DATA_DIR="$WORK/data-$name" node dist/src/server/main.js >"$WORK/server-$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 600); do curl -fs -o /dev/null http://127.0.0.1:18293/health/ready && break; sleep 0.5; done
  result=$(node bench/embeddings/load.mjs http://127.0.0.1:18293 "$WORK/texts-mixed.json" 32 "$SECONDS_PER_RUN")
  rss=$(ps -o rss= -p "${PIDS[-1]}")
  echo "{\"model\":\"$name\",\"load\":$result,\"server_rss_mib\":$((rss / 1024))}" | tee -a "$WORK/served.jsonl"
  kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
done
