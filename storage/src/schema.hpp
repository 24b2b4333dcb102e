// Versioned schema. PRAGMA user_version holds the version of the file; migrate() applies
// steps user_version+1 .. N in order inside one write transaction, so a file is always at
// some whole version. Steps are append-only: once shipped, a step never changes.
#pragma once

#include <span>
#include <string_view>

#include "sqlite.hpp"

namespace portvigil::storage_detail {

struct Migration {
  int version;           // 1, 2, ... consecutive
  std::string_view sql;  // constant DDL/DML, may hold several statements
};

// The steps this build ships.
[[nodiscard]] std::span<const Migration> migrations();
[[nodiscard]] int latest_version(std::span<const Migration> steps = migrations());

[[nodiscard]] int user_version(Database& db);

// Brings `db` to the last version of `steps`. Throws StorageError when the file is newer
// than the steps (written by a newer portvigil) or a step fails; a failed step leaves the
// file at the version it had.
// Rewrites user_version with its current value inside a write transaction: a real write
// (page 1 goes to the WAL) that changes nothing.
void rewrite_user_version(Database& db);

void migrate(Database& db, std::span<const Migration> steps = migrations());

}  // namespace portvigil::storage_detail
