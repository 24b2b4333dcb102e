#include "schema.hpp"

#include <array>
#include <string>

#include "portvigil/storage/store.hpp"

namespace portvigil::storage_detail {
namespace {

// Version 1. Names (states, reasons, protos, techniques) are stored as their Nmap
// spellings, so the file reads well in the sqlite3 shell and survives enum reordering.
// Times are Unix milliseconds.
constexpr std::string_view kV1 = R"sql(
CREATE TABLE jobs (
  id   INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);

CREATE TABLE scans (
  id               INTEGER PRIMARY KEY,
  job_id           INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  technique        TEXT NOT NULL,
  started_ms       INTEGER NOT NULL,
  finished_ms      INTEGER,
  status           TEXT NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'complete', 'incomplete')),
  note             TEXT NOT NULL DEFAULT '',
  hosts_total      INTEGER NOT NULL DEFAULT 0,
  hosts_complete   INTEGER NOT NULL DEFAULT 0,
  ports_scanned    INTEGER NOT NULL DEFAULT 0,
  transitions      INTEGER NOT NULL DEFAULT 0,
  events           INTEGER NOT NULL DEFAULT 0,
  probes_sent      INTEGER NOT NULL DEFAULT 0,
  retransmissions  INTEGER NOT NULL DEFAULT 0,
  responses        INTEGER NOT NULL DEFAULT 0,
  refused_by_scope INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX scans_job_started ON scans(job_id, started_ms);
CREATE INDEX scans_running ON scans(status) WHERE status = 'running';

-- state_ms is NULL until the host's first complete scan: no baseline yet.
CREATE TABLE hosts (
  id            INTEGER PRIMARY KEY,
  job_id        INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  name          TEXT NOT NULL,
  address       TEXT NOT NULL DEFAULT '',
  state_scan_id INTEGER REFERENCES scans(id) ON DELETE SET NULL,
  state_ms      INTEGER,
  UNIQUE (job_id, name)
);
CREATE INDEX hosts_state_scan ON hosts(state_scan_id);

-- Current state, compact: per (host, proto) the scanned port set ("1-1024,8080"), the
-- usual state and reason, and below, rows only for ports in another state.
CREATE TABLE port_defaults (
  host_id    INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
  proto      TEXT NOT NULL CHECK (proto IN ('tcp', 'udp')),
  technique  TEXT NOT NULL,
  ports      TEXT NOT NULL,
  port_count INTEGER NOT NULL,
  state      TEXT NOT NULL,
  reason     TEXT NOT NULL,
  PRIMARY KEY (host_id, proto)
) WITHOUT ROWID;

CREATE TABLE port_exceptions (
  host_id INTEGER NOT NULL,
  proto   TEXT NOT NULL,
  port    INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
  state   TEXT NOT NULL,
  reason  TEXT NOT NULL,
  PRIMARY KEY (host_id, proto, port),
  FOREIGN KEY (host_id, proto) REFERENCES port_defaults(host_id, proto) ON DELETE CASCADE
) WITHOUT ROWID;

-- One row per real change of state, for history().
CREATE TABLE transitions (
  id          INTEGER PRIMARY KEY,
  host_id     INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
  scan_id     INTEGER REFERENCES scans(id) ON DELETE SET NULL,
  time_ms     INTEGER NOT NULL,
  proto       TEXT NOT NULL,
  port        INTEGER NOT NULL,
  from_state  TEXT NOT NULL,
  from_reason TEXT NOT NULL,
  to_state    TEXT NOT NULL,
  to_reason   TEXT NOT NULL
);
CREATE INDEX transitions_time ON transitions(time_ms);
CREATE INDEX transitions_port ON transitions(host_id, port);
CREATE INDEX transitions_scan ON transitions(scan_id);

-- The changes the policy reported; id is the consumers' cursor.
CREATE TABLE events (
  id          INTEGER PRIMARY KEY,
  time_ms     INTEGER NOT NULL,
  host_id     INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
  scan_id     INTEGER REFERENCES scans(id) ON DELETE SET NULL,
  proto       TEXT NOT NULL,
  port        INTEGER NOT NULL,
  from_state  TEXT NOT NULL,
  to_state    TEXT NOT NULL,
  from_reason TEXT NOT NULL,
  to_reason   TEXT NOT NULL,
  expected    INTEGER NOT NULL CHECK (expected IN (0, 1))
);
CREATE INDEX events_time ON events(time_ms);
CREATE INDEX events_scan ON events(scan_id);

-- The accepted baseline: ports the operator expects to be open.
CREATE TABLE accepted_ports (
  host_id     INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
  proto       TEXT NOT NULL,
  port        INTEGER NOT NULL,
  accepted_ms INTEGER NOT NULL,
  PRIMARY KEY (host_id, proto, port)
) WITHOUT ROWID;
)sql";

