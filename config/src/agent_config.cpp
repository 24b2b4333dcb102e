// Loading the agent's TOML configuration.
//
// How it works: toml++ parses the text into a DOM whose every key and value carries its
// source position. A Loader then walks the DOM section by section ([agent], [[authorization]],
// [[job]]): it first rejects keys it does not know (sorted by position, with a "did you mean"
// hint), then reads each known key with a typed getter that either returns the value or throws
// InputError "FILE:LINE:COL: CONTEXT: key "K": expected ..., got ...". Syntax that this module
// owns (durations, networks, Nmap target and port syntax) is checked by small pure functions in
// config_syntax.cpp that throw SyntaxProblem; the Loader adds the position. Finally every literal
// job target is checked against the union of the authorized networks.
#include "portvigil/config/agent_config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "config_syntax.hpp"
#include "portvigil/common/port_knowledge.hpp"
#include "portvigil/common/printable.hpp"
#include "portvigil/config/cli.hpp"

namespace portvigil {

int AgentSettings::default_concurrent_jobs() {
  return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
}
namespace {

using config_detail::display;
using config_detail::SyntaxProblem;
using Duration = std::chrono::duration<double>;

constexpr std::string_view kBuiltinSource = "<built-in default>";
// The scanner's defaults (TimingOptions), for checking a job that sets only one bound.
constexpr Duration kDefaultMinRtt{0.1};
constexpr Duration kDefaultMaxRtt{1.25};

// ---- known keys ---------------------------------------------------------------------------

constexpr std::array<std::string_view, 4> kTopKeys{"agent", "authorization", "job", "sink"};
constexpr std::array<std::string_view, 16> kAgentKeys{
    "state-dir",    "log-level",    "event-log",           "max-rate",
    "min-rate",     "max-retries",  "web-listen-address",  "retention",
    "web-username", "web-password", "port-series-limit",   "web-config-file",
    "shard",        "replica",      "max-concurrent-jobs", "stdout-events"};
constexpr std::array<std::string_view, 5> kAuthorizationKeys{"networks", "owner", "ticket",
                                                             "expires", "allow-large-scope"};
// An authorization wider than this needs allow-large-scope = true (with owner, ticket and
// expires): a typo such as "0.0.0.0/0" must not authorize the Internet.
constexpr unsigned kLargeScopeV4 = 16;
constexpr unsigned kLargeScopeV6 = 48;
constexpr std::array<std::string_view, 30> kJobKeys{"name",
                                                    "targets",
                                                    "exclude",
                                                    "ports",
                                                    "top-ports",
                                                    "exclude-ports",
                                                    "technique",
                                                    "confirm-technique",
                                                    "interval",
                                                    "jitter",
                                                    "max-rate",
                                                    "min-rate",
                                                    "max-retries",
                                                    "host-timeout",
                                                    "confirmations",
                                                    "expected-open",
                                                    "max-parallelism",
                                                    "initial-rtt-timeout",
                                                    "min-rtt-timeout",
                                                    "max-rtt-timeout",
                                                    "host-silent-after",
                                                    "host-discovery",
                                                    "udp-pace",
                                                    "udp-coverage",
                                                    "windows",
                                                    "time-zone",
                                                    "identify-services",
                                                    "never-probe",
                                                    "watch-services",
                                                    "watch-services-interval"};

constexpr std::array<std::string_view, 6> kSinkKeys{"name", "type",    "url",
                                                    "path", "timeout", "batch-size"};
constexpr std::array<std::string_view, 3> kSinkTypes{"webhook", "file", "stdout"};

struct Section {
  std::string_view header;  // how to write it: "[agent]"
  std::span<const std::string_view> keys;
};
constexpr std::array<Section, 5> kSections{{
    {"", kTopKeys},
    {"[agent]", kAgentKeys},
    {"[[authorization]]", kAuthorizationKeys},
    {"[[job]]", kJobKeys},
    {"[[sink]]", kSinkKeys},
}};

constexpr std::array<ConfigSectionKeys, 4> kDocumentedSections{{
    {"[agent]", kAgentKeys},
    {"[[authorization]]", kAuthorizationKeys},
    {"[[job]]", kJobKeys},
    {"[[sink]]", kSinkKeys},
}};

// Optimal string alignment distance: Levenshtein plus adjacent transpositions.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The candidate within edit distance 2 of `word` (closest first), if any.
// Short words only get suggestions one edit away ("tcp" is not a typo of "ack").
std::optional<std::string_view> closest(std::string_view word,
                                        std::span<const std::string_view> candidates) {
  std::optional<std::string_view> best;
  std::size_t best_distance = word.size() <= 4 ? 2 : 3;
  for (auto c : candidates) {
    const auto dist = edit_distance(word, c);
    if (dist < best_distance) {
      best = c;
      best_distance = dist;
    }
  }
  return best;
}

// ---- describing values --------------------------------------------------------------------

std::string describe(const toml::node& n) {
  std::ostringstream os;
  switch (n.type()) {
    case toml::node_type::string:
      return display(n.as_string()->get()) + " (string)";
    case toml::node_type::integer:
      return std::to_string(n.as_integer()->get()) + " (integer)";
    case toml::node_type::floating_point:
      os << n.as_floating_point()->get() << " (float)";
      return os.str();
    case toml::node_type::boolean:
      return n.as_boolean()->get() ? "true (boolean)" : "false (boolean)";
    case toml::node_type::date:
      os << n.as_date()->get() << " (date)";
      return os.str();
    case toml::node_type::time:
      os << n.as_time()->get() << " (time)";
      return os.str();
    case toml::node_type::date_time:
      os << n.as_date_time()->get() << " (date-time)";
      return os.str();
    case toml::node_type::array:
      return n.as_array()->empty() ? "an empty array" : "an array";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string position(std::string_view source, const toml::source_region& r) {
  return std::string(source) + ":" + std::to_string(r.begin.line) + ":" +
         std::to_string(r.begin.column);
}

// Keys of a table in document order (toml::table iterates alphabetically).
std::vector<std::pair<const toml::key*, const toml::node*>> in_order(const toml::table& t) {
  std::vector<std::pair<const toml::key*, const toml::node*>> out;
  for (auto&& [k, v] : t) out.emplace_back(&k, &v);
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    const auto& pa = a.first->source().begin;
    const auto& pb = b.first->source().begin;
    return std::tie(pa.line, pa.column) < std::tie(pb.line, pb.column);
  });
  return out;
}

constexpr std::array<std::string_view, 4> kLogLevelNames{"error", "warn", "info", "debug"};

std::string one_of(std::span<const std::string_view> names) {
  std::string out = "one of ";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out += ", ";
    out += display(names[i]);
  }
  return out;
}

std::string date_text(const toml::node& n) {
  std::ostringstream os;
  if (const auto* d = n.as_date()) os << d->get();
  if (const auto* dt = n.as_date_time()) os << dt->get();
  return os.str();
}

std::chrono::sys_seconds to_sys_seconds(const toml::date& d) {
  const std::chrono::year_month_day ymd{std::chrono::year{d.year},
                                        std::chrono::month{static_cast<unsigned>(d.month)},
                                        std::chrono::day{static_cast<unsigned>(d.day)}};
  return std::chrono::sys_days{ymd};
}

// system_clock counts nanoseconds in 64 bits (years 1677-2262): clamp dates beyond that.
std::chrono::system_clock::time_point clamp_time(std::chrono::sys_seconds t) {
  using std::chrono::system_clock;
  if (t >= std::chrono::floor<std::chrono::seconds>(system_clock::time_point::max())) {
    return system_clock::time_point::max();
  }
  if (t <= std::chrono::ceil<std::chrono::seconds>(system_clock::time_point::min())) {
    return system_clock::time_point::min();
  }
  return std::chrono::time_point_cast<system_clock::duration>(t);
}

// ---- the loader ---------------------------------------------------------------------------

class Loader {
 public:
  explicit Loader(std::string_view source) : source_(source) {}

