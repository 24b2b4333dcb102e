// The Prometheus endpoint: what a scrape renders, the series limit, and the HTTP paths,
// served on an ephemeral loopback port.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "portvigil/exporters/metrics.hpp"

namespace portvigil {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

JobSnapshot web_snapshot() {
  JobSnapshot s;
  s.job = "web";
  s.open_ports = {{"198.18.0.2", Proto::tcp, 22, false}, {"198.18.0.2", Proto::tcp, 8080, true}};
  s.port_counts = {{Proto::tcp, PortState::open, 2}, {Proto::tcp, PortState::closed, 998}};
  return s;
}

TEST(SecretEquals, ComparesWholeValues) {
  EXPECT_TRUE(secret_equals("s3cret", "s3cret"));
  EXPECT_TRUE(secret_equals("", ""));
  EXPECT_FALSE(secret_equals("s3cre", "s3cret"));
  EXPECT_FALSE(secret_equals("s3crets", "s3cret"));
  EXPECT_FALSE(secret_equals("x3cret", "s3cret"));
  EXPECT_FALSE(secret_equals("s3creT", "s3cret"));
  EXPECT_FALSE(secret_equals(std::string_view("s3cret\0", 7), "s3cret"));
  EXPECT_FALSE(secret_equals("", "s3cret"));
}

TEST(AgentMetrics, PerPortSeriesComeFromTheLatestSnapshot) {
  AgentMetrics m;
  m.set_job("web", Technique::syn, std::chrono::minutes(15));
  m.publish(web_snapshot());
  auto text = m.render();
  EXPECT_TRUE(has_line(
      text,
      "portvigil_port_open{scan_job=\"web\",host=\"198.18.0.2\",proto=\"tcp\",port=\"22\"} 1"))
      << text;
  EXPECT_TRUE(has_line(text,
                       "portvigil_port_unexpected_open{scan_job=\"web\",host=\"198.18.0.2\",proto="
                       "\"tcp\",port=\"8080\"} 1"));
  EXPECT_EQ(text.find("portvigil_port_unexpected_open{scan_job=\"web\",host=\"198.18.0.2\",proto="
                      "\"tcp\",port=\"22\"}"),
            std::string::npos);
  EXPECT_TRUE(
      has_line(text, "portvigil_ports{scan_job=\"web\",proto=\"tcp\",state=\"closed\"} 998"));
  EXPECT_TRUE(has_line(text, "portvigil_job_interval_seconds{scan_job=\"web\"} 900"));
  EXPECT_NE(text.find("# HELP portvigil_port_open 1 for each port open as of the job's last "
                      "completed scan."),
            std::string::npos);

  // The port closes: the next snapshot has no series for it, nothing lingers.
  JobSnapshot closed = web_snapshot();
  closed.open_ports.pop_back();
  m.publish(closed);
  text = m.render();
  EXPECT_EQ(text.find("port=\"8080\""), std::string::npos) << text;
  EXPECT_NE(text.find("port=\"22\""), std::string::npos);

  m.retain_jobs({});
  text = m.render();
  EXPECT_EQ(text.find("portvigil_port_open{"), std::string::npos);
  // A job removed by a reload leaves no series at all behind (PortvigilScanStale would
  // fire for it otherwise).
  EXPECT_EQ(text.find("scan_job=\"web\""), std::string::npos) << text;
}

TEST(AgentMetrics, SeriesLimitDropsExpectedPortsFirstAndCountsThem) {
  AgentMetrics m(3);  // an unexpected port costs 2 series, an expected one 1
  JobSnapshot s;
  s.job = "big";
  for (std::uint16_t p = 1; p <= 5; ++p) {
    s.open_ports.push_back({"h", Proto::tcp, p, false, std::nullopt});
  }
  s.open_ports.push_back({"h", Proto::tcp, 9999, true, std::nullopt});
  m.publish(s);
  const auto text = m.render();
  EXPECT_TRUE(has_line(
      text,
      "portvigil_port_unexpected_open{scan_job=\"big\",host=\"h\",proto=\"tcp\",port=\"9999\"} 1"))
      << text;
  EXPECT_TRUE(has_line(text, "portvigil_port_series_dropped 4")) << text;
  std::size_t open_series = 0;
  for (std::size_t at = 0; (at = text.find("\nportvigil_port_open{", at)) != std::string::npos;
       ++at) {
    ++open_series;
  }
  EXPECT_EQ(open_series, 2u);  // the unexpected port and one expected port
}

// How long an unexpected port has been open: a timestamp series next to its paging series,
// counted in the same budget; none for expected ports.
TEST(AgentMetrics, UnexpectedPortsSayHowLongTheyHaveBeenOpen) {
  // The time series comes after every paging and expected series: with 5 series, two
  // unexpected ports (2 each) and one expected port (1) fill the budget, and no time is
  // shown rather than a paging series lost.
  AgentMetrics m(5);
  JobSnapshot s;
  s.job = "since";
  const auto t = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  s.open_ports.push_back({"h", Proto::tcp, 22, false, t});  // expected: never a time series
  s.open_ports.push_back({"h", Proto::tcp, 8443, true, t});
  s.open_ports.push_back({"h", Proto::tcp, 9000, true, t});
  m.publish(s);
  auto text = m.render();
  EXPECT_TRUE(has_line(text,
                       "portvigil_port_unexpected_open{scan_job=\"since\",host=\"h\",proto=\"tcp\","
                       "port=\"9000\"} 1"))
      << text;
  EXPECT_EQ(text.find("} 1700000000"), std::string::npos) << text;
  EXPECT_TRUE(has_line(text, "portvigil_port_series_dropped 2")) << text;  // the two times
  // With room, each unexpected port says since when.
  AgentMetrics roomy(7);
  roomy.publish(s);
  text = roomy.render();
  EXPECT_TRUE(has_line(text,
                       "portvigil_port_unexpected_open_since_timestamp_seconds{scan_job=\"since\","
                       "host=\"h\",proto=\"tcp\",port=\"8443\"} 1700000000"))
      << text;
  EXPECT_EQ(text.find("port=\"22\"} 1700000000"), std::string::npos) << text;
  EXPECT_TRUE(has_line(text, "portvigil_port_series_dropped 0")) << text;
}

// Certificates read on expected ports say when they expire; unexpected ports (which page
// anyway) and ports without a certificate do not; the series limit counts them last.
TEST(AgentMetrics, CertificateExpiryOfExpectedTlsPorts) {
  JobSnapshot s;
  s.job = "tls";
  const auto expires = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  OpenPort expected{"h", Proto::tcp, 443, false};
  expected.tls_not_after = expires;
  OpenPort unexpected{"h", Proto::tcp, 8443, true};
  unexpected.tls_not_after = expires;
  s.open_ports = {expected, unexpected, {"h", Proto::tcp, 22, false}};
  AgentMetrics m(100);
  m.publish(s);
  const auto text = m.render();
  EXPECT_TRUE(has_line(text,
                       "portvigil_tls_certificate_expiry_timestamp_seconds{scan_job=\"tls\","
                       "host=\"h\",port=\"443\"} 1800000000"))
      << text;
  EXPECT_EQ(text.find("port=\"8443\"} 1800000000"), std::string::npos) << text;
  EXPECT_EQ(text.find("expiry_timestamp_seconds{scan_job=\"tls\",host=\"h\",port=\"22\""),
            std::string::npos)
      << text;
  // 4 series for the ports themselves (8443 counts twice): no room for the certificate.
  AgentMetrics tight(4);
  tight.publish(s);
  const auto cut = tight.render();
  EXPECT_EQ(cut.find("portvigil_tls_certificate_expiry_timestamp_seconds{"), std::string::npos)
      << cut;
  EXPECT_TRUE(has_line(cut, "portvigil_port_series_dropped 1")) << cut;
}

// What answered on an unexpected port is an info series (the dashboard's Service column);
// expected ports and ports without a summary have none, and the series limit counts it after
// the paging series and their times.
TEST(AgentMetrics, ServiceInfoOfUnexpectedPorts) {
  JobSnapshot s;
  s.job = "svc";
  OpenPort unexpected{"h", Proto::tcp, 8443, true};
  unexpected.service = "https: TLSv1.3, CN \"x\"";
  OpenPort expected{"h", Proto::tcp, 443, false};
  expected.service = "https: expected";
  s.open_ports = {unexpected, expected, {"h", Proto::tcp, 2222, true}};
  AgentMetrics m(100);
  m.publish(s);
  const auto text = m.render();
  EXPECT_TRUE(has_line(text,
                       "portvigil_port_unexpected_open_service_info{scan_job=\"svc\",host=\"h\","
                       "proto=\"tcp\",port=\"8443\",service=\"https: TLSv1.3, CN \\\"x\\\"\"} 1"))
      << text;
  EXPECT_EQ(text.find("service=\"https: expected\""), std::string::npos) << text;
  EXPECT_EQ(text.find("port=\"2222\",service="), std::string::npos) << text;
  // 5 series for the ports themselves (unexpected ones count twice): none left for it.
  AgentMetrics tight(5);
  tight.publish(s);
  const auto cut = tight.render();
  EXPECT_EQ(cut.find("portvigil_port_unexpected_open_service_info{"), std::string::npos) << cut;
  EXPECT_TRUE(has_line(cut, "portvigil_port_series_dropped 1")) << cut;
}

// A scan that its window cut after a complete one in the same window is counted but is no
// failure; the window gauges start open (a job without windows) until the agent says.
TEST(AgentMetrics, ScanWindowsAndTheScansTheyCut) {
  AgentMetrics m;
  m.set_job("night", Technique::connect, std::chrono::seconds(60));
  auto text = m.render();
  EXPECT_TRUE(has_line(text, "portvigil_job_window_open{scan_job=\"night\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "portvigil_job_window_opened_timestamp_seconds{scan_job=\"night\"} 0"))
      << text;
  const std::chrono::system_clock::time_point opened{std::chrono::seconds(1700000000)};
  m.set_job_window("night", true, opened);
  m.record_scan("night", Technique::connect, AgentMetrics::ScanOutcome::complete,
                std::chrono::seconds(1), {});
  m.record_scan("night", Technique::connect, AgentMetrics::ScanOutcome::window_closed,
                std::chrono::seconds(1), {});
  m.set_job_window("night", false, std::nullopt);
  text = m.render();
  EXPECT_TRUE(has_line(text, "portvigil_scan_success{scan_job=\"night\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "portvigil_scans_total{result=\"incomplete\",scan_job=\"night\"} 1"));
  EXPECT_TRUE(has_line(text, "portvigil_job_window_open{scan_job=\"night\"} 0")) << text;
  EXPECT_TRUE(has_line(
      text, "portvigil_job_window_opened_timestamp_seconds{scan_job=\"night\"} 1700000000"))
      << text;
  // A reload keeps what the agent set; a cut with no complete scan before it is a failure.
  m.set_job("night", Technique::connect, std::chrono::seconds(60));
  EXPECT_TRUE(has_line(m.render(), "portvigil_job_window_open{scan_job=\"night\"} 0"));
  m.record_scan("night", Technique::connect, AgentMetrics::ScanOutcome::incomplete,
                std::chrono::seconds(1), {});
  EXPECT_TRUE(has_line(m.render(), "portvigil_scan_success{scan_job=\"night\"} 0"));
}

TEST(AgentMetrics, ScansChangesAndReloads) {
  AgentMetrics m;
  m.set_job("web", Technique::syn, std::chrono::seconds(60));
  ScanCounters c;
  c.probes_sent = 1000;
  c.responses = 990;
  c.retransmissions = 10;
  c.capture_drops = 3;
  m.record_scan("web", Technique::syn, AgentMetrics::ScanOutcome::complete,
                std::chrono::milliseconds(1500), c);
  m.record_scan("web", Technique::syn, AgentMetrics::ScanOutcome::incomplete,
                std::chrono::milliseconds(200), c);
  const auto fresh = m.render();
  // Every change the technique can report exists at 0 before it happens, so increase()
  // over a window with N changes reads N.
  for (const char* from : {"open", "closed", "filtered"}) {
    for (const char* to : {"open", "closed", "filtered"}) {
      if (std::string(from) == to) continue;
      EXPECT_TRUE(has_line(fresh, std::string("portvigil_port_state_changes_total{from=\"") + from +
                                      "\",proto=\"tcp\",scan_job=\"web\",to=\"" + to + "\"} 0"))
          << from << "->" << to << "\n"
          << fresh;
    }
  }
  EXPECT_TRUE(has_line(fresh,
                       "portvigil_port_state_changes_total{from=\"absent\",proto=\"tcp\","
                       "scan_job=\"web\",to=\"open\"} 0"));
  EXPECT_EQ(fresh.find("to=\"unfiltered\""), std::string::npos);  // SYN never reports it
  EXPECT_TRUE(has_line(fresh, "portvigil_host_events_total{kind=\"appeared\",scan_job=\"web\"} 0"));
  m.record_change("web", Proto::tcp, PortState::closed, PortState::open);
  m.record_change("web", Proto::tcp, std::nullopt, PortState::open);
  m.record_host_event("web", AgentMetrics::HostEvent::appeared);
  m.record_reload(false);
  const auto before = m.render();  // declared by set_job: 0 before any scan reports
  EXPECT_TRUE(
      has_line(before, "portvigil_scan_hosts_not_compared{reason=\"down\",scan_job=\"web\"} 0"))
      << before;
  EXPECT_TRUE(has_line(before, "portvigil_hosts_gone_silent{scan_job=\"web\"} 0"));
  EXPECT_TRUE(has_line(before, "portvigil_scan_targets_refused{scan_job=\"web\"} 0"));
  m.record_hosts("web", 2, 1, 1);
  m.record_scope("web", 7);
  const auto text = m.render();
  EXPECT_TRUE(
      has_line(text, "portvigil_scan_hosts_not_compared{reason=\"down\",scan_job=\"web\"} 2"));
  EXPECT_TRUE(has_line(
      text, "portvigil_scan_hosts_not_compared{reason=\"inconclusive\",scan_job=\"web\"} 1"));
  EXPECT_TRUE(has_line(text, "portvigil_hosts_gone_silent{scan_job=\"web\"} 1"));
  EXPECT_TRUE(has_line(text, "portvigil_scan_targets_refused{scan_job=\"web\"} 7"));
  EXPECT_TRUE(has_line(text, "portvigil_scans_total{result=\"complete\",scan_job=\"web\"} 1"))
      << text;
  EXPECT_TRUE(has_line(text, "portvigil_scans_total{result=\"incomplete\",scan_job=\"web\"} 1"));
  EXPECT_TRUE(has_line(text, "portvigil_scan_success{scan_job=\"web\"} 0"));
  EXPECT_TRUE(has_line(text, "portvigil_probes_sent_total{scan_job=\"web\"} 2000"));
  EXPECT_TRUE(has_line(text, "portvigil_capture_drops_total{scan_job=\"web\"} 6"));
  EXPECT_TRUE(has_line(text, "portvigil_scan_duration_seconds_count{scan_job=\"web\"} 2"));
  EXPECT_TRUE(has_line(text,
                       "portvigil_port_state_changes_total{from=\"closed\",proto=\"tcp\","
                       "scan_job=\"web\",to=\"open\"} 1"))
      << text;
  EXPECT_TRUE(has_line(text,
                       "portvigil_port_state_changes_total{from=\"absent\",proto=\"tcp\","
                       "scan_job=\"web\",to=\"open\"} 1"));
  EXPECT_TRUE(has_line(text, "portvigil_host_events_total{kind=\"appeared\",scan_job=\"web\"} 1"));
  EXPECT_TRUE(has_line(text, "portvigil_config_last_reload_successful 0"));
  EXPECT_TRUE(has_line(text, "portvigil_database_writable 1"));
  m.set_database_writable(false);
  EXPECT_TRUE(has_line(m.render(), "portvigil_database_writable 0"));
  EXPECT_TRUE(std::regex_search(
      text,
      std::regex("portvigil_build_info\\{compiler=\"(GNU|Clang) [0-9.]+\",revision=\"([0-9a-f]{12}|"
                 "unknown)\",version=\"[0-9]+\\.[0-9]+\\.[0-9]+\"\\} 1\n")))
      << text;
  EXPECT_NE(text.find("portvigil_last_scan_success_timestamp_seconds{scan_job=\"web\"} 1"),
            std::string::npos);  // a Unix time of this century starts with 1
}

// No series may carry a label Prometheus or a scrape configuration commonly attaches.
// After a restart the last success comes from the stored history; it never moves back, so
// a stored scan older than one this process completed leaves the gauge alone.
TEST(AgentMetrics, LastSuccessIsRestoredFromHistoryAndNeverMovesBack) {
  AgentMetrics m;
  m.set_job("web", Technique::connect, std::chrono::seconds(60));
  EXPECT_TRUE(
      has_line(m.render(), "portvigil_last_scan_success_timestamp_seconds{scan_job=\"web\"} 0"));
  const std::chrono::system_clock::time_point stored{std::chrono::seconds(1700000000)};
  m.restore_last_success("web", stored);
  EXPECT_TRUE(has_line(
      m.render(), "portvigil_last_scan_success_timestamp_seconds{scan_job=\"web\"} 1700000000"));
  m.restore_last_success("web", stored - std::chrono::hours(1));
  EXPECT_TRUE(has_line(
      m.render(), "portvigil_last_scan_success_timestamp_seconds{scan_job=\"web\"} 1700000000"));
  m.record_scan("web", Technique::connect, AgentMetrics::ScanOutcome::complete,
                std::chrono::seconds(1), {});
  m.restore_last_success("web", stored);  // a reopened database: older than this process's
  EXPECT_FALSE(has_line(
      m.render(), "portvigil_last_scan_success_timestamp_seconds{scan_job=\"web\"} 1700000000"));
}

TEST(AgentMetrics, NoLabelClashesWithScrapeLabels) {
  AgentMetrics m;
  m.set_job("web", Technique::udp, std::chrono::seconds(60));
  m.publish(web_snapshot());
  m.record_scan("web", Technique::udp, AgentMetrics::ScanOutcome::complete, std::chrono::seconds(1),
                {});
  m.record_hosts("web", 1, 1, 1);
  m.set_authorizations({{"198.18.0.0/24", "sec", "CHG-1", std::chrono::system_clock::now()}});
  const auto text = m.render();
  for (const char* label : {"job", "instance", "__name__", "exported_job", "exported_instance"}) {
    EXPECT_EQ(text.find(std::string("{") + label + "=\""), std::string::npos) << label;
    EXPECT_EQ(text.find(std::string(",") + label + "=\""), std::string::npos) << label;
  }
}

TEST(AgentMetrics, AuthorizationExpiryPerNetworkReplacedOnReload) {
  AgentMetrics m;
  const auto t = std::chrono::system_clock::time_point(std::chrono::seconds(1900000000));
  m.set_authorizations(
      {{"198.18.0.0/24", "sec@example.net", "CHG-1", t}, {"198.19.0.0/24", "", "", std::nullopt}});
  auto text = m.render();
  EXPECT_TRUE(has_line(text,
                       "portvigil_authorization_expiry_timestamp_seconds{network=\"198.18.0.0/24\","
                       "owner=\"sec@example.net\",ticket=\"CHG-1\"} 1900000000"))
      << text;
  EXPECT_EQ(text.find("198.19.0.0/24"), std::string::npos);  // no expiry, no series
  m.set_authorizations({});
  text = m.render();
  EXPECT_EQ(text.find("portvigil_authorization_expiry_timestamp_seconds{"), std::string::npos);
}

TEST(AgentMetrics, ShardInfoIsReplacedOnReloadAndTargetsOwnedGoWithTheirJob) {
  AgentMetrics m;
  m.set_shard(Shard{}, "");
  auto text = m.render();
  EXPECT_TRUE(has_line(text, "portvigil_shard_info{replica=\"\",shard=\"0\",shards=\"1\"} 1"))
      << text;
  EXPECT_TRUE(has_line(text, "portvigil_shard_count 1")) << text;
  m.set_shard(Shard{2, 3}, "b");
  m.set_job("web", Technique::syn, std::chrono::minutes(15));
  m.record_targets_owned("web", 85);
  text = m.render();
  EXPECT_TRUE(has_line(text, "portvigil_shard_info{replica=\"b\",shard=\"2\",shards=\"3\"} 1"))
      << text;
  EXPECT_EQ(text.find("shards=\"1\""), std::string::npos) << "the old shard is gone";
  EXPECT_TRUE(has_line(text, "portvigil_shard_count 3")) << text;
  EXPECT_TRUE(has_line(text, "portvigil_targets_owned{scan_job=\"web\"} 85"));
  m.retain_jobs({});
  EXPECT_EQ(m.render().find("portvigil_targets_owned{"), std::string::npos);
}

// `portvigil baseline accept` in another process: the scrape hook marks the ports
// accepted and the paging series is gone at that very scrape.
TEST(AgentMetrics, AcceptedPortsClearAtTheNextScrape) {
  AgentMetrics m;
  m.publish(web_snapshot());
  EXPECT_NE(m.render().find("portvigil_port_unexpected_open{"), std::string::npos);
  bool accepted = false;
  m.set_scrape_hook([&] {
    if (accepted) m.accept_ports("web", {{"198.18.0.2", Proto::tcp, 8080}});
  });
  EXPECT_NE(m.render().find("portvigil_port_unexpected_open{"), std::string::npos);
  accepted = true;
  const auto text = m.render();
  EXPECT_EQ(text.find("portvigil_port_unexpected_open{"), std::string::npos) << text;
  EXPECT_NE(text.find("portvigil_port_open{scan_job=\"web\",host=\"198.18.0.2\",proto=\"tcp\","
                      "port=\"8080\"} 1"),
            std::string::npos);
}

// A minimal HTTP/1.0 client for 127.0.0.1: returns the whole response.
std::string http_get(int port, const std::string& path, const std::string& auth = "") {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<std::uint16_t>(port));
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
    close(fd);
    return "connect failed";
  }
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n";
  if (!auth.empty()) req += "Authorization: Basic " + auth + "\r\n";
  req += "\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n = 0;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  close(fd);
  return out;
}

TEST(MetricsServer, ServesMetricsHealthReadinessAndLanding) {
  AgentMetrics m;
  m.publish(web_snapshot());
  MetricsServer server(WebOptions{"127.0.0.1:0", "", "", ""}, m);
  ASSERT_FALSE(server.ports().empty());
  const int port = server.ports().front();
  EXPECT_NE(http_get(port, "/-/healthy").find("200 OK"), std::string::npos);
  EXPECT_NE(http_get(port, "/-/ready").find("503"), std::string::npos);
  server.set_ready(true);
  EXPECT_NE(http_get(port, "/-/ready").find("200 OK"), std::string::npos);
  const auto landing = http_get(port, "/");
  EXPECT_NE(landing.find("href=\"metrics\""), std::string::npos) << landing;
  const auto metrics = http_get(port, "/metrics");
  EXPECT_NE(metrics.find("portvigil_port_unexpected_open{scan_job=\"web\""), std::string::npos)
      << metrics;
  EXPECT_NE(http_get(port, "/nope").find("404"), std::string::npos);
}

TEST(MetricsServer, BasicAuthProtectsMetrics) {
  AgentMetrics m;
  MetricsServer server(WebOptions{"127.0.0.1:0", "prom", "s3cret", ""}, m);
  const int port = server.ports().front();
  EXPECT_NE(http_get(port, "/metrics").find("401"), std::string::npos);
  EXPECT_NE(http_get(port, "/metrics", "cHJvbTp3cm9uZw==").find("401"),
            std::string::npos);  // prom:wrong
  EXPECT_NE(http_get(port, "/metrics", "cHJvbTpzM2NyZXQ=").find("200 OK"),
            std::string::npos);                                               // prom:s3cret
  EXPECT_NE(http_get(port, "/-/healthy").find("200 OK"), std::string::npos);  // probes need no auth
}

TEST(MetricsServer, BindFailureNamesTheAddress) {
  AgentMetrics m;
  MetricsServer first(WebOptions{"127.0.0.1:0", "", "", ""}, m);
  const std::string taken = "127.0.0.1:" + std::to_string(first.ports().front());
  try {
    MetricsServer second(WebOptions{taken, "", "", ""}, m);
    FAIL() << "a second server bound " << taken;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(taken), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace portvigil
