// The agent's log: one line per message on stderr (journald adds time and unit), with the
// level as an sd-daemon priority prefix when stderr is the journal, else as a word.
#pragma once

#include <mutex>
#include <sstream>
#include <string>

#include "portvigil/config/agent_config.hpp"

namespace portvigil {

class Logger {
 public:
  explicit Logger(LogLevel level = LogLevel::info);
  void set_level(LogLevel level) { level_ = level; }
  [[nodiscard]] bool enabled(LogLevel level) const { return level <= level_; }
  void write(LogLevel level, const std::string& message);

  void error(const std::string& m) { write(LogLevel::error, m); }
  void warn(const std::string& m) { write(LogLevel::warn, m); }
  void info(const std::string& m) { write(LogLevel::info, m); }
  void debug(const std::string& m) { write(LogLevel::debug, m); }

 private:
  LogLevel level_;
  bool journal_;
  std::mutex mu_;
};

}  // namespace portvigil
