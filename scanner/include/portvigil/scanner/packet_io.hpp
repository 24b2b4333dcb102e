// The seam between the raw-packet engine and the network. Three implementations: real
// (raw socket send + libpcap capture), an in-memory fake network for tests, and a pcap
// file replayed through the classifier.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <asio/ip/address.hpp>

#include "portvigil/common/scan_model.hpp"
#include "portvigil/scanner/targets.hpp"

namespace portvigil {

struct IoStats {
  std::uint64_t sent = 0;
  std::uint64_t send_errors = 0;
  std::uint64_t captured = 0;       // frames handed to the engine
  std::uint64_t capture_drops = 0;  // dropped by the kernel/libpcap buffer (pcap_stats)
  std::uint64_t refused_by_scope = 0;
};

enum class SendResult : std::uint8_t {
  sent,
  retry_later,       // ENOBUFS/EAGAIN: the kernel's queue is full for now
  failed,            // anything else: the scan fails
  refused_by_scope,  // outside the authorized scope: never sent
  unreachable,       // EHOSTUNREACH (the neighbour of an on-link address failed to resolve),
                     // EACCES (a broadcast address): no host answers there
};

// The Ethernet link the capture interface is on, for neighbour discovery (ARP, IPv6 ND).
struct LinkInfo {
  std::array<std::uint8_t, 6> mac{};  // the interface's own
};

class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual void frame(std::span<const std::uint8_t> bytes) = 0;
};

class PacketIo {
 public:
  virtual ~PacketIo() = default;
  // The local address packets to `dst` leave from.
  virtual asio::ip::address source_for(const asio::ip::address& dst) = 0;
  // Sends one complete IPv4/IPv6 packet. Implementations refuse destinations outside the
  // scope they were given: the last line of defence sits where packets leave.
  virtual SendResult send(std::span<const std::uint8_t> ip_packet,
                          const asio::ip::address& dst) = 0;
  // Hands captured frames to `sink` for up to `wait`; returns how many. Called from the
  // receiver thread only.
  virtual std::size_t receive(std::chrono::milliseconds wait, FrameSink& sink) = 0;
  virtual int datalink() const = 0;  // DLT_* of the frames given to the sink
  virtual IoStats stats() = 0;
  // Frames the capture lost so far. Called from the receiver thread only, which owns the
  // capture handle (stats() reads it too, but only once the receiver has stopped).
  virtual std::uint64_t capture_drops() { return 0; }
  // The Ethernet link for neighbour discovery, when the capture interface is Ethernet with
  // a MAC address.
  [[nodiscard]] virtual std::optional<LinkInfo> link() { return std::nullopt; }
  // Whether `dst` is on that link: the route the kernel would use toward it leaves by the
  // capture interface without a gateway. Asked of the routing table, not of the interface's
  // prefixes: a prefix is on-link because a route says so (RFC 5942), an on-link route may
  // cover addresses outside every prefix, and a route through a gateway may cover a part of
  // one. Called from the sender thread only, like send().
  [[nodiscard]] virtual bool on_link(const asio::ip::address& /*dst*/) { return false; }
  // Sends one complete link-layer frame (ARP, neighbour solicitation) on the capture
  // interface; `about` is the address it asks for, checked against the scope like every
  // send. Called from the sender thread only, like send().
  virtual SendResult send_frame(std::span<const std::uint8_t> /*frame*/,
                                const asio::ip::address& /*about*/) {
    return SendResult::failed;
  }
};

struct IoRequest {
  std::string capture_filter;      // BPF text from the probe
  asio::ip::address first_target;  // picks the interface by route lookup
  std::string interface;           // -e: overrides the route lookup
  AuthorizedScope scope;           // send() refuses everything outside it
  std::size_t capture_buffer_bytes = 4u << 20;
};

using IoFactory = std::function<std::unique_ptr<PacketIo>(const IoRequest&)>;