  Config load(const toml::table& root) {
    Config config;
    config.source = source_;
    check_keys(root, "", 0);
    read_agent(root, config.agent);
    read_authorization(root, config);
    read_jobs(root, config);
    read_sinks(root, config.agent, config);
    return config;
  }

 private:
  // A table being read and how messages name it.
  struct Scope {
    const toml::table& table;
    std::string name;  // "[agent]", "job \"web\"", ...; "" at the top level
  };

  [[noreturn]] void fail(const toml::source_region& where, std::string_view scope,
                         std::string_view key, const std::string& message) const {
    std::string text = position(source_, where) + ": ";
    if (!scope.empty()) text += std::string(scope) + ": ";
    if (!key.empty()) text += "key \"" + std::string(key) + "\": ";
    throw InputError(text + message);
  }

  [[noreturn]] void expected(const toml::node& n, std::string_view scope, std::string_view key,
                             std::string_view what) const {
    fail(n.source(), scope, key, "expected " + std::string(what) + ", got " + describe(n));
  }

  void warn(Config& config, const toml::source_region& where, std::string_view scope,
            std::string_view key, const std::string& message) const {
    std::string text = position(source_, where) + ": ";
    if (!scope.empty()) text += std::string(scope) + ": ";
    if (!key.empty()) text += "key \"" + std::string(key) + "\": ";
    config.warnings.push_back(text + message);
  }

  // Rejects keys not in kSections[section], with a hint.
  void check_keys(const toml::table& t, std::string_view scope, std::size_t section) const {
    const auto known = kSections[section].keys;
    for (const auto& [key, value] : in_order(t)) {
      const auto k = key->str();
      if (std::find(known.begin(), known.end(), k) != known.end()) continue;
      fail(key->source(), scope, "", "unknown key " + display(k) + unknown_key_hint(k, section));
    }
  }

  static std::string unknown_key_hint(std::string_view k, std::size_t section) {
    if (auto near = closest(k, kSections[section].keys)) {
      return " (did you mean " + display(*near) + "?)";
    }
    for (std::size_t s = 1; s < kSections.size(); ++s) {
      const auto other = kSections[s].keys;
      if (s != section && std::find(other.begin(), other.end(), k) != other.end()) {
        return " (it belongs in " + std::string(kSections[s].header) + ")";
      }
    }
    if (section == 0) return " (expected [agent], [[authorization]], [[job]] or [[sink]])";
    if (std::find(kTopKeys.begin(), kTopKeys.end(), k) != kTopKeys.end()) {
      // e.g. "job = ..." written under [agent]: keys belong to the last header above them.
      return " (did you mean a " + (k == "agent" ? "[agent]" : "[[" + std::string(k) + "]]") +
             " header?)";
    }
    return "";
  }

  // ---- typed getters -----------------------------------------------------------------------

  static const toml::node* get(const Scope& s, std::string_view key) { return s.table.get(key); }

  const toml::node& require(const Scope& s, std::string_view key, std::string_view what) const {
    const auto* n = get(s, key);
    if (!n)
      fail(s.table.source(), s.name, "",
           "missing required key " + display(key) + " (" + std::string(what) + ")");
    return *n;
  }

  std::string string_value(const toml::node& n, const Scope& s, std::string_view key,
                           std::string_view what) const {
    if (!n.is_string()) expected(n, s.name, key, what);
    return n.as_string()->get();
  }

  std::optional<std::string> opt_string(const Scope& s, std::string_view key,
                                        std::string_view what) const {
    const auto* n = get(s, key);
    if (!n) return std::nullopt;
    return string_value(*n, s, key, what);
  }

  std::optional<long long> opt_int(const Scope& s, std::string_view key, long long lo,
                                   long long hi) const {
    const auto* n = get(s, key);
    if (!n) return std::nullopt;
    const std::string what = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    if (!n->is_integer()) expected(*n, s.name, key, what);
    const auto v = n->as_integer()->get();
    if (v < lo || v > hi) expected(*n, s.name, key, what);
    return v;
  }

  std::optional<double> opt_rate(const Scope& s, std::string_view key) const {
    const auto* n = get(s, key);
    if (!n) return std::nullopt;
    constexpr std::string_view what = "a number of probes per second of at least 1, such as 500";
    double v = 0;
    if (n->is_integer()) {
      v = static_cast<double>(n->as_integer()->get());
    } else if (n->is_floating_point()) {
      v = n->as_floating_point()->get();
    } else {
      expected(*n, s.name, key, what);
    }
    if (!std::isfinite(v) || v < 1) expected(*n, s.name, key, what);
    return v;
  }

  // A duration string "15m"; `example` shows the expected form, `min` the lower bound.
  Duration duration_value(const toml::node& n, const Scope& s, std::string_view key,
                          std::string_view example, Duration min, std::string_view min_text) const {
    const std::string what = "a duration such as " + display(example);
    if (!n.is_string()) expected(n, s.name, key, what);
    const std::string& text = n.as_string()->get();
    // A unit is required: "15" alone could mean seconds or minutes.
    const bool shaped = !text.empty() && std::isdigit(static_cast<unsigned char>(text.front())) &&
                        std::isalpha(static_cast<unsigned char>(text.back()));
    Duration d{0};
    try {
      if (!shaped) throw InputError("");
      d = parse_duration(text, key);
    } catch (const InputError&) {
      expected(n, s.name, key, what + " (units ms, s, m, h, d)");
    }
    if (d < min) expected(n, s.name, key, "a duration of at least " + std::string(min_text));
    return d;
  }

  std::optional<Duration> opt_duration(const Scope& s, std::string_view key,
                                       std::string_view example, Duration min,
                                       std::string_view min_text) const {
    const auto* n = get(s, key);
    if (!n) return std::nullopt;
    return duration_value(*n, s, key, example, min, min_text);
  }

  std::string enum_value(const toml::node& n, const Scope& s, std::string_view key,
                         std::span<const std::string_view> names) const {
    const std::string what = one_of(names);
    if (!n.is_string()) expected(n, s.name, key, what);
    const std::string& text = n.as_string()->get();
    if (std::find(names.begin(), names.end(), text) == names.end()) {
      std::string message = "expected " + what + ", got " + describe(n);
      if (auto near = closest(text, names)) message += " (did you mean " + display(*near) + "?)";
      fail(n.source(), s.name, key, message);
    }
    return text;
  }

  std::vector<const toml::node*> string_array(const toml::node& n, const Scope& s,
                                              std::string_view key, std::string_view what,
                                              bool allow_empty) const {
    const auto* arr = n.as_array();
    if (!arr) expected(n, s.name, key, what);
    if (arr->empty() && !allow_empty) expected(n, s.name, key, what);
    std::vector<const toml::node*> out;
    for (const auto& e : *arr) {
      if (!e.is_string()) {
        fail(e.source(), s.name, key,
             "expected " + std::string(what) + ", got an element that is " + describe(e));
      }
      out.push_back(&e);
    }
    return out;
  }

  // Runs a config_syntax check; a SyntaxProblem becomes an error at `n`.
  template <typename F>
  auto checked(const toml::node& n, const Scope& s, std::string_view key, F&& f) const {
    try {
      return f();
    } catch (const SyntaxProblem& p) {
      fail(n.source(), s.name, key, p.what());
    }
  }

