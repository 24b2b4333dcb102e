// Crash safety of the real binary: `portvigil agent` is killed with SIGKILL at random
// moments while a loopback listener comes and goes, with an occasional `--once` run in
// between. Afterwards the database must be sound, no scan left 'running', every committed
// event in events.jsonl exactly once and in order, no event from an incomplete scan, and
// the first complete scan silent.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "agent_test_util.hpp"
#include "portvigil/exporters/event_log.hpp"
#include "portvigil/storage/store.hpp"
#include "webhook_receiver.hpp"

extern char** environ;

namespace portvigil {
namespace {

using namespace std::chrono_literals;
using test::read_all;
using test::split_lines;
using test::write_all;

// Starts `portvigil ARGS...` with stdout and stderr appended to `log_path` (stdout closed
// instead with `close_stdout`).
pid_t spawn(const std::vector<std::string>& args, const std::string& log_path,
            bool close_stdout = false) {
  std::vector<std::string> all{PORTVIGIL_BINARY};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  if (close_stdout) posix_spawn_file_actions_addclose(&fa, 1);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  return pid;
}

// The exit status, or -1 after killing a process that outlived `timeout`, or 128 + signal.
int wait_for(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (true) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0) return -2;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(10ms);
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -3;
}

void kill9(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

// An agent state directory with a config scanning 127.0.0.1 with the connect technique.
class AgentDir {
 public:
  AgentDir(const std::string& tag, const std::string& ports, int confirmations = 1) : dir_(tag) {
    std::filesystem::create_directories(state());
    std::ofstream(config()) << "[agent]\n"
                               "log-level = \"info\"\n"
                               "web-listen-address = \"\"\n"
                               "\n"
                               "[[authorization]]\n"
                               "networks = [\"127.0.0.0/8\"]\n"
                               "\n"
                               "[[job]]\n"
                               "name = \"crash\"\n"
                               "targets = [\"127.0.0.1\"]\n"
                               "ports = \""
                            << ports
                            << "\"\n"
                               "technique = \"connect\"\n"
                               "interval = \"1s\"\n"
                               "confirmations = "
                            << confirmations << "\n";
  }
  [[nodiscard]] std::string config() const { return dir_.file("agent.toml"); }
  [[nodiscard]] std::string state() const { return dir_.file("state"); }
  [[nodiscard]] std::string db() const { return state() + "/portvigil.db"; }
  [[nodiscard]] std::string events() const { return state() + "/events.jsonl"; }
  [[nodiscard]] std::string log() const { return dir_.file("agent.log"); }

  [[nodiscard]] pid_t start_service() const {
    return spawn({"agent", "--config", config(), "--state-dir", state()}, log());
  }
  // `portvigil agent --once`: its exit status.
  [[nodiscard]] int run_once(bool close_stdout = false) const {
    const pid_t pid = spawn({"agent", "--config", config(), "--state-dir", state(), "--once"},
                            log(), close_stdout);
    if (pid < 0) return -4;
    return wait_for(pid, 60s);
  }
  [[nodiscard]] std::string tail_of_log() const {
    const auto text = read_all(log());
    return text.size() > 3000 ? text.substr(text.size() - 3000) : text;
  }

 private:
  test::TempDir dir_;
};

// Every invariant the brief of the agent promises after any sequence of crashes. Returns
// the number of events checked.
std::size_t check_consistency(const AgentDir& dir) {
  const auto store = Store::open(dir.db(), Access::read_only);
  const auto problems = store.integrity_problems();
  EXPECT_TRUE(problems.empty()) << problems.front();

  const auto scans = store.scans("crash", 1000000);
  EXPECT_FALSE(scans.empty());
  std::map<std::int64_t, ScanRecord> by_id;
  for (const auto& s : scans) {
    EXPECT_NE(s.status, ScanStatus::running) << "scan " << s.id << " left running";
    by_id[s.id] = s;
  }
  for (const auto& s : store.latest_scans()) {
    EXPECT_NE(s.status, ScanStatus::running) << "latest scan " << s.id << " of " << s.job;
  }

  const auto events = store.events_after(0, 1000000);
  std::int64_t first_complete = 0;
  for (const auto& [id, s] : by_id) {
    if (s.status == ScanStatus::complete) {
      first_complete = id;
      break;
    }
  }
  EXPECT_NE(first_complete, 0) << "no complete scan at all";
  if (first_complete != 0) {
    EXPECT_EQ(by_id[first_complete].events, 0u) << "the first complete scan was not silent";
  }
  // Every host's baseline comes from a complete scan (an interrupted one never becomes one).
  for (const auto& h : store.hosts("crash")) {
    const auto base = store.baseline("crash", h.host);
    const auto s = store.scan(base.scan_id);
    EXPECT_TRUE(s && s->status == ScanStatus::complete)
        << "the baseline of " << h.host << " comes from scan " << base.scan_id << ", which is "
        << (s ? std::string(name(s->status)) : "missing");
  }
  std::map<std::int64_t, std::size_t> events_per_scan;
  for (const auto& e : events) {
    const auto s = store.scan(e.scan_id);
    EXPECT_TRUE(s && s->status == ScanStatus::complete)
        << "event " << e.id << " comes from scan " << e.scan_id << " which is "
        << (s ? std::string(name(s->status)) : "missing");
    EXPECT_NE(e.scan_id, first_complete) << "event " << e.id << " from the first complete scan";
    ++events_per_scan[e.scan_id];
  }
  for (const auto& [scan_id, n] : events_per_scan) {
    EXPECT_EQ(by_id[scan_id].events, n) << "scan " << scan_id << " event count";
  }

  // events.jsonl: exactly the database's events, once each, in id order, whole lines.
  const auto text = read_all(dir.events());
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "events.jsonl ends in a partial line";
  const auto lines = split_lines(text);
  std::int64_t previous = 0;
  std::set<std::int64_t> in_file;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& line = lines[i];
    const bool whole = line.starts_with("{\"id\":") && line.ends_with("}");
    EXPECT_TRUE(whole) << "events.jsonl line " << i + 1 << " is not a whole event: " << line;
    if (!whole) continue;
    const auto id = std::stoll(line.substr(6));
    EXPECT_GT(id, previous) << "events.jsonl line " << i + 1 << ": ids not strictly increasing";
    previous = id;
    in_file.insert(id);
  }
  EXPECT_EQ(lines.size(), events.size()) << "events.jsonl has " << lines.size()
                                         << " lines, the database " << events.size() << " events";
  for (std::size_t i = 0; i < std::min(lines.size(), events.size()); ++i) {
    EXPECT_EQ(lines[i], event_json(events[i])) << "line " << i + 1;
  }
  for (const auto& e : events) {
    EXPECT_TRUE(in_file.contains(e.id)) << "event " << e.id << " missing from events.jsonl";
  }
  return events.size();
}

// Event ids as they appear in JSON text (the event log's lines, a sink's batches), in order.
std::vector<std::int64_t> event_ids(const std::string& text) {
  std::vector<std::int64_t> ids;
  const std::regex event_id(R"(\{"id":(\d+))");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), event_id);
       it != std::sregex_iterator(); ++it) {
    ids.push_back(std::stoll((*it)[1]));
  }
  return ids;
}

