// The agent in the lab: `portvigil agent` runs inside the lab's scanner namespace (no route
// out, via lab.sh exec) against the lab target.
//
//   1. The first scan is silent, then exactly one event per change and host (--once runs, syn
//      and connect), and the same as a service: the event stream of a ~10 s run across one
//      open/close is exactly those events, and SIGTERM stops it within 3 s with exit 0.
//   2. 5 % random packet loss in both directions (nftables on the target's veth end): 20
//      cycles of an unchanged network give no event at all, and a real change is still
//      reported once per host within a few cycles (syn, connect, and syn confirmed by
//      connect). A host that goes down is logged as down, not as every port filtered.
//   3. The authorization scope on the wire: check-config rejects an out-of-scope target, and a
//      capture on the scanner's veth during an agent run shows probes to the authorized target
//      and nothing to a live address outside the scope, not even when a job's hostname
//      resolves to it (a private /etc/hosts, bind-mounted in a private mount namespace).
//   4. SIGHUP: a bad file is logged and the running configuration kept; a good file is
//      applied (a new job starts scanning).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "lab_fixture.hpp"

namespace {

using pvlab::Background;
using pvlab::CmdResult;
using pvlab::count_packets;
using pvlab::Lab;
using pvlab::LabConfig;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string target_namespace(const Lab& lab) {
  return "pv-" + lab.name() + "-tgt";
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::size_t count_matches(const std::string& text, const std::regex& re) {
  return static_cast<std::size_t>(
      std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

// ---------------------------------------------------------------------------------------------

std::string describe_status(int status) {
  if (status == -1) return "not started";
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// An extra open TCP port in the target namespace: a second lab_listener, stopped by its pid.
// (`ip netns exec` execs the listener, so the pid is the listener's.)
class ExtraListener {
 public:
  ExtraListener(const Lab& lab, int port)
      : proc_({"ip", "netns", "exec", target_namespace(lab), pvlab::listener_binary(), "--tcp",
               std::to_string(port)},
              lab.path("listener-" + std::to_string(port) + ".out"),
              lab.path("listener-" + std::to_string(port) + ".err")) {
    ready_ = proc_.running() && wait_until([&] { return contains(proc_.out(), "ready\n"); }, 10s);
    if (!ready_) error_ = "listener on port " + std::to_string(port) + " not ready: " + proc_.err();
  }
  bool ready() const { return ready_; }
  const std::string& error() const { return error_; }
  // Stops the listener: the port answers RST (closed) from then on.
  int stop() { return proc_.stop(); }

 private:
  Background proc_;
  bool ready_ = false;
  std::string error_;
};

// ---------------------------------------------------------------------------------------------
// Events: the JSON lines of the agent's stdout and DIR/events.jsonl.
struct Event {
  long long id = 0;
  std::string job, host, proto, from, to, from_reason, to_reason, line;
  int port = 0;
  bool expected = true;
  long long scan_id = 0;
};

std::vector<Event> parse_events(const std::string& text) {
  std::vector<Event> out;
  for (const auto& line : pvlab::split_lines(text)) {
    if (line.empty()) continue;
    std::string err;
    const auto doc = pvlab::parse_json(line, &err);
    if (!doc || doc->type != pvlab::Json::Type::Object) {
      ADD_FAILURE() << "not a JSON event line (" << err << "): " << line;
      continue;
    }
    Event e;
    e.line = line;
    auto number = [&](const char* key) -> double {
      const pvlab::Json* v = doc->get(key);
      if (v == nullptr || v->type != pvlab::Json::Type::Number) {
        ADD_FAILURE() << "event without numeric \"" << key << "\": " << line;
        return 0;
      }
      return v->number;
    };
    e.id = static_cast<long long>(number("id"));
    e.port = static_cast<int>(number("port"));
    e.scan_id = static_cast<long long>(number("scan_id"));
    e.job = doc->str("job");
    e.host = doc->str("host");
    e.proto = doc->str("proto");
    e.from = doc->str("from");
    e.to = doc->str("to");
    e.from_reason = doc->str("from_reason");
    e.to_reason = doc->str("to_reason");
    if (const pvlab::Json* x = doc->get("expected");
        x != nullptr && x->type == pvlab::Json::Type::Bool)
      e.expected = x->boolean;
    else
      ADD_FAILURE() << "event without boolean \"expected\": " << line;
    for (const char* key : {"time", "job", "host", "proto", "from", "to"})
      if (doc->str(key).empty()) ADD_FAILURE() << "event without \"" << key << "\": " << line;
    out.push_back(std::move(e));
  }
  return out;
}

std::string show(const std::vector<Event>& events) {
  std::string s;
  for (const auto& e : events) s += "    " + e.line + "\n";
  return s.empty() ? "    (none)\n" : s;
}

// Exactly one event per host of `hosts`, each for tcp/port from -> to in `job`.
void expect_one_per_host(const std::vector<Event>& events, const std::vector<std::string>& hosts,
                         const std::string& job, int port, const std::string& from,
                         const std::string& to, bool expected, const std::string& what) {
  EXPECT_EQ(events.size(), hosts.size()) << what << ": events:\n" << show(events);
  for (const auto& host : hosts) {
    std::size_t n = 0;
    for (const auto& e : events) {
      if (e.host != host) continue;
      ++n;
      EXPECT_EQ(e.job, job) << what << ": " << e.line;
      EXPECT_EQ(e.proto, "tcp") << what << ": " << e.line;
      EXPECT_EQ(e.port, port) << what << ": " << e.line;
      EXPECT_EQ(e.from, from) << what << ": " << e.line;
      EXPECT_EQ(e.to, to) << what << ": " << e.line;
      EXPECT_EQ(e.expected, expected) << what << ": " << e.line;
      EXPECT_FALSE(e.to_reason.empty()) << what << ": " << e.line;
    }
    EXPECT_EQ(n, 1U) << what << ": events of host " << host << ":\n" << show(events);
  }
}

// ---------------------------------------------------------------------------------------------
// Agent configuration
struct JobSpec {
  std::string name = "lab";
  std::vector<std::string> targets = {Lab::kTarget4, Lab::kTarget6};
  std::string ports = "1-1000,8000-8100";
  std::string technique = "syn";
  std::string interval = "1s";
  int confirmations = 2;
  std::string extra;  // more TOML lines for the job
};

std::string toml_array(const std::vector<std::string>& items) {
  std::string s = "[";
  for (const auto& i : items) s += (s.size() > 1 ? ", \"" : "\"") + i + "\"";
  return s + "]";
}

std::string agent_config(const Lab& lab, const std::vector<std::string>& networks,
                         const std::vector<JobSpec>& jobs) {
  std::string t = "[agent]\nstate-dir = \"" + lab.path("state") + "\"\nlog-level = \"info\"\n\n";
  t += "[[authorization]]\nnetworks = " + toml_array(networks) + "\nowner = \"agent_lab_test\"\n\n";
  for (const auto& j : jobs) {
    t += "[[job]]\nname = \"" + j.name + "\"\ntargets = " + toml_array(j.targets) + "\nports = \"" +
         j.ports + "\"\ntechnique = \"" + j.technique + "\"\ninterval = \"" + j.interval +
         "\"\nconfirmations = " + std::to_string(j.confirmations) + "\n" + j.extra + "\n";
  }
  return t;
}

// Writes the file atomically (the agent may read it at any moment on SIGHUP).
void write_config(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  ASSERT_TRUE(pvlab::write_file(tmp, text)) << tmp;
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  ASSERT_FALSE(ec) << "rename " << tmp << ": " << ec.message();
}

const std::vector<std::string> kLabNetworks = {"198.18.0.0/24", "2001:db8::/64"};
const std::vector<std::string> kBothTargets = {Lab::kTarget4, Lab::kTarget6};

std::vector<std::string> agent_args(const Lab& lab, const std::string& config) {
  return {pvlab::portvigil_binary(), "agent", "--config", config, "--state-dir", lab.path("state")};
}

struct OnceRun {
  CmdResult cmd;
  std::vector<Event> events;
  double seconds = 0;
};

// One `portvigil agent --once` in the scanner namespace (`wrap` goes before the agent's argv).
OnceRun run_once(const Lab& lab, const std::string& config,
                 const std::vector<std::string>& wrap = {}) {
  OnceRun r;
  std::vector<std::string> cmd = wrap;
  for (const auto& a : agent_args(lab, config)) cmd.push_back(a);
  cmd.emplace_back("--once");
  const auto t0 = Clock::now();
  r.cmd = lab.exec(cmd, 300s);
  r.seconds = seconds_since(t0);
  r.events = parse_events(r.cmd.out);
  return r;
}

// The agent in service mode in the scanner namespace. lab.sh exec and `ip netns exec` both
// exec, so the pid is the agent's once it has logged its start.
class ServiceAgent {
 public:
  ServiceAgent(const Lab& lab, const std::string& config)
      : proc_(
            [&] {
              std::vector<std::string> cmd = {pvlab::lab_script(), "exec", "--name", lab.name(),
                                              "--"};
              for (const auto& a : agent_args(lab, config)) cmd.push_back(a);
              return cmd;
            }(),
            lab.path("agent.out"), lab.path("agent.err")) {}

  Background& proc() { return proc_; }
  std::string log() const { return proc_.err(); }
  std::string out() const { return proc_.out(); }

  // Completed scans of `job` logged so far.
  std::size_t completed(const std::string& job) const {
    return count_matches(log(), std::regex("job " + job + ": scan [0-9]+ complete"));
  }
  bool wait_completed(const std::string& job, std::size_t n, std::chrono::milliseconds limit) {
    return wait_until([&] { return completed(job) >= n || exited(); }, limit) &&
           completed(job) >= n;
  }
  bool wait_log(const std::string& text, std::chrono::milliseconds limit) {
    return wait_until([&] { return contains(log(), text) || exited(); }, limit) &&
           contains(log(), text);
  }
  bool wait_events(std::size_t n, std::chrono::milliseconds limit) {
    auto count = [&] { return pvlab::split_lines(out()).size(); };
    return wait_until([&] { return count() >= n || exited(); }, limit) && count() >= n;
  }
  bool exited() const { return !proc_.running(); }

  // The process to signal must be the agent itself, not lab.sh or ip.
  bool is_agent() const {
    const std::string comm = pvlab::read_file("/proc/" + std::to_string(proc_.pid()) + "/comm");
    return comm == "portvigil\n";
  }

 private:
  Background proc_;
};

// SIGTERM; the agent must exit 0 within 3 s.
void expect_clean_sigterm(ServiceAgent& agent) {
  ASSERT_TRUE(agent.is_agent()) << "pid " << agent.proc().pid() << " is not the agent";
  const auto t0 = Clock::now();
  ASSERT_TRUE(agent.proc().signal(SIGTERM));
  const auto status = agent.proc().wait_exit(3s);
  const double took = seconds_since(t0);
  ASSERT_TRUE(status.has_value()) << "the agent still runs 3 s after SIGTERM; log:\n"
                                  << agent.log();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "after SIGTERM: " << describe_status(*status) << "; log:\n"
      << agent.log();
  EXPECT_TRUE(contains(agent.log(), "received SIGTERM: stopping")) << agent.log();
  std::printf("SIGTERM: the agent stopped in %.2f s\n", took);
}

// The agent's own record: DIR/events.jsonl and `portvigil changes --json` agree with stdout.
void expect_event_log_matches(const Lab& lab, const std::string& stdout_events) {
  const auto from_stdout = parse_events(stdout_events);
  const auto from_file = parse_events(pvlab::read_file(lab.path("state/events.jsonl")));
  ASSERT_EQ(from_file.size(), from_stdout.size()) << "events.jsonl:\n"
                                                  << show(from_file) << "stdout:\n"
                                                  << show(from_stdout);
  for (std::size_t i = 0; i < from_file.size(); ++i)
    EXPECT_EQ(from_file[i].line, from_stdout[i].line);
  const CmdResult changes = pvlab::run(
      {pvlab::portvigil_binary(), "changes", "--state-dir", lab.path("state"), "--json"}, 60s);
  ASSERT_EQ(changes.exit_code, 0) << changes.describe();
  const auto listed = parse_events(changes.out);
  std::set<std::string> want, got;
  for (const auto& e : from_stdout) want.insert(e.line);
  for (const auto& e : listed) got.insert(e.line);
  EXPECT_EQ(got, want) << "portvigil changes --json:\n" << show(listed);
}

// ---------------------------------------------------------------------------------------------
// 1. The first scan is silent; then exactly one event per change and host.
constexpr int kNewPort = 8042;  // in the jobs' port lists, closed in the lab until a test opens it

LabConfig small_lab() {
  LabConfig c;
  c.tcp_open = "22,80,443,8080";
  c.tcp_drop = "8090-8091";  // filtered ports must stay quiet too
  c.tcp_reject = "8095";
  return c;
}

class AgentOnce : public ::testing::TestWithParam<const char*> {};

TEST_P(AgentOnce, FirstScanSilentThenOneEventPerChange) {
  PV_REQUIRE_LAB();
  Lab lab(small_lab());
  PV_REQUIRE_LAB_UP(lab);
  JobSpec job;
  job.technique = GetParam();
  const std::string config = lab.path("agent.toml");
  write_config(config, agent_config(lab, kLabNetworks, {job}));
  const CmdResult check = pvlab::run({pvlab::portvigil_binary(), "check-config", config}, 60s);
  ASSERT_EQ(check.exit_code, 0) << check.describe();

  // Run 1: the baseline, silently.
  const OnceRun r1 = run_once(lab, config);
  ASSERT_EQ(r1.cmd.exit_code, 0) << r1.cmd.describe();
  EXPECT_TRUE(r1.events.empty()) << "first scan:\n" << show(r1.events);
  EXPECT_EQ(count_matches(r1.cmd.err, std::regex("job lab: scan [0-9]+ complete")), 1U)
      << r1.cmd.err;

  // Run 2: a new open port -> one closed -> open event per host, unexpected (no policy).
  OnceRun r2;
  {
    ExtraListener extra(lab, kNewPort);
    ASSERT_TRUE(extra.ready()) << extra.error();
    r2 = run_once(lab, config);
  }  // the listener stops here
  ASSERT_EQ(r2.cmd.exit_code, 0) << r2.cmd.describe();
  expect_one_per_host(r2.events, kBothTargets, "lab", kNewPort, "closed", "open", false,
                      "after opening the port");

  // Run 3: closed again -> one open -> closed event per host.
  const OnceRun r3 = run_once(lab, config);
  ASSERT_EQ(r3.cmd.exit_code, 0) << r3.cmd.describe();
  expect_one_per_host(r3.events, kBothTargets, "lab", kNewPort, "open", "closed", true,
                      "after closing the port");

  // Run 4: nothing changed -> nothing.
  const OnceRun r4 = run_once(lab, config);
  ASSERT_EQ(r4.cmd.exit_code, 0) << r4.cmd.describe();
  EXPECT_TRUE(r4.events.empty()) << "unchanged network:\n" << show(r4.events);

  // Ids increase; the scan ids of run 2 and 3 differ.
  if (r2.events.size() == 2 && r3.events.size() == 2) {
    EXPECT_LT(r2.events[1].id, r3.events[0].id);
    EXPECT_NE(r2.events[0].scan_id, r3.events[0].scan_id);
  }
  expect_event_log_matches(lab, r2.cmd.out + r3.cmd.out);
  const CmdResult status =
      pvlab::run({pvlab::portvigil_binary(), "status", "--state-dir", lab.path("state")}, 60s);
  EXPECT_EQ(status.exit_code, 0) << status.describe();
  EXPECT_TRUE(contains(status.out, "lab")) << status.out;
  std::printf("%s: --once runs took %.2f, %.2f, %.2f, %.2f s\n", GetParam(), r1.seconds, r2.seconds,
              r3.seconds, r4.seconds);
}

INSTANTIATE_TEST_SUITE_P(Lab, AgentOnce, ::testing::Values("syn", "connect"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                           return std::string(p.param);
                         });

// The same as a service: ~10 s at interval 1s across one open/close.
TEST(AgentService, EventStreamIsExactlyTheChangesAndSigtermStops) {
  PV_REQUIRE_LAB();
  Lab lab(small_lab());
  PV_REQUIRE_LAB_UP(lab);
  const std::string config = lab.path("agent.toml");
  write_config(config, agent_config(lab, kLabNetworks, {JobSpec{}}));

  const auto t0 = Clock::now();
  ServiceAgent agent(lab, config);
  ASSERT_TRUE(agent.wait_completed("lab", 1, 60s)) << "no first scan; log:\n" << agent.log();
  std::size_t before = agent.completed("lab");
  {
    ExtraListener extra(lab, kNewPort);
    ASSERT_TRUE(extra.ready()) << extra.error();
    ASSERT_TRUE(agent.wait_events(2, 30s)) << "no open events; log:\n" << agent.log();
    // Two more complete scans with the port open: no more events.
    before = agent.completed("lab");
    ASSERT_TRUE(agent.wait_completed("lab", before + 2, 30s)) << agent.log();
  }
  ASSERT_TRUE(agent.wait_events(4, 30s)) << "no close events; log:\n" << agent.log();
  before = agent.completed("lab");
  ASSERT_TRUE(agent.wait_completed("lab", before + 2, 30s)) << agent.log();
  const double ran = seconds_since(t0);

  expect_clean_sigterm(agent);
  const auto events = parse_events(agent.out());
  ASSERT_EQ(events.size(), 4U) << "event stream:\n" << show(events) << "log:\n" << agent.log();
  expect_one_per_host({events[0], events[1]}, kBothTargets, "lab", kNewPort, "closed", "open",
                      false, "service, port opened");
  expect_one_per_host({events[2], events[3]}, kBothTargets, "lab", kNewPort, "open", "closed", true,
                      "service, port closed");
  expect_event_log_matches(lab, agent.out());
  std::printf("service: %zu scans in %.1f s, events: %zu\n", agent.completed("lab"), ran,
              events.size());
}

// ---------------------------------------------------------------------------------------------
// 1b. What opened (#12): real servers start in the target namespace between two runs of a SYN
// job; each opened port's event carries what answered there, `portvigil changes` shows it
// in one line, and the printer port (never probed) received zero bytes.
TEST(AgentServices, EachOpenedPortsEventSaysWhatAnswered) {
  PV_REQUIRE_LAB();
  LabConfig c;
  c.tcp_open = "22";
  Lab lab(c);
  PV_REQUIRE_LAB_UP(lab);
  const std::string cert = lab.path("cert.pem");
  const std::string key = lab.path("key.pem");
  const CmdResult made = pvlab::run(
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-subj", "/CN=lab.internal", "-addext", "subjectAltName=DNS:lab.internal,DNS:alt.internal",
       "-days", "20", "-keyout", key, "-out", cert},
      60s);
  ASSERT_EQ(made.exit_code, 0) << made.describe();
  JobSpec job;
  job.targets = {Lab::kTarget4};
  job.ports = "22,2222,2525,7000,8080,8443,9100";
  job.extra = "watch-services = true\nwatch-services-interval = \"1s\"\n";
  const std::string config = lab.path("agent.toml");
  write_config(config, agent_config(lab, kLabNetworks, {job}));
  const OnceRun baseline = run_once(lab, config);
  ASSERT_EQ(baseline.cmd.exit_code, 0) << baseline.cmd.describe();
  EXPECT_TRUE(baseline.events.empty()) << show(baseline.events);

  Background servers({"ip", "netns", "exec", target_namespace(lab), "python3",
                      pvlab::lab_script_dir() + "/service_servers.py", "--dir", lab.dir(), "--cert",
                      cert, "--key", key},
                     lab.path("servers.out"), lab.path("servers.err"));
  ASSERT_TRUE(wait_until([&] { return contains(servers.out(), "ready"); }, 10s)) << servers.err();
  const OnceRun opened = run_once(lab, config);
  ASSERT_EQ(opened.cmd.exit_code, 0) << opened.cmd.describe();
  ASSERT_EQ(opened.events.size(), 6U) << show(opened.events);
  std::map<int, pvlab::Json> service;
  for (const auto& e : opened.events) {
    EXPECT_EQ(e.to, "open") << e.line;
    std::string error;
    const auto doc = pvlab::parse_json(e.line, &error);
    ASSERT_TRUE(doc.has_value()) << error << ": " << e.line;
    const pvlab::Json* s = doc->get("service");
    ASSERT_NE(s, nullptr) << "no service in " << e.line;
    service[e.port] = *s;
  }
  ASSERT_EQ(service.size(), 6U);
  EXPECT_EQ(service[2222].str("protocol"), "ssh");
  EXPECT_EQ(service[2222].str("banner"), "SSH-2.0-LabSSH_1.0");
  EXPECT_EQ(service[2222].str("banner_sha256").size(), 64U);
  EXPECT_EQ(service[2525].str("protocol"), "smtp");
  EXPECT_EQ(service[7000].str("outcome"), "silent");
  EXPECT_EQ(service[8080].str("protocol"), "http");
  ASSERT_NE(service[8080].get("http"), nullptr);
  EXPECT_EQ(service[8080].get("http")->str("server"), "LabHTTP/1.0");
  EXPECT_EQ(service[8443].str("protocol"), "https");
  const pvlab::Json* tls = service[8443].get("tls");
  ASSERT_NE(tls, nullptr) << opened.cmd.out;
  EXPECT_EQ(tls->str("subject_cn"), "lab.internal");
  const pvlab::Json* sans = tls->get("sans");
  ASSERT_NE(sans, nullptr);
  ASSERT_EQ(sans->array.size(), 2U);
  EXPECT_EQ(sans->array[0].string, "lab.internal");
  EXPECT_EQ(sans->array[1].string, "alt.internal");
  ASSERT_NE(tls->get("self_signed"), nullptr);
  EXPECT_TRUE(tls->get("self_signed")->boolean);
  // -days 20: the certificate expires 20 days from now (give or take the test's minutes).
  const CmdResult enddate = pvlab::run(
      {"openssl", "x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in", cert}, 60s);
  ASSERT_EQ(enddate.exit_code, 0) << enddate.describe();
  // "notAfter=2026-12-23 14:50:01Z" -> "2026-12-23T14:50:01"
  std::string want_end = enddate.out.substr(enddate.out.find('=') + 1, 19);
  want_end[10] = 'T';
  EXPECT_EQ(tls->str("not_after").substr(0, 19), want_end) << enddate.out;
  EXPECT_EQ(service[9100].str("outcome"), "not-probed");
  EXPECT_EQ(pvlab::read_file(lab.path("printer.bytes")), "0\n") << "the printer received bytes";

  const CmdResult changes =
      pvlab::run({pvlab::portvigil_binary(), "changes", "--state-dir", lab.path("state")}, 60s);
  ASSERT_EQ(changes.exit_code, 0) << changes.describe();
  EXPECT_TRUE(contains(changes.out,
                       "2222/tcp  closed -> open (syn-ack)  UNEXPECTED  ssh: "
                       "SSH-2.0-LabSSH_1.0"))
      << changes.out;
  EXPECT_TRUE(contains(changes.out, "CN lab.internal")) << changes.out;

  // The certificate is replaced: the next run (watch-services, every 1 s) reads every open
  // port again, and only 8443 changed: one service-changed event with both certificates.
  const std::string cert2 = lab.path("cert2.pem");
  const std::string key2 = lab.path("key2.pem");
  const CmdResult renewed = pvlab::run(
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-subj", "/CN=renewed.internal", "-days", "90", "-keyout", key2, "-out", cert2},
      60s);
  ASSERT_EQ(renewed.exit_code, 0) << renewed.describe();
  servers.stop();
  Background servers2({"ip", "netns", "exec", target_namespace(lab), "python3",
                       pvlab::lab_script_dir() + "/service_servers.py", "--dir", lab.dir(),
                       "--cert", cert2, "--key", key2},
                      lab.path("servers2.out"), lab.path("servers2.err"));
  ASSERT_TRUE(wait_until([&] { return contains(servers2.out(), "ready"); }, 10s)) << servers2.err();
  std::this_thread::sleep_for(1100ms);
  const OnceRun watched = run_once(lab, config);
  ASSERT_EQ(watched.cmd.exit_code, 0) << watched.cmd.describe();
  ASSERT_EQ(watched.events.size(), 1U) << show(watched.events);
  std::string error;
  const auto doc = pvlab::parse_json(watched.events[0].line, &error);
  ASSERT_TRUE(doc.has_value()) << error;
  EXPECT_EQ(doc->str("kind"), "service-changed") << watched.events[0].line;
  EXPECT_EQ(watched.events[0].port, 8443);
  const pvlab::Json* now = doc->get("service");
  const pvlab::Json* before = doc->get("previous_service");
  ASSERT_TRUE(now != nullptr && before != nullptr) << watched.events[0].line;
  ASSERT_TRUE(now->get("tls") != nullptr && before->get("tls") != nullptr);
  EXPECT_EQ(now->get("tls")->str("subject_cn"), "renewed.internal");
  EXPECT_EQ(before->get("tls")->str("subject_cn"), "lab.internal");
  EXPECT_NE(now->get("tls")->str("sha256"), before->get("tls")->str("sha256"));
  EXPECT_EQ(pvlab::read_file(lab.path("printer.bytes")), "0\n") << "the printer received bytes";
  // The port's history: its opening with what answered, then the service change.
  const CmdResult history = pvlab::run({pvlab::portvigil_binary(), "history", "--state-dir",
                                        lab.path("state"), Lab::kTarget4, "8443"},
                                       60s);
  ASSERT_EQ(history.exit_code, 0) << history.describe();
  const auto opened_at = history.out.find("8443/tcp  closed -> open (syn-ack)");
  const auto changed_at = history.out.find("8443/tcp  service changed: https: ");
  EXPECT_NE(opened_at, std::string::npos) << history.out;
  EXPECT_NE(changed_at, std::string::npos) << history.out;
  EXPECT_LT(opened_at, changed_at) << history.out;
  EXPECT_TRUE(contains(history.out, "CN renewed.internal")) << history.out;
  // Nothing changed since: the next read is quiet.
  std::this_thread::sleep_for(1100ms);
  const OnceRun quiet = run_once(lab, config);
  ASSERT_EQ(quiet.cmd.exit_code, 0) << quiet.cmd.describe();
  EXPECT_TRUE(quiet.events.empty()) << show(quiet.events);
  std::printf("baseline %.2f s, run with 6 opened ports %.2f s, watched run %.2f s\n",
              baseline.seconds, opened.seconds, watched.seconds);
}

// ---------------------------------------------------------------------------------------------
// 2. No false events under loss: 5 % random loss in each direction, an unchanged network.
//    tc netem would do, but kernels without sch_netem are common in CI (this one has none);
//    nftables is a lab requirement anyway: numgen random drops 5 % of what enters the target's
//    veth end (the probes) and of what leaves it (the answers), before any capture in the
//    scanner namespace could see them.
struct LossCounters {
  long in_all = -1, in_dropped = -1, out_all = -1, out_dropped = -1;
};

LossCounters loss_counters(const Lab& lab) {
  LossCounters c;
  const CmdResult r = pvlab::run(
      {"ip", "netns", "exec", target_namespace(lab), "nft", "list", "table", "netdev", "pvloss"},
      30s);
  if (r.exit_code != 0) {
    ADD_FAILURE() << "nft list table netdev pvloss: " << r.describe();
    return c;
  }
  static const std::regex re("counter packets ([0-9]+)");
  std::vector<long> v;
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), re); it != std::sregex_iterator();
       ++it)
    v.push_back(std::stol((*it)[1].str()));
  if (v.size() != 4) {
    ADD_FAILURE() << "unexpected pvloss table:\n" << r.out;
    return c;
  }
  return {v[0], v[1], v[2], v[3]};
}

// Adds 5 % random loss on the target's veth end, both directions. Empty on success.
std::string add_loss(const Lab& lab) {
  const std::string dev = lab.target_interface();
  std::string table = "table netdev pvloss {\n";
  for (const char* hook : {"ingress", "egress"}) {
    table += std::string("  chain ") + hook + " {\n    type filter hook " + hook + " device \"" +
             dev + "\" priority -500; policy accept;\n" +
             "    counter\n    numgen random mod 100 < 5 counter drop\n  }\n";
  }
  const std::string rules = lab.path("loss.nft");
  if (!pvlab::write_file(rules, table + "}\n")) return "cannot write " + rules;
  const CmdResult nft =
      pvlab::run({"ip", "netns", "exec", target_namespace(lab), "nft", "-f", rules}, 30s);
  if (nft.exit_code != 0)
    return "nftables netdev ingress/egress hooks do not work here: " + nft.describe();
  return "";
}

LabConfig loss_lab() {
  LabConfig c;
  c.tcp_open = "22,80,443,1500";
  c.tcp_drop = "1900-1904";
  return c;
}

// What the agent's log says about a run.
struct RunStats {
  std::size_t complete = 0, seen = 0, unconfirmed = 0, inconclusive = 0;
  void add(const std::string& log, const std::string& job) {
    complete += count_matches(log, std::regex("job " + job + ": scan [0-9]+ complete"));
    inconclusive += count_matches(log, std::regex("inconclusive, not compared"));
    static const std::regex counts("([0-9]+) changes seen, ([0-9]+) not confirmed");
    for (auto it = std::sregex_iterator(log.begin(), log.end(), counts);
         it != std::sregex_iterator(); ++it) {
      seen += std::stoul((*it)[1].str());
      unconfirmed += std::stoul((*it)[2].str());
    }
  }
};

class AgentLoss : public ::testing::TestWithParam<const char*> {};

// "syn", "connect", or "syn_confirm_connect": SYN scans whose changes are re-probed with
// connect (the combination the example configuration suggests).
JobSpec loss_job(const std::string& param) {
  JobSpec job;
  job.ports = "1-2000";
  const auto at = param.find("_confirm_");
  job.technique = param.substr(0, at);
  if (at != std::string::npos) {
    job.extra = "confirm-technique = \"" + param.substr(at + 9) + "\"\n";
  }
  return job;
}

TEST_P(AgentLoss, NoFalseEventsUnderFivePercentLoss) {
  PV_REQUIRE_LAB();
  Lab lab(loss_lab());
  PV_REQUIRE_LAB_UP(lab);
  if (const std::string why = add_loss(lab); !why.empty()) PV_SKIP_OR_FAIL(why);
  const JobSpec job = loss_job(GetParam());
  const std::string config = lab.path("agent.toml");
  write_config(config, agent_config(lab, kLabNetworks, {job}));

  constexpr int kCycles = 20;
  const auto t0 = Clock::now();
  std::size_t events = 0;
  RunStats st;
  int cycles = 0;
  for (; cycles < kCycles && seconds_since(t0) < 100; ++cycles) {
    const OnceRun r = run_once(lab, config);
    EXPECT_EQ(r.cmd.exit_code, 0) << "cycle " << cycles << ": " << r.cmd.describe();
    EXPECT_TRUE(r.events.empty()) << "cycle " << cycles << ": false events:\n"
                                  << show(r.events) << "log:\n"
                                  << r.cmd.err;
    events += r.events.size();
    st.add(r.cmd.err, "lab");
  }
  const double took = seconds_since(t0);
  EXPECT_EQ(cycles, kCycles) << "only " << cycles << " cycles in " << took << " s";
  EXPECT_EQ(events, 0U);
  EXPECT_EQ(st.complete, static_cast<std::size_t>(cycles)) << "scans that did not complete";

  const LossCounters lc = loss_counters(lab);
  EXPECT_GT(lc.in_dropped, 0) << "no probe was dropped";
  EXPECT_GT(lc.out_dropped, 0) << "no answer was dropped";
  std::printf(
      "loss %s: %d cycles in %.1f s, %zu events; the scans saw %zu changes, %zu not "
      "confirmed; %zu of %d host scans inconclusive (not compared); dropped %ld of %ld probes, "
      "%ld of %ld answers\n",
      GetParam(), cycles, took, events, st.seen, st.unconfirmed, st.inconclusive, 2 * cycles,
      lc.in_dropped, lc.in_all, lc.out_dropped, lc.out_all);
}

// The other half of the guarantee: under the same loss, a real change is still reported,
// once per host, within a few cycles (an agent that never compares has no false events
// either).
TEST_P(AgentLoss, RealChangeIsStillReportedUnderFivePercentLoss) {
  PV_REQUIRE_LAB();
  Lab lab(loss_lab());
  PV_REQUIRE_LAB_UP(lab);
  if (const std::string why = add_loss(lab); !why.empty()) PV_SKIP_OR_FAIL(why);
  const JobSpec job = loss_job(GetParam());
  const std::string config = lab.path("agent.toml");
  write_config(config, agent_config(lab, kLabNetworks, {job}));

  constexpr int kCycles = 6;  // per phase
  RunStats st;
  std::string logs;
  auto cycles = [&](int n) {
    std::vector<Event> all;
    for (int i = 0; i < n; ++i) {
      const OnceRun r = run_once(lab, config);
      EXPECT_EQ(r.cmd.exit_code, 0) << r.cmd.describe();
      all.insert(all.end(), r.events.begin(), r.events.end());
      st.add(r.cmd.err, "lab");
      logs += r.cmd.err;
    }
    return all;
  };
  const auto t0 = Clock::now();
  const auto quiet = cycles(3);  // the baseline
  EXPECT_TRUE(quiet.empty()) << show(quiet);
  std::vector<Event> opened;
  {
    ExtraListener extra(lab, 1234);
    ASSERT_TRUE(extra.ready()) << extra.error();
    opened = cycles(kCycles);
  }
  const auto closed = cycles(kCycles);
  expect_one_per_host(opened, kBothTargets, "lab", 1234, "closed", "open", false,
                      "port opened under loss");
  expect_one_per_host(closed, kBothTargets, "lab", 1234, "open", "closed", true,
                      "port closed under loss");
  if (HasFailure()) std::printf("agent logs:\n%s", logs.c_str());
  std::printf(
      "loss %s: %d cycles in %.1f s; %zu of %d host scans inconclusive (not compared); "
      "events %zu + %zu\n",
      GetParam(), 3 + 2 * kCycles, seconds_since(t0), st.inconclusive, 2 * (3 + 2 * kCycles),
      opened.size(), closed.size());
}

INSTANTIATE_TEST_SUITE_P(Lab, AgentLoss, ::testing::Values("syn", "connect", "syn_confirm_connect"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                           return std::string(p.param);
                         });

// A host that goes down (here: its veth end drops everything, ARP and neighbour discovery
// included, like a powered-off machine on a switch) answers nothing. With FIN, whose open
// ports are silent, the agent checks a silent host with TCP ACKs before calling it down. Its ports
// must not "change" to filtered: the agent logs it as down, keeps its baseline, and compares again
// once it answers.
class AgentHostDown : public ::testing::TestWithParam<const char*> {};

TEST_P(AgentHostDown, HostThatAnswersNothingIsNotAChange) {
  PV_REQUIRE_LAB();
  Lab lab(small_lab());
  PV_REQUIRE_LAB_UP(lab);
  JobSpec job;
  job.technique = GetParam();
  job.ports = "20-30,80,443,1234,8080,8090-8095";
  const std::string config = lab.path("agent.toml");
  write_config(config, agent_config(lab, kLabNetworks, {job}));
  const OnceRun base = run_once(lab, config);
  ASSERT_EQ(base.cmd.exit_code, 0) << base.cmd.describe();
  ASSERT_TRUE(base.events.empty()) << show(base.events);

  const std::string rules = lab.path("down.nft");
  ASSERT_TRUE(pvlab::write_file(rules,
                                "table netdev pvdown {\n  chain ingress {\n"
                                "    type filter hook ingress device \"" +
                                    lab.target_interface() +
                                    "\" priority -500; policy drop;\n  }\n}\n"));
  const auto nft = [&](const std::vector<std::string>& args) {
    std::vector<std::string> cmd = {"ip", "netns", "exec", target_namespace(lab), "nft"};
    cmd.insert(cmd.end(), args.begin(), args.end());
    return pvlab::run(cmd, 30s);
  };
  const CmdResult down_rule = nft({"-f", rules});
  ASSERT_EQ(down_rule.exit_code, 0) << down_rule.describe();
  const OnceRun down = run_once(lab, config);
  EXPECT_EQ(down.cmd.exit_code, 0) << down.cmd.describe();
  EXPECT_TRUE(down.events.empty()) << "host down:\n" << show(down.events) << down.cmd.err;
  EXPECT_EQ(count_matches(down.cmd.err, std::regex("down or unreachable, not compared")), 2U)
      << down.cmd.err;

  const CmdResult up_rule = nft({"delete", "table", "netdev", "pvdown"});
  ASSERT_EQ(up_rule.exit_code, 0) << up_rule.describe();
  const OnceRun back = run_once(lab, config);
  EXPECT_EQ(back.cmd.exit_code, 0) << back.cmd.describe();
  EXPECT_TRUE(back.events.empty()) << "host back:\n" << show(back.events) << back.cmd.err;
  EXPECT_EQ(count_matches(back.cmd.err, std::regex("down or unreachable")), 0U) << back.cmd.err;

  // Still compared: a port opened now is one event per host.
  OnceRun opened;
  {
    ExtraListener extra(lab, 1234);
    ASSERT_TRUE(extra.ready()) << extra.error();
    opened = run_once(lab, config);
  }
  // To FIN an open port is silent: open|filtered, which the policy does not count as open
  // (so the change is "expected").
  const bool fin = std::string(GetParam()) == "fin";
  expect_one_per_host(opened.events, kBothTargets, "lab", 1234, "closed",
                      fin ? "open|filtered" : "open", fin, "after the host came back");
  std::printf("%s: down run %.1f s\n", GetParam(), down.seconds);
}

INSTANTIATE_TEST_SUITE_P(Lab, AgentHostDown, ::testing::Values("syn", "connect", "fin"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                           return std::string(p.param);
                         });

// ---------------------------------------------------------------------------------------------
// 3. The authorization scope on the wire.

TEST(AgentScope, OutOfScopeAddressIsNeverProbed) {
  PV_REQUIRE_LAB();
  if (!pvlab::have_tool("tcpdump")) PV_SKIP_OR_FAIL("tcpdump is not installed");
  if (!pvlab::have_tool("unshare")) PV_SKIP_OR_FAIL("unshare (util-linux) is not installed");
  LabConfig lc = small_lab();
  // Live addresses outside the scope: a probe to them would be answered and captured.
  lc.extra_targets = {"198.18.0.3", "2001:db8::3"};
  Lab lab(lc);
  PV_REQUIRE_LAB_UP(lab);
  const std::vector<std::string> scope = {"198.18.0.2/32", "2001:db8::2/128"};
  const std::string bin = pvlab::portvigil_binary();

  // check-config (and the agent) reject a literal target outside the scope, naming it.
  const std::string bad = lab.path("bad.toml");
  JobSpec outside;
  outside.targets = {"198.18.0.3"};
  write_config(bad, agent_config(lab, scope, {outside}));
  const CmdResult check = pvlab::run({bin, "check-config", bad}, 60s);
  EXPECT_EQ(check.exit_code, 2) << check.describe();
  EXPECT_TRUE(contains(check.err, "198.18.0.3") && contains(check.err, "targets") &&
              contains(check.err, "outside the authorized networks"))
      << check.err;
  EXPECT_TRUE(contains(check.err, bad + ":")) << "no FILE:LINE:COLUMN: " << check.err;

  // The capture runs in the scanner namespace on its veth end, around every agent run.
  const std::string pcap = lab.path("scope.pcap");
  Background capture({pvlab::lab_script(), "exec", "--name", lab.name(), "--", "tcpdump", "-i",
                      lab.scan_interface(), "-n", "-s", "128", "-B", "16384", "-U",
                      "--immediate-mode", "-Z", "root", "-w", pcap},
                     lab.path("tcpdump.out"), lab.path("tcpdump.err"));
  ASSERT_TRUE(capture.running());
  ASSERT_TRUE(wait_until([&] { return contains(capture.err(), "listening on"); }, 20s))
      << "tcpdump did not start: " << capture.err();

  const OnceRun refused = run_once(lab, bad);
  EXPECT_EQ(refused.cmd.exit_code, 2)
      << "agent with an out-of-scope target: " << refused.cmd.describe();

  // A valid configuration: the authorized target, and a hostname that resolves to the
  // out-of-scope addresses through a private /etc/hosts (bind-mounted in a private mount
  // namespace inside the scanner namespace; nothing changes outside it).
  const std::string hosts = lab.path("hosts");
  // One name per family: a target name scans only its first address, as in Nmap.
  ASSERT_TRUE(pvlab::write_file(hosts,
                                "127.0.0.1 localhost\n198.18.0.3 outside4.pvlab.test\n"
                                "2001:db8::3 outside6.pvlab.test\n"));
  JobSpec inscope;
  inscope.name = "inscope";
  inscope.ports = "1-300,8000-8100";
  JobSpec named = inscope;
  named.name = "named";
  named.targets = {"outside4.pvlab.test", "outside6.pvlab.test"};
  const std::string good = lab.path("good.toml");
  write_config(good, agent_config(lab, scope, {inscope, named}));
  const CmdResult check_good = pvlab::run({bin, "check-config", good}, 60s);
  ASSERT_EQ(check_good.exit_code, 0) << check_good.describe();
  const std::vector<std::string> private_hosts = {
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "--",
      "sh",
      "-c",
      "mount --bind \"$1\" /etc/hosts && shift && exec \"$@\"",
      "sh",
      hosts};
  // Prove the private /etc/hosts works: the name resolves inside, to .3.
  const CmdResult resolve = lab.exec(
      [&] {
        auto c = private_hosts;
        for (const char* a : {"getent", "ahosts", "outside4.pvlab.test"}) c.emplace_back(a);
        return c;
      }(),
      30s);
  ASSERT_EQ(resolve.exit_code, 0) << resolve.describe();
  ASSERT_TRUE(contains(resolve.out, "198.18.0.3")) << resolve.out;

  const OnceRun run = run_once(lab, good, private_hosts);
  // Job "named" scanned nothing (every address refused): a failed scan, so --once exits 1.
  EXPECT_EQ(run.cmd.exit_code, 1) << run.cmd.describe();
  EXPECT_TRUE(contains(run.cmd.err, "job named: scan 2 incomplete: nothing scanned: 2 of 2"))
      << run.cmd.err;
  EXPECT_TRUE(run.events.empty()) << show(run.events);
  EXPECT_TRUE(contains(run.cmd.err, "job inscope: scan")) << run.cmd.err;
  for (const char* addr : {"198.18.0.3", "2001:db8::3"}) {
    EXPECT_TRUE(contains(run.cmd.err, std::string("job named: host ") + addr +
                                          ": not scanned: outside the authorized scope"))
        << "the agent log does not report the refused address " << addr << ":\n"
        << run.cmd.err;
  }

  std::this_thread::sleep_for(500ms);  // let the last packets reach the capture file
  capture.stop();
  const std::string stats = capture.err();
  EXPECT_TRUE(std::regex_search(stats, std::regex("(^|\n)0 packets dropped by kernel")))
      << "the capture lost packets: " << stats;

  // Nothing to the out-of-scope addresses: no IP packet, no ARP, no neighbour solicitation
  // (ff02::1:ff00:3 is the solicited-node group of 2001:db8::3).
  EXPECT_EQ(count_packets(pcap, "host 198.18.0.3 or host 2001:db8::3"), 0);
  EXPECT_EQ(count_packets(pcap, "arp and arp[24:4] == 0xc6120003"), 0);
  EXPECT_EQ(count_packets(pcap, "ip6 dst host ff02::1:ff00:3"), 0);
  EXPECT_EQ(count_packets(pcap, "ip and src host 198.18.0.1 and not dst host 198.18.0.2"), 0);
  {
    // The kernel's own neighbour advertisements (answering the target's solicitations, to
    // its link-local address) are not probes.
    const char* stray =
        "ip6 and src host 2001:db8::1 and not dst host 2001:db8::2 and not dst net ff00::/8 "
        "and not (icmp6 and ip6[40] == 136)";
    EXPECT_EQ(count_packets(pcap, stray), 0)
        << pvlab::run({"tcpdump", "-r", pcap, "-n", "-v", stray}, 60s).out;
  }
  // ... and the capture saw the probes of the in-scope job.
  const long syn4 = count_packets(
      pcap, "ip and src host 198.18.0.1 and dst host 198.18.0.2 and tcp[tcpflags] == tcp-syn");
  const long syn6 = count_packets(pcap,
                                  "ip6 and src host 2001:db8::1 and dst host 2001:db8::2 and "
                                  "ip6[6] == 6 and ip6[53] == 2");
  EXPECT_GE(syn4, 400) << "the capture does not show the IPv4 probes";
  EXPECT_GE(syn6, 400) << "the capture does not show the IPv6 probes";
  std::printf("capture: %ld SYNs to 198.18.0.2, %ld to 2001:db8::2, none to .3/::3\n", syn4, syn6);
}

// ---------------------------------------------------------------------------------------------
// 4. SIGHUP: a bad file keeps the running configuration, a good one is applied.
TEST(AgentReload, SighupBadFileKeepsConfigGoodFileApplies) {
  PV_REQUIRE_LAB();
  Lab lab(small_lab());
  PV_REQUIRE_LAB_UP(lab);
  JobSpec alpha;
  alpha.name = "alpha";
  alpha.targets = {Lab::kTarget4};
  alpha.ports = "1-200";
  JobSpec beta = alpha;
  beta.name = "beta";
  beta.targets = {Lab::kTarget6};
  const std::string config = lab.path("agent.toml");
  write_config(config, agent_config(lab, kLabNetworks, {alpha}));

  ServiceAgent agent(lab, config);
  ASSERT_TRUE(agent.wait_completed("alpha", 1, 60s)) << "no first scan; log:\n" << agent.log();
  ASSERT_TRUE(agent.is_agent()) << "pid " << agent.proc().pid() << " is not the agent";

  // A bad file: a misspelt key in a new job. The agent keeps alpha and never starts beta.
  JobSpec typo = beta;
  typo.extra = "confirmationz = 2\n";
  write_config(config, agent_config(lab, kLabNetworks, {alpha, typo}));
  ASSERT_EQ(pvlab::run({pvlab::portvigil_binary(), "check-config", config}, 60s).exit_code, 2);
  ASSERT_TRUE(agent.proc().signal(SIGHUP));
  ASSERT_TRUE(agent.wait_log("SIGHUP: reload failed, keeping the running configuration", 10s))
      << agent.log();
  EXPECT_TRUE(contains(agent.log(), "confirmationz")) << "the log does not name the bad key:\n"
                                                      << agent.log();
  std::size_t n = agent.completed("alpha");
  EXPECT_TRUE(agent.wait_completed("alpha", n + 2, 30s))
      << "alpha stopped scanning after the bad reload; log:\n"
      << agent.log();
  EXPECT_FALSE(agent.exited()) << agent.log();
  EXPECT_FALSE(contains(agent.log(), "job beta")) << agent.log();

  // A good file: alpha and beta. beta starts scanning, alpha goes on.
  write_config(config, agent_config(lab, kLabNetworks, {alpha, beta}));
  ASSERT_TRUE(agent.proc().signal(SIGHUP));
  ASSERT_TRUE(agent.wait_log("SIGHUP: configuration reloaded", 10s)) << agent.log();
  EXPECT_TRUE(contains(agent.log(), "(2 jobs)")) << agent.log();
  EXPECT_TRUE(agent.wait_completed("beta", 2, 30s)) << "beta never scanned; log:\n" << agent.log();
  n = agent.completed("alpha");
  EXPECT_TRUE(agent.wait_completed("alpha", n + 1, 30s)) << agent.log();

  expect_clean_sigterm(agent);
  const auto events = parse_events(agent.out());
  EXPECT_TRUE(events.empty()) << "the network did not change:\n" << show(events);
  const CmdResult status =
      pvlab::run({pvlab::portvigil_binary(), "status", "--state-dir", lab.path("state")}, 60s);
  EXPECT_EQ(status.exit_code, 0) << status.describe();
  EXPECT_TRUE(contains(status.out, "alpha") && contains(status.out, "beta")) << status.out;
}

}  // namespace
