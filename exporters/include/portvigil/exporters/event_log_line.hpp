// Reading an event log back: which lines are events the agent wrote, and which are not.
// The file is untrusted text (a crash tears lines, anything can be appended to it), so a
// line counts only when it is one whole JSON object with the fields event_json() writes,
// and only such lines may move the agent's idea of the last published event id.
// No I/O here: EventLog feeds the bytes, and fuzz_event_log feeds arbitrary ones.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portvigil {

// An event id read from a line must be in [1, kMaxEventLineId]: 2^53, exact in every JSON
// reader. The database's sequence then always has 2^63 - 2^53 ids left.
inline constexpr std::int64_t kMaxEventLineId = std::int64_t{1} << 53;
// A line whose id is more than this above the previous event line's is set aside: ids grow
// by one per event, and only pruned-before-published events leave gaps.
inline constexpr std::int64_t kMaxEventIdJump = std::int64_t{1} << 32;
// A longer line is not an event (event_json() writes a few hundred bytes plus the names).
inline constexpr std::size_t kMaxEventLineBytes = 64 * 1024;

// The id of `line` (without its '\n') if it is one event: a JSON object, no duplicate keys,
// with "id" (integer 1..kMaxEventLineId), "time" ("YYYY-MM-DDTHH:MM:SS.mmmZ"), "job" and
// "host" (strings). The other fields event_json() writes ("proto", "port", "from", "to",
// "from_reason", "to_reason", "expected", "scan_id") and "kind" must have their types when
// present; any other key may hold any JSON value (nesting up to 8 levels), so new event
// kinds with more fields still read as events.
[[nodiscard]] std::optional<std::int64_t> event_line_id(std::string_view line);

// Splits an event log into event lines and the rest, fed in chunks of any size.
class EventLogScanner {
 public:
  struct Range {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;  // including the '\n'
  };

  void feed(std::string_view bytes);
  // Ends the input; an unterminated last line becomes torn() or bad().
  void finish();

  // The id of the last event line (0 if none).
  [[nodiscard]] std::int64_t last_id() const { return last_id_; }
  // '\n'-terminated lines that are events with increasing ids (no jump above kMaxEventIdJump).
  [[nodiscard]] std::uint64_t events() const { return events_; }
  // Everything else, adjacent lines merged: not events, or ids out of order.
  [[nodiscard]] const std::vector<Range>& bad() const { return bad_; }
  [[nodiscard]] std::uint64_t bad_lines() const { return bad_lines_; }
  // The first bad line's first bytes, for a message.
  [[nodiscard]] const std::string& first_bad() const { return first_bad_; }
  // An unterminated last line that starts like an event line: what a crash in the middle of
  // an append leaves. Its event is in the database; cutting it off loses nothing.
  [[nodiscard]] std::optional<Range> torn() const { return torn_; }
  [[nodiscard]] std::uint64_t size() const { return offset_; }

 private:
  void end_line(bool terminated);
  void add_bad(std::uint64_t offset, std::uint64_t length);

  std::string line_;  // the current line, up to kMaxEventLineBytes + 1 bytes
  std::uint64_t line_start_ = 0;
  std::uint64_t offset_ = 0;
  std::int64_t last_id_ = 0;
  std::uint64_t events_ = 0;
  std::uint64_t bad_lines_ = 0;
  std::vector<Range> bad_;
  std::string first_bad_;
  std::optional<Range> torn_;
  bool finished_ = false;
};

}  // namespace portvigil
