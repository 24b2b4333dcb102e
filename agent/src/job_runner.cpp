#include "job_runner.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <tuple>

namespace portvigil {
namespace {

class CollectSink final : public ReportSink {
 public:
  void begin(const ScanInfo&) override {}
  void host(const HostResult& h) override { hosts.push_back(h); }
  void end(const ScanSummary&) override {}
  std::vector<HostResult> hosts;
};

std::unique_ptr<ScanEngine> engine_for(Technique technique, const JobEnvironment& env) {
  if (technique == Technique::connect) return make_connect_engine();
  RawOptions raw;
  raw.io = env.io;
  return make_raw_engine(technique, raw);
}

}  // namespace

TimingOptions job_timing(const JobConfig& job) {
  TimingOptions t;
  if (job.max_rate) t.max_rate = *job.max_rate;
  if (job.min_rate) t.min_rate = *job.min_rate;
  if (job.max_retries) t.max_retries = *job.max_retries;
  if (job.host_timeout) t.host_timeout = *job.host_timeout;
  if (job.initial_rtt_timeout) t.initial_rtt_timeout = *job.initial_rtt_timeout;
  if (job.min_rtt_timeout) t.min_rtt_timeout = *job.min_rtt_timeout;
  if (job.max_rtt_timeout) t.max_rtt_timeout = *job.max_rtt_timeout;
  if (job.max_parallelism) t.max_parallelism = *job.max_parallelism;
  return t;
}

namespace {

bool is_open(PortState s) {
  return s == PortState::open;
}

bool host_answered(const HostResult& h) {
  return std::any_of(h.ports.begin(), h.ports.end(),
                     [](const PortResult& p) { return proves_host_up(p.reason); });
}

// Total silence means down only for techniques a live host answers on every unfiltered
// port (TechniqueInfo::silence_means_down). To FIN, NULL, Xmas and UDP an open port is
// silent, so a host all of whose ports are open|filtered may well be up: it gets a liveness
// check first (kLivenessPorts).
bool silence_means_down(Technique t) {
  return technique_info(t).silence_means_down;
}

// Nmap's default host discovery also sends a TCP ACK to port 80: a live host answers RST
// whether the port is open or closed. 443 is a second chance.
constexpr std::array<std::uint16_t, 2> kLivenessPorts{80, 443};

// Whether a re-probe by `confirm` can be expected to answer on a port in `p`'s state: the
// canaries of confirm_changes() must be ports the confirm technique hears back from. Every
// technique hears a closed port and an ICMP error; some (FIN, NULL, Xmas) get no answer from
// an open port (TechniqueInfo::open_port_answers).
bool answers_to(Technique confirm, const PortResult& p) {
  if (!proves_host_up(p.reason)) return false;
  return technique_info(confirm).open_port_answers || p.state == PortState::closed ||
         p.state == PortState::filtered;
}

// What each state allows a port to really be. Techniques name the same truth differently
// (a closed port is "closed" to SYN and connect, "unfiltered" to ACK; a dropped one
// "open|filtered" to FIN), so a re-probe by another technique is compared through this.
constexpr unsigned kReallyOpen = 1, kReallyClosed = 2, kReallyFiltered = 4;
unsigned possible(PortState s) {
  switch (s) {
    case PortState::open:
      return kReallyOpen;
    case PortState::closed:
      return kReallyClosed;
    case PortState::filtered:
      return kReallyFiltered;
    case PortState::unfiltered:
      return kReallyOpen | kReallyClosed;
    case PortState::open_filtered:
      return kReallyOpen | kReallyFiltered;
    case PortState::closed_filtered:
      return kReallyClosed | kReallyFiltered;
  }
  return 0;
}

// Whether a re-probe that saw `seen` confirms `change`. The same technique must see the new
// state exactly. Another technique's answer must fit the new state and rule out the old
// one: SYN's closed -> filtered is not confirmed by connect seeing closed, and ACK (open
// and closed are both "unfiltered" to it) can never confirm closed -> open.
bool confirms(const PortChange& change, PortState seen, bool same_technique) {
  if (same_technique) return seen == change.to;
  return (possible(seen) & possible(change.to)) != 0 &&
         (possible(seen) & possible(change.from)) == 0;
}

// One re-probe of `ports` on one host; empty when the result cannot be trusted
// (interrupted, failed, incomplete or inconclusive).
std::optional<HostResult> reprobe(const JobConfig& job, Technique technique,
                                  const AuthorizedScope& scope, const asio::ip::address& address,
                                  const PortList& ports, const JobEnvironment& env,
                                  bool paced = true) {
  TargetSet target;
  target.add(address.to_string(), TargetParseOptions{.resolve_names = false});
  ScanPlan plan;
  plan.technique = technique;
  plan.targets = &target;
  plan.ports = ports;
  plan.scope = scope;
  plan.timing = job_timing(job);
  plan.shared_rate = env.shared_rate;
  if (technique == Technique::udp && paced) plan.udp_pacing = job.udp_pace;  // as scanned
  CollectSink sink;
  RunControl control;
  control.stop = env.stop;
  const auto summary = engine_for(technique, env)->run(plan, sink, control);
  const bool usable = summary.error.empty() && !summary.interrupted && sink.hosts.size() == 1 &&
                      sink.hosts[0].complete && !sink.hosts[0].inconclusive;
  if (!usable) return std::nullopt;
  return std::move(sink.hosts[0]);
}

const PortResult* find_port(const HostResult& h, Proto proto, std::uint16_t port) {
  const auto it = std::find_if(h.ports.begin(), h.ports.end(), [&](const PortResult& p) {
    return p.proto == proto && p.port == port;
  });
  return it == h.ports.end() ? nullptr : &*it;
}

void add_port(PortList& ports, Proto proto, std::uint16_t port) {
  (proto == Proto::tcp ? ports.tcp : ports.udp).push_back(port);
}

void sort_ports(PortList& ports) {
  std::sort(ports.tcp.begin(), ports.tcp.end());
  std::sort(ports.udp.begin(), ports.udp.end());
}

// Re-probes the ports whose state changed; a change holds only if every re-probe confirms
// it (see confirms()). Ports that do not hold go back to their baseline state, so they
// neither become events nor move the baseline. Each round also re-probes up to two
// unchanged ports that answered ("canaries"): if none of them answers, the host has gone
// quiet (down, cut off, heavy loss) and its silence confirms nothing.
std::size_t confirm_changes(const JobConfig& job, const AuthorizedScope& scope, HostResult& host,
                            const HostSnapshot& baseline, const std::vector<PortChange>& changes,
                            const JobEnvironment& env) {
  const Technique technique = job.confirm_technique.value_or(job.technique);
  const bool same_technique = technique == job.technique;
  std::map<std::pair<Proto, std::uint16_t>, bool> holds;
  PortList ports;
  for (const auto& c : changes) {
    holds[{c.proto, c.port}] = true;
    add_port(ports, c.proto, c.port);
  }
  std::vector<std::pair<Proto, std::uint16_t>> canaries;
  for (const auto& p : host.ports) {
    if (canaries.size() == 2) break;
    if (answers_to(technique, p) && !holds.contains({p.proto, p.port})) {
      canaries.emplace_back(p.proto, p.port);
      add_port(ports, p.proto, p.port);
    }
  }
  sort_ports(ports);
  for (int round = 0; round < job.confirmations; ++round) {
    auto seen = reprobe(job, technique, scope, host.address, ports, env);
    if (seen && !canaries.empty() &&
        std::none_of(canaries.begin(), canaries.end(), [&](const auto& k) {
          const PortResult* p = find_port(*seen, k.first, k.second);
          return p && proves_host_up(p->reason);
        })) {
      seen.reset();  // the host went quiet: nothing it did not say can be confirmed
    }
    for (const auto& c : changes) {
      bool& ok = holds[{c.proto, c.port}];
      const PortResult* p = seen ? find_port(*seen, c.proto, c.port) : nullptr;
      if (!p || !confirms(c, p->state, same_technique)) ok = false;
    }
  }
  std::size_t reverted = 0;
  for (auto& p : host.ports) {
    const auto it = holds.find({p.proto, p.port});
    if (it == holds.end() || it->second) continue;
    if (const auto before = baseline.state_of(p.proto, p.port)) {
      p.state = before->state;
      p.reason = before->reason;
      ++reverted;
    }
  }
  return reverted;
}

// A host's first scan becomes its baseline with no confirmation behind it, so a port that
// merely lost its answers would later "change" to its real state. Its silent ports are
// probed again first (as many rounds as the job confirms changes, at least one), and any
// that answer take the answered state. Bounded: a host with more silent ports than
// kMaxFirstScanReprobe keeps its first-scan silence.
std::size_t settle_first_scan(const JobConfig& job, const AuthorizedScope& scope, HostResult& host,
                              const JobEnvironment& env) {
  constexpr std::size_t kMaxFirstScanReprobe = 16384;
  PortList silent;
  for (const auto& p : host.ports) {
    if (p.reason == Reason::no_response) add_port(silent, p.proto, p.port);
  }
  if (silent.empty() || silent.tcp.size() + silent.udp.size() > kMaxFirstScanReprobe) return 0;
  sort_ports(silent);
  std::size_t answered = 0;
  for (int round = 0; round < std::max(1, job.confirmations); ++round) {
    const auto seen = reprobe(job, job.technique, scope, host.address, silent, env);
    if (!seen) continue;
    for (auto& p : host.ports) {
      if (p.reason != Reason::no_response) continue;
      const PortResult* now = find_port(*seen, p.proto, p.port);
      if (now && now->reason != Reason::no_response) {
        p.state = now->state;
        p.reason = now->reason;
        ++answered;
      }
    }
  }
  return answered;
}

struct HostRef {
  asio::ip::address address;
  std::string hostname;
};

// Hosts named in the log per run when a resharding moves them; the rest are counted.
constexpr std::size_t kNamedMoves = 10;

// The job's shard now and at its last commit ([agent] shard changed in between: hosts
// moved between agents). Neither direction makes events.
struct ShardMove {
  Shard before;
  Shard now;
  std::set<std::string, std::less<>> pending;  // gained earlier, not yet scanned cleanly
  std::string problem;  // the stored shard could not be read: nothing is taken as moved
  [[nodiscard]] bool resharded() const { return before != now; }
  [[nodiscard]] bool gained(std::string_view key) const {
    // Cheap tests first: no hash unless something moved.
    return (pending.contains(key) || (resharded() && !before.owns(key))) && now.owns(key);
  }
  [[nodiscard]] bool lost(std::string_view key) const {
    return resharded() && before.owns(key) && !now.owns(key);
  }
  [[nodiscard]] std::string describe() const {
    return "shard " + now.text() + ", was " + before.text();
  }
};

ShardMove shard_move(const Store& store, const JobConfig& job, const Shard& now) {
  ShardMove m{now, now, {}, {}};
  if (const auto text = store.job_shard(job.name)) {
    try {
      m.before = parse_shard(*text);
    } catch (const InputError& e) {
      // A hand-edited file: take nothing as moved (stored states are compared as usual).
      m.problem = std::string("the database's shard of the job is unreadable (") + e.what() +
                  "): hosts are compared with their stored state as if the shard were unchanged";
    }
  } else if (!store.known_hosts(job.name).empty()) {
    m.before = Shard{};  // committed before shards existed: the whole
  }
  for (auto& key : store.pending_adoptions(job.name)) m.pending.insert(std::move(key));
  return m;
}

// Takes each host as the engine finishes it: hosts without a change are reduced to their
// compact state at once, so a job of many hosts x 65535 ports never holds every PortResult
// until commit; the few hosts with changes are kept whole for the confirmation re-probes.
class JobSink final : public ReportSink {
 public:
  struct Changed {
    HostResult result;
    HostSnapshot baseline;
    std::vector<PortChange> changes;
  };

