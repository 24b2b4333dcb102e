#include "portvigil/exporters/metrics.hpp"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "http_server.hpp"
#include "portvigil/common/version.hpp"
#include "process_metrics.hpp"
#include "web_config.hpp"

namespace portvigil {
namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

prometheus::ClientMetric gauge_metric(std::vector<prometheus::ClientMetric::Label> labels,
                                      double value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  return m;
}

const prometheus::Histogram::BucketBoundaries& duration_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{0.1, 0.25, 0.5, 1,   2.5, 5,
                                                         10,  30,   60,  300, 900, 3600};
  return b;
}

}  // namespace

// Per-port families come from snapshots at scrape time (a Collectable), everything else
// from a Registry of long-lived metrics.
struct AgentMetrics::Impl : prometheus::Collectable {
  explicit Impl(std::size_t limit)
      : series_limit(limit), registry(std::make_shared<prometheus::Registry>()) {
    using namespace prometheus;
    scans = &BuildCounter()
                 .Name("portvigil_scans_total")
                 .Help("Scans finished, by scan_job and result (complete, incomplete).")
                 .Register(*registry);
    changes = &BuildCounter()
                   .Name("portvigil_port_state_changes_total")
                   .Help(
                       "Confirmed port state changes, by scan_job, protocol and states; "
                       "from=absent for the ports of a host that appeared.")
                   .Register(*registry);
    duration = &BuildHistogram()
                    .Name("portvigil_scan_duration_seconds")
                    .Help("Duration of finished scans, by job.")
                    .Register(*registry);
    success = &BuildGauge()
                   .Name("portvigil_scan_success")
                   .Help("1 if the job's last scan completed, 0 if it did not.")
                   .Register(*registry);
    not_compared = &BuildGauge()
                        .Name("portvigil_scan_hosts_not_compared")
                        .Help(
                            "Known hosts of the job's last complete scan that were not compared "
                            "with their baseline: reason=down (no reply at all) or "
                            "reason=inconclusive (silence that cannot be trusted). Addresses "
                            "that never answered are not hosts and not counted.")
                        .Register(*registry);
    gone_silent = &BuildGauge()
                       .Name("portvigil_hosts_gone_silent")
                       .Help(
                           "Known hosts of the job that have answered nothing for longer than "
                           "the job's host-silent-after.")
                       .Register(*registry);
    refused = &BuildGauge()
                   .Name("portvigil_scan_targets_refused")
                   .Help(
                       "Target addresses of the job's last run that no active authorization "
                       "covers (expired, not yet valid or never authorized): not scanned.")
                   .Register(*registry);
    host_events = &BuildCounter()
                       .Name("portvigil_host_events_total")
                       .Help(
                           "Host-level change events, by job and kind: appeared (a host first "
                           "seen after the job's baseline) and gone-silent.")
                       .Register(*registry);
    service_changes = &BuildCounter()
                           .Name("portvigil_service_changes_total")
                           .Help(
                               "service-changed events (watch-services): what answers on an "
                               "open TCP port changed, confirmed by a second read.")
                           .Register(*registry);
    expiry = &BuildGauge()
                  .Name("portvigil_authorization_expiry_timestamp_seconds")
                  .Help(
                      "Unix time an authorized network stops being scanned, per network of "
                      "each [[authorization]] entry that has an expiry.")
                  .Register(*registry);
    last_success = &BuildGauge()
                        .Name("portvigil_last_scan_success_timestamp_seconds")
                        .Help("Unix time the job's last complete scan finished.")
                        .Register(*registry);
    interval = &BuildGauge()
                    .Name("portvigil_job_interval_seconds")
                    .Help("Configured time between two scans of the job.")
                    .Register(*registry);
    window_open = &BuildGauge()
                       .Name("portvigil_job_window_open")
                       .Help(
                           "1 while the job may scan (inside one of its scan windows, or it "
                           "has none), 0 outside its windows.")
                       .Register(*registry);
    window_opened = &BuildGauge()
                         .Name("portvigil_job_window_opened_timestamp_seconds")
                         .Help(
                             "Unix time the job's current scan window opened, or its last one "
                             "while closed; 0 for a job without windows, for a window open "
                             "longer than a fortnight, and before the agent has seen one open.")
                         .Register(*registry);
    probes = &BuildCounter()
                  .Name("portvigil_probes_sent_total")
                  .Help("Probes sent, by job, including retransmissions.")
                  .Register(*registry);
    replies = &BuildCounter()
                   .Name("portvigil_probe_replies_total")
                   .Help("Probes that drew an answer, by job.")
                   .Register(*registry);
    retransmissions = &BuildCounter()
                           .Name("portvigil_probe_retransmissions_total")
                           .Help("Probes sent again because the first got no answer, by job.")
                           .Register(*registry);
    drops = &BuildCounter()
                 .Name("portvigil_capture_drops_total")
                 .Help("Replies the packet capture buffer dropped (raw techniques), by job.")
                 .Register(*registry);
    deferred = &BuildCounter()
                    .Name("portvigil_probe_send_deferrals_total")
                    .Help(
                        "Probe sends the kernel refused at once (ENOBUFS: often an address "
                        "whose neighbour does not resolve), by job; each is tried again by the "
                        "next pass.")
                    .Register(*registry);
    rate_limited = &BuildCounter()
                        .Name("portvigil_udp_rate_limited_probes_total")
                        .Help(
                            "UDP probes of a job's fast pass that a target's ICMP error rate "
                            "limit swallowed (a paced probe of the same port later drew the "
                            "error); those ports were verified at the paced rate.")
                        .Register(*registry);
    coverage_ports = &BuildGauge()
                          .Name("portvigil_udp_coverage_ports")
                          .Help("UDP ports a job verifies on each host once per udp-coverage.")
                          .Register(*registry);
    coverage_verified = &BuildGauge()
                             .Name("portvigil_udp_coverage_verified_ports")
                             .Help(
                                 "Of a UDP job's ports, those every host has verified within "
                                 "the last udp-coverage period.")
                             .Register(*registry);
    coverage_oldest = &BuildGauge()
                           .Name("portvigil_udp_coverage_oldest_verification_timestamp_seconds")
                           .Help(
                               "Unix time of the oldest port verification of a UDP job over its "
                               "hosts (a port a host never verified counts from when the host "
                               "was first seen); older than the period: a port went unverified.")
                           .Register(*registry);
    coverage_period = &BuildGauge()
                           .Name("portvigil_udp_coverage_period_seconds")
                           .Help("A UDP job's udp-coverage: every port is verified once in it.")
                           .Register(*registry);
    refused_locally = &BuildCounter()
                           .Name("portvigil_probe_sends_refused_locally_total")
                           .Help(
                               "Probe sends our own kernel refused for good, by job: an "
                               "on-link address that failed to resolve (EHOSTUNREACH); the "
                               "port reads filtered (host-unreach).")
                           .Register(*registry);
    shard_info = &BuildGauge()
                      .Name("portvigil_shard_info")
                      .Help(
                          "Always 1; the labels say which hosts this agent owns: shard (0 to "
                          "shards-1, Prometheus' hashmod of the host label) and its replica "
                          "name ([agent] shard and replica).")
                      .Register(*registry);
    sink_pending = &BuildGauge()
                        .Name("portvigil_sink_pending_events")
                        .Help(
                            "Committed change events an event sink ([[sink]], the implicit "
                            "stdout sink, or sink=\"event-log\": the event log) has not "
                            "delivered yet.")
                        .Register(*registry);
    sink_delivered = &BuildCounter()
                          .Name("portvigil_sink_events_delivered_total")
                          .Help("Change events an event sink has delivered.")
                          .Register(*registry);
    sink_failures = &BuildCounter()
                         .Name("portvigil_sink_delivery_failures_total")
                         .Help(
                             "Delivery attempts of an event sink that failed (the batch is "
                             "retried with back-off).")
                         .Register(*registry);
    shard_count = &BuildGauge()
                       .Name("portvigil_shard_count")
                       .Help(
                           "The number of shards the agent's [agent] shard divides the hosts "
                           "into (the N of I/N; 1 without it), so the fleet rules can tell a "
                           "shard that no agent runs.")
                       .Register(*registry)
                       .Add({});
    owned = &BuildGauge()
                 .Name("portvigil_targets_owned")
                 .Help(
                     "Target addresses of the job's last complete run that this agent's shard "
                     "owns (all of them without [agent] shard).")
                 .Register(*registry);
    reload_ok = &BuildGauge()
                     .Name("portvigil_config_last_reload_successful")
                     .Help("1 if the last configuration (re)load succeeded.")
                     .Register(*registry)
                     .Add({});
    reload_ts = &BuildGauge()
                     .Name("portvigil_config_last_reload_success_timestamp_seconds")
                     .Help("Unix time of the last successful configuration (re)load.")
                     .Register(*registry)
                     .Add({});
    database_writable = &BuildGauge()
                             .Name("portvigil_database_writable")
                             .Help(
                                 "1 while the agent's database opens and takes writes; 0 while "
                                 "it cannot (disk full, I/O error): scans wait or fail and no "
                                 "events are produced.")
                             .Register(*registry)
                             .Add({});
    database_writable->Set(1);
    BuildGauge()
        .Name("portvigil_build_info")
        .Help(
            "Always 1; the labels say which portvigil is running: version, revision (the "
            "commit) and the compiler that built it.")
        .Register(*registry)
        .Add({{"version", std::string(kVersion)},
              {"revision", std::string(kRevision)},
              {"compiler", std::string(kCompiler)}})
        .Set(1);
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    {
      std::lock_guard lock(hook_mu);
      if (scrape_hook) scrape_hook();
    }
    std::vector<std::shared_ptr<const JobSnapshot>> snaps;
    {
      std::lock_guard lock(mu);
      for (const auto& [job, s] : snapshots) snaps.push_back(s);
    }
    prometheus::MetricFamily open{"portvigil_port_open",
                                  "1 for each port open as of the job's last completed scan.",
                                  prometheus::MetricType::Gauge,
                                  {}};
    prometheus::MetricFamily unexpected{
        "portvigil_port_unexpected_open",
        "1 for each port open as of the last completed scan that neither the job's policy nor "
        "the accepted baseline expects.",
        prometheus::MetricType::Gauge,
        {}};
    prometheus::MetricFamily since{
        "portvigil_port_unexpected_open_since_timestamp_seconds",
        "For each unexpected open port, since when it has been open at least (Unix time): "
        "its last change to or from open, or when its host was first seen.",
        prometheus::MetricType::Gauge,
        {}};
    prometheus::MetricFamily service_info{
        "portvigil_port_unexpected_open_service_info",
        "1 for each unexpected open TCP port whose opening was identified; the service label "
        "says what answered (the change event's service summary).",
        prometheus::MetricType::Gauge,
        {}};
    prometheus::MetricFamily cert_expiry{
        "portvigil_tls_certificate_expiry_timestamp_seconds",
        "When the TLS certificate last read on an expected open TCP port expires (Unix time).",
        prometheus::MetricType::Gauge,
        {}};
    prometheus::MetricFamily ports{"portvigil_ports",
                                   "Ports by state as of the job's last completed scan.",
                                   prometheus::MetricType::Gauge,
                                   {}};
    std::size_t budget = series_limit;
    std::size_t dropped = 0;
    // Unexpected ports first: they page, so the budget must never hide one of them. Then
    // expected ports; then, from what is left, how long unexpected ports have been open,
    // what answered on them and the certificates of expected ports: none of these ever costs
    // a paging series.
    const auto labels_of = [](const JobSnapshot& s, const OpenPort& p) {
      return std::vector<prometheus::ClientMetric::Label>{{"scan_job", s.job},
                                                          {"host", p.host},
                                                          {"proto", std::string(name(p.proto))},
                                                          {"port", std::to_string(p.port)}};
    };
    std::vector<std::pair<const JobSnapshot*, const OpenPort*>> timed;  // unexpected, with a time
    std::vector<std::pair<const JobSnapshot*, const OpenPort*>> unexpected_ports;
    for (int pass = 0; pass < 2; ++pass) {
      for (const auto& s : snaps) {
        for (const auto& p : s->open_ports) {
          if (p.unexpected != (pass == 0)) continue;
          const std::size_t needed = p.unexpected ? 2 : 1;
          if (budget < needed) {
            ++dropped;
            continue;
          }
          budget -= needed;
          const auto labels = labels_of(*s, p);
          open.metric.push_back(gauge_metric(labels, 1));
          if (p.unexpected) {
            unexpected.metric.push_back(gauge_metric(labels, 1));
            if (p.open_since) timed.emplace_back(s.get(), &p);
            unexpected_ports.emplace_back(s.get(), &p);
          }
        }
      }
    }
    for (const auto& [s, p] : timed) {
      if (budget == 0) {
        ++dropped;
        continue;
      }
      --budget;
      since.metric.push_back(
          gauge_metric(labels_of(*s, *p),
                       std::chrono::duration<double>(p->open_since->time_since_epoch()).count()));
    }
    // What answered on the unexpected ports, for the dashboard's table: after the paging
    // series and their times, from what the budget has left.
    for (const auto& [s, p] : unexpected_ports) {
      if (p->service.empty() || p->proto != Proto::tcp) continue;
      if (budget == 0) {
        ++dropped;
        continue;
      }
      --budget;
      auto labels = labels_of(*s, *p);
      labels.push_back({"service", p->service});
      service_info.metric.push_back(gauge_metric(labels, 1));
    }
    // Certificates last: only expected ports (unexpected ones page already), from what the
    // budget has left.
    for (const auto& s : snaps) {
      for (const auto& p : s->open_ports) {
        if (p.unexpected || !p.tls_not_after || p.proto != Proto::tcp) continue;
        if (budget == 0) {
          ++dropped;
          continue;
        }
        --budget;
        cert_expiry.metric.push_back(gauge_metric(
            {{"scan_job", s->job}, {"host", p.host}, {"port", std::to_string(p.port)}},
            std::chrono::duration<double>(p.tls_not_after->time_since_epoch()).count()));
      }
    }
    for (const auto& s : snaps) {
      for (const auto& [proto, state, count] : s->port_counts) {
        ports.metric.push_back(gauge_metric({{"scan_job", s->job},
                                             {"proto", std::string(name(proto))},
                                             {"state", std::string(name(state))}},
                                            static_cast<double>(count)));
      }
    }
    prometheus::MetricFamily dropped_family{
        "portvigil_port_series_dropped",
        "Per-port series left out by the series limit at the last scrape.",
        prometheus::MetricType::Gauge,
        {gauge_metric({}, static_cast<double>(dropped))}};
    std::vector<prometheus::MetricFamily> out{open,         unexpected,  since,         ports,
                                              service_info, cert_expiry, dropped_family};
    for (auto& f : exporters_detail::process_metric_families()) out.push_back(std::move(f));
    return out;
  }

