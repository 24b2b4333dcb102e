#!/usr/bin/env bash
# Configures and builds portvigil into build/ (or $PORTVIGIL_BUILD_DIR). Extra arguments go
# to the CMake configure step; $PORTVIGIL_BUILD_TARGET limits the build to one target.
# Development builds treat warnings as errors (PORTVIGIL_WERROR=0 turns that off); a plain
# `cmake` configure, as packagers run it, does not.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${PORTVIGIL_BUILD_DIR:-build}
werror=ON
[[ ${PORTVIGIL_WERROR:-1} == 0 ]] && werror=OFF
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="${PORTVIGIL_BUILD_TYPE:-RelWithDebInfo}" \
  -DPORTVIGIL_WERROR="$werror" "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)" ${PORTVIGIL_BUILD_TARGET:+--target "$PORTVIGIL_BUILD_TARGET"}
