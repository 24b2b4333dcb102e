// Helpers shared by the raw packet/probe tests. Everything that checks the code under test is
// written here independently of it: the one's-complement sum, pseudo-headers, reply packets
// and link-layer headers are built by hand, never with packet.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "raw/packet.hpp"
#include "raw/probe.hpp"

namespace rawtest {

using Bytes = std::vector<std::uint8_t>;
using portvigil::raw::IpAddr;

inline std::uint8_t hi(std::uint32_t v) {
  return static_cast<std::uint8_t>((v >> 8) & 0xff);
}
inline std::uint8_t lo(std::uint32_t v) {
  return static_cast<std::uint8_t>(v & 0xff);
}
inline std::uint16_t rd16(std::span<const std::uint8_t> b, std::size_t at) {
  return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}
inline void wr16(Bytes& b, std::size_t at, std::uint16_t v) {
  b[at] = hi(v);
  b[at + 1] = lo(v);
}
inline void append(Bytes& to, std::span<const std::uint8_t> from) {
  to.insert(to.end(), from.begin(), from.end());
}
inline void append16(Bytes& to, std::uint16_t v) {
  to.push_back(hi(v));
  to.push_back(lo(v));
}
inline void append32(Bytes& to, std::uint32_t v) {
  append16(to, static_cast<std::uint16_t>(v >> 16));
  append16(to, static_cast<std::uint16_t>(v));
}
inline Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) append(out, p);
  return out;
}

inline std::string hex(std::span<const std::uint8_t> b) {
  std::string out;
  char buf[4];
  for (std::size_t i = 0; i < b.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", b[i]);
    if (i != 0) out += (i % 16 == 0) ? '\n' : ' ';
    out += buf;
  }
  return out;
}

// ---- the test's own RFC 1071 arithmetic --------------------------------------------------

// 32-bit accumulation of big-endian 16-bit words; an odd last byte is padded with zero.
inline std::uint32_t ones_sum(std::span<const std::uint8_t> data, std::uint32_t acc = 0) {
  for (std::size_t i = 0; i < data.size(); i += 2) {
    const std::uint32_t word =
        (std::uint32_t{data[i]} << 8) | (i + 1 < data.size() ? std::uint32_t{data[i + 1]} : 0u);
    acc += word;
  }
  return acc;
}
inline std::uint16_t fold16(std::uint32_t acc) {
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<std::uint16_t>(acc);
}
// The checksum to store: complement of the folded sum.
inline std::uint16_t ref_checksum(std::span<const std::uint8_t> data, std::uint32_t acc = 0) {
  return static_cast<std::uint16_t>(~fold16(ones_sum(data, acc)) & 0xffff);
}

// Pseudo-header for TCP/UDP/ICMPv6 checksums: RFC 793 section 3.1 (IPv4: src, dst, zero,
// protocol, TCP length) and RFC 8200 section 8.1 (IPv6: src, dst, 32-bit upper-layer length,
// 3 zero bytes, next header).
inline Bytes pseudo_header(const IpAddr& src, const IpAddr& dst, std::uint8_t proto,
                           std::size_t l4_len) {
  Bytes ph;
  const std::size_t n = src.v6 ? 16 : 4;
  ph.insert(ph.end(), src.bytes.begin(), src.bytes.begin() + static_cast<long>(n));
  ph.insert(ph.end(), dst.bytes.begin(), dst.bytes.begin() + static_cast<long>(n));
  if (!src.v6) {
    ph.push_back(0);
    ph.push_back(proto);
    append16(ph, static_cast<std::uint16_t>(l4_len));
  } else {
    append32(ph, static_cast<std::uint32_t>(l4_len));
    ph.push_back(0);
    ph.push_back(0);
    ph.push_back(0);
    ph.push_back(proto);
  }
  return ph;
}

// Sum over pseudo-header + transport segment (checksum field included): 0xffff when the
// stored checksum is right.
inline std::uint16_t l4_verify_sum(const IpAddr& src, const IpAddr& dst, std::uint8_t proto,
                                   std::span<const std::uint8_t> segment) {
  const Bytes ph = pseudo_header(src, dst, proto, segment.size());
  return fold16(ones_sum(segment, ones_sum(ph)));
}

