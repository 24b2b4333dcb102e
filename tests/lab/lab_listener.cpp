// lab_listener: the "open ports" of the portvigil test lab.
//
//   lab_listener [--tcp LIST] [--udp LIST]      LIST = 22,80,20000-24999
//
// Binds every listed port on 0.0.0.0 and on :: (IPV6_V6ONLY=1). TCP sockets accept and
// immediately close every connection; UDP sockets answer every datagram with its own bytes
// (an empty one with a short text), which echoes the identifiers portvigil's probes carry.
// Prints "ready" on stdout once everything is bound, then serves until SIGTERM/SIGINT.
// No dependencies beyond POSIX/Linux (epoll).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int) {
  g_stop = 1;
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "lab_listener: %s\n", msg.c_str());
  std::exit(1);
}

// Parses "22,80,1000-2000" into a list of ports in 1-65535.
std::vector<int> parse_ports(const std::string& list) {
  std::vector<int> out;
  std::size_t pos = 0;
  while (pos < list.size()) {
    std::size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    const std::string item = list.substr(pos, comma - pos);
    pos = comma + 1;
    if (item.empty()) continue;
    const std::size_t dash = item.find('-');
    char* end = nullptr;
    const long lo = std::strtol(item.c_str(), &end, 10);
    long hi = lo;
    if (dash != std::string::npos) {
      if (end != item.c_str() + dash) die("bad port list item '" + item + "'");
      hi = std::strtol(item.c_str() + dash + 1, &end, 10);
    }
    if (*end != '\0' || lo < 1 || hi > 65535 || lo > hi) die("bad port list item '" + item + "'");
    for (long p = lo; p <= hi; ++p) out.push_back(static_cast<int>(p));
  }
  return out;
}

int open_socket(int family, int type, int port) {
  const int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    die(std::string("SO_REUSEADDR: ") + std::strerror(errno));
  int rc = 0;
  if (family == AF_INET6) {
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
      die(std::string("IPV6_V6ONLY: ") + std::strerror(errno));
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_any;
    sa.sin6_port = htons(static_cast<std::uint16_t>(port));
    rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  }
  if (rc != 0)
    die(std::string(type == SOCK_STREAM ? "tcp" : "udp") + (family == AF_INET6 ? "6" : "4") +
        " bind port " + std::to_string(port) + ": " + std::strerror(errno));
  if (type == SOCK_STREAM && listen(fd, 4096) != 0)
    die("listen port " + std::to_string(port) + ": " + std::strerror(errno));
  return fd;
}

void raise_nofile(std::size_t needed) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) die("getrlimit");
  const rlim_t want = static_cast<rlim_t>(needed + 1024);
  if (rl.rlim_cur >= want) return;
  rl.rlim_cur = want;
  if (rl.rlim_max < want) rl.rlim_max = want;  // needs CAP_SYS_RESOURCE, which root has
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die(std::string("setrlimit: ") + std::strerror(errno));
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> tcp;
  std::vector<int> udp;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--tcp" || arg == "--udp") && i + 1 < argc) {
      auto ports = parse_ports(argv[++i]);
      auto& dst = arg == "--tcp" ? tcp : udp;
      dst.insert(dst.end(), ports.begin(), ports.end());
    } else {
      std::fprintf(stderr, "usage: lab_listener [--tcp LIST] [--udp LIST]\n");
      return 2;
    }
  }

  std::signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  raise_nofile(2 * (tcp.size() + udp.size()) + 64);

  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  // The epoll tag is the fd; the high bit marks UDP sockets.
  constexpr std::uint64_t kUdpTag = 1ULL << 40;
  auto add = [ep](int fd, std::uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<std::uint64_t>(fd) | tag;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  };
  for (int port : tcp) {
    add(open_socket(AF_INET, SOCK_STREAM, port), 0);
    add(open_socket(AF_INET6, SOCK_STREAM, port), 0);
  }
  for (int port : udp) {
    add(open_socket(AF_INET, SOCK_DGRAM, port), kUdpTag);
    add(open_socket(AF_INET6, SOCK_DGRAM, port), kUdpTag);
  }

  std::printf("ready\n");
  std::fflush(stdout);

  static const char kReply[] = "portvigil-lab\n";
  std::vector<epoll_event> events(256);
  while (g_stop == 0) {
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 1000);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      const std::uint64_t tag = events[static_cast<std::size_t>(i)].data.u64;
      const int fd = static_cast<int>(tag & 0xffffffffULL);
      if ((tag & kUdpTag) != 0) {
        for (;;) {
          sockaddr_storage peer{};
          socklen_t plen = sizeof peer;
          char buf[2048];
          const ssize_t got =
              recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &plen);
          if (got < 0) break;  // EAGAIN (or a queued ICMP error): wait for the next event
          if (got == 0) {
            (void)sendto(fd, kReply, sizeof kReply - 1, 0, reinterpret_cast<sockaddr*>(&peer),
                         plen);
            continue;
          }
          // Answer like the protocol's server would as far as a scanner can check: with the
          // request's own bytes, so its identifier (DNS ID, SNMP request-id, ...) comes back
          // where the request had it; an NTP client request (48 bytes, mode 3) gets mode 4
          // and its transmit timestamp as the origin timestamp (RFC 5905 section 8).
          if (got == 48 && (buf[0] & 7) == 3) {
            buf[0] = static_cast<char>((buf[0] & ~7) | 4);
            std::memcpy(buf + 24, buf + 40, 8);
          }
          (void)sendto(fd, buf, static_cast<std::size_t>(got), 0,
                       reinterpret_cast<sockaddr*>(&peer), plen);
        }
      } else {
        for (;;) {
          const int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
          if (c < 0) break;
          close(c);
        }
      }
    }
  }
  return 0;
}
