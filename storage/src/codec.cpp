#include "codec.hpp"

#include <algorithm>
#include <charconv>

namespace portvigil::storage_detail::codec {
namespace {

[[noreturn]] void corrupt(std::string_view what, std::string_view value) {
  throw StorageError("portvigil storage: unrecognised " + std::string(what) + " '" +
                     std::string(value) + "' in database");
}

}  // namespace

std::int64_t to_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::chrono::system_clock::time_point from_ms(std::int64_t ms) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::milliseconds(ms)));
}

Proto proto_from(const std::string& text) {
  if (const auto p = parse_proto(text)) return *p;
  corrupt("protocol", text);
}

PortState state_from(const std::string& text) {
  if (const auto s = parse_port_state(text)) return *s;
  corrupt("port state", text);
}

Reason reason_from(const std::string& text) {
  return parse_reason(text).value_or(Reason::unknown);
}

Technique technique_from(const std::string& text) {
  if (const auto t = parse_technique(text)) return *t;
  corrupt("technique", text);
}

ScanStatus status_from(const std::string& text) {
  for (const ScanStatus s : {ScanStatus::running, ScanStatus::complete, ScanStatus::incomplete}) {
    if (name(s) == text) return s;
  }
  corrupt("scan status", text);
}

std::uint16_t port_from(std::int64_t value) {
  if (value < 0 || value > 65535) corrupt("port", std::to_string(value));
  return static_cast<std::uint16_t>(value);
}

std::string encode_ranges(const std::vector<PortRange>& ranges) {
  std::string out;
  for (const PortRange& r : ranges) {
    if (!out.empty()) out += ',';
    out += std::to_string(r.first);
    if (r.last != r.first) {
      out += '-';
      out += std::to_string(r.last);
    }
  }
  return out;
}

std::vector<PortRange> decode_ranges(std::string_view text) {
  std::vector<PortRange> out;
  const char* p = text.data();
  const char* const end = text.data() + text.size();
  auto number = [&]() {
    unsigned value = 0;
    const auto [next, ec] = std::from_chars(p, end, value);
    if (ec != std::errc{} || value > 65535) corrupt("port set", text);
    p = next;
    return static_cast<std::uint16_t>(value);
  };
  while (p < end) {
    PortRange r;
    r.first = r.last = number();
    if (p < end && *p == '-') {
      ++p;
      r.last = number();
    }
    // Must stay sorted and disjoint: ProtoSnapshot::scanned_port() binary-searches them.
    if (r.last < r.first || (!out.empty() && r.first <= out.back().last)) {
      corrupt("port set", text);
    }
    out.push_back(r);
    if (p < end) {
      if (*p != ',') corrupt("port set", text);
      ++p;
      if (p == end) corrupt("port set", text);
    }
  }
  return out;
}

EventKind event_kind_from(const std::string& text) {
  if (const auto k = parse_event_kind(text)) return *k;
  corrupt("event kind", text);
}

std::string encode_port_list(const std::vector<std::pair<Proto, std::uint16_t>>& ports) {
  std::string out;
  for (const auto& [proto, port] : ports) {
    if (!out.empty()) out += ',';
    out += std::to_string(port) + "/" + std::string(name(proto));
  }
  return out;
}

std::vector<std::pair<Proto, std::uint16_t>> decode_port_list(std::string_view text) {
  std::vector<std::pair<Proto, std::uint16_t>> out;
  if (text.empty()) return out;
  while (true) {
    const auto comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    const auto slash = item.find('/');
    std::uint32_t port = 0;
    const auto [end, ec] =
        std::from_chars(item.data(), item.data() + std::min(slash, item.size()), port);
    const auto proto =
        slash == std::string_view::npos ? std::nullopt : parse_proto(item.substr(slash + 1));
    if (ec != std::errc{} || end != item.data() + slash || port > 65535 || !proto) {
      corrupt("port list item", item);
    }
    // corrupt() does not return; spelt out so that GCC sees proto is set (-Wmaybe-uninitialized).
    out.emplace_back(proto ? *proto : Proto::tcp, static_cast<std::uint16_t>(port));
    if (comma == std::string_view::npos) return out;
    text = text.substr(comma + 1);  // "22/tcp," leaves an empty item: corrupt
  }
}

}  // namespace portvigil::storage_detail::codec
