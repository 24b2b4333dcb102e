// run_job end to end: the raw SYN/UDP engines on the in-memory fake network (the test
// changes the network between the main scan and the confirmation re-probes), and the
// connect engine against real listeners on 127.0.0.1.
#include "job_runner.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <set>
#include <thread>

#include "agent_test_util.hpp"

namespace portvigil {
namespace {

const std::string kHost = "198.18.0.2";

struct JobText {
  std::string technique = "syn";
  std::string ports = "20-30,80,443";
  std::string targets = "\"198.18.0.2\"";
  int confirmations = 2;
  // Off by default here: these tests count engine runs (discovery is one more). The
  // HostDiscovery tests below turn it on.
  bool host_discovery = false;
  std::string interval = "1m";
  std::string extra;           // more job keys
  std::string authorization =  // whole [[authorization]] section(s)
      "[[authorization]]\nnetworks = [\"198.18.0.0/16\"]\n";
};

Config make_config(const JobText& j) {
  const std::string text = "[agent]\nlog-level = \"error\"\n\n" + j.authorization +
                           "\n[[job]]\nname = \"fake\"\ntargets = [" + j.targets + "]\nports = \"" +
                           j.ports + "\"\ntechnique = \"" + j.technique + "\"\ninterval = \"" +
                           j.interval + "\"\nconfirmations = " + std::to_string(j.confirmations) +
                           "\nhost-discovery = " + (j.host_discovery ? "true" : "false") + "\n" +
                           j.extra;
  return parse_config(text, "job_runner_test.toml");
}

// The fake network, mutable between factory invocations: each engine run (the main scan,
// then one per confirmation round) calls the factory once, so `on_call` sees the 1-based
// number of the engine run within the current job run.
class FakeNet {
 public:
  FakeNet() {
    FakeHost h;
    h.address = asio::ip::make_address(kHost);
    config.hosts.push_back(h);
  }
  FakeNetworkConfig config;
  std::shared_ptr<FakeNetworkLog> log = std::make_shared<FakeNetworkLog>();
  std::function<void(int call, FakeNetworkConfig&)> on_call;
  int calls = 0;
  std::uint64_t seed = 1;

  void set(std::uint16_t port, FakeBehavior b, Proto proto = Proto::tcp) {
    set_in(config, port, b, proto);
  }
  static void set_in(FakeNetworkConfig& c, std::uint16_t port, FakeBehavior b,
                     Proto proto = Proto::tcp) {
    c.hosts.at(0).ports[{proto, port}] = b;
  }

  IoFactory factory() {
    return [this](const IoRequest& req) {
      ++calls;
      if (on_call) on_call(calls, config);
      config.seed = seed++;  // a different loss pattern on every run
      return fake_packet_io(config, log)(req);
    };
  }
};

class JobRunnerTest : public testing::Test {
 protected:
  Store store = Store::open(":memory:");
  FakeNet net;
  Logger quiet{LogLevel::error};
  std::atomic<bool> stop{false};

  JobRunResult run(const Config& config) {
    net.calls = 0;
    JobEnvironment env{net.factory(), &stop, &quiet};
    auto r = run_job(config, config.jobs.at(0), store, env);
    net.on_call = nullptr;
    return r;
  }

  std::optional<PortObservation> baseline_of(std::uint16_t port, Proto proto = Proto::tcp,
                                             const std::string& host = kHost) {
    return store.baseline("fake", host).state_of(proto, port);
  }
};

TEST_F(JobRunnerTest, FirstCompleteScanIsSilentBaseline) {
  const auto config = make_config({});
  net.set(80, FakeBehavior::open);
  const auto r = run(config);
  ASSERT_TRUE(r.complete) << r.error;
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.changes_seen, 0u);
  EXPECT_EQ(net.calls, 1) << "nothing to confirm on a first scan";
  const auto b = store.baseline("fake", kHost);
  ASSERT_TRUE(b.exists);
  EXPECT_EQ(b.scan_id, r.scan_id);
  EXPECT_EQ(baseline_of(80)->state, PortState::open);
  EXPECT_EQ(baseline_of(22)->state, PortState::closed);
  EXPECT_EQ(store.scan(r.scan_id)->status, ScanStatus::complete);
  EXPECT_TRUE(store.events_after(0, 100).empty());

  // The same network again: still nothing.
  const auto again = run(config);
  ASSERT_TRUE(again.complete) << again.error;
  EXPECT_TRUE(again.events.empty());
  EXPECT_EQ(net.calls, 1);
}

TEST_F(JobRunnerTest, OpeningAndClosingAPortAreOneEventEach) {
  const auto config = make_config({});
  ASSERT_TRUE(run(config).complete);

  net.set(22, FakeBehavior::open);
  const auto opened = run(config);
  ASSERT_TRUE(opened.complete) << opened.error;
  EXPECT_EQ(net.calls, 3) << "main scan + 2 confirmation rounds";
  EXPECT_EQ(opened.changes_seen, 1u);
  EXPECT_EQ(opened.changes_unconfirmed, 0u);
  ASSERT_EQ(opened.events.size(), 1u);
  const auto& e = opened.events[0];
  EXPECT_EQ(e.job, "fake");
  EXPECT_EQ(e.host, kHost);
  EXPECT_EQ(e.change.proto, Proto::tcp);
  EXPECT_EQ(e.change.port, 22);
  EXPECT_EQ(e.change.from, PortState::closed);
  EXPECT_EQ(e.change.to, PortState::open);
  EXPECT_EQ(e.change.from_reason, Reason::reset);
  EXPECT_EQ(e.change.to_reason, Reason::syn_ack);
  EXPECT_FALSE(e.expected) << "no policy: an opened port is not expected";
  EXPECT_EQ(e.scan_id, opened.scan_id);
  EXPECT_GT(e.id, 0);
  const auto stored = store.events_after(0, 100);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].id, e.id);
  EXPECT_EQ(baseline_of(22)->state, PortState::open);

  // Unchanged: no event.
  EXPECT_TRUE(run(config).events.empty());

  net.set(22, FakeBehavior::closed);
  const auto closed = run(config);
  ASSERT_TRUE(closed.complete) << closed.error;
  ASSERT_EQ(closed.events.size(), 1u);
  const auto& c = closed.events[0];
  EXPECT_EQ(c.change.port, 22);
  EXPECT_EQ(c.change.from, PortState::open);
  EXPECT_EQ(c.change.to, PortState::closed);
  EXPECT_EQ(c.change.from_reason, Reason::syn_ack);
  EXPECT_EQ(c.change.to_reason, Reason::reset);
  EXPECT_TRUE(c.expected) << "no policy: closing is what the policy expects";
  EXPECT_EQ(c.scan_id, closed.scan_id);
  EXPECT_GT(c.id, e.id);
  EXPECT_EQ(store.events_after(0, 100).size(), 2u);
  EXPECT_EQ(baseline_of(22)->state, PortState::closed);
}

// Service identification (#12): the ports a run opens, and only those, are identified
// before the commit, and their events carry what answered.
TEST_F(JobRunnerTest, OpenedPortsAreIdentifiedBeforeTheirEventsAreWritten) {
  JobText j;
  j.extra = "never-probe = \"10001,20\"\n";
  const auto config = make_config(j);
  std::vector<std::vector<ServiceTarget>> calls;
  IdentifyOptions seen_options;
  JobEnvironment env{net.factory(), &stop, &quiet};
  env.identify = [&](const std::vector<ServiceTarget>& targets, const IdentifyOptions& o) {
    calls.push_back(targets);
    seen_options = o;
    std::vector<ServiceIdentity> out(targets.size());
    for (auto& s : out) {
      s.outcome = ServiceOutcome::identified;
      s.protocol = "ssh";
      s.banner = "SSH-2.0-Test";
    }
    return out;
  };
  net.set(80, FakeBehavior::open);
  ASSERT_TRUE(run_job(config, config.jobs.at(0), store, env).complete);
  EXPECT_TRUE(calls.empty()) << "a silent first baseline opens nothing";

  net.set(22, FakeBehavior::open);
  const auto opened = run_job(config, config.jobs.at(0), store, env);
  ASSERT_TRUE(opened.complete) << opened.error;
  ASSERT_EQ(calls.size(), 1u);
  ASSERT_EQ(calls[0].size(), 1u) << "only the port that opened, not 80";
  EXPECT_EQ(calls[0][0].address.to_string(), kHost);
  EXPECT_EQ(calls[0][0].port, 22);
  EXPECT_EQ(opened.services_identified, 1u);
  for (const int p : {20, 515, 631, 9100, 9107, 10001}) {
    EXPECT_NE(std::find(seen_options.never_probe.begin(), seen_options.never_probe.end(),
                        static_cast<std::uint16_t>(p)),
              seen_options.never_probe.end())
        << p;
  }
  EXPECT_TRUE(seen_options.scope.contains(asio::ip::make_address(kHost)));
  EXPECT_EQ(seen_options.stop, &stop);
  ASSERT_EQ(opened.events.size(), 1u);
  ASSERT_TRUE(opened.events[0].service);
  EXPECT_EQ(opened.events[0].service->banner, "SSH-2.0-Test");
  const auto stored = store.events_after(0, 100);
  ASSERT_EQ(stored.size(), 1u);
  ASSERT_TRUE(stored[0].service);
  EXPECT_EQ(stored[0].service->protocol, "ssh");

  // Nothing opened: nothing identified.
  calls.clear();
  EXPECT_TRUE(run_job(config, config.jobs.at(0), store, env).events.empty());
  EXPECT_TRUE(calls.empty());
  // A closing is not identified either.
  net.set(22, FakeBehavior::closed);
  const auto closed = run_job(config, config.jobs.at(0), store, env);
  ASSERT_EQ(closed.events.size(), 1u);
  EXPECT_FALSE(closed.events[0].service);
  EXPECT_TRUE(calls.empty());
}