  std::size_t series_limit;
  std::shared_ptr<prometheus::Registry> registry;
  prometheus::Family<prometheus::Counter>* scans;
  prometheus::Family<prometheus::Counter>* changes;
  prometheus::Family<prometheus::Histogram>* duration;
  prometheus::Family<prometheus::Gauge>* success;
  prometheus::Family<prometheus::Gauge>* last_success;
  prometheus::Family<prometheus::Gauge>* not_compared;
  prometheus::Family<prometheus::Gauge>* gone_silent;
  prometheus::Family<prometheus::Gauge>* refused;
  prometheus::Family<prometheus::Counter>* host_events;
  prometheus::Family<prometheus::Counter>* service_changes;
  prometheus::Family<prometheus::Gauge>* expiry;
  std::vector<prometheus::Gauge*> expiry_series;
  // How to remove each job's series from the registry families, for retain_jobs().
  std::map<std::string, std::vector<std::function<void()>>> job_removers;
  std::mutex series_mu;  // job_removers and the families' membership
  template <typename T, typename... Extra>
  T& job_series(prometheus::Family<T>* family, const std::string& job,
                std::map<std::string, std::string> labels, const Extra&... extra);
  mutable std::mutex hook_mu;
  std::function<void()> scrape_hook;
  prometheus::Family<prometheus::Gauge>* interval;
  prometheus::Family<prometheus::Gauge>* window_open;
  prometheus::Family<prometheus::Gauge>* window_opened;
  prometheus::Family<prometheus::Counter>* probes;
  prometheus::Family<prometheus::Counter>* replies;
  prometheus::Family<prometheus::Counter>* retransmissions;
  prometheus::Family<prometheus::Counter>* drops;
  prometheus::Family<prometheus::Counter>* deferred;
  prometheus::Family<prometheus::Counter>* refused_locally;
  prometheus::Family<prometheus::Counter>* rate_limited;
  prometheus::Family<prometheus::Gauge>* coverage_ports;
  prometheus::Family<prometheus::Gauge>* coverage_verified;
  prometheus::Family<prometheus::Gauge>* coverage_oldest;
  prometheus::Family<prometheus::Gauge>* coverage_period;
  prometheus::Family<prometheus::Gauge>* shard_info;
  prometheus::Gauge* shard_count;
  prometheus::Family<prometheus::Gauge>* sink_pending;
  prometheus::Family<prometheus::Counter>* sink_delivered;
  prometheus::Family<prometheus::Counter>* sink_failures;
  prometheus::Gauge* shard_series = nullptr;
  prometheus::Family<prometheus::Gauge>* owned;
  prometheus::Gauge* reload_ok;
  prometheus::Gauge* reload_ts;
  prometheus::Gauge* database_writable;
  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<const JobSnapshot>> snapshots;
};

