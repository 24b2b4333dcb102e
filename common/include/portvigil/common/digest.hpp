// SHA-256 in lower-case hex: the one digest helper for change ids, credential cache keys,
// banner hashes and certificate fingerprints.
#pragma once

#include <string>
#include <string_view>

namespace portvigil {

// 64 hex digits; throws std::runtime_error if OpenSSL cannot compute SHA-256.
[[nodiscard]] std::string sha256_hex(std::string_view data);

}  // namespace portvigil
