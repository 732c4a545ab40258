#!/usr/bin/env bash
# The runtime image without a container engine: builds a Debian bookworm
# root file system with mmdebstrap, runs the Dockerfile's runtime-stage RUN in
# it (the same apt-get install and user creation), copies in the binaries as
# the build stage makes them (RelWithDebInfo, no sanitizers, stripped), then
# starts events-service (the ENTRYPOINT) and events-gateway in it the way the
# pods do: read-only root, the image's numeric USER, tmpfs /tmp, the
# credentials file bind-mounted at /etc/events/credentials; and performs the
# probes (gRPC health, /healthz, /readyz) and scrapes /metrics.
#
# Manual check (root, network to the Debian mirror, about a minute):
#   bash tests/k8s/image_rootfs_smoke.sh [BIN_DIR]   # default: build a fresh copy
# Needs: mmdebstrap, unshare (util-linux), grpcurl, curl.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/events-rootfs.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  rm -rf "$work"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "run as root (chroot, mounts)" >&2; exit 2; }
command -v mmdebstrap >/dev/null || { echo "apt-get install mmdebstrap" >&2; exit 2; }
export PATH="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin:$PATH"

# The Dockerfile's runtime stage: its RUN and USER.
mapfile -t stage < <("$root/.venv/bin/python" - "$root" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1] + "/tests/k8s")
from test_manifests import parse_dockerfile
final = parse_dockerfile(sys.argv[1] + "/Dockerfile")[-1]
assert final["from"] == "debian:bookworm-slim", final["from"]
print(" && ".join(r for i, r in final["steps"] if i == "RUN"))
print([r for i, r in final["steps"] if i == "USER"][-1])
EOF
)
run_line=${stage[0]}
user=${stage[1]}

bin=${1:-}
if [ -z "$bin" ]; then
  echo "rootfs-smoke: building the binaries as the image's build stage does" >&2
  cmake -S "$root" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEVENTS_WERROR=ON \
    -DEVENTS_TESTS=OFF -DEVENTS_SANITIZE=OFF >/dev/null
  cmake --build "$work/build" >/dev/null
  bin="$work/build/bin"
fi

rootfs="$work/rootfs"
echo "rootfs-smoke: mmdebstrap bookworm (minbase, like debian:bookworm-slim)" >&2
mmdebstrap --quiet --variant=minbase bookworm "$rootfs" >/dev/null
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
echo "rootfs-smoke: RUN $run_line" >&2
chroot "$rootfs" sh -ec "$run_line" >/dev/null
install -m 0755 "$bin/events-service" "$bin/events-gateway" "$rootfs/usr/local/bin/"
strip --strip-debug "$rootfs/usr/local/bin/events-service" "$rootfs/usr/local/bin/events-gateway"
mkdir -p "$rootfs/etc/events"
touch "$rootfs/etc/events/credentials"
printf 'smoke bearer sk:rootfs-smoke\n' >"$work/credentials"
echo "rootfs-smoke: image size (uncompressed) $(du -sh "$rootfs" | cut -f1)" >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
grpc=$(free_port); metrics=$(free_port); http=$(free_port)

# run BINARY VAR=VALUE...: read-only root, tmpfs /tmp, credentials mounted, as USER.
run() {
  local b=$1; shift
  unshare --mount --propagation private sh -ec "
    mount --bind '$rootfs' '$rootfs'; mount -o remount,bind,ro '$rootfs'
    mount -t tmpfs -o size=64m tmpfs '$rootfs/tmp'
    mount -t tmpfs -o size=64m tmpfs '$rootfs/dev/shm' 2>/dev/null || true
    mount --bind -o ro '$work/credentials' '$rootfs/etc/events/credentials'
    exec chroot --userspec='$user' '$rootfs' /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin $* $b" &
  pids+=($!)
}
run /usr/local/bin/events-service EVENTS_GRPC_ADDR=0.0.0.0:$grpc EVENTS_METRICS_ADDR=0.0.0.0:$metrics \
  EVENTS_CREDENTIALS=/etc/events/credentials EVENTS_STORE=sqlite:/tmp/events.db >"$work/service.log" 2>&1
run /usr/local/bin/events-gateway EVENTS_HTTP_ADDR=0.0.0.0:$http EVENTS_GRPC_TARGET=127.0.0.1:$grpc \
  >"$work/gateway.log" 2>&1

ok=1
for i in $(seq 50); do curl -sf "127.0.0.1:$http/readyz" >/dev/null && break; sleep 0.2; done
check() { if "$@" >/dev/null 2>&1; then echo "ok   $*"; else echo "FAIL $*"; ok=0; fi; }
check grpcurl -plaintext -d '{}' "127.0.0.1:$grpc" grpc.health.v1.Health/Check
check sh -c "grpcurl -plaintext 127.0.0.1:$grpc grpc.health.v1.Health/Check | grep -q '\"SERVING\"'"
check curl -sf "127.0.0.1:$http/healthz"
check curl -sf "127.0.0.1:$http/readyz"
check sh -c "curl -sf 127.0.0.1:$metrics/metrics | grep -q '^# TYPE events_'"
check sh -c "curl -sf 127.0.0.1:$http/metrics | grep -q '^# TYPE events_'"
check chroot "$rootfs" /bin/sleep 0
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" || { echo "FAIL exit status of pid $p: $?"; ok=0; }; done
pids=()
grep -q '"msg":"stopped"' "$work/service.log" && grep -q '"msg":"stopped"' "$work/gateway.log" ||
  { ok=0; echo "FAIL no clean stop"; }
if [ $ok = 1 ]; then echo "rootfs-smoke: passed"; else
  cat "$work/service.log" "$work/gateway.log"; echo "rootfs-smoke: FAILED"; exit 1; fi
