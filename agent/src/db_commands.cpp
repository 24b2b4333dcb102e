// Commands that read (or accept) what the agent stored: changes, history, baseline, status.
#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "agent_command.hpp"
#include "job_runner.hpp"
#include "portvigil/common/printable.hpp"
#include "portvigil/config/agent_config.hpp"
#include "portvigil/config/cli.hpp"
#include "portvigil/exporters/event_log.hpp"
#include "portvigil/storage/store.hpp"

namespace portvigil {
namespace {

// The filter and output options; each command accepts the ones that mean something to it
// and rejects the others, so `history HOST --port 22` cannot silently show every port.
enum DbOption : unsigned { kJob = 1, kHost = 2, kPort = 4, kSince = 8, kJson = 16, kDryRun = 32 };

struct DbCommand {
  std::string_view name;
  std::string_view usage;  // usage line(s) and description, ending in "\n"
  unsigned options;
  std::size_t min_positional;
  std::size_t max_positional;
  std::string_view positional_usage;  // for the error message: "HOST [PORT]"
};

struct DbArgs {
  std::string config_path;
  std::string state_dir;
  std::vector<std::string> positional;
  std::optional<std::string> job;
  std::optional<std::string> host;
  std::optional<std::uint16_t> port;
  std::chrono::duration<double> since = std::chrono::hours(24);
  bool json = false;
  bool dry_run = false;
  bool help = false;
};

std::uint16_t parse_port(std::string_view text, std::string_view what) {
  unsigned v = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size() || v > 65535) {
    throw InputError(std::string(what) + ": \"" + std::string(text) +
                     "\" is not a port number 0-65535");
  }
  return static_cast<std::uint16_t>(v);
}

struct OptionHelp {
  DbOption option;
  std::string_view text;
};
constexpr std::array<OptionHelp, 6> kOptionHelp{{
    {kJob, "      --job JOB         only this job"},
    {kHost, "      --host HOST       only this host (its name in the targets, or its address)"},
    {kPort, "      --port PORT       only this port"},
    {kSince, "      --since DUR       the last DUR (default 24h; e.g. 30m, 7d)"},
    {kJson, "      --json            one JSON object per line (changes: as in the event log)"},
    {kDryRun, "      --dry-run         accept, revoke: list what would change, change nothing"},
}};

constexpr std::string_view kLocate =
    "  -c, --config FILE     find the database through FILE's [agent] state-dir (default:\n"
    "                        $PORTVIGIL_CONFIG, else /etc/portvigil/portvigil.toml when it\n"
    "                        exists, as the service reads it, else the built-in default)\n"
    "      --state-dir DIR   read DIR/portvigil.db instead\n"
    "  -h, --help            this help\n"
    "\n"
    "Exit status: 0 done; 1 the database could not be read or written; 2 bad input\n"
    "(an unknown option, job or host).\n";

// The configuration the service reads when none is named.
constexpr const char* kSystemConfig = "/etc/portvigil/portvigil.toml";

std::string help_text(const DbCommand& c) {
  std::string out = std::string(c.usage) + "\nOptions:\n";
  for (const auto& o : kOptionHelp) {
    if (c.options & o.option) out += std::string(o.text) + "\n";
  }
  return out + std::string(kLocate);
}

DbArgs parse_db_args(std::span<const std::string_view> args, const DbCommand& c) {
  DbArgs a;
  const std::string command(c.name);
  auto allowed = [&](std::string_view arg, DbOption o) {
    if (c.options & o) return;
    throw InputError(command + ": option " + std::string(arg) + " does not apply (see portvigil " +
                     command + " --help)");
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto arg = args[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= args.size()) throw InputError(std::string(arg) + ": missing value");
      return args[++i];
    };
    if (arg == "-c" || arg == "--config") {
      a.config_path = std::string(value());
    } else if (arg == "--state-dir") {
      a.state_dir = std::string(value());
    } else if (arg == "--job") {
      allowed(arg, kJob);
      a.job = std::string(value());
    } else if (arg == "--host") {
      allowed(arg, kHost);
      a.host = std::string(value());
    } else if (arg == "--port") {
      allowed(arg, kPort);
      a.port = parse_port(value(), "--port");
    } else if (arg == "--since") {
      allowed(arg, kSince);
      a.since = parse_duration(value(), "--since");
    } else if (arg == "--json") {
      allowed(arg, kJson);
      a.json = true;
    } else if (arg == "--dry-run") {
      allowed(arg, kDryRun);
      a.dry_run = true;
    } else if (arg == "-h" || arg == "--help") {
      a.help = true;
    } else if (arg.starts_with("-") && arg.size() > 1) {
      throw InputError(command + ": unknown option \"" + std::string(arg) + "\" (see portvigil " +
                       command + " --help)");
    } else {
      a.positional.emplace_back(arg);
    }
  }
  if (!a.help &&
      (a.positional.size() < c.min_positional || a.positional.size() > c.max_positional)) {
    throw InputError(command + ": " +
                     (c.max_positional == 0
                          ? "takes no arguments, got \"" + a.positional.front() + "\""
                          : "expected " + std::string(c.positional_usage) +
                                (a.positional.size() > c.max_positional
                                     ? ", got an extra \"" + a.positional[c.max_positional] + "\""
                                     : std::string{})) +
                     " (see portvigil " + command + " --help)");
  }
  return a;
}

