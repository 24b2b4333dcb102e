// The agent service loop: Asio timers schedule jobs, a worker thread per running job (up to
// max-concurrent-jobs, under one shared probe budget) scans, and the loop thread records
// each result; signals stop (SIGTERM/SIGINT) or reload (SIGHUP) it.
#include "agent_command.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "job_runner.hpp"
#include "log.hpp"
#include "notify.hpp"
#include "portvigil/common/printable.hpp"
#include "portvigil/exporters/event_log.hpp"
#include "portvigil/exporters/metrics.hpp"
#include "portvigil/exporters/sinks.hpp"
#include "schedule.hpp"
#include "sink_runner.hpp"
#include "state_dir.hpp"

namespace portvigil {
namespace {

struct AgentArgs {
  std::string config_path;                     // "" = built-in default
  std::string state_dir;                       // overrides [agent] state-dir
  std::optional<std::string> listen_address;   // overrides [agent] web-listen-address
  std::optional<std::string> web_config_file;  // overrides [agent] web-config-file
  bool once = false;
  bool print_default = false;
  bool help = false;
};

constexpr std::string_view kAgentUsage =
    "Usage: portvigil agent [--config FILE] [--state-dir DIR] [--web.listen-address ADDR]\n"
    "                       [--web.config.file FILE] [--once]\n"
    "\n"
    "Run the monitoring agent: scan each configured job on its schedule, store every scan\n"
    "in SQLite (DIR/portvigil.db), compare it with the baseline and report confirmed port\n"
    "state changes as JSON lines on stdout and in the event log. Without --config the\n"
    "built-in default watches 127.0.0.1 (top 1000 TCP ports, connect scan, every minute)\n"
    "with state in ./portvigil-state (see --print-default-config).\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE         agent configuration (TOML; docs/config.md); also\n"
    "                            --config=FILE and Prometheus' spelling --config.file\n"
    "      --state-dir DIR       use DIR instead of [agent] state-dir\n"
    "      --web.listen-address ADDR  serve /metrics on ADDR (HOST:PORT, [V6]:PORT; \"\" for\n"
    "                            none) instead of [agent] web-listen-address (127.0.0.1:10117);\n"
    "                            also --web.listen-address=ADDR and --web-listen-address\n"
    "      --web.config.file FILE  TLS and bcrypt basic auth for the endpoint, in the Prometheus\n"
    "                            exporter toolkit's format, instead of [agent] web-config-file;\n"
    "                            re-read on SIGHUP; also --web.config.file=FILE\n"
    "      --once                run every job once, deliver the events to the sinks, then\n"
    "                            exit (0: all scans complete)\n"
    "      --print-default-config  print the built-in configuration and exit\n"
    "  -h, --help                show this help and exit\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop (a running scan is recorded incomplete), SIGHUP reloads\n"
    "the configuration (a bad file is logged and the running configuration kept).\n"
    "Exit status: 0 clean stop, 1 runtime failure, 2 bad configuration or arguments.\n";

AgentArgs parse_agent_args(std::span<const std::string_view> args) {
  AgentArgs a;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto arg = args[i];
    auto value = [&](std::string_view opt) -> std::string {
      if (i + 1 >= args.size()) throw InputError(std::string(opt) + ": missing value");
      return std::string(args[++i]);
    };
    if (arg == "-c" || arg == "--config" || arg == "--config.file") {
      a.config_path = value(arg);
    } else if (arg.starts_with("--config=")) {
      a.config_path = std::string(arg.substr(9));
    } else if (arg == "--state-dir") {
      a.state_dir = value(arg);
    } else if (arg == "--web.listen-address" || arg == "--web-listen-address") {
      a.listen_address = value(arg);
    } else if (arg.starts_with("--web.listen-address=")) {
      a.listen_address = std::string(arg.substr(21));
    } else if (arg == "--web.config.file" || arg == "--web-config-file") {
      a.web_config_file = value(arg);
    } else if (arg.starts_with("--web.config.file=")) {
      a.web_config_file = std::string(arg.substr(18));
    } else if (arg == "--once") {
      a.once = true;
    } else if (arg == "--print-default-config") {
      a.print_default = true;
    } else if (arg == "-h" || arg == "--help") {
      a.help = true;
    } else {
      throw InputError("agent: unknown argument \"" + std::string(arg) +
                       "\" (see portvigil agent --help)");
    }
  }
  return a;
}

// The configuration checks a file sink's path against the event log's as text; here, with
// --state-dir applied, the files themselves: "./state/events.jsonl", "state//events.jsonl"
// and a path through a symlinked directory all name the event log, and two writers of one
// file would cut each other's lines.
void check_file_sink_paths(const Config& config) {
  namespace fs = std::filesystem;
  const auto file_key = [](const std::string& path) {
    std::error_code ec;
    auto absolute = fs::absolute(path, ec);
    if (ec) absolute = fs::path(path);
    const auto canonical = fs::weakly_canonical(absolute, ec);
    return ec ? absolute.lexically_normal() : canonical;
  };
  std::map<fs::path, std::string> files{{file_key(config.agent.event_log), "the event log"}};
  for (const auto& s : config.sinks) {
    if (s.type != "file") continue;
    const auto [it, fresh] = files.emplace(file_key(s.path), "sink \"" + s.name + "\"");
    if (!fresh) {
      throw InputError(s.origin + ": sink \"" + s.name +
                       "\": key \"path\": names the same file as " + it->second + " (" +
                       it->first.string() + "); a file sink needs a file of its own");
    }
  }
}

std::shared_ptr<const Config> load(const AgentArgs& args) {
  auto config = std::make_shared<Config>(args.config_path.empty() ? default_config()
                                                                  : load_config(args.config_path));
  if (!args.state_dir.empty()) {
    const auto old_default = config->agent.state_dir + "/events.jsonl";
    if (config->agent.event_log == old_default)
      config->agent.event_log = args.state_dir + "/events.jsonl";
    config->agent.state_dir = args.state_dir;
  }
  check_file_sink_paths(*config);
  if (args.listen_address) {
    // Checked like the TOML key: "999.1.1.1:1" must not bind to whatever civetweb makes of it.
    check_web_listen_address(*args.listen_address, "--web.listen-address");
    config->agent.web_listen_address = *args.listen_address;
  }
  if (args.web_config_file) {
    if (args.web_config_file->empty()) throw InputError("--web.config.file: missing file name");
    if (!config->agent.web_username.empty()) {
      throw InputError(
          "--web.config.file: the configuration sets web-username/web-password; "
          "put the user in the file's basic_auth_users instead");
    }
    config->agent.web_config_file = *args.web_config_file;
  }
  check_web_config_file(config->agent.web_config_file);
  return config;
}

}  // namespace

