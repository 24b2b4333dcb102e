// Byte-exact fixtures for every probe the raw engine sends, and the RFC 1071 checksum.
// Expected packets are written out field by field; the checksum literals were computed with an
// independent implementation and are re-verified here with the test's own arithmetic
// (raw_test_util.hpp), never with packet.cpp.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>

#include "raw/packet.hpp"
#include "raw/probe.hpp"
#include "raw/udp_payloads.hpp"
#include "raw_test_util.hpp"

namespace {

using namespace rawtest;
using portvigil::Technique;
using portvigil::raw::build_tcp;
using portvigil::raw::build_udp;
using portvigil::raw::internet_checksum;
using portvigil::raw::probe_for;
using portvigil::raw::ProbeFields;

// ---- whole-packet literals ---------------------------------------------------------------

TEST(ProbeBytes, SynIpv4Literal) {
  const Bytes expected = {
      // IPv4 header (RFC 791 section 3.1)
      0x45,           // version 4, IHL 5 (20 bytes)
      0x00,           // DSCP 0, ECN 0
      0x00, 0x2c,     // total length 44 = 20 IP + 24 TCP
      0xbe, 0xef,     // identification = ProbeFields::ip_id
      0x00, 0x00,     // flags 0, fragment offset 0
      0x40,           // TTL 64
      0x06,           // protocol TCP
      0x2f, 0xb5,     // header checksum
      198, 18, 0, 1,  // source 198.18.0.1
      198, 18, 0, 2,  // destination 198.18.0.2
      // TCP header (RFC 793 section 3.1)
      0x9c, 0x40,              // source port 40000 (the sport base)
      0x00, 0x50,              // destination port 80
      0x12, 0x34, 0x56, 0x78,  // sequence number = cookie
      0x00, 0x00, 0x00, 0x00,  // acknowledgment number 0 (no ACK flag)
      0x60,                    // data offset 6 words (24 bytes: MSS option)
      0x02,                    // flags SYN
      0x04, 0x00,              // window 1024
      0x02, 0xc2,              // checksum
      0x00, 0x00,              // urgent pointer
      0x02, 0x04, 0x05, 0xb4,  // option MSS (kind 2, length 4) = 1460
  };
  const Bytes got = build_probe(*probe_for(Technique::syn), false, 80);
  EXPECT_EQ(got, expected) << "got:\n" << hex(got) << "\nexpected:\n" << hex(expected);
}

TEST(ProbeBytes, SynIpv6Literal) {
  const Bytes expected = {
      // IPv6 header (RFC 8200 section 3)
      0x60, 0x00, 0xbe, 0xef,  // version 6, traffic class 0, flow label 0x0beef (= ip_id)
      0x00, 0x18,              // payload length 24 (TCP with MSS option)
      0x06,                    // next header TCP
      0x40,                    // hop limit 64
      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,  // source 2001:db8::1
      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,  // dest 2001:db8::2
      // TCP header
      0x9c, 0x40,              // source port 40000
      0x00, 0x50,              // destination port 80
      0x12, 0x34, 0x56, 0x78,  // sequence number = cookie
      0x00, 0x00, 0x00, 0x00,  // acknowledgment number 0
      0x60,                    // data offset 6
      0x02,                    // SYN
      0x04, 0x00,              // window 1024
      0x33, 0x75,              // checksum (IPv6 pseudo-header)
      0x00, 0x00,              // urgent pointer
      0x02, 0x04, 0x05, 0xb4,  // MSS 1460
  };
  const Bytes got = build_probe(*probe_for(Technique::syn), true, 80);
  EXPECT_EQ(got, expected) << "got:\n" << hex(got) << "\nexpected:\n" << hex(expected);
}

TEST(ProbeBytes, UdpDnsIpv4Literal) {
  const Bytes expected = {
      // IPv4 header
      0x45, 0x00,              // version 4, IHL 5; DSCP/ECN 0
      0x00, 0x2d,              // total length 45 = 20 + 8 + 17
      0x12, 0x34, 0x00, 0x00,  // identification = cookie >> 16; no fragmentation
      0x40, 0x11,              // TTL 64, protocol UDP
      0xdc, 0x64,              // header checksum
      198, 18, 0, 1, 198, 18, 0, 2,
      // UDP header (RFC 768)
      0xb2, 0xb8,  // source port 45752 = 40000 + (cookie & 0x3fff)
      0x00, 0x35,  // destination port 53
      0x00, 0x19,  // length 25 = 8 + 17
      0xaa, 0x71,  // checksum
      // DNS query "." IN NS, RD set (RFC 1035 section 4.1)
      0x12, 0x34,                                      // ID = cookie >> 16
      0x01, 0x00,                                      // flags: RD
      0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // QD=1 AN=0 NS=0 AR=0
      0x00,                                            // QNAME root
      0x00, 0x02,                                      // QTYPE NS
      0x00, 0x01,                                      // QCLASS IN
  };
  const Bytes got = build_probe(*probe_for(Technique::udp), false, 53);
  EXPECT_EQ(got, expected) << "got:\n" << hex(got) << "\nexpected:\n" << hex(expected);
}

// ---- every technique, both families, from field tables -----------------------------------

// clang-format off
Bytes ipv4_header(std::uint16_t total, std::uint8_t proto, std::uint16_t checksum,
                  std::uint16_t id = 0xbeef) {
  return {
      0x45,                        // version 4, IHL 5
      0x00,                        // DSCP/ECN
      hi(total), lo(total),        // total length
      hi(id), lo(id),              // identification
      0x00, 0x00,                  // flags / fragment offset
      0x40,                        // TTL 64
      proto,                       // protocol
      hi(checksum), lo(checksum),  // header checksum
      198, 18, 0, 1,               // source
      198, 18, 0, 2,               // destination
  };
}

Bytes ipv6_header(std::uint16_t payload, std::uint8_t next, std::uint16_t flow = 0xbeef) {
  return {
      0x60, 0x00, hi(flow), lo(flow),  // version 6, TC 0, flow label
      hi(payload), lo(payload),  // payload length
      next,                      // next header
      0x40,                      // hop limit 64
      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,  // 2001:db8::1
      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,  // 2001:db8::2
  };
}
// clang-format on

Bytes tcp_header(std::uint8_t offset_byte, std::uint8_t flags, std::uint32_t ack,
                 std::uint16_t checksum) {
  Bytes t = {0x9c, 0x40,               // source port 40000
             0x00, 0x50,               // destination port 80
             0x12, 0x34, 0x56, 0x78};  // seq = cookie
  append32(t, ack);                    // ack: cookie for the ACK probe, else 0
  t.push_back(offset_byte);            // data offset << 4
  t.push_back(flags);                  // flags byte
  append16(t, 1024);                   // window
  append16(t, checksum);               // checksum
  append16(t, 0);                      // urgent pointer
  if (offset_byte == 0x60) append(t, Bytes{0x02, 0x04, 0x05, 0xb4});  // MSS 1460
  return t;
}

struct TcpFixture {
  Technique technique;
  bool v6;
  std::uint8_t offset_byte;  // 0x60 with the MSS option (SYN), 0x50 without
  std::uint8_t flags;
  std::uint32_t ack;
  std::uint16_t ip_checksum;  // IPv4 only
  std::uint16_t tcp_checksum;
};

const TcpFixture kTcpFixtures[] = {
    // {technique, IPv6?, data offset byte, flags byte, ack, IPv4 header csum, TCP csum}
    {Technique::syn, false, 0x60, 0x02, 0, 0x2fb5, 0x02c2},
    {Technique::syn, true, 0x60, 0x02, 0, 0, 0x3375},
    {Technique::fin, false, 0x50, 0x01, 0, 0x2fb9, 0x1a7f},
    {Technique::fin, true, 0x50, 0x01, 0, 0, 0x4b32},
    {Technique::null, false, 0x50, 0x00, 0, 0x2fb9, 0x1a80},
    {Technique::null, true, 0x50, 0x00, 0, 0, 0x4b33},
    {Technique::xmas, false, 0x50, 0x29, 0, 0x2fb9, 0x1a57},  // FIN|PSH|URG
    {Technique::xmas, true, 0x50, 0x29, 0, 0, 0x4b0a},
    {Technique::ack, false, 0x50, 0x10, kCookie, 0x2fb9, 0xb1c3},  // ack = cookie
    {Technique::ack, true, 0x50, 0x10, kCookie, 0, 0xe276},
};

std::string fixture_name(Technique t, bool v6) {
  return std::string(portvigil::name(t)) + (v6 ? "/IPv6" : "/IPv4");
}

// Checks the IPv4 header checksum and the transport checksum of `packet` independently.
void expect_checksums_valid(const Bytes& packet, std::uint8_t proto) {
  const bool v6 = (packet[0] >> 4) == 6;
  const std::size_t ip_len = v6 ? 40 : 20;
  if (!v6) {
    EXPECT_EQ(fold16(ones_sum({packet.data(), 20})), 0xffff) << "IPv4 header checksum";
    Bytes zeroed(packet.begin(), packet.begin() + 20);
    wr16(zeroed, 10, 0);
    EXPECT_EQ(ref_checksum(zeroed), rd16(packet, 10));
  }
  IpAddr src;
  IpAddr dst;
  src.v6 = dst.v6 = v6;
  const std::size_t alen = v6 ? 16 : 4;
  const std::size_t at = v6 ? 8 : 12;
  std::copy_n(packet.begin() + static_cast<long>(at), alen, src.bytes.begin());
  std::copy_n(packet.begin() + static_cast<long>(at + alen), alen, dst.bytes.begin());
  const std::span<const std::uint8_t> segment{packet.data() + ip_len, packet.size() - ip_len};
  EXPECT_EQ(l4_verify_sum(src, dst, proto, segment), 0xffff) << "transport checksum";
}

TEST(ProbeBytes, EveryTcpTechniqueBothFamilies) {
  for (const auto& fx : kTcpFixtures) {
    SCOPED_TRACE(fixture_name(fx.technique, fx.v6));
    const Bytes tcp = tcp_header(fx.offset_byte, fx.flags, fx.ack, fx.tcp_checksum);
    const Bytes expected =
        fx.v6 ? cat({ipv6_header(static_cast<std::uint16_t>(tcp.size()), 6), tcp})
              : cat({ipv4_header(static_cast<std::uint16_t>(20 + tcp.size()), 6, fx.ip_checksum),
                     tcp});
    const auto* probe = probe_for(fx.technique);
    ASSERT_NE(probe, nullptr);
    EXPECT_EQ(portvigil::proto_of(probe->technique), portvigil::Proto::tcp);
    EXPECT_EQ(probe->tcp_flags, fx.flags);
    const Bytes got = build_probe(*probe, fx.v6, 80);
    EXPECT_EQ(got, expected) << "got:\n" << hex(got) << "\nexpected:\n" << hex(expected);
    expect_checksums_valid(got, 6);
  }
}

struct UdpFixture {
  bool v6;
  std::uint16_t dport;
  std::uint16_t ip_checksum;
  std::uint16_t udp_checksum;
};

const Bytes kDnsQuery = {0x50, 0x56, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                         0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01};
// As sent: the ID carries the cookie's high 16 bits.
const Bytes kDnsQueryStamped = {0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                                0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01};

const UdpFixture kUdpFixtures[] = {
    {false, 53, 0xdc64, 0xaa71},  // DNS payload
    {true, 53, 0, 0xdb24},
    {false, 9, 0xdc75, 0xc0f4},  // discard: no payload, an empty datagram
    {true, 9, 0, 0xf1a7},
};

TEST(ProbeBytes, UdpBothFamiliesWithAndWithoutPayload) {
  const auto* probe = probe_for(Technique::udp);
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(portvigil::proto_of(probe->technique), portvigil::Proto::udp);
  for (const auto& fx : kUdpFixtures) {
    SCOPED_TRACE(std::string(fx.v6 ? "IPv6" : "IPv4") + " port " + std::to_string(fx.dport));
    const Bytes& payload = fx.dport == 53 ? kDnsQueryStamped : Bytes{};
    ASSERT_EQ(portvigil::raw::udp_payload(fx.dport).size(), payload.size());
    const auto udp_len = static_cast<std::uint16_t>(8 + payload.size());
    Bytes udp = {0xb2, 0xb8};  // source port 45752
    append16(udp, fx.dport);   // destination port
    append16(udp, udp_len);    // length
    append16(udp, fx.udp_checksum);
    append(udp, payload);
    const Bytes expected = fx.v6 ? cat({ipv6_header(udp_len, 17, kUdpIpId), udp})
                                 : cat({ipv4_header(static_cast<std::uint16_t>(20 + udp_len), 17,
                                                    fx.ip_checksum, kUdpIpId),
                                        udp});
    const Bytes got = build_probe(*probe, fx.v6, fx.dport);
    EXPECT_EQ(got, expected) << "got:\n" << hex(got) << "\nexpected:\n" << hex(expected);
    expect_checksums_valid(got, 17);
  }
}

TEST(ProbeBytes, BuildersRefuseShortBuffers) {
  for (bool v6 : {false, true}) {
    ProbeFields f = base_fields(v6, 80);
    f.tcp_flags = portvigil::raw::tcp_flag::syn;
    const std::size_t need = v6 ? 64 : 44;
    std::array<std::uint8_t, 128> buf{};
    for (std::size_t n = 0; n < need; ++n) {
      EXPECT_EQ(build_tcp(f, {buf.data(), n}), 0u) << n;
    }
    EXPECT_EQ(build_tcp(f, {buf.data(), need}), need);
    f.udp_payload = kDnsQuery;
    const std::size_t need_udp = (v6 ? 40u : 20u) + 8 + kDnsQuery.size();
    for (std::size_t n = 0; n < need_udp; ++n) {
      EXPECT_EQ(build_udp(f, {buf.data(), n}), 0u) << n;
    }
    EXPECT_EQ(build_udp(f, {buf.data(), need_udp}), need_udp);
  }
}

// A UDP checksum that computes to 0 is sent as 0xffff: 0 means "no checksum" (RFC 768).
TEST(ProbeBytes, UdpZeroChecksumIsSentAsAllOnes) {
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    ProbeFields f = base_fields(v6, 7);
    f.sport = 1234;
    // Choose a 2-byte payload that makes the one's-complement sum 0xffff (checksum 0).
    Bytes seg = {hi(1234), lo(1234), 0x00, 0x07, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00};
    const std::uint16_t partial =
        fold16(ones_sum(seg, ones_sum(pseudo_header(f.src, f.dst, 17, 10))));
    const auto word = static_cast<std::uint16_t>(0xffff - partial);
    const Bytes payload = {hi(word), lo(word)};
    f.udp_payload = payload;
    std::array<std::uint8_t, 128> buf{};
    const std::size_t n = build_udp(f, buf);
    ASSERT_EQ(n, (v6 ? 40u : 20u) + 10);
    const Bytes got(buf.begin(), buf.begin() + static_cast<long>(n));
    const std::size_t udp = v6 ? 40 : 20;
    EXPECT_EQ(rd16(got, udp + 6), 0xffff);
    expect_checksums_valid(got, 17);  // 0xffff is -0: still verifies
  }
}

