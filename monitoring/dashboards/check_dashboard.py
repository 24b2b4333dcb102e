#!/usr/bin/env python3
"""Check monitoring/dashboards/portvigil.json.

  check_dashboard.py DASHBOARD.json [--rules-out FILE]   structural checks; with --rules-out,
                                                        also write every PromQL expression
                                                        (template variables substituted) as a
                                                        recording rule, for `promtool check rules`
  check_dashboard.py DASHBOARD.json --print-exprs       one JSON object per line:
                                                        {"panel": TITLE, "ref": "A", "expr": ...}

Structural checks: valid JSON; uid "portvigil"; schemaVersion; a datasource-type template
variable for Prometheus named "datasource"; "shard", "replica", "instance", "scan_job" and
"host" query variables using label_values(), the agents chosen by shard and replica; every selector filtered by instance=~"$instance"; every panel and target uses the ${datasource} variable; unique panel ids;
gridPos on every panel; no panel overlaps another; every $variable in an expression is
defined (or a Grafana built-in); every metric an expression uses is one portvigil exports
(or ALERTS / up). Exits 1 with one line per problem.
"""
import argparse
import json
import re
import sys

# Grafana's built-in variables and the values used to substitute them for parsing.
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__interval_ms": "60000",
    "__from": "1764547200000",
    "__to": "1764550800000",
}
# What a user variable stands for when the expression is parsed: every value is a regex
# inside =~"..." (scan_job, host) or a duration (window).
USER_SUBST = {"instance": ".*", "scan_job": ".*", "host": ".*", "shard": ".*", "replica": ".*",
              "window": "1h",
              "datasource": "prometheus"}

KNOWN_METRICS = {
    "portvigil_shard_info",
    "portvigil_port_open", "portvigil_port_unexpected_open", "portvigil_port_series_dropped",
    "portvigil_ports", "portvigil_port_state_changes_total",
    "portvigil_scan_duration_seconds_bucket", "portvigil_scan_duration_seconds_sum",
    "portvigil_scan_duration_seconds_count", "portvigil_scan_success",
    "portvigil_last_scan_success_timestamp_seconds", "portvigil_job_interval_seconds",
    "portvigil_scans_total", "portvigil_probes_sent_total", "portvigil_probe_replies_total",
    "portvigil_probe_retransmissions_total", "portvigil_capture_drops_total",
    "portvigil_config_last_reload_successful",
    "portvigil_config_last_reload_success_timestamp_seconds", "portvigil_build_info",
    "portvigil_database_writable", "portvigil_scan_hosts_not_compared",
    "portvigil_hosts_gone_silent", "process_resident_memory_bytes",
    "portvigil_port_unexpected_open_since_timestamp_seconds",
    "portvigil_tls_certificate_expiry_timestamp_seconds", "portvigil_service_changes_total",
    "portvigil_port_unexpected_open_service_info",
    "ALERTS", "up",
}

VAR_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def substitute(expr):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in BUILTINS:
            return BUILTINS[name]
        return USER_SUBST.get(name, m.group(0))
    return VAR_RE.sub(repl, expr)


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def collect_exprs(dash):
    out = []
    for p in walk_panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if "expr" in t:
                out.append((p.get("title", "?"), t.get("refId", "?"), t["expr"]))
    for a in dash.get("annotations", {}).get("list", []):
        if "expr" in a:
            out.append(("annotation " + a.get("name", "?"), "-", a["expr"]))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if v.get("type") == "query":
            q = q.get("query") if isinstance(q, dict) else q
            m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", q or "")
            if m:
                out.append(("variable " + v["name"], "-", m.group(1)))
    return out


