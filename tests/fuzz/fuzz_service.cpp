// libFuzzer target for the service identification rules (scanner/src/service_rules.cpp): the
// bytes are what an open port sent, as a greeting and as a reply to HEAD /. Nothing may read
// out of bounds, and every text kept must be short printable ASCII. See docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "service_rules.hpp"

namespace {

void check_text(const std::string& text, std::size_t limit) {
  if (text.size() > limit) std::abort();
  for (const char c : text) {
    if (c < 0x20 || c > 0x7e) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace service = portvigil::service;
  const std::string_view bytes(reinterpret_cast<const char*>(data),
                               size < service::kMaxRead ? size : service::kMaxRead);
  const std::uint16_t port = size > 0 ? static_cast<std::uint16_t>(data[0] * 257) : 0;
  (void)service::greeting_complete(bytes);
  (void)service::reply_complete(bytes);
  (void)service::is_postgres_ssl_answer(bytes);
  const auto greeting = service::classify_greeting(bytes, port);
  // MySQL lines carry a prefix ("MySQL error: ") before the sanitised text.
  check_text(greeting.line, service::kMaxLine);
  check_text(service::first_line(bytes), service::kMaxLine);
  if (const auto head = service::parse_http_head(bytes)) {
    if (head->status < 0 || head->status > 999) std::abort();
    check_text(head->status_line, service::kMaxLine);
    check_text(head->server, service::kMaxLine);
  }
  return 0;
}
