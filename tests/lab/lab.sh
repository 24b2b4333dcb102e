#!/usr/bin/env bash
# portvigil test lab: two network namespaces joined by one veth pair, no route anywhere else.
#
#   lab.sh up --name NAME --dir STATEDIR [--listener PATH] [--tcp-open LIST] [--udp-open LIST]
#             [--tcp-drop LIST] [--tcp-reject LIST] [--udp-drop LIST] [--udp-reject LIST]
#             [--keep-icmp-ratelimit] [--preset connect] [--extra-target ADDR[,ADDR...]]
#   lab.sh down --name NAME [--dir STATEDIR]
#   lab.sh exec --name NAME -- CMD...          run CMD inside the scanner namespace
#   lab.sh selfcheck --name NAME --dir STATEDIR [--family 4|6]
#                                             nmap -sT -p- inside the scanner ns vs truth.tsv
#   lab.sh counters --name NAME               the target's nftables counters
#
# LIST is like 22,80,20000-24999. NAME is 1-12 characters [a-z0-9] (the veth ends are
# pvs<NAME> and pvt<NAME>, at most 15 characters).
#
# Topology: pv-NAME-scan (198.18.0.1/24, 2001:db8::1/64) <-veth-> pv-NAME-tgt (198.18.0.2/24,
# 2001:db8::2/64). No default route, no other link. In the target: lab_listener serves the open
# ports; nftables drops the drop-listed ports and rejects the reject-listed ones with ICMP
# admin-prohibited; every other TCP port answers RST (closed) and every other UDP port ICMP
# port-unreachable (closed). The target's ICMP rate limits are lifted unless
# --keep-icmp-ratelimit.
#
# STATEDIR/truth.tsv: "proto<TAB>port<TAB>state" for ports 1-65535 of every protocol that has a
# listed port (state open, closed or filtered; a dropped UDP port is "filtered", which a scanner
# reports as open|filtered). STATEDIR/truth-detail.tsv: the same ports, "proto<TAB>port<TAB>kind"
# with kind open, closed, drop or reject (what each technique maps differently).
# STATEDIR/env: shell assignments SCAN_NS, TARGET_NS, TARGET4, ...
#
# --extra-target adds more addresses to the target's veth end (198.18.0.3-254 or 2001:db8::3-ffff,
# i.e. inside the lab's /24 and /64), e.g. to check that an out-of-scope address is never probed.
# They serve the same ports (the listener binds the wildcard addresses).
#
# --preset connect = the configuration of the connect tests and the benchmark: 200 open TCP ports
# (1, 22, 80, 443, 65535 and 195 more spread deterministically over 1-65535), --tcp-drop
# 30000-34999, --tcp-reject 40000-43999, every other TCP port closed.
#
# The listener binary comes from --listener, else $PV_LAB_LISTENER, else it is compiled from
# lab_listener.cpp (next to this script) into STATEDIR with g++.
set -euo pipefail

readonly SCAN4=198.18.0.1 TARGET4=198.18.0.2 SCAN6=2001:db8::1 TARGET6=2001:db8::2
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE

