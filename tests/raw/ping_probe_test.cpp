// The host-discovery probe: what it sends for each of its "ports" (ICMP echo, TCP ACK 80,
// TCP SYN 443), which replies prove a host is up, and what a spoofer cannot make it believe.
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <memory>

#include "raw/packet.hpp"
#include "raw/probe.hpp"
#include "raw_test_util.hpp"

namespace {

using namespace rawtest;
using portvigil::PortState;
using portvigil::Reason;
using portvigil::raw::kPingEchoPort;
using portvigil::raw::parse_ip;
using portvigil::raw::ping_ports;
using portvigil::raw::ping_probe;
using portvigil::raw::Reply;
namespace tf = portvigil::raw::tcp_flag;

// An echo reply built by hand (RFC 792: type 0; RFC 4443: type 129), checksum included.
Bytes echo_reply(const IpAddr& from, const IpAddr& to, std::uint16_t id, std::uint16_t seq,
                 std::uint8_t type) {
  Bytes icmp = {type, 0, 0, 0};
  append16(icmp, id);
  append16(icmp, seq);
  const std::uint32_t initial = from.v6 ? ones_sum(pseudo_header(from, to, 58, icmp.size())) : 0;
  wr16(icmp, 2, ref_checksum(icmp, initial));
  return cat({ip_header(from, to, from.v6 ? 58 : 1, icmp.size()), icmp});
}

Reply parsed(const Bytes& b) {
  Reply r;
  EXPECT_TRUE(parse_ip(b, r));
  return r;
}

TEST(PingProbe, PortsAreEchoArpAck80AndSyn443) {
  const auto ports = ping_ports();
  ASSERT_EQ(ports.size(), 4u);
  EXPECT_EQ(ports[0], kPingEchoPort);
  EXPECT_EQ(ports[1], portvigil::raw::kNeighborPort);
  EXPECT_EQ(ports[2], 80);
  EXPECT_EQ(ports[3], 443);
  EXPECT_TRUE(ping_probe().neighbor);
}

TEST(PingProbe, EchoRequestCarriesTheCookieAndAValidChecksum) {
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    const Bytes b = build_probe(ping_probe(), v6, kPingEchoPort);
    const std::size_t ip = v6 ? 40 : 20;
    ASSERT_EQ(b.size(), ip + 8);
    EXPECT_EQ(b[v6 ? 6 : 9], v6 ? 58 : 1);
    EXPECT_EQ(b[ip], v6 ? 128 : 8);
    EXPECT_EQ(b[ip + 1], 0);
    EXPECT_EQ(rd16(b, ip + 4), kCookie >> 16);
    EXPECT_EQ(rd16(b, ip + 6), kCookie & 0xffff);
    const Bytes icmp(b.begin() + static_cast<long>(ip), b.end());
    const std::uint32_t initial =
        v6 ? ones_sum(pseudo_header(scanner_ip(v6), target_ip(v6), 58, icmp.size())) : 0;
    EXPECT_EQ(fold16(ones_sum(icmp, initial)), 0xffff) << hex(b);
  }
}

TEST(PingProbe, TcpProbesAreAckTo80AndSynTo443) {
  for (bool v6 : {false, true}) {
    const std::size_t ip = v6 ? 40 : 20;
    const Bytes ack = build_probe(ping_probe(), v6, 80);
    EXPECT_EQ(ack[ip + 13], tf::ack);
    EXPECT_EQ(rd16(ack, ip + 2), 80);
    const Bytes syn = build_probe(ping_probe(), v6, 443);
    EXPECT_EQ(syn[ip + 13], tf::syn);
    EXPECT_EQ(rd16(syn, ip + 2), 443);
  }
}

