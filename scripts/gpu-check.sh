#!/usr/bin/env bash
# CUDA for real: on a GPU machine, build the addon against that machine's torch, check every
# exported model family on the GPU against the CPU, serve /infer for each task with DEVICE=cuda,
# and measure served vs in-process throughput (BERT-base shape, batch 32, sequence 128, float32
# and float16). Rehearse anywhere with DEVICE=cpu (and smaller shapes, see below).
#
#   DEVICE=cuda bash scripts/gpu-check.sh            # on the GPU machine
#   DEVICE=cpu LAYERS=2 HIDDEN=128 HEADS=4 BATCH=8 SEQ=32 bash scripts/gpu-check.sh   # rehearsal
#
# Node missing there? Run `bash scripts/gpu-pack.sh` here first: it writes .device/bundle.tar.xz
# (node, its headers, production node_modules, node-gyp, dist/ and the exported demo models),
# which this script unpacks when `node` is not on PATH. Results go to $OUT (default
# bench/.work/device) and a summary to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-cuda}"
OUT="${OUT:-bench/.work/device}"
LAYERS="${LAYERS:-12}"; HIDDEN="${HIDDEN:-768}"; HEADS="${HEADS:-12}"
BATCH="${BATCH:-32}"; SEQ="${SEQ:-128}"; SECONDS_PER_RUN="${SECONDS_PER_RUN:-15}"
PORT="${PORT:-18181}"
mkdir -p "$OUT"
say() { printf '\n== %s\n' "$*"; }
die() { printf 'gpu-check: %s\n' "$*" >&2; exit 1; }

if ! command -v node >/dev/null; then
  [ -f .device/bundle.tar.xz ] || die "node is not installed and .device/bundle.tar.xz is missing (make it with scripts/gpu-pack.sh)"
  say "unpacking the carried Node bundle"
  rm -rf /tmp/atenspace-bundle && mkdir -p /tmp/atenspace-bundle
  tar -xJf .device/bundle.tar.xz -C /tmp/atenspace-bundle
  export PATH="/tmp/atenspace-bundle/bin:$PATH"
  export npm_config_nodedir=/tmp/atenspace-bundle
  [ -e node_modules ] || ln -s /tmp/atenspace-bundle/node_modules node_modules
  [ -e dist ] || cp -r /tmp/atenspace-bundle/dist dist
  [ -e .device/models ] || cp -r /tmp/atenspace-bundle/models .device/models
fi
say "machine"
node --version
python3 -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(), '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')" | tee "$OUT/machine.txt"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/machine.txt" || true

say "build the addon against this machine's LibTorch"
bash scripts/build-native.sh
[ -f dist/src/server/main.js ] || npx tsc -p tsconfig.build.json
node dist/scripts/doctor.js

say "demo models (all four families)"
MODELS="$OUT/models"
if python3 -c 'import transformers' 2>/dev/null; then
  python3 -m exporter demo --out "$MODELS" >/dev/null
elif [ -d .device/models ]; then
  rm -rf "$MODELS" && cp -r .device/models "$MODELS"
  echo "transformers is not installed here: using the demo models exported on the dev machine"
else
  die "no transformers here and no carried models"
fi

say "parity: every family on $DEVICE against the CPU"
node dist/scripts/device-check.js "$MODELS" "$DEVICE" | tee "$OUT/parity.json" | grep -E '"(task|max_abs_diff|ok)"'

say "the server with DEVICE=$DEVICE answers /infer for each task"
python3 bench/device/make_encoder.py "$MODELS" "$LAYERS" "$HIDDEN" "$HEADS"
DEVICE="$DEVICE" MODEL_REPOSITORY="$MODELS" DATA_DIR="$OUT/data" PORT="$PORT" HOST=127.0.0.1 LOG_LEVEL=warn \
  node dist/src/server/main.js >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 600); do curl -fs "127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break; sleep 0.5; done
curl -fs "127.0.0.1:$PORT/health/ready" >/dev/null || { tail -20 "$OUT/server.log"; die "the server did not become ready"; }
BASE="http://127.0.0.1:$PORT"
IMAGE=$(python3 -c "import base64,io; from PIL import Image; b=io.BytesIO(); Image.new('RGB',(96,64),(200,120,40)).save(b,'PNG'); print(base64.b64encode(b.getvalue()).decode())" 2>/dev/null || echo "")
check() {
  local what="$1" body="$2"
  local code
  code=$(curl -s -o "$OUT/$what.json" -w '%{http_code}' "$BASE/infer" -H 'content-type: application/json' -d "$body")
  echo "$what: HTTP $code $(head -c 160 "$OUT/$what.json")"
  [ "$code" = 200 ] || FAILED=1
}
FAILED=0
check embedding '{"model":"demo-embedder","text":["hello world","on the GPU"]}'
check generation '{"model":"demo-gpt2","text":"hello world","max_new_tokens":8}'
[ -n "$IMAGE" ] && check classification "{\"model\":\"demo-vit\",\"image\":\"$IMAGE\",\"top_k\":3}"
[ -n "$IMAGE" ] && check detection "{\"model\":\"demo-yolos\",\"image\":\"$IMAGE\",\"threshold\":0.0}"
curl -s "$BASE/models" | python3 -c "import json,sys; d=json.load(sys.stdin); print('devices', d['devices']); print({m['name']: m['device'] for m in d['models']})" | tee "$OUT/models.txt"
curl -s "$BASE/metrics" | grep -E '^atenspace_device_memory_bytes' | tee "$OUT/device-memory.txt" || true

say "throughput: encoder ${LAYERS}x${HIDDEN}, batch $BATCH, sequence $SEQ"
node dist/bench/device/served-throughput.js "$BASE" encoder-fp32 "$BATCH" "$SEQ" "$SECONDS_PER_RUN" 4 | tee "$OUT/served-fp32.json"
if [ "$DEVICE" != cpu ]; then
  node dist/bench/device/served-throughput.js "$BASE" encoder-fp16 "$BATCH" "$SEQ" "$SECONDS_PER_RUN" 4 | tee "$OUT/served-fp16.json"
fi
kill $SERVER; wait $SERVER 2>/dev/null || true
python3 bench/device/python_throughput.py "$MODELS" "$([ "$DEVICE" = cuda ] && echo cuda:0 || echo "$DEVICE")" "$BATCH" "$SEQ" "$SECONDS_PER_RUN" | tee "$OUT/inprocess.json"
python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
inproc = json.load(open(f"{out}/inprocess.json"))
print(f"\ndevice: {inproc.get('gpu', inproc['device'])}, torch {inproc['torch']}, batch {inproc['batch']}, seq {inproc['seq']}")
for v in ("fp32", "fp16"):
    path = f"{out}/served-{v}.json"
    if not os.path.exists(path) or f"encoder-{v}" not in inproc:
        continue
    served = json.load(open(path))["sequences_per_s"]
    base = inproc[f"encoder-{v}"]["sequences_per_s"]
    print(f"{v}: served {served:.0f} seq/s, in-process {base:.0f} seq/s, ratio {served / base:.2f} (goal >= 0.85)")
PY
[ "$FAILED" = 0 ] || die "some /infer requests failed"
say "done"
