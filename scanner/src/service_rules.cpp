#include "service_rules.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace portvigil::service {
namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

bool contains_word(std::string_view line, std::string_view word) {
  std::string upper(line);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return upper.find(word) != std::string::npos;
}

// The lines of `bytes`, each without its CR LF; the last one may be partial.
template <class F>
void for_each_line(std::string_view bytes, F&& f) {
  while (!bytes.empty()) {
    const auto end = bytes.find('\n');
    std::string_view line = bytes.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (f(line)) return;
    if (end == std::string_view::npos) return;
    bytes.remove_prefix(end + 1);
  }
}

// A MySQL packet's payload when `bytes` starts with a whole packet of sequence 0.
std::optional<std::string_view> mysql_payload(std::string_view bytes) {
  if (bytes.size() < 5) return std::nullopt;
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  const std::size_t length = b(0) | (b(1) << 8) | (static_cast<std::size_t>(b(2)) << 16);
  if (b(3) != 0 || length == 0 || length > bytes.size() - 4) return std::nullopt;
  return bytes.substr(4, length);
}

std::optional<std::string> mysql_greeting(std::string_view bytes) {
  const auto payload = mysql_payload(bytes);
  if (!payload) return std::nullopt;
  if (payload->front() == '\x0a') {  // protocol 10 handshake: NUL-terminated server version
    const std::string_view rest = payload->substr(1);
    const auto nul = rest.find('\0');
    if (nul == std::string_view::npos || nul == 0 || nul > 64) return std::nullopt;
    const std::string_view version = rest.substr(0, nul);
    if (!std::all_of(version.begin(), version.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
      return std::nullopt;
    }
    return "MySQL " + std::string(version);
  }
  if (static_cast<unsigned char>(payload->front()) == 0xff && payload->size() > 3) {
    // Error packet before the handshake ("Host ... is not allowed to connect"): 2-byte code,
    // then the message.
    return "MySQL error: " + sanitise(payload->substr(3));
  }
  return std::nullopt;
}

}  // namespace

std::string sanitise(std::string_view text, std::size_t limit) {
  std::string out;
  out.reserve(std::min(text.size(), limit));
  for (const char c : text) {
    if (out.size() == limit) break;
    out.push_back(c >= 0x20 && c < 0x7f ? c : '.');
  }
  const auto first = out.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  out.erase(out.find_last_not_of(' ') + 1);
  out.erase(0, first);
  return out;
}

std::string first_line(std::string_view bytes) {
  return sanitise(bytes.substr(0, bytes.find_first_of("\r\n")));
}

bool greeting_complete(std::string_view bytes) {
  // A MySQL handshake starts with a length, sequence 0 and protocol 10, which is also LF:
  // it is complete when the whole packet is, not at its first LF.
  const bool mysql_start =
      bytes.size() >= 5 && bytes[3] == '\0' && (bytes[4] == '\x0a' || bytes[4] == '\xff');
  if (mysql_start) return mysql_payload(bytes).has_value();
  return bytes.find('\n') != std::string_view::npos;
}

Greeting classify_greeting(std::string_view bytes, std::uint16_t port) {
  Greeting g;
  std::string_view ssh_line;
  for_each_line(bytes, [&](std::string_view line) {
    if (starts_with(line, "SSH-")) {
      ssh_line = line;
      return true;
    }
    return false;
  });
  if (!ssh_line.empty()) {
    g.protocol = "ssh";
    g.line = sanitise(ssh_line);
    return g;
  }
  if (auto mysql = mysql_greeting(bytes)) {
    g.protocol = "mysql";
    g.line = sanitise(*mysql);
    return g;
  }
  g.line = first_line(bytes);
  const std::string_view line = bytes.substr(0, bytes.find_first_of("\r\n"));
  const bool reply_code =
      line.size() >= 3 && (line.size() == 3 || line[3] == ' ' || line[3] == '-');
  if (reply_code && (starts_with(line, "220") || starts_with(line, "554"))) {
    if (contains_word(line, "SMTP")) {
      g.protocol = "smtp";
    } else if (contains_word(line, "FTP")) {
      g.protocol = "ftp";
    } else if (port == 21 || port == 990) {
      g.protocol = "ftp";
    } else if (port == 25 || port == 465 || port == 587 || port == 2525) {
      g.protocol = "smtp";
    }
  } else if (starts_with(line, "+OK")) {
    g.protocol = "pop3";
  } else if (starts_with(line, "* OK") || starts_with(line, "* PREAUTH") ||
             starts_with(line, "* BYE")) {
    g.protocol = "imap";
  } else if (parse_http_head(bytes).has_value()) {
    g.protocol = "http";  // a server that speaks first with an HTTP response (rare)
  }
  return g;
}

std::optional<HttpHead> parse_http_head(std::string_view bytes) {
  // Status line: HTTP-version SP 3DIGIT SP [reason]
  if (!starts_with(bytes, "HTTP/") || bytes.size() < 12) return std::nullopt;
  const std::string_view line = bytes.substr(0, bytes.find_first_of("\r\n"));
  const auto space = line.find(' ');
  if (space == std::string_view::npos || space > 8 || line.size() < space + 4) return std::nullopt;
  const std::string_view code = line.substr(space + 1, 3);
  if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      (line.size() > space + 4 && line[space + 4] != ' ')) {
    return std::nullopt;
  }
  HttpHead head;
  head.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
  head.status_line = sanitise(line);
  bool first = true;
  for_each_line(bytes, [&](std::string_view header) {
    if (first) {
      first = false;
      return false;
    }
    if (header.empty()) return true;  // end of the header block
    const auto colon = header.find(':');
    if (colon == 6 && contains_word(header.substr(0, 6), "SERVER")) {
      head.server = sanitise(header.substr(colon + 1));
      return true;
    }
    return false;
  });
  return head;
}

bool reply_complete(std::string_view bytes) {
  if (bytes.find("\r\n\r\n") != std::string_view::npos ||
      bytes.find("\n\n") != std::string_view::npos) {
    return true;
  }
  // Not an HTTP response at all (a prefix of "HTTP/" still may be one).
  const std::string_view http = "HTTP/";
  const std::size_t n = std::min(bytes.size(), http.size());
  return bytes.substr(0, n) != http.substr(0, n);
}

bool is_postgres_ssl_answer(std::string_view bytes) {
  return bytes.size() == 1 && (bytes[0] == 'S' || bytes[0] == 'N');
}

std::string_view postgres_ssl_request() {
  static constexpr std::array<char, 8> kRequest{0, 0, 0, 8, 0x04, '\xd2', 0x16, 0x2f};
  return {kRequest.data(), kRequest.size()};
}

}  // namespace portvigil::service
