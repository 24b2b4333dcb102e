#!/usr/bin/env bash
# The unit under a real systemd: a throw-away container booted from this machine's own /usr.
#
#   tests/e2e/systemd_live_e2e.sh [--binary PATH] [--keep]
#
# systemd-nspawn --volatile=yes (root on a tmpfs, /usr from the host, read-only) with
# --private-network (nothing but loopback: a wrong address cannot leave it) boots systemd
# with the shipped unit (ExecStart pointed at the bound-in binary, WatchdogSec=4s in a
# drop-in so that pings are seen quickly) and a configuration whose one job SYN-scans
# 127.0.0.1:10110-10120 of the container, where the agent's own endpoint listens on 10117.
# Checks: Type=notify reaches active; the raw SYN job completes and finds 10117 open, with
# CAP_NET_RAW as the only capability, no new privileges, a seccomp filter and the unit's
# address families; the watchdog timestamp advances; DynamicUser owns the state directory
# and the database; `systemctl reload` reloads (same process, log line); `systemctl stop`
# ends it within TimeoutStopSec with status 0 after "stopping".
#
# Exit 0 pass, 1 fail, 77 skip: without root or systemd-nspawn, or when the kernel cannot
# boot the container (the reason is printed), unless PORTVIGIL_REQUIRE_SYSTEMD=1, which makes
# those failures. Once the container runs, every check is a failure, never a skip.

# shellcheck disable=SC2317
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
binary=${PORTVIGIL_BINARY:-$ROOT/build/agent/portvigil}
keep=0
while (($#)); do
  case $1 in
    --binary) binary=${2:?}; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "systemd_live_e2e: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
START=$SECONDS
log() { printf '[%3ds] %s\n' "$((SECONDS - START))" "$*"; }
skip() {
  if [[ ${PORTVIGIL_REQUIRE_SYSTEMD:-0} == 1 ]]; then
    echo "systemd_live_e2e: FAIL: $* (PORTVIGIL_REQUIRE_SYSTEMD=1)" >&2
    exit 1
  fi
  echo "systemd_live_e2e: SKIP: $*" >&2
  exit 77
}
fail() { log "FAIL: $*" >&2; exit 1; }

((EUID == 0)) || skip "needs root"
if ! command -v systemd-nspawn >/dev/null; then
  [[ ${PORTVIGIL_REQUIRE_TOOLS:-0} == 1 ]] && fail "systemd-nspawn not found (PORTVIGIL_REQUIRE_TOOLS=1)"
  skip "systemd-nspawn not found (apt-get install systemd-container)"
fi
[[ -x $binary ]] || fail "portvigil binary '$binary' not found (--binary)"

TMP=$(mktemp -d /tmp/portvigil-systemd.XXXXXX)
NSPAWN_PID="" INIT=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $NSPAWN_PID ]] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    kill -TERM "$NSPAWN_PID" 2>/dev/null # nspawn halts the container's systemd
    for _ in $(seq 50); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$NSPAWN_PID" 2>/dev/null
    [[ -n $INIT ]] && kill -KILL "$INIT" 2>/dev/null
  fi
  if ((rc != 0)); then
    echo "---- container console (last 20 lines) ----" >&2
    tail -n 20 "$TMP/console.log" >&2 2>/dev/null
    echo "---- journal of portvigil.service ----" >&2
    cat "$TMP/journal.txt" >&2 2>/dev/null
  fi
  if ((keep)); then echo "systemd_live_e2e: kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir -p "$TMP/opt" "$TMP/etc" "$TMP/unit/portvigil.service.d"
cp "$binary" "$TMP/opt/portvigil"
sed 's|^ExecStart=/usr/bin/portvigil |ExecStart=/opt/portvigil/portvigil |' \
  "$ROOT/systemd/portvigil.service" >"$TMP/unit/portvigil.service"
grep -q '^ExecStart=/opt/portvigil/portvigil agent' "$TMP/unit/portvigil.service" ||
  fail "the unit's ExecStart= is not /usr/bin/portvigil agent ..."
