#include "portvigil/common/scan_model.hpp"

#include <algorithm>

namespace portvigil {
namespace {

constexpr std::array<std::string_view, 2> kProtoNames{"tcp", "udp"};
constexpr std::array<std::string_view, kPortStateCount> kStateNames{
    "open", "closed", "filtered", "unfiltered", "open|filtered", "closed|filtered"};
constexpr std::array<std::string_view, kReasonCount> kReasonNames{
    "unknown",         "syn-ack",        "reset",         "conn-refused",     "no-response",
    "host-unreach",    "net-unreach",    "proto-unreach", "port-unreach",     "admin-prohibited",
    "host-prohibited", "net-prohibited", "udp-response",  "local-prohibited", "echo-reply",
    "user-set",        "arp-response",   "nd-response"};
constexpr std::array<PortState, 3> kOpenClosedFiltered{PortState::open, PortState::closed,
                                                       PortState::filtered};
constexpr std::array<PortState, 3> kFinLike{PortState::closed, PortState::filtered,
                                            PortState::open_filtered};
constexpr std::array<PortState, 2> kAckStates{PortState::filtered, PortState::unfiltered};
constexpr std::array<PortState, 4> kUdpStates{PortState::open, PortState::closed,
                                              PortState::filtered, PortState::open_filtered};

constexpr std::array<TechniqueInfo, 7> kTechniques{{
    {Technique::connect, "connect", "-sT", "TCP connect scan; the default without CAP_NET_RAW",
     Proto::tcp, false, PortState::filtered, true, true, kOpenClosedFiltered},
    {Technique::syn, "syn", "-sS",
     "TCP SYN (half-open) scan; the default when CAP_NET_RAW is available", Proto::tcp, true,
     PortState::filtered, true, true, kOpenClosedFiltered},
    {Technique::fin, "fin", "-sF", "TCP FIN scan (needs CAP_NET_RAW)", Proto::tcp, true,
     PortState::open_filtered, false, false, kFinLike},
    {Technique::null, "null", "-sN", "TCP NULL scan (needs CAP_NET_RAW)", Proto::tcp, true,
     PortState::open_filtered, false, false, kFinLike},
    {Technique::xmas, "xmas", "-sX", "TCP Xmas scan: FIN+PSH+URG (needs CAP_NET_RAW)", Proto::tcp,
     true, PortState::open_filtered, false, false, kFinLike},
    {Technique::ack, "ack", "-sA",
     "TCP ACK scan: maps firewall rules, unfiltered/filtered (needs CAP_NET_RAW)", Proto::tcp, true,
     PortState::filtered, true, true, kAckStates},
    {Technique::udp, "udp", "-sU",
     "UDP scan with protocol payloads for well-known ports (needs CAP_NET_RAW)", Proto::udp, true,
     PortState::open_filtered, false, true, kUdpStates},
}};

// Row i describes Technique i, and every row's silence is a state it reports.
constexpr bool table_is_consistent() {
  for (std::size_t i = 0; i < kTechniques.size(); ++i) {
    const auto& t = kTechniques[i];
    if (static_cast<std::size_t>(t.technique) != i) return false;
    if (std::find(t.reported.begin(), t.reported.end(), t.silence) == t.reported.end()) {
      return false;
    }
  }
  return true;
}
static_assert(table_is_consistent());

constexpr std::array<std::string_view, kTechniques.size()> kTechniqueNames = [] {
  std::array<std::string_view, kTechniques.size()> names{};
  for (std::size_t i = 0; i < names.size(); ++i) names[i] = kTechniques[i].name;
  return names;
}();

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
const TechniqueInfo& technique_info(Technique t) {
  return kTechniques.at(static_cast<std::size_t>(t));
}

bool finds_open_tcp_ports(Technique t) {
  const TechniqueInfo& info = technique_info(t);
  return info.proto == Proto::tcp && std::find(info.reported.begin(), info.reported.end(),
                                               PortState::open) != info.reported.end();
}
std::span<const TechniqueInfo> all_techniques() {
  return kTechniques;
}
std::span<const std::string_view> technique_names() {
  return kTechniqueNames;
}
std::optional<Technique> parse_technique(std::string_view text) {
  return parse_name<Technique>(kTechniqueNames, text);
}
std::string_view name(Technique t) {
  return technique_info(t).name;
}
std::string_view cli_flag(Technique t) {
  return technique_info(t).cli_flag;
}
Proto proto_of(Technique t) {
  return technique_info(t).proto;
}
std::span<const PortState> reported_states(Technique t) {
  return technique_info(t).reported;
}

bool proves_host_up(Reason r) {
  switch (r) {
    case Reason::unknown:
    case Reason::no_response:
    case Reason::host_unreach:
    case Reason::net_unreach:
    case Reason::local_prohibited:
      return false;
    default:
      return true;
  }
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

std::string host_key(const asio::ip::address& address, std::string_view hostname) {
  return hostname.empty() ? address.to_string() : std::string(hostname);
}

}  // namespace portvigil
