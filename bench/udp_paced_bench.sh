#!/usr/bin/env bash
# Paced UDP benchmark: UDP ports 1-N of hosts that keep the kernel's default ICMP limits
# (a burst of 6 "port unreachable", then one per second), portvigil -sU --udp-pace auto vs
# nmap -sU -T4, each inside its own lab's scanner namespace (no route out).
#
#   bench/udp_paced_bench.sh [--binary PATH] [--listener PATH] [--ports N] [--hosts N] [--serial]
#
# Three labs (tests/lab/multihost.sh; every host its own namespace, so its own limiter):
#   pv-1     portvigil scan -sU --udp-pace auto -p 1-N -n -Pn, one host
#   nmap-1   nmap -sU -T4 -p 1-N -n -Pn, one host (its own lab)
#   pv-H     portvigil scan -sU --udp-pace auto -p 1-N -n -Pn, H hosts (default 20) in one scan
# Every host serves UDP 53,69,123,137,161,500,514 (lab_listener answers any datagram), drops
# 600-601 (nftables) and answers ICMP port unreachable everywhere else. The three run at the
# same time (a target's limiter is its own, and the scanners mostly wait), so the peers are
# measured in the same run; --serial runs them one after another. Defaults: N = 1000, which
# takes about 17 minutes. Each is compared with the truth port by port (a dropped port is right
# as open|filtered); the table gives wall time, wrong ports and the speed ratio vs nmap.
#
# Needs root, iproute2, nftables, nmap, python3, time, and g++ without --listener.
set -euo pipefail

PROG=udp_paced_bench.sh
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MULTI="$HERE/../tests/lab/multihost.sh"
COMPARE="$HERE/../tests/lab/compare.py"
OPEN=53,69,123,137,161,500,514
DROP=600-601

die() {
  echo "$PROG: $*" >&2
  exit 2
}

binary="${PORTVIGIL_BINARY:-}"
listener="${PV_LAB_LISTENER:-}"
nports=1000
hosts=20
serial=0
while (($#)); do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --listener) listener=$2; shift 2 ;;
    --ports) nports=$2; shift 2 ;;
    --hosts) hosts=$2; shift 2 ;;
    --serial) serial=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
((EUID == 0)) || die "must run as root"
[[ -n "$binary" ]] || die "give --binary PATH or set PORTVIGIL_BINARY"
binary=$(realpath "$binary")
[[ -x "$binary" ]] || die "'$binary' is not executable"
[[ "$nports" =~ ^[0-9]+$ ]] && ((nports >= 610 && nports <= 65535)) || die "--ports must be 610-65535"
[[ "$hosts" =~ ^[0-9]+$ ]] && ((hosts >= 1 && hosts <= 200)) || die "--hosts must be 1-200"
for t in ip nft nmap python3; do command -v "$t" >/dev/null || die "'$t' is not installed"; done
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing (apt-get install time)"

# Concurrent runs need each target's ICMP budget to be its own: the per-peer limit always
# is, the global one (icmp_msgs_per_sec) only from Linux 6.12 on (per network namespace).
kernel=$(uname -r)
if ((!serial)) && ! printf '%s\n6.12\n' "${kernel%%-*}" | sort -V -C -r 2>/dev/null; then
  echo "$PROG: kernel $kernel shares the global ICMP limit across namespaces: --serial" >&2
  serial=1
fi