void check_web_config_file(const std::string& path) {
  if (path.empty()) return;
  // A bad web configuration is a configuration error (exit 2, or a refused reload), found
  // before anything starts.
  try {
    MetricsServer::check_web_config(path);
  } catch (const std::runtime_error& e) {
    throw InputError(std::string("web configuration: ") + e.what());
  }
}

namespace {

std::vector<Schedule::JobTiming> timings(const Config& c) {
  std::vector<Schedule::JobTiming> out;
  for (const auto& j : c.jobs) out.push_back({j.name, j.interval, j.jitter});
  return out;
}

std::string describe(const JobConfig& job, const JobRunResult& r) {
  std::string s = "job " + job.name + ": scan " + std::to_string(r.scan_id);
  if (!r.complete) return s + " incomplete: " + r.error;
  char elapsed[32];
  std::snprintf(elapsed, sizeof elapsed, "%.2fs", r.summary.elapsed.count());
  return s + " complete in " + elapsed + ": " + std::to_string(r.summary.hosts_total) + " hosts, " +
         std::to_string(r.summary.counters.probes_sent) + " probes, " +
         std::to_string(r.changes_seen) + " changes seen, " +
         std::to_string(r.changes_unconfirmed) + " not confirmed, " +
         std::to_string(r.events.size()) + " events" +
         (r.hosts_appeared ? "; " + std::to_string(r.hosts_appeared) + " hosts appeared" : "") +
         (r.hosts_down ? "; " + std::to_string(r.hosts_down) + " hosts down" : "") +
         (r.hosts_gone_silent ? " (" + std::to_string(r.hosts_gone_silent) + " gone silent)" : "") +
         (r.targets_refused ? "; " + std::to_string(r.targets_refused) + " targets refused by scope"
                            : "") +
         (r.hosts_inconclusive ? "; " + std::to_string(r.hosts_inconclusive) + " hosts inconclusive"
                               : "") +
         (r.udp_coverage
              ? "; UDP coverage: " + std::to_string(r.udp_ports_scanned) +
                    " ports in this scan's share, " + std::to_string(r.udp_coverage->verified) +
                    " of " + std::to_string(r.udp_coverage->ports) + " within udp-coverage" +
                    (r.summary.counters.rate_limited_probes
                         ? ", " + std::to_string(r.summary.counters.rate_limited_probes) +
                               " probes ran into an ICMP rate limit"
                         : "")
              : "");
}

// Writes every committed event the log does not have yet (this scan's, and any a failed
// append left behind), then records how far the log goes (its cursor: the published mark).
// The log is written here, as each scan commits, rather than by a sink runner: its last id
// is what a new or lost database numbers its events after. Its lag and deliveries are
// reported like a sink's, as sink="event-log".
// Returns how many were written.
std::size_t publish_events(EventLog& events, Store& store, Logger& log, AgentMetrics& metrics) {
  const std::int64_t before = events.last_id();
  std::size_t written = 0;
  bool failed = false;
  try {
    written = events.resume(store);
  } catch (const std::exception& e) {
    failed = true;
    log.error(std::string("event log: ") + e.what() + " (retried after the next scan)");
  }
  const std::string sink(kEventLogSinkName);
  if (written > 0) metrics.record_sink_delivery(sink, true, written);
  if (failed) metrics.record_sink_delivery(sink, false, 0);
  // Also after a failure part-way: the batches before it are in the file. A failure here
  // (the database busy or full) only means the next start re-reads a little more of the log.
  try {
    if (events.last_id() != before) store.set_published_event_id(events.last_id());
  } catch (const std::exception& e) {
    log.warn(std::string("event log: cannot record how far it goes: ") + e.what());
  }
  std::size_t pending = 0;
  try {
    if (failed) pending = store.count_events_after(events.last_id());
  } catch (const std::exception&) {
    pending = 1;  // behind by at least the events the append failed on
  }
  metrics.set_sink_pending(sink, pending);
  return written;
}

std::vector<AgentMetrics::Authorization> authorizations(const Config& config) {
  std::vector<AgentMetrics::Authorization> out;
  for (const auto& a : config.authorization) out.push_back({a.cidr, a.owner, a.ticket, a.expires});
  return out;
}

void record_events(AgentMetrics& metrics, const std::string& job,
                   const std::vector<ChangeEvent>& events) {
  for (const auto& e : events) {
    switch (e.kind) {
      case EventKind::port:
        metrics.record_change(
            job, e.change.proto,
            e.change.from_absent ? std::nullopt : std::optional<PortState>(e.change.from),
            e.change.to);
        break;
      case EventKind::host_appeared:
        metrics.record_host_event(job, AgentMetrics::HostEvent::appeared);
        break;
      case EventKind::host_gone_silent:
        metrics.record_host_event(job, AgentMetrics::HostEvent::gone_silent);
        break;
      case EventKind::service_changed:
        metrics.record_service_change(job);
        break;
    }
  }
}

// `portvigil baseline accept` runs in another process: at every scrape, ports accepted
// since the last scan stop paging at once instead of at the job's next scan.
void watch_accepted_ports(AgentMetrics& metrics, const std::string& db_path) {
  auto reader = std::make_shared<std::optional<Store>>();
  metrics.set_scrape_hook([&metrics, reader, db_path] {
    try {
      if (!*reader) *reader = Store::open(db_path, Access::read_only);
      if ((*reader)->read_note()) {
        // Opened without the WAL (full disk): it would never see the agent's writes once
        // space is back. Keep the scan-time view and open afresh next time.
        reader->reset();
        return;
      }
      std::map<std::string, std::vector<std::tuple<std::string, Proto, std::uint16_t>>> by_job;
      for (const auto& k : (*reader)->accepted_ports({})) {
        by_job[k.job].emplace_back(k.host, k.proto, k.port);
      }
      for (const auto& [job, ports] : by_job) metrics.accept_ports(job, ports);
    } catch (const std::exception&) {
      reader->reset();  // the next scrape tries again; the scan-time view stays meanwhile
    }
  });
}

// Everything that needs the database once it opens: event ids that continue the log, events
// a crash left unwritten, the stored view in the metrics, and the cursors of new `sinks`.
// `at_start`: the process's first attach; a database reopened while the agent runs keeps
// every cursor (the running sinks are the start-up configuration's, whatever SIGHUP loaded
// since).
void attach_store(Store& store, EventLog& events, const Config& config, AgentMetrics& metrics,
                  Logger& log, const std::vector<std::string>& sinks, bool at_start) {
  // A new or lost database numbers its events after the log's last one (an id read only
  // from a line that is an event, at most 2^53); a rotated or deleted log is not refilled
  // with what was already published.
  if (store.repair_event_id_sequence(kMaxEventLineId)) {
    log.warn(
        "database: the event id sequence was beyond 2^53 (set from a garbage event log "
        "line by an older version): set back to the last id in use");
  }
  store.continue_event_ids_after(events.last_id());
  events.skip_to_if_empty(store.published_event_id());
  // A log that cannot be written (disk full) must not stop the scans: it is retried
  // after every scan.
  if (const auto n = publish_events(events, store, log, metrics); n > 0) {
    log.warn("event log was missing " + std::to_string(n) +
             " committed events (crash before the append): written now");
  }
  for (const auto& j : config.jobs) {
    metrics.publish(stored_snapshot(j, store, config.agent.shard));
    // A restart does not forget when the job last completed a scan (the dashboard and
    // PortvigilScanStale read it).
    if (const auto last = store.latest_complete_scan(j.name); last && last->finished) {
      // Never in the future (a clock stepped back): that would hold the alert off.
      metrics.restore_last_success(j.name,
                                   std::min(*last->finished, std::chrono::system_clock::now()));
    }
  }
  // A sink seen for the first time starts after the newest event, fixed here, before any
  // scan can commit, so that no event of this run counts as its history.
  // (--once sets it too, and delivers from it before it exits.)
  // A sink removed from the configuration loses its cursor, so that adding it back (or the
  // implicit stdout sink coming back after a [[sink]] of type stdout is removed) starts
  // afresh instead of delivering everything since it stopped.
  if (at_start) {
    std::vector<std::string> configured;
    for (const auto& s : config.sinks) configured.push_back(s.name);
    if (const auto n = store.forget_sink_cursors_except(configured); n > 0) {
      log.info("sinks: forgot the cursors of " + std::to_string(n) + " sinks no longer configured");
    }
  }
  for (const auto& name : sinks) {
    if (store.sink_cursor(name)) continue;
    const auto last = store.last_event_id();
    store.set_sink_cursor(name, last);
    log.info("sink " + name + ": new: delivers the events after id " + std::to_string(last));
  }
}

std::string database_path(const Config& config) {
  return config.agent.state_dir + "/portvigil.db";
}

// The agent's database, opened and proven writable: opening may succeed on a full disk, a
// write may not. Throws StorageError.
// At start-up as the agent (scans left 'running' by a previous process become incomplete);
// when reopened while the agent runs (after a disk failure) as a tool, which leaves the
// scans of running jobs alone.
Store open_agent_store(const Config& config, Access access = Access::agent) {
  auto store = Store::open(database_path(config), access);
  store.check_writable();
  return store;
}

// Sets portvigil_job_window_open and _opened_timestamp_seconds for every job as of `now`:
// the time of the next window that opens or closes (at the latest an hour on). Called
// before /metrics is served, so no scrape sees a job's window before it is evaluated.
std::chrono::system_clock::time_point publish_windows(const Config& config, AgentMetrics& metrics,
                                                      std::chrono::system_clock::time_point now) {
  auto next = now + std::chrono::hours(1);
  for (const auto& job : config.jobs) {
    if (!job.windows) {
      metrics.set_job_window(job.name, true, std::chrono::system_clock::time_point{});
      continue;
    }
    try {
      const auto window = job.windows->current(now);
      metrics.set_job_window(job.name, window.has_value(),
                             window ? std::optional(window->open) : std::nullopt);
      next = std::min(next, window ? window->close : job.windows->next_open(now));
    } catch (const std::exception&) {
      // in_window logs the zone's failure when the job falls due; shown closed, as the
      // job does not scan.
      metrics.set_job_window(job.name, false, std::nullopt);
    }
  }
  return next;
}

// How often a service whose database cannot be opened (disk full) tries again.
constexpr std::chrono::seconds kDatabaseRetry{30};

class Agent {
 public:
  // Without a store (the database could not be opened because of the disk) the agent
  // serves its metrics, retries every kDatabaseRetry and starts scanning once it opens.
  Agent(AgentArgs args, std::shared_ptr<const Config> config, std::optional<Store> store,
        std::string database_error, EventLog& events, Logger& log, AgentMetrics& metrics,
        MetricsServer* web)
      : args_(std::move(args)),
        config_(std::move(config)),
        store_(std::move(store)),
        events_(events),
        log_(log),
        metrics_(metrics),
        web_(web),
        timer_(io_),
        window_timer_(io_),
        watchdog_(io_),
        signals_(io_, SIGINT, SIGTERM, SIGHUP),
        shared_rate_(config_->agent.max_rate.value_or(0)),
        last_database_error_(std::move(database_error)),
        last_database_log_(Schedule::Clock::now()) {}