TEST(PingProbe, EveryOwnAnswerProvesTheHostUp) {
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    const IpAddr us = scanner_ip(v6);
    const IpAddr them = target_ip(v6);
    const auto& p = ping_probe();
    // Echo reply with the cookie in identifier and sequence.
    Reply r = parsed(echo_reply(them, us, kCookie >> 16, kCookie & 0xffff, v6 ? 129 : 0));
    ASSERT_EQ(r.kind, Reply::Kind::echo_reply);
    EXPECT_EQ(r.sport, 0);
    EXPECT_TRUE(p.validate(r, probe_key(v6, kPingEchoPort)));
    EXPECT_EQ(p.classify(r).reason, Reason::echo_reply);
    // RST to the ACK (seq = the probe's ack = cookie).
    r = parsed(tcp_packet(them, us, 80, kSportBase, kCookie, 0, tf::rst));
    EXPECT_TRUE(p.validate(r, probe_key(v6, 80)));
    EXPECT_EQ(p.classify(r).reason, Reason::reset);
    // SYN/ACK or RST/ACK to the SYN (ack = cookie + 1).
    r = parsed(tcp_packet(them, us, 443, kSportBase, 7, kCookie + 1, tf::syn | tf::ack));
    EXPECT_TRUE(p.validate(r, probe_key(v6, 443)));
    EXPECT_EQ(p.classify(r).reason, Reason::syn_ack);
    r = parsed(tcp_packet(them, us, 443, kSportBase, 0, kCookie + 1, tf::rst | tf::ack));
    EXPECT_TRUE(p.validate(r, probe_key(v6, 443)));
    // An ICMP error from the target itself quoting our SYN: the host is there.
    r = parsed(unreachable(them, us, v6 ? 4 : 3, build_probe(p, v6, 443)));
    EXPECT_TRUE(p.validate(r, probe_key(v6, 443)));
  }
}

TEST(PingProbe, SpoofedOrForeignRepliesProveNothing) {
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    const IpAddr us = scanner_ip(v6);
    const IpAddr them = target_ip(v6);
    const auto& p = ping_probe();
    const std::uint8_t type = v6 ? 129 : 0;
    // Wrong identifier or sequence: a blind spoofer's guess, or another ping's reply.
    Reply r = parsed(echo_reply(them, us, (kCookie >> 16) ^ 1, kCookie & 0xffff, type));
    EXPECT_FALSE(p.validate(r, probe_key(v6, kPingEchoPort)));
    r = parsed(echo_reply(them, us, kCookie >> 16, (kCookie & 0xffff) ^ 0x100, type));
    EXPECT_FALSE(p.validate(r, probe_key(v6, kPingEchoPort)));
    // The right echo from another address (a router, a neighbour) is not the target's.
    r = parsed(echo_reply(router_ip(v6), us, kCookie >> 16, kCookie & 0xffff, type));
    EXPECT_FALSE(p.validate(r, probe_key(v6, kPingEchoPort)));
    // An echo reply is no answer to the TCP probes, nor a TCP reply to the echo.
    r = parsed(echo_reply(them, us, kCookie >> 16, kCookie & 0xffff, type));
    EXPECT_FALSE(p.validate(r, probe_key(v6, 80)));
    r = parsed(tcp_packet(them, us, 80, kSportBase, kCookie, 0, tf::rst));
    EXPECT_FALSE(p.validate(r, probe_key(v6, kPingEchoPort)));
    // RSTs without the cookie.
    r = parsed(tcp_packet(them, us, 80, kSportBase, kCookie + 1, 0, tf::rst));
    EXPECT_FALSE(p.validate(r, probe_key(v6, 80)));
    r = parsed(tcp_packet(them, us, 443, kSportBase, 0, 0, tf::rst));
    EXPECT_FALSE(p.validate(r, probe_key(v6, 443)));
    // A router's unreachable says the path failed, not that the host is up.
    r = parsed(unreachable(router_ip(v6), us, 1, build_probe(p, v6, 443)));
    EXPECT_FALSE(p.validate(r, probe_key(v6, 443)));
  }
}

