#!/usr/bin/env bash
# The full-size table (issue 20): BERT-base, GPT-2 small, ViT-base/16, YOLOS-tiny at 512² and at its default
# 800×1333, random init, exported by the exporter as any checkpoint is; then, on this machine's CPU:
#   1. in-process Python: the exported TorchScript files (torch.jit.load) and transformers eager, per shape;
#      torch.jit.load time and the RSS it adds (one fresh process per model)
#   2. our server: one fresh server per model: cold load (file evicted from the page cache), the load call on a
#      loaded model, reload after unload; RSS added by the load, after serving and after unload; one request
#      at a time through the raw KServe route (JSON tensors) and the task route (texts, JPEG images)
# Writes bench/.work/fullsize/{inprocess,served}.json and prints the Markdown tables (report.py).
#
# Usage: flock /tmp/atenspace-bench.lock bash bench/fullsize/run.sh
# Settings (environment): THREADS=$(nproc) (intra-op threads, Python and server), REPS=15 (timed requests per
#   shape; a third of that for the 800×1333 image and the 32-token continuation).
set -euo pipefail
cd "$(dirname "$0")/../.."

WORK=bench/.work/fullsize
export THREADS="${THREADS:-$(nproc)}" REPS="${REPS:-15}"
mkdir -p "$WORK"

python3 bench/fullsize/make_checkpoints.py "$WORK/checkpoints"
declare -A TASK=([bert-base]=embedding [gpt2]=text-generation [vit-base]=image-classification
                 [yolos-tiny-512]=object-detection [yolos-tiny]=object-detection)
for name in bert-base gpt2 vit-base yolos-tiny-512 yolos-tiny; do
  [ -f "$WORK/models/$name/atenspace.json" ] && continue
  python3 -m exporter export "$WORK/checkpoints/$name" --task "${TASK[$name]}" --name "$name" --out "$WORK/models" \
    --max-batch-size 8 --force
done
[ -f dist/src/server/main.js ] || npx tsc -p tsconfig.build.json

echo "== $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src native || echo ' (src/native modified in the working tree)'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), THREADS=$THREADS REPS=$REPS"
python3 bench/fullsize/inprocess.py "$WORK/models" "$WORK/checkpoints" "$WORK/inprocess.json"
python3 bench/fullsize/served.py "$WORK/models" "$WORK/served.json"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 bench/fullsize/report.py "$WORK"
