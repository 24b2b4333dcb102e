#pragma once

#include <span>
#include <string>
#include <string_view>

namespace portvigil {

// `portvigil agent`: the long-running service. Returns the exit status.
int run_agent_command(std::span<const std::string_view> args);

// `portvigil changes|history|baseline|status`: read (or accept) what the agent stored.
int run_changes_command(std::span<const std::string_view> args);
int run_history_command(std::span<const std::string_view> args);
int run_baseline_command(std::span<const std::string_view> args);
int run_status_command(std::span<const std::string_view> args);

// Checks a web configuration file (--web.config.file) as the agent would load it; "" is
// none. Throws InputError naming the file, line and what was expected.
void check_web_config_file(const std::string& path);

}  // namespace portvigil
