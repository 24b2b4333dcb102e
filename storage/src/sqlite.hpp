// Thin RAII layer over the SQLite C API, private to the storage module. sqlite3.h stays in
// sqlite.cpp; the handles are forward-declared so even this header does not pull it in.
//
// Rules the rest of storage/ follows:
// - every value reaches SQL through a bound parameter of a prepared statement; the only SQL
//   text built at run time is `PRAGMA user_version = N` (PRAGMAs take no parameters, and N
//   is a constant from the migration table, never outside input);
// - a Query resets its statement when it goes out of scope, so no statement keeps a read
//   snapshot open between calls (an open snapshot would pin the WAL and block checkpoints).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

struct sqlite3;
struct sqlite3_stmt;

namespace portvigil::storage_detail {

class Database;

// One compiled statement, owned by the Database's cache.
class Statement {
 public:
  Statement(Database& db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

 private:
  friend class Query;
  Database* db_;
  sqlite3_stmt* stmt_ = nullptr;
  bool in_use_ = false;
};

// A use of a cached statement: bind, step, read columns. Parameters are 1-based (?1, ?2),
// columns 0-based, as in the C API.
class Query {
 public:
  explicit Query(Statement& statement);
  ~Query();
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& bind(int index, std::int64_t value);
  Query& bind(int index, std::string_view value);
  Query& bind_null(int index);
  template <typename T>
  Query& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind_null(index);
  }
  // Guard against overload surprises: bind(int, const char*) would otherwise pick bool.
  Query& bind(int index, const char* value) { return bind(index, std::string_view(value)); }

  // True while there is a row to read; false once the statement is done.
  bool step();
  // Runs a statement that returns no rows (INSERT/UPDATE/DELETE).
  void run();

  [[nodiscard]] bool is_null(int column) const;
  [[nodiscard]] std::int64_t int64(int column) const;
  [[nodiscard]] std::string text(int column) const;
  [[nodiscard]] std::optional<std::int64_t> optional_int64(int column) const;

 private:
  Statement& st_;
};

// read_only_immutable: the file is opened with SQLite's immutable=1 URI parameter, so no
// lock, -shm or -wal file is touched (commits still in the -wal file are not seen). The last
// resort of a reader on a full disk.
enum class OpenMode { read_write_create, read_only, read_only_immutable };

class Database {
 public:
  Database(const std::string& path, OpenMode mode);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Prepared once per SQL text and reused.
  Query query(std::string_view sql);
  // Runs constant SQL, possibly several statements (migration scripts, PRAGMAs, BEGIN).
  // Never for SQL that carries values: those go through query() + bind().
  void exec(std::string_view sql);
  // First column of the first row of a constant, parameterless statement (PRAGMAs).
  std::string pragma_text(std::string_view sql);
  std::int64_t pragma_int(std::string_view sql);

  void busy_timeout(int milliseconds);
  [[nodiscard]] std::int64_t last_insert_rowid() const;
  [[nodiscard]] std::int64_t changes() const;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] sqlite3* handle() const { return db_; }

  // Throws StorageError naming the path, what we were doing and SQLite's message.
  [[noreturn]] void fail(std::string_view what) const;
  [[noreturn]] void fail(std::string_view what, int rc) const;

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Statement>> cache_;
};

// BEGIN ... COMMIT; rolls back when destroyed without commit(). Write transactions use
// BEGIN IMMEDIATE so the write lock is taken up front: a deferred transaction that tries
// to upgrade while another connection writes gets SQLITE_BUSY without waiting on
// busy_timeout.
class Transaction {
 public:
  enum class Kind { read, write };
  Transaction(Database& db, Kind kind);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  // Write transactions of one process take turns here before SQLite's lock: the agent's
  // concurrent jobs each have a connection, and a commit that waits on another connection
  // of the same process must wait for it to finish, not give up after the busy timeout.
  // Recursive: a thread that nests two connections' transactions does not deadlock itself.
  static std::recursive_mutex& process_writers();
  std::unique_lock<std::recursive_mutex> writer_;
  Database& db_;
  bool open_ = true;
};

}  // namespace portvigil::storage_detail
