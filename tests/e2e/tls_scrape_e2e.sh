#!/usr/bin/env bash
# End-to-end: a real Prometheus scrapes the agent over TLS with bcrypt basic auth
# (--web.config.file, the exporter toolkit's format).
#
#   tests/e2e/tls_scrape_e2e.sh [--binary PATH] [--keep]
#
# In a throw-away network namespace with nothing but loopback, the agent runs on the
# built-in configuration (it scans 127.0.0.1 of that namespace) with a web configuration
# naming tests/exporters/tls/server.pem and one user, and Prometheus scrapes it three ways:
# https with the right password (must be up), https with a wrong password (must be down,
# 401), plain http (must be down). Then curl checks the probes need no credentials, and a
# SIGHUP with a changed user list takes effect without a restart, while a broken file is
# refused and the running settings kept. Exit 0 pass, 1 fail, 77 skip (no root, namespaces,
# prometheus or curl), unless PORTVIGIL_REQUIRE_LAB=1, which makes a skip a failure.

# shellcheck disable=SC2317
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
readonly HERE ROOT
TLS="$ROOT/tests/exporters/tls"

E2E=tls_scrape_e2e
# shellcheck source=tests/e2e/e2e_lib.sh
source "$HERE/e2e_lib.sh"
e2e_args "$@"

readonly AGENT_PORT=10117 PROM_PORT=9090 WAIT=60 BUDGET=150
START=$SECONDS
NS="pv-tls$(($$ % 100000))"
readonly NS START
# bcrypt (cost 4) of "s3cret" and of "U*U" (the crypt_blowfish test vector)
readonly HASH_S3CRET='$2y$04$3Ldgy7bINBHaeMpta5RpWe8UKvsAsTRkjpFypk/9.wiVzrkZ2rkbC'
readonly HASH_VECTOR='$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'

((EUID == 0)) || skip_or_fail "needs root (network namespaces)"
for tool in ip prometheus curl python3; do
  command -v "$tool" >/dev/null || skip_or_fail "'$tool' not found"
done
[[ -x "$binary" ]] || { echo "$E2E: FAIL: portvigil binary '$binary' not found" >&2; exit 1; }

TMP=$(mktemp -d /tmp/portvigil-tls-e2e.XXXXXX)
AGENT_PID="" PROM_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  e2e_stop $AGENT_PID $PROM_PID
  ip netns del "$NS" 2>/dev/null
  if ((rc != 0)); then
    echo "---- agent log (last 30 lines) ----" >&2
    tail -n 30 "$TMP/agent.log" >&2 2>/dev/null
    echo "---- prometheus log (last 15 lines) ----" >&2
    tail -n 15 "$TMP/prometheus.log" >&2 2>/dev/null
  fi
  if [[ $keep == 1 ]]; then echo "$E2E: kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip netns add "$NS" || skip_or_fail "cannot create network namespaces here"
ip -n "$NS" link set lo up
ns() { ip netns exec "$NS" "$@"; }
# Nothing but loopback: a wrong address cannot leave the namespace.
[[ $(ns ip -o link | wc -l) == 1 ]] || fail "the namespace has links besides lo"
[[ -z $(ns ip route show default) ]] || fail "the namespace has a default route"

# prom_query and friends of e2e_lib.sh run through in_scan
in_scan() { ns "$@"; }

cp "$TLS"/{server.pem,server.key,ca.pem} "$TMP/"
write_web() {
  printf 'tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n' >"$TMP/web.yml"
  printf 'basic_auth_users:\n  %s: %s\n' "$1" "$2" >>"$TMP/web.yml"
}
write_web prom "$HASH_S3CRET"

# ip netns exec execs the agent: $! is the agent (a shell function would put a subshell in
# between and SIGHUP would kill that instead).
ip netns exec "$NS" "$binary" agent --state-dir "$TMP/state" --web.listen-address "127.0.0.1:$AGENT_PORT" \
  --web.config.file "$TMP/web.yml" </dev/null >"$TMP/agent.log" 2>&1 &
AGENT_PID=$!

