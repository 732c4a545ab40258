#!/usr/bin/env bash
# Configures and builds into build/ (bin/events-service, bin/events-gateway,
# bin/events-ferretdb). Usage: scripts/build.sh [debug|release|sanitize]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-release}
case "$mode" in
  sanitize) args=(-DCMAKE_BUILD_TYPE=Debug -DEVENTS_SANITIZE=ON) ;;
  debug) args=(-DCMAKE_BUILD_TYPE=Debug -DEVENTS_SANITIZE=OFF) ;;
  release) args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DEVENTS_SANITIZE=OFF) ;;
  *) echo "usage: $0 [debug|release|sanitize]" >&2; exit 2 ;;
esac
gen=(); [ -f "$root/build/CMakeCache.txt" ] || gen=(-G Ninja)
cmake -S "$root" -B "$root/build" "${gen[@]}" -DEVENTS_WERROR=ON "${args[@]}" >/dev/null
cmake --build "$root/build" -j"$(nproc)"
"$root/tests/ferretdb/build.sh" "$root/build/bin/events-ferretdb"
