// The agent's Prometheus endpoint (prometheus-cpp). Per-port series are built on every
// scrape from the latest snapshot of each job, so a port that closes simply disappears;
// counters and histograms live in a normal registry. No prometheus-cpp type leaks out.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "portvigil/common/scan_model.hpp"
#include "portvigil/common/shard.hpp"

namespace portvigil {

// One open port as of a job's last completed scan.
struct OpenPort {
  std::string host;
  Proto proto = Proto::tcp;
  std::uint16_t port = 0;
  bool unexpected = false;  // open, but neither the policy nor the accepted baseline expects it
  // Since when (unexpected ports only): portvigil_port_unexpected_open_since_timestamp_seconds.
  std::optional<std::chrono::system_clock::time_point> open_since = std::nullopt;
  // When the TLS certificate last read on the port expires (expected TCP ports only):
  // portvigil_tls_certificate_expiry_timestamp_seconds.
  std::optional<std::chrono::system_clock::time_point> tls_not_after = std::nullopt;
  // What answered when it opened, one line (unexpected TCP ports whose opening was
  // identified): portvigil_port_unexpected_open_service_info's service label.
  std::string service = {};
};

// What one job looked like after its last completed scan.
struct JobSnapshot {
  std::string job;  // exported as the scan_job label: `job` belongs to Prometheus
  std::vector<OpenPort> open_ports;
  // portvigil_ports{job,proto,state}: how many ports of the job's hosts are in each state.
  std::vector<std::tuple<Proto, PortState, std::uint64_t>> port_counts;
};

class AgentMetrics {
 public:
  // `port_series_limit` caps portvigil_port_open, portvigil_port_unexpected_open and its _since
  // (unexpected ports are kept first); what the cap drops is counted in
  // portvigil_port_series_dropped.
  explicit AgentMetrics(std::size_t port_series_limit = 10000);
  ~AgentMetrics();
  AgentMetrics(const AgentMetrics&) = delete;
  AgentMetrics& operator=(const AgentMetrics&) = delete;

  // Declares a job with its interval, so its series exist (at 0) before its first scan:
  // among them one change counter per pair of states the technique can report (and
  // absent -> open for hosts that appear), so increase() counts every change.
  void set_job(const std::string& job, Technique technique, std::chrono::duration<double> interval);
  // Removes every series of the jobs not in `keep` (after a reload), so a deleted job
  // leaves nothing behind to alert on.
  void retain_jobs(const std::vector<std::string>& keep);

  // How a scan ended. window_closed: its scan window closed on it after the job had
  // completed a scan in that window; it counts as incomplete but is no failure, so
  // portvigil_scan_success keeps its value.
  enum class ScanOutcome : std::uint8_t { complete, incomplete, window_closed };
  // A scan ended. Complete scans update the success gauges; every scan counts.
  void record_scan(const std::string& job, Technique technique, ScanOutcome outcome,
                   std::chrono::duration<double> duration, const ScanCounters& counters);
  // portvigil_last_scan_success_timestamp_seconds from the stored history (the newest
  // complete scan's end), after a restart or a reopened database; never moves it back.
  void restore_last_success(const std::string& job, std::chrono::system_clock::time_point when);
  // portvigil_job_window_open and, when `opened` is set, the time the current window opened
  // (portvigil_job_window_opened_timestamp_seconds). Jobs without windows stay open.
  void set_job_window(const std::string& job, bool open,
                      std::optional<std::chrono::system_clock::time_point> opened);
  // Hosts of a finished scan left uncompared: known hosts that answered nothing (down)
  // and inconclusive ones; `silent`: known hosts silent for longer than the job allows.
  void record_hosts(const std::string& job, std::size_t down, std::size_t inconclusive,
                    std::size_t silent);
  // A UDP job's coverage after a complete scan (udp-coverage): of its `ports`, those every
  // host verified within the last `period`, and when the oldest verification was (Unix
  // time; a port some host never verified counts from when that host was first seen).
  struct UdpCoverage {
    std::size_t ports = 0;
    std::size_t verified = 0;
    double oldest_verification = 0;
    double period_seconds = 0;
  };
  void record_udp_coverage(const std::string& job, const UdpCoverage& coverage);
  // Target addresses the job's last run refused because no active authorization covers
  // them (expired, not yet valid, or never authorized).
  void record_scope(const std::string& job, std::uint64_t refused_targets);
  // `from` empty: the port of a host that appeared ("absent").
  void record_change(const std::string& job, Proto proto, std::optional<PortState> from,
                     PortState to);
  enum class HostEvent : std::uint8_t { appeared, gone_silent };
  void record_host_event(const std::string& job, HostEvent kind);
  // A confirmed service-changed event (watch-services): portvigil_service_changes_total.
  void record_service_change(const std::string& job);
  void publish(JobSnapshot snapshot);  // replaces the job's per-port series
  // Marks the given open ports of `job` expected (accepted by an operator since the last
  // scan), so the paging series clears at the next scrape.
  void accept_ports(const std::string& job,
                    const std::vector<std::tuple<std::string, Proto, std::uint16_t>>& ports);
  // Called at the start of every scrape, outside any lock of this object: the agent uses
  // it to pick up `portvigil baseline accept` run by another process.
  void set_scrape_hook(std::function<void()> hook);

  // One network of an authorization entry, for
  // portvigil_authorization_expiry_timestamp_seconds{network,owner,ticket}.
  struct Authorization {
    std::string network;
    std::string owner;
    std::string ticket;
    std::optional<std::chrono::system_clock::time_point> expires;  // none: no series
  };
  void set_authorizations(const std::vector<Authorization>& authorizations);

  // portvigil_shard_info{shard,shards,replica} = 1, replacing the previous labels, and
  // portvigil_shard_count = shards.
  void set_shard(const Shard& shard, const std::string& replica);
  // portvigil_targets_owned{scan_job}: the target addresses of the job's last complete run
  // that this agent's shard owns.
  void record_targets_owned(const std::string& job, std::uint64_t owned);

  void record_reload(bool success);
  // portvigil_database_writable: false while the database cannot be opened or written.
  void set_database_writable(bool writable);

  // Event sinks ([[sink]]): portvigil_sink_pending_events{sink} (committed events the sink
  // has not delivered yet), and per delivery attempt the events delivered or one failure.
  void set_sink_pending(const std::string& sink, std::size_t pending);
  void record_sink_delivery(const std::string& sink, bool delivered, std::size_t events);

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
  // The exporter toolkit's web configuration (TLS, bcrypt basic auth; docs/operations.md).
  // Exclusive with username/password. Either kind of credentials guards every path but
  // /-/healthy and /-/ready.
  std::string config_file;
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
  // Re-reads WebOptions::config_file (new certificates, users) for connections from now on.
  // Throws std::runtime_error with the file's message, also when the file would turn TLS
  // or basic auth off (that takes a restart) or when the server has no file; the running
  // settings then stay.
  void reload_web_config();
  [[nodiscard]] const std::string& web_config_file() const;  // "" without one
  [[nodiscard]] bool tls() const;                            // whether it serves https now

  // Reads and checks a web configuration file as the server would (YAML, users, that the
  // certificate, key and CA files load and belong together) without serving anything.
  // Throws std::runtime_error naming the file and what is wrong.
  static void check_web_config(const std::string& path);
  [[nodiscard]] std::vector<int> ports() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace portvigil