def check(dash):
    errors = []
    if dash.get("uid") != "portvigil":
        errors.append(f'uid is {dash.get("uid")!r}, expected "portvigil"')
    sv = dash.get("schemaVersion")
    if not isinstance(sv, int) or not 36 <= sv <= 39:
        errors.append(f"schemaVersion {sv!r} is not 36-39")
    if not dash.get("title"):
        errors.append("no title")

    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        errors.append('no template variable "datasource" of type datasource, query prometheus')
    for name in ("shard", "replica", "instance", "scan_job", "host"):
        v = variables.get(name)
        q = v.get("query") if v else None
        q = q.get("query") if isinstance(q, dict) else q
        if not v or v.get("type") != "query" or not (q or "").startswith("label_values("):
            errors.append(f'no query variable "{name}" using label_values()')
        elif v.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f'variable "{name}" does not use the ${{datasource}} variable')

    inst = variables.get("instance") or {}
    q = inst.get("query")
    q = (q.get("query") if isinstance(q, dict) else q) or ""
    if 'shard=~"$shard"' not in q or 'replica=~"$replica"' not in q:
        errors.append('variable "instance" is not chosen by shard=~"$shard" and replica=~"$replica"')
    if inst.get("allValue"):
        errors.append('variable "instance" sets allValue: All would ignore the shard and replica')

    ids = set()
    boxes = []
    for p in walk_panels(dash.get("panels", [])):
        title = p.get("title", "?")
        pid = p.get("id")
        if pid in ids:
            errors.append(f"panel {title!r}: duplicate id {pid}")
        ids.add(pid)
        g = p.get("gridPos")
        if not g or not all(k in g for k in ("x", "y", "w", "h")):
            errors.append(f"panel {title!r}: no gridPos")
        else:
            if g["x"] + g["w"] > 24:
                errors.append(f"panel {title!r}: wider than the 24-column grid")
            for other, og in boxes:
                if (g["x"] < og["x"] + og["w"] and og["x"] < g["x"] + g["w"]
                        and g["y"] < og["y"] + og["h"] and og["y"] < g["y"] + g["h"]):
                    errors.append(f"panel {title!r} overlaps {other!r}")
            boxes.append((title, g))
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"panel {title!r}: datasource is not ${{datasource}}")
        if not p.get("targets"):
            errors.append(f"panel {title!r}: no targets")
        for t in p.get("targets", []):
            if t.get("datasource", {}).get("uid") != "${datasource}":
                errors.append(f"panel {title!r} target {t.get('refId')}: datasource is not ${{datasource}}")
            if not t.get("expr", "").strip():
                errors.append(f"panel {title!r} target {t.get('refId')}: empty expr")

    for title, ref, expr in collect_exprs(dash):
        for m in VAR_RE.finditer(expr):
            name = m.group(1) or m.group(2) or m.group(3)
            if name not in variables and name not in BUILTINS:
                errors.append(f"{title!r} {ref}: undefined variable ${name}")
        # Metric names: identifiers followed by { or a space/paren that are not functions,
        # keywords or label names. Approximate, but any portvigil_* typo is caught.
        for name in re.findall(r"\b(portvigil_\w+|ALERTS|up)\b", expr):
            if name not in KNOWN_METRICS:
                errors.append(f"{title!r} {ref}: unknown metric {name}")
        # The agent selector applies everywhere: every series selected is filtered by it
        # (except in the queries that choose the agents: shard, replica, instance).
        choosers = ("variable instance", "variable shard", "variable replica")
        for m in [] if title in choosers else re.finditer(r"\b(portvigil_\w+|process_\w+|up)\b(\{[^}]*\})?", expr):
            if not m.group(2) or 'instance=~"$instance"' not in m.group(2):
                errors.append(f"{title!r} {ref}: {m.group(1)} is not filtered by instance=~\"$instance\"")
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dashboard")
    ap.add_argument("--rules-out")
    ap.add_argument("--print-exprs", action="store_true")
    args = ap.parse_args()
    try:
        with open(args.dashboard, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        print(f"{args.dashboard}: {e}", file=sys.stderr)
        return 1
    exprs = collect_exprs(dash)
    if args.print_exprs:
        for title, ref, expr in exprs:
            print(json.dumps({"panel": title, "ref": ref, "expr": substitute(expr)}))
        return 0
    errors = check(dash)
    for e in errors:
        print(f"{args.dashboard}: {e}", file=sys.stderr)
    if args.rules_out:
        # JSON is valid YAML: promtool reads this file as a rule file.
        rules = [{"record": f"portvigil_dashboard:expr_{i}", "expr": substitute(expr)}
                 for i, (_, _, expr) in enumerate(exprs)]
        with open(args.rules_out, "w", encoding="utf-8") as f:
            json.dump({"groups": [{"name": "dashboard-expressions", "rules": rules}]}, f, indent=1)
    if not errors:
        print(f"{args.dashboard}: OK ({len(exprs)} expressions)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
