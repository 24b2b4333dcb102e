#!/usr/bin/env bash
# Soak test of `portvigil agent` in the lab: a long service run against a network that keeps
# changing, under random packet loss, with kill -9 restarts and SIGHUP reloads, checked against
# a ground-truth log of every change. Not part of ctest: an engineer runs it (as root).
#
#   bench/agent_soak.sh [--binary PATH] [--listener PATH] [--duration SECONDS]
#                       [--loss PERCENT] [--technique syn|connect] [--toggle-every SECONDS]
#                       [--kill-every SECONDS] [--hup-every SECONDS] [--max-delay SECONDS]
#                       [--work-dir DIR]
#
# Defaults: --duration 3600, --loss 5, --technique syn, --toggle-every 20, --kill-every 600,
# --hup-every 270, --max-delay 3 intervals + confirmation allowance (see below), --binary
# build/agent/portvigil, --listener (lab.sh compiles one). The work directory (default
# /tmp/pv-soak-<PID>) is kept: agent log, events, ground truth, summary.
#
# Lab (tests/lab/lab.sh, namespaces pv-soak<PID>-scan/-tgt, no route out; the agent runs inside
# the scanner namespace): TCP 22,80,443,1500,2500 open, 1900-1904 dropped, 2600-2604 rejected
# (ICMP admin-prohibited), every other port closed; --loss % of the packets entering and of
# those leaving the target's veth end dropped at random (nftables numgen, no sch_netem needed).
# Job "soak": targets 198.18.0.2 and 2001:db8::2, ports 1-3000, interval 2s, confirmations 2,
# expected-open = the initially open ports.
#
# While it runs:
#   * every --toggle-every s a listener is started or stopped on one of the spare ports
#     1234,1777,2345,2999 (round robin), logged with its start/end time in truth.tsv;
#   * every --kill-every s (a random 0.5-4 s after a toggle, so that the change is often in
#     confirmation) the agent is killed with SIGKILL and restarted on the same state dir;
#   * every --hup-every s (random phase) the agent gets SIGHUP. Odd reloads keep the config
#     unchanged and must log "SIGHUP: configuration reloaded" within 10 s. Even reloads put a
#     broken file in its place first (in turn: a TOML syntax error, a misspelt key, a target
#     outside the authorized networks, a bad interval); the agent must log "SIGHUP: reload
#     failed" within 10 s and keep scanning with the running config; the good file is then put
#     back. Files are replaced atomically (rename), as an editor or config manager would;
#   * an agent that exits on its own is counted (failure) and restarted.
#
# At the end: SIGTERM right after a completed scan (exit 0 within 5 s required), then the
# check of DIR/events.jsonl against truth.tsv: every toggle gives exactly one event per host
# (v4, v6) with the right from/to (closed<->open) and "expected" flag, whose time (the agent's
# commit time) lies between the toggle's start and its deadline = end + --max-delay; when
# the agent was killed inside that window the deadline becomes restart + --max-delay. Every
# other event is a false event. Also: ids strictly increasing without duplicates,
# `portvigil changes --json` lists the same events, `portvigil status` shows the job's last
# scan complete (2/2 hosts), and the agent log's counts of complete/incomplete scans and
# inconclusive hosts. Exit 0 only if there is no false, missing or late event and every
# other check passed; 1 otherwise; 2 on a setup error.
set -euo pipefail

PROG=agent_soak.sh
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
LAB="$ROOT/tests/lab/lab.sh"

BINARY="$ROOT/build/agent/portvigil"
LISTENER=""
DURATION=3600
LOSS=5
TECHNIQUE=syn
TOGGLE_EVERY=20
KILL_EVERY=600
HUP_EVERY=270
MAX_DELAY=""
WORK=""

readonly JOB=soak INTERVAL=2 CONFIRMATIONS=2 PORTS=1-3000
readonly TCP_OPEN=22,80,443,1500,2500 TCP_DROP=1900-1904 TCP_REJECT=2600-2604
readonly SPARE=(1234 1777 2345 2999)
readonly TARGET4=198.18.0.2 TARGET6=2001:db8::2

