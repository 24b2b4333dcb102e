#include "portvigil/storage/store.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "schema.hpp"
#include "sqlite.hpp"
#include "storage_test_util.hpp"

namespace portvigil {
namespace {

using test::at;
using test::make_host;
using test::TempDir;

class StoreTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::string path = dir.file("state.db");
  Store store = Store::open(path);

  // One complete scan of `hosts` by `job`, finishing at second `t`.
  std::vector<ChangeEvent> scan(const std::vector<HostResult>& hosts, std::int64_t t,
                                const std::string& job = "web",
                                Technique technique = Technique::syn,
                                const EventPolicy& policy = {}) {
    const auto id = store.begin_scan(job, technique, at(t - 1));
    return store.commit_scan(id, hosts, ScanCounters{10, 1, 5, 0}, at(t), policy);
  }
};

TEST_F(StoreTest, FixtureOpensAFileInItsTempDir) {
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST_F(StoreTest, OpenTurnsOnWalAndIncrementalVacuum) {
  storage_detail::Database raw(path, storage_detail::OpenMode::read_only);
  EXPECT_EQ(raw.pragma_text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.pragma_int("PRAGMA auto_vacuum"), 2);  // incremental
  EXPECT_EQ(store.schema_version(), storage_detail::latest_version());
  EXPECT_TRUE(store.integrity_problems().empty());
}

TEST(StoreOpen, ErrorNamesThePathAndSqliteMessage) {
  try {
    (void)Store::open("/nonexistent-dir/sub/state.db");
    FAIL() << "expected StorageError";
  } catch (const StorageError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("/nonexistent-dir/sub/state.db"), std::string::npos) << what;
    EXPECT_NE(what.find("unable to open"), std::string::npos) << what;
  }
}

// Only space and device errors are "disk": waiting does not fix a missing directory or a
// permission problem, and the agent must not sit retrying one.
TEST(StoreOpen, MissingDirectoryIsNotADiskCause) {
  try {
    (void)Store::open("/nonexistent-dir/sub/state.db");
    FAIL() << "expected StorageError";
  } catch (const StorageError& e) {
    EXPECT_EQ(e.cause(), StorageError::Cause::other) << e.what();
  }
}

TEST(StoreOpen, CheckWritableWritesNothingVisible) {
  TempDir dir;
  Store s = Store::open(dir.file("w.db"));
  const auto version = s.schema_version();
  EXPECT_NO_THROW(s.check_writable());
  EXPECT_EQ(s.schema_version(), version);
}

// The full-disk fallback of readers: a path with URI syntax in it ('?', '#', '%') must name
// the file, not add parameters. (The fallback itself runs in tests/e2e/disk_full_e2e.sh.)
TEST(StoreOpen, ImmutableReadEscapesThePath) {
  TempDir dir;
  std::filesystem::create_directory(dir.file("a?mode=rwc#x%41 b"));
  const auto path = dir.file("a?mode=rwc#x%41 b/state.db");
  {
    Store s = Store::open(path);
    (void)s.begin_scan("j", Technique::connect, test::at(0));
  }
  storage_detail::Database raw(path, storage_detail::OpenMode::read_only_immutable);
  EXPECT_EQ(raw.pragma_int("SELECT count(*) FROM scans"), 1);
  EXPECT_FALSE(std::filesystem::exists(dir.file("a")));
  Store ro = Store::open(path, Access::read_only);
  EXPECT_FALSE(ro.read_note().has_value());  // a healthy disk reads normally
}

TEST(StoreOpen, ReadOnlyNeedsAnExistingCurrentFile) {
  TempDir dir;
  EXPECT_THROW((void)Store::open(dir.file("missing.db"), Access::read_only), StorageError);
}

TEST(StoreOpen, InMemoryWorks) {
  Store s = Store::open(":memory:");
  const auto id = s.begin_scan("j", Technique::connect, test::at(0));
  EXPECT_TRUE(
      s.commit_scan(id, std::vector{make_host("h", 1, 10, PortState::closed)}, {}, test::at(1))
          .empty());
  EXPECT_TRUE(s.baseline("j", "h").exists);
}

TEST_F(StoreTest, FirstCompleteScanIsASilentBaseline) {
  const auto events = scan({make_host("a", 1, 1024, PortState::closed, {{22, PortState::open}}),
                            make_host("b", 1, 1024, PortState::filtered, {{443, PortState::open}})},
                           100);
  EXPECT_TRUE(events.empty());
  EXPECT_TRUE(store.events_since(at(0)).empty());
  EXPECT_TRUE(store.history({}).empty());

  const HostSnapshot a = store.baseline("web", "a");
  ASSERT_TRUE(a.exists);
  EXPECT_EQ(a.updated, at(100));
  EXPECT_EQ(a.state_of(Proto::tcp, 22), (PortObservation{PortState::open, Reason::syn_ack}));
  EXPECT_EQ(a.state_of(Proto::tcp, 23), (PortObservation{PortState::closed, Reason::reset}));
  EXPECT_EQ(a.find(Proto::tcp)->technique, Technique::syn);
  EXPECT_EQ(store.baseline("web", "b").state_of(Proto::tcp, 80)->state, PortState::filtered);
  EXPECT_FALSE(store.baseline("other-job", "a").exists);

  const auto rec = store.scan(a.scan_id);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->status, ScanStatus::complete);
  EXPECT_EQ(rec->job, "web");
  EXPECT_EQ(rec->technique, Technique::syn);
  EXPECT_EQ(rec->started, at(99));
  EXPECT_EQ(rec->finished, at(100));
  EXPECT_EQ(rec->hosts_total, 2u);
  EXPECT_EQ(rec->hosts_complete, 2u);
  EXPECT_EQ(rec->ports_scanned, 2048u);
  EXPECT_EQ(rec->transitions, 0u);
  EXPECT_EQ(rec->counters.probes_sent, 10u);
  EXPECT_EQ(rec->counters.responses, 5u);
}