  // `partial`: the scan verifies a share of the job's ports (udp-coverage). `moves`: the
  // hosts this run's shard gained since the job's last commit.
  JobSink(const JobConfig& job, const Store& store, Logger& log, JobRunResult& result, bool partial,
          const ShardMove& moves)
      : job_(job), store_(store), log_(log), result_(result), partial_(partial), moves_(moves) {}

  void begin(const ScanInfo&) override {}
  void end(const ScanSummary&) override {}
  void host(const HostResult& h) override {
    const std::string key = host_key(h);
    refs[key] = HostRef{h.address, h.hostname};
    if (h.refused_by_scope) {
      // Named in the log up to kNamedRefusals per run (a /16 out of scope must not write
      // 65536 lines); run_job adds the count.
      constexpr std::size_t kNamedRefusals = 10;
      if (++result_.targets_refused <= kNamedRefusals) {
        log_.warn("job " + job_.name + ": host " + h.address.to_string() + ": " + h.note);
      }
      record(h, h.note, ScannedHost::Presence::unknown);
      return;
    }
    if (h.complete && h.inconclusive && h.unverified_ports > 0) {
      // Paced UDP out of time: the ports it verified are compared and stored, the others
      // keep their state and come first next time.
      ++result_.hosts_inconclusive;
      log_.warn("job " + job_.name + ": host " + h.address.to_string() + " " + h.note +
                "; its verified ports are compared");
      compare(h);
      return;
    }
    if (!h.complete || h.inconclusive) {
      // Not scanned fully, or silence that may be loss or rate limiting: it must not move
      // the baseline or page. A host that answered anything is up all the same.
      const auto presence =
          host_answered(h) ? ScannedHost::Presence::answered : ScannedHost::Presence::unknown;
      if (h.inconclusive) ++result_.hosts_inconclusive;
      if (h.complete) {
        skip(h, "inconclusive, not compared: " + h.note, presence);
      } else {
        skip(h, h.note, presence, ": ");
      }
      return;
    }
    if (h.status == HostStatus::down) {
      // Host discovery heard nothing and no baseline kept it (scan_even_if_silent): not
      // one port was probed.
      mark_down(h, "",
                "no reply to host discovery (ICMP echo, TCP SYN 443, TCP ACK 80; "
                "connect scans: connect to 80 and 443)");
      return;
    }
    if (!host_answered(h)) {
      // Not one reply: the host is down or cut off (nmap would call it down). Every port
      // "filtered" would be a flood of false events, and as a first scan a baseline that
      // pages for every port when the host comes back.
      if (silence_means_down(job_.technique)) {
        mark_down(h, "");
      } else {
        silent.push_back(h);  // up or down: the liveness check after the scan decides
      }
      return;
    }
    compare(h);
  }

