// A webhook receiver for the sink tests: HTTP/1.1 on 127.0.0.1, one request per connection,
// answering every POST with a chosen status (or not at all), and keeping each body.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent_test_util.hpp"

namespace portvigil::test {

class WebhookReceiver {
 public:
  // port 0: let the kernel choose.
  explicit WebhookReceiver(std::uint16_t port = 0) : port_(port) {
    fd_ = listen_loopback(port_, 16);
    thread_ = std::thread([this] { serve(); });
  }
  ~WebhookReceiver() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  void set_status(int status) { status_ = status; }  // 0: never answer
  [[nodiscard]] std::vector<std::string> bodies() const {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  [[nodiscard]] std::vector<std::string> requests() const {  // request line and headers
    std::lock_guard lock(mu_);
    return heads_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      handle(c);
      ::close(c);
    }
  }

  // Reads one request (headers, then Content-Length bytes) and answers it.
  void handle(int c) {
    std::string data;
    std::size_t body_at = std::string::npos;
    std::size_t length = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!stop_ && std::chrono::steady_clock::now() < deadline) {
      if (body_at != std::string::npos && data.size() >= body_at + length) break;
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) return;
      data.append(buf, static_cast<std::size_t>(n));
      if (body_at == std::string::npos) {
        const auto end = data.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        body_at = end + 4;
        std::string head = data.substr(0, end);
        std::string lower = head;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        if (const auto at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
          length = std::stoul(lower.substr(at + 17));
        }
        std::lock_guard lock(mu_);
        heads_.push_back(head);
      }
    }
    if (body_at == std::string::npos || data.size() < body_at + length) return;
    const int status = status_;
    if (status == 0) {  // no answer: hold the connection until the client gives up
      while (!stop_) {
        pollfd p{c, POLLIN, 0};
        char byte = 0;
        if (::poll(&p, 1, 20) > 0 && ::read(c, &byte, 1) <= 0) return;
      }
      return;
    }
    {
      std::lock_guard lock(mu_);
      if (status >= 200 && status < 300) bodies_.push_back(data.substr(body_at, length));
    }
    const std::string answer = "HTTP/1.1 " + std::to_string(status) +
                               " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    (void)!::write(c, answer.data(), answer.size());
  }

  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> status_{200};
  mutable std::mutex mu_;
  std::vector<std::string> bodies_;  // of the requests answered 2xx
  std::vector<std::string> heads_;
  std::thread thread_;
};

}  // namespace portvigil::test
