#include "probe.hpp"

#include <array>
#include <random>

#include "udp_payloads.hpp"

namespace portvigil::raw {
namespace {

// SipHash-2-4 (Aumasson & Bernstein), over at most 40 bytes: small enough to keep here.
std::uint64_t rotl(std::uint64_t x, int b) {
  return (x << b) | (x >> (64 - b));
}

std::uint64_t siphash(const CookieKey& key, const std::uint8_t* in, std::size_t len) {
  std::uint64_t v0 = 0x736f6d6570736575ULL ^ key.k0;
  std::uint64_t v1 = 0x646f72616e646f6dULL ^ key.k1;
  std::uint64_t v2 = 0x6c7967656e657261ULL ^ key.k0;
  std::uint64_t v3 = 0x7465646279746573ULL ^ key.k1;
  auto round = [&] {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  };
  const std::size_t blocks = len / 8;
  for (std::size_t i = 0; i < blocks; ++i) {
    std::uint64_t m = 0;
    for (int b = 7; b >= 0; --b) m = (m << 8) | in[i * 8 + static_cast<std::size_t>(b)];
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  std::uint64_t last = static_cast<std::uint64_t>(len & 0xff) << 56;
  for (std::size_t b = 0; b < (len & 7); ++b) {
    last |= std::uint64_t{in[blocks * 8 + b]} << (8 * b);
  }
  v3 ^= last;
  round();
  round();
  v0 ^= last;
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

// What a reply must prove, per technique. The cookie c = SipHash-2-4(key, src, dst, dport)
// (32 bits) rides in every probe; a reply is taken only when it carries c back, so a blind
// spoofer who does not see our probes has to guess it. A reply that cannot carry c (a bare
// SYN, a RST without ACK to a segment without ACK) is never taken: it can change no state,
// and the port keeps the state silence gives it -- the one such a reply could not contradict.
//
//  technique    reply                       proof                                     state
//  -sS          SYN+ACK                     ack == c + 1                              open
//               RST+ACK                     ack == c + 1                              closed
//               bare SYN (split handshake)  none possible: ignored                    -
//               RST without ACK             none possible: ignored (RFC 793 3.4 and   -
//                                           Linux answer a segment without ACK with
//                                           RST+ACK, ack = seq + SYN + FIN + length)
//  -sF -sX      RST+ACK                     ack == c + 1 (the FIN counts)             closed
//  -sN          RST+ACK                     ack == c                                  closed
//  -sF -sN -sX  RST without ACK             none possible: ignored (silence:          -
//                                           open|filtered)
//  -sA          RST, with or without ACK    seq == c (RFC 793: seq = the probe's ack) unfiltered
//  TCP (all)    ICMP/ICMPv6 unreachable     quotes our addresses and ports, and       filtered
//                                           seq == c (the 8 bytes RFC 792 guarantees)
//  -sU          UDP datagram                from the probed port to udp_source_port,  open
//                                           which holds c's low 14 bits; from a port
//                                           whose payload has an identifier, also its
//                                           echo (udp_payloads.cpp: 16, 24 or 32 bits)
//               ICMP/ICMPv6 unreachable     quotes our addresses and ports, the IP ID  closed (port
//                                           (IPv6: flow label) = c's high 16 bits,     unreach.),
//                                           and the probe's UDP length and checksum    else
//                                           filtered
//
// Odds of a blind spoofer per forged packet and port: TCP 2^-32 (every proof is a 32-bit
// match); UDP replies 2^-30 (16-bit identifiers: DNS, NetBIOS, mDNS, CoAP, memcached),
// 2^-32 (rpcbind, NTP, SNMP, IKE, STUN) and 2^-14 (ports without an echoed identifier, among
// them every port probed with an empty datagram); ICMP errors to UDP probes 2^-30 (14
// source-port bits and 16 IP ID bits; a middlebox that rewrites the IP ID makes them
// unprovable, and those ports read as silence).

std::size_t build_tcp_probe(std::uint8_t flags, const ProbeFields& base, std::uint32_t c,
                            std::span<std::uint8_t> out, std::uint16_t sport_base) {
  ProbeFields f = base;
  f.sport = sport_base;
  f.tcp_flags = flags;
  // The cookie rides in seq (echoed in the ack of SYN/ACK or RST) and in ack (echoed in
  // the seq of the RST an ACK probe draws).
  f.seq = c;
  f.ack = (flags & tcp_flag::ack) ? c : 0;
  return build_tcp(f, out);
}

template <std::uint8_t Flags>
std::size_t build_tcp_t(const ProbeFields& base, std::uint32_t c, std::span<std::uint8_t> out,
                        std::uint16_t sport_base) {
  return build_tcp_probe(Flags, base, c, out, sport_base);
}

std::size_t build_udp_probe(const ProbeFields& base, std::uint32_t c, std::span<std::uint8_t> out,
                            std::uint16_t sport_base) {
  ProbeFields f = base;
  f.sport = udp_source_port(c, sport_base);
  f.ip_id = udp_probe_ip_id(c);
  std::array<std::uint8_t, kMaxUdpPayload> payload;  // stack, not heap: nothing per packet
  f.udp_payload = udp_payload_stamped(f.dport, c, payload);
  return build_udp(f, out);
}

// A TCP or UDP reply from the probed port of the target to our address and `our_port`.
bool from_target(const Reply& r, const ProbeKey& k, Reply::Kind kind, std::uint16_t our_port) {
  return r.kind == kind && r.src == k.dst && r.dst == k.src && r.sport == k.dport &&
         r.dport == our_port;
}

// An ICMP error to us quoting a probe of `proto` from our address and `our_port` to the
// probed address and port. The error itself may come from any router on the path.
bool quotes_probe(const Reply& r, const ProbeKey& k, std::uint8_t proto, std::uint16_t our_port) {
  return r.kind == Reply::Kind::unreachable && r.dst == k.src && r.quoted_proto == proto &&
         r.quoted_src == k.src && r.quoted_dst == k.dst && r.sport == our_port &&
         r.dport == k.dport;
}

// TCP: RFC 792 guarantees the 8 quoted bytes that hold our sequence number; a shorter quote
// cannot be authenticated, so it is not taken as an answer.
bool quotes_tcp_probe(const Reply& r, const ProbeKey& k) {
  return quotes_probe(r, k, 6, k.sport_base) && r.quoted_has_seq && r.seq == k.cookie;
}

// Replies to a TCP segment without ACK carry ACK and ack = seq + SYN + FIN (RFC 793 3.4).
template <std::uint32_t SeqAdvance>
bool validate_tcp_noack(const Reply& r, const ProbeKey& k) {
  if (r.kind == Reply::Kind::unreachable) return quotes_tcp_probe(r, k);
  if (!from_target(r, k, Reply::Kind::tcp, k.sport_base)) return false;
  // A bare SYN or a RST without ACK cannot echo the cookie: never an answer.
  return (r.flags & tcp_flag::ack) && r.ack == k.cookie + SeqAdvance;
}

bool validate_ack_probe(const Reply& r, const ProbeKey& k) {
  if (r.kind == Reply::Kind::unreachable) return quotes_tcp_probe(r, k);
  if (!from_target(r, k, Reply::Kind::tcp, k.sport_base)) return false;
  return (r.flags & tcp_flag::rst) && r.seq == k.cookie;  // RFC 793: RST seq = the probe's ack
}

bool validate_udp(const Reply& r, const ProbeKey& k) {
  const std::uint16_t sport = udp_source_port(k.cookie, k.sport_base);
  if (r.kind == Reply::Kind::unreachable) {
    if (!quotes_probe(r, k, 17, sport) || !r.quoted_has_udp_header) return false;
    if (r.quoted_ip_id != udp_probe_ip_id(k.cookie)) return false;  // v4 ID, v6 flow label
    // The quoted length and checksum are the probe's: rebuild it (on the stack).
    ProbeFields f;
    f.src = k.src;
    f.dst = k.dst;
    f.dport = k.dport;
    std::array<std::uint8_t, kMaxProbeSize> probe;
    const std::size_t n = build_udp_probe(f, k.cookie, probe, k.sport_base);
    if (n == 0) return false;
    const std::uint8_t* udp = probe.data() + (k.dst.v6 ? 40 : 20);
    return r.quoted_udp_len == ((udp[4] << 8) | udp[5]) &&
           r.quoted_udp_sum == ((udp[6] << 8) | udp[7]);
  }
  return from_target(r, k, Reply::Kind::udp, sport) &&
         udp_reply_echoes(k.dport, k.cookie, r.payload);
}

Observation filtered_by(const Reply& r) {
  return {PortState::filtered, unreachable_reason(r)};
}

Observation classify_syn(const Reply& r) {
  if (r.kind == Reply::Kind::unreachable) return filtered_by(r);
  if ((r.flags & tcp_flag::syn) && (r.flags & tcp_flag::ack)) {
    return {PortState::open, Reason::syn_ack};
  }
  if (r.flags & tcp_flag::rst) return {PortState::closed, Reason::reset};
  if (r.flags & tcp_flag::syn) return {PortState::open, Reason::syn_ack};  // split handshake
  return {PortState::filtered, Reason::unknown};
}

Observation classify_fin_like(const Reply& r) {
  if (r.kind == Reply::Kind::unreachable) return filtered_by(r);
  if (r.flags & tcp_flag::rst) return {PortState::closed, Reason::reset};
  return {PortState::open_filtered, Reason::unknown};
}

Observation classify_ack(const Reply& r) {
  if (r.kind == Reply::Kind::unreachable) return filtered_by(r);
  return {PortState::unfiltered, Reason::reset};
}

Observation classify_udp(const Reply& r) {
  if (r.kind == Reply::Kind::udp) return {PortState::open, Reason::udp_response};
  if (is_port_unreachable(r)) return {PortState::closed, Reason::port_unreach};
  return filtered_by(r);
}

// Host discovery (Nmap's default raw ping): "port" 0 stands for an ICMP echo request, 443 for
// a TCP SYN and 80 for a TCP ACK. Any answer proves the host is up:
//
//  probe      reply                         proof                                  status
//  echo       echo reply from the target    identifier and sequence == c's 32 bits  up
//  SYN 443    SYN+ACK or RST+ACK            as -sS                                  up
//  ACK 80     RST                           as -sA                                  up
//  SYN, ACK   ICMP unreachable from the     as TCP above, and sent by the target   up
//             target itself                 itself (a router's error says nothing
//                                           about the host)
//  ARP        ARP reply                     from the asked address to ours: ARP      up
//                                           carries no secret, so anyone on the link
//                                           can forge it (as anyone there can
//                                           answer for any address anyway)
//  NS (IPv6)  solicited neighbour           for the asked address, to ours, hop      up
//             advertisement                 limit 255 (sent on our link); no secret
//                                           either
constexpr std::uint16_t kPingSynPort = 443;
constexpr std::uint16_t kPingAckPort = 80;

std::size_t build_ping(const ProbeFields& base, std::uint32_t c, std::span<std::uint8_t> out,
                       std::uint16_t sport_base) {
  if (base.dport == kNeighborPort) return 0;  // a link-layer frame: the engine builds it
  if (base.dport == kPingEchoPort) {
    return build_echo(base, false, static_cast<std::uint16_t>(c >> 16),
                      static_cast<std::uint16_t>(c), out);
  }
  const std::uint8_t flags = base.dport == kPingAckPort ? tcp_flag::ack : tcp_flag::syn;
  return build_tcp_probe(flags, base, c, out, sport_base);
}

bool validate_ping(const Reply& r, const ProbeKey& k) {
  if (k.dport == kNeighborPort) {
    const auto kind = k.dst.v6 ? Reply::Kind::nd_advert : Reply::Kind::arp_reply;
    return r.kind == kind && r.src == k.dst && r.dst == k.src;
  }
  if (k.dport == kPingEchoPort) {
    return r.kind == Reply::Kind::echo_reply && r.src == k.dst && r.dst == k.src &&
           r.echo_id == static_cast<std::uint16_t>(k.cookie >> 16) &&
           r.echo_sequence == static_cast<std::uint16_t>(k.cookie);
  }
  if (r.kind == Reply::Kind::unreachable && !(r.src == k.dst)) return false;
  return k.dport == kPingAckPort ? validate_ack_probe(r, k) : validate_tcp_noack<1>(r, k);
}

Observation classify_ping(const Reply& r) {
  if (r.kind == Reply::Kind::echo_reply) return {PortState::open, Reason::echo_reply};
  if (r.kind == Reply::Kind::arp_reply) return {PortState::open, Reason::arp_response};
  if (r.kind == Reply::Kind::nd_advert) return {PortState::open, Reason::nd_response};
  return classify_syn(r);
}

using namespace tcp_flag;
// Its technique names the transport of its replies (one TCP source port) and what silence
// means; the table row for -sS is not otherwise used.
constexpr Probe kPingProbe{Technique::syn,   syn, build_ping, validate_ping, classify_ping,
                           /*neighbor=*/true};

constexpr Probe kProbes[] = {
    {Technique::syn, syn, build_tcp_t<syn>, validate_tcp_noack<1>, classify_syn},
    {Technique::fin, fin, build_tcp_t<fin>, validate_tcp_noack<1>, classify_fin_like},
    {Technique::null, 0, build_tcp_t<0>, validate_tcp_noack<0>, classify_fin_like},
    {Technique::xmas, fin | psh | urg, build_tcp_t<fin | psh | urg>, validate_tcp_noack<1>,
     classify_fin_like},
    {Technique::ack, ack, build_tcp_t<ack>, validate_ack_probe, classify_ack},
    {Technique::udp, 0, build_udp_probe, validate_udp, classify_udp},
};

}  // namespace

CookieKey CookieKey::random() {
  std::random_device rd;
  CookieKey k;
  k.k0 = (std::uint64_t{rd()} << 32) | rd();
  k.k1 = (std::uint64_t{rd()} << 32) | rd();
  return k;
}

std::uint32_t cookie(const CookieKey& key, const IpAddr& src, const IpAddr& dst,
                     std::uint16_t dport) {
  std::uint8_t buf[34];
  std::memcpy(buf, src.bytes.data(), 16);
  std::memcpy(buf + 16, dst.bytes.data(), 16);
  buf[32] = static_cast<std::uint8_t>(dport >> 8);
  buf[33] = static_cast<std::uint8_t>(dport);
  return static_cast<std::uint32_t>(siphash(key, buf, sizeof buf));
}

const Probe* probe_for(Technique technique) {
  for (const auto& p : kProbes) {
    if (p.technique == technique) return &p;
  }
  return nullptr;
}

const Probe& ping_probe() {
  return kPingProbe;
}

std::span<const std::uint16_t> ping_ports() {
  static constexpr std::array<std::uint16_t, 4> kPorts{kPingEchoPort, kNeighborPort, kPingAckPort,
                                                       kPingSynPort};
  return kPorts;
}

Reason unreachable_reason(const Reply& r) {
  if (r.kind != Reply::Kind::unreachable) return Reason::unknown;
  if (!r.src.v6) {
    switch (r.icmp_code) {
      case 0:
        return Reason::net_unreach;
      case 1:
        return Reason::host_unreach;
      case 2:
        return Reason::proto_unreach;
      case 3:
        return Reason::port_unreach;
      case 9:
        return Reason::net_prohibited;
      case 10:
        return Reason::host_prohibited;
      case 13:
        return Reason::admin_prohibited;
      default:
        return Reason::host_unreach;
    }
  }
  switch (r.icmp_code) {  // RFC 4443 section 3.1
    case 0:
      return Reason::net_unreach;  // no route to destination
    case 1:
      return Reason::admin_prohibited;  // administratively prohibited
    case 3:
      return Reason::host_unreach;  // address unreachable
    case 4:
      return Reason::port_unreach;
    case 5:  // source address failed policy
    case 6:
      return Reason::admin_prohibited;  // reject route
    default:
      return Reason::host_unreach;
  }
}

bool is_port_unreachable(const Reply& r) {
  return r.kind == Reply::Kind::unreachable && r.icmp_code == (r.src.v6 ? 4 : 3);
}

std::string capture_filter(const Probe& probe, std::uint16_t sport_base) {
  // Echo replies only for discovery. ip6[40] is the ICMPv6 type when no extension header
  // comes first, as with every reply seen from Linux. ARP replies only (operation 2): our
  // own requests, sent on another socket, would otherwise be copied into the ring too.
  const std::string icmp = &probe == &kPingProbe
                               ? "(arp and arp[6:2] == 2) or (icmp and (icmp[0] == 3 or "
                                 "icmp[0] == 0)) or "
                                 "(icmp6 and (ip6[40] == 1 or ip6[40] == 129 or "
                                 "ip6[40] == 136))"
                               : "(icmp and icmp[0] == 3) or (icmp6 and ip6[40] == 1)";
  if (proto_of(probe.technique) == Proto::udp) {
    return "(udp and dst portrange " + std::to_string(sport_base) + "-" +
           std::to_string(sport_base + kUdpSourcePortSpan - 1u) + ") or " + icmp;
  }
  return "(tcp and dst port " + std::to_string(sport_base) + ") or " + icmp;
}

}  // namespace portvigil::raw
