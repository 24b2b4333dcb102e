#include "portvigil/common/scan_model.hpp"

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace portvigil {
namespace {

constexpr std::size_t kTechniqueCount = 7;

TEST(ScanModelNames, ProtoRoundTrips) {
  for (const auto proto : {Proto::tcp, Proto::udp}) {
    const auto parsed = parse_proto(name(proto));
    ASSERT_TRUE(parsed.has_value()) << name(proto);
    EXPECT_EQ(*parsed, proto);
  }
  EXPECT_EQ(name(Proto::tcp), "tcp");
  EXPECT_EQ(name(Proto::udp), "udp");
  EXPECT_FALSE(parse_proto("TCP").has_value());
  EXPECT_FALSE(parse_proto("sctp").has_value());
  EXPECT_FALSE(parse_proto("").has_value());
}

TEST(ScanModelNames, PortStateRoundTripsForEveryValue) {
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < kPortStateCount; ++i) {
    const auto state = static_cast<PortState>(i);
    const auto text = name(state);
    EXPECT_FALSE(text.empty());
    EXPECT_TRUE(seen.insert(text).second) << "duplicate name " << text;
    const auto parsed = parse_port_state(text);
    ASSERT_TRUE(parsed.has_value()) << text;
    EXPECT_EQ(*parsed, state);
  }
  EXPECT_EQ(name(PortState::open), "open");
  EXPECT_EQ(name(PortState::closed), "closed");
  EXPECT_EQ(name(PortState::filtered), "filtered");
  EXPECT_EQ(name(PortState::unfiltered), "unfiltered");
  EXPECT_EQ(name(PortState::open_filtered), "open|filtered");
  EXPECT_EQ(name(PortState::closed_filtered), "closed|filtered");
  EXPECT_FALSE(parse_port_state("open_filtered").has_value());
  EXPECT_FALSE(parse_port_state("Open").has_value());
  EXPECT_FALSE(parse_port_state("").has_value());
}

TEST(ScanModelNames, ReasonRoundTripsForEveryValue) {
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < kReasonCount; ++i) {
    const auto reason = static_cast<Reason>(i);
    const auto text = name(reason);
    EXPECT_FALSE(text.empty());
    EXPECT_TRUE(seen.insert(text).second) << "duplicate name " << text;
    const auto parsed = parse_reason(text);
    ASSERT_TRUE(parsed.has_value()) << text;
    EXPECT_EQ(*parsed, reason);
  }
  EXPECT_EQ(name(Reason::unknown), "unknown");
  EXPECT_EQ(name(Reason::syn_ack), "syn-ack");
  EXPECT_EQ(name(Reason::reset), "reset");
  EXPECT_EQ(name(Reason::conn_refused), "conn-refused");
  EXPECT_EQ(name(Reason::no_response), "no-response");
  EXPECT_EQ(name(Reason::port_unreach), "port-unreach");
  EXPECT_EQ(name(Reason::admin_prohibited), "admin-prohibited");
  EXPECT_EQ(name(Reason::udp_response), "udp-response");
  EXPECT_EQ(name(Reason::local_prohibited), "local-prohibited");
  EXPECT_FALSE(parse_reason("syn_ack").has_value());
  EXPECT_FALSE(parse_reason("").has_value());
}

TEST(ScanModelNames, TechniqueNamesFlagsAndProtocols) {
  struct Expected {
    Technique technique;
    std::string_view name;
    std::string_view flag;
    Proto proto;
  };
  const std::vector<Expected> expected{
      {Technique::connect, "connect", "-sT", Proto::tcp},
      {Technique::syn, "syn", "-sS", Proto::tcp},
      {Technique::fin, "fin", "-sF", Proto::tcp},
      {Technique::null, "null", "-sN", Proto::tcp},
      {Technique::xmas, "xmas", "-sX", Proto::tcp},
      {Technique::ack, "ack", "-sA", Proto::tcp},
      {Technique::udp, "udp", "-sU", Proto::udp},
  };
  ASSERT_EQ(expected.size(), kTechniqueCount);
  std::set<std::string_view> names;
  std::set<std::string_view> flags;
  for (const auto& e : expected) {
    EXPECT_EQ(name(e.technique), e.name);
    EXPECT_EQ(cli_flag(e.technique), e.flag);
    EXPECT_EQ(proto_of(e.technique), e.proto);
    names.insert(name(e.technique));
    flags.insert(cli_flag(e.technique));
  }
  EXPECT_EQ(names.size(), kTechniqueCount);
  EXPECT_EQ(flags.size(), kTechniqueCount);
}

// The descriptor table: what silence means and what a re-probe can prove, per technique
// (Nmap's port-scanning techniques chapter).
TEST(TechniqueTable, FactsPerTechnique) {
  ASSERT_EQ(all_techniques().size(), kTechniqueCount);
  for (const auto& info : all_techniques()) {
    SCOPED_TRACE(std::string(info.name));
    EXPECT_EQ(parse_technique(info.name), info.technique);
    EXPECT_EQ(technique_names()[static_cast<std::size_t>(info.technique)], info.name);
    EXPECT_EQ(info.needs_raw_socket, info.technique != Technique::connect);
    const bool fin_like = info.technique == Technique::fin || info.technique == Technique::null ||
                          info.technique == Technique::xmas;
    EXPECT_EQ(info.open_port_answers, !fin_like);
    const bool open_is_silent = fin_like || info.technique == Technique::udp;
    EXPECT_EQ(info.silence, open_is_silent ? PortState::open_filtered : PortState::filtered);
    EXPECT_EQ(info.silence_means_down, !open_is_silent);
    EXPECT_FALSE(info.help.empty());
    // Service identification needs TCP ports found open: connect and SYN only.
    EXPECT_EQ(finds_open_tcp_ports(info.technique),
              info.technique == Technique::connect || info.technique == Technique::syn);
  }
  EXPECT_FALSE(parse_technique("SYN").has_value());
  EXPECT_FALSE(parse_technique("").has_value());
}

