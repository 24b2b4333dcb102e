// Lab integration tests: portvigil runs inside the lab's scanner namespace (no route out)
// against the lab target, and its results are compared port by port with truth.tsv.
#include <chrono>
#include <cstdio>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "lab_fixture.hpp"

namespace {

using pvlab::CmdResult;
using pvlab::Lab;
using pvlab::LabConfig;
using pvlab::ScanRun;

// ndiff must accept the XML: comparing it with itself exits 0 and shows no port changes.
void expect_ndiff_accepts(const std::string& xml) {
  if (pvlab::run({"sh", "-c", "command -v ndiff"}).exit_code != 0) {
    std::printf("note: ndiff not installed, -oX not checked with ndiff\n");
    return;
  }
  const CmdResult r = pvlab::run({"ndiff", xml, xml}, std::chrono::seconds(120));
  EXPECT_EQ(r.exit_code, 0) << "ndiff " << xml << " " << xml << ": " << r.describe() << "\n"
                            << r.out.substr(0, 2000);
  const std::regex port_line(R"(^[-+]\s*\d+/(tcp|udp))");
  for (const auto& line : pvlab::split_lines(r.out))
    EXPECT_FALSE(std::regex_search(line, port_line)) << "ndiff shows a port change: " << line;
}

// The -oX file read as nmap XML (tests/lab/compare.py) must agree with the truth too.
void expect_xml_matches_truth(const Lab& lab, const std::string& xml, const std::string& target) {
  const CmdResult r =
      pvlab::run({"python3", pvlab::lab_script_dir() + "/compare.py", "--truth",
                  lab.path("truth.tsv"), "--nmap-xml", xml, "--address", target, "--proto", "tcp"},
                 std::chrono::seconds(120));
  EXPECT_EQ(r.exit_code, 0) << "-oX of " << target << " vs truth: " << r.out << r.err;
}

void full_range(const char* target) {
  Lab lab(LabConfig::connect_preset());
  PV_REQUIRE_LAB_UP(lab);
  const std::string json = lab.path("out.json");
  const std::string xml = lab.path("out.xml");
  const ScanRun r = pvlab::scan_in_lab(lab, {"-sT", "-p-", "-n", target, "-oX", xml}, json);
  ASSERT_EQ(r.cmd.exit_code, 0) << r.cmd.describe();
  std::printf("portvigil -sT -p- %s: %.2f s\n", target, r.seconds);
  ::testing::Test::RecordProperty("scan_ms", static_cast<int>(r.seconds * 1000));
  ASSERT_TRUE(r.report.has_value());
  EXPECT_FALSE(r.report->interrupted);
  EXPECT_EQ(r.report->error, "");
  ASSERT_EQ(r.report->hosts.size(), 1U);
  const pvlab::HostReport* host = r.report->host(target);
  ASSERT_NE(host, nullptr) << "no host " << target << " in the report";
  EXPECT_TRUE(host->complete) << "note: " << host->note;
  EXPECT_EQ(host->majority.count("tcp") ? host->majority.at("tcp") : "", "closed");

  std::vector<std::string> lines;
  const std::size_t bad = pvlab::compare_with_truth(lab.truth(), *host, "tcp", &lines);
  EXPECT_EQ(bad, 0U) << bad << " of 65535 ports disagree with the truth; first ones:\n"
                     << pvlab::indent_lines(lines);
  for (const auto& [key, state] : host->ports)
    EXPECT_TRUE(key.first == "tcp" && key.second >= 1 && key.second <= 65535)
        << "unexpected port entry " << key.first << "/" << key.second;

  expect_ndiff_accepts(xml);
  expect_xml_matches_truth(lab, xml, target);
}

TEST(LabConnect, ConnectFullRangeV4) {
  PV_REQUIRE_LAB();
  full_range(Lab::kTarget4);
}

TEST(LabConnect, ConnectFullRangeV6) {
  PV_REQUIRE_LAB();
  full_range(Lab::kTarget6);
}

TEST(LabConnect, ConnectMixedV4V6) {
  PV_REQUIRE_LAB();
  Lab lab(LabConfig::connect_preset());
  PV_REQUIRE_LAB_UP(lab);
  // Open (1, 22, 80, 443, 65535), closed, dropped (30000-) and rejected (40000-) ports.
  const std::string ports = "1-1100,29990-30010,39990-40010,65530-65535";
  std::vector<int> list;
  for (auto [lo, hi] : {std::pair{1, 1100}, {29990, 30010}, {39990, 40010}, {65530, 65535}})
    for (int p = lo; p <= hi; ++p) list.push_back(p);
  const std::set<int> requested(list.begin(), list.end());

  const ScanRun r = pvlab::scan_in_lab(
      lab, {"-sT", "-p", ports, "-n", Lab::kTarget4, Lab::kTarget6}, lab.path("out.json"));
  ASSERT_EQ(r.cmd.exit_code, 0) << r.cmd.describe();
  ASSERT_TRUE(r.report.has_value());
  EXPECT_EQ(r.report->hosts.size(), 2U);
  for (const char* target : {Lab::kTarget4, Lab::kTarget6}) {
    const pvlab::HostReport* host = r.report->host(target);
    ASSERT_NE(host, nullptr) << "no host " << target << " in the report";
    EXPECT_TRUE(host->complete) << target << " note: " << host->note;
    std::vector<std::string> lines;
    const std::size_t bad = pvlab::compare_with_truth(lab.truth(), *host, "tcp", &lines, &list);
    EXPECT_EQ(bad, 0U) << target << ": " << bad << " ports disagree:\n"
                       << pvlab::indent_lines(lines);
    for (const auto& [key, state] : host->ports)
      EXPECT_TRUE(key.first == "tcp" && requested.count(key.second) == 1)
          << target << ": port " << key.first << "/" << key.second << " was not requested";
  }
}

// --scope is a safety net: a target outside it is bad input (exit 2, nothing sent). Runs
// inside the lab so that a broken check could not send anything beyond it.
TEST(LabConnect, ScopeRefusesOutside) {
  PV_REQUIRE_LAB();
  Lab lab(LabConfig::connect_preset());
  PV_REQUIRE_LAB_UP(lab);
  const CmdResult out = lab.exec(
      {pvlab::portvigil_binary(), "scan", "--scope", "198.18.0.2/32", "-p", "22", "198.18.0.3"},
      std::chrono::seconds(60));
  EXPECT_EQ(out.exit_code, 2) << out.describe();
  const auto lines = pvlab::split_lines(out.err);
  ASSERT_EQ(lines.size(), 1U) << "stderr: " << out.err;
  EXPECT_EQ(lines[0].rfind("portvigil: ", 0), 0U) << lines[0];
  EXPECT_NE(lines[0].find("198.18.0.3"), std::string::npos) << lines[0];

  // The same scan inside the scope works.
  const ScanRun in = pvlab::scan_in_lab(
      lab, {"--scope", "198.18.0.2/32", "-p", "22,23", "-n", "198.18.0.2"}, lab.path("in.json"));
  ASSERT_EQ(in.cmd.exit_code, 0) << in.cmd.describe();
  ASSERT_TRUE(in.report.has_value());
  const pvlab::HostReport* host = in.report->host(Lab::kTarget4);
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(host->state("tcp", 22), "open");
  EXPECT_EQ(host->state("tcp", 23), "closed");
}

// -iL, --exclude and --excludefile select the hosts.
TEST(LabConnect, InputListAndExclude) {
  PV_REQUIRE_LAB();
  Lab lab(LabConfig::connect_preset());
  PV_REQUIRE_LAB_UP(lab);
  const std::string list = lab.path("targets.txt");
  ASSERT_TRUE(pvlab::write_file(list, "198.18.0.2\n2001:db8::2\n"));
  const std::vector<int> ports = {22, 23, 30000, 40000};

  const ScanRun ex = pvlab::scan_in_lab(
      lab, {"-sT", "-p", "22,23,30000,40000", "-n", "-iL", list, "--exclude", "2001:db8::2"},
      lab.path("ex.json"));
  ASSERT_EQ(ex.cmd.exit_code, 0) << ex.cmd.describe();
  ASSERT_TRUE(ex.report.has_value());
  ASSERT_EQ(ex.report->hosts.size(), 1U);
  ASSERT_NE(ex.report->host(Lab::kTarget4), nullptr);
  std::vector<std::string> lines;
  EXPECT_EQ(pvlab::compare_with_truth(lab.truth(), *ex.report->host(Lab::kTarget4), "tcp", &lines,
                                      &ports),
            0U)
      << pvlab::indent_lines(lines);

  const std::string exfile = lab.path("exclude.txt");
  ASSERT_TRUE(pvlab::write_file(exfile, "198.18.0.2\n"));
  const ScanRun ef = pvlab::scan_in_lab(
      lab, {"-sT", "-p", "22,23,30000,40000", "-n", "-iL", list, "--excludefile", exfile},
      lab.path("ef.json"));
  ASSERT_EQ(ef.cmd.exit_code, 0) << ef.cmd.describe();
  ASSERT_TRUE(ef.report.has_value());
  ASSERT_EQ(ef.report->hosts.size(), 1U);
  ASSERT_NE(ef.report->host(Lab::kTarget6), nullptr);
  lines.clear();
  EXPECT_EQ(pvlab::compare_with_truth(lab.truth(), *ef.report->host(Lab::kTarget6), "tcp", &lines,
                                      &ports),
            0U)
      << pvlab::indent_lines(lines);
}

// --open hides the non-open ports from the grepable output (stdout) and the XML, as in nmap.
TEST(LabConnect, OpenOnlyInGrepableAndXml) {
  PV_REQUIRE_LAB();
  Lab lab(LabConfig::connect_preset());
  PV_REQUIRE_LAB_UP(lab);
  const std::string xml = lab.path("open.xml");
  const CmdResult r =
      lab.exec({pvlab::portvigil_binary(), "scan", "-sT", "-p", "20-25,80,443,30000,40000", "-n",
                "--open", "--reason", "-oG", "-", "-oX", xml, Lab::kTarget4},
               std::chrono::seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  for (const char* open : {"22/open/tcp", "80/open/tcp", "443/open/tcp"})
    EXPECT_NE(r.out.find(open), std::string::npos) << open << " missing from:\n" << r.out;
  for (const char* hidden : {"23/closed", "30000/filtered", "40000/filtered"})
    EXPECT_EQ(r.out.find(hidden), std::string::npos) << "-oG with --open shows " << hidden << ":\n"
                                                     << r.out;
  const std::string x = pvlab::read_file(xml);
  EXPECT_NE(x.find("portid=\"22\""), std::string::npos) << "open port 22 missing from -oX";
  for (const char* state : {"closed", "filtered"})
    EXPECT_EQ(x.find(std::string("<state state=\"") + state + "\""), std::string::npos)
        << "-oX with --open lists a " << state << " port:\n"
        << x.substr(0, 3000);
}

// scan --identify against real servers in the target namespace: each open port's identity
// is what its server presents, and the printer port receives zero bytes (counted by the
// server itself, on the target side).
TEST(LabConnect, IdentifyReadsEachServerAndSendsNothingToThePrinterPort) {
  PV_REQUIRE_LAB();
  Lab lab(LabConfig::connect_preset());
  PV_REQUIRE_LAB_UP(lab);
  const std::string cert = lab.path("cert.pem");
  const std::string key = lab.path("key.pem");
  const CmdResult made =
      pvlab::run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-nodes", "-subj", "/CN=lab.internal", "-addext",
                  "subjectAltName=DNS:lab.internal", "-days", "20", "-keyout", key, "-out", cert},
                 std::chrono::seconds(60));
  ASSERT_EQ(made.exit_code, 0) << made.describe();
  pvlab::Background servers({"ip", "netns", "exec", "pv-" + lab.name() + "-tgt", "python3",
                             pvlab::lab_script_dir() + "/service_servers.py", "--dir", lab.dir(),
                             "--cert", cert, "--key", key},
                            lab.path("servers.out"), lab.path("servers.err"));
  for (int i = 0; i < 100 && servers.out().find("ready") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_NE(servers.out().find("ready"), std::string::npos) << servers.err();

  const std::string json = lab.path("out.json");
  const ScanRun r = pvlab::scan_in_lab(
      lab, {"-sT", "-p", "2222,2525,7000,8080,8443,9100", "-n", Lab::kTarget4, "--identify"}, json);
  ASSERT_EQ(r.cmd.exit_code, 0) << r.cmd.describe();
  EXPECT_NE(r.cmd.out.find("VERSION"), std::string::npos) << r.cmd.out;
  std::string error;
  const auto doc = pvlab::parse_json(pvlab::read_file(json), &error);
  ASSERT_TRUE(doc.has_value()) << error;
  const pvlab::Json* hosts = doc->get("hosts");
  ASSERT_TRUE(hosts != nullptr && hosts->array.size() == 1);
  const pvlab::Json* services = hosts->array[0].get("services");
  ASSERT_NE(services, nullptr) << pvlab::read_file(json);
  std::map<int, const pvlab::Json*> by_port;
  for (const auto& s : services->array) {
    const pvlab::Json* port = s.get("port");
    if (port != nullptr) by_port[static_cast<int>(port->number)] = s.get("identity");
  }
  ASSERT_EQ(by_port.size(), 6U) << pvlab::read_file(json);
  const auto identity = [&](int port) -> const pvlab::Json& { return *by_port.at(port); };
  EXPECT_EQ(identity(2222).str("protocol"), "ssh");
  EXPECT_EQ(identity(2222).str("banner"), "SSH-2.0-LabSSH_1.0");
  EXPECT_EQ(identity(2525).str("protocol"), "smtp");
  EXPECT_EQ(identity(7000).str("outcome"), "silent");
  EXPECT_EQ(identity(8080).str("protocol"), "http");
  ASSERT_NE(identity(8080).get("http"), nullptr);
  EXPECT_EQ(identity(8080).get("http")->str("server"), "LabHTTP/1.0");
  EXPECT_EQ(identity(8443).str("protocol"), "https");
  const pvlab::Json* tls = identity(8443).get("tls");
  ASSERT_NE(tls, nullptr);
  EXPECT_EQ(tls->str("subject_cn"), "lab.internal");
  ASSERT_NE(tls->get("self_signed"), nullptr);
  EXPECT_TRUE(tls->get("self_signed")->boolean);
  EXPECT_EQ(identity(9100).str("outcome"), "not-probed");
  // The port scan's own connect reached the printer; identification sent it nothing.
  EXPECT_EQ(pvlab::read_file(lab.path("printer.bytes")), "0\n");
}

}  // namespace
