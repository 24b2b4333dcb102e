#include <string>

#include <gtest/gtest.h>

#include "portvigil/common/version.hpp"
#include "portvigil/exporters/reports.hpp"
#include "sample_scan.hpp"

namespace portvigil {
namespace {

using sample::contains;
using sample::run;
using sample::sample_info;
using sample::sample_summary;
using sample::shell_quote;
using sample::TempFile;

std::string xml(const std::vector<HostResult>& hosts, const ScanInfo& info = sample_info(),
                const ScanSummary& summary = sample_summary(1)) {
  return sample::render([](std::ostream& out) { return make_xml_report(out); }, info, hosts,
                        summary);
}

// Parses `file` with Python's XML parser and evaluates `expr` with the root bound to `r`.
sample::CommandResult py_xml(const std::string& file, const std::string& expr) {
  return run("python3 -c " +
             shell_quote("import sys, xml.etree.ElementTree as E\n"
                         "r = E.parse(sys.argv[1]).getroot()\n"
                         "print(" +
                         expr + ")") +
             " " + shell_quote(file));
}

TEST(XmlReport, HeaderScaninfoAndRunstats) {
  const auto doc = xml({sample::mixed_host()});
  EXPECT_EQ(doc.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE nmaprun>\n", 0), 0U);
  EXPECT_TRUE(contains(doc,
                       "<nmaprun scanner=\"portvigil\" args=\"portvigil -sT -p1-1000 198.18.0.2\" "
                       "start=\"1795435200\" startstr=\"Mon Nov 23 12:00:00 2026\" version=\"" +
                           std::string{kVersion} + "\" xmloutputversion=\"1.05\">\n"))
      << doc.substr(0, 400);
  EXPECT_TRUE(contains(
      doc,
      "<scaninfo type=\"connect\" protocol=\"tcp\" numservices=\"1000\" services=\"1-1000\"/>"));
  EXPECT_FALSE(contains(doc, "protocol=\"udp\" numservices"));
  EXPECT_TRUE(contains(doc, "<verbose level=\"0\"/>\n<debugging level=\"0\"/>\n"));
  EXPECT_TRUE(
      contains(doc,
               "<runstats><finished time=\"1795435201\" timestr=\"Mon Nov 23 12:00:01 2026\" "
               "summary=\"portvigil done at Mon Nov 23 12:00:01 2026; 1 IP address (1 host "
               "up) scanned in 1.23 seconds\" elapsed=\"1.23\" exit=\"success\"/>"
               "<hosts up=\"1\" down=\"0\" total=\"1\"/>\n</runstats>\n</nmaprun>\n"));
}

TEST(XmlReport, MixedHostExtraportsAndPorts) {
  const auto doc = xml({sample::mixed_host()});
  EXPECT_TRUE(contains(doc,
                       "<status state=\"up\" reason=\"user-set\" reason_ttl=\"0\"/>\n"
                       "<address addr=\"198.18.0.2\" addrtype=\"ipv4\"/>\n"
                       "<hostnames>\n</hostnames>\n"));
  EXPECT_TRUE(contains(doc,
                       "<ports><extraports state=\"closed\" count=\"995\">\n"
                       "<extrareasons reason=\"conn-refused\" count=\"995\" proto=\"tcp\" "
                       "ports=\"1-21,23-24,26-52,54-79,81-442,444-1000\"/>\n</extraports>\n"));
  EXPECT_TRUE(
      contains(doc,
               "<port protocol=\"tcp\" portid=\"22\"><state state=\"open\" reason=\"syn-ack\" "
               "reason_ttl=\"64\"/><service name=\"ssh\" method=\"table\" conf=\"3\"/>"
               "</port>\n"));
  EXPECT_TRUE(contains(doc,
                       "<port protocol=\"tcp\" portid=\"25\"><state state=\"filtered\" "
                       "reason=\"admin-prohibited\" reason_ttl=\"0\"/>"));
  EXPECT_FALSE(contains(doc, "portid=\"1\""));
  EXPECT_TRUE(contains(doc, "</ports>\n<times srtt=\"0\" rttvar=\"0\" to=\"0\"/>\n</host>\n"));
}

TEST(XmlReport, IdentifiedServicesAreProbedServiceElements) {
  const auto doc = xml({sample::identified_host()});
  EXPECT_TRUE(contains(doc,
                       "<service name=\"ssh\" extrainfo=\"SSH-2.0-OpenSSH_9.2p1\" "
                       "method=\"probed\" conf=\"10\"/>"))
      << doc;
  // https is Nmap's name="http" tunnel="ssl"; the hostile Server header stays an attribute.
  TempFile file("id.xml", doc);
  const auto r = py_xml(file.path(),
                        "[(s.get('name'), s.get('tunnel'), s.get('extrainfo')) for s in "
                        "r.iter('service') if s.get('method') == 'probed']");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output,
                       "('http', 'ssl', 'TLSv1.3, CN staging.internal, self-signed, expires "
                       "2026-12-23; HTTP 200, Server Jetty/9 <\"x\">, a&b')"))
      << r.output;
}

TEST(XmlReport, Ipv6HostnameTwoReasonsAndUnCollapsedUdp) {
  const auto doc = xml({sample::ipv6_host()});
  EXPECT_TRUE(contains(doc,
                       "<address addr=\"2001:db8::1\" addrtype=\"ipv6\"/>\n<hostnames>\n"
                       "<hostname name=\"gw.example\" type=\"user\"/>\n</hostnames>"));
  EXPECT_TRUE(contains(doc,
                       "<extraports state=\"filtered\" count=\"98\">\n"
                       "<extrareasons reason=\"no-response\" count=\"90\" proto=\"tcp\" "
                       "ports=\"1-21,24-49,58-100\"/>\n"
                       "<extrareasons reason=\"admin-prohibited\" count=\"8\" proto=\"tcp\" "
                       "ports=\"50-57\"/>\n</extraports>\n"));
  EXPECT_TRUE(contains(doc, "<port protocol=\"udp\" portid=\"53\"><state state=\"open|filtered\""));
  EXPECT_TRUE(contains(doc, "<port protocol=\"udp\" portid=\"161\"><state state=\"open\""));
  EXPECT_TRUE(contains(doc, "<port protocol=\"tcp\" portid=\"23\"><state state=\"closed\""));
}

TEST(XmlReport, FewerThan26PortsHaveNoExtraports) {
  const auto doc = xml({sample::small_host()});
  EXPECT_FALSE(contains(doc, "<extraports"));
  for (int port = 20; port <= 29; ++port) {
    EXPECT_TRUE(contains(doc, "portid=\"" + std::to_string(port) + "\"")) << port;
  }
}

TEST(XmlReport, IncompleteHostIsMarkedTimedOut) {
  const auto doc = xml({sample::incomplete_host()});
  EXPECT_TRUE(contains(doc, " timedout=\"true\" comment=\"host timeout after 30s\"><status"));
}

TEST(XmlReport, ErrorSetsExitAndErrormsg) {
  ScanSummary s = sample_summary(0);
  s.error = "bad \"target\" <x>";
  const auto doc = xml({}, sample_info(), s);
  EXPECT_TRUE(contains(doc, " exit=\"error\" errormsg=\"bad &quot;target&quot; &lt;x&gt;\"/>"));
  EXPECT_TRUE(contains(doc, "<hosts up=\"0\" down=\"0\" total=\"0\"/>"));
}

TEST(XmlReport, NastyArgsAreEscapedAndParse) {
  const std::string args = "portvigil -sT \"a'b\" <x> & y\x01\x1b[0m\ttab\nnl caf\xc3\xa9 \xff";
  const auto doc =
      xml({sample::mixed_host(), sample::ipv6_host()}, sample_info(args), sample_summary(2));
  EXPECT_TRUE(contains(doc,
                       "args=\"portvigil -sT &quot;a&apos;b&quot; &lt;x&gt; &amp; y\\x01\\x1b[0m"
                       "&#9;tab&#10;nl caf\xc3\xa9 \\xff\""));
  TempFile file("nasty.xml", doc);
  // Python reads the escaped attribute back as the original text, except for the bytes XML
  // cannot carry, which stay spelled "\xHH".
  const std::string expected =
      "portvigil -sT \"a'b\" <x> & y\\x01\\x1b[0m\ttab\nnl caf\xc3\xa9 \\xff";
  const auto got = py_xml(file.path(), "r.get('args').encode().hex(), len(r.findall('host'))");
  ASSERT_EQ(got.exit_code, 0) << got.output;
  EXPECT_EQ(got.output, sample::hex_of(expected) + " 2\n");
}

TEST(XmlReport, StreamsEachHostBeforeEnd) {
  std::ostringstream out;
  auto sink = make_xml_report(out);
  sink->begin(sample_info());
  EXPECT_TRUE(contains(out.str(), "<debugging level=\"0\"/>"));
  sink->host(sample::mixed_host());
  EXPECT_TRUE(contains(out.str(), "</host>\n"));
  EXPECT_FALSE(contains(out.str(), "<runstats>"));
}

// Debian's ndiff (python, from nmap 7.93) must read our XML: a scan compared with itself
// shows no difference, and a changed port is reported (exit 1).
TEST(XmlReport, NdiffReadsOurXml) {
  ASSERT_EQ(run("command -v ndiff").exit_code, 0)
      << "ndiff is not installed (Debian package 'ndiff'); it is required for this test";

  const std::vector<HostResult> hosts{sample::mixed_host(), sample::ipv6_host()};
  TempFile a("a.xml", xml(hosts, sample_info(), sample_summary(2)));

  const auto same = run("ndiff " + shell_quote(a.path()) + " " + shell_quote(a.path()));
  EXPECT_EQ(same.exit_code, 0) << same.output;
  EXPECT_EQ(same.output.find("/tcp"), std::string::npos) << same.output;
  EXPECT_EQ(same.output.find("/udp"), std::string::npos) << same.output;
  EXPECT_EQ(same.output.find("arning"), std::string::npos) << same.output;

  auto changed = hosts;
  for (auto& p : changed[0].ports) {
    if (p.port == 80) p.state = PortState::closed;
    if (p.port == 8) p.state = PortState::open;
  }
  TempFile b("b.xml", xml(changed, sample_info(), sample_summary(2)));
  const auto diff = run("ndiff " + shell_quote(a.path()) + " " + shell_quote(b.path()));
  EXPECT_EQ(diff.exit_code, 1) << diff.output;
  EXPECT_NE(diff.output.find("-80/tcp open"), std::string::npos) << diff.output;
  EXPECT_NE(diff.output.find("+8/tcp  open"), std::string::npos) << diff.output;
  EXPECT_EQ(diff.output.find("arning"), std::string::npos) << diff.output;

  // ndiff's own XML output mode must accept the files too.
  const auto xml_diff = run("ndiff --xml " + shell_quote(a.path()) + " " + shell_quote(b.path()));
  EXPECT_EQ(xml_diff.exit_code, 1) << xml_diff.output;
  EXPECT_NE(xml_diff.output.find("portid=\"80\""), std::string::npos) << xml_diff.output;
}

TEST(XmlReport, OpenOnlyMovesEveryOtherStateToExtraports) {
  const std::string out = sample::render(
      [](std::ostream& o) { return make_xml_report(o, ReportOptions{.open_only = true}); },
      sample_info(), {sample::mixed_host()}, sample_summary(1));
  EXPECT_NE(out.find("<extraports state=\"closed\" count=\"995\">"), std::string::npos) << out;
  EXPECT_NE(out.find("<extraports state=\"filtered\" count=\"3\">"), std::string::npos) << out;
  EXPECT_NE(out.find("portid=\"22\""), std::string::npos);
  EXPECT_NE(out.find("portid=\"80\""), std::string::npos);
  EXPECT_EQ(out.find("portid=\"25\""), std::string::npos) << "filtered port listed despite --open";
  EXPECT_EQ(out.find("portid=\"443\""), std::string::npos);
}

TEST(XmlReport, EveryLargeNonOpenStateBecomesExtraports) {
  HostResult h = sample::host_at("198.18.0.2");
  sample::add_tcp(h, 1, 2000, PortState::closed, Reason::reset,
                  {{22, PortState::open, Reason::syn_ack}});
  for (std::uint16_t p = 3000; p < 3030; ++p) {
    h.ports.push_back({p, Proto::tcp, PortState::filtered, Reason::no_response, 0});
  }
  const std::string out = xml({h});
  EXPECT_NE(out.find("<extraports state=\"closed\" count=\"1999\">"), std::string::npos) << out;
  EXPECT_NE(out.find("<extraports state=\"filtered\" count=\"30\">"), std::string::npos) << out;
  EXPECT_EQ(out.find("portid=\"3000\""), std::string::npos) << "ignored port listed";
  EXPECT_NE(out.find("portid=\"22\""), std::string::npos);
}

}  // namespace
}  // namespace portvigil
