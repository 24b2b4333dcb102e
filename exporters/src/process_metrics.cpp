#include "process_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>

namespace portvigil::exporters_detail {
namespace {

std::string read_file(const char* path) {
  std::ifstream in(path);
  if (!in) return {};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::optional<double> field_number(std::string_view text) {
  double v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
  return v;
}

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return prometheus::MetricFamily{std::move(name), std::move(help), type, {m}};
}

}  // namespace

std::optional<ProcessStat> parse_proc_stat(std::string_view text, double ticks, double page,
                                           double boot_time) {
  // "PID (COMM) STATE ...": COMM may hold spaces and parentheses, so fields are counted
  // from the last ')'. Field 3 is STATE; utime/stime are 14/15, starttime 22, vsize 23,
  // rss 24 (proc(5)).
  const auto close = text.rfind(')');
  if (close == std::string_view::npos || ticks <= 0) return std::nullopt;
  std::string_view rest = text.substr(close + 1);
  std::vector<std::string_view> fields;  // fields[0] is field 3
  while (!rest.empty() && fields.size() < 22) {
    const auto start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const auto end = std::min(rest.find_first_of(" \n"), rest.size());
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end);
  }
  if (fields.size() < 22) return std::nullopt;
  auto at = [&](std::size_t field) { return field_number(fields[field - 3]); };
  const auto utime = at(14), stime = at(15), start = at(22), vsize = at(23), rss = at(24);
  if (!utime || !stime || !start || !vsize || !rss) return std::nullopt;
  ProcessStat s;
  s.cpu_seconds = (*utime + *stime) / ticks;
  s.start_time_seconds = boot_time + *start / ticks;
  s.virtual_memory_bytes = *vsize;
  s.resident_memory_bytes = *rss * page;
  return s;
}

std::vector<prometheus::MetricFamily> process_metric_families() {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  double boot_time = 0;
  {
    std::istringstream stat(read_file("/proc/stat"));
    std::string key;
    while (stat >> key) {
      if (key == "btime") {
        stat >> boot_time;
        break;
      }
      stat.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
  }
  const auto s =
      parse_proc_stat(read_file("/proc/self/stat"), static_cast<double>(::sysconf(_SC_CLK_TCK)),
                      static_cast<double>(::sysconf(_SC_PAGESIZE)), boot_time);
  if (s) {
    out.push_back(family("process_cpu_seconds_total",
                         "Total user and system CPU time spent in seconds.", MetricType::Counter,
                         s->cpu_seconds));
    if (boot_time > 0) {
      out.push_back(family("process_start_time_seconds",
                           "Start time of the process since unix epoch in seconds.",
                           MetricType::Gauge, s->start_time_seconds));
    }
    out.push_back(family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                         MetricType::Gauge, s->virtual_memory_bytes));
    out.push_back(family("process_resident_memory_bytes", "Resident memory size in bytes.",
                         MetricType::Gauge, s->resident_memory_bytes));
  }
  std::error_code ec;
  std::size_t fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++fds;
  }
  if (!ec) {
    out.push_back(family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
                         static_cast<double>(fds)));
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    out.push_back(family("process_max_fds", "Maximum number of open file descriptors.",
                         MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
  }
  return out;
}

}  // namespace portvigil::exporters_detail