WORK=$(mktemp -d /tmp/pv-udp-paced-bench.XXXXXX)
RUNS=()
cleanup() {
  local p
  ((${#RUNS[@]})) && kill -TERM "${RUNS[@]}" 2>/dev/null
  for p in pvb1 pvbn pvbh; do "$MULTI" down --prefix "$p" --dir "$WORK/$p" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [[ -z "$listener" ]]; then
  g++ -std=c++17 -O2 -o "$WORK/lab_listener" "$HERE/../tests/lab/lab_listener.cpp" ||
    die "could not build lab_listener"
  listener=$WORK/lab_listener
fi
listener=$(realpath "$listener")
for spec in pvb1:1 pvbn:1 "pvbh:$hosts"; do
  "$MULTI" up --prefix "${spec%%:*}" --hosts "${spec##*:}" --dir "$WORK/${spec%%:*}" \
    --listener "$listener" --udp "$OPEN" --udp-drop "$DROP" >"$WORK/up.log" 2>&1 ||
    { cat "$WORK/up.log" >&2; die "multihost.sh up failed"; }
done

# The truth of one host, as compare.py reads it.
python3 - "$nports" "$OPEN" "$DROP" >"$WORK/truth.tsv" <<'EOF'
import sys
n, open_, drop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def ex(s):
    out = set()
    for item in s.split(","):
        lo, _, hi = item.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out
o, d = ex(open_), ex(drop)
for p in range(1, n + 1):
    print("udp\t%d\t%s" % (p, "open" if p in o else "filtered" if p in d else "closed"))
EOF

last=$((10 + hosts))
run_pv1() {
  ip netns exec pvb1-scan /usr/bin/time -f '%e' -o "$WORK/pv1.time" "$binary" scan -sU \
    --udp-pace auto -p "1-$nports" -n -Pn 198.18.0.11 -oJ "$WORK/pv1.json" >"$WORK/pv1.out" 2>&1
}
run_nmap() {
  ip netns exec pvbn-scan /usr/bin/time -f '%e' -o "$WORK/nmap.time" nmap -sU -T4 \
    -p "1-$nports" -n -Pn 198.18.0.11 -oX "$WORK/nmap.xml" >"$WORK/nmap.out" 2>&1
}
run_pvh() {
  ip netns exec pvbh-scan /usr/bin/time -f '%e' -o "$WORK/pvh.time" "$binary" scan -sU \
    --udp-pace auto -p "1-$nports" -n -Pn "198.18.0.11-$last" -oJ "$WORK/pvh.json" \
    >"$WORK/pvh.out" 2>&1
}
echo "$PROG: $nports UDP ports; 1 host (portvigil), 1 host (nmap), $hosts hosts (portvigil);" \
  "$( ((serial)) && echo serial || echo concurrent)" >&2
if ((serial)); then
  run_pv1 || true
  run_nmap || true
  run_pvh || true
else
  run_pv1 &
  RUNS+=($!)
  run_nmap &
  RUNS+=($!)
  run_pvh &
  RUNS+=($!)
  wait "${RUNS[@]}" || true
  RUNS=()
fi

wrong() { # KIND FILE ADDRESS...
  local kind=$1 file=$2 total=0 n a
  shift 2
  for a in "$@"; do
    n=$(python3 "$COMPARE" --truth "$WORK/truth.tsv" "$kind" "$file" --address "$a" \
      --proto udp --ports "1-$nports" --show 3 2>&1 | tee -a "$WORK/cmp.log" |
      sed -n 's/^mismatches=\([-0-9]*\).*/\1/p' | head -1)
    [[ -n "$n" ]] || n=-1
    ((n < 0)) && { echo -1; return; }
    total=$((total + n))
  done
  echo "$total"
}
addrs=()
for i in $(seq 1 "$hosts"); do addrs+=("198.18.0.$((10 + i))"); done
w1=$(wrong --portvigil-json "$WORK/pv1.json" 198.18.0.11)
wn=$(wrong --nmap-xml "$WORK/nmap.xml" 198.18.0.11)
wh=$(wrong --portvigil-json "$WORK/pvh.json" "${addrs[@]}")
t1=$(tail -1 "$WORK/pv1.time" 2>/dev/null || echo 0)
tn=$(tail -1 "$WORK/nmap.time" 2>/dev/null || echo 0)
th=$(tail -1 "$WORK/pvh.time" 2>/dev/null || echo 0)
inconclusive=$(python3 -c 'import json, sys
n = 0
for f in sys.argv[1:]:
    try:
        n += sum(1 for h in json.load(open(f)).get("hosts", []) if h.get("inconclusive"))
    except (OSError, ValueError):
        n = -1; break
print(n)' "$WORK/pv1.json" "$WORK/pvh.json")

echo
echo "UDP ports 1-$nports, the kernel's default ICMP limits on every target ($(nproc) CPUs," \
  "kernel $(uname -r), $("$binary" --version 2>/dev/null | head -1)," \
  "$(nmap --version | head -1 | cut -d' ' -f1-3); $( ((serial)) && echo 'one after another' ||
    echo 'all three at the same time')). portvigil hosts left inconclusive: $inconclusive."
echo
python3 - "$t1" "$w1" "$tn" "$wn" "$th" "$wh" "$hosts" "$nports" <<'EOF'
import sys
t1, w1, tn, wn, th, wh = (float(sys.argv[i]) for i in range(1, 7))
hosts, n = sys.argv[7], int(sys.argv[8])
rows = [
    ("portvigil scan -sU --udp-pace auto, 1 host", t1, w1, n),
    ("nmap -sU -T4, 1 host", tn, wn, n),
    (f"portvigil scan -sU --udp-pace auto, {hosts} hosts", th, wh, n * int(hosts)),
]
print("| command | wall (s) | ports wrong / scanned | speed vs nmap (wall ratio) |")
print("|---|---|---|---|")
for name, t, w, total in rows:
    ratio = "%.2f" % (tn / t) if t > 0 and tn > 0 else "-"
    print(f"| {name} | {t:.0f} | {int(w)} / {total} | {ratio} |")
EOF
