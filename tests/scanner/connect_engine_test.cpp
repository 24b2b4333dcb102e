// Connect engine against listeners this test opens on loopback (no root needed).
#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <map>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "connect_outcome.hpp"
#include "portvigil/scanner/engine.hpp"

namespace portvigil {
namespace {

class CollectSink : public ReportSink {
 public:
  void begin(const ScanInfo&) override { ++begins; }
  void host(const HostResult& h) override { hosts.push_back(h); }
  void end(const ScanSummary&) override { ++ends; }
  std::vector<HostResult> hosts;
  int begins = 0;
  int ends = 0;
};

// Finds a loopback port with nothing listening (bound, then released).
std::uint16_t closed_port(asio::io_context& io, const char* addr) {
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address(addr), 0});
  return a.local_endpoint().port();
}

ScanPlan plan_for(const TargetSet& targets, std::vector<std::uint16_t> ports) {
  ScanPlan plan;
  plan.targets = &targets;
  std::sort(ports.begin(), ports.end());
  plan.ports.tcp = ports;
  plan.scope = targets.covering_scope();
  return plan;
}

TEST(ConnectEngine, OpenAndClosedOnLoopbackV4AndV6) {
  asio::io_context io;
  asio::ip::tcp::acceptor open4(io, {asio::ip::make_address("127.0.0.1"), 0});
  open4.listen();
  const auto port_open4 = open4.local_endpoint().port();
  const auto port_closed = closed_port(io, "127.0.0.1");

  TargetSet targets;
  targets.add("127.0.0.1", {.resolve_names = false});
  std::vector<std::uint16_t> ports{port_open4, port_closed};
  bool have_v6 = true;
  std::unique_ptr<asio::ip::tcp::acceptor> open6;
  try {
    open6 = std::make_unique<asio::ip::tcp::acceptor>(
        io, asio::ip::tcp::endpoint{asio::ip::make_address("::1"), port_open4});
    open6->listen();
    targets.add("::1", {.resolve_names = false});
  } catch (const std::exception&) {
    have_v6 = false;  // no ::1 on this host; the v4 half still runs
  }
  auto plan = plan_for(targets, ports);
  CollectSink sink;
  RunControl control;
  const auto summary = make_connect_engine()->run(plan, sink, control);

  ASSERT_EQ(sink.hosts.size(), have_v6 ? 2u : 1u);
  for (const auto& h : sink.hosts) {
    SCOPED_TRACE(h.address.to_string());
    EXPECT_TRUE(h.complete);
    ASSERT_EQ(h.ports.size(), 2u);
    std::map<std::uint16_t, PortResult> by_port;
    for (const auto& p : h.ports) by_port[p.port] = p;
    EXPECT_EQ(by_port[port_open4].state, PortState::open);
    EXPECT_EQ(by_port[port_open4].reason, Reason::syn_ack);
    EXPECT_EQ(by_port[port_closed].state, PortState::closed);
    EXPECT_EQ(by_port[port_closed].reason, Reason::conn_refused);
    EXPECT_TRUE(std::is_sorted(h.ports.begin(), h.ports.end(),
                               [](auto& a, auto& b) { return a.port < b.port; }));
  }
  EXPECT_EQ(summary.hosts_total, sink.hosts.size());
  EXPECT_EQ(summary.hosts_up, sink.hosts.size());
  EXPECT_EQ(summary.counters.probes_sent, 2 * sink.hosts.size());
  EXPECT_EQ(summary.counters.refused_by_scope, 0u);
  EXPECT_FALSE(summary.interrupted);
}

TEST(ConnectEngine, RefusesTargetsOutsideScope) {
  // A listener on 127.0.0.2 counts connections; the plan's scope leaves that address out,
  // so the engine must not connect even though the target list names it.
  asio::io_context io;
  asio::ip::tcp::acceptor listener(io, {asio::ip::make_address("127.0.0.2"), 0});
  listener.listen();
  listener.non_blocking(true);
  const auto port = listener.local_endpoint().port();

  TargetSet targets;
  targets.add("127.0.0.2", {.resolve_names = false});
  targets.add("127.0.0.1", {.resolve_names = false});
  auto plan = plan_for(targets, {port});
  plan.scope = AuthorizedScope::parse("127.0.0.1/32");
  CollectSink sink;
  RunControl control;
  const auto summary = make_connect_engine()->run(plan, sink, control);

  ASSERT_EQ(sink.hosts.size(), 2u);
  EXPECT_FALSE(sink.hosts[0].complete);
  EXPECT_TRUE(sink.hosts[0].ports.empty());
  EXPECT_NE(sink.hosts[0].note.find("outside the authorized scope"), std::string::npos);
  EXPECT_TRUE(sink.hosts[1].complete);
  EXPECT_EQ(summary.counters.refused_by_scope, 1u);
  EXPECT_EQ(summary.counters.probes_sent, 1u);  // only the in-scope host was probed
  asio::error_code ec;
  asio::ip::tcp::socket accepted(io);
  listener.accept(accepted, ec);
  EXPECT_EQ(ec, asio::error::would_block) << "a connection reached the out-of-scope listener";
}

