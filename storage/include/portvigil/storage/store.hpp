// Persistent per-(job, host, proto, port) state, its change history and change events, in
// one SQLite file (schema and retention: docs/storage.md).
//
// What is kept is the current state (compact: see diff.hpp), one row per real transition,
// one row per event and one summary row per scan; individual observations are not, so a
// year of 15-minute scans of 1000 hosts x 65535 ports grows with the number of changes,
// not scans x ports.
//
// A Store is one connection: use it from one thread at a time. Several Stores (threads or
// processes) may share a file; WAL lets readers run while the agent commits, and every
// scan commits in a single transaction, so a reader sees all of a scan or none of it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "portvigil/common/scan_model.hpp"
#include "portvigil/common/service.hpp"
#include "portvigil/storage/diff.hpp"

namespace portvigil {

// Any failure of the database; the message names the file and carries SQLite's message.
class StorageError : public std::runtime_error {
 public:
  // `disk`: the file system said no (full, I/O error, a file that cannot be created): the
  // database itself is fine and the operation may succeed later. `other`: anything else
  // (schema, corruption, a bug), which retrying does not fix.
  enum class Cause : std::uint8_t { other, disk };
  explicit StorageError(const std::string& what, Cause cause = Cause::other)
      : std::runtime_error(what), cause_(cause) {}
  [[nodiscard]] Cause cause() const { return cause_; }

