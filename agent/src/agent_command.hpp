#pragma once

#include <span>
#include <string_view>

namespace portvigil {

// `portvigil agent`: the long-running service. Returns the exit status.
int run_agent_command(std::span<const std::string_view> args);

// `portvigil changes|history|baseline|status`: read (or accept) what the agent stored.
int run_changes_command(std::span<const std::string_view> args);
int run_history_command(std::span<const std::string_view> args);
int run_baseline_command(std::span<const std::string_view> args);
int run_status_command(std::span<const std::string_view> args);

}  // namespace portvigil
