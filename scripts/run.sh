#!/usr/bin/env bash
# The run command: installs what is missing, builds, then starts
# events-service and events-gateway on the embedded SQLite store with a
# generated development credential and prints working example calls.
# Ctrl-C (or SIGTERM) stops both gracefully.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh
scripts/build.sh release >/dev/null
export PATH="$(go env GOPATH)/bin:$PATH"

mkdir -p var
creds=var/credentials
if [ ! -s "$creds" ]; then
  token="sk:dev-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  umask 077
  printf '# tenant scheme secret (development credential made by scripts/run.sh)\ndev bearer %s\n' \
    "$token" >"$creds"
fi
token=$(awk '$1 == "dev" && $2 == "bearer" {print $3; exit}' "$creds")

export EVENTS_CREDENTIALS=${EVENTS_CREDENTIALS:-$root/$creds}
export EVENTS_STORE=${EVENTS_STORE:-sqlite:var/events.db}
export EVENTS_GRPC_ADDR=${EVENTS_GRPC_ADDR:-127.0.0.1:50051}
export EVENTS_HTTP_ADDR=${EVENTS_HTTP_ADDR:-127.0.0.1:8080}
export EVENTS_GRPC_TARGET=${EVENTS_GRPC_TARGET:-$EVENTS_GRPC_ADDR}

build/bin/events-service &
svc=$!
build/bin/events-gateway &
gw=$!
trap 'kill -TERM $gw $svc 2>/dev/null; wait $gw $svc 2>/dev/null' INT TERM EXIT

http="http://$EVENTS_HTTP_ADDR"
for _ in $(seq 100); do
  curl -fs "$http/readyz" >/dev/null 2>&1 && break
  kill -0 $svc 2>/dev/null && kill -0 $gw 2>/dev/null || { echo "run: a process failed to start" >&2; exit 1; }
  sleep 0.1
done

cat <<MSG

events-service  gRPC  $EVENTS_GRPC_ADDR  (store: $EVENTS_STORE)
events-gateway  HTTP  $http
credential      tenant "dev": Authorization: Bearer $token   (file: $EVENTS_CREDENTIALS)

Try:
  curl -s -X POST $http/rest-api/enterprise-interface/v1.0/events -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' -d '{"event":{"event_type_id":"8bed991c68a470e7aaeffbf048","customer_id":"85bc5819e09dab95437552ce79","external_id":"run-'\$RANDOM'"},"property_records":[{"property_id":"has_purchase","property_value":"true"}]}'
  curl -s '$http/rest-api/enterprise-interface/v1.0/events?count=2' -H 'Authorization: Bearer $token'
  grpcurl -plaintext -H 'authorization: Bearer $token' -d '{"page_size":2}' $EVENTS_GRPC_ADDR events.customer.v1.CustomerEventService/ListEvents
  grpcurl -plaintext $EVENTS_GRPC_ADDR list

Ctrl-C stops both.
MSG
wait $svc $gw
