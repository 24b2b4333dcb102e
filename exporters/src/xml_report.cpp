// Nmap XML (-oX), xmloutputversion 1.05, in the shape Debian's ndiff reads: the header in
// begin(), one <host> per host() call, <runstats> in end().
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "portvigil/common/version.hpp"
#include "portvigil/exporters/reports.hpp"
#include "report_util.hpp"

namespace portvigil {
namespace {

using report::xml_escape;

// Nmap's scaninfo type for a protocol: the technique when it scans that protocol.
std::string_view scan_type(Technique technique, Proto proto) {
  if (proto == Proto::udp) return "udp";
  return proto_of(technique) == Proto::tcp ? name(technique) : "connect";
}

class XmlReport final : public ReportSink {
 public:
  XmlReport(std::ostream& out, ReportOptions options) : out_(out), options_(options) {}

  void begin(const ScanInfo& info) override {
    out_ << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         << "<!DOCTYPE nmaprun>\n"
         << "<nmaprun scanner=\"portvigil\" args=\"" << xml_escape(info.command_line)
         << "\" start=\"" << report::unix_seconds(info.start) << "\" startstr=\""
         << xml_escape(report::ctime_utc(info.start)) << "\" version=\"" << kVersion
         << "\" xmloutputversion=\"1.05\">\n";
    const auto scaninfo = [&](Proto proto, std::size_t count, const std::string& services) {
      if (count == 0) return;
      out_ << "<scaninfo type=\"" << scan_type(info.technique, proto) << "\" protocol=\""
           << name(proto) << "\" numservices=\"" << count << "\" services=\""
           << xml_escape(services) << "\"/>\n";
    };
    scaninfo(Proto::tcp, info.tcp_port_count, info.tcp_ports);
    scaninfo(Proto::udp, info.udp_port_count, info.udp_ports);
    out_ << "<verbose level=\"0\"/>\n<debugging level=\"0\"/>\n";
    out_.flush();
  }

  void host(const HostResult& host) override {
    if (!report::listed(host)) return;
    const auto now = std::chrono::system_clock::now();
    const auto started =
        now - std::chrono::duration_cast<std::chrono::system_clock::duration>(host.elapsed);
    out_ << "<host starttime=\"" << report::unix_seconds(started) << "\" endtime=\""
         << report::unix_seconds(now) << '"';
    if (!host.complete) {
      out_ << " timedout=\"true\" comment=\""
           << xml_escape(host.note.empty() ? std::string{"scan incomplete"} : host.note) << '"';
    }
    out_ << "><status state=\"up\" reason=\"" << report::status_reason(host)
         << "\" reason_ttl=\"0\"/>\n"
         << "<address addr=\"" << xml_escape(report::address_text(host)) << "\" addrtype=\""
         << report::family(host) << "\"/>\n<hostnames>\n";
    if (!host.hostname.empty()) {
      out_ << "<hostname name=\"" << xml_escape(host.hostname) << "\" type=\"user\"/>\n";
    }
    out_ << "</hostnames>\n<ports>";
    const auto hidden = report::hidden_groups(host, options_.open_only);
    write_extraports(host, hidden);
    for (const auto& p : host.ports) {
      if (report::in_groups(hidden, p)) continue;
      out_ << "<port protocol=\"" << name(p.proto) << "\" portid=\"" << p.port
           << "\"><state state=\"" << name(p.state) << "\" reason=\"" << name(p.reason)
           << "\" reason_ttl=\"" << static_cast<unsigned>(p.ttl) << "\"/>";
      const ServiceIdentity* id = report::identity_of(host, p);
      if (id != nullptr && (!id->protocol.empty() || !id->banner.empty())) {
        // Nmap's form for a probed service: TLS-wrapped protocols carry tunnel="ssl"; a
        // banner no rule knows keeps the port table's name.
        const bool tls = id->tls.has_value();
        const std::string service_name = id->protocol == "https" ? "http"
                                         : id->protocol == "tls" ? "ssl"
                                         : id->protocol.empty() ? std::string(report::service_of(p))
                                                                : id->protocol;
        out_ << "<service name=\"" << xml_escape(service_name) << "\" extrainfo=\""
             << xml_escape(service_details(*id)) << '"' << (tls ? " tunnel=\"ssl\"" : "")
             << " method=\"probed\" conf=\"10\"/>";
      } else if (const auto service = report::service_of(p); !service.empty()) {
        out_ << "<service name=\"" << xml_escape(service) << "\" method=\"table\" conf=\"3\"/>";
      }
      out_ << "</port>\n";
    }
    out_ << "</ports>\n<times srtt=\"0\" rttvar=\"0\" to=\"0\"/>\n</host>\n";
    out_.flush();
  }

  void end(const ScanSummary& summary) override {
    const std::string timestr = report::ctime_utc(summary.end);
    const std::string text = "portvigil done at " + timestr + "; " + report::done_summary(summary);
    const std::size_t down =
        summary.hosts_total > summary.hosts_up ? summary.hosts_total - summary.hosts_up : 0;
    out_ << "<runstats><finished time=\"" << report::unix_seconds(summary.end) << "\" timestr=\""
         << xml_escape(timestr) << "\" summary=\"" << xml_escape(text) << "\" elapsed=\""
         << report::fixed(summary.elapsed.count(), 2) << "\" exit=\""
         << (summary.error.empty() ? "success" : "error") << '"';
    if (!summary.error.empty()) out_ << " errormsg=\"" << xml_escape(summary.error) << '"';
    out_ << "/><hosts up=\"" << summary.hosts_up << "\" down=\"" << down << "\" total=\""
         << summary.hosts_total << "\"/>\n</runstats>\n</nmaprun>\n";
    out_.flush();
  }

 private:
  // Nmap writes one <extraports> per state (ndiff keys them by state), with an
  // <extrareasons> per (protocol, reason) carrying the hidden ports as ranges.
  void write_extraports(const HostResult& host, const std::vector<report::HiddenGroup>& hidden) {
    std::vector<PortState> states;
    for (const auto& g : hidden) {
      if (std::find(states.begin(), states.end(), g.state) == states.end()) {
        states.push_back(g.state);
      }
    }
    for (const PortState state : states) {
      std::size_t count = 0;
      for (const auto& g : hidden) count += g.state == state ? g.count : 0;
      out_ << "<extraports state=\"" << name(state) << "\" count=\"" << count << "\">\n";
      for (const auto& g : hidden) {
        if (g.state != state) continue;
        for (const auto& [reason, n] : g.reasons) {
          std::vector<std::uint16_t> ports;
          ports.reserve(n);
          for (const auto& p : host.ports) {
            if (p.proto == g.proto && p.state == state && p.reason == reason) {
              ports.push_back(p.port);
            }
          }
          std::sort(ports.begin(), ports.end());
          out_ << "<extrareasons reason=\"" << name(reason) << "\" count=\"" << n << "\" proto=\""
               << name(g.proto) << "\" ports=\"" << report::port_ranges(ports) << "\"/>\n";
        }
      }
      out_ << "</extraports>\n";
    }
  }

  std::ostream& out_;
  ReportOptions options_;
};

}  // namespace

std::unique_ptr<ReportSink> make_xml_report(std::ostream& out, ReportOptions options) {
  return std::make_unique<XmlReport>(out, options);
}

}  // namespace portvigil
