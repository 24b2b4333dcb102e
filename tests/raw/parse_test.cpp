// The reply parser: round trips of every probe, link layers, and hostile input. The parser
// reads bytes from the network and must never read outside the buffer it is given: the
// truncation and garbage tests copy every input into a heap block of exactly its size so that
// AddressSanitizer (-DPORTVIGIL_SANITIZE=address,undefined) catches any overread.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "raw/packet.hpp"
#include "raw/probe.hpp"
#include "raw_test_util.hpp"

namespace {

using namespace rawtest;
using portvigil::Technique;
using portvigil::raw::kDltEthernet;
using portvigil::raw::kDltLinuxSll;
using portvigil::raw::kDltLinuxSll2;
using portvigil::raw::kDltNull;
using portvigil::raw::kDltRaw;
using portvigil::raw::kDltRaw2;
using portvigil::raw::parse_frame;
using portvigil::raw::parse_ip;
using portvigil::raw::probe_for;
using portvigil::raw::Reply;
namespace tf = portvigil::raw::tcp_flag;

constexpr Technique kTechniques[] = {Technique::syn,  Technique::fin, Technique::null,
                                     Technique::xmas, Technique::ack, Technique::udp};

// An exact-size heap copy of some bytes, so ASan sees any read past the end.
class ExactBytes {
 public:
  explicit ExactBytes(std::span<const std::uint8_t> bytes)
      : copy_(std::make_unique<std::uint8_t[]>(bytes.size())), size_(bytes.size()) {
    if (!bytes.empty()) std::memcpy(copy_.get(), bytes.data(), bytes.size());
  }
  [[nodiscard]] std::span<const std::uint8_t> view() const { return {copy_.get(), size_}; }

 private:
  std::unique_ptr<std::uint8_t[]> copy_;
  std::size_t size_;
};

// parse_ip (no dlt) or parse_frame on an exact-size copy of `bytes`. The copy is gone on
// return, and with it what out.payload viewed: use it only for the parsed values; a caller
// that reads the payload (validate() of a UDP reply) parses an ExactBytes it keeps.
bool parse_exact(std::span<const std::uint8_t> bytes, Reply& out,
                 std::optional<int> dlt = std::nullopt) {
  const ExactBytes copy(bytes);
  const bool ok = dlt ? parse_frame(copy.view(), *dlt, out) : parse_ip(copy.view(), out);
  out.payload = {};
  return ok;
}

void expect_same(const Reply& a, const Reply& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.src, b.src);
  EXPECT_EQ(a.dst, b.dst);
  EXPECT_EQ(a.ttl, b.ttl);
  EXPECT_EQ(a.sport, b.sport);
  EXPECT_EQ(a.dport, b.dport);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.ack, b.ack);
  EXPECT_EQ(a.flags, b.flags);
  EXPECT_EQ(a.icmp_type, b.icmp_type);
  EXPECT_EQ(a.icmp_code, b.icmp_code);
  EXPECT_EQ(a.quoted_proto, b.quoted_proto);
  EXPECT_EQ(a.quoted_src, b.quoted_src);
  EXPECT_EQ(a.quoted_dst, b.quoted_dst);
  EXPECT_EQ(a.quoted_has_seq, b.quoted_has_seq);
}

// A parse of a prefix may only report what the prefix holds: the same fields as the full
// packet, except that an ICMP quote cut inside the TCP sequence number loses it.
void expect_prefix_consistent(const Reply& part, const Reply& full) {
  EXPECT_EQ(part.kind, full.kind);
  EXPECT_EQ(part.src, full.src);
  EXPECT_EQ(part.dst, full.dst);
  EXPECT_EQ(part.ttl, full.ttl);
  EXPECT_EQ(part.sport, full.sport);
  EXPECT_EQ(part.dport, full.dport);
  EXPECT_EQ(part.ack, full.ack);
  EXPECT_EQ(part.flags, full.flags);
  EXPECT_EQ(part.icmp_type, full.icmp_type);
  EXPECT_EQ(part.icmp_code, full.icmp_code);
  EXPECT_EQ(part.quoted_proto, full.quoted_proto);
  EXPECT_EQ(part.quoted_src, full.quoted_src);
  EXPECT_EQ(part.quoted_dst, full.quoted_dst);
  if (part.kind != Reply::Kind::unreachable || part.quoted_has_seq) {
    EXPECT_EQ(part.seq, full.seq);
    EXPECT_EQ(part.quoted_has_seq, full.quoted_has_seq);
  }
}

