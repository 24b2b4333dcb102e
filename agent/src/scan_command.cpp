#include "scan_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>

#include "portvigil/common/printable.hpp"
#include "portvigil/common/version.hpp"
#include "portvigil/config/cli.hpp"
#include "portvigil/exporters/reports.hpp"
#include "portvigil/scanner/engine.hpp"
#include "portvigil/scanner/service_id.hpp"

namespace portvigil {
namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "g_stop is set from a signal handler");
// The first Ctrl-C (or SIGTERM) stops the scan: partial results are still written. A
// second one quits at once. Only async-signal-safe calls here.
extern "C" void on_stop_signal(int sig) {
  if (g_stop.exchange(true)) _exit(128 + sig);
  static constexpr char kMessage[] =
      "\nportvigil: stopping, writing partial results (Ctrl-C again to quit at once)\n";
  (void)!write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
}

// An output destination: a file we own or stdout ("-").
struct Output {
  std::unique_ptr<std::ofstream> file;
  std::ostream* stream = nullptr;
  std::unique_ptr<ReportSink> sink;
};

std::ostream& open_output(Output& out, const std::string& path, const std::string& option) {
  if (path == "-") {
    out.stream = &std::cout;
  } else {
    out.file = std::make_unique<std::ofstream>(path, std::ios::out | std::ios::trunc);
    if (!*out.file) {
      throw InputError(option + " \"" + path +
                       "\": cannot open for writing: " + std::strerror(errno));
    }
    out.stream = out.file.get();
  }
  return *out.stream;
}

struct Plan {
  TargetSet targets;
  ScanPlan scan;
};

void build_plan(const ScanArgs& args, Plan& plan) {
  const TargetParseOptions parse{.resolve_names = !args.no_dns};
  for (const auto& t : args.targets) plan.targets.add(t, parse);
  for (const auto& f : args.target_files) plan.targets.add_file(f, parse);
  for (const auto& x : args.excludes) plan.targets.exclude(x, parse, "--exclude");
  for (const auto& f : args.exclude_files) plan.targets.exclude_file(f, parse);
  if (plan.targets.empty()) {
    throw InputError("no targets given (a TARGET argument or -iL FILE is required)");
  }
  {
    // Cheap even when the exclusions cover billions of addresses: the cursor skips them whole.
    Target first;
    auto cursor = plan.targets.cursor();
    if (!cursor.next(first)) {
      throw InputError("no targets left: --exclude/--excludefile covers every target");
    }
  }

  auto& s = plan.scan;
  if (args.technique) {
    s.technique = *args.technique;
  } else if (have_raw_socket_privilege()) {
    s.technique = Technique::syn;
  } else {
    s.technique = Technique::connect;
    std::cerr << "portvigil: no CAP_NET_RAW: using a TCP connect scan (-sT) instead of -sS\n";
  }
  s.discovery = args.skip_discovery   ? HostDiscovery::skip
                : args.discovery_only ? HostDiscovery::only
                                      : HostDiscovery::ping;
  const bool want_tcp = proto_of(s.technique) == Proto::tcp;
  const bool want_udp = !want_tcp;
  if (args.ports && args.top_ports) {
    throw InputError("-p and --top-ports/-F cannot be combined: choose one port selection");
  }
  if (args.ports) {
    s.ports = parse_ports(*args.ports, want_tcp, want_udp);
  } else {
    s.ports = top_ports(args.top_ports.value_or(1000), want_tcp, want_udp);
  }
  if (args.exclude_ports) {
    exclude_ports(s.ports, parse_ports(*args.exclude_ports, want_tcp, want_udp));
  }
  if (!s.ports.udp.empty() && want_tcp) {
    throw InputError("-p: UDP ports (U:) given, but " + std::string(cli_flag(s.technique)) +
                     " scans TCP only");
  }
  if (!s.ports.tcp.empty() && want_udp) {
    throw InputError("-p: TCP ports (T:) given, but -sU scans UDP only");
  }
  if (s.ports.empty()) throw InputError("--exclude-ports: no ports left to scan");

  if (args.scope) {
    s.scope = AuthorizedScope::parse(*args.scope);
    // Refuse up front rather than report a host as skipped: a typo must not look like a scan.
    auto cursor = plan.targets.cursor();
    Target t;
    for (std::uint64_t checked = 0; checked < (1u << 20) && cursor.next(t); ++checked) {
      if (!s.scope.contains(t.address)) {
        throw InputError("target " + t.address.to_string() + " is outside --scope " + *args.scope);
      }
    }
  } else {
    // A typo ("10.0.0.0/1", "localhost/0") must not start a scan of half the Internet.
    constexpr std::uint64_t kMaxUnscoped = std::uint64_t{1} << 24;
    if (const auto n = plan.targets.size_hint(); n > kMaxUnscoped) {
      throw InputError("the targets name " +
                       (n == std::numeric_limits<std::uint64_t>::max() ? std::string("2^64 or more")
                                                                       : std::to_string(n)) +
                       " addresses, more than 2^24 (16777216): give --scope NETWORKS to "
                       "confirm that you may scan them");
    }
    s.scope = plan.targets.covering_scope();
  }
  s.targets = &plan.targets;
  s.command_line = args.command_line;
  auto& tm = s.timing;
  if (args.timing_template) tm = timing_template(*args.timing_template);  // explicit options win
  if (args.max_retries) tm.max_retries = *args.max_retries;
  if (args.max_rate) tm.max_rate = *args.max_rate;
  if (args.min_rate) tm.min_rate = *args.min_rate;
  // Options given explicitly win over a -T template: the template's values that contradict
  // them give way instead of making the command line an error.
  if (args.min_rate && !args.max_rate && tm.max_rate > 0) {
    tm.max_rate = std::max(tm.max_rate, tm.min_rate);
  }
  if (tm.max_rate > 0 && tm.min_rate > tm.max_rate) {
    throw InputError("--min-rate must not exceed --max-rate");
  }
  if (args.identify && (args.discovery_only || !finds_open_tcp_ports(s.technique))) {
    throw InputError("--identify identifies open TCP ports: it needs -sT or -sS, not " +
                     std::string(args.discovery_only ? "-sn" : cli_flag(s.technique)));
  }
  if (args.udp_pace) {
    if (s.technique != Technique::udp && args.udp_pace->enabled) {
      throw InputError("--udp-pace: paces -sU only, not " + std::string(cli_flag(s.technique)));
    }
    s.udp_pacing = *args.udp_pace;
  }
  if (args.host_timeout) tm.host_timeout = *args.host_timeout;
  if (args.initial_rtt_timeout) tm.initial_rtt_timeout = *args.initial_rtt_timeout;
  if (args.min_rtt_timeout) tm.min_rtt_timeout = *args.min_rtt_timeout;
  if (args.max_rtt_timeout) tm.max_rtt_timeout = *args.max_rtt_timeout;
  if (args.min_rtt_timeout && !args.max_rtt_timeout) {
    tm.max_rtt_timeout = std::max(tm.max_rtt_timeout, tm.min_rtt_timeout);
  }
  if (args.max_rtt_timeout && !args.min_rtt_timeout) {
    tm.min_rtt_timeout = std::min(tm.min_rtt_timeout, tm.max_rtt_timeout);
  }
  // The first probes' timeout stays within the bounds given (Nmap lowers it with
  // --max-rtt-timeout too), unless it was given itself.
  if (!args.initial_rtt_timeout && tm.min_rtt_timeout <= tm.max_rtt_timeout) {
    tm.initial_rtt_timeout =
        std::clamp(tm.initial_rtt_timeout, tm.min_rtt_timeout, tm.max_rtt_timeout);
  }
  if (tm.min_rtt_timeout > tm.max_rtt_timeout) {
    throw InputError("--min-rtt-timeout must not exceed --max-rtt-timeout");
  }
  if (args.max_parallelism) tm.max_parallelism = *args.max_parallelism;
}

