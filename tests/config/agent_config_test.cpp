// The agent's TOML configuration: the shipped example and the built-in default load, and
// every kind of mistake is reported as one line with FILE:LINE:COL, the key and what was
// expected.
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "portvigil/config/agent_config.hpp"

namespace portvigil {
namespace {

using namespace std::chrono_literals;

// The error message parse_config throws for `text`, or "" when it loads.
std::string error_of(std::string_view text) {
  try {
    (void)parse_config(text, "t.toml");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

asio::ip::address ip(const char* text) {
  return asio::ip::make_address(text);
}

// ---- the shipped files ----------------------------------------------------------------------

std::string file_text(const char* path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every key the loader accepts has its entry in docs/config.md ("`key`" opening a
// definition line) and appears in the annotated example (set, or commented out).
TEST(AgentConfig, EveryAcceptedKeyIsDocumented) {
  const std::string reference = file_text(PORTVIGIL_CONFIG_REFERENCE);
  const std::string example = file_text(PORTVIGIL_EXAMPLE_CONFIG);
  ASSERT_FALSE(reference.empty()) << PORTVIGIL_CONFIG_REFERENCE;
  ASSERT_FALSE(example.empty()) << PORTVIGIL_EXAMPLE_CONFIG;
  std::size_t checked = 0;
  for (const auto& section : config_keys()) {
    for (const auto key : section.keys) {
      const std::string k(key);
      EXPECT_TRUE(std::regex_search(reference, std::regex("(^|\\n)`([a-z-]+`, `)*" + k + "`")))
          << section.section << " " << k << ": no entry in docs/config.md";
      EXPECT_TRUE(std::regex_search(example, std::regex("(^|\\n)#? *(\\[job\\.)?" + k + "[ \\]]")))
          << section.section << " " << k << ": not in config/portvigil.example.toml";
      ++checked;
    }
  }
  EXPECT_GE(checked, 31u);
}

TEST(AgentConfig, MaxParallelismWithoutConnectWarns) {
  const std::string base =
      "[[authorization]]\nnetworks = [\"198.18.0.0/24\"]\n[[job]]\nname = \"j\"\n"
      "targets = [\"198.18.0.1\"]\ninterval = \"1m\"\nmax-parallelism = 64\n";
  // A SYN job's service identification connects: the key caps it.
  EXPECT_TRUE(parse_config(base + "technique = \"syn\"\n", "t.toml").warnings.empty());
  const auto syn =
      parse_config(base + "technique = \"syn\"\nidentify-services = false\n", "t.toml");
  ASSERT_EQ(syn.warnings.size(), 1u);
  EXPECT_EQ(syn.warnings[0],
            "t.toml:7:19: job \"j\": key \"max-parallelism\": has no effect: only the connect "
            "technique and service identification use it (raw techniques are paced by "
            "max-rate)");
  const auto fin = parse_config(base + "technique = \"fin\"\n", "t.toml");
  EXPECT_EQ(fin.warnings.size(), 1u) << "FIN finds no open port to identify";
  EXPECT_TRUE(parse_config(base, "t.toml").warnings.empty());  // connect by default
  EXPECT_TRUE(
      parse_config(base + "technique = \"syn\"\nconfirm-technique = \"connect\"\n", "t.toml")
          .warnings.empty());
}

TEST(AgentConfig, UdpJobsArePacedAndSpreadOverTheirCoverage) {
  const std::string base =
      "[[authorization]]\nnetworks = [\"198.18.0.0/24\"]\n[[job]]\nname = \"u\"\n"
      "targets = [\"198.18.0.2\"]\ninterval = \"5m\"\n";
  const auto plain = parse_config(base + "technique = \"udp\"\nports = \"1-100\"\n", "t.toml");
  const JobConfig& j = plain.jobs.at(0);
  EXPECT_TRUE(j.udp_pace.enabled);
  EXPECT_EQ(j.udp_pace.period, kDefaultUdpPacePeriod);
  EXPECT_EQ(j.udp_coverage, std::chrono::minutes(5));
  EXPECT_EQ(j.udp_ports_per_scan(100), 100u);

  const auto spread = parse_config(
      base + "technique = \"udp\"\ntop-ports = 1000\nudp-coverage = \"1h\"\n", "t.toml");
  EXPECT_EQ(spread.jobs.at(0).udp_ports_per_scan(1000), 84u);  // 12 scans per hour
  const auto given =
      parse_config(base + "technique = \"udp\"\nports = \"53\"\nudp-pace = \"2s\"\n", "t.toml");
  EXPECT_EQ(given.jobs.at(0).udp_pace.period, std::chrono::seconds(2));
  const auto off =
      parse_config(base + "technique = \"udp\"\ntop-ports = 1000\nudp-pace = \"off\"\n", "t.toml");
  EXPECT_FALSE(off.jobs.at(0).udp_pace.enabled);
  EXPECT_FALSE(parse_config(base + "technique = \"syn\"\n", "t.toml").jobs.at(0).udp_pace.enabled);

  EXPECT_EQ(error_of(base + "technique = \"udp\"\ntop-ports = 1000\n"),
            "t.toml:6:12: job \"u\": key \"interval\": 1000 UDP ports paced at one probe per "
            "host every 1.005s need about 1005s per scan, more than 80% of the interval; "
            "expected udp-coverage of at least 1500s (each scan then verifies a share of the "
            "ports), fewer ports, or udp-pace = \"off\"");
  EXPECT_EQ(error_of(base + "technique = \"udp\"\ntop-ports = 1000\nudp-coverage = \"10m\"\n"),
            "t.toml:9:16: job \"u\": key \"udp-coverage\": 1000 UDP ports paced at one probe "
            "per host every 1.005s need about 503s per scan, more than 80% of the interval; "
            "expected udp-coverage of at least 1500s (each scan then verifies a share of the "
            "ports), fewer ports, or udp-pace = \"off\"");
  EXPECT_EQ(error_of(base + "technique = \"syn\"\nudp-pace = \"auto\"\n"),
            "t.toml:8:12: job \"u\": key \"udp-pace\": paces UDP jobs only; expected \"off\" or "
            "no udp-pace in a syn job");
  EXPECT_EQ(error_of(base + "technique = \"udp\"\nports = \"53\"\nudp-pace = \"fast\"\n"),
            "t.toml:9:12: job \"u\": key \"udp-pace\": expected \"auto\", \"off\" or a duration "
            "from 10ms to 8s such as \"2s\", got \"fast\" (string)");
  EXPECT_EQ(error_of(base + "technique = \"udp\"\nports = \"53\"\nudp-pace = \"20s\"\n"),
            "t.toml:9:12: job \"u\": key \"udp-pace\": expected \"auto\", \"off\" or a duration "
            "from 10ms to 8s such as \"2s\", got \"20s\" (string)");
  EXPECT_EQ(error_of(base + "technique = \"udp\"\nports = \"53\"\nudp-coverage = \"1m\"\n"),
            "t.toml:9:16: job \"u\": key \"udp-coverage\": expected a duration not shorter "
            "than the interval (300s), got \"1m\" (string)");
  EXPECT_EQ(error_of(base + "technique = \"syn\"\nudp-coverage = \"1h\"\n"),
            "t.toml:8:16: job \"u\": key \"udp-coverage\": spreads the ports of UDP jobs only; "
            "expected no udp-coverage in a syn job");
}

TEST(AgentConfig, ExampleFileLoads) {
  const auto config = load_config(PORTVIGIL_EXAMPLE_CONFIG);
  EXPECT_EQ(config.source, PORTVIGIL_EXAMPLE_CONFIG);
  EXPECT_TRUE(config.warnings.empty()) << config.warnings.front();

  EXPECT_EQ(config.agent.state_dir, "/var/lib/portvigil");
  EXPECT_EQ(config.agent.log_level, LogLevel::info);
  EXPECT_EQ(config.agent.event_log, "/var/lib/portvigil/events.jsonl");
  EXPECT_EQ(config.agent.max_rate, 500.0);
  EXPECT_EQ(config.agent.max_retries, 2);
  EXPECT_EQ(config.agent.web_listen_address, "127.0.0.1:10117");
  EXPECT_EQ(config.agent.retention, std::chrono::duration<double>(90 * 86400));

  ASSERT_EQ(config.authorization.size(), 3u);
  EXPECT_EQ(config.authorization[0].cidr, "198.18.0.0/24");
  EXPECT_EQ(config.authorization[1].cidr, "2001:db8:10::/64");
  EXPECT_EQ(config.authorization[0].owner, "network-security@example.net");
  EXPECT_EQ(config.authorization[0].ticket, "CHG-2041");
  EXPECT_EQ(config.authorization[0].expires_text, "2030-12-31");
  ASSERT_TRUE(config.authorization[0].expires);
  // A date authorizes through the end of that day, UTC.
  const auto end = std::chrono::sys_days{std::chrono::year{2031} / 1 / 1};
  EXPECT_EQ(*config.authorization[0].expires, end);
  EXPECT_TRUE(config.authorization[0].active(end - 1s));
  EXPECT_FALSE(config.authorization[0].active(end));
  EXPECT_FALSE(config.authorization[2].expires);
  EXPECT_EQ(config.authorization[2].cidr, "192.0.2.0/28");

  ASSERT_EQ(config.jobs.size(), 2u);
  const auto& web = config.jobs[0];
  EXPECT_EQ(web.name, "dmz-web");
  EXPECT_EQ(web.targets, (std::vector<std::string>{"198.18.0.0/28", "192.0.2.1-14"}));
  EXPECT_TRUE(web.hostname_targets.empty());
  EXPECT_EQ(web.exclude, (std::vector<std::string>{"198.18.0.0", "198.18.0.15"}));
  EXPECT_EQ(web.ports, "22,80,443,8000-8100");
  EXPECT_EQ(web.exclude_ports, "8081");
  EXPECT_EQ(web.technique, Technique::syn);
  EXPECT_EQ(web.confirm_technique, Technique::connect);
  EXPECT_EQ(web.interval, 15min);
  EXPECT_EQ(web.jitter, 90s);  // 10% of 15m
  EXPECT_EQ(web.max_rate, 200.0);
  EXPECT_EQ(web.max_retries, 3);
  EXPECT_EQ(web.host_timeout, std::chrono::duration<double>(5min));
  EXPECT_EQ(web.max_rtt_timeout, std::chrono::duration<double>(2s));
  EXPECT_FALSE(web.min_rtt_timeout.has_value());
  EXPECT_FALSE(web.max_parallelism.has_value());
  EXPECT_EQ(web.confirmations, 2);
  EXPECT_TRUE(web.has_policy);
  EXPECT_TRUE(web.expects_open(ip("198.18.0.3"), "", Proto::tcp, 22));
  EXPECT_FALSE(web.expects_open(ip("198.18.0.3"), "", Proto::tcp, 80));
  EXPECT_TRUE(web.expects_open(ip("198.18.0.10"), "", Proto::tcp, 80));
  EXPECT_TRUE(web.expects_open(ip("192.0.2.7"), "", Proto::tcp, 8005));
  EXPECT_FALSE(web.expects_open(ip("192.0.2.8"), "", Proto::tcp, 8005));
  EXPECT_FALSE(web.expects_open(ip("198.18.0.3"), "", Proto::udp, 22));

  const auto& dns = config.jobs[1];
  EXPECT_EQ(dns.technique, Technique::udp);
  EXPECT_EQ(dns.top_ports, 1000u);
  EXPECT_EQ(dns.jitter, 2min);
  EXPECT_EQ(dns.max_rate, 500.0);  // inherited from [agent]
  EXPECT_EQ(dns.max_retries, 2);
  EXPECT_FALSE(dns.host_timeout);
  EXPECT_TRUE(dns.expects_open(ip("192.0.2.5"), "", Proto::udp, 53));
  EXPECT_FALSE(dns.expects_open(ip("192.0.2.5"), "", Proto::udp, 123));
}

TEST(AgentConfig, DefaultConfigScansOnlyLoopback) {
  const auto config = default_config();
  EXPECT_EQ(config.source, "<built-in default>");
  EXPECT_TRUE(config.warnings.empty());
  EXPECT_EQ(config.agent.state_dir, "./portvigil-state");
  EXPECT_EQ(config.agent.event_log, "./portvigil-state/events.jsonl");
  EXPECT_EQ(config.agent.web_listen_address, "127.0.0.1:10117");
  ASSERT_EQ(config.authorization.size(), 2u);
  EXPECT_EQ(config.authorization[0].cidr, "127.0.0.0/8");
  EXPECT_EQ(config.authorization[1].cidr, "::1/128");
  ASSERT_EQ(config.jobs.size(), 1u);
  const auto& job = config.jobs[0];
  EXPECT_EQ(job.targets, std::vector<std::string>{"127.0.0.1"});
  EXPECT_TRUE(job.exclude.empty());
  EXPECT_TRUE(job.ports.empty());
  EXPECT_EQ(job.top_ports, 1000u);
  EXPECT_EQ(job.technique, Technique::connect);
  EXPECT_EQ(job.interval, 1min);
  EXPECT_EQ(job.jitter, 0s);
  EXPECT_FALSE(job.has_policy);
  // The embedded text is the configuration: parsing it again gives the same result.
  EXPECT_EQ(parse_config(default_config_toml(), "x").jobs[0].name, job.name);
}

TEST(AgentConfig, MinimalConfigGetsDefaults) {
  const auto config = parse_config(R"(
[[authorization]]
networks = ["198.18.0.0/24"]

[[job]]
name = "web"
targets = ["198.18.0.1"]
interval = "15m"
)",
                                   "t.toml");
  EXPECT_EQ(config.agent.state_dir, "/var/lib/portvigil");
  EXPECT_EQ(config.agent.event_log, "/var/lib/portvigil/events.jsonl");
  EXPECT_EQ(config.agent.log_level, LogLevel::info);
  EXPECT_FALSE(config.agent.max_rate);
  const auto& job = config.jobs.at(0);
  EXPECT_EQ(job.technique, Technique::connect);
  EXPECT_EQ(job.confirmations, 2);
  EXPECT_FALSE(job.confirm_technique);
  EXPECT_FALSE(job.max_rate);
  EXPECT_FALSE(job.max_retries);
  EXPECT_EQ(job.origin, "t.toml:5:1");
  EXPECT_EQ(config.authorization.at(0).origin, "t.toml:2:1");
  EXPECT_TRUE(job.identify_services);
  EXPECT_TRUE(job.never_probe.empty()) << "only the built-in printer ports";
}

TEST(AgentConfig, ServiceIdentificationKeys) {
  const auto config = parse_config(R"(
[[authorization]]
networks = ["198.18.0.0/24"]

[[job]]
name = "web"
targets = ["198.18.0.1"]
interval = "15m"
identify-services = false
never-probe = "10001,T:9200-9202"
)",
                                   "t.toml");
  const auto& job = config.jobs.at(0);
  EXPECT_FALSE(job.identify_services);
  EXPECT_EQ(job.never_probe, (std::vector<std::uint16_t>{9200, 9201, 9202, 10001}));
  EXPECT_FALSE(job.watch_services);
  const auto watched = parse_config(R"(
[[authorization]]
networks = ["198.18.0.0/24"]

[[job]]
name = "web"
targets = ["198.18.0.1"]
interval = "15m"
watch-services = true

[[job]]
name = "tls"
targets = ["198.18.0.1"]
interval = "15m"
watch-services = true
watch-services-interval = "6h"
)",
                                    "t.toml");
  EXPECT_EQ(watched.jobs.at(0).watch_services, std::chrono::duration<double>(3600));
  EXPECT_EQ(watched.jobs.at(1).watch_services, std::chrono::duration<double>(6 * 3600));
}

TEST(AgentConfig, ShardAndReplica) {
  const std::string auth =
      "[[authorization]]\nnetworks = [\"198.18.0.0/24\"]\n"
      "[[job]]\nname = \"web\"\ntargets = [\"198.18.0.0/24\"]\ninterval = \"15m\"\n";
  const auto whole = parse_config(auth, "t.toml");
  EXPECT_TRUE(whole.agent.shard.whole());
  EXPECT_EQ(whole.agent.replica, "");
  const auto c =
      parse_config("[agent]\nshard = \"1/3\"\nreplica = \"site-b.2\"\n" + auth, "t.toml");
  EXPECT_EQ(c.agent.shard, (Shard{1, 3}));
  EXPECT_EQ(c.agent.replica, "site-b.2");
}

TEST(AgentConfig, ScanWindows) {
  const auto c = parse_config(
      "[[authorization]]\nnetworks = [\"198.18.0.0/24\"]\n[[job]]\nname = \"web\"\n"
      "targets = [\"198.18.0.0/24\"]\ninterval = \"15m\"\n"
      "windows = [\"Mon-Fri 22:00-06:00\", \"Sat,Sun 00:00-24:00\"]\ntime-zone = "
      "\"Europe/Berlin\"\n",
      "t.toml");
  ASSERT_TRUE(c.jobs.at(0).windows);
  EXPECT_EQ(c.jobs.at(0).windows->zone(), "Europe/Berlin");
  EXPECT_EQ(c.jobs.at(0).windows->windows().size(), 2u);
  const auto always = parse_config(
      "[[authorization]]\nnetworks = [\"198.18.0.0/24\"]\n[[job]]\nname = \"web\"\n"
      "targets = [\"198.18.0.0/24\"]\ninterval = \"15m\"\n",
      "t.toml");
  EXPECT_FALSE(always.jobs.at(0).windows);
}

TEST(AgentConfig, Sinks) {
  const std::string job =
      "[[authorization]]\nnetworks = [\"198.18.0.0/24\"]\n"
      "[[job]]\nname = \"web\"\ntargets = [\"198.18.0.0/24\"]\ninterval = \"15m\"\n";
  // Without a stdout sink the configuration adds the implicit one: events go to stdout
  // with a cursor like any sink's.
  const auto plain = parse_config(job, "t.toml");
  ASSERT_EQ(plain.sinks.size(), 1u);
  EXPECT_EQ(plain.sinks[0].name, "stdout");
  EXPECT_EQ(plain.sinks[0].type, "stdout");
  EXPECT_EQ(plain.sinks[0].origin, "t.toml: (the implicit stdout sink)");
  // ... unless stdout-events = false turns it off.
  EXPECT_TRUE(parse_config("[agent]\nstdout-events = false\n" + job, "t.toml").sinks.empty());
  const auto c = parse_config(job +
                                  "[[sink]]\nname = \"pager-hook\"\ntype = \"webhook\"\n"
                                  "url = \"https://hooks.example.com/pv?k=1\"\ntimeout = \"3s\"\n"
                                  "batch-size = 10\n"
                                  "[[sink]]\nname = \"chat\"\ntype = \"webhook\"\n"
                                  "url = \"http://198.18.0.9:8080/\"\n",
                              "t.toml");
  ASSERT_EQ(c.sinks.size(), 3u);
  EXPECT_EQ(c.sinks[2].name, "stdout");
  EXPECT_EQ(c.sinks[0].name, "pager-hook");
  EXPECT_EQ(c.sinks[0].type, "webhook");
  EXPECT_EQ(c.sinks[0].url, "https://hooks.example.com/pv?k=1");
  EXPECT_EQ(c.sinks[0].timeout.count(), 3.0);
  EXPECT_EQ(c.sinks[0].batch_size, 10);
  EXPECT_EQ(c.sinks[0].origin, "t.toml:7:1");
  EXPECT_EQ(c.sinks[1].timeout.count(), 10.0);
  EXPECT_EQ(c.sinks[1].batch_size, 100);
  // The event log's other two forms: a file of its own and stdout.
  const auto more = parse_config(job +
                                     "[[sink]]\nname = \"archive\"\ntype = \"file\"\n"
                                     "path = \"/var/log/portvigil/archive.jsonl\"\n"
                                     "[[sink]]\nname = \"journal\"\ntype = \"stdout\"\n",
                                 "t.toml");
  ASSERT_EQ(more.sinks.size(), 2u);  // "journal" replaces the implicit stdout sink
  EXPECT_EQ(more.sinks[0].type, "file");
  EXPECT_EQ(more.sinks[0].path, "/var/log/portvigil/archive.jsonl");
  EXPECT_EQ(more.sinks[0].url, "");
  EXPECT_EQ(more.sinks[1].type, "stdout");
  EXPECT_EQ(more.sinks[1].name, "journal");
}

TEST(AgentConfig, MaxConcurrentJobs) {
  const std::string job =
      "[[authorization]]\nnetworks = [\"198.18.0.0/24\"]\n"
      "[[job]]\nname = \"web\"\ntargets = [\"198.18.0.0/24\"]\ninterval = \"15m\"\n";
  const auto defaulted = parse_config(job, "t.toml");
  EXPECT_EQ(defaulted.agent.max_concurrent_jobs, AgentSettings::default_concurrent_jobs());
  EXPECT_GE(AgentSettings::default_concurrent_jobs(), 1);
  EXPECT_LE(AgentSettings::default_concurrent_jobs(), 8);
  EXPECT_EQ(
      parse_config("[agent]\nmax-concurrent-jobs = 64\n" + job, "t.toml").agent.max_concurrent_jobs,
      64);
}

TEST(AgentConfig, AuthorizationAsSingleTableAndUnionOfNetworks) {
  // Two halves of a /24 together authorize the whole /24; a bare address is a /32.
  const auto config = parse_config(R"(
[authorization]
networks = ["198.18.0.0/25", "198.18.0.128/25", "192.0.2.7", "2001:db8::/64"]

[[job]]
name = "all"
targets = ["198.18.0.0/24", "192.0.2.7", "198.18.0.1-254", "2001:db8::1/120", "198.18.0.*"]
interval = "1h"
)",
                                   "t.toml");
  EXPECT_EQ(config.authorization.size(), 4u);
  EXPECT_EQ(config.authorization[2].cidr, "192.0.2.7/32");
  EXPECT_TRUE(config.authorization[0].network.contains(ip("198.18.0.5")));
  EXPECT_FALSE(config.authorization[0].network.contains(ip("198.18.0.200")));
  EXPECT_FALSE(config.authorization[3].network.contains(ip("198.18.0.5")));
}

TEST(AgentConfig, HostnameTargetsAreLeftToTheAgent) {
  const auto config = parse_config(R"(
[[authorization]]
networks = ["198.18.0.0/24"]

[[job]]
name = "named"
targets = ["db.example.net", "198.18.0.9"]
interval = "5m"
expected-open = { "db.example.net" = ["5432/tcp"], "198.18.0.9" = ["22/tcp"] }
)",
                                   "t.toml");
  const auto& job = config.jobs.at(0);
  EXPECT_EQ(job.hostname_targets, std::vector<std::string>{"db.example.net"});
  EXPECT_TRUE(job.expects_open(ip("203.0.113.5"), "DB.example.net", Proto::tcp, 5432));
  EXPECT_FALSE(job.expects_open(ip("203.0.113.5"), "", Proto::tcp, 5432));
  EXPECT_TRUE(job.expects_open(ip("198.18.0.9"), "", Proto::tcp, 22));
}

TEST(AgentConfig, EmptyPolicyExpectsNothingOpen) {
  const auto config = parse_config(R"(
authorization = [{ networks = ["198.18.0.0/24"] }]
job = [{ name = "closed", targets = ["198.18.0.9"], interval = "5m", expected-open = [] }]
)",
                                   "t.toml");
  EXPECT_TRUE(config.jobs.at(0).has_policy);
  EXPECT_FALSE(config.jobs.at(0).expects_open(ip("198.18.0.9"), "", Proto::tcp, 22));
}