struct Fixture {
  std::string name;
  Bytes packet;
};

// Every probe, and replies of every kind, over both families.
std::vector<Fixture> all_fixtures() {
  std::vector<Fixture> out;
  for (bool v6 : {false, true}) {
    const std::string fam = v6 ? "/IPv6" : "/IPv4";
    const IpAddr us = scanner_ip(v6);
    const IpAddr them = target_ip(v6);
    for (Technique t : kTechniques) {
      const Bytes probe = build_probe(*probe_for(t), v6, t == Technique::udp ? 53 : 80);
      out.push_back({std::string(portvigil::name(t)) + " probe" + fam, probe});
      out.push_back({std::string(portvigil::name(t)) + " unreachable" + fam,
                     unreachable(target_ip(v6), us, v6 ? 4 : 3, probe)});
    }
    out.push_back({"udp probe no payload" + fam, build_probe(*probe_for(Technique::udp), v6, 9)});
    out.push_back(
        {"syn/ack" + fam, tcp_packet(them, us, 80, kSportBase, 7, kCookie + 1, tf::syn | tf::ack)});
    out.push_back(
        {"rst/ack" + fam, tcp_packet(them, us, 80, kSportBase, 0, kCookie + 1, tf::rst | tf::ack)});
    out.push_back({"udp reply" + fam, udp_packet(them, us, 53, kUdpSport, Bytes{1, 2, 3})});
  }
  return out;
}

// ---- round trips -------------------------------------------------------------------------

TEST(ParseRoundTrip, EveryProbeParsesBack) {
  for (Technique t : kTechniques) {
    for (bool v6 : {false, true}) {
      SCOPED_TRACE(std::string(portvigil::name(t)) + (v6 ? " over IPv6" : " over IPv4"));
      const auto& probe = *probe_for(t);
      const std::uint16_t dport = t == Technique::udp ? 53 : 80;
      const Bytes sent = build_probe(probe, v6, dport);
      Reply r;
      ASSERT_TRUE(parse_exact(sent, r));
      EXPECT_EQ(r.src, scanner_ip(v6));
      EXPECT_EQ(r.dst, target_ip(v6));
      EXPECT_EQ(r.ttl, 64);
      EXPECT_EQ(r.dport, dport);
      if (t == Technique::udp) {
        EXPECT_EQ(r.kind, Reply::Kind::udp);
        EXPECT_EQ(r.sport, kUdpSport);
      } else {
        EXPECT_EQ(r.kind, Reply::Kind::tcp);
        EXPECT_EQ(r.sport, kSportBase);
        EXPECT_EQ(r.seq, kCookie);
        EXPECT_EQ(r.ack, t == Technique::ack ? kCookie : 0u);
        EXPECT_EQ(r.flags, probe.tcp_flags);
      }
    }
  }
}

