// Nmap's grepable output (-oG): a "#" header, two tab-separated lines per host
// ("Status: Up", then "Ports: port/state/proto/owner/service/rpc/version/, ..."), and a
// "# ... done at" trailer.
#include <algorithm>
#include <string>
#include <vector>

#include "portvigil/common/version.hpp"
#include "portvigil/exporters/reports.hpp"
#include "report_util.hpp"

namespace portvigil {
namespace {

class GrepableReport final : public ReportSink {
 public:
  GrepableReport(std::ostream& out, ReportOptions options) : out_(out), options_(options) {}

  void begin(const ScanInfo& info) override {
    out_ << "# portvigil " << kVersion << " scan initiated " << report::ctime_utc(info.start)
         << " as: " << report::printable(info.command_line) << '\n';
    out_.flush();
  }

  void host(const HostResult& host) override {
    if (!report::listed(host)) return;
    const std::string prefix =
        "Host: " + report::address_text(host) + " (" + report::printable(host.hostname) + ")\t";
    if (!host.complete) {
      out_ << "# Warning: " << report::address_text(host) << " giving up on host: "
           << (host.note.empty() ? std::string{"scan incomplete"} : report::printable(host.note))
           << '\n';
    }
    out_ << prefix << "Status: Up\n";

    const auto hidden = report::hidden_groups(host, options_.open_only);
    std::string ports;
    for (const auto& p : host.ports) {
      if (report::in_groups(hidden, p)) continue;
      if (!ports.empty()) ports += ", ";
      ports += std::to_string(p.port);
      ports += '/';
      ports += name(p.state);
      ports += '/';
      ports += name(p.proto);
      ports += "//";
      ports += report::service_name_of(host, p);
      ports += "//";
      if (const ServiceIdentity* id = report::identity_of(host, p)) {
        // The version field: Nmap writes '/' inside a field as '|', and ',' separates ports.
        std::string version = service_details(*id);
        std::replace(version.begin(), version.end(), '/', '|');
        std::replace(version.begin(), version.end(), ',', ';');
        ports += version;
      }
      ports += '/';
    }
    // One "state (count)" per hidden state; tcp and udp ports of one state add up.
    std::vector<std::pair<PortState, std::size_t>> ignored;
    for (const auto& g : hidden) {
      bool merged = false;
      for (auto& [state, count] : ignored) {
        if (state == g.state) {
          count += g.count;
          merged = true;
        }
      }
      if (!merged) ignored.emplace_back(g.state, g.count);
    }

    if (ports.empty() && ignored.empty()) {
      out_.flush();
      return;
    }
    out_ << prefix;
    if (!ports.empty()) out_ << "Ports: " << ports;
    if (!ignored.empty()) {
      out_ << (ports.empty() ? "" : "\t") << "Ignored State: ";
      for (std::size_t i = 0; i < ignored.size(); ++i) {
        out_ << (i == 0 ? "" : ", ") << name(ignored[i].first) << " (" << ignored[i].second << ')';
      }
    }
    out_ << '\n';
    out_.flush();
  }

  void end(const ScanSummary& summary) override {
    if (!summary.error.empty()) out_ << "# ERROR: " << report::printable(summary.error) << '\n';
    out_ << "# portvigil done at " << report::ctime_utc(summary.end) << " -- "
         << report::done_summary(summary) << '\n';
    out_.flush();
  }

 private:
  std::ostream& out_;
  ReportOptions options_;
};

}  // namespace

std::unique_ptr<ReportSink> make_grepable_report(std::ostream& out, ReportOptions options) {
  return std::make_unique<GrepableReport>(out, options);
}

}  // namespace portvigil