 private:
  Cause cause_;
};

// Every field left empty matches everything. The `= {}` lets callers write designated
// initializers ({.host = "a"}) without -Wmissing-field-initializers.
struct PortFilter {
  std::optional<std::string> job = {};
  std::optional<std::string> host = {};
  std::optional<Proto> proto = {};
  std::optional<std::uint16_t> port = {};
};

struct PortKey {
  std::string job = {};
  std::string host = {};
  Proto proto = Proto::tcp;
  std::uint16_t port = 0;
  friend bool operator==(const PortKey&, const PortKey&) = default;
};

struct Transition {
  std::int64_t id = 0;
  std::chrono::system_clock::time_point time{};  // millisecond precision
  std::string job;
  std::string host;
  PortChange change;
  std::int64_t scan_id = 0;  // 0 once the scan row has been pruned
  // What answered when this transition opened a TCP port, from its event (none when the
  // port was not identified or the transition made no event).
  std::optional<ServiceIdentity> service = {};
};

// What an event is about. Port events carry `change`; host events carry `ports`.
enum class EventKind : std::uint8_t {
  port,              // a port changed state (or, change.from_absent, a new host's open port)
  host_appeared,     // a host first seen up after its job's baseline; ports: its open ports
  host_gone_silent,  // a known host answered nothing for the job's host-silent-after;
                     // ports: the open ports of its last baseline
  service_changed,   // watch-services: what answers on an open TCP port changed (confirmed);
                     // change.proto/port name it, service and previous_service say what
};
[[nodiscard]] std::string_view name(EventKind kind);  // "port", "host-appeared", ...
[[nodiscard]] std::optional<EventKind> parse_event_kind(std::string_view text);

struct ChangeEvent {
  std::int64_t id = 0;  // increasing: a cursor for consumers
  std::chrono::system_clock::time_point time{};
  std::string job;
  std::string host;
  EventKind kind = EventKind::port;
  PortChange change;                                        // kind == port
  std::vector<std::pair<Proto, std::uint16_t>> ports = {};  // host events, sorted
  bool expected = false;                                    // the policy expects the new state
  std::int64_t scan_id = 0;
  // The same on every replica that saw the same history (common/shard.hpp change_id); ""
  // for events stored before schema version 6.
  std::string change_id = {};
  // Port events that opened a TCP port: what answered there (CommitOptions::services); none
  // when identification did not run. service-changed events: the new service.
  std::optional<ServiceIdentity> service = {};
  // service-changed events: what answered there before.
  std::optional<ServiceIdentity> previous_service = {};
};

// What the agent's policy makes of one change. `silent` still records the transition in
// history but writes no event (e.g. a job configured not to report closing ports).
enum class Verdict : std::uint8_t { unexpected, expected, silent };

struct ChangeContext {
  std::string_view job;
  std::string_view host;
  const PortChange& change;
  bool accepted;  // the port is in the accepted baseline (accept_baseline)
};
using EventPolicy = std::function<Verdict(const ChangeContext&)>;

// Used when commit_scan gets no policy: accepted ports are expected open, all others are
// expected not to be open.
[[nodiscard]] Verdict default_verdict(const ChangeContext& context);

enum class ScanStatus : std::uint8_t { running, complete, incomplete };
[[nodiscard]] std::string_view name(ScanStatus status);

struct ScanRecord {
  std::int64_t id = 0;
  std::string job;
  Technique technique = Technique::connect;
  std::chrono::system_clock::time_point started{};
  std::optional<std::chrono::system_clock::time_point> finished;
  ScanStatus status = ScanStatus::running;
  std::string note;  // why incomplete
  std::size_t hosts_total = 0;
  std::size_t hosts_complete = 0;  // only these updated their baseline
  std::size_t ports_scanned = 0;   // over complete hosts
  std::size_t transitions = 0;
  std::size_t events = 0;
  ScanCounters counters;
};

// How long to keep history; an empty field keeps it forever. Current state, and accepted
// ports, are never pruned.
struct Retention {
  std::optional<std::chrono::seconds> transitions = std::chrono::hours(24 * 400);
  std::optional<std::chrono::seconds> events = std::chrono::hours(24 * 90);
  std::optional<std::chrono::seconds> scans = std::chrono::hours(24 * 90);
  // Events with a higher id are kept whatever their age: an event sink has not delivered
  // them yet (the lowest cursor of the configured sinks).
  std::optional<std::int64_t> keep_events_after;
};

struct PruneResult {
  std::size_t transitions = 0;
  std::size_t events = 0;
  std::size_t scans = 0;
};

struct AcceptResult {
  std::size_t accepted = 0;  // open ports in scope, all accepted now
  std::size_t added = 0;     // of which newly
  std::size_t revoked = 0;   // previously accepted ports in scope that are no longer open
};

// What accept_baseline would do, port by port (baseline accept --dry-run).
struct AcceptPreview {
  std::vector<PortKey> add;     // open now, would become accepted
  std::vector<PortKey> keep;    // open now and accepted already
  std::vector<PortKey> revoke;  // accepted, no longer open: would be revoked
};

struct StorageStats {
  std::size_t jobs = 0;
  std::size_t hosts = 0;
  std::size_t hosts_with_state = 0;
  std::size_t default_rows = 0;    // one per (host, proto)
  std::size_t exception_rows = 0;  // ports not in their host's usual state
  std::size_t transitions = 0;
  std::size_t events = 0;
  std::size_t scans = 0;
  std::size_t accepted = 0;
  std::size_t file_bytes = 0;  // page_count * page_size, WAL not included
};

// One host's result reduced to its compact state as soon as the host finishes, so a scan
// of 1000 hosts x 65535 ports need not keep ~400 MB of PortResults until it commits.
struct ScannedHost {
  std::string host = {};  // host_key()
  std::string address = {};
  bool complete = true;
  std::string note = {};
  HostSnapshot state = {};  // ignored when !complete
  // For an incomplete host: whether it answered anything (inconclusive: it is up), answered
  // nothing at all (down, or an address nobody uses), or the scan cannot say (timeout,
  // interruption). A complete host has answered.
  enum class Presence : std::uint8_t { answered, silent, unknown };
  Presence presence = Presence::answered;
  // The scan verified only some of the host's ports (udp-coverage): `state` is merged into
  // the stored state (merge_snapshots) instead of replacing it.
  bool partial = false;
  // Gained by resharding: `state` becomes the host's baseline without being compared with
  // anything stored (which may be stale from before the host was lost): no events. Its
  // accepted ports are forgotten (another era) and, for a job without a policy, its open
  // ports accepted, as with the first baseline.
  bool adopted = false;

