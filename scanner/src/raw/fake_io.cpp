// An in-memory network for tests and dry runs: it parses every probe sent and queues the
// reply a Linux host with the configured ports would give, with optional loss and an
// ICMP rate limit like the kernel's.
#include <pcap/pcap.h>

#include <algorithm>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "packet.hpp"
#include "portvigil/scanner/packet_io.hpp"
#include "udp_payloads.hpp"

namespace portvigil {
namespace {

using raw::IpAddr;
using raw::Reply;

constexpr raw::MacAddress kOurMac{0x02, 0, 0, 0, 0, 0x01};
constexpr raw::MacAddress kHostMac{0x02, 0, 0, 0, 0, 0x02};

class FakePacketIo final : public PacketIo {
 public:
  FakePacketIo(FakeNetworkConfig config, std::shared_ptr<FakeNetworkLog> log, AuthorizedScope scope)
      : config_(std::move(config)),
        log_(std::move(log)),
        scope_(std::move(scope)),
        rng_(config_.seed),
        icmp_(config_.hosts.size(), IcmpBucket{static_cast<double>(config_.icmp_burst),
                                               std::chrono::steady_clock::now()}) {
    if (!config_.record_pcap.empty()) {
      dead_ = pcap_open_dead(ethernet() ? DLT_EN10MB : DLT_RAW, 65535);
      dumper_ = pcap_dump_open(dead_, config_.record_pcap.c_str());
    }
  }
  ~FakePacketIo() override {
    if (dumper_) pcap_dump_close(dumper_);
    if (dead_) pcap_close(dead_);
  }

  asio::ip::address source_for(const asio::ip::address& dst) override {
    return dst.is_v6() ? config_.source_v6 : config_.source_v4;
  }

  SendResult send(std::span<const std::uint8_t> packet, const asio::ip::address& dst) override {
    if (!scope_.contains(dst)) {
      ++stats_.refused_by_scope;
      return SendResult::refused_by_scope;
    }
    if (std::find(config_.unresolved.begin(), config_.unresolved.end(), dst) !=
        config_.unresolved.end()) {
      return SendResult::retry_later;
    }
    if (std::find(config_.failed_neighbours.begin(), config_.failed_neighbours.end(), dst) !=
        config_.failed_neighbours.end()) {
      return SendResult::unreachable;
    }
    std::lock_guard lock(mu_);
    ++stats_.sent;
    if (log_) log_->record(dst);
    if (lost(config_.probe_loss)) return SendResult::sent;
    answer(packet);
    return SendResult::sent;
  }

  std::size_t receive(std::chrono::milliseconds wait, FrameSink& sink) override {
    std::deque<std::vector<std::uint8_t>> ready;
    {
      std::lock_guard lock(mu_);
      ready.swap(queue_);
    }
    if (ready.empty()) {
      std::this_thread::sleep_for(std::min(wait, std::chrono::milliseconds(1)));
      return 0;
    }
    for (const auto& f : ready) sink.frame(f);
    std::lock_guard lock(mu_);
    stats_.captured += ready.size();
    return ready.size();
  }

  int datalink() const override { return ethernet() ? raw::kDltEthernet : raw::kDltRaw2; }

  std::optional<LinkInfo> link() override {
    if (!ethernet()) return std::nullopt;
    return LinkInfo{kOurMac};
  }
  bool on_link(const asio::ip::address& dst) override {
    return std::any_of(config_.ethernet_on_link.begin(), config_.ethernet_on_link.end(),
                       [&dst](const AddressRange& r) { return r.contains(dst); });
  }

