#!/usr/bin/env bash
# bench/ab.sh - the service call path, before against after, in ONE run: two
# events-service binaries (A = new, B = base) serve copies of one seeded
# SQLite store side by side, and the same ghz loads alternate between them
# (A B, then B A, ...), so drift on a shared machine falls on both alike.
# Prints one markdown table: service CPU per call (µs) and calls/s for
# Health/Check, GetEvent and a filtered ListEvents page of 50, as A, B, A/B,
# with every run's figure in the notes. Numbers are reported, never asserted.
#
#   bench/ab.sh BASE_BIN_DIR [NEW_BIN_DIR]
#
# BASE_BIN_DIR holds the old commit's release build (for instance
#   git archive OLD | tar -x -C /tmp/base && cmake -S /tmp/base -B /tmp/base/b
#   -DCMAKE_BUILD_TYPE=Release -DEVENTS_TESTS=OFF -DEVENTS_SANITIZE=OFF && cmake --build ...),
# NEW_BIN_DIR defaults to build-bench/bin (bench/run.sh's build; run it or
# BENCH_SKIP_BUILD=1 bench/run.sh first). Knobs: BENCH_DURATION (s per load,
# 4), BENCH_WARMUP (s, 1), BENCH_CONCURRENCY (16), BENCH_AB_RUNS (runs per
# side and load, 3), BENCH_SMALL (seeded events, 10000), BENCH_AB_LOADS
# (subset of "check get list"), BENCH_LOG_LEVEL (info).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

BASE=$(cd "${1:?usage: bench/ab.sh BASE_BIN_DIR [NEW_BIN_DIR]}" && pwd)
NEW=$(cd "${2:-$root/build-bench/bin}" && pwd)
D=${BENCH_DURATION:-4} W=${BENCH_WARMUP:-1} C=${BENCH_CONCURRENCY:-16}
RUNS=${BENCH_AB_RUNS:-3} SMALL=${BENCH_SMALL:-10000} LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
LOADS=${BENCH_AB_LOADS:-check get list}
WORK=$root/build-bench/ab
HARD=$((D * 4 + 60))
TENANT=bench
TOKEN="sk:bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
LIST_CUSTOMER=c0000000000000000000000007

BENCH_NAME=ab
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
for b in "$BASE" "$NEW"; do [ -x "$b/events-service" ] || die "$b/events-service is missing"; done
export PATH="$(go env GOPATH)/bin:$PATH"
for t in ghz grpcurl jq python3 cc pkg-config; do command -v "$t" >/dev/null || die "$t is missing"; done

bench_workdir

note "seeding $SMALL events"
bench_seed "$NEW" "$WORK/seed.db" "$SMALL"
cp "$WORK/seed.db" "$WORK/a.db"
cp "$WORK/seed.db" "$WORK/b.db"
bench_service a "$NEW" "$WORK/a.db"
A_PID=$SVC_PID A_ADDR=$SVC_ADDR
bench_service b "$BASE" "$WORK/b.db"
B_PID=$SVC_PID B_ADDR=$SVC_ADDR

GOOGLEAPIS=$(sed -n 's/^GOOGLEAPIS_PROTO_DIR:PATH=//p' "$root/build-bench/CMakeCache.txt")
GHZ_PROTO=(--insecure -i "$root/proto,$GOOGLEAPIS,/usr/include")
CUSTOMER=$root/proto/events/customer/v1/customer.proto
HEALTH=$root/proto/grpc/health/v1/health.proto
GET_DATA=$(jq -R -s -c 'split("\n") | map(select(length > 0)) | map({event_id: .})' "$WORK/ids")
LIST_DATA="{\"page_size\":50,\"customer_id\":\"$LIST_CUSTOMER\"}"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

load() { # LOAD SIDE PID ADDR RUN: appends "LOAD SIDE RUN calls seconds ticks"
  local proto call data md=(-m "{\"authorization\":\"Bearer $TOKEN\"}")
  case $1 in
  check) proto=$HEALTH call=grpc.health.v1.Health/Check data='{}' md=() ;;
  get) proto=$CUSTOMER call=events.customer.v1.CustomerEventService/GetEvent data=$GET_DATA ;;
  list) proto=$CUSTOMER call=events.customer.v1.CustomerEventService/ListEvents data=$LIST_DATA ;;
  esac
  local -a g=(ghz "${GHZ_PROTO[@]}" --proto "$proto" --call "$call" "${md[@]}" -d "$data" -c "$C"
    --connections 1)
  timeout -k 5 "$HARD" "${g[@]}" -z "${W}s" "$4" >/dev/null 2>&1 || true
  local t0 t1 out=$WORK/$1-$2-$5.json
  t0=$(ticks "$3")
  timeout -k 5 "$HARD" "${g[@]}" -z "${D}s" --duration-stop=wait -O json -o "$out" "$4" \
    2>"$WORK/$1-$2-$5.err" || true
  t1=$(ticks "$3")
  [ -s "$out" ] || die "ghz gave nothing for $1 on $2: $(head -c 300 "$WORK/$1-$2-$5.err")"
  printf '%s %s %s %s %s %s\n' "$1" "$2" "$5" "$(jq '.statusCodeDistribution.OK // 0' "$out")" \
    "$(jq '.total / 1e9' "$out")" "$((t1 - t0))" >>"$WORK/runs.txt"
}

: >"$WORK/runs.txt"
for r in $(seq "$RUNS"); do
  for l in $LOADS; do
    note "run $r: $l"
    if ((r % 2)); then
      load "$l" A "$A_PID" "$A_ADDR" "$r"
      load "$l" B "$B_PID" "$B_ADDR" "$r"
    else
      load "$l" B "$B_PID" "$B_ADDR" "$r"
      load "$l" A "$A_PID" "$A_ADDR" "$r"
    fi
  done
done

python3 - "$WORK/runs.txt" "$HZ" "$BASE" "$NEW" "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF' | tee "$WORK/table.md"
import sys, collections
path, hz, base, new, date, nproc, load = sys.argv[1:]
hz = float(hz)
runs = collections.defaultdict(list)
for line in open(path):
    l, side, r, ok, secs, ticks = line.split()
    runs[(l, side)].append((int(ok), float(secs), int(ticks)))
names = {"check": "Health/Check", "get": "GetEvent", "list": "ListEvents, customer filter, page of 50"}
print(f"A/B of the service call path, {date}, {nproc} CPUs, load average at the end {load}")
print(f"A = {new}, B = {base}\n")
print("| measurement | A | B | A/B | runs (A; B) |")
print("|---|---:|---:|---:|---|")
def us(t): return [x[2] / hz * 1e6 / max(x[0], 1) for x in t]
def rps(t): return [x[0] / x[1] for x in t]
for l in ["check", "get", "list"]:
    a, b = runs.get((l, "A")), runs.get((l, "B"))
    if not a or not b: continue
    for what, f, unit in (("service CPU per call", us, "µs"), ("calls/s", rps, "")):
        va, vb = f(a), f(b)
        # Pooled: total CPU over total calls (each run weighs by its calls).
        if f is us:
            ma = sum(x[2] for x in a) / hz * 1e6 / sum(x[0] for x in a)
            mb = sum(x[2] for x in b) / hz * 1e6 / sum(x[0] for x in b)
        else:
            ma, mb = sum(va) / len(va), sum(vb) / len(vb)
        fmt = lambda v: " / ".join(f"{x:,.0f}" for x in v)
        print(f"| {names[l]}: {what} {unit} | {ma:,.0f} | {mb:,.0f} | {ma / mb:.2f} | {fmt(va)}; {fmt(vb)} |")
EOF
