#include "portvigil/common/shard.hpp"

#include <openssl/evp.h>

#include <array>
#include <charconv>
#include <stdexcept>

#include "portvigil/common/digest.hpp"
#include "portvigil/common/errors.hpp"
#include "portvigil/common/grammar.hpp"

namespace portvigil {

std::uint64_t prometheus_hashmod(std::string_view value, std::uint64_t modulus) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(value.data(), value.size(), digest.data(), &length, EVP_md5(), nullptr) != 1 ||
      length != 16) {
    // Only a broken OpenSSL build gets here (MD5 is in the default provider).
    throw std::runtime_error("OpenSSL: MD5 digest unavailable");
  }
  std::uint64_t sum = 0;
  for (std::size_t i = 8; i < 16; ++i) sum = (sum << 8) | digest[i];
  return sum % modulus;
}

std::string change_id(std::string_view job, std::string_view host, std::string_view kind,
                      std::string_view proto, std::uint16_t port, std::string_view from,
                      std::string_view to, std::string_view previous) {
  const std::string port_text = std::to_string(port);
  std::string input;
  for (const std::string_view field :
       {job, host, kind, proto, std::string_view(port_text), from, to}) {
    input.append(field);
    input.push_back('\0');
  }
  input.append(previous);
  return sha256_hex(input).substr(0, 32);
}

std::string Shard::text() const {
  return std::to_string(index) + "/" + std::to_string(count);
}

Shard parse_shard(std::string_view text) {
  const auto bad = [&](const std::string& why) {
    return InputError("invalid shard " + quote_input(text) + ": " + why);
  };
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    throw bad("expected \"I/N\", shard I of N agents, such as \"0/3\"");
  }
  const auto number = [&](std::string_view digits, const char* what) {
    std::uint32_t n = 0;
    const auto* end = digits.data() + digits.size();
    const auto [ptr, ec] = std::from_chars(digits.data(), end, n);
    if (digits.empty() || ec != std::errc{} || ptr != end) {
      throw bad(std::string("expected \"I/N\" with ") + what + " a whole number");
    }
    return n;
  };
  Shard s;
  s.index = number(text.substr(0, slash), "I");
  s.count = number(text.substr(slash + 1), "N");
  if (s.count < 1 || s.count > kMaxShards) {
    throw bad("N must be 1 to " + std::to_string(kMaxShards));
  }
  if (s.index >= s.count) {
    throw bad("I must be 0 to " + std::to_string(s.count - 1) +
              " (shards count from 0, as the values of Prometheus' hashmod do)");
  }
  return s;
}

}  // namespace portvigil
