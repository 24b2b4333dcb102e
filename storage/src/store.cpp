#include "portvigil/storage/store.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <system_error>
#include <utility>

#include "codec.hpp"
#include "portvigil/common/shard.hpp"
#include "schema.hpp"
#include "sqlite.hpp"

namespace portvigil {

using storage_detail::Database;
using storage_detail::Query;
using storage_detail::Transaction;
using namespace storage_detail::codec;
using Clock = std::chrono::system_clock;

namespace {
constexpr std::array<std::string_view, 4> kEventKindNames{"port", "host-appeared",
                                                          "host-gone-silent", "service-changed"};
// A service's columns in event_services and port_services, in bind_service's order; with a
// table alias for SELECTs that join them.
#define PORTVIGIL_SERVICE_COLUMNS(a)                                                     \
  a ".outcome, " a ".protocol, " a ".banner, " a ".banner_sha256, " a ".tls_version, " a \
    ".tls_subject_cn, " a ".tls_sans, " a ".tls_issuer_cn, " a ".tls_not_before_ms, " a  \
    ".tls_not_after_ms, " a ".tls_self_signed, " a ".tls_sha256, " a ".http_status, " a  \
    ".http_status_line, " a ".http_server "
// event_chains' proto of an event row `e` (assign_change_id).
constexpr std::string_view kChainProto =
    "CASE WHEN e.kind = 'service-changed' THEN e.proto || '-service' ELSE e.proto END";
constexpr std::string_view kServiceColumnNames =
    "outcome, protocol, banner, banner_sha256, tls_version, tls_subject_cn, tls_sans, "
    "tls_issuer_cn, tls_not_before_ms, tls_not_after_ms, tls_self_signed, tls_sha256, "
    "http_status, http_status_line, http_server";

std::optional<ServiceOutcome> outcome_from(std::string_view text) {
  for (int i = 0; i <= static_cast<int>(ServiceOutcome::timed_out); ++i) {
    const auto o = static_cast<ServiceOutcome>(i);
    if (text == to_string(o)) return o;
  }
  return std::nullopt;
}

// The service of a row whose event_services columns start at `col`; none when it has no
// service row (or one this version cannot read).
std::optional<ServiceIdentity> read_service(const Query& q, int col) {
  if (q.is_null(col)) return std::nullopt;
  const auto outcome = outcome_from(q.text(col));
  if (!outcome) return std::nullopt;
  ServiceIdentity s;
  s.outcome = *outcome;
  s.protocol = q.text(col + 1);
  s.banner = q.text(col + 2);
  s.banner_sha256 = q.text(col + 3);
  if (!q.is_null(col + 4)) {
    TlsCertificate c;
    c.version = q.text(col + 4);
    c.subject_cn = q.text(col + 5);
    const std::string sans = q.text(col + 6);
    for (std::size_t at = 0; at < sans.size();) {
      const std::size_t end = std::min(sans.find('\n', at), sans.size());
      c.sans.push_back(sans.substr(at, end - at));
      at = end + 1;
    }
    c.issuer_cn = q.text(col + 7);
    c.not_before = from_ms(q.optional_int64(col + 8).value_or(0));
    c.not_after = from_ms(q.optional_int64(col + 9).value_or(0));
    c.self_signed = q.optional_int64(col + 10).value_or(0) != 0;
    c.sha256 = q.text(col + 11);
    s.tls = std::move(c);
  }
  if (!q.is_null(col + 12)) {
    s.http = HttpHead{static_cast<int>(q.int64(col + 12)), q.text(col + 13), q.text(col + 14)};
  }
  return s;
}

}  // namespace

std::string_view name(EventKind kind) {
  return kEventKindNames.at(static_cast<std::size_t>(kind));
}

std::optional<EventKind> parse_event_kind(std::string_view text) {
  for (std::size_t i = 0; i < kEventKindNames.size(); ++i) {
    if (kEventKindNames[i] == text) return static_cast<EventKind>(i);
  }
  return std::nullopt;
}

namespace {

constexpr int kBusyTimeoutMs = 10'000;
constexpr std::string_view kCrashNote = "agent stopped before the scan finished";

// Event and transition columns, in the order read_change() expects them, starting at `col`.
PortChange read_change(const Query& q, int col) {
  PortChange c;
  c.proto = proto_from(q.text(col));
  c.port = port_from(q.int64(col + 1));
  const std::string from = q.text(col + 2);
  c.from_absent = from == kAbsent;
  if (!c.from_absent) c.from = state_from(from);
  c.from_reason = reason_from(q.text(col + 3));
  c.to = state_from(q.text(col + 4));
  c.to_reason = reason_from(q.text(col + 5));
  return c;
}

// SELECT prefix shared by scan(), latest_scans() and scans().
constexpr std::string_view kScanColumns =
    "SELECT s.id, j.name, s.technique, s.started_ms, s.finished_ms, s.status, s.note, "
    "s.hosts_total, s.hosts_complete, s.ports_scanned, s.transitions, s.events, "
    "s.probes_sent, s.retransmissions, s.responses, s.refused_by_scope "
    "FROM scans s JOIN jobs j ON j.id = s.job_id ";

std::size_t to_size(std::int64_t v) {
  return v < 0 ? 0 : static_cast<std::size_t>(v);
}
std::uint64_t to_u64(std::int64_t v) {
  return v < 0 ? 0 : static_cast<std::uint64_t>(v);
}
// size_t and the uint64_t counters both go through here.
std::int64_t to_i64(std::uint64_t v) {
  return static_cast<std::int64_t>(v);
}

ScanRecord read_scan(const Query& q) {
  ScanRecord r;
  r.id = q.int64(0);
  r.job = q.text(1);
  r.technique = technique_from(q.text(2));
  r.started = from_ms(q.int64(3));
  if (const auto f = q.optional_int64(4)) r.finished = from_ms(*f);
  r.status = status_from(q.text(5));
  r.note = q.text(6);
  r.hosts_total = to_size(q.int64(7));
  r.hosts_complete = to_size(q.int64(8));
  r.ports_scanned = to_size(q.int64(9));
  r.transitions = to_size(q.int64(10));
  r.events = to_size(q.int64(11));
  r.counters.probes_sent = to_u64(q.int64(12));
  r.counters.retransmissions = to_u64(q.int64(13));
  r.counters.responses = to_u64(q.int64(14));
  r.counters.refused_by_scope = to_u64(q.int64(15));
  return r;
}

}  // namespace

ScannedHost ScannedHost::from(const HostResult& result, Technique technique) {
  return {host_key(result), result.address.to_string(), result.complete, result.note,
          result.complete ? HostSnapshot::from_result(result, technique) : HostSnapshot{}};
}

Verdict default_verdict(const ChangeContext& context) {
  const bool now_open = context.change.to == PortState::open;
  return now_open == context.accepted ? Verdict::expected : Verdict::unexpected;
}

std::string_view name(ScanStatus status) {
  switch (status) {
    case ScanStatus::running:
      return "running";
    case ScanStatus::complete:
      return "complete";
    case ScanStatus::incomplete:
      return "incomplete";
  }
  return "unknown";
}

struct Store::Impl {
  Impl(const std::string& path, Access a, storage_detail::OpenMode mode)
      : db(path, mode), access(a) {}

  Database db;
  Access access;
  std::optional<std::string> read_note;

  std::optional<std::int64_t> find_job(std::string_view job) {
    auto q = db.query("SELECT id FROM jobs WHERE name = ?1");
    q.bind(1, job);
    if (!q.step()) return std::nullopt;
    return q.int64(0);
  }

  std::int64_t ensure_job(std::string_view job) {
    if (auto id = find_job(job)) return *id;
    db.query("INSERT INTO jobs(name) VALUES (?1)").bind(1, job).run();
    return db.last_insert_rowid();
  }

  std::optional<std::int64_t> find_host(std::string_view job, std::string_view host) {
    auto q = db.query(
        "SELECT h.id FROM hosts h JOIN jobs j ON j.id = h.job_id WHERE j.name = ?1 AND "
        "h.name = ?2");
    q.bind(1, job).bind(2, host);
    if (!q.step()) return std::nullopt;
    return q.int64(0);
  }

  std::int64_t ensure_host(std::int64_t job_id, std::string_view host) {
    {
      auto q = db.query("SELECT id FROM hosts WHERE job_id = ?1 AND name = ?2");
      q.bind(1, job_id).bind(2, host);
      if (q.step()) return q.int64(0);
    }
    db.query("INSERT INTO hosts(job_id, name) VALUES (?1, ?2)").bind(1, job_id).bind(2, host).run();
    return db.last_insert_rowid();
  }

