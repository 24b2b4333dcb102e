// A probe budget shared by every scan in one process: the agent's max-rate over all the
// jobs it runs at once (each job's own max-rate is its engine's pacer). Engines take from
// it after their own pacer, so the tighter of the two wins.
//
// GCRA on one atomic: `tat_ns_` is when the next probe would be due if the budget were
// used to the full; a probe may go when that time is at most kBurst ahead of now. Lock-free,
// so concurrent senders never wait on each other's locks, and nothing is allocated.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>

namespace portvigil {

class RateBudget {
 public:
  using Clock = std::chrono::steady_clock;
  // How far ahead of now the budget may be spent: a short burst after a pause.
  static constexpr std::chrono::nanoseconds kBurst{std::chrono::milliseconds(10)};

  explicit RateBudget(double probes_per_second = 0) { set_rate(probes_per_second); }
  RateBudget(const RateBudget&) = delete;
  RateBudget& operator=(const RateBudget&) = delete;

  // <= 0: unlimited. Takes effect for the next probe (a SIGHUP while jobs run).
  void set_rate(double probes_per_second) {
    const double step = probes_per_second > 0 ? 1e9 / probes_per_second : 0;
    interval_ns_.store(static_cast<std::int64_t>(std::clamp(step, 0.0, 3600e9)),
                       std::memory_order_relaxed);
  }
  [[nodiscard]] double rate() const {
    const auto step = interval_ns_.load(std::memory_order_relaxed);
    return step > 0 ? 1e9 / static_cast<double>(step) : 0;
  }
  [[nodiscard]] bool unlimited() const { return interval_ns_.load(std::memory_order_relaxed) <= 0; }

  // Takes one probe's worth of budget if it is there now.
  [[nodiscard]] bool try_take(Clock::time_point now) {
    const std::int64_t step = interval_ns_.load(std::memory_order_relaxed);
    if (step <= 0) return true;
    const std::int64_t n = ns(now);
    std::int64_t due = tat_ns_.load(std::memory_order_relaxed);
    for (;;) {
      const std::int64_t base = std::max(due, n);
      if (base - n > kBurst.count()) return false;
      if (tat_ns_.compare_exchange_weak(due, base + step, std::memory_order_relaxed)) return true;
    }
  }

  // A probe's worth taken but not used (nothing was left to send): back for the others.
  void give_back() {
    const std::int64_t step = interval_ns_.load(std::memory_order_relaxed);
    if (step > 0) tat_ns_.fetch_sub(step, std::memory_order_relaxed);
  }

  // How long until try_take can succeed (zero when it can now).
  [[nodiscard]] std::chrono::duration<double> until_next(Clock::time_point now) const {
    if (unlimited()) return std::chrono::duration<double>(0);
    const std::int64_t wait = tat_ns_.load(std::memory_order_relaxed) - ns(now) - kBurst.count();
    return std::chrono::duration<double>(static_cast<double>(std::max<std::int64_t>(wait, 0)) /
                                         1e9);
  }

 private:
  static std::int64_t ns(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }
  std::atomic<std::int64_t> interval_ns_{0};  // 0: unlimited
  std::atomic<std::int64_t> tat_ns_{std::numeric_limits<std::int64_t>::min() / 2};
  static_assert(std::atomic<std::int64_t>::is_always_lock_free);
};

}  // namespace portvigil