// Version 2. Event ids are the consumers' cursor (and the event log's de-duplication key),
// so they must never be reused: v1's plain INTEGER PRIMARY KEY handed out id 1 again once
// retention had pruned every event. AUTOINCREMENT needs a new table (SQLite's
// "12-step" table change; nothing references events). agent_meta holds the event log's
// high-water mark.
constexpr std::string_view kV2 = R"sql(
CREATE TABLE events_v2 (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms     INTEGER NOT NULL,
  host_id     INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
  scan_id     INTEGER REFERENCES scans(id) ON DELETE SET NULL,
  proto       TEXT NOT NULL,
  port        INTEGER NOT NULL,
  from_state  TEXT NOT NULL,
  to_state    TEXT NOT NULL,
  from_reason TEXT NOT NULL,
  to_reason   TEXT NOT NULL,
  expected    INTEGER NOT NULL CHECK (expected IN (0, 1))
);
INSERT INTO events_v2 (id, time_ms, host_id, scan_id, proto, port, from_state, to_state,
                       from_reason, to_reason, expected)
  SELECT id, time_ms, host_id, scan_id, proto, port, from_state, to_state, from_reason,
         to_reason, expected FROM events;
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
CREATE INDEX events_time ON events(time_ms);
CREATE INDEX events_scan ON events(scan_id);

CREATE TABLE agent_meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// Version 3. New hosts are new exposure and known hosts can go silent:
// - jobs.baseline_ms: when the job's first baseline was committed; a host whose first
//   baseline comes later "appeared" (events), one before or with it is silent.
// - hosts.seen_ms / last_seen_ms: first and last time the host answered anything (an
//   inconclusive host has answered); silent_reported: its host-gone-silent event is out.
// - events.kind and events.ports: host-level events ('host-appeared', 'host-gone-silent')
//   list ports as "22/tcp,80/tcp"; their proto is '' and port 0.
// Existing jobs with stored hosts count as baselined at their oldest host state.
constexpr std::string_view kV3 = R"sql(
ALTER TABLE jobs ADD COLUMN baseline_ms INTEGER;
UPDATE jobs SET baseline_ms = (SELECT MIN(state_ms) FROM hosts WHERE hosts.job_id = jobs.id);
ALTER TABLE hosts ADD COLUMN seen_ms INTEGER;
ALTER TABLE hosts ADD COLUMN last_seen_ms INTEGER;
ALTER TABLE hosts ADD COLUMN silent_reported INTEGER NOT NULL DEFAULT 0;
UPDATE hosts SET seen_ms = state_ms, last_seen_ms = state_ms WHERE state_ms IS NOT NULL;
ALTER TABLE events ADD COLUMN kind TEXT NOT NULL DEFAULT 'port';
ALTER TABLE events ADD COLUMN ports TEXT NOT NULL DEFAULT '';
)sql";

// Version 4. UDP coverage (udp-coverage): when each port of a host was last verified by a
// complete UDP scan, so each scan can pick the ports verified longest ago.
constexpr std::string_view kV4 = R"sql(
CREATE TABLE port_verified (
  host_id     INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
  proto       TEXT NOT NULL CHECK (proto IN ('tcp', 'udp')),
  port        INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
  verified_ms INTEGER NOT NULL,
  PRIMARY KEY (host_id, proto, port)
) WITHOUT ROWID;
)sql";

// Version 5. Shards ([agent] shard):
// - jobs.shard: the shard "I/N" under which the job's last scan was committed, so the first
//   scan under another shard knows which hosts it gained. NULL: the whole.
// - hosts.adopt_pending: gained by a resharding but not yet scanned cleanly: its next clean
//   scan takes its baseline without events.
// - hosts.adopted_ms: when the host's baseline was last taken that way (its stored history
//   before then is another era: open_since and the first coverage count from it).
constexpr std::string_view kV5 = R"sql(
ALTER TABLE jobs ADD COLUMN shard TEXT;
ALTER TABLE hosts ADD COLUMN adopt_pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN adopted_ms INTEGER;
)sql";

// Version 6. Change ids that the replicas of a shard agree on (common/shard.hpp change_id):
// - events.change_id: '' for events written before this version.
// - event_chains: per host and port ('' and 0 for host events) the change_id of the job's
//   last event there, which the next one hashes in; never pruned with the events.
// - hosts.change_seed: what a port's first change_id hashes in instead: '' for a host of
//   the job's own history, "adopted under I/N" for one a resharding brought, so the new
//   owners' ids differ from the old owners'.
constexpr std::string_view kV6 = R"sql(
ALTER TABLE events ADD COLUMN change_id TEXT NOT NULL DEFAULT '';
CREATE TABLE event_chains (
  host_id        INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
  proto          TEXT NOT NULL,
  port           INTEGER NOT NULL,
  last_change_id TEXT NOT NULL,
  PRIMARY KEY (host_id, proto, port)
) WITHOUT ROWID;
ALTER TABLE hosts ADD COLUMN change_seed TEXT NOT NULL DEFAULT '';
)sql";