// The metrics name what answered on an unexpected port (the dashboard's Service column),
// only from an event since the port last opened: a reopening nobody identified shows none.
TEST_F(JobRunnerTest, UnexpectedOpenPortsCarryTheirOpeningsServiceSummary) {
  const auto config = make_config({});
  JobEnvironment env{net.factory(), &stop, &quiet};
  env.identify = [&](const std::vector<ServiceTarget>& targets, const IdentifyOptions&) {
    std::vector<ServiceIdentity> out(targets.size());
    for (auto& s : out) {
      s.outcome = ServiceOutcome::identified;
      s.protocol = "ssh";
      s.banner = "SSH-2.0-Test\x1b[31m";  // as the target sent it: the label stays ASCII
    }
    return out;
  };
  const auto service_of = [](const JobRunResult& r,
                             std::uint16_t port) -> std::optional<std::string> {
    for (const auto& p : r.snapshot.open_ports) {
      if (p.port == port && p.proto == Proto::tcp) return p.service;
    }
    return std::nullopt;
  };
  ASSERT_TRUE(run_job(config, config.jobs.at(0), store, env).complete);
  net.set(22, FakeBehavior::open);
  const auto opened = run_job(config, config.jobs.at(0), store, env);
  ASSERT_TRUE(opened.complete) << opened.error;
  const auto label = service_of(opened, 22);
  ASSERT_TRUE(label);
  EXPECT_EQ(label->rfind("ssh: SSH-2.0-Test", 0), 0u) << *label;
  EXPECT_TRUE(std::all_of(label->begin(), label->end(), [](char c) {
    return c >= 0x20 && c < 0x7f;
  })) << *label;
  // Unchanged: still shown (the snapshot is rebuilt from the store at every scan).
  EXPECT_EQ(service_of(run_job(config, config.jobs.at(0), store, env), 22), label);
  // Closed, then reopened without identification: the old summary is not shown.
  net.set(22, FakeBehavior::closed);
  ASSERT_TRUE(run_job(config, config.jobs.at(0), store, env).complete);
  net.set(22, FakeBehavior::open);
  JobText off;
  off.extra = "identify-services = false\n";
  const auto blind = make_config(off);
  const auto reopened = run_job(blind, blind.jobs.at(0), store, env);
  ASSERT_TRUE(reopened.complete);
  ASSERT_EQ(reopened.events.size(), 1u);
  EXPECT_FALSE(reopened.events[0].service);
  EXPECT_EQ(service_of(reopened, 22), std::optional<std::string>(""));
}

TEST_F(JobRunnerTest, IdentifyServicesFalseSendsNothingAndKeepsTheEvent) {
  JobText j;
  j.extra = "identify-services = false\n";
  const auto config = make_config(j);
  int calls = 0;
  JobEnvironment env{net.factory(), &stop, &quiet};
  env.identify = [&](const std::vector<ServiceTarget>& targets, const IdentifyOptions&) {
    ++calls;
    return std::vector<ServiceIdentity>(targets.size());
  };
  ASSERT_TRUE(run_job(config, config.jobs.at(0), store, env).complete);
  net.set(22, FakeBehavior::open);
  const auto opened = run_job(config, config.jobs.at(0), store, env);
  ASSERT_EQ(opened.events.size(), 1u);
  EXPECT_FALSE(opened.events[0].service);
  EXPECT_EQ(calls, 0);
}

// Stopped while identifying (SIGTERM, a scan window closing): identification ends at once
// and the finished scan is still committed, its events without a service (a read cut short
// is not what answers there); a failing identification does the same.
TEST_F(JobRunnerTest, StopDuringIdentificationStillCommitsTheScan) {
  const auto config = make_config({});
  JobEnvironment env{net.factory(), &stop, &quiet};
  env.identify = [&](const std::vector<ServiceTarget>& targets, const IdentifyOptions&) {
    stop = true;  // arrives while the ports are read: the first was read, the rest were cut
    std::vector<ServiceIdentity> out(targets.size());
    for (auto& s : out) s.outcome = ServiceOutcome::not_probed;
    out.at(0).outcome = ServiceOutcome::identified;
    out.at(0).protocol = "ssh";
    return out;
  };
  ASSERT_TRUE(run_job(config, config.jobs.at(0), store, env).complete);
  net.set(22, FakeBehavior::open);
  net.set(23, FakeBehavior::open);
  const auto stopped = run_job(config, config.jobs.at(0), store, env);
  ASSERT_TRUE(stopped.complete) << stopped.error;
  ASSERT_EQ(stopped.events.size(), 2u);
  EXPECT_FALSE(stopped.events[0].service);
  EXPECT_FALSE(stopped.events[1].service) << "not reached is not \"never-probe\"";
  EXPECT_EQ(store.events_after(0, 100).size(), 2u);

  stop = false;
  env.identify = [&](const std::vector<ServiceTarget>&,
                     const IdentifyOptions&) -> std::vector<ServiceIdentity> {
    throw std::runtime_error("cannot create the TLS context");
  };
  net.set(24, FakeBehavior::open);
  const auto failed = run_job(config, config.jobs.at(0), store, env);
  ASSERT_TRUE(failed.complete) << failed.error;
  ASSERT_EQ(failed.events.size(), 1u);
  EXPECT_FALSE(failed.events[0].service);
}

// watch-services: open ports are read again once their last read is older than the
// interval; a differing read is read once more and only a confirmed one is an event.
TEST_F(JobRunnerTest, WatchedServicesChangeOnlyWhenTheSecondReadAgrees) {
  JobText j;
  j.extra = "watch-services = true\nwatch-services-interval = \"1s\"\n";
  const auto config = make_config(j);
  std::vector<std::string> servers;  // what port 80 answers, read by read; last one repeats
  std::size_t reads = 0;
  JobEnvironment env{net.factory(), &stop, &quiet};
  env.identify = [&](const std::vector<ServiceTarget>& targets, const IdentifyOptions&) {
    std::vector<ServiceIdentity> out(targets.size());
    for (auto& s : out) {
      s.outcome = ServiceOutcome::identified;
      s.protocol = "http";
      s.http = HttpHead{200, "HTTP/1.1 200 OK", servers.at(std::min(reads, servers.size() - 1))};
      ++reads;
    }
    return out;
  };
  const auto run_now = [&] { return run_job(config, config.jobs.at(0), store, env); };
  const auto wait_interval = [] { std::this_thread::sleep_for(std::chrono::milliseconds(1100)); };
  net.set(80, FakeBehavior::open);
  servers = {"nginx"};
  const auto first = run_now();
  ASSERT_TRUE(first.complete) << first.error;
  EXPECT_TRUE(first.events.empty());
  EXPECT_EQ(first.services_watched, 1u) << "the first read of an open port is stored silently";
  ASSERT_EQ(store.port_services("fake").size(), 1u);

  reads = 0;
  EXPECT_EQ(run_now().services_watched, 0u) << "read less than the interval ago";
  EXPECT_EQ(reads, 0u);

  // A blip: the first read differs, the re-check agrees with what was stored: no event.
  wait_interval();
  reads = 0;
  servers = {"Apache", "nginx"};
  const auto blip = run_now();
  EXPECT_TRUE(blip.events.empty());
  EXPECT_EQ(reads, 2u) << "one read and one re-check";
  EXPECT_EQ(store.port_services("fake").at(0).identity.http->server, "nginx");

  // A real change: both reads agree on the new server.
  wait_interval();
  reads = 0;
  servers = {"Apache"};
  const auto changed = run_now();
  ASSERT_EQ(changed.events.size(), 1u);
  const auto& e = changed.events[0];
  EXPECT_EQ(e.kind, EventKind::service_changed);
  EXPECT_EQ(e.change.port, 80);
  EXPECT_TRUE(e.expected) << "no policy: 80 was open at the first scan, so accepted";
  ASSERT_TRUE(e.service && e.previous_service);
  EXPECT_EQ(e.service->http->server, "Apache");
  EXPECT_EQ(e.previous_service->http->server, "nginx");
  EXPECT_EQ(store.port_services("fake").at(0).identity.http->server, "Apache");

  // Unchanged afterwards: no more events.
  wait_interval();
  EXPECT_TRUE(run_now().events.empty());
}