TEST_F(StoreTest, LaterScanRecordsTransitionsAndEvents) {
  scan({make_host("a", 1, 1024, PortState::closed, {{22, PortState::open}})}, 100);
  const auto events =
      scan({make_host("a", 1, 1024, PortState::closed, {{443, PortState::open}})}, 200);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].change, (PortChange{Proto::tcp, 22, PortState::open, Reason::syn_ack,
                                          PortState::closed, Reason::reset}));
  EXPECT_TRUE(events[0].expected);  // not accepted, and not open: as the policy expects
  EXPECT_EQ(events[1].change.port, 443);
  EXPECT_FALSE(events[1].expected);  // opened without being accepted
  EXPECT_EQ(events[1].job, "web");
  EXPECT_EQ(events[1].host, "a");
  EXPECT_EQ(events[1].time, at(200));

  // What was returned is what was stored.
  const auto stored = store.events_since(at(150));
  ASSERT_EQ(stored.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(stored[i].id, events[i].id);
    EXPECT_EQ(stored[i].change, events[i].change);
    EXPECT_EQ(stored[i].expected, events[i].expected);
    EXPECT_EQ(stored[i].scan_id, events[i].scan_id);
    EXPECT_EQ(stored[i].time, events[i].time);
  }
  EXPECT_TRUE(store.events_since(at(201)).empty());
  EXPECT_TRUE(store.events_since(at(0), std::string("other")).empty());
  EXPECT_EQ(store.events_after(events[0].id, 10).size(), 1u);
  EXPECT_EQ(store.events_after(0, 1).size(), 1u);

  const auto hist = store.history({.host = "a", .port = 22});
  ASSERT_EQ(hist.size(), 1u);
  EXPECT_EQ(hist[0].change.to, PortState::closed);
  EXPECT_EQ(hist[0].scan_id, events[0].scan_id);
  EXPECT_EQ(store.history({.job = "web"}).size(), 2u);
  EXPECT_EQ(store.history({.proto = Proto::udp}).size(), 0u);

  const auto rec = store.scan(events[0].scan_id);
  EXPECT_EQ(rec->transitions, 2u);
  EXPECT_EQ(rec->events, 2u);

  // The baseline moved: the same result again changes nothing.
  EXPECT_TRUE(
      scan({make_host("a", 1, 1024, PortState::closed, {{443, PortState::open}})}, 300).empty());
}

TEST_F(StoreTest, SameStateNewReasonIsNoEventButUpdatesTheStoredReason) {
  scan({make_host("a", 1, 100, PortState::closed, {{25, PortState::filtered}})}, 100);
  EXPECT_TRUE(scan({make_host("a", 1, 100, PortState::closed,
                              {{25, PortState::filtered, Reason::admin_prohibited}})},
                   200)
                  .empty());
  EXPECT_EQ(store.baseline("web", "a").state_of(Proto::tcp, 25)->reason, Reason::admin_prohibited);
  EXPECT_TRUE(store.history({}).empty());
}

