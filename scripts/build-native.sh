#!/usr/bin/env bash
# Build the native addon against the LibTorch of python3's torch (or $LIBTORCH).
set -euo pipefail
cd "$(dirname "$0")/../native"
if ! summary=$(python3 scripts/libtorch.py summary); then
  echo "build-native: LibTorch not found. Install the Python side (npm run setup) or set LIBTORCH=/path/to/libtorch." >&2
  exit 1
fi
echo "build-native: LibTorch $summary"
JOBS="${JOBS:-$(nproc)}"
# Build against the headers of the node that runs us, never a download (no network in CI).
NODEDIR="${npm_config_nodedir:-$(dirname "$(dirname "$(node -p process.execPath)")")}"
if [ ! -f "$NODEDIR/include/node/node_api.h" ]; then
  echo "build-native: Node headers not found under $NODEDIR/include/node; set npm_config_nodedir" >&2
  exit 1
fi
../node_modules/.bin/node-gyp rebuild --nodedir="$NODEDIR" --jobs "$JOBS" >build.log 2>&1 || { tail -n 60 build.log >&2; echo "build-native: compile failed (full log: native/build.log)" >&2; exit 1; }
echo "build-native: built native/build/Release/atenspace.node"