TEST(ParseRoundTrip, HandBuiltReplies) {
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    const IpAddr us = scanner_ip(v6);
    const IpAddr them = target_ip(v6);
    Reply r;
    ASSERT_TRUE(parse_exact(
        tcp_packet(them, us, 80, kSportBase, 0xa0b0c0d0, kCookie + 1, tf::syn | tf::ack, 51), r));
    EXPECT_EQ(r.kind, Reply::Kind::tcp);
    EXPECT_EQ(r.src, them);
    EXPECT_EQ(r.dst, us);
    EXPECT_EQ(r.ttl, 51);
    EXPECT_EQ(r.sport, 80);
    EXPECT_EQ(r.dport, kSportBase);
    EXPECT_EQ(r.seq, 0xa0b0c0d0u);
    EXPECT_EQ(r.ack, kCookie + 1);
    EXPECT_EQ(r.flags, tf::syn | tf::ack);

    ASSERT_TRUE(parse_exact(udp_packet(them, us, 53, kUdpSport, Bytes{}), r));
    EXPECT_EQ(r.kind, Reply::Kind::udp);
    EXPECT_EQ(r.sport, 53);
    EXPECT_EQ(r.dport, kUdpSport);

    const Bytes probe = build_probe(*probe_for(Technique::udp), v6, 53);
    ASSERT_TRUE(parse_exact(unreachable(router_ip(v6), us, v6 ? 1 : 13, probe), r));
    EXPECT_EQ(r.kind, Reply::Kind::unreachable);
    EXPECT_EQ(r.src, router_ip(v6));
    EXPECT_EQ(r.icmp_type, v6 ? 1 : 3);
    EXPECT_EQ(r.icmp_code, v6 ? 1 : 13);
    EXPECT_EQ(r.quoted_proto, 17);
    EXPECT_EQ(r.quoted_src, us);
    EXPECT_EQ(r.quoted_dst, them);
    EXPECT_EQ(r.sport, kUdpSport);
    EXPECT_EQ(r.dport, 53);
    EXPECT_FALSE(r.quoted_has_seq);
  }
}

TEST(ParseRoundTrip, BuildUnreachableIsWellFormed) {
  for (bool v6 : {false, true}) {
    const Bytes probe = build_probe(*probe_for(Technique::syn), v6, 80);
    const Bytes icmp = unreachable(target_ip(v6), scanner_ip(v6), v6 ? 4 : 3, probe);
    const std::size_t ip_len = v6 ? 40 : 20;
    // ICMPv4 quotes the IP header + 8 bytes (RFC 792); ICMPv6 quotes the whole probe here.
    const std::size_t quote = v6 ? probe.size() : 28;
    ASSERT_EQ(icmp.size(), ip_len + 8 + quote);
    EXPECT_EQ(icmp[ip_len], v6 ? 1 : 3);
    EXPECT_TRUE(std::equal(probe.begin(), probe.begin() + static_cast<long>(quote),
                           icmp.begin() + static_cast<long>(ip_len + 8)));
    const std::span<const std::uint8_t> msg{icmp.data() + ip_len, icmp.size() - ip_len};
    if (v6) {
      EXPECT_EQ(l4_verify_sum(target_ip(true), scanner_ip(true), 58, msg), 0xffff);
    } else {
      EXPECT_EQ(fold16(ones_sum({icmp.data(), 20})), 0xffff);
      EXPECT_EQ(fold16(ones_sum(msg)), 0xffff);  // ICMPv4: no pseudo-header
    }
  }
}

// ---- link layers -------------------------------------------------------------------------

TEST(ParseFrame, EveryLinkTypeCarriesTheSameReply) {
  for (const auto& fx : all_fixtures()) {
    SCOPED_TRACE(fx.name);
    Reply bare;
    ASSERT_TRUE(parse_exact(fx.packet, bare));
    const struct {
      const char* name;
      Bytes frame;
      int dlt;
    } frames[] = {
        {"ethernet", ethernet(fx.packet), kDltEthernet},
        {"802.1Q", ethernet(fx.packet, {0x8100}), kDltEthernet},
        {"802.1ad+802.1Q", ethernet(fx.packet, {0x88a8, 0x8100}), kDltEthernet},
        {"802.1Q+802.1Q", ethernet(fx.packet, {0x8100, 0x8100}), kDltEthernet},
        {"sll", linux_sll(fx.packet), kDltLinuxSll},
        {"sll2", linux_sll2(fx.packet), kDltLinuxSll2},
        {"null", dlt_null(fx.packet), kDltNull},
        {"raw", fx.packet, kDltRaw},
        {"raw101", fx.packet, kDltRaw2},
    };
    for (const auto& f : frames) {
      SCOPED_TRACE(f.name);
      Reply r;
      ASSERT_TRUE(parse_exact(f.frame, r, f.dlt)) << hex(f.frame);
      expect_same(r, bare);
      // Ethernet minimum-size padding after the IP packet changes nothing.
      Bytes padded = f.frame;
      padded.resize(padded.size() + 18, 0);
      ASSERT_TRUE(parse_exact(padded, r, f.dlt));
      expect_same(r, bare);
      // Every cut of the frame is rejected or parsed consistently.
      for (std::size_t n = 0; n < f.frame.size(); ++n) {
        if (parse_exact({f.frame.data(), n}, r, f.dlt)) {
          expect_prefix_consistent(r, bare);
        }
      }
    }
  }
}

