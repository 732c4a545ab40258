#!/usr/bin/env bash
# bench/run.sh - the benchmark command. Builds a release build in build-bench/,
# starts the stack on loopback (free ports), runs bounded loads and prints ONE
# markdown table; every comparison in it is measured in this run, on this
# machine. Numbers are reported, never asserted.
#
#   bench/run.sh                 full run (longer loads, a 1M-event store)
#   BENCH_QUICK=1 bench/run.sh   short loads and small stores (about 3 minutes on 2 cores)
#
# Knobs (environment): BENCH_DURATION (s per load), BENCH_WARMUP (s),
# BENCH_CONCURRENCY (in-flight requests of every load but list-vs-size),
# BENCH_REPEAT (runs of each section 1, 2 and scaling load: 2, quick 1),
# BENCH_STORE_N (documents of each store-cost round), BENCH_STORE_REPEAT (its
# rounds a side, alternating: 4), BENCH_SMALL / BENCH_BIG
# (SQLite list-vs-size stores), BENCH_FERRET_SMALL / BENCH_FERRET_BIG (the same
# on FerretDB), BENCH_LOG_LEVEL (EVENTS_LOG_LEVEL of both processes: the
# product's default, info, unless set), BENCH_SKIP_BUILD=1 (reuse build-bench/).
#
# Sections: 1 gateway overhead (REST via events-gateway vs gRPC direct),
# 2 gRPC core vs a grpc-go health server, 3 store cost (service creates sent
# by bench/grpcload vs raw driver inserts, SQLite and FerretDB), 4 memory
# (VmRSS idle, VmHWM under each load; RssAnon and RssFile idle, peak RssAnon
# under each load), 5 scaling
# (worker threads; list latency vs stored events), 6 the gateway holding
# 10,000 idle and 2,000 slow connections (bench/conns.py), 7 bulk create:
# events/s through BatchCreateEvents of BATCH_SIZE vs single CreateEvent
# calls, both at c=1, on SQLite and on FerretDB (bench/batchload.py), 8 change
# feed: Watch delivery latency with 100 vs 1 watchers (bench/watch.py).
# The table is also written to build-bench/bench/table.md; logs and raw tool
# output stay in build-bench/bench/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

quick=${BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then
  D=${BENCH_DURATION:-3} W=${BENCH_WARMUP:-1} STORE_N=${BENCH_STORE_N:-3000}
  SMALL=${BENCH_SMALL:-10000} BIG=${BENCH_BIG:-100000}
  FSMALL=${BENCH_FERRET_SMALL:-2000} FBIG=${BENCH_FERRET_BIG:-4000}
else
  D=${BENCH_DURATION:-10} W=${BENCH_WARMUP:-2} STORE_N=${BENCH_STORE_N:-5000}
  SMALL=${BENCH_SMALL:-10000} BIG=${BENCH_BIG:-1000000}
  FSMALL=${BENCH_FERRET_SMALL:-2000} FBIG=${BENCH_FERRET_BIG:-10000}
fi
C=${BENCH_CONCURRENCY:-16}
REPEAT=${BENCH_REPEAT:-$([ "$quick" = 1 ] && echo 1 || echo 2)}
STORE_REPEAT=${BENCH_STORE_REPEAT:-4}
LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
PER_CUSTOMER=200 # events of the listed customer, whatever the store's size
TENANT=bench
TOKEN="sk:bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
BUILD=$root/build-bench
BIN=$BUILD/bin
WORK=$BUILD/bench
HARD=$((D * 4 + 60)) # hard bound (s) on any single timed load

BENCH_NAME=bench
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh" # note, die, free_port, PIDS stopped on exit

# ---- tools and build ---------------------------------------------------------

if ! command -v wrk >/dev/null || ! command -v go >/dev/null ||
  [ ! -x "$(go env GOPATH 2>/dev/null)/bin/ghz" ]; then
  scripts/deps.sh
fi
export PATH="$(go env GOPATH)/bin:$PATH"
for t in wrk ghz grpcurl jq python3 cc pkg-config; do
  command -v "$t" >/dev/null || die "$t is missing (scripts/deps.sh installs it)"
done

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ] || [ ! -x "$BIN/events-service" ] ||
  [ ! -x "$BIN/grpcload" ]; then
  note "release build in build-bench/"
  gen=()
  [ -f "$BUILD/CMakeCache.txt" ] || gen=(-G Ninja)
  cmake -S "$root" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DEVENTS_TESTS=OFF \
    -DEVENTS_SANITIZE=OFF -DEVENTS_WERROR=OFF >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" >"$BUILD/build.log" 2>&1 || {
    tail -30 "$BUILD/build.log" >&2
    die "build failed"
  }
  tests/ferretdb/build.sh "$BIN/events-ferretdb"
  # shellcheck disable=SC2046
  cc -O2 -Wall -Wextra -o "$BIN/rawinsert" bench/rawinsert.c \
    $(pkg-config --cflags --libs libmongoc-1.0 sqlite3) -lpthread
  (cd bench/healthpeer && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 \
    go build -trimpath -o "$BIN/healthpeer" .)
