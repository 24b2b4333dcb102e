// Host discovery in front of a port-scan engine (ScanPlan::discovery), as Nmap does it: a
// discovery pass over every target with the discovery engine, then one port scan of the
// hosts that answered. Neither pass materialises the target list: live hosts are kept as
// ranges (TargetSet::add_target joins consecutive addresses), down ones are reported and
// forgotten at once.
#include <algorithm>
#include <utility>
#include <vector>

#include "engine_common.hpp"
#include "host_notes.hpp"
#include "portvigil/scanner/engine.hpp"
#include "raw/probe.hpp"

namespace portvigil {
namespace {

struct AddressKey {
  bool v6 = false;
  uint128 value = 0;
  auto operator<=>(const AddressKey&) const = default;
  static AddressKey of(const asio::ip::address& a) { return {a.is_v6(), to_uint128(a)}; }
};

// Takes the discovery engine's results: up hosts are queued for the port scan (or reported,
// for -sn), down hosts reported without ports.
class DiscoverySink final : public ReportSink {
 public:
  DiscoverySink(const ScanPlan& plan, ReportSink& out) : plan_(plan), out_(out) {}
  void begin(const ScanInfo&) override {}
  void end(const ScanSummary&) override {}
  void host(const HostResult& h) override {
    if (h.refused_by_scope) {  // reported here, once: the port scan never sees it
      out_.host(h);
      return;
    }
    // The first proof in probe order (echo, ACK 80, SYN 443), except that a neighbour
    // answer (ARP, ND) wins, as in Nmap's reports: on the local link every host gives it.
    Reason why = Reason::unknown;
    for (const auto& p : h.ports) {
      if (!proves_host_up(p.reason)) continue;
      const bool neighbor = p.reason == Reason::arp_response || p.reason == Reason::nd_response;
      if (why == Reason::unknown || neighbor) why = p.reason;
    }
    HostResult r;
    r.address = h.address;
    r.hostname = h.hostname;
    r.elapsed = h.elapsed;
    if (why != Reason::unknown) {
      ++up;
      if (plan_.discovery == HostDiscovery::only) {
        r.status = HostStatus::up;
        r.status_reason = why;
        out_.host(r);
      } else {
        to_scan.add_target({h.address, h.hostname});
        reasons.emplace_back(AddressKey::of(h.address), why);
      }
      return;
    }
    if (!h.complete) return;  // cut short (interrupted): the run reports that
    if (plan_.discovery != HostDiscovery::only && plan_.scan_even_if_silent &&
        plan_.scan_even_if_silent({h.address, h.hostname})) {
      to_scan.add_target({h.address, h.hostname});  // status stays unknown: ports decide
      return;
    }
    r.status = HostStatus::down;
    r.status_reason = Reason::no_response;
    out_.host(r);
  }

  std::size_t up = 0;
  TargetSet to_scan;
  // Why each queued host is up, in discovery order (target order): sorted before use.
  std::vector<std::pair<AddressKey, Reason>> reasons;

 private:
  const ScanPlan& plan_;
  ReportSink& out_;
};

// Stamps the discovery verdict on the port scan's results.
class StatusSink final : public ReportSink {
 public:
  StatusSink(std::vector<std::pair<AddressKey, Reason>> reasons, ReportSink& out)
      : reasons_(std::move(reasons)), out_(out) {
    std::sort(reasons_.begin(), reasons_.end());
  }
  void begin(const ScanInfo&) override {}
  void end(const ScanSummary&) override {}
  void host(const HostResult& h) override {
    const AddressKey key = AddressKey::of(h.address);
    const auto it = std::lower_bound(
        reasons_.begin(), reasons_.end(), key,
        [](const std::pair<AddressKey, Reason>& e, const AddressKey& k) { return e.first < k; });
    if (it != reasons_.end() && it->first == key) {
      HostResult r = h;
      r.status = HostStatus::up;
      r.status_reason = it->second;
      out_.host(r);
      return;
    }
    // Kept by scan_even_if_silent: up only if its ports answered.
    if (std::any_of(h.ports.begin(), h.ports.end(),
                    [](const PortResult& p) { return proves_host_up(p.reason); })) {
      ++silent_but_up;
    }
    out_.host(h);
  }
  std::size_t silent_but_up = 0;