TEST(ParseFrame, RejectsWhatIsNotIp) {
  const Bytes ip = tcp_packet(target_ip(false), scanner_ip(false), 80, kSportBase, 1, 2, tf::rst);
  Reply r;
  // Three VLAN tags: more than we unwrap.
  EXPECT_FALSE(parse_exact(ethernet(ip, {0x88a8, 0x8100, 0x8100}), r, kDltEthernet));
  // ARP / unknown ethertypes.
  Bytes arp = ethernet(ip);
  wr16(arp, 12, 0x0806);
  EXPECT_FALSE(parse_exact(arp, r, kDltEthernet));
  Bytes tagged_arp = ethernet(ip, {0x8100});
  wr16(tagged_arp, 16, 0x0806);
  EXPECT_FALSE(parse_exact(tagged_arp, r, kDltEthernet));
  Bytes sll = linux_sll(ip);
  wr16(sll, 14, 0x0806);
  EXPECT_FALSE(parse_exact(sll, r, kDltLinuxSll));
  Bytes sll2 = linux_sll2(ip);
  wr16(sll2, 0, 0x0806);
  EXPECT_FALSE(parse_exact(sll2, r, kDltLinuxSll2));
  // Link types we do not read.
  for (int dlt : {-1, 2, 9, 105, 127, 228, 229, 100000}) {
    EXPECT_FALSE(parse_exact(ethernet(ip), r, dlt)) << dlt;
    EXPECT_FALSE(parse_exact(ip, r, dlt)) << dlt;
  }
  // Headers cut short (anything shorter than link header + IPv4 + TCP headers).
  const struct {
    Bytes frame;
    int dlt;
  } cut[] = {{ethernet(ip), kDltEthernet},
             {ethernet(ip, {0x88a8, 0x8100}), kDltEthernet},
             {linux_sll(ip), kDltLinuxSll},
             {linux_sll2(ip), kDltLinuxSll2},
             {dlt_null(ip), kDltNull}};
  for (const auto& c : cut) {
    for (std::size_t n = 0; n < c.frame.size(); ++n) {
      EXPECT_FALSE(parse_exact({c.frame.data(), n}, r, c.dlt)) << c.dlt << " length " << n;
    }
    EXPECT_TRUE(parse_exact(c.frame, r, c.dlt)) << c.dlt;
  }
  // Ethertype says IPv6, payload is IPv4 (and vice versa): the IP version nibble decides and
  // nothing is misread.
  Bytes mismatched = ethernet(ip);
  wr16(mismatched, 12, 0x86dd);
  Reply bare;
  ASSERT_TRUE(parse_exact(ip, bare));
  if (parse_exact(mismatched, r, kDltEthernet)) {
    expect_same(r, bare);
  }
}

// ---- hostile input -----------------------------------------------------------------------

TEST(ParseHostile, TruncatedAtEveryLength) {
  for (const auto& fx : all_fixtures()) {
    SCOPED_TRACE(fx.name);
    Reply full;
    ASSERT_TRUE(parse_exact(fx.packet, full));
    const bool v6 = (fx.packet[0] >> 4) == 6;
    const std::size_t ip_len = v6 ? 40 : 20;
    // The least the parser needs: the whole transport header it reads, or for ICMP the
    // 8-byte ICMP header, the quoted IP header and the quoted ports.
    std::size_t need = ip_len + 20;
    if (full.kind == Reply::Kind::udp) need = ip_len + 8;
    if (full.kind == Reply::Kind::unreachable) need = ip_len + 8 + ip_len + 4;
    for (std::size_t n = 0; n <= fx.packet.size(); ++n) {
      Reply r;
      const bool ok = parse_exact({fx.packet.data(), n}, r);
      if (n < need) {
        EXPECT_FALSE(ok) << "length " << n;
      } else {
        // The headers claim more than is there; the parser trusts the buffer, not them.
        EXPECT_TRUE(ok) << "length " << n;
      }
      if (ok) {
        SCOPED_TRACE("length " + std::to_string(n));
        expect_prefix_consistent(r, full);
      }
    }
  }
}

