// One progress meter for both engines: reports through RunControl::on_progress at most once
// per RunControl::progress_every, with the probe rate over the interval since the last report.
#pragma once

#include <chrono>
#include <cstdint>

#include "portvigil/scanner/engine.hpp"

namespace portvigil::engine {

class ProgressMeter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit ProgressMeter(const RunControl& control) : control_(control) {}

  // The scan began at `started`; probes_total is 0 when unknown.
  void start(Clock::time_point started, std::uint64_t probes_total) {
    started_ = last_ = started;
    probes_total_ = probes_total;
    sent_at_last_ = 0;
  }

  // The work became known later (targets fed while the scan runs).
  void set_total(std::uint64_t probes_total) { probes_total_ = probes_total; }

  [[nodiscard]] bool enabled() const {
    return control_.on_progress && control_.progress_every.count() > 0;
  }
  // probes_done: (host, port) pairs with a final answer; probes_sent: transmissions so far.
  void maybe_report(Clock::time_point now, std::uint64_t probes_done, std::uint64_t hosts_done,
                    std::uint64_t probes_sent) {
    if (!enabled() || now - last_ < control_.progress_every) return;
    Progress p;
    p.probes_done = probes_done;
    p.probes_total = probes_total_;
    p.hosts_done = hosts_done;
    p.elapsed = now - started_;
    const double dt = std::chrono::duration<double>(now - last_).count();
    p.rate = dt > 0 ? static_cast<double>(probes_sent - sent_at_last_) / dt : 0;
    sent_at_last_ = probes_sent;
    last_ = now;
    control_.on_progress(p);
  }

 private:
  const RunControl& control_;
  Clock::time_point started_ = Clock::now();
  Clock::time_point last_ = started_;
  std::uint64_t probes_total_ = 0;
  std::uint64_t sent_at_last_ = 0;
};

}  // namespace portvigil::engine
