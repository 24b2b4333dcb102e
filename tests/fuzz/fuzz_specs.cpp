// libFuzzer target for the target and port specification parsers (scanner/src/targets.cpp):
// the bytes are read as text. Bad text must throw InputError and nothing else; any other
// exception escapes and libFuzzer reports it as a crash. Names are never resolved
// (resolve_names = false): the fuzzer must not send DNS queries. See docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "portvigil/common/errors.hpp"
#include "portvigil/scanner/targets.hpp"

namespace {

template <typename Fn>
void expect_input_error_only(Fn&& fn) {
  try {
    fn();
  } catch (const portvigil::InputError&) {
    // The documented way to reject text.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  portvigil::TargetParseOptions no_dns;
  no_dns.resolve_names = false;

  expect_input_error_only([&] {
    const auto ports = portvigil::parse_ports(text, true, true);
    (void)portvigil::format_port_ranges(ports.tcp);
  });
  // parse_ports walks all 65536 ports per call: only repeat it when a qualifier can make the
  // protocol selection matter ("U:" ports while scanning TCP only, and vice versa).
  if (text.find_first_of("TtUu") != std::string_view::npos) {
    expect_input_error_only([&] { (void)portvigil::parse_ports(text, true, false); });
    expect_input_error_only([&] { (void)portvigil::parse_ports(text, false, true); });
  }
  expect_input_error_only([&] {
    const auto range = portvigil::parse_cidr(text);
    (void)range.contains(portvigil::from_uint128(range.first, range.v6));
    (void)range.size();
  });
  expect_input_error_only([&] { (void)portvigil::AuthorizedScope::parse(text); });
  expect_input_error_only([&] {
    const auto spec = portvigil::parse_target(text, no_dns);
    (void)spec_contains(spec, portvigil::from_uint128(spec.range.first, spec.range.v6));
    // Walk the first few addresses the expression names (the lazy cursor and its odometer).
    portvigil::TargetSet set;
    set.add(text, no_dns);
    (void)set.size_hint();
    (void)set.covering_scope();
    portvigil::Target target;
    auto cursor = set.cursor();
    for (int i = 0; i < 8 && cursor.next(target); ++i) {
    }
  });
  return 0;
}