Bytes syn_ack(bool v6) {
  return tcp_packet(target_ip(v6), scanner_ip(v6), 80, kSportBase, 1, kCookie + 1,
                    tf::syn | tf::ack);
}

TEST(ParseHostile, Ipv4HeaderLengths) {
  Reply r;
  const Bytes good = syn_ack(false);
  for (std::uint8_t ihl = 0; ihl < 5; ++ihl) {  // IHL < 5: shorter than the fixed header
    Bytes b = good;
    b[0] = static_cast<std::uint8_t>(0x40 | ihl);
    EXPECT_FALSE(parse_exact(b, r)) << "IHL " << int{ihl};
  }
  {
    Bytes b = good;  // IHL 15 = 60 bytes, buffer 40
    b[0] = 0x4f;
    EXPECT_FALSE(parse_exact(b, r));
  }
  {
    Bytes b = good;  // IHL 15 within the buffer but total length says 40 < 60
    b[0] = 0x4f;
    b.resize(80, 0);
    EXPECT_FALSE(parse_exact(b, r));
  }
  {
    Bytes b = good;  // IHL 6: options (one NOP word), then TCP at offset 24
    b.insert(b.begin() + 20, {0x01, 0x01, 0x01, 0x00});
    b[0] = 0x46;
    wr16(b, 2, static_cast<std::uint16_t>(b.size()));
    ASSERT_TRUE(parse_exact(b, r));
    EXPECT_EQ(r.sport, 80);
    EXPECT_EQ(r.ack, kCookie + 1);
  }
  for (const std::uint16_t total :
       {std::uint16_t{0}, std::uint16_t{1}, std::uint16_t{19}}) {  // total length < IHL
    Bytes b = good;
    wr16(b, 2, total);
    EXPECT_FALSE(parse_exact(b, r)) << "total " << total;
  }
  {
    Bytes b = good;  // total length = IHL: no room for TCP
    wr16(b, 2, 20);
    EXPECT_FALSE(parse_exact(b, r));
    wr16(b, 2, 39);  // one byte short of the TCP header
    EXPECT_FALSE(parse_exact(b, r));
  }
  {
    Bytes b = good;  // total length far beyond the buffer: clamped to what was captured
    wr16(b, 2, 0xffff);
    ASSERT_TRUE(parse_exact(b, r));
    EXPECT_EQ(r.ack, kCookie + 1);
  }
  {
    Bytes b = good;  // a non-first fragment carries no transport header
    wr16(b, 6, 0x0001);
    EXPECT_FALSE(parse_exact(b, r));
  }
  for (const int version : {0, 1, 5, 7, 15}) {
    Bytes b = good;
    b[0] = static_cast<std::uint8_t>((version << 4) | 5);
    EXPECT_FALSE(parse_exact(b, r)) << "version " << version;
  }
}

TEST(ParseHostile, Ipv6PayloadLength) {
  Reply r;
  const Bytes good = syn_ack(true);
  {
    Bytes b = good;  // beyond the buffer: clamped
    wr16(b, 4, 0xffff);
    ASSERT_TRUE(parse_exact(b, r));
    EXPECT_EQ(r.ack, kCookie + 1);
  }
  for (const std::uint16_t len : {std::uint16_t{0}, std::uint16_t{1},
                                  std::uint16_t{19}}) {  // shorter than the TCP header it announces
    Bytes b = good;
    wr16(b, 4, len);
    EXPECT_FALSE(parse_exact(b, r)) << len;
  }
  for (std::size_t n = 0; n < 40; ++n) {
    EXPECT_FALSE(parse_exact({good.data(), n}, r)) << n;
  }
}