  // Reads without its own transaction: callers provide one.
  HostSnapshot load_snapshot(std::int64_t host_id) {
    HostSnapshot snap;
    {
      auto q = db.query("SELECT state_scan_id, state_ms FROM hosts WHERE id = ?1");
      q.bind(1, host_id);
      if (!q.step() || q.is_null(1)) return snap;
      snap.exists = true;
      snap.scan_id = q.optional_int64(0).value_or(0);
      snap.updated = from_ms(q.int64(1));
    }
    {
      auto q = db.query(
          "SELECT proto, technique, ports, state, reason FROM port_defaults WHERE host_id = ?1");
      q.bind(1, host_id);
      while (q.step()) {
        ProtoSnapshot ps;
        ps.proto = proto_from(q.text(0));
        ps.technique = technique_from(q.text(1));
        ps.scanned = decode_ranges(q.text(2));
        ps.usual = {state_from(q.text(3)), reason_from(q.text(4))};
        snap.protos.push_back(std::move(ps));
      }
    }
    std::sort(snap.protos.begin(), snap.protos.end(),
              [](const auto& a, const auto& b) { return a.proto < b.proto; });
    {
      auto q = db.query(
          "SELECT proto, port, state, reason FROM port_exceptions WHERE host_id = ?1 "
          "ORDER BY proto, port");
      q.bind(1, host_id);
      while (q.step()) {
        const Proto proto = proto_from(q.text(0));
        auto it = std::find_if(snap.protos.begin(), snap.protos.end(),
                               [&](const auto& p) { return p.proto == proto; });
        // The composite foreign key makes an orphan exception impossible.
        if (it == snap.protos.end()) continue;
        it->exceptions.emplace_back(port_from(q.int64(1)),
                                    PortObservation{state_from(q.text(2)), reason_from(q.text(3))});
      }
    }
    for (auto& p : snap.protos) {
      std::sort(p.exceptions.begin(), p.exceptions.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
    }
    return snap;
  }

  // Writes one protocol's state, touching only exception rows that differ from `old`, so a
  // rescan that changed nothing writes one row per (host, proto).
  void save_proto(std::int64_t host_id, const ProtoSnapshot& fresh, const ProtoSnapshot* old) {
    const std::string proto{name(fresh.proto)};
    db.query(
          "INSERT INTO port_defaults(host_id, proto, technique, ports, port_count, state, reason) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(host_id, proto) DO UPDATE SET "
          "technique = excluded.technique, ports = excluded.ports, "
          "port_count = excluded.port_count, state = excluded.state, reason = excluded.reason")
        .bind(1, host_id)
        .bind(2, proto)
        .bind(3, name(fresh.technique))
        .bind(4, encode_ranges(fresh.scanned))
        .bind(5, static_cast<std::int64_t>(fresh.port_count()))
        .bind(6, name(fresh.usual.state))
        .bind(7, name(fresh.usual.reason))
        .run();

    static const std::vector<std::pair<std::uint16_t, PortObservation>> kNone;
    const auto& before = old != nullptr ? old->exceptions : kNone;
    const auto& after = fresh.exceptions;
    auto write = [&](std::uint16_t port, const PortObservation& obs) {
      db.query(
            "INSERT INTO port_exceptions(host_id, proto, port, state, reason) "
            "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(host_id, proto, port) DO UPDATE SET "
            "state = excluded.state, reason = excluded.reason")
          .bind(1, host_id)
          .bind(2, proto)
          .bind(3, static_cast<std::int64_t>(port))
          .bind(4, name(obs.state))
          .bind(5, name(obs.reason))
          .run();
    };
    auto erase = [&](std::uint16_t port) {
      db.query("DELETE FROM port_exceptions WHERE host_id = ?1 AND proto = ?2 AND port = ?3")
          .bind(1, host_id)
          .bind(2, proto)
          .bind(3, static_cast<std::int64_t>(port))
          .run();
    };
    // Merge walk over two port-sorted lists.
    std::size_t i = 0;
    std::size_t k = 0;
    while (i < before.size() || k < after.size()) {
      if (k == after.size() || (i < before.size() && before[i].first < after[k].first)) {
        erase(before[i++].first);
      } else if (i == before.size() || after[k].first < before[i].first) {
        write(after[k].first, after[k].second);
        ++k;
      } else {
        if (before[i].second != after[k].second) write(after[k].first, after[k].second);
        ++i;
        ++k;
      }
    }
  }

  bool accepted(std::int64_t host_id, Proto proto, std::uint16_t port) {
    auto q =
        db.query("SELECT 1 FROM accepted_ports WHERE host_id = ?1 AND proto = ?2 AND port = ?3");
    q.bind(1, host_id).bind(2, name(proto)).bind(3, static_cast<std::int64_t>(port));
    return q.step();
  }

  // One host of a commit, whichever form it came in.
  struct Prepared {
    std::string key;
    std::string address;
    bool complete;
    HostSnapshot fresh;
    const HostResult* exact;  // full result when available: diff_host keeps per-port reasons
    ScannedHost::Presence presence = ScannedHost::Presence::answered;
    bool partial = false;  // ScannedHost::partial
    bool adopted = false;  // ScannedHost::adopted
  };

  static Prepared prepare_scanned(const ScannedHost& h, Technique technique) {
    Prepared p{h.host, h.address, h.complete, h.state, nullptr, h.presence, h.partial, h.adopted};
    p.fresh.exists = true;
    for (auto& proto : p.fresh.protos) proto.technique = technique;
    return p;
  }

  // Presence columns of a host row; absent when the job has never stored the host.
  struct HostPresence {
    std::int64_t id = 0;
    std::optional<std::int64_t> seen_ms;
    std::optional<std::int64_t> last_seen_ms;
    bool has_state = false;
    bool silent_reported = false;
    std::optional<std::int64_t> adopted_ms;
  };
  std::optional<HostPresence> host_presence(std::int64_t job_id, std::string_view host) {
    auto q = db.query(
        "SELECT id, seen_ms, last_seen_ms, state_ms IS NOT NULL, silent_reported, adopted_ms "
        "FROM hosts WHERE job_id = ?1 AND name = ?2");
    q.bind(1, job_id).bind(2, host);
    if (!q.step()) return std::nullopt;
    return HostPresence{q.int64(0),      q.optional_int64(1), q.optional_int64(2),
                        q.int64(3) != 0, q.int64(4) != 0,     q.optional_int64(5)};
  }

  void mark_seen(std::int64_t host_id, std::int64_t time_ms) {
    db.query(
          "UPDATE hosts SET seen_ms = COALESCE(seen_ms, ?2), last_seen_ms = ?2, "
          "silent_reported = 0 WHERE id = ?1")
        .bind(1, host_id)
        .bind(2, time_ms)
        .run();
  }

  std::int64_t insert_host_event(std::int64_t host_id, std::int64_t scan_id, std::int64_t time_ms,
                                 EventKind kind, std::string_view from, std::string_view to,
                                 const std::vector<std::pair<Proto, std::uint16_t>>& ports,
                                 bool expected) {
    db.query(
          "INSERT INTO events(host_id, scan_id, time_ms, proto, port, from_state, from_reason, "
          "to_state, to_reason, expected, kind, ports) "
          "VALUES (?1, ?2, ?3, '', 0, ?4, '', ?5, '', ?6, ?7, ?8)")
        .bind(1, host_id)
        .bind(2, scan_id)
        .bind(3, time_ms)
        .bind(4, from)
        .bind(5, to)
        .bind(6, static_cast<std::int64_t>(expected ? 1 : 0))
        .bind(7, name(kind))
        .bind(8, encode_port_list(ports))
        .run();
    return db.last_insert_rowid();
  }

  // Chains event `event_id` to the job's previous event of its host and port (host events:
  // of its host) and stores its change id, the same on every replica that saw the same
  // history. The fields hashed are read back from the event's row, as it was written.
  std::string assign_change_id(std::int64_t event_id, std::string_view job, std::string_view host) {
    auto row = db.query(
        "SELECT e.kind, e.proto, e.port, e.from_state, e.to_state, "
        "COALESCE((SELECT c.last_change_id FROM event_chains c WHERE c.host_id = e.host_id AND "
        "c.proto = " +
        std::string(kChainProto) +
        " AND c.port = e.port), h.change_seed), "
        "e.host_id "
        "FROM events e JOIN hosts h ON h.id = e.host_id WHERE e.id = ?1");
    row.bind(1, event_id);
    if (!row.step())
      throw StorageError("portvigil storage: event " + std::to_string(event_id) + " vanished");
    const std::string proto = row.text(1);
    const std::int64_t port = row.int64(2);
    auto id = change_id(job, host, row.text(0), proto, static_cast<std::uint16_t>(port),
                        row.text(3), row.text(4), row.text(5));
    const std::int64_t host_id = row.int64(6);
    // A port's service changes chain apart from its state changes: how often each replica
    // reads a service is its own affair, and must not make the port's ids diverge.
    const std::string chain =
        row.text(0) == name(EventKind::service_changed) ? proto + "-service" : proto;
    db.query("UPDATE events SET change_id = ?2 WHERE id = ?1").bind(1, event_id).bind(2, id).run();
    db.query(
          "INSERT INTO event_chains(host_id, proto, port, last_change_id) VALUES (?1, ?2, ?3, ?4) "
          "ON CONFLICT(host_id, proto, port) DO UPDATE SET last_change_id = "
          "excluded.last_change_id")
        .bind(1, host_id)
        .bind(2, chain)
        .bind(3, port)
        .bind(4, id)
        .run();
    return id;
  }

  // When each port of a complete UDP scan was verified (udp-coverage).
  void mark_verified(std::int64_t host_id, const ProtoSnapshot& scanned, std::int64_t time_ms) {
    for (const PortRange& r : scanned.scanned) {
      for (unsigned port = r.first; port <= r.last; ++port) {
        db.query(
              "INSERT INTO port_verified(host_id, proto, port, verified_ms) "
              "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(host_id, proto, port) "
              "DO UPDATE SET verified_ms = excluded.verified_ms")
            .bind(1, host_id)
            .bind(2, name(scanned.proto))
            .bind(3, static_cast<std::int64_t>(port))
            .bind(4, time_ms)
            .run();
      }
    }
  }

  // The job a scan belongs to, as a commit needs it.
  struct ScanJob {
    std::int64_t job_id = 0;
    std::string job;
    Technique technique = Technique::connect;
    std::string status;
    std::optional<std::int64_t> baseline_ms;  // jobs.baseline_ms
  };
  ScanJob scan_job(std::int64_t scan_id) {
    auto q = db.query(
        "SELECT s.job_id, j.name, s.technique, s.status, j.baseline_ms FROM scans s "
        "JOIN jobs j ON j.id = s.job_id WHERE s.id = ?1");
    q.bind(1, scan_id);
    if (!q.step()) {
      throw StorageError("portvigil storage: " + db.path() + ": no scan " +
                         std::to_string(scan_id));
    }
    return {q.int64(0), q.text(1), technique_from(q.text(2)), q.text(3), q.optional_int64(4)};
  }

  // What committing one complete host changes, worked out without writing anything:
  // commit() applies it, planned_tcp_openings() reads its openings (diff, then commit).
  struct HostPlan {
    std::optional<HostPresence> known;
    HostSnapshot stored;  // as stored now
    HostSnapshot fresh;   // the state to store
    bool appeared = false;
    std::vector<PortChange> changes;
    std::vector<std::pair<Proto, std::uint16_t>> accept_now;
  };
  HostPlan plan_host(const ScanJob& scan, const Prepared& host, const CommitOptions& options,
                     std::int64_t time_ms) {
    HostPlan plan;
    plan.known = host_presence(scan.job_id, host.key);
    if (plan.known) plan.stored = load_snapshot(plan.known->id);
    const auto& known = plan.known;
    const auto& job_baseline_ms = scan.baseline_ms;
    // An adopted host's stored state (if any) is from before it moved away: not compared.
    const HostSnapshot old = host.adopted ? HostSnapshot{} : plan.stored;
    // A scan of some of the ports: the others keep their stored state.
    plan.fresh = host.partial ? merge_snapshots(old, host.fresh, options.job_ports) : host.fresh;
    const HostSnapshot& fresh = plan.fresh;
    // A host without a baseline is new exposure unless this scan sets the job's baseline
    // or the host had already answered by then (known, but not comparable yet), or it came
    // from another shard.
    plan.appeared = !old.exists && job_baseline_ms.has_value() && !host.adopted &&
                    !(known && known->seen_ms && *known->seen_ms <= *job_baseline_ms);

    // A protocol scanned with another technique than last time starts a new baseline.
    HostSnapshot comparable = old;
    std::erase_if(comparable.protos, [&](const ProtoSnapshot& p) {
      const ProtoSnapshot* n = fresh.find(p.proto);
      return n != nullptr && n->technique != p.technique;
    });

    std::vector<PortChange>& changes = plan.changes;
    if (plan.appeared) {
      for (const auto& [proto, port] : fresh.open_ports()) {
        PortChange c;
        c.proto = proto;
        c.port = port;
        c.from_absent = true;
        c.from_reason = Reason::unknown;
        c.to = PortState::open;
        c.to_reason = fresh.state_of(proto, port)->reason;
        if (host.exact != nullptr) {
          for (const auto& r : host.exact->ports) {
            if (r.proto == proto && r.port == port) c.to_reason = r.reason;
          }
        }
        changes.push_back(c);
      }
    } else {
      changes = host.exact != nullptr ? diff_host(comparable, *host.exact)
                                      : diff_snapshots(comparable, fresh);
    }
    // A partial scan's open ports that are new to the host's state: the rest of the first
    // full baseline of a host that was there at the job's baseline (accepted as that was),
    // new exposure of a host that appeared since (from "absent", as its first ports were).
    const std::int64_t first_coverage_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(options.first_coverage).count();
    // The host's first coverage period starts when it was first seen, or when it was
    // adopted (its baseline then started again, as a first baseline does).
    std::int64_t era_ms = -1;  // never seen
    if (known && known->seen_ms) era_ms = *known->seen_ms;
    const bool adopted_era = known && known->adopted_ms && *known->adopted_ms >= era_ms;
    if (adopted_era) era_ms = *known->adopted_ms;
    if (host.partial && old.exists && era_ms >= 0 && time_ms - era_ms <= first_coverage_ms) {
      const bool baseline_era =
          adopted_era || !job_baseline_ms.has_value() || era_ms <= *job_baseline_ms;
      for (const auto& [proto, port] : host.fresh.open_ports()) {
        if (comparable.state_of(proto, port)) continue;
        if (baseline_era) {
          if (options.accept_first_baseline) plan.accept_now.emplace_back(proto, port);
          continue;
        }
        PortChange c;
        c.proto = proto;
        c.port = port;
        c.from_absent = true;
        c.to = PortState::open;
        c.to_reason = host.fresh.state_of(proto, port)->reason;
        changes.push_back(c);
      }
    }
    if (options.accept_first_baseline && !old.exists && !plan.appeared)
      plan.accept_now = fresh.open_ports();
    return plan;
  }

  // Binds a service's 15 columns (kServiceColumnNames' order) from parameter `first` on.
  static void bind_service(Query& q, int first, const ServiceIdentity& s) {
    q.bind(first, std::string_view(to_string(s.outcome)))
        .bind(first + 1, s.protocol)
        .bind(first + 2, s.banner)
        .bind(first + 3, s.banner_sha256);
    if (s.tls) {
      std::string sans;
      for (const auto& name : s.tls->sans) {
        if (!sans.empty()) sans += '\n';
        sans += name;
      }
      q.bind(first + 4, s.tls->version)
          .bind(first + 5, s.tls->subject_cn)
          .bind(first + 6, sans)
          .bind(first + 7, s.tls->issuer_cn)
          .bind(first + 8, to_ms(s.tls->not_before))
          .bind(first + 9, to_ms(s.tls->not_after))
          .bind(first + 10, static_cast<std::int64_t>(s.tls->self_signed ? 1 : 0))
          .bind(first + 11, s.tls->sha256);
    }
    if (s.http) {
      q.bind(first + 12, static_cast<std::int64_t>(s.http->status))
          .bind(first + 13, s.http->status_line)
          .bind(first + 14, s.http->server);
    }
  }

  void insert_event_service(std::int64_t event_id, std::string_view role,
                            const ServiceIdentity& s) {
    auto q =
        db.query("INSERT INTO event_services(event_id, role, " + std::string(kServiceColumnNames) +
                 ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                 "?15, ?16, ?17)");
    q.bind(1, event_id).bind(2, role);
    bind_service(q, 3, s);
    q.run();
  }

  void store_port_service(std::int64_t host_id, std::uint16_t port, std::int64_t time_ms,
                          const ServiceIdentity& s) {
    auto q = db.query("INSERT OR REPLACE INTO port_services(host_id, port, identified_ms, " +
                      std::string(kServiceColumnNames) +
                      ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                      "?15, ?16, ?17, ?18)");
    q.bind(1, host_id).bind(2, static_cast<std::int64_t>(port)).bind(3, time_ms);
    bind_service(q, 4, s);
    q.run();
  }

  std::optional<ServiceIdentity> stored_port_service(std::int64_t host_id, std::uint16_t port) {
    auto q = db.query("SELECT " + std::string(kServiceColumnNames) +
                      " FROM port_services WHERE host_id = ?1 AND port = ?2");
    q.bind(1, host_id).bind(2, static_cast<std::int64_t>(port));
    if (!q.step()) return std::nullopt;
    return read_service(q, 0);
  }

  // A port's stored service lasts as long as the port stays open.
  void forget_closed_services(std::int64_t host_id, const HostSnapshot& state) {
    std::vector<std::int64_t> gone;
    {
      auto q = db.query("SELECT port FROM port_services WHERE host_id = ?1");
      q.bind(1, host_id);
      while (q.step()) {
        const auto port = port_from(q.int64(0));
        const auto now = state.state_of(Proto::tcp, port);
        if (!now || now->state != PortState::open) gone.push_back(port);
      }
    }
    for (const auto port : gone) {
      db.query("DELETE FROM port_services WHERE host_id = ?1 AND port = ?2")
          .bind(1, host_id)
          .bind(2, port)
          .run();
    }
  }

  template <typename Host, typename Prepare>
  std::vector<ChangeEvent> commit(std::int64_t scan_id, std::span<const Host> hosts,
                                  const ScanCounters& counters, Clock::time_point finished,
                                  const EventPolicy& policy, Prepare prepare,
                                  const CommitOptions& options, CommitSummary* summary_out) {
    Transaction tx(db, Transaction::Kind::write);

    const ScanJob scan = scan_job(scan_id);
    if (scan.status != "running") {
      throw StorageError("portvigil storage: " + db.path() + ": scan " + std::to_string(scan_id) +
                         " is " + scan.status + ", not running");
    }
    const std::int64_t job_id = scan.job_id;
    const std::string& job = scan.job;
    const Technique technique = scan.technique;
    const std::optional<std::int64_t>& job_baseline_ms = scan.baseline_ms;
    std::map<std::pair<std::string_view, std::uint16_t>, const ServiceIdentity*> services;
    for (const auto& s : options.services) services[{s.host, s.port}] = &s.identity;
    std::multimap<std::string_view, const CommitOptions::ServiceCheck*> checks;
    for (const auto& c : options.service_checks) checks.emplace(c.host, &c);

    const std::int64_t time_ms = to_ms(finished);
    const Clock::time_point event_time = from_ms(time_ms);
    const std::int64_t silent_after_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(options.silent_after).count();
    std::vector<ChangeEvent> events;
    std::set<std::string, std::less<>> adopted_now;  // hosts adopted by this commit
    CommitSummary summary;
    std::size_t hosts_complete = 0;
    std::size_t ports_scanned = 0;
    std::size_t transitions = 0;
    bool answered_now = false;  // some host answered: this scan can be the job's baseline

    auto add_event = [&](std::int64_t id, const std::string& key, EventKind kind,
                         const PortChange& change,
                         std::vector<std::pair<Proto, std::uint16_t>> ports, bool expected) {
      auto change_id = assign_change_id(id, job, key);
      events.push_back({id, event_time, job, key, kind, change, std::move(ports), expected, scan_id,
                        std::move(change_id)});
    };

    for (const Host& input : hosts) {
      const Prepared host = prepare(input, technique);
      if (!host.complete) {
        // Not scanned is not closed: the state stays. What the scan learnt about presence
        // is still recorded.
        const auto known = host_presence(job_id, host.key);
        if (host.presence == ScannedHost::Presence::answered) {
          answered_now = true;
          const std::int64_t id = known ? known->id : ensure_host(job_id, host.key);
          mark_seen(id, time_ms);
        } else if (host.presence == ScannedHost::Presence::silent) {
          if (!known || !known->last_seen_ms) {
            ++summary.addresses_unused;  // never answered: an unused address, not a host
            continue;
          }
          ++summary.hosts_down;
          if (time_ms - *known->last_seen_ms < silent_after_ms) continue;
          ++summary.hosts_gone_silent;
          if (known->silent_reported) continue;
          // Once per silence: the event lists what the host exposed when last compared.
          const HostSnapshot last = load_snapshot(known->id);
          const auto open = last.open_ports();
          const bool expected = false;  // a watched host that vanished is worth a look
          const auto id =
              insert_host_event(known->id, scan_id, time_ms, EventKind::host_gone_silent, "up",
                                "silent", open, expected);
          add_event(id, host.key, EventKind::host_gone_silent, PortChange{}, open, expected);
          db.query("UPDATE hosts SET silent_reported = 1 WHERE id = ?1").bind(1, known->id).run();
        }
        continue;
      }
      ++hosts_complete;
      answered_now = true;
      const std::string& key = host.key;
      HostPlan plan = plan_host(scan, host, options, time_ms);
      const std::int64_t host_id = plan.known ? plan.known->id : ensure_host(job_id, key);
      const HostSnapshot& stored = plan.stored;
      const HostSnapshot& fresh = plan.fresh;
      const bool appeared = plan.appeared;
      const std::vector<PortChange>& changes = plan.changes;
      const std::vector<std::pair<Proto, std::uint16_t>>& accept_now = plan.accept_now;
      bool all_expected = true;
      std::vector<std::pair<Proto, std::uint16_t>> appeared_ports;
      for (const PortChange& change : changes) {
        ++transitions;
        insert_change(
            "INSERT INTO transitions(host_id, scan_id, time_ms, proto, port, from_state, "
            "from_reason, to_state, to_reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            host_id, scan_id, time_ms, change, std::nullopt);
        const ChangeContext context{job, key, change, accepted(host_id, change.proto, change.port)};
        const Verdict verdict = policy ? policy(context) : default_verdict(context);
        if (appeared) appeared_ports.emplace_back(change.proto, change.port);
        if (verdict == Verdict::silent) continue;
        const bool expected = verdict == Verdict::expected;
        all_expected = all_expected && expected;
        insert_change(
            "INSERT INTO events(host_id, scan_id, time_ms, proto, port, from_state, from_reason, "
            "to_state, to_reason, expected) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            host_id, scan_id, time_ms, change, expected);
        const std::int64_t event_id = db.last_insert_rowid();
        const ServiceIdentity* service = nullptr;
        if (change.proto == Proto::tcp && change.to == PortState::open) {
          const auto it = services.find({key, change.port});
          if (it != services.end()) service = it->second;
        }
        if (service != nullptr) insert_event_service(event_id, "now", *service);
        add_event(event_id, key, EventKind::port, change, {}, expected);
        if (service != nullptr) events.back().service = *service;
      }
      // What answers on the host's open TCP ports (watch-services only): the identities of
      // ports this scan opened, and watched reads of ports open before (a confirmed change
      // is an event). An adopted host's reads are another agent's era: forgotten.
      if (!options.watch_services || host.adopted) {
        db.query("DELETE FROM port_services WHERE host_id = ?1").bind(1, host_id).run();
      } else {
        forget_closed_services(host_id, fresh);
        for (const PortChange& change : changes) {
          if (change.proto != Proto::tcp || change.to != PortState::open) continue;
          const auto it = services.find({key, change.port});
          if (it != services.end() && conclusive(*it->second)) {
            store_port_service(host_id, change.port, time_ms, *it->second);
          }
        }
      }
      for (auto [it, end] = checks.equal_range(key);
           options.watch_services && !host.adopted && it != end; ++it) {
        const CommitOptions::ServiceCheck& check = *it->second;
        const auto now = fresh.state_of(Proto::tcp, check.port);
        if (!now || now->state != PortState::open || !conclusive(check.identity)) continue;
        const auto before = stored_port_service(host_id, check.port);
        if (check.changed && before && !same_service(*before, check.identity)) {
          PortChange change;
          change.proto = Proto::tcp;
          change.port = check.port;
          change.from = PortState::open;
          change.to = PortState::open;
          // The port stays open: expected when the policy expects it open.
          const ChangeContext context{job, key, change, accepted(host_id, Proto::tcp, check.port)};
          const Verdict verdict = policy ? policy(context) : default_verdict(context);
          if (verdict != Verdict::silent) {
            // from/to hold digests of the services, so that the change id tells changes apart.
            db.query(
                  "INSERT INTO events(host_id, scan_id, time_ms, proto, port, from_state, "
                  "from_reason, to_state, to_reason, expected, kind) VALUES (?1, ?2, ?3, 'tcp', "
                  "?4, ?5, '', ?6, '', ?7, ?8)")
                .bind(1, host_id)
                .bind(2, scan_id)
                .bind(3, time_ms)
                .bind(4, static_cast<std::int64_t>(check.port))
                .bind(5, "service:" + service_digest(*before))
                .bind(6, "service:" + service_digest(check.identity))
                .bind(7, static_cast<std::int64_t>(verdict == Verdict::expected ? 1 : 0))
                .bind(8, name(EventKind::service_changed))
                .run();
            const std::int64_t event_id = db.last_insert_rowid();
            insert_event_service(event_id, "now", check.identity);
            insert_event_service(event_id, "before", *before);
            add_event(event_id, key, EventKind::service_changed, change, {},
                      verdict == Verdict::expected);
            events.back().service = check.identity;
            events.back().previous_service = *before;
          }
        }
        store_port_service(host_id, check.port, time_ms, check.identity);
      }
      if (appeared) {
        // After its port events, so a consumer that reads the host event has them all.
        ++summary.hosts_appeared;
        const auto id = insert_host_event(host_id, scan_id, time_ms, EventKind::host_appeared,
                                          kAbsent, "up", appeared_ports, all_expected);
        add_event(id, key, EventKind::host_appeared, PortChange{}, appeared_ports, all_expected);
      }

      if (host.adopted) {
        // Another era starts: what was accepted or verified before the host moved away no
        // longer holds.
        db.query("DELETE FROM accepted_ports WHERE host_id = ?1").bind(1, host_id).run();
        db.query("DELETE FROM port_verified WHERE host_id = ?1").bind(1, host_id).run();
        // Its chains start again from a seed the old owners never used, the same on every
        // replica of the new shard (also one that held the host before).
        db.query("DELETE FROM event_chains WHERE host_id = ?1").bind(1, host_id).run();
        db.query("UPDATE hosts SET change_seed = ?2 WHERE id = ?1")
            .bind(1, host_id)
            .bind(2, "adopted under " + options.shard)
            .run();
        db.query("UPDATE hosts SET adopt_pending = 0, adopted_ms = ?2 WHERE id = ?1")
            .bind(1, host_id)
            .bind(2, time_ms)
            .run();
        adopted_now.insert(key);
      }
      for (const ProtoSnapshot& p : fresh.protos) save_proto(host_id, p, stored.find(p.proto));
      for (const ProtoSnapshot& p : host.fresh.protos) {
        ports_scanned += p.port_count();
        if (options.record_verified) mark_verified(host_id, p, time_ms);
      }
      db.query("UPDATE hosts SET state_scan_id = ?2, state_ms = ?3, address = ?4 WHERE id = ?1")
          .bind(1, host_id)
          .bind(2, scan_id)
          .bind(3, time_ms)
          .bind(4, host.address)
          .run();
      mark_seen(host_id, time_ms);
      if (!accept_now.empty()) {
        // Same transaction as the baseline itself, so a crash cannot leave a baseline whose
        // ports were never accepted.
        for (const auto& [proto, port] : accept_now) {
          db.query(
                "INSERT OR IGNORE INTO accepted_ports(host_id, proto, port, accepted_ms) "
                "VALUES (?1, ?2, ?3, ?4)")
              .bind(1, host_id)
              .bind(2, name(proto))
              .bind(3, static_cast<std::int64_t>(port))
              .bind(4, time_ms)
              .run();
        }
      }
    }
    for (const auto& key : options.adopt_later) {
      if (adopted_now.contains(key)) continue;  // listed twice by overlapping targets
      db.query("UPDATE hosts SET adopt_pending = 1 WHERE id = ?1")
          .bind(1, ensure_host(job_id, key))
          .run();
    }
    db.query("UPDATE jobs SET shard = ?2 WHERE id = ?1")
        .bind(1, job_id)
        .bind(2, options.shard)
        .run();
    if (!job_baseline_ms && answered_now) {
      db.query("UPDATE jobs SET baseline_ms = ?2 WHERE id = ?1")
          .bind(1, job_id)
          .bind(2, time_ms)
          .run();
    }

    db.query(
          "UPDATE scans SET status = 'complete', finished_ms = ?2, hosts_total = ?3, "
          "hosts_complete = ?4, ports_scanned = ?5, transitions = ?6, events = ?7, "
          "probes_sent = ?8, retransmissions = ?9, responses = ?10, refused_by_scope = ?11 "
          "WHERE id = ?1")
        .bind(1, scan_id)
        .bind(2, time_ms)
        .bind(3, to_i64(hosts.size()))
        .bind(4, to_i64(hosts_complete))
        .bind(5, to_i64(ports_scanned))
        .bind(6, to_i64(transitions))
        .bind(7, to_i64(events.size()))
        .bind(8, to_i64(counters.probes_sent))
        .bind(9, to_i64(counters.retransmissions))
        .bind(10, to_i64(counters.responses))
        .bind(11, to_i64(counters.refused_by_scope))
        .run();
    tx.commit();
    if (summary_out != nullptr) *summary_out = summary;
    return events;
  }

  void insert_change(std::string_view table_sql, std::int64_t host_id, std::int64_t scan_id,
                     std::int64_t time_ms, const PortChange& c, std::optional<bool> expected) {
    auto q = db.query(table_sql);
    q.bind(1, host_id)
        .bind(2, scan_id)
        .bind(3, time_ms)
        .bind(4, name(c.proto))
        .bind(5, static_cast<std::int64_t>(c.port))
        .bind(6, from_name(c))
        .bind(7, c.from_absent ? std::string_view{} : name(c.from_reason))
        .bind(8, name(c.to))
        .bind(9, name(c.to_reason));
    if (expected) q.bind(10, static_cast<std::int64_t>(*expected ? 1 : 0));
    q.run();
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

namespace {

// Foreign keys and the busy timeout, the same on every connection.
void configure(Database& db) {
  db.busy_timeout(kBusyTimeoutMs);
  db.exec("PRAGMA foreign_keys = ON");
  if (db.pragma_int("PRAGMA foreign_keys") != 1) {
    throw StorageError("portvigil storage: " + db.path() + ": SQLite built without foreign keys");
  }
}

void require_latest_version(Database& db) {
  const int version = storage_detail::user_version(db);
  const int latest = storage_detail::latest_version();
  if (version != latest) {
    throw StorageError("portvigil storage: " + db.path() + ": schema version " +
                       std::to_string(version) + ", expected " + std::to_string(latest) +
                       " (open it once read-write to migrate)");
  }
}

}  // namespace

void Store::check_writable() {
  storage_detail::rewrite_user_version(impl_->db);
}

std::optional<std::string> Store::read_note() const {
  return impl_->read_note;
}

Store Store::open(const std::string& path, Access access) {
  if (access == Access::read_only) {
    try {
      auto impl = std::make_unique<Impl>(path, access, storage_detail::OpenMode::read_only);
      configure(impl->db);
      require_latest_version(impl->db);
      return Store(std::move(impl));
    } catch (const StorageError& e) {
      // A WAL reader must map the -shm file, which a full disk cannot hold. Reading the
      // file as immutable needs neither; only commits not yet checkpointed from the -wal
      // file are missed, and the note says so.
      if (e.cause() != StorageError::Cause::disk || path == ":memory:") throw;
      std::unique_ptr<Impl> impl;
      try {
        impl = std::make_unique<Impl>(path, access, storage_detail::OpenMode::read_only_immutable);
        configure(impl->db);
        require_latest_version(impl->db);
      } catch (const StorageError&) {
        throw e;  // the first failure says what is wrong
      }
      std::error_code ec;
      const auto wal_bytes = std::filesystem::file_size(path + "-wal", ec);
      impl->read_note =
          path +
          ": read without the write-ahead log, because SQLite could not set "
          "it up (disk full or failing)" +
          (!ec && wal_bytes > 0
               ? "; the latest commits (" + std::to_string(wal_bytes) + " bytes in " + path +
                     "-wal) are not shown, and a checkpoint the disk cut "
                     "short may make what is shown inconsistent"
               : std::string{});
      return Store(std::move(impl));
    }
  }
  auto impl = std::make_unique<Impl>(path, access, storage_detail::OpenMode::read_write_create);
  Database& db = impl->db;
  configure(db);
  if (storage_detail::user_version(db) == 0) {
    // Only takes effect before the first table exists; lets prune() give pages back.
    db.exec("PRAGMA auto_vacuum = INCREMENTAL");
  }
  // WAL: readers never block the writer or see half a commit. ":memory:" stays "memory".
  const std::string mode = db.pragma_text("PRAGMA journal_mode = WAL");
  if (mode != "wal" && mode != "memory") {
    throw StorageError("portvigil storage: " + path + ": cannot enable WAL (journal_mode " + mode +
                       ")");
  }
  // In WAL mode NORMAL cannot corrupt the file; a power cut may lose the last commit, which
  // only means the next scan diffs against the previous one.
  db.exec("PRAGMA synchronous = NORMAL");
  storage_detail::migrate(db);
  if (access == Access::agent) {
    // Only one agent writes scans, so a 'running' scan at start-up is a leftover.
    db.query("UPDATE scans SET status = 'incomplete', note = ?1 WHERE status = 'running'")
        .bind(1, kCrashNote)
        .run();
  }
  return Store(std::move(impl));
}

std::int64_t Store::begin_scan(std::string_view job, Technique technique,
                               Clock::time_point started) {
  Transaction tx(impl_->db, Transaction::Kind::write);
  const std::int64_t job_id = impl_->ensure_job(job);
  impl_->db.query("INSERT INTO scans(job_id, technique, started_ms) VALUES (?1, ?2, ?3)")
      .bind(1, job_id)
      .bind(2, name(technique))
      .bind(3, to_ms(started))
      .run();
  const std::int64_t id = impl_->db.last_insert_rowid();
  tx.commit();
  return id;
}

std::vector<ChangeEvent> Store::commit_scan(std::int64_t scan_id, std::span<const HostResult> hosts,
                                            const ScanCounters& counters,
                                            Clock::time_point finished, const EventPolicy& policy,
                                            const CommitOptions& options, CommitSummary* summary) {
  return impl_->commit(
      scan_id, hosts, counters, finished, policy,
      [](const HostResult& h, Technique technique) {
        // Without the job runner's verdict, an incomplete host's presence is unknown.
        return Impl::Prepared{
            host_key(h),
            h.address.to_string(),
            h.complete,
            HostSnapshot::from_result(h, technique),
            &h,
            h.complete ? ScannedHost::Presence::answered : ScannedHost::Presence::unknown};
      },
      options, summary);
}

std::vector<ChangeEvent> Store::commit_scan(std::int64_t scan_id,
                                            std::span<const ScannedHost> hosts,
                                            const ScanCounters& counters,
                                            Clock::time_point finished, const EventPolicy& policy,
                                            const CommitOptions& options, CommitSummary* summary) {
  return impl_->commit(scan_id, hosts, counters, finished, policy, &Impl::prepare_scanned, options,
                       summary);
}

std::vector<Store::Opening> Store::planned_tcp_openings(std::int64_t scan_id,
                                                        std::span<const ScannedHost> hosts,
                                                        Clock::time_point finished,
                                                        const CommitOptions& options) const {
  auto& s = *impl_;
  Transaction tx(s.db, Transaction::Kind::read);
  const Impl::ScanJob scan = s.scan_job(scan_id);
  const std::int64_t time_ms = to_ms(finished);
  std::vector<Opening> out;
  std::set<std::pair<std::string, std::uint16_t>> listed;
  for (const ScannedHost& h : hosts) {
    if (!h.complete) continue;
    const Impl::Prepared host = Impl::prepare_scanned(h, scan.technique);
    for (const PortChange& c : s.plan_host(scan, host, options, time_ms).changes) {
      if (c.proto != Proto::tcp || c.to != PortState::open) continue;
      // A host listed twice (overlapping targets) is planned twice: list its ports once.
      if (listed.emplace(h.host, c.port).second) out.push_back({h.host, c.port});
    }
  }
  return out;
}

namespace {
// Rows of (host name, port, time ms, PORTVIGIL_SERVICE_COLUMNS) as records; rows without a
// readable service are skipped.
std::vector<Store::PortServiceRecord> port_service_records(Query& q) {
  std::vector<Store::PortServiceRecord> out;
  while (q.step()) {
    auto identity = read_service(q, 3);
    if (!identity) continue;
    out.push_back({q.text(0), port_from(q.int64(1)), from_ms(q.int64(2)), std::move(*identity)});
  }
  return out;
}
}  // namespace

std::vector<Store::PortServiceRecord> Store::port_services(std::string_view job) const {
  auto q = impl_->db.query("SELECT h.name, p.port, p.identified_ms, " PORTVIGIL_SERVICE_COLUMNS(
      "p") "FROM port_services p JOIN hosts h ON h.id = p.host_id JOIN jobs j ON j.id = "
           "h.job_id WHERE j.name = ?1 ORDER BY h.name, p.port");
  q.bind(1, job);
  return port_service_records(q);
}

std::vector<Store::PortServiceRecord> Store::event_services(std::string_view job) const {
  // The newest event with a service per port, found over event ids alone (one grouped
  // pass); only those rows' service columns are read.
  auto q = impl_->db.query("SELECT h.name, e.port, e.time_ms, " PORTVIGIL_SERVICE_COLUMNS(
      "s") "FROM events e JOIN event_services s ON s.event_id = e.id AND s.role = 'now' "
           "JOIN hosts h ON h.id = e.host_id "
           "WHERE e.id IN (SELECT MAX(e2.id) FROM event_services s2 "
           "  JOIN events e2 ON e2.id = s2.event_id JOIN hosts h2 ON h2.id = e2.host_id "
           "  JOIN jobs j2 ON j2.id = h2.job_id "
           "  WHERE s2.role = 'now' AND j2.name = ?1 AND e2.proto = 'tcp' "
           "  GROUP BY e2.host_id, e2.port) "
           "ORDER BY h.name, e.port");
  q.bind(1, job);
  return port_service_records(q);
}

bool Store::mark_incomplete(std::int64_t scan_id, std::string_view why, Clock::time_point when) {
  // In a write transaction, so it takes its turn with the process's other writers.
  Transaction tx(impl_->db, Transaction::Kind::write);
  impl_->db
      .query(
          "UPDATE scans SET status = 'incomplete', note = ?2, finished_ms = ?3 "
          "WHERE id = ?1 AND status = 'running'")
      .bind(1, scan_id)
      .bind(2, why)
      .bind(3, to_ms(when))
      .run();
  const bool changed = impl_->db.changes() > 0;
  tx.commit();
  return changed;
}

bool Store::known_host(std::string_view job, std::string_view host) const {
  auto q = impl_->db.query(
      "SELECT 1 FROM hosts h JOIN jobs j ON j.id = h.job_id WHERE j.name = ?1 AND h.name = ?2 "
      "AND (h.seen_ms IS NOT NULL OR h.state_ms IS NOT NULL)");
  q.bind(1, job).bind(2, host);
  return q.step();
}

std::optional<std::string> Store::job_shard(std::string_view job) const {
  auto q = impl_->db.query("SELECT shard FROM jobs WHERE name = ?1");
  q.bind(1, job);
  if (!q.step() || q.is_null(0)) return std::nullopt;
  return q.text(0);
}

namespace {

// The names of the job's hosts whose row matches `condition` (SQL over hosts h), sorted.
std::vector<std::string> host_names(Database& db, std::string_view job,
                                    std::string_view condition) {
  auto q = db.query(
      "SELECT h.name FROM hosts h JOIN jobs j ON j.id = h.job_id WHERE j.name = ?1 "
      "AND (" +
      std::string(condition) + ") ORDER BY h.name");
  q.bind(1, job);
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.text(0));
  return out;
}

}  // namespace

std::vector<std::string> Store::pending_adoptions(std::string_view job) const {
  return host_names(impl_->db, job, "h.adopt_pending = 1");
}

std::vector<std::string> Store::known_hosts(std::string_view job) const {
  return host_names(impl_->db, job, "h.seen_ms IS NOT NULL OR h.state_ms IS NOT NULL");
}

HostSnapshot Store::baseline(std::string_view job, std::string_view host) const {
  Transaction tx(impl_->db, Transaction::Kind::read);  // one snapshot across the 3 reads
  const auto id = impl_->find_host(job, host);
  HostSnapshot snap = id ? impl_->load_snapshot(*id) : HostSnapshot{};
  tx.commit();
  return snap;
}

std::optional<std::chrono::system_clock::time_point> Store::open_since(std::string_view job,
                                                                       std::string_view host,
                                                                       Proto proto,
                                                                       std::uint16_t port) const {
  auto q = impl_->db.query(
      "SELECT (SELECT MAX(t.time_ms) FROM transitions t WHERE t.host_id = h.id AND "
      "t.proto = ?3 AND t.port = ?4 AND (t.to_state = 'open' OR t.from_state = 'open')), "
      "h.seen_ms, h.adopted_ms "
      "FROM hosts h JOIN jobs j ON j.id = h.job_id WHERE j.name = ?1 AND h.name = ?2");
  q.bind(1, job);
  q.bind(2, host);
  q.bind(3, name(proto));
  q.bind(4, static_cast<std::int64_t>(port));
  if (!q.step()) return std::nullopt;
  // The last transition, else when the host was first seen; never before its adoption
  // (what happened earlier is another agent's era).
  std::optional<std::int64_t> since = q.optional_int64(0);
  if (!since) since = q.optional_int64(1);
  if (const auto adopted = q.optional_int64(2); adopted && (!since || *adopted > *since)) {
    since = adopted;
  }
  if (!since) return std::nullopt;
  return from_ms(*since);
}

Store::PortCoverage Store::port_coverage(std::string_view job, Proto proto,
                                         std::span<const std::uint16_t> ports,
                                         Clock::time_point seen_since) const {
  std::vector<std::pair<std::int64_t, std::int64_t>> hosts;  // (id, first seen ms)
  {
    auto q = impl_->db.query(
        // First seen, or adopted (another era) if later.
        "SELECT h.id, max(COALESCE(h.seen_ms, h.state_ms), COALESCE(h.adopted_ms, 0)) "
        "FROM hosts h JOIN jobs j ON "
        "j.id = h.job_id WHERE j.name = ?1 AND h.state_ms IS NOT NULL AND "
        "COALESCE(h.last_seen_ms, h.state_ms) >= ?2 ORDER BY h.id");
    q.bind(1, job);
    q.bind(2, to_ms(seen_since));
    while (q.step()) hosts.emplace_back(q.int64(0), q.int64(1));
  }
  PortCoverage out;
  if (hosts.empty()) return out;
  const std::size_t n = ports.size();
  std::vector<std::int32_t> index(65536, -1);  // port -> position in `ports`
  for (std::size_t i = 0; i < n; ++i) index[ports[i]] = static_cast<std::int32_t>(i);
  std::vector<std::int64_t> oldest(n, std::numeric_limits<std::int64_t>::max());
  out.never.assign(n, false);
  out.mean_ms.assign(n, 0);
  std::vector<std::int64_t> verified(n, -1);  // the current host's
  auto fold = [&](std::int64_t seen) {
    for (std::size_t i = 0; i < n; ++i) {
      std::int64_t t = verified[i];
      if (t < 0) {
        out.never[i] = true;
        t = seen;
      }
      oldest[i] = std::min(oldest[i], t);
      out.mean_ms[i] += static_cast<double>(t) / static_cast<double>(hosts.size());
      verified[i] = -1;
    }
  };
  // One pass over the job's rows, host by host (hosts are in id order too).
  auto q = impl_->db.query(
      "SELECT v.host_id, v.port, v.verified_ms FROM port_verified v JOIN hosts h ON "
      "h.id = v.host_id JOIN jobs j ON j.id = h.job_id WHERE j.name = ?1 AND v.proto = ?2 "
      "ORDER BY v.host_id");
  q.bind(1, job);
  q.bind(2, name(proto));
  std::size_t at = 0;  // the host being filled, in `hosts`
  while (q.step()) {
    const std::int64_t id = q.int64(0);
    while (at < hosts.size() && hosts[at].first < id) fold(hosts[at++].second);
    if (at == hosts.size()) break;
    if (hosts[at].first != id) continue;  // a host that does not count
    const std::int64_t port = q.int64(1);
    if (port < 0 || port > 65535 || index[static_cast<std::size_t>(port)] < 0) continue;
    verified[static_cast<std::size_t>(index[static_cast<std::size_t>(port)])] = q.int64(2);
  }
  while (at < hosts.size()) fold(hosts[at++].second);
  out.oldest.reserve(n);
  for (const std::int64_t t : oldest) out.oldest.push_back(from_ms(t));
  return out;
}

std::vector<Store::StoredHost> Store::hosts(std::string_view job) const {
  auto q = impl_->db.query(
      "SELECT h.name, h.address, h.last_seen_ms FROM hosts h JOIN jobs j ON j.id = h.job_id "
      "WHERE j.name = ?1 AND h.state_ms IS NOT NULL ORDER BY h.name");
  q.bind(1, job);
  std::vector<StoredHost> out;
  while (q.step()) {
    StoredHost h{q.text(0), q.text(1)};
    if (!q.is_null(2)) h.last_seen = from_ms(q.int64(2));
    out.push_back(std::move(h));
  }
  return out;
}

namespace {

constexpr std::string_view kEventColumns =
    "SELECT e.id, e.time_ms, j.name, h.name, e.proto, e.port, e.from_state, e.from_reason, "
    "e.to_state, e.to_reason, e.expected, e.scan_id, e.kind, e.ports, "
    "e.change_id, " PORTVIGIL_SERVICE_COLUMNS("s") ", " PORTVIGIL_SERVICE_COLUMNS("b")
    "FROM events e JOIN hosts h ON h.id = e.host_id JOIN jobs j ON j.id = h.job_id "
    "LEFT JOIN event_services s ON s.event_id = e.id AND s.role = 'now' "
    "LEFT JOIN event_services b ON b.event_id = e.id AND b.role = 'before' ";
constexpr int kEventServiceColumn = 15;
constexpr int kEventPreviousServiceColumn = kEventServiceColumn + 15;

ChangeEvent read_event(const Query& q) {
  ChangeEvent e;
  e.id = q.int64(0);
  e.time = from_ms(q.int64(1));
  e.job = q.text(2);
  e.host = q.text(3);
  e.kind = event_kind_from(q.text(12));
  if (e.kind == EventKind::port) {
    e.change = read_change(q, 4);
  } else if (e.kind == EventKind::service_changed) {
    e.change.proto = proto_from(q.text(4));
    e.change.port = port_from(q.int64(5));
    e.change.from = PortState::open;
    e.change.to = PortState::open;
  } else {
    e.ports = decode_port_list(q.text(13));
  }
  e.expected = q.int64(10) != 0;
  e.scan_id = q.optional_int64(11).value_or(0);
  e.change_id = q.text(14);
  e.service = read_service(q, kEventServiceColumn);
  e.previous_service = read_service(q, kEventPreviousServiceColumn);
  return e;
}

}  // namespace

std::vector<ChangeEvent> Store::events_since(Clock::time_point since,
                                             const std::optional<std::string>& job) const {
  std::string sql{kEventColumns};
  sql += "WHERE e.time_ms >= ?1";
  if (job) sql += " AND j.name = ?2";
  sql += " ORDER BY e.id";
  auto q = impl_->db.query(sql);
  q.bind(1, to_ms(since));
  if (job) q.bind(2, *job);
  std::vector<ChangeEvent> out;
  while (q.step()) out.push_back(read_event(q));
  return out;
}

std::vector<ChangeEvent> Store::events_after(std::int64_t after_id, std::size_t limit) const {
  auto q = impl_->db.query(std::string(kEventColumns) + "WHERE e.id > ?1 ORDER BY e.id LIMIT ?2");
  q.bind(1, after_id).bind(2, to_i64(limit));
  std::vector<ChangeEvent> out;
  while (q.step()) out.push_back(read_event(q));
  return out;
}

namespace {

// Appends " AND <column> = ?n" for each filter field that is set. Only constant fragments
// are appended; the values are bound by bind_filter() with the same numbering.
std::string filter_sql(const PortFilter& f, std::string_view proto_col, std::string_view port_col) {
  std::string sql;
  if (f.job) sql += " AND j.name = ?1";
  if (f.host) sql += " AND h.name = ?2";
  if (f.proto) sql.append(" AND ").append(proto_col).append(" = ?3");
  if (f.port) sql.append(" AND ").append(port_col).append(" = ?4");
  return sql;
}

void bind_filter(Query& q, const PortFilter& f) {
  if (f.job) q.bind(1, *f.job);
  if (f.host) q.bind(2, *f.host);
  if (f.proto) q.bind(3, name(*f.proto));
  if (f.port) q.bind(4, static_cast<std::int64_t>(*f.port));
}

}  // namespace

std::vector<Transition> Store::history(const PortFilter& filter) const {
  // Unused parameter numbers are fine in SQLite; only the numbered ones present are bound.
  const std::string sql =
      "SELECT t.id, t.time_ms, j.name, h.name, t.proto, t.port, t.from_state, t.from_reason, "
      "t.to_state, t.to_reason, t.scan_id, " PORTVIGIL_SERVICE_COLUMNS("s")
      "FROM transitions t JOIN hosts h ON h.id = t.host_id JOIN jobs j ON j.id = h.job_id "
      // The event of the same change, if it made one, and what answered on the port then.
      // (The commit writes both with one time, and scan ids go when scans are pruned.)
      "LEFT JOIN events e ON e.host_id = t.host_id AND e.time_ms = t.time_ms AND "
      "e.kind = 'port' AND e.proto = t.proto AND e.port = t.port AND "
      "e.from_state = t.from_state AND e.to_state = t.to_state "
      "LEFT JOIN event_services s ON s.event_id = e.id AND s.role = 'now' WHERE 1" +
      filter_sql(filter, "t.proto", "t.port") + " ORDER BY t.time_ms, t.id";
  auto q = impl_->db.query(sql);
  bind_filter(q, filter);
  std::vector<Transition> out;
  while (q.step()) {
    Transition t;
    t.id = q.int64(0);
    t.time = from_ms(q.int64(1));
    t.job = q.text(2);
    t.host = q.text(3);
    t.change = read_change(q, 4);
    t.scan_id = q.optional_int64(10).value_or(0);
    t.service = read_service(q, 11);
    out.push_back(std::move(t));
  }
  return out;
}

namespace {

// One host's part of an accept_baseline plan.
struct HostAcceptPlan {
  std::int64_t host_id = 0;
  std::string job;
  std::string host;
  std::vector<std::pair<Proto, std::uint16_t>> add;     // open, not accepted yet
  std::vector<std::pair<Proto, std::uint16_t>> keep;    // open and accepted already
  std::vector<std::pair<Proto, std::uint16_t>> revoke;  // accepted, no longer open
};

// What accepting the open ports in `scope` would change: computed without writing, so that
// --dry-run shows exactly what the real run applies.
std::vector<HostAcceptPlan> plan_accept(Database& db, const PortFilter& scope,
                                        const std::function<HostSnapshot(std::int64_t)>& load) {
  std::vector<HostAcceptPlan> plans;
  {
    PortFilter host_scope;
    host_scope.job = scope.job;
    host_scope.host = scope.host;
    auto q = db.query(
        "SELECT h.id, j.name, h.name FROM hosts h JOIN jobs j ON j.id = h.job_id "
        "WHERE h.state_ms IS NOT NULL" +
        filter_sql(host_scope, "", "") + " ORDER BY j.name, h.name");
    bind_filter(q, host_scope);
    while (q.step()) plans.push_back({q.int64(0), q.text(1), q.text(2), {}, {}, {}});
  }
  for (HostAcceptPlan& plan : plans) {
    const HostSnapshot snap = load(plan.host_id);
    std::set<std::pair<Proto, std::uint16_t>> open;
    for (const ProtoSnapshot& p : snap.protos) {
      if (scope.proto && *scope.proto != p.proto) continue;
      auto consider = [&](std::uint16_t port) {
        if (scope.port && *scope.port != port) return;
        const auto obs = p.state_of(port);
        if (obs && obs->state == PortState::open) open.emplace(p.proto, port);
      };
      if (p.usual.state == PortState::open) {
        for (const PortRange& r : p.scanned) {
          for (std::uint32_t port = r.first; port <= r.last; ++port) {
            consider(static_cast<std::uint16_t>(port));
          }
        }
      } else {
        for (const auto& entry : p.exceptions) consider(entry.first);
      }
    }
    std::set<std::pair<Proto, std::uint16_t>> existing;
    {
      PortFilter port_scope;
      port_scope.proto = scope.proto;
      port_scope.port = scope.port;
      auto q = db.query("SELECT a.proto, a.port FROM accepted_ports a WHERE a.host_id = ?5" +
                        filter_sql(port_scope, "a.proto", "a.port"));
      bind_filter(q, port_scope);
      q.bind(5, plan.host_id);
      while (q.step()) existing.emplace(proto_from(q.text(0)), port_from(q.int64(1)));
    }
    for (const auto& key : existing) {
      if (!open.contains(key)) plan.revoke.push_back(key);
    }
    for (const auto& key : open) (existing.contains(key) ? plan.keep : plan.add).push_back(key);
  }
  return plans;
}

AcceptPreview to_preview(const std::vector<HostAcceptPlan>& plans) {
  AcceptPreview out;
  for (const auto& plan : plans) {
    for (const auto& [proto, port] : plan.add)
      out.add.push_back({plan.job, plan.host, proto, port});
    for (const auto& [proto, port] : plan.keep) {
      out.keep.push_back({plan.job, plan.host, proto, port});
    }
    for (const auto& [proto, port] : plan.revoke) {
      out.revoke.push_back({plan.job, plan.host, proto, port});
    }
  }
  return out;
}

}  // namespace

AcceptPreview Store::plan_accept_baseline(const PortFilter& scope) const {
  Impl& s = *impl_;
  Transaction tx(s.db, Transaction::Kind::read);
  return to_preview(
      plan_accept(s.db, scope, [&s](std::int64_t id) { return s.load_snapshot(id); }));
}

AcceptResult Store::accept_baseline(const PortFilter& scope) {
  Impl& s = *impl_;
  Transaction tx(s.db, Transaction::Kind::write);
  const auto plans =
      plan_accept(s.db, scope, [&s](std::int64_t id) { return s.load_snapshot(id); });
  const std::int64_t now_ms = to_ms(Clock::now());
  AcceptResult result;
  for (const HostAcceptPlan& plan : plans) {
    for (const auto& [proto, port] : plan.revoke) {
      s.db.query("DELETE FROM accepted_ports WHERE host_id = ?1 AND proto = ?2 AND port = ?3")
          .bind(1, plan.host_id)
          .bind(2, name(proto))
          .bind(3, static_cast<std::int64_t>(port))
          .run();
    }
    for (const auto& [proto, port] : plan.add) {
      s.db.query(
              "INSERT INTO accepted_ports(host_id, proto, port, accepted_ms) VALUES (?1, ?2, ?3, "
              "?4)")
          .bind(1, plan.host_id)
          .bind(2, name(proto))
          .bind(3, static_cast<std::int64_t>(port))
          .bind(4, now_ms)
          .run();
    }
    result.revoked += plan.revoke.size();
    result.added += plan.add.size();
    result.accepted += plan.add.size() + plan.keep.size();
  }
  tx.commit();
  return result;
}

std::size_t Store::revoke_accepted(const PortFilter& scope) {
  Impl& s = *impl_;
  Transaction tx(s.db, Transaction::Kind::write);
  auto q = s.db.query(
      "DELETE FROM accepted_ports WHERE (host_id, proto, port) IN (SELECT a.host_id, a.proto, "
      "a.port FROM accepted_ports a "
      "JOIN hosts h ON h.id = a.host_id JOIN jobs j ON j.id = h.job_id WHERE 1" +
      filter_sql(scope, "a.proto", "a.port") + ")");
  bind_filter(q, scope);
  q.run();
  const auto n = static_cast<std::size_t>(s.db.changes());
  tx.commit();
  return n;
}

std::vector<std::string> Store::job_names() const {
  auto q = impl_->db.query("SELECT name FROM jobs ORDER BY name");
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.text(0));
  return out;
}

bool Store::has_host(const PortFilter& filter) const {
  PortFilter f;
  f.job = filter.job;
  f.host = filter.host;
  auto q = impl_->db.query("SELECT 1 FROM hosts h JOIN jobs j ON j.id = h.job_id WHERE 1" +
                           filter_sql(f, "", "") + " LIMIT 1");
  bind_filter(q, f);
  return q.step();
}

bool Store::is_accepted(std::string_view job, std::string_view host, Proto proto,
                        std::uint16_t port) const {
  auto q = impl_->db.query(
      "SELECT 1 FROM accepted_ports a JOIN hosts h ON h.id = a.host_id "
      "JOIN jobs j ON j.id = h.job_id "
      "WHERE j.name = ?1 AND h.name = ?2 AND a.proto = ?3 AND a.port = ?4");
  q.bind(1, job).bind(2, host).bind(3, name(proto)).bind(4, static_cast<std::int64_t>(port));
  return q.step();
}

std::vector<PortKey> Store::accepted_ports(const PortFilter& filter) const {
  const std::string sql =
      "SELECT j.name, h.name, a.proto, a.port FROM accepted_ports a "
      "JOIN hosts h ON h.id = a.host_id JOIN jobs j ON j.id = h.job_id WHERE 1" +
      filter_sql(filter, "a.proto", "a.port") + " ORDER BY j.name, h.name, a.proto, a.port";
  auto q = impl_->db.query(sql);
  bind_filter(q, filter);
  std::vector<PortKey> out;
  while (q.step()) {
    out.push_back({q.text(0), q.text(1), proto_from(q.text(2)), port_from(q.int64(3))});
  }
  return out;
}

std::optional<ScanRecord> Store::scan(std::int64_t scan_id) const {
  auto q = impl_->db.query(std::string(kScanColumns) + "WHERE s.id = ?1");
  q.bind(1, scan_id);
  if (!q.step()) return std::nullopt;
  return read_scan(q);
}

std::vector<ScanRecord> Store::latest_scans() const {
  auto q = impl_->db.query(std::string(kScanColumns) +
                           "WHERE s.id = (SELECT s2.id FROM scans s2 WHERE s2.job_id = s.job_id "
                           "ORDER BY s2.started_ms DESC, s2.id DESC LIMIT 1) ORDER BY j.name");
  std::vector<ScanRecord> out;
  while (q.step()) out.push_back(read_scan(q));
  return out;
}

std::vector<ScanRecord> Store::scans(std::string_view job, std::size_t limit) const {
  auto q = impl_->db.query(std::string(kScanColumns) +
                           "WHERE j.name = ?1 ORDER BY s.started_ms DESC, s.id DESC LIMIT ?2");
  q.bind(1, job).bind(2, to_i64(limit));
  std::vector<ScanRecord> out;
  while (q.step()) out.push_back(read_scan(q));
  return out;
}

std::optional<ScanRecord> Store::latest_complete_scan(std::string_view job) const {
  auto q = impl_->db.query(std::string(kScanColumns) +
                           "WHERE j.name = ?1 AND s.status = 'complete' "
                           "ORDER BY s.started_ms DESC, s.id DESC LIMIT 1");
  q.bind(1, job);
  if (!q.step()) return std::nullopt;
  return read_scan(q);
}

PruneResult Store::prune(const Retention& retention, Clock::time_point now) {
  Impl& s = *impl_;
  PruneResult result;
  const auto cutoff = [&](std::chrono::seconds keep) { return to_ms(now - keep); };
  {
    Transaction tx(s.db, Transaction::Kind::write);
    if (retention.transitions) {
      s.db.query("DELETE FROM transitions WHERE time_ms < ?1")
          .bind(1, cutoff(*retention.transitions))
          .run();
      result.transitions = to_size(s.db.changes());
    }
    if (retention.events) {
      s.db.query("DELETE FROM events WHERE time_ms < ?1 AND id <= ?2")
          .bind(1, cutoff(*retention.events))
          .bind(2, retention.keep_events_after.value_or(std::numeric_limits<std::int64_t>::max()))
          .run();
      result.events = to_size(s.db.changes());
    }
    if (retention.scans) {
      // Rows referring to a pruned scan keep their data; their scan_id becomes NULL.
      s.db.query(
              "DELETE FROM scans WHERE status <> 'running' "
              "AND coalesce(finished_ms, started_ms) < ?1")
          .bind(1, cutoff(*retention.scans))
          .run();
      result.scans = to_size(s.db.changes());
    }
    tx.commit();
  }
  if (result.transitions + result.events + result.scans > 0) {
    Transaction tx(s.db, Transaction::Kind::write);  // in turn with the process's writers
    s.db.exec("PRAGMA incremental_vacuum");
    tx.commit();
  }
  return result;
}

StorageStats Store::stats() const {
  Database& db = impl_->db;
  Transaction tx(db, Transaction::Kind::read);
  auto count = [&](std::string_view sql) {
    auto q = db.query(sql);
    return q.step() ? to_size(q.int64(0)) : 0;
  };
  StorageStats st;
  st.jobs = count("SELECT count(*) FROM jobs");
  st.hosts = count("SELECT count(*) FROM hosts");
  st.hosts_with_state = count("SELECT count(*) FROM hosts WHERE state_ms IS NOT NULL");
  st.default_rows = count("SELECT count(*) FROM port_defaults");
  st.exception_rows = count("SELECT count(*) FROM port_exceptions");
  st.transitions = count("SELECT count(*) FROM transitions");
  st.events = count("SELECT count(*) FROM events");
  st.scans = count("SELECT count(*) FROM scans");
  st.accepted = count("SELECT count(*) FROM accepted_ports");
  st.file_bytes = to_size(db.pragma_int("PRAGMA page_count") * db.pragma_int("PRAGMA page_size"));
  tx.commit();
  return st;
}

std::vector<std::string> Store::integrity_problems() const {
  Database& db = impl_->db;
  std::vector<std::string> problems;
  {
    auto q = db.query("PRAGMA integrity_check");
    while (q.step()) {
      std::string line = q.text(0);
      if (line != "ok") problems.push_back(std::move(line));
    }
  }
  {
    auto q = db.query("PRAGMA foreign_key_check");
    while (q.step()) {
      problems.push_back("foreign key: " + q.text(0) + " rowid " + q.text(1) + " -> " + q.text(2));
    }
  }
  return problems;
}

void Store::continue_event_ids_after(std::int64_t id) {
  Transaction tx(impl_->db, Transaction::Kind::write);
  // sqlite_sequence has no row for "events" until the first event; it may be written to.
  impl_->db
      .query(
          "INSERT INTO sqlite_sequence(name, seq) SELECT 'events', 0 "
          "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events')")
      .run();
  impl_->db.query("UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'events' AND seq < ?1")
      .bind(1, id)
      .run();
  tx.commit();
}

bool Store::repair_event_id_sequence(std::int64_t limit) {
  Transaction tx(impl_->db, Transaction::Kind::write);
  auto q = impl_->db.query(
      "UPDATE sqlite_sequence SET seq = max("
      "  (SELECT coalesce(max(id), 0) FROM events),"
      "  (SELECT coalesce(min(max(value), ?1), 0) FROM agent_meta"
      "     WHERE key = 'published_event_id')) "
      "WHERE name = 'events' AND seq > ?1");
  q.bind(1, limit).run();
  const bool changed = impl_->db.changes() > 0;
  tx.commit();
  return changed;
}

namespace {
// Delivery marks in agent_meta: the event log's under its historic key, each sink's under
// "sink:" and its name.
std::string sink_key(std::string_view sink) {
  return "sink:" + std::string(sink);
}
}  // namespace

std::int64_t Store::published_event_id() const {
  auto q = impl_->db.query("SELECT value FROM agent_meta WHERE key = 'published_event_id'");
  return q.step() ? q.int64(0) : 0;
}

void Store::set_published_event_id(std::int64_t id) {
  Transaction tx(impl_->db, Transaction::Kind::write);  // in turn with the process's writers
  impl_->db
      .query(
          "INSERT INTO agent_meta(key, value) VALUES ('published_event_id', ?1) "
          "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)")
      .bind(1, id)
      .run();
  tx.commit();
}

std::optional<std::int64_t> Store::sink_cursor(std::string_view sink) const {
  auto q = impl_->db.query("SELECT value FROM agent_meta WHERE key = ?1");
  q.bind(1, sink_key(sink));
  if (!q.step()) return std::nullopt;
  return q.int64(0);
}

void Store::set_sink_cursor(std::string_view sink, std::int64_t id) {
  Transaction tx(impl_->db, Transaction::Kind::write);
  impl_->db
      .query(
          "INSERT INTO agent_meta(key, value) VALUES (?1, ?2) "
          "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)")
      .bind(1, sink_key(sink))
      .bind(2, id)
      .run();
  tx.commit();
}

std::size_t Store::forget_sink_cursors_except(std::span<const std::string> sinks) {
  std::set<std::string, std::less<>> keep;
  for (const auto& s : sinks) keep.insert(sink_key(s));
  Transaction tx(impl_->db, Transaction::Kind::write);
  std::vector<std::string> stale;
  {
    auto q = impl_->db.query("SELECT key FROM agent_meta WHERE substr(key, 1, 5) = 'sink:'");
    while (q.step()) {
      if (auto key = q.text(0); !keep.contains(key)) stale.push_back(std::move(key));
    }
  }
  for (const auto& key : stale) {
    impl_->db.query("DELETE FROM agent_meta WHERE key = ?1").bind(1, key).run();
  }
  tx.commit();
  return stale.size();
}

std::int64_t Store::last_event_id() const {
  auto q = impl_->db.query(
      "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),"
      "           coalesce((SELECT max(id) FROM events), 0))");
  return q.step() ? q.int64(0) : 0;
}

std::size_t Store::count_events_after(std::int64_t id) const {
  auto q = impl_->db.query("SELECT count(*) FROM events WHERE id > ?1");
  q.bind(1, id);
  return q.step() ? static_cast<std::size_t>(q.int64(0)) : 0;
}

int Store::schema_version() const {
  return storage_detail::user_version(impl_->db);
}

}  // namespace portvigil
