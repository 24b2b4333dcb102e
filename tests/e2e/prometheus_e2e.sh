#!/usr/bin/env bash
# End-to-end: portvigil agent -> Prometheus (with the shipped alert rules) in the test lab.
#
#   tests/e2e/prometheus_e2e.sh [--binary PATH] [--listener PATH] [--keep]
#
# Builds a lab (tests/lab/lab.sh: two network namespaces, no route out) whose target serves
# 22, 80 and 443. Inside the scanner namespace it runs the agent (job "lab": 198.18.0.2,
# ports 1-2000, interval 2s, confirmations 1, expected-open 22/80/443, metrics on
# 127.0.0.1:10117 of that namespace's loopback) and a Prometheus (127.0.0.1:9090 of the same
# loopback, scrape and evaluation every 1s, rule_files = monitoring/alerts/portvigil.rules.yml,
# TSDB in a temporary directory). Nothing listens outside the scanner namespace. Then:
#
#   1. baseline: the three open ports are scraped as expected, nothing unexpected
#   2. a listener on 1234/tcp in the target -> portvigil_port_unexpected_open{port="1234"} == 1
#      and the PortvigilUnexpectedPortOpen alert is pending/firing
#   3. the listener stops -> the series and the alert clear
#   4. 1234 opens again -> PortvigilPortOpened fires (the change counter steps 1 -> 2); it
#      closes again -> PortvigilPortClosed fires
#   5. SIGHUP with a broken file -> PortvigilConfigReloadFailed; fixed file + SIGHUP -> clear
#   6. every dashboard expression evaluates without error against this Prometheus
#   7. SIGTERM -> the agent exits 0 and PortvigilDown is pending
#
# Every wait is bounded (60 s); the whole test takes well under 3 minutes. Exit 0 pass,
# 1 fail, 77 skip: without root, network namespaces, nft, prometheus or curl the test skips,
# unless PORTVIGIL_REQUIRE_LAB=1, which makes a missing capability a failure.
#
# --binary (or $PORTVIGIL_BINARY): the portvigil executable (default: build/agent/portvigil).
# --listener (or $PV_LAB_LISTENER): a built lab_listener; otherwise lab.sh compiles one.
# --keep (or PORTVIGIL_E2E_KEEP=1): keep the temporary directory (logs, TSDB) for inspection.
# PORTVIGIL_E2E_TECHNIQUE=syn runs the job with the raw SYN technique instead of connect.

# Functions below are called through traps and wait_for: shellcheck cannot see that.
# shellcheck disable=SC2317
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
readonly HERE ROOT
LAB="$ROOT/tests/lab/lab.sh"
RULES="$ROOT/monitoring/alerts/portvigil.rules.yml"
DASHBOARD="$ROOT/monitoring/dashboards/portvigil.json"
readonly LAB RULES DASHBOARD

E2E=prometheus_e2e
# shellcheck source=tests/e2e/e2e_lib.sh
source "$HERE/e2e_lib.sh"
e2e_args "$@"
technique=${PORTVIGIL_E2E_TECHNIQUE:-connect}

readonly AGENT_PORT=10117 PROM_PORT=9090 NEW_PORT=1234 WAIT=60 BUDGET=170
START=$SECONDS
NAME="e2e$(($$ % 100000))"
readonly NAME START

# ---- capabilities ----------------------------------------------------------------------------
e2e_require ip nft prometheus curl python3

# ---- setup and cleanup -------------------------------------------------------------------------
TMP=$(mktemp -d /tmp/portvigil-e2e.XXXXXX)
chmod 755 "$TMP"
AGENT_PID="" PROM_PID="" NEW_PID=""
lab_up=0

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  e2e_stop $NEW_PID $AGENT_PID $PROM_PID
  ((lab_up)) && "$LAB" down --name "$NAME" --dir "$TMP/lab" >/dev/null 2>&1
  if ((rc != 0)); then
    echo "---- agent log (last 40 lines) ----" >&2
    tail -n 40 "$TMP/agent.log" >&2 2>/dev/null || true
    echo "---- prometheus log (last 20 lines) ----" >&2
    tail -n 20 "$TMP/prometheus.log" >&2 2>/dev/null || true
  fi
  if [[ $keep == 1 ]]; then
    echo "prometheus_e2e: kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

