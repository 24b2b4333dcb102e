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

// Everything one probe was built from. A reply is taken as an answer only when it proves
// that it answers exactly this probe (see the table in probe.cpp).
struct ProbeKey {
  IpAddr src;  // our address
  IpAddr dst;  // the target
  std::uint16_t dport = 0;
  std::uint32_t cookie = 0;
  std::uint16_t sport_base = 0;
};

// UDP probes leave from one of kUdpSourcePortSpan ports above the base, chosen by the
// cookie's low 14 bits, because a UDP reply has no other field that can echo a secret. A
// reply from a payload port must in addition echo the cookie bits udp_payloads.cpp stamps
// into the protocol's identifier; ICMP errors must quote the probe's IP ID (IPv6: flow
// label), chosen by the cookie's high 16 bits. The base + span must not pass 65535.
inline constexpr unsigned kUdpSourcePortBits = 14;
inline constexpr std::uint32_t kUdpSourcePortSpan = 1u << kUdpSourcePortBits;  // 16384
[[nodiscard]] constexpr std::uint16_t udp_source_port(std::uint32_t cookie,
                                                      std::uint16_t sport_base) {
  return static_cast<std::uint16_t>(sport_base + (cookie & (kUdpSourcePortSpan - 1)));
}
// The IPv4 identification (IPv6: low bits of the flow label) of a UDP probe. Never 0: Linux
// replaces a zero IP ID of a header-included packet with its own.
[[nodiscard]] constexpr std::uint16_t udp_probe_ip_id(std::uint32_t cookie) {
  const auto id = static_cast<std::uint16_t>(cookie >> 16);
  return id == 0 ? 1 : id;
}

// The packet side of a technique; its facts (protocol, what silence means, ...) are in
// technique_info(technique) (common/scan_model.hpp).
struct Probe {
  Technique technique;
  std::uint8_t tcp_flags;  // flags of the probe segment (TCP techniques)
  // Builds the probe for one (target, port). Returns the packet length.
  std::size_t (*build)(const ProbeFields& base, std::uint32_t cookie, std::span<std::uint8_t> out,
                       std::uint16_t sport_base);
  // Does `reply` prove that it answers the probe `key` describes? Replies that cannot carry
  // the proof (a bare SYN, a RST without ACK to a SYN/FIN/NULL/Xmas probe) are never taken.
  bool (*validate)(const Reply& reply, const ProbeKey& key);
  // What a validated reply means.
  Observation (*classify)(const Reply& reply);
  // Host discovery only: the "port" kNeighborPort is an ARP request (IPv4) or a neighbour
  // solicitation (IPv6), sent as an Ethernet frame to on-link targets (build() does not
  // make it).
  bool neighbor = false;
};

// The explicit registry: one entry per technique except connect, which has its own engine.
[[nodiscard]] const Probe* probe_for(Technique technique);

// Host discovery as a probe: ping_ports() are its "ports", 0 (kPingEchoPort) an ICMP echo
// request, 1 (kNeighborPort) an ARP request or IPv6 neighbour solicitation for on-link
// targets, 80 a TCP ACK and 443 a TCP SYN, as Nmap's default raw ping. A host is up when any of
// them is answered (table in probe.cpp).
inline constexpr std::uint16_t kPingEchoPort = 0;
[[nodiscard]] const Probe& ping_probe();
[[nodiscard]] std::span<const std::uint16_t> ping_ports();  // sorted

// Maps an ICMP/ICMPv6 destination-unreachable code to Nmap's reason word.
[[nodiscard]] Reason unreachable_reason(const Reply& reply);
// True for ICMP port unreachable (v4 3/3, v6 1/4).
[[nodiscard]] bool is_port_unreachable(const Reply& reply);

// The BPF program text the probe needs: replies to our source port(s) and ICMP errors.
[[nodiscard]] std::string capture_filter(const Probe& probe, std::uint16_t sport_base);

}  // namespace portvigil::raw
