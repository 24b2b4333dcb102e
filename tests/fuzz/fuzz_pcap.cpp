// libFuzzer target for pcap-file replay (scanner/src/raw/fake_io.cpp's PcapFilePacketIo, the
// source of `--replay`-style tests): the bytes are a capture file, opened through libpcap
// as the replay does, and every frame it yields goes through the reply parser with the
// file's link type and through every probe's validate() and classify(). A capture from a
// hostile network (or a crafted file) must never crash the scanner. See docs/fuzzing.md.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "portvigil/scanner/packet_io.hpp"
#include "raw/packet.hpp"
#include "raw/probe.hpp"

namespace {

namespace raw = portvigil::raw;
using portvigil::Technique;

class ParseEverything final : public portvigil::FrameSink {
 public:
  explicit ParseEverything(int dlt) : dlt_(dlt) {}
  void frame(std::span<const std::uint8_t> bytes) override {
    raw::Reply r;
    if (!raw::parse_frame(bytes, dlt_, r)) return;
    // A UDP payload is a view into the frame, never past its end.
    if (!r.payload.empty() && (r.payload.data() < bytes.data() ||
                               r.payload.data() + r.payload.size() > bytes.data() + bytes.size())) {
      std::abort();
    }
    for (Technique t : {Technique::syn, Technique::fin, Technique::null, Technique::xmas,
                        Technique::ack, Technique::udp}) {
      (void)raw::probe_for(t)->classify(r);
    }
  }

 private:
  int dlt_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // libpcap reads files: hand it the bytes as one, in memory.
  const int fd = memfd_create("fuzz.pcap", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (size > 0 && write(fd, data, size) != static_cast<ssize_t>(size)) {
    close(fd);
    return 0;
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    auto io = portvigil::pcap_file_io(path, asio::ip::make_address("198.18.0.1"),
                                      asio::ip::make_address("2001:db8::1"))({});
    ParseEverything sink(io->datalink());
    for (int i = 0; i < 2; ++i) (void)io->receive(std::chrono::milliseconds(0), sink);
  } catch (const std::runtime_error&) {
    // Not a capture file libpcap accepts: refused with a message, as the replay does.
  }
  close(fd);
  return 0;
}