// IPv6 packet from the target with extension headers `ext` (each already 8*k bytes, with its
// next-header byte filled in) before a TCP SYN/ACK.
Bytes with_extensions(std::uint8_t first, const Bytes& ext) {
  const Bytes plain = syn_ack(true);
  Bytes b(plain.begin(), plain.begin() + 40);
  b[6] = first;
  append(b, ext);
  b.insert(b.end(), plain.begin() + 40, plain.end());
  wr16(b, 4, static_cast<std::uint16_t>(b.size() - 40));
  return b;
}
// An 8-byte option header (hop-by-hop, destination options, routing) followed by `next`.
Bytes ext8(std::uint8_t next) {
  return {next, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00};  // PadN filling the 6 bytes
}

TEST(ParseHostile, Ipv6ExtensionHeaders) {
  Reply r;
  // Hop-by-hop -> destination options -> TCP parses to the TCP reply.
  ASSERT_TRUE(parse_exact(with_extensions(0, cat({ext8(60), ext8(6)})), r));
  EXPECT_EQ(r.kind, Reply::Kind::tcp);
  EXPECT_EQ(r.ack, kCookie + 1);
  // Routing header (43), 16 bytes (hdr ext len 1).
  {
    Bytes routing = {6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    ASSERT_TRUE(parse_exact(with_extensions(43, routing), r));
    EXPECT_EQ(r.sport, 80);
  }
  // First fragment (offset 0, M=1) is parsed; later fragments are not.
  {
    const Bytes first_frag = {6, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef};
    ASSERT_TRUE(parse_exact(with_extensions(44, first_frag), r));
    const Bytes later_frag = {6, 0, 0x00, 0x08, 0xde, 0xad, 0xbe, 0xef};  // offset 1
    EXPECT_FALSE(parse_exact(with_extensions(44, later_frag), r));
  }
  // A long chain of headers (each pointing to another hop-by-hop header): bounded walk,
  // rejected, whatever comes after.
  for (int count : {9, 16, 64, 500}) {
    Bytes chain;
    for (int i = 0; i < count; ++i) append(chain, ext8(i + 1 == count ? 6 : 0));
    EXPECT_FALSE(parse_exact(with_extensions(0, chain), r)) << count;
  }
  // A chain that never ends before the buffer does.
  {
    Bytes chain;
    for (int i = 0; i < 4; ++i) append(chain, ext8(0));
    Bytes b = with_extensions(0, chain);
    b.resize(40 + chain.size());
    wr16(b, 4, static_cast<std::uint16_t>(chain.size()));
    EXPECT_FALSE(parse_exact(b, r));
  }
  // Oversized: hdr ext len 255 (2048 bytes) in a short packet, and lengths that end exactly
  // at / one past the buffer.
  {
    Bytes big = ext8(6);
    big[1] = 255;
    EXPECT_FALSE(parse_exact(with_extensions(0, big), r));
    Bytes b = with_extensions(0, ext8(6));
    b[41] = 2;  // claims 24 bytes: swallows part of the TCP header
    EXPECT_FALSE(parse_exact(b, r));
    b[41] = 3;  // claims 32 bytes: ends exactly where the buffer does
    EXPECT_FALSE(parse_exact(b, r));
    b[41] = 4;  // one word past the buffer
    EXPECT_FALSE(parse_exact(b, r));
  }
  // Extension header cut short.
  {
    const Bytes b = with_extensions(0, ext8(6));
    for (std::size_t n = 40; n < 48; ++n) EXPECT_FALSE(parse_exact({b.data(), n}, r)) << n;
  }
  // Payload length ending inside the extension header.
  {
    Bytes b = with_extensions(0, ext8(6));
    wr16(b, 4, 4);
    EXPECT_FALSE(parse_exact(b, r));
  }
}

TEST(ParseHostile, IcmpQuotingATruncatedProbe) {
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    const std::size_t ip_len = v6 ? 40 : 20;
    for (Technique t : {Technique::syn, Technique::udp}) {
      const Bytes probe = build_probe(*probe_for(t), v6, 80);
      for (std::size_t k = 0; k <= 8; ++k) {  // bytes of the quoted transport header
        Reply r;
        const Bytes icmp =
            unreachable(target_ip(v6), scanner_ip(v6), v6 ? 4 : 3, {probe.data(), ip_len + k});
        const bool ok = parse_exact(icmp, r);
        if (k < 4) {
          EXPECT_FALSE(ok) << k;  // not even the ports
          continue;
        }
        ASSERT_TRUE(ok) << k;
        EXPECT_EQ(r.dport, 80);
        // Without the whole sequence number the quote cannot be checked against the cookie.
        EXPECT_EQ(r.quoted_has_seq, t == Technique::syn && k == 8) << k;
        if (r.quoted_has_seq) {
          EXPECT_EQ(r.seq, kCookie);
        }
        // A quote that cannot be checked against the cookie is not an answer: TCP needs the
        // sequence number, UDP the length and checksum (all in the 8 bytes RFC 792 promises).
        EXPECT_EQ(r.quoted_has_udp_header, t == Technique::udp && k == 8) << k;
        EXPECT_EQ(probe_for(t)->validate(r, probe_key(v6, 80)), k == 8) << k;
      }
      // The quoted IP header itself cut short.
      for (std::size_t k = 0; k < ip_len; ++k) {
        Reply r;
        EXPECT_FALSE(
            parse_exact(unreachable(target_ip(v6), scanner_ip(v6), 3, {probe.data(), k}), r))
            << k;
      }
    }
    // A quote of something that is neither TCP nor UDP.
    Bytes probe = build_probe(*probe_for(Technique::syn), v6, 80);
    probe[v6 ? 6 : 9] = 1;
    Reply r;
    EXPECT_FALSE(parse_exact(unreachable(target_ip(v6), scanner_ip(v6), 3, probe), r));
  }
  // Quoted IPv4 header with a bogus IHL, and a quoted non-first fragment.
  Bytes probe = build_probe(*probe_for(Technique::syn), false, 80);
  Reply r;
  Bytes bad = probe;
  bad[0] = 0x44;
  EXPECT_FALSE(parse_exact(unreachable(target_ip(false), scanner_ip(false), 3, bad), r));
  bad = probe;
  bad[0] = 0x4f;
  EXPECT_FALSE(parse_exact(unreachable(target_ip(false), scanner_ip(false), 3, bad), r));
  bad = probe;
  wr16(bad, 6, 0x0010);
  EXPECT_FALSE(parse_exact(unreachable(target_ip(false), scanner_ip(false), 3, bad), r));
  // ICMP types other than destination unreachable and echo reply are not replies (an echo
  // request is what we send).
  Bytes echo = unreachable(target_ip(false), scanner_ip(false), 0, probe);
  echo[20] = 8;
  EXPECT_FALSE(parse_exact(echo, r));
  Bytes echo6 = unreachable(target_ip(true), scanner_ip(true), 0,
                            build_probe(*probe_for(Technique::syn), true, 80));
  echo6[40] = 128;
  EXPECT_FALSE(parse_exact(echo6, r));
  // An echo reply with a nonzero code, or cut before its identifier, is not one either.
  echo[20] = 0;
  echo[21] = 1;
  EXPECT_FALSE(parse_exact(echo, r));
  echo[21] = 0;
  EXPECT_TRUE(parse_exact(echo, r));
  EXPECT_EQ(r.kind, Reply::Kind::echo_reply);
  Bytes short_echo(echo.begin(), echo.begin() + 27);
  short_echo[3] = 27;  // IPv4 total length
  EXPECT_FALSE(parse_exact(short_echo, r));
  // ICMPv4 inside IPv6 / ICMPv6 inside IPv4 are not accepted.
  Bytes crossed = unreachable(target_ip(false), scanner_ip(false), 3, probe);
  crossed[9] = 58;
  EXPECT_FALSE(parse_exact(crossed, r));
}

