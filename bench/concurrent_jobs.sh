#!/usr/bin/env bash
# Two jobs in one agent: concurrently (max-concurrent-jobs = 2) against one after the other
# (max-concurrent-jobs = 1), with the agent's max-rate measured at the target. Not part of
# ctest: an engineer runs it (as root).
#
#   bench/concurrent_jobs.sh [--binary PATH] [--listener PATH] [--runs N] [--ports N]
#
# Lab (tests/lab/lab.sh, no route out): the target answers on 198.18.0.2 and 198.18.0.3;
# TCP 22, 80, 443 are open, ports 1000-1999 are dropped (filtered: the waits that concurrency
# overlaps), the rest closed. The agent runs in the scanner namespace with two SYN jobs, one
# per address, each over ports 1-N (default 2000) with its own max-rate 1000, under the
# agent's max-rate 2000 (the sum: the cap binds whenever both send at full speed).
# Per run, alternating the two modes (A B A B):
#
#   * span: from the first job's start to the last one's end, as the database records them
#     (the first scan of each job; interval 1h, so each runs once)
#   * the most SYNs the target received in any 1 s window and in any 100 ms window,
#     counted by a packet socket in the target namespace (what the cap promises: at most
#     max-rate per second plus a 10 ms burst)
#
# Then nmap as a peer, one run over both addresses with --max-rate 2000, in the same lab.
# Prints a markdown table with medians and the concurrent/sequential ratio (the issue asks
# for <= 0.60). The work directory is removed on exit.
set -uo pipefail

PROG=concurrent_jobs
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/bench_lib.sh
source "$HERE/bench_lib.sh"

