// Probe tables: every technique against every kind of reply (Nmap's state and reason words),
// reply authentication (cookie, ports, quoted probe), the SipHash cookie, and the BPF capture
// filter compiled and run by libpcap.
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "raw/packet.hpp"
#include "raw/probe.hpp"
#include "raw/udp_payloads.hpp"
#include "raw_test_util.hpp"

namespace {

using namespace rawtest;
using portvigil::PortState;
using portvigil::Reason;
using portvigil::Technique;
using portvigil::raw::CookieKey;
using portvigil::raw::Observation;
using portvigil::raw::parse_ip;
using portvigil::raw::Probe;
using portvigil::raw::probe_for;
using portvigil::raw::Reply;
namespace tf = portvigil::raw::tcp_flag;

constexpr Technique kTechniques[] = {Technique::syn,  Technique::fin, Technique::null,
                                     Technique::xmas, Technique::ack, Technique::udp};

enum class Kind {
  syn_ack,      // SYN|ACK, ack = probe seq + 1 (SYN consumes a sequence number)
  rst_ack,      // RST|ACK, seq 0, ack = probe seq + SYN/FIN count (RFC 793 p.36)
  rst_seq,      // RST without ACK, seq = probe ack (RFC 793's answer to an ACK segment); to a
                // probe without ACK it cannot echo anything and is never an answer
  udp,          // UDP datagram back from the probed port
  icmp_port,    // ICMP 3/3 port unreachable, from the target
  icmp_admin,   // ICMP 3/13 communication administratively prohibited, from a router
  icmp_host,    // ICMP 3/1 host unreachable, from a router
  icmp6_port,   // ICMPv6 1/4 port unreachable, from the target
  icmp6_admin,  // ICMPv6 1/1 administratively prohibited, from a router
  none,         // silence: technique_info(t).silence
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::syn_ack:
      return "SYN/ACK";
    case Kind::rst_ack:
      return "RST/ACK";
    case Kind::rst_seq:
      return "RST(seq=cookie)";
    case Kind::udp:
      return "UDP";
    case Kind::icmp_port:
      return "ICMP 3/3";
    case Kind::icmp_admin:
      return "ICMP 3/13";
    case Kind::icmp_host:
      return "ICMP 3/1";
    case Kind::icmp6_port:
      return "ICMPv6 1/4";
    case Kind::icmp6_admin:
      return "ICMPv6 1/1";
    case Kind::none:
      return "no reply";
  }
  return "?";
}

bool is_v4_only(Kind k) {
  return k == Kind::icmp_port || k == Kind::icmp_admin || k == Kind::icmp_host;
}
bool is_v6_only(Kind k) {
  return k == Kind::icmp6_port || k == Kind::icmp6_admin;
}

// How far the reply's ack moves past the probe's seq: SYN and FIN each count one.
std::uint32_t seq_advance(Technique t) {
  return (t == Technique::syn || t == Technique::fin || t == Technique::xmas) ? 1 : 0;
}

std::uint16_t dport_of(Technique t) {
  return t == Technique::udp ? 53 : 80;
}

// A reply of kind `k` to the probe of `t` (carrying `cookie`, sent from `sport_base`).
// `probe_bytes` is what the ICMP errors quote.
Bytes make_reply(Technique t, bool v6, Kind k, std::uint32_t cookie, const Bytes& probe_bytes,
                 std::uint16_t sport_base = kSportBase) {
  const IpAddr us = scanner_ip(v6);
  const IpAddr them = target_ip(v6);
  const IpAddr router = router_ip(v6);
  const std::uint16_t dport = t == Technique::udp ? 53 : 80;
  switch (k) {
    case Kind::syn_ack:
      return tcp_packet(them, us, dport, sport_base, 0xa0b0c0d0, cookie + 1, tf::syn | tf::ack);
    case Kind::rst_ack:
      return tcp_packet(them, us, dport, sport_base, 0, cookie + seq_advance(t), tf::rst | tf::ack);
    case Kind::rst_seq:
      return tcp_packet(them, us, dport, sport_base, cookie, 0, tf::rst);
    case Kind::udp: {
      // A DNS answer header echoing the query ID, which carries the cookie's high 16 bits.
      const Bytes answer = {hi(cookie >> 16), lo(cookie >> 16), 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0};
      const auto sport = static_cast<std::uint16_t>(sport_base + (cookie & 0x3fff));
      return udp_packet(them, us, dport, sport, answer);
    }
    case Kind::icmp_port:
    case Kind::icmp6_port:
      return unreachable(them, us, k == Kind::icmp_port ? 3 : 4, probe_bytes);
    case Kind::icmp_admin:
      return unreachable(router, us, 13, probe_bytes);
    case Kind::icmp_host:
      return unreachable(router, us, 1, probe_bytes);
    case Kind::icmp6_admin:
      return unreachable(router, us, 1, probe_bytes);
    case Kind::none:
      break;
  }
  return {};
}

struct Row {
  Technique technique;
  Kind kind;
  bool valid;  // does validate() accept the reply?
  PortState state;
  Reason reason;
};

using PS = PortState;
using R = Reason;

