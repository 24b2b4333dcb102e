#!/usr/bin/env bash
# Capacity figures for docs/scaling.md: what one agent costs per monitored port. Not part of
# ctest: an engineer runs it (as root).
#
#   bench/fleet_capacity.sh [--binary PATH] [--listener PATH] [--prefix P] [--ports N]
#
# Lab (tests/lab/lab.sh, no route out): 198.19.0.0/16 is live in the target through AnyIP
# (TCP 22, 80, 443 open on every address). The agent runs in the scanner namespace with one
# SYN job over 198.19.0.0/P (default /22: 1 024 hosts) x ports 1-N (default 1000),
# confirmations 2, and a second agent over an eighth of the hosts (/P+3); each is measured
# over its scans:
#
#   * probes per CPU second: portvigil_probes_sent_total / process_cpu_seconds_total of the
#     agent (everything it does: scans, confirmations, database commits, metrics)
#   * resident memory after the scans (process_resident_memory_bytes), for both agents: the
#     difference is the cost of the extra monitored ports
#   * database growth per scan (bytes in use on its pages, read through the WAL) for a quiet scan and for a
#     scan in which 1 % of the hosts change one port (a listener on port N bound to those
#     addresses opens, then closes), and the day's growth at one scan per 15 minutes
#
# Prints a markdown table. The work directory is removed on exit.
set -uo pipefail

PROG=fleet_capacity
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/bench_lib.sh
source "$HERE/bench_lib.sh"

