#include "http_server.hpp"

#include <openssl/ssl.h>
#include <algorithm>
#include <array>
#include <asio/bind_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <charconv>
#include <list>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace portvigil::http {

Endpoint parse_listen_address(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw std::invalid_argument("expected HOST:PORT or [V6]:PORT, got \"" + text + "\"");
  }
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      throw std::invalid_argument("unbalanced brackets in \"" + text + "\"");
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    throw std::invalid_argument("an IPv6 address needs brackets: \"[" + host + "]:PORT\"");
  }
  asio::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) throw std::invalid_argument("\"" + host + "\" is not an IP address");
  unsigned value = 0;
  const auto [end, perr] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (port_text.empty() || perr != std::errc{} || end != port_text.data() + port_text.size() ||
      value > 65535) {
    throw std::invalid_argument("port \"" + port_text + "\" is not a number 0-65535");
  }
  return {address.to_string(), static_cast<unsigned short>(value)};
}

std::string base64(const std::string& bytes) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t left = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      v <<= 8;
      if (k < left) v |= static_cast<unsigned char>(bytes[i + k]);
    }
    for (std::size_t k = 0; k < 4; ++k) {
      out += k <= left ? kAlphabet[(v >> (18 - 6 * k)) & 0x3f] : '=';
    }
  }
  return out;
}

namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Request parse_request_head(std::string_view head) {
  Request r;
  const auto eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return r;
  const std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.0" && version != "HTTP/1.1") return r;
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.empty() || target.front() != '/') return r;
  target = target.substr(0, target.find('?'));
  r.path = std::string(target);
  std::string_view rest = eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 2);
  while (!rest.empty()) {
    const auto end = rest.find("\r\n");
    const std::string_view field = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 2);
    const auto colon = field.find(':');
    if (colon == std::string_view::npos) continue;
    if (iequals(field.substr(0, colon), "Authorization")) {
      r.authorization = std::string(trim(field.substr(colon + 1)));
    }
  }
  r.method = std::string(line.substr(0, sp1));
  return r;
}

namespace {

int openssl_version(TlsVersion v) {
  switch (v) {
    case TlsVersion::tls10:
      return TLS1_VERSION;
    case TlsVersion::tls11:
      return TLS1_1_VERSION;
    case TlsVersion::tls12:
      return TLS1_2_VERSION;
    case TlsVersion::tls13:
      return TLS1_3_VERSION;
  }
  return TLS1_2_VERSION;
}

std::shared_ptr<asio::ssl::context> make_tls_context(const TlsSettings& t) {
  namespace ssl = asio::ssl;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_compression |
                   ssl::context::single_dh_use);
  SSL_CTX* native = ctx->native_handle();
  // Resumed sessions fail without a session id context once client certificates are
  // verified; renegotiation would let one peer make the I/O thread redo handshakes.
  static constexpr unsigned char kSessionContext[] = "portvigil";
  SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_min_proto_version(native, openssl_version(t.min_version)) != 1 ||
      (t.max_version &&
       SSL_CTX_set_max_proto_version(native, openssl_version(*t.max_version)) != 1)) {
    throw TlsError("TLS: the min_version/max_version pair is not usable");
  }
  asio::error_code ec;
  ctx->use_certificate_chain_file(t.cert_file, ec);
  if (ec) throw TlsError("TLS cert_file " + t.cert_file + ": " + ec.message());
  ctx->use_private_key_file(t.key_file, ssl::context::pem, ec);
  const bool mismatch = ec && ec.message().find("mismatch") != std::string::npos;
  if (mismatch || (!ec && SSL_CTX_check_private_key(native) != 1)) {
    throw TlsError("TLS key_file " + t.key_file + " is not the key of cert_file " + t.cert_file);
  }
  if (ec) throw TlsError("TLS key_file " + t.key_file + ": " + ec.message());
  const auto accept_any = [](bool, ssl::verify_context&) { return true; };
  switch (t.client_auth) {
    case ClientAuth::none:
      ctx->set_verify_mode(ssl::verify_none);
      break;
    case ClientAuth::request:
      ctx->set_verify_mode(ssl::verify_peer);
      ctx->set_verify_callback(accept_any);
      break;
    case ClientAuth::require_any:
      ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
      ctx->set_verify_callback(accept_any);
      break;
    case ClientAuth::verify_if_given:
      ctx->set_verify_mode(ssl::verify_peer);
      break;
    case ClientAuth::require_and_verify:
      ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
      break;
  }
  if (!t.client_ca_file.empty()) {
    ctx->load_verify_file(t.client_ca_file, ec);
    if (ec) throw TlsError("TLS client_ca_file " + t.client_ca_file + ": " + ec.message());
    // Tells clients which CAs to pick a certificate for.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(t.client_ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(native, names);
    }
  }
  return ctx;
}

