#include "portvigil/config/scan_window.hpp"

#include <date/tz.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include "portvigil/common/errors.hpp"
#include "portvigil/common/grammar.hpp"

namespace portvigil {
namespace {

constexpr std::array<std::string_view, 7> kDayNames{"Mon", "Tue", "Wed", "Thu",
                                                    "Fri", "Sat", "Sun"};

int day_index(std::string_view name) {
  for (std::size_t i = 0; i < kDayNames.size(); ++i) {
    if (name.size() == 3 &&
        std::equal(name.begin(), name.end(), kDayNames[i].begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

// "HH:MM" or "HH:MM:SS", 00:00 to 24:00.
std::optional<std::chrono::seconds> time_of_day(std::string_view text) {
  int parts[3] = {0, 0, 0};
  int count = 0;
  while (true) {
    if (count == 3) return std::nullopt;  // a fourth field
    const auto colon = text.find(':');
    const auto field = text.substr(0, colon);
    const auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (field.size() != 2 || !digit(field[0]) || !digit(field[1])) return std::nullopt;
    parts[count++] = (field[0] - '0') * 10 + (field[1] - '0');
    if (colon == std::string_view::npos) break;
    text.remove_prefix(colon + 1);
  }
  if (count < 2 || parts[1] > 59 || parts[2] > 59 || parts[0] > 24) return std::nullopt;
  const std::chrono::seconds s{parts[0] * 3600 + parts[1] * 60 + parts[2]};
  if (s > std::chrono::hours(24)) return std::nullopt;
  return s;
}

ScanWindows::Weekly parse_window(std::string_view text) {
  const auto bad = [&](const std::string& why) {
    return InputError("invalid scan window " + quote_input(text) + ": " + why);
  };
  ScanWindows::Weekly w;
  w.text = std::string(text);
  std::string_view times = text;
  const auto space = text.find(' ');
  if (space != std::string_view::npos) {
    std::string_view days = text.substr(0, space);
    times = text.substr(space + 1);
    while (!days.empty()) {
      const auto comma = days.find(',');
      const auto item = days.substr(0, comma);
      const auto dash = item.find('-');
      const int first = day_index(item.substr(0, dash));
      const int last = dash == std::string_view::npos ? first : day_index(item.substr(dash + 1));
      if (first < 0 || last < 0) {
        throw bad("expected days such as \"Mon-Fri\" or \"Sat,Sun\" (Mon Tue Wed Thu Fri Sat Sun)");
      }
      for (int d = first;; d = (d + 1) % 7) {  // "Fri-Mon" wraps over the weekend
        w.days = static_cast<std::uint8_t>(w.days | (1u << d));
        if (d == last) break;
      }
      if (comma == std::string_view::npos) break;
      days.remove_prefix(comma + 1);
    }
    if (w.days == 0) throw bad("expected days before the times, such as \"Mon-Fri\"");
  } else {
    w.days = 0x7f;
  }
  const auto dash = times.find('-');
  const auto start = time_of_day(times.substr(0, dash));
  const auto end =
      dash == std::string_view::npos ? std::nullopt : time_of_day(times.substr(dash + 1));
  if (!start || !end || *start == std::chrono::hours(24)) {
    throw bad("expected [DAYS] HH:MM-HH:MM, such as \"Mon-Fri 22:00-06:00\"");
  }
  if (*start == *end)
    throw bad("it opens and closes at the same time (a whole day is 00:00-24:00)");
  w.start = *start;
  w.end = *end;
  return w;
}

const date::time_zone* zone_of(std::string_view name) {
  return date::locate_zone(name);
}

// Local midnight of day `d`, plus `offset`, as an instant. A local time that a DST change
// skips maps to the change; one it repeats, to its first occurrence.
ScanWindows::Time instant(const date::time_zone* zone, date::local_days d,
                          std::chrono::seconds offset) {
  const date::local_seconds local = d + offset;
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(
      zone->to_sys(local, date::choose::earliest));
}

// 0 = Monday ... 6 = Sunday.
int weekday_index(date::local_days d) {
  return static_cast<int>(date::weekday(d).iso_encoding()) - 1;
}

// Every window's opening and closing, for the local days first..last.
std::vector<ScanWindows::Interval> instances(const std::vector<ScanWindows::Weekly>& windows,
                                             const date::time_zone* zone, date::local_days first,
                                             date::local_days last) {
  std::vector<ScanWindows::Interval> out;
  for (auto day = first; day <= last; day += date::days(1)) {
    const int wd = weekday_index(day);
    for (const ScanWindows::Weekly& w : windows) {
      if ((w.days & (1u << wd)) == 0) continue;
      out.push_back({instant(zone, day, w.start),
                     instant(zone, w.end <= w.start ? day + date::days(1) : day, w.end)});
    }
  }
  return out;
}

}  // namespace

ScanWindows ScanWindows::parse(const std::vector<std::string>& windows, std::string_view zone) {
  ScanWindows out;
  try {
    // Loads the zone's data too: a name that lists but does not load is refused here,
    // not when the agent first asks it the time.
    (void)zone_of(zone)->get_info(std::chrono::system_clock::now());
  } catch (const std::exception&) {
    throw InputError("unknown time zone " + quote_input(zone) +
                     ": expected a tz database name such as \"Europe/Berlin\" or \"UTC\"");
  }
  out.zone_ = std::string(zone);
  for (const auto& w : windows) out.windows_.push_back(parse_window(w));
  return out;
}

std::optional<ScanWindows::Interval> ScanWindows::current(Time t) const {
  const date::time_zone* zone = zone_of(zone_);
  const auto today = date::floor<date::days>(zone->to_local(t));
  // Every opening from a fortnight back to a fortnight ahead.
  const auto all = instances(windows_, zone, today - date::days(15), today + date::days(14));
  std::optional<Interval> best;
  for (const Interval& i : all) {
    if (i.open <= t && t < i.close && (!best || i.close > best->close)) best = i;
  }
  // Windows that meet or overlap are one, both ways: "Sat,Sun 00:00-24:00" neither closes
  // nor opens again at Sunday midnight. Followed for at most a fortnight each way.
  constexpr auto kFortnight = std::chrono::hours(24 * 14);
  bool opened_long_ago = false;
  for (bool grew = best.has_value(); grew;) {
    grew = false;
    for (const Interval& i : all) {
      if (i.open <= best->close && best->close < i.close && i.close - t <= kFortnight) {
        best->close = i.close;
        grew = true;
      }
      if (i.close >= best->open && i.open < best->open) {
        if (t - i.open > kFortnight) {
          opened_long_ago = true;
        } else {
          best->open = i.open;
          grew = true;
        }
      }
    }
  }
  // Open for more than a fortnight: the start of time, rather than a date that would move
  // forward every day while the window stays open.
  if (opened_long_ago) best->open = Time{};
  return best;
}

ScanWindows::Time ScanWindows::next_open(Time t) const {
  const date::time_zone* zone = zone_of(zone_);
  const auto today = date::floor<date::days>(zone->to_local(t));
  std::optional<Time> best;
  for (const Interval& i : instances(windows_, zone, today, today + date::days(8))) {
    if (i.open > t && (!best || i.open < *best)) best = i.open;
  }
  // Every window has a day, so one opens within the coming week.
  return best.value_or(t + std::chrono::hours(24 * 7));
}

std::string local_time_text(ScanWindows::Time t, std::string_view zone) {
  try {
    const auto z = date::make_zoned(zone_of(zone), std::chrono::floor<std::chrono::seconds>(t));
    return date::format("%F %T %Z", z);
  } catch (const std::exception&) {
    return date::format("%F %T UTC", std::chrono::floor<std::chrono::seconds>(t));
  }
}

}  // namespace portvigil
