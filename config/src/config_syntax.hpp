// Private to the config module: pure syntax checks for the values the agent configuration
// holds as strings (networks, Nmap targets and port lists, policy ports, listen addresses).
// Addresses, targets and port lists go through the shared grammar (portvigil/common/
// grammar.hpp) that the scanner uses too, so the two cannot disagree. Each throws
// SyntaxProblem, a message without position; the loader adds FILE:LINE:COL and the key.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/address.hpp>

#include "portvigil/common/grammar.hpp"
#include "portvigil/config/agent_config.hpp"

namespace portvigil::config_detail {

// The longest probe timeout the CLI and the configuration accept: the scanner keeps
// timeouts in 32-bit microseconds, and nothing useful waits an hour for one answer.
inline constexpr std::chrono::hours kMaxRttTimeout{1};

class SyntaxProblem : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `text` in double quotes, escaped and cut: the shared grammar's quote_input.
[[nodiscard]] inline std::string display(std::string_view text) {
  return quote_input(text);
}
[[nodiscard]] bool iequals(std::string_view a, std::string_view b);

// An authorization network: "198.18.0.0/15", "2001:db8::/32", or a bare address. Host bits
// must be clear (grammar::parse_network with HostBits::reject).
[[nodiscard]] IpNetwork parse_network(std::string_view text);

// An Nmap target expression (grammar::parse_target): a hostname (checked by the agent after
// resolving), or the range of addresses it may touch (the bounding range for octet ranges).
[[nodiscard]] grammar::TargetExpression parse_target(std::string_view text);

// A host key of a job's expected-open table: an address or CIDR, or a hostname.
struct PolicyHost {
  std::optional<IpNetwork> network;  // empty for hostnames
};
[[nodiscard]] PolicyHost parse_policy_host(std::string_view text);

// Nmap -p syntax ("22,80,T:443,U:53,1000-2000", "-"): the ports it selects for `proto`,
// indexed by port number (unqualified ports apply to every protocol). At least one must, as
// the scanner rejects a list without ports for the protocol it scans.
// `user` says what uses the ports, for the message when none is of `proto`.
[[nodiscard]] std::vector<bool> port_set(std::string_view spec, Proto proto,
                                         std::string_view user = "the technique scans");

// "22/tcp" or "8000-8099/udp".
[[nodiscard]] ExpectedPort parse_expected_port(std::string_view text);

// "10%" -> 10.0 (any non-negative number before the '%').
[[nodiscard]] double parse_percent(std::string_view text);

// "127.0.0.1:10117", "[::1]:10117", "localhost:10117"; "" (disabled) is accepted.
void check_listen_address(std::string_view text);

}  // namespace portvigil::config_detail
