#include "portvigil/common/printable.hpp"

#include <gtest/gtest.h>

#include <string>

namespace portvigil {
namespace {

TEST(Printable, PlainTextIsKept) {
  EXPECT_EQ(printable("job web: scan 3 complete in 0.52s"), "job web: scan 3 complete in 0.52s");
  EXPECT_EQ(printable("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(printable(""), "");
}

// A newline in an [[authorization]] owner must not start a forged log line.
TEST(Printable, ControlBytesAreEscaped) {
  EXPECT_EQ(printable("owner \"a\n2026-01-01T00:00:00Z ERROR forged\""),
            "owner \"a\\x0a2026-01-01T00:00:00Z ERROR forged\"");
  EXPECT_EQ(printable("\r\t\x1b[31m\x7f"), "\\x0d\\x09\\x1b[31m\\x7f");
  EXPECT_EQ(printable(std::string("a\0b", 3)), "a\\x00b");
}

TEST(Printable, LongTokensAreCut) {
  const std::string token(50 << 20, 'a');
  const auto out = printable("target \"" + token + "\": not an address");
  EXPECT_EQ(out, "target \"" + std::string(kMaxPrintedToken - 1, 'a') + "... not an address");
}

TEST(Printable, LongMessagesAreCut) {
  std::string words;
  while (words.size() < 100000) words += "word ";
  const auto out = printable(words);
  EXPECT_LE(out.size(), kMaxPrintedMessage + 16);
  EXPECT_TRUE(out.ends_with("... (cut)")) << out.substr(out.size() - 20);
}

}  // namespace
}  // namespace portvigil