std::string status_head(const Response& r, std::size_t length) {
  std::string s = "HTTP/1.1 " + std::to_string(r.status) + " " + r.reason + "\r\n";
  s += "Content-Type: " + r.content_type + "\r\n";
  s += "Content-Length: " + std::to_string(length) + "\r\n";
  s += "Cache-Control: no-store\r\nConnection: close\r\n";
  for (const auto& [k, v] : r.headers) s += k + ": " + v + "\r\n";
  return s + "\r\n";
}

}  // namespace

struct Server::Impl {
  struct Connection {
    explicit Connection(asio::io_context& io) : socket(io), timer(io) {}
    tcp::socket socket;
    asio::steady_timer timer;
    std::shared_ptr<asio::ssl::context> tls_context;  // kept alive while `tls` uses it
    std::optional<asio::ssl::stream<tcp::socket&>> tls;
    std::string buffer;  // the request head so far, then the response
    bool closed = false;
  };
  using ConnectionList = std::list<std::shared_ptr<Connection>>;

  Impl(Handler h, ImmediateHandler i, Limits l)
      : handler(std::move(h)), immediate(std::move(i)), limits(l) {}

  asio::io_context io;
  // The Handler's thread. Declared after `io`, so destroyed first: handlers still queued
  // there release their connections while `io` exists.
  asio::io_context worker;
  asio::executor_work_guard<asio::io_context::executor_type> worker_guard{worker.get_executor()};
  std::vector<tcp::acceptor> acceptors;
  Handler handler;
  ImmediateHandler immediate;
  Limits limits;
  ConnectionList connections;                       // oldest first
  std::shared_ptr<asio::ssl::context> tls_context;  // null: plain HTTP; touched on `io` only
  std::thread thread;
  std::thread worker_thread;

