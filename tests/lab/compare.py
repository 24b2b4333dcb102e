#!/usr/bin/env python3
"""Compare a scan result with the lab's truth.tsv.

  compare.py --truth truth.tsv (--nmap-xml F | --portvigil-json F) --address A [--proto tcp]
             [--ports LIST] [--show N]

Prints "mismatches=N compared=M" and then the first N mismatches as "proto port truth got".
Exit 0 when every compared port agrees, 1 on mismatches, 2 when the input cannot be read.
A truth of "filtered" for UDP also accepts "open|filtered" (a dropped UDP port cannot be told
from an open one that stays silent).
"""
import argparse
import ipaddress
import json
import sys
import xml.etree.ElementTree as ET


def expand(ports):
    out = []
    for item in ports.split(","):
        if not item:
            continue
        lo, _, hi = item.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def same_addr(a, b):
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def read_truth(path, proto):
    truth = {}
    with open(path) as f:
        for line in f:
            p, port, state = line.rstrip("\n").split("\t")
            if proto and p != proto:
                continue
            truth[(p, int(port))] = state
    return truth


def from_nmap(path, address):
    """Returns (listed, default) where default maps proto -> state for unlisted ports."""
    root = ET.parse(path).getroot()
    for host in root.iter("host"):
        if not any(same_addr(a.get("addr"), address) for a in host.iter("address")):
            continue
        listed, default = {}, {}
        ports = host.find("ports")
        if ports is None:
            return listed, default
        for port in ports.iter("port"):
            listed[(port.get("protocol"), int(port.get("portid")))] = port.find("state").get("state")
        extras = ports.findall("extraports")
        for extra in extras:
            state = extra.get("state")
            reasons = extra.findall("extrareasons")
            if reasons and all(r.get("ports") is not None for r in reasons):
                for r in reasons:
                    for n in expand(r.get("ports")):
                        listed[(r.get("proto", "tcp"), n)] = state
            elif len(extras) == 1:
                for r in reasons or [ET.Element("x", proto="tcp")]:
                    default[r.get("proto", "tcp")] = state
            else:
                raise ValueError("several <extraports> without port lists")
        return listed, default
    raise ValueError(f"host {address} not in {path}")


def from_portvigil(path, address):
    with open(path) as f:
        doc = json.load(f)
    for host in doc.get("hosts", []):
        if not same_addr(host.get("address", ""), address):
            continue
        default = {p: m["state"] for p, m in (host.get("majority") or {}).items()}
        listed = {(p["proto"], int(p["port"])): p["state"] for p in host.get("ports", [])}
        return listed, default
    raise ValueError(f"host {address} not in {path}")


def agrees(proto, truth, got):
    if truth == got:
        return True
    return proto == "udp" and truth == "filtered" and got == "open|filtered"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--truth", required=True)
    ap.add_argument("--nmap-xml")
    ap.add_argument("--portvigil-json")
    ap.add_argument("--address", required=True)
    ap.add_argument("--proto", default="")
    ap.add_argument("--ports", default="", help="compare only these ports (22,80,1000-2000)")
    ap.add_argument("--show", type=int, default=20)
    args = ap.parse_args()
    try:
        truth = read_truth(args.truth, args.proto)
        if args.ports:
            keep = set(expand(args.ports))
            truth = {k: v for k, v in truth.items() if k[1] in keep}
        if args.nmap_xml:
            listed, default = from_nmap(args.nmap_xml, args.address)
        elif args.portvigil_json:
            listed, default = from_portvigil(args.portvigil_json, args.address)
        else:
            ap.error("need --nmap-xml or --portvigil-json")
    except (OSError, ValueError, KeyError, TypeError, ET.ParseError) as e:
        print(f"compare.py: {e}", file=sys.stderr)
        print("mismatches=-1 compared=0")
        return 2
    bad = []
    for (proto, port), want in sorted(truth.items()):
        got = listed.get((proto, port), default.get(proto, "missing"))
        if not agrees(proto, want, got):
            bad.append((proto, port, want, got))
    print(f"mismatches={len(bad)} compared={len(truth)}")
    for b in bad[: args.show]:
        print("%s %d truth=%s got=%s" % b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
