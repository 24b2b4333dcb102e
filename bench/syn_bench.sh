#!/usr/bin/env bash
# SYN-scan benchmark: all 65 535 TCP ports of the lab target (tests/lab/lab.sh --preset connect:
# 200 open, 5 000 dropped, 4 000 rejected with ICMP admin-prohibited, the rest closed), every
# tool running inside the lab's scanner namespace, which has no route out.
#
#   bench/syn_bench.sh [--binary PATH] [--runs N] [--family 4|6] [--listener PATH]
#                      [--no-nmap] [--no-masscan] [--keep-icmp-ratelimit]
#                      [--ports SPEC] [--filtered] [--baseline PATH]
#
# --ports SPEC scans those ports instead of all 65 535, in every row. --filtered makes the
# target drop every TCP packet (a firewalled host: every port filtered, no RTT sample, so
# every probe is sent three times); nmap needs about 40 s per 2 000 such ports, so give it a
# --ports range or --no-nmap. --baseline PATH adds a row for another portvigil binary (an
# earlier build) at the default rate, and a ratio column against it.
#
# --keep-icmp-ratelimit leaves the kernel's default ICMP rate limits in the target (a burst
# of 6 errors, then one a second), so most of the 4 000 rejected ports fall silent: they are
# filtered either way, but a scanner that waits on them pays for it.
#
# Rows: portvigil -sS at its default rate and at --max-rate 1000000, nmap -sS -T4, and (IPv4
# only) masscan 1.3.2 at --rate 1000000 and --rate 100000. PATH defaults to $PORTVIGIL_BINARY.
# Prints a markdown table: median wall time, CPU time (user+sys) and peak RSS per command, the
# worst run's number of ports that disagree with the lab's truth, and the speed ratio against
# nmap and masscan (their median wall time / the row's; >1 = faster). Runs alternate between
# the commands so that background load hits all alike. Must run as root.
#
# Accuracy: portvigil and nmap are compared on every port (open, closed, filtered). masscan
# reports only open and (with --show closed) closed ports: its count is the open and closed
# ports it failed to report plus any port it reported in the wrong state; not reporting a
# filtered port is right.
#
# masscan 1.3.2 needs the link parameters (--interface --adapter-ip --adapter-mac --router-mac,
# the router being the target itself), prints closed ports only with --show closed, and never
# exits when nothing arrives on the interface, so a trickle of packets from the target runs
# during its scans and it runs under timeout -k. --wait 1 (seconds after the last probe) is its
# shortest useful wait; --noreset keeps it from answering RSTs, which costs it replies.
#
# Needs (Debian packages): iproute2 nftables nmap masscan python3 time coreutils, and g++ when
# no --listener is given (lab.sh then compiles tests/lab/lab_listener.cpp).
set -euo pipefail

PROG=syn_bench.sh
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/bench_lib.sh
source "$HERE/bench_lib.sh"

binary="${PORTVIGIL_BINARY:-}"
runs=3
family=4
listener=()
do_nmap=1
do_masscan=1
keep_rl=()
ports=-
filtered=0
baseline=
while (($#)); do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --runs | -n) runs=$2; shift 2 ;;
    --family) family=$2; shift 2 ;;
    --listener) listener=(--listener "$2"); shift 2 ;;
    --no-nmap) do_nmap=0; shift ;;
    --no-masscan) do_masscan=0; shift ;;
    --keep-icmp-ratelimit) keep_rl=(--keep-icmp-ratelimit); shift ;;
    --ports) ports=$2; shift 2 ;;
    --filtered) filtered=1; shift ;;
    --baseline) baseline=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) bench_die "unknown argument '$1'" ;;
  esac
done
[[ -n "$binary" ]] || bench_die "give --binary PATH or set PORTVIGIL_BINARY"
binary=$(realpath "$binary")
[[ -x "$binary" ]] || bench_die "'$binary' is not executable"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || bench_die "--runs must be a positive number"
[[ $family == 4 || $family == 6 ]] || bench_die "--family must be 4 or 6"
[[ "$ports" == - || "$ports" =~ ^[0-9][0-9,-]*$ ]] || bench_die "--ports takes numbers, - and ,"
if [[ -n "$baseline" ]]; then
  baseline=$(realpath "$baseline")
  [[ -x "$baseline" ]] || bench_die "--baseline '$baseline' is not executable"
fi
if ((do_nmap)); then command -v nmap >/dev/null || bench_die "nmap is not installed (or --no-nmap)"; fi
if [[ $family == 6 ]]; then do_masscan=0; fi # masscan 1.3.2: IPv4 here
if ((do_masscan)); then
  command -v masscan >/dev/null || bench_die "masscan is not installed (or --no-masscan)"
fi

bench_init
bench_lab_up --preset connect "${keep_rl[@]}" "${listener[@]}"

target=198.18.0.2
nmap6=()
if [[ $family == 6 ]]; then
  target=2001:db8::2
  nmap6=(-6)
