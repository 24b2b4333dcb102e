// portvigil: one binary, several subcommands.
#include <iostream>
#include <string_view>
#include <vector>

#include "portvigil/common/version.hpp"
#include "scan_command.hpp"

namespace {

constexpr std::string_view kUsage =
    "Usage: portvigil COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  scan       scan targets once and print the results as Nmap does\n"
    "             (portvigil scan --help for its options)\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help and exit\n"
    "  -V, --version  show the version and exit\n";

}  // namespace

int main(int argc, char** argv) {
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
    std::cout << "portvigil " << portvigil::kVersion << "\n";
    return 0;
  }
  const std::span<const std::string_view> rest(args.data() + 1, args.size() - 1);
  if (command == "scan") return portvigil::run_scan_command(rest);
  std::cerr << "portvigil: unknown command \"" << command << "\" (see portvigil --help)\n";
  return 2;
}
