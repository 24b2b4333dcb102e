#!/usr/bin/env bash
# Service identification benchmark: what `portvigil scan --identify` adds to a connect scan of
# 64 open ports, against nmap -sV on the same ports, in the lab (tests/lab/lab.sh --preset
# connect plus tests/lab/service_servers.py in the target namespace):
#
#   ssh64     64 ports that send an SSH version line at once (the quick case)
#   silent64  64 ports that accept and never send (the slow case: each is held for the whole
#             2.9 s limit, so this is identification's worst case)
#   closed64  64 closed ports: nothing opened, so identification must add nothing
#   agent     the agent itself (`portvigil agent --once`): a job's 64 silent ports, closed at
#             its baseline (an nftables reset in the target namespace), open at the timed
#             run, which identifies all 64 before committing their events; and a run where
#             nothing opened. Each with identify-services = true and = false.
#
#   bench/identify_bench.sh [--binary PATH] [--runs N] [--listener PATH] [--nmap-silent]
#
# PATH defaults to $PORTVIGIL_BINARY. Prints a markdown table (median wall, CPU, peak RSS per
# command; ports are not compared with the truth here, so that column reads "unreadable") and,
# per case, the median time --identify adds. nmap -sV on silent64 runs only with
# --nmap-silent: it took 494 s in one run. Runs the commands in turn so that background load hits all alike. Must run as root.
#
# Needs (Debian packages): iproute2 nftables nmap python3 openssl time, and g++ when no
# --listener is given.
set -euo pipefail

PROG=identify_bench.sh
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/bench_lib.sh
source "$HERE/bench_lib.sh"

binary="${PORTVIGIL_BINARY:-}"
runs=3
listener=()
nmap_silent=0
while (($#)); do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --runs | -n) runs=$2; shift 2 ;;
    --listener) listener=(--listener "$2"); shift 2 ;;
    --nmap-silent) nmap_silent=1; shift ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) bench_die "unknown argument '$1'" ;;
  esac
done
[[ -n "$binary" ]] || bench_die "give --binary PATH or set PORTVIGIL_BINARY"
binary=$(realpath "$binary")
[[ -x "$binary" ]] || bench_die "'$binary' is not executable"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || bench_die "--runs must be a positive number"
command -v openssl >/dev/null || bench_die "'openssl' is not installed"
command -v nmap >/dev/null || bench_die "'nmap' is not installed"

bench_init
bench_lab_up --preset connect "${listener[@]}"
target=198.18.0.2
ssh_ports=21000-21063
silent_ports=20000-20063
# 64 ports the lab's truth calls closed (not open, dropped or rejected).
closed_ports=$(awk -F'\t' '$1 == "tcp" && $2 >= 50000 && $3 == "closed" && n < 64 {print $2; n++}' \
  "$TRUTH" | paste -sd, -)
for range in "$ssh_ports" "$silent_ports"; do
  lo=${range%-*} hi=${range#*-}
  if awk -F'\t' -v lo="$lo" -v hi="$hi" '$1 == "tcp" && $2 >= lo && $2 <= hi && $3 != "closed"' \
    "$TRUTH" | grep -q .; then
    bench_die "the lab preset already uses ports in $range"
  fi
done

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=bench.internal \
  -days 20 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
ip netns exec "$TARGET_NS" python3 "$HERE/../tests/lab/service_servers.py" --dir "$WORK" \
  --cert "$WORK/cert.pem" --key "$WORK/key.pem" --silent "$silent_ports" --ssh "$ssh_ports" \
  >"$WORK/servers.out" 2>"$WORK/servers.err" &
servers=$!
trap 'kill $servers 2>/dev/null || true; wait $servers 2>/dev/null || true; bench_cleanup' EXIT
failed=0
for _ in $(seq 100); do
  grep -q ready "$WORK/servers.out" && break
  sleep 0.1
done
grep -q ready "$WORK/servers.out" || bench_die "service_servers.py did not start: $(cat "$WORK/servers.err")"

for i in $(seq "$runs"); do
  for case in ssh64 silent64 closed64; do
    case $case in
      ssh64) ports=$ssh_ports ;;
      silent64) ports=$silent_ports ;;
      closed64) ports=$closed_ports ;;
    esac
    bench_run "$case-scan" "$i" -- "$binary" scan -sT -p "$ports" -n "$target"
    bench_record "$case-scan" "portvigil scan -sT ($case)" "$i" -1
    bench_run "$case-identify" "$i" -- "$binary" scan -sT --identify -p "$ports" -n "$target"
    if [[ $case != closed64 ]] && ! grep -q VERSION "$WORK/stdout"; then
      echo "    no VERSION column in the --identify output" >&2
      RC=1
      failed=1
    fi
    bench_record "$case-identify" "portvigil scan -sT --identify ($case)" "$i" -1
    [[ $case == silent64 && $nmap_silent == 0 ]] && continue
    bench_run "$case-nmap" "$i" -- nmap -sT -sV -T4 -Pn -n -p "$ports" "$target"
    bench_record "$case-nmap" "nmap -sT -sV -T4 -Pn ($case)" "$i" -1
  done
