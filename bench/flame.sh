#!/usr/bin/env bash
# bench/flame.sh - where the CPU goes: perf profiles of events-service under
# Health/Check, GetEvent (ghz) and CreateEvent on SQLite (bench/grpcload) and of
# events-gateway under REST gets (wrk),
# rendered as flame graphs (inferno) with a table of the hottest functions and
# of the share by library. Writes build-bench/flame/NAME.svg, NAME.folded and
# NAME.top.md; prints the tables. Profiles are reported, never asserted.
#
#   bench/flame.sh [BIN_DIR]
#
# BIN_DIR defaults to build-bench/bin (run bench/run.sh, or BENCH_SKIP_BUILD=1
# bench/run.sh, first). Needs perf (Debian linux-perf) and inferno, which it
# installs when missing (cargo install inferno into build-bench/tools). Knobs:
# BENCH_DURATION (s per profile, 5), BENCH_CONCURRENCY (16), BENCH_SMALL
# (seeded events, 10000), BENCH_FLAME_FREQ (samples/s, 999), BENCH_FLAME_LOADS
# (subset of "check get rest create"; create needs BIN_DIR/grpcload).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

BIN=$(cd "${1:-$root/build-bench/bin}" && pwd)
D=${BENCH_DURATION:-5} C=${BENCH_CONCURRENCY:-16} SMALL=${BENCH_SMALL:-10000}
FREQ=${BENCH_FLAME_FREQ:-999} LOADS=${BENCH_FLAME_LOADS:-check get rest}
WORK=$root/build-bench/flame
TOOLS=$root/build-bench/tools
HARD=$((D * 4 + 60))
TENANT=bench
TOKEN="sk:bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

BENCH_NAME=flame
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
for b in events-service events-gateway; do [ -x "$BIN/$b" ] || die "$BIN/$b is missing"; done
export PATH="$TOOLS/bin:$(go env GOPATH)/bin:$HOME/.cargo/bin:$PATH"
command -v perf >/dev/null || sudo apt-get install -y linux-perf >&2 || die "perf is missing"
if ! command -v inferno-flamegraph >/dev/null; then
  command -v cargo >/dev/null || die "cargo is missing (rustup or Debian's cargo)"
  note "installing inferno into $TOOLS"
  cargo install --quiet --locked --root "$TOOLS" inferno >&2
fi
for t in perf inferno-collapse-perf inferno-flamegraph ghz grpcurl wrk jq python3 cc pkg-config; do
  command -v "$t" >/dev/null || die "$t is missing"
done

bench_workdir
note "seeding $SMALL events"
bench_seed "$BIN" "$WORK/events.db" "$SMALL"
bench_service service "$BIN" "$WORK/events.db"
port=$(free_port)
EVENTS_HTTP_ADDR=127.0.0.1:$port EVENTS_GRPC_TARGET=$SVC_ADDR EVENTS_LOG_LEVEL=info \
  "$BIN/events-gateway" 2>>"$WORK/gateway.log" &
GW_PID=$!
PIDS+=("$GW_PID")
GW_URL=http://127.0.0.1:$port
for _ in $(seq 100); do
  curl -fs "$GW_URL/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "$GW_URL/readyz" >/dev/null || die "events-gateway did not become ready"

GOOGLEAPIS=$(sed -n 's/^GOOGLEAPIS_PROTO_DIR:PATH=//p' "$root/build-bench/CMakeCache.txt")
GHZ_PROTO=(--insecure -i "$root/proto,$GOOGLEAPIS,/usr/include")
CUSTOMER=$root/proto/events/customer/v1/customer.proto
HEALTH=$root/proto/grpc/health/v1/health.proto
GET_DATA=$(jq -R -s -c 'split("\n") | map(select(length > 0)) | map({event_id: .})' "$WORK/ids")
REST_URL=$GW_URL/rest-api/enterprise-interface/v1.0/events

