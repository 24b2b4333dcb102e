#!/usr/bin/env bash
# Builds the Debian package from this checkout: scripts/deb.sh [OUTDIR]
# Installs the build dependencies when run as root (scripts/deps.sh deb), then
# runs dpkg-buildpackage -b and moves portvigil_*.deb (and the -dbgsym .deb with the
# separate debug symbols) into OUTDIR (default: build-deb/). Warnings are not errors here.
# dpkg-buildpackage writes its results into the checkout's parent directory first.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mkdir -p "${1:-build-deb}" && cd "${1:-build-deb}" && pwd)
scripts/deps.sh deb
# A failed build must not leave root-owned build trees in the checkout.
trap 'debian/rules clean >/dev/null 2>&1 || true' EXIT
DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" dpkg-buildpackage -b -us -uc
version=$(dpkg-parsechangelog -S Version)
for f in ../portvigil_"${version}"_*.deb ../portvigil-dbgsym_"${version}"_*.deb \
  ../portvigil_"${version}"_*.buildinfo ../portvigil_"${version}"_*.changes; do
  if [[ -e $f ]]; then mv -f "$f" "$out/"; fi
done
ls -1 "$out"/*.deb