done

# The agent: one job on the silent ports; the baseline sees them reset, the timed run open.
agent_config() { # $1 = true|false
  cat <<EOF
[agent]
state-dir = "$WORK/agent-state"
log-level = "warn"
web-listen-address = ""
[[authorization]]
networks = ["198.18.0.0/16"]
[[job]]
name = "bench"
targets = ["$target"]
ports = "$silent_ports"
technique = "connect"
interval = "1h"
confirmations = 1
identify-services = $1
EOF
}
for i in $(seq "$runs"); do
  for identify in true false; do
    rm -rf "$WORK/agent-state"
    agent_config "$identify" >"$WORK/agent.toml"
    ip netns exec "$TARGET_NS" nft -f - <<EOF
table inet pvbench {
  chain input {
    type filter hook input priority -10;
    tcp dport $silent_ports reject with tcp reset
  }
}
EOF
    bench_run "agent-baseline" "$i" -- "$binary" agent --once --config "$WORK/agent.toml"
    ((RC == 0)) || bench_die "the agent's baseline run failed: $(tail -3 "$WORK/stderr")"
    ip netns exec "$TARGET_NS" nft delete table inet pvbench
    bench_run "agent-opened-$identify" "$i" -- "$binary" agent --once --config "$WORK/agent.toml"
    opened=$(grep -c '"to":"open"' "$WORK/stdout" || true)
    with_service=$(grep -c '"service":' "$WORK/stdout" || true)
    if ((opened != 64)) || { [[ $identify == true ]] && ((with_service != 64)); }; then
      echo "    expected 64 opened ports$([[ $identify == true ]] && echo ", each with a service");" \
        "got $opened events, $with_service with a service" >&2
      failed=1
    fi
    bench_record "agent-opened-$identify" "agent --once, 64 opened (identify-services = $identify)" "$i" -1
    bench_run "agent-same-$identify" "$i" -- "$binary" agent --once --config "$WORK/agent.toml"
    bench_record "agent-same-$identify" "agent --once, nothing opened (identify-services = $identify)" "$i" -1
  done
done

echo
echo "Service identification, 64 ports of $target per case, $runs runs each;" \
  "$(nproc) CPUs, kernel $(uname -r), $(nmap --version | head -1 | cut -d' ' -f1-3)."
echo
bench_table ssh64-nmap="nmap -sV (ssh64)" silent64-nmap="nmap -sV (silent64)"
echo
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
med = {}
for r in rows:
    med.setdefault(r[0], []).append(float(r[3]))
for case in ("ssh64", "silent64", "closed64"):
    scan = statistics.median(med[case + "-scan"])
    ident = statistics.median(med[case + "-identify"])
    print(f"- {case}: --identify adds {ident - scan:.2f} s (median {scan:.2f} s -> {ident:.2f} s)")
for case, what in (("opened", "64 silent ports opened"), ("same", "nothing opened")):
    off = statistics.median(med[f"agent-{case}-false"])
    on = statistics.median(med[f"agent-{case}-true"])
    print(f"- agent, {what}: identification adds {on - off:.2f} s (median {off:.2f} s -> {on:.2f} s)")
PY
((failed == 0)) || { echo "$PROG: some --identify runs printed no VERSION column, or agent runs missed events or services" >&2; exit 1; }
