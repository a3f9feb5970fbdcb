#!/usr/bin/env bash
# The long fuzz run (issue 9): requests generated from the served OpenAPI spec, over a real
# socket. CI runs a 2,000-request slice in-process (test/server/fuzz.test.ts); this runs more.
# Usage: bash bench/fuzz/run.sh [REQUESTS=10000] [SEED=1]   -> bench/fuzz/results/fuzz-<seed>.json
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS="${1:-10000}"; SEED="${2:-1}"
mkdir -p bench/fuzz/results
# Run from source with tap's TypeScript loader: the fuzzer and the fixtures live under test/.
LOG_LEVEL=silent node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/fuzz/socket.ts "$REQUESTS" "$SEED" | tee "bench/fuzz/results/fuzz-$SEED.json"
