// Command-line parsing for `portvigil scan`: Nmap's option spellings, typed and checked.
// Turning the strings into targets and ports is the scanner's job; this layer only knows
// the syntax of options. Errors throw InputError with one line naming the option.
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "portvigil/common/errors.hpp"
#include "portvigil/common/scan_model.hpp"

namespace portvigil {

struct ScanArgs {
  std::optional<Technique> technique;
  std::vector<std::string> targets;
  std::vector<std::string> target_files;   // -iL
  std::vector<std::string> excludes;       // --exclude (comma lists split)
  std::vector<std::string> exclude_files;  // --excludefile
  std::optional<std::string> ports;        // -p
  std::optional<std::string> exclude_ports;
  std::optional<std::size_t> top_ports;  // --top-ports, -F = 100
  bool no_dns = false;                   // -n
  bool skip_discovery = false;           // -Pn
  bool discovery_only = false;           // -sn
  std::optional<std::string> interface;  // -e
  std::optional<std::string> scope;      // --scope
  std::optional<int> max_retries;
  std::optional<double> max_rate;
  std::optional<double> min_rate;
  std::optional<std::chrono::duration<double>> host_timeout;
  std::optional<std::chrono::duration<double>> initial_rtt_timeout;
  std::optional<std::chrono::duration<double>> min_rtt_timeout;
  std::optional<std::chrono::duration<double>> max_rtt_timeout;
  std::optional<std::size_t> max_parallelism;
  std::optional<UdpPacing> udp_pace;      // --udp-pace
  std::optional<int> timing_template;     // -T0..-T5 (or -T paranoid..insane)
  int verbosity = 0;                      // -v, -vv
  bool open_only = false;                 // --open
  bool reason = false;                    // --reason
  bool identify = false;                  // --identify: service identification on open TCP ports
  std::optional<std::string> out_normal;  // -oN
  std::optional<std::string> out_xml;     // -oX
  std::optional<std::string> out_json;    // -oJ
  std::optional<std::string> out_grep;    // -oG
  std::optional<std::string> out_all;     // -oA BASE: fills -oN/-oX/-oG not given otherwise
  std::optional<std::chrono::duration<double>> stats_every;
  bool help = false;
  bool version = false;
  std::string command_line;  // "portvigil scan ..." as typed, for report headers
};

// `args` excludes the program name and the "scan" word.
[[nodiscard]] ScanArgs parse_scan_args(std::span<const std::string_view> args);
[[nodiscard]] std::string scan_usage();

// Paced UDP: "auto" (from kDefaultUdpPacePeriod), "off", or a starting period such as "2s"
// (kMinUdpPacePeriod..kMaxUdpPacePeriod). `what` names the option or key.
[[nodiscard]] UdpPacing parse_udp_pace(std::string_view text, std::string_view what);

// "30s", "500ms", "5m", "2h", "1d"; a bare number is seconds. `what` names the option.
[[nodiscard]] std::chrono::duration<double> parse_duration(std::string_view text,
                                                           std::string_view what);

}  // namespace portvigil
