#include "web_config.hpp"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>

#include "portvigil/common/digest.hpp"

namespace portvigil::web {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxFileBytes = 1 << 20;
constexpr std::size_t kMaxGranted = 64;

// Counts documents and keeps where the second starts; ignores everything else.
struct DocumentCounter : YAML::EventHandler {
  int documents = 0;
  YAML::Mark first_start = YAML::Mark::null_mark();
  YAML::Mark second_start = YAML::Mark::null_mark();
  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents == 1) first_start = mark;
    if (documents == 2) second_start = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

class Reader {
 public:
  Reader(std::string path, fs::path base, bool check_files)
      : path_(std::move(path)), base_(std::move(base)), check_files_(check_files) {}

  // The value under `key`, or a null node when the key is absent (yaml-cpp's absent nodes
  // throw on most questions).
  static YAML::Node child(const YAML::Node& map, const char* key) {
    if (map.IsMap()) {
      if (const YAML::Node n = map[key]; n.IsDefined()) return n;
    }
    return YAML::Node(YAML::NodeType::Null);
  }

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& what) const {
    if (mark.is_null()) throw std::runtime_error(path_ + ": " + what);
    throw std::runtime_error(path_ + ":" + std::to_string(mark.line + 1) + ":" +
                             std::to_string(mark.column + 1) + ": " + what);
  }

