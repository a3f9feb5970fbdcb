#!/usr/bin/env bash
# npm test: type-check, the TypeScript tests (tap) and the Python exporter tests (pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f native/build/Release/atenspace.node ] || { echo "test: the native addon is not built; run npm run setup first" >&2; exit 1; }

echo "==> Type check"
npx tsc -p tsconfig.json --noEmit

echo "==> TypeScript tests (tap)"
npx tap

if [ -d exporter/tests ]; then
  echo "==> Python tests (pytest)"
  python3 -m pytest -q exporter/tests
fi