TEST_F(JobRunnerTest, ChangeSeenOnlyByTheMainScanIsNoEvent) {
  const auto config = make_config({});
  const auto first = run(config);
  ASSERT_TRUE(first.complete);

  // Port 25 is open during the main scan and closed again for the re-probes.
  net.on_call = [](int call, FakeNetworkConfig& c) {
    FakeNet::set_in(c, 25, call == 1 ? FakeBehavior::open : FakeBehavior::closed);
  };
  const auto flap = run(config);
  ASSERT_TRUE(flap.complete) << flap.error;
  EXPECT_EQ(flap.changes_seen, 1u);
  EXPECT_EQ(flap.changes_unconfirmed, 1u);
  EXPECT_TRUE(flap.events.empty());
  EXPECT_TRUE(store.events_after(0, 100).empty());
  EXPECT_EQ(baseline_of(25)->state, PortState::closed)
      << "an unconfirmed change moved the baseline";
  EXPECT_TRUE(store.history({.port = 25}).empty()) << "an unconfirmed change was recorded";

  // The network as it really is (closed): no event either.
  const auto after = run(config);
  ASSERT_TRUE(after.complete);
  EXPECT_EQ(after.changes_seen, 0u);
  EXPECT_TRUE(after.events.empty());
  EXPECT_TRUE(store.events_after(0, 100).empty());
}

TEST_F(JobRunnerTest, ChangeMustHoldForEveryConfirmationRound) {
  const auto config = make_config({});
  ASSERT_TRUE(run(config).complete);

  // Open for the main scan and the first re-probe, closed for the second.
  net.on_call = [](int call, FakeNetworkConfig& c) {
    FakeNet::set_in(c, 25, call <= 2 ? FakeBehavior::open : FakeBehavior::closed);
  };
  const auto r = run(config);
  ASSERT_TRUE(r.complete) << r.error;
  EXPECT_EQ(net.calls, 3);
  EXPECT_EQ(r.changes_seen, 1u);
  EXPECT_EQ(r.changes_unconfirmed, 1u);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(baseline_of(25)->state, PortState::closed);

  // A close of an open port that does not hold either.
  net.set(80, FakeBehavior::open);
  net.set(25, FakeBehavior::closed);
  ASSERT_EQ(run(config).events.size(), 1u);  // 80 closed -> open, confirmed
  net.on_call = [](int call, FakeNetworkConfig& c) {
    FakeNet::set_in(c, 80, call == 2 ? FakeBehavior::open : FakeBehavior::closed);
  };
  const auto r2 = run(config);
  EXPECT_EQ(r2.changes_unconfirmed, 1u);
  EXPECT_TRUE(r2.events.empty());
  EXPECT_EQ(baseline_of(80)->state, PortState::open);
}

TEST_F(JobRunnerTest, OnlyTheUnconfirmedPortIsReverted) {
  const auto config = make_config({});
  ASSERT_TRUE(run(config).complete);
  // 22 opens for real; 23 only flickers during the main scan.
  net.set(22, FakeBehavior::open);
  net.on_call = [](int call, FakeNetworkConfig& c) {
    FakeNet::set_in(c, 23, call == 1 ? FakeBehavior::open : FakeBehavior::closed);
  };
  const auto r = run(config);
  ASSERT_TRUE(r.complete) << r.error;
  EXPECT_EQ(r.changes_seen, 2u);
  EXPECT_EQ(r.changes_unconfirmed, 1u);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].change.port, 22);
  EXPECT_EQ(baseline_of(22)->state, PortState::open);
  EXPECT_EQ(baseline_of(23)->state, PortState::closed);
}

TEST_F(JobRunnerTest, ZeroConfirmationsReportAtOnce) {
  JobText j;
  j.confirmations = 0;
  const auto config = make_config(j);
  ASSERT_TRUE(run(config).complete);
  net.set(443, FakeBehavior::open);
  const auto r = run(config);
  EXPECT_EQ(net.calls, 1);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].change.port, 443);
}

TEST_F(JobRunnerTest, LossOverManyCyclesOfAnUnchangedNetworkIsSilent) {
  const auto config = make_config({});
  net.set(22, FakeBehavior::open);
  net.set(80, FakeBehavior::open);
  const auto first = run(config);  // a clean baseline
  ASSERT_TRUE(first.complete);
  ASSERT_TRUE(store.baseline("fake", kHost).exists);

  net.config.probe_loss = 0.1;
  net.config.reply_loss = 0.1;
  std::size_t seen = 0;
  std::size_t inconclusive = 0;
  for (int cycle = 0; cycle < 30; ++cycle) {
    SCOPED_TRACE(cycle);
    const auto r = run(config);
    ASSERT_TRUE(r.complete) << r.error;
    EXPECT_TRUE(r.events.empty());
    seen += r.changes_seen;
    inconclusive += r.hosts_inconclusive;
  }
  EXPECT_TRUE(store.events_after(0, 1000).empty());
  EXPECT_TRUE(store.history({}).empty());
  EXPECT_EQ(baseline_of(22)->state, PortState::open);
  EXPECT_EQ(baseline_of(80)->state, PortState::open);
  EXPECT_EQ(baseline_of(21)->state, PortState::closed);
  std::cout << "[ info     ] 30 lossy cycles: " << seen << " changes seen (all unconfirmed), "
            << inconclusive << " inconclusive hosts\n";
}

TEST_F(JobRunnerTest, InconclusiveHostIsNotComparedAndKeepsTheBaseline) {
  JobText j;
  j.technique = "udp";
  j.ports = "1-600";
  j.extra = "udp-pace = \"off\"\n";  // the fast scan: rate limiting leaves it inconclusive
  const auto config = make_config(j);
  net.set(53, FakeBehavior::open, Proto::udp);
  const auto first = run(config);
  ASSERT_TRUE(first.complete) << first.error;
  ASSERT_EQ(first.hosts_inconclusive, 0u);
  ASSERT_TRUE(store.baseline("fake", kHost).exists);
  ASSERT_EQ(baseline_of(53, Proto::udp)->state, PortState::open);

  // Linux's per-peer ICMP rate limit (one a second after a burst of 6) hides most "port
  // unreachable" answers: silence is no proof.
  net.config.icmp_per_second = 1;
  net.config.icmp_burst = 6;
  const auto limited = run(config);
  ASSERT_TRUE(limited.complete) << limited.error;
  EXPECT_EQ(limited.hosts_inconclusive, 1u);
  EXPECT_TRUE(limited.events.empty());
  EXPECT_EQ(limited.changes_seen, 0u);
  EXPECT_EQ(net.calls, 1) << "an inconclusive host must not be re-probed as if it changed";
  const auto b = store.baseline("fake", kHost);
  EXPECT_EQ(b.scan_id, first.scan_id) << "an inconclusive host moved the baseline";
  EXPECT_EQ(baseline_of(100, Proto::udp)->state, PortState::closed);
  const auto rec = store.scan(limited.scan_id);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->hosts_total, 1u);
  EXPECT_EQ(rec->hosts_complete, 0u);
  EXPECT_TRUE(store.events_after(0, 100).empty());
  EXPECT_TRUE(store.history({}).empty());
}

// Paced UDP against a host that limits its ICMP errors (a burst of 6, then one per 50 ms:
// Linux's limit sped up 20 times): every port settles exactly, a third of the ports per scan
// (udp-coverage = 3 intervals), with no inconclusive scan and no false event; a responder
// that starts later is one event, when its port's turn comes.
TEST_F(JobRunnerTest, PacedUdpCoversEveryPortExactlyAcrossScans) {
  JobText j;
  j.technique = "udp";
  j.ports = "1-40,53,69";
  j.extra = "udp-pace = \"55ms\"\nudp-coverage = \"3m\"\n";
  net.config.icmp_per_second = 20;
  net.config.icmp_burst = 6;
  net.set(53, FakeBehavior::open, Proto::udp);
  net.set(69, FakeBehavior::drop, Proto::udp);
  const auto config = make_config(j);
  std::set<std::uint16_t> covered;
  for (int scan = 0; scan < 3; ++scan) {
    const auto r = run(config);
    ASSERT_TRUE(r.complete) << r.error;
    EXPECT_EQ(r.hosts_inconclusive, 0u) << "scan " << scan;
    EXPECT_TRUE(r.events.empty()) << "scan " << scan;
    EXPECT_EQ(r.udp_ports_scanned, 14u);
    EXPECT_GT(r.summary.counters.rate_limited_probes, 0u) << "scan " << scan;
    ASSERT_TRUE(r.udp_coverage.has_value());
    EXPECT_EQ(r.udp_coverage->ports, 42u);
  }
  const auto settled =
      run_job(config, config.jobs.at(0), store, JobEnvironment{net.factory(), &stop, &quiet});
  ASSERT_TRUE(settled.udp_coverage.has_value());
  EXPECT_EQ(settled.udp_coverage->verified, 42u) << "every port within one coverage period";
  const double now_s =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LT(now_s - settled.udp_coverage->oldest_verification, 180.0);
  for (std::uint16_t port = 1; port <= 40; ++port) {
    const auto b = baseline_of(port, Proto::udp);
    ASSERT_TRUE(b.has_value()) << port;
    EXPECT_EQ(b->state, PortState::closed) << port;
  }
  EXPECT_EQ(baseline_of(53, Proto::udp)->state, PortState::open);
  EXPECT_EQ(baseline_of(69, Proto::udp)->state, PortState::open_filtered);
  EXPECT_TRUE(store.events_after(0, 100).empty());

  net.set(7, FakeBehavior::open, Proto::udp);
  std::vector<ChangeEvent> events;
  for (int scan = 0; scan < 3; ++scan) {
    const auto r = run(config);
    ASSERT_TRUE(r.complete) << r.error;
    EXPECT_EQ(r.hosts_inconclusive, 0u);
    events.insert(events.end(), r.events.begin(), r.events.end());
  }
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].change.port, 7);
  EXPECT_EQ(events[0].change.from, PortState::closed);
  EXPECT_EQ(events[0].change.to, PortState::open);
  EXPECT_EQ(baseline_of(7, Proto::udp)->state, PortState::open);
}

