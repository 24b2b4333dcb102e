// One pacer for both engines: a token bucket whose rate adapts between a floor and a ceiling.
//
// The adaptation is Nmap's congestion control applied to a rate: slow start (x2 per clean
// window, as TCP doubles per round trip, a window being at least two round trips; x1.25 for
// a sender blind to loss until its next pass) until the first loss, then additive increase
// (an eighth of the starting rate per clean window) above half the rate at which loss was
// last seen; each loss halves the rate. Callers decide what a window and a loss are
// (tests/scanner/engine_core_test.cpp pins the arithmetic).
#pragma once

#include <algorithm>
#include <chrono>

namespace portvigil::engine {

class Pacer {
 public:
  using Clock = std::chrono::steady_clock;

  // Slow start's growth per clean window: doubling for a sender that sees loss within the
  // window it causes it (the port scan's first pass watches its answer share), a quarter for
  // one that learns of loss only from retransmissions, a pass later (discovery).
  static constexpr double kSlowStart = 2;
  static constexpr double kBlindSlowStart = 1.25;

  // rate <= 0: unlimited (try_take always succeeds). floor and ceiling bound adaptation;
  // `burst` is how much sending time may be spent at once after an idle spell.
  Pacer(double rate, double floor, double ceiling, std::chrono::duration<double> burst,
        Clock::time_point now, double slow_start = kSlowStart)
      : rate_(rate > 0 ? rate : 0),
        floor_(std::min(floor, rate_)),
        ceiling_(std::max(ceiling, rate_)),
        step_(rate_ / 8),
        slow_start_(slow_start),
        burst_(burst.count()),
        last_refill_(now) {}

  [[nodiscard]] bool unlimited() const { return rate_ <= 0; }
  [[nodiscard]] double rate() const { return rate_; }
  [[nodiscard]] double ceiling() const { return ceiling_; }

  // Takes one token if one is ready.
  [[nodiscard]] bool try_take(Clock::time_point now) {
    if (unlimited()) return true;
    refill(now);
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }
  // A token taken but not used (nothing was left to send).
  void give_back() { tokens_ = std::min(tokens_ + 1, capacity()); }
  // Time until try_take can succeed (zero when it can now).
  [[nodiscard]] std::chrono::duration<double> until_next() const {
    if (unlimited() || tokens_ >= 1) return std::chrono::duration<double>(0);
    return std::chrono::duration<double>((1 - tokens_) / rate_);
  }

  // Loss seen: halve the rate, not below the floor; growth after this is additive.
  void back_off() {
    if (unlimited()) return;
    threshold_ = rate_ / 2;
    rate_ = std::max(rate_ / 2, floor_);
    tokens_ = std::min(tokens_, capacity());
  }
  // A window that was paced by this bucket and saw no loss: grow, not above the ceiling.
  void speed_up() {
    if (unlimited()) return;
    rate_ = std::min(rate_ < threshold_ ? rate_ * slow_start_ : rate_ + step_, ceiling_);
  }

 private:
  [[nodiscard]] double capacity() const { return std::max(1.0, rate_ * burst_); }
  void refill(Clock::time_point now) {
    const double dt = std::chrono::duration<double>(now - last_refill_).count();
    last_refill_ = now;
    if (dt > 0) tokens_ = std::min(capacity(), tokens_ + dt * rate_);
  }

  double rate_;
  double floor_;
  double ceiling_;
  double step_;
  double slow_start_;
  double threshold_ = 1e300;  // slow start until the first loss
  double burst_;
  double tokens_ = 1;
  Clock::time_point last_refill_;
};

}  // namespace portvigil::engine
