#!/usr/bin/env bash
# Node binding vs Python torch.jit on the same TorchScript files, alternating runs so both
# see the same machine state. Writes bench/.work/runtime-results.json and prints a table.
#
# Usage: bash bench/runtime/run.sh [ITERATIONS=200] [ROUNDS=3] [THREADS=all cores]
set -euo pipefail
cd "$(dirname "$0")/../.."
ITER="${1:-200}"; ROUNDS="${2:-3}"; THREADS="${3:-$(nproc)}"
WORK=bench/.work/runtime
mkdir -p "$WORK"
[ -f "$WORK/minilm.pt" ] || python3 bench/runtime/make_models.py "$WORK"
[ -f dist/bench/runtime/node-forward.js ] || npx tsc -p tsconfig.build.json
: >"$WORK/python.jsonl"; : >"$WORK/node.jsonl"
for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  python3 bench/runtime/python_forward.py "$WORK" "$ITER" "$THREADS" >>"$WORK/python.jsonl"
  node dist/bench/runtime/node-forward.js "$WORK" "$ITER" "$THREADS" >>"$WORK/node.jsonl"
done
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
py = [json.loads(l) for l in open(f"{work}/python.jsonl")]
nd = [json.loads(l) for l in open(f"{work}/node.jsonl")]
best = lambda runs, key: min(r[key]["median_ms"] for r in runs)
rows = []
for key, label in (("minilm_b1", "MiniLM-size BERT, batch 1, seq 32"), ("minilm_b8", "MiniLM-size BERT, batch 8, seq 32"), ("tiny", "tiny module (x + 1)")):
    p, n = best(py, key), best(nd, key)
    rows.append((label, p, n))
print(f"threads: {py[0]['threads']} intra-op, torch {py[0]['torch']}, rounds: {len(py)} (best median of each)")
print(f"| case | Python torch.jit (ms) | Node binding (ms) | Node/Python |")
print(f"|---|---:|---:|---:|")
for label, p, n in rows:
    print(f"| {label} | {p:.3f} | {n:.3f} | {n / p:.3f} |")
tp, tn = rows[2][1], rows[2][2]
print(f"\nbinding overhead per call (tiny, Node - Python): {(tn - tp) * 1000:.1f} us")
json.dump({"python": py, "node": nd}, open(f"{work}/../runtime-results.json", "w"), indent=1)
PY
