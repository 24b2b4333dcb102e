// New hosts are new exposure, known hosts can go silent, unused addresses are not hosts:
// Store::commit_scan's presence rules (docs/storage.md, "Baselines").
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "portvigil/storage/store.hpp"
#include "schema.hpp"
#include "sqlite.hpp"
#include "storage_test_util.hpp"

namespace portvigil {
namespace {

using test::at;
using test::make_host;
using Presence = ScannedHost::Presence;

// One host of a commit in the form the agent's job runner hands over.
ScannedHost scanned(const HostResult& h) {
  return ScannedHost::from(h, Technique::syn);
}
ScannedHost absent(const std::string& name, Presence presence) {
  ScannedHost h;
  h.host = name;
  h.address = "198.18.0.99";
  h.complete = false;
  h.presence = presence;
  return h;
}

struct Commit {
  std::vector<ChangeEvent> events;
  CommitSummary summary;
};

Commit commit(Store& s, std::int64_t t, std::vector<ScannedHost> hosts,
              CommitOptions options = {}) {
  const auto id = s.begin_scan("j", Technique::syn, at(t));
  Commit c;
  c.events = s.commit_scan(id, hosts, {}, at(t + 1), {}, options, &c.summary);
  return c;
}

std::size_t count_kind(const std::vector<ChangeEvent>& events, EventKind kind) {
  return static_cast<std::size_t>(
      std::count_if(events.begin(), events.end(), [&](const auto& e) { return e.kind == kind; }));
}

TEST(StorePresence, HostsOfTheJobsFirstBaselineAreSilent) {
  Store s = Store::open(":memory:");
  const auto c =
      commit(s, 0,
             {scanned(make_host("a", 1, 100, PortState::closed, {{22, PortState::open}})),
              scanned(make_host("b", 1, 100, PortState::closed, {{80, PortState::open}}))});
  EXPECT_TRUE(c.events.empty());
  EXPECT_EQ(c.summary.hosts_appeared, 0u);
}

TEST(StorePresence, AHostFirstSeenLaterIsNewExposure) {
  Store s = Store::open(":memory:");
  commit(s, 0, {scanned(make_host("a", 1, 100, PortState::closed))},
         {.accept_first_baseline = true});
  // b answers for the first time, with two open ports.
  const auto c = commit(s, 10,
                        {scanned(make_host("a", 1, 100, PortState::closed)),
                         scanned(make_host("b", 1, 100, PortState::closed,
                                           {{22, PortState::open}, {8080, PortState::open}}))},
                        {.accept_first_baseline = true});
  EXPECT_EQ(c.summary.hosts_appeared, 1u);
  ASSERT_EQ(c.events.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    const auto& e = c.events[static_cast<std::size_t>(i)];
    EXPECT_EQ(e.kind, EventKind::port);
    EXPECT_EQ(e.host, "b");
    EXPECT_TRUE(e.change.from_absent);
    EXPECT_EQ(from_name(e.change), "absent");
    EXPECT_EQ(e.change.to, PortState::open);
    EXPECT_FALSE(e.expected) << "nothing accepted a new host's ports";
  }
  EXPECT_EQ(c.events[0].change.port, 22);
  EXPECT_EQ(c.events[1].change.port, 8080);
  const auto& host = c.events[2];
  EXPECT_EQ(host.kind, EventKind::host_appeared);
  EXPECT_EQ(host.ports,
            (std::vector<std::pair<Proto, std::uint16_t>>{{Proto::tcp, 22}, {Proto::tcp, 8080}}));
  EXPECT_FALSE(host.expected);
  // Its ports are not accepted (only the job's first baseline is), and the database reads
  // back what was returned.
  EXPECT_FALSE(s.is_accepted("j", "b", Proto::tcp, 22));
  const auto stored = s.events_after(0, 10);
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_TRUE(stored[0].change.from_absent);
  EXPECT_EQ(stored[2].kind, EventKind::host_appeared);
  EXPECT_EQ(stored[2].ports, host.ports);
  const auto history = s.history({.host = "b"});
  ASSERT_EQ(history.size(), 2u);
  EXPECT_TRUE(history[0].change.from_absent);
  // The next scan compares b with that baseline as with any host.
  const auto again = commit(s, 20,
                            {scanned(make_host("b", 1, 100, PortState::closed,
                                               {{22, PortState::open}, {8080, PortState::open}}))});
  EXPECT_TRUE(again.events.empty());
}

TEST(StorePresence, AHostWithoutOpenPortsAppearsWithAnEmptyList) {
  Store s = Store::open(":memory:");
  commit(s, 0, {scanned(make_host("a", 1, 10, PortState::closed))});
  const auto c = commit(s, 10, {scanned(make_host("b", 1, 10, PortState::closed))});
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].kind, EventKind::host_appeared);
  EXPECT_TRUE(c.events[0].ports.empty());
}