  int run() {
    schedule_.set_jobs(timings(*config_), Schedule::Clock::now());
    wait_signal();
    start_sinks();
    update_windows();
    dispatch();
    ping_watchdog();
    notify::ready(status_line());
    io_.run();
    for (auto& [name, worker] : workers_) worker->thread.join();
    for (auto& sink : sinks_) sink->request_stop();  // all at once, then wait for each
    sinks_.clear();
    log_.info("stopped");
    return 0;
  }

 private:
  void wait_signal() {
    signals_.async_wait([this](const asio::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        reload();
        wait_signal();
        return;
      }
      const char* name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
      if (stop_) {
        // A second request while the scan is being recorded: the database is
        // crash-safe, so quit now rather than make the operator wait.
        log_.warn(std::string("received ") + name + " again: exiting at once");
        std::_Exit(1);
      }
      log_.info(std::string("received ") + name + ": stopping");
      notify::stopping();
      stop_ = true;
      for (auto& [job, worker] : workers_) worker->stop = true;
      wait_signal();
      timer_.cancel();
      window_timer_.cancel();
      if (workers_.empty()) io_.stop();  // else the last on_done stops once its scan is recorded
    });
  }

  // One runner per [[sink]], each with its own thread and database connection. A sink that
  // cannot be built is logged and left out; the others and the scans go on.
  void start_sinks() {
    for (const auto& s : config_->sinks) {
      try {
        sinks_.push_back(std::make_unique<SinkRunner>(s, make_configured_sink(s),
                                                      database_path(*config_), log_, metrics_));
      } catch (const std::exception& e) {
        log_.error("sink " + s.name + ": cannot start: " + e.what());
      }
    }
  }

