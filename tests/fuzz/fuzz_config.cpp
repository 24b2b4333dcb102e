// libFuzzer target for the configuration loader (config/src/agent_config.cpp and
// config_syntax.cpp): the bytes are TOML text. Bad text must throw InputError and nothing
// else (no bad_alloc, no std::out_of_range, no sanitizer report); any other exception
// escapes and libFuzzer reports it as a crash. Nothing is resolved or scanned.
// See docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "portvigil/common/errors.hpp"
#include "portvigil/common/printable.hpp"
#include "portvigil/config/agent_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto config = portvigil::parse_config(text, "fuzz.toml");
    for (const auto& w : config.warnings) (void)portvigil::printable(w);
  } catch (const portvigil::InputError& e) {
    (void)portvigil::printable(e.what());  // the CLI prints it like this
  }
  return 0;
}
