// Raw packet building and parsing for the stateless engine. Everything here is a pure
// function on bytes: no sockets, no allocation. Parsers treat every byte as hostile and
// bounds-check before each read; they are fuzzed (tests/fuzz).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "portvigil/common/scan_model.hpp"

namespace portvigil::raw {

// An address of either family in network byte order; IPv4 uses the first 4 bytes.
struct IpAddr {
  std::array<std::uint8_t, 16> bytes{};
  bool v6 = false;
  friend bool operator==(const IpAddr&, const IpAddr&) = default;
};

[[nodiscard]] IpAddr to_ip(const asio::ip::address& a);
[[nodiscard]] asio::ip::address to_asio(const IpAddr& a);

namespace tcp_flag {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t psh = 0x08;
inline constexpr std::uint8_t ack = 0x10;
inline constexpr std::uint8_t urg = 0x20;
}  // namespace tcp_flag

inline constexpr std::size_t kMaxProbeSize = 1500;

// Everything that varies between two probes of one scan.
struct ProbeFields {
  IpAddr src;
  IpAddr dst;
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  std::uint32_t seq = 0;       // TCP sequence number
  std::uint32_t ack = 0;       // TCP acknowledgment number
  std::uint8_t tcp_flags = 0;  // for TCP probes
  std::uint16_t ip_id = 0;     // IPv4 identification / IPv6 flow label low bits
  std::uint8_t ttl = 64;
  std::span<const std::uint8_t> udp_payload;
};

// Builds a complete IPv4/IPv6 + TCP packet (with an MSS option when SYN is set). Returns
// the length written, or 0 when `out` is too small.
std::size_t build_tcp(const ProbeFields& f, std::span<std::uint8_t> out);
// Builds a complete IPv4/IPv6 + UDP packet carrying f.udp_payload.
std::size_t build_udp(const ProbeFields& f, std::span<std::uint8_t> out);
// Builds an ICMP echo request (v4 type 8, v6 type 128) or, with `reply`, an echo reply (v4
// type 0, v6 type 129) without data (RFC 792 / RFC 4443 section 4).
std::size_t build_echo(const ProbeFields& f, bool reply, std::uint16_t id, std::uint16_t sequence,
                       std::span<std::uint8_t> out);

// RFC 1071 one's-complement sum helpers.
[[nodiscard]] std::uint16_t internet_checksum(std::span<const std::uint8_t> data,
                                              std::uint32_t initial = 0);

// What a captured reply says, reduced to what classification needs.
struct Reply {
  // echo_reply: ICMP type 0 / ICMPv6 type 129, with sport = dport = 0 (no ports) and the
  // identifier and sequence number in echo_id / echo_sequence.
  // arp_reply: an ARP reply (Ethernet only); src = the sender's IPv4 address, dst = the
  // address it answers, sport = dport = kNeighborPort, the sender's MAC in arp_mac.
  // nd_advert: an ICMPv6 neighbour advertisement (RFC 4861 4.4) with the Solicited flag and
  // hop limit 255 (so it was sent on our link); src = its target address (the address it
  // speaks for), dst = the IPv6 destination, sport = dport = kNeighborPort.
  enum class Kind : std::uint8_t { tcp, udp, unreachable, echo_reply, arp_reply, nd_advert, other };
  Kind kind = Kind::other;
  IpAddr src;  // who sent the reply (the target, or a router for ICMP)
  IpAddr dst;
  std::uint8_t ttl = 0;
  // tcp/udp: ports of the reply itself. unreachable: ports of the quoted probe.
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  std::uint32_t seq = 0;  // tcp: reply seq; unreachable+tcp: quoted probe seq
  std::uint32_t ack = 0;
  std::uint8_t flags = 0;
  // unreachable only
  std::uint8_t icmp_type = 0;
  std::uint8_t icmp_code = 0;
  std::uint8_t quoted_proto = 0;  // 6 tcp, 17 udp
  IpAddr quoted_src;
  IpAddr quoted_dst;
  bool quoted_has_seq = false;  // the quote held the 4 bytes of TCP seq
  // The quoted probe's IPv4 identification, or its IPv6 flow label.
  std::uint32_t quoted_ip_id = 0;
  // unreachable + udp: the quoted UDP length and checksum, when the quote held all 8 bytes.
  bool quoted_has_udp_header = false;
  std::uint16_t quoted_udp_len = 0;
  std::uint16_t quoted_udp_sum = 0;
  std::array<std::uint8_t, 6> arp_mac{};  // arp_reply only
  std::uint16_t echo_id = 0;              // echo_reply only
  std::uint16_t echo_sequence = 0;
  // udp only: the datagram's payload, a view into the parsed packet (valid while it is).
  std::span<const std::uint8_t> payload;
};

// Parses an IPv4 or IPv6 packet (no link layer). False for anything malformed or of no
// interest; `out` is then unspecified.
bool parse_ip(std::span<const std::uint8_t> packet, Reply& out);

// Link-layer types we read (the DLT_* values libpcap reports).
inline constexpr int kDltNull = 0;
inline constexpr int kDltEthernet = 1;
inline constexpr int kDltRaw = 12;
inline constexpr int kDltRaw2 = 101;  // LINKTYPE_RAW
inline constexpr int kDltLinuxSll = 113;
inline constexpr int kDltLinuxSll2 = 276;

// Strips the link layer and parses the IP packet inside (or, on Ethernet, an ARP reply).
bool parse_frame(std::span<const std::uint8_t> frame, int datalink, Reply& out);

// The "port" host discovery's neighbour probe (an ARP request, or for IPv6 a neighbour
// solicitation) and its reply are filed under (probe.hpp).
inline constexpr std::uint16_t kNeighborPort = 1;
using MacAddress = std::array<std::uint8_t, 6>;
// Builds a broadcast Ethernet frame with an ARP request (RFC 826) from `our_mac`/`our_ip`
// asking for `target`. Returns the length (42), or 0 when `out` is too small or an address
// is not IPv4.
std::size_t build_arp_request(const MacAddress& our_mac, const IpAddr& our_ip, const IpAddr& target,
                              std::span<std::uint8_t> out);
// An Ethernet frame with an ICMPv6 neighbour solicitation (RFC 4861 4.3) from `our_mac` /
// `our_ip` for `target`, sent to its solicited-node multicast address (hop limit 255, with
// our link-layer address option). Returns the length (86), or 0 when `out` is too small or
// an address is not IPv6.
std::size_t build_neighbor_solicitation(const MacAddress& our_mac, const IpAddr& our_ip,
                                        const IpAddr& target, std::span<std::uint8_t> out);
// The solicited neighbour advertisement `from` (owning `from_mac`) sends back: tests and the
// fake network.
std::size_t build_neighbor_advertisement(const MacAddress& from_mac, const IpAddr& from,
                                         const MacAddress& to_mac, const IpAddr& to,
                                         std::span<std::uint8_t> out);
// The ARP reply `from` (owning `from_mac`) would send to that request: tests and the fake
// network.
std::size_t build_arp_reply(const MacAddress& from_mac, const IpAddr& from,
                            const MacAddress& to_mac, const IpAddr& to,
                            std::span<std::uint8_t> out);

}  // namespace portvigil::raw

namespace portvigil::raw {

// Builds an ICMP (v4 type 3) or ICMPv6 (type 1) destination-unreachable packet from `from`
// to `to` quoting the start of `offending` (RFC 792 / RFC 4443). Used by the fake network
// and tests to answer like a real host.
std::size_t build_unreachable(const IpAddr& from, const IpAddr& to, std::uint8_t code,
                              std::span<const std::uint8_t> offending, std::span<std::uint8_t> out);

}  // namespace portvigil::raw
