#include <gtest/gtest.h>

#include <array>
#include <fstream>
#include <string>
#include <vector>

#include "portvigil/storage/store.hpp"
#include "schema.hpp"
#include "sqlite.hpp"
#include "storage_test_util.hpp"

namespace portvigil {
namespace {

using storage_detail::Database;
using storage_detail::Migration;
using storage_detail::OpenMode;
using test::at;
using test::make_host;
using test::TempDir;

// Runs one scan cycle and checks the result, proving the schema is fully usable.
void exercise(Store& s) {
  const auto a = s.begin_scan("after-upgrade", Technique::syn, at(0));
  s.commit_scan(a, std::vector{make_host("x", 1, 100, PortState::closed)}, {}, at(1));
  const auto b = s.begin_scan("after-upgrade", Technique::syn, at(2));
  const auto events = s.commit_scan(
      b, std::vector{make_host("x", 1, 100, PortState::closed, {{80, PortState::open}})}, {},
      at(3));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(s.accept_baseline({.job = "after-upgrade"}).accepted, 1u);
  EXPECT_TRUE(s.integrity_problems().empty());
}

TEST(Migrations, ShippedStepsAreNumberedFromOne) {
  const auto steps = storage_detail::migrations();
  ASSERT_FALSE(steps.empty());
  for (std::size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i].version, int(i) + 1);
}

TEST(Migrations, MissingFileIsCreatedAtTheLatestVersion) {
  TempDir dir;
  Store s = Store::open(dir.file("new.db"));
  EXPECT_EQ(s.schema_version(), storage_detail::latest_version());
  exercise(s);
}

TEST(Migrations, EmptyFileIsVersionZeroAndUpgrades) {
  TempDir dir;
  const auto path = dir.file("empty.db");
  std::ofstream(path).close();  // 0 bytes: SQLite treats it as an empty database
  Store s = Store::open(path);
  EXPECT_EQ(s.schema_version(), storage_detail::latest_version());
  exercise(s);
}

// A file left at every earlier version (by running steps 1..k) opens at the latest version
// with its data intact: v0 (empty), v1 (events without AUTOINCREMENT) and an up-to-date
// file; it covers each new step as soon as one is added.
TEST(Migrations, EveryEarlierVersionUpgradesWithItsData) {
  const auto steps = storage_detail::migrations();
  for (int k = 0; k <= storage_detail::latest_version(); ++k) {
    SCOPED_TRACE("from version " + std::to_string(k));
    TempDir dir;
    const auto path = dir.file("old.db");
    {
      Database db(path, OpenMode::read_write_create);
      db.exec("PRAGMA foreign_keys = ON");
      storage_detail::migrate(db, steps.first(static_cast<std::size_t>(k)));
      ASSERT_EQ(storage_detail::user_version(db), k);
      if (k >= 1) {
        // Rows as the v1 schema stores them.
        db.exec(R"sql(
          INSERT INTO jobs(id, name) VALUES (1, 'legacy');
          INSERT INTO scans(id, job_id, technique, started_ms, finished_ms, status)
            VALUES (7, 1, 'syn', 1000, 2000, 'complete');
          INSERT INTO hosts(id, job_id, name, address, state_scan_id, state_ms)
            VALUES (1, 1, 'old-host', '192.0.2.9', 7, 2000);
          INSERT INTO port_defaults VALUES (1, 'tcp', 'syn', '1-1024', 1024, 'closed', 'reset');
          INSERT INTO port_exceptions VALUES (1, 'tcp', 22, 'open', 'syn-ack');
          INSERT INTO events(id, time_ms, host_id, scan_id, proto, port, from_state, to_state,
                             from_reason, to_reason, expected)
            VALUES (5, 2000, 1, 7, 'tcp', 22, 'closed', 'open', 'reset', 'syn-ack', 0);
        )sql");
      }
    }
    Store s = Store::open(path);
    EXPECT_EQ(s.schema_version(), storage_detail::latest_version());
    if (k >= 1) {
      const auto snap = s.baseline("legacy", "old-host");
      ASSERT_TRUE(snap.exists);
      EXPECT_EQ(snap.scan_id, 7);
      EXPECT_EQ(snap.state_of(Proto::tcp, 22), (PortObservation{PortState::open, Reason::syn_ack}));
      EXPECT_EQ(snap.state_of(Proto::tcp, 23)->state, PortState::closed);
      EXPECT_EQ(s.scan(7)->finished,
                std::chrono::system_clock::time_point(std::chrono::milliseconds(2000)));
      const auto old = s.events_after(0, 10);
      ASSERT_EQ(old.size(), 1u);
      EXPECT_EQ(old[0].id, 5);
      EXPECT_EQ(old[0].host, "old-host");
      EXPECT_EQ(old[0].change.to, PortState::open);
    }
    if (k >= 1) {
      // Retention deletes the migrated event: the next id must still be above it, which
      // only holds if the upgrade carried the id sequence over.
      const auto zero = std::chrono::seconds(0);
      ASSERT_EQ(s.prune(Retention{std::nullopt, zero, std::nullopt, std::nullopt}, at(100)).events,
                1u);
    }
    exercise(s);
    if (k >= 1) {
      const auto all = s.events_after(0, 10);
      ASSERT_EQ(all.size(), 1u);
      EXPECT_GT(all[0].id, 5);
    }
  }
}

// The framework itself, with made-up steps.
constexpr std::array<Migration, 3> kSteps{{
    {1, "CREATE TABLE t(x INTEGER NOT NULL);"},
    {2, "INSERT INTO t(x) VALUES (2);"},
    {3, "ALTER TABLE t ADD COLUMN y INTEGER NOT NULL DEFAULT 3; UPDATE t SET x = x * 10;"},
}};

TEST(MigrationFramework, AppliesPendingStepsInOrder) {
  Database db(":memory:", OpenMode::read_write_create);
  storage_detail::migrate(db, std::span(kSteps).first(1));
  EXPECT_EQ(storage_detail::user_version(db), 1);
  storage_detail::migrate(db, kSteps);
  EXPECT_EQ(storage_detail::user_version(db), 3);
  auto q = db.query("SELECT x, y FROM t");
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.int64(0), 20);  // step 2 ran before step 3
  EXPECT_EQ(q.int64(1), 3);
  EXPECT_FALSE(q.step());
}

