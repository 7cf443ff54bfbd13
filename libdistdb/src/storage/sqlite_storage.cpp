// The SQLite backend.
//
// One SqliteStorage is one sqlite3 connection, opened NOMUTEX: the Storage
// contract already says a connection is used from one thread at a time, so
// SQLite's own per-connection mutex would only cost time. Several
// connections (several Storage objects, or several processes) may share one
// file: WAL mode lets readers run beside the single writer, and busy_timeout
// makes writers queue for the write lock instead of failing at once.
//
// Prepared transactions: SQLite has no two-phase commit, so prepare() only
// marks the open transaction as voted; it stays an ordinary open transaction
// that a crash rolls back (prepare_survives_crash() is false). BEGIN
// IMMEDIATE takes the write lock up front, so once begin() has succeeded no
// later statement of the transaction can fail for lack of the lock, and a
// "yes" vote is not undone by a lock conflict at COMMIT time.
#include "storage/sqlite_storage.hpp"

#include <sqlite3.h>

#include <cctype>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "storage/sqlite_effects.hpp"

namespace distdb {
namespace {

// The user sees SQLite's own message, as the sqlite3 shell shows it; the
// extended result code travels in Error::code. `what` adds context only for
// distdb's own statements (a user's statement needs none).
Error sqlite_error(sqlite3* db, std::string_view what = {}) {
  const int code = sqlite3_extended_errcode(db);
  std::string message = sqlite3_errmsg(db);
  if (!what.empty()) message = std::string(what) + ": " + message;
  return Error(ErrorKind::sql, std::move(message), code);
}

// Skips whitespace, ';' and SQL comments from `pos`; returns the new position.
std::size_t skip_filler(std::string_view text, std::size_t pos) {
  while (pos < text.size()) {
    const char c = text[pos];
    if (std::isspace(static_cast<unsigned char>(c)) != 0 || c == ';') {
      ++pos;
    } else if (text.substr(pos, 2) == "--") {
      const auto eol = text.find('\n', pos);
      pos = eol == std::string_view::npos ? text.size() : eol + 1;
    } else if (text.substr(pos, 2) == "/*") {
      const auto end = text.find("*/", pos + 2);
      pos = end == std::string_view::npos ? text.size() : end + 2;
    } else {
      break;
    }
  }
  return pos;
}

bool only_filler(std::string_view text) { return skip_filler(text, 0) == text.size(); }

// A read-only connection's authorizer: besides the writes that query_only
// and sqlite3_stmt_readonly() already refuse, a read must not change the
// connection itself (turn query_only off, attach another file).
int read_only_authorizer(void* /*user*/, int action, const char* /*arg1*/, const char* arg2,
                         const char* /*db*/, const char* /*trigger*/) {
  switch (action) {
    case SQLITE_PRAGMA:
      return arg2 != nullptr ? SQLITE_DENY : SQLITE_OK;  // PRAGMA name = value
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      return SQLITE_DENY;
    default:
      return SQLITE_OK;
  }
}

// True when the statement's first keyword is INSERT or REPLACE: such a
// statement reports its rowid even when it equals the previous one.
bool starts_with_insert(std::string_view sql) {
  const auto pos = skip_filler(sql, 0);
  auto word_is = [&](std::string_view kw) {
    if (sql.size() - pos < kw.size()) return false;
    for (std::size_t i = 0; i < kw.size(); ++i) {
      if (std::toupper(static_cast<unsigned char>(sql[pos + i])) != kw[i]) return false;
    }
    return true;
  };
  return word_is("INSERT") || word_is("REPLACE");
}

Value column_value(sqlite3_stmt* stmt, int i) {
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
      return static_cast<std::int64_t>(sqlite3_column_int64(stmt, i));
    case SQLITE_FLOAT:
      return sqlite3_column_double(stmt, i);
    case SQLITE_TEXT: {
      const auto* text = sqlite3_column_text(stmt, i);
      const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, i));
      return std::string(reinterpret_cast<const char*>(text), size);
    }
    case SQLITE_BLOB: {
      // The size is read after the pointer, as SQLite's documentation asks.
      const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt, i));
      const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, i));
      Blob blob;
      if (data != nullptr) blob.bytes.assign(data, data + size);
      return blob;
    }
    default:
      return std::monostate{};
  }
}