  // ---- [agent] -------------------------------------------------------------------------------

  void read_agent(const toml::table& root, AgentSettings& a) const {
    const auto* node = root.get("agent");
    if (!node) {
      a.event_log = a.state_dir + "/events.jsonl";
      return;
    }
    const auto* table = node->as_table();
    if (!table) expected(*node, "", "agent", "a table ([agent] with state-dir, log-level, ...)");
    const Scope s{*table, "[agent]"};
    check_keys(*table, s.name, 1);

    if (auto v = opt_string(s, "state-dir", "a directory path such as \"/var/lib/portvigil\"")) {
      if (v->empty()) {
        expected(*get(s, "state-dir"), s.name, "state-dir",
                 "a non-empty directory path such as \"/var/lib/portvigil\"");
      }
      a.state_dir = *v;
    }
    if (const auto* n = get(s, "log-level")) {
      const auto text = enum_value(*n, s, "log-level", kLogLevelNames);
      a.log_level = static_cast<LogLevel>(
          std::find(kLogLevelNames.begin(), kLogLevelNames.end(), text) - kLogLevelNames.begin());
    }
    if (auto v =
            opt_string(s, "event-log", "a file path such as \"/var/log/portvigil/events.jsonl\"")) {
      if (v->empty()) {
        expected(*get(s, "event-log"), s.name, "event-log",
                 "a non-empty file path (leave the key out for <state-dir>/events.jsonl)");
      }
      a.event_log = *v;
    } else {
      a.event_log = a.state_dir + "/events.jsonl";
    }
    if (const auto* n = get(s, "stdout-events")) {
      if (!n->is_boolean()) expected(*n, s.name, "stdout-events", "true or false");
      a.stdout_events = n->as_boolean()->get();
    }
    a.max_rate = opt_rate(s, "max-rate");
    a.min_rate = opt_rate(s, "min-rate");
    if (a.max_rate && a.min_rate && *a.min_rate > *a.max_rate) {
      expected(*get(s, "min-rate"), s.name, "min-rate",
               "a rate not above max-rate " + format_number(*a.max_rate));
    }
    if (auto v = opt_int(s, "max-retries", 0, 50)) a.max_retries = static_cast<int>(*v);
    if (const auto* n = get(s, "web-listen-address")) {
      a.web_listen_address =
          string_value(*n, s, "web-listen-address", "a listen address such as \"127.0.0.1:10117\"");
      checked(*n, s, "web-listen-address",
              [&] { config_detail::check_listen_address(a.web_listen_address); });
    }
    if (auto v = opt_duration(s, "retention", "90d", std::chrono::seconds(1), "1s")) {
      a.retention = *v;
    }
    if (auto v = opt_string(s, "web-username", "a user name for basic auth on /metrics")) {
      a.web_username = *v;
    }
    if (auto v = opt_string(s, "web-password", "a password for basic auth on /metrics")) {
      a.web_password = *v;
    }
    if (a.web_username.empty() != a.web_password.empty()) {
      const std::string_view given = a.web_username.empty() ? "web-password" : "web-username";
      const std::string_view missing = a.web_username.empty() ? "web-username" : "web-password";
      fail(get(s, given)->source(), s.name, given,
           "basic auth needs both keys: add \"" + std::string(missing) + "\" too");
    }
    if (const auto* n = get(s, "web-config-file")) {
      a.web_config_file = string_value(
          *n, s, "web-config-file", "a path to a web configuration file (TLS, basic_auth_users)");
      if (a.web_config_file.empty()) {
        expected(*n, s.name, "web-config-file",
                 "a non-empty file path (leave the key out for plain HTTP)");
      }
      if (!a.web_username.empty()) {
        expected(*n, s.name, "web-config-file",
                 "no web-username/web-password next to it (put the user in the file's "
                 "basic_auth_users)");
      }
    }
    if (auto v = opt_int(s, "port-series-limit", 0, 10000000)) {
      a.port_series_limit = static_cast<std::size_t>(*v);
    }
    if (const auto* n = get(s, "shard")) {
      const auto text = string_value(*n, s, "shard", "\"I/N\", shard I of N, such as \"0/3\"");
      try {
        a.shard = parse_shard(text);
      } catch (const InputError& e) {
        fail(n->source(), s.name, "shard", e.what());
      }
    }
    if (auto v = opt_string(s, "replica", "a replica name such as \"a\"")) {
      const bool named =
          !v->empty() && v->size() <= 63 && std::all_of(v->begin(), v->end(), [](unsigned char c) {
            return std::isalnum(c) || c == '_' || c == '-' || c == '.';
          });
      if (!named) {
        expected(*get(s, "replica"), s.name, "replica",
                 "1 to 63 letters, digits, '_', '-' or '.', such as \"a\"");
      }
      a.replica = *v;
    }
    if (auto v = opt_int(s, "max-concurrent-jobs", 1, 64)) {
      a.max_concurrent_jobs = static_cast<int>(*v);
    }
  }

  // ---- [[authorization]] ---------------------------------------------------------------------

  void read_authorization(const toml::table& root, Config& config) const {
    const auto* node = root.get("authorization");
    constexpr std::string_view what =
        "[[authorization]] tables, each with networks = [\"198.18.0.0/16\", ...]";
    if (!node) {
      fail(root.source(), "", "",
           "missing [[authorization]]: list the networks this agent may scan, e.g. "
           "[[authorization]] networks = [\"198.18.0.0/16\"]");
    }
    std::vector<const toml::table*> entries;
    if (const auto* t = node->as_table()) {
      entries.push_back(t);
    } else if (const auto* arr = node->as_array()) {
      if (arr->empty()) expected(*node, "", "authorization", what);
      for (const auto& e : *arr) {
        if (!e.is_table()) expected(e, "", "authorization", what);
        entries.push_back(e.as_table());
      }
    } else {
      expected(*node, "", "authorization", what);
    }
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const Scope s{*entries[i], "authorization #" + std::to_string(i + 1)};
      check_keys(s.table, s.name, 2);
      AuthorizedNetwork base;
      base.origin = position(source_, s.table.source());
      if (auto v = opt_string(s, "owner", "a string naming who approved the scan")) {
        base.owner = *v;
      }
      if (auto v = opt_string(s, "ticket", "a string such as a change ticket \"CHG-1234\"")) {
        base.ticket = *v;
      }
      if (const auto* n = get(s, "expires")) {
        if (const auto* d = n->as_date()) {
          base.expires = clamp_time(to_sys_seconds(d->get()) + std::chrono::days{1});
        } else if (const auto* dt = n->as_date_time()) {
          const auto& v = dt->get();
          auto t = to_sys_seconds(v.date) + std::chrono::hours{v.time.hour} +
                   std::chrono::minutes{v.time.minute} + std::chrono::seconds{v.time.second};
          if (v.offset) t -= std::chrono::minutes{v.offset->minutes};
          base.expires = clamp_time(t);
        } else {
          expected(*n, s.name, "expires",
                   "a TOML date such as 2025-12-31 (not quoted) or a date-time such as "
                   "2025-12-31T18:00:00Z");
        }
        base.expires_text = date_text(*n);
      }
      if (const auto* n = get(s, "allow-large-scope")) {
        if (!n->is_boolean()) expected(*n, s.name, "allow-large-scope", "true or false");
        base.allow_large_scope = n->as_boolean()->get();
        if (base.allow_large_scope) {
          std::string missing;
          for (const auto* key : {"owner", "ticket", "expires"}) {
            const bool empty = std::string_view(key) == "owner"    ? base.owner.empty()
                               : std::string_view(key) == "ticket" ? base.ticket.empty()
                                                                   : !base.expires.has_value();
            if (empty) missing += std::string(missing.empty() ? "" : ", ") + "\"" + key + "\"";
          }
          if (!missing.empty()) {
            fail(n->source(), s.name, "allow-large-scope",
                 "a large scope must say who approved it, under which ticket and until when: "
                 "add " +
                     missing + " to this [[authorization]] entry");
          }
        }
      }
      const auto& networks =
          require(s, "networks", "an array of CIDRs such as [\"198.18.0.0/16\"]");
      const auto items = string_array(networks, s, "networks",
                                      "an array of CIDRs such as [\"198.18.0.0/16\"]", false);
      std::string cidrs;
      for (const auto* item : items) {
        AuthorizedNetwork net = base;
        net.network = checked(*item, s, "networks", [&] {
          return config_detail::parse_network(item->as_string()->get());
        });
        const bool v6 = net.network.address.is_v6();
        const unsigned limit = v6 ? kLargeScopeV6 : kLargeScopeV4;
        // Loopback (inside 127.0.0.0/8, as in the built-in default) never leaves the host.
        const bool loopback =
            !v6 && net.network.prefix >= 8 && net.network.address.to_v4().to_bytes()[0] == 127;
        if (net.network.prefix < limit && !loopback && !base.allow_large_scope) {
          fail(item->source(), s.name, "networks",
               display(item->as_string()->get()) + " is wider than /" + std::to_string(limit) +
                   " (IPv" + (v6 ? "6" : "4") + ", " + net.network.to_string() +
                   "); expected a smaller network, or allow-large-scope = true with owner, "
                   "ticket and expires in this [[authorization]] entry");
        }
        net.cidr = net.network.to_string();
        cidrs += (cidrs.empty() ? "" : ", ") + net.cidr;
        config.authorization.push_back(std::move(net));
      }
      if (base.expires && !base.active(now_)) {
        warn(config, get(s, "expires")->source(), s.name, "expires",
             base.expires_text + " has passed: the agent will not scan " + cidrs);
      }
    }
  }