  // Compares a conclusive host that answered with its baseline.
  void compare(const HostResult& h) {
    const std::string key = host_key(h);
    if (moves_.gained(key)) {
      // Another agent watched it: what this store holds, if anything, is stale.
      // Named up to kNamedMoves per run (a resharded /16 must not write thousands of
      // lines); run_job adds the count.
      if (++result_.hosts_adopted <= kNamedMoves) {
        log_.info("job " + job_.name + ": host " + key + " moved to this agent by resharding (" +
                  moves_.describe() + "): its baseline is taken without events");
      }
      first_seen.push_back(h);
      return;
    }
    HostSnapshot baseline = store_.baseline(job_.name, key);
    if (!baseline.exists) {
      first_seen.push_back(h);
      return;
    }
    auto changes = diff_host(baseline, h);
    if (changes.empty()) {
      scanned.push_back(reduce(h));
      return;
    }
    result_.changes_seen += changes.size();
    changed.push_back({h, std::move(baseline), std::move(changes)});
  }

  // Recorded as a silent host: a known host is down (the store counts it and decides
  // when it has gone silent); an address that never answered is not a host at all.
  void mark_down(const HostResult& h, const std::string& more, const std::string& what = {}) {
    const std::string note =
        "down or unreachable, not compared: " +
        (what.empty() ? "no reply to any of " + std::to_string(h.ports.size()) + " probed ports"
                      : what) +
        more;
    if (moves_.gained(host_key(h))) {
      // Gained by resharding and silent: whatever this store knew of it is stale, so its
      // silence proves nothing here (no host-gone-silent from an old record); a stale
      // state waits for the host's first clean scan to be replaced.
      if (store_.known_host(job_.name, host_key(h))) adopt_later.insert(host_key(h));
      record(h, note, ScannedHost::Presence::unknown);
    } else if (store_.known_host(job_.name, host_key(h))) {
      skip(h, note, ScannedHost::Presence::silent);
    } else {
      // A subnet's unused addresses: one debug line each, no warning.
      log_.debug("job " + job_.name + ": address " + h.address.to_string() +
                 " answered nothing (never seen up)");
      record(h, note, ScannedHost::Presence::silent);
    }
  }

