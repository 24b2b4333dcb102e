// The baseline of one (job, host) and the pure diff of a new scan against it. No I/O here:
// the Store loads and saves HostSnapshots, the diff only compares.
//
// A snapshot is stored compactly, the way Nmap prints a host: per protocol, the set of
// ports that were scanned, the state most of them were in ("usual", e.g. 65532 closed)
// and an exception list of the ports in any other state. A host with three open ports out
// of 65535 is three exception rows, not 65535.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "portvigil/common/scan_model.hpp"

namespace portvigil {

struct PortObservation {
  PortState state = PortState::closed;
  Reason reason = Reason::unknown;
  friend bool operator==(const PortObservation&, const PortObservation&) = default;
};

// Inclusive range; lists of them are sorted, disjoint and non-adjacent.
struct PortRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;
  friend bool operator==(const PortRange&, const PortRange&) = default;
};

struct ProtoSnapshot {
  Proto proto = Proto::tcp;
  // A change of technique (SYN -> connect) changes what states mean, so the Store treats
  // the protocol as having no baseline when it differs from the new scan's technique. The
  // Store stamps the scan's technique here when it saves a snapshot.
  Technique technique = Technique::connect;
  std::vector<PortRange> scanned;
  // Ports in `usual.state` report `usual.reason`, the most common reason among them: a
  // reason-only difference never makes an exception row, so per-port reasons of
  // usual-state ports are not kept.
  PortObservation usual;
  std::vector<std::pair<std::uint16_t, PortObservation>> exceptions;  // sorted by port

  [[nodiscard]] bool scanned_port(std::uint16_t port) const;
  [[nodiscard]] std::size_t port_count() const;
  // Empty when the port was not in the scanned set.
  [[nodiscard]] std::optional<PortObservation> state_of(std::uint16_t port) const;
};

struct HostSnapshot {
  // False for a host that never had a complete scan: its first one is a silent baseline.
  bool exists = false;
  std::int64_t scan_id = 0;  // the scan this state came from; 0 if unknown or pruned
  std::chrono::system_clock::time_point updated{};
  std::vector<ProtoSnapshot> protos;  // at most one per Proto, in Proto order

  [[nodiscard]] const ProtoSnapshot* find(Proto proto) const;
  [[nodiscard]] std::optional<PortObservation> state_of(Proto proto, std::uint16_t port) const;
  // Every open port, by (proto, port).
  [[nodiscard]] std::vector<std::pair<Proto, std::uint16_t>> open_ports() const;

  // The compact form of one host's result (exists = true). Duplicate ports: the last wins.
  [[nodiscard]] static HostSnapshot from_result(const HostResult& host, Technique technique);
};

struct PortChange {
  Proto proto = Proto::tcp;
  std::uint16_t port = 0;
  PortState from = PortState::closed;  // meaningless when from_absent
  Reason from_reason = Reason::unknown;
  PortState to = PortState::closed;
  Reason to_reason = Reason::unknown;
  // The port of a host first seen after its job's baseline: it had no earlier state, it was
  // "absent" (spelt so in events, history and the change counter's `from` label).
  bool from_absent = false;
  friend bool operator==(const PortChange&, const PortChange&) = default;
};

// "absent" for a port of a host that appeared, else the Nmap name of `from`.
[[nodiscard]] std::string_view from_name(const PortChange& change);
inline constexpr std::string_view kAbsent = "absent";

// The changes of state between `baseline` and `scan`, in scan order. Returns nothing when
// there is no baseline (silent first scan, like osquery's counter 0) or the host scan is
// incomplete (not scanned must never read as closed). A port is compared only when both
// sides scanned it: ports that enter or leave the scanned set, and protocols missing from
// either side, are not changes. A different reason with the same state is not a change.
[[nodiscard]] std::vector<PortChange> diff_host(const HostSnapshot& baseline,
                                                const HostResult& scan);

// The same comparison between two compact snapshots, for results already reduced with
// from_result() (Store::commit_scan's ScannedHost path). `after.exists == false` stands for
// an incomplete host. Changed ports that fall in `after`'s usual state report its usual
// reason. Cost: O(exception rows) when both sides share a usual state, else O(ports).
[[nodiscard]] std::vector<PortChange> diff_snapshots(const HostSnapshot& before,
                                                     const HostSnapshot& after);

// `base` with the ports `update` scanned replaced by update's state, for a scan that
// verified only some of a host's ports (udp-coverage): the others keep their state until
// they are verified again. A protocol whose technique differs (or that `base` lacks) is
// update's alone; one update lacks is base's. Reasons of base's usual-state ports become
// its usual reason, as in any compact snapshot. Without a base, `update` itself. `keep`
// (sorted; empty = all): base's ports of update's protocols that are not in it are dropped,
// so ports a job no longer scans do not linger.
[[nodiscard]] HostSnapshot merge_snapshots(const HostSnapshot& base, const HostSnapshot& update,
                                           std::span<const std::uint16_t> keep = {});

// The name a host is stored under: what the user wrote, else the address (common's
// host_key).
[[nodiscard]] std::string host_key(const HostResult& host);

}  // namespace portvigil
