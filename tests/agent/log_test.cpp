// The agent's log: one line per message, whatever the message quotes.
#include "log.hpp"

#include <gtest/gtest.h>

#include <string>

namespace portvigil {
namespace {

// An [[authorization]] owner with a newline forged a second log line.
TEST(Logger, MessageIsOneEscapedLine) {
  Logger log(LogLevel::info);
  testing::internal::CaptureStderr();
  log.warn("authorization 198.18.0.0/24 (owner \"ops\n2026-01-01T00:00:00Z ERROR forged\x1b[2J\")");
  log.info("target \"" + std::string(1 << 20, 'a') + "\"");
  const auto err = testing::internal::GetCapturedStderr();
  const auto first = err.find('\n');
  ASSERT_NE(first, std::string::npos);
  EXPECT_NE(err.find("owner \"ops\\x0a2026-01-01T00:00:00Z ERROR forged\\x1b[2J\")"),
            std::string::npos)
      << err.substr(0, first);
  EXPECT_EQ(err.find('\x1b'), std::string::npos);
  EXPECT_EQ(err.find('\n', first + 1), err.size() - 1) << "two messages, two lines";
  EXPECT_LT(err.size(), 1000u);
}

}  // namespace
}  // namespace portvigil
