#include "event_log.hpp"

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
  const auto& c = e.change;
  std::string out = "{\"id\":" + std::to_string(e.id);
  out += ",\"time\":\"" + iso_time(e.time) + "\"";
  out += ",\"job\":" + json_escape(e.job);
  out += ",\"host\":" + json_escape(e.host);
  out += ",\"proto\":\"" + std::string(name(c.proto)) + "\"";
  out += ",\"port\":" + std::to_string(c.port);
  out += ",\"from\":\"" + std::string(name(c.from)) + "\"";
  out += ",\"to\":\"" + std::string(name(c.to)) + "\"";
  out += ",\"from_reason\":\"" + std::string(name(c.from_reason)) + "\"";
  out += ",\"to_reason\":\"" + std::string(name(c.to_reason)) + "\"";
  out += ",\"expected\":" + std::string(e.expected ? "true" : "false");
  out += ",\"scan_id\":" + std::to_string(e.scan_id) + "}";
  return out;
}

EventLog::EventLog(const std::string& path, bool echo_stdout) : path_(path), echo_(echo_stdout) {
  {
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
  file_ = std::fopen(path.c_str(), "a");
  if (!file_) {
    throw std::runtime_error("event log \"" + path +
                             "\": cannot open for appending: " + std::strerror(errno));
  }
}

EventLog::~EventLog() {
  if (file_) std::fclose(file_);
}

void EventLog::publish(const std::vector<ChangeEvent>& events) {
  if (events.empty()) return;
  for (const auto& e : events) {
    if (e.id <= last_id_) continue;  // already in the file (resume after a crash)
    const auto line = event_json(e);
    std::fputs(line.c_str(), file_);
    std::fputc('\n', file_);
    if (echo_) std::cout << line << '\n';
    last_id_ = e.id;
  }
  std::fflush(file_);
  fdatasync(fileno(file_));
  if (echo_) std::cout.flush();
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
