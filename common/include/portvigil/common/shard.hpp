// Which hosts an agent owns when several share the work ([agent] shard = "I/N"). A host
// belongs to shard hashmod(key, N), computed exactly as Prometheus' hashmod relabel action
// computes it, so one rule answers "which agent scans this host" in the agent and in
// relabelling alike. The key is the host's `host` label: the name as written in the job's
// targets for a hostname target, else the address in its canonical text form.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace portvigil {

// Prometheus' hashmod: the MD5 digest of `value`, its last 8 bytes read as a big-endian
// unsigned integer, modulo `modulus` (> 0).
[[nodiscard]] std::uint64_t prometheus_hashmod(std::string_view value, std::uint64_t modulus);

// Shard `index` of `count`, index counted from 0 as hashmod values are. The default is the
// whole: one agent owns every host.
struct Shard {
  std::uint32_t index = 0;
  std::uint32_t count = 1;

  [[nodiscard]] bool whole() const { return count == 1; }
  [[nodiscard]] bool owns(std::string_view host_key) const {
    return whole() || prometheus_hashmod(host_key, count) == index;
  }
  [[nodiscard]] std::string text() const;  // "I/N"
  bool operator==(const Shard&) const = default;
};

inline constexpr std::uint32_t kMaxShards = 1u << 16;

// "I/N" with 0 <= I < N <= kMaxShards; throws InputError quoting the text otherwise.
[[nodiscard]] Shard parse_shard(std::string_view text);

// What identifies one change across the replicas of a shard, so that a consumer of both
// event logs can drop the second copy: the first 16 bytes of SHA-256, in hex, over the
// fields joined by NUL bytes. `kind` is the event kind ("port", "host-appeared", ...),
// `proto`/`port` are "" and 0 for host events, and `previous` is the change_id of this
// job's previous event of the same host and port (of the same host, for host events), or
// the host's seed before the first. A chain: replicas that saw the same history agree, and
// once they have seen different histories their ids never meet again.
[[nodiscard]] std::string change_id(std::string_view job, std::string_view host,
                                    std::string_view kind, std::string_view proto,
                                    std::uint16_t port, std::string_view from, std::string_view to,
                                    std::string_view previous);

}  // namespace portvigil
