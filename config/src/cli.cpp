#include "portvigil/config/cli.hpp"

#include "config_syntax.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <functional>
#include <sstream>

namespace portvigil {
namespace {

// A probe timeout, at most config_detail::kMaxRttTimeout.
std::chrono::duration<double> parse_rtt_timeout(std::string_view text, std::string_view option) {
  const auto d = parse_duration(text, option);
  if (d > config_detail::kMaxRttTimeout) {
    throw InputError(std::string(option) + ": \"" + std::string(text) +
                     "\" is longer than the 1h a probe timeout may be");
  }
  return d;
}

std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

double parse_double(std::string_view text, std::string_view what, double min) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || ptr != text.data() + text.size() || !std::isfinite(v)) {
    throw InputError(std::string(what) + ": " + quoted(text) + " is not a number");
  }
  if (v < min) {
    throw InputError(std::string(what) + ": " + quoted(text) + " must be at least " +
                     std::to_string(static_cast<long long>(min)));
  }
  return v;
}

long long parse_int(std::string_view text, std::string_view what, long long min, long long max) {
  long long v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || ptr != text.data() + text.size()) {
    throw InputError(std::string(what) + ": " + quoted(text) + " is not a whole number");
  }
  if (v < min || v > max) {
    throw InputError(std::string(what) + ": " + std::to_string(v) + " is out of range " +
                     std::to_string(min) + "-" + std::to_string(max));
  }
  return v;
}

// -T's value: 0-5 or Nmap's names for them.
int parse_timing_template(std::string_view text) {
  static constexpr std::array<std::string_view, 6> kNames{"paranoid", "sneaky",     "polite",
                                                          "normal",   "aggressive", "insane"};
  if (text.size() == 1 && text[0] >= '0' && text[0] <= '5') return text[0] - '0';
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (text.size() == kNames[i].size() &&
        std::equal(text.begin(), text.end(), kNames[i].begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        })) {
      return static_cast<int>(i);
    }
  }
  throw InputError("-T: " + quoted(text) +
                   " is not a timing template (expected 0-5 or paranoid, sneaky, polite, "
                   "normal, aggressive, insane)");
}

void split_commas(std::string_view list, std::vector<std::string>& out) {
  std::size_t start = 0;
  while (start <= list.size()) {
    const auto pos = list.find(',', start);
    const auto item = list.substr(start, pos == list.npos ? list.npos : pos - start);
    if (!item.empty()) out.emplace_back(item);
    if (pos == list.npos) break;
    start = pos + 1;
  }
}

struct Option {
  std::vector<std::string_view> names;
  std::string_view value_name;  // empty: a flag without value
  std::string_view help;
  std::function<void(ScanArgs&, std::string_view)> apply;
};