  // The sinks that run: [[sink]] changes wait for a restart, and one that failed to start
  // is not among them.
  std::vector<std::string> running_sink_names() const {
    std::vector<std::string> names;
    for (const auto& sink : sinks_) names.push_back(sink->name());
    return names;
  }

  static bool same_sinks(const Config& a, const Config& b) {
    return std::equal(a.sinks.begin(), a.sinks.end(), b.sinks.begin(), b.sinks.end(),
                      [](const SinkConfig& x, const SinkConfig& y) {
                        return x.name == y.name && x.type == y.type && x.url == y.url &&
                               x.path == y.path && x.timeout == y.timeout &&
                               x.batch_size == y.batch_size;
                      });
  }

  // The web configuration file is read again on every SIGHUP (renewed certificates, changed
  // users), also when the agent runs on the built-in configuration. False when that failed.
  bool reload_web_config() {
    if (web_ == nullptr || web_->web_config_file().empty()) return true;
    try {
      web_->reload_web_config();
      log_.info("SIGHUP: web configuration reloaded from " + web_->web_config_file());
      return true;
    } catch (const std::exception& e) {
      log_.error(std::string("SIGHUP: web configuration not reloaded, keeping the running one: ") +
                 e.what());
      return false;
    }
  }

  void reload() {
    if (args_.config_path.empty()) {
      if (web_ != nullptr && !web_->web_config_file().empty()) {
        metrics_.record_reload(reload_web_config());
      } else {
        log_.info("SIGHUP: running on the built-in default, nothing to reload");
      }
      return;
    }
    notify::reloading();
    try {
      auto fresh = load(args_);
      for (const auto& w : fresh->warnings) log_.warn(w);
      if (fresh->agent.state_dir != config_->agent.state_dir ||
          fresh->agent.event_log != config_->agent.event_log) {
        log_.warn("SIGHUP: state-dir and event-log changes take effect after a restart");
      }
      if (!same_sinks(*fresh, *config_)) {
        log_.warn("SIGHUP: [[sink]] changes take effect after a restart");
      }
      if (fresh->agent.web_listen_address != config_->agent.web_listen_address ||
          fresh->agent.web_config_file != config_->agent.web_config_file ||
          fresh->agent.web_username != config_->agent.web_username ||
          fresh->agent.web_password != config_->agent.web_password) {
        log_.warn(
            "SIGHUP: web-listen-address, web-config-file and web-username/web-password "
            "changes take effect after a restart (the file itself is re-read)");
      }
      config_ = std::move(fresh);
      log_.set_level(config_->agent.log_level);
      shared_rate_.set_rate(config_->agent.max_rate.value_or(0));
      schedule_.set_jobs(timings(*config_), Schedule::Clock::now());
      std::vector<std::string> names;
      for (const auto& j : config_->jobs) {
        metrics_.set_job(j.name, j.technique, j.interval);
        names.push_back(j.name);
      }
      metrics_.retain_jobs(names);
      update_windows();
      metrics_.set_authorizations(authorizations(*config_));
      metrics_.set_shard(config_->agent.shard, config_->agent.replica);
      // load() has checked the file; a reload can still refuse one that turns TLS or
      // passwords off. The jobs are reloaded either way; the gauge says whether all was.
      metrics_.record_reload(reload_web_config());
      log_.info("SIGHUP: configuration reloaded from " + args_.config_path + " (" +
                std::to_string(config_->jobs.size()) + " jobs)");
      timer_.cancel();
      dispatch();
    } catch (const std::exception& e) {
      metrics_.record_reload(false);
      log_.error(std::string("SIGHUP: reload failed, keeping the running configuration: ") +
                 e.what());
    }
    notify::ready(status_line());
  }

