#include "report_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "portvigil/common/port_knowledge.hpp"
#include "portvigil/exporters/reports.hpp"

namespace portvigil::report {
namespace {

constexpr std::string_view kHex = "0123456789abcdef";

// Length of the well-formed UTF-8 sequence starting at text[i] (RFC 3629: no overlongs,
// no surrogates, nothing above U+10FFFF), or 0 when the byte there does not start one.
std::size_t utf8_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const unsigned char c = byte(i + k);
    const unsigned char min = k == 1 ? lo : static_cast<unsigned char>(0x80);
    const unsigned char max = k == 1 ? hi : static_cast<unsigned char>(0xBF);
    if (c < min || c > max) return 0;
  }
  return len;
}

void append_hex_byte(std::string& out, unsigned char c) {
  out += kHex[c >> 4];
  out += kHex[c & 0x0F];
}

std::tm utc(TimePoint t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return tm;
}

std::string strftime_utc(TimePoint t, const char* format) {
  const std::tm tm = utc(t);
  std::array<char, 64> buf{};
  const std::size_t n = std::strftime(buf.data(), buf.size(), format, &tm);
  return {buf.data(), n};
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t len = utf8_length(text, i);
    if (len == 0 || (c < 0x20 && c != '\t' && c != '\n' && c != '\r')) {
      out += "\\x";
      append_hex_byte(out, c);
      ++i;
      continue;
    }
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      // Attribute-value normalisation would turn raw whitespace into spaces.
      case '\t':
        out += "&#9;";
        break;
      case '\n':
        out += "&#10;";
        break;
      case '\r':
        out += "&#13;";
        break;
      default:
        out.append(text.substr(i, len));
        break;
    }
    i += len;
  }
  return out;
}

std::string json_string(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t len = utf8_length(text, i);
    if (len == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\u00";
      append_hex_byte(out, c);
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  out += '"';
  return out;
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      append_hex_byte(out, c);
    } else {
      out += ch;
    }
  }
  return out;
}

