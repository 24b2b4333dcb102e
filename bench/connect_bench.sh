#!/usr/bin/env bash
# Connect-scan benchmark: portvigil -sT vs nmap -sT -T4 over all 65 535 TCP ports of the lab
# target (tests/lab/lab.sh --preset connect: 200 open, 5 000 dropped, 4 000 rejected, the rest
# closed), both running inside the lab's scanner namespace, which has no route out.
#
#   bench/connect_bench.sh [--binary PATH] [--runs N] [--family 4|6] [--listener PATH]
#
# PATH defaults to $PORTVIGIL_BINARY. Prints a markdown table: median wall time, CPU time
# (user+sys) and peak RSS per tool, the worst number of ports that disagreed with the lab's truth,
# and the speed ratio nmap/portvigil. Must run as root.
#
# Needs (Debian packages): iproute2 nftables nmap python3 time (for /usr/bin/time) and g++
# (when no --listener is given, lab.sh compiles tests/lab/lab_listener.cpp).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LAB="$HERE/../tests/lab/lab.sh"
COMPARE="$HERE/../tests/lab/compare.py"

binary="${PORTVIGIL_BINARY:-}"
runs=3
family=4
listener=()
while (($#)); do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --runs | -n) runs=$2; shift 2 ;;
    --family) family=$2; shift 2 ;;
    --listener) listener=(--listener "$2"); shift 2 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "connect_bench.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ -n "$binary" ]] || { echo "connect_bench.sh: give --binary PATH or set PORTVIGIL_BINARY" >&2; exit 2; }
binary=$(realpath "$binary")
[[ -x "$binary" ]] || { echo "connect_bench.sh: '$binary' is not executable" >&2; exit 2; }
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "connect_bench.sh: --runs must be a positive number" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "connect_bench.sh: /usr/bin/time missing (apt-get install time)" >&2; exit 2; }
((EUID == 0)) || { echo "connect_bench.sh: must run as root" >&2; exit 2; }

target=198.18.0.2
nmap6=()
if [[ $family == 6 ]]; then
  target=2001:db8::2
  nmap6=(-6)
fi

name="b$$"
work=$(mktemp -d /tmp/pvbench-XXXXXX)
cleanup() {
  "$LAB" down --name "$name" --dir "$work/lab" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$LAB" up --name "$name" --dir "$work/lab" --preset connect "${listener[@]}" >&2
truth="$work/lab/truth.tsv"
results="$work/results.tsv" # tool run wall user sys rss_kb mismatches exit
: >"$results"

one_run() { # $1 = tool, $2 = run number
  local tool=$1 i=$2 out rc=0 mism
  if [[ $tool == portvigil ]]; then
    out="$work/pv-$i.json"
    "$LAB" exec --name "$name" -- /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
      "$binary" scan -sT -p- -n "$target" -oJ "$out" >/dev/null 2>"$work/stderr" || rc=$?
    mism=$(python3 "$COMPARE" --truth "$truth" --portvigil-json "$out" --address "$target" \
      --proto tcp --show 5 | tee "$work/cmp" | sed -n '1s/^mismatches=\([-0-9]*\).*/\1/p') || true
  else
    out="$work/nmap-$i.xml"
    "$LAB" exec --name "$name" -- /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
      nmap "${nmap6[@]}" -sT -T4 -p- -n -Pn "$target" -oX "$out" >/dev/null 2>"$work/stderr" || rc=$?
    mism=$(python3 "$COMPARE" --truth "$truth" --nmap-xml "$out" --address "$target" \
      --proto tcp --show 5 | tee "$work/cmp" | sed -n '1s/^mismatches=\([-0-9]*\).*/\1/p') || true
  fi
  read -r wall user sys rss <"$work/time" || true
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$i" "$wall" "$user" "$sys" "$rss" \
    "${mism:--1}" "$rc" >>"$results"
  printf '%-9s run %d: %6.2f s wall, exit %d, %s ports wrong\n' "$tool" "$i" "$wall" "$rc" \
    "${mism:-?}" >&2
  if [[ "${mism:-1}" != 0 ]]; then sed 's/^/    /' "$work/cmp" >&2; fi
  if ((rc != 0)); then sed 's/^/    /' "$work/stderr" | head -5 >&2; fi
}

# Alternate the tools so that background load hits both alike.
for i in $(seq "$runs"); do
  one_run portvigil "$i"
  one_run nmap "$i"
done

echo
echo "Connect scan, 65 535 TCP ports of $target (lab preset connect), $runs runs each;" \
  "$(nproc) CPUs, kernel $(uname -r), $(nmap --version | head -1 | cut -d' ' -f1-3)."
echo
python3 - "$results" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
med = {}
print("| tool | runs | median wall (s) | median CPU user+sys (s) | median peak RSS (MiB) | ports wrong (worst run) | non-zero exits |")
print("|---|---|---|---|---|---|---|")
for tool, cmd in (("portvigil", "portvigil scan -sT -p- -n"), ("nmap", "nmap -sT -T4 -p- -n -Pn")):
    r = [x for x in rows if x[0] == tool]
    wall = statistics.median(float(x[2]) for x in r)
    cpu = statistics.median(float(x[3]) + float(x[4]) for x in r)
    rss = statistics.median(int(x[5]) for x in r) / 1024
    wrong = max(int(x[6]) if int(x[6]) >= 0 else 65535 for x in r)
    fails = sum(1 for x in r if x[7] != "0")
    med[tool] = wall
    print(f"| `{cmd}` | {len(r)} | {wall:.2f} | {cpu:.2f} | {rss:.1f} | {wrong} | {fails} |")
print()
if med["portvigil"] > 0:
    print(f"Speed ratio nmap/portvigil (median wall): **{med['nmap'] / med['portvigil']:.1f}x**")
EOF
