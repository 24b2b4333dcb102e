#include "portvigil/exporters/sinks.hpp"

#include <curl/curl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "portvigil/exporters/event_json.hpp"
#include "portvigil/exporters/event_log.hpp"

namespace portvigil {
namespace {

// curl_global_init is not thread-safe before libcurl 7.84 and must run once per process.
void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// The answer's body is not needed; reading it keeps libcurl from printing it.
std::size_t discard(char*, std::size_t size, std::size_t count, void*) {
  return size * count;
}

// Called by libcurl during the transfer: non-zero aborts it (the agent is stopping).
int cancelled(void* flag, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(flag)->load() ? 1 : 0;
}

class WebhookSink final : public EventSink {
 public:
  explicit WebhookSink(SinkOptions options) : options_(std::move(options)) {
    init_curl_once();
    curl_ = curl_easy_init();
    if (curl_ == nullptr)
      throw std::runtime_error("sink " + options_.name + ": curl_easy_init failed");
    headers_ = curl_slist_append(nullptr, "Content-Type: application/json");
    headers_ = curl_slist_append(headers_, "User-Agent: portvigil");
  }
  ~WebhookSink() override {
    curl_slist_free_all(headers_);
    curl_easy_cleanup(curl_);
  }
  WebhookSink(const WebhookSink&) = delete;
  WebhookSink& operator=(const WebhookSink&) = delete;

  Result deliver(std::span<const ChangeEvent> events, const std::atomic<bool>& cancel) override {
    const std::string json = batch_json(events);
    curl_easy_reset(curl_);
    const auto timeout_ms = static_cast<long>(options_.timeout.count() * 1000);
    error_[0] = '\0';
    curl_easy_setopt(curl_, CURLOPT_URL, options_.url.c_str());
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(curl_, CURLOPT_POST, 1L);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, json.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(json.size()));
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);  // the agent's threads own the signals
    curl_easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, error_.data());
    curl_easy_setopt(curl_, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl_, CURLOPT_XFERINFOFUNCTION, cancelled);
    curl_easy_setopt(curl_, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(&cancel));
    const CURLcode rc = curl_easy_perform(curl_);
    if (rc != CURLE_OK) {
      return {false, error_[0] != '\0' ? std::string(error_.data()) : curl_easy_strerror(rc)};
    }
    long status = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) return {false, "HTTP status " + std::to_string(status)};
    return {true, {}};
  }

 private:
  SinkOptions options_;
  CURL* curl_ = nullptr;
  curl_slist* headers_ = nullptr;
  std::array<char, CURL_ERROR_SIZE> error_{};  // libcurl writes here during perform
};

class FileSink final : public EventSink {
 public:
  explicit FileSink(const SinkOptions& options)
      : path_(options.path), what_("file sink \"" + options.name + "\"") {}

  Result deliver(std::span<const ChangeEvent> events, const std::atomic<bool>&) override {
    Result result;
    try {
      if (!log_) {
        log_.emplace(path_, what_);
        result.notes = log_->notes();
      }
      log_->publish(events);  // skips the ids the file already has
      result.delivered = true;
    } catch (const std::exception& e) {
      log_.reset();  // reopened (and read back) at the next attempt: a disk may come back
      result.error = e.what();
    }
    return result;
  }

 private:
  std::string path_;
  std::string what_;
  std::optional<EventLog> log_;
};

class StdoutSink final : public EventSink {
 public:
  explicit StdoutSink(const SinkOptions& options) : timeout_(options.timeout) {}

  // Line by line with write(2), each chunk waited for with poll(2) in short slices: a reader
  // that stops reading (a full pipe) holds up this sink only, and a stop or the timeout ends
  // the wait. The fd stays blocking (it is shared with stderr under systemd); on a pipe
  // POLLOUT means room for PIPE_BUF bytes, so a chunk of at most that rarely blocks (another
  // writer of the same pipe can take the room first). A line cut by a failure is finished,
  // not repeated, by this process's next attempt, and events already out are skipped.
  Result deliver(std::span<const ChangeEvent> events, const std::atomic<bool>& cancel) override {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout_);
    for (const auto& e : events) {
      if (e.id <= written_) continue;
      if (rest_id_ != e.id) {
        rest_ = event_json(e);
        rest_ += '\n';
        rest_id_ = e.id;
      }
      if (auto error = write_rest(cancel, deadline); !error.empty()) {
        return {false, std::move(error)};
      }
      written_ = e.id;
    }
    return {true, {}};
  }

 private:
  std::string write_rest(const std::atomic<bool>& cancel,
                         std::chrono::steady_clock::time_point deadline) {
    std::size_t done = 0;
    std::string error;
    while (done < rest_.size()) {
      if (cancel) {
        error = "stdout: cancelled (the agent is stopping)";
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        error = "stdout: not writable (nothing reads it?)";
        break;
      }
      pollfd p{STDOUT_FILENO, POLLOUT, 0};
      const int ready = ::poll(&p, 1, 200);
      if (ready < 0 && errno != EINTR) {
        error = std::string("stdout: ") + std::strerror(errno);
        break;
      }
      if (ready <= 0) continue;
      const std::size_t chunk = std::min<std::size_t>(rest_.size() - done, PIPE_BUF);
      const ssize_t n = ::write(STDOUT_FILENO, rest_.data() + done, chunk);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        error = std::string("stdout: ") + std::strerror(n == 0 ? EIO : errno);
        break;
      }
      done += static_cast<std::size_t>(n);
    }
    rest_.erase(0, done);
    return error;
  }

  std::chrono::duration<double> timeout_;
  std::int64_t written_ = 0;  // the last event wholly written
  std::int64_t rest_id_ = 0;  // the event rest_ is (the unwritten end of) the line of
  std::string rest_;
};

const std::array<std::pair<std::string_view, SinkFactory>, 3> kRegistry{{
    {"webhook", make_webhook_sink},
    {"file", make_file_sink},
    {"stdout", make_stdout_sink},
}};

}  // namespace

std::unique_ptr<EventSink> make_webhook_sink(const SinkOptions& options) {
  return std::make_unique<WebhookSink>(options);
}

std::string batch_json(std::span<const ChangeEvent> events) {
  std::string out = "{\"events\":[";
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i) out += ',';
    out += event_json(events[i]);
  }
  return out + "]}\n";
}

std::unique_ptr<EventSink> make_file_sink(const SinkOptions& options) {
  return std::make_unique<FileSink>(options);
}

std::unique_ptr<EventSink> make_stdout_sink(const SinkOptions& options) {
  return std::make_unique<StdoutSink>(options);
}

std::span<const std::pair<std::string_view, SinkFactory>> sink_registry() {
  return kRegistry;
}

std::unique_ptr<EventSink> make_sink(std::string_view type, const SinkOptions& options) {
  for (const auto& [name, factory] : kRegistry) {
    if (name == type) return factory(options);
  }
  throw std::invalid_argument("unknown sink type \"" + std::string(type) + "\"");
}

}  // namespace portvigil