constexpr int kDlts[] = {kDltEthernet, kDltLinuxSll, kDltLinuxSll2, kDltNull, kDltRaw, kDltRaw2};

TEST(ParseHostile, OversizedFrames) {
  std::mt19937 rng(0x5eed);
  Bytes garbage(65536);
  for (auto& b : garbage) b = static_cast<std::uint8_t>(rng() & 0xff);
  Reply r;
  for (int dlt : kDlts) {
    (void)parse_exact(garbage, r, dlt);
    // A real reply followed by 64 KiB of junk: the IP lengths bound what is read.
    for (bool v6 : {false, true}) {
      Bytes ip = syn_ack(v6);
      Bytes frame = dlt == kDltEthernet    ? ethernet(ip)
                    : dlt == kDltLinuxSll  ? linux_sll(ip)
                    : dlt == kDltLinuxSll2 ? linux_sll2(ip)
                    : dlt == kDltNull      ? dlt_null(ip)
                                           : ip;
      append(frame, garbage);
      ASSERT_TRUE(parse_exact(frame, r, dlt)) << dlt;
      EXPECT_EQ(r.ack, kCookie + 1);
      // The same with the IP header claiming the maximum length.
      const std::size_t at = frame.size() - garbage.size() - ip.size();
      wr16(frame, at + (v6 ? 4 : 2), 0xffff);
      ASSERT_TRUE(parse_exact(frame, r, dlt)) << dlt;
      EXPECT_EQ(r.ack, kCookie + 1);
    }
  }
  // All-ones and all-zero 64 KiB buffers.
  for (const int fill : {0x00, 0xff, 0x45, 0x60}) {
    const Bytes b(65536, static_cast<std::uint8_t>(fill));
    for (int dlt : kDlts) (void)parse_exact(b, r, dlt);
  }
}

