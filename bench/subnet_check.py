#!/usr/bin/env python3
"""Wrong ports of a multi-host scan against one truth shared by every live host.

  subnet_check.py --truth truth.tsv --ports 1-1000 --live FIRST-LAST [--live ...]
                  (--portvigil-json F | --nmap-xml F | --masscan-list F)

Every live address (inclusive IPv4/IPv6 ranges) must be reported with each port in --ports in
its truth.tsv state; a live host missing from the report counts all of its ports wrong; every
address reported up that is not live counts one wrong (an unused address listed as a host).
masscan reports only open and closed ports: not reporting a filtered port is right.
Prints "wrong=N live_missing=M phantom=K".
"""
import argparse
import ipaddress
import json
import sys
import xml.etree.ElementTree as ET


def expand(ports):
    out = []
    for item in ports.split(","):
        lo, _, hi = item.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--truth", required=True)
    ap.add_argument("--ports", required=True)
    ap.add_argument("--live", action="append", required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--portvigil-json")
    src.add_argument("--nmap-xml")
    src.add_argument("--masscan-list")
    a = ap.parse_args()

    ports = expand(a.ports)
    truth = {}
    for line in open(a.truth):
        proto, port, state = line.split()
        if proto == "tcp":
            truth[int(port)] = state
    want = {p: truth.get(p, "closed") for p in ports}
    live = []
    for r in a.live:
        lo, _, hi = r.partition("-")
        live.append((int(ipaddress.ip_address(lo)), int(ipaddress.ip_address(hi or lo))))

    def is_live(addr):
        n = int(ipaddress.ip_address(addr))
        return any(lo <= n <= hi for lo, hi in live)

    got = {}  # address -> {port: state}, only hosts reported up
    if a.portvigil_json:
        doc = json.load(open(a.portvigil_json))
        for h in doc["hosts"]:
            states = {}
            listed = {p["port"]: p["state"] for p in h["ports"] if p["proto"] == "tcp"}
            maj = h.get("majority", {}).get("tcp")
            for p in ports:
                states[p] = listed.get(p, maj["state"] if maj else None)
            got[h["address"]] = states
    elif a.nmap_xml:
        root = ET.parse(a.nmap_xml).getroot()
        for h in root.iter("host"):
            st = h.find("status")
            if st is None or st.get("state") != "up":
                continue
            addr = next(x.get("addr") for x in h.iter("address") if x.get("addrtype") != "mac")
            listed = {}
            extra = None
            pe = h.find("ports")
            if pe is not None:
                for p in pe.iter("port"):
                    if p.get("protocol") == "tcp":
                        listed[int(p.get("portid"))] = p.find("state").get("state")
                for e in pe.iter("extraports"):
                    extra = e.get("state")
            got[addr] = {p: listed.get(p, extra) for p in ports}
    else:
        for line in open(a.masscan_list):
            f = line.split()
            if len(f) >= 4 and not line.startswith("#") and f[1] == "tcp":
                got.setdefault(f[3], {})[int(f[2])] = f[0]

    wrong = missing = phantom = 0
    for addr in got:
        if not is_live(addr):
            phantom += 1
    total_live = sum(hi - lo + 1 for lo, hi in live)
    seen_live = 0
    for addr, states in got.items():
        if not is_live(addr):
            continue
        seen_live += 1
        for p in ports:
            s = states.get(p)
            if a.masscan_list:
                if want[p] in ("open", "closed"):
                    wrong += s != want[p]
                else:
                    wrong += s is not None
            else:
                wrong += s != want[p]
    missing = total_live - seen_live
    if a.masscan_list:
        # A live host masscan did not list lost its open and closed ports.
        wrong += missing * sum(1 for p in ports if want[p] in ("open", "closed"))
    else:
        wrong += missing * len(ports)
    print(f"wrong={wrong + phantom} live_missing={missing} phantom={phantom}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
