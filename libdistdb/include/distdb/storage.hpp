// The storage interface: one connection to the SQL database a node fronts.
//
// A Storage object is one connection and is NOT thread-safe: a node keeps a
// pool of them and uses each from one thread at a time. Every call blocks
// until the database has answered.
//
// Durability contract (what the 2PC protocol relies on):
//   - execute() in autocommit mode: durable when it returns OK.
//   - prepare(): when prepare_survives_crash() is true (MariaDB XA), a
//     prepared transaction survives a crash of the node AND of the database
//     server; after a restart it is listed by recover() and can be committed
//     or rolled back, from any connection. When it is false (SQLite), a
//     prepared transaction is only an open transaction: a crash loses it
//     (as if rolled back), and recover() never lists it.
//   - commit()/rollback(): durable when they return OK.
//
// Errors: ErrorKind::sql for a statement the database refused (the
// connection is fine and the transaction, if any, is still usable unless the
// database says otherwise); storage_unavailable when the database cannot be
// reached (nothing ran); outcome_unknown when the connection dropped while a
// statement or a commit was in flight. After a connection error the next call
// reconnects: a database that comes back is used again without a restart.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "distdb/config.hpp"
#include "distdb/error.hpp"
#include "distdb/export.hpp"
#include "distdb/value.hpp"

namespace distdb {

// Names a prepared transaction. At most 64 bytes of [A-Za-z0-9_.:-]
// (an XA gtrid); the 2PC layer builds them from the epoch and sequence number.
using TxnId = std::string;

DISTDB_API bool is_valid_txn_id(std::string_view id);

class DISTDB_API Storage {
 public:
  virtual ~Storage();

  // "sqlite" or "mariadb".
  virtual std::string_view backend_name() const = 0;

  // True when a prepared transaction survives a crash (see above).
  virtual bool prepare_survives_crash() const = 0;

  // Runs one statement in autocommit mode.
  virtual Result<ResultSet> execute(std::string_view sql) = 0;

  // Runs one query in autocommit mode and hands its rows to `on_row` one at
  // a time, as the database produces them, without holding the result in
  // memory: how a full copy reads a table of any size. The first error
  // `on_row` returns stops the scan and is returned. The connection runs
  // nothing else meanwhile (`on_row` must not use it). The default
  // implementation runs execute() and walks its rows.
  using RowVisitor = std::function<Status(const Row&)>;
  virtual Status scan(std::string_view sql, const RowVisitor& on_row);

  // --- Prepared transactions: the participant side of two-phase commit. ---
  // A connection has at most one open (begun, not yet prepared) transaction.

  // Starts transaction `id` on this connection.
  virtual Status begin(const TxnId& id) = 0;
  // Runs a statement inside the open transaction `id`.
  virtual Result<ResultSet> execute_in(const TxnId& id, std::string_view sql) = 0;
  // Runs `statements` in order inside the open transaction `id`, exactly as
  // that many execute_in() calls would, and stops at the first one that
  // fails: the answer has one result per statement run, every one OK but
  // perhaps the last. A backend may send several statements in one round
  // trip (MariaDB does, for the plain INSERT/UPDATE/DELETE/REPLACE
  // statements whose text provably splits back the same way); the default
  // runs them one at a time.
  virtual std::vector<Result<ResultSet>> execute_batch_in(const TxnId& id,
                                                          const std::vector<std::string_view>& statements);
  // execute_batch_in(), then prepare() if every statement succeeded, in one
  // round trip where the backend can (MariaDB sends XA END and XA PREPARE
  // with the statements). The answer is execute_batch_in()'s; `prepared`
  // holds prepare()'s status when it ran, and is left empty when a
  // statement stopped the batch (the transaction is then still open, as
  // after execute_batch_in()).
  virtual std::vector<Result<ResultSet>> execute_batch_and_prepare(const TxnId& id,
                                                                   const std::vector<std::string_view>& statements,
                                                                   std::optional<Status>& prepared);
  // Ends the work of `id` and makes it ready to commit (the "yes" vote).
  virtual Status prepare(const TxnId& id) = 0;
  // Commits a prepared transaction (possibly one found by recover()).
  virtual Status commit(const TxnId& id) = 0;
  // Rolls back an open or prepared transaction. Rolling back a transaction
  // that no longer exists is OK (idempotent: a retried abort must not fail).
  virtual Status rollback(const TxnId& id) = 0;
  // Lists prepared transactions left undecided, e.g. after a restart.
  virtual Result<std::vector<TxnId>> recover() = 0;

