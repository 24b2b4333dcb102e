// Builders for scan results and a self-deleting temporary directory.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "portvigil/common/scan_model.hpp"

namespace portvigil::test {

class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "pvstore-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The reason Nmap typically gives for each state, so tests read naturally.
inline Reason typical_reason(PortState s) {
  switch (s) {
    case PortState::open:
      return Reason::syn_ack;
    case PortState::closed:
      return Reason::reset;
    case PortState::unfiltered:
      return Reason::reset;
    case PortState::filtered:
    case PortState::open_filtered:
    case PortState::closed_filtered:
      return Reason::no_response;
  }
  return Reason::unknown;
}

struct PortSpec {
  std::uint16_t port;
  PortState state;
  Reason reason = Reason::unknown;  // unknown: typical_reason(state)
  Proto proto = Proto::tcp;
};

// Ports first..last of `proto` in `usual` state, with `special` ports overriding it.
inline HostResult make_host(const std::string& name, std::uint16_t first, std::uint16_t last,
                            PortState usual, std::initializer_list<PortSpec> special = {},
                            Proto proto = Proto::tcp) {
  HostResult h;
  h.address = asio::ip::make_address("192.0.2.1");
  h.hostname = name;
  for (std::uint32_t p = first; p <= last; ++p) {
    h.ports.push_back({static_cast<std::uint16_t>(p), proto, usual, typical_reason(usual), 0});
  }
  for (const PortSpec& s : special) {
    const Reason r = s.reason == Reason::unknown ? typical_reason(s.state) : s.reason;
    bool replaced = false;
    for (auto& p : h.ports) {
      if (p.port == s.port && p.proto == s.proto) {
        p.state = s.state;
        p.reason = r;
        replaced = true;
      }
    }
    if (!replaced) h.ports.push_back({s.port, s.proto, s.state, r, 0});
  }
  return h;
}

// Appends another protocol's ports to a host.
inline void add_ports(HostResult& h, std::uint16_t first, std::uint16_t last, PortState state,
                      Proto proto) {
  for (std::uint32_t p = first; p <= last; ++p) {
    h.ports.push_back({static_cast<std::uint16_t>(p), proto, state, typical_reason(state), 0});
  }
}

inline std::chrono::system_clock::time_point at(std::int64_t seconds) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000 + seconds));
}

}  // namespace portvigil::test
