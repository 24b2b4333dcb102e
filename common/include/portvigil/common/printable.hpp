// Text from outside (file names, config values, target expressions, event log lines) ends up
// in error messages and log lines. printable() is applied where those are printed (the
// agent's Logger, the commands' "portvigil: ERROR" lines), so that no input can forge a log
// line (a newline in an owner), send terminal escapes or flood the log (a 50 MB token).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace portvigil {

inline constexpr std::size_t kMaxPrintedToken = 256;     // bytes between two spaces
inline constexpr std::size_t kMaxPrintedMessage = 8192;  // bytes of one message

// `text` with control bytes (below 0x20, and 0x7f) written as \xNN, every run of more than
// kMaxPrintedToken non-space bytes cut to its start plus "...", and the whole cut to about
// kMaxPrintedMessage bytes (ending in "... (cut)"). Other bytes (UTF-8) are kept.
[[nodiscard]] std::string printable(std::string_view text);

}  // namespace portvigil