  // A complete host's compact state, to be merged into the stored one when partial.
  ScannedHost reduce(const HostResult& h) const {
    auto host = ScannedHost::from(h, job_.technique);
    host.partial = partial_ || h.unverified_ports > 0;
    host.adopted = moves_.gained(host.host);
    return host;
  }

  std::vector<ScannedHost> scanned;
  std::vector<Changed> changed;
  std::vector<HostResult> first_seen;  // no baseline yet: settled before it becomes one
  std::vector<HostResult> silent;      // FIN/NULL/Xmas/UDP hosts that answered nothing
  std::map<std::string, HostRef> refs;
  std::set<std::string> adopt_later;  // gained, not scanned cleanly: CommitOptions::adopt_later

 private:
  // Recorded as an incomplete host with `note`: its baseline stays as it was. Logged as
  // "host ADDRESS" + separator + note.
  void skip(const HostResult& h, const std::string& note, ScannedHost::Presence presence,
            std::string_view separator = " ") {
    // A gained host not scanned cleanly is adopted by its first clean scan.
    if (moves_.gained(host_key(h)) && (presence == ScannedHost::Presence::answered ||
                                       store_.known_host(job_.name, host_key(h)))) {
      adopt_later.insert(host_key(h));
    }
    log_.warn("job " + job_.name + ": host " + h.address.to_string() + std::string(separator) +
              note);
    record(h, note, presence);
  }

  void record(const HostResult& h, const std::string& note, ScannedHost::Presence presence) {
    HostResult skipped;
    skipped.address = h.address;
    skipped.hostname = h.hostname;
    skipped.complete = false;
    skipped.note = note;
    auto host = ScannedHost::from(skipped, job_.technique);
    host.presence = presence;
    scanned.push_back(std::move(host));
  }

