# shellcheck shell=bash disable=SC2034
# Helpers shared by bench/syn_bench.sh and bench/udp_bench.sh (sourced, not run).
#
# Everything that scans runs inside the lab's scanner namespace through `lab.sh exec`, which
# refuses a namespace with a default route or an extra link. The lab is torn down on exit.
#
# The caller sets PROG (for messages) and then calls, in order:
#   bench_init                       root, tools, work directory, EXIT trap
#   bench_lab_up LAB-ARGS...         lab.sh up --name b<PID> --dir $WORK/lab LAB-ARGS...
#   bench_run ROW RUN OUT -- CMD...  time CMD in the scanner ns (wall/user/sys/RSS -> $WORK/time)
#   bench_record ROW LABEL RUN WRONG RC
#   bench_table REF=TITLE...         the markdown table, with speed ratios vs each REF row

BENCH_LIB_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LAB="$BENCH_LIB_HERE/../tests/lab/lab.sh"
COMPARE="$BENCH_LIB_HERE/../tests/lab/compare.py"
NAME="b$$"
WORK=""
TRICKLE_PID=""

bench_die() {
  echo "$PROG: $*" >&2
  exit 2
}

bench_cleanup() {
  if [[ -n "$TRICKLE_PID" ]]; then
    kill "$TRICKLE_PID" 2>/dev/null || true
    wait "$TRICKLE_PID" 2>/dev/null || true
  fi
  "$LAB" down --name "$NAME" --dir "$WORK/lab" >/dev/null 2>&1 || true
  [[ -n "$WORK" ]] && rm -rf "$WORK"
}

bench_init() {
  ((EUID == 0)) || bench_die "must run as root"
  [[ -x /usr/bin/time ]] || bench_die "/usr/bin/time missing (apt-get install time)"
  local t
  for t in ip nft python3 timeout; do
    command -v "$t" >/dev/null || bench_die "'$t' is not installed"
  done
  WORK=$(mktemp -d /tmp/pvbench-XXXXXX)
  RESULTS="$WORK/results.tsv" # row label run wall user sys rss_kb wrong exit
  : >"$RESULTS"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_lab_up() {
  "$LAB" up --name "$NAME" --dir "$WORK/lab" "$@" >&2
  TRUTH="$WORK/lab/truth.tsv"
  SCAN_NS="pv-$NAME-scan"
  TARGET_NS="pv-$NAME-tgt"
  SCAN_IF="pvs$NAME"
  TARGET_IF="pvt$NAME"
}

# The MAC address of an interface in a namespace.
bench_mac() { # $1 = namespace, $2 = interface
  ip -n "$1" -o link show "$2" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2
}

# A packet every 100 ms from the target to the scanner (UDP to the discard port, which the
# scanner's kernel answers with a port unreachable): masscan 1.3.2's receive loop only returns
# when packets arrive, so without it masscan never exits.
bench_trickle_start() {
  ip netns exec "$TARGET_NS" python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    s.sendto(b"trickle", ("198.18.0.1", 9))
    time.sleep(0.1)' &
  TRICKLE_PID=$!
}

bench_trickle_stop() {
  [[ -n "$TRICKLE_PID" ]] || return 0
  kill "$TRICKLE_PID" 2>/dev/null || true
  wait "$TRICKLE_PID" 2>/dev/null || true
  TRICKLE_PID=""
}

# bench_run ROW RUN -- CMD...: runs CMD in the scanner namespace under /usr/bin/time, from
# $WORK (masscan writes paused.conf into its working directory). Sets RC; stderr goes to
# $WORK/stderr.
bench_run() {
  local row=$1 run=$2
  shift 3
  RC=0
  (cd "$WORK" && "$LAB" exec --name "$NAME" -- /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" \
    "$@" >"$WORK/stdout" 2>"$WORK/stderr") || RC=$?
  : "$row" "$run"
}

# bench_record ROW LABEL RUN WRONG: appends the last bench_run's times.
bench_record() {
  local row=$1 label=$2 run=$3 wrong=$4 wall user sys rss
  read -r wall user sys rss <"$WORK/time" || true
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$row" "$label" "$run" "${wall:-0}" \
    "${user:-0}" "${sys:-0}" "${rss:-0}" "${wrong:--1}" "$RC" >>"$RESULTS"
  printf '%-22s run %d: %7.2f s wall, exit %d, %s ports wrong\n' "$row" "$run" "${wall:-0}" \
    "$RC" "${wrong:-?}" >&2
  if ((RC != 0)); then sed 's/^/    /' "$WORK/stderr" | tail -5 >&2; fi
}

# compare.py on a portvigil JSON or an nmap XML: prints the number of wrong ports (-1 if the
# file cannot be read). $1 = --portvigil-json|--nmap-xml, $2 = file, $3 = address, $4 = proto,
# $5 = port list (optional).
bench_wrong() {
  local extra=()
  [[ -n "${5:-}" ]] && extra=(--ports "$5")
  python3 "$COMPARE" --truth "$TRUTH" "$1" "$2" --address "$3" --proto "$4" --show 5 \
    "${extra[@]}" >"$WORK/cmp" 2>&1 || true
  if ! grep -q '^mismatches=0 ' "$WORK/cmp"; then sed 's/^/    /' "$WORK/cmp" | head -6 >&2; fi
  sed -n 's/^mismatches=\([-0-9]*\).*/\1/p' "$WORK/cmp" | head -1 | grep . || echo -1
}

# bench_table REF=TITLE...: one line per row (in order of first appearance): medians of wall
# time, CPU (user+sys), peak RSS, the worst run's wrong ports, and for each REF row the speed
# ratio REF wall / row wall (>1: the row is faster).
bench_table() {
  python3 - "$RESULTS" "$@" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
refs = [a.split("=", 1) for a in sys.argv[2:]]
order, label, by = [], {}, {}
for r in rows:
    if r[0] not in by:
        order.append(r[0]); by[r[0]] = []
    label[r[0]] = r[1]
    by[r[0]].append(r)
med = {k: statistics.median(float(x[3]) for x in v) for k, v in by.items()}
refs = [(r, t) for r, t in refs if r in med]
head = ["command", "runs", "median wall (s)", "median CPU user+sys (s)",
        "median peak RSS (MiB)", "ports wrong (worst run)", "non-zero exits"]
head += [f"speed vs {t}" for r, t in refs]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for k in order:
    v = by[k]
    cpu = statistics.median(float(x[4]) + float(x[5]) for x in v)
    rss = statistics.median(int(x[6]) for x in v) / 1024
    wrong = max(int(x[7]) if int(x[7]) >= 0 else 10**9 for x in v)
    wrong_s = "unreadable" if wrong == 10**9 else str(wrong)
    fails = sum(1 for x in v if x[8] != "0")
    cells = [f"`{label[k]}`", str(len(v)), f"{med[k]:.2f}", f"{cpu:.2f}", f"{rss:.1f}", wrong_s,
             str(fails)]
    cells += [f"{med[r] / med[k]:.2f}x" if med[k] > 0 else "-" for r, t in refs]
    print("| " + " | ".join(cells) + " |")
EOF
}
