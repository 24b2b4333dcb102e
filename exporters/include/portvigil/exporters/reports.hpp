// Report writers for one-shot scans: Nmap-like table, Nmap XML (-oX, read by ndiff),
// JSON (-oJ, schema in docs/scan-json.md) and Nmap grepable (-oG). Each streams: it writes
// as hosts finish, so a large scan never holds every host in memory.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "portvigil/common/scan_model.hpp"
#include "portvigil/common/service.hpp"

namespace portvigil {

struct ReportOptions {
  bool show_reason = false;  // --reason: add the REASON column
  bool open_only = false;  // --open: list only open and open|filtered ports (table, XML, grepable)
};

[[nodiscard]] std::unique_ptr<ReportSink> make_table_report(std::ostream& out,
                                                            ReportOptions options);
[[nodiscard]] std::unique_ptr<ReportSink> make_xml_report(std::ostream& out,
                                                          ReportOptions options = {});
[[nodiscard]] std::unique_ptr<ReportSink> make_json_report(std::ostream& out);
[[nodiscard]] std::unique_ptr<ReportSink> make_grepable_report(std::ostream& out,
                                                               ReportOptions options = {});

// What answered on a port (service identification) as one JSON object: the one encoding of
// it, in -oJ reports and in change events (docs/scan-json.md).
[[nodiscard]] std::string service_json(const ServiceIdentity& s);

}  // namespace portvigil