  // Opens the database if it is not open yet; false while it still cannot be.
  bool have_store() {
    if (store_) return true;
    try {
      // Scans still 'running' are a previous process's only while no job of ours runs.
      store_ = open_agent_store(*config_, workers_.empty() ? Access::agent : Access::tool);
      attach_store(*store_, events_, *config_, metrics_, log_, running_sink_names(),
                   /*at_start=*/false);
      metrics_.set_database_writable(true);
      log_.info("database: " + database_path(*config_) + " is writable again: scans resume");
      return true;
    } catch (const StorageError& e) {
      store_.reset();
      metrics_.set_database_writable(false);
      const auto now = Schedule::Clock::now();
      if (e.what() != last_database_error_ ||
          now - last_database_log_ >= std::chrono::minutes(10)) {
        log_.error(std::string(e.what()) + " (scans wait; retrying every " +
                   std::to_string(kDatabaseRetry.count()) + "s)");
        last_database_error_ = e.what();
        last_database_log_ = now;
      }
      return false;
    }
  }

  void arm() {
    if (stop_) return;
    // With every slot busy the next start comes from on_done, not the timer: a due job's
    // time is in the past and would wake this loop in a spin.
    const bool slots_full =
        workers_.size() >= static_cast<std::size_t>(config_->agent.max_concurrent_jobs);
    const auto due = slots_full ? std::nullopt : schedule_.next_due();
    // Jobs that fall due while the database cannot be opened wait for the next retry.
    timer_.expires_at(!store_ ? Schedule::Clock::now() + kDatabaseRetry
                      : due   ? *due
                              : Schedule::Clock::now() + std::chrono::hours(1));
    timer_.async_wait([this](const asio::error_code& ec) {
      if (!ec) dispatch();
    });
  }

  // Starts every due job a free slot allows. Called on the timer and whenever a job ends,
  // so a job waits for a slot at most until the first running one finishes.
  void dispatch() {
    if (stop_) return;
    while (workers_.size() < static_cast<std::size_t>(config_->agent.max_concurrent_jobs) &&
           have_store()) {
      const auto name = schedule_.take_due(Schedule::Clock::now());
      if (!name) break;
      // Still running from before a reload removed the job and another added it back: it
      // ends (and is marked finished) first.
      if (workers_.contains(*name)) continue;
      std::optional<ScanWindows::Interval> window;
      if (!in_window(*name, window)) continue;
      start(*name, window);
    }
    arm();
  }

  // A job with scan windows starts only inside one (`window` is then the one it is in);
  // outside, it waits for the next to open.
  bool in_window(const std::string& job_name, std::optional<ScanWindows::Interval>& window) {
    const JobConfig* job = find_job(*config_, job_name);
    if (job == nullptr || !job->windows) return true;
    const auto now = std::chrono::system_clock::now();
    try {
      window = job->windows->current(now);
      if (window) return true;
      const auto opens = job->windows->next_open(now);
      schedule_.defer(job_name,
                      Schedule::Clock::now() +
                          std::chrono::duration_cast<Schedule::Clock::duration>(opens - now));
      log_.info("job " + job_name + ": outside its scan windows; it next runs when one opens, " +
                local_time_text(opens, job->windows->zone()));
    } catch (const std::exception& e) {
      // The zone's data went bad after the configuration was loaded: never scan outside
      // the windows because of it; try again in an hour.
      schedule_.defer(job_name, Schedule::Clock::now() + std::chrono::hours(1));
      log_.error("job " + job_name + ": its scan windows cannot be evaluated (time zone " +
                 job->windows->zone() + "): " + e.what() + "; retrying in an hour");
    }
    return false;
  }

