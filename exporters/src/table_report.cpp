// Nmap's "normal" output: a header, per host a "Not shown" summary and a PORT/STATE/SERVICE
// table whose column widths come from that host's rows, and a "done" line.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "portvigil/common/version.hpp"
#include "portvigil/exporters/reports.hpp"
#include "report_util.hpp"

namespace portvigil {
namespace {

using report::HiddenGroup;

// "65335 closed tcp ports (conn-refused)", "3 filtered tcp ports (2 no-responses, 1
// admin-prohibited)".
std::string describe(const HiddenGroup& g) {
  std::string out = std::to_string(g.count);
  out += ' ';
  out += name(g.state);
  out += ' ';
  out += name(g.proto);
  out += g.count == 1 ? " port" : " ports";
  if (g.reasons.empty()) return out;
  out += " (";
  if (g.reasons.size() == 1) {
    out += name(g.reasons.front().first);
  } else {
    bool first = true;
    for (const auto& [reason, count] : g.reasons) {
      if (!first) out += ", ";
      first = false;
      out += std::to_string(count);
      out += ' ';
      out += report::reason_word(reason, count);
    }
  }
  out += ')';
  return out;
}

class TableReport final : public ReportSink {
 public:
  TableReport(std::ostream& out, ReportOptions options) : out_(out), options_(options) {}

  void begin(const ScanInfo& info) override {
    out_ << "Starting portvigil " << kVersion << " at " << report::minutes_utc(info.start) << '\n';
    out_.flush();
  }

  void host(const HostResult& host) override {
    if (!report::listed(host)) return;
    const std::string label = report::printable(report::host_label(host));
    out_ << "portvigil scan report for " << label << '\n';
    if (host.status == HostStatus::up) {
      out_ << "Host is up, received " << name(host.status_reason) << ".\n";
    }
    if (!host.complete) {
      out_ << "Warning: " << report::address_text(host) << " giving up on host: "
           << (host.note.empty() ? std::string{"scan incomplete"} : report::printable(host.note))
           << '\n';
    } else if (!host.note.empty()) {
      out_ << (host.inconclusive ? "Warning: " : "Note: ") << report::printable(host.note) << '\n';
    }

    const auto hidden = report::hidden_groups(host, options_.open_only);
    std::vector<const PortResult*> rows;
    std::size_t hidden_count = 0;
    for (const auto& p : host.ports) {
      const bool hide = report::in_groups(hidden, p);
      if (hide) {
        ++hidden_count;
      } else {
        rows.push_back(&p);
      }
    }

    if (!host.ports.empty() && rows.empty()) {
      out_ << "All " << hidden_count << " scanned ports on " << label
           << " are in ignored states.\n";
    }
    if (!hidden.empty()) {
      out_ << "Not shown: ";
      for (std::size_t i = 0; i < hidden.size(); ++i) {
        if (i != 0) out_ << ", ";
        out_ << describe(hidden[i]);
      }
      out_ << '\n';
    }
    if (!rows.empty()) write_rows(host, rows);
    out_ << '\n';
    out_.flush();
  }

  void end(const ScanSummary& summary) override {
    if (!summary.error.empty()) out_ << "ERROR: " << report::printable(summary.error) << '\n';
    const auto& c = summary.counters;
    if (c.probes_sent > 0) {
      out_ << "Probes sent: " << c.probes_sent << " (" << c.retransmissions
           << " retransmissions) | Replies: " << c.responses
           << " | Capture drops: " << c.capture_drops
           << " | Rate: " << report::fixed(c.effective_rate, 0) << " probes/s\n";
    }
    out_ << "portvigil done: " << report::done_summary(summary) << '\n';
    out_.flush();
  }

 private:
  void write_rows(const HostResult& host, const std::vector<const PortResult*>& rows) {
    // PORT STATE SERVICE [REASON] [VERSION]: Nmap's columns with --reason and -sV.
    using Row = std::vector<std::string>;
    const bool show_version = !host.services.empty();
    std::vector<Row> table;
    table.reserve(rows.size() + 1);
    table.push_back(Row{"PORT", "STATE", "SERVICE"});
    if (options_.show_reason) table.back().push_back("REASON");
    if (show_version) table.back().push_back("VERSION");
    for (const auto* p : rows) {
      Row row;
      row.push_back(std::to_string(p->port) + '/' + std::string{name(p->proto)});
      row.push_back(std::string{name(p->state)});
      const auto service = report::service_name_of(host, *p);
      row.push_back(service.empty() ? std::string{"unknown"} : service);
      if (options_.show_reason) {
        row.push_back(std::string{name(p->reason)});
        if (p->ttl != 0) row.back() += " ttl " + std::to_string(p->ttl);
      }
      if (show_version) {
        const ServiceIdentity* id = report::identity_of(host, *p);
        row.push_back(id == nullptr ? std::string{} : service_details(*id));
      }
      table.push_back(std::move(row));
    }
    const std::size_t columns = table.front().size();
    std::vector<std::size_t> width(columns, 0);
    for (const auto& row : table) {
      for (std::size_t c = 0; c < columns; ++c) width[c] = std::max(width[c], row[c].size());
    }
    for (const auto& row : table) {
      std::string line;
      for (std::size_t c = 0; c < columns; ++c) {
        line += row[c];
        if (c + 1 < columns) line.append(width[c] - row[c].size() + 1, ' ');
      }
      line.erase(line.find_last_not_of(' ') + 1);  // an empty last column leaves no padding
      out_ << line << '\n';
    }
  }

  std::ostream& out_;
  ReportOptions options_;
};

}  // namespace

std::unique_ptr<ReportSink> make_table_report(std::ostream& out, ReportOptions options) {
  return std::make_unique<TableReport>(out, options);
}

}  // namespace portvigil
