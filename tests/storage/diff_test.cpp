#include "portvigil/storage/diff.hpp"

#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "storage_test_util.hpp"

namespace portvigil {
namespace {

using test::make_host;
using test::typical_reason;

constexpr std::array<PortState, kPortStateCount> kStates{
    PortState::open,       PortState::closed,        PortState::filtered,
    PortState::unfiltered, PortState::open_filtered, PortState::closed_filtered};

std::string ident(PortState s) {
  std::string out{name(s)};
  for (char& c : out) {
    if (c == '|') c = '_';
  }
  return out;
}

// --- Every transition among Nmap's six states -------------------------------------------

// How the baseline holds port 80: as the usual state of the host, or as an exception row.
enum class Held { usual, exception };

class TransitionTable : public ::testing::TestWithParam<std::tuple<PortState, PortState, Held>> {};

TEST_P(TransitionTable, ReportsExactlyTheStateChange) {
  const auto [from, to, held] = GetParam();
  // Filler for the other ports: the port's own state when held as usual, else another one.
  const PortState filler =
      held == Held::usual ? from
                          : (from == PortState::closed ? PortState::filtered : PortState::closed);
  const HostResult before = make_host("h", 1, 100, filler, {{80, from}});
  const HostSnapshot baseline = HostSnapshot::from_result(before, Technique::syn);
  ASSERT_EQ(baseline.find(Proto::tcp)->exceptions.size(), held == Held::usual ? 0u : 1u);

  const HostResult after = make_host("h", 1, 100, filler, {{80, to}});
  const std::vector<PortChange> expected =
      from == to ? std::vector<PortChange>{}
                 : std::vector<PortChange>{
                       {Proto::tcp, 80, from, typical_reason(from), to, typical_reason(to)}};
  EXPECT_EQ(diff_host(baseline, after), expected);
  // The compact path agrees.
  EXPECT_EQ(diff_snapshots(baseline, HostSnapshot::from_result(after, Technique::syn)), expected);
}

std::string transition_name(
    const ::testing::TestParamInfo<std::tuple<PortState, PortState, Held>>& param_info) {
  const auto& [from, to, held] = param_info.param;
  return ident(from) + "_to_" + ident(to) + (held == Held::usual ? "_usual" : "_exception");
}

INSTANTIATE_TEST_SUITE_P(AllStatePairs, TransitionTable,
                         ::testing::Combine(::testing::ValuesIn(kStates),
                                            ::testing::ValuesIn(kStates),
                                            ::testing::Values(Held::usual, Held::exception)),
                         transition_name);

// --- Named edge cases ----------------------------------------------------------------------

struct Case {
  const char* name;
  std::optional<HostResult> baseline;  // empty: no baseline yet
  HostResult scan;
  std::vector<PortChange> expected;
};

HostResult incomplete(HostResult h) {
  h.complete = false;
  h.note = "host timeout";
  return h;
}

HostResult with_udp(HostResult h, PortState state) {
  test::add_ports(h, 50, 60, state, Proto::udp);
  return h;
}

std::vector<Case> cases() {
  const auto base = make_host("h", 1, 1000, PortState::closed,
                              {{22, PortState::open}, {25, PortState::filtered}});
  return {
      {"no_baseline_is_silent",
       std::nullopt,
       make_host("h", 1, 1000, PortState::closed, {{22, PortState::open}, {80, PortState::open}}),
       {}},
      {"identical_scan", base, base, {}},
      {"usual_state_new_reason",
       base,
       make_host("h", 1, 1000, PortState::closed,
                 {{22, PortState::open},
                  {25, PortState::filtered},
                  {7, PortState::closed, Reason::conn_refused}}),
       {}},
      {"exception_state_new_reason",
       base,
       make_host("h", 1, 1000, PortState::closed,
                 {{22, PortState::open}, {25, PortState::filtered, Reason::admin_prohibited}}),
       {}},
      {"port_appears_in_scanned_set",
       base,
       make_host("h", 1, 1000, PortState::closed,
                 {{22, PortState::open}, {25, PortState::filtered}, {8080, PortState::open}}),
       {}},
      {"port_disappears_from_scanned_set",
       base,
       make_host("h", 23, 1000, PortState::closed, {{25, PortState::filtered}}),
       {}},
      {"protocol_appears", base, with_udp(base, PortState::open_filtered), {}},
      {"protocol_disappears", with_udp(base, PortState::open_filtered), base, {}},
      {"incomplete_scan_is_never_diffed",
       base,
       incomplete(make_host("h", 1, 1000, PortState::filtered)),
       {}},
      {"several_changes_in_scan_order",
       with_udp(base, PortState::open_filtered),
       [&] {
         auto h = make_host("h", 1, 1000, PortState::closed,
                            {{21, PortState::open}, {25, PortState::filtered}});
         test::add_ports(h, 50, 60, PortState::open_filtered, Proto::udp);
         h.ports[h.ports.size() - 8].state = PortState::open;  // udp 53
         h.ports[h.ports.size() - 8].reason = Reason::udp_response;
         return h;
       }(),
       {{Proto::tcp, 21, PortState::closed, Reason::reset, PortState::open, Reason::syn_ack},
        {Proto::tcp, 22, PortState::open, Reason::syn_ack, PortState::closed, Reason::reset},
        {Proto::udp, 53, PortState::open_filtered, Reason::no_response, PortState::open,
         Reason::udp_response}}},
  };
}

TEST(DiffCases, Table) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    const HostSnapshot baseline =
        c.baseline ? HostSnapshot::from_result(*c.baseline, Technique::syn) : HostSnapshot{};
    EXPECT_EQ(diff_host(baseline, c.scan), c.expected);
    const HostSnapshot after =
        c.scan.complete ? HostSnapshot::from_result(c.scan, Technique::syn) : HostSnapshot{};
    EXPECT_EQ(diff_snapshots(baseline, after), c.expected) << "diff_snapshots";
  }
}

