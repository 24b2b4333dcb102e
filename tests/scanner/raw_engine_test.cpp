// The raw engine driven end to end through the in-memory fake network: no root needed.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "portvigil/scanner/engine.hpp"
#include "raw/packet.hpp"
#include "raw/probe.hpp"
#include "raw/udp_payloads.hpp"

namespace portvigil {
namespace {

class CollectSink : public ReportSink {
 public:
  void begin(const ScanInfo&) override {}
  void host(const HostResult& h) override { hosts.push_back(h); }
  void end(const ScanSummary&) override {}
  std::vector<HostResult> hosts;
};

const TargetParseOptions kNoDns{.resolve_names = false};

// 198.18.0.2 and 2001:db8::2 with one port of each behaviour; everything else closed.
FakeNetworkConfig lab_network() {
  FakeNetworkConfig net;
  for (const char* addr : {"198.18.0.2", "2001:db8::2"}) {
    FakeHost h;
    h.address = asio::ip::make_address(addr);
    h.ports[{Proto::tcp, 22}] = FakeBehavior::open;
    h.ports[{Proto::tcp, 80}] = FakeBehavior::open;
    h.ports[{Proto::tcp, 25}] = FakeBehavior::drop;
    h.ports[{Proto::tcp, 445}] = FakeBehavior::reject_admin;
    h.ports[{Proto::tcp, 139}] = FakeBehavior::reject_host;
    h.ports[{Proto::udp, 53}] = FakeBehavior::open;
    h.ports[{Proto::udp, 69}] = FakeBehavior::drop;
    h.ports[{Proto::udp, 161}] = FakeBehavior::reject_admin;
    net.hosts.push_back(h);
  }
  return net;
}

struct Run {
  std::vector<HostResult> hosts;
  ScanSummary summary;
  std::map<std::tuple<std::string, Proto, std::uint16_t>, PortResult> ports;
};

Run scan(Technique technique, const std::string& ports, FakeNetworkConfig net,
         std::vector<std::string> targets = {"198.18.0.2", "2001:db8::2"},
         std::shared_ptr<FakeNetworkLog> log = nullptr, std::optional<AuthorizedScope> scope = {},
         RawOptions options = {}, const std::function<void(ScanPlan&)>& adjust = {}) {
  TargetSet set;
  for (const auto& t : targets) set.add(t, kNoDns);
  ScanPlan plan;
  plan.technique = technique;
  plan.targets = &set;
  plan.ports = parse_ports(ports, technique != Technique::udp, technique == Technique::udp);
  plan.scope = scope ? *scope : set.covering_scope();
  plan.timing.min_rtt_timeout = std::chrono::milliseconds(20);
  plan.timing.initial_rtt_timeout = std::chrono::milliseconds(50);
  if (adjust) adjust(plan);
  if (!options.io) options.io = fake_packet_io(std::move(net), log);
  CollectSink sink;
  RunControl control;
  Run run;
  run.summary = make_raw_engine(technique, options)->run(plan, sink, control);
  run.hosts = sink.hosts;
  for (const auto& h : run.hosts) {
    for (const auto& p : h.ports) run.ports[{h.address.to_string(), p.proto, p.port}] = p;
  }
  return run;
}

struct Expect {
  std::uint16_t port;
  PortState state;
  Reason reason4;
  Reason reason6;
};

void check(const Run& run, Proto proto, const std::vector<Expect>& table) {
  ASSERT_EQ(run.hosts.size(), 2u);
  for (const auto& h : run.hosts) EXPECT_TRUE(h.complete) << h.note;
  for (const char* addr : {"198.18.0.2", "2001:db8::2"}) {
    const bool v6 = std::string(addr).find(':') != std::string::npos;
    for (const auto& e : table) {
      SCOPED_TRACE(std::string(addr) + " port " + std::to_string(e.port));
      const auto it = run.ports.find({addr, proto, e.port});
      ASSERT_NE(it, run.ports.end());
      EXPECT_EQ(it->second.state, e.state) << name(it->second.state);
      EXPECT_EQ(it->second.reason, v6 ? e.reason6 : e.reason4) << name(it->second.reason);
    }
  }
}

TEST(RawEngine, SynScanMatchesNmapSemantics) {
  const auto run = scan(Technique::syn, "22,23,25,80,139,445", lab_network());
  check(run, Proto::tcp,
        {{22, PortState::open, Reason::syn_ack, Reason::syn_ack},
         {23, PortState::closed, Reason::reset, Reason::reset},
         {25, PortState::filtered, Reason::no_response, Reason::no_response},
         {80, PortState::open, Reason::syn_ack, Reason::syn_ack},
         {139, PortState::filtered, Reason::host_unreach, Reason::host_unreach},
         {445, PortState::filtered, Reason::admin_prohibited, Reason::admin_prohibited}});
  // Only the dropped port needed retransmissions: 6 ports x 2 hosts + 2 x 2 retries.
  EXPECT_EQ(run.summary.counters.probes_sent, 12u + 4u);
  EXPECT_EQ(run.summary.counters.retransmissions, 4u);
  EXPECT_EQ(run.summary.hosts_up, 2u);
}

// An address whose neighbour does not resolve makes the kernel refuse every send (ENOBUFS).
// The engine must not wait on it: the other hosts are scanned exactly, every refused send
// is counted, and the host's note says its probes never left.
TEST(RawEngine, RefusedSendsAreDeferredAndAccountedNeverWaitedOn) {
  auto net = lab_network();
  net.unresolved.push_back(asio::ip::make_address("198.18.0.9"));
  const auto run = scan(Technique::syn, "22,23,80", net, {"198.18.0.2", "198.18.0.9"});
  ASSERT_EQ(run.hosts.size(), 2u);
  const auto& live = run.hosts[0];
  const auto& unresolved = run.hosts[1];
  EXPECT_FALSE(live.inconclusive) << live.note;
  EXPECT_EQ(run.ports.at({"198.18.0.2", Proto::tcp, 22}).state, PortState::open);
  EXPECT_EQ(run.ports.at({"198.18.0.2", Proto::tcp, 23}).state, PortState::closed);
  EXPECT_NE(unresolved.note.find("3 of 3 probes could not be sent"), std::string::npos)
      << unresolved.note;
  EXPECT_FALSE(unresolved.inconclusive);  // it answered nothing: silent, not half-known
  // Each pass (1 + 2 retries) counts one deferral per port (after one second chance).
  EXPECT_EQ(run.summary.counters.send_deferred, 3u * 3u);
  EXPECT_EQ(run.summary.counters.probes_sent, 3u);  // only the live host's, none lost
  EXPECT_EQ(run.summary.hosts_up, 1u);
}

TEST(RawEngine, FinNullXmasScans) {
  for (auto t : {Technique::fin, Technique::null, Technique::xmas}) {
    SCOPED_TRACE(std::string(name(t)));
    const auto run = scan(t, "22,23,25,445", lab_network());
    check(run, Proto::tcp,
          {{22, PortState::open_filtered, Reason::no_response, Reason::no_response},
           {23, PortState::closed, Reason::reset, Reason::reset},
           {25, PortState::open_filtered, Reason::no_response, Reason::no_response},
           {445, PortState::filtered, Reason::admin_prohibited, Reason::admin_prohibited}});
  }
}

TEST(RawEngine, AckScan) {
  const auto run = scan(Technique::ack, "22,23,25,445", lab_network());
  check(run, Proto::tcp,
        {{22, PortState::unfiltered, Reason::reset, Reason::reset},
         {23, PortState::unfiltered, Reason::reset, Reason::reset},
         {25, PortState::filtered, Reason::no_response, Reason::no_response},
         {445, PortState::filtered, Reason::admin_prohibited, Reason::admin_prohibited}});
}

TEST(RawEngine, UdpScan) {
  const auto run = scan(Technique::udp, "53,69,161,162", lab_network());
  check(run, Proto::udp,
        {{53, PortState::open, Reason::udp_response, Reason::udp_response},
         {69, PortState::open_filtered, Reason::no_response, Reason::no_response},
         {161, PortState::filtered, Reason::admin_prohibited, Reason::admin_prohibited},
         {162, PortState::closed, Reason::port_unreach, Reason::port_unreach}});
}

TEST(RawEngine, NeverProbesOutsideScope) {
  auto log = std::make_shared<FakeNetworkLog>();
  const auto scope = AuthorizedScope::parse("198.18.0.2/32");
  const auto run =
      scan(Technique::syn, "22,23", lab_network(), {"198.18.0.2", "198.18.0.3"}, log, scope);
  ASSERT_EQ(run.hosts.size(), 2u);
  EXPECT_FALSE(run.hosts[1].complete);
  EXPECT_NE(run.hosts[1].note.find("outside the authorized scope"), std::string::npos);
  EXPECT_FALSE(log->probed.empty());
  for (const auto& dst : log->probed) EXPECT_EQ(dst.to_string(), "198.18.0.2");
  EXPECT_EQ(run.summary.counters.refused_by_scope, 2u);
}

TEST(RawEngine, PacketIoItselfRefusesOutOfScopeDestinations) {
  // The engine is not the only guard: the I/O layer drops what its scope does not cover.
  IoRequest req;
  req.scope = AuthorizedScope::parse("198.18.0.2/32");
  auto log = std::make_shared<FakeNetworkLog>();
  auto io = fake_packet_io(lab_network(), log)(req);
  const std::uint8_t packet[40] = {0x45};
  EXPECT_EQ(io->send(packet, asio::ip::make_address("198.18.0.3")), SendResult::refused_by_scope);
  EXPECT_TRUE(log->probed.empty());
  EXPECT_EQ(io->stats().refused_by_scope, 1u);
}

TEST(RawEngine, LossNeverTurnsIntoWrongStates) {
  // 15% of probes and 15% of replies vanish. Retransmissions and the adaptive extra
  // passes must recover every answer, or the host must say its silence is not proof.
  auto net = lab_network();
  net.probe_loss = 0.15;
  net.reply_loss = 0.15;
  net.seed = 7;
  const auto run = scan(Technique::syn, "1-400", net);
  ASSERT_EQ(run.hosts.size(), 2u);
  for (const auto& h : run.hosts) {
    std::size_t wrong = 0;
    for (const auto& p : h.ports) {
      PortState want = PortState::closed;
      if (p.port == 22 || p.port == 80) want = PortState::open;
      if (p.port == 25 || p.port == 139 || p.port == 445) want = PortState::filtered;
      // Silence can only ever produce "filtered": a wrong open/closed would be a bug.
      if (p.state != want) {
        EXPECT_EQ(p.state, PortState::filtered) << p.port;
        ++wrong;
      }
    }
    if (wrong > 0) {
      EXPECT_TRUE(h.inconclusive) << wrong << " ports wrong without a warning";
    }
  }
  EXPECT_GT(run.summary.counters.retransmissions, 0u);
}

TEST(RawEngine, IcmpRateLimitIsDetectedAndNeverMisreported) {
  auto net = lab_network();
  net.icmp_per_second = 1;  // Linux's per-peer limit: one per second after a burst of 6
  net.icmp_burst = 6;
  const auto run = scan(Technique::udp, "1-600", net, {"198.18.0.2"});
  ASSERT_EQ(run.hosts.size(), 1u);
  const auto& h = run.hosts[0];
  std::size_t closed = 0;
  std::size_t silent_closed = 0;
  for (const auto& p : h.ports) {
    if (p.port == 53) {
      EXPECT_EQ(p.state, PortState::open);
    } else if (p.port == 69) {
      EXPECT_EQ(p.state, PortState::open_filtered);
    } else if (p.port == 161) {
      EXPECT_NE(p.state, PortState::closed);
      EXPECT_NE(p.state, PortState::open);
    } else if (p.state == PortState::closed) {
      ++closed;
    } else {
      EXPECT_EQ(p.state, PortState::open_filtered) << p.port;
      ++silent_closed;
    }
  }
  EXPECT_GT(closed, 0u);
  EXPECT_GT(silent_closed, 0u) << "the limit should have hidden some closed ports";
  EXPECT_TRUE(h.inconclusive);
  EXPECT_NE(h.note.find("rate limiting detected"), std::string::npos) << h.note;
}

// Paced UDP against hosts that each limit their ICMP errors (a burst of 6, then one per
// 50 ms: Linux's limit, 20 times faster so the test is quick).
FakeNetworkConfig limited_network(double errors_per_second) {
  FakeNetworkConfig net;
  for (const char* addr : {"198.18.0.2", "198.18.0.3", "198.18.0.4"}) {
    FakeHost h;
    h.address = asio::ip::make_address(addr);
    h.ports[{Proto::udp, 53}] = FakeBehavior::open;
    h.ports[{Proto::udp, 69}] = FakeBehavior::drop;
    h.ports[{Proto::udp, 161}] = FakeBehavior::reject_admin;
    net.hosts.push_back(h);
  }
  net.icmp_per_second = errors_per_second;
  net.icmp_burst = 6;
  return net;
}

void expect_exact_udp(const Run& run, std::size_t hosts) {
  ASSERT_EQ(run.hosts.size(), hosts);
  for (const auto& h : run.hosts) {
    EXPECT_FALSE(h.inconclusive) << h.address << ": " << h.note;
    EXPECT_TRUE(h.complete) << h.address;
    EXPECT_NE(h.note.find("ICMP error rate limit detected: 6 errors to the fast pass"),
              std::string::npos)
        << h.note;
    for (const auto& p : h.ports) {
      const PortState want = p.port == 53    ? PortState::open
                             : p.port == 69  ? PortState::open_filtered
                             : p.port == 161 ? PortState::filtered
                                             : PortState::closed;
      EXPECT_EQ(p.state, want) << h.address << " port " << p.port;
    }
  }
}

TEST(RawEngine, PacedUdpSettlesEveryPortOfRateLimitedHosts) {
  const auto run =
      scan(Technique::udp, "1-100", limited_network(20), {"198.18.0.2", "198.18.0.3", "198.18.0.4"},
           nullptr, {}, {}, [](ScanPlan& plan) {
             plan.udp_pacing.enabled = true;
             plan.udp_pacing.period = std::chrono::milliseconds(52);
           });
  expect_exact_udp(run, 3);
  // Each host lets 6 errors through the fast pass; the rest ran into its limit.
  EXPECT_GE(run.summary.counters.rate_limited_probes, 3u * (100 - 3 - 6));
  // Hosts were paced in parallel: three hosts took about as long as one
  // (97 - 6 paced probes each at 52 ms is ~5 s; one host after another would be ~15 s).
  EXPECT_LT(run.summary.elapsed.count(), 10.0);
}

TEST(RawEngine, PacedUdpLearnsASlowerLimiter) {
  // The hosts refill every 125 ms while the scan assumes 52 ms: paced silences are
  // contradicted by later errors, the pace slows down, and nothing is reported wrong.
  const auto run = scan(Technique::udp, "1-40,53,69,161", limited_network(8),
                        {"198.18.0.2", "198.18.0.3"}, nullptr, {}, {}, [](ScanPlan& plan) {
                          plan.udp_pacing.enabled = true;
                          plan.udp_pacing.period = std::chrono::milliseconds(52);
                        });
  expect_exact_udp(run, 2);
  for (const auto& h : run.hosts) {
    const auto at = h.note.find("probes at one per ");
    ASSERT_NE(at, std::string::npos) << h.note;
    EXPECT_GT(std::stod(h.note.substr(at + 18)), 0.06) << h.note;  // slowed from 52 ms
  }
}

TEST(RawEngine, PacedUdpTakesASilentHostsSilenceAfterASample) {
  // A host that drops every UDP datagram answers nothing to the fast pass: four paced
  // probes, a period apart, draw nothing either, and its silence stands (not 2 x 200
  // paced probes).
  auto net = limited_network(20);
  net.hosts[0].default_udp = FakeBehavior::drop;
  net.hosts[0].ports.clear();
  const auto run =
      scan(Technique::udp, "1-200", net, {"198.18.0.2"}, nullptr, {}, {}, [](ScanPlan& plan) {
        plan.udp_pacing.enabled = true;
        plan.udp_pacing.period = std::chrono::milliseconds(52);
      });
  ASSERT_EQ(run.hosts.size(), 1u);
  const auto& h = run.hosts[0];
  EXPECT_FALSE(h.inconclusive) << h.note;
  ASSERT_EQ(h.ports.size(), 200u);
  for (const auto& p : h.ports) EXPECT_EQ(p.state, PortState::open_filtered) << p.port;
  EXPECT_LT(run.summary.counters.probes_sent, 200u + 10u);
}

TEST(RawEngine, PacedUdpOutOfTimeIsInconclusiveNotSilent) {
  const auto run = scan(Technique::udp, "1-300", limited_network(20), {"198.18.0.2"}, nullptr, {},
                        {}, [](ScanPlan& plan) {
                          plan.udp_pacing.enabled = true;
                          plan.udp_pacing.period = std::chrono::milliseconds(52);
                          plan.time_budget = std::chrono::seconds(1);
                        });
  ASSERT_EQ(run.hosts.size(), 1u);
  const auto& h = run.hosts[0];
  EXPECT_TRUE(h.inconclusive);
  EXPECT_NE(h.note.find("ports were not verified at one probe per 0.05 s"), std::string::npos)
      << h.note;
  EXPECT_NE(h.note.find("time budget ran out"), std::string::npos) << h.note;
  // The verified ports are reported, and right; the others are left out and counted.
  EXPECT_GT(h.unverified_ports, 0u);
  EXPECT_EQ(h.ports.size() + h.unverified_ports, 300u);
  for (const auto& p : h.ports) {
    if (p.port != 53 && p.port != 69 && p.port != 161) {
      EXPECT_EQ(p.state, PortState::closed) << p.port;
    }
  }
  EXPECT_LT(run.summary.elapsed.count(), 3.0);
}

TEST(RawEngine, LateAnswersAloneDoNotMakeAHostInconclusive) {
  // Plenty of RSTs, some lost and recovered by retransmission: once the last pass draws
  // nothing new, silence is trusted and the results are exact.
  auto net = lab_network();
  net.reply_loss = 0.1;
  net.seed = 3;
  const auto run = scan(Technique::syn, "1-300", net, {"198.18.0.2"});
  ASSERT_EQ(run.hosts.size(), 1u);
  const auto& h = run.hosts[0];
  EXPECT_GT(run.summary.counters.retransmissions, 0u);
  if (!h.inconclusive) {
    for (const auto& p : h.ports) {
      PortState want = PortState::closed;
      if (p.port == 22 || p.port == 80) want = PortState::open;
      if (p.port == 25 || p.port == 139) want = PortState::filtered;
      EXPECT_EQ(p.state, want) << p.port;
    }
  }
  EXPECT_EQ(h.note.find("rate limiting detected"), std::string::npos) << h.note;
}

TEST(RawEngine, PcapReplayReproducesTheScan) {
  const std::string path = testing::TempDir() + "/replies.pcap";
  RawOptions fixed;
  fixed.cookie_seed = 42;
  fixed.source_port = 50000;
  auto net = lab_network();
  net.record_pcap = path;
  const auto live = scan(Technique::syn, "22,23,80,139,445", net, {"198.18.0.2", "2001:db8::2"},
                         nullptr, std::nullopt, fixed);
  RawOptions replay = fixed;
  replay.io = pcap_file_io(path, asio::ip::make_address("198.18.0.1"),
                           asio::ip::make_address("2001:db8::1"));
  const auto again = scan(Technique::syn, "22,23,80,139,445", {}, {"198.18.0.2", "2001:db8::2"},
                          nullptr, std::nullopt, replay);
  ASSERT_EQ(live.ports.size(), 10u);
  ASSERT_EQ(again.ports.size(), live.ports.size());
  for (const auto& [key, p] : live.ports) {
    const auto it = again.ports.find(key);
    ASSERT_NE(it, again.ports.end());
    EXPECT_EQ(it->second.state, p.state) << std::get<2>(key);
    EXPECT_EQ(it->second.reason, p.reason) << std::get<2>(key);
  }
  // A different key must not accept the same replies: they are not answers to its probes.
  RawOptions other = replay;
  other.cookie_seed = 43;
  const auto spoofed = scan(Technique::syn, "22,23,80,139,445", {}, {"198.18.0.2", "2001:db8::2"},
                            nullptr, std::nullopt, other);
  for (const auto& [key, p] : spoofed.ports) {
    EXPECT_EQ(p.state, PortState::filtered) << std::get<2>(key);
  }
  std::remove(path.c_str());
}

// ---- a blind spoofer on the fake network ----------------------------------------------------
//
// Wraps the fake network. Before the genuine answer to the first probe of every (target, port)
// it injects forged replies "from the target" of every kind, for every source port the
// scanner may be using, with every number a blind spoofer cannot know drawn at random: it sees
// which ports are probed (it may guess that much), never the probes' contents.
class SpoofingIo final : public PacketIo {
 public:
  SpoofingIo(std::unique_ptr<PacketIo> inner, std::uint16_t udp_base, std::uint64_t seed)
      : inner_(std::move(inner)), udp_base_(udp_base), rng_(seed) {}