  // The `name` of a [[job]] or [[sink]]: 1-64 of a-z, 0-9, '_' and '-', unique among the
  // tables of its kind (`names`: each name and where it was first used).
  std::string unique_name(const Scope& s, std::string_view kind, std::string_view example,
                          std::map<std::string, std::string, std::less<>>& names) const {
    const std::string what = "a " + std::string(kind) +
                             " name of lowercase letters, digits, '_' and '-' such as \"" +
                             std::string(example) + "\"";
    const auto& node = require(s, "name", what);
    std::string name = string_value(node, s, "name", what);
    const bool ok =
        !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        });
    if (!ok) expected(node, s.name, "name", what + " (at most 64 characters)");
    if (auto it = names.find(name); it != names.end()) {
      fail(node.source(), s.name, "name",
           "duplicate " + std::string(kind) + " name " + display(name) + " (first used at " +
               it->second + "); expected a name unique among the " + std::string(kind) + "s");
    }
    names.emplace(name, position(source_, node.source()));
    return name;
  }

  // ---- [[sink]] ------------------------------------------------------------------------------

  void read_webhook_url(const Scope& s, SinkConfig& sink) const {
    constexpr std::string_view url_what =
        "an http:// or https:// URL such as \"https://hooks.example.com/portvigil\"";
    const auto& url_node = require(s, "url", url_what);
    sink.url = string_value(url_node, s, "url", url_what);
    const auto scheme_end = sink.url.find("://");
    const std::string scheme = sink.url.substr(0, scheme_end);
    const bool url_ok =
        scheme_end != std::string::npos && (scheme == "http" || scheme == "https") &&
        sink.url.size() > scheme_end + 3 && sink.url.size() <= 2048 &&
        sink.url.find_first_of("/?#", scheme_end + 3) != scheme_end + 3 &&
        std::all_of(sink.url.begin(), sink.url.end(), [](char c) { return c > ' ' && c < 0x7f; });
    // Not quoted back: a webhook URL often carries a secret, and errors reach the journal.
    if (!url_ok) {
      fail(url_node.source(), s.name, "url",
           "expected " + std::string(url_what) +
               " with a host, no spaces, at most 2048 characters (the value is not shown: "
               "it may hold a secret)");
    }
  }

  void read_sinks(const toml::table& root, const AgentSettings& agent, Config& config) const {
    read_sink_tables(root, agent, config);
    // Events go to stdout (the journal under systemd) through a sink like any other, with a
    // cursor of its own, unless a [[sink]] of type stdout does it under another name.
    const bool has_stdout = std::any_of(config.sinks.begin(), config.sinks.end(),
                                        [](const SinkConfig& s) { return s.type == "stdout"; });
    if (!has_stdout && agent.stdout_events) {
      SinkConfig sink;
      sink.name = std::string(kImplicitStdoutSink);
      sink.type = "stdout";
      sink.origin = source_ + ": (the implicit stdout sink)";
      config.sinks.push_back(std::move(sink));
    }
  }

  void read_sink_tables(const toml::table& root, const AgentSettings& agent, Config& config) const {
    const auto* node = root.get("sink");
    if (!node) return;
    constexpr std::string_view what = "[[sink]] tables, each with name and type";
    const auto* arr = node->as_array();
    if (!arr || arr->empty()) expected(*node, "", "sink", what);
    std::map<std::string, std::string, std::less<>> names;  // name -> where first used
    std::map<std::string, std::string, std::less<>> files;  // file path -> the sink writing it
    std::string stdout_sink;
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const auto* table = (*arr)[i].as_table();
      if (!table) expected((*arr)[i], "", "sink", what);
      Scope s{*table, "sink #" + std::to_string(i + 1)};
      SinkConfig sink;
      sink.origin = position(source_, table->source());
      sink.name = unique_name(s, "sink", "pager-hook", names);
      s.name = "sink " + display(sink.name);
      check_keys(*table, s.name, 4);
      sink.type = enum_value(require(s, "type", one_of(kSinkTypes)), s, "type", kSinkTypes);
      // Names the agent gives its own deliveries (in portvigil_sink_pending_events and the
      // cursors): another sink under one would share its series or its cursor.
      if (sink.name == kEventLogSinkName) {
        fail(get(s, "name")->source(), s.name, "name",
             "is the name of the agent's event log (event-log) in the sink metrics; choose "
             "another name");
      }
      if (sink.name == kImplicitStdoutSink && sink.type != "stdout") {
        fail(get(s, "name")->source(), s.name, "name",
             "is the name of the implicit stdout sink (events printed on standard output); "
             "choose another name for this " +
                 sink.type + " sink");
      }
      // Each type's own keys; another type's key is a mistake worth naming (a file sink
      // with a url would otherwise silently write a file).
      for (const auto& [key, owner] :
           {std::pair<std::string_view, std::string_view>{"url", "webhook"}, {"path", "file"}}) {
        if (const auto* n = get(s, key); n && sink.type != owner) {
          fail(n->source(), s.name, key,
               "only " + std::string(owner) + " sinks have " + std::string(key) +
                   "; this sink's type is " + sink.type);
        }
      }
      if (sink.type == "webhook") read_webhook_url(s, sink);
      if (sink.type == "file") {
        constexpr std::string_view path_what =
            "a file path such as \"/var/log/portvigil/events-archive.jsonl\"";
        const auto& path_node = require(s, "path", path_what);
        sink.path = string_value(path_node, s, "path", path_what);
        if (sink.path.empty() || sink.path.find('\0') != std::string::npos) {
          expected(path_node, s.name, "path", "a non-empty " + std::string(path_what));
        }
        // Two writers of one file would each cut the other's lines as torn.
        if (sink.path == agent.event_log) {
          fail(path_node.source(), s.name, "path",
               "is the agent's event-log; a file sink needs a file of its own");
        }
        if (const auto [it, fresh] = files.emplace(sink.path, sink.name); !fresh) {
          fail(path_node.source(), s.name, "path",
               "is also the path of sink " + display(it->second) +
                   "; each file sink needs a file of its own");
        }
      }
      if (sink.type == "stdout") {
        if (!stdout_sink.empty()) {
          fail(get(s, "type")->source(), s.name, "type",
               "a second stdout sink (sink " + display(stdout_sink) +
                   " is one): it would print every event twice");
        }
        stdout_sink = sink.name;
      }
      if (auto v = opt_duration(s, "timeout", "10s", Duration{0.1}, "100ms")) {
        if (*v > Duration{600}) {
          expected(*get(s, "timeout"), s.name, "timeout", "a duration of at most 10m");
        }
        sink.timeout = *v;
      }
      if (auto v = opt_int(s, "batch-size", 1, 1000)) sink.batch_size = static_cast<int>(*v);
      config.sinks.push_back(std::move(sink));
    }
  }

  // ---- [[job]] -------------------------------------------------------------------------------

  void read_jobs(const toml::table& root, Config& config) const {
    const auto* node = root.get("job");
    constexpr std::string_view what = "[[job]] tables, each with name, targets and interval";
    if (!node) {
      fail(root.source(), "", "",
           "missing [[job]]: at least one job with name, targets and interval is required");
    }
    std::vector<const toml::table*> tables;
    if (const auto* t = node->as_table()) {
      tables.push_back(t);
    } else if (const auto* arr = node->as_array()) {
      if (arr->empty()) expected(*node, "", "job", what);
      for (const auto& e : *arr) {
        if (!e.is_table()) expected(e, "", "job", what);
        tables.push_back(e.as_table());
      }
    } else {
      expected(*node, "", "job", what);
    }
    const Coverage all(config.authorization, std::nullopt);
    const Coverage active(config.authorization, now_);
    std::map<std::string, std::string, std::less<>> names;  // name -> where defined
    for (std::size_t i = 0; i < tables.size(); ++i) {
      config.jobs.push_back(read_job(*tables[i], i + 1, config, all, active, names));
    }
  }

  // The union of authorized networks (optionally only those active at `now`), per family.
  class Coverage {
   public:
    Coverage(const std::vector<AuthorizedNetwork>& nets,
             std::optional<std::chrono::system_clock::time_point> now) {
      std::vector<AddressRange> ranges;
      for (const auto& n : nets) {
        if (now && !n.active(*now)) continue;
        ranges.push_back(n.network.range());
        if (!now) names_.push_back(n.cidr);
      }
      merged_ = merge_ranges(std::move(ranges));
    }
    [[nodiscard]] bool covers(const AddressRange& r) const {
      return std::any_of(merged_.begin(), merged_.end(), [&](const AddressRange& m) {
        return m.v6 == r.v6 && m.first <= r.first && r.last <= m.last;
      });
    }
    [[nodiscard]] std::string list() const {
      std::string out;
      for (std::size_t i = 0; i < names_.size() && i < 6; ++i) out += (i ? ", " : "") + names_[i];
      if (names_.size() > 6) out += ", ...";
      return out;
    }

   private:
    std::vector<AddressRange> merged_;
    std::vector<std::string> names_;
  };

  JobConfig read_job(const toml::table& table, std::size_t index, Config& config,
                     const Coverage& all, const Coverage& active,
                     std::map<std::string, std::string, std::less<>>& names) const {
    JobConfig job;
    job.origin = position(source_, table.source());
    Scope s{table, "job #" + std::to_string(index)};

    // The name first, so later messages can say job "web".
    job.name = unique_name(s, "job", "web-dmz", names);
    s.name = "job " + display(job.name);
    check_keys(table, s.name, 3);

    // Technique before ports and policy: they depend on its protocol.
    if (const auto* n = get(s, "technique")) {
      job.technique = *parse_technique(enum_value(*n, s, "technique", technique_names()));
    }
    const Proto proto = proto_of(job.technique);
    if (const auto* n = get(s, "confirm-technique")) {
      job.confirm_technique =
          *parse_technique(enum_value(*n, s, "confirm-technique", technique_names()));
      if (proto_of(*job.confirm_technique) != proto) {
        expected(*n, s.name, "confirm-technique",
                 "a " + std::string(name(proto)) + " technique like technique " +
                     display(name(job.technique)));
      }
    }

    // Targets: syntax, then authorization.
    constexpr std::string_view targets_what =
        "an array of targets such as [\"198.18.0.0/24\", \"db.example.net\"]";
    const auto& targets_node = require(s, "targets", targets_what);
    std::vector<grammar::TargetExpression> shapes;  // literal targets, for checking policy hosts
    for (const auto* item : string_array(targets_node, s, "targets", targets_what, false)) {
      const std::string& text = item->as_string()->get();
      const auto shape =
          checked(*item, s, "targets", [&] { return config_detail::parse_target(text); });
      job.targets.push_back(text);
      if (shape.kind == grammar::TargetExpression::Kind::hostname) {
        // "name/prefix" scans the block around whatever the name resolves to: it needs an
        // authorized network at least that wide ("localhost/0" walked all of IPv4).
        if (const auto p = shape.prefix) {
          const bool fits = std::any_of(config.authorization.begin(), config.authorization.end(),
                                        [&](const AuthorizedNetwork& a) {
                                          return a.network.prefix <= *p &&
                                                 (a.network.address.is_v6() || *p <= 32);
                                        });
          if (!fits) {
            fail(item->source(), s.name, "targets",
                 "target " + display(text) + " names a /" + std::to_string(*p) +
                     " block around the address of " +
                     display(std::string_view(text).substr(0, text.find('/'))) +
                     ", wider than every authorized network (" + all.list() +
                     "); expected a longer prefix or a wide enough [[authorization]]");
          }
        }
        job.hostname_targets.push_back(text);
        continue;
      }
      if (!all.covers(shape.range)) {
        fail(item->source(), s.name, "targets",
             "target " + display(text) + " is outside the authorized networks (" + all.list() +
                 "); expected a target inside an [[authorization]] network");
      }
      if (!active.covers(shape.range)) {
        warn(config, item->source(), s.name, "targets",
             "target " + display(text) +
                 " is authorized only by an expired [[authorization]]; the agent will not "
                 "scan it");
      }
      shapes.push_back(shape);
    }
    if (const auto* n = get(s, "exclude")) {
      for (const auto* item :
           string_array(*n, s, "exclude", "an array of targets such as [\"198.18.0.7\"]", true)) {
        const std::string& text = item->as_string()->get();
        checked(*item, s, "exclude", [&] { (void)config_detail::parse_target(text); });
        job.exclude.push_back(text);
      }
    }

    // Ports.
    const auto* ports = get(s, "ports");
    const auto* top = get(s, "top-ports");
    if (ports && top) {
      const bool top_later = std::tie(top->source().begin.line, top->source().begin.column) >
                             std::tie(ports->source().begin.line, ports->source().begin.column);
      const auto* second = top_later ? top : ports;
      fail(second->source(), s.name, top_later ? "top-ports" : "ports",
           "\"ports\" and \"top-ports\" cannot be combined; expected only one of them");
    }
    std::vector<bool> scanned(65536, false);
    if (ports) {
      job.ports = string_value(*ports, s, "ports", "a port list such as \"22,80,443,8000-8100\"");
      scanned =
          checked(*ports, s, "ports", [&] { return config_detail::port_set(job.ports, proto); });
    }
    if (auto v = opt_int(s, "top-ports", 1, 65535)) job.top_ports = static_cast<std::size_t>(*v);
    if (!ports) {
      const auto ranked = ranked_ports(proto);
      for (const auto p : ranked.first(std::min(job.top_ports, ranked.size()))) scanned[p] = true;
    }
    std::vector<bool> excluded(65536, false);
    if (const auto* n = get(s, "exclude-ports")) {
      job.exclude_ports =
          string_value(*n, s, "exclude-ports", "a port list such as \"9100,9200-9300\"");
      excluded = checked(*n, s, "exclude-ports",
                         [&] { return config_detail::port_set(job.exclude_ports, proto); });
      bool left = false;
      for (std::size_t p = 0; p < scanned.size() && !left; ++p) left = scanned[p] && !excluded[p];
      if (!left) {
        fail(n->source(), s.name, "exclude-ports",
             display(job.exclude_ports) +
                 " excludes every port the job scans; expected ports "
                 "that leave something to scan");
      }
    }

    // Schedule.
    const auto& interval_node =
        require(s, "interval", "a duration such as \"15m\" between the starts of two scans");
    job.interval =
        duration_value(interval_node, s, "interval", "15m", std::chrono::seconds(1), "1s");
    if (const auto* n = get(s, "jitter")) read_jitter(*n, s, job);

    // Scan tuning: the job's own value, else [agent]'s.
    job.max_rate = opt_rate(s, "max-rate");
    job.min_rate = opt_rate(s, "min-rate");
    if (!job.max_rate) job.max_rate = config.agent.max_rate;
    if (!job.min_rate) job.min_rate = config.agent.min_rate;
    if (job.max_rate && job.min_rate && *job.min_rate > *job.max_rate) {
      if (const auto* n = get(s, "min-rate")) {
        expected(*n, s.name, "min-rate",
                 "a rate not above max-rate " + format_number(*job.max_rate) +
                     (get(s, "max-rate") ? "" : " (from [agent])"));
      }
      expected(*get(s, "max-rate"), s.name, "max-rate",
               "a rate not below min-rate " + format_number(*job.min_rate) + " (from [agent])");
    }
    if (auto v = opt_int(s, "max-retries", 0, 50)) {
      job.max_retries = static_cast<int>(*v);
    } else {
      job.max_retries = config.agent.max_retries;
    }
    job.host_timeout = opt_duration(s, "host-timeout", "5m", std::chrono::milliseconds(1), "1ms");
    // Probe timeouts, as the scan options of the same names (nmap's -T knobs).
    job.initial_rtt_timeout = rtt_timeout(s, "initial-rtt-timeout", "500ms");
    job.min_rtt_timeout = rtt_timeout(s, "min-rtt-timeout", "100ms");
    job.max_rtt_timeout = rtt_timeout(s, "max-rtt-timeout", "1.25s");
    {
      const Duration lo = job.min_rtt_timeout.value_or(kDefaultMinRtt);
      const Duration hi = job.max_rtt_timeout.value_or(kDefaultMaxRtt);
      if (lo > hi) {
        const bool own_min = job.min_rtt_timeout.has_value();
        const std::string_view key = own_min ? "min-rtt-timeout" : "max-rtt-timeout";
        expected(*get(s, key), s.name, key,
                 own_min
                     ? "a duration not above max-rtt-timeout (" + format_number(hi.count()) + "s)"
                     : "a duration not below min-rtt-timeout (" + format_number(lo.count()) + "s)");
      }
    }
    if (const auto* n = get(s, "identify-services")) {
      if (!n->is_boolean()) expected(*n, s.name, "identify-services", "true or false");
      job.identify_services = n->as_boolean()->get();
    }
    if (auto v = opt_int(s, "max-parallelism", 1, 1 << 20)) {
      job.max_parallelism = static_cast<std::size_t>(*v);
      // Service identification connects too (a SYN job's opened ports).
      const bool identifies = job.identify_services && finds_open_tcp_ports(job.technique);
      if (technique_info(job.technique).needs_raw_socket &&
          technique_info(job.confirm_technique.value_or(job.technique)).needs_raw_socket &&
          !identifies) {
        warn(config, get(s, "max-parallelism")->source(), s.name, "max-parallelism",
             "has no effect: only the connect technique and service identification use it "
             "(raw techniques are paced by max-rate)");
      }
    }
    if (auto v = opt_int(s, "confirmations", 0, 10)) job.confirmations = static_cast<int>(*v);
    if (const auto* n = get(s, "never-probe")) {
      const std::string spec =
          string_value(*n, s, "never-probe", "a TCP port list such as \"9100-9107,10001\"");
      const auto never = checked(*n, s, "never-probe", [&] {
        return config_detail::port_set(spec, Proto::tcp, "identification probes");
      });
      for (std::size_t p = 0; p < never.size(); ++p) {
        if (never[p]) job.never_probe.push_back(static_cast<std::uint16_t>(p));
      }
    }
    {
      const auto* watch = get(s, "watch-services");
      bool watched = false;
      if (watch != nullptr) {
        if (!watch->is_boolean()) expected(*watch, s.name, "watch-services", "true or false");
        watched = watch->as_boolean()->get();
      }
      const auto every =
          opt_duration(s, "watch-services-interval", "6h", std::chrono::seconds(1), "1s");
      if (every && !watched) {
        fail(get(s, "watch-services-interval")->source(), s.name, "watch-services-interval",
             "sets how often watch-services reads the ports again; expected watch-services = "
             "true with it");
      }
      if (watched) {
        if (!job.identify_services) {
          fail(watch->source(), s.name, "watch-services",
               "watches what identification reads, but identify-services is false; expected "
               "identify-services = true (the default) with it");
        }
        if (!finds_open_tcp_ports(job.technique)) {
          fail(watch->source(), s.name, "watch-services",
               "reads open TCP ports, which technique \"" + std::string(name(job.technique)) +
                   "\" never finds; expected technique \"connect\" or \"syn\"");
        }
        job.watch_services = every.value_or(std::chrono::hours(1));
      }
    }
    if (const auto* n = get(s, "host-discovery")) {
      if (!n->is_boolean()) expected(*n, s.name, "host-discovery", "true or false");
      job.host_discovery = n->as_boolean()->get();
    }
    // A known host silent this long gets one host-gone-silent event: by default two
    // intervals (two scans missed it) and at least 30 minutes.
    if (auto v = opt_duration(s, "host-silent-after", "1h", std::chrono::seconds(1), "1s")) {
      job.host_silent_after = *v;
    } else {
      job.host_silent_after = std::max<Duration>(2 * job.interval, std::chrono::minutes(30));
    }

    std::size_t port_count = 0;
    for (std::size_t p = 0; p < scanned.size(); ++p) port_count += scanned[p] && !excluded[p];
    read_udp_pacing(s, job, port_count);

    if (const auto* n = get(s, "expected-open")) read_policy(*n, s, job, shapes);
    read_windows(s, job);
    return job;
  }

  // windows = ["Mon-Fri 22:00-06:00", ...] with time-zone = "Europe/Berlin": both or neither.
  void read_windows(const Scope& s, JobConfig& job) const {
    const auto* list = get(s, "windows");
    const auto* zone = get(s, "time-zone");
    if (!list && !zone) return;
    if (!list) {
      fail(zone->source(), s.name, "time-zone",
           "time-zone applies to windows: add windows = [\"Mon-Fri 22:00-06:00\"] or remove it");
    }
    constexpr std::string_view what =
        "an array of scan windows such as [\"Mon-Fri 22:00-06:00\", \"Sat,Sun 00:00-24:00\"]";
    std::vector<std::string> texts;
    std::vector<const toml::node*> items = string_array(*list, s, "windows", what, false);
    for (const auto* item : items) texts.push_back(item->as_string()->get());
    if (!zone) {
      fail(list->source(), s.name, "windows",
           "windows need time-zone, the tz database zone they are in, such as "
           "time-zone = \"Europe/Berlin\" or \"UTC\"");
    }
    const std::string zone_name =
        string_value(*zone, s, "time-zone", "a tz database zone such as \"Europe/Berlin\"");
    try {
      (void)ScanWindows::parse({}, zone_name);
    } catch (const InputError& e) {
      fail(zone->source(), s.name, "time-zone", e.what());
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
      try {
        (void)ScanWindows::parse({texts[i]}, zone_name);
      } catch (const InputError& e) {
        fail(items[i]->source(), s.name, "windows", e.what());
      }
    }
    job.windows = ScanWindows::parse(texts, zone_name);
  }

  // udp-pace (UDP jobs: "auto" by default) and udp-coverage (default: the interval). Each
  // scan verifies a share of the ports, sized so that a share paced at one probe per host
  // per kDefaultUdpPacePeriod fits in kUdpPaceBudget of the interval.
  void read_udp_pacing(const Scope& s, JobConfig& job, std::size_t port_count) const {
    const bool udp = job.technique == Technique::udp;
    job.udp_pace.enabled = udp;
    if (const auto* n = get(s, "udp-pace")) {
      constexpr std::string_view what =
          "\"auto\", \"off\" or a duration from 10ms to 8s such as \"2s\"";
      if (!n->is_string()) expected(*n, s.name, "udp-pace", std::string(what));
      try {
        job.udp_pace = parse_udp_pace(n->as_string()->get(), "udp-pace");
      } catch (const InputError&) {
        expected(*n, s.name, "udp-pace", std::string(what));
      }
      if (!udp && job.udp_pace.enabled) {
        fail(n->source(), s.name, "udp-pace",
             "paces UDP jobs only; expected \"off\" or no udp-pace in a " +
                 std::string(name(job.technique)) + " job");
      }
    }
    job.udp_coverage = job.interval;
    const auto* cover = get(s, "udp-coverage");
    if (cover) {
      if (!udp) {
        fail(cover->source(), s.name, "udp-coverage",
             "spreads the ports of UDP jobs only; expected no udp-coverage in a " +
                 std::string(name(job.technique)) + " job");
      }
      job.udp_coverage = *opt_duration(s, "udp-coverage", "1h", std::chrono::seconds(1), "1s");
      if (job.udp_coverage < job.interval) {
        expected(*cover, s.name, "udp-coverage",
                 "a duration not shorter than the interval (" +
                     format_number(job.interval.count()) + "s)");
      }
    }
    if (!job.udp_pace.enabled) return;
    const std::size_t share = job.udp_ports_per_scan(port_count);
    const Duration need = static_cast<double>(share) * job.udp_pace.period;
    if (need <= kUdpPaceBudget * job.interval) return;
    // The shortest coverage whose share fits: ports / (scans per coverage) * period <= budget.
    const double fits = std::max(
        1.0, std::floor(kUdpPaceBudget * job.interval.count() / job.udp_pace.period.count()));
    const double scans = std::ceil(static_cast<double>(port_count) / fits);
    const std::string problem =
        std::to_string(port_count) + " UDP ports paced at one probe per host every " +
        format_number(job.udp_pace.period.count()) + "s need about " +
        format_number(std::ceil(need.count())) + "s per scan, more than " +
        format_number(kUdpPaceBudget * 100) +
        "% of the interval; expected udp-coverage of at least " +
        format_number(std::ceil(scans * job.interval.count())) +
        "s (each scan then verifies a share of the ports), fewer ports, or udp-pace = \"off\"";
    fail((cover ? cover : get(s, "interval"))->source(), s.name,
         cover ? "udp-coverage" : "interval", problem);
  }

  // A probe timeout from 1ms to config_detail::kMaxRttTimeout (1h).
  std::optional<Duration> rtt_timeout(const Scope& s, std::string_view key,
                                      std::string_view example) const {
    auto d = opt_duration(s, key, example, std::chrono::milliseconds(1), "1ms");
    if (d && *d > config_detail::kMaxRttTimeout) {
      expected(*get(s, key), s.name, key, "a duration of at most 1h");
    }
    return d;
  }

  static std::string format_number(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  }

  void read_jitter(const toml::node& n, const Scope& s, JobConfig& job) const {
    constexpr std::string_view what =
        "a duration such as \"30s\" or a percentage of the interval such as \"10%\"";
    if (!n.is_string()) expected(n, s.name, "jitter", what);
    const std::string& text = n.as_string()->get();
    if (text.ends_with('%')) {
      double pct = -1;
      try {
        pct = config_detail::parse_percent(text);
      } catch (const SyntaxProblem&) {
        expected(n, s.name, "jitter", what);
      }
      if (pct > 100) expected(n, s.name, "jitter", "a percentage from 0% to 100%");
      job.jitter = job.interval * (pct / 100.0);
      return;
    }
    job.jitter = duration_value(n, s, "jitter", "30s", Duration{0}, "0s");
    if (job.jitter > job.interval) {
      expected(
          n, s.name, "jitter",
          "a duration not longer than the interval (" + format_number(job.interval.count()) + "s)");
    }
  }

  void read_policy(const toml::node& n, const Scope& s, JobConfig& job,
                   const std::vector<grammar::TargetExpression>& shapes) const {
    constexpr std::string_view key = "expected-open";
    constexpr std::string_view what =
        "an array of ports such as [\"22/tcp\", \"443/tcp\"] or a table of host = [ports]";
    constexpr std::string_view ports_what = "an array of ports such as [\"22/tcp\", \"443/tcp\"]";
    job.has_policy = true;
    const Proto proto = proto_of(job.technique);
    auto read_ports = [&](const toml::node& list, std::string_view scope_key) {
      std::vector<ExpectedPort> out;
      for (const auto* item : string_array(list, s, scope_key, ports_what, true)) {
        const auto port = checked(*item, s, scope_key, [&] {
          return config_detail::parse_expected_port(item->as_string()->get());
        });
        if (port.proto != proto) {
          fail(item->source(), s.name, scope_key,
               display(item->as_string()->get()) + " can never match: expected a " +
                   std::string(name(proto)) + " port, as technique " +
                   display(name(job.technique)) + " scans " + std::string(name(proto)));
        }
        out.push_back(port);
      }
      return out;
    };
    if (n.is_array()) {
      job.expected_open.push_back({"*", std::nullopt, read_ports(n, key)});
      return;
    }
    const auto* table = n.as_table();
    if (!table) expected(n, s.name, key, what);
    for (const auto& [host_key, list] : in_order(*table)) {
      const std::string host(host_key->str());
      // Messages read: key "expected-open": host "198.18.0.9": ...
      const auto shown = display(host);
      const std::string scoped = std::string(key) + "\": host " + shown.substr(0, shown.size() - 1);
      ExpectedOpen rule;
      rule.host = host;
      if (host != "*") {
        try {
          const auto shape = config_detail::parse_policy_host(host);
          if (shape.network) rule.network = shape.network;
          check_policy_host(host, shape, job, shapes);
        } catch (const SyntaxProblem& p) {
          fail(host_key->source(), s.name, key, "host " + display(host) + ": " + p.what());
        }
      }
      rule.ports = read_ports(*list, scoped);
      job.expected_open.push_back(std::move(rule));
    }
  }

  // A policy host must name something the job scans, or the entry would be dead.
  static void check_policy_host(const std::string& host, const config_detail::PolicyHost& shape,
                                const JobConfig& job,
                                const std::vector<grammar::TargetExpression>& shapes) {
    if (shape.network) {
      if (!job.hostname_targets.empty()) return;  // may be what a hostname resolves to
      const auto r = shape.network->range();
      const bool inside =
          std::any_of(shapes.begin(), shapes.end(), [&](const grammar::TargetExpression& t) {
            return t.range.v6 == r.v6 && t.range.first <= r.last && r.first <= t.range.last;
          });
      if (!inside) throw SyntaxProblem("expected a host among the job's targets");
      return;
    }
    const bool named = std::any_of(job.hostname_targets.begin(), job.hostname_targets.end(),
                                   [&](const std::string& t) {
                                     const auto bare = std::string_view(t).substr(0, t.find('/'));
                                     return config_detail::iequals(bare, host);
                                   });
    if (!named) {
      throw SyntaxProblem(
          "expected \"*\", an address or CIDR, or a hostname among the job's "
          "targets");
    }
  }

  std::string source_;
  // One instant for every expiry decision of a load.
  std::chrono::system_clock::time_point now_ = std::chrono::system_clock::now();
};

}  // namespace