TEST_F(StoreTest, IncompleteHostKeepsItsOldStateAndMakesNoEvents) {
  scan({make_host("a", 1, 100, PortState::closed, {{22, PortState::open}})}, 100);
  const auto old_id = store.baseline("web", "a").scan_id;
  auto timed_out = make_host("a", 1, 100, PortState::filtered);
  timed_out.complete = false;
  timed_out.note = "host timeout after 30s";
  // Another host that never completed is not even given a baseline.
  auto never = make_host("never", 1, 100, PortState::filtered);
  never.complete = false;
  EXPECT_TRUE(scan({timed_out, never}, 200).empty());

  const auto snap = store.baseline("web", "a");
  EXPECT_EQ(snap.scan_id, old_id);
  EXPECT_EQ(snap.state_of(Proto::tcp, 22)->state, PortState::open);
  EXPECT_FALSE(store.baseline("web", "never").exists);
  const auto latest = store.latest_scans();
  ASSERT_EQ(latest.size(), 1u);
  EXPECT_EQ(latest[0].status, ScanStatus::complete);
  EXPECT_EQ(latest[0].hosts_total, 2u);
  EXPECT_EQ(latest[0].hosts_complete, 0u);
}

TEST_F(StoreTest, MarkedIncompleteScanNeverBecomesABaseline) {
  const auto id = store.begin_scan("web", Technique::syn, at(0));
  EXPECT_TRUE(store.mark_incomplete(id, "SIGTERM", at(5)));
  EXPECT_FALSE(store.mark_incomplete(id, "again", at(6)));
  EXPECT_THROW(
      store.commit_scan(id, std::vector{make_host("a", 1, 10, PortState::closed)}, {}, at(7)),
      StorageError);
  EXPECT_FALSE(store.baseline("web", "a").exists);
  const auto rec = store.scan(id);
  EXPECT_EQ(rec->status, ScanStatus::incomplete);
  EXPECT_EQ(rec->note, "SIGTERM");
  EXPECT_EQ(rec->finished, at(5));
  EXPECT_THROW(store.commit_scan(12345, std::span<const HostResult>{}, {}, at(7)), StorageError);
}

TEST(StoreRecovery, RunningScanLeftByACrashBecomesIncompleteOnReopen) {
  TempDir dir;
  const auto path = dir.file("state.db");
  std::int64_t baseline_id = 0;
  std::int64_t crashed = 0;
  {
    Store s = Store::open(path);
    baseline_id = s.begin_scan("web", Technique::syn, at(0));
    s.commit_scan(baseline_id, std::vector{make_host("a", 1, 10, PortState::closed)}, {}, at(1));
    crashed = s.begin_scan("web", Technique::syn, at(2));
  }  // the process "dies" without finishing the scan
  {
    // A CLI tool opening meanwhile must not steal the agent's running scan.
    Store tool = Store::open(path, Access::tool);
    EXPECT_EQ(tool.scan(crashed)->status, ScanStatus::running);
  }
  Store s = Store::open(path);
  const auto rec = s.scan(crashed);
  EXPECT_EQ(rec->status, ScanStatus::incomplete);
  EXPECT_EQ(rec->note, "agent stopped before the scan finished");
  EXPECT_THROW(
      s.commit_scan(crashed, std::vector{make_host("a", 1, 10, PortState::open)}, {}, at(3)),
      StorageError);
  EXPECT_EQ(s.baseline("web", "a").scan_id, baseline_id);
  EXPECT_EQ(s.baseline("web", "a").state_of(Proto::tcp, 5)->state, PortState::closed);
  EXPECT_TRUE(s.events_since(at(0)).empty());
}

TEST_F(StoreTest, LostDatabaseDoesNotFlood) {
  const std::vector hosts{make_host("a", 1, 100, PortState::closed, {{22, PortState::open}})};
  scan(hosts, 100);
  store = Store::open(":memory:");  // release the file
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  store = Store::open(path);
  EXPECT_TRUE(scan({make_host("a", 1, 100, PortState::open)}, 200).empty());
  EXPECT_EQ(scan({make_host("a", 1, 100, PortState::closed)}, 300).size(), 100u);
}

// Event ids are a cursor: once retention has pruned every event, the next one must still
// get a new id (v1 handed out 1 again, and the event log then dropped it as already seen).
TEST_F(StoreTest, EventIdsAreNeverReusedAfterPruning) {
  scan({make_host("a", 1, 4, PortState::closed)}, 0);
  const auto first = scan({make_host("a", 1, 4, PortState::open)}, 10);
  ASSERT_EQ(first.size(), 4u);
  const std::int64_t last = first.back().id;
  const auto zero = std::chrono::seconds(0);
  ASSERT_EQ(store.prune(Retention{zero, zero, zero, std::nullopt}, at(1000)).events, 4u);
  ASSERT_EQ(store.stats().events, 0u);
  const auto next = scan({make_host("a", 1, 4, PortState::closed)}, 2000);
  ASSERT_EQ(next.size(), 4u);
  EXPECT_GT(next.front().id, last);
  store = Store::open(path);  // and after a reopen
  const auto again = scan({make_host("a", 1, 4, PortState::open)}, 3000);
  ASSERT_EQ(again.size(), 4u);
  EXPECT_GT(again.front().id, next.back().id);
}

