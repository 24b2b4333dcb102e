// The raw engine driven end to end through the in-memory fake network: no root needed.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <thread>

#include "portvigil/scanner/engine.hpp"

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
         RawOptions options = {}) {
  TargetSet set;
  for (const auto& t : targets) set.add(t, kNoDns);
  ScanPlan plan;
  plan.technique = technique;
  plan.targets = &set;
  plan.ports = parse_ports(ports, technique != Technique::udp, technique == Technique::udp);
  plan.scope = scope ? *scope : set.covering_scope();
  plan.timing.min_rtt_timeout = std::chrono::milliseconds(20);
  plan.timing.initial_rtt_timeout = std::chrono::milliseconds(50);
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

}  // namespace
}  // namespace portvigil

namespace portvigil {
namespace {

// A stop request (SIGTERM, Ctrl-C) ends the scan promptly at any rate: at 1 probe/s the
// sender must not sit in its pacer (it once checked the stop flag every 256 probes).
TEST(RawEngine, StopIsSeenPromptlyAtOneProbePerSecond) {
  TargetSet set;
  set.add("198.18.0.2", kNoDns);
  ScanPlan plan;
  plan.technique = Technique::syn;
  plan.targets = &set;
  plan.ports = parse_ports("1-1000", true, false);
  plan.scope = set.covering_scope();
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

}  // namespace
}  // namespace portvigil