die() {
  echo "$PROG: $*" >&2
  exit 2
}
say() { echo "$PROG: $(date -u +%H:%M:%S) $*" >&2; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

check_uint() { # option value min max
  [[ "$2" =~ ^[0-9]+$ ]] && (($2 >= $3 && $2 <= $4)) && return 0
  die "$1: an integer from $3 to $4, got '$2'"
}

while (($#)); do
  case $1 in
    --binary) BINARY=${2:?}; shift 2 ;;
    --listener) LISTENER=${2:?}; shift 2 ;;
    --duration) DURATION=${2:?}; shift 2 ;;
    --loss) LOSS=${2:?}; shift 2 ;;
    --technique) TECHNIQUE=${2:?}; shift 2 ;;
    --toggle-every) TOGGLE_EVERY=${2:?}; shift 2 ;;
    --kill-every) KILL_EVERY=${2:?}; shift 2 ;;
    --hup-every) HUP_EVERY=${2:?}; shift 2 ;;
    --max-delay) MAX_DELAY=${2:?}; shift 2 ;;
    --work-dir) WORK=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) die "unknown argument '$1' (--help)" ;;
  esac
done

check_uint --duration "$DURATION" 60 10000000
check_uint --loss "$LOSS" 0 50
[[ $TECHNIQUE == syn || $TECHNIQUE == connect ]] || die "--technique: syn or connect"
check_uint --toggle-every "$TOGGLE_EVERY" 5 100000
check_uint --kill-every "$KILL_EVERY" 30 10000000
check_uint --hup-every "$HUP_EVERY" 10 10000000
# The bound on an event's delay: 3 intervals (a scan in progress at the change, the scan that
# sees it, one inconclusive scan) plus the confirmation re-probes (2 rounds of probe timeouts
# and retries, a few seconds each under loss).
[[ -z "$MAX_DELAY" ]] && MAX_DELAY=$((3 * INTERVAL + 4 * CONFIRMATIONS))
check_uint --max-delay "$MAX_DELAY" 1 100000
# A spare port keeps its state for ${#SPARE[@]} toggles: that must exceed the delay bound, or
# the windows of two changes of one port could overlap.
((TOGGLE_EVERY * ${#SPARE[@]} > 2 * MAX_DELAY)) || die "--toggle-every too small for --max-delay"
((EUID == 0)) || die "must run as root"
[[ -x "$BINARY" ]] || die "--binary '$BINARY' is not executable"
BINARY=$(cd "$(dirname "$BINARY")" && pwd)/$(basename "$BINARY")
if [[ -n "$LISTENER" ]]; then
  [[ -x "$LISTENER" ]] || die "--listener '$LISTENER' is not executable"
  LISTENER=$(cd "$(dirname "$LISTENER")" && pwd)/$(basename "$LISTENER")
fi
for t in ip nft python3; do
  command -v "$t" >/dev/null || die "'$t' is not installed"
done

NAME="soak$$"
TARGET_NS="pv-$NAME-tgt"
TARGET_IF="pvt$NAME"
[[ -n "$WORK" ]] || WORK="/tmp/pv-soak-$$"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
[[ -e "$WORK/truth.tsv" ]] && die "$WORK already holds a soak run"
STATE="$WORK/state"
CONFIG="$WORK/agent.toml"
TRUTH="$WORK/truth.tsv"      # ground truth: one line per toggle, kill, restart, reload
AGENT_LOG="$WORK/agent.log"  # the agent's stderr, every incarnation appended
AGENT_OUT="$WORK/agent.out"  # the agent's stdout (the stdout sink's events)

AGENT_PID=""
declare -A LPID=()  # spare port -> pid of its listener
LAB_UP=0
FAILURES=()

# ---------------------------------------------------------------------------------------------
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local rc=$? port
  trap - EXIT INT TERM
  for port in "${!LPID[@]}"; do
    kill -TERM "${LPID[$port]}" 2>/dev/null || true
    wait "${LPID[$port]}" 2>/dev/null || true
  done
  if [[ -n "$AGENT_PID" ]] && alive "$AGENT_PID"; then
    kill -TERM "$AGENT_PID" 2>/dev/null || true
    for _ in $(seq 50); do
      alive "$AGENT_PID" || break
      sleep 0.1
    done
    kill -KILL "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
  fi
  if ((LAB_UP)); then
    "$LAB" down --name "$NAME" --dir "$WORK/lab" >/dev/null 2>&1 || true
  fi
  echo "$PROG: work directory kept: $WORK" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Milliseconds since the epoch, into NOW (no subshell).
NOW=0
now_ms() {
  local t=$EPOCHREALTIME
  NOW=$((${t%.*} * 1000 + 10#${t#*.} / 1000))
}

truth() { # start_ms end_ms what port from to
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$TRUTH"
}

count_in_log() { # fixed string
  grep -cF -- "$1" "$AGENT_LOG" 2>/dev/null || true
}
count_re_in_log() { # extended regex
  grep -cE -- "$1" "$AGENT_LOG" 2>/dev/null || true
}

# Waits (0.1 s steps) until count_in_log "$1" exceeds $2; $3 = limit in seconds.
wait_log_count() {
  local text=$1 before=$2 limit=$3 i
  for ((i = 0; i < limit * 10; i++)); do
    (($(count_in_log "$text") > before)) && return 0
    [[ -n "$AGENT_PID" ]] && ! alive "$AGENT_PID" && return 1
    sleep 0.1
  done
  return 1
}

is_agent() { [[ "$(cat "/proc/$AGENT_PID/comm" 2>/dev/null)" == portvigil ]]; }

# A process that runs (kill -0 also succeeds on a zombie child not yet waited for).
alive() { # pid
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# ---------------------------------------------------------------------------------------------
# The lab, the loss, the config
lab_up() {
  local largs=(--tcp-open "$TCP_OPEN" --tcp-drop "$TCP_DROP" --tcp-reject "$TCP_REJECT")
  [[ -n "$LISTENER" ]] && largs+=(--listener "$LISTENER")
  LAB_UP=1
  "$LAB" up --name "$NAME" --dir "$WORK/lab" "${largs[@]}" >&2
  [[ -n "$LISTENER" ]] || LISTENER="$WORK/lab/lab_listener"
  ((LOSS > 0)) || return 0
  local hook table="table netdev pvloss {"$'\n'
  for hook in ingress egress; do
    table+="  chain $hook {"$'\n'
    table+="    type filter hook $hook device \"$TARGET_IF\" priority -500; policy accept;"$'\n'
    table+="    counter"$'\n'"    numgen random mod 100 < $LOSS counter drop"$'\n'"  }"$'\n'
  done
  printf '%s}\n' "$table" >"$WORK/loss.nft"
  ip netns exec "$TARGET_NS" nft -f "$WORK/loss.nft" || die "cannot add the loss rules"
}

write_config() {
  local expected="" p
  IFS=, read -ra open <<<"$TCP_OPEN"
  for p in "${open[@]}"; do expected+="${expected:+, }\"$p/tcp\""; done
  cat >"$CONFIG" <<EOF
[agent]
state-dir = "$STATE"
log-level = "info"

[[authorization]]
networks = ["198.18.0.0/24", "2001:db8::/64"]
owner = "agent_soak.sh"
ticket = "lab only"

[[job]]
name = "$JOB"
targets = ["$TARGET4", "$TARGET6"]
ports = "$PORTS"
technique = "$TECHNIQUE"
interval = "${INTERVAL}s"
confirmations = $CONFIRMATIONS
expected-open = [$expected]
EOF
  "$BINARY" check-config "$CONFIG" >&2 || die "check-config rejected $CONFIG"
}

# ---------------------------------------------------------------------------------------------
# The agent
AGENT_STARTS=0
start_agent() { # $1 = why (start, restart, respawn)
  local before t0 t1
  before=$(count_in_log "portvigil agent started")
  now_ms
  t0=$NOW
  AGENT_STARTS=$((AGENT_STARTS + 1))
  echo "=== agent_soak: agent start #$AGENT_STARTS ($1) at $(date -u +%FT%TZ)" >>"$AGENT_LOG"
  # lab.sh exec and ip netns exec both exec: $! becomes the agent's pid.
  "$LAB" exec --name "$NAME" -- "$BINARY" agent --config "$CONFIG" --state-dir "$STATE" \
    </dev/null >>"$AGENT_OUT" 2>>"$AGENT_LOG" &
  AGENT_PID=$!
  if ! wait_log_count "portvigil agent started" "$before" 30 || ! is_agent; then
    tail -20 "$AGENT_LOG" >&2
    die "the agent did not start (pid $AGENT_PID)"
  fi
  now_ms
  t1=$NOW
  truth "$t0" "$t1" "$1" - - -
}

KILLS=0
kill_agent() {
  local t0 t1
  is_agent || die "pid $AGENT_PID is not the agent"
  now_ms
  t0=$NOW
  kill -KILL "$AGENT_PID"
  wait "$AGENT_PID" 2>/dev/null || true
  now_ms
  t1=$NOW
  truth "$t0" "$t1" kill - - -
  echo "=== agent_soak: SIGKILL at $(date -u +%FT%TZ)" >>"$AGENT_LOG"
  KILLS=$((KILLS + 1))
  say "kill -9 #$KILLS, restarting"
  start_agent restart
}

HUPS=0
HUPS_OK=0
hup_agent() {
  local before t0 t1
  ((HUPS % 2 == 1)) && {
    bad_hup_agent
    return
  }
  is_agent || die "pid $AGENT_PID is not the agent"
  before=$(count_in_log "SIGHUP: configuration reloaded")
  now_ms
  t0=$NOW
  kill -HUP "$AGENT_PID"
  HUPS=$((HUPS + 1))
  if wait_log_count "SIGHUP: configuration reloaded" "$before" 10; then
    HUPS_OK=$((HUPS_OK + 1))
  else
    FAILURES+=("SIGHUP #$HUPS: no 'configuration reloaded' within 10 s")
    say "SIGHUP #$HUPS: not reloaded within 10 s"
  fi
  now_ms
  t1=$NOW
  truth "$t0" "$t1" hup - - -
}

# A broken config file, one of four kinds in turn, in place of the good one.
BAD_HUPS=0
BAD_HUPS_OK=0
write_bad_config() { # kind number
  local kind=$(($1 % 4))
  case $kind in
    0) { cat "$CONFIG"; printf '[[job]\nname = "half\n'; } ;;                 # syntax error
    1) sed 's/^confirmations = /confirmation = /' "$CONFIG" ;;                # unknown key
    2) sed 's#^targets = \[#targets = ["198.18.1.2", #' "$CONFIG" ;;         # outside the scope
    3) sed 's/^interval = .*/interval = "2 parsecs"/' "$CONFIG" ;;            # bad value
  esac >"$CONFIG.bad"
  cmp -s "$CONFIG" "$CONFIG.bad" && die "bad config kind $kind did not change the file"
  if "$BINARY" check-config "$CONFIG.bad" >/dev/null 2>&1; then
    die "bad config kind $kind passes check-config"
  fi
}

bad_hup_agent() {
  local before reloaded t0 t1
  is_agent || die "pid $AGENT_PID is not the agent"
  BAD_HUPS=$((BAD_HUPS + 1))
  write_bad_config "$BAD_HUPS"
  cp "$CONFIG" "$CONFIG.good"
  mv -f "$CONFIG.bad" "$CONFIG"
  before=$(count_in_log "SIGHUP: reload failed, keeping the running configuration")
  reloaded=$(count_in_log "SIGHUP: configuration reloaded")
  now_ms
  t0=$NOW
  kill -HUP "$AGENT_PID"
  HUPS=$((HUPS + 1))
  if wait_log_count "SIGHUP: reload failed, keeping the running configuration" "$before" 10 &&
    (($(count_in_log "SIGHUP: configuration reloaded") == reloaded)); then
    BAD_HUPS_OK=$((BAD_HUPS_OK + 1))
  else
    FAILURES+=("SIGHUP #$HUPS (broken file, kind $((BAD_HUPS % 4))): not rejected within 10 s")
    say "SIGHUP #$HUPS: the broken file was not rejected within 10 s"
  fi
  mv -f "$CONFIG.good" "$CONFIG"
  now_ms
  t1=$NOW
  truth "$t0" "$t1" badhup - - -
}

RESPAWNS=0
check_alive() {
  alive "$AGENT_PID" && return 0
  local rc=0
  wait "$AGENT_PID" 2>/dev/null || rc=$?
  RESPAWNS=$((RESPAWNS + 1))
  FAILURES+=("the agent exited on its own (status $rc); restarted")
  say "the agent exited on its own (status $rc): restarting"
  tail -5 "$AGENT_LOG" >&2
  start_agent respawn
}

# ---------------------------------------------------------------------------------------------
# The changes
TOGGLES=0
toggle() {
  local port=${SPARE[$((TOGGLES % ${#SPARE[@]}))]} t0 t1 pid i
  TOGGLES=$((TOGGLES + 1))
  now_ms
  t0=$NOW
  if [[ -n "${LPID[$port]:-}" ]]; then
    kill -TERM "${LPID[$port]}"
    wait "${LPID[$port]}" 2>/dev/null || true
    unset "LPID[$port]"
    now_ms
    t1=$NOW
    truth "$t0" "$t1" toggle "$port" open closed
    say "toggle #$TOGGLES: $port open -> closed"
  else
    # A fresh file per listener: a stale "ready" of the port's previous listener must not
    # be taken for this one's. ip netns exec execs: $! is the listener's pid.
    local out="$WORK/listeners/$port-$TOGGLES"
    mkdir -p "$WORK/listeners"
    ip netns exec "$TARGET_NS" "$LISTENER" --tcp "$port" </dev/null >"$out.out" 2>"$out.err" &
    pid=$!
    LPID[$port]=$pid
    for ((i = 0; i < 200; i++)); do
      grep -qx ready "$out.out" 2>/dev/null && break
      alive "$pid" || die "listener on $port died: $(cat "$out.err")"
      sleep 0.05
    done
    grep -qx ready "$out.out" 2>/dev/null || die "listener on $port not ready after 10 s"
    now_ms
    t1=$NOW
    truth "$t0" "$t1" toggle "$port" closed open
    say "toggle #$TOGGLES: $port closed -> open"
  fi
}

# ---------------------------------------------------------------------------------------------
lab_up
write_config
for k in 0 1 2 3; do # each broken file must really be broken before the run relies on it
  write_bad_config "$k"
done
rm -f "$CONFIG.bad"
printf 'start_ms\tend_ms\twhat\tport\tfrom\tto\n' >"$TRUTH"
: >"$AGENT_LOG"
: >"$AGENT_OUT"
say "lab $NAME up; loss $LOSS %, technique $TECHNIQUE, duration ${DURATION}s, max delay ${MAX_DELAY}s; work dir $WORK"

now_ms
T_START=$NOW
start_agent start
# The silent baseline: wait for the first complete scan before changing anything.
for ((i = 0; i < 1200; i++)); do
  (($(count_re_in_log "job $JOB: scan [0-9]+ complete") > 0)) && break
  alive "$AGENT_PID" || die "the agent exited: $(tail -5 "$AGENT_LOG")"
  sleep 0.1
done
(($(count_re_in_log "job $JOB: scan [0-9]+ complete") > 0)) || die "no complete scan within 120 s"
sleep $((2 * INTERVAL))

END_MS=$((T_START + DURATION * 1000))
# Toggles stop early enough for their events to arrive before the end.
LAST_TOGGLE_MS=$((END_MS - (MAX_DELAY + 2 * INTERVAL) * 1000))
now_ms
now=$NOW
NEXT_TOGGLE=$now
NEXT_KILL_DUE=$((T_START + KILL_EVERY * 1000))
KILL_AT=0
NEXT_HUP=$((T_START + (HUP_EVERY / 2 + RANDOM % (HUP_EVERY / 2)) * 1000))

while :; do
  now_ms
  now=$NOW
  ((now >= END_MS)) && break
  check_alive
  if ((now >= NEXT_TOGGLE && now <= LAST_TOGGLE_MS)); then
    toggle
    NEXT_TOGGLE=$((NEXT_TOGGLE + TOGGLE_EVERY * 1000))
    if ((KILL_AT == 0 && now >= NEXT_KILL_DUE)); then
      KILL_AT=$((now + 500 + RANDOM % 3500)) # 0.5-4 s after this toggle
      NEXT_KILL_DUE=$((NEXT_KILL_DUE + KILL_EVERY * 1000))
    fi
  elif ((KILL_AT > 0 && now >= KILL_AT)); then
    kill_agent
    KILL_AT=0
  elif ((now >= NEXT_HUP)); then
    say "SIGHUP #$((HUPS + 1))$( ((HUPS % 2 == 1)) && echo ' (broken file)')"
    hup_agent
    NEXT_HUP=$((now + (HUP_EVERY / 2 + RANDOM % HUP_EVERY) * 1000))
  fi
  sleep 0.2
done

# ---------------------------------------------------------------------------------------------
# Stop: SIGTERM right after a completed scan (a scan cut short is recorded incomplete).
check_alive
before=$(count_re_in_log "job $JOB: scan [0-9]+ complete")
for ((i = 0; i < 300; i++)); do
  (($(count_re_in_log "job $JOB: scan [0-9]+ complete") > before)) && break
  sleep 0.05
done
is_agent || die "pid $AGENT_PID is not the agent"
now_ms
t_term=$NOW
kill -TERM "$AGENT_PID"
TERM_OK=0
for ((i = 0; i < 50; i++)); do
  alive "$AGENT_PID" || break
  sleep 0.1
done
if alive "$AGENT_PID"; then
  FAILURES+=("the agent still ran 5 s after SIGTERM (killed)")
  kill -KILL "$AGENT_PID"
fi
TERM_RC=0
wait "$AGENT_PID" 2>/dev/null || TERM_RC=$?
now_ms
t_gone=$NOW
AGENT_PID=""
TERM_S=$(awk -v a="$t_term" -v b="$t_gone" 'BEGIN { printf "%.2f", (b - a) / 1000 }')
if ((TERM_RC == 0)) && ((t_gone - t_term <= 5000)); then
  TERM_OK=1
else
  FAILURES+=("SIGTERM: exit status $TERM_RC after ${TERM_S}s (want 0 within 5 s)")
fi
truth "$t_term" "$t_gone" sigterm - - "$TERM_RC"
now_ms
T_END=$NOW

"$BINARY" status --json --state-dir "$STATE" >"$WORK/status.txt" 2>&1 || FAILURES+=("portvigil status failed")
"$BINARY" changes --state-dir "$STATE" --since 30d --json >"$WORK/changes.jsonl" 2>"$WORK/changes.err" ||
  FAILURES+=("portvigil changes --json failed")
LOSS_COUNTERS="none"
if ((LOSS > 0)); then
  LOSS_COUNTERS=$(ip netns exec "$TARGET_NS" nft list table netdev pvloss |
    grep -o 'counter packets [0-9]*' | awk '{print $3}' | paste -sd' ')
fi
for f in "${FAILURES[@]}"; do echo "$f"; done >"$WORK/failures.txt"

# ---------------------------------------------------------------------------------------------
# The check
RC=0
python3 - "$WORK" "$JOB" "$TARGET4,$TARGET6" "$MAX_DELAY" "$T_START" "$T_END" "$KILLS" \
  "$HUPS" "$HUPS_OK" "$RESPAWNS" "$TERM_OK" "$TERM_S" "$LOSS_COUNTERS" "$LOSS" "$TECHNIQUE" \
  "$DURATION" "$TOGGLE_EVERY" "$BAD_HUPS" "$BAD_HUPS_OK" <<'EOF' || RC=$?
import datetime, json, re, sys

(work, job, hosts, max_delay, t_start, t_end, kills, hups, hups_ok, respawns, term_ok, term_s,
 loss_counters, loss, technique, duration, toggle_every, bad_hups, bad_hups_ok) = sys.argv[1:]
hosts = hosts.split(",")
max_delay_ms = int(max_delay) * 1000
t_start, t_end = int(t_start), int(t_end)
failures = [l.strip() for l in open(f"{work}/failures.txt") if l.strip()]

def ms_of(iso):
    d = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return round(d.timestamp() * 1000)

def hms(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]

# Ground truth
rows = [l.rstrip("\n").split("\t") for l in open(f"{work}/truth.tsv")][1:]
toggles, kills_at, restarts = [], [], []
for r in rows:
    s, e, what = int(r[0]), int(r[1]), r[2]
    if what == "toggle":
        toggles.append({"start": s, "end": e, "port": int(r[3]), "from": r[4], "to": r[5]})
    elif what == "kill":
        kills_at.append(s)
    elif what in ("restart", "respawn"):
        restarts.append(e)

def deadline(t):
    d = t["end"] + max_delay_ms
    changed = True
    while changed:  # a kill inside the window: the window restarts after the restart
        changed = False
        for k in kills_at:
            if t["start"] <= k <= d:
                r = min((x for x in restarts if x >= k), default=None)
                if r is not None and r + max_delay_ms > d:
                    d, changed = r + max_delay_ms, True
    return d

for t in toggles:
    t["deadline"] = deadline(t)

# Events
lines = [l for l in open(f"{work}/state/events.jsonl").read().splitlines() if l.strip()]
events, bad_lines = [], 0
for l in lines:
    try:
        e = json.loads(l)
        e["_ms"] = ms_of(e["time"])
        e["_line"] = l
        events.append(e)
    except Exception as x:
        bad_lines += 1
        print(f"unparsable event line ({x}): {l}")
ids = [e["id"] for e in events]
id_problems = [f"id {b} after {a}" for a, b in zip(ids, ids[1:]) if b <= a]
dups = len(ids) - len(set(ids))

# Match: each event to the one toggle of its host/port whose window [start, deadline] holds
# its time and whose direction it has.
matched = {}  # (toggle index, host) -> event
false_events, late, delays, wrong_flag = [], [], [], []
for e in events:
    cand = None
    if e.get("job") == job and e.get("proto") == "tcp" and e.get("host") in hosts:
        for i, t in enumerate(toggles):
            if (t["port"] == e.get("port") and t["from"] == e.get("from") and t["to"] == e.get("to")
                    and t["start"] <= e["_ms"] <= t["deadline"]):
                cand = i
                break
    if cand is None or (cand, e["host"]) in matched:
        why = "duplicate" if cand is not None else "no change"
        if cand is None:
            for t in toggles:  # a late event of a real change?
                if (t["port"] == e.get("port") and t["from"] == e.get("from")
                        and t["to"] == e.get("to") and e["_ms"] > t["deadline"]
                        and e["_ms"] - t["start"] < 4 * max_delay_ms):
                    why = f"late: {(e['_ms'] - t['start']) / 1000:.1f}s after the toggle at {hms(t['start'])}"
                    late.append(e)
                    break
        false_events.append((why, e))
        continue
    matched[(cand, e["host"])] = e
    t = toggles[cand]
    delays.append((e["_ms"] - t["start"], t, e))
    if e.get("expected") != (t["to"] != "open"):
        wrong_flag.append(e)

missing = [(t, h) for i, t in enumerate(toggles) for h in hosts if (i, h) not in matched]

# changes --json lists the same events
changes = {l for l in open(f"{work}/changes.jsonl").read().splitlines() if l.strip()}
changes_agree = changes == set(lines)

# The agent log
log = open(f"{work}/agent.log", errors="replace").read()
complete = len(re.findall(rf"job {re.escape(job)}: scan [0-9]+ complete", log))
incomplete = len(re.findall(rf"job {re.escape(job)}: scan [0-9]+ incomplete", log))
inconclusive = len(re.findall(r"inconclusive, not compared", log))
seen = sum(int(a) for a, b in re.findall(r"([0-9]+) changes seen, ([0-9]+) not confirmed", log))
unconfirmed = sum(int(b) for a, b in re.findall(r"([0-9]+) changes seen, ([0-9]+) not confirmed", log))
# The broken files of the bad reloads are logged as errors on purpose: counted, not listed.
rejected = [l for l in log.splitlines() if re.match(r"\S+ error +SIGHUP: reload failed", l)]
errors = [l for l in log.splitlines() if re.match(r"\S+ error ", l) and l not in rejected]
resumed = re.findall(r"event log was missing ([0-9]+) committed events", log)

status = open(f"{work}/status.txt").read()
status_rows = [json.loads(l) for l in status.splitlines() if l.startswith("{")]
status_ok = any(r.get("job") == job and r.get("status") == "complete" and
                r.get("hosts_complete") == r.get("hosts_total") == len(hosts) for r in status_rows)

# Report
def show(e):
    return "    " + e["_line"]
print()
print(f"== agent soak: {work}")
if false_events:
    print(f"FALSE events ({len(false_events)}):")
    for why, e in false_events:
        print(f"  [{why}]")
        print(show(e))
        for l in log.splitlines():  # what the agent logged about that scan
            if re.search(rf": scan {e.get('scan_id')} ", l):
                print("      log: " + l)
if missing:
    print(f"MISSING events ({len(missing)}):")
    for t, h in missing:
        print(f"  {h} tcp/{t['port']} {t['from']} -> {t['to']}: toggle at {hms(t['start'])}, deadline {hms(t['deadline'])}")
if wrong_flag:
    print(f"wrong 'expected' flag ({len(wrong_flag)}):")
    for e in wrong_flag:
        print(show(e))
if id_problems or dups:
    print(f"event ids: {dups} duplicates; not increasing: {', '.join(id_problems[:10])}")
if not changes_agree:
    print(f"portvigil changes --json: {len(changes)} lines, events.jsonl: {len(lines)} "
          f"(only in changes: {len(changes - set(lines))}, only in events.jsonl: {len(set(lines) - changes)})")
if not status_ok:
    print("portvigil status does not show a complete last scan of every host:\n" + status)
if errors:
    print(f"agent errors logged ({len(errors)}):")
    for l in errors[:20]:
        print("    " + l)
for f in failures:
    print("FAILURE: " + f)

max_delay_seen = max(delays, key=lambda d: d[0]) if delays else None
elapsed = (t_end - t_start) / 1000
rows = [
    ("date (UTC)", datetime.datetime.fromtimestamp(t_start / 1000, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")),
    ("technique, loss", f"{technique}, {loss} % each way" + (f" (dropped {loss_counters.split()[1]}/{loss_counters.split()[0]} in, {loss_counters.split()[3]}/{loss_counters.split()[2]} out)" if len(loss_counters.split()) == 4 else "")),
    ("duration", f"{elapsed:.0f} s"),
    ("scans complete / incomplete (≈ cycles)", f"{complete} / {incomplete}"),
    ("inconclusive host scans (not compared)", str(inconclusive)),
    ("changes seen / not confirmed (log)", f"{seen} / {unconfirmed}"),
    ("toggles (every %s s)" % toggle_every, str(len(toggles))),
    ("expected events", str(len(toggles) * len(hosts))),
    ("events seen", str(len(events))),
    ("false events", str(len(false_events))),
    ("missing events", str(len(missing))),
    ("late events (among false)", str(len(late))),
    ("wrong expected flag", str(len(wrong_flag))),
    ("kills survived (kill -9, restart)", f"{kills}" + (f" (events resumed at restart: {sum(map(int, resumed))})" if resumed else "")),
    ("agent exits on its own", respawns),
    ("SIGHUP reloads ok (unchanged file)", f"{hups_ok}/{int(hups) - int(bad_hups)}"),
    ("SIGHUP broken file rejected, old config kept", f"{bad_hups_ok}/{bad_hups} (log: {len(rejected)})"),
    ("event delay max / median", (f"{max_delay_seen[0] / 1000:.2f} s / {sorted(d[0] for d in delays)[len(delays) // 2] / 1000:.2f} s (bound {max_delay} s)" if delays else "-")),
    ("ids increasing, no duplicates", "yes" if not (id_problems or dups or bad_lines) else "NO"),
    ("changes --json = events.jsonl", "yes" if changes_agree else "NO"),
    ("status: last scan complete", "yes" if status_ok else "NO"),
    ("SIGTERM: exit 0 within 5 s", f"yes ({term_s} s)" if term_ok == "1" else f"NO ({term_s} s)"),
]
table = "| measure | value |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
open(f"{work}/summary.md", "w").write(table)
print()
print(table, end="")
bad = (false_events or missing or wrong_flag or id_problems or dups or bad_lines or not changes_agree
       or not status_ok or failures or term_ok != "1")
print("\nRESULT: " + ("FAIL" if bad else "PASS"))
sys.exit(1 if bad else 0)
EOF
exit "$RC"