printf '[Service]\nWatchdogSec=4s\n' >"$TMP/unit/portvigil.service.d/watchdog.conf"
write_config() { # $1 = interval
  cat >"$TMP/etc/portvigil.toml" <<CONF
[agent]
web-listen-address = "127.0.0.1:10117"

[[authorization]]
networks = ["127.0.0.0/8"]
owner = "tests/e2e/systemd_live_e2e.sh"

[[job]]
name = "syn"
targets = ["127.0.0.1"]
ports = "10110-10120"
technique = "syn"
interval = "$1"
CONF
}
write_config 3s
"$binary" check-config "$TMP/etc/portvigil.toml" >/dev/null || fail "check-config rejects the test configuration"

# Services of the host that would start in the container and wait or fail there.
masks=()
for u in systemd-networkd-wait-online.service prometheus.service prometheus-alertmanager.service \
  prometheus-node-exporter.service; do
  masks+=("systemd.mask=$u")
done
systemd-nspawn --register=no --keep-unit -D / --volatile=yes --private-network \
  --uuid="$(cat /proc/sys/kernel/random/uuid)" \
  --bind-ro="$TMP/opt:/opt/portvigil" --bind-ro="$TMP/etc:/etc/portvigil" \
  --bind-ro="$TMP/unit/portvigil.service:/etc/systemd/system/portvigil.service" \
  --bind-ro="$TMP/unit/portvigil.service.d:/etc/systemd/system/portvigil.service.d" \
  --boot systemd.firstboot=off "${masks[@]}" systemd.wants=portvigil.service \
  </dev/null >"$TMP/console.log" 2>&1 &
NSPAWN_PID=$!

INIT=""
for _ in $(seq 100); do
  kill -0 "$NSPAWN_PID" 2>/dev/null || skip "systemd-nspawn exited at once: $(tail -n 3 "$TMP/console.log" | tr '\n' ' ')"
  INIT=$(pgrep -P "$NSPAWN_PID" | head -n 1)
  [[ -n $INIT && $(cat "/proc/$INIT/comm" 2>/dev/null) == systemd ]] && break
  INIT=""
  sleep 0.2
done
[[ -n $INIT ]] || skip "no systemd came up in the container within 20 s"
inside() { nsenter -t "$INIT" -m -u -i -n -p "$@"; }
show() { inside systemctl show portvigil -p "$1" --value 2>/dev/null; }
booted=0
for _ in $(seq 100); do
  inside systemctl is-system-running >/dev/null 2>&1
  state=$(inside systemctl is-system-running 2>/dev/null)
  [[ $state == running || $state == degraded || $state == starting ]] && { booted=1; break; }
  sleep 0.2
done
((booted)) || skip "the container's systemd does not answer ($(inside systemctl is-system-running 2>&1))"
log "container booted (init pid $INIT on the host)"

wait_for() { # DESCRIPTION COMMAND...: at most 60 s
  local what=$1 t0=$SECONDS
  shift
  until "$@"; do
    ((SECONDS - t0 < 60)) || fail "timed out waiting for: $what"
    sleep 0.5
  done
  log "ok: $what ($((SECONDS - t0))s)"
}
active() { [[ $(show ActiveState) == active && $(show SubState) == running ]]; }
wait_for "portvigil.service active (running)" active
inside journalctl -u portvigil --no-pager >"$TMP/journal.txt" 2>&1
[[ $(show Type) == notify ]] || fail "Type is $(show Type), not notify"
pid=$(show MainPID)
((pid > 0)) || fail "no MainPID"

