#!/usr/bin/env bash
# Debian packages that the deployment proofs (test/deploy/) run:
#   prometheus      the real Prometheus server (and promtool) scraping a test server
#   chromium        headless browser that drives Swagger UI at /docs
#   fonts-dejavu-core, fonts-liberation  so that the screenshot has readable text
#   docker-compose  `docker-compose config` validates docker-compose.yml offline (no engine needed)
#   postgresql      initdb/pg_ctl/postgres (/usr/lib/postgresql/<ver>/bin): the AtomSpace's PostgreSQL
#                   store tests start a private cluster as the unprivileged postgres user
#   nginx           the load balancer of deploy/nginx/nginx.conf, in front of two test replicas
#   wrk             HTTP load generator of bench/cluster (one replica vs two behind nginx)
# Needs root and apt-get (Debian 12). Safe to run again: installs only what is missing.
# scripts/setup.sh calls it when both are there; elsewhere run it by hand, or the tests that
# need a missing binary skip and say which.
set -euo pipefail

PACKAGES=(prometheus chromium fonts-dejavu-core fonts-liberation docker-compose nginx wrk postgresql)

command -v apt-get >/dev/null || { echo "install-system-deps: apt-get not found (not Debian?); install by hand: ${PACKAGES[*]}" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "install-system-deps: run as root (sudo bash $0)" >&2; exit 1; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present: ${PACKAGES[*]}"
  exit 0
fi

echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Do not let the packages' maintainer scripts start services (Prometheus on :9090, nginx on :80):
# the tests start their own, on loopback ports. Keep an existing policy-rc.d untouched.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