 private:
  std::vector<std::pair<AddressKey, Reason>> reasons_;
  ReportSink& out_;
};

void add_counters(ScanCounters& into, const ScanCounters& c) {
  into.probes_sent += c.probes_sent;
  into.retransmissions += c.retransmissions;
  into.responses += c.responses;
  into.refused_by_scope += c.refused_by_scope;
  into.capture_drops += c.capture_drops;
  into.send_deferred += c.send_deferred;
  into.send_refused_locally += c.send_refused_locally;
  into.rate_limited_probes += c.rate_limited_probes;
}

class DiscoveringEngine final : public ScanEngine {
 public:
  DiscoveringEngine(std::unique_ptr<ScanEngine> discovery, std::vector<std::uint16_t> ping_ports,
                    std::unique_ptr<ScanEngine> ports)
      : discovery_(std::move(discovery)),
        ping_ports_(std::move(ping_ports)),
        ports_(std::move(ports)) {}

  ScanSummary run(const ScanPlan& plan, ReportSink& sink, const RunControl& control) override {
    if (plan.discovery == HostDiscovery::skip) return ports_->run(plan, sink, control);
    const auto started = std::chrono::steady_clock::now();
    ScanPlan ping = plan;
    ping.ports = PortList{};
    ping.ports.tcp = ping_ports_;
    ping.timing.host_timeout = Seconds{0};  // a handful of probes per host
    DiscoverySink found(plan, sink);
    ScanSummary total = discovery_->run(ping, found, control);
    total.hosts_up = found.up;
    StatusSink stamped(std::move(found.reasons), sink);
    if (plan.discovery == HostDiscovery::only || found.to_scan.empty()) {
      engine::finish_summary(total, started, false);
      return total;
    }
    if (total.interrupted || !total.error.empty()) {
      // Hosts found up and never port-scanned are still reported, as not scanned.
      auto cursor = found.to_scan.cursor();
      Target t;
      while (cursor.next(t)) {
        HostResult r;
        r.address = t.address;
        r.hostname = t.hostname;
        r.complete = false;
        r.note = engine::note::kInterruptedAfterDiscovery;
        stamped.host(r);
      }
      engine::finish_summary(total, started, false);
      return total;
    }
    ScanPlan scan = plan;
    scan.targets = &found.to_scan;
    scan.discovery = HostDiscovery::skip;
    const ScanSummary ports = ports_->run(scan, stamped, control);
    total.hosts_up += stamped.silent_but_up;
    add_counters(total.counters, ports.counters);
    total.interrupted = total.interrupted || ports.interrupted;
    if (total.error.empty()) total.error = ports.error;
    engine::finish_summary(total, started, false);
    return total;
  }

 private:
  std::unique_ptr<ScanEngine> discovery_;
  std::vector<std::uint16_t> ping_ports_;
  std::unique_ptr<ScanEngine> ports_;
};

// Nmap's unprivileged discovery: a connect() to 80 and 443; refused or accepted, the host
// is up.
constexpr std::uint16_t kConnectPingPorts[] = {80, 443};

}  // namespace

std::unique_ptr<ScanEngine> make_scan_engine(Technique technique, RawOptions options) {
  if (technique == Technique::connect) {
    return std::make_unique<DiscoveringEngine>(
        make_connect_engine(),
        std::vector<std::uint16_t>(std::begin(kConnectPingPorts), std::end(kConnectPingPorts)),
        make_connect_engine());
  }
  const auto ping = raw::ping_ports();
  auto discovery = engine::make_raw_ping_engine(options);
  return std::make_unique<DiscoveringEngine>(std::move(discovery),
                                             std::vector<std::uint16_t>(ping.begin(), ping.end()),
                                             make_raw_engine(technique, std::move(options)));
}

}  // namespace portvigil