// The configuration the service runs with: --config, else $PORTVIGIL_CONFIG, else
// /etc/portvigil/portvigil.toml when it exists, else the built-in default.
Config service_config(const DbArgs& a) {
  std::string config = a.config_path;
  if (config.empty()) {
    if (const char* env = std::getenv("PORTVIGIL_CONFIG"); env && *env) {
      config = env;
    } else if (std::error_code ec; std::filesystem::exists(kSystemConfig, ec)) {
      config = kSystemConfig;
    }
  }
  return config.empty() ? default_config() : load_config(config);
}

// The database the service writes: --state-dir, else the state-dir of service_config().
std::string db_path(const DbArgs& a) {
  if (!a.state_dir.empty()) return a.state_dir + "/portvigil.db";
  return service_config(a).agent.state_dir + "/portvigil.db";
}

// A --job or --host (or history's HOST) naming nothing stored is a typo to report, not an
// empty answer such as "accepted 0 ports".
void require_known(const Store& store, const std::optional<std::string>& job,
                   const std::optional<std::string>& host, std::string_view host_option) {
  if (job) {
    const auto jobs = store.job_names();
    if (std::find(jobs.begin(), jobs.end(), *job) == jobs.end()) {
      std::string known;
      for (const auto& j : jobs) known += (known.empty() ? "" : ", ") + j;
      throw InputError("--job \"" + *job + "\": no such job in the database (" +
                       (known.empty() ? std::string("none stored yet") : "known: " + known) + ")");
    }
  }
  if (host && !store.has_host({.job = job, .host = host})) {
    throw InputError(std::string(host_option) + " \"" + *host + "\": no such host" +
                     (job ? " in job " + *job : std::string()) +
                     " (a host is named as in its job's targets, else by its address)");
  }
}