  // The keys of a mapping, each once, each one of `known`.
  void check_keys(const YAML::Node& map, std::string_view where,
                  std::initializer_list<std::string_view> known) const {
    if (!map.IsMap()) fail(map.Mark(), std::string(where) + " must be a mapping");
    std::set<std::string> seen;
    for (const auto& kv : map) {
      if (!kv.first.IsScalar())
        fail(kv.first.Mark(), "a key of " + std::string(where) + " must be a string");
      const auto key = kv.first.Scalar();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string list;
        for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
        fail(kv.first.Mark(), "unknown key \"" + key + "\" in " + std::string(where) +
                                  " (portvigil reads: " + list + ")");
      }
      if (!seen.insert(key).second) fail(kv.first.Mark(), "duplicate key \"" + key + "\"");
    }
  }

  std::string string(const YAML::Node& node, std::string_view key) const {
    if (node.IsNull()) return "";
    if (!node.IsScalar()) fail(node.Mark(), std::string(key) + " must be a string");
    return node.Scalar();
  }

  std::string file(const YAML::Node& node, std::string_view key) const {
    std::string name = string(node, key);
    if (name.empty()) return name;
    fs::path p(name);
    if (p.is_relative()) p = base_ / p;
    if (check_files_) {
      std::error_code ec;
      if (!fs::is_regular_file(p, ec)) {
        fail(node.Mark(), std::string(key) + " " + p.string() + " is not a readable file");
      }
    }
    return p.string();
  }

  http::TlsVersion version(const YAML::Node& node, std::string_view key) const {
    const auto v = string(node, key);
    if (v == "TLS12") return http::TlsVersion::tls12;
    if (v == "TLS13") return http::TlsVersion::tls13;
    if (v == "TLS10" || v == "TLS11") {
      // The toolkit's Go accepts them; OpenSSL 3 at Debian's security level negotiates
      // neither, so the endpoint would accept no client at all.
      fail(node.Mark(), std::string(key) + " " + v +
                            ": OpenSSL 3 at the system's security level does not negotiate TLS "
                            "1.0 or 1.1; use TLS12 or TLS13");
    }
    fail(node.Mark(), std::string(key) + " must be TLS12 or TLS13, not \"" + v + "\"");
  }

  std::optional<http::TlsSettings> tls(const YAML::Node& node) const {
    if (node.IsNull()) return std::nullopt;
    check_keys(node, "tls_server_config",
               {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version",
                "max_version"});
    http::TlsSettings t;
    t.cert_file = file(child(node, "cert_file"), "cert_file");
    t.key_file = file(child(node, "key_file"), "key_file");
    // As in the toolkit: no certificate and no key is plain HTTP.
    if (t.cert_file.empty() && t.key_file.empty()) {
      for (const auto& kv : node) {
        const auto key = kv.first.Scalar();
        if (key != "cert_file" && key != "key_file" && !kv.second.IsNull()) {
          fail(kv.first.Mark(), key +
                                    " needs cert_file and key_file (without them the "
                                    "endpoint serves plain HTTP)");
        }
      }
      return std::nullopt;
    }
    if (t.cert_file.empty()) fail(node.Mark(), "tls_server_config has key_file but no cert_file");
    if (t.key_file.empty()) fail(node.Mark(), "tls_server_config has cert_file but no key_file");
    if (const auto n = child(node, "client_auth_type"); !n.IsNull()) {
      const auto v = string(n, "client_auth_type");
      if (v == "NoClientCert" || v.empty()) {
        t.client_auth = http::ClientAuth::none;
      } else if (v == "RequestClientCert") {
        t.client_auth = http::ClientAuth::request;
      } else if (v == "RequireAnyClientCert") {
        t.client_auth = http::ClientAuth::require_any;
      } else if (v == "VerifyClientCertIfGiven") {
        t.client_auth = http::ClientAuth::verify_if_given;
      } else if (v == "RequireAndVerifyClientCert") {
        t.client_auth = http::ClientAuth::require_and_verify;
      } else {
        fail(n.Mark(),
             "client_auth_type must be NoClientCert, RequestClientCert, RequireAnyClientCert, "
             "VerifyClientCertIfGiven or RequireAndVerifyClientCert, not \"" +
                 v + "\"");
      }
    }
    t.client_ca_file = file(child(node, "client_ca_file"), "client_ca_file");
    const bool verifies = t.client_auth == http::ClientAuth::verify_if_given ||
                          t.client_auth == http::ClientAuth::require_and_verify;
    if (verifies && t.client_ca_file.empty()) {
      fail(node.Mark(),
           "client_auth_type VerifyClientCertIfGiven/RequireAndVerifyClientCert "
           "needs client_ca_file");
    }
    if (t.client_auth == http::ClientAuth::none && !t.client_ca_file.empty()) {
      // As in the toolkit: a CA without a policy that asks for client certificates is a
      // mistake, most likely a missing client_auth_type.
      fail(child(node, "client_ca_file").Mark(),
           "client_ca_file is set but client_auth_type is NoClientCert (set "
           "RequireAndVerifyClientCert or VerifyClientCertIfGiven to verify client "
           "certificates)");
    }
    if (const auto n = child(node, "min_version"); !n.IsNull())
      t.min_version = version(n, "min_version");
    if (const auto n = child(node, "max_version"); !n.IsNull())
      t.max_version = version(n, "max_version");
    if (t.max_version && *t.max_version < t.min_version) {
      fail(child(node, "max_version").Mark(), "max_version is below min_version");
    }
    return t;
  }

  static bool is_bcrypt(std::string_view h) {
    // $2a$, $2b$ or $2y$, a two-digit cost 04-31, 53 characters of bcrypt's base64.
    if (h.size() != 60 || h.substr(0, 2) != "$2" || (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') ||
        h[3] != '$' || h[6] != '$')
      return false;
    if (h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9') return false;
    const int cost = (h[4] - '0') * 10 + (h[5] - '0');
    if (cost < 4 || cost > 31) return false;
    return std::all_of(h.begin() + 7, h.end(), [](char c) {
      return c == '.' || c == '/' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
             (c >= '0' && c <= '9');
    });
  }

  std::map<std::string, std::string> users(const YAML::Node& node) const {
    std::map<std::string, std::string> out;
    if (node.IsNull()) return out;
    if (!node.IsMap()) fail(node.Mark(), "basic_auth_users must be a mapping of user: bcrypt hash");
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) fail(kv.first.Mark(), "a user name must be a string");
      const auto user = kv.first.Scalar();
      if (user.empty() || user.find(':') != std::string::npos) {
        fail(kv.first.Mark(), "user name \"" + user +
                                  "\" is empty or holds ':' (basic auth "
                                  "splits user and password at the first ':')");
      }
      const auto hash = string(kv.second, "a bcrypt hash");
      if (!is_bcrypt(hash)) {
        fail(kv.second.Mark(), "the password of \"" + user +
                                   "\" is not a bcrypt hash ($2y$...; "
                                   "make one with htpasswd -nBC 10 \"\" | tr -d ':\\n')");
      }
      if (!out.emplace(user, hash).second) fail(kv.first.Mark(), "duplicate user \"" + user + "\"");
    }
    return out;
  }

  std::vector<std::pair<std::string, std::string>> server_config(const YAML::Node& node) const {
    std::vector<std::pair<std::string, std::string>> headers;
    if (node.IsNull()) return headers;
    check_keys(node, "http_server_config", {"http2", "headers"});
    // http2: portvigil serves HTTP/1.1 only; clients fall back, so the key is accepted.
    if (const auto h = child(node, "headers"); !h.IsNull()) {
      // The toolkit's list: response headers that only harden the endpoint.
      check_keys(h, "http_server_config.headers",
                 {"Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options",
                  "X-XSS-Protection", "Content-Security-Policy"});
      for (const auto& kv : h) {
        const auto name = kv.first.Scalar();
        auto value = string(kv.second, name);
        const bool control = std::any_of(value.begin(), value.end(), [](char c) {
          const auto u = static_cast<unsigned char>(c);
          return (u < 0x20 && u != '\t') || u == 0x7f;
        });
        if (value.empty() || control) {
          fail(kv.second.Mark(), name + " needs a value of printable characters on one line");
        }
        std::string lower = value;
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        // The values the toolkit allows for these two.
        if (name == "X-Content-Type-Options" && lower != "nosniff") {
          fail(kv.second.Mark(), "X-Content-Type-Options must be nosniff");
        }
        if (name == "X-Frame-Options" && lower != "deny" && lower != "sameorigin") {
          fail(kv.second.Mark(), "X-Frame-Options must be deny or sameorigin");
        }
        headers.emplace_back(name, std::move(value));
      }
    }
    return headers;
  }

  WebConfig read(std::string_view text) const {
    // YAML::LoadAll loops forever on a stray ',' (yaml-cpp 0.7), so documents are counted
    // with the event parser, which stops after two, and the first is loaded on its own.
    YAML::Node root;
    try {
      std::istringstream in{std::string(text)};
      YAML::Parser parser(in);
      DocumentCounter counter;
      while (counter.documents < 2 && parser.HandleNextDocument(counter)) {
      }
      if (counter.documents > 1 && counter.second_start.pos == counter.first_start.pos) {
        // The parser starts document after document without reading on (a stray ',').
        fail(counter.second_start, "not valid YAML: nothing here starts a document");
      }
      if (counter.documents > 1) {
        fail(counter.second_start, "more than one YAML document; a web configuration is one");
      }
      root = YAML::Load(std::string(text));
    } catch (const YAML::ParserException& e) {
      fail(e.mark, "not valid YAML: " + e.msg);
    }
    // Unlike the toolkit, an empty file is refused: more likely a file cut short or a wrong
    // path than a wish for plain HTTP without passwords (leave the option out for that).
    if (root.IsNull()) {
      fail(YAML::Mark::null_mark(),
           "empty; give tls_server_config and/or basic_auth_users (without the option the "
           "endpoint serves plain HTTP)");
    }
    WebConfig config;
    check_keys(root, "the web configuration",
               {"tls_server_config", "http_server_config", "basic_auth_users"});
    config.tls = tls(child(root, "tls_server_config"));
    config.basic_auth_users = users(child(root, "basic_auth_users"));
    config.headers = server_config(child(root, "http_server_config"));
    return config;
  }

 private:
  std::string path_;
  fs::path base_;
  bool check_files_;
};

