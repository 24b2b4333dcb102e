#include "sink_runner.hpp"

#include <algorithm>

#include "portvigil/storage/store.hpp"

namespace portvigil {
namespace {

constexpr std::chrono::seconds kFirstRetry{1};
constexpr std::chrono::minutes kLastRetry{5};
// Without a wake-up the runner still looks every so often (pending metric, a database that
// came back).
constexpr std::chrono::seconds kIdleCheck{30};

// One delivery of `events`: the sink's notes logged, the outcome counted (a cancelled
// attempt is no failure of the receiver) and, once delivered, `cursor` moved past them and
// then stored. `cursor` moves first: a failed write of the stored one (a full database)
// must not make the caller deliver the batch again.
EventSink::Result deliver_batch(const SinkConfig& config, EventSink& sink, Store& store,
                                std::span<const ChangeEvent> events, std::int64_t& cursor,
                                Logger& log, AgentMetrics& metrics, const std::atomic<bool>& stop) {
  auto result = sink.deliver(events, stop);
  for (const auto& note : result.notes) log.warn(note);  // names the sink
  if (stop && !result.delivered) return result;
  metrics.record_sink_delivery(config.name, result.delivered, events.size());
  if (result.delivered) {
    cursor = events.back().id;
    store.set_sink_cursor(config.name, cursor);
  }
  return result;
}

std::string failure_text(const SinkConfig& config, std::span<const ChangeEvent> events,
                         const std::string& error) {
  return "delivery of events " + std::to_string(events.front().id) + "-" +
         std::to_string(events.back().id) + " to " + destination(config) + " failed: " + error;
}

}  // namespace

std::unique_ptr<EventSink> make_configured_sink(const SinkConfig& config) {
  return make_sink(config.type, SinkOptions{config.name, config.url, config.path, config.timeout});
}

bool deliver_backlog(const SinkConfig& config, EventSink& sink, Store& store, Logger& log,
                     AgentMetrics& metrics, const std::atomic<bool>& stop) {
  const auto stored = store.sink_cursor(config.name);
  if (!stored) return false;  // set by attach_store; never missing after it
  std::int64_t cursor = *stored;
  while (!stop) {
    const auto events = store.events_after(cursor, static_cast<std::size_t>(config.batch_size));
    if (events.empty()) return true;
    const auto result = deliver_batch(config, sink, store, events, cursor, log, metrics, stop);
    if (!result.delivered) {
      if (!stop) {
        log.warn("sink " + config.name + ": " + failure_text(config, events, result.error) +
                 " (the next agent run delivers it)");
      }
      return false;
    }
  }
  return false;
}

std::string url_origin(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "(url)";
  const auto host_start = scheme_end + 3;
  auto host_end = url.find_first_of("/?#", host_start);
  if (host_end == std::string_view::npos) host_end = url.size();
  auto authority = url.substr(host_start, host_end - host_start);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  return std::string(url.substr(0, host_start)) + std::string(authority);
}

std::string destination(const SinkConfig& sink) {
  if (sink.type == "webhook") return url_origin(sink.url);
  if (sink.type == "file") return "\"" + sink.path + "\"";
  return sink.type;
}

SinkRunner::SinkRunner(SinkConfig config, std::unique_ptr<EventSink> sink, std::string database,
                       Logger& log, AgentMetrics& metrics)
    : config_(std::move(config)),
      sink_(std::move(sink)),
      database_(std::move(database)),
      log_(log),
      metrics_(metrics),
      thread_([this] { run(); }) {}

SinkRunner::~SinkRunner() {
  request_stop();
  thread_.join();
}

void SinkRunner::request_stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

void SinkRunner::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

bool SinkRunner::pause(std::chrono::duration<double> d, bool wakeable) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [&] { return stop_.load() || (wakeable && woken_); });
  woken_ = false;
  return !stop_;
}

void SinkRunner::run() {
  const std::string who = "sink " + config_.name + ": ";
  std::optional<Store> store;
  std::int64_t cursor = 0;
  std::chrono::duration<double> retry = kFirstRetry;
  std::size_t failures = 0;
  std::string last_error;
  // Undelivered events, counted when unknown or at the end of a backlog and otherwise
  // counted down: a count per batch would make draining a long backlog quadratic.
  std::size_t pending = 0;
  bool pending_known = false;
  while (!stop_) {
    std::chrono::duration<double> next = kIdleCheck;
    bool backing_off = false;
    try {
      if (!store) {
        store = Store::open(database_, Access::tool);
        retry = kFirstRetry;
      }
      const auto stored = store->sink_cursor(config_.name);
      if (!stored) {
        // The agent has not attached its database yet (it sets the cursor then).
        if (!pause(kFirstRetry, true)) break;
        continue;
      }
      cursor = std::max(cursor, *stored);
      const auto batch = static_cast<std::size_t>(config_.batch_size);
      const auto events = store->events_after(cursor, batch);
      if (!pending_known || events.size() < batch) {
        pending = store->count_events_after(cursor);
        pending_known = true;
      }
      metrics_.set_sink_pending(config_.name, pending);
      if (!events.empty()) {
        const auto result =
            deliver_batch(config_, *sink_, *store, events, cursor, log_, metrics_, stop_);
        if (stop_ && !result.delivered) break;  // cancelled: not a failure of the receiver
        if (result.delivered) {
          pending -= std::min(pending, events.size());
          metrics_.set_sink_pending(config_.name, pending);
          if (failures > 0) {
            log_.info(who + "delivering again after " + std::to_string(failures) +
                      " failed attempts");
          }
          failures = 0;
          last_error.clear();
          retry = kFirstRetry;
          if (stop_) break;
          continue;  // more may be waiting
        }
        ++failures;
        pending_known = false;  // recounted at the next attempt: events go on arriving
        if (result.error != last_error) {
          log_.warn(who + failure_text(config_, events, result.error) +
                    (result.error.starts_with("HTTP status 4")
                         ? " (the receiver refuses the batch: it is retried, but only a change "
                           "on the receiver's side can make it succeed)"
                         : " (retried with back-off up to " + std::to_string(kLastRetry.count()) +
                               " min; nothing is dropped)"));
          last_error = result.error;
        }
        next = retry;
        backing_off = true;
        retry = std::min<std::chrono::duration<double>>(retry * 2, kLastRetry);
      }
    } catch (const std::exception& e) {
      // The database (busy, full, gone): reopen and try again after a pause.
      if (std::string(e.what()) != last_error) {
        log_.warn(who + e.what() + " (retrying)");
        last_error = e.what();
      }
      store.reset();
      pending_known = false;
      next = retry;
      backing_off = true;
      retry = std::min<std::chrono::duration<double>>(retry * 2, kLastRetry);
    }
    if (!pause(next, !backing_off)) break;
  }
}

}  // namespace portvigil
