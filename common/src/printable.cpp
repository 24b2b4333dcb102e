#include "portvigil/common/printable.hpp"

#include <algorithm>

namespace portvigil {

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(std::min(text.size(), kMaxPrintedMessage) + 16);
  std::size_t run = 0;  // non-space bytes in a row
  for (const char ch : text) {
    if (out.size() >= kMaxPrintedMessage) {
      out += "... (cut)";
      break;
    }
    const auto c = static_cast<unsigned char>(ch);
    if (c == ' ') {
      run = 0;
      out += ' ';
      continue;
    }
    if (++run > kMaxPrintedToken) {
      if (run == kMaxPrintedToken + 1) out += "...";
      continue;
    }
    if (c < 0x20 || c == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace portvigil