// bcrypt through libxcrypt; false on any failure.
bool bcrypt_matches(const std::string& password, const std::string& hash) {
  auto data = std::make_unique<crypt_data>();  // 32 KiB: not on the server thread's stack
  const char* out = crypt_rn(password.c_str(), hash.c_str(), data.get(), sizeof *data);
  return out != nullptr && out[0] != '*' && std::strlen(out) == hash.size() &&
         CRYPTO_memcmp(out, hash.data(), hash.size()) == 0;
}

}  // namespace

WebConfig parse_web_config(std::string_view text, const std::string& path, bool check_files) {
  const fs::path base = fs::path(path).parent_path();
  return Reader(path, base.empty() ? fs::path(".") : base, check_files).read(text);
}

WebConfig load_web_config(const std::string& path) {
  std::error_code ec;
  std::ifstream in;
  // A directory opens as a stream that then reads nothing: it must not read as empty.
  if (fs::is_regular_file(path, ec)) in.open(path, std::ios::binary);
  if (!in.is_open()) throw std::runtime_error(path + ": cannot read the web configuration file");
  std::string text;
  text.resize(kMaxFileBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) throw std::runtime_error(path + ": error reading the web configuration file");
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxFileBytes) {
    throw std::runtime_error(path + ": larger than 1 MiB; not a web configuration file");
  }
  return parse_web_config(text, path, true);
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  for (std::size_t i = 0; i + padding < text.size(); ++i) {
    const char c = text[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
          c == '/'))
      return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - padding);  // EVP_DecodeBlock writes the padding as zero bytes
  return out;
}