// A host whose ICMP limit is much slower than the pace: its paced probing runs out of the
// budget (80% of the 1s interval). The ports it verified are compared and stored, the host
// counts as inconclusive, nothing is an event, and the ports left over come first next time,
// so the rotation moves on.
TEST_F(JobRunnerTest, PacedUdpOutOfBudgetStoresWhatItVerified) {
  JobText j;
  j.technique = "udp";
  j.ports = "1-28";
  j.extra = "udp-pace = \"55ms\"\nudp-coverage = \"2s\"\n";
  j.interval = "1s";  // share 14, budget 0.8 s
  const auto config = make_config(j);
  net.config.icmp_per_second = 4;
  net.config.icmp_burst = 6;
  const auto first = run(config);
  ASSERT_TRUE(first.complete) << first.error;
  EXPECT_EQ(first.udp_ports_scanned, 14u);
  EXPECT_EQ(first.hosts_inconclusive, 1u);
  EXPECT_TRUE(first.events.empty());
  const auto stored = store.baseline("fake", kHost);
  ASSERT_TRUE(stored.exists) << "the verified ports are stored";
  const std::size_t verified = stored.find(Proto::udp)->port_count();
  EXPECT_GT(verified, 0u);
  EXPECT_LT(verified, 14u);
  for (std::uint16_t port = 1; port <= 28; ++port) {
    if (const auto b = baseline_of(port, Proto::udp)) {
      EXPECT_EQ(b->state, PortState::closed) << port;
    }
  }
  // The next scans take the ports never verified first: after a few, every port is stored.
  for (int scan = 0; scan < 8 && store.baseline("fake", kHost).find(Proto::udp)->port_count() < 28;
       ++scan) {
    const auto r = run(config);
    ASSERT_TRUE(r.complete) << r.error;
    EXPECT_TRUE(r.events.empty());
  }
  EXPECT_EQ(store.baseline("fake", kHost).find(Proto::udp)->port_count(), 28u);
}

// A host that stops answering altogether (powered off, cut off) would turn every port
// "filtered": it is recorded as an incomplete host, compared with nothing, and keeps its
// baseline until it answers again.
TEST_F(JobRunnerTest, HostThatAnswersNothingIsDownNotChanged) {
  const auto config = make_config({});
  net.set(80, FakeBehavior::open);
  const auto first = run(config);
  ASSERT_TRUE(first.complete) << first.error;
  for (const auto silence : {FakeBehavior::drop, FakeBehavior::reject_host}) {
    SCOPED_TRACE(silence == FakeBehavior::drop ? "silent" : "router: host unreachable");
    net.config.hosts[0].default_tcp = silence;
    net.set(80, silence);
    const auto down = run(config);
    ASSERT_TRUE(down.complete) << down.error;
    EXPECT_EQ(down.hosts_down, 1u);
    EXPECT_EQ(down.changes_seen, 0u);
    EXPECT_TRUE(down.events.empty());
    EXPECT_EQ(net.calls, 1) << "a down host must not be re-probed as if it changed";
    EXPECT_EQ(store.baseline("fake", kHost).scan_id, first.scan_id);
    EXPECT_EQ(store.scan(down.scan_id)->hosts_complete, 0u);
  }
  // Back up as it was: nothing happened.
  net.config.hosts[0].default_tcp = FakeBehavior::closed;
  net.set(80, FakeBehavior::open);
  const auto back = run(config);
  EXPECT_EQ(back.hosts_down, 0u);
  EXPECT_TRUE(back.events.empty());
  EXPECT_TRUE(store.history({}).empty());
}

TEST_F(JobRunnerTest, HostDownAtItsFirstScanGetsNoBaseline) {
  const auto config = make_config({});
  net.config.hosts[0].default_tcp = FakeBehavior::drop;
  const auto down = run(config);
  ASSERT_TRUE(down.complete) << down.error;
  // Never seen up: an unused address, not a host that is down.
  EXPECT_EQ(down.hosts_down, 0u);
  EXPECT_EQ(down.addresses_unused, 1u);
  EXPECT_FALSE(store.baseline("fake", kHost).exists);
  EXPECT_FALSE(store.known_host("fake", kHost));
  // When it comes up, that first answered scan is the silent baseline.
  net.config.hosts[0].default_tcp = FakeBehavior::closed;
  net.set(80, FakeBehavior::open);
  const auto up = run(config);
  EXPECT_TRUE(up.events.empty());
  EXPECT_TRUE(store.baseline("fake", kHost).exists);
}

// To FIN an open port is silent: a host whose every scanned port is open answers nothing
// and is still up. The TCP ACK liveness check (ports 80 and 443 draw RSTs) tells it from a
// host that is down, so its openings are reported and it gets a baseline.
TEST_F(JobRunnerTest, FinHostAnsweringNothingIsCheckedForLife) {
  JobText j;
  j.technique = "fin";
  j.ports = "22,443";
  const auto config = make_config(j);
  net.set(22, FakeBehavior::open);  // 443 closed: the only answer
  ASSERT_TRUE(run(config).complete);
  ASSERT_EQ(baseline_of(443)->state, PortState::closed);

  net.set(443, FakeBehavior::open);  // now every scanned port is silent
  const auto opened = run(config);
  EXPECT_EQ(opened.hosts_down, 0u);
  ASSERT_EQ(opened.events.size(), 1u);
  EXPECT_EQ(opened.events[0].change.port, 443);
  EXPECT_EQ(opened.events[0].change.to, PortState::open_filtered);

  // The same host down: no answer to FIN nor to the ACKs. No event, baseline kept.
  net.config.hosts[0].default_tcp = FakeBehavior::drop;
  net.set(22, FakeBehavior::drop);
  net.set(443, FakeBehavior::drop);
  const auto down = run(config);
  EXPECT_EQ(down.hosts_down, 1u);
  EXPECT_TRUE(down.events.empty());
  EXPECT_EQ(baseline_of(443)->state, PortState::open_filtered);

  // A first scan of a host with every port open: it is up, so it becomes the baseline.
  Store fresh = Store::open(":memory:");
  std::swap(store, fresh);
  net.config.hosts[0].default_tcp = FakeBehavior::open;
  net.set(22, FakeBehavior::open);
  net.set(443, FakeBehavior::open);
  const auto first = run(config);
  EXPECT_EQ(first.hosts_down, 0u);
  EXPECT_TRUE(store.baseline("fake", kHost).exists);
}

// The canaries must be ports the confirm technique hears back from: FIN gets nothing from
// an open port, so with only open ports besides the change there is no canary, rather
// than two that would discard every round.
TEST_F(JobRunnerTest, CanariesAreChosenForTheConfirmTechnique) {
  JobText j;
  j.ports = "22,25,80,443";
  j.extra = "confirm-technique = \"fin\"\n";
  const auto config = make_config(j);
  for (const int p : {22, 80, 443}) net.set(static_cast<std::uint16_t>(p), FakeBehavior::open);
  ASSERT_TRUE(run(config).complete);
  net.set(25, FakeBehavior::open);
  const auto r = run(config);
  EXPECT_EQ(r.changes_unconfirmed, 0u);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].change.port, 25);
}

// Port 80 went silent in the main scan; during the re-probes the whole host goes quiet. Its
// silence on 80 then proves nothing: the canary ports (answered before, not changed) stay
// silent too, so the change is not confirmed.
TEST_F(JobRunnerTest, HostGoingQuietDuringConfirmationConfirmsNothing) {
  const auto config = make_config({});
  net.set(80, FakeBehavior::open);
  ASSERT_TRUE(run(config).complete);
  net.on_call = [](int call, FakeNetworkConfig& c) {
    FakeNet::set_in(c, 80, FakeBehavior::drop);
    c.hosts[0].default_tcp = call == 1 ? FakeBehavior::closed : FakeBehavior::drop;
  };
  const auto r = run(config);
  ASSERT_TRUE(r.complete) << r.error;
  EXPECT_EQ(r.changes_seen, 1u);
  EXPECT_EQ(r.changes_unconfirmed, 1u);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(baseline_of(80)->state, PortState::open);

  // The same change with the host up throughout is confirmed: the canaries are what made
  // the difference above.
  net.config.hosts[0].default_tcp = FakeBehavior::closed;
  net.set(80, FakeBehavior::drop);
  const auto real = run(config);
  ASSERT_EQ(real.events.size(), 1u);
  EXPECT_EQ(real.events[0].change.to, PortState::filtered);
}

