// The agent's log: one line per message on stderr (journald adds time and unit), with the
// level as an sd-daemon priority prefix when stderr is the journal, else as a word.
#pragma once

#include <atomic>
#include <mutex>
#include <sstream>
#include <string>

#include "portvigil/config/agent_config.hpp"

namespace portvigil {

class Logger {
 public:
  explicit Logger(LogLevel level = LogLevel::info);
  // SIGHUP changes the level while the scan thread logs: an atomic, not a plain field.
  void set_level(LogLevel level) { level_.store(level, std::memory_order_relaxed); }
  [[nodiscard]] bool enabled(LogLevel level) const {
    return level <= level_.load(std::memory_order_relaxed);
  }
  void write(LogLevel level, const std::string& message);

  void error(const std::string& m) { write(LogLevel::error, m); }
  void warn(const std::string& m) { write(LogLevel::warn, m); }
  void info(const std::string& m) { write(LogLevel::info, m); }
  void debug(const std::string& m) { write(LogLevel::debug, m); }

 private:
  std::atomic<LogLevel> level_;
  bool journal_;
  std::mutex mu_;
};

}  // namespace portvigil
