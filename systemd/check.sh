#!/usr/bin/env bash
# Static checks of systemd/portvigil.service; exits non-zero on any failure.
#
#   systemd/check.sh [--binary PATH] [--max-exposure 2.0]
#
#   1. the directives the agent depends on are present (Type=notify, NotifyAccess=main,
#      WatchdogSec=, the CAP_NET_RAW grant, the address families, StateDirectory=, ...)
#   2. systemd-analyze verify: the unit parses and its commands exist. The unit runs
#      /usr/bin/portvigil, which a build machine does not have: verify runs on a copy of the
#      unit in a temporary directory whose ExecStart= points at --binary PATH (the built
#      binary; $PORTVIGIL_BINARY also works) or, without one, at a stub executable, since
#      verify checks the unit, not the program. (`--root=` would need a whole systemd tree
#      with sysinit.target and /bin/kill in it.) With /usr/bin/portvigil installed, the
#      unmodified unit is verified as well.
#   3. systemd-analyze security --offline=yes: the "Overall exposure level" must be at most
#      --max-exposure (default 2.0).
#
# Needs systemd-analyze (Debian package "systemd"). Without it: exit 77 (skipped), or a
# failure with PORTVIGIL_REQUIRE_TOOLS=1.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE UNIT="$HERE/portvigil.service"
binary=${PORTVIGIL_BINARY:-}
max_exposure=2.0
while (($#)); do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --max-exposure) max_exposure=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "systemd/check.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

if ! command -v systemd-analyze >/dev/null; then
  echo "systemd/check.sh: systemd-analyze not found (apt-get install systemd)" >&2
  [[ ${PORTVIGIL_REQUIRE_TOOLS:-0} == 1 ]] && exit 1
  exit 77
fi

failures=0
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  failures=$((failures + 1))
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== required directives"
required=(
  "Type=notify"
  "NotifyAccess=main"
  "ExecStart=/usr/bin/portvigil agent --config /etc/portvigil/portvigil.toml"
  "ExecReload=/bin/kill -HUP \$MAINPID"
  "Restart=on-failure"
  "DynamicUser=yes"
  "StateDirectory=portvigil"
  "ConfigurationDirectory=portvigil"
  "AmbientCapabilities=CAP_NET_RAW"
  "CapabilityBoundingSet=CAP_NET_RAW"
  "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6 AF_PACKET"
  "SystemCallFilter=@system-service"
  "SystemCallArchitectures=native"
)
for line in "${required[@]}"; do
  grep -qxF -- "$line" "$UNIT" || fail "portvigil.service lacks the line '$line'"
done
grep -qE '^WatchdogSec=[1-9]' "$UNIT" || fail "portvigil.service has no WatchdogSec="
# A unit that isolates the network would make the scanner useless.
grep -qE '^PrivateNetwork=(yes|true|1|on)' "$UNIT" && fail "PrivateNetwork= must stay off"
grep -qE '^PrivateUsers=(yes|true|1|on)' "$UNIT" &&
  fail "PrivateUsers= must stay off (CAP_NET_RAW would not apply to the host's network)"
((failures)) || echo "  ${#required[@]} directives present"

echo "== systemd-analyze verify"
if [[ -n "$binary" ]]; then
  [[ -x "$binary" ]] || fail "--binary '$binary' is not executable"
  exe=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
else
  exe="$tmp/portvigil-stub"
  printf '#!/bin/sh\nexit 0\n' >"$exe"
  chmod +x "$exe"
  echo "  (no --binary: ExecStart= points at a stub)"
fi
sed "s#^ExecStart=/usr/bin/portvigil #ExecStart=$exe #" "$UNIT" >"$tmp/portvigil.service"
grep -q "^ExecStart=$exe " "$tmp/portvigil.service" || fail "could not rewrite ExecStart="
out=$(systemd-analyze verify --man=no "$tmp/portvigil.service" 2>&1)
rc=$?
[[ -n "$out" ]] && printf '%s\n' "$out"
if ((rc != 0)) || [[ -n "$out" ]]; then
  fail "systemd-analyze verify (exit $rc) is not clean"
else
  echo "  clean (ExecStart=$exe)"
fi
if [[ -x /usr/bin/portvigil ]]; then
  out=$(systemd-analyze verify --man=no "$UNIT" 2>&1)
  rc=$?
  if ((rc != 0)) || [[ -n "$out" ]]; then
    printf '%s\n' "$out"
    fail "systemd-analyze verify of the unmodified unit (exit $rc)"
  else
    echo "  clean (unmodified unit, /usr/bin/portvigil installed)"
  fi
fi

echo "== systemd-analyze security --offline=yes"
report=$(systemd-analyze security --offline=yes --no-pager "$tmp/portvigil.service" 2>&1)
rc=$?
printf '%s\n' "$report" | grep -E '^✗|Overall exposure' || true
level=$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p')
if [[ -z "$level" ]]; then
  printf '%s\n' "$report"
  fail "no 'Overall exposure level' line (systemd-analyze exit $rc)"
elif awk -v l="$level" -v m="$max_exposure" 'BEGIN { exit !(l + 0 <= m + 0) }'; then
  echo "  exposure $level <= $max_exposure"
else
  fail "exposure level $level is above $max_exposure"
fi

if ((failures)); then
  echo "systemd/check.sh: $failures check(s) failed" >&2
  exit 1
fi
echo "systemd/check.sh: all checks passed"