AgentMetrics::AgentMetrics(std::size_t port_series_limit)
    : impl_(std::make_shared<Impl>(port_series_limit)) {}
AgentMetrics::~AgentMetrics() = default;

namespace {
using Labels = std::map<std::string, std::string>;
}  // namespace

// Adds (or finds) the job's series in `family` and remembers how to remove it again.
template <typename T, typename... Extra>
T& AgentMetrics::Impl::job_series(prometheus::Family<T>* family, const std::string& job,
                                  Labels labels, const Extra&... extra) {
  labels.emplace("scan_job", job);
  auto& removers = job_removers[job];
  if (!family->Has(labels)) {
    removers.push_back([family, labels, extra...] {
      if (family->Has(labels)) family->Remove(&family->Add(labels, extra...));
    });
  }
  return family->Add(labels, extra...);
}

void AgentMetrics::set_job(const std::string& job, Technique technique,
                           std::chrono::duration<double> interval) {
  auto& i = *impl_;
  std::lock_guard lock(i.series_mu);
  i.job_series(i.interval, job, {}).Set(interval.count());
  // Open and never opened until the agent says otherwise (set_job_window), as a job
  // without windows stays.
  if (!i.window_open->Has({{"scan_job", job}})) i.job_series(i.window_open, job, {}).Set(1);
  i.job_series(i.window_opened, job, {});
  i.job_series(i.success, job, {});
  i.job_series(i.last_success, job, {});
  for (const char* r : {"down", "inconclusive"}) i.job_series(i.not_compared, job, {{"reason", r}});
  i.job_series(i.gone_silent, job, {});
  i.job_series(i.refused, job, {});
  for (const char* r : {"complete", "incomplete"}) i.job_series(i.scans, job, {{"result", r}});
  for (const char* k : {"appeared", "gone-silent"}) i.job_series(i.host_events, job, {{"kind", k}});
  i.job_series(i.service_changes, job, {});
  i.job_series(i.duration, job, {}, duration_buckets());
  i.job_series(i.probes, job, {});
  i.job_series(i.replies, job, {});
  i.job_series(i.retransmissions, job, {});
  i.job_series(i.drops, job, {});
  i.job_series(i.deferred, job, {});
  i.job_series(i.refused_locally, job, {});
  if (technique == Technique::udp) i.job_series(i.rate_limited, job, {});
  // Every change the technique can report starts at 0: increase() over a window with N
  // changes then reads N, and the first change of a kind is not lost.
  const std::string proto{name(proto_of(technique))};
  const auto states = reported_states(technique);
  for (const PortState from : states) {
    for (const PortState to : states) {
      if (from == to) continue;
      i.job_series(
          i.changes, job,
          {{"proto", proto}, {"from", std::string(name(from))}, {"to", std::string(name(to))}});
    }
  }
  if (std::find(states.begin(), states.end(), PortState::open) != states.end()) {
    i.job_series(i.changes, job, {{"proto", proto}, {"from", "absent"}, {"to", "open"}});
  }
}

