// Raw-packet lab tests: portvigil -sS/-sF/-sN/-sX/-sA/-sU runs inside the lab's scanner
// namespace (no route out) against the lab target. Its results are compared port by port with
// the lab's truth mapped through each technique's semantics (Nmap's), with Debian's nmap (via
// ndiff), and --scope is checked on the wire with a packet capture.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "lab_fixture.hpp"

namespace {

using pvlab::Background;
using pvlab::CmdResult;
using pvlab::count_packets;
using pvlab::Lab;
using pvlab::LabConfig;
using pvlab::ScanRun;
using namespace std::chrono_literals;

// "22,80,1000-2000" -> every port.
std::vector<int> expand_ports(const std::string& list) {
  std::vector<int> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    const auto dash = item.find('-');
    const int lo = std::stoi(item.substr(0, dash));
    const int hi = dash == std::string::npos ? lo : std::stoi(item.substr(dash + 1));
    for (int p = lo; p <= hi; ++p) out.push_back(p);
  }
  return out;
}

std::vector<int> all_ports() {
  std::vector<int> v;
  for (int p = 1; p <= 65535; ++p) v.push_back(p);
  return v;
}

const char* target_of(int family) {
  return family == 6 ? Lab::kTarget6 : Lab::kTarget4;
}

// ---------------------------------------------------------------------------------------------
// Running portvigil

// ---------------------------------------------------------------------------------------------
// Technique semantics: the state (and, for listed ports, the reason) that each kind of lab port
// must get. Kinds come from truth-detail.tsv: open (lab_listener), closed (the kernel answers
// RST / ICMP port unreachable), drop (nftables drop) and reject (nftables reject with ICMP
// admin-prohibited).
struct Semantics {
  const char* name;  // test name part
  const char* flag;
  const char* open;
  const char* closed;
  const char* drop;
  const char* reject;
  const char* open_reason;
  const char* closed_reason;
};

// Nmap's semantics. Linux answers a bare ACK to a listening port with RST (unfiltered) and drops
// FIN/NULL/Xmas probes to it silently (open|filtered).
constexpr Semantics kTcpTechniques[] = {
    {"syn", "-sS", "open", "closed", "filtered", "filtered", "syn-ack", "reset"},
    {"fin", "-sF", "open|filtered", "closed", "open|filtered", "filtered", "no-response", "reset"},
    {"null", "-sN", "open|filtered", "closed", "open|filtered", "filtered", "no-response", "reset"},
    {"xmas", "-sX", "open|filtered", "closed", "open|filtered", "filtered", "no-response", "reset"},
    {"ack", "-sA", "unfiltered", "unfiltered", "filtered", "filtered", "reset", "reset"},
};
constexpr Semantics kUdp = {"udp",           "-sU",      "open",         "closed",
                            "open|filtered", "filtered", "udp-response", "port-unreach"};

std::string expected_state(const Semantics& s, const std::string& kind) {
  if (kind == "open") return s.open;
  if (kind == "closed") return s.closed;
  if (kind == "drop") return s.drop;
  if (kind == "reject") return s.reject;
  return "(unknown kind '" + kind + "')";
}

std::string expected_reason(const Semantics& s, const std::string& kind) {
  if (kind == "open") return s.open_reason;
  if (kind == "closed") return s.closed_reason;
  if (kind == "drop") return "no-response";
  if (kind == "reject") return "admin-prohibited";
  return "";
}

struct Mismatches {
  std::size_t states = 0;   // ports whose state is wrong
  std::size_t reasons = 0;  // listed ports with the right state but another reason
  std::vector<std::string> lines;
};

// Compares every port of `ports` with the truth mapped through `sem`.
Mismatches compare_semantics(const Lab& lab, const pvlab::HostReport& host,
                             const std::string& proto, const Semantics& sem,
                             const std::vector<int>& ports, std::size_t show = 20) {
  Mismatches m;
  const auto& detail = lab.truth_detail();
  for (int port : ports) {
    const auto it = detail.find({proto, port});
    const std::string kind = it == detail.end() ? "(no truth)" : it->second;
    const std::string want = expected_state(sem, kind);
    const std::string got = host.state(proto, port);
    if (got != want) {
      if (m.lines.size() < show)
        m.lines.push_back(proto + " " + std::to_string(port) + " " + kind + ": want " + want +
                          ", got " + (got.empty() ? "(missing)" : got));
      ++m.states;
      continue;
    }
    const auto r = host.reasons.find({proto, port});
    if (r != host.reasons.end() && r->second != expected_reason(sem, kind)) {
      if (m.lines.size() < show)
        m.lines.push_back(proto + " " + std::to_string(port) + " " + kind + ": " + got +
                          " with reason " + r->second + ", want " + expected_reason(sem, kind));
      ++m.reasons;
    }
  }
  return m;
}

// Every listed port must have been requested.
void expect_only_requested(const pvlab::HostReport& host, const std::string& proto,
                           const std::vector<int>& ports) {
  const std::set<int> requested(ports.begin(), ports.end());
  std::size_t extra = 0;
  for (const auto& [key, state] : host.ports) {
    if (key.first == proto && requested.count(key.second) == 1) continue;
    if (++extra <= 5)
      ADD_FAILURE() << "port " << key.first << "/" << key.second << " (" << state
                    << ") was not requested";
  }
  EXPECT_EQ(extra, 0U) << "listed ports that were not requested";
}

// ---------------------------------------------------------------------------------------------
// 1. Every TCP technique, full range, IPv4 and IPv6: all 65 535 ports agree with the truth.
class RawTcpFullRange : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(RawTcpFullRange, AllPortsMatchTruth) {
  PV_REQUIRE_LAB();
  const Semantics& sem = kTcpTechniques[std::get<0>(GetParam())];
  const char* target = target_of(std::get<1>(GetParam()));
  Lab lab(LabConfig::connect_preset());
  PV_REQUIRE_LAB_UP(lab);

  const ScanRun r = pvlab::scan_in_lab(lab, {sem.flag, "-p-", "-n", target}, lab.path("out.json"));
  ASSERT_EQ(r.cmd.exit_code, 0) << r.cmd.describe();
  std::printf("portvigil %s -p- %s: %.2f s\n", sem.flag, target, r.seconds);
  ::testing::Test::RecordProperty("scan_ms", static_cast<int>(r.seconds * 1000));
  ASSERT_TRUE(r.report.has_value());
  EXPECT_FALSE(r.report->interrupted);
  EXPECT_EQ(r.report->error, "");
  ASSERT_EQ(r.report->hosts.size(), 1U);
  const pvlab::HostReport* host = r.report->host(target);
  ASSERT_NE(host, nullptr) << "no host " << target << " in the report";
  EXPECT_TRUE(host->complete) << "note: " << host->note;
  EXPECT_FALSE(host->inconclusive) << "note: " << host->note;
  if (!host->note.empty()) std::printf("note: %s\n", host->note.c_str());
  EXPECT_EQ(host->majority.count("tcp") ? host->majority.at("tcp") : "", sem.closed)
      << "the majority state (56 335 closed ports)";

