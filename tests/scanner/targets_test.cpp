#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "portvigil/scanner/targets.hpp"

namespace portvigil {
namespace {

const TargetParseOptions kNoDns{.resolve_names = false};

std::vector<std::string> all_targets(const TargetSet& set, std::size_t limit = 1000) {
  std::vector<std::string> out;
  auto c = set.cursor();
  Target t;
  while (out.size() < limit && c.next(t)) out.push_back(t.address.to_string());
  return out;
}

std::string error_of(auto&& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Ports, ListsRangesAndOpenEnds) {
  auto p = parse_ports("22,80,1000-1002", true, false);
  EXPECT_EQ(p.tcp, (std::vector<std::uint16_t>{22, 80, 1000, 1001, 1002}));
  EXPECT_TRUE(p.udp.empty());
  EXPECT_EQ(parse_ports("-", true, false).tcp.size(), 65535u);  // -p- means 1-65535
  EXPECT_EQ(parse_ports("-", true, false).tcp.front(), 1);
  EXPECT_EQ(parse_ports("0", true, false).tcp, std::vector<std::uint16_t>{0});
  EXPECT_EQ(parse_ports("65530-", true, false).tcp.size(), 6u);
  EXPECT_EQ(parse_ports("-3", true, false).tcp, (std::vector<std::uint16_t>{1, 2, 3}));
  EXPECT_EQ(parse_ports("80,80,79-81", true, false).tcp, (std::vector<std::uint16_t>{79, 80, 81}));
}

TEST(Ports, QualifiersAreSticky) {
  // Nmap: a qualifier lasts until the next one; unqualified ports go to every scanned proto.
  auto p = parse_ports("T:22,25,U:53,161,t:80", true, true);
  EXPECT_EQ(p.tcp, (std::vector<std::uint16_t>{22, 25, 80}));
  EXPECT_EQ(p.udp, (std::vector<std::uint16_t>{53, 161}));
  auto both = parse_ports("7,T:8", true, true);
  EXPECT_EQ(both.tcp, (std::vector<std::uint16_t>{7, 8}));
  EXPECT_EQ(both.udp, std::vector<std::uint16_t>{7});
}

TEST(Ports, BadInputSaysWhatAndWhere) {
  // The shared grammar's messages (the configuration says the same after FILE:LINE:COL).
  EXPECT_EQ(error_of([] { (void)parse_ports("70000", true, false); }),
            "-p: \"70000\": expected a port number from 0 to 65535 or a range such as "
            "1000-2000, got \"70000\"");
  EXPECT_EQ(error_of([] { (void)parse_ports("5-3", true, false); }),
            "-p: \"5-3\": port range \"5-3\" is reversed; expected start <= end");
  EXPECT_NE(error_of([] { (void)parse_ports("22,,80", true, false); }).find("between commas"),
            std::string::npos);
  EXPECT_NE(error_of([] { (void)parse_ports("abc", true, false); }).find("got \"abc\""),
            std::string::npos);
  EXPECT_NE(error_of([] { (void)parse_ports("X:22", true, false); }).find("qualifier"),
            std::string::npos);
  EXPECT_NE(
      error_of([] { (void)parse_ports("99999999999999999999", true, false); }).find("0 to 65535"),
      std::string::npos);
  EXPECT_NE(error_of([] { (void)parse_ports("", true, false); }).find("expected a port list"),
            std::string::npos);
  EXPECT_EQ(error_of([] { (void)parse_ports(std::string_view("22\0,23", 6), true, false); }),
            "-p: \"22\\x00,23\": expected text without NUL bytes");
}

TEST(Ports, TopPortsAndExclusion) {
  auto p = top_ports(100, true, false);
  EXPECT_EQ(p.tcp.size(), 100u);
  EXPECT_TRUE(std::is_sorted(p.tcp.begin(), p.tcp.end()));
  EXPECT_TRUE(std::binary_search(p.tcp.begin(), p.tcp.end(), 80));
  EXPECT_EQ(top_ports(1000, true, false).tcp.size(), 1000u);
  EXPECT_NE(error_of([] { (void)top_ports(0, true, false); }).find("at least 1"),
            std::string::npos);
  exclude_ports(p, parse_ports("80", true, false));
  EXPECT_EQ(p.tcp.size(), 99u);
  EXPECT_FALSE(std::binary_search(p.tcp.begin(), p.tcp.end(), 80));
  EXPECT_EQ(format_port_ranges({1, 2, 3, 5, 7, 8}), "1-3,5,7-8");
  EXPECT_EQ(format_port_ranges({}), "");
}

TEST(Targets, AddressesCidrsAndRanges) {
  TargetSet set;
  set.add("198.18.0.1-3", kNoDns);
  set.add("198.18.1.0/30", kNoDns);
  set.add("2001:db8::/127", kNoDns);
  set.add("127.0.0.1", kNoDns);
  EXPECT_EQ(all_targets(set),
            (std::vector<std::string>{"198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.1.0",
                                      "198.18.1.1", "198.18.1.2", "198.18.1.3",
                                      "2001:db8::", "2001:db8::1", "127.0.0.1"}));
  EXPECT_EQ(set.size_hint(), 10u);
}

TEST(Targets, OctetExpressions) {
  TargetSet set;
  set.add("198.18-19.0.1,5-6", kNoDns);
  EXPECT_EQ(all_targets(set), (std::vector<std::string>{"198.18.0.1", "198.18.0.5", "198.18.0.6",
                                                        "198.19.0.1", "198.19.0.5", "198.19.0.6"}));
  TargetSet star;
  star.add("198.18.0.*", kNoDns);
  EXPECT_EQ(star.size_hint(), 256u);
  EXPECT_EQ(all_targets(star).back(), "198.18.0.255");
  TargetSet top;
  top.add("255.255.255.254-255", kNoDns);  // iteration stops at the top of the space
  EXPECT_EQ(all_targets(top), (std::vector<std::string>{"255.255.255.254", "255.255.255.255"}));
}

TEST(Targets, ExclusionsAndLargeSetsAreLazy) {
  TargetSet set;
  set.add("198.18.0.0/15", kNoDns);  // 131072 addresses, iterated lazily
  set.exclude("198.18.0.0/24", kNoDns);
  set.exclude("198.18.1.1", kNoDns);
  EXPECT_EQ(set.size_hint(), 131072u);
  auto first = all_targets(set, 3);
  EXPECT_EQ(first, (std::vector<std::string>{"198.18.1.0", "198.18.1.2", "198.18.1.3"}));
  std::size_t n = 0;
  auto c = set.cursor();
  Target t;
  while (c.next(t)) ++n;
  EXPECT_EQ(n, 131072u - 256u - 1u);

  TargetSet v6;
  v6.add("2001:db8::/32", kNoDns);  // 2^96 addresses: must not be materialised
  EXPECT_EQ(v6.size_hint(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(all_targets(v6, 2), (std::vector<std::string>{"2001:db8::", "2001:db8::1"}));
}

TEST(Targets, AShardKeepsTheHostsItsHashmodSelects) {
  // 198.18.0.1 -> 1, .2 -> 2 of 3 (tests/common/shard_test.cpp); the shards of one count
  // split the targets, exclusions still apply, and a hostname target is keyed by its name.
  std::vector<std::string> seen;
  for (std::uint32_t i = 0; i < 3; ++i) {
    TargetSet set;
    set.add("198.18.0.0/24", kNoDns);
    set.exclude("198.18.0.3", kNoDns);
    set.select(Shard{i, 3});
    const auto part = all_targets(set);
    EXPECT_GT(part.size(), 50u) << "shard " << i;
    for (const auto& a : part) {
      EXPECT_EQ(prometheus_hashmod(a, 3), i) << a;
      EXPECT_NE(a, "198.18.0.3");
    }
    EXPECT_EQ(std::count(part.begin(), part.end(), "198.18.0.1"), i == 1 ? 1 : 0);
    EXPECT_EQ(std::count(part.begin(), part.end(), "198.18.0.2"), i == 2 ? 1 : 0);
    seen.insert(seen.end(), part.begin(), part.end());
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end()) << "shards overlap";
  EXPECT_EQ(seen.size(), 255u) << "shards leave hosts out";

  TargetSet named;
  named.add_target(Target{asio::ip::make_address("198.18.0.1"), "db1.lab.invalid"});
  named.select(Shard{1, 3});  // the address's shard, not the name's
  EXPECT_TRUE(all_targets(named).empty());
  named.select(Shard{3, 5});  // "db1.lab.invalid" -> 3 of 5
  EXPECT_EQ(all_targets(named), std::vector<std::string>{"198.18.0.1"});
}

TEST(Targets, BadInputSaysWhatAndWhere) {
  EXPECT_EQ(error_of([] { (void)parse_target("300.1.1.1", kNoDns); }),
            "target: \"300.1.1.1\": expected octets 0-255, ranges such as 1-20 or *, got \"300\"");
  EXPECT_EQ(error_of([] { (void)parse_target("198.18.0.0/33", kNoDns); }),
            "target: \"198.18.0.0/33\": expected an IPv4 prefix length from 0 to 32, got \"33\"");
  EXPECT_EQ(error_of([] { (void)parse_target("2001:db8::/129", kNoDns); }),
            "target: \"2001:db8::/129\": expected an IPv6 prefix length from 0 to 128, got "
            "\"129\"");
  EXPECT_NE(error_of([] {
              (void)parse_target("2001:db8::zz", kNoDns);
            }).find("expected an IPv6 address, got \"2001:db8::zz\""),
            std::string::npos);
  EXPECT_NE(error_of([] { (void)parse_target("fe80::1%eth0", kNoDns); }).find("zone id"),
            std::string::npos);
  EXPECT_NE(error_of([] { (void)parse_target("198.18.0", kNoDns); }).find("4 dot-separated"),
            std::string::npos);
  EXPECT_NE(error_of([] { (void)parse_target("198.18.0.9-3", kNoDns); }).find("reversed"),
            std::string::npos);
  EXPECT_EQ(error_of([] { (void)parse_target("localhost", kNoDns); }),
            "target \"localhost\": is a hostname, but -n disables DNS resolution");
  EXPECT_NE(error_of([] { (void)parse_target("bad host!", kNoDns); }).find("expected an address"),
            std::string::npos);
  EXPECT_NE(
      error_of([] { (void)parse_target("-dash.example", kNoDns); }).find("expected an address"),
      std::string::npos);
  // A -iL file can hold a NUL; the text after it must not be silently dropped.
  EXPECT_EQ(error_of([] { (void)parse_target(std::string_view("198.18.0.1\0evil", 15), kNoDns); }),
            "target: \"198.18.0.1\\x00evil\": expected text without NUL bytes");
  EXPECT_EQ(error_of([] { (void)parse_cidr(std::string_view("198.18.0.0/24\0x", 15)); }),
            "network: \"198.18.0.0/24\\x00x\": expected text without NUL bytes");
  // --scope and authorizations name networks by their network address, as the config does.
  EXPECT_EQ(error_of([] { (void)parse_cidr("198.18.0.5/24"); }),
            "network: \"198.18.0.5/24\" has host bits set; expected the network address "
            "\"198.18.0.0/24\"");
}

TEST(Targets, HostnamesResolveOnce) {
  const auto spec = parse_target("localhost", TargetParseOptions{});
  EXPECT_EQ(spec.hostname, "localhost");
  ASSERT_EQ(spec.range.size(), 1u);
  const auto a = from_uint128(spec.range.first, spec.range.v6);
  EXPECT_TRUE(a.is_loopback()) << a.to_string();
}

TEST(Targets, FilesNameTheLine) {
  const std::string path = testing::TempDir() + "/targets.txt";
  {
    std::ofstream f(path);
    f << "# lab hosts\n198.18.0.1 198.18.0.2  # two\n\n198.18.0.300\n";
  }
  TargetSet set;
  const auto msg = error_of([&] { set.add_file(path, kNoDns); });
  EXPECT_EQ(msg,
            "-iL " + path +
                " line 4: target: \"198.18.0.300\": expected octets 0-255, ranges such as 1-20 "
                "or *, got \"300\"");
  TargetSet ok;
  {
    std::ofstream f(path);
    f << "198.18.0.1\n198.18.0.2\n";
  }
  ok.add_file(path, kNoDns);
  EXPECT_EQ(all_targets(ok), (std::vector<std::string>{"198.18.0.1", "198.18.0.2"}));
  EXPECT_NE(error_of([&] { ok.add_file(path + ".missing", kNoDns); }).find("cannot open file"),
            std::string::npos);
  std::remove(path.c_str());
}

TEST(Scope, ContainsOnlyItsNetworks) {
  const auto scope = AuthorizedScope::parse("198.18.0.0/15, 2001:db8::/32");
  EXPECT_TRUE(scope.contains(asio::ip::make_address("198.19.255.255")));
  EXPECT_FALSE(scope.contains(asio::ip::make_address("198.20.0.0")));
  EXPECT_TRUE(scope.contains(asio::ip::make_address("2001:db8:1::5")));
  EXPECT_FALSE(scope.contains(asio::ip::make_address("2001:db9::")));
  EXPECT_FALSE(scope.contains(asio::ip::make_address("127.0.0.1")));
  EXPECT_NE(error_of([] { (void)AuthorizedScope::parse(""); }).find("no network"),
            std::string::npos);
  TargetSet set;
  set.add("198.18.0.1-3", kNoDns);
  set.add("2001:db8::5", kNoDns);
  const auto cover = set.covering_scope();
  EXPECT_TRUE(cover.contains(asio::ip::make_address("198.18.0.2")));
  EXPECT_FALSE(cover.contains(asio::ip::make_address("198.18.0.4")));
  EXPECT_TRUE(cover.contains(asio::ip::make_address("2001:db8::5")));
  EXPECT_FALSE(cover.contains(asio::ip::make_address("2001:db8::6")));
}

// ---- exclusions are skipped whole (issue #11) ---------------------------------------------

TargetSet set_of(std::initializer_list<const char*> targets,
                 std::initializer_list<const char*> excludes) {
  TargetSet set;
  for (const auto* t : targets) set.add(t, kNoDns);
  for (const auto* x : excludes) set.exclude(x, kNoDns);
  return set;
}

// "2001:db8::/32 --exclude 2001:db8::/32" spun for 10 minutes, deaf to SIGINT.
TEST(TargetExclusions, CoveringEverythingEndsAtOnce) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(all_targets(set_of({"2001:db8::/32"}, {"2001:db8::/32"})).empty());
  EXPECT_TRUE(all_targets(set_of({"::/0"}, {"::/1", "8000::/1"})).empty());
  EXPECT_TRUE(all_targets(set_of({"0.0.0.0/0"}, {"*.*.*.*"})).empty());
  EXPECT_TRUE(all_targets(set_of({"10.0-255.*.*"}, {"10.0.0.0/8"})).empty());
  EXPECT_TRUE(all_targets(set_of({"10.0.0.0/8"}, {"10.*.*.*"})).empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(TargetExclusions, WholeRangesAreSkipped) {
  EXPECT_EQ(all_targets(set_of({"10.0.0.0/8"}, {"10.0.0.0/9"}), 2),
            (std::vector<std::string>{"10.128.0.0", "10.128.0.1"}));
  EXPECT_EQ(all_targets(set_of({"2001:db8::/32"}, {"2001:db8::/33"}), 1),
            (std::vector<std::string>{"2001:db8:8000::"}));
  EXPECT_EQ(all_targets(set_of({"10.0.0.0/16"}, {"10.0.0-254.*"}), 2),
            (std::vector<std::string>{"10.0.255.0", "10.0.255.1"}));
  EXPECT_EQ(all_targets(set_of({"198.18.0.0/24"}, {"*.*.*.1-254"})),
            (std::vector<std::string>{"198.18.0.0", "198.18.0.255"}));
  EXPECT_EQ(all_targets(set_of({"10.0-255.*.*"}, {"10.0.0.0/9"}), 1),
            (std::vector<std::string>{"10.128.0.0"}));
  // An odd octet prefix carries correctly (10.1.255.x runs into 10.2.0.0).
  EXPECT_EQ(all_targets(set_of({"10.1.255.250-255", "10.2.0.0-1"}, {"10.1.255.*"})),
            (std::vector<std::string>{"10.2.0.0", "10.2.0.1"}));
  EXPECT_EQ(all_targets(set_of({"10.1.0.0/16", "10.2.0.0/31"}, {"10.1.*.*", "10.2.0.0"})),
            (std::vector<std::string>{"10.2.0.1"}));
  // Overlapping exclusions of both kinds, and the next spec after an exhausted one.
  EXPECT_EQ(all_targets(set_of({"198.18.0.0/24", "198.18.1.7"},
                               {"198.18.0.0/25", "198.18.0.128-254", "198.18.0.100/32"})),
            (std::vector<std::string>{"198.18.0.255", "198.18.1.7"}));
}

TEST(TargetExclusions, StopFlagEndsALongSkip) {
  // Every /24 of 10.0-254 is excluded by two halves: 2^17 skips before 10.255.0.0.
  const auto set = set_of({"10.0.0.0/8"}, {"10.0-254.*.0-127", "10.0-254.*.128-255"});
  Target t;
  auto free_run = set.cursor();
  ASSERT_TRUE(free_run.next(t));
  EXPECT_EQ(t.address.to_string(), "10.255.0.0");
  std::atomic<bool> stop{true};
  auto stopped = set.cursor();
  stopped.set_stop(&stop);
  EXPECT_FALSE(stopped.next(t));
}

}  // namespace
}  // namespace portvigil