// Nmap's semantics (nmap.org/book/man-port-scanning-techniques.html, portreasons.cc).
// Rows with valid = false: the reply is not an answer to that probe; state/reason unused.
const Row kTable[] = {
    // -sS
    {Technique::syn, Kind::syn_ack, true, PS::open, R::syn_ack},
    {Technique::syn, Kind::rst_ack, true, PS::closed, R::reset},
    {Technique::syn, Kind::rst_seq, false, PS::filtered, R::unknown},  // no ACK: no proof
    {Technique::syn, Kind::udp, false, PS::filtered, R::unknown},
    {Technique::syn, Kind::icmp_port, true, PS::filtered, R::port_unreach},
    {Technique::syn, Kind::icmp_admin, true, PS::filtered, R::admin_prohibited},
    {Technique::syn, Kind::icmp_host, true, PS::filtered, R::host_unreach},
    {Technique::syn, Kind::icmp6_port, true, PS::filtered, R::port_unreach},
    {Technique::syn, Kind::icmp6_admin, true, PS::filtered, R::admin_prohibited},
    {Technique::syn, Kind::none, true, PS::filtered, R::no_response},
    // -sF, -sN, -sX: RFC 793 says closed ports answer RST, open ones stay silent. A SYN/ACK
    // that echoes the cookie proves nothing about the port: open|filtered.
    {Technique::fin, Kind::syn_ack, true, PS::open_filtered, R::unknown},
    {Technique::fin, Kind::rst_ack, true, PS::closed, R::reset},
    {Technique::fin, Kind::rst_seq, false, PS::filtered, R::unknown},  // no ACK: no proof
    {Technique::fin, Kind::udp, false, PS::filtered, R::unknown},
    {Technique::fin, Kind::icmp_port, true, PS::filtered, R::port_unreach},
    {Technique::fin, Kind::icmp_admin, true, PS::filtered, R::admin_prohibited},
    {Technique::fin, Kind::icmp_host, true, PS::filtered, R::host_unreach},
    {Technique::fin, Kind::icmp6_port, true, PS::filtered, R::port_unreach},
    {Technique::fin, Kind::icmp6_admin, true, PS::filtered, R::admin_prohibited},
    {Technique::fin, Kind::none, true, PS::open_filtered, R::no_response},
    // NULL: nothing consumes a sequence number, so SYN/ACK's ack = seq + 1 does not echo it.
    {Technique::null, Kind::syn_ack, false, PS::filtered, R::unknown},
    {Technique::null, Kind::rst_ack, true, PS::closed, R::reset},
    {Technique::null, Kind::rst_seq, false, PS::filtered, R::unknown},  // no ACK: no proof
    {Technique::null, Kind::udp, false, PS::filtered, R::unknown},
    {Technique::null, Kind::icmp_port, true, PS::filtered, R::port_unreach},
    {Technique::null, Kind::icmp_admin, true, PS::filtered, R::admin_prohibited},
    {Technique::null, Kind::icmp_host, true, PS::filtered, R::host_unreach},
    {Technique::null, Kind::icmp6_port, true, PS::filtered, R::port_unreach},
    {Technique::null, Kind::icmp6_admin, true, PS::filtered, R::admin_prohibited},
    {Technique::null, Kind::none, true, PS::open_filtered, R::no_response},
    {Technique::xmas, Kind::syn_ack, true, PS::open_filtered, R::unknown},
    {Technique::xmas, Kind::rst_ack, true, PS::closed, R::reset},
    {Technique::xmas, Kind::rst_seq, false, PS::filtered, R::unknown},  // no ACK: no proof
    {Technique::xmas, Kind::udp, false, PS::filtered, R::unknown},
    {Technique::xmas, Kind::icmp_port, true, PS::filtered, R::port_unreach},
    {Technique::xmas, Kind::icmp_admin, true, PS::filtered, R::admin_prohibited},
    {Technique::xmas, Kind::icmp_host, true, PS::filtered, R::host_unreach},
    {Technique::xmas, Kind::icmp6_port, true, PS::filtered, R::port_unreach},
    {Technique::xmas, Kind::icmp6_admin, true, PS::filtered, R::admin_prohibited},
    {Technique::xmas, Kind::none, true, PS::open_filtered, R::no_response},
    // -sA: only a RST whose seq is the probe's ack answers; it means "unfiltered".
    {Technique::ack, Kind::syn_ack, false, PS::filtered, R::unknown},
    {Technique::ack, Kind::rst_ack, false, PS::filtered, R::unknown},  // seq 0 != cookie
    {Technique::ack, Kind::rst_seq, true, PS::unfiltered, R::reset},
    {Technique::ack, Kind::udp, false, PS::filtered, R::unknown},
    {Technique::ack, Kind::icmp_port, true, PS::filtered, R::port_unreach},
    {Technique::ack, Kind::icmp_admin, true, PS::filtered, R::admin_prohibited},
    {Technique::ack, Kind::icmp_host, true, PS::filtered, R::host_unreach},
    {Technique::ack, Kind::icmp6_port, true, PS::filtered, R::port_unreach},
    {Technique::ack, Kind::icmp6_admin, true, PS::filtered, R::admin_prohibited},
    {Technique::ack, Kind::none, true, PS::filtered, R::no_response},
    // -sU: port unreachable means closed; other unreachables filtered; silence open|filtered.
    {Technique::udp, Kind::syn_ack, false, PS::filtered, R::unknown},
    {Technique::udp, Kind::rst_ack, false, PS::filtered, R::unknown},
    {Technique::udp, Kind::rst_seq, false, PS::filtered, R::unknown},
    {Technique::udp, Kind::udp, true, PS::open, R::udp_response},
    {Technique::udp, Kind::icmp_port, true, PS::closed, R::port_unreach},
    {Technique::udp, Kind::icmp_admin, true, PS::filtered, R::admin_prohibited},
    {Technique::udp, Kind::icmp_host, true, PS::filtered, R::host_unreach},
    {Technique::udp, Kind::icmp6_port, true, PS::closed, R::port_unreach},
    {Technique::udp, Kind::icmp6_admin, true, PS::filtered, R::admin_prohibited},
    {Technique::udp, Kind::none, true, PS::open_filtered, R::no_response},
};

