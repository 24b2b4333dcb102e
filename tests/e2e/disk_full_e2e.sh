#!/usr/bin/env bash
# A full disk under the state directory: the agent keeps running and says so
# (portvigil_database_writable 0), a restarted agent starts instead of refusing, `status`
# and `changes` still read the database, and once space is back the agent resumes and the
# port that opened meanwhile becomes exactly one event.
#
# Runs in its own mount and network namespaces (unshare -m -n): the state directory is a
# 2 MiB tmpfs that only this test sees, and the agent scans 127.0.0.1 of an empty network
# namespace, so nothing leaves the machine. Needs root; skips (77) without it, fails under
# PORTVIGIL_REQUIRE_LAB=1.
#
#   disk_full_e2e.sh --binary build/agent/portvigil
set -euo pipefail
E2E=disk_full_e2e
START=$SECONDS
WAIT=60
BUDGET=240
# shellcheck source=tests/e2e/e2e_lib.sh
source "$(dirname "$0")/e2e_lib.sh"

BIN=
while (($#)); do
  case $1 in
    --binary) BIN=$2; shift 2 ;;
    --inner) INNER=1; shift ;;
    *) echo "$E2E: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -x $BIN ]] || { echo "$E2E: --binary PATH is required" >&2; exit 2; }
BIN=$(readlink -f "$BIN")

if [[ -z ${INNER:-} ]]; then
  [[ $(id -u) == 0 ]] || skip_or_fail "needs root (mount and network namespaces)"
  command -v unshare >/dev/null || skip_or_fail "unshare (util-linux) is missing"
  command -v curl >/dev/null || skip_or_fail "curl is missing"
  unshare -m -n true 2>/dev/null || skip_or_fail "cannot create mount/network namespaces"
  exec unshare -m -n --propagation private "$0" --binary "$BIN" --inner
fi

# ---- inside the namespaces -----------------------------------------------------------------
ip link set lo up
DIR=$(mktemp -d /tmp/portvigil-diskfull.XXXXXX)
mount -t tmpfs -o size=2m,mode=0700 tmpfs "$DIR"
OUT=$(mktemp -d /tmp/portvigil-diskfull-out.XXXXXX) # logs and outputs: not on the full disk
PORT=19117
LISTEN_PORT=2049
cat >"$DIR/portvigil.toml" <<EOF
[agent]
state-dir = "$DIR/state"
event-log = "$DIR/state/events.jsonl"
web-listen-address = "127.0.0.1:$PORT"

[[authorization]]
networks = ["127.0.0.1/32"]
owner = "disk_full_e2e"

[[job]]
name = "lo"
targets = ["127.0.0.1"]
ports = "2040-2060"
technique = "connect"
interval = "2s"
confirmations = 1
EOF

AGENT_PID=
cleanup() {
  [[ -z $AGENT_PID ]] || kill -9 "$AGENT_PID" 2>/dev/null || true
  [[ -z ${LISTENER_PID:-} ]] || kill "$LISTENER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  umount "$DIR" 2>/dev/null || true
  rmdir "$DIR" 2>/dev/null || true
  [[ -n ${KEEP_OUT:-} ]] || rm -rf "$OUT"
}
trap cleanup EXIT

start_agent() {
  "$BIN" agent --config "$DIR/portvigil.toml" >>"$OUT/agent.out" 2>&1 &
  AGENT_PID=$!
}
stop_agent() {
  kill -TERM "$AGENT_PID"
  wait "$AGENT_PID" || fail "the agent exited with status $? on SIGTERM"
  AGENT_PID=
}
metric() { curl -sS --max-time 2 "http://127.0.0.1:$PORT/metrics" 2>/dev/null | awk -v m="$1" '$1 == m {print $2}'; }
writable_is() { [[ "$(metric portvigil_database_writable)" == "$1" ]]; }
scans_complete() {
  local n
  n=$(metric "portvigil_scans_total{result=\"complete\",scan_job=\"lo\"}")
  [[ -n $n ]] && ((${n%.*} >= $1))
}
events_count() { grep -c '"kind":"port"' "$DIR/state/events.jsonl" 2>/dev/null || true; }
fill_disk() { dd if=/dev/zero of="$DIR/fill" bs=4k 2>/dev/null || true; }

events_for() { grep -c "\"port\":$LISTEN_PORT,\"from\":\"$1\",\"to\":\"$2\"" "$DIR/state/events.jsonl" 2>/dev/null || true; }
# has_event FROM TO: evaluated on every try of wait_for (a $(...) argument would be fixed)
has_event() {
  local n
  n=$(events_for "$1" "$2")
  ((${n:-0} >= 1))
}
open_listener() {
  python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
while True: time.sleep(60)' "$LISTEN_PORT" &
  LISTENER_PID=$!
}
status_reads() {
  "$BIN" status --state-dir "$DIR/state" >"$OUT/status.out" 2>&1 ||
    fail "status failed: $(cat "$OUT/status.out")"
  grep -qE "^lo +[0-9]+ +" "$OUT/status.out" || fail "status shows no scan: $(cat "$OUT/status.out")"
  "$BIN" changes --state-dir "$DIR/state" --since 1h >"$OUT/changes.out" 2>&1 ||
    fail "changes failed: $(cat "$OUT/changes.out")"
}

log "1. a running agent meets a full disk"
start_agent
wait_for "first scans complete" scans_complete 2
writable_is 1 || fail "portvigil_database_writable is not 1 on a healthy disk"
fill_disk
open_listener
wait_for "the agent reports the database not writable" writable_is 0
grep -q "database or disk is full\|disk I/O error" "$OUT/agent.out" ||
  fail "the agent's log does not name the disk problem"
status_reads
[[ $(events_count) == 0 ]] || fail "an event was published while the disk was full"
log "   space is back: the port that opened meanwhile is one event"
rm -f "$DIR/fill"
wait_for "portvigil_database_writable 1" writable_is 1
wait_for "the open event" has_event closed open
stop_agent

log "2. an agent (re)started on a full disk starts and reports"
fill_disk
kill "$LISTENER_PID"
wait "$LISTENER_PID" 2>/dev/null || true
LISTENER_PID=
start_agent
wait_for "the agent serves metrics with portvigil_database_writable 0" writable_is 0
grep -q "the agent starts; scans wait for the database" "$OUT/agent.out" ||
  fail "the database open did not fail on the full disk (the test did not test it)"
log "   status and changes read with the agent stopped"
stop_agent
status_reads
grep -q "read without the write-ahead log" "$OUT/status.out" ||
  fail "status did not say it read without the write-ahead log: $(cat "$OUT/status.out")"
grep -q "$LISTEN_PORT/tcp  closed -> open" "$OUT/changes.out" ||
  fail "changes does not show the event: $(cat "$OUT/changes.out")"
start_agent
wait_for "the agent is up again" writable_is 0
log "   space is back: the agent opens the database within its retry and resumes"
rm -f "$DIR/fill"
WAIT=60
wait_for "portvigil_database_writable 1" writable_is 1
grep -q "is writable again: scans resume" "$OUT/agent.out" || fail "no recovery log line"
wait_for "the close event" has_event open closed
sleep 4 # more scans: no more events
[[ $(events_count) == 2 ]] ||
  fail "expected exactly two events, got $(events_count): $(cat "$DIR/state/events.jsonl")"
stop_agent
log "PASS"
