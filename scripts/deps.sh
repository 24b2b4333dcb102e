#!/usr/bin/env bash
# Installs the Debian 12 packages portvigil needs, only those missing.
#   scripts/deps.sh build   compilers and libraries
#   scripts/deps.sh test    + lab, peer scanners and checkers used by the tests
#   scripts/deps.sh deb     + what building and checking the Debian package needs
set -euo pipefail

build_pkgs=(cmake make g++ pkg-config libasio-dev libpcap-dev prometheus-cpp-dev
  libtomlplusplus-dev libsqlite3-dev libgtest-dev libgmock-dev libsystemd-dev libyaml-cpp-dev
  libssl-dev libcrypt-dev libhowardhinnant-date-dev libcurl4-openssl-dev tzdata python3)
test_pkgs=(iproute2 iputils-ping nftables openssl nmap ndiff groff-base man-db bash-completion clang libclang-rt-14-dev procps time tcpdump curl
  prometheus prometheus-alertmanager systemd systemd-container)

deb_pkgs=(build-essential debhelper dpkg-dev lintian man-db)

want=("${build_pkgs[@]}")
[[ "${1:-build}" == test ]] && want+=("${test_pkgs[@]}")
[[ "${1:-build}" == deb ]] && want+=("${deb_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "portvigil: missing Debian packages: ${missing[*]}" >&2
  echo "run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "portvigil: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# prometheus and alertmanager start services on 0.0.0.0 when installed; the tests start
# their own on loopback, so forbid service starts during the install (policy-rc.d(8)).
guard=""
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  guard=/usr/sbin/policy-rc.d
fi
trap '[[ -n "$guard" ]] && rm -f "$guard"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
