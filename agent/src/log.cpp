#include "log.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "portvigil/common/printable.hpp"

namespace portvigil {

Logger::Logger(LogLevel level)
    : level_(level), journal_(std::getenv("JOURNAL_STREAM") != nullptr) {}

void Logger::write(LogLevel level, const std::string& message) {
  if (!enabled(level)) return;
  // One line per message, whatever the message quotes (owner, file names, targets).
  const std::string text = printable(message);
  std::lock_guard lock(mu_);
  if (journal_) {
    // <3> err, <4> warning, <6> info, <7> debug (sd-daemon(3)).
    static constexpr int kPriority[] = {3, 4, 6, 7};
    std::fprintf(stderr, "<%d>%s\n", kPriority[static_cast<int>(level)], text.c_str());
  } else {
    const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::fprintf(stderr, "%s %-5s %s\n", stamp, std::string(name(level)).c_str(), text.c_str());
  }
  std::fflush(stderr);
}

}  // namespace portvigil