start_new_listener() {
  ip netns exec "pv-$NAME-tgt" "$TMP/lab_listener" --tcp "$NEW_PORT" \
    </dev/null >"$TMP/new-listener.out" 2>"$TMP/new-listener.err" &
  NEW_PID=$!
  for _ in $(seq 50); do
    grep -qx ready "$TMP/new-listener.out" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "listener on $NEW_PORT did not start: $(cat "$TMP/new-listener.err")"
}

stop_new_listener() {
  kill -TERM "$NEW_PID" 2>/dev/null
  wait "$NEW_PID" 2>/dev/null
  NEW_PID=""
}

write_config() { # $1 = file, $2 = 1 for a broken file
  cat >"$1" <<EOF
[agent]
state-dir = "$TMP/state"
log-level = "info"
web-listen-address = "127.0.0.1:$AGENT_PORT"

[[authorization]]
networks = ["198.18.0.0/24"]
owner = "tests/e2e/prometheus_e2e.sh"

[[job]]
name = "lab"
targets = ["198.18.0.2"]
ports = "1-2000"
technique = "$technique"
interval = "2s"
confirmations = 1
max-retries = 1
expected-open = ["22/tcp", "80/tcp", "443/tcp"]
EOF
  [[ ${2:-0} == 1 ]] && printf 'intervall = "2s"\n' >>"$1"
  return 0
}

# ---- 0. lab, agent, Prometheus -------------------------------------------------------------------
log "lab $NAME in $TMP (technique $technique)"
labargs=(up --name "$NAME" --dir "$TMP/lab" --tcp-open "22,80,443")
[[ -n "$listener" ]] && labargs+=(--listener "$listener")
lab_up=1
"$LAB" "${labargs[@]}" >"$TMP/lab-up.log" 2>&1 || { cat "$TMP/lab-up.log" >&2; fail "lab.sh up failed"; }
if [[ -n "$listener" ]]; then cp "$listener" "$TMP/lab_listener"; else cp "$TMP/lab/lab_listener" "$TMP/lab_listener"; fi

write_config "$TMP/portvigil.toml"
"$binary" check-config "$TMP/portvigil.toml" >/dev/null || fail "check-config rejected the test configuration"
mkdir -p "$TMP/state"
# lab.sh exec ends in `exec ip netns exec`, which execs the command: $! is the agent itself
# (a shell function here would put a subshell in between and signals would miss the agent).
"$LAB" exec --name "$NAME" -- "$binary" agent --config "$TMP/portvigil.toml" \
  </dev/null >"$TMP/agent.log" 2>&1 &
AGENT_PID=$!

# The shipped rules, with keep_firing_for (10m: rides out agent restarts) cut to 15s so that
# the lab sees alerts resolve within its time budget.
sed 's/keep_firing_for: 10m/keep_firing_for: 15s/' "$RULES" >"$TMP/portvigil.rules.yml"
grep -q 'keep_firing_for: 15s' "$TMP/portvigil.rules.yml" || fail "the rules no longer use keep_firing_for: 10m"
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $TMP/portvigil.rules.yml
scrape_configs:
  - job_name: portvigil
    static_configs:
      - targets: ["127.0.0.1:$AGENT_PORT"]
EOF
"$LAB" exec --name "$NAME" -- prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn \
  </dev/null >"$TMP/prometheus.log" 2>&1 &
PROM_PID=$!

