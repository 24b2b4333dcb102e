// The web configuration file of the Prometheus exporter toolkit (--web.config.file): TLS
// for the metrics endpoint and basic-auth users with bcrypt hashes, in the same YAML every
// Go exporter reads, so one file and one habit serve node_exporter and portvigil alike.
// https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http_server.hpp"

namespace portvigil::web {

struct WebConfig {
  std::optional<http::TlsSettings> tls;                      // absent: plain HTTP
  std::map<std::string, std::string> basic_auth_users;       // user -> bcrypt hash
  std::vector<std::pair<std::string, std::string>> headers;  // http_server_config.headers
};

// Reads and checks `path`; relative file names inside are relative to the file's directory,
// as in the toolkit. Throws std::runtime_error "PATH:LINE:COLUMN: what was expected" for bad
// YAML, unknown keys (the toolkit rejects them too: a typo must not turn TLS off), an empty
// file, bcrypt hashes that are not bcrypt, and certificate or key files that are not there
// (whether OpenSSL can use them is http::check_tls's question).
[[nodiscard]] WebConfig load_web_config(const std::string& path);

// The parsing half of load_web_config, for tests: `text` stands for the file `path`, and
// certificate files are checked for existence only when `check_files`.
[[nodiscard]] WebConfig parse_web_config(std::string_view text, const std::string& path,
                                         bool check_files);

// Checks "Authorization: Basic ..." against bcrypt hashes (libxcrypt's crypt_rn, $2a$/$2b$/
// $2y$). An unknown user costs the same bcrypt as a known one, so timing does not reveal
// which users exist. A correct answer is cached (by a SHA-256 of user, password and hash,
// never the password itself) so that a scrape every few seconds does not pay bcrypt's cost
// each time. Safe to call from several threads.
class BasicAuth {
 public:
  explicit BasicAuth(std::map<std::string, std::string> users);
  [[nodiscard]] bool enabled() const { return !users_.empty(); }
  // True when the header names a user and its password; always true when !enabled().
  [[nodiscard]] bool allows(std::string_view authorization);

 private:
  std::map<std::string, std::string> users_;
  std::string dummy_hash_;  // what an unknown user is checked against
  std::mutex mu_;
  std::vector<std::string> granted_;  // SHA-256 keys of checked pairs, bounded
};

// Strict base64 (RFC 4648, with padding): nullopt for anything else.
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text);

}  // namespace portvigil::web