// When the usual state itself changes, diff_snapshots walks every port both sides scanned.
TEST(DiffSnapshots, UsualStateFlipMatchesDiffHost) {
  const auto before = make_host("h", 1, 100, PortState::closed, {{22, PortState::open}});
  const auto after = make_host("h", 50, 150, PortState::filtered,
                               {{60, PortState::closed}, {70, PortState::open}});
  const auto base = HostSnapshot::from_result(before, Technique::syn);
  const auto exact = diff_host(base, after);
  EXPECT_EQ(exact.size(), 50u);  // 50..100 except 60, which stayed closed
  EXPECT_EQ(exact.front(), (PortChange{Proto::tcp, 50, PortState::closed, Reason::reset,
                                       PortState::filtered, Reason::no_response}));
  EXPECT_EQ(diff_snapshots(base, HostSnapshot::from_result(after, Technique::syn)), exact);
}

// --- Partial scans (udp-coverage) ---------------------------------------------------------

TEST(MergeSnapshots, AShareReplacesItsPortsAndTheRestHold) {
  const auto base = HostSnapshot::from_result(
      make_host("h", 1, 30, PortState::closed, {{7, PortState::open, Reason::unknown, Proto::udp}},
                Proto::udp),
      Technique::udp);
  // This scan verified 11-20 and 41-45: 15 opened, 41-45 are new to the state.
  const auto share = HostSnapshot::from_result(
      [] {
        auto h = make_host("h", 11, 20, PortState::closed,
                           {{15, PortState::open, Reason::unknown, Proto::udp}}, Proto::udp);
        auto more = make_host("h", 41, 45, PortState::open_filtered, {}, Proto::udp);
        h.ports.insert(h.ports.end(), more.ports.begin(), more.ports.end());
        return h;
      }(),
      Technique::udp);
  const auto merged = merge_snapshots(base, share);
  ASSERT_EQ(merged.protos.size(), 1u);
  EXPECT_EQ(merged.protos[0].scanned, (std::vector<PortRange>{{1, 30}, {41, 45}}));
  EXPECT_EQ(merged.state_of(Proto::udp, 7)->state, PortState::open) << "not verified: holds";
  EXPECT_EQ(merged.state_of(Proto::udp, 15)->state, PortState::open);
  EXPECT_EQ(merged.state_of(Proto::udp, 16)->state, PortState::closed);
  EXPECT_EQ(merged.state_of(Proto::udp, 43)->state, PortState::open_filtered);
  // The diff sees the share's change only; ports new to the state are not changes.
  const auto changes = diff_snapshots(base, merged);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].port, 15);
  // No base, or another technique: the share alone.
  EXPECT_EQ(merge_snapshots(HostSnapshot{}, share).protos.at(0).scanned, share.protos[0].scanned);
  const auto tcp_base =
      HostSnapshot::from_result(make_host("h", 1, 30, PortState::closed), Technique::syn);
  const auto both = merge_snapshots(tcp_base, share);
  ASSERT_EQ(both.protos.size(), 2u);
  EXPECT_EQ(both.protos[0].proto, Proto::tcp) << "a protocol the share lacks holds";
  EXPECT_EQ(both.protos[1].scanned, share.protos[0].scanned);
}