// ---- public API -----------------------------------------------------------------------------

std::string_view name(LogLevel level) {
  return kLogLevelNames.at(static_cast<std::size_t>(level));
}

bool JobConfig::expects_open(const asio::ip::address& address, std::string_view hostname,
                             Proto proto, std::uint16_t port) const {
  for (const auto& rule : expected_open) {
    const bool host_matches =
        rule.host == "*" || (rule.network && rule.network->contains(address)) ||
        (!rule.network && !hostname.empty() && config_detail::iequals(rule.host, hostname));
    if (!host_matches) continue;
    for (const auto& p : rule.ports) {
      if (p.proto == proto && p.first <= port && port <= p.last) return true;
    }
  }
  return false;
}

Config parse_config(std::string_view toml_text, std::string_view source_name) {
  if (toml_text.size() > kMaxConfigBytes) {
    throw InputError(std::string(source_name) + ": the configuration is larger than " +
                     std::to_string(kMaxConfigBytes >> 20) + " MiB");
  }
  toml::table root;
  try {
    root = toml::parse(toml_text, std::string_view(source_name));
  } catch (const toml::parse_error& e) {
    std::string description(e.description());
    if (!description.empty()) {
      description[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(description[0])));
    }
    throw InputError(position(source_name, e.source()) + ": invalid TOML: " + description);
  }
  return Loader(source_name).load(root);
}

