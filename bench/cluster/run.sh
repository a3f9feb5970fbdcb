#!/usr/bin/env bash
# Cluster benchmark (issue 17): requests per second of a mixed AtomSpace load (4 reads of an atom
# by name : 1 write of a new atom, bench/cluster/mixed.lua under wrk; WRITE_EVERY=0: reads only) on
#   direct   one replica, no balancer                    (replica A pinned to core 0)
#   one      nginx (deploy/nginx/nginx.conf) -> replica A (pinned to core 0)
#   two      nginx -> replicas A and B                    (pinned to cores 0 and 1)
# Both replicas keep the AtomSpace in one PostgreSQL (ATOMSPACE_STORE=postgres, a private cluster
# in a temporary folder). nginx, wrk and PostgreSQL are not pinned: on a machine with only two
# cores they share them with the replicas (say so with the figures). Each point is run REPEATS
# times, interleaved; the summary gives every run and the median.
#
# Usage: flock /tmp/atenspace-bench.lock bash bench/cluster/run.sh
# Settings (environment): DURATION=15 (seconds per run), CONNECTIONS=32, WRK_THREADS=2, REPEATS=3,
#   PG_POOL_SIZE=8, WRITE_EVERY=5 (one write in so many requests; 0: reads only). Needs nginx, wrk, taskset and PostgreSQL's server binaries (Debian:
#   scripts/install-system-deps.sh installs them), and the built server (npm run build:ts).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION="${DURATION:-15}"
CONNECTIONS="${CONNECTIONS:-32}"
WRK_THREADS="${WRK_THREADS:-2}"
REPEATS="${REPEATS:-3}"
PG_POOL_SIZE="${PG_POOL_SIZE:-8}"
for tool in nginx wrk taskset; do command -v "$tool" >/dev/null || { echo "bench/cluster: $tool is missing (scripts/install-system-deps.sh)" >&2; exit 1; }; done
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
[ -x "$PG_BIN/initdb" ] || { echo "bench/cluster: PostgreSQL server binaries not found (PG_BIN)" >&2; exit 1; }
[ -f dist/src/server/main.js ] || npm run build:ts
[ "$(nproc)" -ge 2 ] || { echo "bench/cluster: needs 2 cores to pin two replicas" >&2; exit 1; }

WORK="$(mktemp -d /tmp/atenspace-cluster-bench.XXXXXX)"
PIDS=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_http() { for _ in $(seq 1 300); do curl -fs -o /dev/null "$1" && return 0; sleep 0.2; done; echo "bench/cluster: $1 never answered" >&2; return 1; }

# PostgreSQL
chmod 755 "$WORK"
mkdir "$WORK/pg" && chmod 700 "$WORK/pg"
[ "$(id -u)" = 0 ] && chown postgres "$WORK/pg"
PG_PORT="$(free_port)"
as_pg "$PG_BIN/initdb" -D "$WORK/pg" -U postgres -A trust -E UTF8 --locale=C >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/log" -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1" -w start >/dev/null
as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc 'CREATE DATABASE atenspace_bench'
DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/atenspace_bench"

# Replicas A (core 0) and B (core 1)
start_replica() { # name core port
  mkdir -p "$WORK/$1"
  env MODEL_REPOSITORY=./models LOAD_MODELS=none DEVICE=cpu HOST=127.0.0.1 PORT="$3" GRPC_PORT=0 LOG_LEVEL=warn \
    WORKER_THREADS=1 INTRA_OP_THREADS=1 DATA_DIR="$WORK/$1" \
    ATOMSPACE_STORE=postgres DATABASE_URL="$DATABASE_URL" PG_POOL_SIZE="$PG_POOL_SIZE" \
    taskset -c "$2" node dist/src/server/main.js >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
}
PORT_A="$(free_port)"; PORT_B="$(free_port)"
start_replica a 0 "$PORT_A"
start_replica b 1 "$PORT_B"
wait_http "http://127.0.0.1:$PORT_A/health/ready"
wait_http "http://127.0.0.1:$PORT_B/health/ready"

# The atoms the reads look up (one batch; again after a 503 while the replica settles).
node -e '
  const atoms = Array.from({ length: 1000 }, (_, i) => ({ type: "ConceptNode", name: `seed-${i}` }));
  (async () => {
    for (let i = 0; ; i++) {
      const r = await fetch(process.argv[1], { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ atoms }) });
      if (r.ok) return;
      const text = await r.text();
      if (r.status !== 503 || i === 30) { console.error(text); process.exit(1); }
      await new Promise((ok) => setTimeout(ok, 1000));
    }
  })();
' "http://127.0.0.1:$PORT_A/atoms/batch"

