#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_reply (corpus/reply/), fuzz_specs (corpus/specs/),
fuzz_event_log (corpus/event_log/), fuzz_config (corpus/config/) and fuzz_pcap
(corpus/pcap/: the reply frames inside capture files).

The reply seeds are small valid frames of every link type the parser reads, carrying the
replies a scan gets back (SYN/ACK, RST, UDP, ICMP and ICMPv6 unreachable quoting a probe,
IPv6 extension headers). Run it from anywhere; it rewrites the files in place.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
US4, THEM4, ROUTER4 = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2]), bytes([198, 18, 0, 254])
US6 = bytes.fromhex("20010db8000000000000000000000001")
THEM6 = bytes.fromhex("20010db8000000000000000000000002")
COOKIE, SPORT = 0x12345678, 40000


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def pseudo(src, dst, proto, length):
    if len(src) == 4:
        return src + dst + struct.pack(">BBH", 0, proto, length)
    return src + dst + struct.pack(">I3xB", length, proto)


def ip(src, dst, proto, payload, ext=b"", first=None):
    if len(src) == 4:
        h = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0x4000, 57, proto, 0,
                        src, dst)
        return h[:10] + struct.pack(">H", csum(h)) + h[12:] + payload
    nh = proto if first is None else first
    return struct.pack(">IHBB", 0x60000000, len(ext) + len(payload), nh, 57) + src + dst + ext + payload


def tcp(src, dst, sport, dport, seq, ack, flags, opts=b""):
    off = (20 + len(opts)) // 4
    t = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 65535, 0, 0) + opts
    c = csum(pseudo(src, dst, 6, len(t)) + t)
    return ip(src, dst, 6, t[:16] + struct.pack(">H", c) + t[18:])


def udp(src, dst, sport, dport, payload):
    u = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    c = csum(pseudo(src, dst, 17, len(u)) + u) or 0xFFFF
    return ip(src, dst, 17, u[:6] + struct.pack(">H", c) + u[8:])


def unreach(src, dst, code, probe):
    v6 = len(src) == 16
    quote = probe if v6 else probe[:28]
    m = bytes([1 if v6 else 3, code]) + b"\0" * 6 + quote
    c = csum((pseudo(src, dst, 58, len(m)) if v6 else b"") + m)
    return ip(src, dst, 58 if v6 else 1, m[:2] + struct.pack(">H", c) + m[4:])


def eth(pkt, tags=()):
    f = bytes.fromhex("020000000001020000000002")
    for i, tpid in enumerate(tags):
        f += struct.pack(">HH", tpid, 10 * (i + 1))
    return f + struct.pack(">H", 0x86DD if pkt[0] >> 4 == 6 else 0x0800) + pkt


def sll(pkt):
    et = 0x86DD if pkt[0] >> 4 == 6 else 0x0800
    return struct.pack(">HHH8sH", 0, 1, 6, bytes.fromhex("0200000000020000"), et) + pkt


def sll2(pkt):
    et = 0x86DD if pkt[0] >> 4 == 6 else 0x0800
    return struct.pack(">HHIHBB8s", et, 0, 2, 1, 0, 6, bytes.fromhex("0200000000020000")) + pkt


def null(pkt):
    return struct.pack("<I", 10 if pkt[0] >> 4 == 6 else 2) + pkt


syn4 = tcp(US4, THEM4, SPORT, 80, COOKIE, 0, 0x02, bytes.fromhex("020405b4"))
syn6 = tcp(US6, THEM6, SPORT, 80, COOKIE, 0, 0x02, bytes.fromhex("020405b4"))
udp4 = udp(US4, THEM4, SPORT + 0x78, 53, bytes.fromhex("5056010000010000000000000000020001"))
udp6 = udp(US6, THEM6, SPORT + 0x78, 53, b"")
hbh_dst = bytes([60, 0, 1, 4, 0, 0, 0, 0]) + bytes([6, 0, 1, 4, 0, 0, 0, 0])
t6 = tcp(THEM6, US6, 80, SPORT, 1, COOKIE + 1, 0x12)[40:]

REPLY = {
    "eth_synack_v4": eth(tcp(THEM4, US4, 80, SPORT, 0xA0B0C0D0, COOKIE + 1, 0x12)),
    "eth_vlan_rst_v6": eth(tcp(THEM6, US6, 80, SPORT, 0, COOKIE + 1, 0x14), (0x8100,)),
    "eth_qinq_rst_v4": eth(tcp(THEM4, US4, 80, SPORT, COOKIE, 0, 0x04), (0x88A8, 0x8100)),
    "sll_icmp_port_v4": sll(unreach(THEM4, US4, 3, udp4)),
    "sll2_icmp6_port": sll2(unreach(THEM6, US6, 4, udp6)),
    "null_udp_v4": null(udp(THEM4, US4, 53, SPORT + 0x78, b"\x50\x56\x81\x80")),
    "raw_icmp_admin_v4": unreach(ROUTER4, US4, 13, syn4),
    "raw_icmp6_admin": unreach(bytes.fromhex("20010db80000000000000000000000fe"), US6, 1, syn6),
    "raw_v6_exthdrs_synack": ip(THEM6, US6, 6, t6, ext=hbh_dst, first=0),
}

