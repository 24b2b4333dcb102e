#include "sqlite.hpp"

#include <sqlite3.h>

#include <cctype>
#include <cerrno>
#include <limits>
#include <stdexcept>
#include <utility>

#include "portvigil/storage/store.hpp"

namespace portvigil::storage_detail {

Statement::Statement(Database& db, std::string_view sql) : db_(&db) {
  if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw StorageError("portvigil storage: SQL text too long");
  }
  const int rc =
      sqlite3_prepare_v2(db.handle(), sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) db.fail("preparing statement", rc);
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

Query::Query(Statement& statement) : st_(statement) {
  // Reusing a statement that is still being stepped would silently restart it.
  if (st_.in_use_) throw std::logic_error("portvigil storage: statement used re-entrantly");
  st_.in_use_ = true;
}

Query::~Query() {
  sqlite3_reset(st_.stmt_);
  sqlite3_clear_bindings(st_.stmt_);
  st_.in_use_ = false;
}

Query& Query::bind(int index, std::int64_t value) {
  const int rc = sqlite3_bind_int64(st_.stmt_, index, static_cast<sqlite3_int64>(value));
  if (rc != SQLITE_OK) st_.db_->fail("binding a parameter", rc);
  return *this;
}

Query& Query::bind(int index, std::string_view value) {
  // Empty views may carry a null data pointer, which SQLite would store as NULL.
  static constexpr char kEmpty[] = "";
  const char* data = value.empty() ? kEmpty : value.data();
  const int rc =
      sqlite3_bind_text64(st_.stmt_, index, data, static_cast<sqlite3_uint64>(value.size()),
                          SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) st_.db_->fail("binding a parameter", rc);
  return *this;
}

Query& Query::bind_null(int index) {
  const int rc = sqlite3_bind_null(st_.stmt_, index);
  if (rc != SQLITE_OK) st_.db_->fail("binding a parameter", rc);
  return *this;
}

bool Query::step() {
  const int rc = sqlite3_step(st_.stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  st_.db_->fail(sqlite3_sql(st_.stmt_), rc);
}

void Query::run() {
  while (step()) {
  }
}

bool Query::is_null(int column) const {
  return sqlite3_column_type(st_.stmt_, column) == SQLITE_NULL;
}

std::int64_t Query::int64(int column) const {
  return static_cast<std::int64_t>(sqlite3_column_int64(st_.stmt_, column));
}

std::string Query::text(int column) const {
  const auto* p = sqlite3_column_text(st_.stmt_, column);
  const int n = sqlite3_column_bytes(st_.stmt_, column);
  if (p == nullptr) return {};
  return {reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)};
}

std::optional<std::int64_t> Query::optional_int64(int column) const {
  if (is_null(column)) return std::nullopt;
  return int64(column);
}

namespace {

// "file:" URI of a path (RFC 3986 percent-encoding of everything but unreserved bytes and
// '/'), so that '?', '#' or '%' in a state directory cannot add URI parameters.
std::string file_uri(const std::string& path) {
  constexpr char kHex[] = "0123456789ABCDEF";
  // "file://" + an absolute path: with "file:" alone a path starting "//" would read as an
  // authority.
  std::string uri = path.starts_with('/') ? "file://" : "file:";
  for (const char c : path) {
    const auto b = static_cast<unsigned char>(c);
    if (std::isalnum(b) != 0 || c == '/' || c == '-' || c == '.' || c == '_' || c == '~') {
      uri += c;
    } else {
      uri += '%';
      uri += kHex[b >> 4];
      uri += kHex[b & 0xf];
    }
  }
  return uri;
}

// Only what the file system says about space and the device is a disk cause: a permission
// problem (SQLITE_CANTOPEN with EACCES) is not fixed by waiting, and must not look like one.
StorageError::Cause cause_of(int rc, int system_errno) {
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return StorageError::Cause::disk;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      return system_errno == ENOSPC || system_errno == EDQUOT || system_errno == EIO
                 ? StorageError::Cause::disk
                 : StorageError::Cause::other;
    default:
      return StorageError::Cause::other;
  }
}

}  // namespace

