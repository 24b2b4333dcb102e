#!/usr/bin/env bash
# Paced UDP against hosts with the kernel's default ICMP limits (issue: UDP monitoring that
# works against ordinarily configured hosts).
#
#   tests/e2e/udp_paced_e2e.sh [--binary PATH] [--listener PATH] [--keep] [--hosts N]
#
# Twenty target hosts, each its own network namespace and so its own kernel ICMP limiter
# (net.ipv4.icmp_ratelimit = 1000 ms, burst 6: the defaults, checked), on one bridge in the
# scanner's namespace (198.18.0.1/24, no other link, no route out). Each serves UDP 53, 123
# and 161 with lab_listener; every other port answers ICMP port unreachable, rate limited.
# The agent runs one UDP job over ports 1-40,53,123,161 of all of them, interval 30s,
# udp-coverage 60s (half the ports per scan). Checked:
#  1. within the first coverage period every port of every host is verified
#     (portvigil_udp_coverage_verified_ports = 43) and settled exactly: 60 open, 800 closed,
#     nothing else (portvigil_ports), the limiter was met (rate_limited_probes > 0);
#  2. over the next two coverage periods: no inconclusive host, no failed scan, no event;
#  3. a UDP responder started on one host's port 7 is exactly one event (udp 7 closed -> open
#     on that host), within one coverage period and a scan.
# Needs root, iproute2, curl, python3 (and g++ without --listener). Exit 77 = skipped
# (a failure under PORTVIGIL_REQUIRE_LAB=1).
set -euo pipefail

E2E=udp_paced_e2e.sh
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
START=$SECONDS
WAIT=120
BUDGET=560
# shellcheck source=tests/e2e/e2e_lib.sh
source "$HERE/e2e_lib.sh"