// confirm-technique: another technique's answer must fit the new state and rule out the
// old one. Here SYN's closed -> filtered (lost RSTs) is re-probed with ACK, which gets RSTs
// (unfiltered: open or closed): not confirmed. Comparing only "open or not" would have
// confirmed it, since neither state is open.
TEST_F(JobRunnerTest, ConfirmTechniqueMustRuleOutTheOldState) {
  JobText j;
  j.extra = "confirm-technique = \"ack\"\n";
  const auto config = make_config(j);
  ASSERT_TRUE(run(config).complete);
  net.on_call = [](int call, FakeNetworkConfig& c) {
    FakeNet::set_in(c, 25, call == 1 ? FakeBehavior::drop : FakeBehavior::closed);
  };
  const auto lost = run(config);
  EXPECT_EQ(lost.changes_seen, 1u);
  EXPECT_EQ(lost.changes_unconfirmed, 1u);
  EXPECT_TRUE(lost.events.empty());
  EXPECT_EQ(baseline_of(25)->state, PortState::closed);

  // A real filter on 25: ACK is dropped as well, which rules out "closed".
  net.set(25, FakeBehavior::drop);
  const auto filtered = run(config);
  ASSERT_EQ(filtered.events.size(), 1u);
  EXPECT_EQ(filtered.events[0].change.to, PortState::filtered);

  // ACK cannot tell open from closed (both RST): closed -> open is never confirmed by it.
  net.set(22, FakeBehavior::open);
  const auto opened = run(config);
  EXPECT_EQ(opened.changes_seen, 1u);
  EXPECT_TRUE(opened.events.empty());
}

// FIN re-probes confirm SYN's closed -> open: "open|filtered" fits open and rules out
// closed; a port that still answers RST to FIN is not confirmed.
TEST_F(JobRunnerTest, ConfirmTechniqueFinConfirmsAnOpening) {
  JobText j;
  j.extra = "confirm-technique = \"fin\"\n";
  const auto config = make_config(j);
  ASSERT_TRUE(run(config).complete);
  net.on_call = [](int call, FakeNetworkConfig& c) {
    FakeNet::set_in(c, 23, call == 1 ? FakeBehavior::open : FakeBehavior::closed);
  };
  const auto flicker = run(config);
  EXPECT_EQ(flicker.changes_unconfirmed, 1u);
  EXPECT_TRUE(flicker.events.empty());
  net.set(23, FakeBehavior::open);
  const auto opened = run(config);
  ASSERT_EQ(opened.events.size(), 1u);
  EXPECT_EQ(opened.events[0].change.port, 23);
  EXPECT_EQ(opened.events[0].change.to, PortState::open);
}

// config/src/agent_config.cpp checks min-rtt-timeout <= max-rtt-timeout against the
// scanner's defaults when a job sets only one of them; they must stay in step.
TEST(JobTiming, ConfigKnowsTheScannersRttDefaults) {
  const TimingOptions t;
  EXPECT_EQ(t.min_rtt_timeout.count(), 0.1);
  EXPECT_EQ(t.max_rtt_timeout.count(), 1.25);
  EXPECT_THROW((void)parse_config("[[authorization]]\nnetworks = [\"198.18.0.0/24\"]\n[[job]]\n"
                                  "name = \"j\"\ntargets = [\"198.18.0.1\"]\ninterval = \"1m\"\n"
                                  "min-rtt-timeout = \"1.3s\"\n",
                                  "t.toml"),
               InputError);
}

// Every timing key of a job reaches the engine's TimingOptions; unset ones keep the
// scanner's defaults.
TEST(JobTiming, EveryKeyReachesTheEngine) {
  JobText j;
  j.extra =
      "max-rate = 300\nmin-rate = 20\nmax-retries = 4\nhost-timeout = \"90s\"\n"
      "initial-rtt-timeout = \"200ms\"\nmin-rtt-timeout = \"50ms\"\nmax-rtt-timeout = "
      "\"300ms\"\nmax-parallelism = 8\n";
  const TimingOptions t = job_timing(make_config(j).jobs.at(0));
  EXPECT_EQ(t.max_rate, 300);
  EXPECT_EQ(t.min_rate, 20);
  EXPECT_EQ(t.max_retries, 4);
  EXPECT_EQ(t.host_timeout.count(), 90);
  EXPECT_EQ(t.initial_rtt_timeout.count(), 0.2);
  EXPECT_EQ(t.min_rtt_timeout.count(), 0.05);
  EXPECT_EQ(t.max_rtt_timeout.count(), 0.3);
  EXPECT_EQ(t.max_parallelism, 8u);
  const TimingOptions defaults = job_timing(make_config({}).jobs.at(0));
  const TimingOptions scanner;
  EXPECT_EQ(defaults.initial_rtt_timeout, scanner.initial_rtt_timeout);
  EXPECT_EQ(defaults.max_rtt_timeout, scanner.max_rtt_timeout);
  EXPECT_EQ(defaults.max_parallelism, scanner.max_parallelism);
}

TEST_F(JobRunnerTest, ExpectedOpenPolicy) {
  JobText j;
  j.extra = "expected-open = [\"22/tcp\"]\n";
  const auto config = make_config(j);
  ASSERT_TRUE(run(config).complete);

  net.set(22, FakeBehavior::open);
  net.set(80, FakeBehavior::open);
  const auto opened = run(config);
  ASSERT_EQ(opened.events.size(), 2u);
  EXPECT_EQ(opened.events[0].change.port, 22);
  EXPECT_TRUE(opened.events[0].expected) << "22/tcp is listed in expected-open";
  EXPECT_EQ(opened.events[1].change.port, 80);
  EXPECT_FALSE(opened.events[1].expected);

  net.set(22, FakeBehavior::closed);
  net.set(80, FakeBehavior::closed);
  const auto closed = run(config);
  ASSERT_EQ(closed.events.size(), 2u);
  EXPECT_EQ(closed.events[0].change.port, 22);
  EXPECT_FALSE(closed.events[0].expected) << "an expected-open port closing is unexpected";
  EXPECT_EQ(closed.events[1].change.port, 80);
  EXPECT_TRUE(closed.events[1].expected);
}

TEST_F(JobRunnerTest, ExpectedOpenPerHostTable) {
  JobText j;
  j.targets = "\"198.18.0.2\", \"198.18.0.3\"";
  j.extra = "expected-open = { \"198.18.0.3\" = [\"80/tcp\"] }\n";
  const auto config = make_config(j);
  FakeHost other;
  other.address = asio::ip::make_address("198.18.0.3");
  net.config.hosts.push_back(other);
  ASSERT_TRUE(run(config).complete);
  net.set(80, FakeBehavior::open);
  net.config.hosts[1].ports[{Proto::tcp, 80}] = FakeBehavior::open;
  const auto r = run(config);
  ASSERT_EQ(r.events.size(), 2u);
  for (const auto& e : r.events) {
    EXPECT_EQ(e.change.port, 80);
    EXPECT_EQ(e.expected, e.host == "198.18.0.3") << e.host;
  }
}

TEST_F(JobRunnerTest, AcceptedBaseline) {
  const auto config = make_config({});
  ASSERT_TRUE(run(config).complete);
  net.set(80, FakeBehavior::open);
  const auto opened = run(config);
  ASSERT_EQ(opened.events.size(), 1u);
  EXPECT_FALSE(opened.events[0].expected);

  const auto accepted = store.accept_baseline({});
  EXPECT_EQ(accepted.accepted, 1u);
  ASSERT_TRUE(store.is_accepted("fake", kHost, Proto::tcp, 80));

  // expected == (new state open) == (policy expects open || accepted)
  net.set(80, FakeBehavior::closed);
  const auto closed = run(config);
  ASSERT_EQ(closed.events.size(), 1u);
  EXPECT_FALSE(closed.events[0].expected) << "an accepted port closing is unexpected";
  EXPECT_TRUE(store.is_accepted("fake", kHost, Proto::tcp, 80)) << "acceptance survives a close";

  net.set(80, FakeBehavior::open);
  const auto reopened = run(config);
  ASSERT_EQ(reopened.events.size(), 1u);
  EXPECT_TRUE(reopened.events[0].expected) << "an accepted port opening is expected";

  net.set(443, FakeBehavior::open);
  const auto other = run(config);
  ASSERT_EQ(other.events.size(), 1u);
  EXPECT_EQ(other.events[0].change.port, 443);
  EXPECT_FALSE(other.events[0].expected) << "acceptance is per port";
}

