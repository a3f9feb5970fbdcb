#!/bin/sh
# Container entrypoint (also runs outside a container, from any directory):
#  - when the model repository holds no model (no */atenspace.json), export the demo models into
#    it with the Python exporter (python3 -m exporter demo), under a lock so that two containers
#    sharing the volume do not export at once;
#  - then exec the server (node dist/src/server/main.js), which becomes PID 1 and drains on SIGTERM.
# The repository is --model-repository when passed, else $MODEL_REPOSITORY, else ./models.
# Arguments are passed on to the server (e.g. --log-level debug).
set -eu
cd "$(dirname "$0")/.."

models="${MODEL_REPOSITORY:-./models}"
prev=""
for arg in "$@"; do
  case "$arg" in
    --model-repository=*) models="${arg#--model-repository=}" ;;
  esac
  if [ "$prev" = "--model-repository" ]; then models="$arg"; fi
  prev="$arg"
done

has_models() {
  for manifest in "$1"/*/atenspace.json; do
    [ -f "$manifest" ] && return 0
  done
  return 1
}

if ! has_models "$models"; then
  mkdir -p "$models" 2>/dev/null || true
  if [ ! -w "$models" ]; then
    echo "entrypoint: $models holds no model and is not writable by $(id -un) (uid $(id -u)); mount a model repository or make it writable" >&2
    exit 1
  fi
  (
    # flock waits for another container exporting into the same volume, then re-checks.
    if command -v flock >/dev/null 2>&1; then
      exec 9>"$models/.export.lock"
      flock 9
    fi
    if ! has_models "$models"; then
      echo "entrypoint: $models holds no model: exporting the demo models (python3 -m exporter demo)" >&2
      python3 -m exporter demo --out "$models" >&2
    fi
  )
  rm -f "$models/.export.lock"
else
  echo "entrypoint: serving the models in $models" >&2
fi

exec node dist/src/server/main.js "$@"
