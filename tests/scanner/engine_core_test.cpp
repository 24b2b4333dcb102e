// The pieces of the engine core both engines share, called directly: the RTT estimator and
// the timeout it gives, the pacer and its rate adaptation, the progress meter, host notes.
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "host_notes.hpp"
#include "pacer.hpp"
#include "progress_meter.hpp"
#include "rtt_estimator.hpp"

namespace portvigil::engine {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr TimeoutBounds kBounds{0.5, 0.1, 1.25};

TEST(RttEstimator, FollowsRfc6298) {
  RttEstimator e;
  EXPECT_FALSE(e.has_sample());
  EXPECT_DOUBLE_EQ(e.timeout(kBounds), 0.5);  // the initial timeout before any sample
  e.sample(0.2);
  EXPECT_DOUBLE_EQ(e.srtt(), 0.2);
  EXPECT_DOUBLE_EQ(e.rttvar(), 0.1);
  EXPECT_DOUBLE_EQ(e.timeout(kBounds), 0.6);  // 0.2 + 4 * 0.1
  e.sample(0.4);
  EXPECT_DOUBLE_EQ(e.rttvar(), 0.75 * 0.1 + 0.25 * 0.2);
  EXPECT_DOUBLE_EQ(e.srtt(), 0.875 * 0.2 + 0.125 * 0.4);
  EXPECT_EQ(e.samples(), 2u);
}

TEST(RttEstimator, TimeoutStaysWithinTheBounds) {
  RttEstimator fast;
  fast.sample(0.0001);
  EXPECT_DOUBLE_EQ(fast.timeout(kBounds), 0.1);
  RttEstimator slow;
  slow.sample(30);
  EXPECT_DOUBLE_EQ(slow.timeout(kBounds), 1.25);
  // A maximum below the minimum (never accepted by the CLI) still yields the minimum.
  EXPECT_DOUBLE_EQ(slow.timeout(TimeoutBounds{0.5, 0.2, 0.1}), 0.2);
}

TEST(RttEstimator, HostileSamplesAreDropped) {
  RttEstimator e;
  e.sample(-1);
  e.sample(std::numeric_limits<double>::quiet_NaN());
  e.sample(std::numeric_limits<double>::infinity());
  EXPECT_FALSE(e.has_sample());
  e.sample(0.3);
  e.sample(-0.3);
  EXPECT_EQ(e.samples(), 1u);
  EXPECT_DOUBLE_EQ(e.srtt(), 0.3);
}

TEST(RttEstimator, AHostWithoutSamplesWaitsAtLeastTheInitialTimeout) {
  RttEstimator host;
  RttEstimator group;
  EXPECT_DOUBLE_EQ(probe_timeout(host, group, kBounds), 0.5);
  // Fast neighbours do not shorten it: a slower host would time out on every attempt.
  group.sample(0.05);
  EXPECT_DOUBLE_EQ(probe_timeout(host, group, kBounds), 0.5);
  // A slow group lengthens it.
  RttEstimator slow_group;
  slow_group.sample(0.2);  // 0.2 + 4 * 0.1
  EXPECT_DOUBLE_EQ(probe_timeout(host, slow_group, kBounds), 0.6);
  // Its own samples decide once it has some.
  host.sample(0.01);
  EXPECT_DOUBLE_EQ(probe_timeout(host, slow_group, kBounds), 0.1);
}

TEST(RttEstimator, RetransmitTimeoutOfHostsWithoutASample) {
  using std::chrono::microseconds;
  // Its own estimate wins.
  EXPECT_EQ(retransmit_timeout(150'000, 100'000, 500'000, true), microseconds(150'000));
  // Silent so far (an unused address, a firewalled host): the group's, however short.
  EXPECT_EQ(retransmit_timeout(0, 100'000, 500'000, false), microseconds(100'000));
  // Answers only after retransmissions (no sample, Karn): at least the initial timeout.
  EXPECT_EQ(retransmit_timeout(0, 100'000, 500'000, true), microseconds(500'000));
  EXPECT_EQ(retransmit_timeout(0, 900'000, 500'000, true), microseconds(900'000));
}

TEST(RttEstimator, RetransmissionIsDueAfterTheTimeoutAcrossTheClocksWrap) {
  using std::chrono::microseconds;
  const microseconds timeout(100'000);
  EXPECT_EQ(until_due(1'030'000, 1'000'000, true, timeout), microseconds(70'000));
  EXPECT_EQ(until_due(1'100'000, 1'000'000, true, timeout), microseconds(0));
  EXPECT_EQ(until_due(1'500'000, 1'000'000, true, timeout), microseconds(0));
  // The 32-bit microsecond clock wrapped between the send and now.
  EXPECT_EQ(until_due(20'000, 0xFFFF'FFFFu - 9'999, true, timeout), microseconds(70'000));
  // More than 35.8 minutes ago: the difference reads as negative; long due, never a wait.
  EXPECT_EQ(until_due(0x8000'0000u + 5, 0, true, timeout), microseconds(0));
  // Never sent (a deferred send): nothing to wait for, whatever the stale stamp says.
  EXPECT_EQ(until_due(10, 0, false, timeout), microseconds(0));
  EXPECT_EQ(until_due(1'000'000, 1'000'000, false, timeout), microseconds(0));
}

// Tokens taken over `seconds` of simulated time, asking every 10 us.
int tokens_over(Pacer& p, Clock::time_point& now, double seconds) {
  int taken = 0;
  const auto end =
      now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (now < end) {
    while (p.try_take(now)) ++taken;
    now += std::chrono::microseconds(10);
  }
  return taken;
}

TEST(Pacer, PacesAtItsRateAfterTheBurst) {
  auto now = Clock::now();
  Pacer p(10000, 500, 10000, milliseconds(1), now);
  int taken = tokens_over(p, now, 1.0);
  while (p.try_take(now)) ++taken;  // whatever is due at the end
  EXPECT_GE(taken, 9990);
  EXPECT_LE(taken, 10012);  // the rate plus at most one burst (10 tokens) and the first token
  // The next token is due within one token's time, and not before.
  const auto wait = p.until_next();
  EXPECT_GT(wait.count(), 0);
  EXPECT_LE(wait.count(), 1.0 / 10000 + 1e-12);
  EXPECT_FALSE(p.try_take(now + std::chrono::duration_cast<Clock::duration>(wait / 2)));
  EXPECT_TRUE(p.try_take(now + std::chrono::duration_cast<Clock::duration>(wait) +
                         std::chrono::microseconds(1)));
}

TEST(Pacer, IdleTimeBuysOnlyOneBurst) {
  auto now = Clock::now();
  Pacer p(10000, 500, 10000, milliseconds(1), now);
  now += std::chrono::seconds(10);
  int taken = 0;
  while (p.try_take(now)) ++taken;
  EXPECT_EQ(taken, 10);
}

TEST(Pacer, UnlimitedNeverWaits) {
  auto now = Clock::now();
  Pacer p(0, 500, 1e6, milliseconds(1), now);
  EXPECT_TRUE(p.unlimited());
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(p.try_take(now));
  EXPECT_EQ(p.until_next().count(), 0);
  p.back_off();
  p.speed_up();
  EXPECT_TRUE(p.unlimited());
}

TEST(Pacer, SlowStartThenHalvingThenAdditiveIncrease) {
  auto now = Clock::now();
  Pacer p(100000, 500, 1000000, milliseconds(1), now);
  p.speed_up();
  EXPECT_DOUBLE_EQ(p.rate(), 200000);  // slow start: x2
  for (int i = 0; i < 20; ++i) p.speed_up();
  EXPECT_DOUBLE_EQ(p.rate(), 1000000);  // never past the ceiling
  p.back_off();
  EXPECT_DOUBLE_EQ(p.rate(), 500000);
  p.speed_up();  // congestion avoidance: + start / 8
  EXPECT_DOUBLE_EQ(p.rate(), 512500);
  p.speed_up();
  EXPECT_DOUBLE_EQ(p.rate(), 525000);
}

// A sender that learns of loss only a pass later grows by a quarter per window.
TEST(Pacer, BlindSlowStartGrowsByAQuarter) {
  Pacer p(100000, 500, 1000000, milliseconds(1), Clock::now(), Pacer::kBlindSlowStart);
  p.speed_up();
  EXPECT_DOUBLE_EQ(p.rate(), 125000);
}

TEST(Pacer, LossNeverTakesTheRateBelowTheFloor) {
  auto now = Clock::now();
  Pacer p(2000, 500, 2000, milliseconds(1), now);
  for (int i = 0; i < 10; ++i) p.back_off();
  EXPECT_DOUBLE_EQ(p.rate(), 500);
  // A rate below the floor is kept as given: the floor never raises it.
  Pacer slow(100, 500, 100, milliseconds(1), now);
  slow.back_off();
  EXPECT_DOUBLE_EQ(slow.rate(), 100);
  slow.speed_up();
  EXPECT_DOUBLE_EQ(slow.rate(), 100);  // the ceiling is the rate given (--max-rate)
}

TEST(Pacer, ARaisedRateIsFelt) {
  auto now = Clock::now();
  Pacer p(1000, 500, 100000, milliseconds(1), now);
  const int before = tokens_over(p, now, 0.1);
  for (int i = 0; i < 10; ++i) p.speed_up();
  const int after = tokens_over(p, now, 0.1);
  EXPECT_NEAR(before, 100, 2);
  EXPECT_GT(after, 50 * before);  // 2^10 = 1024, capped at the ceiling: 100x
}

TEST(ProgressMeter, ReportsAtMostOncePerInterval) {
  std::vector<Progress> seen;
  RunControl control;
  control.progress_every = std::chrono::seconds(1);
  control.on_progress = [&](const Progress& p) { seen.push_back(p); };
  ProgressMeter meter(control);
  const auto t0 = Clock::now();
  meter.start(t0, 1000);
  meter.maybe_report(t0 + milliseconds(500), 10, 0, 100);
  EXPECT_TRUE(seen.empty());
  meter.maybe_report(t0 + milliseconds(1000), 20, 1, 2000);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].probes_done, 20u);
  EXPECT_EQ(seen[0].probes_total, 1000u);
  EXPECT_EQ(seen[0].hosts_done, 1u);
  EXPECT_DOUBLE_EQ(seen[0].rate, 2000);
  EXPECT_DOUBLE_EQ(seen[0].elapsed.count(), 1.0);
  meter.maybe_report(t0 + milliseconds(1500), 30, 1, 2500);
  EXPECT_EQ(seen.size(), 1u);
  meter.maybe_report(t0 + milliseconds(3000), 40, 2, 4000);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_DOUBLE_EQ(seen[1].rate, 1000);  // 2000 probes over the 2 s since the last report
}

TEST(ProgressMeter, SilentWithoutACallbackOrInterval) {
  int calls = 0;
  RunControl no_interval;
  no_interval.on_progress = [&](const Progress&) { ++calls; };
  ProgressMeter a(no_interval);
  const auto t0 = Clock::now();
  a.start(t0, 0);
  a.maybe_report(t0 + std::chrono::hours(1), 1, 1, 1);
  RunControl no_callback;
  no_callback.progress_every = milliseconds(1);
  ProgressMeter b(no_callback);
  b.start(t0, 0);
  b.maybe_report(t0 + std::chrono::hours(1), 1, 1, 1);
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(a.enabled());
  EXPECT_FALSE(b.enabled());
}

TEST(HostNotes, SayHowManyPortsWereLeftOut) {
  EXPECT_EQ(note::host_timeout(30, 12, 1000),
            "host timeout after 30.0s: 12 of 1000 ports unanswered");
  EXPECT_EQ(note::interrupted(5, 10), "scan interrupted: 5 of 10 ports unanswered");
}

TEST(TimingTemplate, MapsNmapsTemplates) {
  const TimingOptions defaults;
  const TimingOptions normal = timing_template(3);
  EXPECT_EQ(normal.max_rate, defaults.max_rate);
  EXPECT_EQ(normal.initial_rtt_timeout, defaults.initial_rtt_timeout);
  EXPECT_EQ(normal.max_retries, defaults.max_retries);
  // Paranoid, sneaky, polite: one probe at a time, 5 min, 15 s and 0.4 s apart.
  EXPECT_DOUBLE_EQ(timing_template(0).max_rate, 1.0 / 300);
  EXPECT_DOUBLE_EQ(timing_template(1).max_rate, 1.0 / 15);
  EXPECT_DOUBLE_EQ(timing_template(2).max_rate, 2.5);
  for (int level : {0, 1, 2}) EXPECT_EQ(timing_template(level).max_parallelism, 1u);
  EXPECT_EQ(timing_template(0).initial_rtt_timeout, std::chrono::seconds(300));
  const TimingOptions insane = timing_template(5);
  EXPECT_EQ(insane.max_rtt_timeout, std::chrono::milliseconds(300));
  EXPECT_EQ(insane.min_rtt_timeout, std::chrono::milliseconds(50));
  EXPECT_EQ(insane.host_timeout, std::chrono::seconds(900));
  EXPECT_EQ(timing_template(4).max_rtt_timeout, std::chrono::milliseconds(1250));
  for (int level = 0; level <= 5; ++level) {
    const auto t = timing_template(level);
    EXPECT_LE(t.min_rtt_timeout, t.max_rtt_timeout) << level;
    EXPECT_LE(t.initial_rtt_timeout, t.max_rtt_timeout) << level;
  }
  EXPECT_THROW((void)timing_template(6), std::invalid_argument);
  EXPECT_THROW((void)timing_template(-1), std::invalid_argument);
}

}  // namespace
}  // namespace portvigil::engine
