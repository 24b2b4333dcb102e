#!/usr/bin/env bash
# Configures and builds portvigil into build/ (or $PORTVIGIL_BUILD_DIR). Extra arguments go
# to the CMake configure step; $PORTVIGIL_BUILD_TARGET limits the build to one target.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${PORTVIGIL_BUILD_DIR:-build}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="${PORTVIGIL_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)" ${PORTVIGIL_BUILD_TARGET:+--target "$PORTVIGIL_BUILD_TARGET"}