void AgentMetrics::retain_jobs(const std::vector<std::string>& keep) {
  auto& i = *impl_;
  {
    std::lock_guard lock(i.series_mu);
    for (auto it = i.job_removers.begin(); it != i.job_removers.end();) {
      if (std::find(keep.begin(), keep.end(), it->first) == keep.end()) {
        for (auto& remove : it->second) remove();
        it = i.job_removers.erase(it);
      } else {
        ++it;
      }
    }
  }
  std::lock_guard lock(i.mu);
  for (auto it = i.snapshots.begin(); it != i.snapshots.end();) {
    if (std::find(keep.begin(), keep.end(), it->first) == keep.end()) {
      it = i.snapshots.erase(it);
    } else {
      ++it;
    }
  }
}

void AgentMetrics::record_scan(const std::string& job, Technique technique, ScanOutcome outcome,
                               std::chrono::duration<double> duration,
                               const ScanCounters& counters) {
  auto& i = *impl_;
  std::lock_guard lock(i.series_mu);
  const bool complete = outcome == ScanOutcome::complete;
  i.job_series(i.scans, job, {{"result", complete ? "complete" : "incomplete"}}).Increment();
  i.job_series(i.duration, job, {}, duration_buckets()).Observe(duration.count());
  if (outcome != ScanOutcome::window_closed) i.job_series(i.success, job, {}).Set(complete ? 1 : 0);
  if (complete) i.job_series(i.last_success, job, {}).Set(unix_now());
  i.job_series(i.probes, job, {}).Increment(static_cast<double>(counters.probes_sent));
  i.job_series(i.replies, job, {}).Increment(static_cast<double>(counters.responses));
  i.job_series(i.retransmissions, job, {}).Increment(static_cast<double>(counters.retransmissions));
  i.job_series(i.drops, job, {}).Increment(static_cast<double>(counters.capture_drops));
  i.job_series(i.deferred, job, {}).Increment(static_cast<double>(counters.send_deferred));
  i.job_series(i.refused_locally, job, {})
      .Increment(static_cast<double>(counters.send_refused_locally));
  if (technique == Technique::udp) {
    i.job_series(i.rate_limited, job, {})
        .Increment(static_cast<double>(counters.rate_limited_probes));
  }
}

