// Schedule is pure: every test passes explicit time points, nothing sleeps.
#include "schedule.hpp"

#include <gtest/gtest.h>

namespace portvigil {
namespace {

using Clock = Schedule::Clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(1000);

Schedule::JobTiming job(std::string name, double interval, double jitter = 0) {
  return {std::move(name), Schedule::Duration(interval), Schedule::Duration(jitter)};
}

TEST(Schedule, FirstRunIsDueImmediately) {
  Schedule s(1);
  s.set_jobs({job("a", 60)}, kT0);
  ASSERT_TRUE(s.next_due());
  EXPECT_EQ(*s.next_due(), kT0);
  EXPECT_EQ(s.take_due(kT0), "a");
}

TEST(Schedule, FirstRunJitterStaysWithinBounds) {
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    Schedule s(seed);
    s.set_jobs({job("a", 60, 5)}, kT0);
    ASSERT_TRUE(s.next_due());
    const auto due = *s.next_due();
    EXPECT_GE(due, kT0);
    EXPECT_LE(due, kT0 + seconds(5));
    if (due > kT0) {
      EXPECT_EQ(s.take_due(kT0), std::nullopt);
    }
    EXPECT_EQ(s.take_due(kT0 + seconds(5)), "a");
  }
}

TEST(Schedule, NothingDueWithoutJobs) {
  Schedule s(1);
  s.set_jobs({}, kT0);
  EXPECT_EQ(s.next_due(), std::nullopt);
  EXPECT_EQ(s.take_due(kT0 + std::chrono::hours(10)), std::nullopt);
}

TEST(Schedule, RunningJobIsNeverHandedOutTwice) {
  Schedule s(1);
  s.set_jobs({job("a", 1)}, kT0);
  ASSERT_EQ(s.take_due(kT0), "a");
  EXPECT_EQ(s.next_due(), std::nullopt) << "the only job is running";
  for (int h = 0; h < 5; ++h) {
    EXPECT_EQ(s.take_due(kT0 + std::chrono::hours(h)), std::nullopt);
  }
  s.finished("a", kT0, kT0 + std::chrono::hours(5), true);
  EXPECT_EQ(s.take_due(kT0 + std::chrono::hours(5)), "a");
  EXPECT_EQ(s.take_due(kT0 + std::chrono::hours(5)), std::nullopt);
}

TEST(Schedule, NextRunIsStartPlusInterval) {
  Schedule s(1);
  s.set_jobs({job("a", 60)}, kT0);
  ASSERT_EQ(s.take_due(kT0), "a");
  s.finished("a", kT0, kT0 + seconds(7), true);
  ASSERT_TRUE(s.next_due());
  EXPECT_EQ(*s.next_due(), kT0 + seconds(60));
  EXPECT_EQ(s.take_due(kT0 + seconds(59)), std::nullopt);
  EXPECT_EQ(s.take_due(kT0 + seconds(60)), "a");
}

TEST(Schedule, NextRunJitterStaysWithinBounds) {
  bool varied = false;
  std::optional<Clock::time_point> first;
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    Schedule s(seed);
    s.set_jobs({job("a", 60, 10)}, kT0);
    const auto start = kT0 + seconds(10);
    ASSERT_EQ(s.take_due(start), "a");
    s.finished("a", start, start + seconds(3), true);
    ASSERT_TRUE(s.next_due());
    const auto due = *s.next_due();
    EXPECT_GE(due, start + seconds(60));
    EXPECT_LE(due, start + seconds(70));
    if (first && *first != due) varied = true;
    first = due;
  }
  EXPECT_TRUE(varied) << "jitter never varied over 50 seeds";
}

TEST(Schedule, StallYieldsExactlyOneRun) {
  Schedule s(1);
  s.set_jobs({job("a", 10)}, kT0);
  ASSERT_EQ(s.take_due(kT0), "a");
  // The scan (or a suspend) took 100 intervals.
  const auto now = kT0 + seconds(1000);
  s.finished("a", kT0, now, true);
  ASSERT_TRUE(s.next_due());
  EXPECT_EQ(*s.next_due(), now);
  ASSERT_EQ(s.take_due(now), "a");
  EXPECT_EQ(s.take_due(now), std::nullopt);
  // The make-up run is quick: the next one is one interval after it, not a backlog.
  s.finished("a", now, now + milliseconds(100), true);
  EXPECT_EQ(s.take_due(now + milliseconds(100)), std::nullopt);
  EXPECT_EQ(s.take_due(now + seconds(9)), std::nullopt);
  ASSERT_TRUE(s.next_due());
  EXPECT_EQ(*s.next_due(), now + seconds(10));
}

TEST(Schedule, StallWhileIdleYieldsOneRun) {
  // The agent loop was not called for a long time (suspend): one due run, then back to
  // the interval.
  Schedule s(1);
  s.set_jobs({job("a", 10)}, kT0);
  ASSERT_EQ(s.take_due(kT0), "a");
  s.finished("a", kT0, kT0 + seconds(1), true);
  const auto late = kT0 + seconds(500);
  ASSERT_EQ(s.take_due(late), "a");
  EXPECT_EQ(s.take_due(late), std::nullopt);
  s.finished("a", late, late + seconds(1), true);
  EXPECT_EQ(s.take_due(late + seconds(1)), std::nullopt);
  EXPECT_EQ(*s.next_due(), late + seconds(10));
}

