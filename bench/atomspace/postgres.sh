#!/usr/bin/env bash
# The PostgreSQL AtomSpace store benchmark (bench/atomspace/postgres.ts) on a private cluster:
# initdb + pg_ctl in a temporary folder on a free loopback port, as the postgres user when run as
# root, default durability settings; stopped and removed at the end. Serialised with the other
# benchmarks through /tmp/atenspace-bench.lock (the machine is shared).
# Usage: bash bench/atomspace/postgres.sh   (env: INSERT_ATOMS, GROUP, RATE, SECONDS, QUERIES)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
[ -x "$bin/initdb" ] || { echo "postgres bench: no initdb (install postgresql: scripts/install-system-deps.sh)" >&2; exit 1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
dir="$(mktemp -d /tmp/atenspace-pgbench-XXXXXX)"
[ "$(id -u)" = 0 ] && chown postgres: "$dir"
cleanup() { as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C >/dev/null
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -w start >/dev/null
npx tsc -p tsconfig.build.json >/dev/null || echo "(tsc reported errors elsewhere; running what was emitted)" >&2
exec 9>/tmp/atenspace-bench.lock
flock 9
node dist/bench/atomspace/postgres.js "postgres://postgres@127.0.0.1:$port/"