# The SYN job under the sandbox: complete scans that find the agent's own listener.
# (Read into a variable first: grep -q closing a pipe early fails curl under pipefail.)
metrics() { inside curl -sf --max-time 2 http://127.0.0.1:10117/metrics 2>/dev/null; }
syn_found() {
  local m
  m=$(metrics)
  grep -q '^portvigil_port_open{scan_job="syn",host="127.0.0.1",proto="tcp",port="10117"} 1' <<<"$m"
}
wait_for "the SYN job finds 10117 open" syn_found
m=$(metrics)
grep -Eq '^portvigil_scans_total\{result="complete",scan_job="syn"\} [1-9]' <<<"$m" ||
  fail "no complete scan of the SYN job counted"
journal=$(inside journalctl -u portvigil --no-pager)
grep -q 'job syn: scan [0-9]* complete' <<<"$journal" ||
  fail "no complete scan in the journal"

# Capabilities, privileges and filters of the running process.
status=$(inside cat "/proc/$pid/status")
cap() { awk -v k="$1:" '$1 == k {print $2}' <<<"$status"; }
[[ $(cap CapEff) == 0000000000002000 ]] || fail "CapEff $(cap CapEff), want CAP_NET_RAW only (0x2000)"
[[ $(cap CapBnd) == 0000000000002000 ]] || fail "CapBnd $(cap CapBnd), want CAP_NET_RAW only"
[[ $(cap NoNewPrivs) == 1 ]] || fail "NoNewPrivs is not set"
[[ $(cap Seccomp) == 2 ]] || fail "no seccomp filter (Seccomp: $(cap Seccomp))"
families=$(show RestrictAddressFamilies)
[[ $families != "~"* ]] || fail "RestrictAddressFamilies is a deny list: $families"
for f in AF_UNIX AF_NETLINK AF_INET AF_INET6 AF_PACKET; do
  [[ $families == *"$f"* ]] || fail "RestrictAddressFamilies lacks $f: $families"
done
log "ok: CAP_NET_RAW only, NoNewPrivs, seccomp filter, address families $families"

# DynamicUser: a transient uid that owns the state directory and the database.
uid=$(cap Uid)
((uid >= 61184 && uid <= 65519)) || fail "uid $uid is not a dynamic user (61184-65519)"
owner=$(inside stat -c %u /var/lib/private/portvigil)
db_owner=$(inside stat -c %u /var/lib/private/portvigil/portvigil.db)
[[ $owner == "$uid" && $db_owner == "$uid" ]] ||
  fail "state directory owned by $owner, database by $db_owner; the agent runs as $uid"
log "ok: dynamic user $uid owns /var/lib/private/portvigil and the database"

# The watchdog: pings every WatchdogSec/2 = 2 s.
w1=$(show WatchdogTimestampMonotonic)
sleep 3
w2=$(show WatchdogTimestampMonotonic)
((w1 > 0 && w2 > w1)) || fail "the watchdog timestamp did not advance ($w1 -> $w2)"
log "ok: watchdog pinged ($w1 -> $w2)"

# Reload: same process, the new configuration.
write_config 4s
inside systemctl reload portvigil || fail "systemctl reload failed"
reloaded() {
  local j
  j=$(inside journalctl -u portvigil --no-pager 2>/dev/null)
  grep -q "SIGHUP: configuration reloaded" <<<"$j"
}
wait_for "systemctl reload: configuration reloaded" reloaded
[[ $(show MainPID) == "$pid" ]] || fail "reload replaced the process"
interval_4s() {
  local m
  m=$(metrics)
  grep -q '^portvigil_job_interval_seconds{scan_job="syn"} 4' <<<"$m"
}
wait_for "the reloaded interval (4 s) in the metrics" interval_4s
active || fail "not running after the reload"

# Stop: SIGTERM, STOPPING=1, exit 0 well inside TimeoutStopSec (30 s).
t0=$SECONDS
inside systemctl stop portvigil || fail "systemctl stop failed"
took=$((SECONDS - t0))
((took < 30)) || fail "stop took ${took}s (TimeoutStopSec=30s)"
[[ $(show Result) == success ]] || fail "Result=$(show Result) after stop"
[[ $(show ExecMainStatus) == 0 ]] || fail "exit status $(show ExecMainStatus) after stop"
# journald may write the last lines a moment after the unit is gone.
stop_logged() {
  inside journalctl -u portvigil --no-pager >"$TMP/journal.txt" 2>&1
  grep -q "received SIGTERM: stopping" "$TMP/journal.txt" && grep -q "portvigil.*: stopped" "$TMP/journal.txt"
}
wait_for "'received SIGTERM: stopping' and 'stopped' in the journal" stop_logged
log "ok: stopped in ${took}s, Result=success, exit 0"
log "PASS"
