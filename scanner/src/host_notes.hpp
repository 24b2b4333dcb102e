// The notes an engine writes on a host result, in one place so that every engine says the
// same thing about the same situation.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace portvigil::engine::note {

inline constexpr const char* kOutOfScope = "not scanned: outside the authorized scope";
inline constexpr const char* kInterruptedAfterDiscovery =
    "scan interrupted before its ports were probed";
inline constexpr const char* kLossTooHigh =
    "loss too high to trust silence: unanswered ports may not be filtered";

// Unanswered ports are left out of a cut-short host's result, never guessed.
inline std::string host_timeout(double limit_s, std::size_t unanswered, std::size_t total) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "host timeout after %.1fs: %zu of %zu ports unanswered", limit_s,
                unanswered, total);
  return buf;
}
inline std::string interrupted(std::size_t unanswered, std::size_t total) {
  return "scan interrupted: " + std::to_string(unanswered) + " of " + std::to_string(total) +
         " ports unanswered";
}

}  // namespace portvigil::engine::note
