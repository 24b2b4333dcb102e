#!/usr/bin/env bash
# UDP benchmark: the 1 000 most common UDP ports of a lab target, portvigil -sU vs
# nmap -sU -T4, both inside the lab's scanner namespace (no route out).
#
#   bench/udp_bench.sh [--binary PATH] [--runs N] [--family 4|6] [--listener PATH]
#                      [--keep-icmp-ratelimit]
#
# The lab serves UDP 53,67,69,111,123,137,161,500,514,1900,3478,5060,5351,5353,5683,11211 (every
# port portvigil has a protocol payload for) and 2000-2004,4000 with lab_listener (it answers
# any datagram), drops 6000-6099, rejects 7000-7099 with ICMP admin-prohibited; every other UDP
# port answers ICMP port unreachable. The target's ICMP rate limits are lifted unless
# --keep-icmp-ratelimit (then nmap needs about 20 minutes: it slows down to the kernel's
# 1 unreachable per second).
#
# Rows: portvigil -sU --top-ports 1000 (portvigil's own ranking, which is not Nmap's),
# portvigil -sU -p LIST with LIST = the ports nmap --top-ports 1000 scans (taken from nmap's
# first -oX), and nmap -sU -T4 --top-ports 1000. Each is compared with the truth on the ports it
# scanned (a dropped port is right as open|filtered). PATH defaults to $PORTVIGIL_BINARY.
#
# Needs (Debian packages): iproute2 nftables nmap python3 time, and g++ when no --listener is
# given.
set -euo pipefail

PROG=udp_bench.sh
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/bench_lib.sh
source "$HERE/bench_lib.sh"

binary="${PORTVIGIL_BINARY:-}"
runs=3
family=4
listener=()
keep_rl=()
while (($#)); do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --runs | -n) runs=$2; shift 2 ;;
    --family) family=$2; shift 2 ;;
    --listener) listener=(--listener "$2"); shift 2 ;;
    --keep-icmp-ratelimit) keep_rl=(--keep-icmp-ratelimit); shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) bench_die "unknown argument '$1'" ;;
  esac
done
[[ -n "$binary" ]] || bench_die "give --binary PATH or set PORTVIGIL_BINARY"
binary=$(realpath "$binary")
[[ -x "$binary" ]] || bench_die "'$binary' is not executable"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || bench_die "--runs must be a positive number"
[[ $family == 4 || $family == 6 ]] || bench_die "--family must be 4 or 6"
command -v nmap >/dev/null || bench_die "nmap is not installed"

bench_init
bench_lab_up --udp-open 53,67,69,111,123,137,161,500,514,1900,3478,5060,5351,5353,5683,11211,2000-2004,4000 \
  --udp-drop 6000-6099 --udp-reject 7000-7099 "${keep_rl[@]}" "${listener[@]}"

target=198.18.0.2
nmap6=()
if [[ $family == 6 ]]; then
  target=2001:db8::2
  nmap6=(-6)
fi

# The port list of an nmap-style XML (<scaninfo services="...">).
scanned_ports() {
  python3 -c 'import sys, xml.etree.ElementTree as E
print(E.parse(sys.argv[1]).getroot().find("scaninfo").get("services"))' "$1"
}

nmap_list=""
one_run() { # $1 = row, $2 = run
  local row=$1 i=$2 wrong
  case $row in
    nmap)
      bench_run "$row" "$i" -- nmap "${nmap6[@]}" -sU -T4 --top-ports 1000 -n -Pn "$target" \
        -oX "$WORK/nmap.xml"
      [[ -n "$nmap_list" ]] || nmap_list=$(scanned_ports "$WORK/nmap.xml")
      wrong=$(bench_wrong --nmap-xml "$WORK/nmap.xml" "$target" udp \
        "$(scanned_ports "$WORK/nmap.xml")")
      bench_record "$row" "nmap ${nmap6[*]:+${nmap6[*]} }-sU -T4 --top-ports 1000 -n -Pn" "$i" \
        "$wrong"
      ;;
    pv-top)
      bench_run "$row" "$i" -- "$binary" scan -sU --top-ports 1000 -n "$target" \
        -oX "$WORK/pv.xml" -oJ "$WORK/pv.json"
      wrong=$(bench_wrong --portvigil-json "$WORK/pv.json" "$target" udp \
        "$(scanned_ports "$WORK/pv.xml")")
      bench_record "$row" "portvigil scan -sU --top-ports 1000 -n" "$i" "$wrong"
      ;;
    pv-nmaplist)
      bench_run "$row" "$i" -- "$binary" scan -sU -p "$nmap_list" -n "$target" \
        -oJ "$WORK/pv.json"
      wrong=$(bench_wrong --portvigil-json "$WORK/pv.json" "$target" udp "$nmap_list")
      bench_record "$row" "portvigil scan -sU -p <nmap's top 1000 UDP> -n" "$i" "$wrong"
      ;;
  esac
  if [[ $row == pv-* && -f "$WORK/pv.json" ]]; then
    python3 -c 'import json, sys
for h in json.load(open(sys.argv[1])).get("hosts", []):
    if h.get("note") or h.get("inconclusive"):
        print("    note: inconclusive=%s %s" % (h.get("inconclusive"), h.get("note")))' \
      "$WORK/pv.json" >&2
    rm -f "$WORK/pv.json"
  fi
}

for i in $(seq "$runs"); do
  for row in nmap pv-top pv-nmaplist; do one_run "$row" "$i"; done
done

echo
common=$(python3 - "$nmap_list" "$(scanned_ports "$WORK/pv.xml")" <<'EOF'
import sys
def ex(s):
    out = set()
    for item in s.split(","):
        lo, _, hi = item.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out
print(len(ex(sys.argv[1]) & ex(sys.argv[2])))
EOF
)
rl="ICMP rate limits lifted in the target"
((${#keep_rl[@]})) && rl="the kernel's default ICMP rate limits in the target"
echo "UDP scan, top 1000 ports of $target ($rl), $runs runs each; $(nproc) CPUs," \
  "kernel $(uname -r), $("$binary" --version 2>/dev/null | head -1)," \
  "$(nmap --version | head -1 | cut -d' ' -f1-3). portvigil's and nmap's top-1000 UDP lists" \
  "share $common ports."
echo
bench_table "nmap=nmap"
