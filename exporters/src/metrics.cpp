#include "portvigil/exporters/metrics.hpp"

#include <CivetServer.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "portvigil/common/version.hpp"

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

}  // namespace

// Per-port families come from snapshots at scrape time (a Collectable), everything else
// from a Registry of long-lived metrics.
struct AgentMetrics::Impl : prometheus::Collectable {
  explicit Impl(std::size_t limit)
      : series_limit(limit), registry(std::make_shared<prometheus::Registry>()) {
    using namespace prometheus;
    scans = &BuildCounter()
                 .Name("portvigil_scans_total")
                 .Help("Scans finished, by job and result (complete, incomplete).")
                 .Register(*registry);
    changes = &BuildCounter()
                   .Name("portvigil_port_state_changes_total")
                   .Help("Confirmed port state changes, by job, protocol and states.")
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
                            "Hosts of the job's last finished scan that were not compared with "
                            "their baseline: reason=down (no reply at all) or "
                            "reason=inconclusive (silence that cannot be trusted).")
                        .Register(*registry);
    last_success = &BuildGauge()
                        .Name("portvigil_last_scan_success_timestamp_seconds")
                        .Help("Unix time the job's last complete scan finished.")
                        .Register(*registry);
    interval = &BuildGauge()
                    .Name("portvigil_job_interval_seconds")
                    .Help("Configured time between two scans of the job.")
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
    BuildGauge()
        .Name("portvigil_build_info")
        .Help("Always 1; the version label says which portvigil is running.")
        .Register(*registry)
        .Add({{"version", std::string(kVersion)}})
        .Set(1);
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
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
    prometheus::MetricFamily ports{"portvigil_ports",
                                   "Ports by state as of the job's last completed scan.",
                                   prometheus::MetricType::Gauge,
                                   {}};
    std::size_t budget = series_limit;
    std::size_t dropped = 0;
    // Unexpected ports first: they page, so the budget must never hide one of them.
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
          std::vector<prometheus::ClientMetric::Label> labels{{"job", s->job},
                                                              {"host", p.host},
                                                              {"proto", std::string(name(p.proto))},
                                                              {"port", std::to_string(p.port)}};
          open.metric.push_back(gauge_metric(labels, 1));
          if (p.unexpected) unexpected.metric.push_back(gauge_metric(labels, 1));
        }
      }
    }
    for (const auto& s : snaps) {
      for (const auto& [proto, state, count] : s->port_counts) {
        ports.metric.push_back(gauge_metric({{"job", s->job},
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
    return {open, unexpected, ports, dropped_family};
  }

  std::size_t series_limit;
  std::shared_ptr<prometheus::Registry> registry;
  prometheus::Family<prometheus::Counter>* scans;
  prometheus::Family<prometheus::Counter>* changes;
  prometheus::Family<prometheus::Histogram>* duration;
  prometheus::Family<prometheus::Gauge>* success;
  prometheus::Family<prometheus::Gauge>* last_success;
  prometheus::Family<prometheus::Gauge>* not_compared;
  prometheus::Family<prometheus::Gauge>* interval;
  prometheus::Family<prometheus::Counter>* probes;
  prometheus::Family<prometheus::Counter>* replies;
  prometheus::Family<prometheus::Counter>* retransmissions;
  prometheus::Family<prometheus::Counter>* drops;
  prometheus::Gauge* reload_ok;
  prometheus::Gauge* reload_ts;
  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<const JobSnapshot>> snapshots;
};

AgentMetrics::AgentMetrics(std::size_t port_series_limit)
    : impl_(std::make_shared<Impl>(port_series_limit)) {}
AgentMetrics::~AgentMetrics() = default;

namespace {
const prometheus::Histogram::BucketBoundaries& duration_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{0.1, 0.25, 0.5, 1,   2.5, 5,
                                                         10,  30,   60,  300, 900, 3600};
  return b;
}
}  // namespace

void AgentMetrics::set_job(const std::string& job, std::chrono::duration<double> interval) {
  auto& i = *impl_;
  i.interval->Add({{"job", job}}).Set(interval.count());
  i.success->Add({{"job", job}});
  i.last_success->Add({{"job", job}});
  for (const char* r : {"down", "inconclusive"}) i.not_compared->Add({{"job", job}, {"reason", r}});
  for (const char* r : {"complete", "incomplete"}) i.scans->Add({{"job", job}, {"result", r}});
  i.duration->Add({{"job", job}}, duration_buckets());
  i.probes->Add({{"job", job}});
  i.replies->Add({{"job", job}});
  i.retransmissions->Add({{"job", job}});
  i.drops->Add({{"job", job}});
}

void AgentMetrics::retain_jobs(const std::vector<std::string>& keep) {
  std::lock_guard lock(impl_->mu);
  for (auto it = impl_->snapshots.begin(); it != impl_->snapshots.end();) {
    if (std::find(keep.begin(), keep.end(), it->first) == keep.end()) {
      it = impl_->snapshots.erase(it);
    } else {
      ++it;
    }
  }
}

void AgentMetrics::record_scan(const std::string& job, Technique technique, bool complete,
                               std::chrono::duration<double> duration,
                               const ScanCounters& counters) {
  (void)technique;
  auto& i = *impl_;
  i.scans->Add({{"job", job}, {"result", complete ? "complete" : "incomplete"}}).Increment();
  i.duration->Add({{"job", job}}, duration_buckets()).Observe(duration.count());
  i.success->Add({{"job", job}}).Set(complete ? 1 : 0);
  if (complete) i.last_success->Add({{"job", job}}).Set(unix_now());
  i.probes->Add({{"job", job}}).Increment(static_cast<double>(counters.probes_sent));
  i.replies->Add({{"job", job}}).Increment(static_cast<double>(counters.responses));
  i.retransmissions->Add({{"job", job}}).Increment(static_cast<double>(counters.retransmissions));
  i.drops->Add({{"job", job}}).Increment(static_cast<double>(counters.capture_drops));
}

void AgentMetrics::record_hosts_not_compared(const std::string& job, std::size_t down,
                                             std::size_t inconclusive) {
  auto& i = *impl_;
  i.not_compared->Add({{"job", job}, {"reason", "down"}}).Set(static_cast<double>(down));
  i.not_compared->Add({{"job", job}, {"reason", "inconclusive"}})
      .Set(static_cast<double>(inconclusive));
}

void AgentMetrics::record_change(const std::string& job, Proto proto, PortState from,
                                 PortState to) {
  impl_->changes
      ->Add({{"job", job},
             {"proto", std::string(name(proto))},
             {"from", std::string(name(from))},
             {"to", std::string(name(to))}})
      .Increment();
}

void AgentMetrics::publish(JobSnapshot snapshot) {
  auto ptr = std::make_shared<const JobSnapshot>(std::move(snapshot));
  std::lock_guard lock(impl_->mu);
  impl_->snapshots[ptr->job] = std::move(ptr);
}

void AgentMetrics::record_reload(bool success) {
  impl_->reload_ok->Set(success ? 1 : 0);
  if (success) impl_->reload_ts->Set(unix_now());
}

std::string AgentMetrics::render() const {
  auto families = impl_->registry->Collect();
  auto own = impl_->Collect();
  families.insert(families.end(), own.begin(), own.end());
  return prometheus::TextSerializer().Serialize(families);
}

// ---- HTTP ------------------------------------------------------------------------------

namespace {

// civetweb calls begin_request without a pointer to us; one server per process.
std::atomic<const std::atomic<bool>*> g_ready{nullptr};

constexpr const char* kLanding =
    "<!DOCTYPE html><html><head><title>portvigil</title></head><body>"
    "<h1>portvigil</h1><p>Continuous port-exposure monitoring agent.</p>"
    "<ul><li><a href=\"metrics\">Metrics</a></li><li><a href=\"-/healthy\">Health</a></li>"
    "<li><a href=\"-/ready\">Readiness</a></li></ul></body></html>\n";

void reply(mg_connection* conn, int status, const char* reason, const char* type,
           const std::string& body) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            status, reason, type, body.size());
  mg_write(conn, body.data(), body.size());
}

int begin_request(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  const std::string uri = info && info->local_uri ? info->local_uri : "";
  if (uri == "/-/healthy") {
    reply(conn, 200, "OK", "text/plain; charset=utf-8", "portvigil is healthy.\n");
    return 200;
  }
  if (uri == "/-/ready") {
    const auto* ready = g_ready.load();
    if (ready && ready->load()) {
      reply(conn, 200, "OK", "text/plain; charset=utf-8", "portvigil is ready.\n");
      return 200;
    }
    reply(conn, 503, "Service Unavailable", "text/plain; charset=utf-8",
          "portvigil is not ready.\n");
    return 503;
  }
  if (uri == "/") {
    reply(conn, 200, "OK", "text/html; charset=utf-8", kLanding);
    return 200;
  }
  return 0;  // /metrics and everything else: prometheus-cpp (404 for unknown paths)
}

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
  CivetCallbacks callbacks{};
  std::unique_ptr<prometheus::Exposer> exposer;
};