// Finalizes a statement however the function that prepared it returns.
class StmtGuard {
 public:
  explicit StmtGuard(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~StmtGuard() { sqlite3_finalize(stmt_); }
  StmtGuard(const StmtGuard&) = delete;
  StmtGuard& operator=(const StmtGuard&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

class SqliteStorage final : public Storage {
 public:
  SqliteStorage(sqlite3* db, bool read_only) : db_(db), read_only_(read_only) {}
  // sqlite3_close_v2 rolls back a transaction left open: a prepared but
  // uncommitted transaction vanishes, exactly as it would in a crash.
  ~SqliteStorage() override { sqlite3_close_v2(db_); }
  SqliteStorage(const SqliteStorage&) = delete;
  SqliteStorage& operator=(const SqliteStorage&) = delete;

  std::string_view backend_name() const override { return "sqlite"; }
  bool prepare_survives_crash() const override { return false; }
  unsigned long server_version() const override {
    return static_cast<unsigned long>(sqlite3_libversion_number());
  }

  Result<ResultSet> execute(std::string_view sql) override {
    if (txn_) {
      // On SQLite an autocommit statement on this connection would silently
      // become part of the open transaction.
      return Error(ErrorKind::invalid_request,
                   "execute() while transaction '" + *txn_ + "' is open on this connection");
    }
    auto rs = run(sql);
    if (sqlite3_get_autocommit(db_) == 0) {
      // The statement was a BEGIN (or similar): undo it, so that the
      // connection does not carry a transaction nobody tracks.
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return Error(ErrorKind::invalid_request, "execute() may not open a transaction; use begin()");
    }
    return rs;
  }

  Status begin(const TxnId& id) override {
    if (!is_valid_txn_id(id)) return invalid_id(id);
    if (txn_) {
      return Error(ErrorKind::invalid_request,
                   "begin('" + id + "'): transaction '" + *txn_ + "' is already open on this connection");
    }
    if (auto st = exec_simple("BEGIN IMMEDIATE"); !st) return st;
    if (capture_wanted_) {
      auto null_keyed = tables_with_null_keys();
      if (!null_keyed) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return null_keyed.error();
      }
      auto capture = sqlite::Capture::start(db_, *null_keyed);
      if (!capture) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return capture.error();
      }
      capture_ = std::move(*capture);
    }
    txn_ = id;
    prepared_ = false;
    return {};
  }

  Result<ResultSet> execute_in(const TxnId& id, std::string_view sql) override {
    return execute_in_open(id, sql, false);
  }

  Result<ResultSet> execute_in_open(const TxnId& id, std::string_view sql, bool bare) {
    if (auto st = check_open(id, "execute_in"); !st) return st.error();
    if (prepared_) {
      return Error(ErrorKind::invalid_request, "execute_in('" + id + "'): the transaction is already prepared");
    }
    auto rs = capture_ && !bare ? run_captured(id, sql) : run(sql);
    if (sqlite3_get_autocommit(db_) != 0) {
      // SQLite ended the transaction: either the statement was a
      // COMMIT/ROLLBACK, or an error (SQLITE_FULL, IOERR, ...) made SQLite
      // roll it back on its own. Either way it no longer exists.
      end_transaction();
      if (!rs) {
        Error e = rs.error();
        e.message += " (SQLite rolled the transaction back)";
        return e;
      }
      return Error(ErrorKind::invalid_request,
                   "execute_in('" + id + "'): the statement ended the transaction; use commit()/rollback()");
    }
    return rs;
  }

  Status prepare(const TxnId& id) override {
    if (auto st = check_open(id, "prepare"); !st) return st;
    prepared_ = true;
    return {};
  }

  Status commit(const TxnId& id) override {
    if (auto st = check_open(id, "commit"); !st) return st;
    if (!prepared_) {
      return Error(ErrorKind::invalid_request, "commit('" + id + "'): the transaction is not prepared");
    }
    auto st = exec_simple("COMMIT");
    // A failed COMMIT (e.g. SQLITE_BUSY) may leave the transaction open, in
    // which case the caller may retry; only forget it once it is gone.
    if (sqlite3_get_autocommit(db_) != 0) end_transaction();
    return st;
  }

  Status rollback(const TxnId& id) override {
    if (!is_valid_txn_id(id)) return invalid_id(id);
    if (!txn_ || *txn_ != id) return {};  // unknown: already gone, which is what was asked
    auto st = exec_simple("ROLLBACK");
    if (sqlite3_get_autocommit(db_) != 0) end_transaction();
    return st;
  }

  Result<std::vector<TxnId>> recover() override {
    // Nothing survives a restart (see prepare_survives_crash()).
    return std::vector<TxnId>{};
  }

  Status ping() override { return {}; }

  // --- Effects (storage/sqlite_effects.hpp): a session per transaction. ---
  bool captures_effects() const override { return !read_only_ && sqlite::sessions_available(); }

  Status start_capture() override {
    if (!captures_effects()) return Storage::start_capture();
    capture_wanted_ = true;
    return {};
  }

  void stop_capture() override {
    capture_wanted_ = false;
    capture_.reset();
  }

  Result<std::string> captured_effects(const TxnId& id) override {
    if (auto st = check_open(id, "captured_effects"); !st) return st.error();
    if (!capture_) {
      return Error(ErrorKind::internal,
                   "captured_effects('" + id + "'): the transaction began without a capture");
    }
    return capture_->effects();
  }

  Status apply_effects_in(const TxnId& id, std::string_view effects) override {
    if (auto st = check_open(id, "apply_effects_in"); !st) return st;
    if (prepared_) {
      return Error(ErrorKind::invalid_request,
                   "apply_effects_in('" + id + "'): the transaction is already prepared");
    }
    return sqlite::apply_effects(db_, effects);
  }

  bool refuses_effects(const Error& e) const override {
    return e.kind == ErrorKind::sql && e.code == sqlite::kEffectsRefused;
  }

 private:
  // A statement of a captured transaction, followed by the check that no
  // row it left has a key the session could not record (Capture::check_keys);
  // a statement that fails the check is undone, as a failed statement is.
  Result<ResultSet> run_captured(const TxnId& id, std::string_view sql) {
    // Statements that change no rows run as they are: a savepoint around
    // SAVEPOINT or RELEASE would change what they mean.
    if (changes_nothing(sql)) return run(sql);
    if (auto sp = execute_in_open(id, "SAVEPOINT distdb_capture", true); !sp) return sp.error();
    capture_->begin_statement();
    auto rs = run(sql);
    if (!rs) capture_->begin_statement();             // failed on its own: undone, whatever it touched
    if (sqlite3_get_autocommit(db_) != 0) return rs;  // the transaction is gone (see execute_in)
    if (rs) {
      if (auto keys = capture_->check_keys(); !keys) rs = keys.error();
      if (!rs) (void)execute_in_open(id, "ROLLBACK TO distdb_capture", true);
    }
    if (auto released = execute_in_open(id, "RELEASE distdb_capture", true); !released && rs)
      return released.error();
    return rs;
  }

  // True for a statement that writes nothing (sqlite3_stmt_readonly(),
  // which is also true of SAVEPOINT, RELEASE and the like) or that does not
  // compile (run() reports why).
  bool changes_nothing(std::string_view sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) != SQLITE_OK)
      return true;
    StmtGuard guard(stmt);
    return stmt == nullptr || sqlite3_stmt_readonly(stmt) != 0;
  }

  // The tables whose one-column key holds NULL somewhere (a captured
  // transaction refuses changes to them). Looked for again only when this
  // connection changed rows outside a captured transaction (a catch-up, a
  // full copy, a DDL entry) or the schema moved: a captured transaction
  // never leaves a NULL key (Capture::check_keys).
  Result<std::set<std::string>> tables_with_null_keys() {
    const auto changes = sqlite3_total_changes64(db_);
    auto schema = run("PRAGMA schema_version");
    if (!schema) return schema.error();
    const Value version = schema->rows.empty() || schema->rows[0].empty() ? Value{} : schema->rows[0][0];
    if (!null_keyed_ || changes != null_keyed_changes_ || !(version == null_keyed_schema_)) {
      auto found = sqlite::tables_with_null_keys(db_);
      if (!found) return found.error();
      null_keyed_ = std::move(*found);
      null_keyed_schema_ = version;
    }
    null_keyed_changes_ = changes;
    return *null_keyed_;
  }

  void end_transaction() {
    txn_.reset();
    if (capture_) null_keyed_changes_ = sqlite3_total_changes64(db_);  // its own changes left no NULL key
    capture_.reset();                                                  // a session records one transaction
  }

  static Error invalid_id(const TxnId& id) {
    return Error(ErrorKind::invalid_request, "invalid transaction id '" + id + "'");
  }

  Status check_open(const TxnId& id, const char* op) const {
    if (!is_valid_txn_id(id)) return invalid_id(id);
    if (!txn_ || *txn_ != id) {
      return Error(ErrorKind::invalid_request,
                   std::string(op) + "('" + id + "'): no such open transaction on this connection");
    }
    return {};
  }

  Status exec_simple(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return sqlite_error(db_, sql);
    return {};
  }

  Status scan(std::string_view sql, const RowVisitor& on_row) override {
    if (txn_) {
      return Error(ErrorKind::invalid_request,
                   "scan() while transaction '" + *txn_ + "' is open on this connection");
    }
    auto rs = run(sql, &on_row);
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    if (!rs) return rs.error();
    return {};
  }

  // Runs exactly one statement and collects what it produced (or hands
  // each row to `visit` instead, when given).
  Result<ResultSet> run(std::string_view sql, const RowVisitor* visit = nullptr) {
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, &tail) != SQLITE_OK) {
      return sqlite_error(db_);
    }
    StmtGuard guard(stmt);
    if (stmt == nullptr) return Error(ErrorKind::sql, "empty statement");
    if (read_only_ && sqlite3_stmt_readonly(stmt) == 0) return read_only_refusal(SQLITE_READONLY);
    const auto consumed = static_cast<std::size_t>(tail - sql.data());
    if (!only_filler(sql.substr(consumed))) {
      return Error(ErrorKind::sql, "only one statement per call is allowed; found more after: " +
                                       std::string(sql.substr(0, consumed)));
    }

    ResultSet rs;
    const int ncols = sqlite3_column_count(stmt);
    for (int i = 0; i < ncols; ++i) rs.columns.emplace_back(sqlite3_column_name(stmt, i));

    const auto changes_before = sqlite3_total_changes64(db_);
    const auto rowid_before = sqlite3_last_insert_rowid(db_);
    for (;;) {
      const int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        // query_only refuses what sqlite3_stmt_readonly() let through.
        if (read_only_ && (rc & 0xff) == SQLITE_READONLY) return read_only_refusal(rc);
        return sqlite_error(db_);
      }
      Row row;
      row.reserve(static_cast<std::size_t>(ncols));
      for (int i = 0; i < ncols; ++i) row.push_back(column_value(stmt, i));
      if (visit == nullptr) {
        rs.rows.push_back(std::move(row));
      } else if (auto st = (*visit)(row); !st) {
        return st.error();
      }
    }
    // sqlite3_changes64() keeps the count of the last modifying statement,
    // so it is only meaningful when this one changed something (the total
    // moved). The rowid likewise keeps its old value across a SELECT.
    if (sqlite3_total_changes64(db_) != changes_before) {
      rs.rows_affected = static_cast<std::uint64_t>(sqlite3_changes64(db_));
      const auto rowid = sqlite3_last_insert_rowid(db_);
      if (rowid != rowid_before || starts_with_insert(sql)) rs.last_insert_id = static_cast<std::uint64_t>(rowid);
    }
    return rs;
  }

  // The explanation a read gets when it would write (see StorageAccess).
  static Error read_only_refusal(int code) {
    return Error(
        ErrorKind::sql,
        "this statement changes data, and distdb ran it as a read: reads run where nothing may change, "
        "so that no member changes alone. Send a statement that changes data as a write (an INSERT, "
        "UPDATE, DELETE or DDL statement of its own).",
        code);
  }

  sqlite3* db_;
  const bool read_only_;      // StorageAccess::read_only
  std::optional<TxnId> txn_;  // the open transaction, if any
  bool prepared_ = false;     // whether txn_ has been prepared
  bool capture_wanted_ = false;                      // start_capture() called, stop_capture() not since
  std::unique_ptr<sqlite::Capture> capture_;         // recording txn_, when capture_wanted_ at its begin()
  std::optional<std::set<std::string>> null_keyed_;  // tables_with_null_keys(), while still true
  std::int64_t null_keyed_changes_ = 0;              // ... as of this many changes on the connection
  Value null_keyed_schema_;                          // ... and this schema version
};

}  // namespace

