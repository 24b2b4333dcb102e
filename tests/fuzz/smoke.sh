#!/bin/sh
# Builds the libFuzzer targets with clang in their own build directory and runs each one for
# FUZZ_SECONDS (default 30). Exits non-zero when a build fails or a fuzzer finds a crash,
# leak, timeout or sanitizer report; the input that triggered it is kept in the build
# directory (fuzz-artifacts/). The seed corpus in the repository is read, never written.
#
# Environment:
#   FUZZ_SECONDS     seconds per fuzzer (default 30)
#   FUZZ_BUILD_DIR   build directory (default <repo>/build-fuzz)
#   FUZZ_SOURCE_DIR  source tree to configure (default: this checkout)
#   FUZZ_JOBS        parallel build jobs (default 1)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
seconds=${FUZZ_SECONDS:-30}
build=${FUZZ_BUILD_DIR:-$repo/build-fuzz}
source=${FUZZ_SOURCE_DIR:-$repo}
jobs=${FUZZ_JOBS:-1}

command -v clang++ >/dev/null || { echo "smoke.sh: clang++ not found" >&2; exit 2; }

CC=clang CXX=clang++ cmake -S "$source" -B "$build" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPORTVIGIL_FUZZ=ON -DPORTVIGIL_BUILD_TESTS=ON >/dev/null
if ! grep -q "/fuzz_reply.dir" "$build/CMakeFiles/TargetDirectories.txt" 2>/dev/null; then
  echo "smoke.sh: no fuzz targets in $build: is tests/fuzz added by tests/CMakeLists.txt?" >&2
  exit 2
fi
cmake --build "$build" -j "$jobs" --target fuzz_reply fuzz_specs fuzz_event_log fuzz_config fuzz_pcap fuzz_web fuzz_service

artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
status=0
for name in reply specs event_log config pcap web service; do
  bin=$(find "$build" -type f -name "fuzz_$name" -perm -u+x | head -n 1)
  if [ -z "$bin" ]; then
    echo "smoke.sh: fuzz_$name was not built" >&2
    exit 2
  fi
  # New inputs go to a scratch directory (the first corpus directory); the seeds are read only.
  scratch="$build/fuzz-corpus/$name"
  mkdir -p "$scratch"
  dict=""
  [ -f "$here/$name.dict" ] && dict="-dict=$here/$name.dict"
  echo "== fuzz_$name: $seconds s"
  # shellcheck disable=SC2086
  if ! "$bin" -max_total_time="$seconds" -max_len=2048 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts/$name-" $dict \
      "$scratch" "$here/corpus/$name" 2>"$build/fuzz_$name.log"; then
    echo "smoke.sh: fuzz_$name FAILED; log: $build/fuzz_$name.log" >&2
    grep -E "ERROR|SUMMARY|Test unit written" "$build/fuzz_$name.log" >&2 || true
    status=1
  else
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^Done" \
      "$build/fuzz_$name.log" || true
  fi
done
exit $status
