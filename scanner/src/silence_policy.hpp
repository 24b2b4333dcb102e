// When silence may be believed: one pure policy for both engines (unit tested directly in
// tests/scanner/silence_policy_test.cpp).
//
// Loss is measured, never assumed: of the transmissions of probes that were eventually
// answered, the share that went unanswered first is the per-transmission miss rate m. With
// m > 0, k silent transmissions of a probe that would answer leave silent * m^k expected
// wrong "no reply" states; k is chosen so that this stays below kTolerableWrong. With m = 0
// measured on enough answers, one quiet retransmission is enough (Nmap retransmits once when
// it sees no drops); on too few answers --max-retries decides.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace portvigil::engine {

inline constexpr double kTolerableWrong = 0.1;
inline constexpr int kMaxExtraAttempts = 6;  // beyond --max-retries + 1, under measured loss
// Answered transmissions without a single miss that make "no loss" credible.
inline constexpr std::uint64_t kLossFreeSample = 64;

struct LossEvidence {
  std::uint64_t answered_sends = 0;  // transmissions of probes that were answered
  std::uint64_t missed_sends = 0;    // of those, the ones that drew nothing (loss)
  [[nodiscard]] double miss_rate() const {
    return answered_sends == 0
               ? 0.0
               : static_cast<double>(missed_sends) / static_cast<double>(answered_sends);
  }
};

// Transmissions every probe gets before its silence can be believed at all.
[[nodiscard]] inline int min_attempts(const LossEvidence& e, int max_retries) {
  const int base = max_retries + 1;
  if (e.missed_sends == 0 && e.answered_sends >= kLossFreeSample) return std::min(base, 2);
  return base;
}

// The most transmissions a probe gets: beyond that, silence under loss is not trustworthy
// and the host is inconclusive.
[[nodiscard]] inline int max_attempts(int max_retries) {
  return max_retries == 0 ? 1 : max_retries + 1 + kMaxExtraAttempts;
}

// Silent transmissions (k above) the measured loss calls for, with `silent` probes still
// unanswered; 1 when no loss was measured.
[[nodiscard]] inline int loss_rounds(const LossEvidence& e, std::size_t silent) {
  const double m = e.miss_rate();
  if (m <= 0) return 1;
  if (m >= 1) return 1000;  // more than any attempt limit: silence is never believed
  const double s = static_cast<double>(std::max<std::size_t>(silent, 1));
  return std::max(1, static_cast<int>(std::ceil(std::log(kTolerableWrong / s) / std::log(m))));
}

}  // namespace portvigil::engine
