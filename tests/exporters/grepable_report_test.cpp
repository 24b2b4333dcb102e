#include <string>

#include <gtest/gtest.h>

#include "portvigil/common/version.hpp"
#include "portvigil/exporters/reports.hpp"
#include "sample_scan.hpp"

namespace portvigil {
namespace {

using sample::lines_of;
using sample::sample_info;
using sample::sample_summary;

std::string grepable(const std::vector<HostResult>& hosts, const ScanInfo& info = sample_info(),
                     const ScanSummary& summary = sample_summary(1)) {
  return sample::render([](std::ostream& out) { return make_grepable_report(out); }, info, hosts,
                        summary);
}

TEST(GrepableReport, MixedHostMatchesNmapFormat) {
  const std::string expected =
      "# portvigil " + std::string{kVersion} +
      " scan initiated Mon Nov 23 12:00:00 2026 as: portvigil -sT -p1-1000 198.18.0.2\n"
      "Host: 198.18.0.2 ()\tStatus: Up\n"
      "Host: 198.18.0.2 ()\tPorts: 22/open/tcp//ssh///, 25/filtered/tcp//smtp///, "
      "53/filtered/tcp//domain///, 80/open/tcp//http///, 443/filtered/tcp//https///"
      "\tIgnored State: closed (995)\n"
      "# portvigil done at Mon Nov 23 12:00:01 2026 -- 1 IP address (1 host up) scanned in "
      "1.23 seconds\n";
  EXPECT_EQ(grepable({sample::mixed_host()}), expected);
}

TEST(GrepableReport, IdentifiedServicesFillTheVersionField) {
  const std::string out = grepable({sample::identified_host()});
  // '/' inside a field is written '|' and ',' (the port separator) ';', as Nmap does.
  EXPECT_NE(out.find("22/open/tcp//ssh//SSH-2.0-OpenSSH_9.2p1/, "), std::string::npos) << out;
  EXPECT_NE(out.find("80/open/tcp//https//TLSv1.3; CN staging.internal; self-signed; expires "
                     "2026-12-23; HTTP 200; Server Jetty|9 <\"x\">; a&b/"),
            std::string::npos)
      << out;
}

TEST(GrepableReport, Ipv6HostnameAndUdp) {
  const auto lines = lines_of(grepable({sample::ipv6_host()}));
  ASSERT_EQ(lines.size(), 4U);
  EXPECT_EQ(lines[1], "Host: 2001:db8::1 (gw.example)\tStatus: Up");
  EXPECT_EQ(lines[2],
            "Host: 2001:db8::1 (gw.example)\tPorts: 22/open/tcp//ssh///, 23/closed/tcp//telnet///, "
            "53/open|filtered/udp//domain///, 123/open|filtered/udp//ntp///, "
            "161/open/udp//snmp///\tIgnored State: filtered (98)");
}

TEST(GrepableReport, NotCollapsedHasNoIgnoredState) {
  const auto lines = lines_of(grepable({sample::small_host()}));
  ASSERT_EQ(lines.size(), 4U);
  EXPECT_EQ(lines[2].find("Ignored State"), std::string::npos);
  EXPECT_NE(lines[2].find("Ports: 20/closed/tcp//"), std::string::npos);
  EXPECT_NE(lines[2].find(", 22/open/tcp//ssh///, "), std::string::npos);
}

TEST(GrepableReport, AllIgnoredAndIncomplete) {
  const auto lines = lines_of(grepable({sample::all_closed_host(), sample::incomplete_host()},
                                       sample_info(), sample_summary(2)));
  ASSERT_EQ(lines.size(), 7U);
  EXPECT_EQ(lines[1], "Host: 198.18.9.9 ()\tStatus: Up");
  EXPECT_EQ(lines[2], "Host: 198.18.9.9 ()\tIgnored State: closed (1000)");
  EXPECT_EQ(lines[3], "# Warning: 198.18.9.7 giving up on host: host timeout after 30s");
  EXPECT_EQ(lines[4], "Host: 198.18.9.7 ()\tStatus: Up");
  EXPECT_EQ(lines[5],
            "Host: 198.18.9.7 ()\tPorts: 22/open/tcp//ssh///\tIgnored State: closed (30)");
  EXPECT_EQ(lines[6],
            "# portvigil done at Mon Nov 23 12:00:01 2026 -- 2 IP addresses (2 hosts up) scanned "
            "in 1.23 seconds");
}

TEST(GrepableReport, ArgsCannotBreakTheCommentLine) {
  const auto lines =
      lines_of(grepable({}, sample_info("portvigil\nHost: fake\t"), sample_summary(0)));
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_EQ(lines[0].substr(lines[0].find(" as: ")), " as: portvigil\\x0aHost: fake\\x09");
}

TEST(GrepableReport, OpenOnlyListsOpenPortsAndIgnoresTheRest) {
  const std::string out = sample::render(
      [](std::ostream& o) { return make_grepable_report(o, ReportOptions{.open_only = true}); },
      sample_info(), {sample::mixed_host()}, sample_summary(1));
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 4U);
  EXPECT_EQ(lines[2],
            "Host: 198.18.0.2 ()\tPorts: 22/open/tcp//ssh///, 80/open/tcp//http///"
            "\tIgnored State: closed (995), filtered (3)");
}

}  // namespace
}  // namespace portvigil