  void accept(tcp::acceptor& acceptor) {
    auto c = std::make_shared<Connection>(io);
    acceptor.async_accept(c->socket, [this, &acceptor, c](const asio::error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) start(c);
      accept(acceptor);  // also after an error such as EMFILE: keep serving
    });
  }

  void start(const std::shared_ptr<Connection>& c) {
    // At the cap the oldest connection goes: a fresh scrape always gets in, and a flood
    // only evicts itself.
    while (connections.size() >= limits.max_connections && !connections.empty()) {
      close(connections.front());
    }
    connections.push_back(c);
    c->timer.expires_after(limits.deadline);
    c->timer.async_wait([this, c](const asio::error_code& ec) {
      if (!ec) close(c);
    });
    c->buffer.reserve(512);
    if (!tls_context) return read(c);
    c->tls_context = tls_context;
    try {
      c->tls.emplace(c->socket, *c->tls_context);
    } catch (const std::exception&) {  // SSL_new failed: out of memory
      return close(c);
    }
    c->tls->async_handshake(asio::ssl::stream_base::server, [this, c](const asio::error_code& ec) {
      if (ec || c->closed) return close(c);
      read(c);
    });
  }

  void read(const std::shared_ptr<Connection>& c) {
    auto chunk = std::make_shared<std::array<char, 1024>>();
    auto on_read = [this, c, chunk](const asio::error_code& ec, std::size_t n) {
      if (ec || c->closed) return close(c);
      const std::size_t scan_from = c->buffer.size() < 3 ? 0 : c->buffer.size() - 3;
      c->buffer.append(chunk->data(), n);
      const auto end = c->buffer.find("\r\n\r\n", scan_from);
      if (end == std::string::npos) {
        if (c->buffer.size() > limits.max_header_bytes) {
          return respond(c, {431, "Request Header Fields Too Large", "text/plain; charset=utf-8",
                             "request head too large\n"});
        }
        return read(c);
      }
      const Request request = parse_request_head(std::string_view(c->buffer).substr(0, end));
      if (request.method.empty()) {
        return respond(c, {400, "Bad Request", "text/plain; charset=utf-8", "bad request\n"});
      }
      if (request.method != "GET" && request.method != "HEAD") {
        return respond(c, {405,
                           "Method Not Allowed",
                           "text/plain; charset=utf-8",
                           "only GET and HEAD\n",
                           {{"Allow", "GET, HEAD"}}});
      }
      if (immediate) {
        if (auto response = immediate(request)) return answer(c, request, *response);
      }
      asio::post(worker, [this, c, request] {
        Response response;
        try {
          response = handler(request);
        } catch (const std::exception& e) {
          response = {500, "Internal Server Error", "text/plain; charset=utf-8",
                      std::string(e.what()) + "\n"};
        }
        asio::post(io, [this, c, request, response = std::move(response)] {
          if (!c->closed) answer(c, request, response);  // else the deadline cut it off
        });
      });
    };
    if (c->tls) {
      c->tls->async_read_some(asio::buffer(*chunk), std::move(on_read));
    } else {
      c->socket.async_read_some(asio::buffer(*chunk), std::move(on_read));
    }
  }

  void answer(const std::shared_ptr<Connection>& c, const Request& request,
              const Response& response) {
    c->buffer = status_head(response, response.body.size());
    if (request.method != "HEAD") c->buffer += response.body;
    write(c);
  }

  void respond(const std::shared_ptr<Connection>& c, const Response& r) {
    c->buffer = status_head(r, r.body.size()) + r.body;
    write(c);
  }

  void write(const std::shared_ptr<Connection>& c) {
    if (!c->tls) {
      asio::async_write(c->socket, asio::buffer(c->buffer),
                        [this, c](const asio::error_code&, std::size_t) { close(c); });
      return;
    }
    // close_notify after the response, so that the client can tell it from a truncation;
    // a peer that never answers it is cut off by the deadline.
    asio::async_write(*c->tls, asio::buffer(c->buffer),
                      [this, c](const asio::error_code& ec, std::size_t) {
                        if (ec || c->closed) return close(c);
                        c->tls->async_shutdown([this, c](const asio::error_code&) { close(c); });
                      });
  }

  void close(const std::shared_ptr<Connection>& c) {
    if (c->closed) return;
    c->closed = true;
    asio::error_code ignored;
    c->socket.shutdown(tcp::socket::shutdown_both, ignored);
    c->socket.close(ignored);
    c->timer.cancel();
    connections.remove(c);
  }
};

Server::Server(const std::string& listen_address, Handler handler, Limits limits,
               const std::optional<TlsSettings>& tls, ImmediateHandler immediate)
    : impl_(std::make_unique<Impl>(std::move(handler), std::move(immediate), limits)) {
  if (tls) impl_->tls_context = make_tls_context(*tls);
  try {
    const Endpoint e = parse_listen_address(listen_address);
    tcp::endpoint endpoint(asio::ip::make_address(e.address), e.port);
    tcp::acceptor acceptor(impl_->io);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);
    impl_->acceptors.push_back(std::move(acceptor));
  } catch (const std::exception& e) {
    throw std::runtime_error(e.what());
  }
  for (auto& a : impl_->acceptors) impl_->accept(a);
  impl_->worker_thread = std::thread([this] { impl_->worker.run(); });
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

Server::~Server() {
  asio::post(impl_->io, [this] {
    for (auto& a : impl_->acceptors) {
      asio::error_code ignored;
      a.close(ignored);
    }
    while (!impl_->connections.empty()) impl_->close(impl_->connections.front());
    impl_->io.stop();
  });
  impl_->thread.join();
  impl_->worker_guard.reset();
  impl_->worker.stop();  // a request still in the handler finishes first
  impl_->worker_thread.join();
}

void check_tls(const TlsSettings& tls) {
  (void)make_tls_context(tls);
}

void Server::set_tls(const std::optional<TlsSettings>& tls) {
  std::shared_ptr<asio::ssl::context> context;
  if (tls) context = make_tls_context(*tls);
  asio::post(impl_->io, [impl = impl_.get(), context] { impl->tls_context = context; });
}

std::vector<int> Server::ports() const {
  std::vector<int> out;
  for (const auto& a : impl_->acceptors) {
    asio::error_code ec;
    const auto ep = a.local_endpoint(ec);
    if (!ec) out.push_back(ep.port());
  }
  return out;
}

}  // namespace portvigil::http