Database::Database(const std::string& path, OpenMode mode) : path_(path) {
  int flags = SQLITE_OPEN_NOMUTEX;
  std::string name = path;
  switch (mode) {
    case OpenMode::read_write_create:
      flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
      break;
    case OpenMode::read_only:
      flags |= SQLITE_OPEN_READONLY;
      break;
    case OpenMode::read_only_immutable:
      flags |= SQLITE_OPEN_READONLY | SQLITE_OPEN_URI;
      name = file_uri(path) + "?mode=ro&immutable=1";
      break;
  }
  const int rc = sqlite3_open_v2(name.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    // sqlite3_open_v2 hands back a handle even on failure; it carries the message.
    std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    const int system_errno = db_ != nullptr ? sqlite3_system_errno(db_) : 0;
    sqlite3_close(db_);
    db_ = nullptr;
    throw StorageError("portvigil storage: " + path + ": opening database: " + message,
                       cause_of(rc, system_errno));
  }
  sqlite3_extended_result_codes(db_, 1);
}

Database::~Database() {
  cache_.clear();  // finalize every statement before closing, or sqlite3_close fails
  sqlite3_close(db_);
}

Query Database::query(std::string_view sql) {
  auto it = cache_.find(std::string(sql));
  if (it == cache_.end()) {
    it = cache_.emplace(std::string(sql), std::make_unique<Statement>(*this, sql)).first;
  }
  return Query(*it->second);
}

void Database::exec(std::string_view sql) {
  // Steps through a script one statement at a time with prepare_v2's tail pointer.
  const char* cursor = sql.data();
  const char* const end = sql.data() + sql.size();
  while (cursor < end) {
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(db_, cursor, static_cast<int>(end - cursor), &stmt, &tail);
    if (rc != SQLITE_OK) fail(std::string_view(cursor, static_cast<std::size_t>(end - cursor)), rc);
    if (stmt == nullptr) break;  // only whitespace or comments left
    do {
      rc = sqlite3_step(stmt);
    } while (rc == SQLITE_ROW);
    if (rc != SQLITE_DONE) {
      const std::string what = sqlite3_sql(stmt);
      sqlite3_finalize(stmt);
      fail(what, rc);
    }
    sqlite3_finalize(stmt);
    cursor = tail;
  }
}

std::string Database::pragma_text(std::string_view sql) {
  Statement st(*this, sql);
  Query q(st);
  if (!q.step()) return {};
  return q.text(0);
}

std::int64_t Database::pragma_int(std::string_view sql) {
  Statement st(*this, sql);
  Query q(st);
  if (!q.step()) return 0;
  return q.int64(0);
}

void Database::busy_timeout(int milliseconds) {
  const int rc = sqlite3_busy_timeout(db_, milliseconds);
  if (rc != SQLITE_OK) fail("setting busy_timeout", rc);
}

std::int64_t Database::last_insert_rowid() const {
  return static_cast<std::int64_t>(sqlite3_last_insert_rowid(db_));
}

std::int64_t Database::changes() const {
  return static_cast<std::int64_t>(sqlite3_changes64(db_));
}

void Database::fail(std::string_view what) const {
  throw StorageError(
      "portvigil storage: " + path_ + ": " + std::string(what) + ": " + sqlite3_errmsg(db_),
      cause_of(sqlite3_extended_errcode(db_), sqlite3_system_errno(db_)));
}

void Database::fail(std::string_view what, int rc) const {
  // sqlite3_errmsg() describes the most recent failure on this connection, which is rc's.
  throw StorageError("portvigil storage: " + path_ + ": " + std::string(what) + ": " +
                         sqlite3_errmsg(db_) + " (" + sqlite3_errstr(rc) + ")",
                     cause_of(rc, sqlite3_system_errno(db_)));
}

std::recursive_mutex& Transaction::process_writers() {
  static std::recursive_mutex writers;
  return writers;
}

Transaction::Transaction(Database& db, Kind kind)
    : writer_(kind == Kind::write ? std::unique_lock(process_writers())
                                  : std::unique_lock<std::recursive_mutex>()),
      db_(db) {
  db_.exec(kind == Kind::write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
}

Transaction::~Transaction() {
  if (!open_) return;
  // Never throw from a destructor; a failed ROLLBACK leaves SQLite to roll back on close.
  sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
  db_.exec("COMMIT");
  open_ = false;
  if (writer_.owns_lock()) writer_.unlock();
}

}  // namespace portvigil::storage_detail
