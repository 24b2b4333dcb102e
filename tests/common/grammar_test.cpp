// The shared grammar of addresses, targets and ports (config/ and scanner/ both use it).
#include "portvigil/common/grammar.hpp"

#include <gtest/gtest.h>

#include <string>

namespace portvigil {
namespace {

using grammar::HostBits;
using grammar::TargetExpression;

std::string error_of(auto&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Grammar, NetworkStrictnessIsTheCallersChoice) {
  EXPECT_EQ(grammar::parse_network("198.18.0.5/24", HostBits::ignore).to_string(), "198.18.0.0/24");
  EXPECT_EQ(error_of([] { (void)grammar::parse_network("198.18.0.5/24", HostBits::reject); }),
            "\"198.18.0.5/24\" has host bits set; expected the network address "
            "\"198.18.0.0/24\"");
  EXPECT_EQ(grammar::parse_network("2001:db8::/32", HostBits::reject).to_string(), "2001:db8::/32");
  EXPECT_EQ(grammar::parse_network("198.18.0.7", HostBits::reject).prefix, 32u);
}

TEST(Grammar, ZoneIdsAreRefusedEverywhere) {
  for (const auto* text : {"fe80::1%eth0", "fe80::%1/64"}) {
    EXPECT_NE(error_of([&] {
                (void)grammar::parse_network(text, HostBits::ignore);
              }).find("without a zone id"),
              std::string::npos)
        << text;
    EXPECT_NE(error_of([&] { (void)grammar::parse_target(text); }).find("without a zone id"),
              std::string::npos)
        << text;
  }
}

TEST(Grammar, Ipv4MappedBlocksAreIpv4) {
  const auto n = grammar::parse_network("::ffff:198.18.0.0/112", HostBits::reject);
  EXPECT_TRUE(n.address.is_v4());
  EXPECT_EQ(n.to_string(), "198.18.0.0/16");
  EXPECT_EQ(grammar::parse_network("::ffff:0.0.0.0/96", HostBits::reject).to_string(), "0.0.0.0/0");
  // A target range of the mapped form is the IPv4 range too.
  EXPECT_FALSE(grammar::parse_target("::ffff:198.18.0.1").range.v6);
}

TEST(Grammar, HostnameRules) {
  for (const auto* ok : {"db", "db.example.net", "db-1.example.net.", "_srv.example", "a1"}) {
    EXPECT_TRUE(grammar::is_hostname(ok)) << ok;
  }
  for (const auto* bad : {"", "-db.example", ".db", "db..example", "db.-x", "db example", "db/24",
                          "198.18.0.1", "12", "db!", "db.example..", "\xc3\xa9.example"}) {
    EXPECT_FALSE(grammar::is_hostname(bad)) << bad;
  }
  EXPECT_FALSE(grammar::is_hostname(std::string(64, 'a')));
  EXPECT_TRUE(grammar::is_hostname(std::string(63, 'a')));
  std::string long_name;
  while (long_name.size() < 254) long_name += "abcdefg.";
  EXPECT_FALSE(grammar::is_hostname(long_name));
}

TEST(Grammar, TargetKinds) {
  const auto cidr = grammar::parse_target(" 198.18.0.5/30 ");
  EXPECT_EQ(cidr.kind, TargetExpression::Kind::range);
  EXPECT_EQ(cidr.range.size(), 4u);
  EXPECT_EQ(from_uint128(cidr.range.first, false).to_string(), "198.18.0.4");

  const auto octets = grammar::parse_target("198.18.0-1.1,3,10-12");
  EXPECT_EQ(octets.kind, TargetExpression::Kind::octets);
  EXPECT_EQ(octets.octets[2].count(), 2u);
  EXPECT_EQ(octets.octets[3].count(), 5u);
  EXPECT_EQ(from_uint128(octets.range.first, false).to_string(), "198.18.0.1");
  EXPECT_EQ(from_uint128(octets.range.last, false).to_string(), "198.18.1.12");

  const auto name = grammar::parse_target("db.example/24");
  EXPECT_EQ(name.kind, TargetExpression::Kind::hostname);
  EXPECT_EQ(name.hostname, "db.example");
  EXPECT_EQ(name.prefix, 24u);

  EXPECT_NE(error_of([] { (void)grammar::parse_target("198.18.0.1-5/24"); }).find("not both"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              (void)grammar::parse_target("198.18.0.1,198.18.0.2");
            }).find("write each target as its own string"),
            std::string::npos);
  EXPECT_NE(error_of([] { (void)grammar::parse_target("db.example/129"); }).find("0 to 128"),
            std::string::npos);
}

TEST(Grammar, PortListKeepsUnqualifiedPortsApart) {
  const auto s = grammar::parse_port_list("22,T:80,443,U:53,-3");
  EXPECT_TRUE(s.unqualified[22]);
  EXPECT_FALSE(s.unqualified[80]);
  EXPECT_TRUE(s.tcp[80] && s.tcp[443]);
  EXPECT_TRUE(s.udp[53] && s.udp[1] && s.udp[3]);
  EXPECT_FALSE(s.udp[0]);  // "-3" starts at 1, as in Nmap
  EXPECT_EQ(s.of(Proto::tcp).count(), 3u);
  EXPECT_EQ(s.of(Proto::udp).count(), 5u);
  EXPECT_EQ(grammar::parse_port_list("-").unqualified.count(), 65535u);
  EXPECT_EQ(grammar::parse_port_list("60000-").unqualified.count(), 5536u);
  EXPECT_NE(error_of([] { (void)grammar::parse_port_list("T:"); }).find("after the qualifier"),
            std::string::npos);
  EXPECT_NE(error_of([] { (void)grammar::parse_port_list("+22"); }).find("got \"+22\""),
            std::string::npos);
}

TEST(Grammar, DecimalIsDigitsOnly) {
  EXPECT_EQ(grammar::decimal("65535", 0, 65535), 65535u);
  for (const auto* bad : {"", "+1", "-1", " 1", "1 ", "0x10", "65536", "99999999999999999999999"}) {
    EXPECT_FALSE(grammar::decimal(bad, 0, 65535).has_value()) << bad;
  }
}

TEST(Grammar, MessagesQuoteInputSafely) {
  const auto msg =
      error_of([] { (void)grammar::parse_target("bad\nline" + std::string(200, 'x')); });
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad\\x0aline"), std::string::npos) << msg;
  EXPECT_LT(msg.size(), 200u) << msg;
}

TEST(Grammar, MergeJoinsAdjacentRangesOfOneFamily) {
  const auto merged =
      merge_ranges({grammar::parse_network("198.18.1.0/24", HostBits::reject).range(),
                    grammar::parse_network("198.18.0.0/24", HostBits::reject).range(),
                    grammar::parse_network("::/0", HostBits::reject).range()});
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0], grammar::parse_network("198.18.0.0/23", HostBits::reject).range());
  EXPECT_TRUE(merged[1].v6);
}

}  // namespace
}  // namespace portvigil