  const std::vector<int> ports = all_ports();
  const Mismatches m = compare_semantics(lab, *host, "tcp", sem, ports);
  EXPECT_EQ(m.states, 0U) << m.states << " of 65535 ports have the wrong state; first ones:\n"
                          << pvlab::indent_lines(m.lines);
  EXPECT_EQ(m.reasons, 0U) << m.reasons << " listed ports have the wrong reason:\n"
                           << pvlab::indent_lines(m.lines);
  expect_only_requested(*host, "tcp", ports);
}

INSTANTIATE_TEST_SUITE_P(Lab, RawTcpFullRange,
                         ::testing::Combine(::testing::Range(0, 5), ::testing::Values(4, 6)),
                         [](const ::testing::TestParamInfo<std::tuple<int, int>>& p) {
                           return std::string(kTcpTechniques[std::get<0>(p.param)].name) + "_v" +
                                  std::to_string(std::get<1>(p.param));
                         });

// ---------------------------------------------------------------------------------------------
// 2. UDP. The lab serves every port portvigil has a protocol payload for plus a few plain ones;
// the listener answers any datagram, so each of them must come out open from its reply.
constexpr const char* kUdpPayloadPorts =
    "53,67,69,111,123,137,161,500,514,1900,3478,5060,5351,5353,5683,11211";
constexpr const char* kUdpPlainOpen = "2000-2004,4000";
constexpr const char* kUdpDrop = "6000-6099";
constexpr const char* kUdpReject = "7000-7099";
constexpr const char* kUdpScanPorts = "1-8000,11211";

LabConfig udp_lab(bool keep_icmp_ratelimit) {
  LabConfig c;
  c.udp_open = std::string(kUdpPayloadPorts) + "," + kUdpPlainOpen;
  c.udp_drop = kUdpDrop;
  c.udp_reject = kUdpReject;
  c.keep_icmp_ratelimit = keep_icmp_ratelimit;
  return c;
}

class RawUdpExact : public ::testing::TestWithParam<int> {};

TEST_P(RawUdpExact, AllPortsMatchTruth) {
  PV_REQUIRE_LAB();
  const char* target = target_of(GetParam());
  Lab lab(udp_lab(/*keep_icmp_ratelimit=*/false));
  PV_REQUIRE_LAB_UP(lab);

  const ScanRun r =
      pvlab::scan_in_lab(lab, {"-sU", "-p", kUdpScanPorts, "-n", target}, lab.path("out.json"));
  ASSERT_EQ(r.cmd.exit_code, 0) << r.cmd.describe();
  std::printf("portvigil -sU -p %s %s: %.2f s\n", kUdpScanPorts, target, r.seconds);
  ::testing::Test::RecordProperty("scan_ms", static_cast<int>(r.seconds * 1000));
  ASSERT_TRUE(r.report.has_value());
  ASSERT_EQ(r.report->hosts.size(), 1U);
  const pvlab::HostReport* host = r.report->host(target);
  ASSERT_NE(host, nullptr) << "no host " << target << " in the report";
  EXPECT_TRUE(host->complete) << "note: " << host->note;
  EXPECT_FALSE(host->inconclusive) << "note: " << host->note;
  if (!host->note.empty()) std::printf("note: %s\n", host->note.c_str());

  const std::vector<int> ports = expand_ports(kUdpScanPorts);
  const Mismatches m = compare_semantics(lab, *host, "udp", kUdp, ports);
  EXPECT_EQ(m.states, 0U) << m.states << " of " << ports.size()
                          << " ports have the wrong state; first ones:\n"
                          << pvlab::indent_lines(m.lines);
  EXPECT_EQ(m.reasons, 0U) << m.reasons << " listed ports have the wrong reason:\n"
                           << pvlab::indent_lines(m.lines);
  expect_only_requested(*host, "udp", ports);

  // The payload ports are open because the listener's reply came back (not a guess).
  for (int port : expand_ports(kUdpPayloadPorts)) {
    EXPECT_EQ(host->state("udp", port), "open") << "payload port udp/" << port;
    const auto it = host->reasons.find({"udp", port});
    EXPECT_TRUE(it != host->reasons.end() && it->second == "udp-response")
        << "payload port udp/" << port << " reason "
        << (it == host->reasons.end() ? "(none)" : it->second);
  }
}

INSTANTIATE_TEST_SUITE_P(Lab, RawUdpExact, ::testing::Values(4, 6),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return "v" + std::to_string(p.param);
                         });

// UDP under the kernel's default ICMP rate limits (lab.sh --keep-icmp-ratelimit): most port
// unreachables are never sent. A closed port may then look open|filtered, but nothing may be
// reported closed or open that is not, and the report must say that it is unsure.
constexpr const char* kUdpRateLimitedPorts =
    "1-500,1900-2100,5000-5100,5353,6000-6099,7000-7099,11211";

class RawUdpRateLimited : public ::testing::TestWithParam<int> {};

TEST_P(RawUdpRateLimited, NoFalseClosedOrOpenAndFlagged) {
  PV_REQUIRE_LAB();
  const char* target = target_of(GetParam());
  Lab lab(udp_lab(/*keep_icmp_ratelimit=*/true));
  PV_REQUIRE_LAB_UP(lab);

  const std::vector<int> ports = expand_ports(kUdpRateLimitedPorts);
  const ScanRun r = pvlab::scan_in_lab(lab, {"-sU", "-p", kUdpRateLimitedPorts, "-n", target},
                                       lab.path("out.json"));
  ASSERT_EQ(r.cmd.exit_code, 0) << r.cmd.describe();
  ASSERT_TRUE(r.report.has_value());
  ASSERT_EQ(r.report->hosts.size(), 1U);
  const pvlab::HostReport* host = r.report->host(target);
  ASSERT_NE(host, nullptr) << "no host " << target << " in the report";

  const auto& detail = lab.truth_detail();
  std::size_t wrong = 0;
  std::size_t closed_total = 0;
  std::size_t closed_silent = 0;
  std::vector<std::string> lines;
  for (int port : ports) {
    const std::string kind = detail.at({"udp", port});
    const std::string got = host->state("udp", port);
    bool ok = false;
    if (kind == "open") {
      ok = got == "open";
    } else if (kind == "drop") {
      ok = got == "open|filtered";
    } else if (kind == "reject") {
      ok = got == "filtered" || got == "open|filtered";  // the admin-prohibited may be limited
    } else if (kind == "closed") {
      ++closed_total;
      ok = got == "closed" || got == "open|filtered";
      if (got == "open|filtered") ++closed_silent;
    }
    if (!ok) {
      if (++wrong <= 20)
        lines.push_back("udp " + std::to_string(port) + " " + kind + ": got " +
                        (got.empty() ? "(missing)" : got));
    }
  }
  std::printf(
      "portvigil -sU %s (%zu ports, default ICMP rate limit): %.2f s, %zu of %zu closed ports "
      "came out open|filtered; inconclusive=%s; note: %s\n",
      target, ports.size(), r.seconds, closed_silent, closed_total,
      host->inconclusive ? "true" : "false", host->note.c_str());
  ::testing::Test::RecordProperty("scan_ms", static_cast<int>(r.seconds * 1000));
  ::testing::Test::RecordProperty("closed_silent", static_cast<int>(closed_silent));
  EXPECT_EQ(wrong, 0U) << wrong << " ports misreported (a port may only be reported closed or "
                       << "open when it is):\n"
                       << pvlab::indent_lines(lines);
  expect_only_requested(*host, "udp", ports);
  if (closed_silent > 0) {
    const bool says_rate_limited = host->note.find("rate limit") != std::string::npos;
    EXPECT_TRUE(host->inconclusive || says_rate_limited)
        << closed_silent << " of " << closed_total
        << " closed ports came out open|filtered, but the host is neither inconclusive nor "
        << "noted as rate limited (note: \"" << host->note << "\")";
  }
}

