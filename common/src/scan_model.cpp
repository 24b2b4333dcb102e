#include "portvigil/common/scan_model.hpp"

#include <algorithm>

namespace portvigil {
namespace {

constexpr std::array<std::string_view, 2> kProtoNames{"tcp", "udp"};
constexpr std::array<std::string_view, kPortStateCount> kStateNames{
    "open", "closed", "filtered", "unfiltered", "open|filtered", "closed|filtered"};
constexpr std::array<std::string_view, kReasonCount> kReasonNames{
    "unknown",         "syn-ack",        "reset",         "conn-refused",    "no-response",
    "host-unreach",    "net-unreach",    "proto-unreach", "port-unreach",    "admin-prohibited",
    "host-prohibited", "net-prohibited", "udp-response",  "local-prohibited"};
constexpr std::array<std::string_view, 7> kTechniqueNames{"connect", "syn", "fin", "null",
                                                          "xmas",    "ack", "udp"};
constexpr std::array<std::string_view, 7> kTechniqueFlags{"-sT", "-sS", "-sF", "-sN",
                                                          "-sX", "-sA", "-sU"};

template <typename Enum, std::size_t N>
std::optional<Enum> parse_name(const std::array<std::string_view, N>& names,
                               std::string_view text) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == text) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

}  // namespace

std::string_view name(Proto proto) {
  return kProtoNames.at(static_cast<std::size_t>(proto));
}
std::string_view name(PortState state) {
  return kStateNames.at(static_cast<std::size_t>(state));
}
std::string_view name(Reason reason) {
  return kReasonNames.at(static_cast<std::size_t>(reason));
}
std::string_view name(Technique t) {
  return kTechniqueNames.at(static_cast<std::size_t>(t));
}
std::string_view cli_flag(Technique t) {
  return kTechniqueFlags.at(static_cast<std::size_t>(t));
}
Proto proto_of(Technique t) {
  return t == Technique::udp ? Proto::udp : Proto::tcp;
}

std::span<const PortState> reported_states(Technique t) {
  using enum PortState;
  static constexpr std::array<PortState, 3> kConnectSyn{open, closed, filtered};
  static constexpr std::array<PortState, 3> kFinNullXmas{closed, filtered, open_filtered};
  static constexpr std::array<PortState, 2> kAck{filtered, unfiltered};
  static constexpr std::array<PortState, 4> kUdp{open, closed, filtered, open_filtered};
  switch (t) {
    case Technique::connect:
    case Technique::syn:
      return kConnectSyn;
    case Technique::fin:
    case Technique::null:
    case Technique::xmas:
      return kFinNullXmas;
    case Technique::ack:
      return kAck;
    case Technique::udp:
      return kUdp;
  }
  return {};
}

std::optional<Proto> parse_proto(std::string_view text) {
  return parse_name<Proto>(kProtoNames, text);
}
std::optional<PortState> parse_port_state(std::string_view text) {
  return parse_name<PortState>(kStateNames, text);
}
std::optional<Reason> parse_reason(std::string_view text) {
  return parse_name<Reason>(kReasonNames, text);
}

std::optional<MajorityState> majority_state(const HostResult& host, Proto proto) {
  std::array<std::size_t, kPortStateCount> per_state{};
  bool any = false;
  for (const auto& p : host.ports) {
    if (p.proto != proto) continue;
    ++per_state[static_cast<std::size_t>(p.state)];
    any = true;
  }
  if (!any) return std::nullopt;
  // Ties go to the lower enum value, which keeps the choice deterministic.
  const auto best = std::max_element(per_state.begin(), per_state.end());
  MajorityState m;
  m.state = static_cast<PortState>(best - per_state.begin());
  m.count = *best;
  std::array<std::size_t, kReasonCount> per_reason{};
  for (const auto& p : host.ports) {
    if (p.proto == proto && p.state == m.state) ++per_reason[static_cast<std::size_t>(p.reason)];
  }
  for (std::size_t r = 0; r < kReasonCount; ++r) {
    if (per_reason[r] != 0) m.reasons.emplace_back(static_cast<Reason>(r), per_reason[r]);
  }
  std::stable_sort(m.reasons.begin(), m.reasons.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return m;
}

void TeeSink::begin(const ScanInfo& info) {
  for (auto* s : sinks_) s->begin(info);
}
void TeeSink::host(const HostResult& host) {
  for (auto* s : sinks_) s->host(host);
}
void TeeSink::end(const ScanSummary& summary) {
  for (auto* s : sinks_) s->end(summary);
}

}  // namespace portvigil
