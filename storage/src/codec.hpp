// How values are spelled in the database: enums as their Nmap names, times as Unix
// milliseconds, scanned port sets as range lists ("1-1024,8080"). Decoders throw
// StorageError on anything they do not recognise, except reasons, which fall back to
// "unknown" so a file written by a build that knows more reasons stays readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "portvigil/common/scan_model.hpp"
#include "portvigil/storage/diff.hpp"
#include "portvigil/storage/store.hpp"

namespace portvigil::storage_detail::codec {

[[nodiscard]] std::int64_t to_ms(std::chrono::system_clock::time_point t);
[[nodiscard]] std::chrono::system_clock::time_point from_ms(std::int64_t ms);

[[nodiscard]] Proto proto_from(const std::string& text);
[[nodiscard]] PortState state_from(const std::string& text);
[[nodiscard]] Reason reason_from(const std::string& text);
[[nodiscard]] Technique technique_from(const std::string& text);
[[nodiscard]] ScanStatus status_from(const std::string& text);
[[nodiscard]] std::uint16_t port_from(std::int64_t value);

[[nodiscard]] std::string encode_ranges(const std::vector<PortRange>& ranges);
[[nodiscard]] std::vector<PortRange> decode_ranges(std::string_view text);

[[nodiscard]] EventKind event_kind_from(const std::string& text);
// Host events' port lists: "22/tcp,53/udp".
[[nodiscard]] std::string encode_port_list(
    const std::vector<std::pair<Proto, std::uint16_t>>& ports);
[[nodiscard]] std::vector<std::pair<Proto, std::uint16_t>> decode_port_list(std::string_view text);

}  // namespace portvigil::storage_detail::codec