  const JobConfig& job_;
  const Store& store_;
  Logger& log_;
  JobRunResult& result_;
  bool partial_;
  const ShardMove& moves_;
};

// udp-coverage: the hosts whose verifications count, those that answered within a period
// and an interval (a host down for longer must not hold the rotation back).
std::chrono::system_clock::time_point coverage_since(const JobConfig& job,
                                                     std::chrono::system_clock::time_point now) {
  return now - std::chrono::duration_cast<std::chrono::system_clock::duration>(job.udp_coverage +
                                                                               job.interval);
}

// udp-coverage: the share of the job's UDP ports this run verifies: those some host never
// verified first, then those verified longest ago (ties: the ones the other hosts verified
// longest ago, then port order).
std::vector<std::uint16_t> coverage_share(const JobConfig& job, const Store& store,
                                          const std::vector<std::uint16_t>& ports,
                                          std::chrono::system_clock::time_point now) {
  const std::size_t share = job.udp_ports_per_scan(ports.size());
  if (share >= ports.size()) return ports;
  const auto c = store.port_coverage(job.name, Proto::udp, ports, coverage_since(job, now));
  std::vector<std::size_t> order(ports.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (!c.oldest.empty()) {
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return std::make_tuple(!c.never[a], c.oldest[a], c.mean_ms[a]) <
             std::make_tuple(!c.never[b], c.oldest[b], c.mean_ms[b]);
    });
  }
  std::vector<std::uint16_t> chosen;
  for (std::size_t k = 0; k < share; ++k) chosen.push_back(ports[order[k]]);
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

AgentMetrics::UdpCoverage coverage_of(const JobConfig& job, const Store& store,
                                      const std::vector<std::uint16_t>& ports,
                                      std::chrono::system_clock::time_point now) {
  const auto c = store.port_coverage(job.name, Proto::udp, ports, coverage_since(job, now));
  AgentMetrics::UdpCoverage out;
  out.ports = ports.size();
  out.period_seconds = job.udp_coverage.count();
  auto oldest = now;
  for (std::size_t i = 0; i < c.oldest.size(); ++i) {
    oldest = std::min(oldest, c.oldest[i]);
    const double age = std::chrono::duration<double>(now - c.oldest[i]).count();
    if (!c.never[i] && age <= out.period_seconds) ++out.verified;
  }
  out.oldest_verification = std::chrono::duration<double>(oldest.time_since_epoch()).count();
  return out;
}

// A service summary as a label value: printable ASCII (a certificate name from the target
// may hold any bytes, and one label that is not UTF-8 makes Prometheus reject the scrape),
// at most 128 bytes (a long one must not bloat every series of the family).
std::string service_label(const ServiceIdentity& identity) {
  std::string text = summary(identity);
  for (char& c : text) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  if (text.size() > 128) text = text.substr(0, 125) + "...";
  return text;
}

// Open ports and state counts of the job's hosts as stored now: hosts that were
// inconclusive this time keep showing their last good state.
JobSnapshot snapshot_of(const JobConfig& job, const Store& store,
                        const std::map<std::string, HostRef>& hosts) {
  JobSnapshot snap;
  snap.job = job.name;
  std::map<std::pair<Proto, PortState>, std::uint64_t> counts;
  // When the certificate last read on each port expires (portvigil_tls_certificate_expiry_...).
  std::map<std::pair<std::string, std::uint16_t>, std::chrono::system_clock::time_point> expiry;
  for (const auto& r : store.port_services(job.name)) {
    if (r.identity.tls) expiry[{r.host, r.port}] = r.identity.tls->not_after;
  }
  // What the events last said answered on each TCP port, with when (portvigil_port_
  // unexpected_open_service_info): shown only if said since the port last opened.
  std::map<std::pair<std::string, std::uint16_t>,
           std::pair<std::chrono::system_clock::time_point, std::string>>
      answered;
  for (const auto& r : store.event_services(job.name)) {
    answered[{r.host, r.port}] = {r.identified, service_label(r.identity)};
  }
  for (const auto& [key, h] : hosts) {
    const HostSnapshot base = store.baseline(job.name, key);
    if (!base.exists) continue;
    for (const auto& ps : base.protos) {
      counts[{ps.proto, ps.usual.state}] += ps.port_count() - ps.exceptions.size();
      for (const auto& [port, obs] : ps.exceptions) ++counts[{ps.proto, obs.state}];
    }
    for (const auto& [proto, port] : base.open_ports()) {
      const bool expected = job.expects_open(h.address, h.hostname, proto, port) ||
                            store.is_accepted(job.name, key, proto, port);
      OpenPort open{key, proto, port, !expected,
                    expected ? std::nullopt : store.open_since(job.name, key, proto, port)};
      if (const auto it = expiry.find({key, port}); proto == Proto::tcp && it != expiry.end()) {
        open.tls_not_after = it->second;
      }
      if (const auto it = answered.find({key, port}); proto == Proto::tcp && !expected &&
                                                      it != answered.end() && open.open_since &&
                                                      it->second.first >= *open.open_since) {
        open.service = it->second.second;
      }
      snap.open_ports.push_back(std::move(open));
    }
  }
  for (const auto& [key, n] : counts) snap.port_counts.emplace_back(key.first, key.second, n);
  return snap;
}

}  // namespace

JobSnapshot stored_snapshot(const JobConfig& job, const Store& store, const Shard& shard) {
  std::map<std::string, HostRef> refs;
  const ShardMove moves = shard_move(store, job, shard);
  for (const auto& h : store.hosts(job.name)) {
    // Another agent's since a resharding, or gained and its stored state stale until its
    // first scan here.
    if (!shard.owns(h.host) || moves.gained(h.host)) continue;
    asio::error_code ec;
    const auto address = asio::ip::make_address(h.address, ec);
    // A host stored under a name keeps it for the policy's hostname entries.
    const bool named = h.host != h.address;
    refs[h.host] = HostRef{ec ? asio::ip::address{} : address, named ? h.host : std::string{}};
  }
  return snapshot_of(job, store, refs);
}

// Identification reads at most this many opened ports per run (the rest of a burst get
// their events without a service), and watch-services as many watched ones (those read
// longest ago first): with 64 at a time and under 3 s each, each adds at most ~12 s.
constexpr std::size_t kIdentifiedPortsPerRun = 256;
constexpr std::size_t kWatchedPortsPerRun = 256;

// What identification hands the commit.
struct Identified {
  std::vector<CommitOptions::OpenedService> openings;
  std::vector<CommitOptions::ServiceCheck> checks;  // watch-services
};

// What answers on the TCP ports this scan's commit will report opened (#12), and with
// watch-services on the open ports whose last read is due; read before the commit so that
// the events carry it. A read that differs from the stored one is read once more, and only
// a second read that agrees with the first is a change. Never fails the run: network
// trouble is an outcome, and a database that cannot plan will fail the commit itself.
Identified identify_ports(const JobConfig& job, const Store& store, std::int64_t scan_id,
                          std::span<const ScannedHost> scanned,
                          const std::map<std::string, HostRef>& refs, const AuthorizedScope& scope,
                          std::chrono::system_clock::time_point finished,
                          const CommitOptions& options, const JobEnvironment& env, Logger& log) {
  Identified out;
  if (!job.identify_services || !finds_open_tcp_ports(job.technique)) return out;
  if (!env.identify && env.io) return out;  // a simulated network: nothing real to connect to
  std::vector<Store::Opening> openings;
  std::vector<Store::PortServiceRecord> stored;
  try {
    openings = store.planned_tcp_openings(scan_id, scanned, finished, options);
    if (job.watch_services) stored = store.port_services(job.name);
  } catch (const StorageError& e) {
    log.warn("job " + job.name + ": cannot plan service identification: " + e.what());
    return out;
  }
  IdentifyOptions io;
  io.scope = scope;  // checked again where the connections are made
  io.never_probe.insert(io.never_probe.end(), job.never_probe.begin(), job.never_probe.end());
  io.stop = env.stop;
  if (job.max_parallelism) io.concurrency = std::min(io.concurrency, *job.max_parallelism);
  struct Port {
    std::string host;
    std::uint16_t port = 0;
    const ServiceIdentity* before = nullptr;  // watched ports: the stored read, if any
  };
  std::vector<ServiceTarget> targets;
  std::vector<Port> ports;
  const auto add = [&](const std::string& host, std::uint16_t port, const ServiceIdentity* before) {
    const auto it = refs.find(host);
    if (it == refs.end() || it->second.address.is_unspecified()) return;
    targets.push_back({it->second.address, port, it->second.hostname});
    ports.push_back({host, port, before});
  };
  // A host listed twice (overlapping targets) plans its openings twice: read each once.
  std::set<std::pair<std::string, std::uint16_t>> opened;
  for (const auto& o : openings) {
    if (opened.size() == kIdentifiedPortsPerRun) break;
    if (opened.emplace(o.host, o.port).second) add(o.host, o.port, nullptr);
  }
  const std::size_t opening_count = ports.size();
  if (job.watch_services) {
    for (const auto& o : openings) opened.emplace(o.host, o.port);
    std::map<std::pair<std::string, std::uint16_t>, const Store::PortServiceRecord*> last;
    for (const auto& r : stored) last[{r.host, r.port}] = &r;
    struct Due {
      std::chrono::system_clock::time_point read;  // epoch: never read
      const std::string* host;
      std::uint16_t port;
      const ServiceIdentity* before;
    };
    std::vector<Due> due;
    const std::vector<std::uint16_t>& never = io.never_probe;
    for (const ScannedHost& h : scanned) {
      // An adopted host's baseline is taken without events: its reads start afresh.
      if (!h.complete || h.adopted) continue;
      for (const auto& [proto, port] : h.state.open_ports()) {
        if (proto != Proto::tcp || std::find(never.begin(), never.end(), port) != never.end()) {
          continue;  // never-probe ports never get a read: they would always be due
        }
        // `opened` also holds what is due already: a host listed twice is read once.
        if (!opened.emplace(h.host, port).second) continue;
        const auto it = last.find({h.host, port});
        if (it == last.end()) {
          due.push_back({{}, &h.host, port, nullptr});
        } else if (finished - it->second->identified >= *job.watch_services) {
          due.push_back({it->second->identified, &h.host, port, &it->second->identity});
        }
      }
    }
    std::stable_sort(due.begin(), due.end(),
                     [](const Due& a, const Due& b) { return a.read < b.read; });
    if (due.size() > kWatchedPortsPerRun) due.resize(kWatchedPortsPerRun);
    for (const auto& d : due) add(*d.host, d.port, d.before);
  }
  if (targets.empty()) return out;

  // A stop cuts every read short (and marks the ports not reached yet as not probed), and a
  // failure is no read at all: neither may be stored as what answers.
  bool unusable = false;
  const auto identify = [&](const std::vector<ServiceTarget>& t) {
    std::vector<ServiceIdentity> read;
    try {
      read = env.identify ? env.identify(t, io) : identify_services(t, io);
    } catch (const std::exception& e) {  // not the network (that is an outcome): TLS setup, memory
      log.warn("job " + job.name + ": service identification failed: " + e.what());
      unusable = true;
    }
    if (read.size() != t.size() || (env.stop != nullptr && env.stop->load())) unusable = true;
    read.resize(t.size());
    return read;
  };
  const auto started = std::chrono::steady_clock::now();
  const auto first = identify(targets);
  if (unusable) {
    log.info("job " + job.name + ": service identification cut short: events without services");
    return out;
  }
  std::size_t probed = 0;
  for (std::size_t i = 0; i < opening_count; ++i) {
    out.openings.push_back({ports[i].host, ports[i].port, first[i]});
    if (first[i].outcome != ServiceOutcome::not_probed &&
        first[i].outcome != ServiceOutcome::out_of_scope) {
      ++probed;
    }
  }
  // Watched ports whose read differs from the stored one: read again.
  std::vector<std::size_t> differ;
  std::vector<ServiceTarget> again;
  for (std::size_t i = opening_count; i < ports.size(); ++i) {
    if (ports[i].before != nullptr && conclusive(first[i]) &&
        !same_service(*ports[i].before, first[i])) {
      differ.push_back(i);
      again.push_back(targets[i]);
    }
  }
  const auto second = again.empty() ? std::vector<ServiceIdentity>{} : identify(again);
  if (unusable) {  // the re-checks were cut short: the openings' reads still stand
    out.checks.clear();
    return out;
  }
  std::size_t next = 0;
  std::size_t changed = 0;
  for (std::size_t i = opening_count; i < ports.size(); ++i) {
    const Port& p = ports[i];
    if (next < differ.size() && differ[next] == i) {
      const ServiceIdentity& recheck = second[next++];
      if (!conclusive(recheck)) continue;  // no verdict: the stored read stays, unrefreshed
      if (same_service(first[i], recheck)) {
        out.checks.push_back({p.host, p.port, recheck, true});
        ++changed;
      } else if (same_service(*p.before, recheck)) {
        out.checks.push_back({p.host, p.port, recheck, false});  // the first read was a blip
      }
      continue;
    }
    if (conclusive(first[i])) out.checks.push_back({p.host, p.port, first[i], false});
  }
  log.info("job " + job.name + ": identified " + std::to_string(probed) + " of " +
           std::to_string(openings.size()) + " opened TCP ports" +
           (job.watch_services ? ", re-read " + std::to_string(ports.size() - opening_count) +
                                     " watched ones (" + std::to_string(changed) + " changed)"
                               : std::string()) +
           " in " +
           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - started)
                              .count()) +
           " ms");
  return out;
}

