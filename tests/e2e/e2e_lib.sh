# Shared helpers of the lab end-to-end tests (sourced, not run). The sourcing script sets
# E2E (its name, for messages), LAB (tests/lab/lab.sh), NAME (the lab's name), PROM_PORT,
# WAIT and BUDGET (seconds), START (=$SECONDS at its start) and AGENT_PID once the agent
# runs; NOTIFICATIONS (a file) before e2e_receiver and notifications.
# shellcheck shell=bash disable=SC2317

log() { printf '[%3ds] %s\n' "$((SECONDS - START))" "$*"; }

skip_or_fail() {
  if [[ ${PORTVIGIL_REQUIRE_LAB:-0} == 1 ]]; then
    echo "$E2E: FAIL: $* (PORTVIGIL_REQUIRE_LAB=1)" >&2
    exit 1
  fi
  echo "$E2E: SKIP: $*" >&2
  exit 77
}

fail() {
  log "FAIL: $*" >&2
  exit 1
}

# Everything that talks to the agent or Prometheus runs inside the scanner namespace
# (lab.sh exec refuses a namespace with a default route or an extra link).
in_scan() { "$LAB" exec --name "$NAME" -- "$@"; }

# prom_query EXPR -> the JSON answer of /api/v1/query
prom_query() {
  in_scan curl -sS --max-time 3 "http://127.0.0.1:$PROM_PORT/api/v1/query" \
    --data-urlencode "query=$1" 2>/dev/null
}

# series_count EXPR -> number of series in the result ("error" on a failed query)
series_count() {
  prom_query "$1" | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    print("error"); sys.exit()
print(len(d["data"]["result"]) if d.get("status") == "success" else "error")'
}

# alert_state ALERTNAME [LABEL=VALUE...] -> firing, pending or none
alert_state() {
  in_scan curl -sS --max-time 3 "http://127.0.0.1:$PROM_PORT/api/v1/alerts" 2>/dev/null |
    python3 -c '
import json, sys
name, want = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
try:
    alerts = json.load(sys.stdin)["data"]["alerts"]
except (ValueError, KeyError):
    print("error"); sys.exit()
states = [a["state"] for a in alerts if a["labels"].get("alertname") == name
          and all(a["labels"].get(k) == v for k, v in want.items())]
print("firing" if "firing" in states else "pending" if "pending" in states else "none")' "$@"
}

# wait_for DESCRIPTION COMMAND... : until COMMAND succeeds, at most $WAIT seconds
wait_for() {
  local what=$1 t0=$SECONDS
  shift
  while ! "$@"; do
    ((SECONDS - t0 < WAIT)) || fail "timed out after ${WAIT}s waiting for: $what"
    ((SECONDS - START < BUDGET)) || fail "test budget of ${BUDGET}s exhausted waiting for: $what"
    [[ -z ${AGENT_PID:-} ]] || kill -0 "$AGENT_PID" 2>/dev/null ||
      fail "the agent died while waiting for: $what"
    sleep 0.5
  done
  log "ok: $what ($((SECONDS - t0))s)"
}

count_is() { [[ "$(series_count "$1")" == "$2" ]]; }
count_ge() {
  local n
  n=$(series_count "$1")
  [[ $n != error ]] && ((n >= $2))
}
alert_is() { # WANT(regex) NAME LABELS...
  local want=$1
  shift
  [[ "$(alert_state "$@")" =~ ^($want)$ ]]
}

# e2e_args "$@": the options every e2e script takes. Sets binary, listener and keep.
e2e_args() {
  binary=${PORTVIGIL_BINARY:-$ROOT/build/agent/portvigil}
  listener=${PV_LAB_LISTENER:-}
  keep=${PORTVIGIL_E2E_KEEP:-0}
  while (($#)); do
    case $1 in
      --binary) binary=${2:?}; shift 2 ;;
      --listener) listener=${2:?}; shift 2 ;;
      --keep) keep=1; shift ;;
      -h | --help) sed -n '2,/^$/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) echo "$E2E: unknown argument '$1'" >&2; exit 2 ;;
    esac
  done
}

# e2e_require TOOL...: root, namespaces, the tools, a listener (or g++ to build one) and the
# binary; skips (or fails under PORTVIGIL_REQUIRE_LAB=1) without them. Makes paths absolute.
e2e_require() {
  ((EUID == 0)) || skip_or_fail "needs root (network namespaces)"
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || skip_or_fail "'$tool' not found (needs: $*)"
  done
  if [[ -z "$listener" ]]; then command -v g++ >/dev/null || skip_or_fail "no lab_listener and no g++"; fi
  unshare --net true 2>/dev/null || skip_or_fail "cannot create network namespaces here"
  [[ -x "$binary" ]] || { echo "$E2E: FAIL: portvigil binary '$binary' not found (--binary)" >&2; exit 1; }
  binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
  [[ -n "$listener" ]] && listener=$(cd "$(dirname "$listener")" && pwd)/$(basename "$listener")
  return 0
}

# e2e_stop PID...: SIGTERM, up to 5 s, then SIGKILL.
e2e_stop() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# e2e_receiver PORT: an Alertmanager webhook receiver on 127.0.0.1:PORT in the scanner
# namespace; one JSON line per notification in $NOTIFICATIONS, 200 to every POST. Sets
# RECEIVER_PID.
e2e_receiver() {
  in_scan python3 -c '
import http.server, sys
out = open(sys.argv[2], "a", encoding="utf-8")
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out.write(body.decode("utf-8").replace("\n", " ") + "\n"); out.flush()
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$1" "$NOTIFICATIONS" \
    </dev/null >"$NOTIFICATIONS.log" 2>&1 &
  RECEIVER_PID=$!
}

# notifications STATUS ALERTNAME HOST PORT -> how many alerts with that status ("firing" or
# "resolved"), name, host and port ("*": any) the receiver got, over all notifications
notifications() {
  python3 - "$NOTIFICATIONS" "$@" <<'PY'
import json, sys
path, status, name, host, port = sys.argv[1:6]
n = 0
try:
    lines = open(path, encoding="utf-8").read().splitlines()
except FileNotFoundError:
    lines = []
for line in lines:
    for a in json.loads(line).get("alerts", []):
        l = a.get("labels", {})
        if (a.get("status") == status and l.get("alertname") == name
                and (host == "*" or l.get("host") == host) and (port == "*" or l.get("port") == port)):
            n += 1
print(n)
PY
}
notified() { [[ $(notifications firing PortvigilUnexpectedPortOpen "$1" "$2") -ge 1 ]]; }