TEST_F(JobRunnerTest, WithoutPolicyWhatTheFirstScanFindsOpenIsAccepted) {
  const auto config = make_config({});
  net.set(80, FakeBehavior::open);
  const auto first = run(config);
  ASSERT_TRUE(first.complete) << first.error;
  EXPECT_TRUE(first.events.empty());
  EXPECT_TRUE(store.is_accepted("fake", kHost, Proto::tcp, 80));
  EXPECT_FALSE(store.is_accepted("fake", kHost, Proto::tcp, 22));
  ASSERT_EQ(first.snapshot.open_ports.size(), 1u);
  EXPECT_EQ(first.snapshot.open_ports[0].port, 80);
  EXPECT_FALSE(first.snapshot.open_ports[0].unexpected);

  // expected == (new state open) == (policy expects open || accepted)
  net.set(80, FakeBehavior::closed);
  net.set(22, FakeBehavior::open);
  const auto r = run(config);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0].change.port, 22);
  EXPECT_FALSE(r.events[0].expected);
  EXPECT_EQ(r.events[1].change.port, 80);
  EXPECT_FALSE(r.events[1].expected) << "a port open since the first scan closed";
  ASSERT_EQ(r.snapshot.open_ports.size(), 1u);
  EXPECT_EQ(r.snapshot.open_ports[0].port, 22);
  EXPECT_TRUE(r.snapshot.open_ports[0].unexpected);
  // Open since its change to open (the event's time); expected ports carry no time.
  ASSERT_TRUE(r.snapshot.open_ports[0].open_since.has_value());
  EXPECT_EQ(std::chrono::floor<std::chrono::milliseconds>(*r.snapshot.open_ports[0].open_since),
            std::chrono::floor<std::chrono::milliseconds>(r.events[0].time));
  EXPECT_FALSE(first.snapshot.open_ports[0].open_since.has_value());

  // Only the first complete scan of a host accepts: 22 stays unaccepted.
  EXPECT_FALSE(store.is_accepted("fake", kHost, Proto::tcp, 22));
  net.set(80, FakeBehavior::open);
  const auto back = run(config);
  ASSERT_EQ(back.events.size(), 1u);
  EXPECT_TRUE(back.events[0].expected);
}

TEST_F(JobRunnerTest, WithPolicyTheFirstScanAcceptsNothing) {
  JobText j;
  j.extra = "expected-open = [\"22/tcp\"]\n";
  const auto config = make_config(j);
  net.set(80, FakeBehavior::open);
  ASSERT_TRUE(run(config).complete);
  EXPECT_TRUE(store.accepted_ports({}).empty());
  net.set(80, FakeBehavior::closed);
  const auto r = run(config);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_TRUE(r.events[0].expected) << "the policy does not expect 80 open";
}

TEST_F(JobRunnerTest, ExpiredAuthorizationIsNotScanned) {
  JobText j;
  j.targets = "\"198.18.0.2\", \"198.18.0.3\"";
  j.authorization =
      "[[authorization]]\nnetworks = [\"198.18.0.2/32\"]\nowner = \"old\"\nticket = "
      "\"CHG-1\"\nexpires = 2001-01-01\n\n"
      "[[authorization]]\nnetworks = [\"198.18.0.3/32\"]\n";
  const auto config = make_config(j);
  EXPECT_FALSE(config.warnings.empty()) << "an expired authorization loads with a warning";
  FakeHost other;
  other.address = asio::ip::make_address("198.18.0.3");
  net.config.hosts.push_back(other);

  Logger warn_log(LogLevel::warn);
  net.calls = 0;
  testing::internal::CaptureStderr();
  const auto r =
      run_job(config, config.jobs.at(0), store, JobEnvironment{net.factory(), &stop, &warn_log});
  const std::string err = testing::internal::GetCapturedStderr();

  for (const auto& dst : net.log->probed) {
    EXPECT_EQ(dst.to_string(), "198.18.0.3") << "probed a host whose authorization expired";
  }
  EXPECT_FALSE(net.log->probed.empty()) << "the still-authorized host was not scanned";
  EXPECT_NE(err.find("expired"), std::string::npos) << err;
  EXPECT_NE(err.find("CHG-1"), std::string::npos) << err;
  EXPECT_NE(err.find("1 of 2 target addresses are outside every active authorization"),
            std::string::npos)
      << err;
  EXPECT_EQ(r.targets_refused, 1u);
  EXPECT_FALSE(store.baseline("fake", "198.18.0.2").exists);
  EXPECT_TRUE(store.baseline("fake", "198.18.0.3").exists);
  const auto rec = store.scan(r.scan_id);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->hosts_total, 2u);
  EXPECT_EQ(rec->hosts_complete, 1u);
  EXPECT_TRUE(r.events.empty());
}

TEST_F(JobRunnerTest, OnlyExpiredAuthorizationScansNothing) {
  JobText j;
  j.authorization = "[[authorization]]\nnetworks = [\"198.18.0.0/16\"]\nexpires = 2001-01-01\n";
  const auto config = make_config(j);
  net.set(22, FakeBehavior::open);
  const auto r = run(config);
  EXPECT_TRUE(net.log->probed.empty()) << net.log->probed.size() << " probes sent";
  EXPECT_TRUE(r.events.empty());
  EXPECT_FALSE(store.baseline("fake", kHost).exists);
  // Nothing scanned because of scope is a failed scan (portvigil_scan_success 0), not an
  // empty success that keeps every health metric green.
  EXPECT_FALSE(r.complete);
  EXPECT_EQ(r.targets_refused, 1u);
  EXPECT_NE(r.error.find("nothing scanned"), std::string::npos) << r.error;
  const auto rec = store.scan(r.scan_id);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->hosts_complete, 0u);
  EXPECT_EQ(rec->status, ScanStatus::incomplete);
}

TEST_F(JobRunnerTest, StopBeforeRunIsIncompleteAndNeverABaseline) {
  const auto config = make_config({});
  stop = true;
  const auto r = run(config);
  EXPECT_FALSE(r.complete);
  EXPECT_FALSE(r.error.empty());
  EXPECT_TRUE(r.events.empty());
  const auto rec = store.scan(r.scan_id);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->status, ScanStatus::incomplete);
  EXPECT_FALSE(rec->note.empty());
  EXPECT_FALSE(store.baseline("fake", kHost).exists);

  // The next scan is still the first complete one: silent.
  stop = false;
  net.set(22, FakeBehavior::open);
  const auto next = run(config);
  ASSERT_TRUE(next.complete) << next.error;
  EXPECT_TRUE(next.events.empty());
  EXPECT_EQ(store.baseline("fake", kHost).scan_id, next.scan_id);
}

TEST_F(JobRunnerTest, StopDuringMainScanIsIncomplete) {
  const auto config = make_config({});
  net.set(22, FakeBehavior::open);
  net.on_call = [this](int, FakeNetworkConfig&) { stop = true; };  // the engine is running
  const auto r = run(config);
  EXPECT_FALSE(r.complete);
  EXPECT_EQ(store.scan(r.scan_id)->status, ScanStatus::incomplete);
  EXPECT_FALSE(store.baseline("fake", kHost).exists);
  stop = false;
  const auto next = run(config);
  ASSERT_TRUE(next.complete) << next.error;
  EXPECT_TRUE(next.events.empty()) << "the first complete scan must be silent";
}

TEST_F(JobRunnerTest, StopDuringConfirmationWritesNoEvent) {
  const auto config = make_config({});
  const auto first = run(config);
  ASSERT_TRUE(first.complete);
  net.set(22, FakeBehavior::open);
  net.on_call = [this](int call, FakeNetworkConfig&) {
    if (call == 2) stop = true;  // SIGTERM during the first re-probe
  };
  const auto r = run(config);
  EXPECT_FALSE(r.complete);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(store.scan(r.scan_id)->status, ScanStatus::incomplete);
  EXPECT_TRUE(store.events_after(0, 100).empty());
  EXPECT_EQ(store.baseline("fake", kHost).scan_id, first.scan_id);
  EXPECT_EQ(baseline_of(22)->state, PortState::closed);

  stop = false;
  const auto next = run(config);
  ASSERT_TRUE(next.complete) << next.error;
  ASSERT_EQ(next.events.size(), 1u) << "the change is reported by the next complete scan";
  EXPECT_EQ(next.events[0].change.port, 22);
}

TEST_F(JobRunnerTest, BadJobInputIsAnIncompleteScan) {
  // A hostname that cannot resolve: the run reports it and the row is incomplete.
  JobText j;
  j.targets = "\"no-such-host.invalid\"";
  const auto config = make_config(j);
  const auto r = run(config);
  EXPECT_FALSE(r.complete);
  EXPECT_FALSE(r.error.empty());
  const auto rec = store.scan(r.scan_id);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->status, ScanStatus::incomplete);
}

// ---- connect technique on loopback --------------------------------------------------------

