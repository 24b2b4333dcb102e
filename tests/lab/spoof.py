#!/usr/bin/env python3
"""Blind reply spoofer for the portvigil lab (tests/lab/raw_lab_test.cpp, RawSpoofed).

Runs in the lab's TARGET namespace and floods the scanner with forged replies "from the
target" for every listed target port and every source port a scan may use, with every number
a blind spoofer cannot know (sequence/acknowledgement numbers, IP IDs, protocol identifiers)
drawn at random. It never reads the scanner's probes.

  spoof.py --src 198.18.0.2 --dst 198.18.0.1 --tcp-ports 22,25 --udp-ports 53,123
           [--tcp-sports 40960-58880/256] [--udp-sports 32768-65535] [--seconds N]

TCP: bare SYN, bare RST, SYN+ACK, RST+ACK, RST, and ICMP port unreachable / admin prohibited
quoting a SYN with a random sequence number. UDP: a datagram from the target port (48 random
bytes: every identifier a guess) and an ICMP port unreachable quoting a datagram with a random IP ID.

NETWORK SAFETY: both addresses must lie in the lab's ranges (198.18.0.0/15, 2001:db8::/32);
anything else is refused. The lab's namespaces have no route out. Prints "cycle N" after each
complete pass over every port pair; stops on SIGTERM/SIGINT or after --seconds, printing "sent N
packets in C cycles".
"""
import argparse
import ipaddress
import random
import signal
import socket
import struct
import sys
import time

LAB_NETS = [ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:db8::/32")]
stop = False


def on_signal(_sig, _frame):
    global stop
    stop = True


def lab_address(text):
    a = ipaddress.ip_address(text)
    if not any(a in n for n in LAB_NETS):
        raise argparse.ArgumentTypeError(f"{text} is outside the lab ranges; refusing")
    return a


def ports(text):
    out = []
    for item in text.split(","):
        if not item:
            continue
        step = 1
        if "/" in item:
            item, s = item.split("/")
            step = int(s)
        lo, _, hi = item.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1, step))
    if any(not 0 < p < 65536 for p in out):
        raise argparse.ArgumentTypeError(f"bad port list {text}")
    return out


def fold(s):
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def csum(data, initial=0):
    if len(data) % 2:
        data += b"\0"
    return ~fold(sum(struct.unpack(f"!{len(data) // 2}H", data)) + initial) & 0xFFFF


