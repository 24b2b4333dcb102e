#!/usr/bin/env bash
# Static checks of portvigil's monitoring files; exits non-zero on any failure.
#
#   monitoring/check.sh
#
#   1. promtool check rules   alerts/portvigil.rules.yml, alerts/portvigil.fleet.rules.yml
#   2. promtool test rules    alerts/tests/*.yml (unit tests of every alert)
#   3. the dashboard          dashboards/check_dashboard.py (structure, variables, datasource,
#                             metric names) + every PromQL expression parsed by promtool
#   4. prometheus.example.yml promtool check config (rule_files pointed at this tree)
#   5. alertmanager.example.yml amtool check-config + the severity routes
#
# Needs promtool (Debian package "prometheus"), amtool ("prometheus-alertmanager") and
# python3. Without promtool it exits 77 (skipped) unless PORTVIGIL_REQUIRE_TOOLS=1; without
# amtool step 5 is skipped with a note (a failure with PORTVIGIL_REQUIRE_TOOLS=1).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE
require=${PORTVIGIL_REQUIRE_TOOLS:-0}
failures=0

step() { printf '== %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  failures=$((failures + 1))
}

if ! command -v promtool >/dev/null; then
  echo "monitoring/check.sh: promtool not found (apt-get install prometheus)" >&2
  [[ $require == 1 ]] && exit 1
  exit 77
fi
command -v python3 >/dev/null || { echo "monitoring/check.sh: python3 not found" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

rule_files=("$HERE/alerts/portvigil.rules.yml" "$HERE/alerts/portvigil.fleet.rules.yml")
step "promtool check rules alerts/portvigil.rules.yml alerts/portvigil.fleet.rules.yml"
promtool check rules "${rule_files[@]}" || fail "promtool check rules"

step "promtool test rules alerts/tests/*.yml"
tests=("$HERE"/alerts/tests/*.yml)
[[ -e ${tests[0]} ]] || fail "no rule tests in alerts/tests"
promtool test rules "${tests[@]}" || fail "promtool test rules"

# Every alert in the rule file must be exercised by a test, firing and not firing.
step "every alert has firing and non-firing tests"
python3 - "${#rule_files[@]}" "${rule_files[@]}" "${tests[@]}" <<'EOF' || fail "alert test coverage"
import re, sys
n = int(sys.argv[1])
alerts = []
for path in sys.argv[2:2 + n]:
    alerts += re.findall(r"^\s*-\s*alert:\s*(\S+)", open(path, encoding="utf-8").read(), re.M)
firing, quiet = set(), set()
for path in sys.argv[2 + n:]:
    text = open(path, encoding="utf-8").read()
    # each alert_rule_test item: "alertname: X" followed by "exp_alerts: []" or a list
    for m in re.finditer(r"alertname:\s*(\S+)\s*\n\s*exp_alerts:\s*(\[\])?", text):
        (quiet if m.group(2) else firing).add(m.group(1))
bad = [a for a in alerts if a not in firing or a not in quiet]
for a in bad:
    print(f"  {a}: firing test {'yes' if a in firing else 'MISSING'}, "
          f"non-firing test {'yes' if a in quiet else 'MISSING'}", file=sys.stderr)
print(f"  {len(alerts)} alerts, all tested both ways" if not bad else "", end="\n" if not bad else "")
sys.exit(1 if bad or not alerts else 0)
EOF

# Every alert names its runbook: a section of docs/operations.md that exists.
step "every alert has a runbook_url to an existing docs/operations.md section"
for rules in "${rule_files[@]}"; do
  python3 "$HERE/check_runbooks.py" "$rules" "$HERE/../docs/operations.md" ||
    fail "alert runbooks of $(basename "$rules")"
done

# portvigil's series carry scan_job; job and instance are Prometheus' own.
step "no rule uses the scrape job label for the portvigil job"
if grep -n '\$labels\.job\b' "${rule_files[@]}"; then
  fail "a rule annotation uses \$labels.job (the scrape job) for the portvigil job"
fi
if grep -nE 'portvigil_[a-z_]+\{[^}]*\bjob=' "${rule_files[@]}" "$HERE/dashboards/portvigil.json"; then
  fail "a rule or panel selects portvigil series by the job label"
fi

step "dashboards/portvigil.json"
python3 "$HERE/dashboards/check_dashboard.py" "$HERE/dashboards/portvigil.json" \
  --rules-out "$tmp/dashboard-exprs.rules.json" || fail "dashboard structure"
if [[ -s "$tmp/dashboard-exprs.rules.json" ]]; then
  promtool check rules "$tmp/dashboard-exprs.rules.json" || fail "dashboard PromQL expressions"
else
  fail "dashboard expressions were not extracted"
fi

step "prometheus.example.yml"
# The example loads the rules from their installed path; check it against this tree's copy.
sed "s#/usr/share/portvigil/monitoring/alerts/#$HERE/alerts/#" "$HERE/prometheus.example.yml" \
  >"$tmp/prometheus.yml"
promtool check config "$tmp/prometheus.yml" || fail "promtool check config"
grep -q "/usr/share/portvigil/monitoring/alerts/portvigil.rules.yml" "$HERE/prometheus.example.yml" ||
  fail "prometheus.example.yml no longer loads the installed rules path"

step "alertmanager.example.yml"
if command -v amtool >/dev/null; then
  amtool check-config "$HERE/alertmanager.example.yml" || fail "amtool check-config"
  route() { amtool config routes test --config.file="$HERE/alertmanager.example.yml" "$@" 2>/dev/null; }
  for case in "pager severity=critical alertname=PortvigilUnexpectedPortOpen" \
    "pager severity=critical alertname=PortvigilDown" \
    "pager severity=critical alertname=PortvigilAuthorizationExpired" \
    "chat severity=info alertname=PortvigilPortOpened" \
    "chat severity=info alertname=PortvigilHostAppeared" \
    "chat severity=warning alertname=PortvigilHostGoneSilent" \
    "chat severity=warning alertname=PortvigilAuthorizationExpiringSoon" \
    "chat severity=warning alertname=PortvigilScanStale"; do
    read -r want labels <<<"$case"
    # shellcheck disable=SC2086
    got=$(route $labels)
    if [[ "$got" == "$want" ]]; then
      echo "  $labels -> $got"
    else
      fail "alertmanager route for $labels: got '$got', want '$want'"
    fi
  done
elif [[ $require == 1 ]]; then
  fail "amtool not found (apt-get install prometheus-alertmanager)"
else
  echo "  skipped: amtool not found (apt-get install prometheus-alertmanager)"
fi

if ((failures)); then
  echo "monitoring/check.sh: $failures check(s) failed" >&2
  exit 1
fi
echo "monitoring/check.sh: all checks passed"