prom_ready() { in_scan curl -sf --max-time 2 "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1; }
agent_ready() { in_scan curl -sf --max-time 2 "http://127.0.0.1:$AGENT_PORT/-/ready" >/dev/null 2>&1; }
wait_for "Prometheus ready" prom_ready
wait_for "agent /-/ready" agent_ready
in_scan curl -sf --max-time 2 "http://127.0.0.1:$AGENT_PORT/-/healthy" >/dev/null || fail "agent /-/healthy"

# Safety: neither server may listen anywhere but the scanner namespace's loopback.
listeners=$(in_scan ss -Htln | awk '{print $4}' | sort -u | tr '\n' ' ')
for l in $listeners; do
  [[ $l == 127.0.0.1:* ]] || fail "something listens on $l in the scanner namespace"
done
log "listening in the scanner namespace: $listeners"

# ---- 1. baseline -----------------------------------------------------------------------------
wait_for "target scraped (up == 1)" count_is 'up{job="portvigil"} == 1' 1
wait_for "a complete scan recorded" count_is 'portvigil_scans_total{scan_job="lab",result="complete"} > 0' 1
wait_for "expected ports 22, 80, 443 open" count_is \
  'portvigil_port_open{scan_job="lab",host="198.18.0.2",proto="tcp",port=~"22|80|443"} == 1' 3
count_is 'portvigil_port_unexpected_open' 0 || fail "unexpected ports reported at baseline"
count_is 'portvigil_port_open{scan_job="lab"}' 3 || fail "more than the three expected ports open at baseline"
count_is 'portvigil_job_interval_seconds{scan_job="lab"} == 2' 1 || fail "portvigil_job_interval_seconds{scan_job=\"lab\"} != 2"
count_is 'portvigil_scan_success{scan_job="lab"} == 1' 1 || fail "portvigil_scan_success{scan_job=\"lab\"} != 1"
count_is 'portvigil_ports{scan_job="lab",proto="tcp",state="open"} == 3' 1 || fail "portvigil_ports open != 3"
count_is 'portvigil_config_last_reload_successful == 1' 1 || fail "portvigil_config_last_reload_successful != 1"
count_is 'portvigil_build_info == 1' 1 || fail "no portvigil_build_info"
[[ $(alert_state PortvigilUnexpectedPortOpen) == none ]] || fail "PortvigilUnexpectedPortOpen active at baseline"

# ---- 2. a new port opens ---------------------------------------------------------------------
log "opening $NEW_PORT/tcp in the target"
opened_at=$(date +%s)
start_new_listener
wait_for "portvigil_port_unexpected_open{port=\"$NEW_PORT\"} == 1" count_is \
  "portvigil_port_unexpected_open{scan_job=\"lab\",host=\"198.18.0.2\",proto=\"tcp\",port=\"$NEW_PORT\"} == 1" 1
# How long it has been open: a time since it opened, within this test's run.
count_is "portvigil_port_unexpected_open_since_timestamp_seconds{scan_job=\"lab\",port=\"$NEW_PORT\"} >= $((opened_at - 1))" 1 ||
  fail "portvigil_port_unexpected_open_since_timestamp_seconds for $NEW_PORT is not the time it opened (after $opened_at)"
wait_for "PortvigilUnexpectedPortOpen pending/firing for $NEW_PORT" alert_is 'pending|firing' \
  PortvigilUnexpectedPortOpen scan_job=lab host=198.18.0.2 proto=tcp port="$NEW_PORT" severity=critical
wait_for "PortvigilUnexpectedPortOpen firing (for: 0m)" alert_is firing \
  PortvigilUnexpectedPortOpen port="$NEW_PORT"
count_ge 'portvigil_port_state_changes_total{scan_job="lab",proto="tcp",to="open"} >= 1' 1 ||
  fail "the change was not counted in portvigil_port_state_changes_total"

# ---- 3. it closes ------------------------------------------------------------------------------
log "closing $NEW_PORT/tcp"
stop_new_listener
wait_for "portvigil_port_unexpected_open{port=\"$NEW_PORT\"} gone" count_is \
  "portvigil_port_unexpected_open{port=\"$NEW_PORT\"}" 0
wait_for "PortvigilUnexpectedPortOpen cleared" alert_is none PortvigilUnexpectedPortOpen port="$NEW_PORT"
count_is "portvigil_port_open{port=\"$NEW_PORT\"}" 0 || fail "portvigil_port_open{port=\"$NEW_PORT\"} still there"

# ---- 4. the info alerts: the change counters step again -------------------------------------------
log "opening and closing $NEW_PORT/tcp again"
start_new_listener
wait_for "PortvigilPortOpened firing" alert_is firing PortvigilPortOpened scan_job=lab proto=tcp severity=info
stop_new_listener
wait_for "PortvigilPortClosed firing" alert_is firing PortvigilPortClosed scan_job=lab proto=tcp severity=info
wait_for "PortvigilUnexpectedPortOpen cleared again" alert_is none PortvigilUnexpectedPortOpen

# ---- 5. reload -------------------------------------------------------------------------------------
log "SIGHUP with a broken configuration"
write_config "$TMP/portvigil.toml" 1
kill -HUP "$AGENT_PID"
wait_for "portvigil_config_last_reload_successful == 0" count_is 'portvigil_config_last_reload_successful == 0' 1
wait_for "PortvigilConfigReloadFailed firing" alert_is firing PortvigilConfigReloadFailed severity=warning
write_config "$TMP/portvigil.toml"
kill -HUP "$AGENT_PID"
wait_for "PortvigilConfigReloadFailed cleared" alert_is none PortvigilConfigReloadFailed
count_is 'portvigil_config_last_reload_successful == 1' 1 || fail "reload not successful after the fix"

# ---- 6. dashboard expressions ------------------------------------------------------------------------
if [[ -f "$DASHBOARD" ]]; then
  n=0 empty=()
  while IFS= read -r line; do
    expr=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["expr"])' "$line")
    panel=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["panel"], d["ref"])' "$line")
    c=$(series_count "$expr")
    [[ $c == error ]] && fail "dashboard '$panel': query failed: $expr"
    ((c == 0)) && empty+=("$panel")
    n=$((n + 1))
  done < <(python3 "$ROOT/monitoring/dashboards/check_dashboard.py" "$DASHBOARD" --print-exprs)
  ((n > 0)) || fail "no dashboard expressions"
  log "ok: $n dashboard expressions evaluate; ${#empty[@]} have no data now${empty:+: ${empty[*]}}"
  count_ge "$(python3 "$ROOT/monitoring/dashboards/check_dashboard.py" "$DASHBOARD" --print-exprs |
    python3 -c 'import json,sys