hosts=20
args=()
while (($#)); do
  case $1 in
    --hosts) hosts=${2:?}; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
e2e_args "${args[@]}"
[[ $hosts =~ ^[1-9][0-9]?$ ]] || { echo "$E2E: --hosts must be 1-99" >&2; exit 2; }
e2e_require ip curl python3

SCAN_NS=pvu-scan
MULTI="$ROOT/tests/lab/multihost.sh"
AGENT_PORT=10131
TMP=$(mktemp -d /tmp/pv-udp-paced.XXXXXX)
AGENT_PID=""
RESPONDER_PID=""

cleanup() {
  local rc=$?
  [[ -n "$AGENT_PID" ]] && e2e_stop "$AGENT_PID"
  [[ -n "$RESPONDER_PID" ]] && e2e_stop "$RESPONDER_PID"
  "$MULTI" down --prefix pvu --dir "$TMP/lab" >/dev/null 2>&1 || true
  if ((rc != 0)) && [[ -f "$TMP/agent.log" ]]; then
    echo "---- agent log (last 40 lines) ----" >&2
    tail -40 "$TMP/agent.log" >&2
  fi
  if [[ $keep == 1 ]]; then echo "$E2E: kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

in_ns() { ip netns exec "$SCAN_NS" "$@"; }
target_ip() { echo "198.18.0.$((10 + $1))"; }

# ---- 0. the lab -----------------------------------------------------------------------------
if [[ -z "$listener" ]]; then
  g++ -std=c++17 -O2 -o "$TMP/lab_listener" "$ROOT/tests/lab/lab_listener.cpp" ||
    fail "could not build lab_listener"
  listener=$TMP/lab_listener
fi
"$MULTI" up --prefix pvu --hosts "$hosts" --dir "$TMP/lab" --listener "$listener" \
  --udp 53,123,161 >"$TMP/lab-up.log" 2>&1 || { cat "$TMP/lab-up.log" >&2; fail "multihost.sh up failed"; }
log "lab: $hosts hosts, each its own namespace with the default ICMP limits"

# ---- 1. the agent -----------------------------------------------------------------------------
cat >"$TMP/portvigil.toml" <<EOF
[agent]
state-dir = "$TMP/state"
log-level = "info"
web-listen-address = "127.0.0.1:$AGENT_PORT"

[[authorization]]
networks = ["198.18.0.0/24"]
owner = "tests/e2e/udp_paced_e2e.sh"

[[job]]
name = "udp"
targets = ["198.18.0.11-$((10 + hosts))"]
ports = "1-40,53,123,161"
technique = "udp"
interval = "30s"
udp-coverage = "60s"
EOF
"$binary" check-config "$TMP/portvigil.toml" >/dev/null || fail "check-config rejected the configuration"
mkdir -p "$TMP/state"
ip netns exec "$SCAN_NS" "$binary" agent --config "$TMP/portvigil.toml" >"$TMP/agent.log" 2>&1 &
AGENT_PID=$!
AGENT_START=$SECONDS

metrics() { in_ns curl -sS --max-time 3 "http://127.0.0.1:$AGENT_PORT/metrics" 2>/dev/null || true; }
# metric NAME [LABEL=VALUE...] -> the value of the series of NAME with those labels (in any
# order, others allowed), or "none"
metric() {
  metrics | python3 -c '
import re, sys
name, want = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
for line in sys.stdin:
    m = re.match(r"([a-z_]+)(?:\{(.*)\})? (\S+)$", line.strip())
    if not m or m.group(1) != name:
        continue
    labels = dict(re.findall(r"(\w+)=\"([^\"]*)\"", m.group(2) or ""))
    if all(labels.get(k) == v for k, v in want.items()):
        print(m.group(3)); break
else:
    print("none")' "$@"
}
value_is() { # WANT NAME [LABEL=VALUE...]
  local want=$1
  shift
  [[ "$(metric "$@")" == "$want" ]]
}
events() { cat "$TMP/state/events.jsonl" 2>/dev/null || true; }
event_count() { events | grep -c . || true; }

# ---- 2. settled within the first coverage period -------------------------------------------
wait_for "every port of every host verified (43)" \
  value_is 43 portvigil_udp_coverage_verified_ports scan_job=udp
settled=$((SECONDS - AGENT_START))
((settled <= 60 + 30)) || fail "coverage took ${settled}s: more than one period (60s) and a scan"
log "all ports verified after ${settled}s"
open=$(metric portvigil_ports scan_job=udp proto=udp state=open)
closed=$(metric portvigil_ports scan_job=udp proto=udp state=closed)
[[ $open == "$((3 * hosts))" && $closed == "$((40 * hosts))" ]] ||
  fail "not exact: $open open (want $((3 * hosts))), $closed closed (want $((40 * hosts)))"
others=$(metrics | grep '^portvigil_ports{' | grep -v 'state="open"' | grep -v 'state="closed"' |
  awk '$2 != 0' || true)
[[ -z "$others" ]] || fail "ports in other states: $others"
limited=$(metric portvigil_udp_rate_limited_probes_total scan_job=udp)
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)' "$limited" ||
  fail "no probe ran into a rate limit ($limited): the limiter was not exercised"
log "exact: $open open, $closed closed; $limited probes ran into the limiter"

# ---- 3. two more coverage periods: no inconclusive host, no event --------------------------
quiet_until=$((SECONDS + 120))
while ((SECONDS < quiet_until)); do
  kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died"
  n=$(metric portvigil_scan_hosts_not_compared scan_job=udp reason=inconclusive)
  [[ $n == 0 || $n == none ]] || fail "inconclusive hosts: $n"
  [[ "$(event_count)" == 0 ]] || fail "false events: $(events)"
  sleep 2
done
grep -q 'inconclusive' "$TMP/agent.log" && fail "the log reports an inconclusive host"
failed=$(metric portvigil_scans_total scan_job=udp result=incomplete)
[[ $failed == 0 ]] || fail "$failed incomplete scans"
oldest=$(metric portvigil_udp_coverage_oldest_verification_timestamp_seconds scan_job=udp)
age=$(python3 -c 'import sys, time; print(round(time.time() - float(sys.argv[1]), 1))' "$oldest")
# Steady state: at most a period (60s) plus the interval (30s) the next share takes to start.
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 90 else 1)' "$age" ||
  fail "the oldest verification is ${age}s old: more than the 60s coverage and a 30s interval"
log "two periods quiet: no inconclusive host, no event; oldest verification ${age}s"

# ---- 4. a responder starts: one event --------------------------------------------------------
host=$((hosts < 5 ? hosts : 5))
ip netns exec "pvu-t$host" "$listener" --udp 7 >"$TMP/responder.out" 2>&1 &
RESPONDER_PID=$!
has_event() { [[ "$(event_count)" -ge 1 ]]; }
WAIT=100
wait_for "an event for udp 7 on host $host" has_event
sleep 35 # one more scan: nothing else may follow
[[ "$(event_count)" == 1 ]] || fail "want exactly one event, got: $(events)"
events | python3 -c '
import json, sys
e = json.loads(sys.stdin.readline())
want = {"host": sys.argv[1], "proto": "udp", "port": 7, "from": "closed", "to": "open"}
got = {k: e.get(k) for k in want}
sys.exit(0 if got == want else "event " + json.dumps(e) + " is not " + json.dumps(want))' \
  "$(target_ip "$host")" || fail "wrong event"
log "PASS: one event: $(events)"
