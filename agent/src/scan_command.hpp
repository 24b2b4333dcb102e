#pragma once

#include <span>
#include <string_view>

namespace portvigil {

// `portvigil scan ...`: returns the process exit status (0 ok, 1 failed, 2 bad input).
int run_scan_command(std::span<const std::string_view> args);

}  // namespace portvigil