std::string when(std::chrono::system_clock::time_point t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

template <typename Fn>
int guarded(std::span<const std::string_view> args, const DbCommand& command, Fn&& fn) {
  try {
    const auto a = parse_db_args(args, command);
    if (a.help) {
      std::cout << help_text(command);
      return 0;
    }
    return fn(a);
  } catch (const InputError& e) {
    std::cerr << "portvigil: " << printable(e.what()) << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "portvigil: " << printable(e.what()) << "\n";
    return 1;
  }
}

constexpr DbCommand kChanges{"changes",
                             "Usage: portvigil changes [--since 24h] [--job JOB] [--json]\n\n"
                             "List the confirmed port state changes (events) of the last --since,\n"
                             "oldest first. UNEXPECTED marks changes the job's policy does not\n"
                             "expect.\n",
                             kSince | kJob | kJson,
                             0,
                             0,
                             ""};
constexpr DbCommand kHistory{"history",
                             "Usage: portvigil history HOST [PORT] [--job JOB]\n\n"
                             "Show every recorded state transition of HOST (or of one PORT),\n"
                             "oldest first, within the agent's retention.\n",
                             kJob,
                             1,
                             2,
                             "HOST [PORT]"};
constexpr DbCommand kBaseline{
    "baseline",
    "Usage: portvigil baseline accept [--dry-run] [--job JOB] [--host HOST] [--port PORT]\n"
    "       portvigil baseline list [--job JOB] [--host HOST] [--port PORT]\n"
    "       portvigil baseline revoke [--dry-run] [--job JOB] [--host HOST] [--port PORT]\n\n"
    "accept: accept the ports open now as expected; they stop counting as\n"
    "unexpected (and stop paging) until they close; accepted ports no longer\n"
    "open are revoked. list: the accepted ports. revoke: forget accepted ports,\n"
    "so that open ones count as unexpected again. Without filters: everything.\n",
    kJob | kHost | kPort | kDryRun,
    1,
    1,
    "a subcommand: accept, list or revoke"};
constexpr DbCommand kStatus{
    "status",
    "Usage: portvigil status [--json]\n\n"
    "Show every job as a table: its latest scan (id, result, start,\n"
    "duration), its known hosts that answered the latest complete scan\n"
    "(UP) and those that did not (DOWN), its open ports and how many of\n"
    "them no policy or accepted baseline expects (UNEXPECTED), the events\n"
    "of the latest scan, when the job is next due by its interval (the\n"
    "latest start plus the interval: the agent adds its jitter, retries a\n"
    "failed scan sooner and runs every job when it starts), and\n"
    "why the latest scan is incomplete. UNEXPECTED and NEXT need the job\n"
    "in the configuration (see --config); \"-\" where they cannot be said.\n"
    "A configured job with no scan yet is listed with RESULT never.\n",
    kJson,
    0,
    0,
    ""};

// Reading must work when the disk is full (that is when an operator looks); the store then
// reads without its write-ahead log and the warning says what may be missing.
Store open_for_reading(const std::string& path) {
  auto store = Store::open(path, Access::read_only);
  if (const auto note = store.read_note()) {
    std::cerr << "portvigil: warning: " << printable(*note) << "\n";
  }
  return store;
}

// One line's worth of an event after its time, job and host.
std::string describe_event(const ChangeEvent& e) {
  if (e.kind == EventKind::service_changed) {
    return std::to_string(e.change.port) + "/" + std::string(name(e.change.proto)) +
           "  service changed: " +
           (e.previous_service ? printable(summary(*e.previous_service)) : std::string("?")) +
           " -> " + (e.service ? printable(summary(*e.service)) : std::string("?"));
  }
  if (e.kind == EventKind::port) {
    const auto& c = e.change;
    return std::to_string(c.port) + "/" + std::string(name(c.proto)) + "  " +
           std::string(from_name(c)) + " -> " + std::string(name(c.to)) + " (" +
           std::string(name(c.to_reason)) + ")";
  }
  std::string ports;
  for (const auto& [proto, port] : e.ports) {
    ports += (ports.empty() ? "" : ",") + std::to_string(port) + "/" + std::string(name(proto));
  }
  if (e.kind == EventKind::host_appeared) {
    return "host appeared (" + (ports.empty() ? std::string("no open ports") : "open: " + ports) +
           ")";
  }
  return "host gone silent (" +
         (ports.empty() ? std::string("no open ports") : "was open: " + ports) + ")";
}

// What answered on a port an event opened, as one line after it: "  ssh: SSH-2.0-...".
std::string service_suffix(const std::optional<ServiceIdentity>& service) {
  return service ? "  " + printable(summary(*service)) : std::string();
}

}  // namespace

int run_changes_command(std::span<const std::string_view> args) {
  return guarded(args, kChanges, [](const DbArgs& a) {
    const auto store = open_for_reading(db_path(a));
    require_known(store, a.job, std::nullopt, "--host");
    const auto since = std::chrono::system_clock::now() -
                       std::chrono::duration_cast<std::chrono::system_clock::duration>(a.since);
    const auto events = store.events_since(since, a.job);
    for (const auto& e : events) {
      if (a.json) {
        std::cout << event_json(e) << "\n";
        continue;
      }
      std::cout << when(e.time) << "  " << e.job << "  " << e.host << "  " << describe_event(e)
                << (e.expected ? "" : "  UNEXPECTED")
                << (e.kind == EventKind::port ? service_suffix(e.service) : std::string()) << "\n";
    }
    if (!a.json && events.empty()) std::cout << "no changes\n";
    return 0;
  });
}