fi

rm -rf "$WORK"
mkdir -p "$WORK"
RES=$WORK/results.tsv
: >"$RES"
put() { printf '%s\t%s\n' "$1" "$2" >>"$RES"; }
printf 'bench bearer %s\n' "$TOKEN" >"$WORK/credentials"
chmod 600 "$WORK/credentials"

# ---- processes -----------------------------------------------------------------

wait_tcp() { # PID HOST PORT
  local i
  for i in $(seq 200); do
    kill -0 "$1" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/$2/$3") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

stop() { # PID: SIGTERM, then wait (the service drains in-flight calls)
  local p=$1 i
  kill -TERM "$p" 2>/dev/null || return 0
  for i in $(seq 200); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  local keep=() q
  for q in "${PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
  PIDS=("${keep[@]}")
}

# start_service NAME STORE_URL [WORKERS]: sets SVC_PID and SVC_ADDR
start_service() {
  local port
  port=$(free_port)
  local -a env=(EVENTS_CREDENTIALS="$WORK/credentials" EVENTS_STORE="$2"
    EVENTS_GRPC_ADDR="127.0.0.1:$port" EVENTS_LOG_LEVEL="$LOG_LEVEL")
  [ -n "${3:-}" ] && env+=(EVENTS_WORKERS="$3")
  env "${env[@]}" "$BIN/events-service" 2>>"$WORK/$1.log" &
  SVC_PID=$!
  PIDS+=("$SVC_PID")
  SVC_ADDR=127.0.0.1:$port
  wait_tcp "$SVC_PID" 127.0.0.1 "$port" || die "events-service ($1) did not start: see $WORK/$1.log"
  grpcurl -plaintext -max-time 5 "$SVC_ADDR" grpc.health.v1.Health/Check >/dev/null ||
    die "events-service ($1) is not serving"
}

start_gateway() { # sets GW_PID and GW_URL
  local port
  port=$(free_port)
  EVENTS_HTTP_ADDR=127.0.0.1:$port EVENTS_GRPC_TARGET=$SVC_ADDR EVENTS_LOG_LEVEL=$LOG_LEVEL \
    "$BIN/events-gateway" 2>>"$WORK/gateway.log" &
  GW_PID=$!
  PIDS+=("$GW_PID")
  GW_URL=http://127.0.0.1:$port
  local i
  for i in $(seq 100); do
    curl -fs "$GW_URL/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "events-gateway did not become ready"
}

start_ferretdb() { # DIR: sets FDB_PID and FDB_URL (without database)
  local port
  port=$(free_port)
  "$BIN/events-ferretdb" -addr "127.0.0.1:$port" -dir "$1" 2>>"$WORK/ferretdb.log" &
  FDB_PID=$!
  PIDS+=("$FDB_PID")
  FDB_URL=mongodb://127.0.0.1:$port
  wait_tcp "$FDB_PID" 127.0.0.1 "$port" || die "events-ferretdb did not start"
}

# A store with the service's schema and `n` seeded events (customer k has the
# events i with i % customers == k, PER_CUSTOMER each).
customers_for() { # N: customers so that each has PER_CUSTOMER events
  local n=$(($1 / PER_CUSTOMER))
  ((n >= 8)) || die "a seeded store needs at least $((8 * PER_CUSTOMER)) events (got $1)"
  echo "$n"
}

seed_sqlite() { # FILE N
  local customers
  customers=$(customers_for "$2")
  start_service schema "sqlite:$1"
  stop "$SVC_PID"
  timeout 600 "$BIN/rawinsert" seed "sqlite:$1" --tenant "$TENANT" --count "$2" \
    --customers "$customers" --prefix seed --ids-out "$1.ids" --ids 100 >"$WORK/seed.out" ||
    die "seeding $1 failed"
  cat "$WORK/seed.out" >>"$WORK/seed.log"
  put "seed_sqlite_$2.seconds" "$(jq .seconds "$WORK/seed.out")"
}

seed_mongo() { # URL N (the service has made the indexes already)
  local customers
  customers=$(customers_for "$2")
  timeout 900 "$BIN/rawinsert" seed "$1" --tenant "$TENANT" --count "$2" --threads 2 \
    --customers "$customers" --prefix seed >"$WORK/seed.out" || die "seeding $1 failed"
  cat "$WORK/seed.out" >>"$WORK/seed.log"
  put "seed_mongo_$2.seconds" "$(jq .seconds "$WORK/seed.out")"
}
LIST_CUSTOMER=c0000000000000000000000007 # seeded customer 7: PER_CUSTOMER events

# ---- measurement -------------------------------------------------------------

# Processes whose CPU and memory each load records: "name:pid" words.
TRACK=()
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
HWM_RESET=1
reset_hwm() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || HWM_RESET=0; }

