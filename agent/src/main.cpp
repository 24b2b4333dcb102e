// portvigil: one binary, several subcommands.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <string_view>
#include <vector>

#include "agent_command.hpp"
#include "portvigil/common/printable.hpp"
#include "portvigil/common/version.hpp"
#include "portvigil/config/agent_config.hpp"
#include "scan_command.hpp"

namespace {

constexpr std::string_view kUsage =
    "Usage: portvigil COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  agent         run the monitoring service (the built-in default watches 127.0.0.1)\n"
    "  scan          scan targets once and print the results as Nmap does\n"
    "  check-config  validate an agent configuration file\n"
    "  changes       list confirmed port state changes\n"
    "  history       show a host's recorded transitions\n"
    "  baseline      accept the currently open ports as expected\n"
    "  status        show the latest scan of every job\n"
    "Each command has --help.\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help and exit\n"
    "  -V, --version  show the version and exit\n";

// Started with stdin, stdout or stderr closed, the next file opened (the database, the
// event log) would take that number, and events or log lines would be written into it.
void occupy_closed_standard_descriptors() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF &&
        ::open("/dev/null", O_RDWR) != fd) {  // the lowest free number: this one
      static constexpr char kMessage[] =
          "portvigil: a standard descriptor is closed and /dev/null cannot be opened\n";
      (void)!::write(2, kMessage, sizeof kMessage - 1);
      std::_Exit(1);
    }
  }
}
}  // namespace

int main(int argc, char** argv) {
  occupy_closed_standard_descriptors();
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  const auto command = args.front();
  if (command == "-h" || command == "--help" || command == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (command == "-V" || command == "--version") {
    std::cout << "portvigil " << portvigil::kVersion << " (revision " << portvigil::kRevision
              << ", built with " << portvigil::kCompiler << ")\n";
    return 0;
  }
  const std::span<const std::string_view> rest(args.data() + 1, args.size() - 1);
  if (command == "scan") return portvigil::run_scan_command(rest);
  if (command == "agent") return portvigil::run_agent_command(rest);
  if (command == "check-config") {
    return portvigil::check_config_command(rest, [](const portvigil::Config& config) {
      portvigil::check_web_config_file(config.agent.web_config_file);
    });
  }
  if (command == "changes") return portvigil::run_changes_command(rest);
  if (command == "history") return portvigil::run_history_command(rest);
  if (command == "baseline") return portvigil::run_baseline_command(rest);
  if (command == "status") return portvigil::run_status_command(rest);
  std::cerr << "portvigil: unknown command \"" << portvigil::printable(command)
            << "\" (see portvigil --help)\n";
  return 2;
}