void print_progress(const Progress& p, bool tty) {
  const double pct = p.probes_total ? 100.0 * static_cast<double>(p.probes_done) /
                                          static_cast<double>(p.probes_total)
                                    : 0.0;
  double eta = 0;
  if (p.probes_done > 0 && p.probes_total > p.probes_done) {
    eta = p.elapsed.count() * static_cast<double>(p.probes_total - p.probes_done) /
          static_cast<double>(p.probes_done);
  }
  std::fprintf(
      stderr,
      "%sStats: %.1fs elapsed; %llu hosts completed; %.2f%% done; ~%.0fs left; %.0f probes/s%s",
      tty ? "\r" : "", p.elapsed.count(), static_cast<unsigned long long>(p.hosts_done), pct, eta,
      p.rate, tty ? "\x1b[K" : "\n");
  std::fflush(stderr);
}

bool is_open_tcp(const PortResult& p) {
  return p.proto == Proto::tcp && p.state == PortState::open;
}

// --identify: hosts with open TCP ports are held back until the port scan is done, then
// those ports are identified side by side and the hosts handed on (Nmap's -sV reports at
// the end too). Hosts without one go straight through, and down hosts (which no report
// lists) are not kept, so memory grows with the hosts that have open ports only.
class HoldingSink final : public ReportSink {
 public:
  explicit HoldingSink(ReportSink& out) : out_(out) {}
  void begin(const ScanInfo&) override {}
  void host(const HostResult& h) override {
    if (std::any_of(h.ports.begin(), h.ports.end(), is_open_tcp)) {
      hosts.push_back(h);
    } else if (h.status != HostStatus::down) {
      out_.host(h);
    }
  }
  void end(const ScanSummary&) override {}
  std::vector<HostResult> hosts;

 private:
  ReportSink& out_;
};