// ---- internet_checksum -------------------------------------------------------------------

TEST(InternetChecksum, Rfc1071WorkedExample) {
  // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2 (after the end-around carry).
  const Bytes data = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(fold16(ones_sum(data)), 0xddf2);
  EXPECT_EQ(internet_checksum(data), 0x220d);
  // Byte order independence (RFC 1071 section 2(B)): the byte-swapped input sums to 0xf2dd.
  const Bytes swapped = {0x01, 0x00, 0x03, 0xf2, 0xf5, 0xf4, 0xf7, 0xf6};
  EXPECT_EQ(internet_checksum(swapped), static_cast<std::uint16_t>(~0xf2dd));
  // Appending the checksum makes the whole verify to 0.
  Bytes with = data;
  append16(with, 0x220d);
  EXPECT_EQ(internet_checksum(with), 0x0000);
}

TEST(InternetChecksum, OddLengthPadsWithZero) {
  EXPECT_EQ(internet_checksum(Bytes{0x01}), 0xfeff);              // 0x0100
  EXPECT_EQ(internet_checksum(Bytes{0x00, 0x01, 0xf2}), 0x0dfe);  // 0x0001 + 0xf200
  const Bytes data = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7, 0xab};
  EXPECT_EQ(internet_checksum(data), ref_checksum(data));
}

