// Event sinks: where the agent delivers change events besides its event log ([[sink]] in the
// configuration). A sink takes one batch of events (in id order), encodes them with
// event_json() and says whether they were delivered; the agent keeps each sink's cursor and
// retries (agent/src/sink_runner.hpp). The registry maps a type name to its factory.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "portvigil/storage/store.hpp"

namespace portvigil {

class EventSink {
 public:
  struct Result {
    bool delivered = false;
    std::string error;                 // why not, for the agent's log
    std::vector<std::string> notes{};  // what opening the destination repaired, for the log
  };
  virtual ~EventSink() = default;
  // Delivers `events` (one batch, ids increasing). Blocks for at most the sink's timeout,
  // less when `cancel` becomes true (the agent stopping); called from one thread at a time.
  virtual Result deliver(std::span<const ChangeEvent> events, const std::atomic<bool>& cancel) = 0;
};

struct SinkOptions {
  std::string name;
  std::string url;   // webhook
  std::string path;  // file
  std::chrono::duration<double> timeout{10};
};

using SinkFactory = std::function<std::unique_ptr<EventSink>(const SinkOptions&)>;

// The registered sink types, by name.
[[nodiscard]] std::span<const std::pair<std::string_view, SinkFactory>> sink_registry();
// Builds a sink of `type`; throws std::invalid_argument for a type nobody registered.
[[nodiscard]] std::unique_ptr<EventSink> make_sink(std::string_view type,
                                                   const SinkOptions& options);

// webhook: an HTTP(S) POST of the batch (Content-Type application/json) through libcurl;
// delivered on a 2xx answer. Certificates are verified against the system's CAs; redirects
// are not followed (a redirect is a failure that names the status).
[[nodiscard]] std::unique_ptr<EventSink> make_webhook_sink(const SinkOptions& options);
// webhook's body: {"events":[event_json(e), ...]} and a newline.
[[nodiscard]] std::string batch_json(std::span<const ChangeEvent> events);

// file: one event_json() line per event appended to `path` and synced, through the event
// log's writer (EventLog: no symlinks, torn lines cut, lines that are not events set aside).
// The file is opened at the first delivery and again after a failed one (a failure to open
// is a failed delivery, retried like any other). A batch delivered again after a crash is
// not written twice: the file's last event id is read back when it opens and events up to
// it are skipped.
[[nodiscard]] std::unique_ptr<EventSink> make_file_sink(const SinkOptions& options);

// stdout: one event_json() line per event on the agent's standard output (the journal under
// systemd); a failed write (a closed pipe), or no room to write for the timeout (a full pipe
// nobody reads), is a failed delivery, retried; a stop cancels the wait.
[[nodiscard]] std::unique_ptr<EventSink> make_stdout_sink(const SinkOptions& options);

}  // namespace portvigil
