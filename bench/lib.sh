# bench/lib.sh - what the bench scripts share (sourced, not run): messages,
# the processes they start and stop on exit, free ports, and a seeded SQLite
# store. A script sets BENCH_NAME (its message prefix) before sourcing, and
# WORK, TENANT and TOKEN before it calls bench_workdir.

note() { printf '[%s %s] %s\n' "${BENCH_NAME:-bench}" "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  note "error: $*"
  exit 1
}

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A fresh WORK with the raw-insert tool ($RAW) and a credentials file for TOKEN.
bench_workdir() {
  rm -rf "$WORK"
  mkdir -p "$WORK"
  RAW=$WORK/rawinsert
  # shellcheck disable=SC2046
  cc -O2 -o "$RAW" bench/rawinsert.c $(pkg-config --cflags --libs libmongoc-1.0 sqlite3) -lpthread
  printf 'bench bearer %s\n' "$TOKEN" >"$WORK/credentials"
  chmod 600 "$WORK/credentials"
}

# NAME BIN_DIR DB: starts events-service on the SQLite file DB, logging to
# WORK/NAME.log at LOG_LEVEL (info); sets SVC_PID and SVC_ADDR once it answers.
bench_service() {
  local port
  port=$(free_port)
  EVENTS_CREDENTIALS="$WORK/credentials" EVENTS_STORE="sqlite:$3" \
    EVENTS_GRPC_ADDR="127.0.0.1:$port" EVENTS_LOG_LEVEL="${LOG_LEVEL:-info}" \
    "$2/events-service" 2>>"$WORK/$1.log" >/dev/null &
  SVC_PID=$!
  PIDS+=("$SVC_PID")
  for _ in $(seq 200); do
    grpcurl -plaintext -max-time 1 "127.0.0.1:$port" grpc.health.v1.Health/Check >/dev/null 2>&1 &&
      break
    sleep 0.05
  done
  kill -0 "$SVC_PID" || die "$1 did not start: see $WORK/$1.log"
  SVC_ADDR=127.0.0.1:$port
}

# BIN_DIR DB COUNT: a store of COUNT events of TENANT (the service makes the
# schema, rawinsert fills it and writes the planner statistics, as section 1
# of run.sh has them); 100 of their ids in WORK/ids.
bench_seed() {
  bench_service schema "$1" "$2"
  kill -TERM "$SVC_PID"
  wait "$SVC_PID" || true
  PIDS=()
  "$RAW" seed "sqlite:$2" --tenant "$TENANT" --count "$3" \
    --customers $(($3 / 200)) --prefix seed --ids-out "$WORK/ids" --ids 100 >/dev/null
  "$RAW" analyze "sqlite:$2" >/dev/null
}
