// The one grammar for what people write about addresses and ports: networks, Nmap target
// expressions, hostnames and -p port lists. config/ checks configuration files with it and
// scanner/ builds its target sets and port lists from it, so a value the configuration
// accepts is one the scanner accepts, with the same meaning. Text in, values out: no DNS.
//
// Parsers throw InputError with a message that quotes the offending text (escaped and cut,
// see quote_input) and says what was expected; callers add where the text came from
// (FILE:LINE:COL and key, "-p", "--scope").
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/address.hpp>

#include "portvigil/common/errors.hpp"
#include "portvigil/common/scan_model.hpp"

namespace portvigil {

__extension__ typedef unsigned __int128 uint128;

// An inclusive range of addresses of one family, as 128-bit integers (IPv4 in the low bits).
struct AddressRange {
  bool v6 = false;
  uint128 first = 0;
  uint128 last = 0;
  [[nodiscard]] bool contains(const asio::ip::address& a) const;
  [[nodiscard]] uint128 size() const { return last - first + 1; }  // 0 means 2^128
  bool operator==(const AddressRange&) const = default;
};

[[nodiscard]] uint128 to_uint128(const asio::ip::address& a);
[[nodiscard]] asio::ip::address from_uint128(uint128 value, bool v6);
// The /prefix block around `a` ("198.18.0.5", 24 -> 198.18.0.0-198.18.0.255).
[[nodiscard]] AddressRange block_of(const asio::ip::address& a, unsigned prefix);
// Sorted, with overlapping and adjacent ranges of one family joined.
[[nodiscard]] std::vector<AddressRange> merge_ranges(std::vector<AddressRange> ranges);

// `text` in double quotes with ", \ and control bytes escaped, cut to 80 bytes plus "...":
// how every parser here shows input back.
[[nodiscard]] std::string quote_input(std::string_view text);

// A network: an address block written as "198.18.0.0/15", "2001:db8::/32" or one address.
struct IpNetwork {
  asio::ip::address address;  // the network address (host bits clear)
  unsigned prefix = 0;
  [[nodiscard]] AddressRange range() const { return block_of(address, prefix); }
  [[nodiscard]] bool contains(const asio::ip::address& a) const { return range().contains(a); }
  [[nodiscard]] std::string to_string() const;  // "198.18.0.0/15", "::1/128"
  bool operator==(const IpNetwork&) const = default;
};

namespace grammar {

// The strictness argument of parse_network: what host bits after a /prefix mean.
enum class HostBits : std::uint8_t {
  reject,  // authorizations, --scope, policy keys: a network is written as its network address
  ignore,  // Nmap targets: "198.18.0.5/24" is the /24 around the address
};

// An address or CIDR block. IPv6 zone ids ("fe80::1%eth0") are refused: a scope names an
// interface, not addresses. An IPv4-mapped block (::ffff:0:0/96 or inside it) is the IPv4
// block it maps: the scanner sees IPv4 addresses, and "::ffff:0.0.0.0/96" is all of IPv4.
[[nodiscard]] IpNetwork parse_network(std::string_view text, HostBits host_bits);

// A DNS name as targets and policy keys may use: labels of 1-63 letters, digits, '-' or '_'
// (not starting with '-') joined by dots, 253 characters at most, one trailing dot allowed.
// All-numeric dotted names are not hostnames (they are malformed addresses).
[[nodiscard]] bool is_hostname(std::string_view text);

// One Nmap target expression.
struct TargetExpression {
  enum class Kind : std::uint8_t { range, octets, hostname } kind = Kind::range;
  AddressRange range;                      // range: the block; octets: the bounding range
  std::array<std::bitset<256>, 4> octets;  // octets: the allowed values of each octet
  std::string hostname;                    // hostname
  std::optional<unsigned> prefix;          // hostname: "db.example/24" -> 24 (0-128)
};
// An address, a CIDR block (host bits ignored), an IPv4 octet-range expression
// ("198.18.0.1-20", "198.18.0-1.*", "10.0.0.1,3") or a hostname with an optional /prefix.
// White space around it is ignored.
[[nodiscard]] TargetExpression parse_target(std::string_view text);

// Nmap -p syntax: "22,80,1000-2000", open ranges ("-1024" starts at 1, "60000-" ends at
// 65535, "-" is 1-65535) and sticky protocol qualifiers ("T:22,80,U:53": 80 is TCP too).
// Unqualified ports are kept apart: which protocols they mean is the caller's choice.
struct PortSelection {
  std::bitset<65536> unqualified;
  std::bitset<65536> tcp;  // after T:
  std::bitset<65536> udp;  // after U:
  // The ports a scan of `proto` takes when unqualified ports apply to it.
  [[nodiscard]] std::bitset<65536> of(Proto proto) const {
    return unqualified | (proto == Proto::tcp ? tcp : udp);
  }
};
[[nodiscard]] PortSelection parse_port_list(std::string_view text);

// The pieces of `text` between `sep`s, as written (empty pieces included).
[[nodiscard]] std::vector<std::string_view> split(std::string_view text, char sep);
// `text` without leading and trailing white space.
[[nodiscard]] std::string_view trim(std::string_view text);

// A decimal number in [lo, hi], ASCII digits only (no sign, space or "0x"); nullopt otherwise.
[[nodiscard]] std::optional<unsigned long> decimal(std::string_view digits, unsigned long lo,
                                                   unsigned long hi);

}  // namespace grammar
}  // namespace portvigil
