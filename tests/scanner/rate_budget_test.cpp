// The process-wide probe budget: its arithmetic on a fixed clock, its correctness when
// several threads take from it at once, and both engines held to it when two scans share it.
#include "portvigil/scanner/rate_budget.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <thread>
#include <vector>

#include "portvigil/scanner/engine.hpp"

namespace portvigil {
namespace {

using namespace std::chrono_literals;
using Clock = RateBudget::Clock;

// kBurst of sending at once: this many probes at `rate` go without waiting.
std::size_t burst_at(double rate) {
  return static_cast<std::size_t>(std::chrono::duration<double>(RateBudget::kBurst).count() *
                                  rate) +
         1;
}

TEST(RateBudget, UnlimitedAlwaysGives) {
  RateBudget b;
  const auto t = Clock::now();
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(b.try_take(t));
  EXPECT_TRUE(b.unlimited());
  EXPECT_EQ(b.until_next(t).count(), 0);
}

TEST(RateBudget, BurstThenOneProbePerInterval) {
  RateBudget b(1000);  // one per millisecond
  const auto t0 = Clock::now();
  std::size_t given = 0;
  while (b.try_take(t0)) ++given;
  EXPECT_EQ(given, burst_at(1000));
  EXPECT_FALSE(b.try_take(t0));
  EXPECT_NEAR(b.until_next(t0).count(), 1e-3, 1e-6);
  EXPECT_FALSE(b.try_take(t0 + 999us));
  EXPECT_TRUE(b.try_take(t0 + 1ms));
  EXPECT_FALSE(b.try_take(t0 + 1ms));
  // Over any later second, no more than a second's worth plus the burst.
  std::size_t in_second = 0;
  for (auto t = t0 + 1ms; t < t0 + 1001ms; t += 100us) {
    while (b.try_take(t)) ++in_second;
  }
  EXPECT_LE(in_second, 1000u + 1);
  EXPECT_GE(in_second, 999u);
}

TEST(RateBudget, IdleTimeDoesNotBankMoreThanTheBurst) {
  RateBudget b(100);
  const auto t0 = Clock::now();
  while (b.try_take(t0)) {
  }
  std::size_t given = 0;
  while (b.try_take(t0 + 1h)) ++given;
  EXPECT_EQ(given, burst_at(100));
}

TEST(RateBudget, SetRateAppliesToTheNextProbe) {
  RateBudget b(10);
  const auto t0 = Clock::now();
  while (b.try_take(t0)) {
  }
  EXPECT_FALSE(b.try_take(t0 + 50ms));  // 10/s: the next one is due 100 ms later
  b.set_rate(0);
  EXPECT_TRUE(b.unlimited());
  EXPECT_TRUE(b.try_take(t0 + 50ms));
  b.set_rate(1e6);
  EXPECT_DOUBLE_EQ(b.rate(), 1e6);
}

TEST(RateBudget, GiveBackReturnsOneProbe) {
  RateBudget b(1000);
  const auto t0 = Clock::now();
  while (b.try_take(t0)) {
  }
  b.give_back();
  EXPECT_TRUE(b.try_take(t0));
  EXPECT_FALSE(b.try_take(t0));
}

// Threads racing on one instant: exactly the burst is handed out, never a probe more.
TEST(RateBudget, ConcurrentTakersShareOneBudget) {
  RateBudget b(100000);
  const auto t0 = Clock::now();
  std::atomic<std::size_t> given{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 5000; ++k) {
        if (b.try_take(t0)) given.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(given.load(), burst_at(100000));
}

class CountingSink : public ReportSink {
 public:
  void begin(const ScanInfo&) override {}
  void host(const HostResult& h) override { hosts.push_back(h); }
  void end(const ScanSummary&) override {}
  std::vector<HostResult> hosts;
};

// Two scans in two threads, sharing `budget`: each gets `plan` and returns its sink.
template <typename MakeEngine>
std::pair<std::vector<HostResult>, std::vector<HostResult>> run_two(const ScanPlan& a,
                                                                    const ScanPlan& b,
                                                                    MakeEngine make) {
  CountingSink sa;
  CountingSink sb;
  std::thread ta([&] { make()->run(a, sa, RunControl{}); });
  std::thread tb([&] { make()->run(b, sb, RunControl{}); });
  ta.join();
  tb.join();
  return {sa.hosts, sb.hosts};
}

// 2 x 300 connect probes through a budget of 1 000/s take at least 0.6 s (minus the burst),
// though each job alone is uncapped; and each scan still gets the right answers.
TEST(RateBudget, TwoConnectScansShareIt) {
  asio::io_context io;
  asio::ip::tcp::acceptor open(io, {asio::ip::make_address("127.0.0.1"), 0});
  open.listen();
  const auto port_open = open.local_endpoint().port();
  TargetSet targets;
  targets.add("127.0.0.1", {.resolve_names = false});
  RateBudget budget(1000);
  ScanPlan plan;
  plan.targets = &targets;
  plan.scope = targets.covering_scope();
  plan.shared_rate = &budget;
  for (std::uint16_t p = 1; plan.ports.tcp.size() < 299; ++p) {
    if (p != port_open) plan.ports.tcp.push_back(p);
  }
  plan.ports.tcp.push_back(port_open);
  std::sort(plan.ports.tcp.begin(), plan.ports.tcp.end());
  const auto started = Clock::now();
  const auto [a, b] = run_two(plan, plan, [] { return make_connect_engine(); });
  const double took = std::chrono::duration<double>(Clock::now() - started).count();
  EXPECT_GE(took, 0.6 - 2 * 0.011);
  for (const auto* hosts : {&a, &b}) {
    ASSERT_EQ(hosts->size(), 1u);
    ASSERT_EQ((*hosts)[0].ports.size(), 300u);
    const auto it = std::find_if((*hosts)[0].ports.begin(), (*hosts)[0].ports.end(),
                                 [&](const PortResult& p) { return p.port == port_open; });
    ASSERT_NE(it, (*hosts)[0].ports.end());
    EXPECT_EQ(it->state, PortState::open);
  }
}

// The raw engine on the in-memory network: 2 x 400 SYN probes at 2 000/s shared.
TEST(RateBudget, TwoRawScansShareIt) {
  FakeNetworkConfig net;
  for (const char* addr : {"198.18.0.2", "2001:db8::2"}) {
    FakeHost h;
    h.address = asio::ip::make_address(addr);
    h.ports[{Proto::tcp, 22}] = FakeBehavior::open;
    net.hosts.push_back(h);
  }
  TargetSet targets;
  targets.add("198.18.0.2", {.resolve_names = false});
  targets.add("2001:db8::2", {.resolve_names = false});
  RateBudget budget(2000);
  ScanPlan plan;
  plan.technique = Technique::syn;
  plan.targets = &targets;
  plan.scope = targets.covering_scope();
  plan.shared_rate = &budget;
  plan.timing.min_rtt_timeout = 20ms;
  plan.timing.initial_rtt_timeout = 50ms;
  for (std::uint16_t p = 1; p <= 200; ++p) plan.ports.tcp.push_back(p);
  const auto started = Clock::now();
  const auto [a, b] = run_two(plan, plan, [&] {
    RawOptions o;
    o.io = fake_packet_io(net);
    return make_raw_engine(Technique::syn, o);
  });
  const double took = std::chrono::duration<double>(Clock::now() - started).count();
  EXPECT_GE(took, 0.4 - 2 * 0.011);
  for (const auto* hosts : {&a, &b}) {
    ASSERT_EQ(hosts->size(), 2u);
    for (const auto& h : *hosts) {
      EXPECT_TRUE(h.complete) << h.note;
      ASSERT_EQ(h.ports.size(), 200u);
      for (const auto& p : h.ports) {
        EXPECT_EQ(p.state, p.port == 22 ? PortState::open : PortState::closed) << p.port;
      }
    }
  }
}

}  // namespace
}  // namespace portvigil