  // ARP requests and neighbour solicitations from host discovery: every fake host on the
  // link answers for its address.
  SendResult send_frame(std::span<const std::uint8_t> frame,
                        const asio::ip::address& about) override {
    if (!scope_.contains(about)) {
      ++stats_.refused_by_scope;
      return SendResult::refused_by_scope;
    }
    std::lock_guard lock(mu_);
    ++stats_.sent;
    if (log_) log_->record(about);
    // An ARP request (asker's IPv4 at 28, asked at 38) or an IPv6 neighbour solicitation
    // (ICMPv6 135: asker = IPv6 source at 22, asked = its target at 62).
    const bool arp = frame.size() >= 42 && frame[12] == 0x08 && frame[13] == 0x06 &&
                     frame[20] == 0 && frame[21] == 1;
    const bool ns = frame.size() >= 86 && frame[12] == 0x86 && frame[13] == 0xdd &&
                    frame[20] == 58 && frame[54] == 135;
    if (!ethernet() || (!arp && !ns)) return SendResult::sent;  // nobody answers
    if (lost(config_.probe_loss)) return SendResult::sent;
    IpAddr asker;
    IpAddr asked;
    asker.v6 = asked.v6 = ns;
    std::copy_n(frame.data() + (ns ? 22 : 28), ns ? 16 : 4, asker.bytes.begin());
    std::copy_n(frame.data() + (ns ? 62 : 38), ns ? 16 : 4, asked.bytes.begin());
    const FakeHost* host = host_for(asked);
    if (!host || !host->answers_arp || !on_link(raw::to_asio(asked))) {
      return SendResult::sent;
    }
    std::array<std::uint8_t, 128> out{};
    const std::size_t n =
        ns ? raw::build_neighbor_advertisement(kHostMac, asked, kOurMac, asker, out)
           : raw::build_arp_reply(kHostMac, asked, kOurMac, asker, out);
    queue_frame(std::vector<std::uint8_t>(out.begin(), out.begin() + static_cast<long>(n)));
    return SendResult::sent;
  }
  IoStats stats() override {
    std::lock_guard lock(mu_);
    return stats_;
  }
  std::uint64_t capture_drops() override {
    std::lock_guard lock(mu_);
    return stats_.capture_drops;
  }