  // Checks the connection, reconnecting if needed.
  virtual Status ping() = 0;

  // --- Effects: what a transaction changed (row-based replication). ---
  // A coordinator that ships effects runs each entry, asks its storage what
  // the prepared transaction changed, and sends that to the other members,
  // which apply it instead of running the statements (docs/design.md
  // section 3). MariaDB reads them from its binary log, SQLite records them
  // with its session extension. Optional: a backend that cannot keeps
  // captures_effects() false and answers invalid_request from the calls
  // below.

  // True when this connection can capture and apply effects.
  virtual bool captures_effects() const;
  // Makes sure the transactions begun from now on can be captured (MariaDB:
  // a binary log dump open at the end of the log). Call before begin();
  // cheap when capture is already running.
  virtual Status start_capture();
  // Stops capturing. The executor calls it whenever this connection writes
  // anything else (a DDL entry, another member's effects, a catch-up, a
  // full copy): a capture reads every change logged since the previous one,
  // and those changes are not the next entry's.
  virtual void stop_capture();
  // After prepare(id) of a transaction begun after start_capture(): what it
  // changed, in the backend's own format, for apply_effects_in() on another
  // member. distdb's own tables (distdb_*) are left out: each member writes
  // its own. Empty when nothing else changed. ErrorKind::sql: the
  // transaction changed something that cannot be shipped as rows (SQLite: a
  // table without a primary key); the message says what to change, and the
  // write is refused rather than retried.
  virtual Result<std::string> captured_effects(const TxnId& id);
  // Applies `effects` (another member's captured_effects()) inside the open
  // transaction `id`. Effects are checked first, since they come from the
  // network and the database applies them without checking privileges:
  // rows for more than one database, for a system schema or for distdb's
  // own tables are refused (invalid_request). An SQL error means this
  // database does not hold what the coordinator's did (e.g. a row to update
  // is missing).
  virtual Status apply_effects_in(const TxnId& id, std::string_view effects);
  // Whether `e`, returned by apply_effects_in(), says that this database
  // does not hold what the coordinator's did (a row to change is missing, a
  // key is already taken): evidence that the member diverged, rather than a
  // failure to retry (a lock wait, a lost connection).
  virtual bool refuses_effects(const Error& e) const;

  // The database server's version as a number, MAJOR * 10000 + MINOR * 100
  // + PATCH (MariaDB 10.11.19 is 101119; SQLite 3.40.1 is 3040001), read
  // when the connection was opened; 0 when not known. MariaDB decides by it
  // which version-conditional comments (/*!NNNNNN ... */) are code.
  virtual unsigned long server_version() const = 0;
};

// What a connection may do.
//   read_write  everything (the replication executor, distdb's own tables).
//   read_only   nothing that changes data: the database itself refuses it
//               (MariaDB: every transaction of the session is READ ONLY, so
//               a stored function, a sequence, DDL or EXECUTE IMMEDIATE that
//               would write fails with error 1792; SQLite: query_only and a
//               check of every statement with sqlite3_stmt_readonly()).
//               A node serves reads on such connections, so that a
//               statement taken for a read can never change one member
//               alone (docs/design.md, "Reads cannot write").
enum class StorageAccess { read_write, read_only };

// Opens a connection with the given settings (connects eagerly; a database
// that is down gives storage_unavailable, and the caller may retry later).
DISTDB_API Result<std::unique_ptr<Storage>> open_storage(const StorageConfig& config,
                                                         StorageAccess access = StorageAccess::read_write);

// Whether the database of `config` can take part in the replication it
// asks for: always OK for "statements"; for "rows", OK when the MariaDB
// server writes a row-format binary log and the account may read it and
// apply events (Replication in config.hpp), otherwise kind config with one
// sentence per setting or privilege to change (storage_unavailable: the
// server could not be asked). Settings that weaken the guarantees without
// breaking them (sync_binlog other than 1) are appended to `warnings`.
DISTDB_API Status check_replication_support(const StorageConfig& config,
                                            std::vector<std::string>* warnings = nullptr);

// Creates distdb's own bookkeeping tables if they are missing (sql/distdb_schema.sql).
DISTDB_API Status ensure_distdb_schema(Storage& storage);

}  // namespace distdb