std::string obs_text(PortState s, Reason r) {
  return std::string(portvigil::name(s)) + " (" + std::string(portvigil::name(r)) + ")";
}

TEST(ProbeTable, EveryTechniqueHasAProbe) {
  for (Technique t : kTechniques) {
    const Probe* p = probe_for(t);
    ASSERT_NE(p, nullptr) << portvigil::name(t);
    EXPECT_EQ(p->technique, t);
    EXPECT_EQ(portvigil::proto_of(p->technique),
              t == Technique::udp ? portvigil::Proto::udp : portvigil::Proto::tcp);
  }
  EXPECT_EQ(probe_for(Technique::connect), nullptr);  // connect has its own engine
}

TEST(ProbeTable, TableCoversEveryTechniqueAndReplyKind) {
  for (Technique t : kTechniques) {
    for (int k = 0; k <= static_cast<int>(Kind::none); ++k) {
      int rows = 0;
      for (const auto& row : kTable) rows += row.technique == t && static_cast<int>(row.kind) == k;
      EXPECT_EQ(rows, 1) << portvigil::name(t) << " x " << kind_name(static_cast<Kind>(k));
    }
  }
}

TEST(ProbeTable, ClassifiesRepliesLikeNmap) {
  for (const auto& row : kTable) {
    for (bool v6 : {false, true}) {
      if ((v6 && is_v4_only(row.kind)) || (!v6 && is_v6_only(row.kind))) continue;
      SCOPED_TRACE(std::string(portvigil::name(row.technique)) + " x " + kind_name(row.kind) +
                   (v6 ? " over IPv6" : " over IPv4"));
      const Probe& probe = *probe_for(row.technique);
      if (row.kind == Kind::none) {
        EXPECT_EQ(obs_text(portvigil::technique_info(row.technique).silence,
                           portvigil::Reason::no_response),
                  obs_text(row.state, row.reason));
        continue;
      }
      const Bytes sent = build_probe(probe, v6, row.technique == Technique::udp ? 53 : 80);
      ASSERT_FALSE(sent.empty());
      const Bytes reply = make_reply(row.technique, v6, row.kind, kCookie, sent);
      ASSERT_FALSE(reply.empty());
      Reply r;
      ASSERT_TRUE(parse_ip(reply, r)) << hex(reply);
      EXPECT_EQ(probe.validate(r, probe_key(v6, dport_of(row.technique))), row.valid);
      if (!row.valid) continue;
      const Observation o = probe.classify(r);
      EXPECT_EQ(obs_text(o.state, o.reason), obs_text(row.state, row.reason));
    }
  }
}

// Replies that answer the probe in every respect but one must be rejected.
TEST(ProbeValidate, RejectsWrongCookiePortOrQuotedProbe) {
  for (const auto& row : kTable) {
    if (!row.valid || row.kind == Kind::none) continue;
    for (bool v6 : {false, true}) {
      if ((v6 && is_v4_only(row.kind)) || (!v6 && is_v6_only(row.kind))) continue;
      SCOPED_TRACE(std::string(portvigil::name(row.technique)) + " x " + kind_name(row.kind) +
                   (v6 ? " over IPv6" : " over IPv4"));
      const Probe& probe = *probe_for(row.technique);
      const std::uint16_t dport = row.technique == Technique::udp ? 53 : 80;
      Reply r;

      // Wrong cookie: the reply answers a probe that carried another cookie.
      const std::uint32_t other = kCookie ^ 0x00010001u;  // also moves the UDP source port
      const Bytes forged =
          make_reply(row.technique, v6, row.kind, other, build_probe(probe, v6, dport, other));
      ASSERT_TRUE(parse_ip(forged, r));
      EXPECT_FALSE(probe.validate(r, probe_key(v6, dport))) << "wrong cookie";

      // Wrong destination port of the reply (i.e. not our source port) / ICMP quoting a
      // probe from another source port.
      const std::uint16_t other_base = kSportBase + 1000;
      const Bytes misrouted =
          make_reply(row.technique, v6, row.kind, kCookie,
                     build_probe(probe, v6, dport, kCookie, other_base), other_base);
      ASSERT_TRUE(parse_ip(misrouted, r));
      EXPECT_FALSE(probe.validate(r, probe_key(v6, dport))) << "wrong port";
      // ... and the same reply is fine for the sender it was meant for.
      EXPECT_TRUE(probe.validate(r, probe_key(v6, dport, kCookie, other_base)));
    }
  }
}

