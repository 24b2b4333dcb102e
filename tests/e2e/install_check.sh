#!/usr/bin/env bash
# Installs a build tree into a temporary prefix and checks what lands where.
#
#   tests/e2e/install_check.sh BUILD_DIR
#
# Expects cmake/PortvigilInstall.cmake to be included by the top-level CMakeLists.txt (exit 77,
# skipped, when the build tree has no install rules at all). Checks the file list, that the
# installed binary runs, and that the installed unit's ExecStart= names
# <configured prefix>/bin/portvigil.
set -uo pipefail

build=${1:?usage: install_check.sh BUILD_DIR}
[[ -f "$build/cmake_install.cmake" ]] || { echo "install_check: $build is not a build tree" >&2; exit 1; }
if ! grep -rqs 'portvigil.rules.yml' "$build/cmake_install.cmake"; then
  echo "install_check: SKIP: no install rules (include(cmake/PortvigilInstall.cmake) missing?)" >&2
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/root" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; echo "install_check: FAIL: cmake --install" >&2; exit 1; }

failures=0
want=(
  bin/portvigil
  lib/systemd/system/portvigil.service
  share/doc/portvigil/portvigil.example.toml
  share/doc/portvigil/operations.md
  share/doc/portvigil/config.md
  share/portvigil/monitoring/alerts/portvigil.rules.yml
  share/portvigil/monitoring/alerts/portvigil.fleet.rules.yml
  share/portvigil/monitoring/dashboards/portvigil.json
  share/portvigil/monitoring/prometheus.example.yml
  share/portvigil/monitoring/alertmanager.example.yml
  share/man/man8/portvigil.8
  share/man/man5/portvigil.toml.5
  share/bash-completion/completions/portvigil
)
for f in "${want[@]}"; do
  if [[ -f "$tmp/root/$f" ]]; then
    echo "  ok $f"
  else
    echo "install_check: FAIL: $f not installed" >&2
    failures=$((failures + 1))
  fi
done
"$tmp/root/bin/portvigil" --version >/dev/null 2>&1 || "$tmp/root/bin/portvigil" --help >/dev/null 2>&1 ||
  { echo "install_check: FAIL: the installed binary does not run" >&2; failures=$((failures + 1)); }

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
exec_line=$(grep '^ExecStart=' "$tmp/root/lib/systemd/system/portvigil.service" 2>/dev/null)
case "$exec_line" in
  "ExecStart=$prefix/bin/portvigil agent --config /etc/portvigil/portvigil.toml") echo "  ok $exec_line" ;;
  *)
    echo "install_check: FAIL: unit has '$exec_line', want ExecStart=$prefix/bin/portvigil agent ..." >&2
    failures=$((failures + 1))
    ;;
esac
if ((failures)); then exit 1; fi
echo "install_check: all checks passed"
