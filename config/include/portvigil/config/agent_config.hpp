// The agent's TOML configuration (docs/config.md, config/portvigil.example.toml): typed,
// validated structs. Loading checks everything this module can check on its own: types,
// ranges, duration and port syntax, unknown keys (typos must not silently disable a job),
// unique job names, and that every literal job target lies inside the authorized networks.
// Hostname targets cannot be checked without DNS; they are listed in
// JobConfig::hostname_targets and the agent checks each address they resolve to.
//
// Errors throw InputError with one line "FILE:LINE:COL: CONTEXT: key "K": what was expected".
// Target and port strings are stored as written (Nmap syntax); the agent turns them into
// scanner types.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/address.hpp>

#include "portvigil/common/errors.hpp"
#include "portvigil/common/grammar.hpp"
#include "portvigil/common/scan_model.hpp"
#include "portvigil/common/shard.hpp"
#include "portvigil/config/scan_window.hpp"

namespace portvigil {

enum class LogLevel : std::uint8_t { error, warn, info, debug };
[[nodiscard]] std::string_view name(LogLevel level);  // "error", "warn", "info", "debug"

// One network of an [[authorization]] entry; an entry with N networks yields N of these,
// sharing owner, ticket and expiry.
struct AuthorizedNetwork {
  std::string cidr;  // canonical text, as IpNetwork::to_string()
  IpNetwork network;
  std::string owner;   // "" when not given
  std::string ticket;  // "" when not given
  // First instant scanning is no longer allowed. A TOML date (2025-12-31) authorizes through
  // the end of that day UTC; a local date-time is read as UTC.
  std::optional<std::chrono::system_clock::time_point> expires;
  std::string expires_text;        // as written, for messages; "" without expiry
  std::string origin;              // "FILE:LINE:COL" of the entry, for the agent's messages
  bool allow_large_scope = false;  // may hold networks wider than /16 (IPv4) or /48 (IPv6)
  [[nodiscard]] bool active(std::chrono::system_clock::time_point now) const {
    return !expires || now < *expires;
  }
};

struct AgentSettings {
  std::string state_dir = "/var/lib/portvigil";
  LogLevel log_level = LogLevel::info;
  std::string event_log;  // always set after loading; default "<state-dir>/events.jsonl"
  // Whether the configuration adds the implicit stdout sink when no [[sink]] prints on stdout.
  bool stdout_events = true;
  // Defaults for jobs that do not set their own.
  std::optional<double> max_rate;  // probes per second
  std::optional<double> min_rate;
  std::optional<int> max_retries;
  std::string web_listen_address = "127.0.0.1:10117";  // "" disables the metrics endpoint
  std::chrono::duration<double> retention = std::chrono::hours(24 * 90);
  // Basic auth on /metrics: both or neither.
  std::string web_username;
  std::string web_password;
  // The exporter toolkit's web configuration file: TLS and bcrypt basic auth on the endpoint.
  // Exclusive with web_username/web_password.
  std::string web_config_file;
  // At most this many per-port series (portvigil_port_open, _unexpected_open, its _since).
  std::size_t port_series_limit = 10000;
  // Several agents sharing the work: this one scans only the hosts whose hashmod selects
  // `shard` (portvigil/common/shard.hpp). Agents with the same shard and different
  // `replica` names scan the same hosts (high availability); `replica` labels their metrics.
  Shard shard;
  std::string replica;
  // Jobs that may scan at the same time; all of them together stay under max_rate.
  int max_concurrent_jobs = default_concurrent_jobs();
  // The default: the core count, 1 to 8 (a raw scan keeps two threads busy).
  [[nodiscard]] static int default_concurrent_jobs();
};

// A port or inclusive port range of one protocol: "22/tcp", "8000-8099/tcp".
struct ExpectedPort {
  Proto proto = Proto::tcp;
  std::uint16_t first = 0;
  std::uint16_t last = 0;
};

// One entry of a job's expected-open policy.
struct ExpectedOpen {
  std::string host;                  // "*" (every host of the job), address, CIDR or hostname
  std::optional<IpNetwork> network;  // set for address and CIDR hosts
  std::vector<ExpectedPort> ports;
};

struct JobConfig {
  std::string name;                           // unique, [a-z0-9_-]+
  std::vector<std::string> targets;           // Nmap target expressions, as written
  std::vector<std::string> hostname_targets;  // the subset the agent must authorize itself
  std::vector<std::string> exclude;           // --exclude expressions
  std::string ports;                          // -p syntax; empty: use top_ports
  std::size_t top_ports = 1000;               // meaningful only when ports is empty
  std::string exclude_ports;                  // "" for none
  Technique technique = Technique::connect;
  std::optional<Technique> confirm_technique;  // same protocol as technique
  std::chrono::duration<double> interval{0};
  std::chrono::duration<double> jitter{0};  // "10%" is resolved against interval
  // Effective values: the job's own, else [agent]'s, else unset (the scanner's default).
  std::optional<double> max_rate;
  std::optional<double> min_rate;
  std::optional<int> max_retries;
  std::optional<std::chrono::duration<double>> host_timeout;
  std::optional<std::chrono::duration<double>> initial_rtt_timeout;
  std::optional<std::chrono::duration<double>> min_rtt_timeout;
  std::optional<std::chrono::duration<double>> max_rtt_timeout;
  std::optional<std::size_t> max_parallelism;
  int confirmations = 2;  // re-probes that must agree before a change becomes an event
  // Discover hosts before probing their ports (Nmap's default); hosts with a baseline are
  // port-scanned whatever discovery hears. false = -Pn.
  bool host_discovery = true;
  // A known host that answers nothing for this long gets one host-gone-silent event.
  std::chrono::duration<double> host_silent_after = std::chrono::minutes(30);
  // UDP jobs: paced probing (udp-pace, on by default) and the period over which every port is
  // verified at least once (udp-coverage, default the interval): each scan verifies
  // udp_ports_per_scan() of them, the least recently verified first.
  UdpPacing udp_pace;
  // When the job may scan (windows + time-zone); empty: always.
  std::optional<ScanWindows> windows;
  std::chrono::duration<double> udp_coverage{0};
  [[nodiscard]] std::size_t udp_ports_per_scan(std::size_t port_count) const {
    const double scans = std::max(1.0, std::floor(udp_coverage / interval));
    return static_cast<std::size_t>(std::ceil(static_cast<double>(port_count) / scans));
  }
  // Service identification of the TCP ports a scan opens, before their events are written
  // (identify-services, on by default), and the ports it must never send anything to on top
  // of the built-in printer ports (never-probe, sorted).
  bool identify_services = true;
  std::vector<std::uint16_t> never_probe;
  // watch-services: the job's open TCP ports are identified again once their last read is
  // this old (watch-services-interval), and a confirmed difference is a service-changed
  // event. Unset: not watched.
  std::optional<std::chrono::duration<double>> watch_services;
  bool has_policy = false;  // expected-open was given (an empty list expects nothing open)
  std::vector<ExpectedOpen> expected_open;
  std::string origin;  // "FILE:LINE:COL" of the [[job]] table