int run_history_command(std::span<const std::string_view> args) {
  return guarded(args, kHistory, [](const DbArgs& a) {
    PortFilter f;
    f.host = a.positional[0];
    f.job = a.job;
    if (a.positional.size() == 2) f.port = parse_port(a.positional[1], "PORT");
    const auto store = open_for_reading(db_path(a));
    require_known(store, a.job, f.host, "HOST");
    const auto rows = store.history(f);
    // Host events (appeared, gone silent) belong in a host's history too, in time order, and
    // so do its ports' service changes (those of the one port asked for, with PORT).
    std::vector<ChangeEvent> host_events;
    for (auto& e : store.events_since({}, a.job)) {
      if (e.kind == EventKind::port || e.host != *f.host) continue;
      const bool service = e.kind == EventKind::service_changed;
      if (!f.port || (service && e.change.port == *f.port)) host_events.push_back(std::move(e));
    }
    std::size_t next_event = 0;
    auto print_events_until = [&](std::optional<std::chrono::system_clock::time_point> t) {
      for (; next_event < host_events.size() && (!t || host_events[next_event].time <= *t);
           ++next_event) {
        const auto& e = host_events[next_event];
        std::cout << when(e.time) << "  " << e.job << "  " << describe_event(e) << "  scan "
                  << e.scan_id << "\n";
      }
    };
    for (const auto& t : rows) {
      print_events_until(t.time);
      std::cout << when(t.time) << "  " << t.job << "  " << t.change.port << "/"
                << name(t.change.proto) << "  " << from_name(t.change) << " -> "
                << name(t.change.to) << " (" << name(t.change.to_reason) << ")  scan " << t.scan_id
                << service_suffix(t.service) << "\n";
    }
    print_events_until(std::nullopt);
    if (rows.empty() && host_events.empty()) {
      std::cout << "no transitions recorded for " << *f.host << "\n";
    }
    return 0;
  });
}

namespace {

std::string port_line(const PortKey& k) {
  return k.job + "  " + k.host + "  " + std::to_string(k.port) + "/" + std::string(name(k.proto));
}

}  // namespace

int run_baseline_command(std::span<const std::string_view> args) {
  return guarded(args, kBaseline, [](const DbArgs& a) {
    const std::string& sub = a.positional[0];
    if (sub != "accept" && sub != "list" && sub != "revoke") {
      throw InputError("baseline: unknown subcommand \"" + sub +
                       "\" (expected accept, list or revoke)");
    }
    if (sub == "list" && a.dry_run) {
      throw InputError("baseline list: --dry-run applies to accept and revoke");
    }
    PortFilter f;
    f.job = a.job;
    f.host = a.host;
    f.port = a.port;
    const bool writes = !a.dry_run && sub != "list";
    const std::string path = db_path(a);
    // Opening for writing would create (and migrate) an empty database at a wrong path and
    // then report "accepted 0 ports"; the dry run, which only reads, fails there instead.
    if (std::error_code ec; writes && !std::filesystem::exists(path, ec)) {
      throw std::runtime_error(path + ": no database here (has the agent run with this state " +
                               "directory? see --state-dir, --config)");
    }
    auto store = writes ? Store::open(path, Access::tool) : open_for_reading(path);
    require_known(store, a.job, a.host, "--host");
    if (sub == "list") {
      const auto ports = store.accepted_ports(f);
      for (const auto& k : ports) std::cout << port_line(k) << "\n";
      if (ports.empty()) std::cout << "no accepted ports\n";
      return 0;
    }
    if (sub == "revoke") {
      if (a.dry_run) {
        const auto ports = store.accepted_ports(f);
        for (const auto& k : ports) std::cout << "- " << port_line(k) << "\n";
        std::cout << "would revoke " << ports.size() << " accepted ports\n";
        return 0;
      }
      const std::size_t revoked = store.revoke_accepted(f);
      std::cout << "revoked " << revoked << " accepted ports\n";
      return 0;
    }
    if (a.dry_run) {
      const auto plan = store.plan_accept_baseline(f);
      for (const auto& k : plan.add) std::cout << "+ " << port_line(k) << "\n";
      for (const auto& k : plan.revoke) std::cout << "- " << port_line(k) << "\n";
      std::cout << "would accept " << plan.add.size() + plan.keep.size() << " open ports ("
                << plan.add.size() << " new), revoke " << plan.revoke.size() << "\n";
      return 0;
    }
    const auto r = store.accept_baseline(f);
    std::cout << "accepted " << r.accepted << " open ports (" << r.added << " new), revoked "
              << r.revoked << "\n";
    return 0;
  });
}

