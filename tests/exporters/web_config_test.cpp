// --web.config.file: the exporter toolkit's YAML (TLS, bcrypt users, headers), hostile
// files, hostile Authorization headers, and a TLS client against the real endpoint.
#include "web_config.hpp"

#include <gtest/gtest.h>

#include <openssl/ssl.h>
#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/write.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "portvigil/exporters/metrics.hpp"

namespace portvigil {
namespace {

namespace fs = std::filesystem;
using web::parse_web_config;

const std::string kTlsDir = PORTVIGIL_TEST_TLS_DIR;  // tests/exporters/tls
// bcrypt of "s3cret" (cost 4) and the crypt_blowfish test vector for "U*U".
constexpr const char* kS3cretHash = "$2y$04$3Ldgy7bINBHaeMpta5RpWe8UKvsAsTRkjpFypk/9.wiVzrkZ2rkbC";
constexpr const char* kVectorHash = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

std::string error_of(const std::string& text) {
  try {
    (void)parse_web_config(text, "/etc/portvigil/web.yml", false);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no error";
}

TEST(WebConfig, ReadsTheToolkitFormat) {
  const auto c = parse_web_config(
      "tls_server_config:\n"
      "  cert_file: server.pem\n"
      "  key_file: /abs/server.key\n"
      "  client_auth_type: RequireAndVerifyClientCert\n"
      "  client_ca_file: ca.pem\n"
      "  min_version: TLS13\n"
      "http_server_config:\n"
      "  http2: true\n"
      "  headers:\n"
      "    Strict-Transport-Security: max-age=31536000\n"
      "basic_auth_users:\n"
      "  prometheus: " +
          std::string(kS3cretHash) + "\n",
      "/etc/portvigil/web.yml", false);
  ASSERT_TRUE(c.tls.has_value());
  EXPECT_EQ(c.tls->cert_file, "/etc/portvigil/server.pem");  // relative to the file
  EXPECT_EQ(c.tls->key_file, "/abs/server.key");
  EXPECT_EQ(c.tls->client_ca_file, "/etc/portvigil/ca.pem");
  EXPECT_EQ(c.tls->client_auth, http::ClientAuth::require_and_verify);
  EXPECT_EQ(c.tls->min_version, http::TlsVersion::tls13);
  EXPECT_FALSE(c.tls->max_version.has_value());
  ASSERT_EQ(c.basic_auth_users.size(), 1u);
  EXPECT_EQ(c.basic_auth_users.at("prometheus"), kS3cretHash);
  ASSERT_EQ(c.headers.size(), 1u);
  EXPECT_EQ(c.headers[0].first, "Strict-Transport-Security");
}

TEST(WebConfig, EmptyTlsMeansPlainHttpButAnEmptyFileIsRefused) {
  // A file cut short or a wrong path must not read as "no TLS, no passwords".
  EXPECT_NE(error_of("").find("web.yml: empty"), std::string::npos) << error_of("");
  EXPECT_NE(error_of("# only a comment\n").find("empty"), std::string::npos);
  EXPECT_NE(error_of("---\n---\nbasic_auth_users: {}\n").find("more than one YAML document"),
            std::string::npos);
  EXPECT_FALSE(parse_web_config("tls_server_config:\n", "w.yml", false).tls.has_value());
  const auto c =
      parse_web_config("tls_server_config:\n  cert_file: \"\"\n  key_file: \"\"\n", "w.yml", false);
  EXPECT_FALSE(c.tls.has_value());
  EXPECT_TRUE(c.basic_auth_users.empty());
}

TEST(WebConfig, ErrorsNameTheFileLineAndWhatWasExpected) {
  // A typo must not silently turn TLS off.
  auto e = error_of("basic_auth_users: {}\ntls_server_confg:\n  cert_file: a\n");
  EXPECT_NE(e.find("/etc/portvigil/web.yml:2:1: unknown key \"tls_server_confg\""),
            std::string::npos)
      << e;
  e = error_of("tls_server_config:\n  cert_file: a.pem\n  key_fle: a.key\n");
  EXPECT_NE(e.find(":3:3: unknown key \"key_fle\" in tls_server_config"), std::string::npos) << e;
  e = error_of("tls_server_config:\n  cert_file: a.pem\n");
  EXPECT_NE(e.find("has cert_file but no key_file"), std::string::npos) << e;
  e = error_of("tls_server_config:\n  key_file: a.key\n");
  EXPECT_NE(e.find("has key_file but no cert_file"), std::string::npos) << e;
  e = error_of("basic_auth_users:\n  alice: hunter2\n");
  EXPECT_NE(e.find(":2:10: the password of \"alice\" is not a bcrypt hash"), std::string::npos)
      << e;
  e = error_of("basic_auth_users:\n  \"a:b\": " + std::string(kS3cretHash) + "\n");
  EXPECT_NE(e.find("holds ':'"), std::string::npos) << e;
  e = error_of(
      "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Sometimes\n");
  EXPECT_NE(e.find(":4:21: client_auth_type must be NoClientCert"), std::string::npos) << e;
  e = error_of("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: ca\n");
  EXPECT_NE(e.find("client_auth_type is NoClientCert"), std::string::npos) << e;
  // The non-verifying policies may name a CA: it tells clients which certificate to send.
  EXPECT_EQ(error_of("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: "
                     "RequireAnyClientCert\n  client_ca_file: ca\n"),
            "no error");
  // Without certificate and key nothing else may be set: it would not take effect.
  e = error_of("tls_server_config:\n  min_version: TLS13\n");
  EXPECT_NE(e.find(":2:3: min_version needs cert_file and key_file"), std::string::npos) << e;
  e = error_of("tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: TLS11\n");
  EXPECT_NE(e.find("does not negotiate TLS 1.0 or 1.1"), std::string::npos) << e;
  e = error_of("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n");
  EXPECT_NE(e.find("must be nosniff"), std::string::npos) << e;
  e = error_of("http_server_config:\n  headers:\n    X-Frame-Options: allow\n");
  EXPECT_NE(e.find("must be deny or sameorigin"), std::string::npos) << e;
  e = error_of("http_server_config:\n  headers:\n    Content-Security-Policy: \"a\\x01b\"\n");
  EXPECT_NE(e.find("printable characters on one line"), std::string::npos) << e;
  e = error_of("http_server_config:\n  headers:\n    Content-Security-Policy:\n");
  EXPECT_NE(e.find("printable characters on one line"), std::string::npos) << e;
  e = error_of(
      "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: "
      "RequireAndVerifyClientCert\n");
  EXPECT_NE(e.find("needs client_ca_file"), std::string::npos) << e;
  e = error_of("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: SSL3\n");
  EXPECT_NE(e.find("min_version must be TLS12 or TLS13"), std::string::npos) << e;
  e = error_of(
      "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: "
      "TLS12\n");
  EXPECT_NE(e.find("max_version is below min_version"), std::string::npos) << e;
  e = error_of("http_server_config:\n  headers:\n    Set-Cookie: a=b\n");
  EXPECT_NE(e.find("unknown key \"Set-Cookie\""), std::string::npos) << e;
  e = error_of("basic_auth_users:\n  a: " + std::string(kS3cretHash) + "\n  a: " + kVectorHash +
               "\n");
  EXPECT_NE(e.find("duplicate"), std::string::npos) << e;
  e = error_of("tls_server_config: [1, 2\n");
  EXPECT_NE(e.find("not valid YAML"), std::string::npos) << e;
  e = error_of("- just\n- a list\n");
  EXPECT_NE(e.find("must be a mapping"), std::string::npos) << e;
  e = error_of("basic_auth_users:\n  alice:\n    nested: map\n");
  EXPECT_NE(e.find("a bcrypt hash must be a string"), std::string::npos) << e;
}

TEST(WebConfig, HostileFilesFailCleanly) {
  // Deep nesting: yaml-cpp's depth guard, not a stack overflow.
  std::string deep(100000, '[');
  EXPECT_NE(error_of(deep).find("not valid YAML"), std::string::npos);
  // Aliases are shared nodes, not expanded copies: one that points at the wrong shape is
  // checked like any value.
  EXPECT_NE(error_of("tls_server_config: &t\n  cert_file: a\n  key_file: b\nbasic_auth_users: *t\n")
                .find("the password of \"cert_file\" is not a bcrypt hash"),
            std::string::npos);
  EXPECT_NE(error_of(std::string("\0\xff\xfe", 3)).find("web.yml"), std::string::npos);
  // yaml-cpp's LoadAll never returns on a stray ',' (found by fuzz_web): a refusal, at once.
  EXPECT_NE(error_of(",").find("web.yml:1:1: not valid YAML"), std::string::npos) << error_of(",");
  EXPECT_NE(error_of(std::string(100, ',') + "tls_server_config:\n").find("web.yml"),
            std::string::npos);
  // Larger than any web configuration.
  const auto dir = fs::temp_directory_path() / ("pv-web-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const auto big = dir / "big.yml";
  std::ofstream(big) << "# " << std::string(2 << 20, 'x') << "\n";
  try {
    (void)web::load_web_config(big.string());
    ADD_FAILURE() << "a 2 MiB file was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("larger than 1 MiB"), std::string::npos) << e.what();
  }
  try {
    (void)web::load_web_config((dir / "missing.yml").string());
    ADD_FAILURE() << "a missing file was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.yml: cannot read"), std::string::npos);
  }
  // A directory opens as a stream that reads nothing: it must not pass for an empty file.
  try {
    (void)web::load_web_config(dir.string());
    ADD_FAILURE() << "a directory was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read the web configuration file"),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

TEST(WebConfig, LoadChecksThatCertificateFilesExist) {
  const auto dir = fs::temp_directory_path() / ("pv-web-files-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "web.yml") << "tls_server_config:\n  cert_file: nope.pem\n  key_file: "
                                 << kTlsDir << "/server.key\n";
  try {
    (void)web::load_web_config((dir / "web.yml").string());
    ADD_FAILURE() << "a missing certificate was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cert_file " + (dir / "nope.pem").string() +
                                         " is not a readable file"),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

TEST(Base64, DecodesStrictlyOnly) {
  EXPECT_EQ(web::base64_decode("cHJvbTpzM2NyZXQ="), "prom:s3cret");
  EXPECT_EQ(web::base64_decode("YQ=="), "a");
  EXPECT_EQ(web::base64_decode("YWI="), "ab");
  EXPECT_EQ(web::base64_decode("YWJj"), "abc");
  EXPECT_EQ(web::base64_decode(""), "");
  for (const char* bad :
       {"YQ", "YQ=", "Y===", "====", "YQ==YQ==", "Y Q==", "YQ=\n", "*Q==", "=QQQ", "YW=j"}) {
    EXPECT_FALSE(web::base64_decode(bad).has_value()) << bad;
  }
}

std::string basic(const std::string& user_password) {
  return "Basic " + http::base64(user_password);
}

TEST(BasicAuth, ChecksBcryptHashes) {
  web::BasicAuth auth({{"prom", kS3cretHash}, {"vector", kVectorHash}});
  ASSERT_TRUE(auth.enabled());
  EXPECT_TRUE(auth.allows(basic("prom:s3cret")));
  EXPECT_TRUE(auth.allows(basic("prom:s3cret")));  // the second time from the cache
  EXPECT_TRUE(auth.allows("basic " + http::base64("vector:U*U")));  // scheme is case-blind
  EXPECT_FALSE(auth.allows(basic("prom:s3cret2")));
  EXPECT_FALSE(auth.allows(basic("prom:")));
  EXPECT_FALSE(auth.allows(basic("vector:s3cret")));  // another user's password
  EXPECT_FALSE(auth.allows(basic("nobody:s3cret")));
  EXPECT_FALSE(auth.allows(basic("prom")));
  EXPECT_FALSE(auth.allows(""));
  EXPECT_FALSE(auth.allows("Basic"));
  EXPECT_FALSE(auth.allows("Basic !!!!"));
  EXPECT_FALSE(auth.allows("Bearer " + http::base64("prom:s3cret")));
  EXPECT_FALSE(auth.allows(basic(std::string("prom:s3cret\0", 12))));  // NUL ends C strings
  EXPECT_TRUE(web::BasicAuth({}).allows(""));                          // no users: no auth
}

// ---- the endpoint over TLS -------------------------------------------------------------------

struct TlsReply {
  bool handshake = false;
  std::string text;  // the whole response
};

struct ClientOptions {
  std::string client;               // "client" or "stranger": present that certificate
  std::optional<int> max_version;   // TLS1_2_VERSION: offer at most TLS 1.2
  SSL_SESSION** session = nullptr;  // resume *session if set; keep the new one there
  bool* resumed = nullptr;
};

TlsReply tls_get(int port, const std::string& path, const std::string& authorization = "",
                 const std::string& client = "", const ClientOptions& options_in = {}) {
  ClientOptions options = options_in;
  if (!client.empty()) options.client = client;
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  if (options.max_version) SSL_CTX_set_max_proto_version(ctx.native_handle(), *options.max_version);
  const std::string client_name = options.client;
  ctx.load_verify_file(kTlsDir + "/ca.pem");
  ctx.set_verify_mode(asio::ssl::verify_peer);
  if (!client_name.empty()) {
    ctx.use_certificate_chain_file(kTlsDir + "/" + client_name + ".pem");
    ctx.use_private_key_file(kTlsDir + "/" + client_name + ".key", asio::ssl::context::pem);
  }
  asio::ssl::stream<asio::ip::tcp::socket> s(io, ctx);
  if (options.session && *options.session) SSL_set_session(s.native_handle(), *options.session);
  TlsReply reply;
  asio::error_code ec;
  s.next_layer().connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)},
                         ec);
  if (ec) return reply;
  s.handshake(asio::ssl::stream_base::client, ec);
  if (ec) return reply;
  reply.handshake = true;
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n";
  if (!authorization.empty()) req += "Authorization: " + authorization + "\r\n";
  req += "\r\n";
  asio::write(s, asio::buffer(req), ec);
  std::string body;
  char buf[4096];
  for (;;) {
    const auto n = s.read_some(asio::buffer(buf), ec);
    body.append(buf, n);
    if (ec) break;
  }
  reply.text = body;
  s.shutdown(ec);  // without close_notify OpenSSL makes the session not resumable
  if (options.resumed) *options.resumed = SSL_session_reused(s.native_handle()) == 1;
  if (options.session) {
    if (*options.session) SSL_SESSION_free(*options.session);
    *options.session = SSL_get1_session(s.native_handle());
  }
  return reply;
}

std::string plain_get(int port) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  asio::error_code ec;
  s.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)}, ec);
  if (ec) return "connect failed";
  asio::write(s, asio::buffer(std::string("GET /metrics HTTP/1.0\r\n\r\n")), ec);
  std::string out;
  char buf[1024];
  for (;;) {
    const auto n = s.read_some(asio::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

class TlsEndpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pv-tls-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_config(const std::string& text) {
    const auto path = dir_ / "web.yml";
    std::ofstream(path) << text;
    return path.string();
  }

  std::string tls_block(const std::string& extra = "") const {
    return "tls_server_config:\n  cert_file: " + kTlsDir + "/server.pem\n  key_file: " + kTlsDir +
           "/server.key\n" + extra;
  }

  fs::path dir_;
  AgentMetrics metrics_;
};

TEST_F(TlsEndpoint, ServesMetricsOverTlsWithBcryptUsers) {
  const auto file = write_config(tls_block() + "http_server_config:\n  headers:\n" +
                                 "    X-Content-Type-Options: nosniff\n" +
                                 "basic_auth_users:\n  prom: " + kS3cretHash + "\n");
  MetricsServer server(WebOptions{"127.0.0.1:0", "", "", file}, metrics_);
  server.set_ready(true);
  EXPECT_TRUE(server.tls());
  const int port = server.ports().front();
  auto r = tls_get(port, "/metrics", basic("prom:s3cret"));
  ASSERT_TRUE(r.handshake);
  EXPECT_NE(r.text.find("HTTP/1.1 200 OK"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("portvigil_build_info"), std::string::npos);
  EXPECT_NE(r.text.find("X-Content-Type-Options: nosniff"), std::string::npos);
  r = tls_get(port, "/metrics", basic("prom:wrong"));
  EXPECT_NE(r.text.find("401 Unauthorized"), std::string::npos) << r.text;
  EXPECT_EQ(r.text.find("portvigil_build_info"), std::string::npos);
  EXPECT_NE(tls_get(port, "/metrics").text.find("401"), std::string::npos);
  EXPECT_NE(tls_get(port, "/").text.find("401"), std::string::npos);  // every path but probes
  EXPECT_NE(tls_get(port, "/-/healthy").text.find("200 OK"), std::string::npos);
  EXPECT_NE(tls_get(port, "/-/ready").text.find("200 OK"), std::string::npos);
  // Plain HTTP on the TLS port gets no HTTP answer, and certainly no metrics.
  const auto plain = plain_get(port);
  EXPECT_EQ(plain.find("HTTP/1."), std::string::npos) << plain;
  // The server still serves after the failed handshake.
  EXPECT_NE(tls_get(port, "/metrics", basic("prom:s3cret")).text.find("200 OK"), std::string::npos);
}

TEST_F(TlsEndpoint, ClientCertificatesAreVerifiedWhenRequired) {
  const auto file =
      write_config(tls_block("  client_auth_type: RequireAndVerifyClientCert\n"
                             "  client_ca_file: " +
                             kTlsDir + "/ca.pem\n"));
  MetricsServer server(WebOptions{"127.0.0.1:0", "", "", file}, metrics_);
  const int port = server.ports().front();
  EXPECT_NE(tls_get(port, "/metrics", "", "client").text.find("200 OK"), std::string::npos);
  // No certificate, or one the CA did not sign: no response. (With TLS 1.3 the client may
  // finish its handshake before the server refuses, so only the response is checked.)
  EXPECT_EQ(tls_get(port, "/metrics").text.find("200 OK"), std::string::npos);
  EXPECT_EQ(tls_get(port, "/metrics", "", "stranger").text.find("200 OK"), std::string::npos);
}

TEST_F(TlsEndpoint, ReloadSwapsUsersAndCertificatesAndKeepsThemOnABadFile) {
  const auto file = write_config(tls_block() + "basic_auth_users:\n  prom: " + kS3cretHash + "\n");
  MetricsServer server(WebOptions{"127.0.0.1:0", "", "", file}, metrics_);
  const int port = server.ports().front();
  ASSERT_NE(tls_get(port, "/metrics", basic("prom:s3cret")).text.find("200 OK"), std::string::npos);
  write_config(tls_block() + "basic_auth_users:\n  vector: " + kVectorHash + "\n");
  server.reload_web_config();
  EXPECT_NE(tls_get(port, "/metrics", basic("prom:s3cret")).text.find("401"), std::string::npos);
  EXPECT_NE(tls_get(port, "/metrics", basic("vector:U*U")).text.find("200 OK"), std::string::npos);
  // A key that does not belong to the certificate: the reload fails, the old settings stay.
  write_config("tls_server_config:\n  cert_file: " + kTlsDir + "/server.pem\n  key_file: " +
               kTlsDir + "/stranger.key\nbasic_auth_users:\n  vector: " + kVectorHash + "\n");
  try {
    server.reload_web_config();
    ADD_FAILURE() << "a mismatched key was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is not the key of cert_file"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(server.tls());
  EXPECT_NE(tls_get(port, "/metrics", basic("vector:U*U")).text.find("200 OK"), std::string::npos);
  EXPECT_NE(tls_get(port, "/metrics").text.find("401"), std::string::npos);  // users kept too
  // A reload never turns TLS or passwords off (a file cut short while edited may still be
  // valid YAML): that takes a restart.
  write_config("basic_auth_users:\n  vector: " + std::string(kVectorHash) + "\n");
  try {
    server.reload_web_config();
    ADD_FAILURE() << "a reload turned TLS off";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("turning TLS off takes a restart"), std::string::npos)
        << e.what();
  }
  write_config(tls_block());
  try {
    server.reload_web_config();
    ADD_FAILURE() << "a reload turned basic auth off";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("turning basic auth off takes a restart"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(server.tls());
  EXPECT_NE(tls_get(port, "/metrics").text.find("401"), std::string::npos);
  EXPECT_NE(tls_get(port, "/metrics", basic("vector:U*U")).text.find("200 OK"), std::string::npos);
}

TEST_F(TlsEndpoint, ClientCertificatePoliciesAndVersions) {
  const std::string ca = "  client_ca_file: " + kTlsDir + "/ca.pem\n";
  {
    const auto file = write_config(tls_block("  client_auth_type: VerifyClientCertIfGiven\n" + ca));
    MetricsServer server(WebOptions{"127.0.0.1:0", "", "", file}, metrics_);
    const int port = server.ports().front();
    EXPECT_NE(tls_get(port, "/metrics").text.find("200 OK"), std::string::npos);
    EXPECT_NE(tls_get(port, "/metrics", "", "client").text.find("200 OK"), std::string::npos);
    EXPECT_EQ(tls_get(port, "/metrics", "", "stranger").text.find("200 OK"), std::string::npos);
  }
  {
    // Any certificate, unverified (the toolkit's RequireAnyClientCert).
    const auto file = write_config(tls_block("  client_auth_type: RequireAnyClientCert\n"));
    MetricsServer server(WebOptions{"127.0.0.1:0", "", "", file}, metrics_);
    const int port = server.ports().front();
    EXPECT_EQ(tls_get(port, "/metrics").text.find("200 OK"), std::string::npos);
    EXPECT_NE(tls_get(port, "/metrics", "", "stranger").text.find("200 OK"), std::string::npos);
  }
  {
    const auto file = write_config(tls_block("  min_version: TLS13\n"));
    MetricsServer server(WebOptions{"127.0.0.1:0", "", "", file}, metrics_);
    const int port = server.ports().front();
    EXPECT_NE(tls_get(port, "/metrics").text.find("200 OK"), std::string::npos);
    ClientOptions tls12;
    tls12.max_version = TLS1_2_VERSION;
    const auto r = tls_get(port, "/metrics", "", "", tls12);
    EXPECT_FALSE(r.handshake);
    EXPECT_EQ(r.text.find("200 OK"), std::string::npos);
  }
}

// Every scrape is a new connection: a client with a session cache resumes, and with
// client certificates verified that needs a session id context on the server.
TEST_F(TlsEndpoint, SessionsResumeWithVerifiedClientCertificates) {
  const auto file =
      write_config(tls_block("  client_auth_type: RequireAndVerifyClientCert\n"
                             "  client_ca_file: " +
                             kTlsDir + "/ca.pem\n"));
  MetricsServer server(WebOptions{"127.0.0.1:0", "", "", file}, metrics_);
  const int port = server.ports().front();
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SSL_SESSION* session = nullptr;
    bool resumed = true;
    ClientOptions o;
    o.client = "client";
    o.max_version = version;
    o.session = &session;
    o.resumed = &resumed;
    ASSERT_NE(tls_get(port, "/metrics", "", "", o).text.find("200 OK"), std::string::npos);
    EXPECT_FALSE(resumed);
    ASSERT_NE(session, nullptr);
    const auto again = tls_get(port, "/metrics", "", "", o);
    EXPECT_TRUE(again.handshake) << version;
    EXPECT_NE(again.text.find("200 OK"), std::string::npos) << version;
    EXPECT_TRUE(resumed) << version;
    if (session) SSL_SESSION_free(session);
  }
}

TEST_F(TlsEndpoint, StartupRefusesUnusableFilesAndMixedCredentials) {
  auto file = write_config("tls_server_config:\n  cert_file: " + kTlsDir +
                           "/ca.pem\n  key_file: " + kTlsDir + "/server.key\n");
  try {
    MetricsServer server(WebOptions{"127.0.0.1:0", "", "", file}, metrics_);
    ADD_FAILURE() << "a key that does not match was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is not the key of cert_file"), std::string::npos)
        << e.what();
  }
  file = write_config("tls_server_config:\n  cert_file: " + kTlsDir +
                      "/server.key\n  key_file: " + kTlsDir + "/server.key\n");
  EXPECT_THROW(MetricsServer(WebOptions{"127.0.0.1:0", "", "", file}, metrics_),
               std::runtime_error);
  file = write_config("");
  EXPECT_THROW(MetricsServer(WebOptions{"127.0.0.1:0", "u", "p", file}, metrics_),
               std::runtime_error);
}

}  // namespace
}  // namespace portvigil