TEST(ProbeValidate, IcmpQuotingTheOtherProtocolIsRejected) {
  for (bool v6 : {false, true}) {
    const Bytes udp_probe = build_probe(*probe_for(Technique::udp), v6, 53);
    const Bytes tcp_probe = build_probe(*probe_for(Technique::syn), v6, 53);
    Reply r;
    ASSERT_TRUE(parse_ip(unreachable(target_ip(v6), scanner_ip(v6), v6 ? 4 : 3, udp_probe), r));
    for (Technique t :
         {Technique::syn, Technique::fin, Technique::null, Technique::xmas, Technique::ack}) {
      EXPECT_FALSE(probe_for(t)->validate(r, probe_key(v6, 53))) << portvigil::name(t);
    }
    ASSERT_TRUE(parse_ip(unreachable(target_ip(v6), scanner_ip(v6), v6 ? 4 : 3, tcp_probe), r));
    EXPECT_FALSE(probe_for(Technique::udp)->validate(r, probe_key(v6, 53)));
  }
}

TEST(ProbeValidate, RoundTripOfEveryProbeThroughIcmpQuote) {
  for (Technique t : kTechniques) {
    for (bool v6 : {false, true}) {
      SCOPED_TRACE(std::string(portvigil::name(t)) + (v6 ? " over IPv6" : " over IPv4"));
      const Bytes sent = build_probe(*probe_for(t), v6, 80);
      Reply r;
      ASSERT_TRUE(parse_ip(unreachable(router_ip(v6), scanner_ip(v6), 1, sent), r));
      EXPECT_EQ(r.kind, Reply::Kind::unreachable);
      EXPECT_EQ(r.src, router_ip(v6));
      EXPECT_EQ(r.dst, scanner_ip(v6));
      EXPECT_EQ(r.icmp_type, v6 ? 1 : 3);
      EXPECT_EQ(r.icmp_code, 1);
      EXPECT_EQ(r.quoted_src, scanner_ip(v6));
      EXPECT_EQ(r.quoted_dst, target_ip(v6));
      EXPECT_EQ(r.quoted_proto, t == Technique::udp ? 17 : 6);
      EXPECT_EQ(r.sport, t == Technique::udp ? kUdpSport : kSportBase);
      EXPECT_EQ(r.dport, 80);
      EXPECT_EQ(r.quoted_has_seq, t != Technique::udp);
      if (t != Technique::udp) {
        EXPECT_EQ(r.seq, kCookie);
      }
    }
  }
}

// ---- hostile networks: forged replies from a blind spoofer ---------------------------------
//
// A spoofer who cannot see our probes knows the target, its ports and our address, and may
// guess the source port; it does not know the cookie. Nothing it sends may be taken as an
// answer unless it guessed the cookie.

constexpr Technique kTcpTechniques[] = {Technique::syn, Technique::fin, Technique::null,
                                        Technique::xmas, Technique::ack};

bool accepted(Technique t, const Bytes& reply, bool v6, std::uint16_t dport = 80) {
  Reply r;
  if (!parse_ip(reply, r)) return false;
  return probe_for(t)->validate(r, probe_key(v6, dport));
}

TEST(ProbeSpoof, BareSynAndBareRstAreNeverAnswers) {
  for (bool v6 : {false, true}) {
    const IpAddr us = scanner_ip(v6);
    const IpAddr them = target_ip(v6);
    for (Technique t : kTcpTechniques) {
      SCOPED_TRACE(std::string(portvigil::name(t)) + (v6 ? " over IPv6" : " over IPv4"));
      // Even with every number field set to what a genuine reply would carry: without ACK
      // the numbers are not an echo (RFC 793 3.4), so they prove nothing... except the
      // seq of a RST to an ACK probe, which RFC 793 takes from the probe's ack.
      for (std::uint32_t v : {0u, kCookie, kCookie + 1, 0xdeadbeefu}) {
        EXPECT_FALSE(accepted(t, tcp_packet(them, us, 80, kSportBase, v, v, tf::syn), v6)) << v;
        const bool rst_answers_ack = t == Technique::ack && v == kCookie;
        EXPECT_EQ(accepted(t, tcp_packet(them, us, 80, kSportBase, v, v, tf::rst), v6),
                  rst_answers_ack)
            << v;
        EXPECT_FALSE(
            accepted(t, tcp_packet(them, us, 80, kSportBase, v, v, tf::syn | tf::rst), v6) &&
            t != Technique::ack)
            << v;
      }
    }
  }
}