# nginx with the shipped config: listen address and upstream servers rewritten, nothing else.
LB_PORT="$(free_port)"
nginx_conf() { # replica addresses...
  local servers="" a
  for a in "$@"; do servers+="        server $a \\1;\\n"; done
  sed -E -e "s/^(\s*)listen\s+[0-9]+;/\1listen 127.0.0.1:$LB_PORT;/" \
         -e "s/^\s*server atenspace-replica:8080\s+(.*);/${servers%\\n}/" deploy/nginx/nginx.conf
}
NGINX_PID=""
start_nginx() { # replica addresses...
  [ -n "$NGINX_PID" ] && { kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; }
  mkdir -p "$WORK/nginx"
  nginx_conf "$@" >"$WORK/nginx/nginx.conf"
  grep -q "server $1 max_fails" "$WORK/nginx/nginx.conf" || { echo "bench/cluster: upstream not rewritten" >&2; exit 1; }
  nginx -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" -g 'daemon off;' >/dev/null 2>>"$WORK/nginx/error.log" &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_http "http://127.0.0.1:$LB_PORT/health/ready"
}

# CPU time (clock ticks: user + system, with reaped children) of processes and their children.
ticks() { # pids...
  local total=0 pid
  for pid in "$@" $(for p in "$@"; do pgrep -P "$p" || true; done); do
    [ -r "/proc/$pid/stat" ] || continue
    total=$((total + $(sed -E 's/^.*\) //' "/proc/$pid/stat" | awk '{print $12 + $13 + $14 + $15}')))
  done
  echo "$total"
}
HZ="$(getconf CLK_TCK)"
cores() { awk -v t="$1" -v hz="$HZ" -v s="$2" 'BEGIN {printf "%.2f", t / hz / s}'; }

declare -A RESULTS
run_point() { # label url
  local out rps non2xx pg_pid t0 a0 b0 n0 p0 a1 b1 n1 p1 w elapsed
  pg_pid="$(head -n 1 "$WORK/pg/postmaster.pid")"
  a0="$(ticks "${PIDS[0]}")"; b0="$(ticks "${PIDS[1]}")"; n0="$(ticks ${NGINX_PID:-})"; p0="$(ticks "$pg_pid")"; t0="$(date +%s.%N)"
  out="$( { wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s -s bench/cluster/mixed.lua "$2" -- "$1-$r-$RANDOM"; times; } )"
  elapsed="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')"
  a1="$(ticks "${PIDS[0]}")"; b1="$(ticks "${PIDS[1]}")"; n1="$(ticks ${NGINX_PID:-})"; p1="$(ticks "$pg_pid")"
  # `times`' second line: user and system time of the subshell's children (wrk), e.g. 0m1.5s 0m3.2s
  w="$(tail -n 1 <<<"$out" | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, x, /[ms]/); s += x[1] * 60 + x[2] } print s }')"
  rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")"
  echo "run $r  $1: $rps req/s, non-2xx ${non2xx:-0}, $(awk '/Latency/ && !/Distribution/ {print "latency mean " $2 ", max " $4; exit}' <<<"$out"); cores busy: replica A $(cores $((a1 - a0)) "$elapsed"), B $(cores $((b1 - b0)) "$elapsed"), nginx $(cores $((n1 - n0)) "$elapsed"), postgres $(cores $((p1 - p0)) "$elapsed"), wrk $(awk -v w="$w" -v s="$elapsed" 'BEGIN {printf "%.2f", w / s}')" >&2
  RESULTS[$1]+="$rps "
  [ -z "${non2xx:-}" ] || { echo "bench/cluster: $1 had $non2xx failed requests" >&2; echo "$out" >&2; }
}

export WRITE_EVERY="${WRITE_EVERY:-5}"
echo "bench/cluster: WRITE_EVERY=$WRITE_EVERY, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), ${DURATION}s per run, $CONNECTIONS connections, $WRK_THREADS wrk threads" >&2
for r in $(seq 1 "$REPEATS"); do
  run_point direct "http://127.0.0.1:$PORT_A"
  start_nginx "127.0.0.1:$PORT_A"
  run_point one "http://127.0.0.1:$LB_PORT"
  start_nginx "127.0.0.1:$PORT_A" "127.0.0.1:$PORT_B"
  run_point two "http://127.0.0.1:$LB_PORT"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo
echo "| setup | req/s per run | median |"
echo "|---|---|---|"
for p in direct one two; do echo "| $p | ${RESULTS[$p]} | $(median <<<"${RESULTS[$p]}") |"; done
one="$(median <<<"${RESULTS[one]}")"; two="$(median <<<"${RESULTS[two]}")"
echo
echo "two replicas / one replica behind nginx: $(awk -v a="$two" -v b="$one" 'BEGIN {printf "%.2f", a / b}')x (load average after: $(cut -d' ' -f1-3 /proc/loadavg))"
