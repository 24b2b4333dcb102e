#include "portvigil/storage/diff.hpp"

#include <algorithm>
#include <array>

namespace portvigil {

std::vector<std::pair<Proto, std::uint16_t>> HostSnapshot::open_ports() const {
  std::vector<std::pair<Proto, std::uint16_t>> out;
  for (const ProtoSnapshot& p : protos) {
    if (p.usual.state == PortState::open) {
      for (const PortRange& r : p.scanned) {
        for (std::uint32_t port = r.first; port <= r.last; ++port) {
          const auto port16 = static_cast<std::uint16_t>(port);
          if (p.state_of(port16)->state == PortState::open) out.emplace_back(p.proto, port16);
        }
      }
    } else {
      for (const auto& [port, obs] : p.exceptions) {
        if (obs.state == PortState::open) out.emplace_back(p.proto, port);
      }
    }
  }
  return out;
}

std::string_view from_name(const PortChange& change) {
  return change.from_absent ? kAbsent : name(change.from);
}

bool ProtoSnapshot::scanned_port(std::uint16_t port) const {
  // First range whose end is >= port; it holds the port if it also starts at or before it.
  const auto it = std::lower_bound(scanned.begin(), scanned.end(), port,
                                   [](const PortRange& r, std::uint16_t p) { return r.last < p; });
  return it != scanned.end() && it->first <= port;
}

std::size_t ProtoSnapshot::port_count() const {
  std::size_t n = 0;
  for (const auto& r : scanned) n += static_cast<std::size_t>(r.last - r.first) + 1;
  return n;
}

std::optional<PortObservation> ProtoSnapshot::state_of(std::uint16_t port) const {
  if (!scanned_port(port)) return std::nullopt;
  const auto it =
      std::lower_bound(exceptions.begin(), exceptions.end(), port,
                       [](const auto& entry, std::uint16_t p) { return entry.first < p; });
  if (it != exceptions.end() && it->first == port) return it->second;
  return usual;
}

const ProtoSnapshot* HostSnapshot::find(Proto proto) const {
  for (const auto& p : protos) {
    if (p.proto == proto) return &p;
  }
  return nullptr;
}

std::optional<PortObservation> HostSnapshot::state_of(Proto proto, std::uint16_t port) const {
  if (!exists) return std::nullopt;
  const ProtoSnapshot* p = find(proto);
  return p != nullptr ? p->state_of(port) : std::nullopt;
}

HostSnapshot merge_snapshots(const HostSnapshot& base, const HostSnapshot& update,
                             std::span<const std::uint16_t> keep) {
  if (!base.exists) return update;
  HostSnapshot out = update;
  out.protos.clear();
  for (const Proto proto : {Proto::tcp, Proto::udp}) {
    const ProtoSnapshot* b = base.find(proto);
    const ProtoSnapshot* u = update.find(proto);
    if (u == nullptr || b == nullptr || b->technique != u->technique) {
      if (u != nullptr || b != nullptr) out.protos.push_back(u != nullptr ? *u : *b);
      continue;
    }
    HostResult merged;
    auto add = [&](const ProtoSnapshot& from, bool filter) {
      for (const PortRange& r : from.scanned) {
        for (unsigned port = r.first; port <= r.last; ++port) {
          if (filter && !std::binary_search(keep.begin(), keep.end(), port)) continue;
          const auto obs = from.state_of(static_cast<std::uint16_t>(port));
          merged.ports.push_back(
              {static_cast<std::uint16_t>(port), proto, obs->state, obs->reason, 0});
        }
      }
    };
    add(*b, !keep.empty());
    add(*u, false);  // from_result: the last duplicate wins
    auto snap = HostSnapshot::from_result(merged, u->technique);
    out.protos.push_back(std::move(snap.protos.at(0)));
  }
  return out;
}

HostSnapshot HostSnapshot::from_result(const HostResult& host, Technique technique) {
  HostSnapshot snap;
  snap.exists = true;
  for (const Proto proto : {Proto::tcp, Proto::udp}) {
    // port -> observation, last duplicate wins
    std::vector<std::pair<std::uint16_t, PortObservation>> ports;
    for (const auto& p : host.ports) {
      if (p.proto == proto) ports.push_back({p.port, {p.state, p.reason}});
    }
    if (ports.empty()) continue;
    std::stable_sort(ports.begin(), ports.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::pair<std::uint16_t, PortObservation>> unique;
    unique.reserve(ports.size());
    for (const auto& entry : ports) {
      if (!unique.empty() && unique.back().first == entry.first) {
        unique.back() = entry;
      } else {
        unique.push_back(entry);
      }
    }

    // The usual state is the most common one (ties: lowest enum, as majority_state()), and
    // its reason the most common reason among those ports (ties: lowest enum).
    std::array<std::size_t, kPortStateCount> per_state{};
    for (const auto& e : unique) ++per_state[static_cast<std::size_t>(e.second.state)];
    const auto usual_state = static_cast<PortState>(
        std::max_element(per_state.begin(), per_state.end()) - per_state.begin());
    std::array<std::size_t, kReasonCount> per_reason{};
    for (const auto& e : unique) {
      if (e.second.state == usual_state) ++per_reason[static_cast<std::size_t>(e.second.reason)];
    }
    const auto usual_reason = static_cast<Reason>(
        std::max_element(per_reason.begin(), per_reason.end()) - per_reason.begin());

    ProtoSnapshot ps;
    ps.proto = proto;
    ps.technique = technique;
    ps.usual = {usual_state, usual_reason};
    for (const auto& [port, obs] : unique) {
      if (!ps.scanned.empty() && ps.scanned.back().last + 1 == port) {
        ps.scanned.back().last = port;
      } else {
        ps.scanned.push_back({port, port});
      }
      if (obs.state != usual_state) ps.exceptions.emplace_back(port, obs);
    }
    snap.protos.push_back(std::move(ps));
  }
  return snap;
}

std::vector<PortChange> diff_host(const HostSnapshot& baseline, const HostResult& scan) {
  std::vector<PortChange> changes;
  if (!baseline.exists || !scan.complete) return changes;
  for (const auto& p : scan.ports) {
    const auto before = baseline.state_of(p.proto, p.port);
    if (!before || before->state == p.state) continue;
    changes.push_back({p.proto, p.port, before->state, before->reason, p.state, p.reason});
  }
  return changes;
}

std::vector<PortChange> diff_snapshots(const HostSnapshot& before, const HostSnapshot& after) {
  std::vector<PortChange> changes;
  if (!before.exists || !after.exists) return changes;
  for (const ProtoSnapshot& now : after.protos) {
    const ProtoSnapshot* then = before.find(now.proto);
    if (then == nullptr) continue;
    auto compare = [&](std::uint16_t port) {
      if (!then->scanned_port(port) || !now.scanned_port(port)) return;
      const auto b = then->state_of(port);
      const auto a = now.state_of(port);
      if (b->state != a->state) {
        changes.push_back({now.proto, port, b->state, b->reason, a->state, a->reason});
      }
    };
    if (then->usual.state == now.usual.state) {
      // Ports outside both exception lists are in the shared usual state on both sides.
      std::vector<std::uint16_t> candidates;
      candidates.reserve(then->exceptions.size() + now.exceptions.size());
      for (const auto& e : then->exceptions) candidates.push_back(e.first);
      for (const auto& e : now.exceptions) candidates.push_back(e.first);
      std::sort(candidates.begin(), candidates.end());
      candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
      for (const std::uint16_t port : candidates) compare(port);
    } else {
      for (const PortRange& r : now.scanned) {
        for (std::uint32_t port = r.first; port <= r.last; ++port) {
          compare(static_cast<std::uint16_t>(port));
        }
      }
    }
  }
  return changes;
}

std::string host_key(const HostResult& host) {
  return host_key(host.address, host.hostname);
}

}  // namespace portvigil