TEST(JobRunnerLoopback, ListenerAppearingIsOneConfirmedEvent) {
  test::LoopbackListener watched;
  const auto port = watched.port();
  watched.close();
  // What the opened port's event says answered there (real identification on loopback).
  watched.greeting = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";
  const auto other = test::free_loopback_port();
  const std::string ports = std::to_string(port) + "," + std::to_string(other);
  const auto config = parse_config(
      "[[authorization]]\nnetworks = [\"127.0.0.0/8\"]\n\n[[job]]\nname = \"lo\"\n"
      "targets = [\"127.0.0.1\"]\nports = \"" +
          ports + "\"\ntechnique = \"connect\"\nconfirm-technique = \"connect\"\n" +
          "interval = \"1m\"\nconfirmations = 2\n",
      "loopback.toml");
  auto store = Store::open(":memory:");
  Logger quiet(LogLevel::error);
  const JobEnvironment env{{}, nullptr, &quiet};

  const auto first = run_job(config, config.jobs.at(0), store, env);
  ASSERT_TRUE(first.complete) << first.error;
  EXPECT_TRUE(first.events.empty());
  ASSERT_EQ(store.baseline("lo", "127.0.0.1").state_of(Proto::tcp, port)->state, PortState::closed);

  watched.open();
  const auto opened = run_job(config, config.jobs.at(0), store, env);
  ASSERT_TRUE(opened.complete) << opened.error;
  ASSERT_EQ(opened.events.size(), 1u);
  const auto& e = opened.events[0];
  EXPECT_EQ(e.host, "127.0.0.1");
  EXPECT_EQ(e.change.port, port);
  EXPECT_EQ(e.change.from, PortState::closed);
  EXPECT_EQ(e.change.to, PortState::open);
  EXPECT_EQ(e.change.from_reason, Reason::conn_refused);
  EXPECT_EQ(e.change.to_reason, Reason::syn_ack);
  EXPECT_FALSE(e.expected);
  EXPECT_EQ(opened.services_identified, 1u);
  ASSERT_TRUE(e.service);
  EXPECT_EQ(e.service->outcome, ServiceOutcome::identified);
  EXPECT_EQ(e.service->protocol, "ssh");
  EXPECT_EQ(e.service->banner, "SSH-2.0-OpenSSH_9.2p1 Debian-2");
  const auto stored = store.events_after(0, 10);
  ASSERT_EQ(stored.size(), 1u);
  ASSERT_TRUE(stored[0].service);
  EXPECT_EQ(summary(*stored[0].service), "ssh: SSH-2.0-OpenSSH_9.2p1 Debian-2");

  const auto unchanged = run_job(config, config.jobs.at(0), store, env);
  EXPECT_TRUE(unchanged.events.empty());
  EXPECT_EQ(unchanged.services_identified, 0u) << "nothing opened: nothing identified";

  watched.close();
  const auto closed = run_job(config, config.jobs.at(0), store, env);
  ASSERT_EQ(closed.events.size(), 1u);
  EXPECT_EQ(closed.events[0].change.to, PortState::closed);
  EXPECT_EQ(store.events_after(0, 100).size(), 2u);
}

}  // namespace
}  // namespace portvigil

namespace portvigil {
namespace {

// A subnet job: 198.18.0.2 is up at the job's first scan, 198.18.0.3 unused. When .3 comes
// up later with two listeners, that is new exposure: one from-"absent" event per open port
// and a host-appeared event, none of them expected (the job has no policy).
TEST_F(JobRunnerTest, AHostThatAppearsLaterIsNewExposure) {
  JobText j;
  j.targets = "\"198.18.0.2-3\"";
  const auto config = make_config(j);
  net.set(80, FakeBehavior::open);
  const auto first = run(config);
  ASSERT_TRUE(first.complete) << first.error;
  EXPECT_TRUE(first.events.empty());
  EXPECT_EQ(first.addresses_unused, 1u);
  EXPECT_EQ(first.hosts_down, 0u) << "an address nobody uses is not a host that is down";

  FakeHost fresh;
  fresh.address = asio::ip::make_address("198.18.0.3");
  fresh.ports[{Proto::tcp, 22}] = FakeBehavior::open;
  fresh.ports[{Proto::tcp, 443}] = FakeBehavior::open;
  net.config.hosts.push_back(fresh);
  const auto appeared = run(config);
  ASSERT_TRUE(appeared.complete) << appeared.error;
  EXPECT_EQ(appeared.hosts_appeared, 1u);
  ASSERT_EQ(appeared.events.size(), 3u);
  EXPECT_EQ(appeared.events[0].change.port, 22);
  EXPECT_EQ(appeared.events[1].change.port, 443);
  for (const auto& e : appeared.events) {
    EXPECT_EQ(e.host, "198.18.0.3");
    EXPECT_FALSE(e.expected);
  }
  EXPECT_TRUE(appeared.events[0].change.from_absent);
  EXPECT_EQ(appeared.events[2].kind, EventKind::host_appeared);
  // The metrics snapshot pages for both ports at once.
  std::size_t unexpected = 0;
  for (const auto& p : appeared.snapshot.open_ports) {
    unexpected += p.unexpected ? 1 : 0;
    // The ports of a host that appeared are open since it appeared (their absent -> open
    // transitions, at the events' time).
    if (p.unexpected) {
      ASSERT_TRUE(p.open_since.has_value());
      EXPECT_EQ(std::chrono::floor<std::chrono::milliseconds>(*p.open_since),
                std::chrono::floor<std::chrono::milliseconds>(appeared.events[0].time));
    }
  }
  EXPECT_EQ(unexpected, 2u);

  // Nothing changes: nothing more.
  EXPECT_TRUE(run(config).events.empty());

  // With a policy that expects 22 on every host, only 443 is unexpected.
  j.extra = "expected-open = [\"22/tcp\", \"80/tcp\"]\n";
  FakeHost another;
  another.address = asio::ip::make_address("198.18.0.4");
  another.ports[{Proto::tcp, 22}] = FakeBehavior::open;
  net.config.hosts.push_back(another);
  j.targets = "\"198.18.0.2-4\"";
  const auto wider = make_config(j);
  const auto r = run(wider);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_TRUE(r.events[0].expected) << "22/tcp is in the policy";
  EXPECT_EQ(r.events[1].kind, EventKind::host_appeared);
  EXPECT_TRUE(r.events[1].expected) << "every port of the new host is expected";
}

// A known host that stops answering is down at once and gone silent after
// host-silent-after; the event comes once.
TEST_F(JobRunnerTest, AKnownHostGoesSilentOnce) {
  JobText j;
  j.extra = "host-silent-after = \"1s\"\n";
  const auto config = make_config(j);
  net.set(80, FakeBehavior::open);
  ASSERT_TRUE(run(config).complete);
  net.config.hosts[0].default_tcp = FakeBehavior::drop;
  net.set(80, FakeBehavior::drop);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const auto silent = run(config);
  ASSERT_TRUE(silent.complete) << silent.error;
  EXPECT_EQ(silent.hosts_down, 1u);
  EXPECT_EQ(silent.hosts_gone_silent, 1u);
  ASSERT_EQ(silent.events.size(), 1u);
  EXPECT_EQ(silent.events[0].kind, EventKind::host_gone_silent);
  EXPECT_EQ(silent.events[0].ports,
            (std::vector<std::pair<Proto, std::uint16_t>>{{Proto::tcp, 80}}));
  const auto still = run(config);
  EXPECT_EQ(still.hosts_gone_silent, 1u);
  EXPECT_TRUE(still.events.empty());
}

}  // namespace
}  // namespace portvigil

// ---- host discovery (host-discovery = true, the default) ----------------------------------