TEST(ProbeSpoof, AckBearingRepliesNeedTheCookieInTheAck) {
  for (bool v6 : {false, true}) {
    const IpAddr us = scanner_ip(v6);
    const IpAddr them = target_ip(v6);
    for (Technique t : {Technique::syn, Technique::fin, Technique::null, Technique::xmas}) {
      SCOPED_TRACE(std::string(portvigil::name(t)) + (v6 ? " over IPv6" : " over IPv4"));
      const std::uint32_t good = kCookie + seq_advance(t);
      for (std::uint8_t flags :
           {std::uint8_t(tf::syn | tf::ack), std::uint8_t(tf::rst | tf::ack)}) {
        if (flags & tf::syn && t == Technique::null) continue;  // see the table
        EXPECT_TRUE(accepted(t, tcp_packet(them, us, 80, kSportBase, 7, good, flags), v6));
        for (std::uint32_t bad : {good - 1, good + 1, good ^ 0x80000000u, 0u, kCookie ^ 1u}) {
          if (bad == good) continue;
          EXPECT_FALSE(accepted(t, tcp_packet(them, us, 80, kSportBase, 7, bad, flags), v6))
              << "flags " << int{flags} << " ack " << bad;
        }
        // The right ack from the wrong place: another source port, another host, to
        // another of our ports.
        EXPECT_FALSE(accepted(t, tcp_packet(them, us, 81, kSportBase, 7, good, flags), v6));
        EXPECT_FALSE(
            accepted(t, tcp_packet(router_ip(v6), us, 80, kSportBase, 7, good, flags), v6));
        EXPECT_FALSE(accepted(t, tcp_packet(them, us, 80, kSportBase + 1, 7, good, flags), v6));
      }
    }
  }
}

TEST(ProbeSpoof, AckScanRstNeedsTheCookieInItsSeq) {
  for (bool v6 : {false, true}) {
    const IpAddr us = scanner_ip(v6);
    const IpAddr them = target_ip(v6);
    const Technique t = Technique::ack;
    EXPECT_TRUE(accepted(t, tcp_packet(them, us, 80, kSportBase, kCookie, 0, tf::rst), v6));
    EXPECT_TRUE(
        accepted(t, tcp_packet(them, us, 80, kSportBase, kCookie, 1, tf::rst | tf::ack), v6));
    for (std::uint32_t bad : {kCookie - 1, kCookie + 1, 0u, kCookie ^ 0x10000u}) {
      EXPECT_FALSE(accepted(t, tcp_packet(them, us, 80, kSportBase, bad, 0, tf::rst), v6)) << bad;
      EXPECT_FALSE(
          accepted(t, tcp_packet(them, us, 80, kSportBase, bad, kCookie, tf::rst | tf::ack), v6))
          << bad;
    }
  }
}

// An ICMP error quoting our probe with one field changed.
Bytes icmp_quoting(bool v6, const Bytes& probe, std::size_t at, std::uint8_t xor_mask) {
  Bytes q = probe;
  q[at] ^= xor_mask;
  return unreachable(target_ip(v6), scanner_ip(v6), v6 ? 4 : 3, q);
}

TEST(ProbeSpoof, IcmpErrorsMustQuoteTheProbe) {
  for (bool v6 : {false, true}) {
    const std::size_t l4 = v6 ? 40 : 20;
    const std::size_t src_at = v6 ? 8 : 12;
    const std::size_t dst_at = v6 ? 24 : 16;
    for (Technique t : kTechniques) {
      SCOPED_TRACE(std::string(portvigil::name(t)) + (v6 ? " over IPv6" : " over IPv4"));
      const std::uint16_t dport = dport_of(t);
      const Bytes probe = build_probe(*probe_for(t), v6, dport);
      EXPECT_TRUE(accepted(t, icmp_quoting(v6, probe, 0, 0), v6, dport));  // unchanged
      struct Field {
        const char* what;
        std::size_t at;
      };
      std::vector<Field> fields = {{"quoted source address", src_at + 3},
                                   {"quoted destination address", dst_at + 3},
                                   {"quoted source port", l4 + 1},
                                   {"quoted destination port", l4 + 3}};
      if (t == Technique::udp) {
        fields.push_back({"quoted IP ID / flow label", v6 ? 3u : 5u});
        fields.push_back({"quoted UDP length", l4 + 5});
        fields.push_back({"quoted UDP checksum", l4 + 7});
      } else {
        fields.push_back({"quoted sequence number", l4 + 7});
        fields.push_back({"quoted sequence number, high bit", l4 + 4});
      }
      for (const auto& f : fields) {
        EXPECT_FALSE(accepted(t, icmp_quoting(v6, probe, f.at, 0x01), v6, dport)) << f.what;
      }
      // The right quote sent to someone else.
      Reply r;
      ASSERT_TRUE(parse_ip(unreachable(target_ip(v6), router_ip(v6), v6 ? 4 : 3, probe), r));
      EXPECT_FALSE(probe_for(t)->validate(r, probe_key(v6, dport)));
    }
  }
}