binary=$HERE/../build/agent/portvigil
listener=()
runs=3
ports=2000
while (($#)); do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --listener) listener=(--listener "$2"); shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --ports) ports=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) bench_die "unknown argument '$1'" ;;
  esac
done
[[ -x $binary ]] || bench_die "no portvigil binary at $binary (--binary)"
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
((ports >= 2000 && ports <= 65535)) || bench_die "--ports must be 2000-65535"
((runs >= 1 && runs <= 20)) || bench_die "--runs must be 1-20"
command -v nmap >/dev/null || bench_die "nmap is not installed"

bench_init
bench_lab_up --tcp-open 22,80,443 --tcp-drop 1000-1999 --extra-target 198.18.0.3 "${listener[@]}"

# sniff OUT: counts TCP SYNs (no ACK) toward the target, until killed; writes the arrival
# times (seconds, one per line) to OUT when it gets SIGTERM.
sniff_start() {
  ip netns exec "$TARGET_NS" python3 - "$TARGET_IF" "$1" <<'PY' &
import signal, socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((sys.argv[1], 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
times = []
def done(*_):
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(f"{t:.6f}" for t in times))
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
while True:
    frame, addr = s.recvfrom(2048)
    if addr[2] == socket.PACKET_OUTGOING or len(frame) < 14 + 20 + 14:
        continue
    ip = frame[14:]
    ihl = (ip[0] & 15) * 4
    if ip[9] != 6 or len(ip) < ihl + 14:
        continue
    flags = ip[ihl + 13]
    if flags & 0x02 and not flags & 0x10:
        times.append(time.monotonic())
PY
  SNIFF_PID=$!
  sleep 0.5
}
sniff_stop() {
  kill -TERM "$SNIFF_PID" 2>/dev/null
  wait "$SNIFF_PID" 2>/dev/null
}

# run MODE N: one agent run with max-concurrent-jobs = MODE; appends "mode run span max1s
# max100ms syns" to $WORK/rows.
run_agent() {
  local mode=$1 run=$2 dir=$WORK/agent-$1-$2
  mkdir -p "$dir/state"
  cat >"$dir/portvigil.toml" <<EOF
[agent]
state-dir = "$dir/state"
log-level = "warn"
web-listen-address = ""
max-rate = 2000
max-concurrent-jobs = $mode

[[authorization]]
networks = ["198.18.0.0/24"]

[[job]]
name = "first"
targets = ["198.18.0.2"]
ports = "1-$ports"
technique = "syn"
interval = "1h"
max-rate = 1000
host-discovery = false

[[job]]
name = "second"
targets = ["198.18.0.3"]
ports = "1-$ports"
technique = "syn"
interval = "1h"
max-rate = 1000
host-discovery = false
EOF
  sniff_start "$dir/syns"
  "$LAB" exec --name "$NAME" -- "$binary" agent --config "$dir/portvigil.toml" </dev/null \
    >"$dir/agent.log" 2>&1 &
  local pid=$! t0=$SECONDS
  until python3 - "$dir/state/portvigil.db" <<'PY' 2>/dev/null; do
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
n = c.execute("SELECT count(*) FROM scans WHERE status = 'complete'").fetchone()[0]
sys.exit(0 if n >= 2 else 1)
PY
    ((SECONDS - t0 < 600)) || bench_die "the agent did not finish both jobs (see $dir/agent.log)"
    sleep 0.2
  done
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  sniff_stop
  python3 - "$dir/state/portvigil.db" "$dir/syns" "$mode" "$run" <<'PY' >>"$WORK/rows"
import bisect, sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
start, end = c.execute(
    "SELECT min(started_ms), max(finished_ms) FROM scans WHERE status = 'complete'").fetchone()
t = sorted(float(x) for x in open(sys.argv[2]).read().split())
def most(window):
    return max((bisect.bisect_left(t, x + window) - i for i, x in enumerate(t)), default=0)
print(sys.argv[3], sys.argv[4], (end - start) / 1000, most(1.0), most(0.1), len(t))
PY
  tail -1 "$WORK/rows" | awk '{printf "max-concurrent-jobs=%s run %s: %.2f s, at most %d SYN/s (%d per 100 ms), %d SYNs\n", $1, $2, $3, $4, $5, $6}' >&2
}

for ((r = 1; r <= runs; r++)); do
  run_agent 2 "$r"
  run_agent 1 "$r"
done

# The peer: nmap over both addresses in one run, at the same total rate.
for ((r = 1; r <= runs; r++)); do
  bench_run nmap "$r" -- nmap -sS -Pn -n -p "1-$ports" --max-rate 2000 -oX "$WORK/nmap.xml" \
    198.18.0.2 198.18.0.3
  read -r wall _ <"$WORK/time"
  echo "nmap $r $wall" >>"$WORK/nmap"
  echo "nmap run $r: $wall s" >&2
done

python3 - "$WORK/rows" "$WORK/nmap" "$ports" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
nmap = statistics.median(float(l.split()[2]) for l in open(sys.argv[2]) if l.strip())
def med(mode, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == mode)
conc, seq = med("2", 2), med("1", 2)
worst = lambda col: max(int(r[col]) for r in rows)
print(f"Two SYN jobs of {sys.argv[3]} ports (1 000 of them dropped) on two addresses, "
      f"job max-rate 1000, agent max-rate 2000; medians of {len(rows) // 2} runs each.\n")
print("| run | median span (s) | ratio to one after the other | most SYNs in 1 s (worst run) | most SYNs in 100 ms (worst run) |")
print("|---|---|---|---|---|")
for mode, label in (("2", "concurrent (max-concurrent-jobs = 2)"), ("1", "one after the other (max-concurrent-jobs = 1)")):
    sub = [r for r in rows if r[0] == mode]
    print(f"| {label} | {med(mode, 2):.2f} | {med(mode, 2) / seq:.2f} | "
          f"{max(int(r[3]) for r in sub)} | {max(int(r[4]) for r in sub)} |")
print(f"| nmap -sS --max-rate 2000, both addresses in one run (peer) | {nmap:.2f} | {nmap / seq:.2f} | - | - |")
print(f"\nconcurrent / sequential = {conc / seq:.2f} (issue: <= 0.60); "
      f"concurrent vs nmap: {nmap / conc:.2f}x")
PY
