// Private to the config module: pure syntax checks for the values the agent configuration
// holds as strings (networks, Nmap targets and port lists, policy ports, listen addresses).
// They mirror the scanner's parsers closely enough to reject what the scanner would reject,
// without linking the scanner. Each throws SyntaxProblem, a message without position; the
// loader adds FILE:LINE:COL and the key.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/address.hpp>

#include "portvigil/config/agent_config.hpp"

namespace portvigil::config_detail {

// The longest probe timeout the CLI and the configuration accept: the scanner keeps
// timeouts in 32-bit microseconds, and nothing useful waits an hour for one answer.
inline constexpr std::chrono::hours kMaxRttTimeout{1};

class SyntaxProblem : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

__extension__ typedef unsigned __int128 u128;

// An inclusive address range of one family; IPv4 in the low 32 bits.
struct Range {
  bool v6 = false;
  u128 first = 0;
  u128 last = 0;
};

// `text` in double quotes with ", \ and control characters escaped; long text is shortened.
[[nodiscard]] std::string display(std::string_view text);
[[nodiscard]] bool iequals(std::string_view a, std::string_view b);

[[nodiscard]] u128 to_u128(const asio::ip::address& a);
[[nodiscard]] Range range_of(const IpNetwork& network);
// Sorted, with overlapping and adjacent ranges of one family joined.
[[nodiscard]] std::vector<Range> merge(std::vector<Range> ranges);

// An authorization network: "198.18.0.0/15", "2001:db8::/32", or a bare address. Host bits
// must be clear.
[[nodiscard]] IpNetwork parse_network(std::string_view text);

// The shape of an Nmap target expression: a hostname (checked by the agent after resolving),
// or the range of addresses it may touch (the bounding range for octet ranges).
struct TargetShape {
  bool hostname = false;
  std::optional<unsigned> hostname_prefix;  // "db.example/24": 24
  Range range;
};
[[nodiscard]] TargetShape parse_target(std::string_view text);

// A host key of a job's expected-open table: an address or CIDR, or a hostname.
struct PolicyHost {
  std::optional<IpNetwork> network;  // empty for hostnames
};
[[nodiscard]] PolicyHost parse_policy_host(std::string_view text);

// Nmap -p syntax ("22,80,T:443,U:53,1000-2000", "-"): the ports it selects for `proto`,
// indexed by port number (unqualified ports apply to every protocol). At least one must, as
// the scanner rejects a list without ports for the protocol it scans.
[[nodiscard]] std::vector<bool> port_set(std::string_view spec, Proto proto);

// "22/tcp" or "8000-8099/udp".
[[nodiscard]] ExpectedPort parse_expected_port(std::string_view text);

// "10%" -> 10.0 (any non-negative number before the '%').
[[nodiscard]] double parse_percent(std::string_view text);

// "127.0.0.1:10117", "[::1]:10117", "localhost:10117"; "" (disabled) is accepted.
void check_listen_address(std::string_view text);

}  // namespace portvigil::config_detail
