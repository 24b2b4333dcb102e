// process_* metrics from /proc/self (prometheus-cpp 1.0 has no process collector).
#include "process_metrics.hpp"

#include <gtest/gtest.h>

#include <string>

#include "portvigil/exporters/metrics.hpp"

namespace portvigil {
namespace {

using exporters_detail::parse_proc_stat;

// A real line's shape, with a command name holding spaces and parentheses.
const std::string kStat =
    "4242 (port vigil) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 3 0 "
    "12000 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";

TEST(ProcessMetrics, ParsesProcStatCountingFieldsFromTheLastParenthesis) {
  const auto s = parse_proc_stat(kStat, 100, 4096, 1'700'000'000);
  ASSERT_TRUE(s.has_value());
  EXPECT_DOUBLE_EQ(s->cpu_seconds, 4.0);                     // (250 + 150) / 100
  EXPECT_DOUBLE_EQ(s->start_time_seconds, 1'700'000'120.0);  // btime + 12000 / 100
  EXPECT_DOUBLE_EQ(s->virtual_memory_bytes, 104857600.0);
  EXPECT_DOUBLE_EQ(s->resident_memory_bytes, 2560.0 * 4096);
}

TEST(ProcessMetrics, RefusesWhatTheKernelDoesNotWrite) {
  for (const std::string& bad :
       {std::string(), std::string("4242 (x"), kStat.substr(0, 60),
        std::string("4242 (x) S 1 2 3 4 5 6 7 8 9 10 abc 11 12 13 14 15 16 17 18 19 20 21"),
        std::string(200, ')')}) {
    EXPECT_FALSE(parse_proc_stat(bad, 100, 4096, 0).has_value()) << bad;
  }
  EXPECT_FALSE(parse_proc_stat(kStat, 0, 4096, 0).has_value());  // no clock ticks
}

TEST(ProcessMetrics, TheEndpointExportsThem) {
  AgentMetrics m(100);
  const auto text = m.render();
  for (const char* name : {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
                           "process_virtual_memory_bytes ", "process_open_fds ", "process_max_fds ",
                           "process_start_time_seconds "}) {
    EXPECT_NE(text.find(std::string("\n") + name), std::string::npos) << name << "\n" << text;
  }
}

}  // namespace
}  // namespace portvigil