TEST(AgentBinary, OnceRunsResumeTheEventLog) {
  test::LoopbackListener listener;
  listener.close();
  const auto other = test::free_loopback_port();
  AgentDir dir("resume", std::to_string(listener.port()) + "," + std::to_string(other));
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();  // silent baseline
  EXPECT_EQ(read_all(dir.events()), "");
  listener.open();
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  listener.close();
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  ASSERT_EQ(check_consistency(dir), 2u);

  // Deliberate damage: the last line lost, and a torn copy of it as if killed mid-write.
  auto text = read_all(dir.events());
  text.pop_back();
  const auto cut = text.rfind('\n') + 1;
  const auto last = text.substr(cut);
  text.erase(cut);
  write_all(dir.events(), text + last.substr(0, last.size() / 2));
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  EXPECT_NE(read_all(dir.log()).find("event log was missing 1 committed events"), std::string::npos)
      << dir.tail_of_log();
  EXPECT_EQ(check_consistency(dir), 2u);

  // A log rotated away (or deleted) is not refilled with the events already published: the
  // new file starts with the next new event.
  std::filesystem::rename(dir.events(), dir.events() + ".1");
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  EXPECT_EQ(read_all(dir.events()), "");
  listener.open();
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  auto lines = split_lines(read_all(dir.events()));
  ASSERT_EQ(lines.size(), 1u) << read_all(dir.events());
  EXPECT_EQ(std::stoll(lines[0].substr(6)), 3);

  // A lost database: its first scan is a silent baseline, and its event ids continue after
  // the log's last one, so the log (which skips ids it already has) keeps every new event.
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(dir.db() + suffix);
  listener.close();
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  listener.open();
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  lines = split_lines(read_all(dir.events()));
  ASSERT_EQ(lines.size(), 2u) << read_all(dir.events());
  EXPECT_EQ(std::stoll(lines[1].substr(6)), 4);
  EXPECT_NE(lines[1].find("\"to\":\"open\""), std::string::npos) << lines[1];
}

// `portvigil CMD ARGS...` to completion: exit status and everything it printed.
struct CommandRun {
  int status = -1;
  std::string output;
};
CommandRun run_command(const AgentDir& dir, const std::vector<std::string>& args) {
  static int n = 0;
  const std::string out = dir.state() + "/../cmd-" + std::to_string(++n) + ".out";
  const pid_t pid = spawn(args, out);
  if (pid < 0) return {};
  CommandRun r;
  r.status = wait_for(pid, 60s);
  r.output = read_all(out);
  return r;
}

