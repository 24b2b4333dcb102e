// libFuzzer target for what the metrics endpoint reads from outside: the web configuration
// file (exporters/src/web_config.cpp: YAML through yaml-cpp, then our checks), a request head
// from a peer (http_server.cpp) and the base64 credentials in its Authorization header. The
// first byte picks the reader, the rest is its input. A bad configuration must throw
// std::runtime_error and nothing else; the head and base64 readers never throw, and what
// they return stays inside what they were given. Any failure calls abort(). No file named
// in a configuration is opened. See docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "http_server.hpp"
#include "web_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      try {
        const auto c = portvigil::web::parse_web_config(text, "/etc/portvigil/web.yml", false);
        for (const auto& [user, hash] : c.basic_auth_users) {
          if (user.empty() || hash.size() != 60) std::abort();
        }
        if (c.tls && (c.tls->cert_file.empty() || c.tls->key_file.empty())) std::abort();
      } catch (const std::runtime_error&) {
      }
      break;
    case 1: {
      const auto decoded = portvigil::web::base64_decode(text);
      if (decoded) {
        if (text.size() % 4 != 0 || decoded->size() > text.size() / 4 * 3) std::abort();
        if (decoded->size() + 2 < text.size() / 4 * 3) std::abort();
        // Encoding what was decoded gives the input back, up to unused low bits of the
        // last character before the padding.
        const auto again = portvigil::http::base64(*decoded);
        if (again.size() != text.size()) std::abort();
      }
      break;
    }
    default: {
      const auto r = portvigil::http::parse_request_head(text);
      if (!r.method.empty()) {
        if (r.path.empty() || r.path.front() != '/') std::abort();
        if (r.path.size() + r.method.size() > text.size()) std::abort();
        if (r.path.find('?') != std::string::npos) std::abort();
      }
      if (r.authorization.size() > text.size()) std::abort();
      break;
    }
  }
  return 0;
}
