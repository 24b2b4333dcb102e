// GoogleTest support for the portvigil lab (tests/lab/lab.sh) and for CLI tests.
//
// The lab needs root and network namespaces. When it cannot run, tests skip with the reason,
// unless PORTVIGIL_REQUIRE_LAB=1, in which case they fail:
//
//   TEST(Lab, Something) {
//     PV_REQUIRE_LAB();
//     pvlab::Lab lab(pvlab::LabConfig::connect_preset());
//     PV_REQUIRE_LAB_UP(lab);
//     auto r = lab.exec({pvlab::portvigil_binary(), "scan", ...});
//   }
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace pvlab {

// ---------------------------------------------------------------------------------------------
// Running commands
struct CmdResult {
  int exit_code = -1;  // the exit status; -1 when killed by a signal or never started
  int signal = 0;      // the terminating signal, if any
  bool timed_out = false;
  std::string out;
  std::string err;
  // "exit 2" / "signal 9" / "timed out", plus the start of stderr: for assertion messages.
  std::string describe() const;
};

// Runs argv (searched in PATH) with stdin from /dev/null, capturing stdout and stderr. On
// timeout the child is killed (SIGKILL) and timed_out is set.
CmdResult run(const std::vector<std::string>& argv,
              std::chrono::seconds timeout = std::chrono::seconds(600));

std::string read_file(const std::string& path);
bool write_file(const std::string& path, const std::string& text);
std::vector<std::string> split_lines(const std::string& text);    // without empty trailing line
std::string indent_lines(const std::vector<std::string>& lines);  // "  line\n" each, for messages
bool env_flag(const char* name);                                  // set to 1/yes/true/on
bool have_tool(const std::string& tool);                          // on PATH

// Paths from the build (compile definitions) with environment overrides PORTVIGIL_BINARY,
// PORTVIGIL_LAB_SCRIPT, PORTVIGIL_LAB_LISTENER.
std::string portvigil_binary();
std::string lab_script();
std::string lab_script_dir();  // tests/lab in the source tree: lab.sh, compare.py
std::string listener_binary();

// ---------------------------------------------------------------------------------------------
// Availability
// nullopt when the lab can run here (euid 0, `ip netns add/del` works, lab.sh present);
// otherwise why not.
std::optional<std::string> lab_unavailable_reason();
inline bool lab_available() {
  return !lab_unavailable_reason().has_value();
}
inline bool lab_required() {
  return env_flag("PORTVIGIL_REQUIRE_LAB");
}
// nullopt when the portvigil binary exists and is executable; otherwise why not.
std::optional<std::string> binary_unavailable_reason();

// Skip (or, with PORTVIGIL_REQUIRE_LAB=1, fail) the current test with a reason.
#define PV_SKIP_OR_FAIL(reason)                             \
  do {                                                      \
    const std::string pv_reason_ = (reason);                \
    if (::pvlab::lab_required()) {                          \
      FAIL() << pv_reason_ << " (PORTVIGIL_REQUIRE_LAB=1)"; \
    } else {                                                \
      GTEST_SKIP() << pv_reason_;                           \
    }                                                       \
  } while (0)

// Skips/fails unless both the lab and the portvigil binary are usable.
#define PV_REQUIRE_LAB()                                                                \
  do {                                                                                  \
    if (auto pv_why_ = ::pvlab::lab_unavailable_reason())                               \
      PV_SKIP_OR_FAIL("lab unavailable: " + *pv_why_);                                  \
    if (auto pv_why_ = ::pvlab::binary_unavailable_reason()) PV_SKIP_OR_FAIL(*pv_why_); \
  } while (0)

// Skips/fails when `lab.sh up` did not succeed.
#define PV_REQUIRE_LAB_UP(lab)                                                 \
  do {                                                                         \
    if (!(lab).ok()) PV_SKIP_OR_FAIL("lab did not come up: " + (lab).error()); \
  } while (0)

// ---------------------------------------------------------------------------------------------
// The lab
struct LabConfig {
  std::string preset;  // "connect" = see lab.sh; the lists below are added to it
  std::string tcp_open, udp_open, tcp_drop, tcp_reject, udp_drop, udp_reject;
  bool keep_icmp_ratelimit = false;
  // More addresses on the target's veth (lab.sh --extra-target), e.g. "198.18.0.3".
  std::vector<std::string> extra_targets;

  // 200 open TCP ports (incl. 1, 22, 80, 443, 65535), drop 30000-34999, reject
  // 40000-43999, the rest closed.
  static LabConfig connect_preset() {
    LabConfig c;
    c.preset = "connect";
    return c;
  }
};

using PortKey = std::pair<std::string, int>;  // (proto, port)
using PortStates = std::map<PortKey, std::string>;

class Lab {
 public:
  explicit Lab(const LabConfig& config);
  ~Lab();
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }
  const std::string& dir() const { return dir_; }  // state directory, removed by the dtor
  std::string path(const std::string& file) const { return dir_ + "/" + file; }

  static constexpr const char* kTarget4 = "198.18.0.2";
  static constexpr const char* kTarget6 = "2001:db8::2";

  // Runs cmd inside the scanner namespace (lab.sh exec).
  CmdResult exec(const std::vector<std::string>& cmd,
                 std::chrono::seconds timeout = std::chrono::seconds(600)) const;

  // truth.tsv: (proto, port) -> open / closed / filtered.
  const PortStates& truth() const;
  // truth-detail.tsv: (proto, port) -> open / closed / drop / reject.
  const PortStates& truth_detail() const;

  // The veth ends: the scanner's (in the scanner namespace) and the target's.
  std::string scan_interface() const { return "pvs" + name_; }
  std::string target_interface() const { return "pvt" + name_; }

 private:
  bool ok_ = false;
  std::string error_;
  std::string name_;
  std::string dir_;
  mutable PortStates truth_;
  mutable PortStates truth_detail_;
};