// Up at the job's baseline but not comparable then (inconclusive): its later first
// baseline is silent, since the scan could not have known what it had before.
TEST(StorePresence, AHostKnownAtTheJobsBaselineStaysSilent) {
  Store s = Store::open(":memory:");
  commit(s, 0,
         {scanned(make_host("a", 1, 10, PortState::closed)), absent("b", Presence::answered)});
  EXPECT_TRUE(s.known_host("j", "b"));
  EXPECT_FALSE(s.baseline("j", "b").exists);
  const auto c =
      commit(s, 10, {scanned(make_host("b", 1, 10, PortState::closed, {{5, PortState::open}}))});
  EXPECT_TRUE(c.events.empty());
  EXPECT_TRUE(s.baseline("j", "b").exists);
}

TEST(StorePresence, UnusedAddressesAreNotHostsAndDoNotSetTheJobsBaseline) {
  Store s = Store::open(":memory:");
  // Nobody answers: no job baseline, nothing stored.
  const auto empty = commit(s, 0, {absent("x", Presence::silent), absent("y", Presence::silent)});
  EXPECT_EQ(empty.summary.addresses_unused, 2u);
  EXPECT_EQ(empty.summary.hosts_down, 0u);
  EXPECT_FALSE(s.known_host("j", "x"));
  EXPECT_EQ(s.stats().hosts, 0u);
  // The first scan in which a host answers is the job's silent baseline.
  const auto first =
      commit(s, 10,
             {scanned(make_host("x", 1, 10, PortState::closed, {{22, PortState::open}})),
              absent("y", Presence::silent)});
  EXPECT_TRUE(first.events.empty());
  EXPECT_EQ(first.summary.addresses_unused, 1u);
}

TEST(StorePresence, AKnownSilentHostIsDownThenGoneSilentOnce) {
  Store s = Store::open(":memory:");
  const CommitOptions opts{.silent_after = std::chrono::seconds(100)};
  commit(s, 0, {scanned(make_host("a", 1, 100, PortState::closed, {{22, PortState::open}}))}, opts);
  // Last seen at 1. Silent at 51: down, not yet gone silent.
  auto c = commit(s, 50, {absent("a", Presence::silent)}, opts);
  EXPECT_EQ(c.summary.hosts_down, 1u);
  EXPECT_EQ(c.summary.hosts_gone_silent, 0u);
  EXPECT_TRUE(c.events.empty());
  // Silent at 151 (150 s since seen): one host-gone-silent event, listing its open ports.
  c = commit(s, 150, {absent("a", Presence::silent)}, opts);
  EXPECT_EQ(c.summary.hosts_gone_silent, 1u);
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].kind, EventKind::host_gone_silent);
  EXPECT_EQ(c.events[0].ports, (std::vector<std::pair<Proto, std::uint16_t>>{{Proto::tcp, 22}}));
  // Still silent: counted, but no second event.
  c = commit(s, 200, {absent("a", Presence::silent)}, opts);
  EXPECT_EQ(c.summary.hosts_gone_silent, 1u);
  EXPECT_TRUE(c.events.empty());
  // Unknown presence (host timeout) neither counts nor resets anything.
  c = commit(s, 210, {absent("a", Presence::unknown)}, opts);
  EXPECT_EQ(c.summary.hosts_down, 0u);
  EXPECT_TRUE(c.events.empty());
  // Back, with a port opened meanwhile: compared with its last baseline.
  c = commit(s, 300,
             {scanned(make_host("a", 1, 100, PortState::closed,
                                {{22, PortState::open}, {23, PortState::open}}))},
             opts);
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].kind, EventKind::port);
  EXPECT_FALSE(c.events[0].change.from_absent);
  EXPECT_EQ(c.events[0].change.port, 23);
  EXPECT_EQ(c.summary.hosts_down, 0u);
  // Silent again later: a new silence, a new event.
  c = commit(s, 500, {absent("a", Presence::silent)}, opts);
  EXPECT_EQ(count_kind(c.events, EventKind::host_gone_silent), 1u);
}