// A lost database starts again at id 1 unless told where the event log stopped.
TEST_F(StoreTest, EventIdsContinueAfterTheEventLogsLastId) {
  store.continue_event_ids_after(41);
  store.continue_event_ids_after(7);  // lower: no effect
  scan({make_host("a", 1, 2, PortState::closed)}, 0);
  const auto events = scan({make_host("a", 1, 2, PortState::open)}, 10);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, 42);
  EXPECT_EQ(events[1].id, 43);
  store.continue_event_ids_after(40);  // below the ids in use: no effect
  const auto more = scan({make_host("a", 1, 2, PortState::closed)}, 20);
  ASSERT_EQ(more.size(), 2u);
  EXPECT_EQ(more[0].id, 44);
  EXPECT_EQ(store.events_after(41, 10).size(), 4u);
}

// An agent that trusted a garbage id in its event log left the sequence at INT64_MAX: every
// later event insert failed. The repair sets it back to the ids in use.
TEST_F(StoreTest, ExhaustedEventIdSequenceIsRepaired) {
  scan({make_host("a", 1, 2, PortState::closed)}, 0);
  const auto first = scan({make_host("a", 1, 2, PortState::open)}, 10);
  ASSERT_EQ(first.size(), 2u);
  store.set_published_event_id(first.back().id);
  EXPECT_FALSE(store.repair_event_id_sequence(std::int64_t{1} << 53));  // nothing to do
  store.continue_event_ids_after(std::numeric_limits<std::int64_t>::max());
  EXPECT_THROW(scan({make_host("a", 1, 2, PortState::closed)}, 20), std::exception);
  EXPECT_TRUE(store.repair_event_id_sequence(std::int64_t{1} << 53));
  const auto next = scan({make_host("a", 1, 2, PortState::closed)}, 30);
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0].id, first.back().id + 1);
}

TEST_F(StoreTest, PublishedEventIdOnlyGrowsAndPersists) {
  EXPECT_EQ(store.published_event_id(), 0);
  store.set_published_event_id(5);
  store.set_published_event_id(3);
  EXPECT_EQ(store.published_event_id(), 5);
  store = Store::open(path);
  EXPECT_EQ(store.published_event_id(), 5);
  EXPECT_TRUE(store.integrity_problems().empty());
}

// Cursors of sinks no longer configured go; the others, and the event log's published
// mark, stay.
TEST_F(StoreTest, ForgetSinkCursorsKeepsOnlyTheConfiguredOnes) {
  store.set_published_event_id(9);
  store.set_sink_cursor("stdout", 4);
  store.set_sink_cursor("hook", 7);
  store.set_sink_cursor("old-hook", 2);
  const std::vector<std::string> configured{"hook", "archive"};
  EXPECT_EQ(store.forget_sink_cursors_except(configured), 2u);
  EXPECT_EQ(store.sink_cursor("hook"), 7);
  EXPECT_FALSE(store.sink_cursor("stdout"));
  EXPECT_FALSE(store.sink_cursor("old-hook"));
  EXPECT_FALSE(store.sink_cursor("archive"));
  EXPECT_EQ(store.published_event_id(), 9);
  EXPECT_EQ(store.forget_sink_cursors_except(configured), 0u);
}

TEST_F(StoreTest, AFailingPolicyRollsTheWholeScanBack) {
  scan({make_host("a", 1, 10, PortState::closed)}, 100);
  const auto id = store.begin_scan("web", Technique::syn, at(150));
  const EventPolicy boom = [](const ChangeContext&) -> Verdict {
    throw std::runtime_error("policy failed");
  };
  EXPECT_THROW(store.commit_scan(id,
                                 std::vector{make_host("a", 1, 10, PortState::open),
                                             make_host("b", 1, 10, PortState::open)},
                                 {}, at(200), boom),
               std::runtime_error);
  EXPECT_EQ(store.scan(id)->status, ScanStatus::running);
  EXPECT_EQ(store.baseline("web", "a").state_of(Proto::tcp, 1)->state, PortState::closed);
  EXPECT_FALSE(store.baseline("web", "b").exists);
  EXPECT_TRUE(store.history({}).empty());
}

TEST_F(StoreTest, PolicyDecidesExpectedAndSilent) {
  scan({make_host("a", 1, 10, PortState::closed)}, 100);
  std::vector<std::string> seen;
  const EventPolicy policy = [&](const ChangeContext& c) {
    seen.push_back(std::string(c.job) + "/" + std::string(c.host) + "/" +
                   std::to_string(c.change.port) + (c.accepted ? "+" : "-"));
    if (c.change.port == 1) return Verdict::expected;
    if (c.change.port == 2) return Verdict::silent;
    return Verdict::unexpected;
  };
  const auto events =
      scan({make_host("a", 1, 10, PortState::closed,
                      {{1, PortState::open}, {2, PortState::open}, {3, PortState::open}})},
           200, "web", Technique::syn, policy);
  EXPECT_EQ(seen, (std::vector<std::string>{"web/a/1-", "web/a/2-", "web/a/3-"}));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[0].expected);
  EXPECT_EQ(events[1].change.port, 3);
  EXPECT_FALSE(events[1].expected);
  EXPECT_EQ(store.history({}).size(), 3u);  // silent still goes to history
  EXPECT_EQ(store.scan(events[0].scan_id)->events, 2u);
}

