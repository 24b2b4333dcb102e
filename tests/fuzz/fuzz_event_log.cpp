// libFuzzer target for reading an event log back (exporters/src/event_log_line.cpp): the bytes
// are the file's content, fed to the scanner in two chunks split at the first byte's value.
// Checks the recovery invariants: the last id comes only from a line that is an event and
// is never above 2^53, the ranges set aside and the torn tail lie inside the input and do
// not overlap, and event_line_id() agrees with the scanner. Any failure calls abort().
// See docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "portvigil/exporters/event_log_line.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  portvigil::EventLogScanner scan;
  const std::size_t split = size == 0 ? 0 : data[0] % (size + 1);
  scan.feed(text.substr(0, split));
  scan.feed(text.substr(split));
  scan.finish();
  if (scan.size() != size) std::abort();
  if (scan.last_id() < 0 || scan.last_id() > portvigil::kMaxEventLineId) std::abort();
  if ((scan.events() == 0) != (scan.last_id() == 0)) std::abort();
  std::uint64_t end = 0;
  for (const auto& r : scan.bad()) {
    if (r.length == 0 || r.offset < end || r.offset + r.length > size) std::abort();
    end = r.offset + r.length;
  }
  if (const auto torn = scan.torn()) {
    if (torn->offset < end || torn->offset + torn->length != size) std::abort();
  }
  // Every kept line is an event, and the last kept one carries last_id().
  std::int64_t last = 0;
  std::size_t b = 0;
  std::size_t start = 0;
  while (start < size) {
    const auto nl = text.find('\n', start);
    if (nl == std::string_view::npos) break;
    const bool bad = b < scan.bad().size() && start >= scan.bad()[b].offset &&
                     start < scan.bad()[b].offset + scan.bad()[b].length;
    if (!bad) {
      const auto id = portvigil::event_line_id(text.substr(start, nl - start));
      if (!id || *id <= last) std::abort();
      last = *id;
    }
    start = nl + 1;
    if (b < scan.bad().size() && start >= scan.bad()[b].offset + scan.bad()[b].length) ++b;
  }
  if (last != scan.last_id()) std::abort();
  return 0;
}