// Raw sockets (IPPROTO_RAW, so the kernel routes and resolves neighbours) for sending, a
// packet socket for link-layer frames and libpcap in immediate mode for receiving. Throws
// std::runtime_error with the reason (missing CAP_NET_RAW, no route, pcap errors).
[[nodiscard]] IoFactory real_packet_io();

// True when this process may open raw sockets (CAP_NET_RAW).
[[nodiscard]] bool have_raw_socket_privilege();

// ---- the fake network -----------------------------------------------------------------

enum class FakeBehavior : std::uint8_t {
  open,          // TCP: SYN/ACK to SYN, nothing to FIN/NULL/Xmas, RST to ACK; UDP: a reply
  closed,        // TCP: RST; UDP: ICMP port unreachable
  drop,          // silence
  reject_admin,  // ICMP admin-prohibited (v4 3/13, v6 1/1)
  reject_host,   // ICMP host unreachable (v4 3/1, v6 1/3)
};

struct FakeHost {
  asio::ip::address address;
  FakeBehavior default_tcp = FakeBehavior::closed;
  FakeBehavior default_udp = FakeBehavior::closed;
  bool answers_ping = true;  // ICMP echo requests get a reply
  bool answers_arp = true;   // ARP and IPv6 neighbour solicitation, on an Ethernet network
  std::map<std::pair<Proto, std::uint16_t>, FakeBehavior> ports;
};

struct FakeNetworkConfig {
  std::vector<FakeHost> hosts;
  asio::ip::address source_v4 = asio::ip::make_address("198.18.0.1");
  asio::ip::address source_v6 = asio::ip::make_address("2001:db8::1");
  double probe_loss = 0;       // fraction of probes lost on the way out
  double reply_loss = 0;       // fraction of replies lost on the way back
  double capture_drop = 0;     // fraction of replies lost by a full capture ring (counted)
  double icmp_per_second = 0;  // 0 = unlimited; else a wall-clock token bucket per host, as Linux's
  std::size_t icmp_burst = 50;
  std::uint64_t seed = 1;
  std::string record_pcap;  // when set, every reply frame is also written to this file
  // Destinations whose every send returns retry_later, as the kernel does (ENOBUFS) once the
  // neighbour queue of an address that does not resolve is full.
  std::vector<asio::ip::address> unresolved;
  // Destinations whose every send returns unreachable, as the kernel does (EHOSTUNREACH)
  // once it has given up resolving an on-link address.
  std::vector<asio::ip::address> failed_neighbours;
  // An Ethernet link (frames with Ethernet headers; ARP and neighbour solicitations answered
  // by every host of `hosts` whose address is in one of these blocks, the fake network's
  // on-link routes); empty: raw IP frames, no neighbour discovery.
  std::vector<AddressRange> ethernet_on_link;
};

struct FakeNetworkLog {
  // Destination of every packet that was sent. The engines behind host discovery send at
  // the same time, each through its own FakePacketIo: read it once the scan has returned.
  std::vector<asio::ip::address> probed;
  std::vector<std::chrono::steady_clock::time_point> sent_at;  // when each was sent
  std::mutex mu;                                               // guards both while scans run
  void record(const asio::ip::address& dst) {
    std::lock_guard lock(mu);
    probed.push_back(dst);
    sent_at.push_back(std::chrono::steady_clock::now());
  }
};

// An in-memory network answering like a Linux host would. `log` (optional) records what
// was sent so tests can assert on it.
[[nodiscard]] IoFactory fake_packet_io(FakeNetworkConfig config,
                                       std::shared_ptr<FakeNetworkLog> log = nullptr);

// Replays a capture file through the classifier; sends go nowhere. `source` is the local
// address the capture was taken on.
[[nodiscard]] IoFactory pcap_file_io(std::string path, asio::ip::address source_v4,
                                     asio::ip::address source_v6);

}  // namespace portvigil