die() {
  echo "lab.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

check_name() {
  [[ "$1" =~ ^[a-z0-9]{1,12}$ ]] || die "--name must be 1-12 characters [a-z0-9], got '$1'"
}

check_list() { # $1 = option name, $2 = list
  local item lo hi
  [[ -z "$2" ]] && return 0
  [[ "$2" =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] || die "$1: bad port list '$2'"
  IFS=, read -ra items <<<"$2"
  for item in "${items[@]}"; do
    lo=$((10#${item%-*}))
    hi=$((10#${item#*-}))
    ((lo >= 1 && hi <= 65535 && lo <= hi)) || die "$1: bad port range '$item'"
  done
}

# --extra-target: addresses inside the lab's subnets other than the scanner's and the target's.
add_extra_targets() { # $1 = comma-separated addresses
  local a canon
  IFS=, read -ra items <<<"$1"
  for a in "${items[@]}"; do
    canon=$(python3 -c '
import ipaddress, sys
a = ipaddress.ip_address(sys.argv[1])
net = ipaddress.ip_network("198.18.0.0/24" if a.version == 4 else "2001:db8::/64")
bad = {ipaddress.ip_address(x) for x in ("198.18.0.0", "198.18.0.1", "198.18.0.2", "198.18.0.255",
                                          "2001:db8::", "2001:db8::1", "2001:db8::2")}
if a not in net or a in bad:
    sys.exit(1)
print(a)' "$a" 2>/dev/null) || die "--extra-target: '$a' is not a free address in 198.18.0.0/24 or 2001:db8::/64"
    EXTRA_TARGETS+=("$canon")
  done
}

# The open ports of --preset connect (deterministic).
preset_connect_open() {
  awk 'BEGIN {
    n = split("1,22,80,443,65535", fixed, ",")
    for (i = 1; i <= n; i++) { seen[fixed[i]] = 1; out = out (i > 1 ? "," : "") fixed[i] }
    for (i = 1; n < 200; i++) {
      p = 1 + (i * 2654435761) % 65535
      if ((p >= 30000 && p <= 34999) || (p >= 40000 && p <= 43999) || (p in seen)) continue
      seen[p] = 1; out = out "," p; n++
    }
    print out
  }'
}

# nft set body from a LIST: "22, 80, 20000-24999"
nft_set() { echo "${1//,/, }"; }

ns_exists() { ip netns list | awk '{print $1}' | grep -qx -- "$1"; }

# ---------------------------------------------------------------------------------------------
# down
# ---------------------------------------------------------------------------------------------
kill_ns_pids() { # kill the processes living in one of our namespaces (we started all of them)
  local ns=$1 pid
  ns_exists "$ns" || return 0
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for _ in $(seq 50); do
    [[ -z "$(ip netns pids "$ns" 2>/dev/null)" ]] && return 0
    sleep 0.1
  done
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  sleep 0.2
}

lab_down() { # $1 = NAME
  local name=$1 ns
  for ns in "pv-$name-tgt" "pv-$name-scan"; do
    [[ "$ns" == pv-"$name"-* ]] || continue
    kill_ns_pids "$ns"
    if ns_exists "$ns"; then
      ip netns del "$ns" || echo "lab.sh: could not delete namespace $ns" >&2
    fi
  done
}

# ---------------------------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------------------------
write_truth() { # $1 = file; the rest: proto=class=LIST triples
  awk -v specs="$*" '
    BEGIN {
      n = split(specs, spec, " ")
      for (i = 2; i <= n; i++) {
        split(spec[i], f, "=")
        proto = f[1]; state = f[2]; list = f[3]
        if (list == "") continue
        used[proto] = 1
        m = split(list, items, ",")
        for (j = 1; j <= m; j++) {
          k = split(items[j], r, "-")
          lo = r[1] + 0; hi = (k > 1 ? r[2] : r[1]) + 0
          for (p = lo; p <= hi; p++) {
            key = proto SUBSEP p
            if ((key in st) && st[key] != state) {
              printf "lab.sh: %s port %d is listed as both %s and %s\n", proto, p, st[key], state > "/dev/stderr"
              bad = 1; exit 1
            }
            st[key] = state
          }
        }
      }
      for (proto in used) {
        for (p = 1; p <= 65535; p++) {
          key = proto SUBSEP p
          printf "%s\t%d\t%s\n", proto, p, ((key in st) ? st[key] : "closed") > spec[1]
        }
      }
    }'
}

CREATED_SCAN=0
CREATED_TGT=0
UP_NAME=""
on_up_failure() {
  local rc=$?
  trap - EXIT
  if ((rc != 0)) && [[ -n "$UP_NAME" ]]; then
    echo "lab.sh: 'up' failed (exit $rc), tearing down what it created" >&2
    ((CREATED_TGT)) && { kill_ns_pids "pv-$UP_NAME-tgt"; ip netns del "pv-$UP_NAME-tgt" 2>/dev/null || true; }
    ((CREATED_SCAN)) && { kill_ns_pids "pv-$UP_NAME-scan"; ip netns del "pv-$UP_NAME-scan" 2>/dev/null || true; }
  fi
  exit "$rc"
}

probe_tcp() { # $1 = address, $2 = port; succeeds if the target answered (accept or refuse)
  local err rc=0
  err=$(ip netns exec "$SCAN_NS" timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" 2>&1) || rc=$?
  ((rc == 0)) || [[ "$err" == *"Connection refused"* ]]
}

lab_up() {
  local name=$1 dir=$2 listener=$3 keep_rl=$4
  SCAN_NS="pv-$name-scan"
  TGT_NS="pv-$name-tgt"
  local sif="pvs$name" tif="pvt$name"

  ns_exists "$SCAN_NS" && die "namespace $SCAN_NS already exists (run 'lab.sh down --name $name')"
  ns_exists "$TGT_NS" && die "namespace $TGT_NS already exists (run 'lab.sh down --name $name')"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  rm -f "$dir/truth.tsv" "$dir/truth-detail.tsv" "$dir/env" "$dir/listener.out" "$dir/listener.err"

  write_truth "$dir/truth.tsv" \
    "tcp=open=$TCP_OPEN" "tcp=filtered=$TCP_DROP" "tcp=filtered=$TCP_REJECT" \
    "udp=open=$UDP_OPEN" "udp=filtered=$UDP_DROP" "udp=filtered=$UDP_REJECT" ||
    die "conflicting port lists"
  # A port may not be both dropped and rejected either; truth-detail.tsv tells them apart.
  write_truth "$dir/truth-detail.tsv" "tcp=open=$TCP_OPEN" "tcp=drop=$TCP_DROP" \
    "tcp=reject=$TCP_REJECT" "udp=open=$UDP_OPEN" "udp=drop=$UDP_DROP" \
    "udp=reject=$UDP_REJECT" || die "conflicting port lists"

  if [[ -z "$listener" ]]; then
    listener="$dir/lab_listener"
    g++ -std=c++20 -O2 -o "$listener" "$HERE/lab_listener.cpp" || die "cannot compile lab_listener"
  fi
  [[ -x "$listener" ]] || die "listener '$listener' is not executable"

  UP_NAME=$name
  trap on_up_failure EXIT

  ip netns add "$SCAN_NS"
  CREATED_SCAN=1
  ip netns add "$TGT_NS"
  CREATED_TGT=1
  # Both veth ends are created directly inside the namespaces: nothing appears in the root ns.
  ip link add "$sif" netns "$SCAN_NS" type veth peer name "$tif" netns "$TGT_NS"
  ip -n "$SCAN_NS" link set lo up
  ip -n "$TGT_NS" link set lo up
  ip -n "$SCAN_NS" addr add "$SCAN4/24" dev "$sif"
  ip -n "$TGT_NS" addr add "$TARGET4/24" dev "$tif"
  ip -n "$SCAN_NS" addr add "$SCAN6/64" dev "$sif" nodad
  ip -n "$TGT_NS" addr add "$TARGET6/64" dev "$tif" nodad
  local extra
  for extra in "${EXTRA_TARGETS[@]}"; do
    if [[ $extra == *:* ]]; then
      ip -n "$TGT_NS" addr add "$extra/64" dev "$tif" nodad
    else
      ip -n "$TGT_NS" addr add "$extra/24" dev "$tif"
    fi
  done
  ip -n "$SCAN_NS" link set "$sif" up
  ip -n "$TGT_NS" link set "$tif" up

  if ((!keep_rl)); then
    # ICMP rate limits are per namespace: lift them in the target so every reject and every
    # port-unreachable is sent. ratemask=0 exempts all types from both the per-peer and the
    # global limiter; the other knobs are belt and braces.
    ip netns exec "$TGT_NS" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_ratemask=0 \
      net.ipv6.icmp.ratelimit=0
    ip netns exec "$TGT_NS" sysctl -qw net.ipv4.icmp_msgs_per_sec=100000000 \
      net.ipv4.icmp_msgs_burst=100000000 2>/dev/null ||
      echo "lab.sh: note: icmp_msgs_per_sec is not per-namespace here; left alone" >&2
    ip netns exec "$TGT_NS" sysctl -qw net.ipv6.icmp.ratemask=255 2>/dev/null || true
  fi

  local rules="" p
  for p in tcp udp; do
    local drop reject
    if [[ $p == tcp ]]; then drop=$TCP_DROP reject=$TCP_REJECT; else drop=$UDP_DROP reject=$UDP_REJECT; fi
    [[ -n "$drop" ]] && rules+="    $p dport { $(nft_set "$drop") } counter drop"$'\n'
    if [[ -n "$reject" ]]; then
      rules+="    meta nfproto ipv4 $p dport { $(nft_set "$reject") } counter reject with icmp type admin-prohibited"$'\n'
      rules+="    meta nfproto ipv6 $p dport { $(nft_set "$reject") } counter reject with icmpv6 type admin-prohibited"$'\n'
    fi
  done
  ip netns exec "$TGT_NS" nft -f - <<EOF
table inet pvlab {
  chain input {
    type filter hook input priority 0; policy accept;
    meta l4proto tcp tcp flags & (syn | ack) == syn counter comment "syn-in"
    meta l4proto udp counter comment "udp-in"
$rules  }
}
EOF

  local largs=()
  [[ -n "$TCP_OPEN" ]] && largs+=(--tcp "$TCP_OPEN")
  [[ -n "$UDP_OPEN" ]] && largs+=(--udp "$UDP_OPEN")
  ip netns exec "$TGT_NS" "$listener" "${largs[@]}" </dev/null >"$dir/listener.out" 2>"$dir/listener.err" &
  local lpid=$!
  for _ in $(seq 100); do
    grep -q '^ready$' "$dir/listener.out" 2>/dev/null && break
    kill -0 "$lpid" 2>/dev/null || die "listener died: $(cat "$dir/listener.err")"
    sleep 0.1
  done
  grep -q '^ready$' "$dir/listener.out" || die "listener not ready after 10 s"

  # Connectivity from the scanner namespace, both families: a port that is open or closed.
  local port
  port=$(awk -F'\t' '$1 == "tcp" && $3 != "filtered" { print $2; exit }' "$dir/truth.tsv")
  port=${port:-1}
  probe_tcp "$TARGET4" "$port" || die "no IPv4 connectivity $SCAN_NS -> $TARGET4:$port"
  probe_tcp "$TARGET6" "$port" ||
    die "no IPv6 connectivity $SCAN_NS -> $TARGET6:$port"
  if command -v ping >/dev/null; then
    ip netns exec "$SCAN_NS" ping -c1 -W2 "$TARGET4" >/dev/null || die "ping $TARGET4 failed"
    ip netns exec "$SCAN_NS" ping -6 -c1 -W2 "$TARGET6" >/dev/null || die "ping $TARGET6 failed"
  fi

  cat >"$dir/env" <<EOF
NAME=$name
SCAN_NS=$SCAN_NS
TARGET_NS=$TGT_NS
SCAN_IF=$sif
TARGET_IF=$tif
SCAN4=$SCAN4
SCAN6=$SCAN6
TARGET4=$TARGET4
TARGET6=$TARGET6
EXTRA_TARGETS="${EXTRA_TARGETS[*]}"
LISTENER_PID=$lpid
STATEDIR=$dir
EOF
  trap - EXIT
}

# Refuse to run anything in a scanner namespace that could reach beyond the lab.
check_isolated() { # $1 = scan ns, $2 = NAME
  local links routes
  ns_exists "$1" || die "namespace $1 does not exist"
  links=$(ip -n "$1" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort | tr '\n' ' ')
  [[ "$links" == "lo pvs$2 " ]] || die "namespace $1 has unexpected links: $links"
  routes=$(ip -n "$1" route show default; ip -n "$1" -6 route show default)
  [[ -z "$routes" ]] || die "namespace $1 has a default route"
}

# ---------------------------------------------------------------------------------------------
main() {
  (($# >= 1)) || usage
  local cmd=$1
  shift
  local name="" dir="" listener="${PV_LAB_LISTENER:-}" keep_rl=0 family=4
  TCP_OPEN="" UDP_OPEN="" TCP_DROP="" TCP_REJECT="" UDP_DROP="" UDP_REJECT=""
  EXTRA_TARGETS=()
  while (($#)); do
    case $1 in
      --name) name=${2:?}; shift 2 ;;
      --dir) dir=${2:?}; shift 2 ;;
      --listener) listener=${2:?}; shift 2 ;;
      --tcp-open) TCP_OPEN=$2; check_list "$1" "$2"; shift 2 ;;
      --udp-open) UDP_OPEN=$2; check_list "$1" "$2"; shift 2 ;;
      --tcp-drop) TCP_DROP=$2; check_list "$1" "$2"; shift 2 ;;
      --tcp-reject) TCP_REJECT=$2; check_list "$1" "$2"; shift 2 ;;
      --udp-drop) UDP_DROP=$2; check_list "$1" "$2"; shift 2 ;;
      --udp-reject) UDP_REJECT=$2; check_list "$1" "$2"; shift 2 ;;
      --keep-icmp-ratelimit) keep_rl=1; shift ;;
      --extra-target) add_extra_targets "${2:?}"; shift 2 ;;
      --preset)
        [[ ${2:-} == connect ]] || die "--preset: unknown preset '${2:-}' (known: connect)"
        TCP_OPEN=$(preset_connect_open) TCP_DROP=30000-34999 TCP_REJECT=40000-43999
        shift 2
        ;;
      --family) family=${2:?}; shift 2 ;;
      --) shift; break ;;
      -h | --help) usage ;;
      *) die "unknown argument '$1'" ;;
    esac
  done
  [[ -n "$name" ]] || die "--name is required"
  check_name "$name"
  ((EUID == 0)) || die "must run as root"

  case $cmd in
    up)
      [[ -n "$dir" ]] || die "--dir is required"
      lab_up "$name" "$dir" "$listener" "$keep_rl"
      ;;
    down)
      lab_down "$name"
      ;;
    exec)
      (($#)) || die "exec: no command"
      check_isolated "pv-$name-scan" "$name"
      exec ip netns exec "pv-$name-scan" "$@"
      ;;
    counters)
      ns_exists "pv-$name-tgt" || die "namespace pv-$name-tgt does not exist"
      ip netns exec "pv-$name-tgt" nft list table inet pvlab
      ;;
    selfcheck)
      [[ -n "$dir" ]] || die "--dir is required"
      check_isolated "pv-$name-scan" "$name"
      local target=$TARGET4
      [[ $family == 6 ]] && target=$TARGET6
      local opt6=()
      [[ $family == 6 ]] && opt6=(-6)
      ip netns exec "pv-$name-scan" nmap "${opt6[@]}" -sT -T4 -p- -n -Pn "$target" \
        -oX "$dir/selfcheck-nmap$family.xml" >/dev/null
      python3 "$HERE/compare.py" --truth "$dir/truth.tsv" --nmap-xml "$dir/selfcheck-nmap$family.xml" \
        --address "$target" --proto tcp
      ;;
    *) usage ;;
  esac
}

main "$@"