 private:
  bool lost(double p) { return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

  const FakeHost* host_for(const IpAddr& a) const {
    for (const auto& h : config_.hosts) {
      if (raw::to_ip(h.address) == a) return &h;
    }
    return nullptr;
  }

  bool ethernet() const { return !config_.ethernet_on_link.empty(); }

  // An IP packet from a host, framed for the link.
  void queue_reply(std::span<const std::uint8_t> bytes) {
    if (!ethernet()) return queue_frame(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
    // Ethernet II from the host's MAC to ours.
    std::vector<std::uint8_t> frame(14 + bytes.size());
    std::copy(kOurMac.begin(), kOurMac.end(), frame.begin());
    std::copy(kHostMac.begin(), kHostMac.end(), frame.begin() + 6);
    const bool v6 = !bytes.empty() && (bytes[0] >> 4) == 6;
    frame[12] = v6 ? 0x86 : 0x08;
    frame[13] = v6 ? 0xdd : 0x00;
    std::copy(bytes.begin(), bytes.end(), frame.begin() + 14);
    queue_frame(std::move(frame));
  }

  // A complete link-layer frame: lost at the reply loss rate, else queued (and recorded).
  void queue_frame(std::vector<std::uint8_t> frame) {
    if (lost(config_.reply_loss)) return;
    if (lost(config_.capture_drop)) {  // as a full capture ring: lost, and counted
      ++stats_.capture_drops;
      return;
    }
    queue_.push_back(std::move(frame));
    if (dumper_) {
      pcap_pkthdr h{};
      const auto& queued = queue_.back();
      h.caplen = h.len = static_cast<bpf_u_int32>(queued.size());
      pcap_dump(reinterpret_cast<u_char*>(dumper_), &h, queued.data());
    }
  }

  // A token bucket per host (each is its own kernel) refilled with wall-clock time, like
  // Linux's per-peer ICMP limiter.
  bool icmp_allowed(const FakeHost& host) {
    if (config_.icmp_per_second <= 0) return true;
    IcmpBucket& b = icmp_[static_cast<std::size_t>(&host - config_.hosts.data())];
    const auto now = std::chrono::steady_clock::now();
    b.tokens = std::min(static_cast<double>(config_.icmp_burst),
                        b.tokens + std::chrono::duration<double>(now - b.refilled).count() *
                                       config_.icmp_per_second);
    b.refilled = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  // An ICMP/ICMPv6 echo request (no extension headers): answered like a Linux host does.
  bool answer_echo(std::span<const std::uint8_t> probe) {
    const std::size_t n = probe.size();
    if (n < 1) return false;
    const bool v6 = (probe[0] >> 4) == 6;
    const std::size_t ip_len = v6 ? 40 : std::size_t{probe[0] & 0x0fu} * 4;
    if (ip_len < 20 || n < ip_len + 8) return false;
    const bool echo = v6 ? probe[6] == 58 && probe[40] == 128 : probe[9] == 1 && probe[ip_len] == 8;
    if (!echo) return false;
    raw::ProbeFields f;
    f.src.v6 = f.dst.v6 = v6;
    const std::size_t alen = v6 ? 16 : 4;
    std::copy_n(probe.data() + (v6 ? 24 : 16), alen, f.src.bytes.begin());
    std::copy_n(probe.data() + (v6 ? 8 : 12), alen, f.dst.bytes.begin());
    const FakeHost* host = host_for(f.src);
    if (!host || !host->answers_ping) return true;
    const auto id = static_cast<std::uint16_t>((probe[ip_len + 4] << 8) | probe[ip_len + 5]);
    const auto seq = static_cast<std::uint16_t>((probe[ip_len + 6] << 8) | probe[ip_len + 7]);
    std::array<std::uint8_t, raw::kMaxProbeSize> out{};
    queue_reply({out.data(), raw::build_echo(f, true, id, seq, out)});
    return true;
  }

  void answer(std::span<const std::uint8_t> probe) {
    if (answer_echo(probe)) return;
    Reply p;
    if (!raw::parse_ip(probe, p)) return;
    const FakeHost* host = host_for(p.dst);
    if (!host) return;  // nobody there
    const bool tcp = p.kind == Reply::Kind::tcp;
    const Proto proto = tcp ? Proto::tcp : Proto::udp;
    auto it = host->ports.find({proto, p.dport});
    const FakeBehavior b =
        it != host->ports.end() ? it->second : (tcp ? host->default_tcp : host->default_udp);
    std::array<std::uint8_t, raw::kMaxProbeSize> out{};
    auto unreachable = [&](std::uint8_t code4, std::uint8_t code6) {
      if (!icmp_allowed(*host)) return;
      const auto n = raw::build_unreachable(p.dst, p.src, p.dst.v6 ? code6 : code4, probe, out);
      queue_reply({out.data(), n});
    };
    switch (b) {
      case FakeBehavior::drop:
        return;
      case FakeBehavior::reject_admin:
        return unreachable(13, 1);
      case FakeBehavior::reject_host:
        return unreachable(1, 3);
      case FakeBehavior::open:
      case FakeBehavior::closed:
        break;
    }
    const bool open = b == FakeBehavior::open;
    if (!tcp) {
      if (!open) return unreachable(3, 4);
      raw::ProbeFields f;
      f.src = p.dst;
      f.dst = p.src;
      f.sport = p.dport;
      f.dport = p.sport;
      // The service answers its protocol's request, echoing the identifier (DNS ID, ...);
      // anything else gets "ok".
      static constexpr std::uint8_t kReply[] = {'o', 'k'};
      std::array<std::uint8_t, raw::kMaxProbeSize> payload{};
      const std::size_t n = raw::udp_echo_reply(p.dport, p.payload, payload);
      f.udp_payload = n > 0 ? std::span<const std::uint8_t>(payload.data(), n)
                            : std::span<const std::uint8_t>(kReply);
      queue_reply({out.data(), raw::build_udp(f, out)});
      return;
    }
    // RFC 793 reset generation, as Linux does it.
    raw::ProbeFields f;
    f.src = p.dst;
    f.dst = p.src;
    f.sport = p.dport;
    f.dport = p.sport;
    const bool syn = p.flags & raw::tcp_flag::syn;
    const bool ack = p.flags & raw::tcp_flag::ack;
    const bool rst = p.flags & raw::tcp_flag::rst;
    if (rst) return;
    if (open && syn && !ack) {
      f.tcp_flags = raw::tcp_flag::syn | raw::tcp_flag::ack;
      f.seq = 0x1000;
      f.ack = p.seq + 1;
    } else if (open && !ack) {
      return;  // FIN/NULL/Xmas to an open port: silently dropped
    } else if (ack) {
      f.tcp_flags = raw::tcp_flag::rst;
      f.seq = p.ack;
    } else {
      f.tcp_flags = raw::tcp_flag::rst | raw::tcp_flag::ack;
      f.seq = 0;
      f.ack = p.seq + (syn ? 1u : 0u) + ((p.flags & raw::tcp_flag::fin) ? 1u : 0u);
    }
    queue_reply({out.data(), raw::build_tcp(f, out)});
  }

  FakeNetworkConfig config_;
  std::shared_ptr<FakeNetworkLog> log_;
  AuthorizedScope scope_;
  std::mt19937_64 rng_;
  struct IcmpBucket {
    double tokens;
    std::chrono::steady_clock::time_point refilled;
  };
  std::vector<IcmpBucket> icmp_;  // per host of config_.hosts
  std::mutex mu_;
  std::deque<std::vector<std::uint8_t>> queue_;
  IoStats stats_;
  pcap_t* dead_ = nullptr;
  pcap_dumper_t* dumper_ = nullptr;
};

// Replays frames from a capture file once; sends are counted and dropped.
class PcapFilePacketIo final : public PacketIo {
 public:
  PcapFilePacketIo(const std::string& path, asio::ip::address v4, asio::ip::address v6)
      : v4_(v4), v6_(v6) {
    char errbuf[PCAP_ERRBUF_SIZE] = {};
    pcap_ = pcap_open_offline(path.c_str(), errbuf);
    if (!pcap_) throw std::runtime_error("pcap file \"" + path + "\": " + errbuf);
    dlt_ = pcap_datalink(pcap_);
  }
  ~PcapFilePacketIo() override {
    if (pcap_) pcap_close(pcap_);
  }
  asio::ip::address source_for(const asio::ip::address& dst) override {
    return dst.is_v6() ? v6_ : v4_;
  }
  SendResult send(std::span<const std::uint8_t>, const asio::ip::address&) override {
    ++stats_.sent;
    return SendResult::sent;
  }
  std::size_t receive(std::chrono::milliseconds wait, FrameSink& sink) override {
    if (done_) {
      std::this_thread::sleep_for(std::min(wait, std::chrono::milliseconds(1)));
      return 0;
    }
    const int n = pcap_dispatch(
        pcap_, -1,
        [](u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
          reinterpret_cast<FrameSink*>(user)->frame({bytes, h->caplen});
        },
        reinterpret_cast<u_char*>(&sink));
    done_ = true;
    if (n > 0) stats_.captured += static_cast<std::uint64_t>(n);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  int datalink() const override { return dlt_; }
  IoStats stats() override { return stats_; }

 private:
  pcap_t* pcap_ = nullptr;
  int dlt_ = 0;
  bool done_ = false;
  asio::ip::address v4_;
  asio::ip::address v6_;
  IoStats stats_;
};

}  // namespace

IoFactory fake_packet_io(FakeNetworkConfig config, std::shared_ptr<FakeNetworkLog> log) {
  return [config = std::move(config), log](const IoRequest& req) -> std::unique_ptr<PacketIo> {
    return std::make_unique<FakePacketIo>(config, log, req.scope);
  };
}

IoFactory pcap_file_io(std::string path, asio::ip::address source_v4, asio::ip::address source_v6) {
  return [=](const IoRequest&) -> std::unique_ptr<PacketIo> {
    return std::make_unique<PcapFilePacketIo>(path, source_v4, source_v6);
  };
}

}  // namespace portvigil