TEST(AgentConfig, PastExpiryIsAWarningNotAnError) {
  const auto config = parse_config(R"(
[[authorization]]
networks = ["198.18.0.0/24"]
expires = 2001-02-03

[[authorization]]
networks = ["192.0.2.0/24"]
expires = 2200-01-01T00:00:00+01:00

[[job]]
name = "web"
targets = ["198.18.0.1", "192.0.2.1"]
interval = "15m"
)",
                                   "t.toml");
  ASSERT_EQ(config.warnings.size(), 2u);
  EXPECT_EQ(config.warnings[0],
            "t.toml:4:11: authorization #1: key \"expires\": 2001-02-03 has passed: the agent "
            "will not scan 198.18.0.0/24");
  EXPECT_EQ(config.warnings[1],
            "t.toml:12:12: job \"web\": key \"targets\": target \"198.18.0.1\" is authorized "
            "only by an expired [[authorization]]; the agent will not scan it");
  const auto now = std::chrono::system_clock::now();
  EXPECT_FALSE(config.authorization[0].active(now));
  EXPECT_TRUE(config.authorization[1].active(now));
  const auto utc = std::chrono::sys_days{std::chrono::year{2199} / 12 / 31} + 23h;
  EXPECT_EQ(*config.authorization[1].expires, utc);
}

