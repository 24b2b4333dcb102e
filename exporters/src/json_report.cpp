// JSON (-oJ): one document, schema in docs/scan-json.md. begin() opens the document and the
// "hosts" array, host() appends one element, end() closes the array and adds the summary.
#include <string>

#include "portvigil/common/version.hpp"
#include "portvigil/exporters/reports.hpp"
#include "report_util.hpp"

namespace portvigil {
namespace {

using report::json_string;

std::string_view json_bool(bool value) {
  return value ? "true" : "false";
}

class JsonReport final : public ReportSink {
 public:
  explicit JsonReport(std::ostream& out) : out_(out) {}

  void begin(const ScanInfo& info) override {
    out_ << "{\n  \"scanner\": \"portvigil\",\n  \"version\": " << json_string(kVersion)
         << ",\n  \"args\": " << json_string(info.command_line)
         << ",\n  \"technique\": " << json_string(name(info.technique))
         << ",\n  \"start\": " << json_string(report::iso8601_utc(info.start))
         << ",\n  \"ports_scanned\": {\"tcp\": " << info.tcp_port_count
         << ", \"udp\": " << info.udp_port_count << "},\n  \"hosts\": [";
    out_.flush();
    begun_ = true;
  }

  void host(const HostResult& host) override {
    if (!report::listed(host)) return;
    if (!begun_) begin(ScanInfo{});
    out_ << (hosts_ == 0 ? "\n" : ",\n");
    ++hosts_;
    out_ << "    {\"address\": " << json_string(report::address_text(host))
         << ", \"family\": " << json_string(report::family(host))
         << ", \"hostname\": " << json_string(host.hostname)
         << ", \"status_reason\": " << json_string(report::status_reason(host))
         << ", \"complete\": " << json_bool(host.complete)
         << ", \"inconclusive\": " << json_bool(host.inconclusive)
         << ", \"note\": " << json_string(host.note)
         << ", \"elapsed_seconds\": " << report::fixed(host.elapsed.count(), 3)
         << ",\n     \"majority\": {";
    // Unlike the table and XML, JSON always separates the majority, collapsed or not.
    const auto majority = report::majority_groups(host);
    for (std::size_t i = 0; i < majority.size(); ++i) {
      const auto& g = majority[i];
      out_ << (i == 0 ? "" : ", ") << json_string(name(g.proto))
           << ": {\"state\": " << json_string(name(g.state)) << ", \"count\": " << g.count
           << ", \"reasons\": {";
      for (std::size_t r = 0; r < g.reasons.size(); ++r) {
        out_ << (r == 0 ? "" : ", ") << json_string(name(g.reasons[r].first)) << ": "
             << g.reasons[r].second;
      }
      out_ << "}}";
    }
    out_ << "},\n     \"ports\": [";
    bool first = true;
    for (const auto& p : host.ports) {
      if (report::in_groups(majority, p)) continue;
      out_ << (first ? "\n" : ",\n") << "      {\"proto\": " << json_string(name(p.proto))
           << ", \"port\": " << p.port << ", \"state\": " << json_string(name(p.state))
           << ", \"reason\": " << json_string(name(p.reason))
           << ", \"ttl\": " << static_cast<unsigned>(p.ttl)
           << ", \"service\": " << json_string(report::service_of(p)) << '}';
      first = false;
    }
    out_ << (first ? "]" : "\n     ]");
    // --identify: what answered on each open TCP port, whichever side of the majority split
    // the port is on.
    if (!host.services.empty()) {
      out_ << ",\n     \"services\": [";
      for (std::size_t i = 0; i < host.services.size(); ++i) {
        out_ << (i == 0 ? "\n" : ",\n")
             << "      {\"proto\": \"tcp\", \"port\": " << host.services[i].port
             << ", \"identity\": " << service_json(host.services[i].identity) << '}';
      }
      out_ << "\n     ]";
    }
    out_ << '}';
    out_.flush();
  }

  void end(const ScanSummary& summary) override {
    if (!begun_) begin(ScanInfo{});
    const auto& c = summary.counters;
    out_ << (hosts_ == 0 ? "],\n" : "\n  ],\n")
         << "  \"end\": " << json_string(report::iso8601_utc(summary.end))
         << ",\n  \"elapsed_seconds\": " << report::fixed(summary.elapsed.count(), 3)
         << ",\n  \"stats\": {\"hosts_total\": " << summary.hosts_total
         << ", \"hosts_up\": " << summary.hosts_up << ", \"probes_sent\": " << c.probes_sent
         << ", \"retransmissions\": " << c.retransmissions << ", \"responses\": " << c.responses
         << ", \"refused_by_scope\": " << c.refused_by_scope
         << ", \"capture_drops\": " << c.capture_drops
         << ", \"effective_rate\": " << report::fixed(c.effective_rate, 1)
         << "},\n  \"interrupted\": " << json_bool(summary.interrupted)
         << ",\n  \"error\": " << json_string(summary.error) << "\n}\n";
    out_.flush();
  }

 private:
  std::ostream& out_;
  bool begun_ = false;
  std::size_t hosts_ = 0;
};

}  // namespace

std::unique_ptr<ReportSink> make_json_report(std::ostream& out) {
  return std::make_unique<JsonReport>(out);
}

}  // namespace portvigil