Config load_config(const std::string& path) {
  // Read with a bound: /dev/zero or a multi-gigabyte file must be an error, not bad_alloc.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw InputError(path + ": cannot open configuration file: " + std::strerror(errno));
  }
  std::string text;
  try {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      throw InputError(path + ": cannot read configuration file: " + std::strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
      throw InputError(path + ": is a directory, expected a TOML configuration file");
    }
    // A pipe (check-config <(...), /dev/stdin) is read up to the limit; devices are refused.
    if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
      throw InputError(path + ": not a regular file, expected a TOML configuration file");
    }
    const std::string too_big = path + ": the configuration file is larger than " +
                                std::to_string(kMaxConfigBytes >> 20) +
                                " MiB; expected a TOML configuration file";
    if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) > kMaxConfigBytes) {
      throw InputError(too_big);
    }
    char buf[1 << 16];
    while (true) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        throw InputError(path + ": cannot read configuration file: " + std::strerror(errno));
      }
      if (n == 0) break;
      if (text.size() + static_cast<std::size_t>(n) > kMaxConfigBytes) throw InputError(too_big);
      text.append(buf, static_cast<std::size_t>(n));
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return parse_config(text, path);
}

void check_web_listen_address(std::string_view text, std::string_view what) {
  try {
    config_detail::check_listen_address(text);
  } catch (const SyntaxProblem& p) {
    throw InputError(std::string(what) + ": " + p.what());
  }
}

