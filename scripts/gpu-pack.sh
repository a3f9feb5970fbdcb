#!/usr/bin/env bash
# Pack what scripts/gpu-check.sh needs on a GPU machine that has python3 + torch but no Node:
# node and its headers, production node_modules (other platforms' binaries pruned) plus
# node-gyp, dist/, and the exported demo models. Writes .device/bundle.tar.xz (< 64 MiB, so
# the device tool can carry it: carry [".device"]).
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/include" .device
cp "$(command -v node)" "$STAGE/bin/node"
cp -r "$(dirname "$(dirname "$(command -v node)")")/include/node" "$STAGE/include/node"
npx tsc -p tsconfig.build.json
cp -r dist "$STAGE/dist"
cp package.json package-lock.json "$STAGE/"
(cd "$STAGE" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error && npm install --no-save --ignore-scripts --no-audit --no-fund --loglevel=error node-gyp@11)
# Only linux-x64 binaries are needed.
find "$STAGE/node_modules" -type f \( -name '*darwin*' -o -name '*win32*' -o -name '*arm64*' -o -name '*musl*' \) -delete 2>/dev/null || true
find "$STAGE/node_modules" -type d -name prebuilds -exec sh -c 'for d in "$1"/*; do case "$d" in *linux-x64*) ;; *) rm -rf "$d";; esac; done' _ {} \; 2>/dev/null || true
if compgen -G "models/*/atenspace.json" >/dev/null; then cp -r models "$STAGE/models"; else python3 -m exporter demo --out "$STAGE/models" >/dev/null; fi
rm -rf "$STAGE/models/.demo-sources"
tar -C "$STAGE" -cf - bin include dist node_modules models | xz -T0 -6 >.device/bundle.tar.xz
ls -la .device/bundle.tar.xz