SPECS = {
    "ports_list": "22,80,443,1000-2000",
    "ports_qualified": "T:22,25,U:53,161,T:8080-8090",
    "ports_open_ranges": "-1024,60000-",
    "ports_all": "-",
    "target_v4": "198.18.0.1",
    "target_octets": "198.18.0-1.*",
    "target_octet_range": "198.18.0.1-20,30",
    "target_cidr_v4": "198.18.0.0/15",
    "target_v6": "2001:db8::1",
    "target_cidr_v6": "2001:db8::/120",
    "target_scoped_v6": "fe80::1%lo",
    "target_hostname": "host.example/30",
    "scope_list": "198.18.0.0/15, 2001:db8::/32",
}

EV = ('{"id":%d,"time":"2023-11-14T22:13:20.123Z","job":"web","host":"198.18.0.2",'
      '"proto":"tcp","port":443,"from":"closed","to":"open","from_reason":"reset",'
      '"to_reason":"syn-ack","expected":false,"scan_id":7}\n')
EVENT_LOG = {
    "events": EV % 1 + EV % 2 + EV % 3,
    "torn": EV % 1 + (EV % 2)[:40],
    "garbage_id": EV % 1 + '{"id":99999999999999999999}\n' + EV % 2,
    "kinds": '{"id":4,"time":"2026-01-02T03:04:05.678Z","job":"web","host":"h",'
             '"kind":"host-appeared","ports":[22,443],"note":{"a":[1,2.5e3,null,true]}}\n',
    "escapes": '{"id":5,"time":"2026-01-02T03:04:05.678Z","job":"a\\"b","host":"x\\u000ay"}\n',
}

CONFIG = {
    "minimal": '[[authorization]]\nnetworks = ["198.18.0.0/24"]\n\n[[job]]\nname = "web"\n'
               'targets = ["198.18.0.0/28"]\ninterval = "15m"\nexpected-open = ["22/tcp"]\n',
    "full": '[agent]\nstate-dir = "/var/lib/portvigil"\nlog-level = "info"\n'
            'web-listen-address = "127.0.0.1:10117"\nretention = "90d"\nmax-rate = 500\n\n'
            '[[authorization]]\nnetworks = ["198.18.0.0/16", "2001:db8::/48"]\n'
            'owner = "netops"\nticket = "CHG-1"\nexpires = 2030-12-31\n\n'
            '[[authorization]]\nnetworks = ["10.0.0.0/8"]\nallow-large-scope = true\n'
            'owner = "netops"\nticket = "CHG-2"\nexpires = 2030-12-31T18:00:00Z\n\n'
            '[[job]]\nname = "dmz"\ntargets = ["198.18.0.1-20", "2001:db8::/120", "db.example/30"]\n'
            'exclude = ["198.18.0.7"]\nports = "T:22,80,443,8000-8100"\ntechnique = "syn"\n'
            'interval = "15m"\njitter = "10%"\nexpected-open = { "*" = ["22/tcp"], '
            '"198.18.0.9" = ["443/tcp"] }\n',
}


# pcap seeds for fuzz_pcap: the reply frames in capture files of their link type (libpcap
# DLT numbers: EN10MB 1, NULL 0, RAW 101 (Linux's 12 is read as RAW too), LINUX_SLL 113,
# LINUX_SLL2 276).
LINKTYPES = {"eth": 1, "null": 0, "raw": 101, "sll": 113, "sll2": 276}


def pcap_file(linktype, frames):
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for i, frame in enumerate(frames):
        out += struct.pack("<IIII", 1700000000 + i, 0, len(frame), len(frame)) + frame
    return out


def pcap_seeds():
    by_type = {}
    for name, frame in REPLY.items():
        by_type.setdefault(name.split("_")[0], []).append(frame)
    return {f"{kind}.pcap": pcap_file(LINKTYPES[kind], frames) for kind, frames in by_type.items()}


def main():
    for sub, files in (("reply", REPLY), ("specs", SPECS), ("event_log", EVENT_LOG),
                       ("config", CONFIG), ("pcap", pcap_seeds())):
        d = os.path.join(HERE, "corpus", sub)
        os.makedirs(d, exist_ok=True)
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