const std::vector<Option>& options() {
  static const std::vector<Option> table = [] {
    std::vector<Option> t;
    auto technique = [](Technique k) {
      return [k](ScanArgs& a, std::string_view) { a.technique = k; };
    };
    for (const auto& info : all_techniques()) {
      t.push_back({{info.cli_flag}, "", info.help, technique(info.technique)});
    }
    t.push_back({{"-sn"},
                 "",
                 "host discovery only: list the hosts that are up, probe no ports",
                 [](ScanArgs& a, std::string_view) { a.discovery_only = true; }});
    t.push_back({{"-Pn"},
                 "",
                 "skip host discovery: port-scan every target as if it were up",
                 [](ScanArgs& a, std::string_view) { a.skip_discovery = true; }});
    t.push_back({{"-e"},
                 "IFACE",
                 "raw scans: capture on IFACE instead of the one routing to the first target",
                 [](ScanArgs& a, std::string_view v) { a.interface = std::string(v); }});
    t.push_back({{"-p"},
                 "PORTS",
                 "ports to scan: 22,80,1000-2000; -p- for 1-65535; T:/U: prefixes select the "
                 "protocol and stay in force until the next prefix",
                 [](ScanArgs& a, std::string_view v) { a.ports = std::string(v); }});
    t.push_back({{"--exclude-ports"},
                 "PORTS",
                 "ports to leave out, same syntax as -p",
                 [](ScanArgs& a, std::string_view v) { a.exclude_ports = std::string(v); }});
    t.push_back({{"--top-ports"},
                 "N",
                 "scan the N most commonly exposed ports (default 1000)",
                 [](ScanArgs& a, std::string_view v) {
                   a.top_ports = static_cast<std::size_t>(parse_int(v, "--top-ports", 1, 65535));
                 }});
    t.push_back({{"-F"},
                 "",
                 "fast mode: the 100 most commonly exposed ports",
                 [](ScanArgs& a, std::string_view) { a.top_ports = 100; }});
    t.push_back({{"-iL"},
                 "FILE",
                 "read targets from FILE (whitespace separated, # comments)",
                 [](ScanArgs& a, std::string_view v) { a.target_files.emplace_back(v); }});
    t.push_back({{"--exclude"},
                 "LIST",
                 "comma-separated targets to leave out",
                 [](ScanArgs& a, std::string_view v) { split_commas(v, a.excludes); }});
    t.push_back({{"--excludefile"},
                 "FILE",
                 "read targets to leave out from FILE",
                 [](ScanArgs& a, std::string_view v) { a.exclude_files.emplace_back(v); }});
    t.push_back({{"-n"},
                 "",
                 "never resolve names: hostname targets become errors",
                 [](ScanArgs& a, std::string_view) { a.no_dns = true; }});
    t.push_back({{"--scope"},
                 "CIDRS",
                 "networks this scan is authorized to touch (default: the targets themselves); "
                 "a target outside them is an error",
                 [](ScanArgs& a, std::string_view v) { a.scope = std::string(v); }});
    t.push_back({{"--max-retries"},
                 "N",
                 "retransmissions for unanswered probes (default 2)",
                 [](ScanArgs& a, std::string_view v) {
                   a.max_retries = static_cast<int>(parse_int(v, "--max-retries", 0, 50));
                 }});
    t.push_back(
        {{"--max-rate"},
         "N",
         "send at most N probes per second",
         [](ScanArgs& a, std::string_view v) { a.max_rate = parse_double(v, "--max-rate", 1); }});
    t.push_back(
        {{"--min-rate"},
         "N",
         "size the probe window to sustain at least N probes per second",
         [](ScanArgs& a, std::string_view v) { a.min_rate = parse_double(v, "--min-rate", 1); }});
    t.push_back({{"--host-timeout"},
                 "TIME",
                 "give up on a host after TIME (30s, 5m); its unanswered ports are not reported",
                 [](ScanArgs& a, std::string_view v) {
                   a.host_timeout = parse_duration(v, "--host-timeout");
                 }});
    t.push_back({{"--initial-rtt-timeout"},
                 "TIME",
                 "probe timeout before any RTT is measured (500ms)",
                 [](ScanArgs& a, std::string_view v) {
                   a.initial_rtt_timeout = parse_rtt_timeout(v, "--initial-rtt-timeout");
                 }});
    t.push_back({{"--min-rtt-timeout"},
                 "TIME",
                 "lower bound of the RTT-based probe timeout (100ms)",
                 [](ScanArgs& a, std::string_view v) {
                   a.min_rtt_timeout = parse_rtt_timeout(v, "--min-rtt-timeout");
                 }});
    t.push_back({{"--max-rtt-timeout"},
                 "TIME",
                 "upper bound of the RTT-based probe timeout (1250ms)",
                 [](ScanArgs& a, std::string_view v) {
                   a.max_rtt_timeout = parse_rtt_timeout(v, "--max-rtt-timeout");
                 }});
    t.push_back({{"--max-parallelism"},
                 "N",
                 "at most N probes outstanding (default 4096)",
                 [](ScanArgs& a, std::string_view v) {
                   a.max_parallelism =
                       static_cast<std::size_t>(parse_int(v, "--max-parallelism", 1, 1 << 20));
                 }});
    t.push_back(
        {{"--udp-pace"},
         "MODE",
         "-sU against hosts that rate-limit ICMP errors (Linux: a burst of 6, then 1/s): "
         "'auto' probes every port still silent after the fast pass again, one probe "
         "per host per 1.005s (slower when replies show a slower limit), hosts in "
         "parallel, so silence is proof and no host is inconclusive for it; a TIME "
         "(2s) starts from that pace; 'off' (default) keeps the fast scan, which marks "
         "such hosts inconclusive",
         [](ScanArgs& a, std::string_view v) { a.udp_pace = parse_udp_pace(v, "--udp-pace"); }});
    t.push_back(
        {{"-T"},
         "0-5",
         "Nmap timing template (-T4; or paranoid, sneaky, polite, normal, aggressive, "
         "insane): sets the timing options above; options given explicitly win",
         [](ScanArgs& a, std::string_view v) { a.timing_template = parse_timing_template(v); }});
    t.push_back({{"--open"},
                 "",
                 "show only open (or possibly open) ports",
                 [](ScanArgs& a, std::string_view) { a.open_only = true; }});
    t.push_back({{"--reason"},
                 "",
                 "add the REASON column (syn-ack, conn-refused, ...)",
                 [](ScanArgs& a, std::string_view) { a.reason = true; }});
    t.push_back(
        {{"--identify"},
         "",
         "identify what answers on open TCP ports (greeting, TLS certificate, HTTP "
         "HEAD; under 3 s a port; never printer ports 515, 631, 9100-9107) and add "
         "the VERSION column; hosts with open ports are written when identification is done; "
         "needs -sT or -sS",
         [](ScanArgs& a, std::string_view) { a.identify = true; }});
    t.push_back({{"-oN"},
                 "FILE",
                 "write the table to FILE as well ('-' = stdout)",
                 [](ScanArgs& a, std::string_view v) { a.out_normal = std::string(v); }});
    t.push_back({{"-oX"},
                 "FILE",
                 "write Nmap-compatible XML to FILE ('-' = stdout)",
                 [](ScanArgs& a, std::string_view v) { a.out_xml = std::string(v); }});
    t.push_back({{"-oJ"},
                 "FILE",
                 "write JSON (docs/scan-json.md) to FILE ('-' = stdout)",
                 [](ScanArgs& a, std::string_view v) { a.out_json = std::string(v); }});
    t.push_back({{"-oG"},
                 "FILE",
                 "write Nmap grepable output to FILE ('-' = stdout)",
                 [](ScanArgs& a, std::string_view v) { a.out_grep = std::string(v); }});
    t.push_back({{"-oA"},
                 "BASE",
                 "write BASE.nmap, BASE.xml and BASE.gnmap (-oN, -oX, -oG given as well win)",
                 [](ScanArgs& a, std::string_view v) { a.out_all = std::string(v); }});
    t.push_back({{"-v", "-vv"},
                 "",
                 "more verbose: a progress line on stderr every 5s even when stderr is not a "
                 "terminal (unless --stats-every says otherwise)",
                 [](ScanArgs& a, std::string_view v) { a.verbosity += v == "-vv" ? 2 : 1; }});
    t.push_back({{"-6"},
                 "",
                 "accepted for Nmap's sake: the target addresses decide the family (IPv4 and "
                 "IPv6 mix freely)",
                 [](ScanArgs&, std::string_view) {}});
    t.push_back({{"--stats-every"},
                 "TIME",
                 "print a progress line to stderr every TIME (default: every 2s when stderr is "
                 "a terminal)",
                 [](ScanArgs& a, std::string_view v) {
                   a.stats_every = parse_duration(v, "--stats-every");
                 }});
    t.push_back(
        {{"-h", "--help"}, "", "show this help and exit", [](ScanArgs& a, std::string_view) {
           a.help = true;
         }});
    t.push_back(
        {{"-V", "--version"}, "", "show the version and exit", [](ScanArgs& a, std::string_view) {
           a.version = true;
         }});
    return t;
  }();
  return table;
}

}  // namespace