TEST(Schedule, FailureBacksOffAndCapsAtInterval) {
  Schedule s(1);
  s.set_jobs({job("a", 30)}, kT0);
  auto now = kT0;
  const double want[] = {10, 20, 30, 30, 30};
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE(i);
    ASSERT_EQ(s.take_due(now), "a");
    const auto end = now + seconds(2);
    s.finished("a", now, end, false);
    EXPECT_EQ(s.failures("a"), i + 1);
    ASSERT_TRUE(s.next_due());
    EXPECT_EQ(*s.next_due(),
              end + std::chrono::duration_cast<Clock::duration>(Schedule::Duration(want[i])));
    now = *s.next_due();
  }
  // Success resets the count and returns to the normal interval.
  ASSERT_EQ(s.take_due(now), "a");
  s.finished("a", now, now + seconds(1), true);
  EXPECT_EQ(s.failures("a"), 0);
  EXPECT_EQ(*s.next_due(), now + seconds(30));
}

TEST(Schedule, BackoffDoublesFromTenSeconds) {
  Schedule s(1);
  s.set_jobs({job("a", 3600)}, kT0);
  auto now = kT0;
  const double want[] = {10, 20, 40, 80};
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(s.take_due(now), "a");
    s.finished("a", now, now, false);
    EXPECT_EQ(*s.next_due(),
              now + std::chrono::duration_cast<Clock::duration>(Schedule::Duration(want[i])));
    now = *s.next_due();
  }
  ASSERT_EQ(s.take_due(now), "a");
  s.finished("a", now, now, true);
  EXPECT_EQ(s.failures("a"), 0);
  // The next failure starts over at 10 s.
  now = *s.next_due();
  ASSERT_EQ(s.take_due(now), "a");
  s.finished("a", now, now, false);
  EXPECT_EQ(*s.next_due(), now + seconds(10));
}

TEST(Schedule, ReloadKeepsSurvivorsDropsRemovedAddsNew) {
  Schedule s(1);
  s.set_jobs({job("a", 60), job("b", 120)}, kT0);
  ASSERT_TRUE(s.take_due(kT0));
  ASSERT_TRUE(s.take_due(kT0));
  s.finished("a", kT0, kT0 + seconds(1), true);  // next a: T0+60
  s.finished("b", kT0, kT0 + seconds(1), true);  // next b: T0+120
  const auto reload = kT0 + seconds(5);
  s.set_jobs({job("b", 120), job("c", 60)}, reload);
  // c is new: due at once; a is gone; b keeps T0+120.
  ASSERT_TRUE(s.next_due());
  EXPECT_EQ(*s.next_due(), reload);
  EXPECT_EQ(s.take_due(reload), "c");
  EXPECT_EQ(s.take_due(kT0 + seconds(60)), std::nullopt) << "removed job a still scheduled";
  EXPECT_EQ(s.failures("a"), 0);
  ASSERT_TRUE(s.next_due());
  EXPECT_EQ(*s.next_due(), kT0 + seconds(120));
  EXPECT_EQ(s.take_due(kT0 + seconds(119)), std::nullopt);
  EXPECT_EQ(s.take_due(kT0 + seconds(120)), "b");
}

TEST(Schedule, ReloadClampsSurvivorToShorterInterval) {
  Schedule s(1);
  s.set_jobs({job("a", 3600)}, kT0);
  ASSERT_EQ(s.take_due(kT0), "a");
  s.finished("a", kT0, kT0, true);  // next: T0+1h
  const auto reload = kT0 + seconds(10);
  s.set_jobs({job("a", 60)}, reload);
  EXPECT_EQ(*s.next_due(), reload + seconds(60));
}

TEST(Schedule, ReloadKeepsRunningFlagAndFailures) {
  Schedule s(1);
  s.set_jobs({job("a", 60), job("b", 60)}, kT0);
  ASSERT_EQ(s.take_due(kT0), "a");
  s.finished("a", kT0, kT0, false);
  ASSERT_TRUE(s.take_due(kT0 + seconds(10)));  // "a" again (backoff 10s) or "b"
  s.set_jobs({job("a", 60), job("b", 60)}, kT0 + seconds(11));
  EXPECT_GE(s.failures("a"), 1);
  // Exactly one job is running after the reload; only the other can be taken.
  const auto taken = s.take_due(kT0 + seconds(100));
  ASSERT_TRUE(taken);
  EXPECT_EQ(s.take_due(kT0 + seconds(100)), std::nullopt);
}

TEST(Schedule, NextDueIsMinimumOverIdleJobs) {
  Schedule s(1);
  s.set_jobs({job("a", 60), job("b", 30), job("c", 90)}, kT0);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s.take_due(kT0));
  EXPECT_EQ(s.next_due(), std::nullopt);
  s.finished("a", kT0, kT0 + seconds(1), true);  // T0+60
  EXPECT_EQ(*s.next_due(), kT0 + seconds(60));
  s.finished("c", kT0, kT0 + seconds(1), true);  // T0+90
  EXPECT_EQ(*s.next_due(), kT0 + seconds(60));
  s.finished("b", kT0, kT0 + seconds(1), true);  // T0+30
  EXPECT_EQ(*s.next_due(), kT0 + seconds(30));
  // b taken (running): the minimum over the idle ones is a's.
  ASSERT_EQ(s.take_due(kT0 + seconds(30)), "b");
  EXPECT_EQ(*s.next_due(), kT0 + seconds(60));
}

TEST(Schedule, TakeDuePicksTheMostOverdueFirst) {
  Schedule s(1);
  s.set_jobs({job("a", 60), job("b", 30)}, kT0);
  ASSERT_TRUE(s.take_due(kT0));
  ASSERT_TRUE(s.take_due(kT0));
  s.finished("a", kT0, kT0, true);  // T0+60
  s.finished("b", kT0, kT0, true);  // T0+30
  EXPECT_EQ(s.take_due(kT0 + seconds(100)), "b");
  EXPECT_EQ(s.take_due(kT0 + seconds(100)), "a");
}

}  // namespace
}  // namespace portvigil