AuthorizedScope active_scope(const Config& config, std::chrono::system_clock::time_point now) {
  AuthorizedScope scope;
  for (const auto& a : config.authorization) {
    if (a.active(now)) scope.add(parse_cidr(a.cidr));
  }
  return scope;
}

JobRunResult run_job(const Config& config, const JobConfig& job, Store& store,
                     const JobEnvironment& env) {
  Logger fallback;
  Logger& log = env.log ? *env.log : fallback;
  JobRunResult result;
  const auto started = std::chrono::system_clock::now();
  const AuthorizedScope scope = active_scope(config, started);
  for (const auto& a : config.authorization) {
    if (!a.active(started)) {
      log.warn("job " + job.name + ": authorization " + a.cidr + " (" + a.origin + ", owner \"" +
               a.owner + "\", ticket \"" + a.ticket + "\") expired at " + a.expires_text +
               ": its targets are no longer scanned");
    }
  }
  result.scan_id = store.begin_scan(job.name, job.technique, started);

  auto fail = [&](const std::string& why) {
    result.error = why;
    store.mark_incomplete(result.scan_id, why, std::chrono::system_clock::now());
    return result;
  };
  const auto interrupted = [&] {
    return fail(env.window_ended && env.window_ended->load() ? "interrupted (its scan window ended)"
                                                             : "interrupted (agent stopping)");
  };

  TargetSet targets;
  ScanPlan plan;
  try {
    const TargetParseOptions parse{.resolve_names = true};
    for (const auto& t : job.targets) targets.add(t, parse, "job " + job.name);
    for (const auto& x : job.exclude) targets.exclude(x, parse, "job " + job.name + " exclude");
    targets.select(config.agent.shard);
    const bool tcp = proto_of(job.technique) == Proto::tcp;
    plan.ports =
        job.ports.empty() ? top_ports(job.top_ports, tcp, !tcp) : parse_ports(job.ports, tcp, !tcp);
    if (!job.exclude_ports.empty()) {
      exclude_ports(plan.ports, parse_ports(job.exclude_ports, tcp, !tcp));
    }
  } catch (const InputError& e) {
    return fail(std::string("bad job input: ") + e.what());
  }
  plan.technique = job.technique;
  plan.targets = &targets;
  plan.scope = scope;  // hostname targets resolving outside it are refused by the engine
  plan.timing = job_timing(job);
  plan.shared_rate = env.shared_rate;
  plan.command_line = "agent job " + job.name;
  const bool paced = job.technique == Technique::udp && job.udp_pace.enabled;
  const std::vector<std::uint16_t> job_udp_ports = plan.ports.udp;
  if (paced) {
    plan.udp_pacing = job.udp_pace;
    // The paced probing must leave the schedule room: a host it has not finished by then is
    // inconclusive, its verified ports are compared, and the others come first next time.
    plan.time_budget = kUdpPaceBudget * job.interval;
    plan.ports.udp = coverage_share(job, store, job_udp_ports, started);
  }
  result.udp_ports_scanned = plan.ports.udp.size();

  plan.discovery = job.host_discovery ? HostDiscovery::ping : HostDiscovery::skip;
  // Discovery never hides a host the job knows (one that answered a scan before, with or
  // without a baseline): it is port-scanned whatever discovery hears, so its silence is
  // judged as it always was (mark_down, host-gone-silent).
  std::set<std::string> tracked;
  for (auto& h : store.known_hosts(job.name)) tracked.insert(std::move(h));
  plan.scan_even_if_silent = [&tracked](const Target& t) {
    return tracked.count(host_key(t.address, t.hostname)) > 0;
  };

  const bool partial = paced && plan.ports.udp.size() < job_udp_ports.size();
  const ShardMove moves = shard_move(store, job, config.agent.shard);
  if (!moves.problem.empty()) log.warn("job " + job.name + ": " + moves.problem);
  JobSink sink(job, store, log, result, partial, moves);
  RunControl control;
  control.stop = env.stop;
  try {
    RawOptions raw;
    raw.io = env.io;
    result.summary = make_scan_engine(job.technique, raw)->run(plan, sink, control);
  } catch (const std::exception& e) {
    return fail(std::string("scan failed: ") + e.what());
  }
  if (result.summary.interrupted) return interrupted();
  if (!result.summary.error.empty()) return fail("scan failed: " + result.summary.error);
  if (result.targets_refused > 0) {
    const std::string refused = std::to_string(result.targets_refused) + " of " +
                                std::to_string(result.summary.hosts_total) +
                                " target addresses are outside every active authorization "
                                "(expired, not yet valid or never authorized)";
    // Nothing scanned because of scope is a failed scan, not an empty success.
    if (result.targets_refused >= result.summary.hosts_total) {
      return fail("nothing scanned: " + refused);
    }
    log.warn("job " + job.name + ": " + refused + ": not scanned");
  }

  // A host silent to FIN/NULL/Xmas/UDP may have every port open: it is compared only if it
  // answers a TCP ACK (any RST proves it is up).
  for (const auto& h : sink.silent) {
    if (env.stop && env.stop->load()) return interrupted();
    PortList liveness;
    liveness.tcp.assign(kLivenessPorts.begin(), kLivenessPorts.end());
    const auto seen = reprobe(job, Technique::ack, scope, h.address, liveness, env);
    bool up = seen && host_answered(*seen);
    if (!up && partial) {
      // This share of the ports said nothing: the host's known open UDP ports may.
      // One fast probe each (a reply proves it up; silence proves nothing either way).
      PortList known;
      for (const auto& [proto, port] : store.baseline(job.name, host_key(h)).open_ports()) {
        if (proto == Proto::udp && known.udp.size() < 4 &&
            !std::binary_search(plan.ports.udp.begin(), plan.ports.udp.end(), port)) {
          known.udp.push_back(port);
        }
      }
      if (!known.udp.empty()) {
        const auto again = reprobe(job, Technique::udp, scope, h.address, known, env, false);
        up = again && host_answered(*again);
      }
    }
    if (up) {
      sink.compare(h);
    } else {
      sink.mark_down(h, partial ? " nor to TCP ACK probes of ports 80 and 443 nor on its open "
                                  "UDP ports outside this scan's share"
                                : " nor to TCP ACK probes of ports 80 and 443");
    }
  }
  sink.silent.clear();

  // Re-probe what changed, only now that the scan itself is over.
  for (auto& c : sink.changed) {
    if (env.stop && env.stop->load()) return interrupted();
    if (job.confirmations > 0) {
      result.changes_unconfirmed +=
          confirm_changes(job, scope, c.result, c.baseline, c.changes, env);
    }
    sink.scanned.push_back(sink.reduce(c.result));
  }
  sink.changed.clear();
  for (auto& h : sink.first_seen) {
    if (env.stop && env.stop->load()) return interrupted();
    // Paced UDP silence is already proof; anything else is settled by re-probes first.
    if (!paced) settle_first_scan(job, scope, h, env);
    sink.scanned.push_back(sink.reduce(h));
  }
  sink.first_seen.clear();
  if (env.stop && env.stop->load()) return interrupted();

  const EventPolicy policy = [&](const ChangeContext& c) {
    const auto it = sink.refs.find(std::string(c.host));
    bool should_be_open = c.accepted;
    if (it != sink.refs.end()) {
      should_be_open = should_be_open || job.expects_open(it->second.address, it->second.hostname,
                                                          c.change.proto, c.change.port);
    }
    return is_open(c.change.to) == should_be_open ? Verdict::expected : Verdict::unexpected;
  };
  // Without a policy, what a host exposed when first seen is what it is expected to
  // expose: only ports opened since then count as unexpected (until accepted).
  CommitOptions options;
  options.accept_first_baseline = !job.has_policy;
  options.silent_after = std::chrono::ceil<std::chrono::seconds>(job.host_silent_after);
  if (paced) {
    options.record_verified = true;
    options.job_ports = job_udp_ports;
    // The first coverage period and a scan: the share that completes it may start late.
    options.first_coverage =
        std::chrono::ceil<std::chrono::seconds>(job.udp_coverage + job.interval);
  }
  options.shard = config.agent.shard.text();
  options.adopt_later.assign(sink.adopt_later.begin(), sink.adopt_later.end());
  // The events' time; the identification below plans with it as the commit will.
  const auto finished = std::chrono::system_clock::now();
  // Identification connects after the scan: the authorizations in force now apply. A stop
  // during it ends it within 0.1 s, and the scan is committed with what it read.
  Identified identified = identify_ports(job, store, result.scan_id, sink.scanned, sink.refs,
                                         active_scope(config, std::chrono::system_clock::now()),
                                         finished, options, env, log);
  options.services = std::move(identified.openings);
  options.service_checks = std::move(identified.checks);
  options.watch_services = job.watch_services.has_value();
  result.services_identified = options.services.size();
  result.services_watched = options.service_checks.size();
  CommitSummary committed;
  try {
    result.events = store.commit_scan(result.scan_id, sink.scanned, result.summary.counters,
                                      finished, policy, options, &committed);
  } catch (const StorageError& e) {
    // The commit rolled back: record the scan incomplete now rather than leave it 'running'
    // until the next start (best effort: the disk may be what failed).
    try {
      store.mark_incomplete(result.scan_id, std::string("commit failed: ") + e.what(),
                            std::chrono::system_clock::now());
    } catch (const StorageError&) {
    }
    throw;
  }
  result.hosts_down = committed.hosts_down;
  result.hosts_gone_silent = committed.hosts_gone_silent;
  result.hosts_appeared = committed.hosts_appeared;
  result.addresses_unused = committed.addresses_unused;
  for (const auto& e : result.events) {
    if (e.kind == EventKind::host_appeared) {
      log.warn("job " + job.name + ": new host " + e.host + " appeared with " +
               std::to_string(e.ports.size()) + " open ports");
    } else if (e.kind == EventKind::host_gone_silent) {
      log.warn("job " + job.name + ": host " + e.host + " has answered nothing for " +
               std::to_string(options.silent_after.count()) + "s or more (host-gone-silent)");
    }
  }
  if (result.hosts_adopted > kNamedMoves) {
    log.info("job " + job.name + ": " + std::to_string(result.hosts_adopted) +
             " hosts in all moved to this agent by resharding (" + moves.describe() +
             "): their baselines are taken without events");
  }
  if (moves.resharded()) {
    // Hosts now another agent's: no longer scanned here, and gone from this agent's metrics
    // with this run (snapshot_of covers the hosts scanned). Their history stays stored.
    for (const auto& h : store.hosts(job.name)) {
      if (!moves.lost(h.host)) continue;
      if (++result.hosts_retired <= kNamedMoves) {
        log.info("job " + job.name + ": host " + h.host +
                 " moved to another agent by resharding (" + moves.describe() +
                 "): no longer scanned or exported here");
      }
    }
    if (result.hosts_retired > kNamedMoves) {
      log.info("job " + job.name + ": " + std::to_string(result.hosts_retired) +
               " hosts in all moved to other agents by resharding (" + moves.describe() + ")");
    }
  }
  result.targets_owned = result.summary.hosts_total;
  result.complete = true;
  // Gained hosts still waiting for a clean scan keep another era's state: not exported.
  for (const auto& key : sink.adopt_later) sink.refs.erase(key);
  result.snapshot = snapshot_of(job, store, sink.refs);
  if (paced) {
    result.udp_coverage = coverage_of(job, store, job_udp_ports, std::chrono::system_clock::now());
  }
  return result;
}

}  // namespace portvigil