  // The window gauges now, then again at the next window that opens or closes (at the
  // latest in an hour, after a clock step).
  void update_windows() {
    window_timer_.cancel();
    if (stop_) return;
    const auto now = std::chrono::system_clock::now();
    const auto next = publish_windows(*config_, metrics_, now);
    window_timer_.expires_after(std::chrono::duration_cast<Schedule::Clock::duration>(next - now) +
                                std::chrono::milliseconds(1));
    window_timer_.async_wait([this](const asio::error_code& ec) {
      if (!ec) update_windows();
    });
  }

  static const JobConfig* find_job(const Config& config, const std::string& name) {
    const auto it = std::find_if(config.jobs.begin(), config.jobs.end(),
                                 [&](const JobConfig& j) { return j.name == name; });
    return it == config.jobs.end() ? nullptr : &*it;
  }

  void start(const std::string& job_name, const std::optional<ScanWindows::Interval>& window) {
    const auto config = config_;  // the run keeps the configuration it started with
    const JobConfig* job = find_job(*config, job_name);
    if (job == nullptr) return;
    const auto started = Schedule::Clock::now();
    const auto shared_worker = std::make_shared<Worker>(io_);
    auto& worker = *shared_worker;
    worker.window = window;
    if (window) {
      // The window that let the job start closes mid-scan: stop it there (incomplete, no
      // events), as SIGTERM would, with a note that says why.
      worker.window_close.expires_after(std::chrono::duration_cast<Schedule::Clock::duration>(
          window->close - std::chrono::system_clock::now()));
      // Weak: the timer may fire just as the scan ends, after on_done dropped the worker.
      worker.window_close.async_wait([this, weak = std::weak_ptr<Worker>(shared_worker),
                                      job_name](const asio::error_code& ec) {
        const auto w = weak.lock();
        if (ec || !w) return;
        log_.warn("job " + job_name + ": its scan window closed: stopping the scan");
        w->window_ended = true;
        w->stop = true;
      });
    }
    // Into workers_ only once the thread runs: a thread that cannot start takes no slot.
    worker.thread = std::thread([this, config, job, started, &worker] {
      JobRunResult result;
      auto outcome = AgentMetrics::ScanOutcome::incomplete;
      bool ok = true;
      bool disk_failed = false;
      std::string failure;
      try {
        // A connection of its own: SQLite connections are not shared between threads. The
        // agent's connection cleaned up at start-up; this one must leave running scans alone.
        auto store = Store::open(database_path(*config), Access::tool);
        result = run_job(*config, *job, store,
                         JobEnvironment{{},
                                        &worker.stop,
                                        &log_,
                                        &shared_rate_,
                                        worker.window ? &worker.window_ended : nullptr});
        if (result.complete) {
          outcome = AgentMetrics::ScanOutcome::complete;
        } else if (worker.window && worker.window_ended) {
          // Cut by its window after a scan that completed in the same window: the window
          // was used, this is no failure. Without one, the window was too short (or the
          // agent ran too little of it) to watch the job's hosts: a failure.
          const auto last = store.latest_complete_scan(job->name);
          if (last && last->finished && *last->finished >= worker.window->open) {
            outcome = AgentMetrics::ScanOutcome::window_closed;
          }
        }
      } catch (const StorageError& e) {
        ok = false;
        disk_failed = e.cause() == StorageError::Cause::disk;
        failure = e.what();
      } catch (const std::exception& e) {
        ok = false;
        failure = e.what();
      }
      asio::post(io_, [this, config, job, started, result = std::move(result), outcome, ok,
                       disk_failed, failure] {
        on_done(*job, started, result, ok ? outcome : AgentMetrics::ScanOutcome::incomplete,
                disk_failed, failure, ok);
      });
    });
    // on_done runs on this (the loop's) thread, so never before the worker is in the map.
    workers_.emplace(job_name, shared_worker);
  }