MetricsServer::MetricsServer(const WebOptions& options, AgentMetrics& metrics)
    : impl_(std::make_unique<Impl>()) {
  impl_->callbacks.begin_request = begin_request;
  g_ready = &impl_->ready;
  try {
    impl_->exposer = std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", options.listen_address, "num_threads", "2"},
        &impl_->callbacks);
  } catch (const std::exception& e) {
    g_ready = nullptr;
    throw std::runtime_error("metrics endpoint: cannot listen on " + options.listen_address + ": " +
                             e.what());
  }
  const auto& m = metrics.impl();
  impl_->exposer->RegisterCollectable(m->registry);
  impl_->exposer->RegisterCollectable(m);
  if (!options.username.empty() && !options.password.empty()) {
    impl_->exposer->RegisterAuth(
        [user = options.username, pass = options.password](const std::string& u,
                                                           const std::string& p) {
          // Both compared whole (no short-circuit): the time does not tell which one, or
          // how much of it, was right.
          const bool user_ok = secret_equals(u, user);
          const bool pass_ok = secret_equals(p, pass);
          return user_ok && pass_ok;
        },
        "portvigil");
  }
}

MetricsServer::~MetricsServer() {
  impl_->exposer.reset();
  g_ready = nullptr;
}

void MetricsServer::set_ready(bool ready) {
  impl_->ready = ready;
}

std::vector<int> MetricsServer::ports() const {
  return impl_->exposer->GetListeningPorts();
}

}  // namespace portvigil
