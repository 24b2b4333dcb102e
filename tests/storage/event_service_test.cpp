// What answered on a port an event opened: planned before the commit
// (Store::planned_tcp_openings), stored with the event (CommitOptions::services, schema v7
// event_services) and read back with it by every reader.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "portvigil/storage/store.hpp"
#include "storage_test_util.hpp"

namespace portvigil {
namespace {

using test::at;
using test::make_host;

ScannedHost scanned(const HostResult& h) {
  return ScannedHost::from(h, Technique::syn);
}

ServiceIdentity https_identity() {
  ServiceIdentity s;
  s.outcome = ServiceOutcome::identified;
  s.protocol = "https";
  s.banner_sha256 = "";
  TlsCertificate c;
  c.version = "TLSv1.3";
  c.subject_cn = "staging.internal";
  c.sans = {"staging.internal", "198.18.0.7", "a,b"};
  c.issuer_cn = "staging.internal";
  c.not_before = at(1000);
  c.not_after = at(2000000000);
  c.self_signed = true;
  c.sha256 = std::string(64, 'a');
  s.tls = c;
  s.http = HttpHead{200, "HTTP/1.1 200 OK", "Jetty(9.4)"};
  return s;
}

ServiceIdentity ssh_identity() {
  ServiceIdentity s;
  s.outcome = ServiceOutcome::identified;
  s.protocol = "ssh";
  s.banner = "SSH-2.0-OpenSSH_9.2p1";
  s.banner_sha256 = std::string(64, 'b');
  return s;
}

void expect_same(const ServiceIdentity& a, const ServiceIdentity& b) {
  EXPECT_EQ(a.outcome, b.outcome);
  EXPECT_EQ(a.protocol, b.protocol);
  EXPECT_EQ(a.banner, b.banner);
  EXPECT_EQ(a.banner_sha256, b.banner_sha256);
  ASSERT_EQ(a.tls.has_value(), b.tls.has_value());
  if (a.tls) {
    EXPECT_EQ(a.tls->version, b.tls->version);
    EXPECT_EQ(a.tls->subject_cn, b.tls->subject_cn);
    EXPECT_EQ(a.tls->sans, b.tls->sans);
    EXPECT_EQ(a.tls->issuer_cn, b.tls->issuer_cn);
    EXPECT_EQ(a.tls->not_before, b.tls->not_before);
    EXPECT_EQ(a.tls->not_after, b.tls->not_after);
    EXPECT_EQ(a.tls->self_signed, b.tls->self_signed);
    EXPECT_EQ(a.tls->sha256, b.tls->sha256);
  }
  ASSERT_EQ(a.http.has_value(), b.http.has_value());
  if (a.http) {
    EXPECT_EQ(a.http->status, b.http->status);
    EXPECT_EQ(a.http->status_line, b.http->status_line);
    EXPECT_EQ(a.http->server, b.http->server);
  }
}

// Job "j": a baseline of host a (22 closed, 443 closed), then a scan in which a opens 443
// and closes nothing, and b appears with 22 open.
struct Fixture {
  Store store = Store::open(":memory:");
  std::vector<ScannedHost> second;
  Fixture() {
    const auto first = store.begin_scan("j", Technique::syn, at(0));
    std::vector<ScannedHost> hosts{scanned(make_host("a", 1, 1000, PortState::closed))};
    store.commit_scan(first, hosts, {}, at(1));
    second = {scanned(make_host("a", 1, 1000, PortState::closed, {{443, PortState::open}})),
              scanned(make_host("b", 1, 1000, PortState::closed, {{22, PortState::open}}))};
  }
};

TEST(EventService, PlannedOpeningsAreExactlyTheCommitsTcpOpenings) {
  Fixture f;
  const auto id = f.store.begin_scan("j", Technique::syn, at(10));
  const auto planned = f.store.planned_tcp_openings(id, f.second, at(11));
  const std::vector<Store::Opening> want{{"a", 443}, {"b", 22}};
  EXPECT_EQ(planned, want);
  // Planning wrote nothing: the commit still sees the same changes.
  const auto events = f.store.commit_scan(id, f.second, {}, at(11));
  std::vector<Store::Opening> opened;
  for (const auto& e : events) {
    if (e.kind == EventKind::port && e.change.to == PortState::open) {
      opened.push_back({e.host, e.change.port});
    }
  }
  EXPECT_EQ(opened, want);
}

TEST(EventService, NothingOpenedPlansNothing) {
  Fixture f;
  const auto id = f.store.begin_scan("j", Technique::syn, at(10));
  std::vector<ScannedHost> same{scanned(make_host("a", 1, 1000, PortState::closed))};
  EXPECT_TRUE(f.store.planned_tcp_openings(id, same, at(11)).empty());
  // The job's first baseline is silent: nothing to identify either.
  Store fresh = Store::open(":memory:");
  const auto first = fresh.begin_scan("j", Technique::syn, at(0));
  EXPECT_TRUE(fresh.planned_tcp_openings(first, f.second, at(1)).empty());
}

TEST(EventService, IdentitiesAreStoredWithTheirEventsAndReadBackEverywhere) {
  Fixture f;
  const auto id = f.store.begin_scan("j", Technique::syn, at(10));
  CommitOptions options;
  options.services = {{"a", 443, https_identity()}, {"b", 22, ssh_identity()}};
  const auto events = f.store.commit_scan(id, f.second, {}, at(11), {}, options);
  ASSERT_EQ(events.size(), 3u);  // a 443, b 22, b appeared
  for (const auto& e : events) {
    if (e.kind != EventKind::port) {
      EXPECT_FALSE(e.service) << "host events carry no service; their port events do";
      continue;
    }
    ASSERT_TRUE(e.service) << e.host;
    expect_same(*e.service, e.host == "a" ? https_identity() : ssh_identity());
  }
  const auto stored = f.store.events_after(0, 100);
  ASSERT_EQ(stored.size(), 3u);
  for (std::size_t i = 0; i < stored.size(); ++i) {
    ASSERT_EQ(stored[i].service.has_value(), events[i].service.has_value()) << i;
    if (stored[i].service) expect_same(*stored[i].service, *events[i].service);
  }
  const auto since = f.store.events_since(at(0));
  ASSERT_EQ(since.size(), 3u);
  ASSERT_TRUE(since[0].service);
  expect_same(*since[0].service, https_identity());
  // history: the transition that opened the port shows what answered then.
  const auto history = f.store.history({.host = "a"});
  ASSERT_EQ(history.size(), 1u);
  ASSERT_TRUE(history[0].service);
  expect_same(*history[0].service, https_identity());
}

TEST(EventService, AnIdentityForAPortThatDidNotOpenIsNotAttached) {
  Fixture f;
  const auto id = f.store.begin_scan("j", Technique::syn, at(10));
  CommitOptions options;
  // Wrong host, a port that did not change, a port that closed: none of them opened.
  options.services = {{"c", 443, ssh_identity()}, {"a", 80, ssh_identity()}};
  const auto events = f.store.commit_scan(id, f.second, {}, at(11), {}, options);
  for (const auto& e : events) EXPECT_FALSE(e.service) << e.host << " " << e.change.port;
  const auto id3 = f.store.begin_scan("j", Technique::syn, at(20));
  std::vector<ScannedHost> closed{scanned(make_host("a", 1, 1000, PortState::closed))};
  CommitOptions closing;
  closing.services = {{"a", 443, ssh_identity()}};
  const auto events3 = f.store.commit_scan(id3, closed, {}, at(21), {}, closing);
  ASSERT_EQ(events3.size(), 1u);
  EXPECT_EQ(events3[0].change.to, PortState::closed);
  EXPECT_FALSE(events3[0].service);
}

TEST(EventService, PruningAnEventDropsItsService) {
  Fixture f;
  const auto id = f.store.begin_scan("j", Technique::syn, at(10));
  CommitOptions options;
  options.services = {{"a", 443, https_identity()}};
  f.store.commit_scan(id, f.second, {}, at(11), {}, options);
  const auto zero = std::chrono::seconds(0);
  EXPECT_EQ(f.store.prune(Retention{zero, zero, zero, std::nullopt}, at(1000)).events, 3u);
  EXPECT_TRUE(f.store.events_after(0, 100).empty());
  EXPECT_TRUE(f.store.integrity_problems().empty());
  // A later event gets its own service, not a leftover.
  const auto id2 = f.store.begin_scan("j", Technique::syn, at(2000));
  std::vector<ScannedHost> opened{
      scanned(make_host("a", 1, 1000, PortState::closed,
                        {{443, PortState::open}, {80, PortState::open}})),
      scanned(make_host("b", 1, 1000, PortState::closed, {{22, PortState::open}}))};
  const auto events = f.store.commit_scan(id2, opened, {}, at(2001));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].change.port, 80);
  EXPECT_FALSE(f.store.events_after(0, 100).at(0).service);
}