// What any successful parse must satisfy, whatever the input.
void expect_sane(const Reply& r) {
  EXPECT_NE(r.kind, Reply::Kind::other);
  EXPECT_EQ(r.src.v6, r.dst.v6);
  if (r.kind == Reply::Kind::unreachable) {
    EXPECT_TRUE(r.quoted_proto == 6 || r.quoted_proto == 17);
    EXPECT_EQ(r.quoted_src.v6, r.quoted_dst.v6);
    EXPECT_EQ(r.icmp_type, r.src.v6 ? 1 : 3);
  }
}

TEST(ParseHostile, RandomGarbageAndMutations) {
  std::mt19937 engine(20240601);
  auto rng = [&engine] { return static_cast<std::uint32_t>(engine()); };
  std::vector<Bytes> seeds;
  for (const auto& fx : all_fixtures()) {
    seeds.push_back(fx.packet);
    seeds.push_back(ethernet(fx.packet, {0x8100}));
  }
  const std::vector<int> dlts = {
      kDltEthernet, kDltLinuxSll, kDltLinuxSll2, kDltNull, kDltRaw, kDltRaw2, 2, -7};
  const auto& syn = *probe_for(Technique::syn);
  const auto& udp = *probe_for(Technique::udp);
  std::size_t parsed = 0;
  for (int i = 0; i < 100000; ++i) {
    Bytes b;
    const unsigned mode = rng() % 3;
    if (mode == 0) {  // pure garbage
      b.resize(rng() % 160);
      for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    } else if (mode == 1) {  // garbage behind a plausible first byte
      b.resize(1 + rng() % 120);
      for (auto& x : b) x = static_cast<std::uint8_t>(rng());
      b[0] = (rng() & 1) ? 0x45 : 0x60;
    } else {  // a valid packet with a few bytes changed and maybe cut
      b = seeds[rng() % seeds.size()];
      const unsigned flips = 1 + rng() % 4;
      for (unsigned f = 0; f < flips; ++f) b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
      if (rng() & 1) b.resize(rng() % (b.size() + 1));
    }
    const int dlt = mode == 2 ? ((b.size() > 0 && (b[0] >> 4) >= 4) ? kDltRaw : kDltEthernet)
                              : dlts[rng() % dlts.size()];
    Reply r;
    const ExactBytes exact(b);  // outlives r: validate() reads a UDP reply's payload
    if (parse_frame(exact.view(), dlt, r)) {
      ++parsed;
      expect_sane(r);
      // The probes' checks run on anything that parses (they must not misbehave either).
      (void)syn.validate(r, probe_key(r.src.v6, r.sport));
      (void)syn.classify(r);
      (void)udp.validate(r, probe_key(r.src.v6, r.sport));
      (void)udp.classify(r);
    }
    if (HasFailure()) {
      ADD_FAILURE() << "iteration " << i << " dlt " << dlt << "\n" << hex(b);
      break;
    }
  }
  EXPECT_GT(parsed, 1000u);  // the mutations keep many inputs valid enough to go deep
}

}  // namespace