TEST_F(StoreTest, AcceptBaselineRecordsCurrentOpenPorts) {
  scan({make_host("a", 1, 1000, PortState::closed, {{22, PortState::open}, {80, PortState::open}}),
        make_host("b", 1, 1000, PortState::closed, {{443, PortState::open}})},
       100);
  scan({make_host("c", 1, 10, PortState::closed, {{5, PortState::open}})}, 100, "db");

  auto r = store.accept_baseline({.job = "web", .host = "a"});
  EXPECT_EQ(r.accepted, 2u);
  EXPECT_EQ(r.added, 2u);
  EXPECT_EQ(r.revoked, 0u);
  EXPECT_TRUE(store.is_accepted("web", "a", Proto::tcp, 22));
  EXPECT_FALSE(store.is_accepted("web", "a", Proto::udp, 22));
  EXPECT_FALSE(store.is_accepted("web", "b", Proto::tcp, 443));
  EXPECT_EQ(store.accept_baseline({.job = "web", .host = "a"}).added, 0u);  // idempotent

  // 22 closes (accepted: unexpected), 8080 opens (not accepted: unexpected), 80 stays.
  const auto events = scan(
      {make_host("a", 1, 1000, PortState::closed, {{80, PortState::open}, {8080, PortState::open}}),
       make_host("b", 1, 1000, PortState::closed, {{443, PortState::open}})},
      200);
  ASSERT_EQ(events.size(), 1u);  // 8080 is outside 1-1000 scanned before: appears silently
  EXPECT_EQ(events[0].change.port, 22);
  EXPECT_FALSE(events[0].expected);

  r = store.accept_baseline({});
  EXPECT_EQ(r.accepted, 4u);  // a: 80, 8080; b: 443; db/c: 5
  EXPECT_EQ(r.added, 3u);
  EXPECT_EQ(r.revoked, 1u);  // a: 22
  EXPECT_FALSE(store.is_accepted("web", "a", Proto::tcp, 22));
  EXPECT_EQ(store.accepted_ports({.job = "web"}),
            (std::vector<PortKey>{{"web", "a", Proto::tcp, 80},
                                  {"web", "a", Proto::tcp, 8080},
                                  {"web", "b", Proto::tcp, 443}}));
  EXPECT_EQ(store.accepted_ports({.port = 5}).size(), 1u);

  // A scope of one closed port revokes only that port.
  scan({make_host("a", 1, 1000, PortState::closed, {{8080, PortState::open}})}, 300);
  r = store.accept_baseline({.host = "a", .port = 80});
  EXPECT_EQ(r.accepted, 0u);
  EXPECT_EQ(r.revoked, 1u);
  EXPECT_TRUE(store.is_accepted("web", "a", Proto::tcp, 8080));
  EXPECT_EQ(store.accept_baseline({.host = "nobody"}).accepted, 0u);
}

// The dry run is the plan the real run applies, port by port, and writes nothing.
TEST_F(StoreTest, AcceptPlanIsWhatAcceptApplies) {
  scan({make_host("a", 1, 1000, PortState::closed, {{22, PortState::open}, {80, PortState::open}})},
       100);
  ASSERT_EQ(store.accept_baseline({.port = 22}).added, 1u);
  scan(
      {make_host("a", 1, 1000, PortState::closed, {{80, PortState::open}, {443, PortState::open}})},
      200);
  const AcceptPreview plan = store.plan_accept_baseline({});
  EXPECT_EQ(plan.add,
            (std::vector<PortKey>{{"web", "a", Proto::tcp, 80}, {"web", "a", Proto::tcp, 443}}));
  EXPECT_TRUE(plan.keep.empty());
  EXPECT_EQ(plan.revoke, (std::vector<PortKey>{{"web", "a", Proto::tcp, 22}}));
  EXPECT_TRUE(store.is_accepted("web", "a", Proto::tcp, 22));  // nothing written
  const auto r = store.accept_baseline({});
  EXPECT_EQ(r.added, plan.add.size());
  EXPECT_EQ(r.revoked, plan.revoke.size());
  EXPECT_EQ(r.accepted, plan.add.size() + plan.keep.size());
  const AcceptPreview again = store.plan_accept_baseline({});
  EXPECT_TRUE(again.add.empty());
  EXPECT_EQ(again.keep.size(), 2u);
}