// A v2 file (before presence tracking) opens as v3 with its jobs already baselined: hosts
// that appear after the upgrade are new, the stored ones are not.
TEST(StorePresence, UpgradedJobsCountAsBaselined) {
  test::TempDir dir;
  const auto path = dir.file("v2.db");
  {
    storage_detail::Database db(path, storage_detail::OpenMode::read_write_create);
    storage_detail::migrate(db, storage_detail::migrations().first(2));
    db.exec(
        "INSERT INTO jobs(id, name) VALUES (1, 'j');"
        "INSERT INTO scans(id, job_id, technique, started_ms, status) "
        "  VALUES (1, 1, 'syn', 1000, 'complete');"
        "INSERT INTO hosts(id, job_id, name, address, state_scan_id, state_ms) "
        "  VALUES (1, 1, 'a', '198.18.0.2', 1, 2000);"
        "INSERT INTO port_defaults VALUES (1, 'tcp', 'syn', '1-10', 10, 'closed', 'reset');");
  }
  Store s = Store::open(path);
  EXPECT_TRUE(s.known_host("j", "a"));
  const auto c =
      commit(s, 10,
             {scanned(make_host("a", 1, 10, PortState::closed)),
              scanned(make_host("b", 1, 10, PortState::closed, {{22, PortState::open}}))});
  EXPECT_EQ(c.summary.hosts_appeared, 1u);
  EXPECT_EQ(count_kind(c.events, EventKind::host_appeared), 1u);
  EXPECT_EQ(c.events.front().host, "b");
}

}  // namespace
}  // namespace portvigil

namespace portvigil {
namespace {

// A host gained by resharding (ScannedHost::adopted) takes its baseline without events,
// both when it is new to this store and when the store still holds a stale state from
// before the host moved away; the next scan compares it as usual. The shard of each commit
// is kept with the job.
TEST(StorePresence, AnAdoptedHostTakesItsBaselineSilently) {
  Store s = Store::open(":memory:");
  EXPECT_EQ(s.job_shard("j"), std::nullopt);
  // Under shard 0/1 (the whole) "old" had 22 open; "b" makes the job's baseline.
  commit(s, 0,
         {scanned(make_host("old", 1, 100, PortState::closed, {{22, PortState::open}})),
          scanned(make_host("b", 1, 100, PortState::closed))},
         {.accept_first_baseline = true});
  EXPECT_EQ(s.job_shard("j"), "0/1");

  // Under 1/2: "old" is back with 80 open instead of 22, "new" never seen: both adopted.
  auto old_host = scanned(make_host("old", 1, 100, PortState::closed, {{80, PortState::open}}));
  auto new_host = scanned(make_host("new", 1, 100, PortState::closed, {{44, PortState::open}}));
  old_host.adopted = new_host.adopted = true;
  const auto c =
      commit(s, 10, {old_host, new_host}, {.accept_first_baseline = true, .shard = "1/2"});
  EXPECT_TRUE(c.events.empty());
  EXPECT_EQ(c.summary.hosts_appeared, 0u);
  EXPECT_EQ(s.job_shard("j"), "1/2");
  EXPECT_EQ(s.baseline("j", "old").state_of(Proto::tcp, 22)->state, PortState::closed);
  EXPECT_EQ(s.baseline("j", "old").state_of(Proto::tcp, 80)->state, PortState::open);
  // Accepted as a first baseline is, for a job without a policy; what was accepted before
  // the host moved away (22) is another era's and forgotten, so 22 reopening would page.
  EXPECT_TRUE(s.is_accepted("j", "new", Proto::tcp, 44));
  EXPECT_TRUE(s.is_accepted("j", "old", Proto::tcp, 80));
  EXPECT_FALSE(s.is_accepted("j", "old", Proto::tcp, 22));
  // Open since the adoption, not since the stale history (22 opened at t=0).
  EXPECT_EQ(s.open_since("j", "old", Proto::tcp, 80), at(11));

  // Then compared like any host.
  const auto next =
      commit(s, 20, {scanned(make_host("new", 1, 100, PortState::closed))}, {.shard = "1/2"});
  ASSERT_EQ(next.events.size(), 1u);
  EXPECT_EQ(next.events[0].change.port, 44);
  EXPECT_EQ(next.events[0].change.to, PortState::closed);
}

}  // namespace
}  // namespace portvigil

namespace portvigil {
namespace {

// A gained host the resharding scan could not adopt waits (adopt_later) until a commit
// adopts it.
TEST(StorePresence, AdoptionWaitsForACleanScan) {
  Store s = Store::open(":memory:");
  commit(s, 0, {scanned(make_host("a", 1, 100, PortState::closed))});
  commit(s, 10, {absent("b", Presence::answered)}, {.shard = "1/2", .adopt_later = {"b"}});
  EXPECT_EQ(s.pending_adoptions("j"), std::vector<std::string>{"b"});
  auto b = scanned(make_host("b", 1, 100, PortState::closed, {{22, PortState::open}}));
  b.adopted = true;
  // Listed as waiting too (overlapping targets report a host twice): the adoption wins.
  const auto c = commit(s, 20, {b}, {.shard = "1/2", .adopt_later = {"b"}});
  EXPECT_TRUE(c.events.empty());
  EXPECT_TRUE(s.pending_adoptions("j").empty());
}

}  // namespace
}  // namespace portvigil