BasicAuth::BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {
  if (users_.empty()) return;
  // An unknown user is checked against a setting of the highest cost among the users: it
  // always fails (the 31 dots are no bcrypt output of anything), and takes at least as
  // long as a known user.
  const auto highest = std::max_element(users_.begin(), users_.end(), [](auto& a, auto& b) {
    return a.second.substr(4, 2) < b.second.substr(4, 2);
  });
  std::array<unsigned char, 16> random{};
  RAND_bytes(random.data(), static_cast<int>(random.size()));
  std::array<char, CRYPT_GENSALT_OUTPUT_SIZE> salt{};
  if (crypt_gensalt_rn("$2b$", std::stoul(highest->second.substr(4, 2)),
                       reinterpret_cast<const char*>(random.data()),
                       static_cast<int>(random.size()), salt.data(),
                       static_cast<int>(salt.size())) != nullptr) {
    dummy_hash_ = std::string(salt.data()) + std::string(31, '.');
  }
  if (dummy_hash_.size() != 60) dummy_hash_ = highest->second;
}

bool BasicAuth::allows(std::string_view authorization) {
  if (users_.empty()) return true;
  constexpr std::string_view kScheme = "basic ";
  if (authorization.size() <= kScheme.size()) return false;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  }
  auto credentials = authorization.substr(kScheme.size());
  while (!credentials.empty() && credentials.front() == ' ') credentials.remove_prefix(1);
  const auto decoded = base64_decode(credentials);
  if (!decoded) return false;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  // crypt_rn reads C strings: a NUL would cut the password short ("s3cret\0x" == "s3cret").
  if (decoded->find('\0') != std::string::npos) return false;
  const std::string user = decoded->substr(0, colon);
  const std::string password = decoded->substr(colon + 1);
  const auto it = users_.find(user);
  const std::string& hash = it == users_.end() ? dummy_hash_ : it->second;
  const std::string key = sha256_hex(user + '\0' + password + '\0' + hash);
  {
    std::lock_guard lock(mu_);
    if (it != users_.end() && !key.empty() &&
        std::find(granted_.begin(), granted_.end(), key) != granted_.end()) {
      return true;
    }
  }
  const bool ok = bcrypt_matches(password, hash) && it != users_.end();
  if (ok && !key.empty()) {
    std::lock_guard lock(mu_);
    if (granted_.size() >= kMaxGranted) granted_.erase(granted_.begin());
    granted_.push_back(key);
  }
  return ok;
}

}  // namespace portvigil::web
