// Scan windows: the grammar, and when a window is open, in UTC and across DST changes.
#include "portvigil/config/scan_window.hpp"

#include <gtest/gtest.h>

#include <ctime>

#include "portvigil/common/errors.hpp"

namespace portvigil {
namespace {

using Time = ScanWindows::Time;

Time utc(int y, int mo, int d, int h, int mi, int s = 0) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string error_of(const std::vector<std::string>& windows, const std::string& zone = "UTC") {
  try {
    (void)ScanWindows::parse(windows, zone);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(ScanWindows, Grammar) {
  const auto w = ScanWindows::parse(
      {"Mon-Fri 22:00-06:00", "sat,SUN 00:00-24:00", "02:00-04:30:15", "Fri-Mon 12:00-13:00"},
      "UTC");
  ASSERT_EQ(w.windows().size(), 4u);
  EXPECT_EQ(w.windows()[0].days, 0x1f);
  EXPECT_EQ(w.windows()[0].start, std::chrono::hours(22));
  EXPECT_EQ(w.windows()[0].end, std::chrono::hours(6));
  EXPECT_EQ(w.windows()[1].days, 0x60);
  EXPECT_EQ(w.windows()[1].end, std::chrono::hours(24));
  EXPECT_EQ(w.windows()[2].days, 0x7f);
  EXPECT_EQ(w.windows()[2].end, std::chrono::seconds(4 * 3600 + 30 * 60 + 15));
  EXPECT_EQ(w.windows()[3].days, 0x71);  // Fri, Sat, Sun, Mon
  EXPECT_EQ(w.zone(), "UTC");
}

TEST(ScanWindows, BadInputSaysWhatWasExpected) {
  const std::string form = "expected [DAYS] HH:MM-HH:MM, such as \"Mon-Fri 22:00-06:00\"";
  EXPECT_EQ(error_of({"Mon-Fri 25:00-06:00"}),
            "invalid scan window \"Mon-Fri 25:00-06:00\": " + form);
  EXPECT_EQ(error_of({"22:00"}), "invalid scan window \"22:00\": " + form);
  EXPECT_EQ(error_of({"Mon-Fri 22:60-23:00"}),
            "invalid scan window \"Mon-Fri 22:60-23:00\": " + form);
  EXPECT_EQ(error_of({"Mon-Fri 24:00-01:00"}),
            "invalid scan window \"Mon-Fri 24:00-01:00\": " + form);
  EXPECT_EQ(error_of({"Mon-Fri 2:00-3:00"}), "invalid scan window \"Mon-Fri 2:00-3:00\": " + form);
  EXPECT_EQ(error_of({"Funday 22:00-23:00"}),
            "invalid scan window \"Funday 22:00-23:00\": expected days such as \"Mon-Fri\" or "
            "\"Sat,Sun\" (Mon Tue Wed Thu Fri Sat Sun)");
  EXPECT_EQ(error_of({" 22:00-23:00"}),
            "invalid scan window \" 22:00-23:00\": expected days before the times, such as "
            "\"Mon-Fri\"");
  EXPECT_EQ(error_of({"Mon 10:00-10:00"}),
            "invalid scan window \"Mon 10:00-10:00\": it opens and closes at the same time (a "
            "whole day is 00:00-24:00)");
  EXPECT_EQ(error_of({"Mon 10:00-11:00"}, "Mars/Olympus_Mons"),
            "unknown time zone \"Mars/Olympus_Mons\": expected a tz database name such as "
            "\"Europe/Berlin\" or \"UTC\"");
  EXPECT_NE(error_of({std::string("Mon 10:00-11:00\0x", 17)}), "");
  EXPECT_EQ(error_of({"Mon 20:00--9:00"}), "invalid scan window \"Mon 20:00--9:00\": " + form);
  EXPECT_EQ(error_of({"Mon 22:00-06:-5"}), "invalid scan window \"Mon 22:00-06:-5\": " + form);
  EXPECT_EQ(error_of({"Mon 10:00-11:00:00:01"}),
            "invalid scan window \"Mon 10:00-11:00:00:01\": " + form);
  EXPECT_EQ(error_of({"Mon 10:00-11:00:"}), "invalid scan window \"Mon 10:00-11:00:\": " + form);
}

// 2026-12-03 is a Thursday.
TEST(ScanWindows, OvernightWindowInUtc) {
  const auto w = ScanWindows::parse({"Mon-Fri 22:00-06:00"}, "UTC");
  EXPECT_FALSE(w.current(utc(2026, 12, 3, 21, 59, 59)));
  const auto open = w.current(utc(2026, 12, 3, 22, 0));
  ASSERT_TRUE(open);
  EXPECT_EQ(open->open, utc(2026, 12, 3, 22, 0));
  EXPECT_EQ(open->close, utc(2026, 12, 4, 6, 0));
  // Friday night's window runs into Saturday morning, which opens none itself.
  const auto saturday = w.current(utc(2026, 12, 5, 5, 59));
  ASSERT_TRUE(saturday);
  EXPECT_EQ(saturday->open, utc(2026, 12, 4, 22, 0));
  EXPECT_FALSE(w.current(utc(2026, 12, 5, 6, 0)));
  EXPECT_FALSE(w.current(utc(2026, 12, 5, 23, 0)));
  // From Saturday morning the next window is Monday night's.
  EXPECT_EQ(w.next_open(utc(2026, 12, 5, 6, 0)), utc(2026, 12, 7, 22, 0));
  EXPECT_EQ(w.next_open(utc(2026, 12, 3, 12, 0)), utc(2026, 12, 3, 22, 0));
}

// Windows that meet are one: a weekend window does not close at Sunday midnight, nor two
// overlapping ones where the first ends.
TEST(ScanWindows, WindowsThatMeetAreOne) {
  const auto weekend = ScanWindows::parse({"Sat,Sun 00:00-24:00"}, "UTC");
  const auto sat = weekend.current(utc(2026, 12, 5, 23, 0));
  ASSERT_TRUE(sat);
  EXPECT_EQ(sat->close, utc(2026, 12, 7, 0, 0));
  // Sunday is the same window, opened on Saturday (2026-12-05 is a Saturday).
  const auto sun = weekend.current(utc(2026, 12, 6, 13, 0));
  ASSERT_TRUE(sun);
  EXPECT_EQ(sun->open, utc(2026, 12, 5, 0, 0));
  EXPECT_EQ(sun->close, utc(2026, 12, 7, 0, 0));
  // The example's nights and weekend: Friday 22:00 to Monday 00:00 is one window.
  const auto nights = ScanWindows::parse({"Mon-Fri 22:00-06:00", "Sat,Sun 00:00-24:00"}, "UTC");
  const auto sunday = nights.current(utc(2026, 12, 6, 13, 0));
  ASSERT_TRUE(sunday);
  EXPECT_EQ(sunday->open, utc(2026, 12, 4, 22, 0));
  EXPECT_EQ(sunday->close, utc(2026, 12, 7, 0, 0));
  const auto chained = ScanWindows::parse({"09:00-12:00", "11:30-14:00", "Thu 14:00-15:00"}, "UTC");
  const auto morning = chained.current(utc(2026, 12, 3, 10, 0));
  ASSERT_TRUE(morning);
  EXPECT_EQ(morning->close, utc(2026, 12, 3, 15, 0));
  const auto afternoon = chained.current(utc(2026, 12, 3, 14, 30));
  ASSERT_TRUE(afternoon);
  EXPECT_EQ(afternoon->open, utc(2026, 12, 3, 9, 0));
  const auto always = ScanWindows::parse({"00:00-24:00"}, "UTC");
  const auto now = always.current(utc(2026, 12, 3, 10, 0));
  ASSERT_TRUE(now);
  EXPECT_GE(now->close - utc(2026, 12, 3, 10, 0), std::chrono::hours(24 * 13));
  EXPECT_EQ(now->open, ScanWindows::Time{}) << "open for more than a fortnight: the epoch";
}

TEST(ScanWindows, OverlappingWindowsCloseAtTheLatestEnd) {
  const auto w = ScanWindows::parse({"09:00-12:00", "Thu 10:00-14:00"}, "UTC");
  const auto open = w.current(utc(2026, 12, 3, 11, 0));
  ASSERT_TRUE(open);
  EXPECT_EQ(open->close, utc(2026, 12, 3, 14, 0));
}

// Europe/Berlin: on 2026-03-29 02:00 CET jumps to 03:00 CEST (01:00 UTC); on 2026-10-25
// 03:00 CEST falls back to 02:00 CET (01:00 UTC).
TEST(ScanWindows, DaylightSavingChanges) {
  const auto w = ScanWindows::parse({"Sun 02:30-04:00"}, "Europe/Berlin");
  // 02:30 does not exist that night: the window opens at the jump.
  const auto spring = w.current(utc(2026, 3, 29, 1, 30));
  ASSERT_TRUE(spring);
  EXPECT_EQ(spring->open, utc(2026, 3, 29, 1, 0));
  EXPECT_EQ(spring->close, utc(2026, 3, 29, 2, 0));  // 04:00 CEST
  EXPECT_EQ(w.next_open(utc(2026, 3, 28, 12, 0)), utc(2026, 3, 29, 1, 0));
  // 02:30 happens twice: the window opens at the first, 02:30 CEST (00:30 UTC), and closes
  // at 04:00 CET (03:00 UTC).
  const auto autumn = w.current(utc(2026, 10, 25, 0, 45));
  ASSERT_TRUE(autumn);
  EXPECT_EQ(autumn->open, utc(2026, 10, 25, 0, 30));
  EXPECT_EQ(autumn->close, utc(2026, 10, 25, 3, 0));
  // An ordinary Sunday in winter: 02:30 CET is 01:30 UTC.
  const auto winter = w.current(utc(2026, 12, 6, 2, 0));
  ASSERT_TRUE(winter);
  EXPECT_EQ(winter->open, utc(2026, 12, 6, 1, 30));
}

TEST(ScanWindows, LocalTimeText) {
  EXPECT_EQ(local_time_text(utc(2026, 12, 3, 21, 0), "Europe/Berlin"), "2026-12-03 22:00:00 CET");
  EXPECT_EQ(local_time_text(utc(2026, 7, 3, 21, 0), "Europe/Berlin"), "2026-07-03 23:00:00 CEST");
  EXPECT_EQ(local_time_text(utc(2026, 7, 3, 21, 0), "UTC"), "2026-07-03 21:00:00 UTC");
}

}  // namespace
}  // namespace portvigil
