#!/usr/bin/env bash
# AtomSpace similarity and insert benchmark, plus the plain C loop it is measured against.
# Usage: bash bench/atomspace/run.sh [N=100000] [D=384] [APPROX_N=0]
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-100000}"; D="${2:-384}"; APPROX_N="${3:-0}"
mkdir -p bench/.work
gcc -O2 -o bench/.work/cloop bench/atomspace/cloop.c
echo "plain C loop (gcc -O2, one thread):"
bench/.work/cloop "$N" "$D" 20 | tee bench/.work/cloop.json
npx tsc -p tsconfig.build.json
echo "AtomSpace (native top-k over the contiguous matrix):"
node dist/bench/atomspace/knn.js "$N" "$D" "$APPROX_N" | tee bench/.work/atomspace.json