  void on_done(const JobConfig& job, Schedule::Clock::time_point started,
               const JobRunResult& result, AgentMetrics::ScanOutcome outcome, bool disk_failed,
               const std::string& failure, bool ok) {
    // The worker posted this as its last act: joining it is immediate.
    if (const auto w = workers_.find(job.name); w != workers_.end()) {
      w->second->thread.join();
      workers_.erase(w);
    }
    // A scan that reached the database proves it writable; one that failed on the disk
    // (full, I/O error) proves the opposite until a later scan commits.
    if (ok || disk_failed) metrics_.set_database_writable(ok);
    // The database is then reopened and write-checked every kDatabaseRetry (have_store),
    // rather than waiting for this job's next turn, which may be a day away.
    if (disk_failed) {
      store_.reset();
      last_database_error_ = failure;
      last_database_log_ = Schedule::Clock::now();
    }
    const auto took = std::chrono::duration<double>(Schedule::Clock::now() - started);
    metrics_.record_scan(job.name, job.technique, outcome, took, result.summary.counters);
    if (!ok) {
      log_.error("job " + job.name + ": " + failure);
    } else if (outcome == AgentMetrics::ScanOutcome::window_closed) {
      log_.info(describe(job, result) + " (a scan completed earlier in this window)");
    } else {
      (result.complete ? log_.info(describe(job, result)) : log_.warn(describe(job, result)));
      record_events(metrics_, job.name, result.events);
      metrics_.record_scope(job.name, result.targets_refused);
      if (result.complete) {
        metrics_.record_targets_owned(job.name, result.targets_owned);
        metrics_.publish(result.snapshot);
        metrics_.record_hosts(job.name, result.hosts_down, result.hosts_inconclusive,
                              result.hosts_gone_silent);
        if (result.udp_coverage) metrics_.record_udp_coverage(job.name, *result.udp_coverage);
      }
      last_status_ = describe(job, result);
      if (store_) publish_events(events_, *store_, log_, metrics_);
      if (!result.events.empty()) {
        for (auto& sink : sinks_) sink->wake();
      }
    }
    schedule_.finished(job.name, started, Schedule::Clock::now(),
                       outcome != AgentMetrics::ScanOutcome::incomplete);
    notify::status(status_line());
    maybe_prune();
    if (stop_) {
      if (workers_.empty()) io_.stop();
      return;
    }
    timer_.cancel();
    dispatch();
  }

  std::string status_line() const {
    return std::to_string(config_->jobs.size()) + " jobs, " + std::to_string(workers_.size()) +
           " running" + (store_ ? "" : "; the database cannot be opened (disk?): scans wait") +
           (last_status_.empty() ? std::string{} : "; last: " + last_status_);
  }

  // WATCHDOG=1 comes from this loop itself, so a wedged scheduler gets restarted.
  void ping_watchdog() {
    const auto every = notify::watchdog_interval();
    if (!every || stop_) return;
    notify::watchdog();
    watchdog_.expires_after(*every);
    watchdog_.async_wait([this](const asio::error_code& ec) {
      if (!ec) ping_watchdog();
    });
  }

  void maybe_prune() {
    const auto now = std::chrono::system_clock::now();
    if (!store_ || now - last_prune_ < std::chrono::hours(1)) return;
    last_prune_ = now;
    try {
      const auto keep = std::chrono::duration_cast<std::chrono::seconds>(config_->agent.retention);
      Retention r;
      r.events = keep;
      r.scans = keep;
      r.transitions = keep;
      // Events a running sink has not delivered stay, however old (PortvigilSinkBehind says
      // so); one that failed to start must not pin the database's growth with nothing to
      // report it. The event log is one of them (sink="event-log"): its mark is
      // events_.last_id(), what the file really holds.
      r.keep_events_after = events_.last_id();
      for (const auto& name : running_sink_names()) {
        if (const auto cursor = store_->sink_cursor(name)) {
          r.keep_events_after = std::min(*r.keep_events_after, *cursor);
        }
      }
      const auto pruned = store_->prune(r, now);
      if (pruned.transitions + pruned.events + pruned.scans > 0) {
        log_.info("retention: pruned " + std::to_string(pruned.scans) + " scans, " +
                  std::to_string(pruned.transitions) + " transitions, " +
                  std::to_string(pruned.events) + " events");
      }
    } catch (const std::exception& e) {
      log_.error(std::string("retention: ") + e.what());
    }
  }

  AgentArgs args_;
  std::shared_ptr<const Config> config_;
  std::optional<Store> store_;
  EventLog& events_;
  Logger& log_;
  AgentMetrics& metrics_;
  MetricsServer* web_;  // null without an endpoint
  std::string last_status_;
  asio::io_context io_;
  asio::steady_timer timer_;
  asio::steady_timer window_timer_;  // the next scan window that opens or closes
  asio::steady_timer watchdog_;
  asio::signal_set signals_;
  Schedule schedule_;
  std::atomic<bool> stop_{false};
  RateBudget shared_rate_;  // the agent's max-rate over every running job
  // One running job: its thread, its stop flag (SIGTERM or the end of its scan window) and
  // the timer of that end. Shared: the thread refers to it until on_done joins it, and the
  // timer's handler holds it weakly.
  struct Worker {
    explicit Worker(asio::io_context& io) : window_close(io) {}
    std::thread thread;
    std::atomic<bool> stop{false};
    std::atomic<bool> window_ended{false};
    asio::steady_timer window_close;
    std::optional<ScanWindows::Interval> window;  // the one it started in, if it has windows
  };
  std::map<std::string, std::shared_ptr<Worker>> workers_;  // by job name: never overlapping
  std::vector<std::unique_ptr<SinkRunner>> sinks_;
  std::chrono::system_clock::time_point last_prune_{};
  std::string last_database_error_;
  Schedule::Clock::time_point last_database_log_{};
};

}  // namespace

