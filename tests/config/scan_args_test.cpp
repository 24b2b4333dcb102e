// `portvigil scan` argument parsing, called directly: Nmap's habits (-T, -v, -oA, -6) and
// their mistakes.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "portvigil/config/cli.hpp"

namespace portvigil {
namespace {

ScanArgs parse(std::vector<std::string_view> args) {
  return parse_scan_args(args);
}

std::string error_of(std::vector<std::string_view> args) {
  try {
    (void)parse(std::move(args));
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(ScanArgs, TimingTemplatesByNumberAndName) {
  EXPECT_EQ(parse({"-T4", "127.0.0.1"}).timing_template, 4);
  EXPECT_EQ(parse({"-T", "0", "127.0.0.1"}).timing_template, 0);
  EXPECT_EQ(parse({"-TInsane", "127.0.0.1"}).timing_template, 5);
  EXPECT_EQ(parse({"-T", "polite", "127.0.0.1"}).timing_template, 2);
  EXPECT_FALSE(parse({"127.0.0.1"}).timing_template);
}

TEST(ScanArgs, BadTimingTemplatesAreRefusedWithTheValue) {
  EXPECT_EQ(error_of({"-T6", "127.0.0.1"}),
            "-T: \"6\" is not a timing template (expected 0-5 or paranoid, sneaky, polite, "
            "normal, aggressive, insane)");
  EXPECT_NE(error_of({"-T", "44", "127.0.0.1"}).find("\"44\""), std::string::npos);
  EXPECT_NE(error_of({"-Tfast", "127.0.0.1"}).find("\"fast\""), std::string::npos);
  EXPECT_EQ(error_of({"127.0.0.1", "-T"}), "-T: missing 0-5");
}

TEST(ScanArgs, IdentifyIsAFlag) {
  EXPECT_FALSE(parse({"127.0.0.1"}).identify);
  EXPECT_TRUE(parse({"--identify", "-p", "22", "127.0.0.1"}).identify);
  EXPECT_NE(error_of({"--identify=yes", "127.0.0.1"}), "");
  EXPECT_NE(scan_usage().find("--identify"), std::string::npos);
}

TEST(ScanArgs, UdpPace) {
  EXPECT_FALSE(parse({"-sU", "127.0.0.1"}).udp_pace.has_value());
  const auto on = parse({"-sU", "--udp-pace", "auto", "127.0.0.1"}).udp_pace;
  ASSERT_TRUE(on.has_value());
  EXPECT_TRUE(on->enabled);
  EXPECT_EQ(on->period, kDefaultUdpPacePeriod);
  const auto slow = parse({"-sU", "--udp-pace", "2s", "127.0.0.1"}).udp_pace;
  EXPECT_EQ(slow->period, std::chrono::seconds(2));
  EXPECT_FALSE(parse({"-sU", "--udp-pace", "off", "127.0.0.1"}).udp_pace->enabled);
  EXPECT_EQ(error_of({"-sU", "--udp-pace", "fast", "127.0.0.1"}),
            "--udp-pace: \"fast\" is not \"auto\", \"off\" or a duration such as \"2s\"");
  EXPECT_EQ(error_of({"-sU", "--udp-pace", "9s", "127.0.0.1"}),
            "--udp-pace: \"9s\" is out of range (10ms to 8s per probe and host)");
  EXPECT_EQ(error_of({"-sU", "--udp-pace", "5", "127.0.0.1"}), "");  // seconds
  EXPECT_EQ(error_of({"-sU", "127.0.0.1", "--udp-pace"}), "--udp-pace: missing MODE");
}

TEST(ScanArgs, VerbosityCounts) {
  EXPECT_EQ(parse({"127.0.0.1"}).verbosity, 0);
  EXPECT_EQ(parse({"-v", "127.0.0.1"}).verbosity, 1);
  EXPECT_EQ(parse({"-vv", "127.0.0.1"}).verbosity, 2);
  EXPECT_EQ(parse({"-v", "-vv", "127.0.0.1"}).verbosity, 3);
  EXPECT_NE(error_of({"-vvvvv", "127.0.0.1"}).find("unknown option"), std::string::npos);
}

TEST(ScanArgs, OutputAllFillsTheThreeNmapFormats) {
  const auto a = parse({"-oA", "out/base", "127.0.0.1"});
  EXPECT_EQ(a.out_normal, "out/base.nmap");
  EXPECT_EQ(a.out_xml, "out/base.xml");
  EXPECT_EQ(a.out_grep, "out/base.gnmap");
  EXPECT_FALSE(a.out_json);
  // An explicit -oX wins, before or after -oA.
  EXPECT_EQ(parse({"-oX", "-", "-oA", "b", "127.0.0.1"}).out_xml, "-");
  EXPECT_EQ(parse({"-oA", "b", "-oX", "x.xml", "127.0.0.1"}).out_xml, "x.xml");
  EXPECT_EQ(error_of({"-oA", "-", "127.0.0.1"}),
            "-oA: needs a file name base (BASE.nmap, BASE.xml, BASE.gnmap), not \"-\"");
  EXPECT_NE(error_of({"-oA=", "127.0.0.1"}).find("unknown option"), std::string::npos);
}

TEST(ScanArgs, DashSixIsAcceptedAndChangesNothing) {
  const auto a = parse({"-6", "::1"});
  EXPECT_EQ(a.targets, (std::vector<std::string>{"::1"}));
  EXPECT_EQ(parse({"-6", "127.0.0.1"}).targets, (std::vector<std::string>{"127.0.0.1"}));
}

TEST(ScanArgs, FlagsStillRefuseGluedValues) {
  EXPECT_NE(error_of({"-Pnx", "127.0.0.1"}).find("unknown option"), std::string::npos);
  EXPECT_NE(error_of({"-6x", "127.0.0.1"}).find("unknown option"), std::string::npos);
}

}  // namespace
}  // namespace portvigil