std::span<const std::string_view> sink_type_names() {
  return kSinkTypes;
}

std::span<const ConfigSectionKeys> config_keys() {
  return kDocumentedSections;
}

std::string_view default_config_toml() {
  return R"(# portvigil built-in default configuration: used when the agent runs without --config.
# It watches this machine's own loopback address only.

[agent]
state-dir = "./portvigil-state"   # relative to the agent's working directory
log-level = "info"
web-listen-address = "127.0.0.1:10117"
retention = "90d"

[[authorization]]
networks = ["127.0.0.0/8", "::1/128"]
owner = "local host"
ticket = "built-in default: loopback only"

[[job]]
name = "localhost"
targets = ["127.0.0.1"]
top-ports = 1000
technique = "connect"
interval = "1m"
confirmations = 2
)";
}

Config default_config() {
  return parse_config(default_config_toml(), kBuiltinSource);
}

std::string check_config_usage() {
  return "Usage: portvigil check-config FILE\n"
         "\n"
         "Validate the agent configuration FILE (TOML, see docs/config.md) without scanning:\n"
         "syntax, types, unknown keys, durations, networks, port lists, unique job names and\n"
         "that every job target lies inside an [[authorization]] network, and the web\n"
         "configuration file that web-config-file names (TLS files, bcrypt hashes). Warnings,\n"
         "such as an authorization that has expired, are printed to stderr and do not fail\n"
         "the check.\n"
         "\n"
         "Options:\n"
         "  -h, --help  show this help and exit\n"
         "\n"
         "Exit status: 0 the file is valid, 2 it is not (the error names FILE:LINE:COLUMN).\n";
}