void identify_open_ports(std::vector<HostResult>& hosts, const AuthorizedScope& scope,
                         const TimingOptions& timing, bool progress) {
  std::vector<ServiceTarget> targets;
  std::vector<std::pair<std::size_t, std::uint16_t>> where;  // (host index, port)
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    for (const auto& p : hosts[i].ports) {
      if (!is_open_tcp(p)) continue;
      targets.push_back({hosts[i].address, p.port, hosts[i].hostname});
      where.emplace_back(i, p.port);
    }
  }
  if (targets.empty()) return;
  if (progress) std::cerr << "portvigil: identifying " << targets.size() << " open TCP ports\n";
  IdentifyOptions options;
  options.scope = scope;
  options.stop = &g_stop;
  // The politeness the port scan was asked for holds here too: -T0..-T2 and
  // --max-parallelism 1 mean one connection at a time.
  if (timing.max_parallelism > 0) {
    options.concurrency = std::min(options.concurrency, timing.max_parallelism);
  }
  const auto results = identify_services(targets, options);
  for (std::size_t k = 0; k < results.size(); ++k) {
    hosts[where[k].first].services.push_back({where[k].second, results[k]});
  }
}

}  // namespace

int run_scan_command(std::span<const std::string_view> argv) {
  ScanArgs args;
  Plan plan;
  Output table;
  Output normal;
  Output xml;
  Output json;
  Output grep;
  try {
    args = parse_scan_args(argv);
    if (args.help) {
      std::cout << scan_usage();
      return 0;
    }
    if (args.version) {
      std::cout << "portvigil " << kVersion << "\n";
      return 0;
    }
    build_plan(args, plan);
    const ReportOptions topts{.show_reason = args.reason, .open_only = args.open_only};
    // The table goes to stdout unless another report already claimed stdout.
    const bool stdout_taken = args.out_xml == "-" || args.out_json == "-" || args.out_grep == "-" ||
                              args.out_normal == "-";
    if (!stdout_taken) table.sink = make_table_report(std::cout, topts);
    if (args.out_normal)
      normal.sink = make_table_report(open_output(normal, *args.out_normal, "-oN"), topts);
    if (args.out_xml) xml.sink = make_xml_report(open_output(xml, *args.out_xml, "-oX"), topts);
    if (args.out_json) json.sink = make_json_report(open_output(json, *args.out_json, "-oJ"));
    if (args.out_grep)
      grep.sink = make_grepable_report(open_output(grep, *args.out_grep, "-oG"), topts);
  } catch (const InputError& e) {
    std::cerr << "portvigil: " << printable(e.what()) << "\n";
    return 2;
  }

  TeeSink tee;
  for (auto* o : {&table, &normal, &xml, &json, &grep}) {
    if (o->sink) tee.add(*o->sink);
  }
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);

  const bool tty = isatty(STDERR_FILENO) == 1;
  RunControl control;
  control.stop = &g_stop;
  if (args.stats_every || tty || args.verbosity > 0) {
    control.progress_every = args.stats_every.value_or(
        tty ? std::chrono::seconds(2) : std::chrono::seconds(5));  // -v off a terminal: 5 s
    const bool overwrite = tty && !args.stats_every;
    control.on_progress = [overwrite](const Progress& p) { print_progress(p, overwrite); };
  }

  ScanInfo info;
  info.technique = plan.scan.technique;
  info.command_line = plan.scan.command_line;
  info.start = std::chrono::system_clock::now();
  info.tcp_ports = format_port_ranges(plan.scan.ports.tcp);
  info.udp_ports = format_port_ranges(plan.scan.ports.udp);
  info.tcp_port_count = plan.scan.ports.tcp.size();
  info.udp_port_count = plan.scan.ports.udp.size();

  tee.begin(info);
  RawOptions raw;
  raw.interface = args.interface.value_or("");
  const std::unique_ptr<ScanEngine> engine = make_scan_engine(plan.scan.technique, raw);
  HoldingSink held(tee);
  ScanSummary summary =
      engine->run(plan.scan, args.identify ? static_cast<ReportSink&>(held) : tee, control);
  if (control.on_progress && tty && !args.stats_every) std::fputs("\r\x1b[K", stderr);
  if (args.identify) {
    const auto identify_start = std::chrono::steady_clock::now();
    if (!g_stop) {
      identify_open_ports(held.hosts, plan.scan.scope, plan.scan.timing, tty || args.verbosity > 0);
    }
    for (const auto& h : held.hosts) tee.host(h);
    // The run took as long as the port scan and the identification together; a stop during
    // identification makes the results partial like one during the port scan.
    summary.end = std::chrono::system_clock::now();
    summary.elapsed += std::chrono::steady_clock::now() - identify_start;
    if (g_stop) summary.interrupted = true;
  }
  tee.end(summary);
  if (!summary.error.empty()) std::cerr << "portvigil: " << printable(summary.error) << "\n";
  for (auto* o : {&normal, &xml, &json, &grep}) {
    if (o->file) {
      o->file->flush();
      if (!*o->file) {
        std::cerr << "portvigil: error writing output file\n";
        return 1;
      }
    }
  }
  std::cout.flush();
  if (summary.interrupted) {
    std::cerr << "portvigil: scan interrupted; results above are partial\n";
    return 1;
  }
  return summary.error.empty() ? 0 : 1;
}

}  // namespace portvigil