UdpPacing parse_udp_pace(std::string_view text, std::string_view what) {
  UdpPacing p;
  if (text == "off") return p;
  p.enabled = true;
  if (text == "auto") return p;
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) {
    throw InputError(std::string(what) + ": " + quoted(text) +
                     " is not \"auto\", \"off\" or a duration such as \"2s\"");
  }
  p.period = parse_duration(text, what);
  if (p.period < kMinUdpPacePeriod || p.period > kMaxUdpPacePeriod) {
    throw InputError(std::string(what) + ": " + quoted(text) +
                     " is out of range (10ms to 8s per probe and host)");
  }
  return p;
}

std::chrono::duration<double> parse_duration(std::string_view text, std::string_view what) {
  std::size_t split = 0;
  while (split < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[split])) || text[split] == '.')) {
    ++split;
  }
  const auto number = text.substr(0, split);
  const auto unit = text.substr(split);
  double scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1;
  } else if (unit == "ms") {
    scale = 0.001;
  } else if (unit == "m") {
    scale = 60;
  } else if (unit == "h") {
    scale = 3600;
  } else if (unit == "d") {
    scale = 86400;
  } else {
    throw InputError(std::string(what) + ": " + quoted(text) +
                     " has an unknown unit (expected ms, s, m, h or d)");
  }
  if (number.empty()) {
    throw InputError(std::string(what) + ": " + quoted(text) + " is not a duration such as 30s");
  }
  return std::chrono::duration<double>(parse_double(number, what, 0) * scale);
}

