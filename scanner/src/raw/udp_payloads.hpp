#pragma once

// Protocol-specific UDP probe payloads for the raw UDP scan (-sU).
//
// Many UDP services silently drop an empty datagram, so for a port with no answer the scanner
// can only say "open|filtered". Sending a well-formed request of the protocol usually assigned
// to the port makes a live service answer, which proves the port open.
//
// Every payload was written by hand from the protocol specification cited next to it in
// udp_payloads.cpp (see also docs/udp-payloads.md). None is taken from Nmap, masscan or zmap
// data files.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace portvigil::raw {

// Payload to send to a UDP port; an empty span means "send an empty datagram".
// The bytes have static storage duration; the span stays valid for the program's lifetime.
std::span<const std::uint8_t> udp_payload(std::uint16_t port);

// The largest payload: one unfragmented IPv4 datagram on a 1500-byte link.
inline constexpr std::size_t kMaxUdpPayload = 1472;

// The payload for `port` as the raw scanner sends it: udp_payload(port) with bits of `cookie`
// stamped into the identifier the protocol's replies echo (DNS ID, NTP transmit timestamp,
// SNMP request-id, ...). Written into `out` (kMaxUdpPayload bytes suffice); returns the
// written part, empty for a port without payload. Allocates nothing.
std::span<const std::uint8_t> udp_payload_stamped(std::uint16_t port, std::uint32_t cookie,
                                                  std::span<std::uint8_t> out);

// Does `reply`, the payload of a datagram from `port`, echo the identifier
// udp_payload_stamped() wrote for `cookie`? True for ports whose protocol echoes none.
bool udp_reply_echoes(std::uint16_t port, std::uint32_t cookie,
                      std::span<const std::uint8_t> reply);

// The smallest reply a server of `port`'s protocol could give, for the fake network and
// tests: `request` copied to `out` with the echoed identifier moved to where replies carry it
// (NTP: transmit timestamp -> origin timestamp). Returns the bytes written (0 if `out` is
// too small).
std::size_t udp_echo_reply(std::uint16_t port, std::span<const std::uint8_t> request,
                           std::span<std::uint8_t> out);

// How many bits of the cookie a reply from `port` must echo: 0 (no identifier), 16, 24 or 32.
unsigned udp_echo_bits(std::uint16_t port);

// Name of the protocol whose payload is used for that port ("dns", "ntp", ...) or "" for none.
// A port can have a protocol with a deliberately empty payload ("syslog" on 514: syslog never
// answers, so nothing is gained by sending a message).
std::string_view udp_payload_protocol(std::uint16_t port);

}  // namespace portvigil::raw