  asio::ip::address source_for(const asio::ip::address& dst) override {
    return inner_->source_for(dst);
  }
  SendResult send(std::span<const std::uint8_t> packet, const asio::ip::address& dst) override {
    raw::Reply p;
    if (raw::parse_ip(packet, p)) {
      std::lock_guard lock(mu_);
      if (seen_.insert({dst.to_string(), p.kind == raw::Reply::Kind::udp, p.dport}).second) {
        if (p.kind == raw::Reply::Kind::tcp) forge_tcp(p);
        if (p.kind == raw::Reply::Kind::udp) forge_udp(p);
      }
    }
    return inner_->send(packet, dst);
  }
  // The forged replies of a probe are queued before it is sent, so taking the genuine
  // replies first and the forged queue after delivers every forgery ahead of its answer.
  std::size_t receive(std::chrono::milliseconds wait, FrameSink& sink) override {
    struct Collect final : FrameSink {
      std::vector<std::vector<std::uint8_t>> frames;
      void frame(std::span<const std::uint8_t> b) override {
        frames.emplace_back(b.begin(), b.end());
      }
    } genuine;
    inner_->receive(wait, genuine);
    std::deque<std::vector<std::uint8_t>> ready;
    {
      std::lock_guard lock(mu_);
      ready.swap(queue_);
    }
    for (const auto& f : ready) sink.frame(f);
    for (const auto& f : genuine.frames) sink.frame(f);
    return ready.size() + genuine.frames.size();
  }
  int datalink() const override { return inner_->datalink(); }
  IoStats stats() override { return inner_->stats(); }
  std::size_t forged() const { return forged_; }