ScanArgs parse_scan_args(std::span<const std::string_view> args) {
  ScanArgs out;
  out.command_line = "portvigil scan";
  for (auto a : args) out.command_line += " " + std::string(a);
  const auto& table = options();
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg.empty() || arg[0] != '-' || arg == "-") {
      out.targets.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      for (++i; i < args.size(); ++i) out.targets.emplace_back(args[i]);
      break;
    }
    const Option* match = nullptr;
    std::string_view value;
    bool have_value = false;
    for (const auto& opt : table) {
      for (auto name : opt.names) {
        if (arg == name) {
          match = &opt;
        } else if (!opt.value_name.empty() && arg.starts_with(name)) {
          // "--opt=value", and Nmap's glued forms "-p22", "-p-".
          const auto rest = arg.substr(name.size());
          if (name.starts_with("--") && rest.starts_with("=")) {
            match = &opt;
            value = rest.substr(1);
            have_value = true;
          } else if (!name.starts_with("--") && name.size() == 2) {
            match = &opt;
            value = rest;
            have_value = true;
          }
        }
        if (match) break;
      }
      if (match) break;
    }
    if (!match) {
      if (arg.starts_with("-s") && arg.size() == 3) {
        throw InputError(std::string(arg) +
                         ": unknown scan technique (supported: -sS -sT -sF -sN -sX -sA -sU)");
      }
      throw InputError("unknown option " + quoted(arg) + " (see portvigil scan --help)");
    }
    if (match->value_name.empty()) value = arg;  // a flag learns which of its names was given
    if (match->names.front().starts_with("-s") && out.technique) {
      const auto before = *out.technique;
      match->apply(out, value);
      if (*out.technique != before) {
        throw InputError(std::string(arg) + ": only one scan technique per run (" +
                         std::string(cli_flag(before)) + " was given already)");
      }
      continue;
    }
    if (!match->value_name.empty() && !have_value) {
      if (i + 1 >= args.size()) {
        throw InputError(std::string(arg) + ": missing " + std::string(match->value_name));
      }
      value = args[++i];
      have_value = true;
    }
    match->apply(out, value);
  }
  if (out.out_all) {
    if (out.out_all->empty() || *out.out_all == "-") {
      throw InputError("-oA: needs a file name base (BASE.nmap, BASE.xml, BASE.gnmap), not " +
                       quoted(*out.out_all));
    }
    if (!out.out_normal) out.out_normal = *out.out_all + ".nmap";
    if (!out.out_xml) out.out_xml = *out.out_all + ".xml";
    if (!out.out_grep) out.out_grep = *out.out_all + ".gnmap";
  }
  if (out.skip_discovery && out.discovery_only) {
    throw InputError(
        "-Pn and -sn cannot be combined: one skips host discovery, the other does "
        "nothing else");
  }
  return out;
}

std::string scan_usage() {
  std::ostringstream os;
  os << "Usage: portvigil scan [OPTIONS] TARGET...\n"
        "\n"
        "Scan TARGETs once and print the result as Nmap does. TARGET is an IPv4 or IPv6\n"
        "address, a CIDR block (198.18.0.0/24, 2001:db8::/120), an IPv4 octet range\n"
        "(198.18.0.1-20, 198.18.0-1.*) or a hostname (resolved once; see -n). Only targets\n"
        "you are authorized to scan may be given; --scope states that authorization.\n"
        "Without -p, --top-ports or -F the 1000 most commonly exposed ports are scanned.\n"
        "Hosts are discovered first, as Nmap does: raw techniques send an ICMP echo request,\n"
        "a TCP SYN to 443 and a TCP ACK to 80; -sT connects to 80 and 443. Only hosts that\n"
        "answer one of them are port-scanned; a host that drops all of them is reported down\n"
        "even if other ports are open: use -Pn for such hosts.\n"
        "Raw techniques (-sS -sF -sN -sX -sA -sU) need CAP_NET_RAW: run as root, or grant it\n"
        "with: setcap cap_net_raw+ep $(command -v portvigil)\n"
        "\n"
        "Options:\n";
  for (const auto& opt : options()) {
    std::string left = "  ";
    for (std::size_t i = 0; i < opt.names.size(); ++i) {
      if (i) left += ", ";
      left += opt.names[i];
    }
    if (!opt.value_name.empty()) left += " " + std::string(opt.value_name);
    if (left.size() < 28) {
      left.resize(28, ' ');
    } else {
      left += "\n" + std::string(28, ' ');
    }
    os << left << opt.help << "\n";
  }
  os << "\n"
        "Exit status: 0 scan completed, 1 the scan failed or was interrupted, 2 bad input.\n";
  return os.str();
}

}  // namespace portvigil
