// Event sinks: where the agent delivers change events besides its event log ([[sink]] in the
// configuration). A sink takes one batch of events as a JSON document and says whether it
// was delivered; the agent keeps each sink's cursor and retries (agent/src/sink_runner.hpp).
// The registry maps a type name to the factory that builds it.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace portvigil {

class EventSink {
 public:
  struct Result {
    bool delivered = false;
    std::string error;  // why not, for the agent's log
  };
  virtual ~EventSink() = default;
  // Delivers `json` (one batch). Blocks for at most the sink's timeout, less when `cancel`
  // becomes true (the agent stopping); called from one thread at a time.
  virtual Result deliver(std::string_view json, const std::atomic<bool>& cancel) = 0;
};

struct SinkOptions {
  std::string name;
  std::string url;
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

}  // namespace portvigil