namespace portvigil {
namespace {

// A subnet job: only the one live host gets port probes; the unused addresses are neither
// hosts nor down, and nothing pages.
TEST_F(JobRunnerTest, DiscoverySkipsUnusedAddressesOfASubnet) {
  JobText j;
  j.host_discovery = true;
  j.targets = "\"198.18.0.0/29\"";
  const auto config = make_config(j);
  net.set(80, FakeBehavior::open);
  const auto first = run(config);
  ASSERT_TRUE(first.complete) << first.error;
  EXPECT_EQ(first.addresses_unused, 7u);
  EXPECT_EQ(first.hosts_down, 0u);
  EXPECT_TRUE(first.events.empty());
  ASSERT_TRUE(baseline_of(80).has_value());
  EXPECT_EQ(baseline_of(80)->state, PortState::open);
  // The unused addresses saw discovery probes only: 3 per pass, never 13 ports.
  std::map<std::string, std::size_t> per_address;
  for (const auto& a : net.log->probed) ++per_address[a.to_string()];
  for (const auto& [address, n] : per_address) {
    if (address != kHost) {
      EXPECT_LE(n, 3u * 9u) << address;
    }
  }
  EXPECT_GE(per_address[kHost], 13u);
}

// A tracked host that starts dropping every discovery probe is still port-scanned, so a port
// opening behind a ping-dropping firewall is seen; when its ports fall silent too it is
// down (not changed), as without discovery.
TEST_F(JobRunnerTest, DiscoveryNeverHidesATrackedHost) {
  JobText j;
  j.host_discovery = true;
  j.ports = "20-30";
  const auto config = make_config(j);
  ASSERT_TRUE(run(config).complete);
  net.config.hosts[0].answers_ping = false;
  net.set(80, FakeBehavior::drop);
  net.set(443, FakeBehavior::drop);
  net.set(22, FakeBehavior::open);
  const auto opened = run(config);
  ASSERT_TRUE(opened.complete) << opened.error;
  ASSERT_EQ(opened.events.size(), 1u);
  EXPECT_EQ(opened.events[0].change.port, 22);
  EXPECT_EQ(opened.hosts_down, 0u);
  // Now every port drops as well: down, no event, the baseline stays.
  net.config.hosts[0].default_tcp = FakeBehavior::drop;
  net.set(22, FakeBehavior::drop);
  const auto down = run(config);
  ASSERT_TRUE(down.complete) << down.error;
  EXPECT_EQ(down.hosts_down, 1u);
  EXPECT_TRUE(down.events.empty());
  EXPECT_EQ(store.baseline("fake", kHost).scan_id, opened.scan_id);
}

// A FIN job's host whose ports are all open (silent to FIN) answers discovery, gets its port
// scan, and after the ACK liveness check (discovery's answer may be minutes old) its
// open|filtered baseline: a host, not an unused address.
TEST_F(JobRunnerTest, DiscoveredHostSilentToFinIsCompared) {
  JobText j;
  j.host_discovery = true;
  j.technique = "fin";
  j.ports = "20-30";
  const auto config = make_config(j);
  net.config.hosts[0].default_tcp = FakeBehavior::open;  // open ports are silent to FIN
  const auto first = run(config);
  ASSERT_TRUE(first.complete) << first.error;
  EXPECT_EQ(first.hosts_down, 0u);
  EXPECT_EQ(first.addresses_unused, 0u);
  ASSERT_TRUE(baseline_of(22).has_value());
  EXPECT_EQ(baseline_of(22)->state, PortState::open_filtered);
}

}  // namespace
}  // namespace portvigil

namespace portvigil {
namespace {

// [agent] shard: the run scans only the hosts its shard owns; a resharding moves hosts
// without a single event: those gained take a baseline silently (even over a stale stored
// state), those lost leave the metrics snapshot; changes on owned hosts still page.
TEST_F(JobRunnerTest, ReshardingMovesHostsWithoutEvents) {
  net.config.hosts.clear();
  std::vector<std::string> all;
  for (int i = 1; i <= 24; ++i) {
    FakeHost h;
    h.address = asio::ip::make_address("198.18.0." + std::to_string(i));
    h.ports[{Proto::tcp, 80}] = FakeBehavior::open;
    net.config.hosts.push_back(h);
    all.push_back(h.address.to_string());
  }
  auto set_port = [&](const std::string& host, std::uint16_t port, FakeBehavior b) {
    for (auto& h : net.config.hosts) {
      if (h.address.to_string() == host) h.ports[{Proto::tcp, port}] = b;
    }
  };
  JobText j;
  j.targets = "\"198.18.0.1-24\"";
  auto config_for = [&](const char* shard) {
    j.authorization = "[[authorization]]\nnetworks = [\"198.18.0.0/16\"]\n";
    auto c = make_config(j);
    c.agent.shard = parse_shard(shard);
    return c;
  };
  auto owned_by = [&](const Shard& s) {
    std::set<std::string> out;
    for (const auto& a : all) {
      if (s.owns(a)) out.insert(a);
    }
    return out;
  };
  auto snapshot_hosts = [](const JobSnapshot& snap) {
    std::set<std::string> out;
    for (const auto& p : snap.open_ports) out.insert(p.host);
    return out;
  };

  const Shard first{0, 3};
  const Shard second{1, 2};
  ASSERT_FALSE(owned_by(first).empty());
  const auto a = run(config_for("0/3"));
  ASSERT_TRUE(a.complete) << a.error;
  EXPECT_TRUE(a.events.empty());
  EXPECT_EQ(a.targets_owned, owned_by(first).size());
  EXPECT_EQ(snapshot_hosts(a.snapshot), owned_by(first));
  EXPECT_EQ(store.job_shard("fake"), "0/3");

  // While shard 1/2 is another agent's business, a host it is about to gain and one this
  // agent has a stale state of both open port 22.
  std::string stale;  // owned by both 0/3 and (after the move back) 0/3 again
  for (const auto& h : owned_by(first)) {
    if (!second.owns(h)) stale = h;
  }
  ASSERT_FALSE(stale.empty());
  std::string gained;
  for (const auto& h : owned_by(second)) {
    if (!first.owns(h)) gained = h;
  }
  ASSERT_FALSE(gained.empty());
  set_port(gained, 22, FakeBehavior::open);

  const auto b = run(config_for("1/2"));
  ASSERT_TRUE(b.complete) << b.error;
  EXPECT_TRUE(b.events.empty()) << b.events.size() << " events on a resharding";
  EXPECT_EQ(b.hosts_appeared, 0u);
  EXPECT_EQ(b.targets_owned, owned_by(second).size());
  std::size_t gained_count = 0, lost_count = 0;
  for (const auto& h : all) {
    gained_count += second.owns(h) && !first.owns(h) ? 1 : 0;
    lost_count += first.owns(h) && !second.owns(h) ? 1 : 0;
  }
  EXPECT_EQ(b.hosts_adopted, gained_count);
  EXPECT_EQ(b.hosts_retired, lost_count);
  EXPECT_EQ(snapshot_hosts(b.snapshot), owned_by(second)) << "lost hosts leave the metrics";
  EXPECT_EQ(snapshot_hosts(stored_snapshot(config_for("1/2").jobs.at(0), store, second)),
            owned_by(second));
  EXPECT_EQ(store.baseline("fake", gained).state_of(Proto::tcp, 22)->state, PortState::open);

  // Settled: the same shard again moves nothing, and a change on an owned host pages.
  const auto c = run(config_for("1/2"));
  EXPECT_TRUE(c.events.empty());
  EXPECT_EQ(c.hosts_adopted, 0u);
  EXPECT_EQ(c.hosts_retired, 0u);
  set_port(gained, 23, FakeBehavior::open);
  const auto d = run(config_for("1/2"));
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].host, gained);
  EXPECT_EQ(d.events[0].change.port, 23);

  // Back to 0/3: `stale` changed while away (22 opened): its old state is not compared, and
  // its old acceptance of 80 (the first baseline's, in another era) is replaced.
  set_port(stale, 22, FakeBehavior::open);
  set_port(stale, 80, FakeBehavior::closed);
  ASSERT_TRUE(store.is_accepted("fake", stale, Proto::tcp, 80));
  // `away` also changed (23 opened) and is down while the shard changes: known here with a
  // stale state, it waits for its first clean scan.
  std::string away;
  for (const auto& h : owned_by(first)) {
    if (!second.owns(h) && h != stale) away = h;
  }
  ASSERT_FALSE(away.empty());
  FakeHost away_host;
  for (auto it = net.config.hosts.begin(); it != net.config.hosts.end(); ++it) {
    if (it->address.to_string() == away) {
      away_host = *it;
      net.config.hosts.erase(it);
      break;
    }
  }
  away_host.ports[{Proto::tcp, 23}] = FakeBehavior::open;
  const auto e = run(config_for("0/3"));
  ASSERT_TRUE(e.complete) << e.error;
  EXPECT_TRUE(e.events.empty()) << e.events.size() << " events on moving back";
  EXPECT_EQ(e.hosts_gone_silent, 0u) << "a stale record does not make a silent host";
  EXPECT_EQ(store.baseline("fake", stale).state_of(Proto::tcp, 22)->state, PortState::open);
  EXPECT_TRUE(store.is_accepted("fake", stale, Proto::tcp, 22));
  EXPECT_FALSE(store.is_accepted("fake", stale, Proto::tcp, 80))
      << "an acceptance from before the host moved away must not outlive it";
  EXPECT_EQ(store.pending_adoptions("fake"), std::vector<std::string>{away});
  for (const auto& p : e.snapshot.open_ports) {
    EXPECT_NE(p.host, away) << "a host waiting for adoption exports its stale state";
  }

  // `away` is back, with 23 open: adopted without an event, and then compared as usual.
  net.config.hosts.push_back(away_host);
  const auto f = run(config_for("0/3"));
  ASSERT_TRUE(f.complete) << f.error;
  EXPECT_TRUE(f.events.empty()) << f.events.size() << " events for a host adopted late";
  EXPECT_EQ(f.hosts_adopted, 1u);
  EXPECT_TRUE(store.pending_adoptions("fake").empty());
  EXPECT_EQ(store.baseline("fake", away).state_of(Proto::tcp, 23)->state, PortState::open);
  set_port(away, 24, FakeBehavior::open);
  const auto g = run(config_for("0/3"));
  ASSERT_EQ(g.events.size(), 1u);
  EXPECT_EQ(g.events[0].host, away);
  EXPECT_EQ(g.events[0].change.port, 24);
}

}  // namespace
}  // namespace portvigil