TEST(PingProbe, CaptureFilterTakesEchoRepliesAndTcpToOurPort) {
  pcap_t* pcap = pcap_open_dead(DLT_EN10MB, 65535);
  ASSERT_NE(pcap, nullptr);
  bpf_program prog{};
  const std::string text = portvigil::raw::capture_filter(ping_probe(), kSportBase);
  ASSERT_EQ(pcap_compile(pcap, &prog, text.c_str(), 1, PCAP_NETMASK_UNKNOWN), 0) << text;
  auto accepts = [&](const Bytes& ip) {
    const Bytes frame = ethernet(ip);
    pcap_pkthdr hdr{};
    hdr.caplen = hdr.len = static_cast<bpf_u_int32>(frame.size());
    return pcap_offline_filter(&prog, &hdr, frame.data()) != 0;
  };
  for (bool v6 : {false, true}) {
    const IpAddr us = scanner_ip(v6);
    const IpAddr them = target_ip(v6);
    EXPECT_TRUE(accepts(echo_reply(them, us, 1, 2, v6 ? 129 : 0)));
    EXPECT_FALSE(accepts(echo_reply(them, us, 1, 2, v6 ? 128 : 8)));  // our own request
    EXPECT_TRUE(accepts(tcp_packet(them, us, 80, kSportBase, 1, 0, tf::rst)));
    EXPECT_FALSE(accepts(tcp_packet(them, us, 80, kSportBase + 1, 1, 0, tf::rst)));
    EXPECT_TRUE(accepts(unreachable(them, us, v6 ? 4 : 3, build_probe(ping_probe(), v6, 443))));
  }
  pcap_freecode(&prog);
  pcap_close(pcap);
}

}  // namespace

