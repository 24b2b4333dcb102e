// The agent's Prometheus endpoint (prometheus-cpp). Per-port series are built on every
// scrape from the latest snapshot of each job, so a port that closes simply disappears;
// counters and histograms live in a normal registry. No prometheus-cpp type leaks out.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "portvigil/common/scan_model.hpp"

namespace portvigil {

// One open port as of a job's last completed scan.
struct OpenPort {
  std::string host;
  Proto proto = Proto::tcp;
  std::uint16_t port = 0;
  bool unexpected = false;  // open, but neither the policy nor the accepted baseline expects it
};

// What one job looked like after its last completed scan.
struct JobSnapshot {
  std::string job;
  std::vector<OpenPort> open_ports;
  // portvigil_ports{job,proto,state}: how many ports of the job's hosts are in each state.
  std::vector<std::tuple<Proto, PortState, std::uint64_t>> port_counts;
};

class AgentMetrics {
 public:
  // `port_series_limit` caps portvigil_port_open and portvigil_port_unexpected_open series
  // (unexpected ports are kept first); what the cap drops is counted in
  // portvigil_port_series_dropped.
  explicit AgentMetrics(std::size_t port_series_limit = 10000);
  ~AgentMetrics();
  AgentMetrics(const AgentMetrics&) = delete;
  AgentMetrics& operator=(const AgentMetrics&) = delete;

  // Declares a job (so its series exist before its first scan) with its interval.
  void set_job(const std::string& job, std::chrono::duration<double> interval);
  // Forgets jobs not in `keep` (after a reload).
  void retain_jobs(const std::vector<std::string>& keep);

  // A scan ended. `complete` scans update success gauges; every scan counts.
  void record_scan(const std::string& job, Technique technique, bool complete,
                   std::chrono::duration<double> duration, const ScanCounters& counters);
  // Hosts of a finished scan left uncompared: down (no reply) and inconclusive.
  void record_hosts_not_compared(const std::string& job, std::size_t down,
                                 std::size_t inconclusive);
  void record_change(const std::string& job, Proto proto, PortState from, PortState to);
  void publish(JobSnapshot snapshot);  // replaces the job's per-port series

  void record_reload(bool success);

  // The text a scrape of /metrics returns (Prometheus text format 0.0.4). For tests and
  // for `portvigil agent` debugging.
  [[nodiscard]] std::string render() const;

  struct Impl;
  [[nodiscard]] const std::shared_ptr<Impl>& impl() const { return impl_; }

 private:
  std::shared_ptr<Impl> impl_;  // shared: the HTTP server holds it weakly, as a Collectable
};

// Basic-auth credentials compared in constant time (for a given length of `given`): no
// early exit at the first wrong byte.
[[nodiscard]] bool secret_equals(std::string_view given, std::string_view secret);

struct WebOptions {
  std::string listen_address = "127.0.0.1:10117";  // "HOST:PORT", "[V6]:PORT"; port 0 = any
  std::string username;                            // basic auth on /metrics when both are set
  std::string password;
};

// Serves /metrics, /-/healthy, /-/ready and a small landing page at /.
class MetricsServer {
 public:
  // Throws std::runtime_error when the address cannot be bound.
  MetricsServer(const WebOptions& options, AgentMetrics& metrics);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  void set_ready(bool ready);  // /-/ready answers 503 until the first configuration is loaded
  [[nodiscard]] std::vector<int> ports() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace portvigil