int run_agent_command(std::span<const std::string_view> argv) {
  // A reader of stdout (or of a log on a pipe) that goes away must not kill the service:
  // the write fails instead.
  std::signal(SIGPIPE, SIG_IGN);
  AgentArgs args;
  std::shared_ptr<const Config> config;
  try {
    args = parse_agent_args(argv);
    if (args.help) {
      std::cout << kAgentUsage;
      return 0;
    }
    if (args.print_default) {
      std::cout << default_config_toml();
      return 0;
    }
    config = load(args);
  } catch (const InputError& e) {
    std::cerr << "portvigil: " << printable(e.what()) << "\n";
    return 2;
  }
  Logger log(config->agent.log_level);
  for (const auto& w : config->warnings) log.warn(w);
  try {
    // Everything the agent creates is private (state, event log, SQLite's -wal and -shm).
    ::umask(0077);
    prepare_state_dir(config->agent.state_dir);
    const int lock = lock_state_dir(config->agent.state_dir);
    (void)lock;  // held until exit
    EventLog events(config->agent.event_log);
    for (const auto& note : events.notes()) log.warn(note);
    AgentMetrics metrics(config->agent.port_series_limit);
    for (const auto& j : config->jobs) metrics.set_job(j.name, j.technique, j.interval);
    publish_windows(*config, metrics, std::chrono::system_clock::now());
    metrics.set_authorizations(authorizations(*config));
    metrics.set_shard(config->agent.shard, config->agent.replica);
    metrics.record_reload(true);
    // A database the disk cannot hold (full, I/O error) does not stop the service: it
    // starts, reports portvigil_database_writable 0 and retries. --once has no later.
    std::optional<Store> store;
    std::string database_error;
    try {
      store = open_agent_store(*config);
    } catch (const StorageError& e) {
      if (args.once || e.cause() != StorageError::Cause::disk) throw;
      database_error = e.what();
      log.error(database_error + " (the agent starts; scans wait for the database, retried every " +
                std::to_string(kDatabaseRetry.count()) + "s)");
      metrics.set_database_writable(false);
    }
    if (store) {
      std::vector<std::string> sinks;
      for (const auto& s : config->sinks) sinks.push_back(s.name);
      attach_store(*store, events, *config, metrics, log, sinks, /*at_start=*/true);
    }
    watch_accepted_ports(metrics, database_path(*config));
    std::unique_ptr<MetricsServer> web;
    if (!args.once && !config->agent.web_listen_address.empty()) {
      web = std::make_unique<MetricsServer>(
          WebOptions{config->agent.web_listen_address, config->agent.web_username,
                     config->agent.web_password, config->agent.web_config_file},
          metrics);
      web->set_ready(true);
      log.info(std::string("metrics on ") + (web->tls() ? "https://" : "http://") +
               config->agent.web_listen_address + "/metrics");
    }
    log.info("portvigil agent started: " + config->source + ", " +
             std::to_string(config->jobs.size()) + " jobs, state in " + config->agent.state_dir);
    if (args.once) {
      // Blocking SIGINT/SIGTERM into a flag keeps --once interruptible like the service.
      static std::atomic<bool> stop{false};
      std::signal(SIGINT, [](int) { stop = true; });
      std::signal(SIGTERM, [](int) { stop = true; });
      bool all_complete = true;
      RateBudget shared_rate(config->agent.max_rate.value_or(0));
      // The sinks get each job's events (and any an earlier run left) as the job ends; one
      // that fails is left alone for the rest of the run and keeps its cursor: the next
      // run, --once or not, delivers from there.
      std::vector<std::unique_ptr<EventSink>> once_sinks;
      for (const auto& s : config->sinks) {
        try {
          once_sinks.push_back(make_configured_sink(s));
        } catch (const std::exception& e) {
          log.error("sink " + s.name + ": cannot start: " + e.what());
          once_sinks.push_back(nullptr);
        }
      }
      const auto deliver = [&] {
        for (std::size_t i = 0; i < once_sinks.size() && !stop; ++i) {
          if (!once_sinks[i]) continue;
          bool done = false;
          try {
            done = deliver_backlog(config->sinks[i], *once_sinks[i], *store, log, metrics, stop);
          } catch (const std::exception& e) {
            log.error("sink " + config->sinks[i].name + ": " + e.what() +
                      " (the next agent run delivers)");
          }
          if (!done) once_sinks[i].reset();
        }
      };
      for (const auto& job : config->jobs) {
        const auto now = std::chrono::system_clock::now();
        if (job.windows && !job.windows->current(now)) {
          log.warn("job " + job.name + ": outside its scan windows: not run (the next opens " +
                   local_time_text(job.windows->next_open(now), job.windows->zone()) + ")");
          continue;
        }
        const auto r = run_job(*config, job, *store, JobEnvironment{{}, &stop, &log, &shared_rate});
        (r.complete ? log.info(describe(job, r)) : log.warn(describe(job, r)));
        publish_events(events, *store, log, metrics);
        deliver();
        all_complete = all_complete && r.complete;
        if (stop) break;
      }
      deliver();  // when every job was outside its windows: what an earlier run left
      return all_complete ? 0 : 1;
    }
    Agent agent(args, config, std::move(store), std::move(database_error), events, log, metrics,
                web.get());
    const int status = agent.run();
    // The scrape hook's read-only connection closes first, so that the agent's own closes
    // last and checkpoints the -wal file away (a reader cannot): a clean stop leaves one file.
    web.reset();
    metrics.set_scrape_hook({});
    return status;
  } catch (const std::exception& e) {
    log.error(e.what());
    return 1;
  }
}

}  // namespace portvigil