void AgentMetrics::set_job_window(const std::string& job, bool open,
                                  std::optional<std::chrono::system_clock::time_point> opened) {
  auto& i = *impl_;
  std::lock_guard lock(i.series_mu);
  i.job_series(i.window_open, job, {}).Set(open ? 1 : 0);
  if (opened) {
    i.job_series(i.window_opened, job, {})
        .Set(std::chrono::duration<double>(opened->time_since_epoch()).count());
  }
}

void AgentMetrics::record_udp_coverage(const std::string& job, const UdpCoverage& coverage) {
  auto& i = *impl_;
  std::lock_guard lock(i.series_mu);
  i.job_series(i.coverage_ports, job, {}).Set(static_cast<double>(coverage.ports));
  i.job_series(i.coverage_verified, job, {}).Set(static_cast<double>(coverage.verified));
  i.job_series(i.coverage_oldest, job, {}).Set(coverage.oldest_verification);
  i.job_series(i.coverage_period, job, {}).Set(coverage.period_seconds);
}

void AgentMetrics::record_hosts(const std::string& job, std::size_t down, std::size_t inconclusive,
                                std::size_t silent) {
  auto& i = *impl_;
  std::lock_guard lock(i.series_mu);
  i.job_series(i.not_compared, job, {{"reason", "down"}}).Set(static_cast<double>(down));
  i.job_series(i.not_compared, job, {{"reason", "inconclusive"}})
      .Set(static_cast<double>(inconclusive));
  i.job_series(i.gone_silent, job, {}).Set(static_cast<double>(silent));
}