// changes, history, baseline accept and status through the binary, on what real agent runs
// stored; and the options a command has no use for are refused, not ignored.
TEST(AgentBinary, DatabaseCommands) {
  test::LoopbackListener listener;
  listener.close();
  const auto other = test::free_loopback_port();
  const std::string port = std::to_string(listener.port());
  AgentDir dir("dbcmd", port + "," + std::to_string(other));
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();  // silent baseline
  listener.open();
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();  // port opens: 1 event
  const std::vector<std::string> at{"--state-dir", dir.state()};
  auto cmd = [&](std::vector<std::string> args) {
    args.insert(args.end(), at.begin(), at.end());
    return run_command(dir, args);
  };

  auto r = cmd({"changes", "--since", "1h"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("127.0.0.1  " + port + "/tcp  closed -> open (syn-ack)  UNEXPECTED"),
            std::string::npos)
      << r.output;
  r = cmd({"changes", "--since", "1h", "--json", "--job", "crash"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, read_all(dir.events()));

  r = cmd({"history", "127.0.0.1", port});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(split_lines(r.output).size(), 1u) << r.output;
  EXPECT_NE(r.output.find(port + "/tcp  closed -> open"), std::string::npos) << r.output;
  r = cmd({"history", "127.0.0.1", std::to_string(other)});
  EXPECT_EQ(r.output, "no transitions recorded for 127.0.0.1\n");

  // With only --state-dir the job's policy and interval are unknown (the built-in default
  // configuration has no job "crash"): UNEXPECTED and NEXT say "-".
  r = cmd({"status"});
  ASSERT_EQ(r.status, 0) << r.output;
  {
    const auto rows = split_lines(r.output);
    ASSERT_EQ(rows.size(), 2u) << r.output;
    EXPECT_TRUE(std::regex_match(rows[0], std::regex("JOB +SCAN +RESULT +STARTED +TOOK +UP +DOWN "
                                                     "+OPEN +UNEXPECTED +EVENTS +NEXT +NOTE")))
        << rows[0];
    // Aligned: every column starts where its heading does.
    EXPECT_TRUE(std::regex_match(rows[1], std::regex("crash +2 +complete +\\S+ \\S+ +[0-9.]+s "
                                                     "+1 +0 +1 +- +1 +-")))
        << rows[1];
    EXPECT_EQ(rows[1].find("2 "), rows[0].find("SCAN"));
    EXPECT_EQ(rows[1].find(" - ") + 1, rows[0].find("UNEXPECTED"));
  }
  // With the configuration: the listener's port is unexpected, and the next run is due by
  // the 1 s interval (or a second away, on a slow machine).
  r = cmd({"status", "--config", dir.config()});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(std::regex_search(
      r.output,
      std::regex("\ncrash +2 +complete +\\S+ \\S+ +[0-9.]+s +1 +0 +1 +1 +1 +(due|\\S+ \\S+Z) *\n")))
      << r.output;
  const auto status_json = cmd({"status", "--json", "--config", dir.config()});
  ASSERT_EQ(status_json.status, 0) << status_json.output;
  EXPECT_TRUE(std::regex_match(status_json.output,
                               std::regex(R"(\{"job":"crash","scan_id":2,"status":"complete",)"
                                          R"("technique":"connect","started":"[0-9T:.-]+Z",)"
                                          R"("finished":"[0-9T:.-]+Z","hosts_total":1,)"
                                          R"("hosts_complete":1,"ports_scanned":2,)"
                                          R"("transitions":1,"events":1,"hosts_up":1,)"
                                          R"("hosts_down":0,"open":1,"unexpected":1,)"
                                          R"("next_run":"[0-9T:.-]+Z","note":""\}\n)")))
      << status_json.output;
  // Without --state-dir or --config the commands read what the service's configuration names:
  // $PORTVIGIL_CONFIG here (/etc/portvigil/portvigil.toml when it exists).
  {
    const std::string service_config = dir.state() + "/../service.toml";
    // An interval of 1h keeps NEXT one fixed time in both runs (with 1s one could say
    // "due" and the other a time).
    write_all(
        service_config,
        std::regex_replace(std::regex_replace(read_all(dir.config()), std::regex(R"(\[agent\]\n)"),
                                              "[agent]\nstate-dir = \"" + dir.state() + "\"\n"),
                           std::regex(R"(interval = "1s")"), R"(interval = "1h")"));
    // A job the agent has not scanned yet is listed too.
    std::ofstream(service_config, std::ios::app)
        << "\n[[job]]\nname = \"later\"\ntargets = [\"127.0.0.1\"]\nports = \"1\"\n"
           "interval = \"1h\"\n";
    const auto named = run_command(dir, {"status", "--config", service_config});
    ::setenv("PORTVIGIL_CONFIG", service_config.c_str(), 1);
    const auto found = run_command(dir, {"status"});
    ::unsetenv("PORTVIGIL_CONFIG");
    EXPECT_EQ(found.status, 0) << found.output;
    EXPECT_EQ(found.output, named.output);
    // NEXT, the last column with a value, is a time an hour after the scan started.
    EXPECT_TRUE(std::regex_search(found.output, std::regex("[0-9]Z\n"))) << found.output;
    EXPECT_TRUE(std::regex_search(
        found.output, std::regex("\nlater +- +never +- +- +- +- +- +- +- +due +configured, not "
                                 "scanned yet\n")))
        << found.output;
    const auto json = run_command(dir, {"status", "--json", "--config", service_config});
    EXPECT_NE(json.output.find(R"({"job":"later","scan_id":null,"status":"never",)"),
              std::string::npos)
        << json.output;
  }

  // --dry-run shows what accept would do and changes nothing.
  r = cmd({"baseline", "accept", "--dry-run"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output,
            "+ crash  127.0.0.1  " + port + "/tcp\nwould accept 1 open ports (1 new), revoke 0\n");
  r = cmd({"baseline", "list"});
  EXPECT_EQ(r.output, "no accepted ports\n");

  // Accepting makes the open port expected open, so its closing is now the unexpected change
  // (unaccepted, the same closing would be expected: the lab tests show that case).
  r = cmd({"baseline", "accept", "--job", "crash", "--host", "127.0.0.1", "--port", port});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "accepted 1 open ports (1 new), revoked 0\n");
  r = cmd({"baseline", "accept", "--port", std::to_string(other)});
  EXPECT_EQ(r.output, "accepted 0 open ports (0 new), revoked 0\n");
  r = cmd({"baseline", "list", "--job", "crash"});
  EXPECT_EQ(r.output, "crash  127.0.0.1  " + port + "/tcp\n");
  listener.close();
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  r = cmd({"changes", "--since", "1h"});
  const auto lines = split_lines(r.output);
  ASSERT_EQ(lines.size(), 2u) << r.output;
  EXPECT_NE(lines[1].find("open -> closed (conn-refused)"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("UNEXPECTED"), std::string::npos) << lines[1];
  // Revoking forgets the accepted port; --dry-run first lists it and keeps it.
  r = cmd({"baseline", "revoke", "--dry-run", "--host", "127.0.0.1"});
  EXPECT_EQ(r.output, "- crash  127.0.0.1  " + port + "/tcp\nwould revoke 1 accepted ports\n");
  r = cmd({"baseline", "revoke", "--host", "127.0.0.1"});
  EXPECT_EQ(r.output, "revoked 1 accepted ports\n");
  r = cmd({"baseline", "list"});
  EXPECT_EQ(r.output, "no accepted ports\n");

  // Refused: exit 2 and one line naming the problem.
  struct Bad {
    std::vector<std::string> args;
    std::string says;
  };
  for (const Bad& b : std::vector<Bad>{
           {{"history", "127.0.0.1", "--port", "22"}, "option --port does not apply"},
           {{"history"}, "expected HOST [PORT]"},
           {{"history", "127.0.0.1", "22", "23"}, "extra \"23\""},
           {{"history", "127.0.0.1", "http"}, "\"http\" is not a port number"},
           {{"status", "--since", "1h"}, "option --since does not apply"},
           {{"status", "--job", "crash"}, "option --job does not apply"},
           {{"status", "now"}, "takes no arguments"},
           {{"changes", "24h"}, "takes no arguments, got \"24h\""},
           {{"changes", "--host", "127.0.0.1"}, "option --host does not apply"},
           {{"changes", "--since", "yesterday"}, "--since"},
           {{"baseline", "accept", "--json"}, "option --json does not apply"},
           {{"baseline"}, "a subcommand: accept, list or revoke"},
           {{"baseline", "reject"}, "unknown subcommand \"reject\""},
           {{"baseline", "list", "--dry-run"}, "--dry-run applies to accept and revoke"},
           // A name that matches nothing is a typo, never "accepted 0 ports".
           {{"baseline", "accept", "--job", "crsh"},
            "--job \"crsh\": no such job in the database (known: crash)"},
           {{"baseline", "accept", "--host", "nohost.invalid"},
            "--host \"nohost.invalid\": no such host"},
           {{"baseline", "revoke", "--job", "crash", "--host", "198.18.1.1"},
            "no such host in job crash"},
           {{"changes", "--job", "no-such-job"}, "no such job"},
           {{"history", "nohost.invalid"}, "HOST \"nohost.invalid\": no such host"},
           {{"changes", "--bogus"}, "unknown option \"--bogus\""},
       }) {
    r = cmd(b.args);
    EXPECT_EQ(r.status, 2) << b.args[0] << ": " << r.output;
    EXPECT_EQ(split_lines(r.output).size(), 1u) << r.output;
    EXPECT_NE(r.output.find(b.says), std::string::npos) << r.output;
  }
  // accept and revoke never create a database at a wrong path (it would then say "accepted 0").
  for (const char* sub : {"accept", "revoke"}) {
    const std::string nowhere = dir.state() + "/nowhere";
    std::filesystem::create_directories(nowhere);
    r = run_command(dir, {"baseline", sub, "--state-dir", nowhere});
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("no database here"), std::string::npos) << r.output;
    EXPECT_FALSE(std::filesystem::exists(nowhere + "/portvigil.db")) << sub;
  }
  // Each --help lists exactly the options its command takes.
  r = run_command(dir, {"history", "--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("--job JOB"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("--port"), std::string::npos) << r.output;
  r = run_command(dir, {"baseline", "--help"});
  for (const char* opt : {"--job", "--host", "--port", "--state-dir", "--config"}) {
    EXPECT_NE(r.output.find(opt), std::string::npos) << opt << "\n" << r.output;
  }
  EXPECT_EQ(r.output.find("--since"), std::string::npos) << r.output;
}

// The failure messages check_consistency() reports for `dir`, without failing this test.
std::vector<std::string> violations(const AgentDir& dir) {
  testing::TestPartResultArray results;
  {
    testing::ScopedFakeTestPartResultReporter reporter(
        testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    check_consistency(dir);
  }
  std::vector<std::string> out;
  for (int i = 0; i < results.size(); ++i) out.emplace_back(results.GetTestPartResult(i).message());
  return out;
}

bool any_contains(const std::vector<std::string>& messages, const std::string& what) {
  return std::any_of(messages.begin(), messages.end(),
                     [&](const std::string& m) { return m.find(what) != std::string::npos; });
}

TEST(AgentBinary, ConsistencyCheckCatchesDamage) {
  // The crash test is only as good as its checks: damage a good state directory in the
  // ways a broken agent would and make sure each is reported.
  test::LoopbackListener listener;
  listener.close();
  AgentDir dir("damage", std::to_string(listener.port()));
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  listener.open();
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  listener.close();
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  ASSERT_TRUE(violations(dir).empty());
  const auto good = read_all(dir.events());
  const auto lines = split_lines(good);
  ASSERT_EQ(lines.size(), 2u);

  // A lost line in the middle: resume() only appends, so this stays broken and is caught.
  write_all(dir.events(), lines[1] + "\n");
  EXPECT_TRUE(any_contains(violations(dir), "missing from events.jsonl"));
  ASSERT_EQ(dir.run_once(), 0);
  EXPECT_TRUE(any_contains(violations(dir), "missing from events.jsonl"));

  // A duplicated line.
  write_all(dir.events(), good + lines[1] + "\n");
  EXPECT_TRUE(any_contains(violations(dir), "not strictly increasing"));

  // A torn last line (before an agent start repairs it).
  write_all(dir.events(), good.substr(0, good.size() - 10));
  EXPECT_TRUE(any_contains(violations(dir), "partial line"));
  write_all(dir.events(), good);
  ASSERT_TRUE(violations(dir).empty());

  // A scan left 'running' (as after kill -9), until the next agent start marks it.
  {
    auto store = Store::open(dir.db(), Access::tool);
    store.begin_scan("crash", Technique::connect, std::chrono::system_clock::now());
  }
  EXPECT_TRUE(any_contains(violations(dir), "left running"));
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  EXPECT_TRUE(violations(dir).empty());
}

// The service commits a scan every second while `status` and `changes --json` read the
// database over and over: every read succeeds and shows whole scans. Then SIGTERM in the
// middle of a long scan: exit 0 within a few seconds, the scan recorded incomplete (never a
// baseline). And SIGINT stops it the same way.
// A started service that the test has not stopped yet is killed when a failed assertion
// leaves the test, so it never outlives its state directory.
struct ServiceGuard {
  pid_t pid = -1;
  ~ServiceGuard() {
    if (pid > 0) kill9(pid);
  }
  // Sends `sig` and waits up to `limit` for the exit: its status (see wait_for).
  int stop(int sig, std::chrono::milliseconds limit) {
    EXPECT_EQ(::kill(pid, sig), 0);
    const int status = wait_for(pid, limit);
    pid = -1;
    return status;
  }
};

// True once the agent's database shows a scan of `job` in progress.
bool scan_running(const AgentDir& dir) {
  try {
    const auto store = Store::open(dir.db(), Access::read_only);
    for (const auto& s : store.latest_scans()) {
      if (s.status == ScanStatus::running) return true;
    }
  } catch (const StorageError&) {
    // not created yet
  }
  return false;
}

TEST(AgentBinary, ReadersWhileTheServiceCommitsThenSigtermAndSigint) {
  test::LoopbackListener listener;
  AgentDir dir("service", "1-3000," + std::to_string(listener.port()));
  ServiceGuard service{dir.start_service()};
  ASSERT_GT(service.pid, 0);
  const std::regex complete_line("job crash: scan [0-9]+ complete");
  auto completed = [&] {
    const auto log = read_all(dir.log());
    return std::distance(std::sregex_iterator(log.begin(), log.end(), complete_line),
                         std::sregex_iterator());
  };
  int reads = 0;
  const auto until = std::chrono::steady_clock::now() + 6s;
  while (std::chrono::steady_clock::now() < until || completed() < 4) {
    ASSERT_LT(std::chrono::steady_clock::now(), until + 20s) << dir.tail_of_log();
    if (reads % 10 == 5) listener.is_open() ? listener.close() : listener.open();
    const auto status = run_command(dir, {"status", "--state-dir", dir.state()});
    const auto changes =
        run_command(dir, {"changes", "--json", "--since", "1h", "--state-dir", dir.state()});
    if (completed() == 0) continue;  // the database may not exist yet
    ++reads;
    EXPECT_EQ(status.status, 0) << status.output;
    EXPECT_EQ(changes.status, 0) << changes.output;
    EXPECT_TRUE(std::regex_search(status.output, std::regex("\ncrash +[0-9]+ +"))) << status.output;
    for (const auto& line : split_lines(changes.output)) {
      EXPECT_TRUE(line.starts_with("{\"id\":") && line.ends_with("}")) << line;
    }
  }
  EXPECT_GE(reads, 10);
  EXPECT_EQ(service.stop(SIGTERM, 5s), 0) << dir.tail_of_log();
  check_consistency(dir);

  // SIGTERM while a long scan runs (a /24 of loopback addresses, 3000 ports each).
  const std::string config = read_all(dir.config());
  write_all(dir.config(), std::regex_replace(config, std::regex(R"(targets = \["127.0.0.1"\])"),
                                             R"(targets = ["127.0.0.1", "127.0.1.0/24"])"));
  service.pid = dir.start_service();
  ASSERT_GT(service.pid, 0);
  const auto before = completed();
  const auto running_by = std::chrono::steady_clock::now() + 30s;
  while (!scan_running(dir) && std::chrono::steady_clock::now() < running_by) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(scan_running(dir)) << dir.tail_of_log();
  std::this_thread::sleep_for(300ms);  // well into the scan (768 000 probes)
  EXPECT_EQ(completed(), before) << "the long scan finished too soon to be interrupted";
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(service.stop(SIGTERM, 5s), 0) << dir.tail_of_log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  const auto status = run_command(dir, {"status", "--state-dir", dir.state()});
  EXPECT_TRUE(
      std::regex_search(status.output, std::regex("\ncrash +[0-9]+ +incomplete .*interrupted")))
      << status.output;
  check_consistency(dir);

  // SIGINT (Ctrl-C in a terminal) stops it the same way.
  write_all(dir.config(), config);
  service.pid = dir.start_service();
  ASSERT_GT(service.pid, 0);
  const auto n = completed();
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (completed() == n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(service.stop(SIGINT, 5s), 0) << dir.tail_of_log();
  EXPECT_NE(read_all(dir.log()).find("received SIGINT: stopping"), std::string::npos)
      << dir.tail_of_log();
  check_consistency(dir);
}

TEST(AgentBinary, SurvivesKillNineAtRandomMoments) {
  // Listener ports are ephemeral (above 2000); 1-2000 is whatever this machine has.
  std::vector<std::unique_ptr<test::LoopbackListener>> listeners;
  std::string ports = "1-2000";
  for (int i = 0; i < 3; ++i) {
    listeners.push_back(std::make_unique<test::LoopbackListener>());
    ports += "," + std::to_string(listeners.back()->port());
  }
  listeners[1]->close();
  AgentDir dir("crash", ports);

  std::mt19937 rng(std::random_device{}());
  auto toggle = [&] {
    auto& l = *listeners[std::uniform_int_distribution<std::size_t>(0, listeners.size() - 1)(rng)];
    l.is_open() ? l.close() : l.open();
  };
  const auto begin = std::chrono::steady_clock::now();
  int kills = 0;
  int onces = 0;
  for (int i = 0; i < 45; ++i) {
    if (i % 6 == 5) {
      toggle();
      const int rc = dir.run_once();
      EXPECT_EQ(rc, 0) << "--once run " << i << "\n" << dir.tail_of_log();
      ++onces;
      continue;
    }
    const pid_t pid = dir.start_service();
    ASSERT_GT(pid, 0);
    // A scan of 2000 loopback ports takes ~50 ms of each 1 s interval: every third kill
    // aims at start-up and the first scan (database open, migration, the first commit).
    const int total = std::uniform_int_distribution<int>(0, i % 3 == 0 ? 150 : 1500)(rng);
    const int before = std::uniform_int_distribution<int>(0, total)(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(before));
    toggle();
    std::this_thread::sleep_for(std::chrono::milliseconds(total - before));
    kill9(pid);
    ++kills;
  }
  // The repair path as well: the file loses its last line and gets a torn one instead.
  auto text = read_all(dir.events());
  if (!text.empty() && text.back() == '\n') {
    text.pop_back();
    const auto cut = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
    const auto last = text.substr(cut);
    text.erase(cut);
    write_all(dir.events(), text + last.substr(0, last.size() / 3));
  }
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  const auto n = check_consistency(dir);
  const auto store = Store::open(dir.db(), Access::read_only);
  const auto scans = store.scans("crash", 1000000);
  std::size_t complete = 0;
  std::size_t incomplete = 0;
  for (const auto& s : scans) (s.status == ScanStatus::complete ? complete : incomplete)++;
  std::cout << "[ info     ] " << kills << " kills, " << onces + 1 << " --once runs, "
            << scans.size() << " scans (" << complete << " complete, " << incomplete
            << " incomplete), " << n << " events, "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count()
            << " s\n";
  EXPECT_GT(n, 0u) << "no events happened: the test proved nothing";
  EXPECT_GT(incomplete, 0u) << "no scan was ever interrupted by a kill";
}

}  // namespace
}  // namespace portvigil

namespace portvigil {
namespace {

// systemd's stop timeout must never be reached: SIGTERM ends the agent within 2 s even at
// max-rate 1 (once 98 s), metrics endpoint included (civetweb polls with a 2 s timeout).
TEST(AgentBinary, SigtermStopsWithinTwoSecondsAtOneProbePerSecond) {
  AgentDir dir("slow", "1-1000");
  const std::string config = read_all(dir.config());
  write_all(dir.config(), std::regex_replace(config, std::regex(R"(web-listen-address = "")"),
                                             "web-listen-address = \"127.0.0.1:" +
                                                 std::to_string(test::free_loopback_port()) +
                                                 "\"\nmax-rate = 1"));
  ServiceGuard service{dir.start_service()};
  ASSERT_GT(service.pid, 0);
  const auto running_by = std::chrono::steady_clock::now() + 20s;
  while (!scan_running(dir) && std::chrono::steady_clock::now() < running_by) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(scan_running(dir)) << dir.tail_of_log();
  std::this_thread::sleep_for(1500ms);  // in the pacer's 1 s waits
  EXPECT_EQ(service.stop(SIGTERM, 2s), 0) << dir.tail_of_log();
  const auto status = run_command(dir, {"status", "--state-dir", dir.state()});
  EXPECT_TRUE(
      std::regex_search(status.output, std::regex("\ncrash +[0-9]+ +incomplete .*interrupted")))
      << status.output;
}

// "HH:MM:SS" of now + offset, in UTC.
std::string utc_clock(std::chrono::seconds offset) {
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + offset);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[16];
  std::strftime(text, sizeof text, "%H:%M:%S", &tm);
  return text;
}

// `line` is a whole line of a /metrics answer.
bool has_line(const std::string& text, const std::string& line) {
  return text.starts_with(line + "\n") || text.find("\n" + line + "\n") != std::string::npos;
}

// The agent's first /metrics answer (up to 3 s after its start): "" if none came.
std::string first_scrape(std::uint16_t web_port) {
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  std::string metrics;
  while ((metrics = test::http_get(web_port, "/metrics")).empty() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  return metrics;
}

// Scan windows: a job whose window closes mid-scan is stopped there (incomplete, no events)
// and does not start again outside it; a job whose window is hours away never starts.
// "crash" (600 ports at 50/s: 12 s) is cut 4 s in with no complete scan in its window: a
// failure. "refresh" (200 ports at 50/s: 4 s, back to back) completes a scan and is cut 7 s
// in during the next (2.8 s of slack for a slow start): counted, but no failure. The window
// gauges follow.
TEST(AgentBinary, ScanWindowsStopAScanAtTheirEndAndKeepJobsOutside) {
  AgentDir dir("windows", "1-600");
  const auto web_port = test::free_loopback_port();
  std::string config = read_all(dir.config());
  config = std::regex_replace(config, std::regex(R"(web-listen-address = "")"),
                              "web-listen-address = \"127.0.0.1:" + std::to_string(web_port) +
                                  "\"\nmax-concurrent-jobs = 3");
  config = std::regex_replace(config, std::regex(R"(interval = "1s")"),
                              "interval = \"1s\"\nmax-rate = 50\nwindows = [\"" + utc_clock(-60s) +
                                  "-" + utc_clock(4s) + "\"]\ntime-zone = \"UTC\"");
  config +=
      "\n[[job]]\nname = \"refresh\"\ntargets = [\"127.0.0.1\"]\nports = \"1-200\"\n"
      "technique = \"connect\"\ninterval = \"1s\"\nmax-rate = 50\nwindows = [\"" +
      utc_clock(-60s) + "-" + utc_clock(7s) + "\"]\ntime-zone = \"UTC\"\n";
  config +=
      "\n[[job]]\nname = \"later\"\ntargets = [\"127.0.0.1\"]\nports = \"1\"\n"
      "technique = \"connect\"\ninterval = \"1s\"\nwindows = [\"" +
      utc_clock(2h).substr(0, 5) + "-" + utc_clock(3h).substr(0, 5) + "\"]\ntime-zone = \"UTC\"\n";
  write_all(dir.config(), config);
  const auto opened_about =
      std::chrono::duration<double>((std::chrono::system_clock::now() - 60s).time_since_epoch())
          .count();
  ServiceGuard service{dir.start_service()};
  ASSERT_GT(service.pid, 0);
  std::string metrics = first_scrape(web_port);
  EXPECT_TRUE(has_line(metrics, "portvigil_job_window_open{scan_job=\"crash\"} 1")) << metrics;
  EXPECT_TRUE(has_line(metrics, "portvigil_job_window_open{scan_job=\"later\"} 0")) << metrics;
  EXPECT_TRUE(
      has_line(metrics, "portvigil_job_window_opened_timestamp_seconds{scan_job=\"later\"} 0"))
      << metrics;
  std::smatch opened;
  ASSERT_TRUE(std::regex_search(
      metrics, opened,
      std::regex(R"(portvigil_job_window_opened_timestamp_seconds\{scan_job="crash"\} (\d+))")))
      << metrics;
  EXPECT_NEAR(std::stod(opened[1]), opened_about, 2.0);
  std::this_thread::sleep_for(9s);  // the windows close 4 s and 7 s in
  metrics = test::http_get(web_port, "/metrics");
  EXPECT_EQ(service.stop(SIGTERM, 10s), 0) << dir.tail_of_log();
  for (const char* job : {"crash", "refresh", "later"}) {
    EXPECT_TRUE(
        has_line(metrics, std::string("portvigil_job_window_open{scan_job=\"") + job + "\"} 0"))
        << job << "\n"
        << metrics;
  }
  EXPECT_TRUE(has_line(metrics, "portvigil_scan_success{scan_job=\"crash\"} 0")) << metrics;
  EXPECT_TRUE(has_line(metrics, "portvigil_scan_success{scan_job=\"refresh\"} 1")) << metrics;
  EXPECT_TRUE(
      has_line(metrics, "portvigil_scans_total{result=\"incomplete\",scan_job=\"refresh\"} 1"))
      << metrics;
  const auto store = Store::open(dir.db(), Access::read_only);
  const auto scans = store.scans("crash", 100);
  ASSERT_EQ(scans.size(), 1u) << "a scan started outside the window\n" << dir.tail_of_log();
  EXPECT_EQ(scans[0].status, ScanStatus::incomplete);
  EXPECT_EQ(scans[0].note, "interrupted (its scan window ended)");
  ASSERT_TRUE(scans[0].finished);
  EXPECT_LT(std::chrono::duration<double>(*scans[0].finished - scans[0].started).count(), 7.0)
      << "the scan ran on past its window";
  const auto refreshes = store.scans("refresh", 100);  // newest first
  ASSERT_GE(refreshes.size(), 2u) << dir.tail_of_log();
  EXPECT_EQ(refreshes[0].note, "interrupted (its scan window ended)");
  EXPECT_EQ(refreshes[1].status, ScanStatus::complete);
  EXPECT_TRUE(store.scans("later", 100).empty());
  EXPECT_TRUE(store.events_after(0, 100).empty());
  const auto log = read_all(dir.log());
  EXPECT_NE(log.find("job crash: its scan window closed: stopping the scan"), std::string::npos)
      << log;
  EXPECT_NE(log.find("(a scan completed earlier in this window)"), std::string::npos) << log;
  EXPECT_NE(log.find("job later: outside its scan windows; it next runs when one opens, "),
            std::string::npos)
      << log;
}

// A restarted agent reports when each job last completed a scan from its database, not 0
// until its next complete scan (PortvigilScanStale and the dashboard read it).
TEST(AgentBinary, LastSuccessSurvivesARestart) {
  AgentDir dir("last-success", "1-5");
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  const auto store = Store::open(dir.db(), Access::read_only);
  const auto stored = store.latest_complete_scan("crash");
  ASSERT_TRUE(stored && stored->finished) << dir.tail_of_log();
  const auto finished = std::chrono::duration<double>(stored->finished->time_since_epoch()).count();
  // The service's own first scan takes 12 s (600 ports at 50/s): the scrapes come before it.
  const auto web_port = test::free_loopback_port();
  std::string config = read_all(dir.config());
  config =
      std::regex_replace(config, std::regex(R"(web-listen-address = "")"),
                         "web-listen-address = \"127.0.0.1:" + std::to_string(web_port) + "\"");
  config = std::regex_replace(config, std::regex(R"(ports = "1-5")"), "ports = \"1-600\"");
  config = std::regex_replace(config, std::regex(R"(interval = "1s")"),
                              "interval = \"1s\"\nmax-rate = 50");
  write_all(dir.config(), config);
  ServiceGuard service{dir.start_service()};
  ASSERT_GT(service.pid, 0);
  std::string metrics = first_scrape(web_port);
  std::smatch last;
  ASSERT_TRUE(std::regex_search(
      metrics, last,
      std::regex(
          R"(portvigil_last_scan_success_timestamp_seconds\{scan_job="crash"\} ([0-9.e+]+))")))
      << metrics;
  EXPECT_NEAR(std::stod(last[1]), finished, 0.01) << metrics;
  EXPECT_EQ(service.stop(SIGTERM, 10s), 0) << dir.tail_of_log();
}

// Polls `done` every 50 ms for up to `limit`: its last answer.
template <typename Done>
bool wait_until(Done done, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

// A [[sink]] webhook whose receiver is stopped while ports change and restarted later gets
// every event of the event log once, in order.
TEST(AgentBinary, AWebhookSinkGetsEveryEventOnceInOrderAcrossAReceiverOutage) {
  test::LoopbackListener listener;
  listener.close();
  AgentDir dir("sink", std::to_string(listener.port()));
  auto receiver = std::make_unique<test::WebhookReceiver>();
  const auto hook_port = receiver->port();
  write_all(dir.config(), read_all(dir.config()) +
                              "\n[[sink]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"" +
                              receiver->url() + "\"\ntimeout = \"2s\"\n");
  ServiceGuard service{dir.start_service()};
  ASSERT_GT(service.pid, 0);
  const auto logged = [&] { return event_ids(read_all(dir.events())).size(); };
  // The sink has its cursor and the baseline (the port closed) is taken.
  ASSERT_TRUE(wait_until(
      [&] {
        const auto log = read_all(dir.log());
        return log.find("sink hook: new") != std::string::npos &&
               log.find("job crash: scan 1 complete") != std::string::npos;
      },
      20s))
      << dir.tail_of_log();
  listener.open();
  ASSERT_TRUE(wait_until([&] { return logged() >= 1; }, 20s)) << dir.tail_of_log();
  ASSERT_TRUE(wait_until([&] { return receiver->bodies().size() >= 1; }, 20s)) << dir.tail_of_log();
  std::string received;
  for (const auto& b : receiver->bodies()) received += b;
  receiver.reset();  // the receiver goes away while two more changes happen
  listener.close();
  ASSERT_TRUE(wait_until([&] { return logged() >= 2; }, 20s)) << dir.tail_of_log();
  listener.open();
  ASSERT_TRUE(wait_until([&] { return logged() >= 3; }, 20s)) << dir.tail_of_log();
  receiver = std::make_unique<test::WebhookReceiver>(hook_port);
  ASSERT_TRUE(wait_until(
      [&] {
        std::string all = received;
        for (const auto& b : receiver->bodies()) all += b;
        return event_ids(all).size() >= 3;
      },
      60s))
      << dir.tail_of_log();
  EXPECT_EQ(service.stop(SIGTERM, 10s), 0) << dir.tail_of_log();
  for (const auto& b : receiver->bodies()) received += b;
  EXPECT_EQ(event_ids(received), event_ids(read_all(dir.events()))) << received << "\n"
                                                                    << dir.tail_of_log();
  EXPECT_NE(read_all(dir.log()).find("sink hook: delivery of events "), std::string::npos)
      << "the outage was not noticed\n"
      << dir.tail_of_log();
}

// The event lines `portvigil agent` printed into a log shared by stdout and stderr.
std::string printed_events(const std::string& log_text) {
  std::string printed;
  std::istringstream lines(log_text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("{\"id\":", 0) == 0) printed += line + "\n";
  }
  return printed;
}

// The event log's other forms as sinks: a file sink gets exactly the event log's lines, also
// across a kill -9, and a stdout sink replaces the echo (each event printed once, in order).
TEST(AgentBinary, FileAndStdoutSinksGetEveryEventLogLineOnce) {
  test::LoopbackListener listener;
  listener.close();
  AgentDir dir("sinks", std::to_string(listener.port()));
  const auto archive = dir.state() + "/../archive.jsonl";
  write_all(dir.config(), read_all(dir.config()) +
                              "\n[[sink]]\nname = \"archive\"\ntype = \"file\"\npath = \"" +
                              archive + "\"\n[[sink]]\nname = \"out\"\ntype = \"stdout\"\n");
  const auto logged = [&] { return event_ids(read_all(dir.events())).size(); };
  const auto archived = [&] { return event_ids(read_all(archive)).size(); };
  ServiceGuard service{dir.start_service()};
  ASSERT_GT(service.pid, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        const auto log = read_all(dir.log());
        return log.find("sink archive: new") != std::string::npos &&
               log.find("sink out: new") != std::string::npos &&
               log.find("job crash: scan 1 complete") != std::string::npos;
      },
      20s))
      << dir.tail_of_log();
  listener.open();
  // Both cursors past the first event (a kill between a delivery and its cursor's write
  // would print that event twice: at least once is the stdout sink's promise).
  const auto cursor = [&](const char* sink) -> std::int64_t {
    try {
      return Store::open(dir.db(), Access::read_only).sink_cursor(sink).value_or(0);
    } catch (const std::exception&) {
      return 0;
    }
  };
  ASSERT_TRUE(wait_until(
      [&] {
        const auto ids = event_ids(read_all(dir.events()));
        return !ids.empty() && cursor("archive") >= ids[0] && cursor("out") >= ids[0];
      },
      20s))
      << dir.tail_of_log();
  kill9(service.pid);  // a crash: the sinks resume from their cursors
  service.pid = -1;
  listener.close();
  service.pid = dir.start_service();
  ASSERT_GT(service.pid, 0);
  ASSERT_TRUE(wait_until([&] { return logged() >= 2 && archived() >= 2; }, 30s))
      << dir.tail_of_log();
  listener.open();
  ASSERT_TRUE(wait_until([&] { return logged() >= 3 && archived() >= 3; }, 30s))
      << dir.tail_of_log();
  EXPECT_EQ(service.stop(SIGTERM, 10s), 0) << dir.tail_of_log();
  EXPECT_EQ(read_all(archive), read_all(dir.events())) << "the file sink's lines differ";
  // stdout and stderr share the log: the event lines in it are the stdout sink's.
  EXPECT_EQ(printed_events(read_all(dir.log())), read_all(dir.events()))
      << "stdout is not the event log once, in order\n"
      << dir.tail_of_log();
}

// Without a [[sink]] of type stdout, events reach stdout through the implicit sink "stdout"
// and its cursor: --once prints its run's events before exiting, and the service that runs
// next prints only the events after them (each event once, in order, as in the event log).
// [agent] stdout-events = false turns the implicit sink off.
TEST(AgentBinary, ImplicitStdoutSinkPrintsEachEventOnceAcrossOnceAndServiceUnlessOff) {
  test::LoopbackListener listener;
  listener.close();
  AgentDir dir("implicit-stdout", std::to_string(listener.port()));
  const auto cursor = [&](std::string_view sink) -> std::int64_t {
    try {
      return Store::open(dir.db(), Access::read_only).sink_cursor(sink).value_or(-1);
    } catch (const std::exception&) {
      return -1;
    }
  };
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();  // silent baseline
  EXPECT_EQ(cursor("stdout"), 0) << dir.tail_of_log();
  listener.open();
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  const auto after_once = event_ids(read_all(dir.events()));
  ASSERT_EQ(after_once.size(), 1u) << dir.tail_of_log();
  EXPECT_EQ(cursor("stdout"), after_once[0]) << "--once did not move the stdout cursor";
  EXPECT_EQ(printed_events(read_all(dir.log())), read_all(dir.events())) << dir.tail_of_log();

  ServiceGuard service{dir.start_service()};
  ASSERT_GT(service.pid, 0);
  listener.close();
  ASSERT_TRUE(wait_until([&] { return cursor("stdout") > after_once[0]; }, 30s))
      << dir.tail_of_log();
  EXPECT_EQ(service.stop(SIGTERM, 10s), 0) << dir.tail_of_log();
  const auto log = read_all(dir.log());
  EXPECT_EQ(printed_events(log), read_all(dir.events()))
      << "stdout is not the event log once, in order\n"
      << dir.tail_of_log();
  ASSERT_NE(log.find("sink stdout: new"), std::string::npos) << dir.tail_of_log();
  EXPECT_EQ(log.find("sink stdout: new"), log.rfind("sink stdout: new"))
      << "the stdout sink's cursor was set twice";
  // Turned off, the implicit sink's cursor goes at the next start: turned on again later,
  // it starts afresh instead of printing everything since.
  write_all(dir.config(), std::regex_replace(read_all(dir.config()), std::regex(R"(\[agent\]\n)"),
                                             "[agent]\nstdout-events = false\n"));
  ASSERT_EQ(dir.run_once(), 0) << dir.tail_of_log();
  EXPECT_EQ(cursor("stdout"), -1) << dir.tail_of_log();
  EXPECT_NE(read_all(dir.log()).find("forgot the cursors of 1 sinks"), std::string::npos)
      << dir.tail_of_log();
  // stdout-events = false: no implicit sink, nothing printed, no cursor.
  AgentDir quiet("stdout-events-off", std::to_string(listener.port()));
  write_all(quiet.config(),
            std::regex_replace(read_all(quiet.config()), std::regex(R"(\[agent\]\n)"),
                               "[agent]\nstdout-events = false\n"));
  ASSERT_EQ(quiet.run_once(), 0) << quiet.tail_of_log();  // silent baseline, port closed
  listener.open();
  ASSERT_EQ(quiet.run_once(), 0) << quiet.tail_of_log();
  EXPECT_EQ(event_ids(read_all(quiet.events())).size(), 1u) << quiet.tail_of_log();
  EXPECT_EQ(printed_events(read_all(quiet.log())), "") << quiet.tail_of_log();
  EXPECT_FALSE(Store::open(quiet.db(), Access::read_only).sink_cursor("stdout").has_value());
}

// Started with stdout closed, the agent must not let its database or event log take
// descriptor 1: the stdout sink would write event lines into that file.
TEST(AgentBinary, ClosedStdoutIsNotReusedForStateFiles) {
  test::LoopbackListener listener;
  listener.close();
  AgentDir dir("closed-stdout", std::to_string(listener.port()));
  ASSERT_EQ(dir.run_once(true), 0) << dir.tail_of_log();
  listener.open();
  ASSERT_EQ(dir.run_once(true), 0) << dir.tail_of_log();
  const auto store = Store::open(dir.db(), Access::read_only);
  EXPECT_TRUE(store.integrity_problems().empty()) << store.integrity_problems().front();
  const auto ids = event_ids(read_all(dir.events()));
  ASSERT_EQ(ids.size(), 1u) << read_all(dir.events()) << dir.tail_of_log();
  EXPECT_EQ(split_lines(read_all(dir.events())).size(), 1u) << read_all(dir.events());
  EXPECT_EQ(store.sink_cursor("stdout").value_or(0), ids[0]) << dir.tail_of_log();
  // The first file opened (the state directory's lock) would have taken descriptor 1.
  for (const auto& entry : std::filesystem::directory_iterator(dir.state())) {
    if (entry.path().filename() == "events.jsonl") continue;
    EXPECT_EQ(read_all(entry.path().string()).find("{\"id\":"), std::string::npos)
        << entry.path() << " holds an event line";
  }
}

// The event log is reported like a sink (sink="event-log"): a log that cannot be written
// (a full disk, /dev/full here) shows its pending events and failed attempts, while the
// stdout sink, reading the database, delivers the same event.
TEST(AgentBinary, EventLogLagIsReportedAsASink) {
  test::LoopbackListener listener;
  listener.close();
  AgentDir dir("event-log-lag", std::to_string(listener.port()));
  const auto web_port = test::free_loopback_port();
  auto config = read_all(dir.config());
  config = std::regex_replace(config, std::regex(R"(web-listen-address = "")"),
                              "web-listen-address = \"127.0.0.1:" + std::to_string(web_port) +
                                  "\"\nevent-log = \"/dev/full\"");
  write_all(dir.config(), config);
  ServiceGuard service{dir.start_service()};
  ASSERT_GT(service.pid, 0);
  ASSERT_TRUE(wait_until(
      [&] { return read_all(dir.log()).find("job crash: scan 1 complete") != std::string::npos; },
      20s))
      << dir.tail_of_log();
  listener.open();
  std::string metrics;
  const bool behind = wait_until(
      [&] {
        metrics = test::http_get(web_port, "/metrics");
        return has_line(metrics, "portvigil_sink_pending_events{sink=\"event-log\"} 1") &&
               has_line(metrics, "portvigil_sink_pending_events{sink=\"stdout\"} 0") &&
               has_line(metrics, "portvigil_sink_events_delivered_total{sink=\"stdout\"} 1");
      },
      20s);
  EXPECT_EQ(service.stop(SIGTERM, 10s), 0) << dir.tail_of_log();
  ASSERT_TRUE(behind) << metrics << dir.tail_of_log();
  EXPECT_TRUE(std::regex_search(
      metrics, std::regex(R"(\nportvigil_sink_delivery_failures_total\{sink="event-log"\} [1-9])")))
      << metrics;
  EXPECT_NE(read_all(dir.log()).find("event log: "), std::string::npos) << dir.tail_of_log();
}

// Concurrent jobs under one budget: a slow job (600 ports, its own max-rate 1000 but the
// agent's 100) takes at least 6 s, and the quick job (1 s interval) keeps scanning
// meanwhile instead of waiting for it.
TEST(AgentBinary, ConcurrentJobsShareTheAgentRateAndNeverWaitForASlowOne) {
  test::LoopbackListener listener;
  AgentDir dir("concurrent", "1-600");
  std::string config = read_all(dir.config());
  config = std::regex_replace(config, std::regex(R"(web-listen-address = "")"),
                              "web-listen-address = \"\"\nmax-rate = 100\n"
                              "max-concurrent-jobs = 2");
  config = std::regex_replace(config, std::regex(R"(interval = "1s")"),
                              "interval = \"1h\"\nmax-rate = 1000");
  config += "\n[[job]]\nname = \"quick\"\ntargets = [\"127.0.0.1\"]\nports = \"" +
            std::to_string(listener.port()) + "\"\ntechnique = \"connect\"\ninterval = \"1s\"\n";
  write_all(dir.config(), config);
  ServiceGuard service{dir.start_service()};
  ASSERT_GT(service.pid, 0);
  const auto slow_done = [&]() -> std::optional<ScanRecord> {
    try {
      const auto store = Store::open(dir.db(), Access::read_only);
      for (const auto& s : store.scans("crash", 10)) {
        if (s.status != ScanStatus::running) return s;
      }
    } catch (const StorageError&) {
      // not created yet
    }
    return std::nullopt;
  };
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  std::optional<ScanRecord> slow;
  while (!(slow = slow_done()) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(slow) << dir.tail_of_log();
  EXPECT_EQ(service.stop(SIGTERM, 10s), 0) << dir.tail_of_log();
  ASSERT_EQ(slow->status, ScanStatus::complete) << slow->note;
  ASSERT_TRUE(slow->finished);
  const double took = std::chrono::duration<double>(*slow->finished - slow->started).count();
  EXPECT_GE(took, 600.0 / 100 - 0.5) << "the agent's max-rate did not hold the slow job";
  const auto store = Store::open(dir.db(), Access::read_only);
  std::size_t quick_during = 0;
  for (const auto& s : store.scans("quick", 1000)) {
    if (s.status == ScanStatus::complete && s.started >= slow->started && s.finished &&
        *s.finished <= *slow->finished) {
      ++quick_during;
    }
  }
  EXPECT_GE(quick_during, 3u) << "the quick job waited for the slow one\n" << dir.tail_of_log();
}

}  // namespace
}  // namespace portvigil

namespace portvigil {
namespace {

// `portvigil baseline accept` (another process) clears portvigil_port_unexpected_open at the
// agent's next scrape, not at its next scan: here the next scan is an hour away.
TEST(AgentBinary, BaselineAcceptClearsThePagingSeriesAtTheNextScrape) {
  test::LoopbackListener listener;
  AgentDir dir("accept", std::to_string(listener.port()));
  const auto web_port = test::free_loopback_port();
  const std::string config = read_all(dir.config());
  write_all(
      dir.config(),
      std::regex_replace(
          std::regex_replace(config, std::regex(R"(web-listen-address = "")"),
                             "web-listen-address = \"127.0.0.1:" + std::to_string(web_port) + "\""),
          std::regex(R"(interval = "1s")"), "interval = \"1h\"\nexpected-open = []"));
  ServiceGuard service{dir.start_service()};
  ASSERT_GT(service.pid, 0);
  const std::string series = "portvigil_port_unexpected_open{scan_job=\"crash\",host=\"127.0.0.1\"";
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (test::http_get(web_port, "/metrics").find(series) == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_NE(test::http_get(web_port, "/metrics").find(series), std::string::npos)
      << dir.tail_of_log();
  const auto accept = run_command(dir, {"baseline", "accept", "--state-dir", dir.state()});
  ASSERT_EQ(accept.status, 0) << accept.output;
  const auto metrics = test::http_get(web_port, "/metrics");
  EXPECT_EQ(metrics.find(series), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("portvigil_port_open{scan_job=\"crash\",host=\"127.0.0.1\""),
            std::string::npos)
      << metrics;
  EXPECT_EQ(read_all(dir.log()).find("scan 2"), std::string::npos) << "a second scan ran";
  EXPECT_EQ(service.stop(SIGTERM, 2s), 0) << dir.tail_of_log();
}

}  // namespace
}  // namespace portvigil
