#include <string>

#include <gtest/gtest.h>

#include "portvigil/common/port_knowledge.hpp"
#include "portvigil/common/version.hpp"
#include "portvigil/exporters/reports.hpp"
#include "sample_scan.hpp"

namespace portvigil {
namespace {

using sample::lines_of;
using sample::sample_info;
using sample::sample_summary;

std::string table(const std::vector<HostResult>& hosts, ReportOptions options = {},
                  const ScanSummary& summary = sample_summary(1)) {
  return sample::render([&](std::ostream& out) { return make_table_report(out, options); },
                        sample_info(), hosts, summary);
}

TEST(TableReport, MixedHostMatchesNmapLayout) {
  const std::string expected = std::string{"Starting portvigil "} + std::string{kVersion} +
                               " at 2026-11-23 12:00 UTC\n"
                               "portvigil scan report for 198.18.0.2\n"
                               "Not shown: 995 closed tcp ports (conn-refused)\n"
                               "PORT    STATE    SERVICE\n"
                               "22/tcp  open     ssh\n"
                               "25/tcp  filtered smtp\n"
                               "53/tcp  filtered domain\n"
                               "80/tcp  open     http\n"
                               "443/tcp filtered https\n"
                               "\n"
                               "Probes sent: 1000 (0 retransmissions) | Replies: 997 | Capture "
                               "drops: 0 | Rate: 0 probes/s\n"
                               "portvigil done: 1 IP address (1 host up) scanned in 1.23 seconds\n";
  EXPECT_EQ(table({sample::mixed_host()}), expected);
}

TEST(TableReport, ReasonColumnShowsReasonAndTtl) {
  const auto lines = lines_of(table({sample::mixed_host()}, ReportOptions{.show_reason = true}));
  ASSERT_GE(lines.size(), 9U);
  EXPECT_EQ(lines[3], "PORT    STATE    SERVICE REASON");
  EXPECT_EQ(lines[4], "22/tcp  open     ssh     syn-ack ttl 64");
  EXPECT_EQ(lines[5], "25/tcp  filtered smtp    admin-prohibited");
  EXPECT_EQ(lines[6], "53/tcp  filtered domain  no-response");
  EXPECT_EQ(lines[8], "443/tcp filtered https   no-response");
}

TEST(TableReport, IdentifiedServicesFillTheVersionColumn) {
  const auto lines =
      lines_of(table({sample::identified_host()}, ReportOptions{.show_reason = true}));
  ASSERT_GE(lines.size(), 9U);
  EXPECT_EQ(lines[3], "PORT    STATE    SERVICE REASON           VERSION");
  EXPECT_EQ(lines[4], "22/tcp  open     ssh     syn-ack ttl 64   SSH-2.0-OpenSSH_9.2p1");
  EXPECT_EQ(lines[7],
            "80/tcp  open     https   syn-ack ttl 64   TLSv1.3, CN staging.internal, "
            "self-signed, expires 2026-12-23; HTTP 200, Server Jetty/9 <\"x\">, a&b");
  EXPECT_EQ(lines[5], "25/tcp  filtered smtp    admin-prohibited");
}

TEST(TableReport, OpenOnlyCountsEveryHiddenPort) {
  const auto lines = lines_of(table({sample::mixed_host()}, ReportOptions{.open_only = true}));
  ASSERT_GE(lines.size(), 6U);
  EXPECT_EQ(lines[2],
            "Not shown: 995 closed tcp ports (conn-refused), 3 filtered tcp ports "
            "(2 no-responses, 1 admin-prohibited)");
  EXPECT_EQ(lines[3], "PORT   STATE SERVICE");
  EXPECT_EQ(lines[4], "22/tcp open  ssh");
  EXPECT_EQ(lines[5], "80/tcp open  http");
  EXPECT_EQ(lines[6], "");
}

TEST(TableReport, OpenOnlyKeepsOpenFilteredAndUsesReasonColumn) {
  const auto lines =
      lines_of(table({sample::ipv6_host()}, ReportOptions{.show_reason = true, .open_only = true}));
  ASSERT_GE(lines.size(), 8U);
  EXPECT_EQ(lines[1], "portvigil scan report for gw.example (2001:db8::1)");
  EXPECT_EQ(lines[2],
            "Not shown: 98 filtered tcp ports (90 no-responses, 8 admin-prohibiteds), "
            "1 closed tcp port (reset)");
  EXPECT_EQ(lines[3], "PORT    STATE         SERVICE REASON");
  EXPECT_EQ(lines[4], "22/tcp  open          ssh     syn-ack");
  EXPECT_EQ(lines[5], "53/udp  open|filtered domain  no-response");
  EXPECT_EQ(lines[6], "123/udp open|filtered ntp     no-response");
  EXPECT_EQ(lines[7], "161/udp open          snmp    udp-response");
}

TEST(TableReport, Ipv6HostWithHostnameAndTwoReasons) {
  const auto lines = lines_of(table({sample::ipv6_host()}));
  ASSERT_GE(lines.size(), 9U);
  EXPECT_EQ(lines[1], "portvigil scan report for gw.example (2001:db8::1)");
  EXPECT_EQ(lines[2], "Not shown: 98 filtered tcp ports (90 no-responses, 8 admin-prohibiteds)");
  EXPECT_EQ(lines[3], "PORT    STATE         SERVICE");
  EXPECT_EQ(lines[4], "22/tcp  open          ssh");
  EXPECT_EQ(lines[5], "23/tcp  closed        telnet");
  // udp has 3 ports: below the collapse threshold, so all are listed.
  EXPECT_EQ(lines[6], "53/udp  open|filtered domain");
  EXPECT_EQ(lines[7], "123/udp open|filtered ntp");
  EXPECT_EQ(lines[8], "161/udp open          snmp");
}

TEST(TableReport, FewerThan26PortsAreAllListed) {
  const auto text = table({sample::small_host()});
  EXPECT_EQ(text.find("Not shown"), std::string::npos);
  const auto lines = lines_of(text);
  ASSERT_GE(lines.size(), 13U);
  EXPECT_EQ(lines[2], "PORT   STATE  SERVICE");
  for (std::size_t i = 0; i < 10; ++i) {
    const std::string port = std::to_string(20 + i) + "/tcp ";
    EXPECT_EQ(lines[3 + i].substr(0, port.size()), port) << lines[3 + i];
    EXPECT_EQ(lines[3 + i].substr(7, 7), i == 2 ? "open   " : "closed ") << lines[3 + i];
  }
}

TEST(TableReport, UnknownServicePrintsUnknown) {
  // Find a port the service table has no name for.
  std::uint16_t unnamed = 0;
  for (unsigned port = 65535; port > 1024 && unnamed == 0; --port) {
    if (service_name(Proto::tcp, static_cast<std::uint16_t>(port)).empty()) {
      unnamed = static_cast<std::uint16_t>(port);
    }
  }
  ASSERT_NE(unnamed, 0);
  HostResult h = sample::host_at("198.18.9.6");
  h.ports.push_back({unnamed, Proto::tcp, PortState::open, Reason::syn_ack, 0});
  const auto lines = lines_of(table({h}));
  ASSERT_GE(lines.size(), 4U);
  EXPECT_EQ(lines[3], std::to_string(unnamed) + "/tcp open  unknown");
}

TEST(TableReport, EveryPortIgnored) {
  const auto lines = lines_of(table({sample::all_closed_host()}));
  ASSERT_GE(lines.size(), 6U);
  EXPECT_EQ(lines[1], "portvigil scan report for 198.18.9.9");
  EXPECT_EQ(lines[2], "All 1000 scanned ports on 198.18.9.9 are in ignored states.");
  EXPECT_EQ(lines[3], "Not shown: 1000 closed tcp ports (conn-refused)");
  EXPECT_EQ(lines[4], "");
  EXPECT_EQ(lines[5].rfind("Probes sent: 1000 ", 0), 0U);
  EXPECT_EQ(lines[6].rfind("portvigil done: ", 0), 0U);
}

TEST(TableReport, IncompleteHostPrintsWarning) {
  const auto lines = lines_of(table({sample::incomplete_host()}));
  ASSERT_GE(lines.size(), 5U);
  EXPECT_EQ(lines[2], "Warning: 198.18.9.7 giving up on host: host timeout after 30s");
  EXPECT_EQ(lines[3], "Not shown: 30 closed tcp ports (conn-refused)");
  EXPECT_EQ(lines[5], "22/tcp open  ssh");
}

TEST(TableReport, SummaryPluralsAndError) {
  ScanSummary s = sample_summary(2);
  s.hosts_up = 1;
  s.error = "cannot open raw socket";
  const auto lines = lines_of(table({sample::small_host(), sample::all_closed_host()}, {}, s));
  ASSERT_GE(lines.size(), 2U);
  EXPECT_EQ(lines[lines.size() - 3], "ERROR: cannot open raw socket");
  EXPECT_EQ(lines[lines.size() - 2],
            "Probes sent: 2000 (0 retransmissions) | Replies: 1994 | Capture drops: 0 | Rate: 0 "
            "probes/s");
  EXPECT_EQ(lines.back(), "portvigil done: 2 IP addresses (1 host up) scanned in 1.23 seconds");
}

TEST(TableReport, StreamsEachHostBeforeEnd) {
  std::ostringstream out;
  auto sink = make_table_report(out, {});
  sink->begin(sample_info());
  EXPECT_EQ(out.str().rfind("Starting portvigil", 0), 0U);
  sink->host(sample::mixed_host());
  EXPECT_NE(out.str().find("22/tcp  open     ssh\n"), std::string::npos);
  EXPECT_EQ(out.str().find("portvigil done"), std::string::npos);
  sink->end(sample_summary(1));
  EXPECT_NE(out.str().find("portvigil done"), std::string::npos);
}

TEST(TableReport, ControlCharactersInNamesAreNeutralised) {
  HostResult h = sample::small_host();
  h.hostname = "evil\x1b[31m\nname";
  const auto text = table({h});
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_NE(text.find("portvigil scan report for evil\\x1b[31m\\x0aname (198.18.9.5)\n"),
            std::string::npos);
}

TEST(TableReport, EveryLargeNonOpenStateIsHiddenAsNmapDoes) {
  // Nmap ignores every state but open with more than 25 ports, not only the majority.
  HostResult h = sample::host_at("198.18.0.2");
  sample::add_tcp(
      h, 1, 2000, PortState::closed, Reason::reset,
      {{22, PortState::open, Reason::syn_ack}, {25, PortState::filtered, Reason::no_response}});
  for (std::uint16_t p = 3000; p < 3030; ++p) {
    h.ports.push_back({p, Proto::tcp, PortState::filtered, Reason::no_response, 0});
  }
  const auto lines = lines_of(table({h}));
  ASSERT_GE(lines.size(), 5U);
  EXPECT_EQ(lines[2],
            "Not shown: 1998 closed tcp ports (reset), 31 filtered tcp ports (no-response)");
  EXPECT_EQ(lines[3], "PORT   STATE SERVICE");
  EXPECT_EQ(lines[4], "22/tcp open  ssh");
  EXPECT_EQ(lines[5], "");
}

}  // namespace
}  // namespace portvigil