TEST(ProbeSpoof, UdpRepliesNeedTheSourcePortAndTheEchoedIdentifier) {
  const Probe& udp = *probe_for(Technique::udp);
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    const IpAddr us = scanner_ip(v6);
    const IpAddr them = target_ip(v6);
    const Bytes good_dns = {
        hi(kCookie >> 16), lo(kCookie >> 16), 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0};
    Bytes bad_dns = good_dns;
    bad_dns[1] ^= 1;
    // A spoofer flooding every port of the span: only the one the cookie chose, with the
    // echoed DNS ID, is taken.
    std::size_t taken_good = 0;
    std::size_t taken_bad = 0;
    for (std::uint32_t p = 0; p < portvigil::raw::kUdpSourcePortSpan; ++p) {
      const auto port = static_cast<std::uint16_t>(kSportBase + p);
      Reply r;
      // The packets outlive r: validate() reads the payload r views.
      const Bytes good = udp_packet(them, us, 53, port, good_dns);
      const Bytes bad = udp_packet(them, us, 53, port, bad_dns);
      ASSERT_TRUE(parse_ip(good, r));
      taken_good += udp.validate(r, probe_key(v6, 53));
      ASSERT_TRUE(parse_ip(bad, r));
      taken_bad += udp.validate(r, probe_key(v6, 53));
    }
    EXPECT_EQ(taken_good, 1u);
    EXPECT_EQ(taken_bad, 0u);
    // No identifier to echo (an empty probe): the source port is the only proof.
    EXPECT_TRUE(accepted(Technique::udp, udp_packet(them, us, 9, kUdpSport, Bytes{1}), v6, 9));
    EXPECT_FALSE(accepted(Technique::udp, udp_packet(them, us, 9, kUdpSport + 1, Bytes{1}), v6, 9));
    EXPECT_FALSE(
        accepted(Technique::udp, udp_packet(router_ip(v6), us, 9, kUdpSport, Bytes{1}), v6, 9));
    // Too short to hold the identifier.
    EXPECT_FALSE(accepted(Technique::udp, udp_packet(them, us, 53, kUdpSport, Bytes{0x12}), v6));
  }
}

// Every payload port: what the scanner sends carries cookie bits that the protocol's reply
// must echo; a reply built for another cookie is refused.
TEST(ProbeSpoof, EveryPayloadEchoesItsStampedIdentifier) {
  namespace raw = portvigil::raw;
  const std::uint16_t kPorts[] = {53,  67,   69,   111,  123,  137,  161,  500,
                                  514, 1900, 3478, 5060, 5351, 5353, 5683, 11211};
  std::size_t with_echo = 0;
  for (std::uint16_t port : kPorts) {
    SCOPED_TRACE("port " + std::to_string(port));
    std::array<std::uint8_t, raw::kMaxUdpPayload> a{};
    std::array<std::uint8_t, raw::kMaxUdpPayload> b{};
    const auto sent = raw::udp_payload_stamped(port, kCookie, a);
    const auto other = raw::udp_payload_stamped(port, kCookie ^ 0xffff0000u, b);
    const auto tmpl = raw::udp_payload(port);
    ASSERT_EQ(sent.size(), tmpl.size());
    const unsigned bits = raw::udp_echo_bits(port);
    // The stamp changes at most 4 bytes of the template.
    std::size_t changed = 0;
    for (std::size_t i = 0; i < tmpl.size(); ++i) changed += sent[i] != other[i];
    EXPECT_LE(changed, 4u);
    EXPECT_EQ(changed > 0, bits > 0);
    std::array<std::uint8_t, raw::kMaxUdpPayload> reply{};
    const std::size_t n = raw::udp_echo_reply(port, sent, reply);
    ASSERT_EQ(n, sent.size());
    EXPECT_TRUE(raw::udp_reply_echoes(port, kCookie, {reply.data(), n}));
    EXPECT_EQ(raw::udp_reply_echoes(port, kCookie ^ 0xffff0000u, {reply.data(), n}), bits == 0);
    if (bits > 0) ++with_echo;
  }
  EXPECT_EQ(with_echo, 10u);
  EXPECT_EQ(raw::udp_echo_bits(53), 16u);
  EXPECT_EQ(raw::udp_echo_bits(123), 32u);
  EXPECT_EQ(raw::udp_echo_bits(161), 24u);
  EXPECT_EQ(raw::udp_echo_bits(9), 0u);
}