TEST(AgentConfig, FarFutureExpiryDoesNotOverflow) {
  const auto config = parse_config(R"(
[[authorization]]
networks = ["198.18.0.0/24"]
expires = 9999-12-31

[[job]]
name = "web"
targets = ["198.18.0.1"]
interval = "15m"
)",
                                   "t.toml");
  EXPECT_TRUE(config.warnings.empty());
  EXPECT_EQ(*config.authorization[0].expires, std::chrono::system_clock::time_point::max());
  EXPECT_TRUE(config.authorization[0].active(std::chrono::system_clock::now()));
}

TEST(AgentConfig, LoadConfigReportsUnreadableFiles) {
  try {
    (void)load_config("/nonexistent/portvigil.toml");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "/nonexistent/portvigil.toml: cannot open configuration file: No such file or "
              "directory");
  }
  EXPECT_THROW((void)load_config("/"), InputError);
}

// ---- mistakes -------------------------------------------------------------------------------

struct BadConfig {
  const char* name;
  std::string toml;
  std::string message;  // exactly what InputError::what() says
};

void PrintTo(const BadConfig& b, std::ostream* os) {
  *os << b.name;
}

// Prepended to cases that only need a valid authorization (2 lines).
const std::string kAuth = "[[authorization]]\nnetworks = [\"198.18.0.0/24\"]\n";
// A valid job header for cases about one job key (4 lines, ending in the job table).
const std::string kJob = kAuth + "[[job]]\nname = \"web\"\n";

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, NamesPositionKeyAndExpectation) {
  EXPECT_EQ(error_of(GetParam().toml), GetParam().message);
}