// watch-services: a port's stored service is replaced by each conclusive read; a changed
// one is a service-changed event carrying both; a port that closes forgets it.
TEST(EventService, WatchedReadsReplaceTheStoredServiceAndChangesAreEvents) {
  Fixture f;
  const auto id = f.store.begin_scan("j", Technique::syn, at(10));
  CommitOptions options;
  options.services = {{"a", 443, https_identity()}};
  options.watch_services = true;
  f.store.commit_scan(id, f.second, {}, at(11), {}, options);
  auto stored = f.store.port_services("j");
  ASSERT_EQ(stored.size(), 1u) << "the opening's identity is the port's service";
  EXPECT_EQ(stored[0].host, "a");
  EXPECT_EQ(stored[0].port, 443);
  EXPECT_EQ(stored[0].identified, at(11));

  // b's 22 was never read: its first watched read is stored silently.
  const auto id2 = f.store.begin_scan("j", Technique::syn, at(20));
  CommitOptions first_read;
  first_read.watch_services = true;
  first_read.service_checks = {{"b", 22, ssh_identity(), false}};
  EXPECT_TRUE(f.store.commit_scan(id2, f.second, {}, at(21), {}, first_read).empty());
  ASSERT_EQ(f.store.port_services("j").size(), 2u);

  // a's certificate was replaced (confirmed by the caller): one event with both services.
  auto renewed = https_identity();
  renewed.tls->sha256 = std::string(64, 'c');
  const auto id3 = f.store.begin_scan("j", Technique::syn, at(30));
  CommitOptions change;
  change.watch_services = true;
  change.service_checks = {{"a", 443, renewed, true}, {"b", 22, ssh_identity(), false}};
  const auto events = f.store.commit_scan(id3, f.second, {}, at(31), {}, change);
  ASSERT_EQ(events.size(), 1u);
  const auto& e = events[0];
  EXPECT_EQ(e.kind, EventKind::service_changed);
  EXPECT_EQ(name(e.kind), "service-changed");
  EXPECT_EQ(e.host, "a");
  EXPECT_EQ(e.change.proto, Proto::tcp);
  EXPECT_EQ(e.change.port, 443);
  EXPECT_FALSE(e.expected) << "443 opened after the baseline: not accepted";
  EXPECT_FALSE(e.change_id.empty());
  ASSERT_TRUE(e.service && e.previous_service);
  EXPECT_EQ(e.service->tls->sha256, std::string(64, 'c'));
  EXPECT_EQ(e.previous_service->tls->sha256, std::string(64, 'a'));
  const auto back = f.store.events_after(e.id - 1, 10);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].kind, EventKind::service_changed);
  EXPECT_EQ(back[0].change.port, 443);
  ASSERT_TRUE(back[0].service && back[0].previous_service);
  expect_same(*back[0].service, renewed);
  expect_same(*back[0].previous_service, https_identity());
  EXPECT_EQ(back[0].change_id, e.change_id);

  // The same read again, even marked changed, is no event; an inconclusive read changes
  // nothing.
  const auto id4 = f.store.begin_scan("j", Technique::syn, at(40));
  ServiceIdentity lost;
  lost.outcome = ServiceOutcome::timed_out;
  CommitOptions same;
  same.watch_services = true;
  same.service_checks = {{"a", 443, renewed, true}, {"b", 22, lost, true}};
  EXPECT_TRUE(f.store.commit_scan(id4, f.second, {}, at(41), {}, same).empty());
  for (const auto& r : f.store.port_services("j")) {
    if (r.host == "b") {
      EXPECT_EQ(r.identity.outcome, ServiceOutcome::identified);
    } else {
      EXPECT_EQ(r.identified, at(41));
    }
  }

  // a's 443 closes: its service goes with it.
  const auto id5 = f.store.begin_scan("j", Technique::syn, at(50));
  std::vector<ScannedHost> closed{scanned(make_host("a", 1, 1000, PortState::closed)), f.second[1]};
  CommitOptions watching;
  watching.watch_services = true;
  f.store.commit_scan(id5, closed, {}, at(51), {}, watching);
  stored = f.store.port_services("j");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].host, "b");
  // watch-services turned off: nothing is kept, so turning it on again starts afresh.
  const auto id6 = f.store.begin_scan("j", Technique::syn, at(60));
  f.store.commit_scan(id6, closed, {}, at(61));
  EXPECT_TRUE(f.store.port_services("j").empty());
}