INSTANTIATE_TEST_SUITE_P(Lab, RawUdpRateLimited, ::testing::Values(4, 6),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return "v" + std::to_string(p.param);
                         });

// The same default limits with --udp-pace auto: every port exact (a closed port closed, a
// dropped one open|filtered, an admin-prohibited one filtered, whose ICMP is limited too),
// the host conclusive, and the limiter reported. About 35 s: one paced probe per second.
constexpr const char* kUdpPacedPorts = "1-30,53,123,161,2000,6000-6001,7000";

class RawUdpPaced : public ::testing::TestWithParam<int> {};

TEST_P(RawUdpPaced, DefaultLimitsSettledExactly) {
  PV_REQUIRE_LAB();
  const char* target = target_of(GetParam());
  Lab lab(udp_lab(/*keep_icmp_ratelimit=*/true));
  PV_REQUIRE_LAB_UP(lab);
  const ScanRun r = pvlab::scan_in_lab(
      lab, {"-sU", "--udp-pace", "auto", "-p", kUdpPacedPorts, "-n", target}, lab.path("out.json"));
  ASSERT_EQ(r.cmd.exit_code, 0) << r.cmd.describe();
  ASSERT_TRUE(r.report.has_value());
  const pvlab::HostReport* host = r.report->host(target);
  ASSERT_NE(host, nullptr) << "no host " << target << " in the report";
  const auto& detail = lab.truth_detail();
  std::vector<std::string> wrong;
  for (int port : expand_ports(kUdpPacedPorts)) {
    const std::string kind = detail.at({"udp", port});
    const std::string want = kind == "open"     ? "open"
                             : kind == "drop"   ? "open|filtered"
                             : kind == "reject" ? "filtered"
                                                : "closed";
    const std::string got = host->state("udp", port);
    if (got != want) wrong.push_back("udp " + std::to_string(port) + " " + kind + ": got " + got);
  }
  std::printf("portvigil -sU --udp-pace auto %s (default ICMP rate limit): %.2f s; note: %s\n",
              target, r.seconds, host->note.c_str());
  EXPECT_TRUE(wrong.empty()) << pvlab::indent_lines(wrong);
  EXPECT_FALSE(host->inconclusive) << host->note;
  EXPECT_NE(host->note.find("ICMP error rate limit detected"), std::string::npos) << host->note;
}

INSTANTIATE_TEST_SUITE_P(Lab, RawUdpPaced, ::testing::Values(4, 6),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return "v" + std::to_string(p.param);
                         });

// ---------------------------------------------------------------------------------------------
// 3. Agreement with Debian's nmap, judged by ndiff.
//
// ndiff's text output (nmap 7.93) for two scans of one host: a header pair "-Nmap ... scan
// initiated ..." / "+portvigil ... scan initiated ...", the host line(s) (" ADDR:" or, when the
// addresses differ -- nmap records the target's MAC -- "-ADDR, MAC:" and "+ADDR:"), the
// "Not shown:" line(s), the table header and one line per port that differs, "-" for the first
// file and "+" for the second. A port that one file lists and the other hides in <extraports>
// appears with one sign only. Exit status 0 = no differences, 1 = differences, 2 = error.

// The ports an nmap-style XML hides in <extraports>/<extrareasons ports="...">: "22/tcp" ->
// state.
std::map<std::string, std::string> hidden_port_states(const std::string& xml) {
  auto attr = [](const std::string& tag, const std::string& name) -> std::string {
    const std::string key = " " + name + "=\"";
    const auto pos = tag.find(key);
    if (pos == std::string::npos) return "";
    const auto start = pos + key.size();
    return tag.substr(start, tag.find('"', start) - start);
  };
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while ((pos = xml.find("<extraports ", pos)) != std::string::npos) {
    const std::string open_tag = xml.substr(pos, xml.find('>', pos) - pos);
    const std::string state = attr(open_tag, "state");
    const std::size_t end = xml.find("</extraports>", pos);
    std::size_t r = pos;
    while ((r = xml.find("<extrareasons ", r)) != std::string::npos && r < end) {
      const std::string tag = xml.substr(r, xml.find('>', r) - r);
      const std::string proto = attr(tag, "proto").empty() ? "tcp" : attr(tag, "proto");
      for (int p : expand_ports(attr(tag, "ports"))) out[std::to_string(p) + "/" + proto] = state;
      r += tag.size();
    }
    pos = end == std::string::npos ? xml.size() : end;
  }
  return out;
}

// "56335 closed ports, 9000 filtered ports" -> {closed: 56335, filtered: 9000}
std::map<std::string, long> parse_not_shown(const std::string& text) {
  std::map<std::string, long> out;
  static const std::regex item(R"((\d+) (\S+) ports)");
  for (std::sregex_iterator it(text.begin(), text.end(), item), end; it != end; ++it)
    out[(*it)[2]] = std::stol((*it)[1]);
  return out;
}

struct NdiffReport {
  CmdResult cmd;
  std::vector<std::string> state_diffs;    // a port whose state differs (the real failures)
  std::vector<std::string> grouping_only;  // listed by one file, hidden by the other, same state
  std::vector<std::string> service_only;   // same state, other service name
  std::vector<std::string> unexpected;     // a "-"/"+" line that is not metadata
  std::map<std::string, long> hidden_a, hidden_b;  // the two "Not shown:" summaries
};

NdiffReport run_ndiff(const std::string& xml_a, const std::string& xml_b) {
  NdiffReport rep;
  rep.cmd = pvlab::run({"ndiff", xml_a, xml_b}, 120s);
  const auto hidden_in_a = hidden_port_states(pvlab::read_file(xml_a));
  const auto hidden_in_b = hidden_port_states(pvlab::read_file(xml_b));

  static const std::regex port_line(R"(^([-+ ])(\d+/(?:tcp|udp))\s+(\S+)\s*(.*?)\s*$)");
  static const std::regex not_shown(R"(^([-+ ])Not shown: (.*)$)");
  static const std::regex header(R"(^[-+ ]\S.* scan initiated .*$)");
  static const std::regex host_line(R"(^[-+ ]\S.*:$)");
  static const std::regex table_header(R"(^ PORT\s+STATE\s+SERVICE.*$)");
  struct Side {
    std::optional<std::string> state, service;
  };
  std::map<std::string, std::pair<Side, Side>> ports;  // spec -> (a, b)
  std::vector<std::string> order;
  for (const auto& line : pvlab::split_lines(rep.cmd.out)) {
    std::smatch m;
    if (std::regex_match(line, m, port_line)) {
      const std::string spec = m[2];
      if (ports.count(spec) == 0) order.push_back(spec);
      auto& [a, b] = ports[spec];
      const std::string sign = m[1];
      if (sign == "-" || sign == " ") a = {m[3].str(), m[4].str()};
      if (sign == "+" || sign == " ") b = {m[3].str(), m[4].str()};
    } else if (std::regex_match(line, m, not_shown)) {
      const std::string sign = m[1];
      if (sign == "-" || sign == " ") rep.hidden_a = parse_not_shown(m[2]);
      if (sign == "+" || sign == " ") rep.hidden_b = parse_not_shown(m[2]);
    } else if (line.empty() || std::regex_match(line, header) ||
               std::regex_match(line, host_line) || std::regex_match(line, table_header)) {
      continue;
    } else {
      rep.unexpected.push_back(line);
    }
  }
  for (const auto& spec : order) {
    const auto& [a, b] = ports[spec];
    auto hidden_state = [&spec](const std::map<std::string, std::string>& hidden) {
      const auto it = hidden.find(spec);
      return it == hidden.end() ? std::string("(not in the file)") : it->second;
    };
    const std::string sa = a.state ? *a.state : hidden_state(hidden_in_a);
    const std::string sb = b.state ? *b.state : hidden_state(hidden_in_b);
    const std::string what = spec + ": " + sa + (a.state ? "" : " (hidden)") + " vs " + sb +
                             (b.state ? "" : " (hidden)");
    if (sa != sb)
      rep.state_diffs.push_back(what);
    else if (!a.state || !b.state)
      rep.grouping_only.push_back(what);
    else
      rep.service_only.push_back(spec + " " + sa + ": service '" + a.service.value_or("") +
                                 "' vs '" + b.service.value_or("") + "'");
  }
  return rep;
}

