#include "notify.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>

namespace portvigil::notify {

void ready(const std::string& s) {
  sd_notifyf(0, "READY=1\nSTATUS=%s", s.c_str());
}
void status(const std::string& s) {
  sd_notifyf(0, "STATUS=%s", s.c_str());
}

void reloading() {
  // systemd >= 253 matches RELOADING=1 to the reload by MONOTONIC_USEC.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const unsigned long long usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL +
                                  static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
  sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", usec);
}

void stopping() {
  sd_notify(0, "STOPPING=1");
}
void watchdog() {
  sd_notify(0, "WATCHDOG=1");
}

std::optional<std::chrono::microseconds> watchdog_interval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

}  // namespace portvigil::notify