 private:
  void push(const std::array<std::uint8_t, raw::kMaxProbeSize>& buf, std::size_t n) {
    if (n == 0) return;
    queue_.emplace_back(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    ++forged_;
  }

  // TCP: every source port a scan may use (one per scan, a multiple of 256 from 40960 to
  // 58880) and the fixed one of the tests, each with bare SYN, bare RST, SYN+ACK, RST+ACK
  // (random ack), RST (random seq) and ICMP errors quoting a random sequence number.
  void forge_tcp(const raw::Reply& p) {
    std::vector<std::uint16_t> sports;
    for (unsigned b = 160; b <= 230; ++b) sports.push_back(static_cast<std::uint16_t>(b * 256));
    sports.push_back(kFixedSourcePort);
    std::array<std::uint8_t, raw::kMaxProbeSize> buf{};
    using namespace raw::tcp_flag;
    for (const std::uint16_t sport : sports) {
      for (int k = 0; k < 4; ++k) {
        raw::ProbeFields f;
        f.src = p.dst;
        f.dst = p.src;
        f.sport = p.dport;
        f.dport = sport;
        for (const std::uint8_t flags : {syn, rst, std::uint8_t(syn | ack), std::uint8_t(rst | ack),
                                         std::uint8_t(rst | syn), fin}) {
          f.tcp_flags = flags;
          f.seq = static_cast<std::uint32_t>(rng_());
          f.ack = static_cast<std::uint32_t>(rng_());
          push(buf, raw::build_tcp(f, buf));
        }
        // The quoted probe: our addresses and ports, a guessed sequence number.
        raw::ProbeFields q;
        q.src = p.src;
        q.dst = p.dst;
        q.sport = sport;
        q.dport = p.dport;
        q.seq = static_cast<std::uint32_t>(rng_());
        q.tcp_flags = syn;
        std::array<std::uint8_t, raw::kMaxProbeSize> quoted{};
        const std::size_t qn = raw::build_tcp(q, quoted);
        for (const std::uint8_t code :
             {std::uint8_t(p.dst.v6 ? 4 : 3), std::uint8_t(p.dst.v6 ? 1 : 13)}) {
          push(buf, raw::build_unreachable(p.dst, p.src, code, {quoted.data(), qn}, buf));
        }
      }
    }
  }

  // UDP: every port of the scan's source-port span, each with a datagram from the probed
  // port (the protocol's request echoed with a guessed identifier) and an ICMP port
  // unreachable quoting a probe with a guessed IP ID.
  void forge_udp(const raw::Reply& p) {
    std::array<std::uint8_t, raw::kMaxProbeSize> buf{};
    std::array<std::uint8_t, raw::kMaxUdpPayload> payload{};
    std::array<std::uint8_t, raw::kMaxUdpPayload> echoed{};
    for (std::uint32_t i = 0; i < raw::kUdpSourcePortSpan; ++i) {
      const auto sport = static_cast<std::uint16_t>(udp_base_ + i);
      const auto guess = static_cast<std::uint32_t>(rng_());
      const auto request = raw::udp_payload_stamped(p.dport, guess, payload);
      raw::ProbeFields f;
      f.src = p.dst;
      f.dst = p.src;
      f.sport = p.dport;
      f.dport = sport;
      const std::size_t en = raw::udp_echo_reply(p.dport, request, echoed);
      static constexpr std::uint8_t kOk[] = {'o', 'k'};
      f.udp_payload = en > 0 ? std::span<const std::uint8_t>(echoed.data(), en)
                             : std::span<const std::uint8_t>(kOk);
      push(buf, raw::build_udp(f, buf));
      raw::ProbeFields q;
      q.src = p.src;
      q.dst = p.dst;
      q.sport = sport;
      q.dport = p.dport;
      q.ip_id = static_cast<std::uint16_t>(rng_());
      q.udp_payload = request;
      std::array<std::uint8_t, raw::kMaxProbeSize> quoted{};
      const std::size_t qn = raw::build_udp(q, quoted);
      push(buf, raw::build_unreachable(p.dst, p.src, p.dst.v6 ? 4 : 3, {quoted.data(), qn}, buf));
    }
  }

 public:
  static constexpr std::uint16_t kFixedSourcePort = 40000;

 private:
  std::unique_ptr<PacketIo> inner_;
  std::uint16_t udp_base_;
  std::mt19937_64 rng_;
  std::mutex mu_;
  std::set<std::tuple<std::string, bool, std::uint16_t>> seen_;
  std::deque<std::vector<std::uint8_t>> queue_;
  std::size_t forged_ = 0;
};

RawOptions spoofed(FakeNetworkConfig net, std::size_t* forged) {
  RawOptions o;
  o.source_port = SpoofingIo::kFixedSourcePort;
  o.cookie_seed = 11;
  IoFactory inner = fake_packet_io(std::move(net));
  o.io = [inner, forged](const IoRequest& req) -> std::unique_ptr<PacketIo> {
    auto io = std::make_unique<SpoofingIo>(inner(req), SpoofingIo::kFixedSourcePort, 99);
    struct Counting final : PacketIo {
      std::unique_ptr<SpoofingIo> io;
      std::size_t* out;
      ~Counting() override { *out += io->forged(); }
      asio::ip::address source_for(const asio::ip::address& d) override {
        return io->source_for(d);
      }
      SendResult send(std::span<const std::uint8_t> p, const asio::ip::address& d) override {
        return io->send(p, d);
      }
      std::size_t receive(std::chrono::milliseconds w, FrameSink& s) override {
        return io->receive(w, s);
      }
      int datalink() const override { return io->datalink(); }
      IoStats stats() override { return io->stats(); }
    };
    auto c = std::make_unique<Counting>();
    c->io = std::move(io);
    c->out = forged;
    return c;
  };
  return o;
}

TEST(RawEngineSpoofed, ForgedTcpRepliesChangeNothing) {
  struct Case {
    Technique t;
    std::vector<Expect> table;
  };
  const Case cases[] = {
      {Technique::syn,
       {{22, PortState::open, Reason::syn_ack, Reason::syn_ack},
        {23, PortState::closed, Reason::reset, Reason::reset},
        {25, PortState::filtered, Reason::no_response, Reason::no_response},
        {139, PortState::filtered, Reason::host_unreach, Reason::host_unreach},
        {445, PortState::filtered, Reason::admin_prohibited, Reason::admin_prohibited}}},
      {Technique::fin,
       {{22, PortState::open_filtered, Reason::no_response, Reason::no_response},
        {23, PortState::closed, Reason::reset, Reason::reset},
        {25, PortState::open_filtered, Reason::no_response, Reason::no_response},
        {445, PortState::filtered, Reason::admin_prohibited, Reason::admin_prohibited}}},
      {Technique::null,
       {{22, PortState::open_filtered, Reason::no_response, Reason::no_response},
        {23, PortState::closed, Reason::reset, Reason::reset},
        {25, PortState::open_filtered, Reason::no_response, Reason::no_response}}},
      {Technique::xmas,
       {{22, PortState::open_filtered, Reason::no_response, Reason::no_response},
        {23, PortState::closed, Reason::reset, Reason::reset},
        {25, PortState::open_filtered, Reason::no_response, Reason::no_response}}},
      {Technique::ack,
       {{22, PortState::unfiltered, Reason::reset, Reason::reset},
        {25, PortState::filtered, Reason::no_response, Reason::no_response},
        {445, PortState::filtered, Reason::admin_prohibited, Reason::admin_prohibited}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(name(c.t)));
    std::string ports;
    for (const auto& e : c.table) ports += (ports.empty() ? "" : ",") + std::to_string(e.port);
    std::size_t forged = 0;
    const auto run = scan(c.t, ports, {}, {"198.18.0.2", "2001:db8::2"}, nullptr, std::nullopt,
                          spoofed(lab_network(), &forged));
    EXPECT_GT(forged, 2 * c.table.size() * 72 * 4 * 8 - 1) << "the spoofer did not run";
    check(run, Proto::tcp, c.table);
  }
}

TEST(RawEngineSpoofed, ForgedUdpRepliesChangeOnlyPortsWithoutAnIdentifier) {
  auto net = lab_network();
  for (auto& h : net.hosts) {
    h.ports[{Proto::udp, 123}] = FakeBehavior::drop;    // NTP: 32-bit echo
    h.ports[{Proto::udp, 137}] = FakeBehavior::closed;  // NetBIOS-NS: 16-bit echo
    h.ports[{Proto::udp, 9}] = FakeBehavior::drop;      // empty datagram: no identifier
  }
  std::size_t forged = 0;
  const auto run =
      scan(Technique::udp, "9,53,69,123,137,161,162", net, {"198.18.0.2", "2001:db8::2"}, nullptr,
           std::nullopt, spoofed(net, &forged));
  EXPECT_GE(forged, 2u * 7u * 2u * raw::kUdpSourcePortSpan);
  // Every port whose reply must echo an identifier, and every ICMP error (which must quote
  // the IP ID), keeps its true state under a flood of every source port of the span.
  check(run, Proto::udp,
        {{53, PortState::open, Reason::udp_response, Reason::udp_response},
         {123, PortState::open_filtered, Reason::no_response, Reason::no_response},
         {137, PortState::closed, Reason::port_unreach, Reason::port_unreach},
         {161, PortState::filtered, Reason::admin_prohibited, Reason::admin_prohibited}});
  // The documented limit (2^-14 per forged datagram): a port probed without an echoed
  // identifier (9: empty datagram; 69: TFTP answers from another port; 162: no payload) has
  // only the source port as proof, and a flood of all 16384 ports of the span finds it.
  for (const int port : {9, 69, 162}) {
    for (const char* addr : {"198.18.0.2", "2001:db8::2"}) {
      const auto it = run.ports.find({addr, Proto::udp, static_cast<std::uint16_t>(port)});
      ASSERT_NE(it, run.ports.end());
      EXPECT_EQ(it->second.state, PortState::open) << addr << " " << port;
    }
  }
}

}  // namespace
}  // namespace portvigil

namespace portvigil {
namespace {

TargetSet one_target(const char* address) {
  TargetSet set;
  set.add(address, kNoDns);
  return set;
}

ScanPlan syn_plan(const TargetSet& set, const char* ports) {
  ScanPlan plan;
  plan.technique = Technique::syn;
  plan.targets = &set;
  plan.ports = parse_ports(ports, true, false);
  plan.scope = set.covering_scope();
  return plan;
}

// A stop request (SIGTERM, Ctrl-C) ends the scan promptly at any rate: at 1 probe/s the
// sender must not sit in its pacer (it once checked the stop flag every 256 probes).
TEST(RawEngine, StopIsSeenPromptlyAtOneProbePerSecond) {
  const TargetSet set = one_target("198.18.0.2");
  ScanPlan plan = syn_plan(set, "1-1000");
  plan.timing.max_rate = 1;
  RawOptions options;
  options.io = fake_packet_io(lab_network(), nullptr);
  CollectSink sink;
  std::atomic<bool> stop{false};
  RunControl control;
  control.stop = &stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    stop = true;
  });
  const auto t0 = std::chrono::steady_clock::now();
  const auto summary = make_raw_engine(Technique::syn, options)->run(plan, sink, control);
  const auto took = std::chrono::steady_clock::now() - t0;
  stopper.join();
  EXPECT_TRUE(summary.interrupted);
  EXPECT_LE(summary.counters.probes_sent, 4u);
  // 1.5 s until the request, then at most the stop latency (50 ms) plus scheduling slack.
  EXPECT_LT(took, std::chrono::milliseconds(2500))
      << std::chrono::duration<double>(took).count() << " s";
  ASSERT_EQ(sink.hosts.size(), 1u);
  EXPECT_FALSE(sink.hosts[0].complete) << "an interrupted host must not look complete";
}

// --max-rate is a cap: adaptation never passes it (the rate over the whole scan, waits
// included, stays at or under it).
TEST(RawEngine, MaxRateIsACapAdaptationNeverPasses) {
  const TargetSet set = one_target("198.18.0.2");
  ScanPlan plan = syn_plan(set, "1-600");
  plan.timing.max_rate = 2000;
  plan.timing.min_rtt_timeout = std::chrono::milliseconds(20);
  plan.timing.initial_rtt_timeout = std::chrono::milliseconds(50);
  RawOptions options;
  options.io = fake_packet_io(lab_network(), nullptr);
  CollectSink sink;
  const auto summary = make_raw_engine(Technique::syn, options)->run(plan, sink, RunControl{});
  ASSERT_EQ(sink.hosts.size(), 1u);
  EXPECT_TRUE(sink.hosts[0].complete);
  EXPECT_GE(summary.counters.probes_sent, 600u);
  EXPECT_LE(summary.counters.effective_rate, 2000.0);
  EXPECT_GE(summary.elapsed.count(), 0.29);  // 600 probes less the 1 ms burst, at 2000/s
}

// Retransmission passes the silence policy asks for whatever comes back (no answer at all:
// --max-retries 2 means three transmissions) are not waited for as a whole: each probe is sent
// again once its own timeout has run out since its last transmission. The first pass (0.2 s)
// is shorter than the timeout (0.6 s), so every retransmission has to wait for its own
// timeout; and the first one leaves when the first probe's timeout ends, not when the last
// one's does (the old whole-pass wait: 0.2 s later).
TEST(RawEngine, RetransmissionsWaitTheirOwnTimeoutNotTheWholePass) {
  constexpr std::size_t kPorts = 400;  // ports 1-400
  constexpr auto kTimeout = std::chrono::milliseconds(600);
  FakeNetworkConfig net;
  FakeHost host;
  host.address = asio::ip::make_address("198.18.0.2");
  host.default_tcp = FakeBehavior::drop;
  net.hosts.push_back(host);
  auto log = std::make_shared<FakeNetworkLog>();
  const TargetSet set = one_target("198.18.0.2");
  ScanPlan plan = syn_plan(set, "1-400");
  plan.timing.max_rate = 2000;  // the first pass lasts 0.2 s
  plan.timing.min_rtt_timeout = std::chrono::milliseconds(20);
  plan.timing.initial_rtt_timeout = kTimeout;
  RawOptions options;
  options.io = fake_packet_io(std::move(net), log);
  CollectSink sink;
  const auto summary = make_raw_engine(Technique::syn, options)->run(plan, sink, RunControl{});
  ASSERT_EQ(sink.hosts.size(), 1u);
  EXPECT_EQ(summary.counters.probes_sent, 3 * kPorts);
  const auto& t = log->sent_at;
  ASSERT_EQ(t.size(), 3 * kPorts);
  // Passes send the silent ports in the same order: send k + kPorts retransmits send k. A
  // probe's stamp precedes its logged send; a tenth of the timeout covers a descheduled sender.
  std::size_t early = 0;
  for (std::size_t k = 0; k + kPorts < t.size(); ++k) {
    if (t[k + kPorts] - t[k] < kTimeout - kTimeout / 10) ++early;
  }
  EXPECT_EQ(early, 0u) << "retransmissions sent before their probe's timeout ran out";
  EXPECT_LT(t[kPorts] - t[0], kTimeout + std::chrono::milliseconds(100))
      << "the second pass waited for the first pass's last timeout";
  for (const auto& p : sink.hosts[0].ports) EXPECT_EQ(p.state, PortState::filtered);
}

struct PlanRun {
  std::vector<HostResult> hosts;
  ScanSummary summary;
};

PlanRun run_plan(ScanPlan plan, FakeNetworkConfig net, RawOptions options) {
  plan.timing.min_rtt_timeout = std::chrono::milliseconds(20);
  plan.timing.initial_rtt_timeout = std::chrono::milliseconds(50);
  plan.timing.max_rtt_timeout = std::chrono::milliseconds(50);
  options.io = fake_packet_io(std::move(net), nullptr);
  CollectSink sink;
  PlanRun run;
  run.summary = make_raw_engine(plan.technique, options)->run(plan, sink, RunControl{});
  run.hosts = sink.hosts;
  return run;
}

RawOptions adaptive_rate(double start, double ceiling) {
  RawOptions options;
  options.initial_rate = start;
  options.max_adaptive_rate = ceiling;
  return options;
}

// Without --max-rate the rate starts at RawOptions::initial_rate and grows while the pacer is
// what holds the sender back, probes draw answers and nothing is lost (engine_core_test.cpp
// pins the arithmetic).
TEST(RawEngine, RateGrowsFromItsStartWhileAnswersKeepUp) {
  const TargetSet set = one_target("198.18.0.2");
  const auto run = run_plan(syn_plan(set, "1-4000"), lab_network(), adaptive_rate(2000, 200000));
  ASSERT_EQ(run.hosts.size(), 1u);
  EXPECT_TRUE(run.hosts[0].complete) << run.hosts[0].note;
  EXPECT_GE(run.summary.counters.probes_sent, 4000u);
  // At a fixed 2000 probes/s the first pass alone would take 2 s.
  EXPECT_GT(run.summary.counters.effective_rate, 4000) << run.summary.elapsed.count() << " s";
}

// Probes that draw nothing are no evidence that more would get through: on a host that
// drops everything the rate stays where it started.
TEST(RawEngine, RateDoesNotGrowWhenNothingAnswers) {
  const TargetSet set = one_target("198.18.0.2");
  FakeNetworkConfig net;
  FakeHost wall;
  wall.address = asio::ip::make_address("198.18.0.2");
  wall.default_tcp = FakeBehavior::drop;
  net.hosts.push_back(wall);
  ScanPlan plan = syn_plan(set, "1-600");
  plan.timing.max_retries = 0;
  const auto run = run_plan(plan, net, adaptive_rate(2000, 200000));
  ASSERT_EQ(run.hosts.size(), 1u);
  EXPECT_EQ(run.summary.counters.probes_sent, 600u);
  EXPECT_LE(run.summary.counters.effective_rate, 2000.0);
  EXPECT_GE(run.summary.elapsed.count(), 0.29);  // 600 probes less the 1 ms burst, at 2000/s
}

// Replies our own capture lost (a full ring) halve the rate: the scan slows down instead of
// losing more, and every port is still right once the retransmissions have settled.
TEST(RawEngine, CaptureDropsHalveTheRate) {
  const TargetSet set = one_target("198.18.0.2");
  auto net = lab_network();
  net.capture_drop = 0.2;
  ScanPlan plan = syn_plan(set, "1-2000");
  plan.timing.max_retries = 6;
  const auto run = run_plan(plan, net, adaptive_rate(20000, 20000));
  ASSERT_EQ(run.hosts.size(), 1u);
  EXPECT_GT(run.summary.counters.capture_drops, 0u);
  // Drops in every window halve the rate to the 500/s floor within about 0.1 s, so the 2000
  // probes of the first pass alone take over 2 s; at 20000/s they would take 0.1 s (and the
  // whole scan about 0.3 s here). A lower bound set by the pacer, not by the machine's speed.
  EXPECT_GT(run.summary.elapsed.count(), 1.0);
  std::size_t open = 0;
  for (const auto& p : run.hosts[0].ports) {
    if (p.port == 22 || p.port == 80) {
      EXPECT_EQ(p.state, PortState::open) << p.port;
      ++open;
    } else if (p.port == 23) {
      EXPECT_EQ(p.state, PortState::closed);
    }
  }
  EXPECT_EQ(open, 2u) << run.hosts[0].note;
}

// A million targets stream through: the engine takes hosts from the target cursor a group at
// a time and hands each finished host to the sink, so memory does not grow with the target
// count. Peak RSS is checked where it means something (not under AddressSanitizer, whose
// quarantine holds freed memory on purpose).
class CountingSink : public ReportSink {
 public:
  void begin(const ScanInfo&) override {}
  void host(const HostResult& h) override {
    ++hosts;
    if (!h.ports.empty() && h.ports[0].state == PortState::open) open.push_back(h.address);
  }
  void end(const ScanSummary&) override {}
  std::uint64_t hosts = 0;
  std::vector<asio::ip::address> open;
};

long peak_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

TEST(RawEngine, AMillionTargetsStreamThroughInBoundedMemory) {
  TargetSet set;
  set.add("127.0.0.0/12", kNoDns);  // 1 048 576 loopback addresses, on the fake network only
  FakeNetworkConfig net;
  for (const char* addr : {"127.0.0.7", "127.8.1.2", "127.15.255.254"}) {
    FakeHost h;
    h.address = asio::ip::make_address(addr);
    h.ports[{Proto::tcp, 80}] = FakeBehavior::open;
    net.hosts.push_back(h);
  }
  ScanPlan plan = syn_plan(set, "80");
  plan.timing.max_retries = 0;
  plan.timing.min_rtt_timeout = std::chrono::milliseconds(1);
  plan.timing.initial_rtt_timeout = std::chrono::milliseconds(2);
  plan.timing.max_rtt_timeout = std::chrono::milliseconds(2);
  RawOptions options;
  options.initial_rate = 0;  // unlimited: the fake network keeps up
  options.io = fake_packet_io(std::move(net), nullptr);
  CountingSink sink;
  const long rss_before = peak_rss_kib();
  const auto summary = make_raw_engine(Technique::syn, options)->run(plan, sink, RunControl{});
  const long grew_mib = (peak_rss_kib() - rss_before) / 1024;
  EXPECT_TRUE(summary.error.empty()) << summary.error;
  EXPECT_EQ(summary.hosts_total, 1u << 20);
  EXPECT_EQ(sink.hosts, 1u << 20);
  EXPECT_EQ(summary.counters.probes_sent, 1u << 20);
  EXPECT_EQ(sink.open, (std::vector<asio::ip::address>{asio::ip::make_address("127.0.0.7"),
                                                       asio::ip::make_address("127.8.1.2"),
                                                       asio::ip::make_address("127.15.255.254")}));
#if defined(__SANITIZE_ADDRESS__)
  (void)grew_mib;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  (void)grew_mib;
#else
  EXPECT_LT(grew_mib, 64) << "peak RSS grew by " << grew_mib << " MiB";
#endif
#else
  EXPECT_LT(grew_mib, 64) << "peak RSS grew by " << grew_mib << " MiB";
#endif
}

}  // namespace
}  // namespace portvigil
