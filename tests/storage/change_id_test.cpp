// Change ids (schema v6): replicas that saw the same history give each change the same id,
// a port that changes again gets a new one, and no id is handed out twice.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "portvigil/common/shard.hpp"
#include "portvigil/storage/store.hpp"
#include "storage_test_util.hpp"

namespace portvigil {
namespace {

using test::at;
using test::make_host;

std::vector<ChangeEvent> commit(Store& s, std::int64_t t, const HostResult& h,
                                CommitOptions options = {}) {
  const auto id = s.begin_scan("j", Technique::syn, at(t));
  std::vector<ScannedHost> hosts{ScannedHost::from(h, Technique::syn)};
  return s.commit_scan(id, hosts, {}, at(t + 1), {}, options);
}

HostResult host_with_22(PortState state) {
  return make_host("h", 1, 100, PortState::closed, {{22, state}});
}

// Values computed independently (Python: hashlib.sha256 over the NUL-joined fields).
TEST(ChangeId, IsSha256OfTheFieldsJoinedByNul) {
  EXPECT_EQ(change_id("web", "198.18.0.7", "port", "tcp", 22, "closed", "open", 0),
            "3c38cf2ff8c43cacead19dbc3c7b7594");
  EXPECT_EQ(change_id("web", "198.18.0.7", "host-appeared", "", 0, "absent", "up", 3),
            "336878c7a1131357c638530c9de349ac");
  // Fields cannot run into each other: "ab"+"c" is not "a"+"bc".
  EXPECT_NE(change_id("ab", "c", "port", "tcp", 1, "a", "b", 0),
            change_id("a", "bc", "port", "tcp", 1, "a", "b", 0));
}

TEST(ChangeId, ReplicasWithTheSameHistoryAgreeAndAFlapGetsANewId) {
  Store a = Store::open(":memory:");
  Store b = Store::open(":memory:");
  std::vector<std::string> ids_a;
  std::vector<std::string> ids_b;
  const PortState sequence[] = {PortState::closed, PortState::open, PortState::closed,
                                PortState::open};
  std::int64_t t = 0;
  for (const PortState state : sequence) {
    // The replicas scan at different moments; only the history counts.
    for (const auto& e : commit(a, t, host_with_22(state))) ids_a.push_back(e.change_id);
    for (const auto& e : commit(b, t + 7, host_with_22(state))) ids_b.push_back(e.change_id);
    t += 100;
  }
  ASSERT_EQ(ids_a.size(), 3u);  // opened, closed, opened again
  EXPECT_EQ(ids_a, ids_b);
  EXPECT_EQ(std::set<std::string>(ids_a.begin(), ids_a.end()).size(), 3u)
      << "the second opening must not look like a duplicate of the first";
  EXPECT_EQ(ids_a[0], change_id("j", "h", "port", "tcp", 22, "closed", "open", 0));
  EXPECT_EQ(ids_a[2], change_id("j", "h", "port", "tcp", 22, "closed", "open", 2));
  // What the store returns later (and the event log prints) carries the same ids.
  const auto stored = a.events_after(0, 100);
  ASSERT_EQ(stored.size(), 3u);
  for (std::size_t i = 0; i < stored.size(); ++i) EXPECT_EQ(stored[i].change_id, ids_a[i]);
}

// A replica that missed a change numbers the next ones differently: the consumer then gets
// both copies (never fewer events).
TEST(ChangeId, AReplicaThatMissedAChangeDisagreesFromThenOn) {
  Store a = Store::open(":memory:");
  Store b = Store::open(":memory:");
  commit(a, 0, host_with_22(PortState::closed));
  commit(a, 100, host_with_22(PortState::open));
  commit(b, 150, host_with_22(PortState::open));  // b's baseline already has 22 open
  const auto from_a = commit(a, 200, host_with_22(PortState::closed));
  const auto from_b = commit(b, 200, host_with_22(PortState::closed));
  ASSERT_EQ(from_a.size(), 1u);
  ASSERT_EQ(from_b.size(), 1u);
  EXPECT_NE(from_a[0].change_id, from_b[0].change_id);
}

TEST(ChangeId, PruningTheEventsNeverReusesAnId) {
  Store s = Store::open(":memory:");
  commit(s, 0, host_with_22(PortState::closed));
  const auto first = commit(s, 100, host_with_22(PortState::open));
  commit(s, 200, host_with_22(PortState::closed));
  Retention r;
  r.events = std::chrono::seconds(0);
  s.prune(r, at(10'000));
  ASSERT_TRUE(s.events_after(0, 100).empty());
  const auto again = commit(s, 10'100, host_with_22(PortState::open));
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_NE(again[0].change_id, first[0].change_id);
  EXPECT_EQ(again[0].change_id, change_id("j", "h", "port", "tcp", 22, "closed", "open", 2));
}

// A host a resharding adopts starts counting again, as its new shard's other replica does.
TEST(ChangeId, AnAdoptedHostCountsFromZero) {
  Store s = Store::open(":memory:");
  commit(s, 0, host_with_22(PortState::closed));
  commit(s, 100, host_with_22(PortState::open));
  auto moved = ScannedHost::from(host_with_22(PortState::closed), Technique::syn);
  moved.adopted = true;
  const auto scan = s.begin_scan("j", Technique::syn, at(200));
  std::vector<ScannedHost> hosts{moved};
  EXPECT_TRUE(s.commit_scan(scan, hosts, {}, at(201), {}, {.shard = "0/2"}).empty());
  const auto next = commit(s, 300, host_with_22(PortState::open), {.shard = "0/2"});
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].change_id, change_id("j", "h", "port", "tcp", 22, "closed", "open", 0));
}

TEST(ChangeId, HostEventsHaveIdsToo) {
  Store s = Store::open(":memory:");
  commit(s, 0, make_host("first", 1, 10, PortState::closed));  // the job's baseline
  const auto events =
      commit(s, 100, make_host("h", 1, 100, PortState::closed, {{22, PortState::open}}));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].change_id, change_id("j", "h", "port", "tcp", 22, "absent", "open", 0));
  EXPECT_EQ(events[1].kind, EventKind::host_appeared);
  EXPECT_EQ(events[1].change_id, change_id("j", "h", "host-appeared", "", 0, "absent", "up", 0));
}

}  // namespace
}  // namespace portvigil
