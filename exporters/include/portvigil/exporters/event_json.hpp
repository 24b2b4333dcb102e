// The one JSON encoding of change events: the event log's lines, the stdout and file sinks,
// the webhook's batches and `changes --json` all write event_json(). Strings go through the
// reports' encoder (json_string), so an event and a -oJ report escape the same bytes the
// same way, and neither can be made invalid JSON by a hostile name or banner.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "portvigil/storage/store.hpp"

namespace portvigil {

[[nodiscard]] std::string event_json(const ChangeEvent& event);
// A quoted JSON string: control bytes as \u00XX, bytes that are not UTF-8 as \ufffd.
[[nodiscard]] std::string json_string(std::string_view text);
// "2026-12-03T18:30:00.123Z": UTC with milliseconds, the events' "time".
[[nodiscard]] std::string iso_time(std::chrono::system_clock::time_point t);

}  // namespace portvigil