  [[nodiscard]] static ScannedHost from(const HostResult& result, Technique technique);
};

struct CommitOptions {
  // With accept_first_baseline, the open ports of the job's first baseline are accepted in
  // the same transaction (for a job without a policy), so no crash can separate the two.
  // Hosts that appear later are new exposure: their ports are not accepted.
  bool accept_first_baseline = false;
  // A known host that has answered nothing for this long gets one host-gone-silent event.
  std::chrono::seconds silent_after = std::chrono::minutes(30);
  // Paced UDP jobs (udp-coverage): when each port of a complete host was verified is
  // recorded (port_verified).
  bool record_verified = false;
  // ScannedHost::partial hosts: the job's ports now, sorted (their stored state forgets the
  // others); and how long after a host was first seen ports new to its state still complete
  // its first baseline (accepted with it, or events from "absent" on a host that appeared).
  // Later they are only added, as ports added to a job's list are.
  std::vector<std::uint16_t> job_ports = {};
  std::chrono::seconds first_coverage{0};
  // The agent's shard ("I/N"), recorded with the job (Store::job_shard).
  std::string shard = "0/1";
  // Hosts gained by resharding that this scan could not adopt (not scanned cleanly): their
  // next clean scan adopts them (Store::pending_adoptions).
  std::vector<std::string> adopt_later = {};
  // What answered on TCP ports this scan opens (the agent identifies planned_openings()
  // before it commits), stored with their port events. Ports without one get none.
  struct OpenedService {
    std::string host;  // host key
    std::uint16_t port = 0;
    ServiceIdentity identity;
  };
  std::vector<OpenedService> services = {};
  // watch-services: fresh conclusive reads of ports that were open before this scan. Each
  // replaces the port's stored service (Store::port_services); a `changed` one (the caller
  // confirmed it with a second read) is also a service-changed event, carrying the stored
  // service as its previous_service.
  struct ServiceCheck {
    std::string host;
    std::uint16_t port = 0;
    ServiceIdentity identity;
    bool changed = false;
  };
  std::vector<ServiceCheck> service_checks = {};
  // The job watches services: what was read on each open TCP port is kept (port_services,
  // the base of the next comparison and of the certificate metric). Without it nothing is
  // kept, so turning watch-services on starts from fresh reads, silently.
  bool watch_services = false;
};

// What a commit found beyond its events, for the agent's metrics and log.
struct CommitSummary {
  std::size_t hosts_appeared = 0;
  std::size_t hosts_down = 0;         // known hosts (seen up before) that answered nothing
  std::size_t hosts_gone_silent = 0;  // of which silent for at least silent_after
  std::size_t addresses_unused = 0;   // silent addresses never seen up: not hosts
};

enum class Access : std::uint8_t {
  // The one agent that owns the file: creates/migrates it and, because it is the only
  // writer of scans, marks scans left 'running' by a previous process as incomplete.
  agent,
  // Read-write for the CLI (accept, prune) while an agent may be running, and for each of
  // the agent's job threads (a connection per thread): creates and migrates, but leaves
  // running scans alone.
  tool,
  // Never writes; the file must exist and have the current schema version. When the disk
  // is full SQLite cannot create the -shm file a WAL reader needs: the file is then read
  // as immutable (see read_note()).
  read_only,
};

class Store {
 public:
  // Opens or creates `path` (":memory:" works for tests), applies pending migrations,
  // turns on WAL, foreign keys and a busy timeout. Throws StorageError.
  [[nodiscard]] static Store open(const std::string& path, Access access = Access::agent);

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  // Commits one small write (the schema version, rewritten unchanged): throws StorageError
  // with cause disk when the file system cannot take a write now (full, I/O error). The
  // agent asks before it trusts a reopened database.
  void check_writable();

  // Set when a read_only store could only be opened as immutable (disk full or failing):
  // what the reader should be told, e.g. that commits still in the -wal file are not shown.
  [[nodiscard]] std::optional<std::string> read_note() const;

  // Records a 'running' scan; it becomes 'complete' only through commit_scan().
  std::int64_t begin_scan(std::string_view job, Technique technique,
                          std::chrono::system_clock::time_point started);

  // In one transaction: for each complete host, diffs it against its stored state, records
  // transitions and (per `policy`) events, and replaces the state of the protocols it
  // scanned; stores the summary and marks the scan complete. Returns the events written.
  // Throws if the scan is not 'running' (e.g. marked incomplete on a restart), leaving the
  // database unchanged.
  //
  // Baselines (docs/storage.md): the job's first complete scan in which a host answered
  // is the job's baseline, silent. A host whose first complete scan comes later is new
  // exposure: a host-appeared event and one from-"absent" port event per open port,
  // unless it had already answered at the job's baseline (it was known, only not
  // comparable then). Incomplete hosts keep their state; a known one that answered
  // nothing counts as down and, once silent for `silent_after`, gets one
  // host-gone-silent event. Addresses that never answered are not hosts: nothing is
  // stored for them.
  std::vector<ChangeEvent> commit_scan(std::int64_t scan_id, std::span<const HostResult> hosts,
                                       const ScanCounters& counters,
                                       std::chrono::system_clock::time_point finished,
                                       const EventPolicy& policy = {},
                                       const CommitOptions& options = {},
                                       CommitSummary* summary = nullptr);
  // The same from compact results (diff_snapshots instead of diff_host).
  std::vector<ChangeEvent> commit_scan(std::int64_t scan_id, std::span<const ScannedHost> hosts,
                                       const ScanCounters& counters,
                                       std::chrono::system_clock::time_point finished,
                                       const EventPolicy& policy = {},
                                       const CommitOptions& options = {},
                                       CommitSummary* summary = nullptr);

