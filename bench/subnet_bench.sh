#!/usr/bin/env bash
# Subnet benchmarks: host discovery plus port scan of many addresses, every tool running inside
# the lab's scanner namespace, which has no route out.
#
#   bench/subnet_bench.sh [--case 24|16] [--binary PATH] [--runs N] [--listener PATH]
#                         [--no-nmap] [--no-masscan]
#
# --case 24 (default): 198.18.0.0/24 without the scanner's own address: 101 live addresses
#   (198.18.0.2-102, all on the target's veth, serving TCP 22, 80 and 443; every other port
#   closed) and 152 unused ones, on-link. Ports 1-1000, SYN. Rows: portvigil -sS,
#   nmap -sS -T4, masscan --rate 100000.
# --case 16: 198.19.0.0/16 made live with AnyIP (`ip route add local 198.19.0.0/16 dev lo` in
#   the target, routed via 198.18.0.2 from the scanner), 10 ports (21-25, 80, 443, 3389, 8080,
#   8443): 655 360 probes. Rows: portvigil -sS at its default rate, masscan --rate 100000, and
#   nmap -sS -T4 unless --no-nmap (it takes minutes).
#
# Accuracy (bench/subnet_check.py): every port of every live address against the lab's truth;
# a live host not reported loses all its ports; each unused address reported up counts one.
# Prints the markdown table of bench_lib.sh (median wall, CPU, peak RSS, worst run's wrong
# count, speed ratios against nmap and masscan measured in the same run). Must run as root.
#
# Needs (Debian packages): iproute2 nftables nmap masscan python3 time coreutils, and g++ when
# no --listener is given.
set -euo pipefail

PROG=subnet_bench.sh
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/bench_lib.sh
source "$HERE/bench_lib.sh"

binary="${PORTVIGIL_BINARY:-}"
runs=3
case_=24
listener=()
do_nmap=1
do_masscan=1
while (($#)); do
  case $1 in
    --case) case_=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --runs | -n) runs=$2; shift 2 ;;
    --listener) listener=(--listener "$2"); shift 2 ;;
    --no-nmap) do_nmap=0; shift ;;
    --no-masscan) do_masscan=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) bench_die "unknown argument '$1'" ;;
  esac
done
[[ -n "$binary" ]] || bench_die "give --binary PATH or set PORTVIGIL_BINARY"
binary=$(realpath "$binary")
[[ -x "$binary" ]] || bench_die "'$binary' is not executable"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || bench_die "--runs must be a positive number"
[[ $case_ == 24 || $case_ == 16 ]] || bench_die "--case must be 24 or 16"
if ((do_nmap)); then command -v nmap >/dev/null || bench_die "nmap is not installed (or --no-nmap)"; fi
if ((do_masscan)); then
  command -v masscan >/dev/null || bench_die "masscan is not installed (or --no-masscan)"
fi

bench_init
open_ports=22,80,443
if [[ $case_ == 24 ]]; then
  extra=$(seq -s, -f '198.18.0.%g' 3 102)
  bench_lab_up --tcp-open "$open_ports" --extra-target "$extra" "${listener[@]}"
  target=198.18.0.0/24
  ports=1-1000
  live=(--live 198.18.0.2-198.18.0.102)
  exclude=(--exclude 198.18.0.1)
  masscan_exclude=(--exclude 198.18.0.1)
  title="198.18.0.0/24 without the scanner: 101 live addresses (TCP $open_ports open), 152 unused, ports $ports"
else
  bench_lab_up --tcp-open "$open_ports" "${listener[@]}"
  ip -n "$TARGET_NS" route add local 198.19.0.0/16 dev lo
  ip -n "$SCAN_NS" route add 198.19.0.0/16 via 198.18.0.2
  target=198.19.0.0/16
  ports=21-25,80,443,3389,8080,8443
  live=(--live 198.19.0.0-198.19.255.255)
  exclude=()
  masscan_exclude=()
  title="198.19.0.0/16 live through AnyIP (TCP $open_ports open), 10 ports: 655 360 probes"
fi
scan_mac=$(bench_mac "$SCAN_NS" "$SCAN_IF")
target_mac=$(bench_mac "$TARGET_NS" "$TARGET_IF")

check() { # $1 = --portvigil-json|--nmap-xml|--masscan-list, $2 = file
  python3 "$HERE/subnet_check.py" --truth "$TRUTH" --ports "$ports" "${live[@]}" "$1" "$2" \
    >"$WORK/cmp" 2>&1 || true
  sed 's/^/    /' "$WORK/cmp" | head -3 >&2
  sed -n 's/^wrong=\([0-9]*\).*/\1/p' "$WORK/cmp" | head -1 | grep . || echo -1
}

one_run() { # $1 = row, $2 = run
  local row=$1 i=$2 wrong
  case $row in
    pv)
      bench_run "$row" "$i" -- "$binary" scan -sS -p "$ports" -n "${exclude[@]}" "$target" \
        -oJ "$WORK/pv.json"
      wrong=$(check --portvigil-json "$WORK/pv.json")
      bench_record "$row" "portvigil scan -sS -p $ports -n ${exclude[*]:+${exclude[*]} }$target" \
        "$i" "$wrong"
      ;;
    nmap)
      bench_run "$row" "$i" -- nmap -sS -T4 -p "$ports" -n "${exclude[@]}" "$target" \
        -oX "$WORK/nmap.xml"
      wrong=$(check --nmap-xml "$WORK/nmap.xml")
      bench_record "$row" "nmap -sS -T4 -p $ports -n ${exclude[*]:+${exclude[*]} }$target" \
        "$i" "$wrong"
      ;;
    masscan)
      rm -f "$WORK/masscan.lst"
      bench_trickle_start
      bench_run "$row" "$i" -- timeout -k 5 300 masscan "$target" "${masscan_exclude[@]}" \
        -p"$ports" --rate 100000 --interface "$SCAN_IF" --adapter-ip 198.18.0.1 \
        --adapter-mac "$scan_mac" --router-mac "$target_mac" --wait 1 --noreset \
        --show closed -oL "$WORK/masscan.lst"
      bench_trickle_stop
      wrong=$(check --masscan-list "$WORK/masscan.lst")
      bench_record "$row" "masscan -p$ports --rate 100000 --wait 1 --noreset --show closed" \
        "$i" "$wrong"
      ;;
  esac
}

rows=(pv)
((do_nmap)) && rows+=(nmap)
((do_masscan)) && rows+=(masscan)
for i in $(seq "$runs"); do
  for row in "${rows[@]}"; do one_run "$row" "$i"; done
done

echo
echo "$title; $runs runs each; $(nproc) CPUs, kernel $(uname -r)," \
  "$("$binary" --version 2>/dev/null | head -1), $(nmap --version 2>/dev/null | head -1 | cut -d' ' -f1-3)."
echo
bench_table "nmap=nmap" "masscan=masscan"
