#include "portvigil/common/port_knowledge.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string_view>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

namespace portvigil {
namespace {

constexpr std::size_t kHeadSize = 10;

bool in_head(Proto proto, int port, std::size_t head = kHeadSize) {
  const auto ranked = ranked_ports(proto);
  const auto end = ranked.begin() + static_cast<std::ptrdiff_t>(std::min(head, ranked.size()));
  return std::find(ranked.begin(), end, port) != end;
}

std::vector<std::uint16_t> named_ports(Proto proto) {
  std::vector<std::uint16_t> out;
  for (std::uint32_t p = 0; p <= 65535; ++p) {
    const auto port = static_cast<std::uint16_t>(p);
    if (!service_name(proto, port).empty()) out.push_back(port);
  }
  return out;
}

bool well_formed(std::string_view name) {
  if (name.empty() || name.front() == '-' || name.back() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

class RankedPortsTest : public ::testing::TestWithParam<Proto> {};

TEST_P(RankedPortsTest, AtLeast1000DistinctNonZeroPorts) {
  const auto ranked = ranked_ports(GetParam());
  EXPECT_GE(ranked.size(), 1000U);
  EXPECT_EQ(std::count(ranked.begin(), ranked.end(), std::uint16_t{0}), 0);
  const std::set<std::uint16_t> distinct(ranked.begin(), ranked.end());
  EXPECT_EQ(distinct.size(), ranked.size());
}

TEST_P(RankedPortsTest, ReturnsTheSameStaticStorageEachCall) {
  const auto a = ranked_ports(GetParam());
  const auto b = ranked_ports(GetParam());
  EXPECT_EQ(a.data(), b.data());
  EXPECT_EQ(a.size(), b.size());
}

TEST_P(RankedPortsTest, CoversEveryLowPort) {
  // The tail fills in every remaining port of 1..1024, so the whole well-known range is in.
  const auto ranked = ranked_ports(GetParam());
  const std::set<std::uint16_t> all(ranked.begin(), ranked.end());
  for (std::uint16_t p = 1; p <= 1024; ++p) EXPECT_TRUE(all.count(p)) << p;
}

TEST_P(RankedPortsTest, CoversEveryNamedPort) {
  const auto ranked = ranked_ports(GetParam());
  const std::set<std::uint16_t> all(ranked.begin(), ranked.end());
  for (const auto port : named_ports(GetParam())) EXPECT_TRUE(all.count(port)) << port;
}

TEST_P(RankedPortsTest, TailAfterHeadIsAscending) {
  // After the curated head: 1..1024 ascending, then named ports above 1024 ascending.
  const auto ranked = ranked_ports(GetParam());
  const auto last_low = std::find(ranked.begin(), ranked.end(), std::uint16_t{1024});
  ASSERT_NE(last_low, ranked.end());
  EXPECT_TRUE(std::is_sorted(last_low, ranked.end()));
  for (auto it = last_low + 1; it != ranked.end(); ++it) {
    EXPECT_GT(*it, 1024);
    EXPECT_FALSE(service_name(GetParam(), *it).empty()) << *it;
  }
}

INSTANTIATE_TEST_SUITE_P(BothProtocols, RankedPortsTest, ::testing::Values(Proto::tcp, Proto::udp),
                         [](const auto& param_info) {
                           return std::string(name(param_info.param));
                         });

TEST(RankedPorts, TcpHeadHoldsTheUsualSuspects) {
  EXPECT_TRUE(in_head(Proto::tcp, 80));
  EXPECT_TRUE(in_head(Proto::tcp, 443));
  EXPECT_TRUE(in_head(Proto::tcp, 22));
  EXPECT_EQ(ranked_ports(Proto::tcp).front(), 80);
  // -F takes the first 100.
  for (const int port : {21,   23,   25,   53,   110,  135,  139,  143,  445,  3306,
                         3389, 5432, 5900, 6379, 8080, 8443, 9100, 2375, 6443, 10250}) {
    EXPECT_TRUE(in_head(Proto::tcp, port, 100)) << port;
  }
}

TEST(RankedPorts, UdpHeadHoldsTheUsualSuspects) {
  EXPECT_TRUE(in_head(Proto::udp, 53));
  EXPECT_TRUE(in_head(Proto::udp, 123));
  EXPECT_TRUE(in_head(Proto::udp, 161));
  EXPECT_EQ(ranked_ports(Proto::udp).front(), 53);
  for (const int port : {67, 68, 69, 137, 500, 514, 1900, 4500, 5353, 1194, 11211}) {
    EXPECT_TRUE(in_head(Proto::udp, port, 100)) << port;
  }
}

TEST(RankedPorts, ProtocolsDiffer) {
  const auto tcp = ranked_ports(Proto::tcp);
  const auto udp = ranked_ports(Proto::udp);
  EXPECT_NE(tcp.data(), udp.data());
  EXPECT_NE(tcp.front(), udp.front());
}

TEST(ServiceName, KnownPorts) {
  const std::vector<std::tuple<Proto, std::uint16_t, std::string_view>> known{
      {Proto::tcp, 1, "tcpmux"},         {Proto::tcp, 21, "ftp"},
      {Proto::tcp, 22, "ssh"},           {Proto::tcp, 23, "telnet"},
      {Proto::tcp, 25, "smtp"},          {Proto::tcp, 53, "domain"},
      {Proto::tcp, 80, "http"},          {Proto::tcp, 110, "pop3"},
      {Proto::tcp, 111, "sunrpc"},       {Proto::tcp, 135, "msrpc"},
      {Proto::tcp, 139, "netbios-ssn"},  {Proto::tcp, 143, "imap"},
      {Proto::tcp, 389, "ldap"},         {Proto::tcp, 443, "https"},
      {Proto::tcp, 445, "microsoft-ds"}, {Proto::tcp, 587, "submission"},
      {Proto::tcp, 993, "imaps"},        {Proto::tcp, 995, "pop3s"},
      {Proto::tcp, 1433, "ms-sql-s"},    {Proto::tcp, 2049, "nfs"},
      {Proto::tcp, 3306, "mysql"},       {Proto::tcp, 3389, "ms-wbt-server"},
      {Proto::tcp, 5060, "sip"},         {Proto::tcp, 5432, "postgresql"},
      {Proto::tcp, 5900, "vnc"},         {Proto::tcp, 6379, "redis"},
      {Proto::tcp, 8080, "http-alt"},    {Proto::tcp, 8443, "https-alt"},
      {Proto::tcp, 11211, "memcached"},  {Proto::tcp, 27017, "mongodb"},
      {Proto::tcp, 47808, "bacnet"},     {Proto::udp, 1, "tcpmux"},
      {Proto::udp, 53, "domain"},        {Proto::udp, 67, "dhcps"},
      {Proto::udp, 68, "dhcpc"},         {Proto::udp, 69, "tftp"},
      {Proto::udp, 123, "ntp"},          {Proto::udp, 137, "netbios-ns"},
      {Proto::udp, 161, "snmp"},         {Proto::udp, 162, "snmptrap"},
      {Proto::udp, 500, "isakmp"},       {Proto::udp, 514, "syslog"},
      {Proto::udp, 520, "router"},       {Proto::udp, 1900, "ssdp"},
      {Proto::udp, 4500, "ipsec-nat-t"}, {Proto::udp, 5060, "sip"},
      {Proto::udp, 5353, "mdns"},        {Proto::udp, 11211, "memcached"},
      {Proto::udp, 47808, "bacnet"},
  };
  for (const auto& [proto, port, expected] : known) {
    EXPECT_EQ(service_name(proto, port), expected) << name(proto) << "/" << port;
  }
}

TEST(ServiceName, ProtocolMatters) {
  EXPECT_EQ(service_name(Proto::tcp, 514), "shell");
  EXPECT_EQ(service_name(Proto::udp, 514), "syslog");
  EXPECT_EQ(service_name(Proto::tcp, 513), "login");
  EXPECT_EQ(service_name(Proto::udp, 513), "who");
}

TEST(ServiceName, UnknownIsEmpty) {
  EXPECT_EQ(service_name(Proto::tcp, 0), "");
  EXPECT_EQ(service_name(Proto::udp, 0), "");
  EXPECT_EQ(service_name(Proto::tcp, 65535), "");
  EXPECT_EQ(service_name(Proto::udp, 65535), "");
  EXPECT_EQ(service_name(Proto::tcp, 4), "");
  EXPECT_EQ(service_name(Proto::udp, 8080), "");
  EXPECT_EQ(service_name(Proto::udp, 3690), "");
  EXPECT_EQ(service_name(Proto::tcp, 33434), "");
}

// Binary search only finds every entry if the table is sorted; sweeping every port and
// counting the hits catches a misplaced entry (it would vanish from the count).
TEST(ServiceName, TableSweep) {
  const auto tcp = named_ports(Proto::tcp);
  const auto udp = named_ports(Proto::udp);
  EXPECT_GE(tcp.size(), 300U);
  EXPECT_LE(tcp.size(), 450U);
  EXPECT_GE(udp.size(), 100U);
  EXPECT_LE(udp.size(), 200U);
  for (const auto port : tcp) EXPECT_TRUE(well_formed(service_name(Proto::tcp, port))) << port;
  for (const auto port : udp) EXPECT_TRUE(well_formed(service_name(Proto::udp, port))) << port;
  // Spot checks across the range: first, last and interior entries of each protocol.
  EXPECT_EQ(tcp.front(), 1);
  EXPECT_EQ(tcp.back(), 47808);
  EXPECT_EQ(udp.front(), 1);
  EXPECT_EQ(udp.back(), 47808);
}

TEST(ServiceName, EveryCuratedHeadLookupIsStable) {
  // Lookups are pure: repeated calls give the same view.
  for (const auto proto : {Proto::tcp, Proto::udp}) {
    for (const auto port : ranked_ports(proto)) {
      const auto first = service_name(proto, port);
      EXPECT_EQ(first.data(), service_name(proto, port).data());
    }
  }
}

}  // namespace
}  // namespace portvigil