class Packets:
    def __init__(self, src, dst):
        self.v6 = src.version == 6
        self.src = src.packed
        self.dst = dst.packed

    def pseudo(self, src, dst, proto, length):
        if self.v6:
            return src + dst + struct.pack("!IxxxB", length, proto)
        return src + dst + struct.pack("!xBH", proto, length)

    def ip(self, src, dst, proto, payload, ident=0, ttl=64):
        if self.v6:
            return struct.pack("!IHBB", 0x60000000 | (ident & 0xFFFFF), len(payload), proto, ttl) + src + dst + payload
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, ttl, proto, 0, src, dst)
        return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload

    def tcp(self, src, dst, sport, dport, seq, ack, flags):
        t = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0)
        ph = self.pseudo(src, dst, 6, 20)
        c = csum(t, sum(struct.unpack("!%dH" % (len(ph) // 2), ph)))
        return self.ip(src, dst, 6, t[:16] + struct.pack("!H", c) + t[18:])

    def udp(self, src, dst, sport, dport, payload, ident=0):
        length = 8 + len(payload)
        u = struct.pack("!HHHH", sport, dport, length, 0) + payload
        ph = self.pseudo(src, dst, 17, length)
        c = csum(u, sum(struct.unpack("!%dH" % (len(ph) // 2), ph))) or 0xFFFF
        return self.ip(src, dst, 17, u[:6] + struct.pack("!H", c) + u[8:], ident)

    def unreachable(self, code, quoted):
        if self.v6:
            quoted = quoted[:1232]
            body = struct.pack("!BBHI", 1, code, 0, 0) + quoted
            ph = self.pseudo(self.src, self.dst, 58, len(body))
            c = csum(body, sum(struct.unpack("!%dH" % (len(ph) // 2), ph)))
            return self.ip(self.src, self.dst, 58, body[:2] + struct.pack("!H", c) + body[4:])
        quoted = quoted[:28]
        body = struct.pack("!BBHI", 3, code, 0, 0) + quoted
        return self.ip(self.src, self.dst, 1, body[:2] + struct.pack("!H", csum(body)) + body[4:])


def u16(b, at):
    return (b[at] << 8) | b[at + 1]


class UdpReplyTemplate:
    """A forged datagram from the target port; make() sets its destination port."""

    def __init__(self, P, them, us, port, payload):
        self.pkt = bytearray(P.udp(them, us, port, 0, payload))
        self.at = 40 if P.v6 else 20
        # Sum of the datagram's checksummed words with destination port and checksum at 0.
        self.base = (~u16(self.pkt, self.at + 6)) & 0xFFFF

    def make(self, sport, _rand):
        b = self.pkt
        struct.pack_into("!H", b, self.at + 2, sport)
        c = ~fold(self.base + sport) & 0xFFFF
        struct.pack_into("!H", b, self.at + 6, c or 0xFFFF)
        return bytes(b)


class IcmpQuoteTemplate:
    """A forged ICMP port unreachable quoting a probe; make() sets its source port and IP ID."""

    def __init__(self, P, code, us, them, port):
        self.v6 = P.v6
        quoted = P.udp(us, them, 0, port, b"", 0)
        self.pkt = bytearray(P.unreachable(code, quoted))
        self.icmp = 40 if P.v6 else 20
        self.quote = self.icmp + 8
        self.qudp = self.quote + (40 if P.v6 else 20)
        self.icmp_base = (~u16(self.pkt, self.icmp + 2)) & 0xFFFF
        self.qip_base = 0 if P.v6 else (~u16(self.pkt, self.quote + 10)) & 0xFFFF
        self.icmp_base += self.qip_base  # takes the template's quoted-header checksum out

    def make(self, sport, ident):
        b = self.pkt
        s = self.icmp_base + sport
        struct.pack_into("!H", b, self.qudp, sport)
        if self.v6:
            struct.pack_into("!H", b, self.quote + 2, ident)  # low 16 bits of the flow label
            s += ident
        else:
            struct.pack_into("!H", b, self.quote + 4, ident)
            qc = ~fold(self.qip_base + ident) & 0xFFFF  # the quoted header's own checksum
            struct.pack_into("!H", b, self.quote + 10, qc)
            s += ident + qc
        struct.pack_into("!H", b, self.icmp + 2, ~fold(s) & 0xFFFF)
        return bytes(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", type=lab_address, required=True, help="the target (forged sender)")
    ap.add_argument("--dst", type=lab_address, required=True, help="the scanner")
    ap.add_argument("--tcp-ports", type=ports, default=[])
    ap.add_argument("--udp-ports", type=ports, default=[])
    ap.add_argument("--tcp-sports", type=ports, default=ports("40960-58880/256") + [40000])
    ap.add_argument("--udp-sports", type=ports, default=ports("32768-65535"))
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.src.version != args.dst.version:
        sys.exit("spoof.py: --src and --dst must be of one family")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rng = random.Random(args.seed)
    P = Packets(args.src, args.dst)
    fam = socket.AF_INET6 if P.v6 else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_RAW)  # IP header included
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    to = (str(args.dst), 0)
    them, us = P.src, P.dst
    r32 = lambda: rng.getrandbits(32)
    SYN, RST, ACK = 0x02, 0x04, 0x10
    icmp_codes = (4, 1) if P.v6 else (3, 13)
    port_unreach = 4 if P.v6 else 3
    sent = 0
    cycles = 0
    deadline = time.monotonic() + args.seconds

    def send(pkt):
        nonlocal sent
        while True:
            try:
                sock.sendto(pkt, to)
                sent += 1
                return
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                if e.errno == 105:  # ENOBUFS: let the queue drain
                    time.sleep(0.0005)
                    continue
                raise

    # UDP: 32768 source ports x ports x 2 packets per cycle, built once before the flood
    # (one cycle then costs a sendto per packet) by patching templates: the datagram (48 random
    # bytes: as long as an NTP answer, any identifier in it a guess) gets the source port as
    # its destination port, the ICMP error quotes a probe from that port with a random IP ID;
    # the checksums are adjusted incrementally.
    udp_templates = {
        port: [UdpReplyTemplate(P, them, us, port, rng.randbytes(48)),
               IcmpQuoteTemplate(P, port_unreach, us, them, port)]
        for port in args.udp_ports
    }
    udp_packets = [t.make(sport, rng.getrandbits(16)) for sport in args.udp_sports
                   for port in args.udp_ports for t in udp_templates[port]]
    print("spoofing", flush=True)
    while not stop and time.monotonic() < deadline:
        for sport in args.tcp_sports:
            for port in args.tcp_ports:
                if stop:
                    break
                for flags in (SYN, RST, SYN | ACK, RST | ACK):
                    send(P.tcp(them, us, port, sport, r32(), r32(), flags))
                quoted = P.tcp(us, them, sport, port, r32(), 0, SYN)
                for code in icmp_codes:
                    send(P.unreachable(code, quoted))
        for pkt in udp_packets:
            if stop:
                break
            send(pkt)
        if not stop:
            cycles += 1
            print(f"cycle {cycles}", flush=True)
    print(f"sent {sent} packets in {cycles} cycles", flush=True)


if __name__ == "__main__":
    main()
