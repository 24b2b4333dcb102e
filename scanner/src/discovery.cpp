// Host discovery in front of a port-scan engine (ScanPlan::discovery), as Nmap does it: a
// discovery pass over every target with the discovery engine, then one port scan of the
// hosts that answered. Neither pass materialises the target list: live hosts are kept as
// ranges (TargetSet::add_target joins consecutive addresses), down ones are reported and
// forgotten at once.
#include <algorithm>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
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
// With a feed (the pipeline) hosts found up go to it at once, and host() may be called from
// the discovery engine's threads while the port scan reads reason_of(): `out` must then be
// thread-safe too.
class DiscoverySink final : public ReportSink {
 public:
  DiscoverySink(const ScanPlan& plan, ReportSink& out, TargetFeed* feed = nullptr)
      : plan_(plan), out_(out), feed_(feed) {}
  void begin(const ScanInfo&) override {}
  void end(const ScanSummary&) override {}
  void host(const HostResult& h) override {
    std::lock_guard lock(mu_);
    take(h);
  }
  // Why a fed host is up (pipeline only; recorded before it is fed), asked once, when its
  // port scan is reported: forgotten then, so only the backlog is kept.
  [[nodiscard]] std::optional<Reason> take_reason(const asio::ip::address& a) {
    std::lock_guard lock(mu_);
    const auto it = fed_reasons_.find(AddressKey::of(a));
    if (it == fed_reasons_.end()) return std::nullopt;
    const Reason why = it->second;
    fed_reasons_.erase(it);
    return why;
  }
  [[nodiscard]] std::size_t down_count() {
    std::lock_guard lock(mu_);
    return down_;
  }
  [[nodiscard]] std::size_t up_count() {
    std::lock_guard lock(mu_);
    return up;
  }

  std::size_t up = 0;
  TargetSet to_scan;
  // Why each queued host is up, in discovery order (target order): sorted before use.
  std::vector<std::pair<AddressKey, Reason>> reasons;

 private:
  void queue(const Target& t, std::optional<Reason> why) {
    if (feed_ == nullptr) {
      to_scan.add_target(t);
      if (why) reasons.emplace_back(AddressKey::of(t.address), *why);
      return;
    }
    if (why) fed_reasons_[AddressKey::of(t.address)] = *why;
    feed_->push(t);
  }
  void take(const HostResult& h) {
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
        queue({h.address, h.hostname}, why);
      }
      return;
    }
    if (!h.complete) return;  // cut short (interrupted): the run reports that
    if (plan_.discovery != HostDiscovery::only && plan_.scan_even_if_silent &&
        plan_.scan_even_if_silent({h.address, h.hostname})) {
      queue({h.address, h.hostname}, std::nullopt);  // status stays unknown: ports decide
      return;
    }
    r.status = HostStatus::down;
    r.status_reason = Reason::no_response;
    ++down_;
    out_.host(r);
  }

  std::size_t down_ = 0;
  const ScanPlan& plan_;
  ReportSink& out_;
  TargetFeed* feed_;
  std::mutex mu_;
  std::map<AddressKey, Reason> fed_reasons_;
};

// One sink for two threads (the pipeline's discovery and port scan).
class SerializedSink final : public ReportSink {
 public:
  explicit SerializedSink(ReportSink& out) : out_(out) {}
  void begin(const ScanInfo& info) override {
    std::lock_guard lock(mu_);
    out_.begin(info);
  }
  void host(const HostResult& h) override {
    std::lock_guard lock(mu_);
    out_.host(h);
  }
  void end(const ScanSummary& s) override {
    std::lock_guard lock(mu_);
    out_.end(s);
  }

 private:
  ReportSink& out_;
  std::mutex mu_;
};

