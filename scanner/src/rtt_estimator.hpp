// Round-trip times and the probe timeout they give: one estimator for both engines, kept per
// host and per group as Nmap does. A host's timeout comes from its own samples once it has
// some; before that, from the initial timeout, or its group's when the group has shown
// that the path is slower than that.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>

#include "portvigil/scanner/engine.hpp"

namespace portvigil::engine {

// --initial-rtt-timeout, --min-rtt-timeout, --max-rtt-timeout in seconds.
struct TimeoutBounds {
  double initial = 0.5;
  double min = 0.1;
  double max = 1.25;
  [[nodiscard]] static TimeoutBounds of(const TimingOptions& t) {
    return {t.initial_rtt_timeout.count(), t.min_rtt_timeout.count(), t.max_rtt_timeout.count()};
  }
};

// RFC 6298 smoothed round-trip time (alpha 1/8, beta 1/4). Feed it only unambiguous samples
// (Karn: answers to a probe's first transmission).
class RttEstimator {
 public:
  // A sample that is not a finite, non-negative time (a clock that went backwards, a stamp
  // torn by a race) is dropped rather than poisoning the estimate.
  void sample(double rtt_s) {
    if (!std::isfinite(rtt_s) || rtt_s < 0) return;
    if (samples_ == 0) {
      srtt_ = rtt_s;
      rttvar_ = rtt_s / 2;
    } else {
      rttvar_ = 0.75 * rttvar_ + 0.25 * std::abs(srtt_ - rtt_s);
      srtt_ = 0.875 * srtt_ + 0.125 * rtt_s;
    }
    ++samples_;
  }
  [[nodiscard]] bool has_sample() const { return samples_ > 0; }
  [[nodiscard]] std::uint64_t samples() const { return samples_; }
  [[nodiscard]] double srtt() const { return srtt_; }
  [[nodiscard]] double rttvar() const { return rttvar_; }
  // srtt + 4 rttvar within the bounds; the initial timeout before the first sample.
  [[nodiscard]] double timeout(const TimeoutBounds& b) const {
    if (samples_ == 0) return b.initial;
    return std::clamp(srtt_ + 4 * rttvar_, b.min, std::max(b.min, b.max));
  }

 private:
  double srtt_ = 0;
  double rttvar_ = 0;
  std::uint64_t samples_ = 0;
};

// How long to wait before giving up on one probe to a host: its own estimate, else the
// longer of the initial timeout and its group's. Never shorter than the initial timeout for
// a host that has not answered yet: fast neighbours must not make a slower host time out
// on every attempt and so never get a sample of its own.
[[nodiscard]] inline double probe_timeout(const RttEstimator& host, const RttEstimator& group,
                                          const TimeoutBounds& b) {
  return host.has_sample() ? host.timeout(b) : std::max(group.timeout(b), b.initial);
}

// How long the raw engine waits before retransmitting to a host (timeouts in microseconds):
// its own estimate once it has one; the group's for a host that has answered nothing yet, as
// Nmap does (an address nobody holds must not cost the initial timeout on every
// retransmission); and never less than the initial timeout for a host that answers, but only
// after retransmissions, which Karn's rule leaves without a sample: fast neighbours must not
// make every retransmission to a slower host leave before its answer could.
[[nodiscard]] inline std::chrono::microseconds retransmit_timeout(std::uint32_t own_us,
                                                                  std::uint32_t group_us,
                                                                  std::uint32_t initial_us,
                                                                  bool answered_any) {
  if (own_us != 0) return std::chrono::microseconds(own_us);
  return std::chrono::microseconds(answered_any ? std::max(group_us, initial_us) : group_us);
}

// How long a probe last sent at `sent_us` still waits, at `now_us`, before it is due for
// retransmission after `timeout`; zero once it is due. Both stamps are a 32-bit microsecond
// clock that wraps every 71.6 minutes: the signed difference is right for 35.8 minutes, and a
// stamp that reads as later than now is older than that, so long due. A probe never sent
// (its send was deferred) has nothing to wait for.
[[nodiscard]] inline std::chrono::microseconds until_due(std::uint32_t now_us,
                                                         std::uint32_t sent_us, bool ever_sent,
                                                         std::chrono::microseconds timeout) {
  if (!ever_sent) return std::chrono::microseconds(0);
  const auto since = static_cast<std::int32_t>(now_us - sent_us);
  if (since < 0) return std::chrono::microseconds(0);
  return std::max(std::chrono::microseconds(0), timeout - std::chrono::microseconds(since));
}

}  // namespace portvigil::engine
