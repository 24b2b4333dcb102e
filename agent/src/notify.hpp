// systemd readiness, status, reload and watchdog notifications (sd_notify(3)); no-ops
// when the agent does not run under systemd (no $NOTIFY_SOCKET).
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace portvigil::notify {

void ready(const std::string& status);
void status(const std::string& status);
void reloading();  // RELOADING=1 with MONOTONIC_USEC, then ready() when done
void stopping();
void watchdog();
// The interval to ping at (half of WatchdogSec=), if the watchdog is enabled.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace portvigil::notify