// Version 7. What answers on TCP ports (service identification, #12):
// - event_services: per event, what answered on the port it is about: role 'now' (the port
//   event that opened it, or a service-changed event's new service) and 'before' (a
//   service-changed event's previous one); dropped with the event.
// - port_services: per open TCP port of a host, what was last read there and when
//   (watch-services compares new reads with it); dropped when the port closes.
// - events.kind 'service-changed' (no DDL: the column is free text): proto 'tcp', the port,
//   from_state/to_state 'service:' + service_digest() of the previous and new service.
// NULL tls_* / http_* columns: no TLS handshake or HTTP answer. tls_sans: the names joined by
// '\n' (sanitised names hold no control characters).
// What was read on a port: the same columns in both tables (store.cpp binds them in this
// order). A macro, not a runtime string: a migration's text must never change.
#define PORTVIGIL_SERVICE_COLUMNS_DDL                                \
  "  outcome           TEXT NOT NULL,\n"                             \
  "  protocol          TEXT NOT NULL,\n"                             \
  "  banner            TEXT NOT NULL,\n"                             \
  "  banner_sha256     TEXT NOT NULL,\n"                             \
  "  tls_version       TEXT,\n"                                      \
  "  tls_subject_cn    TEXT,\n"                                      \
  "  tls_sans          TEXT,\n"                                      \
  "  tls_issuer_cn     TEXT,\n"                                      \
  "  tls_not_before_ms INTEGER,\n"                                   \
  "  tls_not_after_ms  INTEGER,\n"                                   \
  "  tls_self_signed   INTEGER CHECK (tls_self_signed IN (0, 1)),\n" \
  "  tls_sha256        TEXT,\n"                                      \
  "  http_status       INTEGER,\n"                                   \
  "  http_status_line  TEXT,\n"                                      \
  "  http_server       TEXT,\n"
constexpr std::string_view kV7 =
    "CREATE TABLE event_services (\n"
    "  event_id          INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,\n"
    "  role              TEXT NOT NULL CHECK (role IN ('now', "
    "'before')),\n" PORTVIGIL_SERVICE_COLUMNS_DDL
    "  PRIMARY KEY (event_id, role)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE port_services (\n"
    "  host_id           INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,\n"
    "  port              INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),\n"
    "  identified_ms     INTEGER NOT NULL,\n" PORTVIGIL_SERVICE_COLUMNS_DDL
    "  PRIMARY KEY (host_id, port)\n"
    ") WITHOUT ROWID;\n";
#undef PORTVIGIL_SERVICE_COLUMNS_DDL

constexpr std::array<Migration, 7> kMigrations{{
    {1, kV1},
    {2, kV2},
    {3, kV3},
    {4, kV4},
    {5, kV5},
    {6, kV6},
    {7, kV7},
}};

}  // namespace

std::span<const Migration> migrations() {
  return kMigrations;
}

int latest_version(std::span<const Migration> steps) {
  return steps.empty() ? 0 : steps.back().version;
}

int user_version(Database& db) {
  return static_cast<int>(db.pragma_int("PRAGMA user_version"));
}

void rewrite_user_version(Database& db) {
  Transaction tx(db, Transaction::Kind::write);
  db.exec("PRAGMA user_version = " + std::to_string(user_version(db)));
  tx.commit();
}

void migrate(Database& db, std::span<const Migration> steps) {
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].version != static_cast<int>(i) + 1) {
      throw std::logic_error("portvigil storage: migration steps must be numbered 1..N");
    }
  }
  const int target = latest_version(steps);
  if (user_version(db) == target) return;  // the common case: no write lock needed

  Transaction tx(db, Transaction::Kind::write);
  // Re-read under the write lock: another process may have migrated meanwhile.
  const int current = user_version(db);
  if (current > target) {
    throw StorageError("portvigil storage: " + db.path() + ": schema version " +
                       std::to_string(current) + " is newer than this build supports (" +
                       std::to_string(target) + "); upgrade portvigil");
  }
  for (int v = current + 1; v <= target; ++v) {
    db.exec(steps[static_cast<std::size_t>(v - 1)].sql);
    // user_version lives in the file header and is covered by the transaction. PRAGMA
    // takes no bound parameters; v is a constant from the step table.
    db.exec("PRAGMA user_version = " + std::to_string(v));
  }
  tx.commit();
}

}  // namespace portvigil::storage_detail
