// A small HTTP/1.x server on Asio for the agent's endpoint (/metrics, /-/healthy, ...).
//
// Why not prometheus-cpp's civetweb Exposer: civetweb gives each connection a thread from a
// fixed pool, so a handful of idle connections that never finish a request line starve the
// scrapes (two did with the pool of 2; any N beats a pool of N), and its master thread's 2 s
// poll delays shutdown. Here every connection is an asynchronous state machine on one
// thread: idle and slow peers cost a buffer each, never a thread, and are cut off by
// deadlines and a connection cap that evicts the oldest connection first.
//
// Deliberately minimal: GET and HEAD, one request per connection (Connection: close), no
// request bodies, headers bounded in size and time.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace portvigil::http {

struct Request {
  std::string method;         // "GET", "HEAD"
  std::string path;           // the target without the query string
  std::string authorization;  // the Authorization header's value, "" if absent
};

struct Response {
  int status = 200;
  std::string reason = "OK";
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers = {};  // extra header lines
};

// Runs on the server's worker thread, one request at a time: it may take its time (render
// metrics, check a bcrypt hash) without holding up the I/O thread.
using Handler = std::function<Response(const Request&)>;
// Runs on the I/O thread and must not block: answers what it can (health probes) at once,
// nullopt hands the request to the Handler. It keeps probes answering while the worker is
// busy, e.g. with a flood of password guesses.
using ImmediateHandler = std::function<std::optional<Response>(const Request&)>;

// TLS for the server, in the terms of the exporter toolkit's tls_server_config.
enum class ClientAuth {
  none,                // NoClientCert
  request,             // RequestClientCert: asked for, not required, not verified
  require_any,         // RequireAnyClientCert: required, not verified
  verify_if_given,     // VerifyClientCertIfGiven
  require_and_verify,  // RequireAndVerifyClientCert
};
enum class TlsVersion { tls10, tls11, tls12, tls13 };

// A certificate, key or CA file that OpenSSL cannot use; the message names the file.
struct TlsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TlsSettings {
  std::string cert_file;  // PEM, the server certificate first, then its chain
  std::string key_file;   // PEM
  ClientAuth client_auth = ClientAuth::none;
  std::string client_ca_file;  // PEM; required by the verifying client_auth values
  TlsVersion min_version = TlsVersion::tls12;
  std::optional<TlsVersion> max_version;
};

// Builds a TLS context from `tls` and throws it away: TlsError when a file cannot be used.
void check_tls(const TlsSettings& tls);

struct Limits {
  std::size_t max_connections = 256;  // beyond it, the oldest connection is closed
  std::size_t max_header_bytes = 8192;
  // From accept to the end of the response: a peer that sends or reads slowly is cut off.
  std::chrono::milliseconds deadline{10'000};
};

class Server {
 public:
  // Binds `listen_address` ("HOST:PORT", "[V6]:PORT"; PORT 0 picks one) and serves on a
  // thread of its own. Throws std::runtime_error naming the address when it cannot.
  // With `tls`, every connection starts with a TLS handshake (bounded by the deadline);
  // throws TlsError naming the file when a certificate or key cannot be used.
  Server(const std::string& listen_address, Handler handler, Limits limits = {},
         const std::optional<TlsSettings>& tls = std::nullopt, ImmediateHandler immediate = {});
  ~Server();  // closes every connection and joins the threads
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  [[nodiscard]] std::vector<int> ports() const;

  // Replaces the TLS settings for connections accepted from now on (nullopt: plain HTTP).
  // Builds the new context first: on an error it throws and the running one stays.
  void set_tls(const std::optional<TlsSettings>& tls);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses "HOST:PORT" / "[V6]:PORT" with a literal address; throws std::invalid_argument with
// what is wrong. Exposed for tests.
struct Endpoint {
  std::string address;
  unsigned short port = 0;
};
[[nodiscard]] Endpoint parse_listen_address(const std::string& text);

// Parses a request head (everything before the blank line, bytes from the peer): method,
// path without the query, Authorization. An empty method means malformed.
[[nodiscard]] Request parse_request_head(std::string_view head);

[[nodiscard]] std::string base64(const std::string& bytes);

}  // namespace portvigil::http