void AgentMetrics::record_scope(const std::string& job, std::uint64_t refused_targets) {
  auto& i = *impl_;
  std::lock_guard lock(i.series_mu);
  i.job_series(i.refused, job, {}).Set(static_cast<double>(refused_targets));
}

void AgentMetrics::record_change(const std::string& job, Proto proto, std::optional<PortState> from,
                                 PortState to) {
  auto& i = *impl_;
  std::lock_guard lock(i.series_mu);
  i.job_series(i.changes, job,
               {{"proto", std::string(name(proto))},
                {"from", from ? std::string(name(*from)) : std::string("absent")},
                {"to", std::string(name(to))}})
      .Increment();
}

void AgentMetrics::record_host_event(const std::string& job, HostEvent kind) {
  auto& i = *impl_;
  std::lock_guard lock(i.series_mu);
  i.job_series(i.host_events, job,
               {{"kind", kind == HostEvent::appeared ? "appeared" : "gone-silent"}})
      .Increment();
}

void AgentMetrics::record_service_change(const std::string& job) {
  auto& i = *impl_;
  std::lock_guard lock(i.series_mu);
  i.job_series(i.service_changes, job, {}).Increment();
}

void AgentMetrics::restore_last_success(const std::string& job,
                                        std::chrono::system_clock::time_point when) {
  auto& i = *impl_;
  std::lock_guard lock(i.series_mu);
  auto& gauge = i.job_series(i.last_success, job, {});
  const double at = std::chrono::duration<double>(when.time_since_epoch()).count();
  if (at > gauge.Value()) gauge.Set(at);
}

void AgentMetrics::publish(JobSnapshot snapshot) {
  auto ptr = std::make_shared<const JobSnapshot>(std::move(snapshot));
  std::lock_guard lock(impl_->mu);
  impl_->snapshots[ptr->job] = std::move(ptr);
}

void AgentMetrics::accept_ports(
    const std::string& job,
    const std::vector<std::tuple<std::string, Proto, std::uint16_t>>& ports) {
  std::lock_guard lock(impl_->mu);
  const auto it = impl_->snapshots.find(job);
  if (it == impl_->snapshots.end()) return;
  bool changed = false;
  JobSnapshot copy = *it->second;
  for (auto& p : copy.open_ports) {
    if (!p.unexpected) continue;
    if (std::find(ports.begin(), ports.end(), std::make_tuple(p.host, p.proto, p.port)) !=
        ports.end()) {
      p.unexpected = false;
      changed = true;
    }
  }
  if (changed) it->second = std::make_shared<const JobSnapshot>(std::move(copy));
}

void AgentMetrics::set_scrape_hook(std::function<void()> hook) {
  std::lock_guard lock(impl_->hook_mu);
  impl_->scrape_hook = std::move(hook);
}

void AgentMetrics::set_authorizations(const std::vector<Authorization>& authorizations) {
  auto& i = *impl_;
  std::lock_guard lock(i.series_mu);
  for (auto* g : i.expiry_series) i.expiry->Remove(g);
  i.expiry_series.clear();
  for (const auto& a : authorizations) {
    if (!a.expires) continue;
    auto& g = i.expiry->Add({{"network", a.network}, {"owner", a.owner}, {"ticket", a.ticket}});
    g.Set(std::chrono::duration<double>(a.expires->time_since_epoch()).count());
    i.expiry_series.push_back(&g);
  }
}