fi
if ((filtered)); then
  ip netns exec "$TARGET_NS" nft insert rule inet pvlab input meta l4proto tcp drop
  awk -F'\t' -v OFS='\t' '$1 == "tcp" { $3 = "filtered" } { print }' "$TRUTH" >"$TRUTH.new"
  mv "$TRUTH.new" "$TRUTH"
fi
# Ports as nmap, portvigil and compare.py take them; masscan's -p needs a range.
port_arg=$ports
compare_ports=
masscan_ports=1-65535
if [[ $ports != - ]]; then
  compare_ports=$ports
  masscan_ports=$ports
fi
scan_mac=$(bench_mac "$SCAN_NS" "$SCAN_IF")
target_mac=$(bench_mac "$TARGET_NS" "$TARGET_IF")

# Wrong ports in a masscan -oL file: open/closed ports missing or in the wrong state.
masscan_wrong() { # $1 = -oL file
  python3 - "$TRUTH" "$1" "$target" <<'EOF' 2>&1 || echo -1
import sys
truth = {}
for line in open(sys.argv[1]):
    proto, port, state = line.split()
    if proto == "tcp":
        truth[int(port)] = state
got = {}
for line in open(sys.argv[2]):
    f = line.split()
    if len(f) >= 4 and not line.startswith("#") and f[1] == "tcp" and f[3] == sys.argv[3]:
        got.setdefault(int(f[2]), set()).add(f[0])
wrong = 0
for port, want in truth.items():
    states = got.get(port, set())
    if want in ("open", "closed"):
        wrong += states != {want}
    else:
        wrong += bool(states)
print(wrong)
EOF
}

one_run() { # $1 = row, $2 = run
  local row=$1 i=$2 wrong
  case $row in
    pv-default | pv-baseline)
      local bin=$binary name=portvigil
      [[ $row == pv-baseline ]] && bin=$baseline name="portvigil (baseline)"
      bench_run "$row" "$i" -- "$bin" scan -sS "-p$port_arg" -n "$target" -oJ "$WORK/pv.json"
      wrong=$(bench_wrong --portvigil-json "$WORK/pv.json" "$target" tcp "$compare_ports")
      bench_record "$row" "$name scan -sS -p$port_arg -n" "$i" "$wrong"
      ;;
    pv-1m)
      bench_run "$row" "$i" -- "$binary" scan -sS "-p$port_arg" -n --max-rate 1000000 \
        "$target" -oJ "$WORK/pv.json"
      wrong=$(bench_wrong --portvigil-json "$WORK/pv.json" "$target" tcp "$compare_ports")
      bench_record "$row" "portvigil scan -sS -p$port_arg -n --max-rate 1000000" "$i" "$wrong"
      ;;
    nmap)
      bench_run "$row" "$i" -- nmap "${nmap6[@]}" -sS -T4 "-p$port_arg" -n -Pn "$target" \
        -oX "$WORK/nmap.xml"
      wrong=$(bench_wrong --nmap-xml "$WORK/nmap.xml" "$target" tcp "$compare_ports")
      bench_record "$row" "nmap ${nmap6[*]:+${nmap6[*]} }-sS -T4 -p$port_arg -n -Pn" "$i" "$wrong"
      ;;
    masscan-1m | masscan-100k)
      local rate=1000000
      [[ $row == masscan-100k ]] && rate=100000
      rm -f "$WORK/masscan.lst"
      bench_trickle_start
      bench_run "$row" "$i" -- timeout -k 5 120 masscan "$target" -p"$masscan_ports" --rate "$rate" \
        --interface "$SCAN_IF" --adapter-ip 198.18.0.1 --adapter-mac "$scan_mac" \
        --router-mac "$target_mac" --wait 1 --noreset --show closed -oL "$WORK/masscan.lst"
      bench_trickle_stop
      wrong=$(masscan_wrong "$WORK/masscan.lst")
      bench_record "$row" "masscan -p$masscan_ports --rate $rate --wait 1 --noreset --show closed" \
        "$i" "$wrong"
      ;;
  esac
}

rows=(pv-default pv-1m)
[[ -n "$baseline" ]] && rows+=(pv-baseline)
((do_nmap)) && rows+=(nmap)
((do_masscan)) && rows+=(masscan-1m masscan-100k)
for i in $(seq "$runs"); do
  for row in "${rows[@]}"; do one_run "$row" "$i"; done
done

echo
rl="ICMP rate limits lifted in the target"
((${#keep_rl[@]})) && rl="the kernel's default ICMP rate limits in the target"
what="65 535 TCP ports"
[[ $ports != - ]] && what="TCP ports $ports"
lab="lab preset connect: 200 open, 56 335 closed, 5 000 dropped, 4 000 rejected; $rl"
((filtered)) && lab="the target drops every TCP packet: all filtered"
echo "SYN scan, $what of $target ($lab), $runs runs each; $(nproc) CPUs, kernel $(uname -r)," \
  "$("$binary" --version 2>/dev/null | head -1), $(nmap --version 2>/dev/null | head -1 | cut -d' ' -f1-3)."
echo
bench_table "nmap=nmap" "masscan-1m=masscan (1M pps)" "pv-baseline=the baseline"
