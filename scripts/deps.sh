#!/usr/bin/env bash
# Installs what building and testing need, idempotently and quickly when it
# is all there: Debian packages, Go tools (grpcurl, ghz) and the pinned
# Python venv (.venv) of the test tools.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

pkgs=(build-essential cmake pkg-config libgrpc-dev protobuf-compiler protobuf-c-compiler
  libprotobuf-c-dev libmicrohttpd-dev libjansson-dev libmongoc-dev libbson-dev libsqlite3-dev
  libcmocka-dev libprotobuf-dev libssl-dev libgnutls28-dev libcurl4-openssl-dev openssl clang-format ninja-build curl
  ca-certificates wrk clang libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The OpenAPI linters (tests/openapi: Redocly CLI, Spectral) run on Node.
if ! command -v npm >/dev/null; then
  echo "deps: installing nodejs npm" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
npm_dir="$root/tests/openapi"
npm_stamp="$npm_dir/node_modules/.lock.sha256"
npm_want=$(sha256sum "$npm_dir/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_want" ]; then
  echo "deps: installing the OpenAPI linters (npm ci)" >&2
  (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$npm_want" >"$npm_stamp"
fi

command -v go >/dev/null || { echo "deps: Go >= 1.24 is required (FerretDB, grpcurl, ghz)" >&2; exit 1; }
gobin=$(go env GOPATH)/bin
export PATH="$gobin:$PATH"
[ -x "$gobin/grpcurl" ] || go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.1
[ -x "$gobin/ghz" ] || go install github.com/bojand/ghz/cmd/ghz@v0.120.0
[ -x "$gobin/kustomize" ] || go install sigs.k8s.io/kustomize/kustomize/v5@v5.4.3
[ -x "$gobin/grpc-health-probe" ] || go install github.com/grpc-ecosystem/grpc-health-probe@v0.4.35
[ -x "$gobin/promtool" ] || go install github.com/prometheus/prometheus/cmd/promtool@v0.316.0
# The protos' contract with other toolchains (tests/e2e/test_protos.py).
[ -x "$gobin/buf" ] || go install github.com/bufbuild/buf/cmd/buf@v1.47.2
[ -x "$gobin/protoc-gen-go" ] || go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.34.2

venv="$root/.venv"
req="$root/tests/requirements.txt"
stamp="$venv/.requirements.sha256"
want=$(cat "$req" "$root/proto/requirements.txt" | sha256sum | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "deps: preparing the Python venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
fi