// --- majority_state -------------------------------------------------------------------

void add(HostResult& host, Proto proto, PortState state, Reason reason, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    PortResult p;
    p.port = static_cast<std::uint16_t>(host.ports.size() + 1);
    p.proto = proto;
    p.state = state;
    p.reason = reason;
    host.ports.push_back(p);
  }
}

using ReasonTally = std::vector<std::pair<Reason, std::size_t>>;

TEST(MajorityState, NoPortsOfProtocolIsEmpty) {
  HostResult host;
  EXPECT_FALSE(majority_state(host, Proto::tcp).has_value());
  EXPECT_FALSE(majority_state(host, Proto::udp).has_value());
  add(host, Proto::udp, PortState::open_filtered, Reason::no_response, 3);
  EXPECT_FALSE(majority_state(host, Proto::tcp).has_value());
  EXPECT_TRUE(majority_state(host, Proto::udp).has_value());
}

TEST(MajorityState, PicksTheLargestStateAndIgnoresOtherProtocol) {
  HostResult host;
  add(host, Proto::tcp, PortState::closed, Reason::conn_refused, 40);
  add(host, Proto::tcp, PortState::open, Reason::syn_ack, 3);
  add(host, Proto::tcp, PortState::filtered, Reason::no_response, 5);
  add(host, Proto::udp, PortState::filtered, Reason::no_response, 100);
  const auto m = majority_state(host, Proto::tcp);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->state, PortState::closed);
  EXPECT_EQ(m->count, 40U);
  EXPECT_EQ(m->reasons, (ReasonTally{{Reason::conn_refused, 40}}));
  EXPECT_TRUE(m->collapsed());

  const auto u = majority_state(host, Proto::udp);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->state, PortState::filtered);
  EXPECT_EQ(u->count, 100U);
  EXPECT_EQ(u->reasons, (ReasonTally{{Reason::no_response, 100}}));
}

TEST(MajorityState, TieGoesToLowerEnumValue) {
  HostResult host;
  add(host, Proto::tcp, PortState::filtered, Reason::no_response, 4);
  add(host, Proto::tcp, PortState::closed, Reason::reset, 4);
  auto m = majority_state(host, Proto::tcp);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->state, PortState::closed);  // closed (1) < filtered (2)
  EXPECT_EQ(m->count, 4U);

  add(host, Proto::tcp, PortState::open, Reason::syn_ack, 4);
  m = majority_state(host, Proto::tcp);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->state, PortState::open);  // three-way tie: open (0) wins
  EXPECT_EQ(m->reasons, (ReasonTally{{Reason::syn_ack, 4}}));

  HostResult late;  // order of ports in the host does not matter
  add(late, Proto::udp, PortState::closed_filtered, Reason::unknown, 2);
  add(late, Proto::udp, PortState::open_filtered, Reason::no_response, 2);
  const auto u = majority_state(late, Proto::udp);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->state, PortState::open_filtered);
}

TEST(MajorityState, ReasonsLargestFirstTiesInEnumOrderZerosOmitted) {
  HostResult host;
  add(host, Proto::tcp, PortState::filtered, Reason::host_unreach, 2);
  add(host, Proto::tcp, PortState::filtered, Reason::no_response, 10);
  add(host, Proto::tcp, PortState::filtered, Reason::admin_prohibited, 5);
  add(host, Proto::tcp, PortState::filtered, Reason::net_unreach, 5);
  add(host, Proto::tcp, PortState::filtered, Reason::unknown, 2);
  add(host, Proto::tcp, PortState::closed, Reason::reset, 3);  // not the majority state
  const auto m = majority_state(host, Proto::tcp);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->state, PortState::filtered);
  EXPECT_EQ(m->count, 24U);
  const ReasonTally expected{
      {Reason::no_response, 10},
      {Reason::net_unreach, 5},       // ties keep enum order: net_unreach (6) ...
      {Reason::admin_prohibited, 5},  // ... before admin_prohibited (9)
      {Reason::unknown, 2},           // unknown (0) ...
      {Reason::host_unreach, 2},      // ... before host_unreach (5)
  };
  EXPECT_EQ(m->reasons, expected);
  for (const auto& [reason, count] : m->reasons) EXPECT_NE(count, 0U) << name(reason);
  EXPECT_FALSE(m->collapsed());  // 24 < kMinCollapsed
}

TEST(MajorityState, CollapsedThreshold) {
  HostResult host;
  add(host, Proto::tcp, PortState::closed, Reason::conn_refused, MajorityState::kMinCollapsed - 1);
  auto m = majority_state(host, Proto::tcp);
  ASSERT_TRUE(m.has_value());
  EXPECT_FALSE(m->collapsed());
  add(host, Proto::tcp, PortState::closed, Reason::conn_refused, 1);
  m = majority_state(host, Proto::tcp);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->count, MajorityState::kMinCollapsed);
  EXPECT_TRUE(m->collapsed());
}

TEST(MajorityState, SinglePort) {
  HostResult host;
  add(host, Proto::tcp, PortState::unfiltered, Reason::reset, 1);
  const auto m = majority_state(host, Proto::tcp);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->state, PortState::unfiltered);
  EXPECT_EQ(m->count, 1U);
  EXPECT_EQ(m->reasons, (ReasonTally{{Reason::reset, 1}}));
}

}  // namespace
}  // namespace portvigil
