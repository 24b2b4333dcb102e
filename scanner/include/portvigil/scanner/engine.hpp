// The scan interface every technique sits behind. An engine takes a plan (targets, ports,
// authorized scope, timing) and streams finished hosts into a ReportSink.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "portvigil/common/scan_model.hpp"
#include "portvigil/scanner/packet_io.hpp"
#include "portvigil/scanner/rate_budget.hpp"
#include "portvigil/scanner/targets.hpp"

namespace portvigil {

using Seconds = std::chrono::duration<double>;

struct TimingOptions {
  int max_retries = 2;      // extra attempts for probes that got no answer
  double max_rate = 0;      // probes per second, 0 = unlimited
  double min_rate = 0;      // probes per second the window is sized to sustain
  Seconds host_timeout{0};  // 0 = none
  Seconds initial_rtt_timeout{0.5};
  Seconds min_rtt_timeout{0.1};
  Seconds max_rtt_timeout{1.25};
  std::size_t max_parallelism = 0;  // concurrent probes; 0 = automatic (fd limit based)
};

// Nmap's timing templates -T0 (paranoid) .. -T5 (insane) in portvigil's terms; -T3 and -T4
// are the defaults (portvigil's defaults are Nmap's -T4 timeouts). Retransmissions are left to the
// silence policy (measured loss), so -T4 does not raise --max-retries as Nmap's does.
[[nodiscard]] TimingOptions timing_template(int level);

// Host discovery before the port scan, as Nmap does it.
enum class HostDiscovery : std::uint8_t {
  skip,  // -Pn: every target is port-scanned as if it were up
  ping,  // discovery first; only hosts that answer it get port probes (the CLI's default)
  only,  // -sn: discovery only, no port probes
};

// Targets handed to a scan while it runs: discovery's pipeline gives the port scan each host
// it finds up at once, while it still waits on the silent ones. Thread-safe. Consecutive
// addresses are kept as one run, so a backlog of live hosts costs little memory.
class TargetFeed {
 public:
  void push(const Target& target);
  // No more targets: a scan waiting on the feed takes what is left and ends.
  void close();
  enum class Next : std::uint8_t { target, later, closed };
  // The next target if one is there or comes within `wait`: `later` when none came while
  // the feed stays open, `closed` once it is closed and empty.
  Next next(Target& out, std::chrono::microseconds wait);

 private:
  struct Run {
    uint128 first = 0;
    uint128 count = 0;
    bool v6 = false;
    std::string hostname;  // a named target is a run of its own
  };
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Run> runs_;
  bool closed_ = false;
};

struct ScanPlan {
  Technique technique = Technique::connect;
  const TargetSet* targets = nullptr;
  PortList ports;
  AuthorizedScope scope;  // probes outside it are never sent
  TimingOptions timing;
  std::string command_line;
  // Honoured by engines from make_scan_engine(); the technique engines ignore it.
  HostDiscovery discovery = HostDiscovery::skip;
  // Targets port-scanned even when discovery hears nothing from them (the agent's hosts
  // with a baseline: discovery must never hide a host it tracks). Empty: none.
  std::function<bool(const Target&)> scan_even_if_silent;
  UdpPacing udp_pacing;  // -sU only
  // Paced probing stops here (0 = no limit): the ports it has not verified by then are not
  // reported, and their host is inconclusive with a note saying so.
  Seconds time_budget{0};
  // A probe budget shared with the other scans of the process (the agent's max-rate over
  // concurrent jobs), taken after timing.max_rate's own pacing. Null: none. Not owned.
  RateBudget* shared_rate = nullptr;
  // When set, the scan takes its targets from here and `targets` is unused. Not owned. Raw
  // engines only.
  TargetFeed* feed = nullptr;
  // Reports a host as soon as every one of its probes is answered and one answer proves it
  // up, from the engine's receiver thread, instead of at the end of its group (discovery's
  // pipeline; the sink must be thread-safe). Raw engines only.
  bool report_answered_hosts_early = false;
};

struct Progress {
  std::uint64_t probes_done = 0;   // (host, port) pairs with a final answer
  std::uint64_t probes_total = 0;  // 0 when unknown
  std::uint64_t hosts_done = 0;
  Seconds elapsed{0};
  double rate = 0;  // probes sent per second, recent
};

struct RunControl {
  const std::atomic<bool>* stop = nullptr;  // set from a signal handler to abort
  Seconds progress_every{0};                // 0 = no progress callbacks
  std::function<void(const Progress&)> on_progress;
};

class ScanEngine {
 public:
  virtual ~ScanEngine() = default;
  // Runs the whole plan. Never throws for network conditions: they are port states.
  virtual ScanSummary run(const ScanPlan& plan, ReportSink& sink, const RunControl& control) = 0;
};

// The TCP connect engine (-sT), built on standalone Asio.
[[nodiscard]] std::unique_ptr<ScanEngine> make_connect_engine();

struct RawOptions {
  IoFactory io;           // empty: real raw sockets + libpcap
  std::string interface;  // -e; empty: chosen by route lookup toward the first target
  std::optional<std::uint64_t> cookie_seed;  // fixed reply-validation key (replays, tests)
  std::uint16_t source_port = 0;             // 0: random
  // Without --max-rate the rate starts at initial_rate and adapts: it grows toward
  // max_adaptive_rate while nothing is lost and halves on loss. --max-rate replaces both.
  double initial_rate = 100000;
  double max_adaptive_rate = 1000000;
};

// The stateless raw-packet engine for -sS -sF -sN -sX -sA -sU (one Probe per technique).
[[nodiscard]] std::unique_ptr<ScanEngine> make_raw_engine(Technique technique,
                                                          RawOptions options = {});

// The engine for `technique` behind host discovery (ScanPlan::discovery). Discovery probes
// are Nmap's: for connect (unprivileged) a connect() to ports 80 and 443; for the raw
// techniques an ICMP echo request, a TCP SYN to 443 and a TCP ACK to 80, through the same
// packet I/O. A host that answers any of them is up (HostResult::status); the others are
// reported down, without ports, unless scan_even_if_silent keeps them.
[[nodiscard]] std::unique_ptr<ScanEngine> make_scan_engine(Technique technique,
                                                           RawOptions options = {});

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the resulting soft limit.
std::size_t raise_fd_limit();

}  // namespace portvigil
