#!/usr/bin/env bash
# portvigil multi-host lab: N target hosts, each its own network namespace (so each has its
# own kernel, and its own ICMP error rate limiter, left at the kernel's defaults), on one
# bridge in a scanner namespace with no route anywhere else.
#
#   multihost.sh up --prefix P --hosts N --dir DIR --listener PATH [--udp LIST] [--udp-drop LIST]
#   multihost.sh down --prefix P [--dir DIR]
#
# P is 1-6 characters [a-z0-9]. Namespaces: P-scan (bridge Pbr, 198.18.0.1/24, loopback) and
# P-t1 .. P-tN (198.18.0.(10+i)/24 on veth Pt<i>, its peer Ps<i> on the bridge); N is 1-200.
# Each target serves UDP LIST (default 53,123,161) with lab_listener and drops UDP
# --udp-drop LIST with nftables; every other UDP port answers ICMP port unreachable, as
# rate limited as the kernel's defaults make it (checked: net.ipv4.icmp_ratelimit = 1000).
# DIR keeps the listeners' output and pids (DIR/pids), which `down` stops.
# Run commands in the scanner namespace with `ip netns exec P-scan CMD`.
set -euo pipefail

die() {
  echo "multihost.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

down() {
  local i
  if [[ -n "$dir" && -f "$dir/pids" ]]; then
    while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done <"$dir/pids"
    rm -f "$dir/pids"
  fi
  local ns pids
  for ns in "$prefix-scan" $(seq -f "$prefix-t%g" 1 200); do
    [[ -e "/run/netns/$ns" ]] || continue
    # Whatever still runs inside (a listener, a scanner) goes with the namespace.
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -n "$pids" ]] && kill -TERM $pids 2>/dev/null
    ip netns del "$ns" 2>/dev/null || true
  done
}

up() {
  [[ $hosts =~ ^[0-9]+$ ]] && ((hosts >= 1 && hosts <= 200)) || die "--hosts must be 1-200"
  [[ -n "$dir" ]] || die "--dir is required"
  [[ -x "$listener" ]] || die "--listener: '$listener' is not executable"
  [[ "$udp" =~ ^[0-9,-]+$ ]] || die "--udp: bad port list '$udp'"
  [[ -z "$drop" || "$drop" =~ ^[0-9,-]+$ ]] || die "--udp-drop: bad port list '$drop'"
  mkdir -p "$dir"
  down
  local scan="$prefix-scan" i ns
  ip netns add "$scan"
  ip netns exec "$scan" ip link set lo up
  ip netns exec "$scan" ip link add "${prefix}br" type bridge
  ip netns exec "$scan" ip addr add 198.18.0.1/24 dev "${prefix}br"
  ip netns exec "$scan" ip link set "${prefix}br" up
  : >"$dir/pids"
  for i in $(seq 1 "$hosts"); do
    ns="$prefix-t$i"
    ip netns add "$ns"
    # Created inside the namespaces: nothing is ever left in the caller's.
    ip -n "$scan" link add "${prefix}s$i" type veth peer name "${prefix}t$i" netns "$ns"
    ip netns exec "$scan" ip link set "${prefix}s$i" master "${prefix}br" up
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip addr add "198.18.0.$((10 + i))/24" dev "${prefix}t$i"
    ip netns exec "$ns" ip link set "${prefix}t$i" up
    [[ "$(ip netns exec "$ns" sysctl -n net.ipv4.icmp_ratelimit)" == 1000 ]] ||
      die "host $i: net.ipv4.icmp_ratelimit is not the kernel's default 1000"
    if [[ -n "$drop" ]]; then
      ip netns exec "$ns" nft "add table inet pvlab; add chain inet pvlab in { type filter hook input priority 0; }; add rule inet pvlab in udp dport { $drop } drop" ||
        die "host $i: nftables rule failed"
    fi
    ip netns exec "$ns" "$listener" --udp "$udp" >"$dir/listener-$i.out" 2>&1 &
    echo $! >>"$dir/pids"
  done
  # Safety: nothing but the bridge and loopback, and no default route, in the scanner's.
  [[ -z "$(ip netns exec "$scan" ip route show default)" ]] || die "$scan has a default route"
  for i in $(seq 1 "$hosts"); do
    for _ in $(seq 100); do grep -qx ready "$dir/listener-$i.out" 2>/dev/null && break; sleep 0.1; done
    grep -qx ready "$dir/listener-$i.out" || die "the listener of host $i did not start"
  done
}

(($#)) || usage
cmd=$1
shift
prefix="" hosts=1 dir="" listener="" udp=53,123,161 drop=""
while (($#)); do
  case $1 in
    --prefix) prefix=${2:?}; shift 2 ;;
    --hosts) hosts=${2:?}; shift 2 ;;
    --dir) dir=${2:?}; shift 2 ;;
    --listener) listener=${2:?}; shift 2 ;;
    --udp) udp=${2:?}; shift 2 ;;
    --udp-drop) drop=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) die "unknown argument '$1'" ;;
  esac
done
[[ "$prefix" =~ ^[a-z0-9]{1,6}$ ]] || die "--prefix must be 1-6 characters [a-z0-9]"
case $cmd in
  up) up ;;
  down) down ;;
  *) usage ;;
esac
