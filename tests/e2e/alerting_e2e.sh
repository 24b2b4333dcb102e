#!/usr/bin/env bash
# End-to-end: new exposure on a subnet reaches a pager, once per port, in time, with the
# shipped rules (unchanged) and the shipped Alertmanager routing.
#
#   tests/e2e/alerting_e2e.sh [--binary PATH] [--listener PATH] [--keep]
#
# Lab (tests/lab/lab.sh): the target namespace serves 22 and 80 on 198.18.0.2. Inside the
# scanner namespace, on its loopback only: the agent (connect job "subnet" over
# 198.18.0.2-6, policy: 22 and 80 expected on 198.18.0.2 only, interval 2s; a second
# authorization that expires in 7 days), Prometheus (scrape/evaluate every 1s,
# monitoring/alerts/portvigil.rules.yml as shipped), Alertmanager
# (monitoring/alertmanager.example.yml with its webhook URLs pointed at a local receiver)
# and a webhook receiver that logs every notification. Then:
#
#   1. first scan: silent (no event, no notification); the unused addresses .3-.6 are not
#      hosts: portvigil_scan_hosts_not_compared{reason="down"} is 0, no PortvigilHostGoneSilent
#   2. 198.18.0.5 comes up (an address added to the target), serving 22 and 80: events for
#      both ports (from "absent") and a host-appeared event; exactly one pager notification
#      per port within 60 s
#   3. 30 s later a listener on 8443: a pager notification for 198.18.0.5:8443 within 60 s
#      (the listener binds the wildcard, so 198.18.0.2:8443 pages too: one each)
#   4. the agent restarts: no resolved and no second notification for any port
#   5. PortvigilAuthorizationExpiringSoon fires for the authorization that expires in 7 days
#   6. SIGTERM stops the agent within 2 s
#
# Exit 0 pass, 1 fail, 77 skip (without root, namespaces, nft, prometheus,
# prometheus-alertmanager, curl or python3, unless PORTVIGIL_REQUIRE_LAB=1).

# shellcheck disable=SC2317
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
readonly HERE ROOT
LAB="$ROOT/tests/lab/lab.sh"
RULES="$ROOT/monitoring/alerts/portvigil.rules.yml"
AM_EXAMPLE="$ROOT/monitoring/alertmanager.example.yml"
readonly LAB RULES AM_EXAMPLE

E2E=alerting_e2e
# shellcheck source=tests/e2e/e2e_lib.sh
source "$HERE/e2e_lib.sh"
e2e_args "$@"

readonly AGENT_PORT=10117 PROM_PORT=9090 AM_PORT=9093 HOOK_PORT=9099 WAIT=60 BUDGET=280
START=$SECONDS
NAME="al$(($$ % 100000))"
readonly NAME START
e2e_require ip nft prometheus prometheus-alertmanager curl python3

TMP=$(mktemp -d /tmp/portvigil-alerting.XXXXXX)
chmod 755 "$TMP"
NOTIFICATIONS=$TMP/notifications.jsonl
AGENT_PID="" PROM_PID="" AM_PID="" HOOK_PID="" NEW_PID=""
lab_up=0

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  e2e_stop $NEW_PID $AGENT_PID $PROM_PID $AM_PID $HOOK_PID
  ((lab_up)) && "$LAB" down --name "$NAME" --dir "$TMP/lab" >/dev/null 2>&1
  if ((rc != 0)); then
    for f in agent.log agent2.log prometheus.log alertmanager.log notifications.jsonl; do
      echo "---- $f (last 30 lines) ----" >&2
      tail -n 30 "$TMP/$f" >&2 2>/dev/null || true
    done
  fi
  if [[ $keep == 1 ]]; then echo "alerting_e2e: kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

events_match() { # JQ-less: count event lines with all of KEY=VALUE
  python3 - "$TMP/state/events.jsonl" "$@" <<'PY'
import json, sys
want = dict(a.split("=", 1) for a in sys.argv[2:])
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    e = json.loads(line)
    if all(str(e.get(k)).lower() == v.lower() for k, v in want.items()):
        n += 1
print(n)
PY
}

start_agent() { # $1 = log file
  "$LAB" exec --name "$NAME" -- "$binary" agent --config "$TMP/portvigil.toml" \
    </dev/null >"$TMP/$1" 2>&1 &
  AGENT_PID=$!
}

