// The vocabulary every module shares: protocols, Nmap's port states and reason words, the
// per-host result and the sink a scan engine streams finished hosts into.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/address.hpp>

#include "portvigil/common/service.hpp"

namespace portvigil {

enum class Proto : std::uint8_t { tcp, udp };

// Nmap's six port states, in Nmap's spelling (see name()).
enum class PortState : std::uint8_t {
  open,
  closed,
  filtered,
  unfiltered,
  open_filtered,
  closed_filtered,
};
inline constexpr std::size_t kPortStateCount = 6;

// Why a port got its state; spelled as Nmap's portreasons.cc does.
enum class Reason : std::uint8_t {
  unknown,
  syn_ack,
  reset,
  conn_refused,
  no_response,
  host_unreach,
  net_unreach,
  proto_unreach,
  port_unreach,
  admin_prohibited,
  host_prohibited,
  net_prohibited,
  udp_response,
  local_prohibited,  // our own host's firewall refused to send (EPERM/EACCES)
  echo_reply,        // host discovery: an ICMP/ICMPv6 echo reply
  user_set,          // host discovery skipped (-Pn): the host is assumed up
  arp_response,      // host discovery: an ARP reply (on-link IPv4)
  nd_response,       // host discovery: a neighbour advertisement (on-link IPv6)
};
inline constexpr std::size_t kReasonCount = 18;

enum class Technique : std::uint8_t { connect, syn, fin, null, xmas, ack, udp };

[[nodiscard]] std::string_view name(Proto proto);
[[nodiscard]] std::string_view name(PortState state);      // "open|filtered"
[[nodiscard]] std::string_view name(Reason reason);        // "syn-ack"
[[nodiscard]] std::string_view name(Technique technique);  // Nmap scaninfo type: "connect", "syn"
[[nodiscard]] std::string_view cli_flag(Technique technique);  // "-sT"
[[nodiscard]] Proto proto_of(Technique technique);
// The states a technique can report for a port, in PortState order.
[[nodiscard]] std::span<const PortState> reported_states(Technique technique);

// The facts about one scan technique. They live in one table (scan_model.cpp) that the CLI,
// the configuration, the storage codec, the agent and the engines all read, so adding a
// technique is one row here plus its Probe (scanner/src/raw/probe.cpp).
struct TechniqueInfo {
  Technique technique;
  std::string_view name;      // configuration and storage value, Nmap scaninfo type: "syn"
  std::string_view cli_flag;  // "-sS"
  std::string_view help;      // the CLI's description of the flag
  Proto proto;
  bool needs_raw_socket;  // CAP_NET_RAW (every technique but connect)
  // What silence after every retransmission means (reason no-response).
  PortState silence;
  // A live host answers on every port it does not filter (open and closed alike), so total
  // silence means down. False for FIN/NULL/Xmas and UDP, to which an open port is silent.
  bool silence_means_down;
  // A re-probe hears back from an open port (FIN/NULL/Xmas do not: open is their silence).
  bool open_port_answers;
  // connect and SYN: open, closed, filtered; FIN/NULL/Xmas: closed, filtered, open|filtered;
  // ACK: filtered, unfiltered; UDP: open, closed, filtered, open|filtered. The agent
  // pre-creates one change counter per pair of them, so increase() sees every first change.
  std::span<const PortState> reported;
};
[[nodiscard]] const TechniqueInfo& technique_info(Technique technique);
// Whether the technique can find TCP ports open (connect and SYN): what service
// identification needs.
[[nodiscard]] bool finds_open_tcp_ports(Technique technique);
[[nodiscard]] std::span<const TechniqueInfo> all_techniques();      // in Technique order
[[nodiscard]] std::span<const std::string_view> technique_names();  // "connect", "syn", ...
[[nodiscard]] std::optional<Technique> parse_technique(std::string_view name);

// A reply from the host itself (or a firewall that answers for it) proves it is there:
// anything but silence, a router's "host/network unreachable", or our own kernel refusing
// to send (a failed neighbour, our firewall). Host discovery and the agent's down-host rule
// both read it.
[[nodiscard]] bool proves_host_up(Reason reason);

[[nodiscard]] std::optional<Proto> parse_proto(std::string_view text);
[[nodiscard]] std::optional<PortState> parse_port_state(std::string_view text);
[[nodiscard]] std::optional<Reason> parse_reason(std::string_view text);

struct PortResult {
  std::uint16_t port = 0;
  Proto proto = Proto::tcp;
  PortState state = PortState::filtered;
  Reason reason = Reason::unknown;
  std::uint8_t ttl = 0;  // reply TTL / hop limit when known, else 0
};

// Host discovery's verdict, Nmap's host status. `unknown` when discovery did not run (-Pn)
// or heard nothing from a host that was port-scanned all the same (ScanPlan's
// scan_even_if_silent: the agent's known hosts).
enum class HostStatus : std::uint8_t { unknown, up, down };

struct HostResult {
  asio::ip::address address;
  std::string hostname;           // as the user wrote it; empty for address literals
  std::vector<PortResult> ports;  // one entry per scanned port, sorted by (proto, port)
  bool complete = true;           // false: host timeout, interrupted, or refused by scope
  // True when the engine could not trust silence: replies were still arriving on the last
  // retransmission (loss, the target's ICMP/RST rate limit). Unanswered ports then carry
  // the technique's no-reply state, which must not be read as a change.
  bool inconclusive = false;
  // Paced UDP: ports left out of `ports` because the time budget ran out before they were
  // verified (the host is inconclusive; the ports it lists are verified).
  std::size_t unverified_ports = 0;
  std::string note;               // why incomplete/inconclusive, e.g. "host timeout after 30s"
  bool refused_by_scope = false;  // not probed at all: no authorization covers the address
  std::chrono::duration<double> elapsed{0};
  HostStatus status = HostStatus::unknown;
  // Why: echo-reply, syn-ack, reset, ... for up; no-response for down. Down hosts have no
  // ports: none were probed.
  Reason status_reason = Reason::unknown;
  // Service identification (scan --identify): the open TCP ports it read, sorted by port.
  std::vector<PortService> services;
};

// The state most of a host's ports are in for one protocol: Nmap hides those behind a
// "Not shown: N closed tcp ports (conn-refused)" line once there are more than kMinCollapsed.
struct MajorityState {
  PortState state = PortState::closed;
  std::size_t count = 0;
  // Reason tally for the hidden ports, largest first; entries with zero count are omitted.
  std::vector<std::pair<Reason, std::size_t>> reasons;
  static constexpr std::size_t kMinCollapsed = 26;
  [[nodiscard]] bool collapsed() const { return count >= kMinCollapsed; }
};
// Empty optional when the host has no port of that protocol.
[[nodiscard]] std::optional<MajorityState> majority_state(const HostResult& host, Proto proto);

// Paced UDP (-sU): hosts limit the ICMP errors they send to one peer (Linux: a burst of 6,
// then one per net.ipv4.icmp_ratelimit = 1 s; IPv6 alike). After one fast pass that spends
// the burst, every port still silent is probed again no faster than one probe per `period`
// per host, one probe in flight per host and many hosts interleaved, so each of those probes
// finds a token in the host's limiter and its silence means what it says. The period grows
// (x1.25, up to kMaxUdpPacePeriod) each time a paced silence is contradicted by a later error
// (a slower limiter, or loss).
inline constexpr std::chrono::duration<double> kDefaultUdpPacePeriod{1.005};
inline constexpr std::chrono::duration<double> kMinUdpPacePeriod{0.01};
inline constexpr std::chrono::duration<double> kMaxUdpPacePeriod{8.0};
struct UdpPacing {
  bool enabled = false;
  std::chrono::duration<double> period = kDefaultUdpPacePeriod;  // where learning starts
};

struct ScanCounters {
  std::uint64_t probes_sent = 0;
  std::uint64_t retransmissions = 0;
  std::uint64_t responses = 0;
  std::uint64_t refused_by_scope = 0;  // probes the engine would not send: outside scope
  std::uint64_t capture_drops = 0;     // replies the capture buffer lost (raw engine)
  // Sends the kernel would not take at once (ENOBUFS/EAGAIN: typically the neighbour queue
  // of an address that does not resolve). The engine never waits on them: the probe is
  // tried again by the next pass, and one never sent is reported in its host's note.
  std::uint64_t send_deferred = 0;
  // Raw sends the kernel refused for good: EHOSTUNREACH once an on-link address failed to
  // resolve (the pair reads filtered, host-unreach, as from a router).
  std::uint64_t send_refused_locally = 0;
  // Paced UDP: probes of the fast first pass that drew nothing while a later, paced probe
  // of the same port drew an ICMP error: the target's error rate limit swallowed them.
  std::uint64_t rate_limited_probes = 0;
  double effective_rate = 0;  // probes per second over the whole scan
};

struct ScanInfo {
  Technique technique = Technique::connect;
  std::string command_line;  // the args attribute of nmaprun
  std::chrono::system_clock::time_point start;
  std::string tcp_ports;  // canonical port list ("1-65535") for scaninfo services
  std::string udp_ports;
  std::size_t tcp_port_count = 0;
  std::size_t udp_port_count = 0;
};

struct ScanSummary {
  std::chrono::system_clock::time_point end;
  std::chrono::duration<double> elapsed{0};
  std::size_t hosts_total = 0;
  // Hosts host discovery found up, or (without discovery) that answered at least one probe.
  std::size_t hosts_up = 0;
  ScanCounters counters;
  bool interrupted = false;  // SIGINT/SIGTERM or --host-timeout cut the scan short
  std::string error;         // non-empty when the scan failed
};

// Engines stream results: begin once, host() as each host finishes, end once.
class ReportSink {
 public:
  virtual ~ReportSink() = default;
  virtual void begin(const ScanInfo& info) = 0;
  virtual void host(const HostResult& host) = 0;
  virtual void end(const ScanSummary& summary) = 0;
};

// Fans one stream out to several sinks (table + XML + JSON in one run).
class TeeSink final : public ReportSink {
 public:
  void add(ReportSink& sink) { sinks_.push_back(&sink); }
  void begin(const ScanInfo& info) override;
  void host(const HostResult& host) override;
  void end(const ScanSummary& summary) override;

 private:
  std::vector<ReportSink*> sinks_;
};

// What identifies a host to the store, the metrics' `host` label and the shards: the name
// as the user wrote it for a hostname target, else the address in canonical text.
[[nodiscard]] std::string host_key(const asio::ip::address& address, std::string_view hostname);

}  // namespace portvigil