// A port's service changes have their own change-id chain, and the ids tell different
// changes apart (the services' digests are hashed).
TEST(EventService, ServiceChangeIdsDependOnTheServicesNotOnThePortsChain) {
  auto run = [](const std::string& renewed_fingerprint) {
    Fixture f;
    CommitOptions options;
    options.watch_services = true;
    options.services = {{"a", 443, https_identity()}};
    const auto id = f.store.begin_scan("j", Technique::syn, at(10));
    const auto opened = f.store.commit_scan(id, f.second, {}, at(11), {}, options);
    auto renewed = https_identity();
    renewed.tls->sha256 = renewed_fingerprint;
    CommitOptions change;
    change.watch_services = true;
    change.service_checks = {{"a", 443, renewed, true}};
    const auto id2 = f.store.begin_scan("j", Technique::syn, at(20));
    const auto events = f.store.commit_scan(id2, f.second, {}, at(21), {}, change);
    EXPECT_EQ(events.size(), 1u);
    // The port closing afterwards chains to the port's opening, not to the service change.
    std::vector<ScannedHost> closed{scanned(make_host("a", 1, 1000, PortState::closed)),
                                    f.second[1]};
    const auto id3 = f.store.begin_scan("j", Technique::syn, at(30));
    const auto closing = f.store.commit_scan(id3, closed, {}, at(31), {}, change);
    EXPECT_EQ(closing.size(), 1u);
    return std::vector<std::string>{events.at(0).change_id, closing.at(0).change_id,
                                    opened.at(0).change_id};
  };
  const auto one = run(std::string(64, 'c'));
  const auto other = run(std::string(64, 'd'));
  EXPECT_NE(one[0], other[0]) << "another certificate, another change";
  EXPECT_EQ(one[1], other[1]) << "the port's own chain does not see service changes";
  EXPECT_EQ(one[2], other[2]);
}

}  // namespace
}  // namespace portvigil
