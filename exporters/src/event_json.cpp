#include "portvigil/exporters/event_json.hpp"

#include <cstdio>
#include <ctime>

#include "portvigil/exporters/reports.hpp"
#include "report_util.hpp"

namespace portvigil {

std::string json_string(std::string_view text) {
  return report::json_string(text);
}

std::string iso_time(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

std::string event_json(const ChangeEvent& e) {
  std::string out = "{\"id\":" + std::to_string(e.id);
  if (!e.change_id.empty()) out += ",\"change_id\":\"" + e.change_id + "\"";
  out += ",\"time\":\"" + iso_time(e.time) + "\"";
  out += ",\"kind\":\"" + std::string(name(e.kind)) + "\"";
  out += ",\"job\":" + json_string(e.job);
  out += ",\"host\":" + json_string(e.host);
  if (e.kind == EventKind::port) {
    const auto& c = e.change;
    out += ",\"proto\":\"" + std::string(name(c.proto)) + "\"";
    out += ",\"port\":" + std::to_string(c.port);
    out += ",\"from\":\"" + std::string(from_name(c)) + "\"";
    out += ",\"to\":\"" + std::string(name(c.to)) + "\"";
    out += ",\"from_reason\":\"" +
           std::string(c.from_absent ? std::string_view("none") : name(c.from_reason)) + "\"";
    out += ",\"to_reason\":\"" + std::string(name(c.to_reason)) + "\"";
  } else if (e.kind == EventKind::service_changed) {
    // The port stayed open; what answers there changed (service, previous_service).
    out += ",\"proto\":\"" + std::string(name(e.change.proto)) + "\"";
    out += ",\"port\":" + std::to_string(e.change.port);
    out += ",\"from\":\"open\",\"to\":\"open\"";
  } else {
    out += ",\"ports\":[";
    for (std::size_t i = 0; i < e.ports.size(); ++i) {
      if (i > 0) out += ',';
      out += "\"" + std::to_string(e.ports[i].second) + "/" + std::string(name(e.ports[i].first)) +
             "\"";
    }
    out += "]";
  }
  out += ",\"expected\":" + std::string(e.expected ? "true" : "false");
  out += ",\"scan_id\":" + std::to_string(e.scan_id);
  // What answered on a port the event opened: the reports' encoding (docs/scan-json.md).
  if (e.service) out += ",\"service\":" + service_json(*e.service);
  if (e.previous_service) out += ",\"previous_service\":" + service_json(*e.previous_service);
  return out + "}";
}

}  // namespace portvigil
