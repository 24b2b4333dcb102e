// What answers on an open TCP port, as the identification step (scanner/service_id.hpp)
// read it: the shared data model of the scanner, the store, the event encoders and the
// agent.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace portvigil {

// How far identification got. Everything but `identified` and `unrecognised` leaves the
// protocol empty.
enum class ServiceOutcome : std::uint8_t {
  identified,    // the bytes matched a protocol rule
  unrecognised,  // the port sent bytes no rule knows (banner and hash are kept)
  silent,        // connected, but no banner, no TLS and no reply to HEAD /
  not_probed,    // a port on the never-probe list (printers): nothing was sent
  out_of_scope,  // the address is outside the authorized scope: nothing was sent
  unreachable,   // the connection was refused or could not be made
  timed_out,     // the per-port time limit ran out before anything was learned
};

[[nodiscard]] const char* to_string(ServiceOutcome o);

struct TlsCertificate {
  std::string version;            // negotiated protocol, "TLSv1.3"
  std::string subject_cn;         // "" when the subject has no common name
  std::vector<std::string> sans;  // DNS names and IP addresses, at most kMaxSans
  std::string issuer_cn;
  std::chrono::system_clock::time_point not_before{};
  std::chrono::system_clock::time_point not_after{};
  bool self_signed = false;
  std::string sha256;  // fingerprint of the DER certificate, lower-case hex
  static constexpr std::size_t kMaxSans = 5;
};

struct HttpHead {
  int status = 0;           // 200
  std::string status_line;  // "HTTP/1.1 200 OK", sanitised
  std::string server;       // the Server header, sanitised; "" when absent
};

struct ServiceIdentity {
  ServiceOutcome outcome = ServiceOutcome::silent;
  std::string protocol;       // "ssh", "smtp", "ftp", "pop3", "imap", "mysql", "postgresql",
                              // "http", "https", "tls"; "" when not identified
  std::string banner;         // the greeting's first line: printable ASCII, at most 128 chars
  std::string banner_sha256;  // of the raw bytes read, "" when none were read
  std::optional<TlsCertificate> tls;
  std::optional<HttpHead> http;
};

// One line for `changes`, `history` and logs, e.g.
//   "ssh: SSH-2.0-OpenSSH_9.2p1"
//   "https: TLSv1.3, CN staging.internal, self-signed, expires 2027-03-01; HTTP 200, Server Jetty
//   9" "not probed (never-probe port)"
[[nodiscard]] std::string summary(const ServiceIdentity& s);

// The part of summary() after "protocol: ": the Nmap-style VERSION column; for outcomes
// other than identified/unrecognised, the whole summary.
[[nodiscard]] std::string service_details(const ServiceIdentity& s);

// A read that says what answers (identified, unrecognised or silent), not one that could not
// tell (timed out, no connection, not probed): only conclusive reads are compared.
[[nodiscard]] bool conclusive(const ServiceIdentity& s);

// Whether two conclusive reads of a port show the same service, as watch-services compares
// them: the protocol (plain or TLS included), an SSH identification string, the TLS
// certificate's fingerprint and, when both reads got an HTTP answer, the Server header (a
// read whose time ran out before HEAD / was answered is no change). Other banners are not
// compared: SMTP and FTP greetings often carry the time of day.
[[nodiscard]] bool same_service(const ServiceIdentity& a, const ServiceIdentity& b);

// A short digest of everything same_service() may compare, for change ids.
[[nodiscard]] std::string service_digest(const ServiceIdentity& s);

// An open TCP port's identity in a host's results.
struct PortService {
  std::uint16_t port = 0;
  ServiceIdentity identity;
};

}  // namespace portvigil