TEST(ProbeSpoof, NtpAndSnmpRepliesAreReadWhereTheirProtocolsPutTheEcho) {
  namespace raw = portvigil::raw;
  std::array<std::uint8_t, raw::kMaxUdpPayload> buf{};
  // NTP (RFC 5905 section 8): the server's origin timestamp (bytes 24-31) is our transmit
  // timestamp (bytes 40-47).
  const auto ntp = raw::udp_payload_stamped(123, kCookie, buf);
  ASSERT_EQ(ntp.size(), 48u);
  Bytes reply(48, 0);
  reply[0] = 0x24;  // LI 0, VN 4, mode 4 (server)
  std::copy(ntp.begin() + 40, ntp.end(), reply.begin() + 24);
  EXPECT_TRUE(raw::udp_reply_echoes(123, kCookie, reply));
  reply[31] ^= 1;
  EXPECT_FALSE(raw::udp_reply_echoes(123, kCookie, reply));
  std::copy(ntp.begin() + 40, ntp.end(), reply.begin() + 40);  // echo in the wrong place
  reply[31] ^= 1;
  reply[30] ^= 1;
  EXPECT_FALSE(raw::udp_reply_echoes(123, kCookie, reply));

  // SNMP (RFC 1157): a GetResponse with a long sysDescr, so the lengths take the long form.
  const auto req = raw::udp_payload_stamped(161, kCookie, buf);
  const Bytes id(req.begin() + 17, req.begin() + 21);  // request-id content
  EXPECT_EQ(id[0], 0x50);
  EXPECT_EQ(id[1], hi(kCookie >> 16));
  EXPECT_EQ(id[2], lo(kCookie >> 16));
  EXPECT_EQ(id[3], hi(kCookie));
  auto snmp_response = [](const Bytes& request_id) {
    const Bytes descr(200, 'x');
    Bytes varbind = {0x30, 0x81, 0};
    append(varbind, Bytes{0x06, 0x08, 0x2b, 6, 1, 2, 1, 1, 1, 0, 0x04, 0x81, 200});
    append(varbind, descr);
    varbind[2] = static_cast<std::uint8_t>(varbind.size() - 3);
    Bytes list = {0x30, 0x81, static_cast<std::uint8_t>(varbind.size())};
    append(list, varbind);
    Bytes pdu_body = {0x02, 0x04};
    append(pdu_body, request_id);
    append(pdu_body, Bytes{0x02, 0x01, 0x00, 0x02, 0x01, 0x00});
    append(pdu_body, list);
    Bytes pdu = {0xa2, 0x82, hi(static_cast<std::uint32_t>(pdu_body.size())),
                 lo(static_cast<std::uint32_t>(pdu_body.size()))};
    append(pdu, pdu_body);
    Bytes body = {0x02, 0x01, 0x00, 0x04, 0x06, 'p', 'u', 'b', 'l', 'i', 'c'};
    append(body, pdu);
    Bytes msg = {0x30, 0x82, hi(static_cast<std::uint32_t>(body.size())),
                 lo(static_cast<std::uint32_t>(body.size()))};
    append(msg, body);
    return msg;
  };
  EXPECT_TRUE(raw::udp_reply_echoes(161, kCookie, snmp_response(id)));
  Bytes wrong = id;
  wrong[3] ^= 1;
  EXPECT_FALSE(raw::udp_reply_echoes(161, kCookie, snmp_response(wrong)));
  Bytes truncated = snmp_response(id);
  truncated.resize(20);
  EXPECT_FALSE(raw::udp_reply_echoes(161, kCookie, truncated));
  EXPECT_FALSE(raw::udp_reply_echoes(161, kCookie, Bytes{}));
}

TEST(ProbeReasons, UnreachableCodes) {
  struct Case {
    bool v6;
    std::uint8_t code;
    Reason reason;
    bool port_unreachable;
  };
  const Case cases[] = {
      {false, 0, R::net_unreach, false},       {false, 1, R::host_unreach, false},
      {false, 2, R::proto_unreach, false},     {false, 3, R::port_unreach, true},
      {false, 9, R::net_prohibited, false},    {false, 10, R::host_prohibited, false},
      {false, 13, R::admin_prohibited, false}, {false, 4, R::host_unreach, false},
      {true, 0, R::net_unreach, false},        {true, 1, R::admin_prohibited, false},
      {true, 3, R::host_unreach, false},       {true, 4, R::port_unreach, true},
      {true, 5, R::admin_prohibited, false},   {true, 6, R::admin_prohibited, false},
      {true, 2, R::host_unreach, false},
  };
  for (const auto& c : cases) {
    Reply r;
    r.kind = Reply::Kind::unreachable;
    r.src = router_ip(c.v6);
    r.icmp_code = c.code;
    EXPECT_EQ(portvigil::raw::unreachable_reason(r), c.reason)
        << (c.v6 ? "v6 " : "v4 ") << int{c.code};
    EXPECT_EQ(portvigil::raw::is_port_unreachable(r), c.port_unreachable);
  }
  Reply tcp;
  tcp.kind = Reply::Kind::tcp;
  EXPECT_EQ(portvigil::raw::unreachable_reason(tcp), R::unknown);
  EXPECT_FALSE(portvigil::raw::is_port_unreachable(tcp));
}

// ---- cookie ------------------------------------------------------------------------------

TEST(Cookie, MatchesSipHashReferenceVector) {
  // Key 00..0f and message 00..21 (34 bytes) is SipHash-2-4's reference vector 34:
  // 38 12 05 bb 1a b0 e0 12 (little-endian); the cookie is its low 32 bits.
  const CookieKey key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
  IpAddr src;
  IpAddr dst;
  src.v6 = dst.v6 = true;
  for (std::size_t i = 0; i < 16; ++i) {
    src.bytes[i] = static_cast<std::uint8_t>(i);
    dst.bytes[i] = static_cast<std::uint8_t>(16 + i);
  }
  EXPECT_EQ(portvigil::raw::cookie(key, src, dst, 0x2021), 0xbb051238u);
}