idle_mem() { # KEY PID: VmRSS of a process at rest, and its private and file-backed parts
  sleep 0.5
  put "idle.$1" "$(kib "$2" VmRSS)"
  put "idle.$1.anon" "$(kib "$2" RssAnon)"
  put "idle.$1.file" "$(kib "$2" RssFile)"
}

# Peak private memory (RssAnon) during a load: the kernel keeps no high-water
# mark of it, so it is sampled every 0.1 s (without forking but for sleep).
anon_sampler() { # PID OUTFILE
  local max=0 k v _
  while kill -0 "$1" 2>/dev/null; do
    while read -r k v _; do
      if [ "$k" = RssAnon: ]; then
        ((v > max)) && max=$v && echo "$max" >"$2"
        break
      fi
    done <"/proc/$1/status" 2>/dev/null || true
    sleep 0.1
  done
}
SAMPLERS=()

# The machine's busy ticks (all CPUs: user, nice, system, steal; interrupts
# are left out, loopback traffic is mostly ours): what our processes did not use of them
# during a load was used by something else running on the machine.
busy() { awk '/^cpu / {print $2 + $3 + $4 + $9; exit}' /proc/stat; }
declare -A T0
BUSY0=0 WALL0=0 OURS=0
track_begin() {
  local t
  SAMPLERS=()
  for t in "${TRACK[@]}"; do
    reset_hwm "${t#*:}"
    T0[$t]=$(ticks "${t#*:}")
    echo 0 >"$WORK/anon.${t%%:*}"
    anon_sampler "${t#*:}" "$WORK/anon.${t%%:*}" &
    SAMPLERS+=($!)
  done
  BUSY0=$(busy)
  WALL0=$(date +%s%N)
}
track_end() { # LOAD (then put_other LOAD CLIENT_TICKS)
  local t d p
  OURS=0
  for t in "${TRACK[@]}"; do
    d=$(($(ticks "${t#*:}") - T0[$t]))
    OURS=$((OURS + d))
    put "$1.cpu.${t%%:*}" "$d"
    put "$1.hwm.${t%%:*}" "$(kib "${t#*:}" VmHWM)"
  done
  for p in "${SAMPLERS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${SAMPLERS[@]}"; do wait "$p" 2>/dev/null || true; done
  for t in "${TRACK[@]}"; do put "$1.anon.${t%%:*}" "$(cat "$WORK/anon.${t%%:*}")"; done
  put "$1.busy" "$(($(busy) - BUSY0))"
  put "$1.wall_ms" "$((($(date +%s%N) - WALL0) / 1000000))"
}
put_client() { # LOAD TIMEFILE: the load generator's CPU, and everyone else's
  local c
  c=$(client_cpu "$2")
  put "$1.cpu.client" "$c"
  put "$1.cpu.ours" "$((OURS + c))"
}

# The client's own CPU (ticks) comes from bash's `time`.
TIMEFORMAT='%U %S'
client_cpu() { awk '{printf "%d", ($1 + $2) * 100}' "$1"; }

# The dialect protos import google/api/*.proto, which the build found in the
# googleapis-common-protos wheel (proto/CMakeLists.txt); ghz needs it too.
GOOGLEAPIS=$(sed -n 's/^GOOGLEAPIS_PROTO_DIR:PATH=//p' "$BUILD/CMakeCache.txt")
[ -f "$GOOGLEAPIS/google/api/annotations.proto" ] ||
  die "google/api/annotations.proto not found (GOOGLEAPIS_PROTO_DIR in $BUILD/CMakeCache.txt)"
GHZ_PROTO=(--insecure -i "$root/proto,$GOOGLEAPIS,/usr/include")
CUSTOMER_PROTO=$root/proto/events/customer/v1/customer.proto
HEALTH_PROTO=$root/proto/grpc/health/v1/health.proto
CREATE_DATA='{"event":{"event_type_id":"8bed991c68a470e7aaeffbf048","customer_id":"85bc5819e09dab95437552ce79","external_id":"PREFIX-{{.RequestNumber}}","data":"{\"source\":\"bench\"}"},"property_records":[{"property_id":"has_purchase","property_value":"true"},{"property_id":"amount","property_value":42.5}]}'
LIST_DATA="{\"page_size\":50,\"customer_id\":\"$LIST_CUSTOMER\"}"
BATCH_SIZE=${BENCH_BATCH_SIZE:-500}

ghz_parse() { # LOAD FILE
  jq -r --arg l "$1" '
    def pct(p): ((.latencyDistribution // []) | map(select(.percentage == p)) | .[0].latency // 0) / 1e6;
    (.statusCodeDistribution.OK // 0) as $ok |
    "\($l).n\t\(.count)", "\($l).ok\t\($ok)", "\($l).rps\t\($ok / (.total / 1e9))",
    "\($l).p50\t\(pct(50))", "\($l).p99\t\(pct(99))"' "$2" >>"$RES"
}

# ghz_run LOAD TARGET CALL PROTO DATA CONC "-z Ns"|"-n N"
ghz_run() {
  local load=$1 target=$2 call=$3 proto=$4 data=$5 conc=$6 bound=$7
  local -a md=()
  [ "$call" = grpc.health.v1.Health/Check ] || md=(-m "{\"authorization\":\"Bearer $TOKEN\"}")
  data=${data//PREFIX/$load-$RANDOM}
  # A large body (a batch) goes in a file: one argument holds at most 128 KiB.
  local -a d=(-d "$data") wd=(-d "${data//\{\{.RequestNumber\}\}/w{{.RequestNumber}}}")
  if ((${#data} > 65536)); then
    printf '%s' "$data" >"$WORK/$load.data"
    printf '%s' "${data//\{\{.RequestNumber\}\}/w{{.RequestNumber}}}" >"$WORK/$load.wdata"
    d=(-D "$WORK/$load.data") wd=(-D "$WORK/$load.wdata")
  fi
  if [ "$W" != 0 ] && [[ $bound == -z* ]]; then
    timeout -k 5 "$HARD" ghz "${GHZ_PROTO[@]}" --proto "$proto" --call "$call" "${md[@]}" \
      "${wd[@]}" -c "$conc" --connections 1 -z "${W}s" "$target" >/dev/null 2>&1 || true
  fi
  # -z loads: calls in flight at the end are waited for and counted, not cut.
  [[ $bound == -z* ]] && bound="$bound --duration-stop=wait"
  track_begin
  { time timeout -k 5 "$HARD" ghz "${GHZ_PROTO[@]}" --proto "$proto" --call "$call" "${md[@]}" \
    "${d[@]}" -c "$conc" --connections 1 $bound -O json -o "$WORK/$load.json" "$target" \
    2>"$WORK/$load.err"; } 2>"$WORK/$load.time" || true
  track_end "$load"
  put_client "$load" "$WORK/$load.time"
  [ -s "$WORK/$load.json" ] || die "ghz produced nothing for $load: $(head -c 300 "$WORK/$load.err")"
  ghz_parse "$load" "$WORK/$load.json"
  put "$load.conc" "$conc"
}

wrk_load() { # LOAD OP ARG
  local load=$1 op=$2 arg=$3 url=$GW_URL/rest-api/enterprise-interface/v1.0/events
  local warg=$arg
  [ "$op" = create ] && warg=w$load-$RANDOM && arg=$load-$RANDOM
  [ "$W" = 0 ] || timeout -k 5 "$HARD" wrk -t2 -c"$C" -d"${W}s" --timeout 10s \
    -s bench/wrk/customer.lua "$url" -- "$op" "$TOKEN" "$warg" >/dev/null 2>&1 || true
  track_begin
  { time timeout -k 5 "$HARD" wrk -t2 -c"$C" -d"${D}s" --timeout 10s -s bench/wrk/customer.lua \
    "$url" -- "$op" "$TOKEN" "$arg" >"$WORK/$load.out" 2>&1; } 2>"$WORK/$load.time" || true
  track_end "$load"
  put_client "$load" "$WORK/$load.time"
  local j
  j=$(sed -n 's/^BENCHJSON //p' "$WORK/$load.out")
  [ -n "$j" ] || die "wrk produced nothing for $load: $(head -c 300 "$WORK/$load.out")"
  jq -r --arg l "$load" '((.requests - .status_errors - .timeouts)) as $ok |
    "\($l).n\t\(.requests)", "\($l).ok\t\($ok)", "\($l).rps\t\($ok / (.duration_us / 1e6))",
    "\($l).p50\t\(.p50_us / 1000)", "\($l).p99\t\(.p99_us / 1000)"' <<<"$j" >>"$RES"
  put "$load.conc" "$C"
}

# c_load LOAD N TOOL ARGS...: N documents through one of the C load
# generators (grpcload, rawinsert), which print the same JSON.
c_load() {
  local load=$1 n=$2 tool=$3
  shift 3
  track_begin
  { time timeout -k 5 600 "$BIN/$tool" "$@" --count "$n" --prefix "$load-$RANDOM" \
    --seconds 300 >"$WORK/$load.out" 2>"$WORK/$load.err"; } 2>"$WORK/$load.time" || true
  track_end "$load"
  put_client "$load" "$WORK/$load.time"
  [ -s "$WORK/$load.out" ] || die "$tool failed for $load: $(head -c 300 "$WORK/$load.err")"
  jq -r --arg l "$load" '"\($l).n\t\(.n)", "\($l).ok\t\(.ok)", "\($l).rps\t\(.rate)",
    "\($l).p50\t\(.p50_ms)", "\($l).p99\t\(.p99_ms)"' "$WORK/$load.out" >>"$RES"
  put "$load.conc" "$C"
}

# Section 3's service side: bench/grpcload (C on gRPC core, one channel, one
# completion queue, C calls in flight) sends the CreateEvent calls ghz would
# (CREATE_DATA). B's client, rawinsert, is C; with ghz (Go) as A's client the
# load generator took ~650 ms of CPU per 1k creates on 2 cores against the
# service's ~260 and rawinsert's ~290, so A measured the service starved by its
# own client. Both sides now have C clients; the table keeps both clients' CPU
# per 1k documents beside the service's, so the reader sees what each costs.
svc_create_load() { c_load "$1" "$2" grpcload "$SVC_ADDR" "$TOKEN" --concurrency "$C"; } # LOAD N

# store_cost ENGINE RAW_URL "SERVICE SIDE TRACK" "RAW SIDE TRACK": STORE_REPEAT
# rounds of STORE_N documents a side, in the order A B B A A B B A: a round
# takes under a second on SQLite, and single rounds moved the ratio by a
# quarter from run to run as the disk's fsync time drifted; alternating
# rounds put the drift on both sides.
store_cost() {
  local eng=$1 url=$2 r side
  for r in $(seq "$STORE_REPEAT"); do
    for side in $( ((r % 2)) && echo svc raw || echo raw svc); do
      if [ "$side" = svc ]; then
        read -ra TRACK <<<"$3"
        svc_create_load "store_${eng}_svc_r$r" "$STORE_N"
      else
        read -ra TRACK <<<"$4"
        raw_load "store_${eng}_raw_r$r" "$url" "$STORE_N"
      fi
    done
  done
}
raw_load() { c_load "$1" "$3" rawinsert insert "$2" --tenant "$TENANT" --threads "$C"; } # LOAD STORE_URL N

# 7: the same customer events created one call each and BATCH_SIZE per call,
# one call in flight (c=1), on the running service: same store, same
# durability (SQLite synchronous=FULL: a commit per call; FerretDB: the
# driver's default write concern). Both sides use bench/batchload.py, which
# sends a request serialised once (ghz rendered a 500-item JSON template per
# call, ~60 ms of CPU taken from the service on a 2-core machine).
batch_load() { # LOAD single|batch
  local py=${BENCH_VENV:-$PWD/.venv}/bin/python data=${CREATE_DATA//PREFIX/$1}
  data=${data//\{\{.RequestNumber\}\}/0}
  if [ "$W" != 0 ]; then
    timeout -k 5 "$HARD" "$py" bench/batchload.py "$SVC_ADDR" "$TOKEN" "$2" "$BATCH_SIZE" "$W" \
      "w$1" "$data" >/dev/null 2>>"$WORK/$1.err" || true
  fi
  track_begin
  timeout -k 5 "$HARD" "$py" bench/batchload.py "$SVC_ADDR" "$TOKEN" "$2" "$BATCH_SIZE" "$D" \
    "$1" "$data" >"$WORK/$1.out" 2>>"$WORK/$1.err" || true
  track_end "$1"
  [ -s "$WORK/$1.out" ] || die "batchload produced nothing for $1: $(head -c 300 "$WORK/$1.err")"
  cat "$WORK/$1.out" >>"$RES"
  put "$1.cpu.ours" "$((OURS + $(sed -n "s/^$1\.cpu\.client\t//p" "$WORK/$1.out")))"
  put "$1.conc" 1
}

batch_vs_single() { # ENGINE (TRACK set by the caller)
  local r
  for r in $(seq "$REPEAT"); do
    batch_load "batch_$1_single_r$r" single
    batch_load "batch_$1_bulk_r$r" batch
  done
  put "batch_$1.size" "$BATCH_SIZE"
}

# ---- machine -------------------------------------------------------------------

put machine.nproc "$(nproc)"
put machine.clk_tck "$(getconf CLK_TCK)"
put machine.model "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
put machine.mem_kib "$(awk '/^MemTotal/ {print $2}' /proc/meminfo)"
put machine.kernel "$(uname -sr)"
put machine.date "$(date -u '+%Y-%m-%d %H:%M UTC')"
put machine.commit "$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo '+dirty')"
put machine.load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
put machine.disk "$(df -T "$BUILD" | awk 'NR == 2 {print $2}')"
put cfg.mode "$([ "$quick" = 1 ] && echo quick || echo full)"
put cfg.D "$D"
put cfg.W "$W"
put cfg.C "$C"
put cfg.repeat "$REPEAT"
put cfg.store_n "$STORE_N"
put cfg.store_repeat "$STORE_REPEAT"
put cfg.small "$SMALL"
put cfg.big "$BIG"
put cfg.fsmall "$FSMALL"
put cfg.fbig "$FBIG"
put cfg.log_level "$LOG_LEVEL"
put cfg.per_customer "$PER_CUSTOMER"
put cfg.tools "wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}'), ghz $(ghz --version 2>&1 | head -1), $(go version | awk '{print $3}')"

# ---- 1. gateway overhead, 2. health peer, 4. memory (SQLite) -----------------

note "1: gateway overhead (SQLite store, $SMALL events seeded, c=$C, ${D}s per load)"
mkdir -p "$WORK/sqlite"
DB=$WORK/sqlite/events.db
seed_sqlite "$DB" "$SMALL"
# Planner statistics as a store the service has served for a while has them
# (its PRAGMA optimize): here list cost is the gateway's and the service's.
# Section 5 measures the store without them, as bulk-loaded or restored.
"$BIN/rawinsert" analyze "sqlite:$DB" >/dev/null
GET_IDS=$DB.ids
GET_DATA=$(jq -R -s -c 'split("\n") | map(select(length > 0)) | map({event_id: .})' "$GET_IDS")
start_service svc "sqlite:$DB"
SVC1=$SVC_PID
start_gateway
idle_mem svc "$SVC1"
idle_mem gw "$GW_PID"
put svc.workers_default "$(jq -r 'select(.msg == "serving") | .workers' "$WORK/svc.log" | head -1)"

# Each pair runs REPEAT times in A B B A ... order, so drift and order effects
# fall on both sides alike; the table reports the mean of the runs.
rest() { TRACK=("svc:$SVC1" "gw:$GW_PID"); wrk_load "rest_$1_r$2" "$1" "$3"; }
grpc() {
  TRACK=("svc:$SVC1")
  ghz_run "grpc_$1_r$2" "$SVC_ADDR" "events.customer.v1.CustomerEventService/$3" \
    "$CUSTOMER_PROTO" "$4" "$C" "-z ${D}s"
}
pair() { # OP REST_ARG RPC DATA
  local r
  for r in $(seq "$REPEAT"); do
    if ((r % 2)); then
      rest "$1" "$r" "$2"
      grpc "$1" "$r" "$3" "$4"
    else
      grpc "$1" "$r" "$3" "$4"
      rest "$1" "$r" "$2"
    fi
  done
}
pair create x CreateEvent "$CREATE_DATA"
pair get "$GET_IDS" GetEvent "$GET_DATA"
# The least the gateway's gRPC side can cost per REST get: a gRPC core client
# doing nothing else (bench/grpcload --get: C, one thread polling its queue).
TRACK=("svc:$SVC1")
c_load grpc_floor_get $((D * 4000)) grpcload "$SVC_ADDR" "$TOKEN" --concurrency "$C" --get "$GET_IDS"
pair list "$LIST_CUSTOMER" ListEvents "$LIST_DATA"

note "2: health Check, events-service vs grpc-go"
"$BIN/healthpeer" -addr 127.0.0.1:0 >"$WORK/healthpeer.addr" 2>"$WORK/healthpeer.log" &
PEER_PID=$!
PIDS+=("$PEER_PID")
for _ in $(seq 100); do [ -s "$WORK/healthpeer.addr" ] && break; sleep 0.05; done
PEER_ADDR=$(head -1 "$WORK/healthpeer.addr")
[ -n "$PEER_ADDR" ] || die "healthpeer did not start"
idle_mem peer "$PEER_PID"
health() { # WHO RUN
  if [ "$1" = svc ]; then
    TRACK=("svc:$SVC1")
    ghz_run "health_svc_r$2" "$SVC_ADDR" grpc.health.v1.Health/Check "$HEALTH_PROTO" '{}' "$C" "-z ${D}s"
  else
    TRACK=("peer:$PEER_PID")
    ghz_run "health_peer_r$2" "$PEER_ADDR" grpc.health.v1.Health/Check "$HEALTH_PROTO" '{}' "$C" \
      "-z ${D}s"
  fi
}
for r in $(seq "$REPEAT"); do
  if ((r % 2)); then health svc "$r"; health peer "$r"; else health peer "$r"; health svc "$r"; fi
done
stop "$PEER_PID"

note "3: store cost on SQLite ($STORE_REPEAT rounds of $STORE_N creates a side, c=$C)"
store_cost sqlite "sqlite:$DB" "svc:$SVC1" ""
put sqlite.stat1_rows "$("$BIN/rawinsert" stat "sqlite:$DB" | jq .stat1_rows)"
stop "$GW_PID"

note "7: bulk create on SQLite, batches of $BATCH_SIZE vs single creates, c=1"
TRACK=("svc:$SVC1")
batch_vs_single sqlite

note "6: connections held open (10,000 idle keep-alive, 2,000 slow), default and 8 KiB pools"
for kib in 64 8; do
  EVENTS_HTTP_CONN_MEMORY_KIB=$kib start_gateway
  timeout "$HARD" python3 bench/conns.py "${GW_URL##*:}" "$GW_PID" 10000 2000 |
    sed "s/^conns\./conns$kib./" >>"$RES" || note "connections load ($kib KiB) failed"
  stop "$GW_PID"
done
stop "$SVC1"

# Worker counts 1 2 4, then 4 2 1 on a second run (REPEAT=2), and so on.
WORKER_ORDER=()
for r in $(seq "$REPEAT"); do
  if ((r % 2)); then WORKER_ORDER+=("1:$r" "2:$r" "4:$r"); else WORKER_ORDER+=("4:$r" "2:$r" "1:$r"); fi
done

note "5: create scaling with worker threads (SQLite, c=$C)"
for wr in "${WORKER_ORDER[@]}"; do
  w=${wr%%:*}
  start_service "svc-w$w" "sqlite:$DB" "$w"
  TRACK=("svc:$SVC_PID")
  ghz_run "scale_sqlite_w${w}_r${wr#*:}" "$SVC_ADDR" \
    events.customer.v1.CustomerEventService/CreateEvent "$CUSTOMER_PROTO" "$CREATE_DATA" "$C" \
    "-z ${D}s"
  stop "$SVC_PID"
done
rm -f "$DB" "$DB-wal" "$DB-shm"

# ---- 3 and 5 on FerretDB -------------------------------------------------------

note "3/5: FerretDB (MongoDB wire protocol, SQLite handler)"
start_ferretdb "$WORK/ferretdb"
FDB1=$FDB_PID
idle_mem fdb "$FDB1"
start_service svc-mongo "$FDB_URL/bench"
SVCM=$SVC_PID
idle_mem svc_mongo "$SVCM"
store_cost mongo "$FDB_URL/bench" "svc:$SVCM fdb:$FDB1" "fdb:$FDB1"
note "7: bulk create on FerretDB, batches of $BATCH_SIZE vs single creates, c=1"
TRACK=("svc:$SVCM" "fdb:$FDB1")
batch_vs_single mongo
stop "$SVCM"
for wr in "${WORKER_ORDER[@]}"; do
  w=${wr%%:*}
  start_service "svc-mongo-w$w" "$FDB_URL/bench" "$w"
  TRACK=("svc:$SVC_PID" "fdb:$FDB1")
  ghz_run "scale_mongo_w${w}_r${wr#*:}" "$SVC_ADDR" \
    events.customer.v1.CustomerEventService/CreateEvent "$CUSTOMER_PROTO" "$CREATE_DATA" "$C" \
    "-z ${D}s"
  stop "$SVC_PID"
done

# ---- 5. list latency against the number of stored events -------------------------

list_size() { # LOAD STORE_URL
  start_service "svc-$1" "$2"
  TRACK=("svc:$SVC_PID")
  [ -n "${FDB_PID:-}" ] && [[ $2 == mongodb* ]] && TRACK+=("fdb:$FDB_PID")
  ghz_run "$1" "$SVC_ADDR" events.customer.v1.CustomerEventService/ListEvents \
    "$CUSTOMER_PROTO" "$LIST_DATA" 1 "-z ${D}s"
  stop "$SVC_PID"
}

for size in "$FSMALL" "$FBIG"; do
  note "5: list latency, FerretDB, $size events"
  start_service schema-mongo "$FDB_URL/size$size" # makes the indexes
  stop "$SVC_PID"
  seed_mongo "$FDB_URL/size$size" "$size"
  list_size "list_mongo_$size" "$FDB_URL/size$size"
done
stop "$FDB1"
rm -rf "$WORK/ferretdb"

for size in "$SMALL" "$BIG"; do
  note "5: list latency, SQLite, $size events (seeding)"
  f=$WORK/sqlite/size$size.db
  seed_sqlite "$f" "$size"
  list_size "list_sqlite_$size" "sqlite:$f"
  put "list_sqlite_$size.stat1_rows" "$("$BIN/rawinsert" stat "sqlite:$f" | jq .stat1_rows)"
  "$BIN/rawinsert" analyze "sqlite:$f" >/dev/null
  list_size "list_sqlite_an_$size" "sqlite:$f"
  rm -f "$f" "$f-wal" "$f-shm"
done

# ---- 7. change feed delivery latency ----------------------------------------------

note "8: Watch delivery latency, 1 and 100 watchers (SQLite)"
start_service svc-watch "sqlite:$WORK/sqlite/watch.db"
WATCH_N=$([ "$quick" = 1 ] && echo 100 || echo 400)
for w in 1 100; do
  timeout -k 5 300 "${BENCH_VENV:-$PWD/.venv}/bin/python" bench/watch.py "$SVC_ADDR" "$TOKEN" "$w" "$WATCH_N" "watch_$w" \
    >>"$RES" 2>>"$WORK/watch.log" || note "watch bench ($w watchers) failed: see $WORK/watch.log"
done
stop "$SVC_PID"

put cfg.hwm_reset "$HWM_RESET"
put machine.load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
note "done: table below (also in $WORK/table.md)"
python3 bench/report.py "$RES" | tee "$WORK/table.md"
