// The backend-independent part of the storage layer: transaction id rules,
// backend dispatch, and distdb's own bookkeeping schema.
#include "distdb/storage.hpp"

#include <array>
#include <string>

#include "storage/login_check.hpp"
#include "storage/sqlite_effects.hpp"
#include "storage/sqlite_storage.hpp"
#ifdef DISTDB_WITH_MARIADB
#include "storage/mariadb_row_events.hpp"
#include "storage/mariadb_storage.hpp"
#endif

namespace distdb {

Storage::~Storage() = default;

std::vector<Result<ResultSet>> Storage::execute_batch_in(const TxnId& id,
                                                         const std::vector<std::string_view>& statements) {
  std::vector<Result<ResultSet>> results;
  results.reserve(statements.size());
  for (const std::string_view sql : statements) {
    results.push_back(execute_in(id, sql));
    if (!results.back()) break;
  }
  return results;
}

std::vector<Result<ResultSet>> Storage::execute_batch_and_prepare(const TxnId& id,
                                                                  const std::vector<std::string_view>& statements,
                                                                  std::optional<Status>& prepared) {
  prepared.reset();
  std::vector<Result<ResultSet>> results = execute_batch_in(id, statements);
  if (results.size() == statements.size() && (results.empty() || results.back())) prepared = prepare(id);
  return results;
}

bool Storage::captures_effects() const {
  return false;
}

namespace {
Error no_effects(const Storage& s) {
  return Error(ErrorKind::invalid_request, std::string("the ") + std::string(s.backend_name()) +
                                               " backend cannot capture or apply effects");
}
}  // namespace

Status Storage::scan(std::string_view sql, const RowVisitor& on_row) {
  auto rs = execute(sql);
  if (!rs) return rs.error();
  for (const Row& row : rs->rows) {
    if (auto st = on_row(row); !st) return st;
  }
  return {};
}

Status Storage::start_capture() {
  return no_effects(*this);
}

void Storage::stop_capture() {}

Result<std::string> Storage::captured_effects(const TxnId&) {
  return no_effects(*this);
}

Status Storage::apply_effects_in(const TxnId&, std::string_view) {
  return no_effects(*this);
}

bool Storage::refuses_effects(const Error&) const {
  return false;
}

bool is_valid_txn_id(std::string_view id) {
  // The id is spliced into XA statements between single quotes, so this
  // character set is also what keeps those statements injection-free.
  if (id.empty() || id.size() > 64) return false;
  for (const char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::unique_ptr<Storage>> open_storage(const StorageConfig& config, StorageAccess access) {
  switch (config.backend) {
    case StorageBackend::sqlite:
      return open_sqlite_storage(config.sqlite_path, access);
    case StorageBackend::mariadb:
#ifdef DISTDB_WITH_MARIADB
      return open_mariadb_storage(config.db, access);
#else
      return Error(ErrorKind::config,
                   "storage backend 'mariadb' is not available: this distdb was built without "
                   "MariaDB Connector/C (rebuild with -Dmariadb=enabled and libmariadb-dev installed)");
#endif
  }
  return Error(ErrorKind::config, "unknown storage backend");
}

Status check_replication_support(const StorageConfig& config, std::vector<std::string>* warnings) {
  if (config.replication != Replication::rows) return {};
  if (config.backend == StorageBackend::sqlite) {
    if (sqlite::sessions_available()) return {};
    return Error(ErrorKind::config,
                 "replication \"rows\" on SQLite needs an SQLite library built with the session extension "
                 "(SQLITE_ENABLE_SESSION and SQLITE_ENABLE_PREUPDATE_HOOK); this distdb's has none: use "
                 "\"statements\", or rebuild against such a library");
  }
#ifdef DISTDB_WITH_MARIADB
  if (config.backend == StorageBackend::mariadb) return mariadb::check_row_capture(config.db, warnings);
#else
  (void)warnings;
#endif
  return Error(ErrorKind::config, std::string("replication \"rows\" is not available with ") +
                                      to_string(config.backend) + " storage");
}

Status check_database_login(const StorageConfig& config, const std::string& user,
                            const std::string& password) {
#ifdef DISTDB_WITH_MARIADB
  if (config.backend == StorageBackend::mariadb) return check_mariadb_login(config.db, user, password);
#else
  (void)user;
  (void)password;
#endif
  return Error(ErrorKind::config,
               std::string("logins cannot be checked against ") + to_string(config.backend) + " storage");
}

namespace {

// distdb's bookkeeping schema. This is the single copy in C++; the file
// sql/distdb_schema.sql holds the same statements verbatim (a test in
// tests/storage/test_sqlite_storage.cpp checks that they agree), for
// operators who want to create the tables by hand.
//
// Only portable SQL: it must run unchanged on SQLite and MariaDB.
constexpr std::array<std::string_view, 4> kSchemaDdl = {
    // promised_epoch: the highest epoch this node promised (never decreases).
    "CREATE TABLE IF NOT EXISTS distdb_meta (name VARCHAR(64) PRIMARY KEY, value VARCHAR(255) NOT NULL)",
    // The replication layer updates the one row (id=1) inside every
    // replicated transaction, so that the last applied log position (seq, and
    // the epoch of the coordinator that created that entry) commits
    // atomically with the data it describes.
    "CREATE TABLE IF NOT EXISTS distdb_applied (id INT PRIMARY KEY, epoch BIGINT NOT NULL, seq BIGINT NOT "
    "NULL)",
    // The retained tail of the log, written in the same transaction as the
    // entry's data: what lagging nodes catch up from.
    "CREATE TABLE IF NOT EXISTS distdb_log (seq BIGINT PRIMARY KEY, epoch BIGINT NOT NULL, statements "
    "LONGTEXT NOT NULL)",
    // The effects of the log entries that were shipped as effects (row
    // events) rather than statements, keyed like distdb_log: catch-up applies
    // them, not the statements. NULL effects: the coordinator's own entry,
    // whose effects are only known once it is prepared and are filled in
    // right after its commit (node/replication_executor.cpp).
    "CREATE TABLE IF NOT EXISTS distdb_effects (seq BIGINT PRIMARY KEY, epoch BIGINT NOT NULL, effects "
    "LONGBLOB)",
};

// Seed rows: each is inserted only when its key is missing. A dialect's
// upsert (INSERT OR IGNORE / INSERT IGNORE / ON CONFLICT) is deliberately
// avoided: SELECT-then-INSERT is portable, and a concurrent creator is
// handled by re-checking after a failed insert.
struct SeedRow {
  std::string_view probe;   // returns a row when the seed is present
  std::string_view insert;  // adds it
};
constexpr std::array<SeedRow, 3> kSchemaSeed = {{
    {"SELECT value FROM distdb_meta WHERE name = 'schema_version'",
     "INSERT INTO distdb_meta (name, value) VALUES ('schema_version', '1')"},
    {"SELECT value FROM distdb_meta WHERE name = 'promised_epoch'",
     "INSERT INTO distdb_meta (name, value) VALUES ('promised_epoch', '0')"},
    {"SELECT id FROM distdb_applied WHERE id = 1",
     "INSERT INTO distdb_applied (id, epoch, seq) VALUES (1, 0, 0)"},
}};

Result<bool> row_exists(Storage& storage, std::string_view probe) {
  auto rs = storage.execute(probe);
  if (!rs) return rs.error();
  return !rs->rows.empty();
}

Status seed(Storage& storage, const SeedRow& row) {
  auto present = row_exists(storage, row.probe);
  if (!present) return present.error();
  if (*present) return {};
  auto inserted = storage.execute(row.insert);
  if (inserted) return {};
  // Another node process (or connection) may have created the row between
  // our probe and our insert: that is success, anything else is not.
  auto again = row_exists(storage, row.probe);
  if (again && *again) return {};
  return inserted.error();
}

}  // namespace

Status ensure_distdb_schema(Storage& storage) {
  for (const auto ddl : kSchemaDdl) {
    auto rs = storage.execute(ddl);
    if (!rs) {
      Error e = rs.error();
      e.message = "creating distdb's schema: " + e.message;
      return e;
    }
  }
  for (const auto& row : kSchemaSeed) {
    auto st = seed(storage, row);
    if (!st) {
      Error e = st.error();
      e.message = "seeding distdb's schema: " + e.message;
      return e;
    }
  }
  return {};
}

}  // namespace distdb
