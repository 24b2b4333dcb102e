#include "portvigil/exporters/event_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <iostream>
#include <stdexcept>

namespace portvigil {

namespace {

// A line of the file for a message: at most 80 bytes, control bytes as \xNN.
std::string shown(std::string_view line) {
  std::string out = "\"";
  for (std::size_t i = 0; i < line.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + (line.size() > 80 ? "\"..." : "\"");
}

std::string stamp_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

void write_whole(int fd, const char* data, std::size_t size, const std::string& what) {
  for (std::size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(what + ": " + std::strerror(n == 0 ? EIO : errno));
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

EventLog::EventLog(const std::string& path, std::string what)
    : what_(std::move(what)), path_(path) {
  // Never through a symlink (one in the state directory would make root write, or cut, its
  // target), never blocking on a fifo, and created private whatever the umask.
  fd_ =
      ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    const int err = errno;
    throw std::runtime_error(
        what_ + " \"" + path + "\": cannot open for appending: " +
        (err == ELOOP ? std::string("it is a symbolic link; refusing to follow it (name "
                                    "the file itself)")
                      : std::string(std::strerror(err))));
  }
  try {
    // A regular file is read back (and repaired); a character device such as /dev/null is
    // only written. Anything else (fifo, socket, block device) is refused.
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      throw std::runtime_error(what_ + " \"" + path + "\": " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
      throw std::runtime_error(what_ + " \"" + path +
                               "\": not a regular file; expected a file for the event lines");
    }
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags >= 0) (void)::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
    if (S_ISREG(st.st_mode)) recover();
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

// Reads the file back. Only lines that are events (see event_log_line.hpp) count: the last
// one's id becomes last_id(), which the agent hands to the database's id sequence. A torn
// last line (crash mid-append) is cut off. Other lines are set aside: the file is renamed to
// <path>.corrupt-<UTC time> and a copy of its event lines takes its place. A non-empty file
// with no event line at all is not an event log, and is left alone.
void EventLog::recover() {
  EventLogScanner scan;
  std::vector<char> buf(1 << 16);
  for (off_t pos = 0;;) {
    const ssize_t n = ::pread(fd_, buf.data(), buf.size(), pos);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      throw std::runtime_error(what_ + " \"" + path_ + "\": cannot read: " + std::strerror(errno));
    }
    if (n == 0) break;
    scan.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
    pos += n;
  }
  scan.finish();
  last_id_ = scan.last_id();
  if (scan.bad().empty()) {
    // A torn last line's event is committed in the database: resume() writes it whole.
    if (const auto torn = scan.torn();
        torn && ::ftruncate(fd_, static_cast<off_t>(torn->offset)) != 0) {
      throw std::runtime_error(what_ + " \"" + path_ +
                               "\": cannot cut a partial last line: " + std::strerror(errno));
    }
    return;
  }
  if (scan.events() == 0) {
    throw std::runtime_error(what_ + " \"" + path_ + "\": not an event log (" +
                             std::to_string(scan.bad_lines()) +
                             " lines, none of them an event; first: " + shown(scan.first_bad()) +
                             "); refusing to write to it: name another file or move this one "
                             "away");
  }
  set_aside(scan);
}

void EventLog::set_aside(const EventLogScanner& scan) {
  const std::string corrupt = path_ + ".corrupt-" + stamp_now();
  const std::string temp = path_ + ".recover-" + std::to_string(::getpid());
  const int out = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) {
    throw std::runtime_error(what_ + " \"" + path_ + "\": cannot create " + temp + ": " +
                             std::strerror(errno));
  }
  try {
    // Copy every byte outside the bad ranges (and before a torn last line).
    const std::uint64_t end = scan.torn() ? scan.torn()->offset : scan.size();
    std::uint64_t pos = 0;
    std::vector<char> buf(1 << 16);
    auto copy = [&](std::uint64_t from, std::uint64_t to) {
      while (from < to) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), to - from));
        const ssize_t n = ::pread(fd_, buf.data(), want, static_cast<off_t>(from));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          throw std::runtime_error(what_ + " \"" + path_ +
                                   "\": cannot read: " + std::strerror(n == 0 ? EIO : errno));
        }
        write_whole(out, buf.data(), static_cast<std::size_t>(n),
                    what_ + " \"" + path_ + "\": cannot write " + temp);
        from += static_cast<std::uint64_t>(n);
      }
    };
    for (const auto& r : scan.bad()) {
      copy(pos, std::min(r.offset, end));
      pos = r.offset + r.length;
    }
    copy(std::min(pos, end), end);
    if (::fsync(out) != 0) {
      throw std::runtime_error(what_ + " \"" + path_ + "\": cannot sync " + temp + ": " +
                               std::strerror(errno));
    }
    ::close(out);
  } catch (...) {
    ::close(out);
    ::unlink(temp.c_str());
    throw;
  }
  if (::rename(path_.c_str(), corrupt.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    throw std::runtime_error(what_ + " \"" + path_ + "\": cannot move it to " + corrupt + ": " +
                             std::strerror(err));
  }
  if (::rename(temp.c_str(), path_.c_str()) != 0) {
    throw std::runtime_error(what_ + " \"" + path_ + "\": cannot put " + temp +
                             " in its place: " + std::strerror(errno));
  }
  const int fd = ::open(path_.c_str(), O_RDWR | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    throw std::runtime_error(what_ + " \"" + path_ + "\": cannot reopen: " + std::strerror(errno));
  }
  ::close(fd_);
  fd_ = fd;
  notes_.push_back(what_ + " \"" + path_ + "\": set aside " + std::to_string(scan.bad_lines()) +
                   " lines that are not events in order (first: " + shown(scan.first_bad()) +
                   "); the file as found is now " + corrupt + ", the event log keeps its " +
                   std::to_string(scan.events()) + " events");
}

EventLog::~EventLog() {
  if (fd_ >= 0) ::close(fd_);
}

void EventLog::publish(std::span<const ChangeEvent> events) {
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
    throw std::runtime_error(what_ + " \"" + path_ + "\": cannot " + what + " " +
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