scrape() { # job name, scheme, password
  cat <<EOF
  - job_name: $1
    scheme: $2
    tls_config: {ca_file: $TMP/ca.pem}
    basic_auth: {username: prom, password: $3}
    static_configs: [{targets: ["127.0.0.1:$AGENT_PORT"]}]
EOF
}
{
  printf 'global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n'
  scrape tls https s3cret
  scrape wrongpass https wrong
  scrape plain http s3cret
} >"$TMP/prometheus.yml"
ip netns exec "$NS" prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn \
  </dev/null >"$TMP/prometheus.log" 2>&1 &
PROM_PID=$!

prom_ready() { ns curl -sf --max-time 2 "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1; }
wait_for "Prometheus ready" prom_ready
grep -q "metrics on https://127.0.0.1:$AGENT_PORT/metrics" "$TMP/agent.log" ||
  wait_for "agent says it serves https" grep -q "metrics on https://" "$TMP/agent.log"

# ---- Prometheus' view -------------------------------------------------------------------------
wait_for "https + right password: up == 1" count_is 'up{job="tls"} == 1' 1
wait_for "metrics arrive over TLS" count_is 'portvigil_build_info{job="tls"} == 1' 1
wait_for "https + wrong password: up == 0" count_is 'up{job="wrongpass"} == 0' 1
wait_for "plain http: up == 0" count_is 'up{job="plain"} == 0' 1
count_is 'portvigil_build_info{job=~"wrongpass|plain"}' 0 || fail "metrics leaked without TLS or credentials"
# Prometheus says why the two fail.
targets=$(ns curl -sS --max-time 3 "http://127.0.0.1:$PROM_PORT/api/v1/targets")
python3 - "$targets" <<'PY' || fail "Prometheus' target errors are not the expected ones"
import json, sys
t = {a["labels"]["job"]: a for a in json.loads(sys.argv[1])["data"]["activeTargets"]}
assert "401" in t["wrongpass"]["lastError"], t["wrongpass"]["lastError"]
assert t["plain"]["lastError"], "plain http scrape has no error"
assert t["tls"]["health"] == "up", t["tls"]
PY
log "ok: Prometheus reports 401 for the wrong password and an error for plain http"

# ---- curl: probes, credentials ----------------------------------------------------------------
url="https://127.0.0.1:$AGENT_PORT"
code() { ns curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$TMP/ca.pem" "$@"; }
[[ $(code "$url/-/healthy") == 200 ]] || fail "/-/healthy needs credentials"
[[ $(code "$url/metrics") == 401 ]] || fail "/metrics without credentials is not 401"
[[ $(code -u prom:s3cret "$url/metrics") == 200 ]] || fail "/metrics with credentials is not 200"
log "ok: probes open, /metrics guarded"

# ---- SIGHUP: a new user list takes effect; a broken file is refused ---------------------------
write_web vector "$HASH_VECTOR"
kill -HUP "$AGENT_PID"
new_user_works() { [[ $(code -u 'vector:U*U' "$url/metrics") == 200 ]]; }
wait_for "SIGHUP: the new user is accepted" new_user_works
[[ $(code -u prom:s3cret "$url/metrics") == 401 ]] || fail "the removed user still gets in"
printf 'tls_server_config:\n  cert_file: missing.pem\n  key_file: server.key\n' >"$TMP/web.yml"
kill -HUP "$AGENT_PID"
refused() { grep -q "web configuration not reloaded" "$TMP/agent.log"; }
wait_for "SIGHUP: a broken web configuration is refused" refused
grep -q "missing.pem is not a readable file" "$TMP/agent.log" || fail "the refusal does not name the file"
new_user_works || fail "the running settings were not kept after a broken file"
[[ $(code "$url/metrics") == 401 ]] || fail "/metrics needs no credentials after a broken file"
# A valid file that turns TLS off is refused as well: that takes a restart.
printf 'basic_auth_users:\n  vector: %s\n' "$HASH_VECTOR" >"$TMP/web.yml"
kill -HUP "$AGENT_PID"
tls_kept() { grep -q "turning TLS off takes a restart" "$TMP/agent.log"; }
wait_for "SIGHUP: a file without TLS is refused" tls_kept
new_user_works || fail "TLS was turned off by a reload"
log "ok: reload takes new users and keeps the old settings on a broken file"

kill -TERM "$AGENT_PID"
wait "$AGENT_PID"
rc=$?
AGENT_PID=""
((rc == 0)) || fail "the agent exited $rc on SIGTERM"
log "PASS"
