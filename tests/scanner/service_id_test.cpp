// Service identification against servers this test runs on loopback: a greeting server,
// plain HTTP, HTTPS with a certificate made here, a silent port, a PostgreSQL-like server,
// a never-probe port, a closed port and an address outside the scope.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "portvigil/common/digest.hpp"
#include "portvigil/scanner/service_id.hpp"
#include "service_rules.hpp"

namespace portvigil {
namespace {

using namespace std::string_literals;

// Reads from `fd` until `done(received)` or the peer closes or `limit` passes.
std::string read_until(int fd, const std::function<bool(const std::string&)>& done,
                       std::chrono::milliseconds limit = std::chrono::milliseconds(3000)) {
  std::string got;
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done(got) && std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[1024];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// A TCP listener on ADDRESS:0 serving one connection at a time with `serve(fd)` on its own
// thread; counts connections.
class LoopbackServer {
 public:
  LoopbackServer(const char* address, std::function<void(int)> serve, bool accept = true)
      : serve_(std::move(serve)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    ::inet_pton(AF_INET, address, &sa.sin_addr);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0) << address;
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof sa;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    if (accept) thread_ = std::thread([this] { loop(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  std::uint16_t port() const { return port_; }
  int connections() const { return connections_; }
  // Connections waiting in the backlog of a listener that does not accept.
  bool has_pending() const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      ++connections_;
      serve_(conn);
      ::close(conn);
    }
  }

  std::function<void(int)> serve_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

bool has_head_end(const std::string& s) {
  return s.find("\r\n\r\n") != std::string::npos;
}

// A self-signed P-256 certificate for CN staging.internal with three SANs, valid 30 days.
struct TestCertificate {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  TestCertificate() {
    key = EVP_EC_gen("P-256");
    cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 30L * 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("staging.internal"), -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name,
                                              "DNS:staging.internal,DNS:alt.internal,IP:127.0.0.1");
    X509_add_ext(cert, san, -1);
    X509_EXTENSION_free(san);
    X509_sign(cert, key, EVP_sha256());
  }
  ~TestCertificate() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  std::string der_sha256() const {
    unsigned char* der = nullptr;
    const int n = i2d_X509(cert, &der);
    std::string out = sha256_hex({reinterpret_cast<char*>(der), static_cast<std::size_t>(n)});
    OPENSSL_free(der);
    return out;
  }
};

IdentifyOptions fast_options() {
  IdentifyOptions o;
  o.scope = AuthorizedScope::parse("127.0.0.1/32");
  o.banner_wait = Seconds{0.3};
  o.tls_wait = Seconds{0.5};
  o.port_limit = Seconds{1.5};
  return o;
}

ServiceTarget at(std::uint16_t port, const char* address = "127.0.0.1") {
  return {asio::ip::make_address(address), port, ""};
}

TEST(ServiceId, GreetingHttpHttpsSilentAndPostgresInOneRun) {
  const std::string ssh_banner = "SSH-2.0-OpenSSH_9.2p1 Test\r\n";
  LoopbackServer ssh("127.0.0.1", [&](int fd) {
    send_all(fd, ssh_banner);
    read_until(fd, [](const std::string&) { return false; });
  });
  // Written by the server threads, read here: the socket orders them, but only a lock shows
  // that to ThreadSanitizer.
  std::mutex seen_mutex;
  std::string http_request;
  LoopbackServer http("127.0.0.1", [&](int fd) {
    const std::string req = read_until(fd, [](const std::string& s) {
      return s.size() >= 5 && (has_head_end(s) || s.rfind("HEAD ", 0) != 0);
    });
    if (req.rfind("HEAD ", 0) == 0) {
      const std::lock_guard lock(seen_mutex);
      http_request = req;
      send_all(fd, "HTTP/1.1 200 OK\r\nServer: TestServer/1.0\r\nContent-Length: 0\r\n\r\n");
    } else {
      send_all(fd, "HTTP/1.1 400 Bad Request\r\n\r\n");  // a TLS ClientHello is not HTTP
    }
  });
  TestCertificate certificate;
  SSL_CTX* server_ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate(server_ctx, certificate.cert);
  SSL_CTX_use_PrivateKey(server_ctx, certificate.key);
  std::string sni;
  LoopbackServer https("127.0.0.1", [&](int fd) {
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL* ssl = SSL_new(server_ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      if (const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) {
        const std::lock_guard lock(seen_mutex);
        sni = name;
      }
      std::string req;
      char buf[512];
      while (!has_head_end(req)) {
        const int n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
      }
      const std::string reply = "HTTP/1.1 200 OK\r\nServer: Jetty(9.4)\r\n\r\n";
      SSL_write(ssl, reply.data(), static_cast<int>(reply.size()));
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
  });
  // IMAPS: the IMAP greeting comes inside TLS, right after the handshake.
  LoopbackServer imaps("127.0.0.1", [&](int fd) {
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL* ssl = SSL_new(server_ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      const std::string greeting = "* OK [CAPABILITY IMAP4rev1] LabIMAP ready\r\n";
      SSL_write(ssl, greeting.data(), static_cast<int>(greeting.size()));
      char buf[512];
      while (SSL_read(ssl, buf, sizeof buf) > 0) {
      }
    }
    SSL_free(ssl);
  });
  LoopbackServer silent("127.0.0.1",
                        [](int fd) { read_until(fd, [](const std::string&) { return false; }); });
  LoopbackServer postgres("127.0.0.1", [](int fd) {
    const std::string got = read_until(fd, [](const std::string& s) { return s.size() >= 8; });
    // A bad startup packet is only logged by PostgreSQL; the connection just closes.
    if (got == service::postgres_ssl_request()) send_all(fd, "N");
  });

  std::vector<ServiceTarget> targets{at(ssh.port()),    at(http.port()),     at(https.port()),
                                     at(silent.port()), at(postgres.port()), at(imaps.port())};
  targets[2].hostname = "staging.internal";
  const auto started = std::chrono::steady_clock::now();
  const auto results = identify_services(targets, fast_options());
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  SSL_CTX_free(server_ctx);
  ASSERT_EQ(results.size(), targets.size());

  const auto& s = results[0];
  EXPECT_EQ(s.outcome, ServiceOutcome::identified);
  EXPECT_EQ(s.protocol, "ssh");
  EXPECT_EQ(s.banner, "SSH-2.0-OpenSSH_9.2p1 Test");
  EXPECT_EQ(s.banner_sha256, sha256_hex(ssh_banner));
  EXPECT_FALSE(s.tls.has_value());
  EXPECT_EQ(summary(s), "ssh: SSH-2.0-OpenSSH_9.2p1 Test");

  const auto& h = results[1];
  EXPECT_EQ(h.outcome, ServiceOutcome::identified) << to_string(h.outcome);
  EXPECT_EQ(h.protocol, "http");
  ASSERT_TRUE(h.http.has_value());
  EXPECT_EQ(h.http->status, 200);
  EXPECT_EQ(h.http->server, "TestServer/1.0");
  EXPECT_FALSE(h.tls.has_value());
  std::string request_seen;
  std::string sni_seen;
  {
    const std::lock_guard lock(seen_mutex);
    request_seen = http_request;
    sni_seen = sni;
  }
  EXPECT_EQ(request_seen.rfind("HEAD / HTTP/1.0\r\nHost: 127.0.0.1\r\n", 0), 0u) << request_seen;

  const auto& t = results[2];
  EXPECT_EQ(t.outcome, ServiceOutcome::identified) << to_string(t.outcome);
  EXPECT_EQ(t.protocol, "https");
  ASSERT_TRUE(t.tls.has_value());
  EXPECT_EQ(t.tls->subject_cn, "staging.internal");
  EXPECT_EQ(t.tls->issuer_cn, "staging.internal");
  EXPECT_TRUE(t.tls->self_signed);
  EXPECT_EQ(t.tls->sans,
            (std::vector<std::string>{"staging.internal", "alt.internal", "127.0.0.1"}));
  EXPECT_EQ(t.tls->sha256, certificate.der_sha256());
  EXPECT_EQ(t.tls->version, "TLSv1.3");
  const auto days_left = std::chrono::duration_cast<std::chrono::hours>(
                             t.tls->not_after - std::chrono::system_clock::now())
                             .count() /
                         24;
  EXPECT_TRUE(days_left == 29 || days_left == 30) << days_left;
  ASSERT_TRUE(t.http.has_value());
  EXPECT_EQ(t.http->server, "Jetty(9.4)");
  EXPECT_EQ(sni_seen, "staging.internal");
  EXPECT_NE(summary(t).find("https: TLSv1.3, CN staging.internal, self-signed, expires "),
            std::string::npos)
      << summary(t);

  EXPECT_EQ(results[3].outcome, ServiceOutcome::silent) << to_string(results[3].outcome);
  EXPECT_EQ(results[3].protocol, "");
  EXPECT_EQ(results[4].outcome, ServiceOutcome::identified) << to_string(results[4].outcome);
  EXPECT_EQ(results[4].protocol, "postgresql");
  EXPECT_EQ(results[5].outcome, ServiceOutcome::identified) << to_string(results[5].outcome);
  EXPECT_EQ(results[5].protocol, "imap");
  EXPECT_EQ(results[5].banner, "* OK [CAPABILITY IMAP4rev1] LabIMAP ready");
  ASSERT_TRUE(results[5].tls.has_value());
  EXPECT_EQ(results[5].tls->subject_cn, "staging.internal");
  // The ports were identified side by side: one after another, the silent port's 1.5 s limit
  // plus at least 0.3 s of greeting wait for each of the five others would be 3 s or more.
  EXPECT_LT(took, 3.0);
}

TEST(ServiceId, NeverProbePortsOutOfScopeAndClosedPortsGetNothing) {
  LoopbackServer printer(
      "127.0.0.1", [](int) {}, /*accept=*/false);
  LoopbackServer outside(
      "127.0.0.2", [](int) {}, /*accept=*/false);
  std::uint16_t closed = 0;
  {
    LoopbackServer released(
        "127.0.0.1", [](int) {}, false);
    closed = released.port();
  }
  auto options = fast_options();
  options.never_probe = {printer.port()};
  const auto results =
      identify_services({at(printer.port()), at(outside.port(), "127.0.0.2"), at(closed)}, options);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].outcome, ServiceOutcome::not_probed);
  EXPECT_FALSE(printer.has_pending()) << "a connection reached the never-probe port";
  EXPECT_EQ(results[1].outcome, ServiceOutcome::out_of_scope);
  EXPECT_FALSE(outside.has_pending()) << "a connection reached the out-of-scope address";
  EXPECT_EQ(results[2].outcome, ServiceOutcome::unreachable);
  EXPECT_EQ(summary(results[0]), "not probed (never-probe port)");
  for (const auto& r : results) EXPECT_EQ(r.protocol, "");
}

TEST(ServiceId, AStopEndsRunningSessionsAndLeavesTheRestUnprobed) {
  LoopbackServer silent("127.0.0.1",
                        [](int fd) { read_until(fd, [](const std::string&) { return false; }); });
  auto options = fast_options();
  options.port_limit = Seconds{30};  // only the stop can end these sessions early
  options.banner_wait = Seconds{20};
  options.concurrency = 1;
  std::atomic<bool> stop{false};
  options.stop = &stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  const auto started = std::chrono::steady_clock::now();
  const auto results = identify_services({at(silent.port()), at(silent.port())}, options);
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  stopper.join();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_NE(results[0].outcome, ServiceOutcome::identified);
  EXPECT_EQ(results[1].outcome, ServiceOutcome::not_probed);  // never started
  EXPECT_LT(took, 10.0) << "the stop did not end the running session";
}

TEST(ServiceId, DefaultNeverProbeListHoldsThePrinterPorts) {
  const auto ports = default_never_probe_ports();
  for (const int p : {515, 631, 9100, 9103, 9107}) {
    EXPECT_NE(std::find(ports.begin(), ports.end(), p), ports.end()) << p;
  }
  EXPECT_EQ(std::find(ports.begin(), ports.end(), 9108), ports.end());
}

TEST(ServiceId, AServerThatNeverStopsTalkingIsCutAtTheLimit) {
  // 512 bytes are read at most; the rest of a flood is not waited for.
  LoopbackServer flood("127.0.0.1", [](int fd) {
    const std::string chunk(4096, 'x');
    for (int i = 0; i < 256; ++i) send_all(fd, chunk);
  });
  const auto results = identify_services({at(flood.port())}, fast_options());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, ServiceOutcome::unrecognised);
  EXPECT_EQ(results[0].banner, std::string(service::kMaxLine, 'x'));
  EXPECT_EQ(results[0].banner_sha256, sha256_hex(std::string(service::kMaxRead, 'x')));
}

}  // namespace
}  // namespace portvigil