// Stamps the discovery verdict on the port scan's results.
class StatusSink final : public ReportSink {
 public:
  using ReasonOf = std::function<std::optional<Reason>(const asio::ip::address&)>;
  StatusSink(ReasonOf reason_of, ReportSink& out) : reason_of_(std::move(reason_of)), out_(out) {}
  void begin(const ScanInfo&) override {}
  void end(const ScanSummary&) override {}
  void host(const HostResult& h) override {
    if (const auto why = reason_of_(h.address)) {
      HostResult r = h;
      r.status = HostStatus::up;
      r.status_reason = *why;
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
  std::size_t silent_but_up = 0;  // the port scan's thread only

 private:
  ReasonOf reason_of_;
  ReportSink& out_;
};

// The reasons discovery recorded, in a sorted vector, as StatusSink asks for them.
StatusSink::ReasonOf sorted_reasons(std::vector<std::pair<AddressKey, Reason>> reasons) {
  std::sort(reasons.begin(), reasons.end());
  return [reasons = std::move(reasons)](const asio::ip::address& a) -> std::optional<Reason> {
    const AddressKey key = AddressKey::of(a);
    const auto it = std::lower_bound(
        reasons.begin(), reasons.end(), key,
        [](const std::pair<AddressKey, Reason>& e, const AddressKey& k) { return e.first < k; });
    if (it != reasons.end() && it->first == key) return it->second;
    return std::nullopt;
  };
}

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

// A host discovery found up that the port scan never took (the run was stopped or failed).
HostResult not_scanned(const Target& t) {
  HostResult r;
  r.address = t.address;
  r.hostname = t.hostname;
  r.complete = false;
  r.note = engine::note::kInterruptedAfterDiscovery;
  return r;
}

// One progress stream from the pipeline's two engines: the sum of their work (the port
// scan's as far as it is known), to the caller's callback, never from two threads at once.
class MergedProgress {
 public:
  using Clock = std::chrono::steady_clock;
  MergedProgress(const RunControl& control, Clock::time_point started, DiscoverySink& found)
      : control_(control), started_(started), found_(found) {}
  void discovery(const Progress& p) { update(discovery_, p); }
  void ports(const Progress& p) { update(ports_, p); }

 private:
  struct Last {
    Progress progress;
    Clock::time_point at{};
  };
  void update(Last& last, const Progress& p) {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    last = {p, now};
    // Each engine reports once per interval: together, at most once per half interval.
    if (now - emitted_ < control_.progress_every / 2) return;
    emitted_ = now;
    // A rate reported longer ago than two intervals is of an engine that has gone quiet.
    const auto fresh = [&](const Last& l) {
      return now - l.at < 2 * control_.progress_every ? l.progress.rate : 0.0;
    };
    Progress merged;
    merged.probes_done = discovery_.progress.probes_done + ports_.progress.probes_done;
    merged.probes_total = discovery_.progress.probes_total + ports_.progress.probes_total;
    merged.hosts_done = ports_.progress.hosts_done + found_.down_count();
    merged.elapsed = now - started_;
    merged.rate = fresh(discovery_) + fresh(ports_);
    control_.on_progress(merged);
  }

  const RunControl& control_;
  Clock::time_point started_;
  DiscoverySink& found_;
  std::mutex mu_;
  Last discovery_;
  Last ports_;
  Clock::time_point emitted_{};
};

class DiscoveringEngine final : public ScanEngine {
 public:
  // `pipelined`: both engines take ScanPlan::feed and report_answered_hosts_early (the raw
  // ones), so the port scan runs while discovery still waits on silent addresses.
  DiscoveringEngine(std::unique_ptr<ScanEngine> discovery, std::vector<std::uint16_t> ping_ports,
                    std::unique_ptr<ScanEngine> ports, bool pipelined)
      : discovery_(std::move(discovery)),
        ping_ports_(std::move(ping_ports)),
        ports_(std::move(ports)),
        pipelined_(pipelined) {}

  ScanSummary run(const ScanPlan& plan, ReportSink& sink, const RunControl& control) override {
    if (plan.discovery == HostDiscovery::skip) return ports_->run(plan, sink, control);
    const auto started = std::chrono::steady_clock::now();
    ScanPlan ping = plan;
    ping.ports = PortList{};
    ping.ports.tcp = ping_ports_;
    ping.timing.host_timeout = Seconds{0};  // a handful of probes per host
    if (pipelined_ && plan.discovery == HostDiscovery::ping && plan.shared_rate == nullptr) {
      return run_pipelined(plan, ping, sink, control, started);
    }
    DiscoverySink found(plan, sink);
    ScanSummary total = discovery_->run(ping, found, control);
    total.hosts_up = found.up;
    StatusSink stamped(sorted_reasons(std::move(found.reasons)), sink);
    if (plan.discovery == HostDiscovery::only || found.to_scan.empty()) {
      engine::finish_summary(total, started, false);
      return total;
    }
    if (total.interrupted || !total.error.empty()) {
      // Hosts found up and never port-scanned are still reported, as not scanned.
      auto cursor = found.to_scan.cursor();
      Target t;
      while (cursor.next(t)) stamped.host(not_scanned(t));
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
  // Discovery on its own thread; each host it finds up goes to the port scan, which runs on
  // this thread, as soon as discovery is sure of it (every discovery probe answered), and
  // the rest when discovery ends. On an on-link subnet the live hosts answer in
  // microseconds while the unused addresses keep discovery waiting for its time-outs: the
  // port scan fills that wait. Two engines send at once, so --max-rate becomes a budget
  // they share.
  ScanSummary run_pipelined(const ScanPlan& plan, ScanPlan ping, ReportSink& sink,
                            const RunControl& control,
                            std::chrono::steady_clock::time_point started) {
    SerializedSink out(sink);
    TargetFeed feed;
    DiscoverySink found(plan, out, &feed);
    RateBudget budget(plan.timing.max_rate);
    ScanPlan scan = plan;
    scan.discovery = HostDiscovery::skip;
    scan.feed = &feed;
    if (plan.timing.max_rate > 0) ping.shared_rate = scan.shared_rate = &budget;
    ping.report_answered_hosts_early = true;
    // Discovery stops when the port scan has ended early (stopped, failed): the port scan
    // sees the caller's stop itself and relays it here as it returns.
    std::atomic<bool> abort{false};
    MergedProgress progress(control, started, found);
    RunControl ping_control;
    ping_control.stop = &abort;
    RunControl scan_control = control;
    if (control.on_progress) {
      ping_control.progress_every = control.progress_every;
      ping_control.on_progress = [&progress](const Progress& p) { progress.discovery(p); };
      scan_control.on_progress = [&progress](const Progress& p) { progress.ports(p); };
    }
    ScanSummary total;
    std::exception_ptr discovery_failed;
    std::thread discovering([&] {
      try {
        total = discovery_->run(ping, found, ping_control);
      } catch (...) {
        discovery_failed = std::current_exception();
      }
      feed.close();
    });
    // Whatever way this function is left, discovery is stopped and joined first.
    struct Join {
      std::thread& thread;
      std::atomic<bool>& abort;
      ~Join() {
        abort = true;
        if (thread.joinable()) thread.join();
      }
    };
    ScanSummary ports;
    std::size_t silent_but_up = 0;
    {
      const Join join{discovering, abort};
      StatusSink stamped([&found](const asio::ip::address& a) { return found.take_reason(a); },
                         out);
      ports = ports_->run(scan, stamped, scan_control);
      if (!ports.interrupted && ports.error.empty()) {
        // The port scan ran until the feed closed: discovery has ended on its own.
        discovering.join();
        discovering = std::thread{};
      }
      silent_but_up = stamped.silent_but_up;
    }
    if (discovery_failed) std::rethrow_exception(discovery_failed);
    // Hosts found up that the port scan never took are still reported, as not scanned.
    StatusSink stamped([&found](const asio::ip::address& a) { return found.take_reason(a); }, out);
    Target t;
    while (feed.next(t, std::chrono::microseconds{0}) == TargetFeed::Next::target) {
      stamped.host(not_scanned(t));
    }
    total.hosts_up = found.up_count() + silent_but_up;
    add_counters(total.counters, ports.counters);
    if (!ports.error.empty()) {
      total.error = ports.error;  // discovery was stopped for it: not an interruption
      total.interrupted = ports.interrupted;
    } else {
      total.interrupted = total.interrupted || ports.interrupted;
    }
    engine::finish_summary(total, started, false);
    return total;
  }

  std::unique_ptr<ScanEngine> discovery_;
  std::vector<std::uint16_t> ping_ports_;
  std::unique_ptr<ScanEngine> ports_;
  bool pipelined_;
};

// Nmap's unprivileged discovery: a connect() to 80 and 443; refused or accepted, the host
// is up.
constexpr std::uint16_t kConnectPingPorts[] = {80, 443};

}  // namespace

void TargetFeed::push(const Target& target) {
  const bool v6 = target.address.is_v6();
  const uint128 value = to_uint128(target.address);
  {
    std::lock_guard lock(mu_);
    Run* back = runs_.empty() ? nullptr : &runs_.back();
    if (back && target.hostname.empty() && back->hostname.empty() && back->v6 == v6 &&
        back->first + back->count == value && back->first + back->count != 0) {
      ++back->count;
    } else {
      runs_.push_back({value, 1, v6, target.hostname});
    }
  }
  ready_.notify_one();
}

void TargetFeed::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  ready_.notify_all();
}

TargetFeed::Next TargetFeed::next(Target& out, std::chrono::microseconds wait) {
  std::unique_lock lock(mu_);
  if (runs_.empty() && !closed_ && wait.count() > 0) {
    ready_.wait_for(lock, wait, [this] { return !runs_.empty() || closed_; });
  }
  if (runs_.empty()) return closed_ ? Next::closed : Next::later;
  Run& front = runs_.front();
  out.address = from_uint128(front.first, front.v6);
  out.hostname = front.hostname;
  ++front.first;
  if (--front.count == 0) runs_.pop_front();
  return Next::target;
}

std::unique_ptr<ScanEngine> make_scan_engine(Technique technique, RawOptions options) {
  if (technique == Technique::connect) {
    return std::make_unique<DiscoveringEngine>(
        make_connect_engine(),
        std::vector<std::uint16_t>(std::begin(kConnectPingPorts), std::end(kConnectPingPorts)),
        make_connect_engine(), /*pipelined=*/false);
  }
  const auto ping = raw::ping_ports();
  auto discovery = engine::make_raw_ping_engine(options);
  return std::make_unique<DiscoveringEngine>(std::move(discovery),
                                             std::vector<std::uint16_t>(ping.begin(), ping.end()),
                                             make_raw_engine(technique, std::move(options)),
                                             /*pipelined=*/true);
}

}  // namespace portvigil
