// Private helpers shared by the report writers: escaping, time and number formatting, and
// the Nmap wording bits (reason plurals, "1 IP address (1 host up)") every format repeats.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "portvigil/common/scan_model.hpp"

namespace portvigil::report {

inline constexpr std::array<Proto, 2> kProtos{Proto::tcp, Proto::udp};

// Escapes text for an XML attribute value or element content. Invalid UTF-8 bytes and
// control characters XML 1.0 cannot carry become the literal text "\xHH".
[[nodiscard]] std::string xml_escape(std::string_view text);

// A quoted JSON string. Control characters become \u00XX; valid UTF-8 passes through and
// bytes that are not valid UTF-8 become \ufffd, so the document stays valid JSON.
[[nodiscard]] std::string json_string(std::string_view text);

// For line-oriented text (table, grepable): control characters, which could break a line
// or drive a terminal, become the literal text "\xHH".
[[nodiscard]] std::string printable(std::string_view text);

using TimePoint = std::chrono::system_clock::time_point;
[[nodiscard]] std::int64_t unix_seconds(TimePoint t);
[[nodiscard]] std::string ctime_utc(TimePoint t);             // "Mon Nov 23 12:00:00 2026" (UTC)
[[nodiscard]] std::string iso8601_utc(TimePoint t);           // "2026-11-23T12:00:00Z"
[[nodiscard]] std::string minutes_utc(TimePoint t);           // "2026-11-23 12:00 UTC"
[[nodiscard]] std::string fixed(double value, int decimals);  // "1.23"; "0" if not finite

// "1-21,23-79,81": ascending port list compressed to ranges, as Nmap's extrareasons ports.
[[nodiscard]] std::string port_ranges(const std::vector<std::uint16_t>& sorted_ports);

// Nmap's reason word for a count: singular for 1, plural ("resets", "no-responses",
// "host-unreaches") otherwise; "conn-refused" has no plural.
[[nodiscard]] std::string reason_word(Reason reason, std::size_t count);

[[nodiscard]] std::string address_text(const HostResult& host);
[[nodiscard]] std::string_view family(const HostResult& host);  // "ipv4" / "ipv6"
// "name (addr)" when the user gave a name, else "addr".
[[nodiscard]] std::string host_label(const HostResult& host);
// Reports list hosts that are up or were scanned without discovery, never down ones (Nmap
// counts them in the summary line only).
[[nodiscard]] inline bool listed(const HostResult& host) {
  return host.status != HostStatus::down;
}
// Nmap's host status reason: what discovery heard, else "user-set" (-Pn).
[[nodiscard]] inline std::string_view status_reason(const HostResult& host) {
  return host.status == HostStatus::up ? name(host.status_reason) : "user-set";
}

// "1 IP address (1 host up) scanned in 1.23 seconds"
[[nodiscard]] std::string done_summary(const ScanSummary& summary);

// Ports of one (protocol, state) the report does not list one by one.
struct HiddenGroup {
  Proto proto = Proto::tcp;
  PortState state = PortState::closed;
  std::size_t count = 0;
  std::vector<std::pair<Reason, std::size_t>> reasons;  // largest first
};

// Each protocol's majority state, collapsed or not (the JSON report's split). Ordered
// tcp, udp.
[[nodiscard]] std::vector<HiddenGroup> majority_groups(const HostResult& host);

// True when `port` belongs to one of `groups`.
[[nodiscard]] bool in_groups(const std::vector<HiddenGroup>& groups, const PortResult& port);

// --open: every port not open, open|filtered or unfiltered, grouped by (protocol, state).
[[nodiscard]] std::vector<HiddenGroup> non_open_groups(const HostResult& host);
// What the table, XML and grepable reports leave out of their port lists: every state but
// open with more than 25 ports (Nmap's ignored states), or with --open every state that
// is not open, open|filtered or unfiltered.
[[nodiscard]] std::vector<HiddenGroup> hidden_groups(const HostResult& host, bool open_only);

// Service name for the report, "" when unknown.
[[nodiscard]] std::string_view service_of(const PortResult& port);

// What service identification read on `port` of `host`; nullptr when it did not run there.
[[nodiscard]] const ServiceIdentity* identity_of(const HostResult& host, const PortResult& port);

// The SERVICE column/attribute: the identified protocol, else the port table's name.
[[nodiscard]] std::string service_name_of(const HostResult& host, const PortResult& port);

}  // namespace portvigil::report