std::string head(const std::vector<std::string>& v, std::size_t n = 10) {
  std::vector<std::string> h(v.begin(),
                             v.begin() + static_cast<std::ptrdiff_t>(std::min(n, v.size())));
  return pvlab::indent_lines(h) + (v.size() > n ? "  ...\n" : "");
}

// nmap.xml vs portvigil.xml: no port may differ. Port lines that ndiff shows only because one
// file hides a state in <extraports> that the other lists port by port count as differences
// too (nmap hides every state other than open with more than 25 ports); a mere difference in
// the service name is reported but not failed on (portvigil's service table is its own).
void expect_ndiff_agrees(const std::string& nmap_xml, const std::string& pv_xml) {
  const NdiffReport rep = run_ndiff(nmap_xml, pv_xml);
  ASSERT_TRUE(rep.cmd.exit_code == 0 || rep.cmd.exit_code == 1)
      << "ndiff " << nmap_xml << " " << pv_xml << ": " << rep.cmd.describe();
  std::printf(
      "ndiff nmap vs portvigil: exit %d, %zu state differences, %zu ports listed by one side "
      "and hidden by the other, %zu service-name differences\n",
      rep.cmd.exit_code, rep.state_diffs.size(), rep.grouping_only.size(), rep.service_only.size());
  EXPECT_TRUE(rep.state_diffs.empty())
      << rep.state_diffs.size() << " ports differ in state (nmap vs portvigil):\n"
      << head(rep.state_diffs);
  EXPECT_TRUE(rep.unexpected.empty()) << "unexpected ndiff lines:\n" << head(rep.unexpected);
  EXPECT_TRUE(rep.grouping_only.empty() && rep.hidden_a == rep.hidden_b)
      << "ndiff shows " << rep.grouping_only.size()
      << " port lines although the states agree: one file lists them, the other hides them in "
      << "<extraports> (nmap hides every non-open state with more than 25 ports; "
      << "'Not shown' differs: nmap " << rep.hidden_a.size() << " states, portvigil "
      << rep.hidden_b.size() << " states):\n"
      << head(rep.grouping_only, 5);
  if (!rep.service_only.empty())
    std::printf("note: ndiff service-name-only differences (not failed):\n%s",
                head(rep.service_only, 5).c_str());
  ::testing::Test::RecordProperty("ndiff_service_only", static_cast<int>(rep.service_only.size()));
}

// compare.py: an nmap-style XML against truth.tsv.
void expect_xml_matches_truth(const Lab& lab, const std::string& xml, const std::string& target,
                              const std::string& proto, const std::string& ports,
                              const std::string& who) {
  std::vector<std::string> cmd = {"python3",    pvlab::lab_script_dir() + "/compare.py",
                                  "--truth",    lab.path("truth.tsv"),
                                  "--nmap-xml", xml,
                                  "--address",  target,
                                  "--proto",    proto};
  if (!ports.empty()) cmd.insert(cmd.end(), {"--ports", ports});
  const CmdResult r = pvlab::run(cmd, 120s);
  EXPECT_EQ(r.exit_code, 0) << who << " -oX of " << target << " vs truth: " << r.out << r.err;
}

struct NmapCase {
  const char* name;
  const char* technique;  // portvigil and nmap flag
  int family;
  bool udp;
};

void PrintTo(const NmapCase& c, std::ostream* os) {
  *os << c.name;
}

class RawNmapAgreement : public ::testing::TestWithParam<NmapCase> {};

TEST_P(RawNmapAgreement, NdiffShowsNoPortDifferences) {
  PV_REQUIRE_LAB();
  for (const char* tool : {"nmap", "ndiff"})
    if (!pvlab::have_tool(tool)) PV_SKIP_OR_FAIL(std::string(tool) + " is not installed");
  const NmapCase& c = GetParam();
  const char* target = target_of(c.family);
  const std::string ports = c.udp ? kUdpScanPorts : "1-65535";
  const std::string proto = c.udp ? "udp" : "tcp";
  Lab lab(c.udp ? udp_lab(false) : LabConfig::connect_preset());
  PV_REQUIRE_LAB_UP(lab);

  const std::string nmap_xml = lab.path("nmap.xml");
  std::vector<std::string> nmap = {"nmap", c.technique, "-T4", "-p", ports, "-n", "-Pn"};
  if (c.family == 6) nmap.emplace_back("-6");
  nmap.insert(nmap.end(), {"-oX", nmap_xml, target});
  const auto t0 = std::chrono::steady_clock::now();
  const CmdResult n = lab.exec(nmap, 600s);
  const double nmap_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(n.exit_code, 0) << "nmap: " << n.describe();

  const std::string pv_xml = lab.path("portvigil.xml");
  const ScanRun r = pvlab::scan_in_lab(lab, {c.technique, "-p", ports, "-n", target, "-oX", pv_xml},
                                       lab.path("out.json"));
  ASSERT_EQ(r.cmd.exit_code, 0) << r.cmd.describe();
  std::printf("nmap %s: %.2f s, portvigil %s: %.2f s\n", c.technique, nmap_s, c.technique,
              r.seconds);

  // Both agree with the lab (nmap is the referee: if it disagreed, the lab would be wrong).
  expect_xml_matches_truth(lab, nmap_xml, target, proto, c.udp ? ports : "", "nmap");
  expect_xml_matches_truth(lab, pv_xml, target, proto, c.udp ? ports : "", "portvigil");
  expect_ndiff_agrees(nmap_xml, pv_xml);
}

INSTANTIATE_TEST_SUITE_P(Lab, RawNmapAgreement,
                         ::testing::Values(NmapCase{"syn_v4", "-sS", 4, false},
                                           NmapCase{"syn_v6", "-sS", 6, false},
                                           NmapCase{"udp_v4", "-sU", 4, true}),
                         [](const ::testing::TestParamInfo<NmapCase>& p) {
                           return std::string(p.param.name);
                         });

