// Small pieces both scan engines share.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>

#include "portvigil/common/scan_model.hpp"
#include "portvigil/scanner/engine.hpp"

namespace portvigil::engine {

// Hosts are scanned in groups of about `pair_budget` (host, port) pairs, so a /16 never
// sits in memory at once while a group still keeps the probe window busy.
inline std::size_t group_size(std::size_t nports, std::size_t pair_budget, std::size_t max_hosts) {
  return nports == 0 ? 1 : std::clamp<std::size_t>(pair_budget / nports, 1, max_hosts);
}

// Fills a finished scan's closing fields: end time, elapsed time, effective probe rate.
inline void finish_summary(ScanSummary& s, std::chrono::steady_clock::time_point started,
                           bool interrupted) {
  s.interrupted = s.interrupted || interrupted;
  s.end = std::chrono::system_clock::now();
  s.elapsed = std::chrono::steady_clock::now() - started;
  if (s.elapsed.count() > 0) {
    s.counters.effective_rate = static_cast<double>(s.counters.probes_sent) / s.elapsed.count();
  }
}

// The raw engine driving the host-discovery probe (raw::ping_probe()) over plan.ports =
// raw::ping_ports(): one engine core for discovery and port scans.
[[nodiscard]] std::unique_ptr<ScanEngine> make_raw_ping_engine(RawOptions options);

}  // namespace portvigil::engine