namespace {

// Rows of cells as columns two spaces apart, each as wide as its widest cell; the last
// column is not padded.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()), 0);
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
}

std::string duration_text(const ScanRecord& s) {
  if (!s.finished) return "-";
  const double secs = std::chrono::duration<double>(*s.finished - s.started).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, secs < 100 ? "%.1fs" : "%.0fs", secs);
  return buf;
}

// What `status` says of one job beyond its latest scan record.
struct JobStatus {
  ScanRecord scan;
  bool scanned = true;                  // false: a configured job with no scan recorded yet
  std::optional<std::size_t> up, down;  // known hosts that answered the newest complete scan
  std::size_t open = 0;
  std::optional<std::size_t> unexpected;                          // needs the job's policy
  std::optional<std::chrono::system_clock::time_point> next_run;  // needs its interval
};

JobStatus job_status(const Store& store, const ScanRecord& scan, const JobConfig* job,
                     const Shard& shard) {
  JobStatus st;
  st.scan = scan;
  std::optional<std::chrono::system_clock::time_point> reference;
  if (const auto complete = store.latest_complete_scan(scan.job)) reference = complete->started;
  const auto hosts = store.hosts(scan.job);
  if (reference) {
    std::size_t up = 0;
    for (const auto& h : hosts) up += h.last_seen && *h.last_seen >= *reference ? 1 : 0;
    st.up = up;
    st.down = hosts.size() - up;
  }
  if (job != nullptr) {
    // The same view the agent publishes as portvigil_port_open / _unexpected_open.
    const auto snap = stored_snapshot(*job, store, shard);
    st.open = snap.open_ports.size();
    st.unexpected =
        static_cast<std::size_t>(std::count_if(snap.open_ports.begin(), snap.open_ports.end(),
                                               [](const auto& p) { return p.unexpected; }));
    st.next_run = scan.started +
                  std::chrono::duration_cast<std::chrono::system_clock::duration>(job->interval);
  } else {
    for (const auto& h : hosts) st.open += store.baseline(scan.job, h.host).open_ports().size();
  }
  return st;
}

std::string optional_count(const std::optional<std::size_t>& n) {
  return n ? std::to_string(*n) : "-";
}

std::string status_json(const JobStatus& st) {
  const ScanRecord& s = st.scan;
  std::string out = "{\"job\":" + json_string(s.job);
  if (!st.scanned) {
    // The same keys as a scanned job's, so that consumers need no second shape.
    return out + ",\"scan_id\":null,\"status\":\"never\",\"technique\":\"" +
           std::string(name(s.technique)) +
           "\",\"started\":null,\"finished\":null,\"hosts_total\":0,\"hosts_complete\":0,"
           "\"ports_scanned\":0,\"transitions\":0,\"events\":0,\"hosts_up\":null,"
           "\"hosts_down\":null,\"open\":0,\"unexpected\":null,\"next_run\":null,\"note\":" +
           json_string(s.note) + "}";
  }
  out += ",\"scan_id\":" + std::to_string(s.id);
  out += ",\"status\":\"" + std::string(name(s.status)) + "\"";
  out += ",\"technique\":\"" + std::string(name(s.technique)) + "\"";
  out += ",\"started\":\"" + iso_time(s.started) + "\"";
  out += ",\"finished\":" + (s.finished ? "\"" + iso_time(*s.finished) + "\"" : "null");
  out += ",\"hosts_total\":" + std::to_string(s.hosts_total);
  out += ",\"hosts_complete\":" + std::to_string(s.hosts_complete);
  out += ",\"ports_scanned\":" + std::to_string(s.ports_scanned);
  out += ",\"transitions\":" + std::to_string(s.transitions);
  out += ",\"events\":" + std::to_string(s.events);
  const auto number = [](const std::optional<std::size_t>& n) {
    return n ? std::to_string(*n) : std::string("null");
  };
  out += ",\"hosts_up\":" + number(st.up);
  out += ",\"hosts_down\":" + number(st.down);
  out += ",\"open\":" + std::to_string(st.open);
  out += ",\"unexpected\":" + number(st.unexpected);
  out += ",\"next_run\":" + (st.next_run ? "\"" + iso_time(*st.next_run) + "\"" : "null");
  out += ",\"note\":" + json_string(s.note) + "}";
  return out;
}

}  // namespace

