// Delivers committed change events to one configured sink ([[sink]]) from a thread of its
// own, so a slow or unreachable receiver never holds up scanning. The database is the
// queue: the runner reads the events after the sink's cursor, hands them over in batches
// (each event as in the event log: event_json), and moves the cursor after each
// delivered batch. A failed batch is retried with back-off (1 s doubling to 5 min) until
// it is delivered: at least once, in id order, also across restarts (a crash between a
// delivery and the cursor's write delivers that batch again). The agent sets the cursor of
// a sink seen for the first time (attach_store) to the newest event: it is not sent the
// history; until then the runner waits.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "log.hpp"
#include "portvigil/config/agent_config.hpp"
#include "portvigil/exporters/metrics.hpp"
#include "portvigil/exporters/sinks.hpp"

namespace portvigil {

// "https://host:8443" of "https://user:secret@host:8443/hook?token=...": what the logs may
// show of a sink's URL (webhook URLs often carry a secret in their path or query).
[[nodiscard]] std::string url_origin(std::string_view url);
// Where a sink delivers, for the logs: the webhook's url_origin, a file's path, "stdout".
[[nodiscard]] std::string destination(const SinkConfig& sink);

// The sink a [[sink]] table configures (make_sink with its options); throws as make_sink.
[[nodiscard]] std::unique_ptr<EventSink> make_configured_sink(const SinkConfig& config);

// --once: delivers the events after the sink's cursor now, batch by batch, until none is
// left, a delivery fails (the next agent run retries it) or `stop`. True when none is left.
bool deliver_backlog(const SinkConfig& config, EventSink& sink, Store& store, Logger& log,
                     AgentMetrics& metrics, const std::atomic<bool>& stop);

class SinkRunner {
 public:
  SinkRunner(SinkConfig config, std::unique_ptr<EventSink> sink, std::string database, Logger& log,
             AgentMetrics& metrics);
  ~SinkRunner();  // stops the thread (an attempt under way is cancelled) and joins it
  SinkRunner(const SinkRunner&) = delete;
  SinkRunner& operator=(const SinkRunner&) = delete;

  // New events were committed: deliver them now rather than at the next check.
  void wake();
  // Asks the thread to stop (a delivery under way is cancelled) without waiting for it.
  void request_stop();
  [[nodiscard]] const std::string& name() const { return config_.name; }

 private:
  void run();
  // Sleeps up to `d`, or less when woken (if `wakeable`: not during a back-off); false when
  // stopping.
  bool pause(std::chrono::duration<double> d, bool wakeable);

  SinkConfig config_;
  std::unique_ptr<EventSink> sink_;
  std::string database_;
  Logger& log_;
  AgentMetrics& metrics_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;  // guarded by mu_
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace portvigil
