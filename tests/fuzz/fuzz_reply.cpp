// libFuzzer target for the reply parser (scanner/src/raw/packet.cpp) and the probes' reply
// checks (probe.cpp): the bytes are read as a captured frame of every link type we support,
// and every reply that parses goes through every probe's validate() and classify().
// See docs/fuzzing.md.
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

void check_reply(const raw::Reply& r) {
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
    check_reply(r);
    (void)raw::unreachable_reason(r);
    (void)raw::is_port_unreachable(r);
    for (Technique t : kTechniques) {
      const raw::Probe* probe = raw::probe_for(t);
      check(probe != nullptr);
      // The fixed cookie, and the value the reply itself carries, so that the accepting
      // paths of validate() are reached too.
      for (std::uint32_t c : {kCookie, r.ack - 1, r.ack, r.seq}) {
        for (std::uint16_t base : {kSportBase, r.dport, r.sport}) {
          if (probe->validate(r, c, base)) (void)probe->classify(r);
        }
      }
      (void)probe->classify(r);
    }
  }
  return 0;
}