  // True when the policy lists (proto, port) as expected open on this host. `hostname` is
  // the target as written ("" for address literals).
  [[nodiscard]] bool expects_open(const asio::ip::address& address, std::string_view hostname,
                                  Proto proto, std::uint16_t port) const;
};

// The share of a UDP job's interval its paced probing may take (the rest is slack for
// confirmation re-probes and a limiter slower than the default).
inline constexpr double kUdpPaceBudget = 0.8;

// The sink types [[sink]] accepts (the agent's sink registry builds them).
[[nodiscard]] std::span<const std::string_view> sink_type_names();

// The sink that prints events on stdout when no [[sink]] of type stdout is configured (and
// [agent] stdout-events is not false): the configuration adds it (Config::sinks), so it has
// a cursor like any other sink.
inline constexpr std::string_view kImplicitStdoutSink = "stdout";
// The agent's event log in the sink metrics (portvigil_sink_pending_events{sink}); it is
// written as each scan commits, not by a sink runner, and no [[sink]] may take its name.
inline constexpr std::string_view kEventLogSinkName = "event-log";

// One [[sink]]: a place the agent delivers change events to besides its event log, with a
// delivery cursor of its own in the database. Types: webhook (url), file (path), stdout (at
// most one; without one, the configuration adds kImplicitStdoutSink).
struct SinkConfig {
  std::string name;  // unique among the sinks; the `sink` label and the cursor's key
  std::string type;  // one of sink_type_names()
  std::string url;   // webhook: the http:// or https:// URL events are POSTed to
  std::string path;  // file: the JSON-lines file events are appended to
  std::chrono::duration<double> timeout{10};  // per delivery attempt
  int batch_size = 100;                       // events per POST at most
  std::string origin;                         // FILE:LINE:COL of the table, for messages
};

struct Config {
  std::string source;  // the file path, or "<built-in default>"
  AgentSettings agent;
  std::vector<AuthorizedNetwork> authorization;
  std::vector<JobConfig> jobs;
  std::vector<SinkConfig> sinks;  // the [[sink]] tables, and the implicit stdout sink
  // Accepted but suspicious, e.g. an authorization that has already expired. One line each,
  // formatted like errors.
  std::vector<std::string> warnings;
};

// Checks a metrics listen address ("HOST:PORT", "[V6]:PORT", "" for none) as the
// web-listen-address key is checked; throws InputError starting with `what` (the option).
void check_web_listen_address(std::string_view text, std::string_view what);

// The largest configuration accepted: 16 MiB.
inline constexpr std::size_t kMaxConfigBytes = std::size_t{16} << 20;
// Reads and validates a file. Throws InputError (one line, FILE:LINE:COL where known), also
// for a file larger than kMaxConfigBytes and for devices (/dev/zero); a pipe is read up to
// the limit.
[[nodiscard]] Config load_config(const std::string& path);
// Validates TOML text; `source_name` is used in messages and Config::source.
[[nodiscard]] Config parse_config(std::string_view toml_text, std::string_view source_name);

// The configuration used without --config: scan 127.0.0.1 (top 1000 TCP ports, connect)
// every minute, state in ./portvigil-state, authorization 127.0.0.0/8 and ::1/128.
[[nodiscard]] std::string_view default_config_toml();

// Every key the loader accepts, by section ("[agent]", "[[authorization]]", "[[job]]"):
// the reference the documentation is checked against.
struct ConfigSectionKeys {
  std::string_view section;
  std::span<const std::string_view> keys;
};
[[nodiscard]] std::span<const ConfigSectionKeys> config_keys();
[[nodiscard]] Config default_config();  // parse_config(default_config_toml(), ...)

// `portvigil check-config [--help] FILE`; `args` excludes the program name and command word.
// Prints "FILE: OK (N jobs, M authorized networks)" and returns 0, or prints the error to
// stderr and returns 2. Warnings go to stderr and do not change the status. `check_more`
// checks what other modules own (the web configuration file it names); it throws InputError.
[[nodiscard]] int check_config_command(std::span<const std::string_view> args,
                                       const std::function<void(const Config&)>& check_more = {});
[[nodiscard]] std::string check_config_usage();

}  // namespace portvigil
