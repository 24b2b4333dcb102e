// Port facts the project writes itself (never Nmap's data files, whose license would bind us):
// IANA-style service names and a ranking of the ports most often found exposed.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "portvigil/common/scan_model.hpp"

namespace portvigil {

// Service name for a port, e.g. (tcp, 22) -> "ssh"; "" when the project knows none.
[[nodiscard]] std::string_view service_name(Proto proto, std::uint16_t port);

// Ports ranked from most to least commonly exposed; --top-ports N takes the first N and
// -F the first 100. Holds at least 1000 distinct ports per protocol, none of them 0.
[[nodiscard]] std::span<const std::uint16_t> ranked_ports(Proto proto);

}  // namespace portvigil