Result<std::unique_ptr<Storage>> open_sqlite_storage(const std::string& path, StorageAccess access) {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    Error e(ErrorKind::storage_unavailable,
            "cannot open SQLite database '" + path + "': " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory"),
            db != nullptr ? sqlite3_extended_errcode(db) : SQLITE_NOMEM);
    sqlite3_close_v2(db);
    return e;
  }
  sqlite3_extended_result_codes(db, 1);
  // busy_timeout first: switching to WAL needs a lock that another
  // connection opening the same file at the same moment may hold.
  // synchronous=FULL: a commit is on disk when COMMIT returns (the durability
  // contract), at the cost of an fsync per transaction even in WAL mode.
  const char* pragmas[] = {"PRAGMA busy_timeout=5000", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                           "PRAGMA foreign_keys=ON"};
  for (const char* pragma : pragmas) {
    if (sqlite3_exec(db, pragma, nullptr, nullptr, nullptr) != SQLITE_OK) {
      Error e = sqlite_error(db, std::string("opening '") + path + "': " + pragma);
      e.kind = ErrorKind::storage_unavailable;
      sqlite3_close_v2(db);
      return e;
    }
  }
  const bool read_only = access == StorageAccess::read_only;
  if (read_only) {
    if (sqlite3_exec(db, "PRAGMA query_only=1", nullptr, nullptr, nullptr) != SQLITE_OK) {
      Error e = sqlite_error(db, std::string("opening '") + path + "': PRAGMA query_only=1");
      e.kind = ErrorKind::storage_unavailable;
      sqlite3_close_v2(db);
      return e;
    }
    sqlite3_set_authorizer(db, read_only_authorizer, nullptr);
  }
  return std::unique_ptr<Storage>(std::make_unique<SqliteStorage>(db, read_only));
}

}  // namespace distdb