// ---------------------------------------------------------------------------------------------
// 4. --scope on the wire: a target outside the authorized scope is never probed.

bool wait_for_text(const std::string& path, const std::string& text, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pvlab::read_file(path).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

TEST(RawScope, OutOfScopeTargetIsNeverProbed) {
  PV_REQUIRE_LAB();
  if (!pvlab::have_tool("tcpdump")) PV_SKIP_OR_FAIL("tcpdump is not installed");
  LabConfig config = LabConfig::connect_preset();
  // Live addresses just outside the scope: a probe to them would be answered and captured.
  config.extra_targets = {"198.18.0.3", "2001:db8::3"};
  Lab lab(config);
  PV_REQUIRE_LAB_UP(lab);

  // The capture runs in the scanner namespace on its veth end, before and after the scans.
  // A small snap length and a 16 MiB buffer keep the kernel from dropping any packet.
  const std::string pcap = lab.path("scope.pcap");
  const std::string cap_err = lab.path("tcpdump.err");
  Background capture({pvlab::lab_script(), "exec", "--name", lab.name(), "--", "tcpdump", "-i",
                      lab.scan_interface(), "-n", "-s", "128", "-B", "16384", "-U",
                      "--immediate-mode", "-Z", "root", "-w", pcap},
                     lab.path("tcpdump.out"), cap_err);
  ASSERT_TRUE(capture.running());
  ASSERT_TRUE(wait_for_text(cap_err, "listening on", 20s))
      << "tcpdump did not start: " << pvlab::read_file(cap_err);

  const std::string bin = pvlab::portvigil_binary();
  // 1. Out-of-scope targets in the target list: bad input, exit 2, nothing sent.
  for (const char* targets : {"198.18.0.2-3", "2001:db8::2/127"}) {
    const std::string scope =
        std::string(targets).find(':') != std::string::npos ? "2001:db8::2/128" : "198.18.0.2/32";
    const CmdResult out =
        lab.exec({bin, "scan", "-sS", "-p", "1-100", "-n", "--scope", scope, targets}, 120s);
    EXPECT_EQ(out.exit_code, 2) << targets << " --scope " << scope << ": " << out.describe();
    EXPECT_NE(out.err.find(std::string(targets).find(':') != std::string::npos ? "2001:db8::3"
                                                                               : "198.18.0.3"),
              std::string::npos)
        << "stderr does not name the out-of-scope target: " << out.err;
  }
  // 2. In-scope scans (they prove that the capture sees the probes): .2 and ::2 alone, and the
  // range .2-3 with .3 excluded.
  const std::vector<std::pair<std::string, std::vector<std::string>>> in_scope = {
      {"198.18.0.2", {"--scope", "198.18.0.2/32", "198.18.0.2"}},
      {"198.18.0.2", {"--scope", "198.18.0.2/32", "--exclude", "198.18.0.3", "198.18.0.2-3"}},
      {"2001:db8::2", {"--scope", "2001:db8::2/128", "2001:db8::2"}}};
  for (const auto& [target, args] : in_scope) {
    std::vector<std::string> full = {"-sS", "-p", "1-100", "-n"};
    full.insert(full.end(), args.begin(), args.end());
    const ScanRun in = pvlab::scan_in_lab(lab, full, lab.path("in.json"));
    EXPECT_EQ(in.cmd.exit_code, 0) << args.back() << ": " << in.cmd.describe();
    ASSERT_TRUE(in.report.has_value());
    EXPECT_EQ(in.report->hosts.size(), 1U) << args.back();
    if (const pvlab::HostReport* h = in.report->host(target)) {
      EXPECT_EQ(h->state("tcp", 22), "open");
      EXPECT_EQ(h->state("tcp", 23), "closed");
    } else {
      ADD_FAILURE() << "no host " << target << " in the report of " << args.back();
    }
  }
  std::this_thread::sleep_for(500ms);  // let the last packets reach the capture file
  const int status = capture.stop();
  EXPECT_TRUE(WIFEXITED(status) || WIFSIGNALED(status));
  const std::string stats = pvlab::read_file(cap_err);
  EXPECT_NE(stats.find("\n0 packets dropped by kernel"), std::string::npos)
      << "the capture lost packets: " << stats;

  // Nothing went to the out-of-scope addresses: no IP packet, no ARP request, no neighbour
  // solicitation (ff02::1:ff00:3 is the solicited-node group of 2001:db8::3).
  EXPECT_EQ(count_packets(pcap, "host 198.18.0.3 or host 2001:db8::3"), 0);
  EXPECT_EQ(count_packets(pcap, "ip6 dst host ff02::1:ff00:3"), 0);
  // Everything the scanner sent went to the in-scope target (IPv6 multicast: ND, MLD).
  EXPECT_EQ(count_packets(pcap, "ip and src host 198.18.0.1 and not dst host 198.18.0.2"), 0);
  EXPECT_EQ(count_packets(pcap,
                          "ip6 and src host 2001:db8::1 and not dst host 2001:db8::2 and not "
                          "dst net ff00::/8"),
            0);
  // ... and the capture saw the probes: 100 SYNs to each in-scope address at least.
  const long syn4 = count_packets(
      pcap, "ip and src host 198.18.0.1 and dst host 198.18.0.2 and tcp[tcpflags] == tcp-syn");
  const long syn6 =
      count_packets(pcap,
                    "ip6 and src host 2001:db8::1 and dst host 2001:db8::2 and ip6[6] == 6 and "
                    "ip6[53] == 2");
  EXPECT_GE(syn4, 200) << "the capture does not show the IPv4 probes";
  EXPECT_GE(syn6, 100) << "the capture does not show the IPv6 probes";
  std::printf(
      "capture: %ld SYNs to 198.18.0.2, %ld to 2001:db8::2, none to the .3/::3 "
      "addresses\n",
      syn4, syn6);
}

// ---------------------------------------------------------------------------------------------
// 5. A hostile network: a blind spoofer (tests/lab/spoof.py) in the TARGET namespace floods the
// scanner with forged replies from the target -- bare SYN, bare RST, SYN+ACK, RST+ACK, RST, ICMP
// unreachable quoting a guessed probe, UDP datagrams with guessed identifiers -- for every
// scanned port and every source port a scan may use (TCP: the 71 possible ports; UDP: all of
// 32768-65535), before and during the scan. Every reported state must still be the truth.
//
// The UDP ports are all ones whose probe carries an identifier the answer must echo: a port
// probed without one has only the 14 source-port bits as proof (2^-14 per forged datagram,
// see README "Accuracy rules"), which a full flood of the span finds.
struct SpoofCase {
  const char* name;
  int technique;  // index into kTcpTechniques, or -1 for -sU
  int family;
};

void PrintTo(const SpoofCase& c, std::ostream* os) {
  *os << c.name;
}

constexpr const char* kSpoofTcpPorts = "22-25,80,445,3000-3009,4000-4004";
constexpr const char* kSpoofUdpPorts = "53,111,123,137,500";

LabConfig spoof_lab() {
  LabConfig c;
  c.tcp_open = "22,80";
  c.tcp_drop = "25,3000-3009";
  c.tcp_reject = "445,4000-4004";
  c.udp_open = "53";
  c.udp_drop = "123,500";  // NTP (32-bit echo), IKE (32-bit echo)
  c.udp_reject = "137";    // NetBIOS-NS; 111 (rpcbind) stays closed
  return c;
}

class RawSpoofed : public ::testing::TestWithParam<SpoofCase> {};

TEST_P(RawSpoofed, ForgedRepliesChangeNoState) {
  PV_REQUIRE_LAB();
  const SpoofCase& c = GetParam();
  const bool udp = c.technique < 0;
  const Semantics& sem = udp ? kUdp : kTcpTechniques[c.technique];
  const char* target = target_of(c.family);
  const char* scanner = c.family == 6 ? "2001:db8::1" : "198.18.0.1";
  const std::string ports = udp ? kSpoofUdpPorts : kSpoofTcpPorts;
  Lab lab(spoof_lab());
  PV_REQUIRE_LAB_UP(lab);

  const std::string out = lab.path("spoof.out");
  Background spoofer({"ip", "netns", "exec", "pv-" + lab.name() + "-tgt", "python3",
                      pvlab::lab_script_dir() + "/spoof.py", "--src", target, "--dst", scanner,
                      udp ? "--udp-ports" : "--tcp-ports", ports},
                     out, lab.path("spoof.err"));
  ASSERT_TRUE(spoofer.running());
  ASSERT_TRUE(wait_for_text(out, "spoofing", 60s))
      << "the spoofer did not start: " << pvlab::read_file(lab.path("spoof.err"));
  // A slow scan, so that the flood passes every source port at least twice while the capture
  // is open (UDP: a cycle over 32768 source ports x 5 ports x 2 packets takes 5-12 s on a
  // loaded 2-core machine; the 14 retransmissions of the silent ports make the scan ~35 s).
  std::vector<std::string> args = {sem.flag, "-p", ports, "-n", "--max-rate", udp ? "1" : "40"};
  if (udp) args.insert(args.end(), {"--max-retries", "14"});
  args.emplace_back(target);
  auto cycles_done = [&out] {
    const std::string text = pvlab::read_file(out);
    long n = 0;
    for (std::size_t at = 0; (at = text.find("cycle ", at)) != std::string::npos; ++at) ++n;
    return n;
  };
  const long cycles_before = cycles_done();
  const ScanRun r = pvlab::scan_in_lab(lab, args, lab.path("out.json"));
  const long cycles_during = cycles_done() - cycles_before;
  spoofer.stop();
  std::smatch m;
  const std::string report = spoofer.out();
  static const std::regex sent(R"(sent (\d+) packets in (\d+) cycles)");
  ASSERT_TRUE(std::regex_search(report, m, sent))
      << "spoofer output: " << report << pvlab::read_file(lab.path("spoof.err"));
  const long packets = std::stol(m[1]);
  const long cycles = std::stol(m[2]);
  std::printf(
      "portvigil %s -p %s %s under a flood of %ld forged replies (%ld cycles, %ld ended during "
      "the scan): %.2f s\n",
      sem.flag, ports.c_str(), target, packets, cycles, cycles_during, r.seconds);
  // Two cycles ending during the scan: the second ran entirely while the scan did.
  EXPECT_GE(cycles_during, 2) << "the flood did not cover every source port during the scan";

  ASSERT_EQ(r.cmd.exit_code, 0) << r.cmd.describe();
  ASSERT_TRUE(r.report.has_value());
  const pvlab::HostReport* host = r.report->host(target);
  ASSERT_NE(host, nullptr) << "no host " << target << " in the report";
  EXPECT_TRUE(host->complete) << "note: " << host->note;
  if (!host->note.empty()) std::printf("note: %s\n", host->note.c_str());
  const std::vector<int> list = expand_ports(ports);
  const Mismatches mm = compare_semantics(lab, *host, udp ? "udp" : "tcp", sem, list);
  EXPECT_EQ(mm.states, 0U) << mm.states << " of " << list.size()
                           << " ports have the wrong state under the flood:\n"
                           << pvlab::indent_lines(mm.lines);
  EXPECT_EQ(mm.reasons, 0U) << mm.reasons << " ports have the wrong reason under the flood:\n"
                            << pvlab::indent_lines(mm.lines);
  expect_only_requested(*host, udp ? "udp" : "tcp", list);
}

INSTANTIATE_TEST_SUITE_P(Lab, RawSpoofed,
                         ::testing::Values(SpoofCase{"syn_v4", 0, 4}, SpoofCase{"syn_v6", 0, 6},
                                           SpoofCase{"fin_v4", 1, 4}, SpoofCase{"ack_v4", 4, 4},
                                           SpoofCase{"ack_v6", 4, 6}, SpoofCase{"udp_v4", -1, 4},
                                           SpoofCase{"udp_v6", -1, 6}),
                         [](const ::testing::TestParamInfo<SpoofCase>& p) {
                           return std::string(p.param.name);
                         });

// ---------------------------------------------------------------------------------------------
// 6. Subnets: host discovery before the port scan. The lab's /24 and a /120 of its /64 hold a
// few live addresses on the target's veth and many unused ones on-link: only the live ones
// are listed, each agrees with the truth port by port, the whole report agrees with nmap's
// (ndiff), and a host that drops ICMP echo is still found through TCP.

constexpr const char* kSubnetPorts = "1-100,443";

TEST(RawSubnet, DiscoveryListsOnlyLiveHostsThatMatchTruthAndNmap) {
  PV_REQUIRE_LAB();
  for (const char* tool : {"nmap", "ndiff"})
    if (!pvlab::have_tool(tool)) PV_SKIP_OR_FAIL(std::string(tool) + " is not installed");
  LabConfig config;
  config.tcp_open = "22,80,443";
  std::vector<std::string> live4 = {"198.18.0.2"};
  for (int i = 3; i <= 13; ++i) config.extra_targets.push_back("198.18.0." + std::to_string(i));
  live4.insert(live4.end(), config.extra_targets.begin(), config.extra_targets.end());
  const std::vector<std::string> live6 = {"2001:db8::2", "2001:db8::3", "2001:db8::4",
                                          "2001:db8::5"};
  config.extra_targets.insert(config.extra_targets.end(),
                              {"2001:db8::3", "2001:db8::4", "2001:db8::5"});
  Lab lab(config);
  PV_REQUIRE_LAB_UP(lab);
  // 198.18.0.5 and 2001:db8::4 drop ICMP echo requests. 198.18.0.13 and 2001:db8::5 drop
  // every packet to their address: only ARP or neighbour discovery (whose solicitations go
  // to a multicast group) can find them, and all their ports are filtered.
  const std::set<std::string> walled = {"198.18.0.13", "2001:db8::5"};
  const std::string target_ns = "pv-" + lab.name() + "-tgt";
  const CmdResult nft = pvlab::run(
      {"ip", "netns", "exec", target_ns, "sh", "-c",
       "nft add rule inet pvlab input ip daddr 198.18.0.5 icmp type echo-request drop && "
       "nft add rule inet pvlab input ip6 daddr 2001:db8::4 icmpv6 type echo-request drop && "
       "nft insert rule inet pvlab input ip daddr 198.18.0.13 drop && "
       "nft insert rule inet pvlab input ip6 daddr 2001:db8::5 drop"},
      30s);
  ASSERT_EQ(nft.exit_code, 0) << nft.describe();
  const CmdResult pong = lab.exec({"ping", "-c1", "-W1", "198.18.0.6"}, 30s);
  ASSERT_EQ(pong.exit_code, 0) << "ping itself does not work here: " << pong.describe();
  const CmdResult ping = lab.exec({"ping", "-c1", "-W1", "198.18.0.5"}, 30s);
  EXPECT_NE(ping.exit_code, 0) << "198.18.0.5 still answers ping: the test would prove nothing";
  // The target proxies neighbour discovery for 2001:db8::77, an address nobody holds: it
  // answers solicitations for it at once (with the Override flag clear, as RFC 4861 says a
  // proxy must; Linux proxies only on a forwarding interface). A proxy's answer is no proof.
  const std::string tif = lab.target_interface();
  const CmdResult proxy =
      pvlab::run({"ip", "netns", "exec", target_ns, "sh", "-c",
                  "sysctl -qw net.ipv6.conf." + tif + ".forwarding=1 net.ipv6.conf." + tif +
                      ".proxy_ndp=1 net.ipv6.neigh." + tif +
                      ".proxy_delay=0 && ip -6 neigh add proxy 2001:db8::77 dev " + tif},
                 30s);
  ASSERT_EQ(proxy.exit_code, 0) << proxy.describe();
  (void)lab.exec({"ping", "-6", "-c1", "-W1", "2001:db8::77"}, 30s);  // resolved; no answer
  const CmdResult proxied = lab.exec({"ip", "-6", "neigh", "show", "2001:db8::77"}, 30s);
  EXPECT_NE(proxied.out.find("lladdr"), std::string::npos)
      << "the proxy did not answer for 2001:db8::77: the test would prove nothing\n"
      << proxied.describe();

  const std::vector<int> ports = expand_ports(kSubnetPorts);
  auto check_hosts = [&](const ScanRun& r, const std::vector<std::string>& live) {
    ASSERT_EQ(r.cmd.exit_code, 0) << r.cmd.describe();
    ASSERT_TRUE(r.report.has_value());
    std::set<std::string> listed;
    for (const auto& h : r.report->hosts) listed.insert(h.address);
    EXPECT_EQ(listed, std::set<std::string>(live.begin(), live.end()))
        << "the listed hosts must be exactly the live addresses";
    for (const auto& a : live) {
      const pvlab::HostReport* h = r.report->host(a);
      if (h == nullptr) continue;  // already failed above
      if (walled.count(a) > 0) {
        for (int p : ports) EXPECT_EQ(h->state("tcp", p), "filtered") << a << " port " << p;
        continue;
      }
      std::vector<std::string> lines;
      EXPECT_EQ(pvlab::compare_with_truth(lab.truth(), *h, "tcp", &lines, &ports), 0u)
          << a << ":\n"
          << pvlab::indent_lines(lines);
    }
  };

  // IPv4: the /24 less the scanner, with nmap as the referee.
  const std::string pv_xml = lab.path("portvigil.xml");
  const ScanRun r4 = pvlab::scan_in_lab(
      lab,
      {"-sS", "-p", kSubnetPorts, "-n", "--exclude", "198.18.0.1", "198.18.0.0/24", "-oX", pv_xml},
      lab.path("v4.json"));
  check_hosts(r4, live4);
  EXPECT_NE(r4.cmd.out.find("255 IP addresses (12 hosts up)"), std::string::npos) << r4.cmd.out;
  const std::string json4 = pvlab::read_file(lab.path("v4.json"));
  EXPECT_NE(json4.find(R"("address": "198.18.0.13", "family": "ipv4", "hostname": "", )"
                       R"("status_reason": "arp-response")"),
            std::string::npos)
      << "198.18.0.13 drops every IP packet: ARP must be what found it";
  EXPECT_NE(json4.find(R"("address": "198.18.0.2", "family": "ipv4", "hostname": "", )"
                       R"("status_reason": "arp-response")"),
            std::string::npos)
      << "on-link IPv4 hosts answer ARP first";
  const std::string nmap_xml = lab.path("nmap.xml");
  const CmdResult n = lab.exec({"nmap", "-sS", "-T4", "-p", kSubnetPorts, "-n", "--exclude",
                                "198.18.0.1", "198.18.0.0/24", "-oX", nmap_xml},
                               600s);
  ASSERT_EQ(n.exit_code, 0) << "nmap: " << n.describe();
  std::printf("IPv4 /24: portvigil %.2f s\n", r4.seconds);
  expect_ndiff_agrees(nmap_xml, pv_xml);

  // IPv6: a /120 less the scanner, discovered by neighbour solicitation; the proxied
  // 2001:db8::77 is not listed (check_hosts: exactly the live addresses). Left out too: the
  // subnet-router anycast address 2001:db8::, which the target holds since it forwards.
  const ScanRun r6 = pvlab::scan_in_lab(
      lab,
      {"-sS", "-p", kSubnetPorts, "-n", "--exclude", "2001:db8::1,2001:db8::", "2001:db8::/120"},
      lab.path("v6.json"));
  check_hosts(r6, live6);
  EXPECT_NE(r6.cmd.out.find("254 IP addresses (4 hosts up)"), std::string::npos) << r6.cmd.out;
  const std::string json6 = pvlab::read_file(lab.path("v6.json"));
  EXPECT_NE(json6.find(R"("address": "2001:db8::5", "family": "ipv6", "hostname": "", )"
                       R"("status_reason": "nd-response")"),
            std::string::npos)
      << "2001:db8::5 drops every packet to its address: neighbour discovery must find it";
  std::printf("IPv6 /120: portvigil %.2f s\n", r6.seconds);

  // -sn lists the same live hosts and probes no port; -Pn lists every address.
  const CmdResult sn = lab.exec(
      {pvlab::portvigil_binary(), "scan", "-sn", "-n", "--exclude", "198.18.0.1", "198.18.0.0/24"},
      120s);
  EXPECT_EQ(sn.exit_code, 0) << sn.describe();
  EXPECT_NE(sn.out.find("255 IP addresses (12 hosts up)"), std::string::npos) << sn.out;
  EXPECT_EQ(sn.out.find("PORT"), std::string::npos) << "-sn must not list ports:\n" << sn.out;
}

// What is on the link is what the routing table says (RFC 5942), not what the interface's
// prefixes cover. 198.18.7.9 and 2001:db8:7::9 lie outside every prefix of the scanner's
// interface but behind on-link routes; 198.18.0.130 lies inside its /24 but behind a route
// through the gateway 198.18.0.2. All three drop every IP packet to them, so only neighbour
// discovery can find one: the two on-link ones are up by ARP / neighbour solicitation, the
// routed one is down, as nmap -sn (which reads the routing table too) reports them.
TEST(RawSubnet, OnLinkIsWhatTheRoutingTableSays) {
  PV_REQUIRE_LAB();
  if (!pvlab::have_tool("nmap")) PV_SKIP_OR_FAIL("nmap is not installed");
  LabConfig config;
  config.tcp_open = "22";
  Lab lab(config);
  PV_REQUIRE_LAB_UP(lab);
  const std::string tgt = "pv-" + lab.name() + "-tgt";
  const std::string scan = "pv-" + lab.name() + "-scan";
  const std::string tif = lab.target_interface();
  const std::string sif = lab.scan_interface();
  const CmdResult setup =
      pvlab::run({"sh", "-c",
                  "set -e; ip -n " + tgt + " addr add 198.18.7.9/32 dev " + tif + "; ip -n " + tgt +
                      " addr add 198.18.0.130/32 dev " + tif + "; ip -n " + tgt +
                      " addr add 2001:db8:7::9/128 dev " + tif + " nodad; ip -n " + scan +
                      " route add 198.18.7.0/24 dev " + sif + "; ip -n " + scan +
                      " -6 route add 2001:db8:7::/64 dev " + sif + "; ip -n " + scan +
                      " route add 198.18.0.128/28 via 198.18.0.2; ip netns exec " + tgt +
                      " sh -c 'nft insert rule inet pvlab input ip daddr 198.18.7.9 drop && "
                      "nft insert rule inet pvlab input ip daddr 198.18.0.130 drop && "
                      "nft insert rule inet pvlab input ip6 daddr 2001:db8:7::9 drop'"},
                 30s);
  ASSERT_EQ(setup.exit_code, 0) << setup.describe();
  // The target answers ARP for 198.18.7.9 though the question comes from another prefix:
  // if it did not, the test would prove nothing.
  const CmdResult arp = pvlab::run({"ip", "netns", "exec", scan, "sh", "-c",
                                    "ip neigh flush dev " + sif +
                                        "; ping -c1 -W1 198.18.7.9 >/dev/null; ip neigh show "
                                        "198.18.7.9 dev " +
                                        sif},
                                   30s);
  ASSERT_NE(arp.out.find("lladdr"), std::string::npos)
      << "the target does not answer ARP for 198.18.7.9:\n"
      << arp.describe();
  const CmdResult nd = pvlab::run({"ip", "netns", "exec", scan, "sh", "-c",
                                   "ping -6 -c1 -W1 2001:db8:7::9 >/dev/null; ip -6 neigh show "
                                   "2001:db8:7::9 dev " +
                                       sif},
                                  30s);
  ASSERT_NE(nd.out.find("lladdr"), std::string::npos)
      << "the target does not answer neighbour solicitations for 2001:db8:7::9:\n"
      << nd.describe();

  const std::vector<std::string> targets = {"198.18.7.8-10", "198.18.0.129-131", "2001:db8:7::8",
                                            "2001:db8:7::9", "2001:db8:7::a"};
  auto up_hosts = [](const std::string& grepable) {
    std::set<std::string> up;
    for (const auto& line : pvlab::split_lines(grepable)) {
      if (line.rfind("Host: ", 0) != 0 || line.find("Status: Up") == std::string::npos) continue;
      up.insert(line.substr(6, line.find(' ', 6) - 6));
    }
    return up;
  };
  std::vector<std::string> pv_args = {pvlab::portvigil_binary(), "scan", "-sn", "-n", "-oG",
                                      lab.path("pv.gnmap")};
  pv_args.insert(pv_args.end(), targets.begin(), targets.end());
  const CmdResult pv = lab.exec(pv_args, 120s);
  ASSERT_EQ(pv.exit_code, 0) << pv.describe();
  const std::set<std::string> expected = {"198.18.7.9", "2001:db8:7::9"};
  EXPECT_EQ(up_hosts(pvlab::read_file(lab.path("pv.gnmap"))), expected) << pv.out;
  EXPECT_NE(pv.out.find("Host is up, received arp-response."), std::string::npos) << pv.out;
  EXPECT_NE(pv.out.find("Host is up, received nd-response."), std::string::npos) << pv.out;

  // nmap takes IPv4 and IPv6 in separate runs.
  std::set<std::string> nmap_up;
  for (const auto& [family, list] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"-4", {"198.18.7.8-10", "198.18.0.129-131"}},
           {"-6", {"2001:db8:7::8", "2001:db8:7::9", "2001:db8:7::a"}}}) {
    std::vector<std::string> args = {"nmap", family, "-sn", "-n", "-oG", lab.path("nmap.gnmap")};
    args.insert(args.end(), list.begin(), list.end());
    const CmdResult n = lab.exec(args, 120s);
    ASSERT_EQ(n.exit_code, 0) << n.describe();
    const auto up = up_hosts(pvlab::read_file(lab.path("nmap.gnmap")));
    nmap_up.insert(up.begin(), up.end());
  }
  EXPECT_EQ(nmap_up, expected) << "nmap disagrees about what is on the link";
}

