// Report writers for one-shot scans: Nmap-like table, Nmap XML (-oX, read by ndiff),
// JSON (-oJ, schema in docs/scan-json.md) and Nmap grepable (-oG). Each streams: it writes
// as hosts finish, so a large scan never holds every host in memory.
#pragma once

#include <memory>
#include <ostream>

#include "portvigil/common/scan_model.hpp"

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

}  // namespace portvigil