int check_config_command(std::span<const std::string_view> args,
                         const std::function<void(const Config&)>& check_more) {
  std::vector<std::string_view> files;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto arg = args[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << check_config_usage();
      return 0;
    }
    if (arg == "--") {
      files.insert(files.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    if (arg.size() > 1 && arg.front() == '-') {
      std::cerr << "portvigil: check-config: unknown option \"" << printable(arg)
                << "\" (see portvigil check-config --help)\n";
      return 2;
    }
    files.push_back(arg);
  }
  if (files.size() != 1) {
    std::cerr << "portvigil: check-config: expected exactly one FILE, got " << files.size()
              << " (see portvigil check-config --help)\n";
    return 2;
  }
  try {
    const auto config = load_config(std::string(files.front()));
    if (check_more) check_more(config);
    for (const auto& w : config.warnings) {
      std::cerr << "portvigil: warning: " << printable(w) << "\n";
    }
    const auto jobs = config.jobs.size();
    const auto nets = config.authorization.size();
    std::cout << files.front() << ": OK (" << jobs << (jobs == 1 ? " job, " : " jobs, ") << nets
              << (nets == 1 ? " authorized network)" : " authorized networks)") << "\n";
    return 0;
  } catch (const InputError& e) {
    std::cerr << "portvigil: " << printable(e.what()) << "\n";
    return 2;
  }
}

}  // namespace portvigil