TEST(ConnectEngine, ManyPortsWithSmallWindowAndRateLimit) {
  asio::io_context io;
  asio::ip::tcp::acceptor open(io, {asio::ip::make_address("127.0.0.1"), 0});
  open.listen();
  const auto port_open = open.local_endpoint().port();
  TargetSet targets;
  targets.add("127.0.0.1", {.resolve_names = false});
  std::vector<std::uint16_t> ports;
  for (std::uint16_t p = 1; p <= 300; ++p) {
    if (p != port_open) ports.push_back(p);
  }
  ports.push_back(port_open);
  auto plan = plan_for(targets, ports);
  plan.timing.max_parallelism = 7;  // forces slot reuse
  plan.timing.max_rate = 3000;
  CollectSink sink;
  RunControl control;
  const auto started = std::chrono::steady_clock::now();
  const auto summary = make_connect_engine()->run(plan, sink, control);
  const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
  ASSERT_EQ(sink.hosts.size(), 1u);
  ASSERT_EQ(sink.hosts[0].ports.size(), ports.size());
  std::size_t open_count = 0;
  for (const auto& p : sink.hosts[0].ports) {
    if (p.port == port_open) {
      EXPECT_EQ(p.state, PortState::open);
      ++open_count;
    } else if (p.state == PortState::open) {
      ++open_count;  // another process on this machine listens there: still consistent
    } else {
      EXPECT_EQ(p.state, PortState::closed) << p.port;
    }
  }
  EXPECT_GE(open_count, 1u);
  EXPECT_EQ(summary.counters.probes_sent, ports.size());
  // 300 probes at 3000/s cannot finish faster than ~0.1 s: the limiter held them back.
  EXPECT_GE(took.count(), 0.09);
}

TEST(ConnectEngine, StopFlagInterruptsAndReportsPartialHosts) {
  TargetSet targets;
  targets.add("127.0.0.1", {.resolve_names = false});
  std::vector<std::uint16_t> ports;
  for (std::uint32_t p = 1; p <= 65535; ++p) ports.push_back(static_cast<std::uint16_t>(p));
  auto plan = plan_for(targets, ports);
  plan.timing.max_rate = 1000;  // slow enough that the stop arrives mid-scan
  std::atomic<bool> stop{false};
  RunControl control;
  control.stop = &stop;
  control.progress_every = std::chrono::milliseconds(50);
  int progress_calls = 0;
  control.on_progress = [&](const Progress& p) {
    ++progress_calls;
    EXPECT_EQ(p.probes_total, 65535u);
    stop = true;
  };
  CollectSink sink;
  const auto summary = make_connect_engine()->run(plan, sink, control);
  EXPECT_TRUE(summary.interrupted);
  EXPECT_GE(progress_calls, 1);
  ASSERT_EQ(sink.hosts.size(), 1u);
  EXPECT_FALSE(sink.hosts[0].complete);
  EXPECT_LT(sink.hosts[0].ports.size(), 65535u);  // unanswered ports are not reported
  EXPECT_NE(sink.hosts[0].note.find("interrupted"), std::string::npos);
}

// A loop too busy to run completions before their timers: loopback answers a connect()
// before the call returns, but with a 1 ms timeout every timer has expired by the time the
// loop gets to the completions. An answer the kernel holds is still an answer.
TEST(ConnectEngine, AnswersQueuedBehindExpiredTimersAreNotSilence) {
  TargetSet targets;
  targets.add("127.0.0.1", {.resolve_names = false});
  std::vector<std::uint16_t> ports;
  for (std::uint16_t p = 1; p <= 8000; ++p) ports.push_back(p);
  auto plan = plan_for(targets, ports);
  plan.timing.initial_rtt_timeout = plan.timing.min_rtt_timeout = plan.timing.max_rtt_timeout =
      Seconds{0.001};
  plan.timing.max_retries = 0;  // one attempt: a lost answer would show as filtered
  CollectSink sink;
  RunControl control;
  const auto summary = make_connect_engine()->run(plan, sink, control);
  ASSERT_EQ(sink.hosts.size(), 1u);
  EXPECT_TRUE(sink.hosts[0].complete) << sink.hosts[0].note;
  ASSERT_EQ(sink.hosts[0].ports.size(), ports.size());
  std::size_t filtered = 0;
  for (const auto& p : sink.hosts[0].ports) {
    if (p.state == PortState::filtered) ++filtered;
  }
  EXPECT_EQ(filtered, 0u) << "of " << ports.size() << " loopback ports";
  EXPECT_EQ(summary.counters.retransmissions, 0u);
  EXPECT_EQ(summary.error, "");
}

// A non-blocking connect() to ENDPOINT on a fresh socket; returns the descriptor.
int start_connect(const asio::ip::tcp::endpoint& endpoint) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  const int rc = ::connect(fd, endpoint.data(), static_cast<socklen_t>(endpoint.size()));
  EXPECT_TRUE(rc == 0 || errno == EINPROGRESS) << std::strerror(errno);
  return fd;
}

TEST(SettledConnect, InProgressRefusedAndEstablished) {
  asio::io_context io;
  // Refused: loopback answers before connect() returns.
  const int refused =
      start_connect({asio::ip::make_address("127.0.0.1"), closed_port(io, "127.0.0.1")});
  auto outcome = engine::settled_connect(refused);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(*outcome, asio::error::connection_refused);

  asio::ip::tcp::acceptor listener(io, {asio::ip::make_address("127.0.0.1"), 0});
  listener.listen();
  const int established = start_connect(listener.local_endpoint());
  outcome = engine::settled_connect(established);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_FALSE(*outcome) << outcome->message();

  // In progress: a listener whose accept queue is full drops the next SYN, so that
  // connection attempt stays in SYN_SENT.
  asio::ip::tcp::acceptor full(io, {asio::ip::make_address("127.0.0.1"), 0});
  full.listen(0);
  const int first = start_connect(full.local_endpoint());
  ASSERT_TRUE(engine::settled_connect(first).has_value());
  const int waiting = start_connect(full.local_endpoint());
  EXPECT_FALSE(engine::settled_connect(waiting).has_value());
  for (const int fd : {refused, established, first, waiting}) ::close(fd);
}

}  // namespace
}  // namespace portvigil
