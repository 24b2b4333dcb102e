#include "event_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <stdexcept>

namespace portvigil {
namespace {

std::string json_escape(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string iso_time(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

// The "id" of a JSON line written by event_json(), or 0.
std::int64_t id_of(const std::string& line) {
  const auto pos = line.find("\"id\":");
  if (pos == std::string::npos) return 0;
  return std::strtoll(line.c_str() + pos + 5, nullptr, 10);
}

}  // namespace

std::string event_json(const ChangeEvent& e) {
  std::string out = "{\"id\":" + std::to_string(e.id);
  out += ",\"time\":\"" + iso_time(e.time) + "\"";
  out += ",\"kind\":\"" + std::string(name(e.kind)) + "\"";
  out += ",\"job\":" + json_escape(e.job);
  out += ",\"host\":" + json_escape(e.host);
  if (e.kind == EventKind::port) {
    const auto& c = e.change;
    out += ",\"proto\":\"" + std::string(name(c.proto)) + "\"";
    out += ",\"port\":" + std::to_string(c.port);
    out += ",\"from\":\"" + std::string(from_name(c)) + "\"";
    out += ",\"to\":\"" + std::string(name(c.to)) + "\"";
    out += ",\"from_reason\":\"" +
           std::string(c.from_absent ? std::string_view("none") : name(c.from_reason)) + "\"";
    out += ",\"to_reason\":\"" + std::string(name(c.to_reason)) + "\"";
  } else {
    out += ",\"ports\":[";
    for (std::size_t i = 0; i < e.ports.size(); ++i) {
      if (i > 0) out += ',';
      out += "\"" + std::to_string(e.ports[i].second) + "/" + std::string(name(e.ports[i].first)) +
             "\"";
    }
    out += "]";
  }
  out += ",\"expected\":" + std::string(e.expected ? "true" : "false");
  out += ",\"scan_id\":" + std::to_string(e.scan_id) + "}";
  return out;
}

EventLog::EventLog(const std::string& path, bool echo_stdout) : path_(path), echo_(echo_stdout) {
  // Only a regular file is read back: a character device such as /dev/stdout is written only.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    std::ifstream in(path, std::ios::binary);
    std::string line;
    std::uintmax_t whole = 0;  // bytes in '\n'-terminated lines
    bool torn = false;
    while (std::getline(in, line)) {
      // A last line without '\n' was torn by a crash mid-append: its event is committed
      // in the database, so cut it off and let resume() write it whole.
      if (in.eof()) {
        torn = true;
        break;
      }
      whole += line.size() + 1;
      if (const auto id = id_of(line); id > last_id_) last_id_ = id;
    }
    if (torn && ::truncate(path.c_str(), static_cast<off_t>(whole)) != 0) {
      throw std::runtime_error("event log \"" + path +
                               "\": cannot cut a partial last line: " + std::strerror(errno));
    }
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    throw std::runtime_error("event log \"" + path +
                             "\": cannot open for appending: " + std::strerror(errno));
  }
}

EventLog::~EventLog() {
  if (fd_ >= 0) ::close(fd_);
}

void EventLog::publish(const std::vector<ChangeEvent>& events) {
  std::string text;
  std::int64_t last = last_id_;
  std::size_t count = 0;
  for (const auto& e : events) {
    if (e.id <= last) continue;  // already in the file (resume after a crash)
    text += event_json(e);
    text += '\n';
    last = e.id;
    ++count;
  }
  if (text.empty()) return;
  struct stat st {};
  const bool regular = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
  // A failed append is cut back to the last whole line, so the file never holds a torn
  // line or half a batch; last_id() stays put and the next resume() retries the events
  // (the database holds them).
  const auto fail = [&](const char* what) {
    const int err = errno;
    if (regular && ::ftruncate(fd_, st.st_size) != 0) {
      // Nothing more to do: the next start cuts a torn last line.
    }
    throw std::runtime_error("event log \"" + path_ + "\": cannot " + what + " " +
                             std::to_string(count) + " events: " + std::strerror(err));
  };
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      fail("append");
    }
    done += static_cast<std::size_t>(n);
  }
  if (regular && ::fdatasync(fd_) != 0) fail("sync");
  last_id_ = last;
  // Echoed only once on disk, so stdout never shows an event the file lacks.
  if (echo_) std::cout << text << std::flush;
}

void EventLog::skip_to_if_empty(std::int64_t id) {
  if (last_id_ == 0 && id > 0) last_id_ = id;
}

std::size_t EventLog::resume(const Store& store) {
  std::size_t n = 0;
  while (true) {
    const auto batch = store.events_after(last_id_, 1000);
    if (batch.empty()) break;
    publish(batch);
    n += batch.size();
  }
  return n;
}

}  // namespace portvigil
