// Change ids (schema v6): replicas that saw the same history give each change the same id,
// a port that changes again gets a new one, and replicas whose histories differed keep
// apart.
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
  EXPECT_EQ(change_id("web", "198.18.0.7", "port", "tcp", 22, "closed", "open", ""),
            "456870758ca3e9b2620d6b2436545a03");
  EXPECT_EQ(
      change_id("web", "198.18.0.7", "host-appeared", "", 0, "absent", "up", "adopted under 1/3"),
      "dcba0576c8d58f81cbe9faf0b5df75fb");
  // Fields cannot run into each other: "ab"+"c" is not "a"+"bc".
  EXPECT_NE(change_id("ab", "c", "port", "tcp", 1, "a", "b", ""),
            change_id("a", "bc", "port", "tcp", 1, "a", "b", ""));
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
  EXPECT_EQ(ids_a[0], change_id("j", "h", "port", "tcp", 22, "closed", "open", ""));
  EXPECT_EQ(ids_a[1], change_id("j", "h", "port", "tcp", 22, "open", "closed", ids_a[0]));
  EXPECT_EQ(ids_a[2], change_id("j", "h", "port", "tcp", 22, "closed", "open", ids_a[1]));
  // What the store returns later (and the event log prints) carries the same ids.
  const auto stored = a.events_after(0, 100);
  ASSERT_EQ(stored.size(), 3u);
  for (std::size_t i = 0; i < stored.size(); ++i) EXPECT_EQ(stored[i].change_id, ids_a[i]);
}

// A replica that missed a change (here: it started later) chains from another point: none
// of its ids meets one of the other replica's, then or later.
TEST(ChangeId, AReplicaThatMissedAChangeNeverMeetsTheOther) {
  Store a = Store::open(":memory:");
  Store b = Store::open(":memory:");
  std::set<std::string> ids_a;
  std::set<std::string> ids_b;
  commit(a, 0, host_with_22(PortState::closed));
  for (const auto& e : commit(a, 100, host_with_22(PortState::open))) ids_a.insert(e.change_id);
  commit(b, 150, host_with_22(PortState::open));  // b's baseline already has 22 open
  std::int64_t t = 200;
  for (const PortState state : {PortState::closed, PortState::open, PortState::closed}) {
    for (const auto& e : commit(a, t, host_with_22(state))) ids_a.insert(e.change_id);
    for (const auto& e : commit(b, t, host_with_22(state))) ids_b.insert(e.change_id);
    t += 100;
  }
  ASSERT_EQ(ids_a.size(), 4u);
  ASSERT_EQ(ids_b.size(), 3u);
  for (const auto& id : ids_b) EXPECT_FALSE(ids_a.contains(id)) << id;
}

TEST(ChangeId, PruningTheEventsKeepsTheChain) {
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
  EXPECT_NE(again[0].change_id, change_id("j", "h", "port", "tcp", 22, "closed", "open", ""));
}

// A host a resharding brings starts its chains from a seed its old owners never used; an
// agent that held the host before goes on with its own chains.
TEST(ChangeId, AnAdoptedHostStartsFromTheShardSeed) {
  Store s = Store::open(":memory:");
  commit(s, 0, make_host("other", 1, 10, PortState::closed));  // the job's baseline
  auto moved = ScannedHost::from(host_with_22(PortState::closed), Technique::syn);
  moved.adopted = true;
  const auto scan = s.begin_scan("j", Technique::syn, at(200));
  std::vector<ScannedHost> hosts{moved};
  EXPECT_TRUE(s.commit_scan(scan, hosts, {}, at(201), {}, {.shard = "0/2"}).empty());
  const auto next = commit(s, 300, host_with_22(PortState::open), {.shard = "0/2"});
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].change_id,
            change_id("j", "h", "port", "tcp", 22, "closed", "open", "adopted under 0/2"));
  const auto after = commit(s, 400, host_with_22(PortState::closed), {.shard = "0/2"});
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].change_id,
            change_id("j", "h", "port", "tcp", 22, "open", "closed", next[0].change_id));
}

TEST(ChangeId, HostEventsHaveIdsToo) {
  Store s = Store::open(":memory:");
  commit(s, 0, make_host("first", 1, 10, PortState::closed));  // the job's baseline
  const auto events =
      commit(s, 100, make_host("h", 1, 100, PortState::closed, {{22, PortState::open}}));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].change_id, change_id("j", "h", "port", "tcp", 22, "absent", "open", ""));
  EXPECT_EQ(events[1].kind, EventKind::host_appeared);
  EXPECT_EQ(events[1].change_id, change_id("j", "h", "host-appeared", "", 0, "absent", "up", ""));
}

}  // namespace
}  // namespace portvigil
