// One run of one configured job: scan, confirm changes by re-probing, commit the scan and
// its events to the store in one transaction.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "log.hpp"
#include "portvigil/config/agent_config.hpp"
#include "portvigil/exporters/metrics.hpp"
#include "portvigil/scanner/engine.hpp"
#include "portvigil/scanner/service_id.hpp"
#include "portvigil/storage/store.hpp"

namespace portvigil {

struct JobEnvironment {
  IoFactory io;                             // empty: real raw sockets for raw techniques
  const std::atomic<bool>* stop = nullptr;  // SIGTERM: abort, record the scan incomplete
  Logger* log = nullptr;
  // The agent's max-rate, shared by the jobs that run at once; null: no shared cap.
  RateBudget* shared_rate = nullptr;
  // Set (with *stop) when the job's scan window closed mid-scan: the scan is then recorded
  // incomplete with a note saying so. Null: the job has no windows.
  const std::atomic<bool>* window_ended = nullptr;
  // Identifies the TCP ports a scan opens (identify-services). Empty: identify_services()
  // over real connections, unless `io` simulates the network: then nothing is identified,
  // so that a test's made-up addresses are never connected to.
  std::function<std::vector<ServiceIdentity>(const std::vector<ServiceTarget>&,
                                             const IdentifyOptions&)>
      identify = {};
};

struct JobRunResult {
  std::int64_t scan_id = 0;
  bool complete = false;
  std::string error;  // why the scan is incomplete, "" when complete
  std::vector<ChangeEvent> events;
  ScanSummary summary;
  std::size_t changes_seen = 0;         // differences found by the scan itself
  std::size_t changes_unconfirmed = 0;  // of which re-probes did not confirm
  std::size_t hosts_inconclusive = 0;
  std::size_t hosts_down = 0;  // known hosts with no reply at all: not compared, baseline kept
  std::size_t hosts_gone_silent = 0;    // of which silent for the job's host-silent-after
  std::size_t hosts_appeared = 0;       // first seen up after the job's baseline
  std::size_t addresses_unused = 0;     // target addresses that never answered: not hosts
  std::size_t targets_refused = 0;      // target addresses outside every active authorization
  std::uint64_t targets_owned = 0;      // target addresses this agent's shard owns
  std::size_t hosts_adopted = 0;        // gained by resharding: baseline taken without events
  std::size_t hosts_retired = 0;        // lost by resharding: no longer scanned or exported
  std::size_t services_identified = 0;  // opened TCP ports identification ran on
  std::size_t services_watched = 0;     // watch-services: conclusive reads of open ports
  // The job's open ports and state counts after the commit (complete runs only), for the
  // metrics endpoint.
  JobSnapshot snapshot;
  // Paced UDP jobs: the ports this run verified (a share of the job's, udp-coverage) and the
  // job's coverage after the commit.
  std::size_t udp_ports_scanned = 0;
  std::optional<AgentMetrics::UdpCoverage> udp_coverage;
};

// The authorization networks in force at `now` as a scope the engines enforce.
[[nodiscard]] AuthorizedScope active_scope(const Config& config,
                                           std::chrono::system_clock::time_point now);

// The job's open ports and state counts as stored now, of the hosts `shard` owns, for the
// metrics endpoint at startup (so the paging series do not vanish until the first scan
// after a restart).
[[nodiscard]] JobSnapshot stored_snapshot(const JobConfig& job, const Store& store,
                                          const Shard& shard);

// The job's rate, retry and timeout keys as the engine's timing options; what the job does
// not set keeps the scanner's default.
[[nodiscard]] TimingOptions job_timing(const JobConfig& job);

// Runs `job` once. Never throws for scan or input problems: they are reported in the
// result and the scan row is marked incomplete. Throws StorageError if the store fails.
JobRunResult run_job(const Config& config, const JobConfig& job, Store& store,
                     const JobEnvironment& env);

}  // namespace portvigil