void AgentMetrics::set_shard(const Shard& shard, const std::string& replica) {
  auto& i = *impl_;
  std::lock_guard lock(i.series_mu);
  if (i.shard_series != nullptr) i.shard_info->Remove(i.shard_series);
  i.shard_series = &i.shard_info->Add({{"shard", std::to_string(shard.index)},
                                       {"shards", std::to_string(shard.count)},
                                       {"replica", replica}});
  i.shard_series->Set(1);
  i.shard_count->Set(static_cast<double>(shard.count));
}

void AgentMetrics::set_sink_pending(const std::string& sink, std::size_t pending) {
  auto& i = *impl_;
  std::lock_guard lock(i.series_mu);
  i.sink_pending->Add({{"sink", sink}}).Set(static_cast<double>(pending));
  i.sink_delivered->Add({{"sink", sink}});
  i.sink_failures->Add({{"sink", sink}});
}

void AgentMetrics::record_sink_delivery(const std::string& sink, bool delivered,
                                        std::size_t events) {
  auto& i = *impl_;
  std::lock_guard lock(i.series_mu);
  if (delivered) {
    i.sink_delivered->Add({{"sink", sink}}).Increment(static_cast<double>(events));
  } else {
    i.sink_failures->Add({{"sink", sink}}).Increment();
  }
}

void AgentMetrics::record_targets_owned(const std::string& job, std::uint64_t owned) {
  auto& i = *impl_;
  std::lock_guard lock(i.series_mu);
  i.job_series(i.owned, job, {}).Set(static_cast<double>(owned));
}

void AgentMetrics::record_reload(bool success) {
  impl_->reload_ok->Set(success ? 1 : 0);
  if (success) impl_->reload_ts->Set(unix_now());
}

void AgentMetrics::set_database_writable(bool writable) {
  impl_->database_writable->Set(writable ? 1 : 0);
}

std::string AgentMetrics::render() const {
  auto families = impl_->registry->Collect();
  auto own = impl_->Collect();
  families.insert(families.end(), own.begin(), own.end());
  return prometheus::TextSerializer().Serialize(families);
}

// ---- HTTP ------------------------------------------------------------------------------

namespace {

constexpr const char* kLanding =
    "<!DOCTYPE html><html><head><title>portvigil</title></head><body>"
    "<h1>portvigil</h1><p>Continuous port-exposure monitoring agent.</p>"
    "<ul><li><a href=\"metrics\">Metrics</a></li><li><a href=\"-/healthy\">Health</a></li>"
    "<li><a href=\"-/ready\">Readiness</a></li></ul></body></html>\n";

}  // namespace

bool secret_equals(std::string_view given, std::string_view secret) {
  // Every byte of the secret is looked at whatever `given` holds; only the length of
  // `given` (the client's own input) shows in the time.
  unsigned diff = given.size() == secret.size() ? 0u : 1u;
  for (std::size_t i = 0; i < secret.size(); ++i) {
    const auto g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0u;
    diff |= g ^ static_cast<unsigned char>(secret[i]);
  }
  // Keep the compiler from turning the loop into an early-exit comparison.
  volatile unsigned sink = diff;
  return sink == 0;
}

struct MetricsServer::Impl {
  std::atomic<bool> ready{false};
  std::atomic<bool> tls{false};
  std::string expected_authorization;  // "Basic base64(user:password)", "" without auth
  std::string web_config_file;
  std::mutex mu;  // guards the two below, replaced by reload_web_config()
  std::shared_ptr<web::BasicAuth> users;
  std::vector<std::pair<std::string, std::string>> headers;
  std::unique_ptr<http::Server> server;