TEST_F(StoreTest, RevokeForgetsOnlyThePortsInScope) {
  scan({make_host("a", 1, 100, PortState::closed, {{22, PortState::open}, {80, PortState::open}}),
        make_host("b", 1, 100, PortState::closed, {{22, PortState::open}})},
       100);
  ASSERT_EQ(store.accept_baseline({}).accepted, 3u);
  EXPECT_EQ(store.revoke_accepted({.host = "a", .port = 22}), 1u);
  EXPECT_EQ(store.accepted_ports({}),
            (std::vector<PortKey>{{"web", "a", Proto::tcp, 80}, {"web", "b", Proto::tcp, 22}}));
  EXPECT_EQ(store.revoke_accepted({.job = "other"}), 0u);
  EXPECT_EQ(store.revoke_accepted({}), 2u);
  EXPECT_TRUE(store.accepted_ports({}).empty());
}

TEST_F(StoreTest, KnowsWhichJobsAndHostsExist) {
  scan({make_host("a", 1, 10, PortState::closed, {})}, 100);
  scan({make_host("c", 1, 10, PortState::closed, {})}, 100, "db");
  EXPECT_EQ(store.job_names(), (std::vector<std::string>{"db", "web"}));
  EXPECT_TRUE(store.has_host({.host = "a"}));
  EXPECT_TRUE(store.has_host({.job = "web", .host = "a"}));
  EXPECT_FALSE(store.has_host({.job = "db", .host = "a"}));
  EXPECT_FALSE(store.has_host({.host = "nobody"}));
  EXPECT_TRUE(store.has_host({.job = "db"}));
  // Hostile text is data: bound, never spliced into SQL.
  EXPECT_FALSE(store.has_host({.job = "web' OR 1=1 --", .host = "a"}));
}

TEST_F(StoreTest, AcceptBaselineOfAMostlyOpenHost) {
  scan({make_host("tarpit", 1, 100, PortState::open, {{7, PortState::closed}})}, 100);
  EXPECT_EQ(store.accept_baseline({}).accepted, 99u);
  EXPECT_FALSE(store.is_accepted("web", "tarpit", Proto::tcp, 7));
  EXPECT_TRUE(store.is_accepted("web", "tarpit", Proto::tcp, 8));
}

TEST_F(StoreTest, TechniqueChangeStartsANewBaselineForThatProtocol) {
  scan({make_host("a", 1, 100, PortState::filtered, {{22, PortState::open}})}, 100, "web",
       Technique::syn);
  // Connect scans see closed where SYN saw filtered: not a change of the host.
  EXPECT_TRUE(
      scan({make_host("a", 1, 100, PortState::closed)}, 200, "web", Technique::connect).empty());
  EXPECT_EQ(store.baseline("web", "a").find(Proto::tcp)->technique, Technique::connect);
  EXPECT_EQ(scan({make_host("a", 1, 100, PortState::closed, {{22, PortState::open}})}, 300, "web",
                 Technique::connect)
                .size(),
            1u);
}

TEST_F(StoreTest, SeparateTcpAndUdpScansKeepEachOthersState) {
  scan({make_host("a", 1, 100, PortState::closed, {{22, PortState::open}})}, 100, "web",
       Technique::syn);
  scan({make_host("a", 1, 100, PortState::open_filtered,
                  {{53, PortState::open, Reason::udp_response, Proto::udp}}, Proto::udp)},
       110, "web", Technique::udp);
  const auto snap = store.baseline("web", "a");
  EXPECT_EQ(snap.protos.size(), 2u);
  EXPECT_EQ(snap.state_of(Proto::tcp, 22)->state, PortState::open);
  EXPECT_EQ(snap.state_of(Proto::udp, 53)->state, PortState::open);

  const auto events = scan({make_host("a", 1, 100, PortState::closed)}, 200, "web", Technique::syn);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].change.proto, Proto::tcp);
  EXPECT_EQ(store.baseline("web", "a").state_of(Proto::udp, 53)->state, PortState::open);
}

