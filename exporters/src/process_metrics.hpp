// The process_* metrics every Prometheus client library exports (CPU, memory, descriptors,
// start time), which prometheus-cpp 1.0 does not: read from /proc/self at scrape time.
#pragma once

#include <prometheus/metric_family.h>

#include <optional>
#include <string_view>
#include <vector>

namespace portvigil::exporters_detail {

// What /proc/self/stat says, in the units the metrics use.
struct ProcessStat {
  double cpu_seconds = 0;            // utime + stime
  double start_time_seconds = 0;     // since the Unix epoch (needs /proc/stat's btime)
  double virtual_memory_bytes = 0;   // vsize
  double resident_memory_bytes = 0;  // rss pages * page size
};

// Parses the text of /proc/PID/stat; nullopt when it is not what the kernel writes. `ticks`
// is sysconf(_SC_CLK_TCK), `page` the page size, `boot_time` /proc/stat's btime.
[[nodiscard]] std::optional<ProcessStat> parse_proc_stat(std::string_view text, double ticks,
                                                         double page, double boot_time);

// process_cpu_seconds_total, process_start_time_seconds, process_virtual_memory_bytes,
// process_resident_memory_bytes, process_open_fds, process_max_fds; the ones /proc cannot
// give (not Linux, no /proc) are left out.
[[nodiscard]] std::vector<prometheus::MetricFamily> process_metric_families();

}  // namespace portvigil::exporters_detail
