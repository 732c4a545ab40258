#!/usr/bin/env bash
# Builds the FerretDB-based MongoDB-wire test server to OUT (default
# build/bin/events-ferretdb). Go's build cache makes a rebuild of an unchanged
# tree take about a second; the binary is only replaced when it changed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-build/bin/events-ferretdb}
case $out in /*) ;; *) out=$PWD/$out ;; esac

if ! command -v go >/dev/null 2>&1; then
  for d in /usr/local/go/bin /usr/lib/go/bin "$HOME/go/bin"; do
    if [ -x "$d/go" ]; then PATH=$d:$PATH; break; fi
  done
fi
command -v go >/dev/null 2>&1 || { echo "build.sh: go not found" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
cd "$here"
# go.sum is committed: -mod=mod lets go fill in anything missing without
# vendoring, and -trimpath keeps the binary independent of the checkout path.
export GOFLAGS="-mod=mod -buildvcs=false ${GOFLAGS:-}"
export CGO_ENABLED=0
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
go build -trimpath -o "$tmp" .
if [ -x "$out" ] && cmp -s "$tmp" "$out"; then
  exit 0
fi
mv -f "$tmp" "$out"