TEST_F(StoreTest, CompactStorageKeepsOnlyExceptionRows) {
  std::vector<HostResult> hosts;
  for (int i = 0; i < 20; ++i) {
    hosts.push_back(make_host("h" + std::to_string(i), 1, 65535, PortState::closed,
                              {{22, PortState::open},
                               {443, PortState::open},
                               {static_cast<std::uint16_t>(1000 + i), PortState::open}}));
  }
  scan(hosts, 100);
  auto st = store.stats();
  EXPECT_EQ(st.hosts_with_state, 20u);
  EXPECT_EQ(st.default_rows, 20u);
  EXPECT_EQ(st.exception_rows, 60u);
  const std::size_t after_first = st.file_bytes;
  EXPECT_LT(after_first, 256u * 1024u);

  for (int t = 2; t <= 10; ++t) scan(hosts, 100 * t);
  st = store.stats();
  EXPECT_EQ(st.exception_rows, 60u);
  EXPECT_EQ(st.transitions, 0u);
  EXPECT_EQ(st.scans, 10u);
  // 9 more scans of 20 x 65535 ports add only 9 summary rows.
  EXPECT_LE(st.file_bytes, after_first + 16u * 1024u);
  EXPECT_EQ(store.scan(store.latest_scans().at(0).id)->ports_scanned, 20u * 65535u);

  // A flip of the usual state rewrites the host's rows, still compactly.
  hosts[0] = make_host("h0", 1, 65535, PortState::filtered, {{22, PortState::open}});
  const auto events = scan(hosts, 2000);
  EXPECT_EQ(events.size(), 65535u - 1u);  // every port but 22 changed state
  st = store.stats();
  EXPECT_EQ(st.exception_rows, 58u);
  EXPECT_TRUE(store.integrity_problems().empty());
}

TEST_F(StoreTest, PruneDropsOldHistoryButNeverCurrentState) {
  scan({make_host("a", 1, 10, PortState::closed)}, 0);  // baseline, scan 1
  const auto day = std::chrono::hours(24);
  const auto t = [&](int days) { return static_cast<std::int64_t>(days) * 86400; };
  scan({make_host("a", 1, 10, PortState::open)}, t(10));
  scan({make_host("a", 1, 10, PortState::closed)}, t(50));
  scan({make_host("a", 1, 10, PortState::open)}, t(99));
  const auto running = store.begin_scan("web", Technique::syn, at(1));  // never pruned
  ASSERT_EQ(store.stats().transitions, 30u);

  Retention keep;
  keep.transitions = std::chrono::duration_cast<std::chrono::seconds>(60 * day);
  keep.events = std::chrono::duration_cast<std::chrono::seconds>(20 * day);
  keep.scans = std::chrono::duration_cast<std::chrono::seconds>(30 * day);
  const auto pruned = store.prune(keep, at(t(100)));
  EXPECT_EQ(pruned.transitions, 10u);  // day 10
  EXPECT_EQ(pruned.events, 20u);       // days 10 and 50
  EXPECT_EQ(pruned.scans, 3u);         // days 0, 10, 50

  const auto st = store.stats();
  EXPECT_EQ(st.transitions, 20u);
  EXPECT_EQ(st.events, 10u);
  EXPECT_EQ(st.scans, 2u);
  EXPECT_EQ(store.scan(running)->status, ScanStatus::running);
  // Day 50's transitions survive their pruned scan, which reads as 0.
  const auto hist = store.history({.port = 1});
  ASSERT_EQ(hist.size(), 2u);
  EXPECT_EQ(hist[0].scan_id, 0);
  EXPECT_NE(hist[1].scan_id, 0);
  EXPECT_TRUE(store.baseline("web", "a").exists);

  // Empty retention keeps everything; the current state is always kept.
  EXPECT_EQ(
      store.prune(Retention{std::nullopt, std::nullopt, std::nullopt, std::nullopt}, at(t(10000)))
          .events,
      0u);
  const auto all = store.prune(Retention{std::chrono::seconds(0), std::chrono::seconds(0),
                                         std::chrono::seconds(0), std::nullopt},
                               at(t(10000)));
  EXPECT_EQ(all.scans, 1u);
  const auto snap = store.baseline("web", "a");
  EXPECT_TRUE(snap.exists);
  EXPECT_EQ(snap.scan_id, 0);
  EXPECT_EQ(snap.state_of(Proto::tcp, 1)->state, PortState::open);
  EXPECT_TRUE(store.integrity_problems().empty());
}

TEST_F(StoreTest, StatusListsTheNewestScanOfEachJob) {
  scan({make_host("a", 1, 10, PortState::closed)}, 100, "web");
  scan({make_host("a", 1, 10, PortState::closed)}, 200, "web");
  scan({make_host("d", 1, 10, PortState::closed)}, 150, "db");
  const auto running = store.begin_scan("web", Technique::syn, at(300));
  const auto latest = store.latest_scans();
  ASSERT_EQ(latest.size(), 2u);
  EXPECT_EQ(latest[0].job, "db");
  EXPECT_EQ(latest[1].id, running);
  EXPECT_EQ(latest[1].status, ScanStatus::running);
  EXPECT_FALSE(latest[1].finished.has_value());
  const auto web = store.scans("web", 2);
  ASSERT_EQ(web.size(), 2u);
  EXPECT_EQ(web[0].id, running);
  EXPECT_EQ(web[1].finished, at(200));
  EXPECT_EQ(name(ScanStatus::incomplete), "incomplete");
}