stop_agent_within() { # $1 = seconds (tenths allowed as N.N)
  local t0 tenths limit
  t0=$(date +%s%N)
  kill -TERM "$AGENT_PID"
  limit=$(python3 -c "print(int(float('$1') * 10))")
  for ((tenths = 0; tenths < 100; tenths++)); do
    kill -0 "$AGENT_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$AGENT_PID" 2>/dev/null && fail "the agent did not stop within 10 s of SIGTERM"
  wait "$AGENT_PID"
  local rc=$? ms=$((($(date +%s%N) - t0) / 1000000))
  AGENT_PID=""
  ((rc == 0)) || fail "the agent exited $rc after SIGTERM"
  ((ms <= limit * 100)) || fail "the agent took ${ms} ms to stop after SIGTERM (limit $1 s)"
  log "ok: agent stopped ${ms} ms after SIGTERM"
}

# ---- 0. lab, agent, Prometheus, Alertmanager, receiver -------------------------------------------
log "lab $NAME in $TMP"
labargs=(up --name "$NAME" --dir "$TMP/lab" --tcp-open "22,80")
[[ -n "$listener" ]] && labargs+=(--listener "$listener")
lab_up=1
"$LAB" "${labargs[@]}" >"$TMP/lab-up.log" 2>&1 || { cat "$TMP/lab-up.log" >&2; fail "lab.sh up failed"; }
if [[ -n "$listener" ]]; then cp "$listener" "$TMP/lab_listener"; else cp "$TMP/lab/lab_listener" "$TMP/lab_listener"; fi
TARGET_NS=$(sed -n 's/^TARGET_NS=//p' "$TMP/lab/env")
TARGET_IF=$(sed -n 's/^TARGET_IF=//p' "$TMP/lab/env")
[[ -n $TARGET_NS && -n $TARGET_IF ]] || fail "lab.sh wrote no TARGET_NS/TARGET_IF"

expires=$(date -u -d '+7 days' +%F)
cat >"$TMP/portvigil.toml" <<EOF
[agent]
state-dir = "$TMP/state"
log-level = "info"
web-listen-address = "127.0.0.1:$AGENT_PORT"

[[authorization]]
networks = ["198.18.0.0/24"]
owner = "tests/e2e/alerting_e2e.sh"

[[authorization]]
networks = ["198.19.0.0/24"]
owner = "lab"
ticket = "CHG-7"
expires = $expires

[[job]]
name = "subnet"
targets = ["198.18.0.2-6"]
ports = "20-30,80,443,8000-8100,8443"
technique = "connect"
interval = "2s"
confirmations = 1
max-retries = 1
expected-open = { "198.18.0.2" = ["22/tcp", "80/tcp"] }
EOF
"$binary" check-config "$TMP/portvigil.toml" >/dev/null || fail "check-config rejected the test configuration"
mkdir -p "$TMP/state"

e2e_receiver "$HOOK_PORT"
HOOK_PID=$RECEIVER_PID

sed -e "s#https://pager.example.invalid/hooks/portvigil#http://127.0.0.1:$HOOK_PORT/pager#" \
  -e "s#https://chat.example.invalid/hooks/portvigil#http://127.0.0.1:$HOOK_PORT/chat#" \
  "$AM_EXAMPLE" >"$TMP/alertmanager.yml"
grep -q "127.0.0.1:$HOOK_PORT/pager" "$TMP/alertmanager.yml" || fail "the example's pager URL changed"
in_scan prometheus-alertmanager --config.file="$TMP/alertmanager.yml" --storage.path="$TMP/am" \
  --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= --log.level=warn \
  </dev/null >"$TMP/alertmanager.log" 2>&1 &
AM_PID=$!

cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $RULES
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$AM_PORT"]
scrape_configs:
  - job_name: portvigil
    static_configs:
      - targets: ["127.0.0.1:$AGENT_PORT"]
EOF
in_scan prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn \
  </dev/null >"$TMP/prometheus.log" 2>&1 &
PROM_PID=$!
start_agent agent.log

up() { in_scan curl -fsS --max-time 2 "$1" >/dev/null 2>&1; }
wait_for "Prometheus ready" up "http://127.0.0.1:$PROM_PORT/-/ready"
wait_for "Alertmanager ready" up "http://127.0.0.1:$AM_PORT/-/ready"
wait_for "agent ready" up "http://127.0.0.1:$AGENT_PORT/-/ready"