// ---- addresses ---------------------------------------------------------------------------

inline IpAddr v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  IpAddr ip;
  ip.bytes[0] = a;
  ip.bytes[1] = b;
  ip.bytes[2] = c;
  ip.bytes[3] = d;
  return ip;
}
// 2001:db8::<last>
inline IpAddr v6_doc(std::uint8_t last) {
  IpAddr ip;
  ip.v6 = true;
  ip.bytes[0] = 0x20;
  ip.bytes[1] = 0x01;
  ip.bytes[2] = 0x0d;
  ip.bytes[3] = 0xb8;
  ip.bytes[15] = last;
  return ip;
}

// The fixed scan of every fixture: 198.18.0.1 -> 198.18.0.2 and 2001:db8::1 -> 2001:db8::2.
inline IpAddr scanner_ip(bool v6) {
  return v6 ? v6_doc(1) : v4(198, 18, 0, 1);
}
inline IpAddr target_ip(bool v6) {
  return v6 ? v6_doc(2) : v4(198, 18, 0, 2);
}
inline IpAddr router_ip(bool v6) {
  return v6 ? v6_doc(0xfe) : v4(198, 18, 0, 254);
}

inline constexpr std::uint32_t kCookie = 0x12345678;
inline constexpr std::uint16_t kSportBase = 40000;  // 0x9c40
inline constexpr std::uint16_t kIpId = 0xbeef;
// UDP probes leave from base + the cookie's low 14 bits = 40000 + 0x1678 = 45752 (0xb2b8),
// with IP ID (IPv6: flow label) = the cookie's high 16 bits, 0x1234.
inline constexpr std::uint16_t kUdpSport = kSportBase + (kCookie & 0x3fff);
inline constexpr std::uint16_t kUdpIpId = kCookie >> 16;

inline portvigil::raw::ProbeFields base_fields(bool v6, std::uint16_t dport) {
  portvigil::raw::ProbeFields f;
  f.src = scanner_ip(v6);
  f.dst = target_ip(v6);
  f.dport = dport;
  f.ip_id = kIpId;
  f.ttl = 64;
  return f;
}

// What the engine knows about the probe to (target, dport) that carried `cookie`.
inline portvigil::raw::ProbeKey probe_key(bool v6, std::uint16_t dport,
                                          std::uint32_t cookie = kCookie,
                                          std::uint16_t sport_base = kSportBase) {
  return {scanner_ip(v6), target_ip(v6), dport, cookie, sport_base};
}

inline Bytes build_probe(const portvigil::raw::Probe& probe, bool v6, std::uint16_t dport,
                         std::uint32_t cookie = kCookie, std::uint16_t sport_base = kSportBase) {
  std::array<std::uint8_t, portvigil::raw::kMaxProbeSize> buf{};
  const std::size_t n = probe.build(base_fields(v6, dport), cookie, buf, sport_base);
  return Bytes(buf.begin(), buf.begin() + static_cast<long>(n));
}

// ---- hand-built reply packets ------------------------------------------------------------

// IPv4 (RFC 791) or IPv6 (RFC 8200) header for a payload of `l4_len` bytes.
inline Bytes ip_header(const IpAddr& src, const IpAddr& dst, std::uint8_t proto, std::size_t l4_len,
                       std::uint8_t ttl = 57) {
  Bytes h;
  if (!src.v6) {
    h = {0x45, 0x00, 0, 0, 0x00, 0x01, 0x40, 0x00 /* DF */, ttl, proto, 0, 0};
    wr16(h, 2, static_cast<std::uint16_t>(20 + l4_len));
    h.insert(h.end(), src.bytes.begin(), src.bytes.begin() + 4);
    h.insert(h.end(), dst.bytes.begin(), dst.bytes.begin() + 4);
    wr16(h, 10, ref_checksum(h));
    return h;
  }
  h = {0x60, 0x00, 0x00, 0x00, 0, 0, proto, ttl};
  wr16(h, 4, static_cast<std::uint16_t>(l4_len));
  h.insert(h.end(), src.bytes.begin(), src.bytes.end());
  h.insert(h.end(), dst.bytes.begin(), dst.bytes.end());
  return h;
}

