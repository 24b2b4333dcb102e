// Real packet I/O: raw IP sockets to send (the kernel routes and resolves neighbours), a
// packet socket for discovery's link-layer frames, and libpcap in immediate mode to capture
// replies, filtered in the kernel by BPF.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <thread>

#include "packet.hpp"
#include "portvigil/common/unique_fd.hpp"
#include "portvigil/scanner/packet_io.hpp"

namespace portvigil {
namespace {

std::runtime_error sys_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

// The local address the kernel would use toward `dst` (a connected UDP socket sends nothing).
asio::ip::address route_source(const asio::ip::address& dst) {
  const UniqueFd sock(socket(dst.is_v6() ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) throw sys_error("socket");
  const int fd = sock.get();
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (dst.is_v4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(9);
    const auto b = dst.to_v4().to_bytes();
    std::memcpy(&sin->sin_addr, b.data(), 4);
    len = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(9);
    const auto b = dst.to_v6().to_bytes();
    std::memcpy(&sin6->sin6_addr, b.data(), 16);
    len = sizeof(sockaddr_in6);
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    throw sys_error("no route to " + dst.to_string());
  }
  sockaddr_storage local{};
  socklen_t llen = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) != 0) {
    throw sys_error("getsockname");
  }
  if (local.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&local);
    asio::ip::address_v4::bytes_type b;
    std::memcpy(b.data(), &sin->sin_addr, 4);
    return asio::ip::address_v4(b);
  }
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&local);
  asio::ip::address_v6::bytes_type b;
  std::memcpy(b.data(), &sin6->sin6_addr, 16);
  return asio::ip::address_v6(b);
}

std::string interface_of(const asio::ip::address& local) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) throw sys_error("getifaddrs");
  std::string name;
  for (auto* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    if (i->ifa_addr->sa_family == AF_INET && local.is_v4()) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      if (std::memcmp(&sin->sin_addr, local.to_v4().to_bytes().data(), 4) == 0) name = i->ifa_name;
    } else if (i->ifa_addr->sa_family == AF_INET6 && local.is_v6()) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      if (std::memcmp(&sin6->sin6_addr, local.to_v6().to_bytes().data(), 16) == 0) {
        name = i->ifa_name;
      }
    }
    if (!name.empty()) break;
  }
  freeifaddrs(list);
  if (name.empty()) {
    throw std::runtime_error("no interface holds the source address " + local.to_string());
  }
  return name;
}

// Asks the kernel for the route it would use toward `dst` (RTM_GETROUTE, what `ip route get`
// prints): true when that is a unicast route out of interface `ifindex` with no gateway, so
// `dst` itself answers neighbour discovery on that link. rtnetlink answers a request before
// send() returns, so the read never waits; a missing or unexpected answer means "not on-link"
// (discovery then simply does not ask the link). Replies to other sequence numbers (a request
// that went unanswered earlier) are skipped.
bool route_is_on_link(int nl_fd, std::uint32_t seq, const asio::ip::address& dst, int ifindex) {
  struct {
    nlmsghdr header;
    rtmsg route;
    alignas(NLMSG_ALIGNTO) unsigned char attrs[RTA_SPACE(16)];
  } req{};
  const std::size_t addr_len = dst.is_v4() ? 4 : 16;
  req.route.rtm_family = dst.is_v4() ? AF_INET : AF_INET6;
  req.route.rtm_dst_len = static_cast<unsigned char>(addr_len * 8);
  auto* attr = reinterpret_cast<rtattr*>(req.attrs);
  attr->rta_type = RTA_DST;
  attr->rta_len = static_cast<unsigned short>(RTA_LENGTH(addr_len));
  if (dst.is_v4()) {
    std::memcpy(RTA_DATA(attr), dst.to_v4().to_bytes().data(), 4);
  } else {
    std::memcpy(RTA_DATA(attr), dst.to_v6().to_bytes().data(), 16);
  }
  req.header.nlmsg_len =
      static_cast<std::uint32_t>(NLMSG_LENGTH(sizeof(rtmsg)) + RTA_SPACE(addr_len));
  req.header.nlmsg_type = RTM_GETROUTE;
  req.header.nlmsg_flags = NLM_F_REQUEST;
  req.header.nlmsg_seq = seq;
  if (send(nl_fd, &req, req.header.nlmsg_len, MSG_DONTWAIT) < 0) return false;
  alignas(nlmsghdr) unsigned char buf[8192];
  while (true) {
    const ssize_t got = recv(nl_fd, buf, sizeof buf, MSG_DONTWAIT);
    if (got <= 0) return false;
    // NLMSG_OK/NLMSG_NEXT, spelled out: the macros compare signed with unsigned.
    std::size_t left = static_cast<std::size_t>(got);
    for (const auto* h = reinterpret_cast<const nlmsghdr*>(buf);
         left >= sizeof(nlmsghdr) && h->nlmsg_len >= sizeof(nlmsghdr) && h->nlmsg_len <= left;
         left -= std::min<std::size_t>(left, NLMSG_ALIGN(h->nlmsg_len)),
                     h = reinterpret_cast<const nlmsghdr*>(
                         reinterpret_cast<const unsigned char*>(h) + NLMSG_ALIGN(h->nlmsg_len))) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) {
        return false;  // NLMSG_ERROR: no route (unreachable, prohibited, no such network)
      }
      const auto* route = static_cast<const rtmsg*>(NLMSG_DATA(h));
      if (route->rtm_type != RTN_UNICAST) return false;
      int oif = 0;
      int attrs_left = static_cast<int>(RTM_PAYLOAD(h));
      for (auto* a = RTM_RTA(route); RTA_OK(a, attrs_left); a = RTA_NEXT(a, attrs_left)) {
        if (a->rta_type == RTA_GATEWAY || a->rta_type == RTA_VIA) return false;
        if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= sizeof(int)) {
          std::memcpy(&oif, RTA_DATA(a), sizeof(int));
        }
      }
      return oif != 0 && oif == ifindex;
    }
  }
}