  // The TCP ports that commit_scan() with the same arguments finds changed to open (events
  // unless the policy answers `silent`; the ports of hosts that appear included), by host
  // key, in host order, each once: the same plan the commit applies, worked out without
  // writing. The agent identifies these before it commits. `finished` and `options` as for
  // the commit.
  struct Opening {
    std::string host;
    std::uint16_t port = 0;
    friend bool operator==(const Opening&, const Opening&) = default;
  };
  [[nodiscard]] std::vector<Opening> planned_tcp_openings(
      std::int64_t scan_id, std::span<const ScannedHost> hosts,
      std::chrono::system_clock::time_point finished, const CommitOptions& options = {}) const;

  // What was last read on each open TCP port of the job's hosts (watch-services jobs:
  // openings and watched reads; conclusive reads only), by host and port.
  struct PortServiceRecord {
    std::string host;
    std::uint16_t port = 0;
    std::chrono::system_clock::time_point identified{};
    ServiceIdentity identity;
  };
  [[nodiscard]] std::vector<PortServiceRecord> port_services(std::string_view job) const;
  // What the job's events last said answered on each TCP port (the service of the latest
  // event that opened it or changed its service), by host and port; `identified` is that
  // event's time. Any job: the events keep what identification read.
  [[nodiscard]] std::vector<PortServiceRecord> event_services(std::string_view job) const;

  // For crash, timeout, SIGTERM: nothing of the scan is kept but its row. Returns false if
  // the scan was not running (already committed or marked).
  bool mark_incomplete(std::int64_t scan_id, std::string_view why,
                       std::chrono::system_clock::time_point when);

  [[nodiscard]] HostSnapshot baseline(std::string_view job, std::string_view host) const;
  // Whether the host has ever answered a scan of the job (its baseline may still be
  // missing: inconclusive so far).
  [[nodiscard]] bool known_host(std::string_view job, std::string_view host) const;

  struct StoredHost {
    std::string host;     // host_key(): what the user wrote, else the address
    std::string address;  // the address of its last complete scan
    // When it last answered anything (a complete or an inconclusive scan of it).
    std::optional<std::chrono::system_clock::time_point> last_seen = std::nullopt;
  };
  // The hosts of `job` that have a baseline, by name.
  [[nodiscard]] std::vector<StoredHost> hosts(std::string_view job) const;
  // The shard ("I/N") of the job's last committed scan; nullopt before the first, or for a
  // scan committed before shards existed (both mean the whole).
  [[nodiscard]] std::optional<std::string> job_shard(std::string_view job) const;
  // Hosts gained by a resharding that still wait for a clean scan to adopt them.
  [[nodiscard]] std::vector<std::string> pending_adoptions(std::string_view job) const;
  // The names of every host known_host() is true for.
  [[nodiscard]] std::vector<std::string> known_hosts(std::string_view job) const;

  // Events with time >= since, oldest first.
  [[nodiscard]] std::vector<ChangeEvent> events_since(
      std::chrono::system_clock::time_point since,
      const std::optional<std::string>& job = std::nullopt) const;
  // Events with id > after_id, oldest first, at most `limit`: a resumable cursor.
  [[nodiscard]] std::vector<ChangeEvent> events_after(std::int64_t after_id,
                                                      std::size_t limit) const;

