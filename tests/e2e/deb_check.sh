#!/usr/bin/env bash
# The Debian package as an administrator meets it: build it, lintian, install, use, purge.
#
#   tests/e2e/deb_check.sh [DEB_DIR]
#
# Without DEB_DIR it builds the package with scripts/deb.sh into a temporary directory.
# Then: lintian reports no error; dpkg -i installs it on this machine; portvigil --version
# runs, man -w finds portvigil(8) and portvigil.toml(5); /etc/portvigil/portvigil.toml is
# a conffile that check-config accepts and that scans 127.0.0.1 only; the unit, the
# monitoring files, the logrotate snippet and the bash completion are where the issue says;
# the unit is neither enabled nor started; the -dbgsym package holds the debug symbols of
# the stripped binary; dpkg --purge removes every file and the conffile. Needs root (it
# installs a package); exit 77 without it, unless PORTVIGIL_REQUIRE_TOOLS=1.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if ((EUID != 0)); then
  [[ ${PORTVIGIL_REQUIRE_TOOLS:-0} == 1 ]] && { echo "deb_check: FAIL: needs root" >&2; exit 1; }
  echo "deb_check: SKIP: needs root (dpkg -i)" >&2
  exit 77
fi
fail() { echo "deb_check: FAIL: $*" >&2; exit 1; }
if dpkg-query -W -f='${Status}' portvigil 2>/dev/null | grep -q 'ok installed'; then
  fail "a portvigil package is already installed here; this test would remove it"
fi
tmp=$(mktemp -d)
cleanup() {
  dpkg --purge portvigil-dbgsym portvigil >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
dir=${1:-}
if [[ -z $dir ]]; then
  dir="$tmp/deb"
  "$ROOT/scripts/deb.sh" "$dir" >"$tmp/build.log" 2>&1 || { tail -n 40 "$tmp/build.log" >&2; fail "scripts/deb.sh"; }
fi
deb=$(ls "$dir"/portvigil_*.deb 2>/dev/null | head -n 1)
dbgsym=$(ls "$dir"/portvigil-dbgsym_*.deb 2>/dev/null | head -n 1)
[[ -n $deb ]] || fail "no portvigil_*.deb in $dir"
[[ -n $dbgsym ]] || fail "no portvigil-dbgsym_*.deb in $dir (separate debug symbols)"

if command -v lintian >/dev/null; then
  lintian --fail-on error "$deb" >"$tmp/lintian.txt" 2>&1
  rc=$?
  cat "$tmp/lintian.txt"
  ((rc == 0)) || fail "lintian reports errors"
  echo "  ok lintian: no errors ($(grep -c '^W:' "$tmp/lintian.txt") warnings)"
elif [[ ${PORTVIGIL_REQUIRE_TOOLS:-0} == 1 ]]; then
  fail "lintian not found (PORTVIGIL_REQUIRE_TOOLS=1)"
fi

dpkg -i "$deb" "$dbgsym" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; fail "dpkg -i"; }
echo "  ok dpkg -i"
/usr/bin/portvigil --version || fail "portvigil --version"
man -w portvigil >/dev/null || fail "man -w portvigil"
man -w 5 portvigil.toml >/dev/null || fail "man -w 5 portvigil.toml"
for f in /lib/systemd/system/portvigil.service /etc/logrotate.d/portvigil \
  /usr/share/bash-completion/completions/portvigil \
  /usr/share/portvigil/monitoring/alerts/portvigil.rules.yml \
  /usr/share/portvigil/monitoring/alerts/portvigil.fleet.rules.yml \
  /usr/share/portvigil/monitoring/dashboards/portvigil.json \
  /usr/share/doc/portvigil/copyright /usr/share/doc/portvigil/config.md \
  /usr/share/doc/portvigil/operations.md /usr/share/doc/portvigil/portvigil.example.toml; do
  [[ -f $f ]] || fail "$f not installed"
done
# The maintainer scripts dh_installsystemd writes: reload, stop on removal, forget on purge.
grep -q 'deb-systemd-helper' /var/lib/dpkg/info/portvigil.postinst ||
  fail "postinst does not register the unit (deb-systemd-helper)"
grep -q 'deb-systemd-invoke stop' /var/lib/dpkg/info/portvigil.prerm ||
  fail "prerm does not stop the unit (deb-systemd-invoke stop)"
grep -q 'deb-systemd-helper purge' /var/lib/dpkg/info/portvigil.postrm ||
  fail "postrm does not purge the unit's state (deb-systemd-helper purge)"
grep -qx /etc/portvigil/portvigil.toml /var/lib/dpkg/info/portvigil.conffiles ||
  fail "/etc/portvigil/portvigil.toml is not a conffile"
/usr/bin/portvigil check-config /etc/portvigil/portvigil.toml || fail "check-config rejects the shipped configuration"
grep -q '^networks = \["127.0.0.0/8", "::1/128"\]' /etc/portvigil/portvigil.toml &&
  grep -q '^targets = \["127.0.0.1"\]' /etc/portvigil/portvigil.toml ||
  fail "the shipped configuration is not loopback-only"
grep -q '^state-dir = "/var/lib/portvigil"' /etc/portvigil/portvigil.toml || fail "state-dir is not /var/lib/portvigil"
if [[ -d /run/systemd/system ]]; then
  [[ $(systemctl is-enabled portvigil 2>/dev/null) != enabled ]] || fail "the unit was enabled on install"
fi
[[ ! -e /etc/systemd/system/multi-user.target.wants/portvigil.service ]] || fail "the unit was enabled on install"
# Stripped, with its debug symbols in the -dbgsym package under the binary's build id.
sections=$(readelf -S /usr/bin/portvigil) || fail "readelf cannot read /usr/bin/portvigil"
! grep -q '\.symtab' <<<"$sections" || fail "/usr/bin/portvigil is not stripped"
build_id=$(readelf -n /usr/bin/portvigil | sed -n 's/.*Build ID: *//p')
[[ -f /usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug ]] ||
  fail "no debug symbols for build id $build_id in portvigil-dbgsym"
echo "  ok installed files, conffile, unit not enabled, debug symbols"

dpkg --purge portvigil-dbgsym portvigil >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log" >&2; fail "dpkg --purge"; }
for f in /usr/bin/portvigil /etc/portvigil/portvigil.toml /lib/systemd/system/portvigil.service \
  /etc/logrotate.d/portvigil /usr/share/portvigil /etc/portvigil; do
  [[ ! -e $f ]] || fail "$f left after dpkg --purge"
done
echo "deb_check: all checks passed"
