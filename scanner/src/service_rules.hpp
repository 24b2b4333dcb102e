// What the bytes a port sent say about its protocol: pure rules written from the protocol
// specifications (no Nmap data). Every byte is the target's and is treated as hostile:
// every read is bounds-checked, and every text kept is printable ASCII with a length limit.
// Fuzzed by tests/fuzz/fuzz_service_rules.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "portvigil/common/service.hpp"

namespace portvigil::service {

inline constexpr std::size_t kMaxRead = 512;   // bytes read from a greeting or a reply
inline constexpr std::size_t kMaxLine = 128;   // characters kept of a banner line
inline constexpr std::size_t kMaxField = 128;  // characters kept of a certificate name

// `text` with every byte outside printable ASCII (0x20-0x7e) written as '.', surrounding
// spaces trimmed, cut to `limit` characters.
[[nodiscard]] std::string sanitise(std::string_view text, std::size_t limit = kMaxLine);

// The first line of `bytes` (up to CR or LF), sanitised.
[[nodiscard]] std::string first_line(std::string_view bytes);

// Whether a greeting has been read far enough to classify: a whole line, or a whole MySQL
// handshake packet (which has no line end).
[[nodiscard]] bool greeting_complete(std::string_view bytes);

struct Greeting {
  std::string protocol;  // "" when no rule matched
  std::string line;      // the banner line to show
};

// A greeting the server sent unasked:
//   SSH   RFC 4253 4.2: a line "SSH-protoversion-softwareversion ..." (other lines may come
//         first);
//   SMTP  RFC 5321 4.2 / FTP RFC 959 4.2: "220" (or SMTP's "554") greeting; which of the two
//         is read from the text ("SMTP"/"ESMTP", "FTP"), else from the well-known port;
//   POP3  RFC 1939 4: "+OK";
//   IMAP  RFC 3501 7.1: "* OK", "* PREAUTH" or "* BYE";
//   MySQL client/server protocol: a packet (3-byte length, sequence 0) holding a protocol-10
//         handshake (server version follows) or an error packet (0xff).
[[nodiscard]] Greeting classify_greeting(std::string_view bytes, std::uint16_t port);

// An HTTP response's status line and Server header (RFC 9112 4, RFC 9110 10.2.4).
[[nodiscard]] std::optional<HttpHead> parse_http_head(std::string_view bytes);

// Whether a reply has all of an HTTP response's header block (or cannot be one).
[[nodiscard]] bool reply_complete(std::string_view bytes);

// PostgreSQL's one-byte answer to an SSLRequest (protocol 3.0, 53.2.10): 'S' or 'N'.
[[nodiscard]] bool is_postgres_ssl_answer(std::string_view bytes);

// The 8-byte SSLRequest message: length 8, code 80877103.
[[nodiscard]] std::string_view postgres_ssl_request();

}  // namespace portvigil::service
