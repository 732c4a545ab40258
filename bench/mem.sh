#!/usr/bin/env bash
# bench/mem.sh - the table's two memory figures alone, for comparing builds
# without the whole bench (no loads but the connections held open, so CPU use
# stays low). Uses an existing release build (bench/run.sh makes one in
# build-bench/); the store is seeded once and kept in build-bench/mem/.
#
#   bench/mem.sh svc [BIN_DIR] [RUNS]   events-service RssAnon at rest, as
#                                       section 4 takes it: 10k-event SQLite
#                                       store, gateway started, 0.5 s after
#                                       its /readyz answered (RUNS, default 3)
#   bench/mem.sh conns KIB [BIN_DIR] [IDLE] [SLOW]
#                                       section 6: bench/conns.py against a
#                                       gateway with EVENTS_HTTP_CONN_MEMORY_KIB=KIB
#
# BIN_DIR defaults to build-bench/bin; it must hold rawinsert the first time
# (bench/run.sh builds it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
W=$root/build-bench/mem
mkdir -p "$W"
export PATH="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin:$PATH"
TOKEN=sk:bench-mem

BENCH_NAME=mem
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

start_service() { # BIN DB: sets SVC_PID and SVC_ADDR
  local port i
  port=$(free_port)
  EVENTS_CREDENTIALS=$W/credentials EVENTS_STORE="sqlite:$2" EVENTS_GRPC_ADDR=127.0.0.1:$port \
    EVENTS_LOG_LEVEL=info "$1/events-service" 2>>"$W/service.log" &
  SVC_PID=$!
  PIDS+=("$SVC_PID")
  SVC_ADDR=127.0.0.1:$port
  for i in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  grpcurl -plaintext -max-time 5 "$SVC_ADDR" grpc.health.v1.Health/Check >/dev/null
}

start_gateway() { # BIN: sets GW_PID and GW_PORT
  local i
  GW_PORT=$(free_port)
  EVENTS_HTTP_ADDR=127.0.0.1:$GW_PORT EVENTS_GRPC_TARGET=$SVC_ADDR EVENTS_LOG_LEVEL=info \
    "$1/events-gateway" 2>>"$W/gateway.log" &
  GW_PID=$!
  PIDS+=("$GW_PID")
  for i in $(seq 100); do
    curl -fs "http://127.0.0.1:$GW_PORT/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "events-gateway did not become ready" >&2
  exit 1
}

mode=${1:-}
case $mode in
svc) BIN=${2:-$root/build-bench/bin} ;;
conns) BIN=${3:-$root/build-bench/bin} ;;
*)
  sed -n '2,17p' "$0" >&2
  exit 2
  ;;
esac
BIN=$(cd "$BIN" && pwd)

printf 'bench bearer %s\n' "$TOKEN" >"$W/credentials"
chmod 600 "$W/credentials"
DB=$W/events.db
if [ ! -f "$DB" ]; then # run.sh section 1's store: 10,000 events, planner statistics
  start_service "$BIN" "$DB"
  stop "$SVC_PID"
  "$BIN/rawinsert" seed "sqlite:$DB" --tenant bench --count 10000 --customers 50 --prefix seed \
    --ids-out "$DB.ids" --ids 100 >/dev/null
  "$BIN/rawinsert" analyze "sqlite:$DB" >/dev/null
fi

if [ "$mode" = svc ]; then
  for r in $(seq "${3:-3}"); do
    start_service "$BIN" "$DB"
    start_gateway "$BIN"
    sleep 0.5
    printf 'run %s: events-service RssAnon %s KiB (RssFile %s KiB), events-gateway RssAnon %s KiB\n' \
      "$r" "$(kib "$SVC_PID" RssAnon)" "$(kib "$SVC_PID" RssFile)" "$(kib "$GW_PID" RssAnon)"
    stop "$GW_PID"
    stop "$SVC_PID"
  done
else
  start_service "$BIN" "$DB"
  EVENTS_HTTP_CONN_MEMORY_KIB=$2 start_gateway "$BIN"
  python3 "$root/bench/conns.py" "$GW_PORT" "$GW_PID" "${4:-10000}" "${5:-2000}"
fi