// Line 5 holds the key under test in `kJob + ...` cases; targets and interval follow.
std::string job_with(const std::string& line) {
  return kJob + line + "\ntargets = [\"198.18.0.1\"]\ninterval = \"15m\"\n";
}

// Line 6 holds the interval under test.
std::string job_with_interval(const std::string& line) {
  return kJob + "targets = [\"198.18.0.1\"]\n" + line + "\n";
}

// A valid job (6 lines) and a sink header on line 7; the sink's keys from line 8.
std::string sink_with(const std::string& lines) {
  return kJob + "targets = [\"198.18.0.1\"]\ninterval = \"15m\"\n[[sink]]\n" + lines;
}

const BadConfig kBadConfigs[] = {
    // [[sink]]
    {"sink_without_url", sink_with("name = \"hook\"\ntype = \"webhook\"\n"),
     "t.toml:7:1: sink \"hook\": missing required key \"url\" (an http:// or https:// URL such "
     "as \"https://hooks.example.com/portvigil\")"},
    {"sink_type_typo",
     sink_with("name = \"hook\"\ntype = \"webhok\"\nurl = \"https://x.example/\"\n"),
     "t.toml:9:8: sink \"hook\": key \"type\": expected one of \"webhook\", \"file\", "
     "\"stdout\", got \"webhok\" "
     "(string) (did you mean \"webhook\"?)"},
    {"sink_url_scheme",
     sink_with("name = \"hook\"\ntype = \"webhook\"\nurl = \"ftp://x.example/\"\n"),
     "t.toml:10:7: sink \"hook\": key \"url\": expected an http:// or https:// URL such as "
     "\"https://hooks.example.com/portvigil\" with a host, no spaces, at most 2048 characters "
     "(the value is not shown: it may hold a secret)"},
    {"sink_url_without_host",
     sink_with("name = \"hook\"\ntype = \"webhook\"\nurl = \"https:///p\"\n"),
     "t.toml:10:7: sink \"hook\": key \"url\": expected an http:// or https:// URL such as "
     "\"https://hooks.example.com/portvigil\" with a host, no spaces, at most 2048 characters "
     "(the value is not shown: it may hold a secret)"},
    {"sink_url_secret_not_echoed",
     sink_with(
         "name = \"hook\"\ntype = \"webhook\"\nurl = \"https://h.example/k?token=s3cret x\"\n"),
     "t.toml:10:7: sink \"hook\": key \"url\": expected an http:// or https:// URL such as "
     "\"https://hooks.example.com/portvigil\" with a host, no spaces, at most 2048 characters "
     "(the value is not shown: it may hold a secret)"},
    {"sink_file_without_path", sink_with("name = \"archive\"\ntype = \"file\"\n"),
     "t.toml:7:1: sink \"archive\": missing required key \"path\" (a file path such as "
     "\"/var/log/portvigil/events-archive.jsonl\")"},
    {"sink_file_with_url",
     sink_with("name = \"archive\"\ntype = \"file\"\nurl = \"https://x.example/\"\n"),
     "t.toml:10:7: sink \"archive\": key \"url\": only webhook sinks have url; this sink's "
     "type is file"},
    {"sink_webhook_with_path",
     sink_with("name = \"hook\"\ntype = \"webhook\"\nurl = \"https://x.example/\"\n"
               "path = \"/tmp/x\"\n"),
     "t.toml:11:8: sink \"hook\": key \"path\": only file sinks have path; this sink's type is "
     "webhook"},
    {"sink_file_is_the_event_log",
     "[agent]\nevent-log = \"/var/log/pv/events.jsonl\"\n" +
         sink_with("name = \"archive\"\ntype = \"file\"\npath = \"/var/log/pv/events.jsonl\"\n"),
     "t.toml:12:8: sink \"archive\": key \"path\": is the agent's event-log; a file sink "
     "needs a file of its own"},
    {"sink_two_files_one_path",
     sink_with("name = \"a\"\ntype = \"file\"\npath = \"/tmp/e.jsonl\"\n"
               "[[sink]]\nname = \"b\"\ntype = \"file\"\npath = \"/tmp/e.jsonl\"\n"),
     "t.toml:14:8: sink \"b\": key \"path\": is also the path of sink \"a\"; each file sink "
     "needs a file of its own"},
    {"sink_two_stdout",
     sink_with("name = \"a\"\ntype = \"stdout\"\n[[sink]]\nname = \"b\"\ntype = \"stdout\"\n"),
     "t.toml:12:8: sink \"b\": key \"type\": a second stdout sink (sink \"a\" is one): it "
     "would print every event twice"},
    {"stdout_events_not_bool",
     "[agent]\nstdout-events = \"no\"\n" + kJob + "targets = [\"198.18.0.1\"]\ninterval = \"1h\"\n",
     "t.toml:2:17: [agent]: key \"stdout-events\": expected true or false, got \"no\" (string)"},
    {"sink_named_event_log", sink_with("name = \"event-log\"\ntype = \"stdout\"\n"),
     "t.toml:8:8: sink \"event-log\": key \"name\": is the name of the agent's event log "
     "(event-log) in the sink metrics; choose another name"},
    {"sink_named_stdout_not_stdout",
     sink_with("name = \"stdout\"\ntype = \"webhook\"\nurl = \"https://x.example/\"\n"),
     "t.toml:8:8: sink \"stdout\": key \"name\": is the name of the implicit stdout sink "
     "(events printed on standard output); choose another name for this webhook sink"},
    {"sink_duplicate_name",
     sink_with("name = \"hook\"\ntype = \"webhook\"\nurl = \"https://x.example/\"\n"
               "[[sink]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"https://y.example/\"\n"),
     "t.toml:12:8: sink #2: key \"name\": duplicate sink name \"hook\" (first used at "
     "t.toml:8:8); expected a name unique among the sinks"},
    {"sink_batch_size",
     sink_with(
         "name = \"hook\"\ntype = \"webhook\"\nurl = \"https://x.example/\"\nbatch-size = 0\n"),
     "t.toml:11:14: sink \"hook\": key \"batch-size\": expected an integer from 1 to 1000, got "
     "0 (integer)"},
    {"sink_timeout_too_long",
     sink_with(
         "name = \"hook\"\ntype = \"webhook\"\nurl = \"https://x.example/\"\ntimeout = \"1h\"\n"),
     "t.toml:11:11: sink \"hook\": key \"timeout\": expected a duration of at most 10m, got "
     "\"1h\" (string)"},
    {"sink_unknown_key",
     sink_with("name = \"hook\"\ntype = \"webhook\"\nurl = \"https://x.example/\"\nheaders = 1\n"),
     "t.toml:11:1: sink \"hook\": unknown key \"headers\""},
    {"sink_not_array",
     kJob + "targets = [\"198.18.0.1\"]\ninterval = \"15m\"\n[sink]\nname = \"hook\"\n",
     "t.toml:7:1: key \"sink\": expected [[sink]] tables, each with name and type, got a "
     "table"},

    // Syntax errors keep toml++'s position.
    {"syntax_error", "[agent]\nlog-level = \n",
     "t.toml:2:13: invalid TOML: error while parsing key-value pair: expected value, saw '\\n'"},
    {"syntax_redefined_table", "[agent]\n[agent]\n",
     "t.toml:2:1: invalid TOML: error while parsing table header: cannot redefine existing "
     "table 'agent'"},

    // Unknown keys at every level, with hints.
    {"unknown_top_level_did_you_mean", kAuth + "[[jobs]]\nname = \"web\"\n",
     "t.toml:3:3: unknown key \"jobs\" (did you mean \"job\"?)"},
    {"unknown_top_level_belongs_in_agent", "log-level = \"debug\"\n" + kAuth,
     "t.toml:1:1: unknown key \"log-level\" (it belongs in [agent])"},
    {"unknown_top_level_no_hint", "colour = 1\n",
     "t.toml:1:1: unknown key \"colour\" (expected [agent], [[authorization]], [[job]] or "
     "[[sink]])"},
    {"unknown_agent_key", "[agent]\nmax_rate = 100\n",
     "t.toml:2:1: [agent]: unknown key \"max_rate\" (did you mean \"max-rate\"?)"},
    {"unknown_agent_key_belongs_in_job", "[agent]\ninterval = \"1m\"\n",
     "t.toml:2:1: [agent]: unknown key \"interval\" (it belongs in [[job]])"},
    {"unknown_authorization_key", "[[authorization]]\nnetwork = [\"198.18.0.0/24\"]\n",
     "t.toml:2:1: authorization #1: unknown key \"network\" (did you mean \"networks\"?)"},
    {"unknown_job_key_transposed", job_with("intreval = \"15m\""),
     "t.toml:5:1: job \"web\": unknown key \"intreval\" (did you mean \"interval\"?)"},
    {"unknown_job_key_belongs_in_agent", job_with("state-dir = \"/tmp\""),
     "t.toml:5:1: job \"web\": unknown key \"state-dir\" (it belongs in [agent])"},
    {"unknown_job_key_no_hint", job_with("enabled = false"),
     "t.toml:5:1: job \"web\": unknown key \"enabled\""},
    {"job_key_under_agent", "[agent]\njob = { name = \"x\" }\n",
     "t.toml:2:1: [agent]: unknown key \"job\" (did you mean a [[job]] header?)"},

    // Wrong types and values in [agent].
    {"agent_not_a_table", "agent = 5\n",
     "t.toml:1:9: key \"agent\": expected a table ([agent] with state-dir, log-level, ...), got "
     "5 (integer)"},
    {"log_level_unknown", "[agent]\nlog-level = \"warning\"\n",
     "t.toml:2:13: [agent]: key \"log-level\": expected one of \"error\", \"warn\", \"info\", "
     "\"debug\", got \"warning\" (string)"},
    {"state_dir_empty", "[agent]\nstate-dir = \"\"\n",
     "t.toml:2:13: [agent]: key \"state-dir\": expected a non-empty directory path such as "
     "\"/var/lib/portvigil\", got \"\" (string)"},
    {"max_rate_string", "[agent]\nmax-rate = \"100\"\n",
     "t.toml:2:12: [agent]: key \"max-rate\": expected a number of probes per second of at "
     "least 1, such as 500, got \"100\" (string)"},
    {"max_rate_zero", "[agent]\nmax-rate = 0\n",
     "t.toml:2:12: [agent]: key \"max-rate\": expected a number of probes per second of at "
     "least 1, such as 500, got 0 (integer)"},
    {"min_rate_above_max_rate", "[agent]\nmax-rate = 10\nmin-rate = 20.5\n",
     "t.toml:3:12: [agent]: key \"min-rate\": expected a rate not above max-rate 10, got 20.5 "
     "(float)"},
    {"max_retries_out_of_range", "[agent]\nmax-retries = 99\n",
     "t.toml:2:15: [agent]: key \"max-retries\": expected an integer from 0 to 50, got 99 "
     "(integer)"},
    {"retention_no_unit", "[agent]\nretention = \"90\"\n",
     "t.toml:2:13: [agent]: key \"retention\": expected a duration such as \"90d\" (units ms, "
     "s, m, h, d), got \"90\" (string)"},
    {"shard_index_out_of_range", "[agent]\nshard = \"3/3\"\n",
     "t.toml:2:9: [agent]: key \"shard\": invalid shard \"3/3\": I must be 0 to 2 (shards "
     "count from 0, as the values of Prometheus' hashmod do)"},
    {"shard_not_i_of_n", "[agent]\nshard = \"2\"\n",
     "t.toml:2:9: [agent]: key \"shard\": invalid shard \"2\": expected \"I/N\", shard I of N "
     "agents, such as \"0/3\""},
    {"shard_integer", "[agent]\nshard = 2\n",
     "t.toml:2:9: [agent]: key \"shard\": expected \"I/N\", shard I of N, such as \"0/3\", got "
     "2 (integer)"},
    {"max_concurrent_jobs_zero", "[agent]\nmax-concurrent-jobs = 0\n",
     "t.toml:2:23: [agent]: key \"max-concurrent-jobs\": expected an integer from 1 to 64, got 0 "
     "(integer)"},
    {"max_concurrent_jobs_string", "[agent]\nmax-concurrent-jobs = \"2\"\n",
     "t.toml:2:23: [agent]: key \"max-concurrent-jobs\": expected an integer from 1 to 64, got "
     "\"2\" (string)"},
    {"windows_without_zone", job_with("windows = [\"Mon-Fri 22:00-06:00\"]"),
     "t.toml:5:11: job \"web\": key \"windows\": windows need time-zone, the tz database zone they "
     "are in, such as time-zone = \"Europe/Berlin\" or \"UTC\""},
    {"zone_without_windows", job_with("time-zone = \"UTC\""),
     "t.toml:5:13: job \"web\": key \"time-zone\": time-zone applies to windows: add windows = "
     "[\"Mon-Fri 22:00-06:00\"] or remove it"},
    {"unknown_zone", job_with("windows = [\"Mon 22:00-06:00\"]\ntime-zone = \"Moon/Base\""),
     "t.toml:6:13: job \"web\": key \"time-zone\": unknown time zone \"Moon/Base\": expected a tz "
     "database name such as \"Europe/Berlin\" or \"UTC\""},
    {"bad_window", job_with("windows = [\"Mon 22:00-06:00\", \"Sun 7-9\"]\ntime-zone = \"UTC\""),
     "t.toml:5:31: job \"web\": key \"windows\": invalid scan window \"Sun 7-9\": expected [DAYS] "
     "HH:MM-HH:MM, such as \"Mon-Fri 22:00-06:00\""},
    {"windows_empty", job_with("windows = []\ntime-zone = \"UTC\""),
     "t.toml:5:11: job \"web\": key \"windows\": expected an array of scan windows such as "
     "[\"Mon-Fri 22:00-06:00\", \"Sat,Sun 00:00-24:00\"], got an empty array"},
    {"replica_with_space", "[agent]\nreplica = \"site a\"\n",
     "t.toml:2:11: [agent]: key \"replica\": expected 1 to 63 letters, digits, '_', '-' or "
     "'.', such as \"a\", got \"site a\" (string)"},
    {"web_config_file_empty", "[agent]\nweb-config-file = \"\"\n",
     "t.toml:2:19: [agent]: key \"web-config-file\": expected a non-empty file path (leave the "
     "key out for plain HTTP), got \"\" (string)"},
    {"web_config_file_with_password",
     "[agent]\nweb-username = \"u\"\nweb-password = \"p\"\nweb-config-file = \"/w.yml\"\n",
     "t.toml:4:19: [agent]: key \"web-config-file\": expected no web-username/web-password next "
     "to it (put the user in the file's basic_auth_users), got \"/w.yml\" (string)"},
    {"listen_address_without_port", "[agent]\nweb-listen-address = \"localhost\"\n",
     "t.toml:2:22: [agent]: key \"web-listen-address\": expected a listen address such as "
     "\"127.0.0.1:10117\" or \"[::1]:10117\", got \"localhost\" (the port is missing)"},
    {"listen_address_bare_ipv6", "[agent]\nweb-listen-address = \"::1:10117\"\n",
     "t.toml:2:22: [agent]: key \"web-listen-address\": expected a listen address such as "
     "\"127.0.0.1:10117\" or \"[::1]:10117\", got \"::1:10117\" (write IPv6 addresses in "
     "brackets: \"[::1]:10117\")"},
    {"listen_address_bad_port", "[agent]\nweb-listen-address = \"127.0.0.1:99999\"\n",
     "t.toml:2:22: [agent]: key \"web-listen-address\": expected a listen address such as "
     "\"127.0.0.1:10117\" or \"[::1]:10117\", got \"127.0.0.1:99999\" (the port must be a "
     "number from 0 to 65535)"},

    // [[authorization]].
    {"missing_authorization", "[[job]]\nname = \"web\"\n",
     "t.toml:1:1: missing [[authorization]]: list the networks this agent may scan, e.g. "
     "[[authorization]] networks = [\"198.18.0.0/16\"]"},
    {"authorization_missing_networks", "[[authorization]]\nowner = \"me\"\n",
     "t.toml:1:1: authorization #1: missing required key \"networks\" (an array of CIDRs such "
     "as [\"198.18.0.0/16\"])"},
    {"authorization_networks_not_array", "[[authorization]]\nnetworks = \"198.18.0.0/24\"\n",
     "t.toml:2:12: authorization #1: key \"networks\": expected an array of CIDRs such as "
     "[\"198.18.0.0/16\"], got \"198.18.0.0/24\" (string)"},
    {"authorization_prefix_33", "[[authorization]]\nnetworks = [\"198.18.0.0/33\"]\n",
     "t.toml:2:13: authorization #1: key \"networks\": \"198.18.0.0/33\": expected an IPv4 "
     "prefix length from 0 to 32, got \"33\""},
    {"authorization_bad_cidr", "[[authorization]]\nnetworks = [\"198.18.0/24\"]\n",
     "t.toml:2:13: authorization #1: key \"networks\": expected a network such as "
     "\"198.18.0.0/16\" or \"2001:db8::/48\", got \"198.18.0/24\""},
    {"authorization_host_bits", "[[authorization]]\nnetworks = [\"198.18.0.5/24\"]\n",
     "t.toml:2:13: authorization #1: key \"networks\": \"198.18.0.5/24\" has host bits set; "
     "expected the network address \"198.18.0.0/24\""},
    {"authorization_ipv6_prefix", "[[authorization]]\nnetworks = [\"2001:db8::/129\"]\n",
     "t.toml:2:13: authorization #1: key \"networks\": \"2001:db8::/129\": expected an IPv6 "
     "prefix length from 0 to 128, got \"129\""},
    {"authorization_expires_quoted",
     "[[authorization]]\nnetworks = [\"198.18.0.0/24\"]\nexpires = \"2030-01-01\"\n",
     "t.toml:3:11: authorization #1: key \"expires\": expected a TOML date such as 2025-12-31 "
     "(not quoted) or a date-time such as 2025-12-31T18:00:00Z, got \"2030-01-01\" (string)"},

    // [[job]]: required keys, names.
    {"missing_job", kAuth,
     "t.toml:1:1: missing [[job]]: at least one job with name, targets and interval is "
     "required"},
    {"job_missing_name", kAuth + "[[job]]\ntargets = [\"198.18.0.1\"]\n",
     "t.toml:3:1: job #1: missing required key \"name\" (a job name of lowercase letters, "
     "digits, '_' and '-' such as \"web-dmz\")"},
    {"job_missing_targets", kJob + "interval = \"15m\"\n",
     "t.toml:3:1: job \"web\": missing required key \"targets\" (an array of targets such as "
     "[\"198.18.0.0/24\", \"db.example.net\"])"},
    {"job_missing_interval", kJob + "targets = [\"198.18.0.1\"]\n",
     "t.toml:3:1: job \"web\": missing required key \"interval\" (a duration such as \"15m\" "
     "between the starts of two scans)"},
    {"job_bad_name", kAuth + "[[job]]\nname = \"Web Servers\"\n",
     "t.toml:4:8: job #1: key \"name\": expected a job name of lowercase letters, digits, '_' "
     "and '-' such as \"web-dmz\" (at most 64 characters), got \"Web Servers\" (string)"},
    {"duplicate_job_names",
     kJob + "targets = [\"198.18.0.1\"]\ninterval = \"15m\"\n[[job]]\nname = \"web\"\n",
     "t.toml:8:8: job #2: key \"name\": duplicate job name \"web\" (first used at t.toml:4:8); "
     "expected a name unique among the jobs"},
    {"job_not_a_table", "job = \"web\"\n" + kAuth,
     "t.toml:1:7: key \"job\": expected [[job]] tables, each with name, targets and interval, "
     "got \"web\" (string)"},

    // Durations.
    {"interval_integer", job_with_interval("interval = 15"),
     "t.toml:6:12: job \"web\": key \"interval\": expected a duration such as \"15m\", got 15 "
     "(integer)"},
    {"interval_bad_unit", job_with_interval("interval = \"15x\""),
     "t.toml:6:12: job \"web\": key \"interval\": expected a duration such as \"15m\" (units "
     "ms, s, m, h, d), got \"15x\" (string)"},
    {"interval_too_short", job_with_interval("interval = \"0s\""),
     "t.toml:6:12: job \"web\": key \"interval\": expected a duration of at least 1s, got "
     "\"0s\" (string)"},
    {"jitter_percent_too_big", job_with("jitter = \"150%\""),
     "t.toml:5:10: job \"web\": key \"jitter\": expected a percentage from 0% to 100%, got "
     "\"150%\" (string)"},
    {"jitter_longer_than_interval", job_with("jitter = \"1h\""),
     "t.toml:5:10: job \"web\": key \"jitter\": expected a duration not longer than the "
     "interval (900s), got \"1h\" (string)"},
    {"jitter_number", job_with("jitter = 10"),
     "t.toml:5:10: job \"web\": key \"jitter\": expected a duration such as \"30s\" or a "
     "percentage of the interval such as \"10%\", got 10 (integer)"},
    {"host_timeout_bad", job_with("host-timeout = \"soon\""),
     "t.toml:5:16: job \"web\": key \"host-timeout\": expected a duration such as \"5m\" "
     "(units ms, s, m, h, d), got \"soon\" (string)"},
    {"min_rtt_above_default_max", job_with("min-rtt-timeout = \"2s\""),
     "t.toml:5:19: job \"web\": key \"min-rtt-timeout\": expected a duration not above "
     "max-rtt-timeout (1.25s), got \"2s\" (string)"},
    {"max_rtt_below_min", job_with("min-rtt-timeout = \"300ms\"\nmax-rtt-timeout = \"200ms\""),
     "t.toml:5:19: job \"web\": key \"min-rtt-timeout\": expected a duration not above "
     "max-rtt-timeout (0.2s), got \"300ms\" (string)"},
    {"max_rtt_below_default_min", job_with("max-rtt-timeout = \"50ms\""),
     "t.toml:5:19: job \"web\": key \"max-rtt-timeout\": expected a duration not below "
     "min-rtt-timeout (0.1s), got \"50ms\" (string)"},
    {"rtt_timeout_zero", job_with("initial-rtt-timeout = \"0ms\""),
     "t.toml:5:23: job \"web\": key \"initial-rtt-timeout\": expected a duration of at least "
     "1ms, got \"0ms\" (string)"},
    {"rtt_timeout_too_long", job_with("max-rtt-timeout = \"2h\""),
     "t.toml:5:19: job \"web\": key \"max-rtt-timeout\": expected a duration of at most 1h, "
     "got \"2h\" (string)"},
    {"max_parallelism_zero", job_with("max-parallelism = 0"),
     "t.toml:5:19: job \"web\": key \"max-parallelism\": expected an integer from 1 to "
     "1048576, got 0 (integer)"},

    // Techniques.
    {"technique_unknown", job_with("technique = \"tcp\""),
     "t.toml:5:13: job \"web\": key \"technique\": expected one of \"connect\", \"syn\", "
     "\"fin\", \"null\", \"xmas\", \"ack\", \"udp\", got \"tcp\" (string)"},
    {"technique_typo", job_with("technique = \"sin\""),
     "t.toml:5:13: job \"web\": key \"technique\": expected one of \"connect\", \"syn\", "
     "\"fin\", \"null\", \"xmas\", \"ack\", \"udp\", got \"sin\" (string) (did you mean "
     "\"syn\"?)"},
    {"confirm_technique_other_protocol", job_with("confirm-technique = \"udp\""),
     "t.toml:5:21: job \"web\": key \"confirm-technique\": expected a tcp technique like "
     "technique \"connect\", got \"udp\" (string)"},

    // Targets and authorization.
    {"targets_not_array", kJob + "targets = \"198.18.0.1\"\n",
     "t.toml:5:11: job \"web\": key \"targets\": expected an array of targets such as "
     "[\"198.18.0.0/24\", \"db.example.net\"], got \"198.18.0.1\" (string)"},
    {"targets_empty", kJob + "targets = []\n",
     "t.toml:5:11: job \"web\": key \"targets\": expected an array of targets such as "
     "[\"198.18.0.0/24\", \"db.example.net\"], got an empty array"},
    {"empty_file", "",
     "t.toml:1:1: missing [[authorization]]: list the networks this agent may scan, e.g. "
     "[[authorization]] networks = [\"198.18.0.0/16\"]"},
    {"target_not_a_string", kJob + "targets = [\"198.18.0.1\", 7]\n",
     "t.toml:5:26: job \"web\": key \"targets\": expected an array of targets such as "
     "[\"198.18.0.0/24\", \"db.example.net\"], got an element that is 7 (integer)"},
    {"target_prefix_33", kJob + "targets = [\"198.18.0.0/33\"]\n",
     "t.toml:5:12: job \"web\": key \"targets\": \"198.18.0.0/33\": expected an IPv4 prefix "
     "length from 0 to 32, got \"33\""},
    {"target_bad_octets", kJob + "targets = [\"198.18.0.300\"]\n",
     "t.toml:5:12: job \"web\": key \"targets\": \"198.18.0.300\": expected octets 0-255, "
     "ranges such as 1-20 or *, got \"300\""},
    {"target_garbage", kJob + "targets = [\"web server\"]\n",
     "t.toml:5:12: job \"web\": key \"targets\": expected an address, CIDR, octet range such "
     "as \"198.18.0.1-20\" or hostname, got \"web server\""},
    {"target_outside_authorization", kJob + "targets = [\"198.18.0.1\", \"192.0.2.1\"]\n",
     "t.toml:5:26: job \"web\": key \"targets\": target \"192.0.2.1\" is outside the "
     "authorized networks (198.18.0.0/24); expected a target inside an [[authorization]] "
     "network"},
    {"target_cidr_partly_outside", kJob + "targets = [\"198.18.0.0/23\"]\n",
     "t.toml:5:12: job \"web\": key \"targets\": target \"198.18.0.0/23\" is outside the "
     "authorized networks (198.18.0.0/24); expected a target inside an [[authorization]] "
     "network"},
    {"target_octet_range_outside", kJob + "targets = [\"198.18.0-1.5\"]\n",
     "t.toml:5:12: job \"web\": key \"targets\": target \"198.18.0-1.5\" is outside the "
     "authorized networks (198.18.0.0/24); expected a target inside an [[authorization]] "
     "network"},
    {"target_ipv6_outside", kJob + "targets = [\"2001:db8::1\"]\n",
     "t.toml:5:12: job \"web\": key \"targets\": target \"2001:db8::1\" is outside the "
     "authorized networks (198.18.0.0/24); expected a target inside an [[authorization]] "
     "network"},
    {"exclude_bad", job_with("exclude = [\"198.18.0.0/40\"]"),
     "t.toml:5:12: job \"web\": key \"exclude\": \"198.18.0.0/40\": expected an IPv4 prefix "
     "length from 0 to 32, got \"40\""},

    // Ports.
    {"ports_bad_syntax", job_with("ports = \"22,abc\""),
     "t.toml:5:9: job \"web\": key \"ports\": \"22,abc\": expected a port number from 0 to "
     "65535 or a range such as 1000-2000, got \"abc\""},
    {"ports_reversed_range", job_with("ports = \"90-80\""),
     "t.toml:5:9: job \"web\": key \"ports\": \"90-80\": port range \"90-80\" is reversed; "
     "expected start <= end"},
    {"ports_empty_item", job_with("ports = \"22,,80\""),
     "t.toml:5:9: job \"web\": key \"ports\": \"22,,80\": expected a port or range between "
     "commas, got \"\""},
    {"ports_wrong_protocol", job_with("ports = \"U:53\""),
     "t.toml:5:9: job \"web\": key \"ports\": \"U:53\": no TCP ports, but the technique scans "
     "TCP; expected TCP ports (unqualified or after T:)"},
    {"ports_and_top_ports", job_with("ports = \"22\"\ntop-ports = 100"),
     "t.toml:6:13: job \"web\": key \"top-ports\": \"ports\" and \"top-ports\" cannot be "
     "combined; expected only one of them"},
    {"exclude_ports_wrong_protocol", job_with("exclude-ports = \"U:53\""),
     "t.toml:5:17: job \"web\": key \"exclude-ports\": \"U:53\": no TCP ports, but the "
     "technique scans TCP; expected TCP ports (unqualified or after T:)"},
    {"identify_services_not_boolean", job_with("identify-services = \"yes\""),
     "t.toml:5:21: job \"web\": key \"identify-services\": expected true or false, got \"yes\" "
     "(string)"},
    {"never_probe_out_of_range", job_with("never-probe = \"9100,70000\""),
     "t.toml:5:15: job \"web\": key \"never-probe\": \"9100,70000\": expected a port number from 0 "
     "to 65535 or a range such as 1000-2000, got \"70000\""},
    {"never_probe_udp", job_with("never-probe = \"U:161\""),
     "t.toml:5:15: job \"web\": key \"never-probe\": \"U:161\": no TCP ports, but "
     "identification probes TCP; expected TCP ports (unqualified or after T:)"},
    {"never_probe_array", job_with("never-probe = [9100]"),
     "t.toml:5:15: job \"web\": key \"never-probe\": expected a TCP port list such as "
     "\"9100-9107,10001\", got an array"},
    {"watch_services_not_boolean", job_with("watch-services = 1"),
     "t.toml:5:18: job \"web\": key \"watch-services\": expected true or false, got 1 (integer)"},
    {"watch_interval_without_watch", job_with("watch-services-interval = \"1h\""),
     "t.toml:5:27: job \"web\": key \"watch-services-interval\": sets how often watch-services "
     "reads the ports again; expected watch-services = true with it"},
    {"watch_without_identification", job_with("identify-services = false\nwatch-services = true"),
     "t.toml:6:18: job \"web\": key \"watch-services\": watches what identification reads, but "
     "identify-services is false; expected identify-services = true (the default) with it"},
    {"watch_on_udp", job_with("technique = \"udp\"\nports = \"53\"\nwatch-services = true"),
     "t.toml:7:18: job \"web\": key \"watch-services\": reads open TCP ports, which technique "
     "\"udp\" never finds; expected technique \"connect\" or \"syn\""},
    {"watch_interval_too_short",
     job_with("watch-services = true\nwatch-services-interval = \"10ms\""),
     "t.toml:6:27: job \"web\": key \"watch-services-interval\": expected a duration of at least "
     "1s, got \"10ms\" (string)"},
    {"exclude_ports_everything", job_with("ports = \"20-25\"\nexclude-ports = \"T:1-100\""),
     "t.toml:6:17: job \"web\": key \"exclude-ports\": \"T:1-100\" excludes every port the "
     "job scans; expected ports that leave something to scan"},
    {"exclude_ports_all_top_ports", job_with("top-ports = 10\nexclude-ports = \"-\""),
     "t.toml:6:17: job \"web\": key \"exclude-ports\": \"-\" excludes every port the job "
     "scans; expected ports that leave something to scan"},
    {"top_ports_zero", job_with("top-ports = 0"),
     "t.toml:5:13: job \"web\": key \"top-ports\": expected an integer from 1 to 65535, got 0 "
     "(integer)"},
    {"confirmations_negative", job_with("confirmations = -1"),
     "t.toml:5:17: job \"web\": key \"confirmations\": expected an integer from 0 to 10, got "
     "-1 (integer)"},
    {"job_min_rate_above_inherited_max", "[agent]\nmax-rate = 10\n" + job_with("min-rate = 50"),
     "t.toml:7:12: job \"web\": key \"min-rate\": expected a rate not above max-rate 10 (from "
     "[agent]), got 50 (integer)"},
    {"job_max_rate_below_inherited_min", "[agent]\nmin-rate = 100\n" + job_with("max-rate = 50"),
     "t.toml:7:12: job \"web\": key \"max-rate\": expected a rate not below min-rate 100 (from "
     "[agent]), got 50 (integer)"},

    // The expected-open policy.
    {"policy_port_without_protocol", job_with("expected-open = [\"22\"]"),
     "t.toml:5:18: job \"web\": key \"expected-open\": expected a port such as \"22/tcp\" or "
     "\"8000-8099/tcp\", got \"22\" (add /tcp or /udp)"},
    {"policy_protocol_first", job_with("expected-open = [\"tcp/22\"]"),
     "t.toml:5:18: job \"web\": key \"expected-open\": expected a port such as \"22/tcp\" or "
     "\"8000-8099/tcp\", got \"tcp/22\" (did you mean \"22/tcp\"?)"},
    {"policy_wrong_protocol", job_with("expected-open = [\"53/udp\"]"),
     "t.toml:5:18: job \"web\": key \"expected-open\": \"53/udp\" can never match: expected a "
     "tcp port, as technique \"connect\" scans tcp"},
    {"policy_not_array", job_with("expected-open = \"22/tcp\""),
     "t.toml:5:17: job \"web\": key \"expected-open\": expected an array of ports such as "
     "[\"22/tcp\", \"443/tcp\"] or a table of host = [ports], got \"22/tcp\" (string)"},
    {"policy_host_not_a_target", job_with("expected-open = { \"198.18.0.2\" = [\"22/tcp\"] }"),
     "t.toml:5:19: job \"web\": key \"expected-open\": host \"198.18.0.2\": expected a host "
     "among the job's targets"},
    {"policy_host_bad", job_with("expected-open = { \"web server\" = [\"22/tcp\"] }"),
     "t.toml:5:19: job \"web\": key \"expected-open\": host \"web server\": expected \"*\", an "
     "address, a CIDR or a hostname"},
    {"policy_host_port_bad", job_with("expected-open = { \"*\" = [\"22/tcp\", \"x/tcp\"] }"),
     "t.toml:5:36: job \"web\": key \"expected-open\": host \"*\": expected a port such as "
     "\"22/tcp\" or \"8000-8099/tcp\", got \"x/tcp\""},
};

INSTANTIATE_TEST_SUITE_P(AgentConfig, BadConfigTest, ::testing::ValuesIn(kBadConfigs),
                         [](const ::testing::TestParamInfo<BadConfig>& param_info) {
                           return std::string(param_info.param.name);
                         });

TEST(AgentConfig, ErrorsNameTheFile) {
  const auto message = [] {
    try {
      (void)parse_config("[agent]\nlog-level = 3\n", "/etc/portvigil/portvigil.toml");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  EXPECT_EQ(message.rfind("/etc/portvigil/portvigil.toml:2:13: [agent]: key \"log-level\":", 0), 0u)
      << message;
}

}  // namespace
}  // namespace portvigil

namespace portvigil {
namespace {

// ---- large scopes (issue #11) ---------------------------------------------------------------

std::string with_auth(const std::string& auth, const std::string& target = "198.18.0.1") {
  return "[[authorization]]\n" + auth + "\n[[job]]\nname = \"j\"\ntargets = [\"" + target +
         "\"]\ninterval = \"1m\"\n";
}

TEST(LargeScope, WideNetworksNeedAllowLargeScope) {
  for (const char* net : {"0.0.0.0/0", "::/0", "10.0.0.0/8", "198.0.0.0/15", "2001:db8::/32",
                          "2001:db8::/47", "::ffff:0.0.0.0/96"}) {
    const auto e =
        error_of(with_auth("networks = [\"198.18.0.0/24\", \"" + std::string(net) + "\"]"));
    EXPECT_NE(e.find("t.toml:2:30: authorization #1: key \"networks\": \"" + std::string(net) +
                     "\" is wider than /"),
              std::string::npos)
        << net << ": " << e;
    EXPECT_NE(e.find("allow-large-scope = true"), std::string::npos) << e;
  }
  // The limits themselves are fine.
  EXPECT_EQ(error_of(with_auth("networks = [\"198.18.0.0/16\", \"2001:db8::/48\"]")), "");
}

TEST(LargeScope, AllowedWithOwnerTicketAndExpiry) {
  const auto config = parse_config(with_auth("networks = [\"0.0.0.0/0\", \"::/0\"]\n"
                                             "allow-large-scope = true\nowner = \"secops\"\n"
                                             "ticket = \"CHG-9\"\nexpires = 2999-01-01"),
                                   "t.toml");
  ASSERT_EQ(config.authorization.size(), 2u);
  EXPECT_TRUE(config.authorization[0].allow_large_scope);
  const auto e = error_of(
      with_auth("networks = [\"0.0.0.0/0\"]\nallow-large-scope = true\nowner = \"secops\""));
  EXPECT_EQ(e,
            "t.toml:3:21: authorization #1: key \"allow-large-scope\": a large scope must say "
            "who approved it, under which ticket and until when: add \"ticket\", \"expires\" "
            "to this [[authorization]] entry");
  EXPECT_NE(error_of(with_auth("networks = [\"0.0.0.0/0\"]\nallow-large-scope = \"yes\""))
                .find("expected true or false"),
            std::string::npos);
  // Another entry's permission does not carry over.
  EXPECT_NE(error_of("[[authorization]]\nnetworks = [\"198.18.0.0/24\"]\nallow-large-scope = "
                     "true\nowner = \"a\"\nticket = \"b\"\nexpires = 2999-01-01\n"
                     "[[authorization]]\nnetworks = [\"10.0.0.0/8\"]\n[[job]]\nname = \"j\"\n"
                     "targets = [\"198.18.0.1\"]\ninterval = \"1m\"\n")
                .find("\"10.0.0.0/8\" is wider than /16"),
            std::string::npos);
}

TEST(LargeScope, MappedNetworksAreIpv4) {
  const auto config =
      parse_config(with_auth("networks = [\"::ffff:198.18.0.0/120\"]", "198.18.0.7"), "t.toml");
  ASSERT_EQ(config.authorization.size(), 1u);
  EXPECT_EQ(config.authorization[0].cidr, "198.18.0.0/24");
  EXPECT_TRUE(config.authorization[0].network.contains(ip("198.18.0.7")));
}

// "localhost/0" passed and then walked all of IPv4.
TEST(LargeScope, HostnameWithPrefixIsCheckedLikeABlock) {
  const auto e = error_of(with_auth("networks = [\"127.0.0.0/8\"]", "localhost/0"));
  // 127.0.0.0/8 itself is loopback, allowed without allow-large-scope.
  EXPECT_EQ(error_of(with_auth("networks = [\"127.0.0.0/8\"]", "127.0.0.1")), "");
  EXPECT_NE(e.find("target \"localhost/0\" names a /0 block around the address of "
                   "\"localhost\", wider than every authorized network (127.0.0.0/8)"),
            std::string::npos)
      << e;
  EXPECT_NE(error_of(with_auth("networks = [\"198.18.0.0/16\"]", "db.example/64")), "");
  EXPECT_EQ(error_of(with_auth("networks = [\"198.18.0.0/16\"]", "db.example/16")), "");
  EXPECT_EQ(error_of(with_auth("networks = [\"198.18.0.0/16\"]", "db.example")), "");
  EXPECT_EQ(error_of(with_auth("networks = [\"0.0.0.0/0\"]\nallow-large-scope = true\n"
                               "owner = \"a\"\nticket = \"b\"\nexpires = 2999-01-01",
                               "localhost/0")),
            "");
}

}  // namespace
}  // namespace portvigil
