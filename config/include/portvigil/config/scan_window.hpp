// Scan windows: when a job may scan, as weekly local times in a named time zone
// (`windows = ["Mon-Fri 22:00-06:00"]`, `time-zone = "Europe/Berlin"`). Pure arithmetic on
// system_clock instants, so the agent's scheduler and the tests ask the same questions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portvigil {

class ScanWindows {
 public:
  using Time = std::chrono::system_clock::time_point;

  // One window: it opens on each of `days` (bit 0 Monday ... bit 6 Sunday) at `start`
  // local time and closes at `end`, the same day, or the next when end <= start.
  struct Weekly {
    std::uint8_t days = 0;
    std::chrono::seconds start{0};
    std::chrono::seconds end{0};
    std::string text;  // as written
  };
  struct Interval {
    Time open;
    Time close;
  };

  // Parses windows such as "Mon-Fri 22:00-06:00", "Sat,Sun 00:00-24:00", "02:00-04:30"
  // (every day) and a tz database zone name. Throws InputError naming what is wrong.
  static ScanWindows parse(const std::vector<std::string>& windows, std::string_view zone);

  // The window that contains `t` (the one that closes last, if several do); nullopt
  // outside every window. Windows that meet or overlap count as one, followed for a
  // fortnight each way: one open for longer has `open` = Time{} (the epoch). Local times a
  // DST change skips open or close at the change.
  [[nodiscard]] std::optional<Interval> current(Time t) const;
  // The first instant after `t` at which a window opens.
  [[nodiscard]] Time next_open(Time t) const;

  [[nodiscard]] const std::string& zone() const { return zone_; }
  [[nodiscard]] const std::vector<Weekly>& windows() const { return windows_; }

 private:
  std::string zone_;
  std::vector<Weekly> windows_;
};

// "2026-12-03 22:00:00 CET": an instant as local time in `zone`, for messages.
[[nodiscard]] std::string local_time_text(ScanWindows::Time t, std::string_view zone);

}  // namespace portvigil