TEST(InternetChecksum, EdgeValues) {
  EXPECT_EQ(internet_checksum(Bytes{}), 0xffff);                        // nothing: sum 0
  EXPECT_EQ(internet_checksum(Bytes(20, 0x00)), 0xffff);                // all zero
  EXPECT_EQ(internet_checksum(Bytes{0xff, 0xff}), 0x0000);              // sum 0xffff
  EXPECT_EQ(internet_checksum(Bytes(64, 0xff)), 0x0000);                // many 0xffff words
  EXPECT_EQ(internet_checksum(Bytes{0xff, 0xff, 0x00, 0x01}), 0xfffe);  // end-around carry
  EXPECT_EQ(internet_checksum(Bytes{0x80, 0x00, 0x80, 0x00}), 0xfffe);  // carry out of bit 15
  // The initial value is added in (used for pseudo-headers).
  EXPECT_EQ(internet_checksum(Bytes{}, 0x1234), 0xedcb);
  EXPECT_EQ(internet_checksum(Bytes{0x00, 0x01}, 0xfffe), 0x0000);
  EXPECT_EQ(internet_checksum(Bytes{0x00, 0x01}, 0x0001fffe), 0xfffe);  // 0x1fffe+1 folds to 1
}

TEST(InternetChecksum, MatchesReferenceOnManySizes) {
  Bytes data;
  std::uint32_t x = 12345;
  for (std::size_t n = 0; n < 300; ++n) {
    EXPECT_EQ(internet_checksum(data), ref_checksum(data)) << n;
    x = x * 1103515245u + 12345u;
    data.push_back(static_cast<std::uint8_t>(x >> 16));
  }
}

}  // namespace