binary=$HERE/../build/agent/portvigil
listener=()
prefix=22
ports=1000
while (($#)); do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --listener) listener=(--listener "$2"); shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --ports) ports=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) bench_die "unknown argument '$1'" ;;
  esac
done
[[ -x $binary ]] || bench_die "no portvigil binary at $binary (--binary)"
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
((prefix >= 16 && prefix <= 26)) || bench_die "--prefix must be 16-26"
hosts=$((1 << (32 - prefix)))
command -v curl >/dev/null || bench_die "curl is not installed"

bench_init
bench_lab_up --tcp-open 22,80,443 "${listener[@]}"
ip -n "$TARGET_NS" route add local 198.19.0.0/16 dev lo
ip -n "$SCAN_NS" route add 198.19.0.0/16 via 198.18.0.2

# addr K -> the K-th address (0-based) of 198.19.0.0/16
addr() { echo "198.19.$(($1 / 256)).$(($1 % 256))"; }

# agent_up NAME PREFIX WEBPORT: starts an agent over 198.19.0.0/PREFIX
agent_up() {
  local dir=$WORK/$1
  mkdir -p "$dir/state"
  cat >"$dir/portvigil.toml" <<EOF
[agent]
state-dir = "$dir/state"
log-level = "warn"
web-listen-address = "127.0.0.1:$3"

[[authorization]]
networks = ["198.19.0.0/16"]

[[job]]
name = "capacity"
targets = ["198.19.0.0/$2"]
ports = "1-$ports"
technique = "syn"
interval = "5s"
confirmations = 2
host-discovery = false
EOF
  "$LAB" exec --name "$NAME" -- "$binary" agent --config "$dir/portvigil.toml" </dev/null \
    >"$dir/agent.log" 2>&1 &
  echo $! >"$dir/pid"
}
agent_down() { kill -TERM "$(cat "$WORK/$1/pid")" 2>/dev/null; wait "$(cat "$WORK/$1/pid")" 2>/dev/null; }

metric() { # WEBPORT NAME -> the value of the first series of NAME
  "$LAB" exec --name "$NAME" -- curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk -v n="$2" '$1 == n || index($1, n "{") == 1 { print $2; exit }'
}
scans_done() { # WEBPORT -> complete scans so far
  local v
  v=$(metric "$1" 'portvigil_scans_total{result="complete",scan_job="capacity"}')
  echo "${v:-0}"
}
wait_scans() { # WEBPORT N: until N complete scans (at most 20 min)
  local t0=$SECONDS
  while (($(scans_done "$1" | cut -d. -f1) < $2)); do
    ((SECONDS - t0 < 1200)) || bench_die "agent on :$1 did not complete $2 scans"
    sleep 0.5
  done
}
db_used() { # NAME -> bytes of the database's pages in use (SQLite's dbstat), through the WAL
  python3 - "$WORK/$1/state/portvigil.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(c.execute("SELECT sum(pgsize - unused) FROM dbstat").fetchone()[0])
PY
}

# ---- the small agent: an eighth of the hosts -------------------------------------------------
small=$((hosts / 8))
agent_up small $((prefix + 3)) 10131
wait_scans 10131 3
small_rss=$(metric 10131 process_resident_memory_bytes)
agent_down small

# ---- the large agent: quiet scans, then 1 % of the hosts change one port --------------------
churn_port=$ports # closed everywhere until the listener below opens it
agent_up large "$prefix" 10132
wait_scans 10132 2
quiet0=$(db_used large)
scans0=$(scans_done 10132 | cut -d. -f1)
wait_scans 10132 $((scans0 + 4))
quiet1=$(db_used large)
scans1=$(scans_done 10132 | cut -d. -f1)
churn_hosts=$(((hosts + 99) / 100))
churn_addrs=()
for ((k = 0; k < churn_hosts; k++)); do churn_addrs+=("$(addr $((1 + k * 97 % (hosts - 2))))"); done
ip netns exec "$TARGET_NS" python3 - "$churn_port" "${churn_addrs[@]}" <<'PY' >"$WORK/churn.log" 2>&1 &
import selectors, socket, sys
sel = selectors.DefaultSelector()
for a in sys.argv[2:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a, int(sys.argv[1]))); s.listen(64); s.setblocking(False); sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        try:
            c, _ = key.fileobj.accept(); c.close()
        except BlockingIOError:
            pass
PY
churn_pid=$!
n=$(scans_done 10132 | cut -d. -f1)
wait_scans 10132 $((n + 2)) # the first may have started before the listener
kill "$churn_pid" 2>/dev/null
wait "$churn_pid" 2>/dev/null
n=$(scans_done 10132 | cut -d. -f1)
wait_scans 10132 $((n + 2))
closed=$(db_used large)
scans2=$(scans_done 10132 | cut -d. -f1)
large_rss=$(metric 10132 process_resident_memory_bytes)
probes=$(metric 10132 'portvigil_probes_sent_total{scan_job="capacity"}')
cpu=$(metric 10132 process_cpu_seconds_total)
duration_sum=$(metric 10132 'portvigil_scan_duration_seconds_sum{scan_job="capacity"}')
duration_count=$(metric 10132 'portvigil_scan_duration_seconds_count{scan_job="capacity"}')
events=$(wc -l <"$WORK/large/state/events.jsonl" 2>/dev/null || echo 0)
agent_down large

python3 - "$hosts" "$ports" "$small" "$small_rss" "$large_rss" "$probes" "$cpu" "$quiet0" \
  "$quiet1" "$closed" "$duration_sum" "$duration_count" "$events" "$churn_hosts" \
  "$scans0" "$scans1" "$scans2" <<'PY'
import sys
(hosts, ports, small, small_rss, large_rss, probes, cpu, q0, q1, closed, dsum, dcount, events,
 churn, s0, s1, s2) = (float(x or 0) for x in sys.argv[1:])
mib = 1024 * 1024
quiet = (q1 - q0) / (s1 - s0)
changes = 2 * churn  # each changed host opened the port and closed it again
per_change = ((closed - q1) - (s2 - s1) * quiet) / changes
churn_scan = quiet + churn * per_change
print("| figure | value |")
print("|---|---|")
print(f"| monitored ports (hosts x ports) | {hosts:,.0f} x {ports:,.0f} = {hosts * ports:,.0f} |")
print(f"| probes per CPU second (agent total: scans, confirmations, commits) | {probes / cpu:,.0f} |")
print(f"| mean scan duration | {dsum / dcount:.1f} s |")
print(f"| resident memory, {small * ports:,.0f} ports / {hosts * ports:,.0f} ports | {small_rss / mib:.1f} MiB / {large_rss / mib:.1f} MiB |")
print(f"| resident memory per 100 000 more monitored ports | {(large_rss - small_rss) / ((hosts - small) * ports / 1e5) / mib:.2f} MiB |")
print(f"| database after the first baseline | {q0 / mib:.2f} MiB |")
print(f"| database growth per quiet scan | {quiet / 1024:.1f} KiB |")
print(f"| database growth per port change (transition + event) | {per_change:.0f} bytes |")
print(f"| database growth per scan with 1 % of the hosts changing a port ({churn:.0f}) | {churn_scan / 1024:.1f} KiB |")
print(f"| database growth per day, one scan per 15 min, 1 % churn | {96 * churn_scan / mib:.1f} MiB |")
print(f"| events written ({churn:.0f} hosts opened and closed port {ports:.0f}) | {events:.0f} |")
PY