TEST(Cookie, DeterministicAndSensitiveToEveryInput) {
  const CookieKey key{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  for (bool v6 : {false, true}) {
    const IpAddr s = scanner_ip(v6);
    const IpAddr d = target_ip(v6);
    const std::uint32_t c = portvigil::raw::cookie(key, s, d, 80);
    EXPECT_EQ(portvigil::raw::cookie(key, s, d, 80), c);
    EXPECT_EQ(portvigil::raw::cookie(CookieKey{key.k0, key.k1}, s, d, 80), c);
    EXPECT_NE(portvigil::raw::cookie(key, router_ip(v6), d, 80), c);  // src
    EXPECT_NE(portvigil::raw::cookie(key, s, router_ip(v6), 80), c);  // dst
    EXPECT_NE(portvigil::raw::cookie(key, d, s, 80), c);              // swapped
    EXPECT_NE(portvigil::raw::cookie(key, s, d, 81), c);              // port
    EXPECT_NE(portvigil::raw::cookie(key, s, d, 80 + 256), c);        // high byte of port
    EXPECT_NE(portvigil::raw::cookie(CookieKey{key.k0 ^ 1, key.k1}, s, d, 80), c);
    EXPECT_NE(portvigil::raw::cookie(CookieKey{key.k0, key.k1 ^ (1ULL << 63)}, s, d, 80), c);
  }
  // Every port of one target gets its own cookie (no collisions over 1..1024 here).
  std::vector<std::uint32_t> seen;
  for (std::uint16_t p = 1; p <= 1024; ++p) {
    seen.push_back(portvigil::raw::cookie(key, scanner_ip(false), target_ip(false), p));
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end());
  // Random keys differ.
  const CookieKey a = CookieKey::random();
  const CookieKey b = CookieKey::random();
  EXPECT_FALSE(a.k0 == b.k0 && a.k1 == b.k1);
}

// ---- capture filter ----------------------------------------------------------------------

class CaptureFilter : public ::testing::Test {
 protected:
  void SetUp() override {
    pcap_ = pcap_open_dead(DLT_EN10MB, 256);
    ASSERT_NE(pcap_, nullptr);
  }
  void TearDown() override {
    if (compiled_) pcap_freecode(&prog_);
    if (pcap_ != nullptr) pcap_close(pcap_);
  }
  void compile(const std::string& text) {
    if (compiled_) pcap_freecode(&prog_);
    compiled_ = pcap_compile(pcap_, &prog_, text.c_str(), 1, PCAP_NETMASK_UNKNOWN) == 0;
    ASSERT_TRUE(compiled_) << text << ": " << pcap_geterr(pcap_);
  }
  bool accepts(const Bytes& frame) {
    pcap_pkthdr hdr{};
    hdr.caplen = static_cast<bpf_u_int32>(std::min<std::size_t>(frame.size(), 256));
    hdr.len = static_cast<bpf_u_int32>(frame.size());
    return pcap_offline_filter(&prog_, &hdr, frame.data()) != 0;
  }

  pcap_t* pcap_ = nullptr;
  bpf_program prog_{};
  bool compiled_ = false;
};

TEST_F(CaptureFilter, TcpProbes) {
  for (Technique t :
       {Technique::syn, Technique::fin, Technique::null, Technique::xmas, Technique::ack}) {
    SCOPED_TRACE(portvigil::name(t));
    compile(portvigil::raw::capture_filter(*probe_for(t), kSportBase));
    for (bool v6 : {false, true}) {
      SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
      const IpAddr us = scanner_ip(v6);
      const IpAddr them = target_ip(v6);
      const Bytes probe = build_probe(*probe_for(t), v6, 80);
      EXPECT_TRUE(accepts(
          ethernet(tcp_packet(them, us, 80, kSportBase, 1, kCookie + 1, tf::syn | tf::ack))));
      EXPECT_TRUE(accepts(ethernet(tcp_packet(them, us, 80, kSportBase, kCookie, 0, tf::rst))));
      EXPECT_FALSE(accepts(ethernet(tcp_packet(them, us, 80, kSportBase + 1, 1, 1, tf::rst))));
      EXPECT_FALSE(accepts(ethernet(tcp_packet(them, us, kSportBase, 80, 1, 1, tf::rst))));
      EXPECT_FALSE(accepts(ethernet(udp_packet(them, us, 80, kSportBase, Bytes{1, 2}))));
      // ICMP destination unreachable is always wanted; other ICMP is not.
      EXPECT_TRUE(accepts(ethernet(unreachable(router_ip(v6), us, 1, probe))));
      Bytes echo = unreachable(them, us, 0, probe);
      echo[v6 ? 40 : 20] = v6 ? 129 : 0;  // echo reply (checksum now wrong: BPF does not care)
      EXPECT_FALSE(accepts(ethernet(echo)));
    }
  }
}

TEST_F(CaptureFilter, UdpProbe) {
  compile(portvigil::raw::capture_filter(*probe_for(Technique::udp), kSportBase));
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    const IpAddr us = scanner_ip(v6);
    const IpAddr them = target_ip(v6);
    const Bytes payload = {0xde, 0xad};
    EXPECT_TRUE(accepts(ethernet(udp_packet(them, us, 53, kSportBase, payload))));
    EXPECT_TRUE(accepts(ethernet(udp_packet(them, us, 53, kUdpSport, payload))));
    EXPECT_TRUE(accepts(ethernet(udp_packet(them, us, 53, kSportBase + 16383, payload))));
    EXPECT_FALSE(accepts(ethernet(udp_packet(them, us, 53, kSportBase + 16384, payload))));
    EXPECT_FALSE(accepts(ethernet(udp_packet(them, us, 53, kSportBase - 1, payload))));
    EXPECT_FALSE(accepts(ethernet(tcp_packet(them, us, 53, kUdpSport, 0, 0, tf::rst))));
    const Bytes probe = build_probe(*probe_for(Technique::udp), v6, 53);
    EXPECT_TRUE(accepts(ethernet(unreachable(them, us, v6 ? 4 : 3, probe))));
  }
}

}  // namespace