std::int64_t unix_seconds(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::string ctime_utc(TimePoint t) {
  return strftime_utc(t, "%a %b %e %H:%M:%S %Y");
}
std::string iso8601_utc(TimePoint t) {
  return strftime_utc(t, "%Y-%m-%dT%H:%M:%SZ");
}
std::string minutes_utc(TimePoint t) {
  return strftime_utc(t, "%Y-%m-%d %H:%M UTC");
}

std::string fixed(double value, int decimals) {
  if (!std::isfinite(value)) return "0";
  std::array<char, 64> buf{};
  const int n = std::snprintf(buf.data(), buf.size(), "%.*f", decimals, value);
  if (n <= 0) return "0";
  return {buf.data(), std::min(static_cast<std::size_t>(n), buf.size() - 1)};
}

std::string port_ranges(const std::vector<std::uint16_t>& sorted_ports) {
  std::string out;
  for (std::size_t i = 0; i < sorted_ports.size();) {
    std::size_t j = i;
    while (j + 1 < sorted_ports.size() && sorted_ports[j + 1] == sorted_ports[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(sorted_ports[i]);
    if (j > i) {
      out += '-';
      out += std::to_string(sorted_ports[j]);
    }
    i = j + 1;
  }
  return out;
}

std::string reason_word(Reason reason, std::size_t count) {
  std::string word{name(reason)};
  if (count == 1 || reason == Reason::conn_refused) return word;
  if (word.ends_with("unreach")) return word + "es";
  return word + "s";
}

std::string address_text(const HostResult& host) {
  return host.address.to_string();
}

std::string_view family(const HostResult& host) {
  return host.address.is_v6() ? "ipv6" : "ipv4";
}

std::string host_label(const HostResult& host) {
  if (host.hostname.empty()) return address_text(host);
  return host.hostname + " (" + address_text(host) + ")";
}

std::string done_summary(const ScanSummary& summary) {
  std::string out = std::to_string(summary.hosts_total);
  out += summary.hosts_total == 1 ? " IP address (" : " IP addresses (";
  out += std::to_string(summary.hosts_up);
  out += summary.hosts_up == 1 ? " host up)" : " hosts up)";
  out += " scanned in ";
  out += fixed(summary.elapsed.count(), 2);
  out += " seconds";
  return out;
}

std::vector<HiddenGroup> majority_groups(const HostResult& host) {
  std::vector<HiddenGroup> groups;
  for (const Proto proto : kProtos) {
    const auto m = majority_state(host, proto);
    if (!m) continue;
    groups.push_back(HiddenGroup{proto, m->state, m->count, m->reasons});
  }
  return groups;
}

bool in_groups(const std::vector<HiddenGroup>& groups, const PortResult& port) {
  for (const auto& g : groups) {
    if (g.proto == port.proto && g.state == port.state) return true;
  }
  return false;
}

std::string_view service_of(const PortResult& port) {
  return service_name(port.proto, port.port);
}

const ServiceIdentity* identity_of(const HostResult& host, const PortResult& port) {
  if (port.proto != Proto::tcp || host.services.empty()) return nullptr;
  const auto it =
      std::lower_bound(host.services.begin(), host.services.end(), port.port,
                       [](const PortService& s, std::uint16_t p) { return s.port < p; });
  return it != host.services.end() && it->port == port.port ? &it->identity : nullptr;
}

std::string service_name_of(const HostResult& host, const PortResult& port) {
  const ServiceIdentity* id = identity_of(host, port);
  if (id != nullptr && !id->protocol.empty()) return id->protocol;
  return std::string(service_of(port));
}

}  // namespace portvigil::report

namespace portvigil {

std::string service_json(const ServiceIdentity& s) {
  using report::iso8601_utc;
  using report::json_string;
  std::string out = "{\"outcome\": " + json_string(to_string(s.outcome)) +
                    ", \"protocol\": " + json_string(s.protocol) +
                    ", \"banner\": " + json_string(s.banner) +
                    ", \"banner_sha256\": " + json_string(s.banner_sha256) +
                    ", \"summary\": " + json_string(summary(s));
  if (s.tls) {
    const auto& t = *s.tls;
    out += ", \"tls\": {\"version\": " + json_string(t.version) +
           ", \"subject_cn\": " + json_string(t.subject_cn) + ", \"sans\": [";
    for (std::size_t i = 0; i < t.sans.size(); ++i) {
      out += (i == 0 ? "" : ", ") + json_string(t.sans[i]);
    }
    out += "], \"issuer_cn\": " + json_string(t.issuer_cn) +
           ", \"not_before\": " + json_string(iso8601_utc(t.not_before)) +
           ", \"not_after\": " + json_string(iso8601_utc(t.not_after)) +
           ", \"self_signed\": " + (t.self_signed ? "true" : "false") +
           ", \"sha256\": " + json_string(t.sha256) + "}";
  }
  if (s.http) {
    out += ", \"http\": {\"status\": " + std::to_string(s.http->status) +
           ", \"status_line\": " + json_string(s.http->status_line) +
           ", \"server\": " + json_string(s.http->server) + "}";
  }
  return out + "}";
}

}  // namespace portvigil

namespace portvigil::report {

namespace {

// Groups a host's ports by (protocol, state) and keeps the groups `hide` selects, each with
// its reason tally (largest first); groups of one protocol are ordered largest first.
template <typename Hide>
std::vector<HiddenGroup> grouped(const HostResult& host, Hide&& hide) {
  std::vector<HiddenGroup> groups;
  for (const Proto proto : kProtos) {
    std::array<std::array<std::size_t, kReasonCount>, kPortStateCount> tally{};
    std::array<std::size_t, kPortStateCount> per_state{};
    for (const auto& p : host.ports) {
      if (p.proto != proto) continue;
      ++tally[static_cast<std::size_t>(p.state)][static_cast<std::size_t>(p.reason)];
      ++per_state[static_cast<std::size_t>(p.state)];
    }
    const auto first = groups.size();
    for (std::size_t st = 0; st < kPortStateCount; ++st) {
      if (per_state[st] == 0 || !hide(static_cast<PortState>(st), per_state[st])) continue;
      HiddenGroup g{proto, static_cast<PortState>(st), per_state[st], {}};
      for (std::size_t r = 0; r < kReasonCount; ++r) {
        if (tally[st][r] != 0) g.reasons.emplace_back(static_cast<Reason>(r), tally[st][r]);
      }
      std::stable_sort(g.reasons.begin(), g.reasons.end(),
                       [](const auto& a, const auto& b) { return a.second > b.second; });
      groups.push_back(std::move(g));
    }
    std::stable_sort(groups.begin() + static_cast<std::ptrdiff_t>(first), groups.end(),
                     [](const auto& a, const auto& b) { return a.count > b.count; });
  }
  return groups;
}

}  // namespace

std::vector<HiddenGroup> non_open_groups(const HostResult& host) {
  // Nmap's --open keeps the states that have open as a possibility, and unfiltered.
  return grouped(host, [](PortState s, std::size_t) {
    return s != PortState::open && s != PortState::open_filtered && s != PortState::unfiltered;
  });
}

std::vector<HiddenGroup> hidden_groups(const HostResult& host, bool open_only) {
  if (open_only) return non_open_groups(host);
  // Nmap's rule (PortList::isIgnoredState): every state but open with more than 25 ports.
  return grouped(host, [](PortState s, std::size_t count) {
    return s != PortState::open && count >= MajorityState::kMinCollapsed;
  });
}

}  // namespace portvigil::report