load() { # NAME SECONDS: the load of a profile, in the background; sets LOAD_PID
  local g=(ghz "${GHZ_PROTO[@]}" -c "$C" --connections 1 -z "${2}s")
  case $1 in
  check) timeout -k 5 "$HARD" "${g[@]}" --proto "$HEALTH" --call grpc.health.v1.Health/Check \
    -d '{}' "$SVC_ADDR" >/dev/null 2>&1 & ;;
  get) timeout -k 5 "$HARD" "${g[@]}" --proto "$CUSTOMER" \
    --call events.customer.v1.CustomerEventService/GetEvent \
    -m "{\"authorization\":\"Bearer $TOKEN\"}" -D /dev/stdin "$SVC_ADDR" \
    <<<"$GET_DATA" >/dev/null 2>&1 & ;;
  create) timeout -k 5 "$HARD" "$BIN/grpcload" "$SVC_ADDR" "$TOKEN" --concurrency "$C" \
    --count 1000000 --seconds "$2" --prefix "flame-$RANDOM" >/dev/null 2>&1 & ;;
  rest) timeout -k 5 "$HARD" wrk -t2 -c"$C" -d"${2}s" --timeout 10s -s bench/wrk/customer.lua \
    "$REST_URL" -- get "$TOKEN" "$WORK/ids" >/dev/null 2>&1 & ;;
  esac
  LOAD_PID=$!
}

# NAME PID TITLE: profiles PID for D seconds under NAME's load, one second in.
profile() {
  note "profiling $1 ($3)"
  load "$1" $((D + 2))
  sleep 1
  # cpu-clock: its period is nanoseconds, so the folded weights are CPU time.
  # DWARF unwinding: Debian's gRPC core and its abseil keep no frame pointers.
  perf record -q -e cpu-clock -F "$FREQ" --call-graph dwarf,16384 -p "$2" -o "$WORK/$1.data" \
    -- sleep "$D" >/dev/null 2>"$WORK/$1.perf.log" || die "perf record: $(head -c 300 "$WORK/$1.perf.log")"
  wait "$LOAD_PID" || true
  perf script -i "$WORK/$1.data" 2>/dev/null | inferno-collapse-perf --all >"$WORK/$1.folded"
  inferno-flamegraph --title "$3" --width 1400 --minwidth 1 <"$WORK/$1.folded" >"$WORK/$1.svg"
  {
    printf '\n**%s**: %s s of CPU sampled in %s s\n\n| self %% | function |\n|---:|---|\n' \
      "$3" "$(awk '{n += $NF} END {printf "%.2f", n / 1e9}' "$WORK/$1.folded")" "$D"
    # A folded stack's last frame is where its samples were taken.
    awk '{n = $NF; sub(/ [0-9]+$/, ""); k = split($0, f, ";"); self[f[k]] += n; t += n}
      END {for (s in self) printf "%.1f\t%s\n", 100 * self[s] / t, s}' "$WORK/$1.folded" |
      sort -rn | awk -F'\t' 'NR <= 12 {printf "| %s | `%s` |\n", $1, $2}'
    printf '\n| self %% | object |\n|---:|---|\n'
    perf report -i "$WORK/$1.data" -g none --no-children --sort dso -q --stdio 2>/dev/null |
      awk 'NF >= 2 && $1 ~ /%$/ && n++ < 8 {sub(/%$/, "", $1); printf "| %s | %s |\n", $1, $2}'
  } | tee "$WORK/$1.top.md"
  rm -f "$WORK/$1.data"
}

for l in $LOADS; do
  case $l in
  check) profile check "$SVC_PID" "events-service, grpc.health.v1.Health/Check, ghz c=$C" ;;
  get) profile get "$SVC_PID" "events-service, GetEvent, ghz c=$C" ;;
  create) profile create "$SVC_PID" "events-service, CreateEvent on SQLite, grpcload c=$C" ;;
  rest) profile rest "$GW_PID" "events-gateway, REST get by id, wrk c=$C" ;;
  *) die "unknown load $l" ;;
  esac
done
note "flame graphs in $WORK"
