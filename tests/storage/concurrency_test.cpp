// A second connection reads in a loop while the agent commits: thanks to WAL it never waits
// or fails, and because each scan is one transaction it never sees part of a scan.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "portvigil/storage/store.hpp"
#include "storage_test_util.hpp"

namespace portvigil {
namespace {

using test::at;
using test::make_host;
using test::TempDir;

constexpr int kHosts = 3;
constexpr std::uint16_t kPorts = 4000;

// Scan k opens exactly ports k, k+1000 and k+2000 on every host.
std::vector<HostResult> scan_number(int k) {
  std::vector<HostResult> hosts;
  for (int h = 0; h < kHosts; ++h) {
    const auto p = static_cast<std::uint16_t>(k);
    hosts.push_back(make_host("h" + std::to_string(h), 1, kPorts, PortState::closed,
                              {{p, PortState::open},
                               {static_cast<std::uint16_t>(p + 1000), PortState::open},
                               {static_cast<std::uint16_t>(p + 2000), PortState::open}}));
  }
  return hosts;
}

TEST(Concurrency, ReaderNeverSeesAPartialScan) {
  TempDir dir;
  const auto path = dir.file("state.db");
  Store writer = Store::open(path);

  std::atomic<bool> done{false};
  std::atomic<int> commit_generation{0};  // odd while a commit runs
  std::atomic<int> reads{0};
  std::atomic<int> reads_during_commits{0};  // began and ended while a commit ran
  std::atomic<bool> reader_running{true};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  auto fail = [&](std::string what) {
    std::lock_guard lock(failures_mutex);
    failures.push_back(std::move(what));
  };

  std::thread reader([&] {
    try {
      Store r = Store::open(path, Access::read_only);
      while (!done.load()) {
        const int generation_before = commit_generation.load();
        // Every host is either unscanned or shows one whole scan: three open ports k,
        // k+1000, k+2000 and nothing else.
        for (int h = 0; h < kHosts; ++h) {
          const auto snap = r.baseline("job", "h" + std::to_string(h));
          if (!snap.exists) continue;
          const ProtoSnapshot* tcp = snap.find(Proto::tcp);
          if (tcp == nullptr || tcp->exceptions.size() != 3 || tcp->port_count() != kPorts) {
            fail("host with a partial state");
            continue;
          }
          const auto k = tcp->exceptions[0].first;
          if (tcp->exceptions[1].first != k + 1000 || tcp->exceptions[2].first != k + 2000) {
            fail("host mixes two scans");
          }
        }
        // Across hosts, in one read transaction: each scan after the first adds exactly 6
        // transitions (and events) per host.
        const auto st = r.stats();
        if (st.transitions % (6 * kHosts) != 0 || st.events != st.transitions) {
          fail("saw " + std::to_string(st.transitions) + " transitions");
        }
        ++reads;
        // Began and ended inside one and the same commit.
        if (generation_before % 2 == 1 && commit_generation.load() == generation_before) {
          ++reads_during_commits;
        }
      }
    } catch (const std::exception& e) {
      fail(e.what());
    }
    reader_running = false;
  });

  // A CLI tool writing concurrently waits its turn through busy_timeout.
  std::thread tool([&] {
    try {
      Store t = Store::open(path, Access::tool);
      while (!done.load()) {
        (void)t.accept_baseline({.job = "job"});
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    } catch (const std::exception& e) {
      fail(std::string("tool: ") + e.what());
    }
  });

  // At least 30 scans, and on until the reader has read a few times in the middle of a
  // commit (the case this test is about), within a bound.
  constexpr int kMinScans = 30, kMaxScans = 900;
  int scans = 0;
  for (int k = 1; k <= kMaxScans && (k <= kMinScans || reads_during_commits.load() < 3); ++k) {
    const auto id = writer.begin_scan("job", Technique::syn, at(k * 900));
    ++commit_generation;
    writer.commit_scan(id, scan_number(k), {}, at(k * 900 + 60));
    ++commit_generation;
    scans = k;
  }
  // Let the reader observe the final state at least once.
  const int before = reads.load();
  RecordProperty("reads_during_commits", reads_during_commits.load());
  while (reader_running.load() && reads.load() < before + 2) std::this_thread::yield();
  done = true;
  reader.join();
  tool.join();

  EXPECT_TRUE(failures.empty()) << failures.front();
  EXPECT_GT(reads.load(), 0);
  EXPECT_GE(reads_during_commits.load(), 3) << "the reader never overlapped a commit";
  EXPECT_EQ(writer.stats().transitions, static_cast<std::size_t>(6 * kHosts * (scans - 1)));
  EXPECT_TRUE(writer.integrity_problems().empty());
}

}  // namespace
}  // namespace portvigil
