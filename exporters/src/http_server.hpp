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
#include <string>
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

using Handler = std::function<Response(const Request&)>;

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
  Server(const std::string& listen_address, Handler handler, Limits limits = {});
  ~Server();  // closes every connection and joins the thread
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  [[nodiscard]] std::vector<int> ports() const;

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

[[nodiscard]] std::string base64(const std::string& bytes);

}  // namespace portvigil::http
