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

#include <cstdint>
#include <span>
#include <string_view>

namespace portvigil::raw {

// Payload to send to a UDP port; an empty span means "send an empty datagram".
// The bytes have static storage duration; the span stays valid for the program's lifetime.
std::span<const std::uint8_t> udp_payload(std::uint16_t port);

// Name of the protocol whose payload is used for that port ("dns", "ntp", ...) or "" for none.
// A port can have a protocol with a deliberately empty payload ("syslog" on 514: syslog never
// answers, so nothing is gained by sending a message).
std::string_view udp_payload_protocol(std::uint16_t port);

}  // namespace portvigil::raw