inline Bytes tcp_packet(const IpAddr& src, const IpAddr& dst, std::uint16_t sport,
                        std::uint16_t dport, std::uint32_t seq, std::uint32_t ack,
                        std::uint8_t flags, std::uint8_t ttl = 57) {
  Bytes t;
  append16(t, sport);
  append16(t, dport);
  append32(t, seq);
  append32(t, ack);
  t.push_back(0x50);  // data offset 5
  t.push_back(flags);
  append16(t, 65535);  // window
  append16(t, 0);      // checksum
  append16(t, 0);      // urgent pointer
  wr16(t, 16, ref_checksum(t, ones_sum(pseudo_header(src, dst, 6, t.size()))));
  return cat({ip_header(src, dst, 6, t.size(), ttl), t});
}

inline Bytes udp_packet(const IpAddr& src, const IpAddr& dst, std::uint16_t sport,
                        std::uint16_t dport, std::span<const std::uint8_t> payload,
                        std::uint8_t ttl = 57) {
  Bytes u;
  append16(u, sport);
  append16(u, dport);
  append16(u, static_cast<std::uint16_t>(8 + payload.size()));
  append16(u, 0);
  append(u, payload);
  wr16(u, 6, ref_checksum(u, ones_sum(pseudo_header(src, dst, 17, u.size()))));
  return cat({ip_header(src, dst, 17, u.size(), ttl), u});
}

// build_unreachable from the code under test: the brief is to quote our own probe with it.
inline Bytes unreachable(const IpAddr& from, const IpAddr& to, std::uint8_t code,
                         std::span<const std::uint8_t> offending) {
  std::array<std::uint8_t, 1500> buf{};
  const std::size_t n = portvigil::raw::build_unreachable(from, to, code, offending, buf);
  return Bytes(buf.begin(), buf.begin() + static_cast<long>(n));
}

// ---- link layers -------------------------------------------------------------------------

inline std::uint16_t ethertype_of(std::span<const std::uint8_t> ip) {
  return (!ip.empty() && (ip[0] >> 4) == 6) ? 0x86dd : 0x0800;
}

// Ethernet II with up to two 802.1Q/802.1ad tags (outer first).
inline Bytes ethernet(std::span<const std::uint8_t> ip,
                      std::initializer_list<std::uint16_t> tpids = {}) {
  Bytes f = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01,   // destination MAC
             0x02, 0x00, 0x00, 0x00, 0x00, 0x02};  // source MAC
  std::uint16_t vid = 10;
  for (std::uint16_t tpid : tpids) {
    append16(f, tpid);  // TPID
    append16(f, vid);   // PCP 0, DEI 0, VLAN id
    vid = static_cast<std::uint16_t>(vid + 10);
  }
  append16(f, ethertype_of(ip));
  append(f, ip);
  return f;
}

// Linux cooked capture v1 (DLT_LINUX_SLL, 16 bytes).
inline Bytes linux_sll(std::span<const std::uint8_t> ip) {
  Bytes f = {0x00, 0x00,                                       // packet type: to us
             0x00, 0x01,                                       // ARPHRD_ETHER
             0x00, 0x06,                                       // link-layer address length
             0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00};  // address, padded to 8
  append16(f, ethertype_of(ip));
  append(f, ip);
  return f;
}

// Linux cooked capture v2 (DLT_LINUX_SLL2, 20 bytes).
inline Bytes linux_sll2(std::span<const std::uint8_t> ip) {
  Bytes f;
  append16(f, ethertype_of(ip));  // protocol
  append16(f, 0);                 // reserved
  append32(f, 2);                 // interface index
  append16(f, 1);                 // ARPHRD_ETHER
  f.push_back(0);                 // packet type: to us
  f.push_back(6);                 // address length
  append(f, Bytes{0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00});
  append(f, ip);
  return f;
}

// BSD loopback (DLT_NULL): the address family in host byte order (little-endian here).
inline Bytes dlt_null(std::span<const std::uint8_t> ip) {
  const std::uint8_t family = ethertype_of(ip) == 0x86dd ? 10 : 2;  // AF_INET6 / AF_INET (Linux)
  Bytes f = {family, 0, 0, 0};
  append(f, ip);
  return f;
}

}  // namespace rawtest