namespace {

using portvigil::raw::build_arp_reply;
using portvigil::raw::build_arp_request;
using portvigil::raw::kNeighborPort;
using portvigil::raw::MacAddress;
using portvigil::raw::parse_frame;

constexpr MacAddress kUs{0x02, 0, 0, 0, 0, 1};
constexpr MacAddress kThem{0x02, 0, 0, 0, 0, 2};

TEST(PingArp, RequestIsABroadcastAskingForTheTarget) {
  std::array<std::uint8_t, 64> buf{};
  const std::size_t n = build_arp_request(kUs, scanner_ip(false), target_ip(false), buf);
  ASSERT_EQ(n, 42u);
  const Bytes f(buf.begin(), buf.begin() + 42);
  EXPECT_EQ(hex(std::span(f).first(6)), "ff ff ff ff ff ff");
  EXPECT_EQ(rd16(f, 12), 0x0806);
  EXPECT_EQ(rd16(f, 14), 1);       // Ethernet
  EXPECT_EQ(rd16(f, 16), 0x0800);  // IPv4
  EXPECT_EQ(rd16(f, 20), 1);       // request
  EXPECT_TRUE(std::equal(f.begin() + 28, f.begin() + 32, scanner_ip(false).bytes.begin()));
  EXPECT_TRUE(std::equal(f.begin() + 38, f.begin() + 42, target_ip(false).bytes.begin()));
  // No ARP for IPv6, nor into a short buffer.
  EXPECT_EQ(build_arp_request(kUs, scanner_ip(true), target_ip(true), buf), 0u);
  std::array<std::uint8_t, 41> small{};
  EXPECT_EQ(build_arp_request(kUs, scanner_ip(false), target_ip(false), small), 0u);
}

TEST(PingArp, ReplyFromTheAskedAddressProvesItUp) {
  std::array<std::uint8_t, 64> buf{};
  const std::size_t n = build_arp_reply(kThem, target_ip(false), kUs, scanner_ip(false), buf);
  const Bytes f(buf.begin(), buf.begin() + static_cast<long>(n));
  Reply r;
  ASSERT_TRUE(parse_frame(f, portvigil::raw::kDltEthernet, r));
  EXPECT_EQ(r.kind, Reply::Kind::arp_reply);
  EXPECT_EQ(r.sport, kNeighborPort);
  EXPECT_EQ(r.arp_mac, kThem);
  const auto& p = ping_probe();
  EXPECT_TRUE(p.validate(r, probe_key(false, kNeighborPort)));
  EXPECT_EQ(p.classify(r).reason, Reason::arp_response);
  // It answers only the ARP "port"; a reply for another address or to another asker is not
  // an answer to us.
  EXPECT_FALSE(p.validate(r, probe_key(false, 80)));
  std::array<std::uint8_t, 64> other{};
  build_arp_reply(kThem, router_ip(false), kUs, scanner_ip(false), other);
  ASSERT_TRUE(
      parse_frame(Bytes(other.begin(), other.begin() + 42), portvigil::raw::kDltEthernet, r));
  EXPECT_FALSE(p.validate(r, probe_key(false, kNeighborPort)));
  build_arp_reply(kThem, target_ip(false), kUs, router_ip(false), other);
  ASSERT_TRUE(
      parse_frame(Bytes(other.begin(), other.begin() + 42), portvigil::raw::kDltEthernet, r));
  EXPECT_FALSE(p.validate(r, probe_key(false, kNeighborPort)));
}

TEST(PingArp, HostileArpFramesAreRefused) {
  std::array<std::uint8_t, 64> buf{};
  build_arp_reply(kThem, target_ip(false), kUs, scanner_ip(false), buf);
  const Bytes good(buf.begin(), buf.begin() + 42);
  Reply r;
  // Every truncation: never a read past the end (ASan), never a reply.
  for (std::size_t len = 0; len < good.size(); ++len) {
    const auto copy = std::make_unique<std::uint8_t[]>(len + 1);
    std::copy_n(good.begin(), len, copy.get());
    EXPECT_FALSE(parse_frame({copy.get(), len}, portvigil::raw::kDltEthernet, r)) << len;
  }
  // A request, another hardware or protocol type, other address lengths.
  for (auto [at, value] : std::initializer_list<std::pair<std::size_t, std::uint8_t>>{
           {21, 1}, {15, 6}, {17, 0xdd}, {18, 8}, {19, 16}}) {
    Bytes bad = good;
    bad[at] = value;
    EXPECT_FALSE(parse_frame(bad, portvigil::raw::kDltEthernet, r)) << at;
  }
  // ARP only on Ethernet: the same bytes on a raw-IP link are nothing.
  EXPECT_FALSE(parse_frame(std::span(good).subspan(14), portvigil::raw::kDltRaw2, r));
  // Behind an 802.1Q tag it is still read.
  Bytes tagged(good.begin(), good.begin() + 12);
  tagged.insert(tagged.end(), {0x81, 0x00, 0x00, 0x05});
  tagged.insert(tagged.end(), good.begin() + 12, good.end());
  EXPECT_TRUE(parse_frame(tagged, portvigil::raw::kDltEthernet, r));
}

TEST(PingNd, SolicitationGoesToTheSolicitedNodeGroupWithHopLimit255) {
  std::array<std::uint8_t, 128> buf{};
  const std::size_t n =
      portvigil::raw::build_neighbor_solicitation(kUs, scanner_ip(true), target_ip(true), buf);
  ASSERT_EQ(n, 86u);
  const Bytes f(buf.begin(), buf.begin() + 86);
  const IpAddr t = target_ip(true);
  // 33:33:ff + the target's last three bytes; ff02::1:ffXX:XXXX.
  EXPECT_EQ(f[0], 0x33);
  EXPECT_EQ(f[1], 0x33);
  EXPECT_EQ(f[2], 0xff);
  EXPECT_TRUE(std::equal(f.begin() + 3, f.begin() + 6, t.bytes.begin() + 13));
  EXPECT_EQ(rd16(f, 12), 0x86dd);
  EXPECT_EQ(f[20], 58);   // ICMPv6
  EXPECT_EQ(f[21], 255);  // hop limit
  const Bytes group = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
  EXPECT_TRUE(std::equal(group.begin(), group.end(), f.begin() + 38));
  EXPECT_TRUE(std::equal(f.begin() + 51, f.begin() + 54, t.bytes.begin() + 13));
  EXPECT_EQ(f[54], 135);
  EXPECT_TRUE(std::equal(f.begin() + 62, f.begin() + 78, t.bytes.begin()));  // target
  EXPECT_EQ(f[78], 1);                                                       // source LL option
  EXPECT_TRUE(std::equal(f.begin() + 80, f.begin() + 86, kUs.begin()));
  // A valid ICMPv6 checksum over the pseudo-header.
  IpAddr dst;
  dst.v6 = true;
  std::copy(f.begin() + 38, f.begin() + 54, dst.bytes.begin());
  const Bytes icmp(f.begin() + 54, f.end());
  EXPECT_EQ(fold16(ones_sum(icmp, ones_sum(pseudo_header(scanner_ip(true), dst, 58, 32)))), 0xffff);
  EXPECT_EQ(
      portvigil::raw::build_neighbor_solicitation(kUs, scanner_ip(false), target_ip(false), buf),
      0u);
}

TEST(PingNd, SolicitedAdvertisementOnTheLinkProvesItUp) {
  std::array<std::uint8_t, 128> buf{};
  const std::size_t n = portvigil::raw::build_neighbor_advertisement(kThem, target_ip(true), kUs,
                                                                     scanner_ip(true), buf);
  Bytes f(buf.begin(), buf.begin() + static_cast<long>(n));
  Reply r;
  ASSERT_TRUE(parse_frame(f, portvigil::raw::kDltEthernet, r));
  EXPECT_EQ(r.kind, Reply::Kind::nd_advert);
  EXPECT_EQ(r.src, target_ip(true));
  EXPECT_EQ(r.sport, kNeighborPort);
  const auto& p = ping_probe();
  EXPECT_TRUE(p.validate(r, probe_key(true, kNeighborPort)));
  EXPECT_EQ(p.classify(r).reason, Reason::nd_response);
  EXPECT_FALSE(p.validate(r, probe_key(false, kNeighborPort)));  // not an ARP reply
  // Forwarded by a router (hop limit below 255), or unsolicited: not an answer.
  Bytes routed = f;
  routed[21] = 254;
  EXPECT_FALSE(parse_frame(routed, portvigil::raw::kDltEthernet, r));
  Bytes unsolicited = f;
  unsolicited[58] &= static_cast<std::uint8_t>(~0x40);
  EXPECT_FALSE(parse_frame(unsolicited, portvigil::raw::kDltEthernet, r));
  // A proxy's answer (Override clear, RFC 4861 7.2.8) says nothing about the host.
  Bytes proxied = f;
  proxied[58] &= static_cast<std::uint8_t>(~0x20);
  EXPECT_FALSE(parse_frame(proxied, portvigil::raw::kDltEthernet, r));
  // For another address than asked.
  {
    const std::size_t m = portvigil::raw::build_neighbor_advertisement(kThem, router_ip(true), kUs,
                                                                       scanner_ip(true), buf);
    ASSERT_TRUE(parse_frame(Bytes(buf.begin(), buf.begin() + static_cast<long>(m)),
                            portvigil::raw::kDltEthernet, r));
    EXPECT_FALSE(p.validate(r, probe_key(true, kNeighborPort)));
  }
  // Every truncation of the frame: never a read past the end (ASan), and no answer before
  // the target address is complete (byte 78; the link-layer option after it is optional).
  for (std::size_t len = 14; len < f.size(); ++len) {
    const auto copy = std::make_unique<std::uint8_t[]>(len);
    std::copy_n(f.begin(), len, copy.get());
    Reply t;
    const bool parsed = parse_frame({copy.get(), len}, portvigil::raw::kDltEthernet, t);
    EXPECT_EQ(parsed && t.kind == Reply::Kind::nd_advert, len >= 78) << len;
    if (parsed && len >= 78) {
      EXPECT_EQ(t.src, target_ip(true)) << len;
    }
  }
}

TEST(PingArp, CaptureFilterTakesArpAndCompilesOnEveryLinkType) {
  const std::string text = portvigil::raw::capture_filter(ping_probe(), kSportBase);
  for (int dlt : {DLT_EN10MB, DLT_RAW, DLT_LINUX_SLL, DLT_NULL}) {
    pcap_t* pcap = pcap_open_dead(dlt, 65535);
    ASSERT_NE(pcap, nullptr);
    bpf_program prog{};
    EXPECT_EQ(pcap_compile(pcap, &prog, text.c_str(), 1, PCAP_NETMASK_UNKNOWN), 0)
        << dlt << ": " << pcap_geterr(pcap);
    if (dlt == DLT_EN10MB) {
      std::array<std::uint8_t, 128> buf{};
      build_arp_reply(kThem, target_ip(false), kUs, scanner_ip(false), buf);
      pcap_pkthdr hdr{};
      hdr.caplen = hdr.len = 42;
      EXPECT_NE(pcap_offline_filter(&prog, &hdr, buf.data()), 0);
      // Our own requests (sent on another socket, so the capture sees them) are not taken.
      build_arp_request(kUs, scanner_ip(false), target_ip(false), buf);
      EXPECT_EQ(pcap_offline_filter(&prog, &hdr, buf.data()), 0);
      const std::size_t n = portvigil::raw::build_neighbor_advertisement(
          kThem, target_ip(true), kUs, scanner_ip(true), buf);
      hdr.caplen = hdr.len = static_cast<bpf_u_int32>(n);
      EXPECT_NE(pcap_offline_filter(&prog, &hdr, buf.data()), 0);
    }
    pcap_freecode(&prog);
    pcap_close(pcap);
  }
}

}  // namespace