// ---------------------------------------------------------------------------------------------
// Minimal JSON
struct Json {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  // An object's members, in order: keys[i] names values[i]. (A vector of pair<string, Json>
  // would need Json complete here, which Clang with libstdc++ 12 refuses.)
  struct Members {
    std::vector<std::string> keys;
    std::vector<Json> values;
  } object;

  const Json* get(std::string_view key) const;  // nullptr if absent or not an object
  std::string str(std::string_view key, const std::string& fallback = "") const;
};

// Parses a complete JSON document; on error returns nullopt and sets *error.
std::optional<Json> parse_json(std::string_view text, std::string* error);

// ---------------------------------------------------------------------------------------------
// portvigil -oJ reports
struct HostReport {
  std::string address;
  std::string family;
  bool complete = false;
  bool inconclusive = false;  // false when the report has no "inconclusive" (older builds)
  std::string note;
  std::map<std::string, std::string> majority;  // proto -> majority state
  PortStates ports;                             // the listed (non-majority) ports
  std::map<PortKey, std::string> reasons;       // reason of each listed port

  // The state of a scanned port: listed, else the majority of its proto, else "".
  std::string state(const std::string& proto, int port) const;
};

struct ScanReport {
  std::vector<HostReport> hosts;
  bool interrupted = false;
  std::string error;
  const HostReport* host(const std::string& address) const;  // compares parsed addresses
};

std::optional<ScanReport> parse_report(const std::string& json_text, std::string* error);

// Compares every truth port of `proto` with the report's host. Returns the number of
// mismatches and puts the first `show` of them into *lines ("tcp 22 truth=open got=closed").
// A UDP truth of "filtered" also accepts "open|filtered".
// With `only`, just those ports are compared.
std::size_t compare_with_truth(const PortStates& truth, const HostReport& host,
                               const std::string& proto, std::vector<std::string>* lines,
                               const std::vector<int>* only = nullptr, std::size_t show = 20);

// A command running in the background with stdout/stderr in files. The destructor stops it
// (SIGTERM, then SIGKILL) by its own pid: RAII cleanup even when an assertion fails.
class Background {
 public:
  Background(const std::vector<std::string>& argv, std::string out_path, std::string err_path);
  ~Background() { stop(); }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  bool running() const { return pid_ > 0; }
  int pid() const { return pid_; }
  std::string out() const { return read_file(out_path_); }
  std::string err() const { return read_file(err_path_); }
  bool signal(int sig) const;
  // Waits up to `limit` for the process to exit; its wait status, or nullopt if it still runs.
  std::optional<int> wait_exit(std::chrono::milliseconds limit);
  // SIGTERM, then SIGKILL after `grace`; returns the wait status (or -1).
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

 private:
  std::string out_path_;
  std::string err_path_;
  int pid_ = -1;
  std::optional<int> exit_status_;
};

// Runs `portvigil scan ARGS -oJ json_path` inside the lab's scanner namespace and parses
// the report (a test failure when it cannot).
struct ScanRun {
  CmdResult cmd;
  std::optional<ScanReport> report;
  double seconds = 0;
};
ScanRun scan_in_lab(const Lab& lab, const std::vector<std::string>& args,
                    const std::string& json_path,
                    std::chrono::seconds limit = std::chrono::seconds(600));

// Number of packets in the capture file `pcap` that match the BPF `filter` (-1 and a test
// failure when tcpdump cannot read it).
long count_packets(const std::string& pcap, const std::string& filter);

}  // namespace pvlab
