// CLI contract tests: bad input exits 2 with exactly one stderr line "portvigil: ..." naming the
// offending text; --help and --version exit 0. No lab and no root needed.
//
// Nothing here should send a packet. As a guard against a parser that wrongly accepts an input
// and starts scanning, every command runs in a fresh, empty network namespace
// (`unshare --net`) when that is possible (root); targets are 127.0.0.1 otherwise, and the one
// case that names a lab address only runs isolated.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "lab_fixture.hpp"

namespace {

using pvlab::CmdResult;

bool isolation_available() {
  static const bool ok =
      pvlab::run({"unshare", "--net", "--", "true"}, std::chrono::seconds(20)).exit_code == 0;
  return ok;
}

CmdResult portvigil(const std::vector<std::string>& args) {
  std::vector<std::string> cmd;
  if (isolation_available()) cmd = {"unshare", "--net", "--"};
  cmd.push_back(pvlab::portvigil_binary());
  cmd.insert(cmd.end(), args.begin(), args.end());
  return pvlab::run(cmd, std::chrono::seconds(60));
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

#define PV_REQUIRE_BINARY()                                                             \
  do {                                                                                  \
    if (auto pv_why_ = ::pvlab::binary_unavailable_reason()) PV_SKIP_OR_FAIL(*pv_why_); \
  } while (0)

struct BadInput {
  const char* name;
  std::vector<std::string> args;
  std::string mention;  // the stderr line must contain this (case-insensitive)
  bool needs_isolation = false;
};

void PrintTo(const BadInput& b, std::ostream* os) {
  *os << b.name;
}

std::string BadInputName(const ::testing::TestParamInfo<BadInput>& param_info) {
  return param_info.param.name;
}

class CliBadInput : public ::testing::TestWithParam<BadInput> {};

TEST_P(CliBadInput, ExitsTwoWithOneLine) {
  PV_REQUIRE_BINARY();
  const BadInput& b = GetParam();
  if (b.needs_isolation && !isolation_available())
    GTEST_SKIP() << "names a lab address; runs only inside `unshare --net` (needs root)";
  const CmdResult r = portvigil(b.args);
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  const auto lines = pvlab::split_lines(r.err);
  ASSERT_EQ(lines.size(), 1U) << "stderr must be exactly one line, got:\n" << r.err;
  EXPECT_EQ(lines[0].rfind("portvigil: ", 0), 0U) << lines[0];
  EXPECT_NE(lower(lines[0]).find(lower(b.mention)), std::string::npos)
      << "stderr does not mention '" << b.mention << "': " << lines[0];
}

INSTANTIATE_TEST_SUITE_P(
    Contract, CliBadInput,
    ::testing::Values(
        BadInput{"PortOutOfRange", {"scan", "-p", "70000", "127.0.0.1"}, "70000"},
        BadInput{"PortRangeReversed", {"scan", "-p", "5-3", "127.0.0.1"}, "5-3"},
        BadInput{"PortNotANumber", {"scan", "-p", "ssh", "127.0.0.1"}, "ssh"},
        BadInput{"BadIPv4Address", {"scan", "-p", "22", "300.1.1.1"}, "300.1.1.1"},
        BadInput{"BadPrefixLoopback", {"scan", "-p", "22", "127.0.0.1/33"}, "127.0.0.1/33"},
        BadInput{"BadPrefixLab", {"scan", "-p", "22", "198.18.0.0/33"}, "198.18.0.0/33", true},
        BadInput{"MissingInputList", {"scan", "-p", "22", "-iL", "/nonexistent"}, "/nonexistent"},
        BadInput{"TopPortsZero", {"scan", "--top-ports", "0", "127.0.0.1"}, "--top-ports"},
        BadInput{"RttTimeoutTooLong",
                 {"scan", "--max-rtt-timeout", "2h", "-p", "22", "127.0.0.1"},
                 "--max-rtt-timeout"},
        BadInput{"UnknownOption", {"scan", "--bogus", "127.0.0.1"}, "--bogus"},
        BadInput{"TimingTemplateOutOfRange", {"scan", "-T9", "127.0.0.1"}, "\"9\""},
        BadInput{"OutputAllToStdout", {"scan", "-oA", "-", "127.0.0.1"}, "-oA"},
        BadInput{"IdentifyNeedsOpenTcpPorts",
                 {"scan", "-sA", "--identify", "-p", "22", "127.0.0.1"},
                 "--identify"},
        BadInput{"NoTarget", {"scan"}, "target"},
        BadInput{"NoTargetWithPorts", {"scan", "-p", "22"}, "target"},
        // More than 2^24 addresses need --scope: "localhost/0" walked all of IPv4.
        BadInput{"HugeTargetsNeedScope", {"scan", "-p", "22", "localhost/7"}, "--scope"},
        BadInput{"HugeV6TargetsNeedScope", {"scan", "-p", "22", "::1/64"}, "2^24"},
        // Excluding every target spun at 92% CPU for 10 minutes.
        BadInput{"ExcludeEverything",
                 {"scan", "-p", "22", "--scope", "2001:db8::/32", "2001:db8::/32", "--exclude",
                  "2001:db8::/32"},
                 "no targets left",
                 true}),
    BadInputName);

TEST(Cli, HelpListsEveryOption) {
  PV_REQUIRE_BINARY();
  const CmdResult r = portvigil({"scan", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  const std::string text = r.out + r.err;
  for (const char* opt : {"-sT",
                          "-p",
                          "-F",
                          "--top-ports",
                          "-n",
                          "-iL",
                          "--exclude",
                          "--excludefile",
                          "--scope",
                          "--max-retries",
                          "--max-rate",
                          "--min-rate",
                          "--host-timeout",
                          "--open",
                          "--reason",
                          "--identify",
                          "-oX",
                          "-oJ",
                          "-oG",
                          "-oA",
                          "-T",
                          "-v",
                          "-6",
                          "-Pn",
                          "-sn",
                          "--help",
                          "--version"}) {
    // The option as a whole word: "--exclude" does not count when only "--excludefile" is there.
    const std::regex word(std::string("(^|[^A-Za-z0-9-])") + opt + "($|[^A-Za-z0-9_-])");
    EXPECT_TRUE(std::regex_search(text, word)) << "scan --help does not mention " << opt;
  }
}

// -oA BASE writes the three Nmap formats as BASE.nmap, BASE.xml and BASE.gnmap. The target
// is loopback; isolated (root), the namespace's loopback is down and the host is reported
// down, which still writes all three.
TEST(Cli, OutputAllWritesTheThreeNmapFormats) {
  PV_REQUIRE_BINARY();
  char dir_template[] = "/tmp/pv-cli-oA-XXXXXX";
  const char* dir = mkdtemp(dir_template);
  ASSERT_NE(dir, nullptr);
  const std::string base = std::string(dir) + "/scan";
  const CmdResult r =
      portvigil({"scan", "-sT", "-T4", "-v", "-6", "-p", "1", "-oA", base, "127.0.0.1"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  const std::string normal = pvlab::read_file(base + ".nmap");
  const std::string xml = pvlab::read_file(base + ".xml");
  const std::string grep = pvlab::read_file(base + ".gnmap");
  EXPECT_NE(normal.find("portvigil done: 1 IP address"), std::string::npos) << normal;
  EXPECT_EQ(xml.rfind("<?xml", 0), 0u) << xml;
  EXPECT_NE(xml.find("</nmaprun>"), std::string::npos) << xml;
  EXPECT_NE(grep.find("-oA " + base), std::string::npos) << grep;  // the command line
  EXPECT_NE(grep.find("# "), std::string::npos) << grep;
  for (const char* ext : {".nmap", ".xml", ".gnmap"}) std::remove((base + ext).c_str());
  rmdir(dir);
}

// Options given explicitly win over a -T template: its contradicting values give way instead of
// making the command line an error.
TEST(Cli, ExplicitOptionsWinOverTimingTemplates) {
  PV_REQUIRE_BINARY();
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{"-T2", "--min-rate", "10"},
        std::vector<std::string>{"-T5", "--min-rtt-timeout", "500ms"},
        std::vector<std::string>{"--max-rtt-timeout", "50ms", "-T0"}}) {
    std::vector<std::string> args{"scan", "-sT", "-Pn", "-p", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back("127.0.0.1");
    const CmdResult r = portvigil(args);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
  }
}

TEST(Cli, TopLevelHelpExitsZero) {
  PV_REQUIRE_BINARY();
  const CmdResult r = portvigil({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_FALSE(r.out.empty()) << "--help printed nothing on stdout";
}

TEST(Cli, VersionExitsZero) {
  PV_REQUIRE_BINARY();
  const CmdResult r = portvigil({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(lower(r.out).find("portvigil"), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\d+\.\d+)"))) << r.out;
  // What portvigil_build_info says too: the commit and the compiler.
  EXPECT_TRUE(std::regex_search(
      r.out, std::regex(R"(\(revision ([0-9a-f]{12}|unknown), built with (GNU|Clang) [0-9.]+\))")))
      << r.out;
}

}  // namespace