  http::Response route(const http::Request& r, AgentMetrics& metrics) const {
    using http::Response;
    if (r.path == "/-/healthy")
      return {200, "OK", "text/plain; charset=utf-8", "portvigil is healthy.\n"};
    if (r.path == "/-/ready") {
      if (ready) return {200, "OK", "text/plain; charset=utf-8", "portvigil is ready.\n"};
      return {503, "Service Unavailable", "text/plain; charset=utf-8", "portvigil is not ready.\n"};
    }
    if (r.path == "/") return {200, "OK", "text/html; charset=utf-8", kLanding};
    if (r.path == "/metrics") {
      return {200, "OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render()};
    }
    return {404, "Not Found", "text/plain; charset=utf-8", "Not Found\n"};
  }

  static http::Response unauthorized() {
    return {401,
            "Unauthorized",
            "text/plain; charset=utf-8",
            "Unauthorized\n",
            {{"WWW-Authenticate", "Basic realm=\"portvigil\""}}};
  }
};

MetricsServer::MetricsServer(const WebOptions& options, AgentMetrics& metrics)
    : impl_(std::make_unique<Impl>()) {
  if (!options.username.empty() && !options.password.empty()) {
    impl_->expected_authorization =
        "Basic " + http::base64(options.username + ":" + options.password);
  }
  std::optional<http::TlsSettings> tls;
  if (!options.config_file.empty()) {
    if (!impl_->expected_authorization.empty()) {
      throw std::runtime_error(
          "metrics endpoint: web-username/web-password and a web configuration file exclude "
          "each other (put the user in basic_auth_users)");
    }
    auto config = web::load_web_config(options.config_file);
    impl_->web_config_file = options.config_file;
    impl_->users = std::make_shared<web::BasicAuth>(std::move(config.basic_auth_users));
    impl_->headers = std::move(config.headers);
    tls = std::move(config.tls);
  }
  // Credentials guard every path but the two probes, which say nothing but "up" and which
  // health checkers call without credentials: those are answered on the I/O thread at once,
  // so that a flood of password guesses (bcrypt, on the worker) cannot make them fail.
  auto immediate = [impl = impl_.get(),
                    &metrics](const http::Request& r) -> std::optional<http::Response> {
    if (r.path != "/-/healthy" && r.path != "/-/ready") return std::nullopt;
    auto response = impl->route(r, metrics);
    std::lock_guard lock(impl->mu);
    response.headers.insert(response.headers.end(), impl->headers.begin(), impl->headers.end());
    return response;
  };
  auto handler = [impl = impl_.get(), &metrics](const http::Request& r) -> http::Response {
    std::shared_ptr<web::BasicAuth> users;
    std::vector<std::pair<std::string, std::string>> headers;
    {
      std::lock_guard lock(impl->mu);
      users = impl->users;
      headers = impl->headers;
    }
    const bool allowed = users ? users->allows(r.authorization)
                               : impl->expected_authorization.empty() ||
                                     secret_equals(r.authorization, impl->expected_authorization);
    auto response = allowed ? impl->route(r, metrics) : Impl::unauthorized();
    response.headers.insert(response.headers.end(), headers.begin(), headers.end());
    return response;
  };
  try {
    impl_->server = std::make_unique<http::Server>(options.listen_address, std::move(handler),
                                                   http::Limits{}, tls, std::move(immediate));
  } catch (const http::TlsError& e) {
    throw std::runtime_error("metrics endpoint: " + options.config_file + ": " + e.what());
  } catch (const std::exception& e) {
    throw std::runtime_error("metrics endpoint: cannot listen on " + options.listen_address + ": " +
                             e.what());
  }
  impl_->tls = tls.has_value();
}

const std::string& MetricsServer::web_config_file() const {
  return impl_->web_config_file;
}

void MetricsServer::reload_web_config() {
  if (impl_->web_config_file.empty()) {
    throw std::runtime_error("the endpoint was started without a web configuration file");
  }
  auto config = web::load_web_config(impl_->web_config_file);
  // A file cut short while being edited can still be valid YAML: never let a reload quietly
  // turn TLS or passwords off. That takes a restart.
  if (impl_->tls && !config.tls) {
    throw std::runtime_error(impl_->web_config_file +
                             ": it no longer enables TLS; turning TLS off takes a restart");
  }
  bool had_users = false;
  {
    std::lock_guard lock(impl_->mu);
    had_users = impl_->users && impl_->users->enabled();
  }
  if (had_users && config.basic_auth_users.empty()) {
    throw std::runtime_error(impl_->web_config_file +
                             ": it no longer lists basic_auth_users; turning basic auth off "
                             "takes a restart");
  }
  impl_->server->set_tls(config.tls);  // throws before anything changes
  auto users = std::make_shared<web::BasicAuth>(std::move(config.basic_auth_users));
  {
    std::lock_guard lock(impl_->mu);
    impl_->users = std::move(users);
    impl_->headers = std::move(config.headers);
  }
  impl_->tls = config.tls.has_value();
}

void MetricsServer::check_web_config(const std::string& path) {
  const auto config = web::load_web_config(path);
  if (!config.tls) return;
  try {
    http::check_tls(*config.tls);
  } catch (const http::TlsError& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

bool MetricsServer::tls() const {
  return impl_->tls;
}

MetricsServer::~MetricsServer() = default;

void MetricsServer::set_ready(bool ready) {
  impl_->ready = ready;
}

std::vector<int> MetricsServer::ports() const {
  return impl_->server->ports();
}

}  // namespace portvigil