for l in sys.stdin:
    d = json.loads(l)
    if d["panel"] == "Open ports by host": print(d["expr"]); break')" 3 ||
    fail "dashboard 'Open ports by host' does not show the three open ports"
fi

# Nothing else should have fired. PortvigilScanStale's threshold is 2 intervals = 4 s here,
# close to a scan plus a scrape, so it is only reported.
for a in PortvigilScanFailing PortvigilDown; do
  [[ $(alert_state "$a") == none ]] || fail "$a is active"
done
[[ $(alert_state PortvigilScanStale) == none ]] || log "note: PortvigilScanStale was active (4 s threshold)"

# ---- 7. stop -----------------------------------------------------------------------------------------
log "SIGTERM to the agent"
kill -TERM "$AGENT_PID"
agent_rc=""
# Within 2 s (systemd's stop timeout must never be what ends it).
for _ in $(seq 20); do
  if ! kill -0 "$AGENT_PID" 2>/dev/null; then
    wait "$AGENT_PID"
    agent_rc=$?
    break
  fi
  sleep 0.1
done
[[ -n "$agent_rc" ]] || fail "the agent did not stop within 2 s of SIGTERM"
AGENT_PID=""
((agent_rc == 0)) || fail "the agent exited $agent_rc after SIGTERM"
log "ok: agent exited 0"
down_pending() { [[ "$(alert_state PortvigilDown)" =~ ^(pending|firing)$ ]]; }
AGENT_PID=$PROM_PID # wait_for checks that this process is alive
wait_for "PortvigilDown pending" down_pending
AGENT_PID=""

log "PASS ($((SECONDS - START))s)"
exit 0
