// A Probe is one scan technique as a small table of pure functions, after ZMap's probe
// modules: what to send, whether a captured reply answers it, what the reply means, and
// what silence means. The raw engine drives every probe the same way.
#pragma once

#include <cstdint>
#include <string>

#include "packet.hpp"
#include "portvigil/common/scan_model.hpp"

namespace portvigil::raw {

struct Observation {
  PortState state = PortState::filtered;
  Reason reason = Reason::unknown;
};

// Keyed hash of a probe's addresses and ports (SipHash-2-4), so replies can be
// authenticated without per-probe state, as Masscan's SYN cookies do.
struct CookieKey {
  std::uint64_t k0 = 0;
  std::uint64_t k1 = 0;
  [[nodiscard]] static CookieKey random();
};
[[nodiscard]] std::uint32_t cookie(const CookieKey& key, const IpAddr& src, const IpAddr& dst,
                                   std::uint16_t dport);

// Source ports: TCP probes use one port; UDP probes spread over 256 ports from the base
// (chosen by the cookie) because UDP has no sequence number to carry it.
inline constexpr std::uint16_t kUdpSourcePortSpan = 256;

struct Probe {
  Technique technique;
  Proto proto;
  std::uint8_t tcp_flags;  // flags of the probe segment (TCP techniques)
  Observation no_reply;    // what silence after every retransmission means
  // Builds the probe for one (target, port). Returns the packet length.
  std::size_t (*build)(const ProbeFields& base, std::uint32_t cookie, std::span<std::uint8_t> out,
                       std::uint16_t sport_base);
  // Is `reply` (already matched to this target and port) an answer to the probe that
  // carried `cookie` from `sport_base`?
  bool (*validate)(const Reply& reply, std::uint32_t cookie, std::uint16_t sport_base);
  // What a validated reply means.
  Observation (*classify)(const Reply& reply);
};

// The explicit registry: one entry per technique except connect, which has its own engine.
[[nodiscard]] const Probe* probe_for(Technique technique);

// Maps an ICMP/ICMPv6 destination-unreachable code to Nmap's reason word.
[[nodiscard]] Reason unreachable_reason(const Reply& reply);
// True for ICMP port unreachable (v4 3/3, v6 1/4).
[[nodiscard]] bool is_port_unreachable(const Reply& reply);

// The BPF program text the probe needs: replies to our source port(s) and ICMP errors.
[[nodiscard]] std::string capture_filter(const Probe& probe, std::uint16_t sport_base);

}  // namespace portvigil::raw