TEST(MigrationFramework, UpToDateFileIsLeftAlone) {
  Database db(":memory:", OpenMode::read_write_create);
  storage_detail::migrate(db, kSteps);
  storage_detail::migrate(db, kSteps);  // would fail: table t exists
  EXPECT_EQ(storage_detail::user_version(db), 3);
}

TEST(MigrationFramework, AFailingStepLeavesTheFileAtItsVersion) {
  static constexpr std::array<Migration, 2> kBroken{{
      {1, "CREATE TABLE t(x INTEGER);"},
      {2, "CREATE TABLE broken(;"},
  }};
  Database db(":memory:", OpenMode::read_write_create);
  EXPECT_THROW(storage_detail::migrate(db, kBroken), StorageError);
  EXPECT_EQ(storage_detail::user_version(db), 0);
  EXPECT_EQ(db.pragma_int("SELECT count(*) FROM sqlite_schema WHERE name = 't'"), 0);
}

TEST(MigrationFramework, RejectsMisnumberedSteps) {
  static constexpr std::array<Migration, 2> kGap{{{1, "SELECT 1;"}, {3, "SELECT 1;"}}};
  Database db(":memory:", OpenMode::read_write_create);
  EXPECT_THROW(storage_detail::migrate(db, kGap), std::logic_error);
}

TEST(Migrations, FileFromANewerBuildIsRefused) {
  TempDir dir;
  const auto path = dir.file("future.db");
  {
    Database db(path, OpenMode::read_write_create);
    db.exec("PRAGMA user_version = 99");
  }
  try {
    (void)Store::open(path);
    FAIL() << "expected StorageError";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)Store::open(path, Access::read_only), StorageError);
}

TEST(Migrations, ReadOnlyDoesNotMigrate) {
  TempDir dir;
  const auto path = dir.file("v0.db");
  std::ofstream(path).close();
  EXPECT_THROW((void)Store::open(path, Access::read_only), StorageError);
  (void)Store::open(path, Access::tool);
  Store ro = Store::open(path, Access::read_only);
  EXPECT_EQ(ro.schema_version(), storage_detail::latest_version());
  EXPECT_THROW(ro.begin_scan("j", Technique::syn, at(0)), StorageError);
}

}  // namespace
}  // namespace portvigil