TEST_F(StoreTest, ValuesWithQuotesAreBoundNotSpliced) {
  const std::string job = "it's; DROP TABLE jobs; --";
  scan({make_host("o'neil", 1, 10, PortState::closed)}, 100, job);
  EXPECT_TRUE(store.baseline(job, "o'neil").exists);
  EXPECT_EQ(store.latest_scans().at(0).job, job);
  EXPECT_TRUE(store.integrity_problems().empty());
}

TEST_F(StoreTest, CompactResultsCommitLikeFullOnes) {
  const auto compact = [](const HostResult& h) { return ScannedHost::from(h, Technique::syn); };
  auto commit = [&](std::vector<ScannedHost> hosts, std::int64_t t) {
    const auto id = store.begin_scan("web", Technique::syn, at(t - 1));
    return store.commit_scan(id, hosts, {}, at(t));
  };
  EXPECT_TRUE(
      commit({compact(make_host("a", 1, 65535, PortState::closed, {{22, PortState::open}}))}, 100)
          .empty());
  EXPECT_EQ(store.stats().exception_rows, 1u);
  auto gone = compact(make_host("a", 1, 65535, PortState::filtered));
  gone.complete = false;
  EXPECT_TRUE(commit({gone}, 150).empty());
  const auto events =
      commit({compact(make_host("a", 1, 65535, PortState::closed, {{443, PortState::open}}))}, 200);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].change, (PortChange{Proto::tcp, 22, PortState::open, Reason::syn_ack,
                                          PortState::closed, Reason::reset}));
  EXPECT_EQ(events[1].change.port, 443);
  const auto snap = store.baseline("web", "a");
  EXPECT_EQ(snap.state_of(Proto::tcp, 443)->state, PortState::open);
  EXPECT_EQ(store.scan(snap.scan_id)->ports_scanned, 65535u);
  EXPECT_EQ(store.latest_scans().at(0).hosts_complete, 1u);
}

TEST(DefaultVerdict, AcceptedMeansExpectedOpen) {
  const PortChange opened{Proto::tcp,     1, PortState::closed, Reason::reset, PortState::open,
                          Reason::syn_ack};
  const PortChange closed{Proto::tcp,   1, PortState::open, Reason::syn_ack, PortState::closed,
                          Reason::reset};
  const PortChange filtered{
      Proto::tcp, 1, PortState::closed, Reason::reset, PortState::filtered, Reason::no_response};
  EXPECT_EQ(default_verdict({"j", "h", opened, true}), Verdict::expected);
  EXPECT_EQ(default_verdict({"j", "h", opened, false}), Verdict::unexpected);
  EXPECT_EQ(default_verdict({"j", "h", closed, true}), Verdict::unexpected);
  EXPECT_EQ(default_verdict({"j", "h", closed, false}), Verdict::expected);
  EXPECT_EQ(default_verdict({"j", "h", filtered, false}), Verdict::expected);
}

}  // namespace
}  // namespace portvigil

namespace portvigil {
namespace {

TEST(StoreAccept, FirstBaselineAcceptedInTheSameCommit) {
  Store s = Store::open(":memory:");
  const HostResult first = test::make_host("h", 1, 100, PortState::closed, {{22, PortState::open}});
  const auto id1 = s.begin_scan("j", Technique::syn, test::at(0));
  EXPECT_TRUE(
      s.commit_scan(id1, std::vector{first}, {}, test::at(1), {}, {.accept_first_baseline = true})
          .empty());
  EXPECT_TRUE(s.is_accepted("j", "h", Proto::tcp, 22));
  EXPECT_FALSE(s.is_accepted("j", "h", Proto::tcp, 23));

  // Later scans of the same host accept nothing by themselves: a newly opened port is
  // not expected.
  const HostResult second = test::make_host("h", 1, 100, PortState::closed,
                                            {{22, PortState::open}, {80, PortState::open}});
  const auto id2 = s.begin_scan("j", Technique::syn, test::at(2));
  const auto events =
      s.commit_scan(id2, std::vector{second}, {}, test::at(3), {}, {.accept_first_baseline = true});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].change.port, 80);
  EXPECT_FALSE(events[0].expected);
  EXPECT_FALSE(s.is_accepted("j", "h", Proto::tcp, 80));

  // Without the flag a first baseline accepts nothing.
  const HostResult other = test::make_host("k", 1, 100, PortState::closed, {{22, PortState::open}});
  const auto id3 = s.begin_scan("j", Technique::syn, test::at(4));
  s.commit_scan(id3, std::vector{other}, {}, test::at(5));
  EXPECT_FALSE(s.is_accepted("j", "k", Proto::tcp, 22));
}

}  // namespace
}  // namespace portvigil