// The short version of bench/subnet_bench.sh --case 16: an AnyIP block where every address is
// live, scanned whole. Every address is listed with the truth on every port; -sn finds them
// all, by TCP alone (the block is routed, not on-link, and drops ICMP echo). Larger blocks
// are the benchmark's.
TEST(RawSubnet, AnyIpBlockIsScannedWhole) {
  PV_REQUIRE_LAB();
  LabConfig config;
  config.tcp_open = "22,80,443";
  Lab lab(config);
  PV_REQUIRE_LAB_UP(lab);
  const CmdResult routes = pvlab::run(
      {"sh", "-c",
       "ip -n pv-" + lab.name() + "-tgt route add local 198.19.0.0/22 dev lo && ip -n pv-" +
           lab.name() + "-scan route add 198.19.0.0/22 via 198.18.0.2 && ip netns exec pv-" +
           lab.name() +
           "-tgt nft add rule inet pvlab input ip daddr 198.19.0.0/22 icmp type echo-request "
           "drop"},
      30s);
  ASSERT_EQ(routes.exit_code, 0) << routes.describe();
  const std::string ports = "21-25,80,443,3389,8080,8443";
  const std::vector<int> list = expand_ports(ports);
  const ScanRun r =
      pvlab::scan_in_lab(lab, {"-sS", "-p", ports, "-n", "198.19.0.0/22"}, lab.path("anyip.json"));
  ASSERT_EQ(r.cmd.exit_code, 0) << r.cmd.describe();
  ASSERT_TRUE(r.report.has_value());
  EXPECT_EQ(r.report->hosts.size(), 1024u);
  std::size_t wrong = 0;
  std::vector<std::string> lines;
  for (const auto& h : r.report->hosts) {
    wrong += pvlab::compare_with_truth(lab.truth(), h, "tcp", &lines, &list, 5);
  }
  EXPECT_EQ(wrong, 0u) << pvlab::indent_lines(lines);
  EXPECT_NE(r.cmd.out.find("1024 IP addresses (1024 hosts up)"), std::string::npos) << r.cmd.out;
  std::printf("AnyIP /22 x %zu ports: %.2f s\n", list.size(), r.seconds);
  // Off the link (routed) and dropping ICMP echo: every host is found by its TCP answers.
  const CmdResult sn =
      lab.exec({pvlab::portvigil_binary(), "scan", "-sn", "-n", "198.19.0.0/22"}, 120s);
  EXPECT_EQ(sn.exit_code, 0) << sn.describe();
  EXPECT_NE(sn.out.find("1024 IP addresses (1024 hosts up)"), std::string::npos) << sn.out;
  std::size_t by_reset = 0;
  for (std::size_t at = 0;
       (at = sn.out.find("Host is up, received reset.", at)) != std::string::npos; ++at) {
    ++by_reset;
  }
  EXPECT_EQ(by_reset, 1024u) << "hosts that drop ICMP echo must be found by the TCP ACK's reset";
}

}  // namespace
