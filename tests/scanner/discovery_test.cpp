// Host discovery in front of the port scan (make_scan_engine), through the fake network: a
// subnet where most addresses are unused, hosts that drop pings, -sn and -Pn.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "portvigil/scanner/engine.hpp"

namespace portvigil {
namespace {

class CollectSink : public ReportSink {
 public:
  void begin(const ScanInfo&) override {}
  void host(const HostResult& h) override {
    hosts[h.address.to_string()] = h;
    order.push_back(h.address.to_string());
  }
  void end(const ScanSummary&) override {}
  std::map<std::string, HostResult> hosts;
  std::vector<std::string> order;  // as reported
};

const TargetParseOptions kNoDns{.resolve_names = false};

FakeHost host(const char* address, bool answers_ping = true) {
  FakeHost h;
  h.address = asio::ip::make_address(address);
  h.answers_ping = answers_ping;
  h.ports[{Proto::tcp, 22}] = FakeBehavior::open;
  return h;
}

struct Result {
  CollectSink sink;
  ScanSummary summary;
  std::shared_ptr<FakeNetworkLog> log = std::make_shared<FakeNetworkLog>();
  std::size_t probes_to(const std::string& a) const {
    return static_cast<std::size_t>(
        std::count_if(log->probed.begin(), log->probed.end(),
                      [&](const asio::ip::address& x) { return x.to_string() == a; }));
  }
};

void scan(Result& out, FakeNetworkConfig net, HostDiscovery discovery,
          const std::vector<std::string>& targets, const std::string& ports = "1-100",
          std::function<bool(const Target&)> keep = {}, TimingOptions timing = {}) {
  TargetSet set;
  for (const auto& t : targets) set.add(t, kNoDns);
  ScanPlan plan;
  plan.technique = Technique::syn;
  plan.targets = &set;
  plan.ports = parse_ports(ports, true, false);
  plan.scope = set.covering_scope();
  plan.timing = timing;
  if (timing.min_rtt_timeout == TimingOptions{}.min_rtt_timeout) {
    plan.timing.min_rtt_timeout = std::chrono::milliseconds(20);  // fast tests by default
  }
  plan.timing.initial_rtt_timeout =
      std::max<Seconds>(plan.timing.min_rtt_timeout, std::chrono::milliseconds(50));
  plan.discovery = discovery;
  plan.scan_even_if_silent = std::move(keep);
  RawOptions options;
  options.io = fake_packet_io(std::move(net), out.log);
  RunControl control;
  out.summary = make_scan_engine(Technique::syn, options)->run(plan, out.sink, control);
}

// A /26 with three live hosts: unused addresses get the three discovery probes (and their
// retransmissions) but never a port probe, and are reported down without ports.
TEST(HostDiscovery, UnusedAddressesGetNoPortProbes) {
  FakeNetworkConfig net;
  net.hosts = {host("198.18.0.2"), host("198.18.0.7"), host("198.18.0.40")};
  // The kernel gave up resolving two addresses (EHOSTUNREACH) and is still trying a third
  // (ENOBUFS): neither fails the scan, neither is up.
  net.failed_neighbours = {asio::ip::make_address("198.18.0.9"),
                           asio::ip::make_address("198.18.0.10")};
  net.unresolved = {asio::ip::make_address("198.18.0.11")};
  Result r;
  scan(r, net, HostDiscovery::ping, {"198.18.0.0/26"});
  ASSERT_TRUE(r.summary.error.empty()) << r.summary.error;
  EXPECT_EQ(r.summary.counters.send_refused_locally, 2u * 3u);  // once per pair, no retry
  EXPECT_GT(r.summary.counters.send_deferred, 0u);
  EXPECT_EQ(r.summary.hosts_total, 64u);
  EXPECT_EQ(r.summary.hosts_up, 3u);
  ASSERT_EQ(r.sink.hosts.size(), 64u);
  for (const auto& [address, h] : r.sink.hosts) {
    SCOPED_TRACE(address);
    const bool live =
        address == "198.18.0.2" || address == "198.18.0.7" || address == "198.18.0.40";
    if (live) {
      EXPECT_EQ(h.status, HostStatus::up);
      EXPECT_EQ(h.status_reason, Reason::echo_reply);
      ASSERT_EQ(h.ports.size(), 100u);
      EXPECT_EQ(h.ports[21].state, PortState::open);  // port 22
      EXPECT_EQ(h.ports[22].state, PortState::closed);
    } else {
      EXPECT_EQ(h.status, HostStatus::down);
      EXPECT_EQ(h.status_reason, Reason::no_response);
      EXPECT_TRUE(h.ports.empty());
      // Three probes per discovery pass, a few passes: nowhere near 100 ports.
      EXPECT_LE(r.probes_to(address), 3u * 9u);
      const bool refused =
          address == "198.18.0.9" || address == "198.18.0.10" || address == "198.18.0.11";
      if (refused) {
        EXPECT_EQ(r.probes_to(address), 0u);  // the kernel took none of them
      } else {
        EXPECT_GE(r.probes_to(address), 3u);
      }
    }
  }
}

// Discovery must not hide a live host that drops pings: an answer to either TCP probe is
// enough.
TEST(HostDiscovery, HostDroppingIcmpIsFoundByTcp) {
  FakeNetworkConfig net;
  FakeHost quiet = host("198.18.0.3", false);
  net.hosts = {quiet};
  Result r;
  scan(r, net, HostDiscovery::ping, {"198.18.0.3"});
  ASSERT_EQ(r.sink.hosts.size(), 1u);
  const auto& h = r.sink.hosts.at("198.18.0.3");
  EXPECT_EQ(h.status, HostStatus::up);
  EXPECT_EQ(h.status_reason, Reason::reset);  // the ACK to port 80
  EXPECT_EQ(h.ports.size(), 100u);
  // Only port 443 answers (80 drops the ACK, ICMP dropped): still up.
  FakeHost only443 = host("198.18.0.4", false);
  only443.ports[{Proto::tcp, 80}] = FakeBehavior::drop;
  net.hosts = {only443};
  Result r2;
  scan(r2, net, HostDiscovery::ping, {"198.18.0.4"});
  EXPECT_EQ(r2.sink.hosts.at("198.18.0.4").status, HostStatus::up);
  EXPECT_EQ(r2.sink.hosts.at("198.18.0.4").status_reason, Reason::reset);
  EXPECT_EQ(r2.summary.hosts_up, 1u);
}

// The false negative Nmap has too: a host that drops every discovery probe is reported
// down although port 22 is open; -Pn (HostDiscovery::skip) finds it.
TEST(HostDiscovery, HostDroppingEveryDiscoveryProbeNeedsPn) {
  FakeNetworkConfig net;
  FakeHost hidden = host("198.18.0.5", false);
  hidden.default_tcp = FakeBehavior::drop;
  hidden.ports[{Proto::tcp, 22}] = FakeBehavior::open;
  net.hosts = {hidden};
  Result down;
  scan(down, net, HostDiscovery::ping, {"198.18.0.5"});
  EXPECT_EQ(down.sink.hosts.at("198.18.0.5").status, HostStatus::down);
  EXPECT_EQ(down.summary.hosts_up, 0u);
  Result skipped;
  scan(skipped, net, HostDiscovery::skip, {"198.18.0.5"});
  const auto& h = skipped.sink.hosts.at("198.18.0.5");
  EXPECT_EQ(h.status, HostStatus::unknown);
  EXPECT_EQ(h.ports[21].state, PortState::open);
  // scan_even_if_silent (the agent's tracked hosts) keeps it too, status unknown.
  Result kept;
  scan(kept, net, HostDiscovery::ping, {"198.18.0.5"}, "1-100",
       [](const Target& t) { return t.address.to_string() == "198.18.0.5"; });
  const auto& k = kept.sink.hosts.at("198.18.0.5");
  EXPECT_EQ(k.status, HostStatus::unknown);
  EXPECT_EQ(k.ports[21].state, PortState::open);
  EXPECT_EQ(kept.summary.hosts_up, 1u);  // its ports answered
}

TEST(HostDiscovery, DiscoveryOnlyListsUpHostsWithoutPorts) {
  FakeNetworkConfig net;
  net.hosts = {host("198.18.0.2"), host("2001:db8::2"), host("2001:db8::5", false)};
  Result r;
  scan(r, net, HostDiscovery::only, {"198.18.0.0/30", "2001:db8::/125"});
  EXPECT_EQ(r.summary.hosts_total, 12u);
  EXPECT_EQ(r.summary.hosts_up, 3u);
  for (const char* a : {"198.18.0.2", "2001:db8::2", "2001:db8::5"}) {
    SCOPED_TRACE(a);
    EXPECT_EQ(r.sink.hosts.at(a).status, HostStatus::up);
    EXPECT_TRUE(r.sink.hosts.at(a).ports.empty());
  }
  EXPECT_EQ(r.sink.hosts.at("2001:db8::2").status_reason, Reason::echo_reply);
  EXPECT_EQ(r.sink.hosts.at("2001:db8::5").status_reason, Reason::reset);
  EXPECT_EQ(r.sink.hosts.at("198.18.0.1").status, HostStatus::down);
  // No port probe left at all: only the discovery probes' ports.
  EXPECT_EQ(r.probes_to("198.18.0.2"), 3u);
}

TEST(HostDiscovery, OutOfScopeTargetsAreReportedOnceAndNeverProbed) {
  FakeNetworkConfig net;
  net.hosts = {host("198.18.0.2"), host("198.18.0.3")};
  TargetSet set;
  set.add("198.18.0.2-3", kNoDns);
  ScanPlan plan;
  plan.technique = Technique::syn;
  plan.targets = &set;
  plan.ports = parse_ports("22", true, false);
  plan.scope = AuthorizedScope::parse("198.18.0.2/32");
  plan.discovery = HostDiscovery::ping;
  auto log = std::make_shared<FakeNetworkLog>();
  RawOptions options;
  options.io = fake_packet_io(net, log);
  CollectSink sink;
  const auto summary = make_scan_engine(Technique::syn, options)->run(plan, sink, RunControl{});
  EXPECT_TRUE(sink.hosts.at("198.18.0.3").refused_by_scope);
  EXPECT_TRUE(sink.hosts.at("198.18.0.2").ports.size() == 1);
  for (const auto& a : log->probed) EXPECT_EQ(a.to_string(), "198.18.0.2");
  EXPECT_EQ(summary.hosts_up, 1u);
}

// On an Ethernet link ARP (IPv4) and neighbour solicitation (IPv6) find an on-link host that
// filters every IP probe; off the link such a host stays down, as the README's false
// negatives say.
TEST(HostDiscovery, NeighbourDiscoveryFindsOnLinkHostsThatFilterEverything) {
  FakeNetworkConfig net;
  net.ethernet_on_link = {parse_cidr("198.18.0.0/24"), parse_cidr("2001:db8::/64")};
  FakeHost walled = host("198.18.0.6", false);
  walled.default_tcp = FakeBehavior::drop;
  walled.ports[{Proto::tcp, 22}] = FakeBehavior::drop;
  FakeHost remote = walled;
  remote.address = asio::ip::make_address("198.18.1.6");
  FakeHost walled6 = walled;
  walled6.address = asio::ip::make_address("2001:db8::6");
  FakeHost remote6 = walled;
  remote6.address = asio::ip::make_address("2001:db8:1::6");
  FakeHost open = host("198.18.0.7");
  FakeHost silent_arp = host("198.18.0.8");
  silent_arp.answers_arp = false;  // found by its IP answers all the same
  net.hosts = {walled, remote, walled6, remote6, open, silent_arp};
  Result r;
  scan(r, net, HostDiscovery::only,
       {"198.18.0.6-8", "198.18.1.6", "2001:db8::6", "2001:db8:1::6", "198.18.0.20"});
  ASSERT_TRUE(r.summary.error.empty()) << r.summary.error;
  EXPECT_EQ(r.sink.hosts.at("198.18.0.6").status, HostStatus::up);
  EXPECT_EQ(r.sink.hosts.at("198.18.0.6").status_reason, Reason::arp_response);
  EXPECT_EQ(r.sink.hosts.at("198.18.0.7").status, HostStatus::up);
  EXPECT_EQ(r.sink.hosts.at("198.18.0.8").status, HostStatus::up);
  EXPECT_EQ(r.sink.hosts.at("198.18.0.8").status_reason, Reason::echo_reply);
  EXPECT_EQ(r.sink.hosts.at("198.18.1.6").status, HostStatus::down);
  EXPECT_EQ(r.sink.hosts.at("2001:db8::6").status, HostStatus::up);
  EXPECT_EQ(r.sink.hosts.at("2001:db8::6").status_reason, Reason::nd_response);
  EXPECT_EQ(r.sink.hosts.at("2001:db8:1::6").status, HostStatus::down);
  EXPECT_EQ(r.sink.hosts.at("198.18.0.20").status, HostStatus::down);  // nobody there
  EXPECT_EQ(r.summary.hosts_up, 4u);
  // The port scan after ARP discovery reads the Ethernet frames as well.
  Result ports;
  scan(ports, net, HostDiscovery::ping, {"198.18.0.7"}, "20-25");
  ASSERT_EQ(ports.sink.hosts.at("198.18.0.7").ports.size(), 6u);
  EXPECT_EQ(ports.sink.hosts.at("198.18.0.7").ports[2].state, PortState::open);  // 22
}

// The port scan does not wait for discovery to finish: a host that answered every
// discovery probe is port-scanned while discovery still waits on the silent addresses, so
// the live hosts' results come before discovery can call any address down.
TEST(HostDiscovery, PortScanRunsWhileDiscoveryWaitsOnSilentAddresses) {
  FakeNetworkConfig net;
  net.hosts = {host("198.18.0.2"), host("198.18.0.7"), host("198.18.0.40")};
  TimingOptions slow;  // silence takes discovery at least 2 x 300 ms to believe
  slow.min_rtt_timeout = std::chrono::milliseconds(300);
  Result r;
  scan(r, net, HostDiscovery::ping, {"198.18.0.0/26"}, "1-100", {}, slow);
  ASSERT_TRUE(r.summary.error.empty()) << r.summary.error;
  EXPECT_EQ(r.summary.hosts_up, 3u);
  ASSERT_EQ(r.sink.order.size(), 64u);
  std::set<std::string> first3(r.sink.order.begin(), r.sink.order.begin() + 3);
  EXPECT_EQ(first3, (std::set<std::string>{"198.18.0.2", "198.18.0.7", "198.18.0.40"}))
      << "a down address was reported before the live hosts' port scan ended";
  for (const auto& a : first3) {
    EXPECT_EQ(r.sink.hosts.at(a).status, HostStatus::up) << a;
    EXPECT_EQ(r.sink.hosts.at(a).status_reason, Reason::echo_reply) << a;
    EXPECT_EQ(r.sink.hosts.at(a).ports.size(), 100u) << a;
  }
}

// The pipeline's two engines report progress as one stream: never two calls at once, and
// never more done than known.
TEST(HostDiscovery, PipelineProgressIsOneStream) {
  FakeNetworkConfig net;
  net.hosts = {host("198.18.0.2"), host("198.18.0.7"), host("198.18.0.40")};
  TargetSet set;
  set.add("198.18.0.0/26", kNoDns);
  ScanPlan plan;
  plan.technique = Technique::syn;
  plan.targets = &set;
  plan.ports = parse_ports("1-1000", true, false);
  plan.scope = set.covering_scope();
  plan.timing.max_rate = 20000;  // long enough for several reports
  plan.timing.min_rtt_timeout = std::chrono::milliseconds(100);
  plan.discovery = HostDiscovery::ping;
  RawOptions options;
  options.io = fake_packet_io(net);
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  std::vector<Progress> seen;  // written inside the callback only
  RunControl control;
  control.progress_every = std::chrono::milliseconds(10);
  control.on_progress = [&](const Progress& p) {
    if (inside.fetch_add(1) != 0) overlapped = true;
    seen.push_back(p);
    inside.fetch_sub(1);
  };
  CollectSink sink;
  const auto summary = make_scan_engine(Technique::syn, options)->run(plan, sink, control);
  ASSERT_TRUE(summary.error.empty()) << summary.error;
  EXPECT_FALSE(overlapped);
  ASSERT_GE(seen.size(), 3u);
  for (const auto& p : seen) {
    EXPECT_LE(p.probes_done, p.probes_total);
    EXPECT_LE(p.hosts_done, 64u);
  }
  // Discovery's work (64 targets x 3 probes) and the live hosts' ports (3 x 1 000) by the end.
  EXPECT_GE(seen.back().probes_total, 3u * 1000u);
}

// Discovery and the port scan send at the same time: --max-rate caps their sum, not each.
// Checked on the send times: no 100 ms holds more than the rate allows (plus the bursts),
// where two engines at the full rate each would send twice that.
TEST(HostDiscovery, MaxRateIsSharedByDiscoveryAndThePortScan) {
  FakeNetworkConfig net;
  net.hosts = {host("198.18.0.2"), host("198.18.0.7"), host("198.18.0.40")};
  TimingOptions capped;
  capped.max_rate = 10000;
  Result r;
  scan(r, net, HostDiscovery::ping, {"198.18.0.0/22"}, "1-1000", {}, capped);
  ASSERT_TRUE(r.summary.error.empty()) << r.summary.error;
  EXPECT_EQ(r.summary.hosts_up, 3u);
  auto times = r.log->sent_at;
  ASSERT_GT(times.size(), 3000u + 3 * 1024);  // 1 000 port probes a live host, 3 a target
  std::sort(times.begin(), times.end());
  std::size_t busiest = 0;
  for (std::size_t first = 0, last = 0; last < times.size(); ++last) {
    while (times[last] - times[first] > std::chrono::milliseconds(100)) ++first;
    busiest = std::max(busiest, last - first + 1);
  }
  // 1 000 in 100 ms at the rate, 100 more for the shared budget's 10 ms burst, a few for
  // each engine's own pacer.
  EXPECT_LE(busiest, 1150u) << "probes sent within 100 ms at --max-rate 10000";
}

// Consecutive live hosts are kept as one range: a /16 of live hosts is one target spec.
TEST(HostDiscovery, LiveHostsAreKeptAsRanges) {
  TargetSet set;
  for (int i = 0; i < 1000; ++i) {
    set.add_target({asio::ip::make_address_v4(0xc6120000u + static_cast<unsigned>(i)), ""});
  }
  set.add_target({asio::ip::make_address("198.18.9.9"), "named.example"});
  set.add_target({asio::ip::make_address("198.18.9.10"), ""});
  EXPECT_EQ(set.specs().size(), 3u);
  auto c = set.cursor();
  Target t;
  std::size_t n = 0;
  while (c.next(t)) ++n;
  EXPECT_EQ(n, 1002u);
}

}  // namespace
}  // namespace portvigil