// --- The compact snapshot ------------------------------------------------------------------

TEST(HostSnapshot, AllPortsClosedButThreeIsThreeExceptions) {
  const auto h =
      make_host("h", 1, 65535, PortState::closed,
                {{22, PortState::open}, {443, PortState::open}, {65535, PortState::open}});
  const auto snap = HostSnapshot::from_result(h, Technique::connect);
  ASSERT_EQ(snap.protos.size(), 1u);
  const ProtoSnapshot& tcp = snap.protos[0];
  EXPECT_EQ(tcp.scanned, (std::vector<PortRange>{{1, 65535}}));
  EXPECT_EQ(tcp.port_count(), 65535u);
  EXPECT_EQ(tcp.usual, (PortObservation{PortState::closed, Reason::reset}));
  ASSERT_EQ(tcp.exceptions.size(), 3u);
  EXPECT_EQ(snap.state_of(Proto::tcp, 443), (PortObservation{PortState::open, Reason::syn_ack}));
  EXPECT_EQ(snap.state_of(Proto::tcp, 444), (PortObservation{PortState::closed, Reason::reset}));
  EXPECT_EQ(snap.state_of(Proto::udp, 443), std::nullopt);
}

TEST(HostSnapshot, ScannedSetKeepsGapsAndUsualReasonIsTheMajority) {
  HostResult h;
  for (const std::uint16_t p : std::initializer_list<std::uint16_t>{1, 2, 3, 10, 12, 13}) {
    h.ports.push_back({p, Proto::tcp, PortState::filtered,
                       p == 1 ? Reason::admin_prohibited : Reason::no_response, 0});
  }
  const auto snap = HostSnapshot::from_result(h, Technique::syn);
  const ProtoSnapshot& tcp = snap.protos.at(0);
  EXPECT_EQ(tcp.scanned, (std::vector<PortRange>{{1, 3}, {10, 10}, {12, 13}}));
  EXPECT_EQ(tcp.usual, (PortObservation{PortState::filtered, Reason::no_response}));
  EXPECT_TRUE(tcp.exceptions.empty());  // reason-only differences are not stored
  EXPECT_EQ(snap.state_of(Proto::tcp, 11), std::nullopt);
  EXPECT_EQ(snap.state_of(Proto::tcp, 0), std::nullopt);
  EXPECT_EQ(snap.state_of(Proto::tcp, 14), std::nullopt);
  EXPECT_TRUE(snap.state_of(Proto::tcp, 12).has_value());
}

TEST(HostSnapshot, DuplicatePortLastWins) {
  HostResult h;
  h.ports.push_back({5, Proto::tcp, PortState::closed, Reason::reset, 0});
  h.ports.push_back({6, Proto::tcp, PortState::closed, Reason::reset, 0});
  h.ports.push_back({5, Proto::tcp, PortState::open, Reason::syn_ack, 0});
  const auto snap = HostSnapshot::from_result(h, Technique::syn);
  EXPECT_EQ(snap.state_of(Proto::tcp, 5)->state, PortState::open);
}

TEST(HostSnapshot, EmptyResultIsAnExistingBaselineWithNoProtocols) {
  const auto snap = HostSnapshot::from_result(HostResult{}, Technique::syn);
  EXPECT_TRUE(snap.exists);
  EXPECT_TRUE(snap.protos.empty());
}

TEST(HostKey, PrefersWhatTheUserWrote) {
  HostResult h;
  h.address = asio::ip::make_address("2001:db8::1");
  EXPECT_EQ(host_key(h), "2001:db8::1");
  h.hostname = "web.example";
  EXPECT_EQ(host_key(h), "web.example");
}

}  // namespace
}  // namespace portvigil
