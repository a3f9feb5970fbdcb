#!/usr/bin/env bash
# npm run setup: install the Python side, the npm packages, build the addon and the
# TypeScript, export the demo models when models/ has none, and report what was found.
# Safe to run again: each step skips what is already up to date.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }
die() { printf '\nsetup: %s\n' "$*" >&2; exit 1; }

say "Checking tools"
command -v node >/dev/null || die "Node.js 20 or newer is required (node not found)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js 20 or newer is required (found $(node --version))"
command -v python3 >/dev/null || die "python3 (3.10 or newer) is required for torch and the exporter"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "python3 3.10 or newer is required (found $(python3 --version))"
python3 -m pip --version >/dev/null 2>&1 || die "pip is missing for python3: install it (python3 -m ensurepip or your OS package python3-pip)"
command -v g++ >/dev/null || die "a C++20 compiler is required to build the addon (g++ 10 or newer)"
command -v make >/dev/null || die "make is required to build the addon"
echo "node $(node --version), $(python3 --version), $(g++ --version | head -n1)"

if command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then say "System packages (scripts/install-system-deps.sh: Prometheus, Chromium, docker-compose for the deployment tests)"; bash scripts/install-system-deps.sh || echo "setup: could not install the system packages; the deployment tests that need them will skip"; fi

say "Python packages (exporter/requirements.txt, test/requirements.txt)"
if [ -n "${LIBTORCH:-}" ]; then echo "LIBTORCH=$LIBTORCH: the addon builds against it; python3's torch is still used by the exporter"; fi
# --retries 0 --timeout 5: fail fast instead of retrying an unreachable index for minutes.
python3 -m pip install --disable-pip-version-check --retries 0 --timeout 5 ${PIP_INSTALL_FLAGS:-} -r exporter/requirements.txt -r test/requirements.txt \
  | grep -v -E '^Requirement already satisfied' || true
python3 -c 'import torch, transformers, tokenizers, safetensors, pytest' 2>/dev/null \
  || die "the Python packages did not install (see pip's output above); torch must be importable by python3"

say "npm packages"
npm ci --no-audit --no-fund --loglevel=error

say "Native addon"
stamp=native/build/.stamp
want="$(python3 native/scripts/libtorch.py summary) $(cat native/binding.gyp native/src/* | sha256sum | cut -c1-16) node-$(node --version)"
if [ -f native/build/Release/atenspace.node ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "up to date (native/build/Release/atenspace.node)"
else
  bash scripts/build-native.sh
  echo "$want" >"$stamp"
fi

say "TypeScript"
npx tsc -p tsconfig.build.json
echo "built dist/"

if [ -f exporter/__main__.py ]; then
  say "Demo models"
  # Pretrained ones from the Hugging Face Hub when it answers within a few seconds (HF_ENDPOINT,
  # never with HF_HUB_OFFLINE), the random-init set otherwise; DEMO_MODELS=random|pretrained|none decides instead.
  if [ -z "${DEMO_MODELS:-}" ] && compgen -G "models/*/atenspace.json" >/dev/null; then
    echo "models/ already holds models: $(ls -d models/*/ | xargs -n1 basename | tr '\n' ' ')(DEMO_MODELS=pretrained or random re-exports the demo set)"
  else
    python3 -m exporter demo --out models --weights auto
  fi
fi

say "Runtime"
node dist/scripts/doctor.js
