// Change events as JSON lines appended to a file (fsync'd): the agent's event log, and the
// file sinks (exporters/sinks.hpp). The database is the source of truth; after a crash between the
// database commit and the append, resume() re-emits what the file is missing, so no committed event
// is lost.
#pragma once

#include <string>
#include <vector>

#include "portvigil/exporters/event_json.hpp"
#include "portvigil/exporters/event_log_line.hpp"
#include "portvigil/storage/store.hpp"

namespace portvigil {

class EventLog {
 public:
  // Opens (creating) `path` for appending and reads back its last event id; throws
  // std::runtime_error naming the file. Lines that are not events are set aside (see
  // recover()): notes() says so, for the agent's log.
  // `what` names the file in messages: "event log", or "file sink NAME".
  explicit EventLog(const std::string& path, std::string what = "event log");
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Appends (and syncs) the events with ids above last_id(). Throws
  // std::runtime_error naming the file when the append or sync fails; the file is cut back
  // to its last whole line and last_id() is unchanged, so resume() can retry.
  void publish(std::span<const ChangeEvent> events);
  // Appends the events the store has beyond the last one in the file.
  std::size_t resume(const Store& store);
  // When the file holds no event (rotated away, deleted), treats ids up to `id` as written:
  // `id` is the agent's high-water mark from the database, so the new file is not refilled
  // with old events. A file with events is its own record (a line lost in a crash is
  // rewritten by resume()).
  void skip_to_if_empty(std::int64_t id);
  [[nodiscard]] std::int64_t last_id() const { return last_id_; }
  // What opening the file repaired or set aside, one message each.
  [[nodiscard]] const std::vector<std::string>& notes() const { return notes_; }

 private:
  void recover();
  void set_aside(const EventLogScanner& scan);

  std::string what_;
  std::string path_;
  int fd_ = -1;
  std::int64_t last_id_ = 0;
  std::vector<std::string> notes_;
};

}  // namespace portvigil
