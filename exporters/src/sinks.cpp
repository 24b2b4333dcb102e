#include "portvigil/exporters/sinks.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
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
        log_.emplace(path_, /*echo_stdout=*/false, what_);
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
  Result deliver(std::span<const ChangeEvent> events, const std::atomic<bool>&) override {
    std::string text;
    for (const auto& e : events) {
      text += event_json(e);
      text += '\n';
    }
    // write(2), not std::cout: the agent's other threads may echo too, and a batch stays
    // whole lines (one write below PIPE_BUF is atomic on a pipe; a larger one may interleave).
    for (std::size_t done = 0; done < text.size();) {
      const ssize_t n = ::write(STDOUT_FILENO, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return {false, std::string("stdout: ") + std::strerror(n == 0 ? EIO : errno)};
      done += static_cast<std::size_t>(n);
    }
    return {true, {}};
  }
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

std::unique_ptr<EventSink> make_stdout_sink(const SinkOptions&) {
  return std::make_unique<StdoutSink>();
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
