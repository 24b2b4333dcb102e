// Whether a non-blocking connect() has already been settled by the kernel, read without
// waiting. The connect engine asks this when a probe's timer fires: under load the answer
// (a RST, an ICMP error, a SYN-ACK) can sit in the kernel while its completion still waits
// in the event loop's queue behind thousands of others, and a received answer must never
// be reported as silence.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <optional>

#include <asio/error.hpp>

namespace portvigil::engine {

// nullopt while the connection attempt is still in progress; otherwise its outcome: no
// error for an established connection, else the error the kernel recorded (ECONNREFUSED,
// EHOSTUNREACH, ...). Reading the outcome clears the socket's pending error.
[[nodiscard]] inline std::optional<asio::error_code> settled_connect(int fd) {
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, 0) != 1 || p.revents == 0) return std::nullopt;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return std::nullopt;
  // asio's own system category, so that the outcome compares equal to asio::error values.
  return asio::error_code(err, asio::error::get_system_category());
}

}  // namespace portvigil::engine
