// libFuzzer target for the reply parser (scanner/src/raw/packet.cpp) and the probes' reply
// checks (probe.cpp, with the UDP payload echo checks of udp_payloads.cpp): the bytes are read as a
// captured frame of every link type we support, and every reply that parses goes through every
// probe's validate() and classify(), the host-discovery probe's (echo, ARP) included. See
// docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "raw/packet.hpp"
#include "raw/probe.hpp"

namespace {

using portvigil::Technique;
namespace raw = portvigil::raw;

constexpr int kDlts[] = {raw::kDltEthernet, raw::kDltLinuxSll, raw::kDltLinuxSll2,
                         raw::kDltNull,     raw::kDltRaw,      raw::kDltRaw2};
constexpr Technique kTechniques[] = {Technique::syn,  Technique::fin, Technique::null,
                                     Technique::xmas, Technique::ack, Technique::udp};
constexpr std::uint32_t kCookie = 0x12345678;
constexpr std::uint16_t kSportBase = 40000;

// Properties every successful parse must have; a violation is a bug, reported as a crash.
void check(bool ok) {
  if (!ok) std::abort();
}

void check_reply(const raw::Reply& r, std::span<const std::uint8_t> frame) {
  // A UDP payload is a view into the frame, never past its end.
  check(r.payload.empty() || r.kind == raw::Reply::Kind::udp);
  check(r.payload.empty() || (r.payload.data() >= frame.data() &&
                              r.payload.data() + r.payload.size() <= frame.data() + frame.size()));
  check(!r.quoted_has_udp_header || r.quoted_proto == 17);
  check(r.kind != raw::Reply::Kind::other);
  check(r.src.v6 == r.dst.v6);
  if (r.kind == raw::Reply::Kind::unreachable) {
    check(r.icmp_type == (r.src.v6 ? 1 : 3));
    check(r.quoted_proto == 6 || r.quoted_proto == 17);
    check(r.quoted_src.v6 == r.quoted_dst.v6);
    check(!r.quoted_has_seq || r.quoted_proto == 6);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> frame{data, size};
  for (int dlt : kDlts) {
    raw::Reply r;
    if (!raw::parse_frame(frame, dlt, r)) continue;
    check_reply(r, frame);
    (void)raw::unreachable_reason(r);
    (void)raw::is_port_unreachable(r);
    if (r.kind == raw::Reply::Kind::echo_reply) check(r.icmp_type == (r.src.v6 ? 129 : 0));
    if (r.kind == raw::Reply::Kind::arp_reply) check(dlt == raw::kDltEthernet && !r.src.v6);
    if (r.kind == raw::Reply::Kind::nd_advert) check(r.src.v6 && r.ttl == 255);
    // The host-discovery probe too, on each of its "ports", with the echo's identifier and
    // sequence as the cookie so its accepting path is reached.
    const auto& ping = raw::ping_probe();
    const std::uint32_t echo_c = (std::uint32_t{r.echo_id} << 16) | r.echo_sequence;
    for (std::uint16_t port : raw::ping_ports()) {
      for (std::uint32_t c : {kCookie, echo_c, r.ack - 1, r.seq}) {
        const raw::ProbeKey key{r.dst, r.src, port, c, r.dport};
        if (ping.validate(r, key)) (void)ping.classify(r);
      }
    }
    for (Technique t : kTechniques) {
      const raw::Probe* probe = raw::probe_for(t);
      check(probe != nullptr);
      // The fixed cookie and key, and the values the reply itself carries, so that the
      // accepting paths of validate() are reached too. For UDP the cookie's low 14 bits
      // choose the source port: r.dport - base.
      const bool icmp = r.kind == raw::Reply::Kind::unreachable;
      const raw::IpAddr& us = icmp ? r.quoted_src : r.dst;
      const raw::IpAddr& them = icmp ? r.quoted_dst : r.src;
      const std::uint16_t their_port = icmp ? r.dport : r.sport;
      const std::uint16_t our_port = icmp ? r.sport : r.dport;
      const std::uint32_t udp_c =
          (r.quoted_ip_id << 16) |
          (static_cast<std::uint32_t>(our_port - kSportBase) & (raw::kUdpSourcePortSpan - 1));
      for (std::uint32_t c : {kCookie, r.ack - 1, r.ack, r.seq, udp_c}) {
        for (std::uint16_t base : {kSportBase, our_port, r.sport}) {
          for (const raw::ProbeKey& key : {raw::ProbeKey{us, them, their_port, c, base},
                                           raw::ProbeKey{r.dst, r.src, r.sport, c, base}}) {
            if (probe->validate(r, key)) (void)probe->classify(r);
          }
        }
      }
      (void)probe->classify(r);
    }
  }
  return 0;
}