// Every resource is owned by a member, so a constructor that throws part-way (no route, no
// interface, pcap errors) releases what it had already opened.
class RealPacketIo final : public PacketIo {
 public:
  explicit RealPacketIo(const IoRequest& req) : scope_(req.scope) {
    fd4_.reset(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW));
    if (!fd4_) {
      throw sys_error("raw socket (needs CAP_NET_RAW: run as root or setcap cap_net_raw+ep)");
    }
    // IPPROTO_RAW implies IPV6_HDRINCL
    fd6_.reset(socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW));
    const int sndbuf = 4 << 20;
    setsockopt(fd4_.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (fd6_) setsockopt(fd6_.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

    iface_ = req.interface.empty() ? interface_of(route_source(req.first_target)) : req.interface;
    const std::string& iface = iface_;
    char errbuf[PCAP_ERRBUF_SIZE] = {};
    pcap_.reset(pcap_create(iface.c_str(), errbuf));
    if (!pcap_) throw std::runtime_error("pcap_create(" + iface + "): " + errbuf);
    pcap_t* p = pcap_.get();
    pcap_set_snaplen(p, 256);
    pcap_set_promisc(p, 0);
    // Immediate mode: replies are delivered as they arrive, not when a ring block fills.
    pcap_set_immediate_mode(p, 1);
    pcap_set_buffer_size(p, static_cast<int>(req.capture_buffer_bytes));
    if (pcap_activate(p) < 0) {
      throw std::runtime_error("pcap_activate(" + iface + "): " + pcap_geterr(p));
    }
    pcap_setdirection(p, PCAP_D_IN);
    bpf_program prog{};
    if (pcap_compile(p, &prog, req.capture_filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0 ||
        pcap_setfilter(p, &prog) != 0) {
      const std::string msg = pcap_geterr(p);
      pcap_freecode(&prog);
      throw std::runtime_error("capture filter \"" + req.capture_filter + "\": " + msg);
    }
    pcap_freecode(&prog);
    pcap_setnonblock(p, 1, errbuf);
    dlt_ = pcap_datalink(p);
    if (dlt_ == DLT_EN10MB) {
      // Frames (ARP, neighbour solicitations) leave on their own packet socket, not through
      // the capture handle the receiver thread reads: libpcap does not promise that one
      // pcap_t may be used from two threads. Protocol 0: the socket receives nothing.
      frame_fd_.reset(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
      ifindex_ = static_cast<int>(if_nametoindex(iface.c_str()));
      if (frame_fd_) setsockopt(frame_fd_.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
      route_fd_.reset(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    }
  }

  asio::ip::address source_for(const asio::ip::address& dst) override { return route_source(dst); }

  SendResult send(std::span<const std::uint8_t> packet, const asio::ip::address& dst) override {
    if (!scope_.contains(dst)) {
      ++stats_.refused_by_scope;
      return SendResult::refused_by_scope;
    }
    sockaddr_storage ss{};
    socklen_t len = 0;
    int fd = fd4_.get();
    if (dst.is_v4()) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
      sin->sin_family = AF_INET;
      std::memcpy(&sin->sin_addr, dst.to_v4().to_bytes().data(), 4);
      len = sizeof(sockaddr_in);
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
      sin6->sin6_family = AF_INET6;
      std::memcpy(&sin6->sin6_addr, dst.to_v6().to_bytes().data(), 16);
      len = sizeof(sockaddr_in6);
      fd = fd6_.get();
    }
    if (fd < 0) {
      ++stats_.send_errors;
      return SendResult::failed;
    }
    if (sendto(fd, packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&ss), len) < 0) {
      switch (errno) {
        case ENOBUFS:
        case EAGAIN:
        case EINTR:
          return SendResult::retry_later;
        case EHOSTUNREACH:  // the neighbour of an on-link address failed to resolve
        case EACCES:        // a broadcast address (a subnet's last): no host to probe
          return SendResult::unreachable;
        default:  // our own network is broken (ENETDOWN, a firewall's EPERM): fail the scan
          break;
      }
      ++stats_.send_errors;
      return SendResult::failed;
    }
    ++stats_.sent;
    return SendResult::sent;
  }

  // Reads what the ring holds without ever sleeping in poll(): a thread waiting on the
  // socket is woken by every captured frame, and at tens of thousands of replies a second
  // those wake-ups cost more kernel time than the scan itself (measured: a fifth of all
  // CPU). Sleeping between non-blocking reads lets frames collect in the ring instead; a
  // reply waits at most kIdleSlice, nothing next to RTT time-outs of 100 ms and more.
  std::size_t receive(std::chrono::milliseconds wait, FrameSink& sink) override {
    constexpr auto kIdleSlice = std::chrono::microseconds(500);
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (true) {
      const std::size_t n = drain(sink);
      if (n > 0 || std::chrono::steady_clock::now() >= deadline) return n;
      std::this_thread::sleep_for(kIdleSlice);
    }
  }

  int datalink() const override { return dlt_; }

  std::optional<LinkInfo> link() override {
    if (dlt_ != DLT_EN10MB || !fd4_ || !frame_fd_ || ifindex_ == 0) return std::nullopt;
    ifreq ifr{};
    if (iface_.size() >= sizeof ifr.ifr_name) return std::nullopt;
    std::memcpy(ifr.ifr_name, iface_.c_str(), iface_.size() + 1);
    if (ioctl(fd4_.get(), SIOCGIFHWADDR, &ifr) != 0) return std::nullopt;
    LinkInfo info;
    std::memcpy(info.mac.data(), ifr.ifr_hwaddr.sa_data, 6);
    // Loopback is "Ethernet" with an all-zero address: nothing to ARP there.
    if (std::all_of(info.mac.begin(), info.mac.end(), [](std::uint8_t b) { return b == 0; })) {
      return std::nullopt;
    }
    if (!route_fd_) return std::nullopt;
    return info;
  }

  bool on_link(const asio::ip::address& dst) override {
    // A link-local target names no link (targets never carry a zone): not asked.
    if (dst.is_v6() && dst.to_v6().is_link_local()) return false;
    return route_fd_ && route_is_on_link(route_fd_.get(), ++route_seq_, dst, ifindex_);
  }

  SendResult send_frame(std::span<const std::uint8_t> frame,
                        const asio::ip::address& about) override {
    if (!scope_.contains(about)) {
      ++stats_.refused_by_scope;
      return SendResult::refused_by_scope;
    }
    if (!frame_fd_ || ifindex_ == 0 || frame.size() < 14) {
      ++stats_.send_errors;
      return SendResult::failed;
    }
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex_;
    std::memcpy(&to.sll_protocol, frame.data() + 12, 2);  // the frame's EtherType, as sent
    to.sll_halen = 6;
    std::memcpy(to.sll_addr, frame.data(), 6);  // its destination MAC
    if (sendto(frame_fd_.get(), frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to),
               sizeof to) < 0) {
      if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) return SendResult::retry_later;
      ++stats_.send_errors;
      return SendResult::failed;
    }
    ++stats_.sent;
    return SendResult::sent;
  }

  std::uint64_t capture_drops() override {
    pcap_stat ps{};
    return pcap_ && pcap_stats(pcap_.get(), &ps) == 0 ? ps.ps_drop + ps.ps_ifdrop : 0;
  }
  IoStats stats() override {
    pcap_stat ps{};
    if (pcap_ && pcap_stats(pcap_.get(), &ps) == 0)
      stats_.capture_drops = ps.ps_drop + ps.ps_ifdrop;
    return stats_;
  }

 private:
  std::size_t drain(FrameSink& sink) {
    const int n = pcap_dispatch(
        pcap_.get(), -1,
        [](u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
          reinterpret_cast<FrameSink*>(user)->frame({bytes, h->caplen});
        },
        reinterpret_cast<u_char*>(&sink));
    if (n > 0) stats_.captured += static_cast<std::uint64_t>(n);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }

  struct PcapClose {
    void operator()(pcap_t* p) const { pcap_close(p); }
  };

  AuthorizedScope scope_;
  std::string iface_;
  UniqueFd fd4_;
  UniqueFd fd6_;
  std::unique_ptr<pcap_t, PcapClose> pcap_;
  UniqueFd frame_fd_;  // AF_PACKET, for send_frame
  UniqueFd route_fd_;  // rtnetlink, for on_link
  std::uint32_t route_seq_ = 0;
  int ifindex_ = 0;
  int dlt_ = 0;
  IoStats stats_;
};

}  // namespace

IoFactory real_packet_io() {
  return [](const IoRequest& req) -> std::unique_ptr<PacketIo> {
    return std::make_unique<RealPacketIo>(req);
  };
}

bool have_raw_socket_privilege() {
  return UniqueFd(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW)).valid();
}

}  // namespace portvigil