  // Event ids only grow: a pruned id is never handed out again. After a lost or replaced
  // database this makes the next id exceed `id` (the event log's last one), so consumers'
  // cursors and the log's de-duplication keep working. A no-op when ids are already higher.
  void continue_event_ids_after(std::int64_t id);
  // Undoes a sequence pushed above `limit` (by an older agent that trusted a garbage "id" in
  // its event log, which could exhaust it): sets it back to the highest id in use, or to the
  // published mark if that is higher and within `limit`. Ids in use are never handed out
  // again. Returns whether it changed anything.
  bool repair_event_id_sequence(std::int64_t limit);
  // The highest event id the agent has written to its event log, 0 before the first. Kept
  // in the database so that a rotated or lost log file is not refilled with old events.
  [[nodiscard]] std::int64_t published_event_id() const;
  void set_published_event_id(std::int64_t id);
  // The same mark for each configured event sink ([[sink]], by name): the highest event id
  // it has delivered; nullopt before the sink's first start. It only grows.
  [[nodiscard]] std::optional<std::int64_t> sink_cursor(std::string_view sink) const;
  void set_sink_cursor(std::string_view sink, std::int64_t id);
  // Drops the cursors of sinks not in `sinks` (removed from the configuration): one added
  // again later starts afresh, like any new sink, instead of delivering from where it
  // stopped. Returns how many were dropped.
  std::size_t forget_sink_cursors_except(std::span<const std::string> sinks);
  // The highest event id handed out so far (0 before the first event), pruned ones included.
  [[nodiscard]] std::int64_t last_event_id() const;
  // How many stored events have an id above `id`.
  [[nodiscard]] std::size_t count_events_after(std::int64_t id) const;

  // Transitions matching the filter, oldest first.
  [[nodiscard]] std::vector<Transition> history(const PortFilter& filter) const;

  // Makes the accepted baseline of every host in scope equal to its currently open ports:
  // applies exactly what plan_accept_baseline(scope) shows.
  AcceptResult accept_baseline(const PortFilter& scope);
  [[nodiscard]] AcceptPreview plan_accept_baseline(const PortFilter& scope) const;
  // Removes the accepted ports in scope (open ones become unexpected again); returns how many.
  std::size_t revoke_accepted(const PortFilter& scope);
  // Every job with stored state, by name, and whether a host matches the filter's job and
  // host: a --job or --host that names nothing is a mistake, not an empty answer.
  [[nodiscard]] std::vector<std::string> job_names() const;
  [[nodiscard]] bool has_host(const PortFilter& filter) const;
  [[nodiscard]] bool is_accepted(std::string_view job, std::string_view host, Proto proto,
                                 std::uint16_t port) const;
  // Since when a port has been open, at least: its last transition to or from open (a
  // port can reopen without a transition, e.g. when the technique changes, and the close
  // is then the tighter bound), else (open since its host's first scan, or the transitions
  // were pruned) when the host first answered.
  // nullopt for a host the job does not know.
  [[nodiscard]] std::optional<std::chrono::system_clock::time_point> open_since(
      std::string_view job, std::string_view host, Proto proto, std::uint16_t port) const;
  [[nodiscard]] std::vector<PortKey> accepted_ports(const PortFilter& filter) const;

  // UDP coverage (udp-coverage) over the job's hosts with a stored state that answered at
  // or after `seen_since` (a host down for longer does not hold the rotation back). Per
  // port of `ports`: the oldest verification among those hosts, where a host that never
  // verified the port counts from when it was first seen and sets `never`; and the mean
  // (a tie-break: which ports the other hosts verified longest ago). All empty without
  // such a host.
  struct PortCoverage {
    std::vector<std::chrono::system_clock::time_point> oldest;  // as `ports`
    std::vector<bool> never;
    std::vector<double> mean_ms;
  };
  [[nodiscard]] PortCoverage port_coverage(std::string_view job, Proto proto,
                                           std::span<const std::uint16_t> ports,
                                           std::chrono::system_clock::time_point seen_since) const;

  [[nodiscard]] std::optional<ScanRecord> scan(std::int64_t scan_id) const;
  // The newest scan of each job, by job name.
  [[nodiscard]] std::vector<ScanRecord> latest_scans() const;
  // The newest complete scan of one job.
  [[nodiscard]] std::optional<ScanRecord> latest_complete_scan(std::string_view job) const;
  // The newest `limit` scans of one job, newest first.
  [[nodiscard]] std::vector<ScanRecord> scans(std::string_view job, std::size_t limit) const;

  // Deletes history older than `now - retention` and returns the freed pages to the OS.
  PruneResult prune(const Retention& retention, std::chrono::system_clock::time_point now);

  [[nodiscard]] StorageStats stats() const;
  // PRAGMA integrity_check and foreign_key_check; empty when the file is sound.
  [[nodiscard]] std::vector<std::string> integrity_problems() const;
  [[nodiscard]] int schema_version() const;

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace portvigil
