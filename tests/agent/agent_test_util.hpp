// Helpers shared by the agent tests: temporary directories, whole-file reads and writes,
// and loopback listeners.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace portvigil::test {

inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Replaces the file's content.
inline void write_all(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// A fresh directory under the test temp dir, removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::path(testing::TempDir()) /
            ("portvigil-agent-" + tag + "-" + std::to_string(::getpid()) + "-" +
             std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  // Kept when the test failed, for a look at the database, events.jsonl and agent.log.
  ~TempDir() {
    if (testing::Test::HasFailure()) {
      std::cerr << "kept " << path_.string() << " (test failed)\n";
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string str() const { return path_.string(); }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A TCP listener on 127.0.0.1 that can be closed and reopened on the same port. A thread
// accepts and closes connections so that repeated scans never fill the accept queue (a
// full queue drops SYNs and the port would read as filtered).
// A listening TCP socket on 127.0.0.1:`port` (0: the kernel chooses); sets `port` to the
// one bound. Throws when the port is taken.
inline int listen_loopback(std::uint16_t& port, int backlog = 128) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, backlog) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot listen on 127.0.0.1:" + std::to_string(port));
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

class LoopbackListener {
 public:
  // port 0: let the kernel choose (then port() tells which).
  explicit LoopbackListener(std::uint16_t port = 0) : port_(port) { open(); }
  ~LoopbackListener() { close(); }
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;

  void open() {
    if (fd_ >= 0) return;
    fd_ = listen_loopback(port_);
    stop_ = false;
    acceptor_ = std::thread([this, fd = fd_] {
      while (!stop_) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20) > 0) {
          const int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
          if (c >= 0 && !greeting.empty()) {
            (void)::send(c, greeting.data(), greeting.size(), MSG_NOSIGNAL);
          }
          if (c >= 0) ::close(c);
        }
      }
    });
  }
  void close() {
    if (fd_ < 0) return;
    stop_ = true;
    acceptor_.join();
    ::close(fd_);
    fd_ = -1;
  }
  [[nodiscard]] bool is_open() const { return fd_ >= 0; }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  // Sent to every connection before it is closed (set while closed); "" sends nothing.
  std::string greeting;

 private:
  std::uint16_t port_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
};

// A loopback port that nothing listens on right now (chosen by the kernel, then released).
inline std::uint16_t free_loopback_port() {
  LoopbackListener l;
  return l.port();
}

// GET http://127.0.0.1:PORT/PATH over HTTP/1.0: the whole response, "" when nothing answers.
inline std::string http_get(std::uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n = 0;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

}  // namespace portvigil::test