# ---- 1. baseline: silent; unused addresses are not hosts ---------------------------------------
wait_for "target scraped" count_is 'up{job="portvigil"} == 1' 1
wait_for "two complete scans" count_is 'portvigil_scans_total{scan_job="subnet",result="complete"} >= 2' 1
[[ ! -s "$TMP/state/events.jsonl" ]] || fail "the first scans wrote events: $(cat "$TMP/state/events.jsonl")"
count_is 'portvigil_scan_hosts_not_compared{scan_job="subnet",reason="down"} == 0' 1 ||
  fail "unused addresses counted as down hosts"
count_is 'portvigil_hosts_gone_silent{scan_job="subnet"} == 0' 1 || fail "unused addresses gone silent"
count_is 'portvigil_port_unexpected_open' 0 || fail "unexpected ports at baseline"
wait_for "authorization expiry exported" count_is \
  'portvigil_authorization_expiry_timestamp_seconds{network="198.19.0.0/24",ticket="CHG-7"}' 1

# ---- 2. a new host appears ------------------------------------------------------------------
log "198.18.0.5 comes up in the target (serving 22 and 80)"
ip -n "$TARGET_NS" addr add 198.18.0.5/24 dev "$TARGET_IF" || fail "cannot add 198.18.0.5"
t_new=$SECONDS
wait_for "notification for 198.18.0.5:22" notified 198.18.0.5 22
wait_for "notification for 198.18.0.5:80" notified 198.18.0.5 80
((SECONDS - t_new <= 60)) || fail "the new host's pages took $((SECONDS - t_new)) s"
[[ $(events_match kind=port host=198.18.0.5 from=absent to=open port=22) == 1 ]] || fail "no absent->open event for 22"
[[ $(events_match kind=port host=198.18.0.5 from=absent to=open port=80) == 1 ]] || fail "no absent->open event for 80"
[[ $(events_match kind=host-appeared host=198.18.0.5) == 1 ]] || fail "no host-appeared event"
wait_for "PortvigilHostAppeared firing" alert_is firing PortvigilHostAppeared scan_job=subnet

# ---- 3. a second port on the same host ------------------------------------------------------
sleep 30
log "a listener on 8443 (30 s later)"
ip netns exec "$TARGET_NS" "$TMP/lab_listener" --tcp 8443 </dev/null >"$TMP/l8443.out" 2>&1 &
NEW_PID=$!
t_second=$SECONDS
wait_for "notification for 198.18.0.5:8443" notified 198.18.0.5 8443
((SECONDS - t_second <= 60)) || fail "the second port's page took $((SECONDS - t_second)) s"
wait_for "notification for 198.18.0.2:8443" notified 198.18.0.2 8443

# ---- 4. restart: no resolve, no second page --------------------------------------------------
stop_agent_within 2
sleep 3 # a few failed scrapes
start_agent agent2.log
wait_for "agent ready again" up "http://127.0.0.1:$AGENT_PORT/-/ready"
scanned_since_start() {
  in_scan curl -fsS --max-time 2 "http://127.0.0.1:$AGENT_PORT/metrics" 2>/dev/null |
    grep -Eq '^portvigil_scans_total\{result="complete",scan_job="subnet"\} [1-9]'
}
wait_for "a complete scan after the restart" scanned_since_start
sleep 75 # longer than the pager route's group_interval (1m): any change would be sent now
for hp in 198.18.0.5:22 198.18.0.5:80 198.18.0.5:8443 198.18.0.2:8443; do
  h=${hp%:*} p=${hp#*:}
  f=$(notifications firing PortvigilUnexpectedPortOpen "$h" "$p")
  r=$(notifications resolved PortvigilUnexpectedPortOpen "$h" "$p")
  [[ $f == 1 ]] || fail "$hp: $f firing notifications (want exactly 1)"
  [[ $r == 0 ]] || fail "$hp: $r resolved notifications after the restart (want 0)"
  log "ok: $hp paged once, never resolved"
done
[[ $(notifications firing PortvigilUnexpectedPortOpen 198.18.0.2 22) == 0 ]] || fail "an expected port paged"

# ---- 5. the authorization that expires in 7 days ------------------------------------------------
wait_for "PortvigilAuthorizationExpiringSoon firing" alert_is firing \
  PortvigilAuthorizationExpiringSoon network=198.19.0.0/24 ticket=CHG-7
[[ $(alert_state PortvigilHostGoneSilent) == none ]] || fail "PortvigilHostGoneSilent fired on unused addresses"

# ---- 6. stop ---------------------------------------------------------------------------------
stop_agent_within 2
log "PASS ($((SECONDS - START))s)"
exit 0
