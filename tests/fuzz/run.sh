#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, -DEVENTS_FUZZ=ON) in a
# build directory of their own and runs each for a bounded time, starting
# from its seed and regression corpus tests/fuzz/corpus/<target>/ (never
# written to: new inputs go to the build directory).
#
#   tests/fuzz/run.sh [seconds per target, default 25] [target ...]
#
# EVENTS_FUZZ_BUILD picks the build directory (default build-fuzz/). A crash
# stops with the reproducer's path; replay one with
#   build-fuzz/bin/<target> <file>
# and, once fixed, keep it as a regression input in the target's corpus.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-25}
shift || true
build=${EVENTS_FUZZ_BUILD:-$root/build-fuzz}
all=(fuzz_pbjson fuzz_creds fuzz_http fuzz_query_activity fuzz_query_customer fuzz_query_catalog
  fuzz_query_object fuzz_rpc)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")

command -v clang >/dev/null || { echo "fuzz: clang is required (scripts/deps.sh installs it)" >&2; exit 1; }
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DEVENTS_FUZZ=ON \
    -DEVENTS_SANITIZE=OFF >/dev/null
fi
cmake --build "$build" --target fuzz -j"$(nproc)" >"$build/fuzz-build.log" 2>&1 ||
  { tail -50 "$build/fuzz-build.log" >&2; echo "fuzz: build failed" >&2; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
  corpus="$root/tests/fuzz/corpus/$t"
  work="$build/fuzz-work/$t"
  artifacts="$build/fuzz-artifacts"
  mkdir -p "$work" "$artifacts" "$corpus"
  dict=()
  case "$t" in
    fuzz_query_*) [ -f "$root/tests/fuzz/query.dict" ] && dict=(-dict="$root/tests/fuzz/query.dict") ;;
    *) [ -f "$root/tests/fuzz/$t.dict" ] && dict=(-dict="$root/tests/fuzz/$t.dict") ;;
  esac
  # gRPC requests may be deep: the 5,000-level regression input is ~30 KB
  max_len=8192
  [ "$t" = fuzz_rpc ] && max_len=65536
  log="$build/fuzz-$t.log"
  echo "fuzz: $t for ${secs}s (corpus $(ls "$corpus" | wc -l) files)"
  if "$build/bin/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
      -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "${dict[@]}" "$work" "$corpus" \
      >"$log" 2>&1; then
    grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::new_units_added)' "$log" |
      sed "s/^/fuzz: $t: /" || true
  else
    status=1
    tail -60 "$log" >&2
    echo "fuzz: $t FAILED; reproducer: $(ls -t "$artifacts"/"$t"-* 2>/dev/null | head -1)" >&2
  fi
done
if ((status == 0)); then echo "fuzz: ${#targets[@]} passed, 0 failed"; fi
exit $status
