// Sample scan results and small process/file helpers shared by the report writer tests.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "portvigil/common/scan_model.hpp"
#include "portvigil/exporters/reports.hpp"

namespace portvigil::sample {

// 2026-11-23 12:00:00 UTC, a Monday.
inline constexpr std::int64_t kStartUnix = 1795435200;

inline std::chrono::system_clock::time_point at(std::int64_t unix_seconds) {
  return std::chrono::system_clock::time_point{std::chrono::seconds{unix_seconds}};
}

inline ScanInfo sample_info(std::string args = "portvigil -sT -p1-1000 198.18.0.2") {
  ScanInfo info;
  info.technique = Technique::connect;
  info.command_line = std::move(args);
  info.start = at(kStartUnix);
  info.tcp_ports = "1-1000";
  info.tcp_port_count = 1000;
  return info;
}

inline ScanSummary sample_summary(std::size_t hosts) {
  ScanSummary s;
  s.end = at(kStartUnix + 1);
  s.elapsed = std::chrono::duration<double>{1.234};
  s.hosts_total = hosts;
  s.hosts_up = hosts;
  s.counters.probes_sent = 1000 * hosts;
  s.counters.responses = 997 * hosts;
  return s;
}

inline HostResult host_at(const char* address, std::string hostname = {}) {
  HostResult h;
  h.address = asio::ip::make_address(address);
  h.hostname = std::move(hostname);
  h.elapsed = std::chrono::duration<double>{0.5};
  return h;
}

struct Special {
  std::uint16_t port;
  PortState state;
  Reason reason;
  std::uint8_t ttl = 0;
};

// tcp ports first..last; the listed ones as given, everything else in `rest`/`rest_reason`.
inline void add_tcp(HostResult& h, std::uint16_t first, std::uint16_t last, PortState rest,
                    Reason rest_reason, std::initializer_list<Special> specials) {
  for (unsigned port = first; port <= last; ++port) {
    PortResult r{static_cast<std::uint16_t>(port), Proto::tcp, rest, rest_reason, 0};
    for (const auto& s : specials) {
      if (s.port == port) r = PortResult{s.port, Proto::tcp, s.state, s.reason, s.ttl};
    }
    h.ports.push_back(r);
  }
}

// 198.18.0.2, tcp 1-1000: 22 and 80 open, 25 filtered (admin-prohibited), 53 and 443
// filtered (no-response), 995 closed (conn-refused).
inline HostResult mixed_host() {
  HostResult h = host_at("198.18.0.2");
  add_tcp(h, 1, 1000, PortState::closed, Reason::conn_refused,
          {{22, PortState::open, Reason::syn_ack, 64},
           {25, PortState::filtered, Reason::admin_prohibited},
           {53, PortState::filtered, Reason::no_response},
           {80, PortState::open, Reason::syn_ack, 64},
           {443, PortState::filtered, Reason::no_response}});
  return h;
}

// gw.example (2001:db8::1), tcp 1-100 mostly filtered with two reasons (90 no-response,
// 8 admin-prohibited), 22 open, 23 closed; udp 53 and 123 open|filtered, 161 open.
inline HostResult ipv6_host() {
  HostResult h = host_at("2001:db8::1", "gw.example");
  add_tcp(h, 1, 100, PortState::filtered, Reason::no_response,
          {{22, PortState::open, Reason::syn_ack},
           {23, PortState::closed, Reason::reset},
           {50, PortState::filtered, Reason::admin_prohibited},
           {51, PortState::filtered, Reason::admin_prohibited},
           {52, PortState::filtered, Reason::admin_prohibited},
           {53, PortState::filtered, Reason::admin_prohibited},
           {54, PortState::filtered, Reason::admin_prohibited},
           {55, PortState::filtered, Reason::admin_prohibited},
           {56, PortState::filtered, Reason::admin_prohibited},
           {57, PortState::filtered, Reason::admin_prohibited}});
  h.ports.push_back({53, Proto::udp, PortState::open_filtered, Reason::no_response, 0});
  h.ports.push_back({123, Proto::udp, PortState::open_filtered, Reason::no_response, 0});
  h.ports.push_back({161, Proto::udp, PortState::open, Reason::udp_response, 0});
  return h;
}

// mixed_host() after --identify: 22 a greeting, 80 TLS with HTTP whose Server header holds
// characters each report must escape.
inline HostResult identified_host() {
  HostResult h = mixed_host();
  ServiceIdentity ssh;
  ssh.outcome = ServiceOutcome::identified;
  ssh.protocol = "ssh";
  ssh.banner = "SSH-2.0-OpenSSH_9.2p1";
  ssh.banner_sha256 = std::string(64, 'a');
  ServiceIdentity web;
  web.outcome = ServiceOutcome::identified;
  web.protocol = "https";
  TlsCertificate cert;
  cert.version = "TLSv1.3";
  cert.subject_cn = "staging.internal";
  cert.sans = {"staging.internal", "198.18.0.2"};
  cert.issuer_cn = "staging.internal";
  cert.not_before = at(kStartUnix - 86400);
  cert.not_after = at(kStartUnix + 30 * 86400);
  cert.self_signed = true;
  cert.sha256 = std::string(64, 'b');
  web.tls = cert;
  web.http = HttpHead{200, "HTTP/1.1 200 OK", "Jetty/9 <\"x\">, a&b"};
  h.services = {{22, ssh}, {80, web}};
  return h;
}

// 198.18.9.5, tcp 20-29 (fewer than 26 ports, so nothing collapses): 22 open, rest closed.
inline HostResult small_host() {
  HostResult h = host_at("198.18.9.5");
  add_tcp(h, 20, 29, PortState::closed, Reason::conn_refused,
          {{22, PortState::open, Reason::syn_ack}});
  return h;
}

// 198.18.9.9, tcp 1-1000 all closed.
inline HostResult all_closed_host() {
  HostResult h = host_at("198.18.9.9");
  add_tcp(h, 1, 1000, PortState::closed, Reason::conn_refused, {});
  return h;
}

// 198.18.9.7 gave up after a host timeout; 22 open, 30 ports closed.
inline HostResult incomplete_host() {
  HostResult h = host_at("198.18.9.7");
  add_tcp(h, 1, 31, PortState::closed, Reason::conn_refused,
          {{22, PortState::open, Reason::syn_ack}});
  h.complete = false;
  h.note = "host timeout after 30s";
  return h;
}

// Runs the whole begin/host.../end sequence through `sink` and returns what it wrote.
template <typename Make>
std::string render(Make make, const ScanInfo& info, const std::vector<HostResult>& hosts,
                   const ScanSummary& summary) {
  std::ostringstream out;
  auto sink = make(out);
  sink->begin(info);
  for (const auto& h : hosts) sink->host(h);
  sink->end(summary);
  return out.str();
}

inline bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A file under the temp directory, removed when the object goes away.
class TempFile {
 public:
  TempFile(const std::string& stem, const std::string& content) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("portvigil-exporters-" + std::to_string(::getpid()) + "-" + info->name() + "-" + stem);
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  [[nodiscard]] std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

inline CommandResult run(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  const int status = ::pclose(pipe);
  if (status != -1 && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

// Single-quotes `text` for /bin/sh.
inline std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

inline std::string hex_of(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += kHex[b >> 4];
    out += kHex[b & 0x0F];
  }
  return out;
}

}  // namespace portvigil::sample