int run_status_command(std::span<const std::string_view> args) {
  return guarded(args, kStatus, [](const DbArgs& a) {
    // The policy and intervals come from the service's configuration; with only
    // --state-dir and no configuration to be found, the columns that need them say "-".
    std::optional<Config> config;
    try {
      config = service_config(a);
    } catch (const InputError& e) {
      if (a.state_dir.empty() || !a.config_path.empty()) throw;  // a named file must load
      std::cerr << "portvigil: warning: " << printable(e.what())
                << " (UNEXPECTED and NEXT are shown as -)\n";
    }
    const auto store = open_for_reading(db_path(a));
    const auto scans = store.latest_scans();
    std::vector<JobStatus> jobs;
    for (const auto& s : scans) {
      const JobConfig* job = nullptr;
      if (config) {
        for (const auto& j : config->jobs) job = j.name == s.job ? &j : job;
      }
      jobs.push_back(job_status(store, s, job, config ? config->agent.shard : Shard{}));
    }
    // Configured jobs the database has no scan of yet (new, or never reached): the agent
    // runs them as soon as it starts or reloads. Only when the configuration is the one that
    // names this database: another one's jobs are not this database's.
    const auto normal = [](const std::string& p) {
      return std::filesystem::path(p).lexically_normal().string();
    };
    if (config && (a.state_dir.empty() ||
                   normal(config->agent.state_dir + "/portvigil.db") == normal(db_path(a)))) {
      for (const auto& j : config->jobs) {
        const bool seen = std::any_of(scans.begin(), scans.end(),
                                      [&](const ScanRecord& s) { return s.job == j.name; });
        if (seen) continue;
        JobStatus st;
        st.scanned = false;
        st.scan.job = j.name;
        st.scan.technique = j.technique;
        st.scan.note = "configured, not scanned yet";
        jobs.push_back(std::move(st));
      }
    }
    if (a.json) {
      for (const auto& st : jobs) std::cout << status_json(st) << "\n";
      return 0;
    }
    if (jobs.empty()) {
      std::cout << "no scans recorded yet\n";
      return 0;
    }
    const auto now = std::chrono::system_clock::now();
    std::vector<std::vector<std::string>> rows{{"JOB", "SCAN", "RESULT", "STARTED", "TOOK", "UP",
                                                "DOWN", "OPEN", "UNEXPECTED", "EVENTS", "NEXT",
                                                "NOTE"}};
    for (const auto& st : jobs) {
      const auto& s = st.scan;
      if (!st.scanned) {
        rows.push_back(
            {printable(s.job), "-", "never", "-", "-", "-", "-", "-", "-", "-", "due", s.note});
        continue;
      }
      const std::string next = !st.next_run          ? "-"
                               : *st.next_run <= now ? "due"
                                                     : when(*st.next_run);
      rows.push_back({printable(s.job), std::to_string(s.id), std::string(name(s.status)),
                      when(s.started), duration_text(s), optional_count(st.up),
                      optional_count(st.down), std::to_string(st.open),
                      optional_count(st.unexpected), std::to_string(s.events), next,
                      printable(s.note)});
    }
    print_table(rows);
    return 0;
  });
}

}  // namespace portvigil
