// Change events as JSON lines: appended to the event log file (fsync'd) and echoed to
// stdout. The database is the source of truth; after a crash between the database commit
// and the append, resume() re-emits what the file is missing, so no committed event is lost.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "portvigil/storage/store.hpp"

namespace portvigil {

[[nodiscard]] std::string event_json(const ChangeEvent& event);

class EventLog {
 public:
  // Opens (creating) `path` for appending; throws std::runtime_error naming the file.
  EventLog(const std::string& path, bool echo_stdout);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  void publish(const std::vector<ChangeEvent>& events);
  // Appends the events the store has beyond the last one in the file.
  std::size_t resume(const Store& store);
  [[nodiscard]] std::int64_t last_id() const { return last_id_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  bool echo_;
  std::int64_t last_id_ = 0;
};

}  // namespace portvigil
