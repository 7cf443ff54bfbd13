// Row replication on SQLite: what a transaction changed, captured with
// SQLite's session extension and applied on another member.
//
// The coordinator runs an entry's statements once, on its own file; a
// session records every row they change (also the rows a trigger or a
// foreign-key action changes, and whatever random() or datetime('now')
// computed). The others apply that changeset instead of running the
// statements, with their own triggers and foreign-key actions switched off
// for the length of the apply (the changeset already holds what those did
// on the coordinator). Nothing is evaluated twice.
//
// What a session cannot see is refused rather than lost:
//   - a table without a PRIMARY KEY (a session ignores it), or whose key
//     of several columns may hold NULL: a write that changes one is refused
//     with a message naming the table;
//   - a row whose key is NULL (a session skips it; SQLite lets `id INT
//     PRIMARY KEY` hold NULL): the statement that made it is refused, as
//     MariaDB would refuse it. What stays beyond reach: a trigger that gives
//     a row a NULL key and then another key within one statement (the
//     periodic checksum finds what that leaves different);
//   - AUTOINCREMENT counters (sqlite_sequence has no key): those the entry
//     moved, set or removed travel beside the changeset.
//
// The effects are an envelope of distdb's own, so that both travel
// together and a truncated or forged one is told from a good one:
//
//   "DSQ1"                       4 bytes
//   changeset size               8 bytes, little endian
//   changeset                    SQLite's changeset format
//   counter count                4 bytes, little endian
//   per counter: name size (4 bytes LE), name, value (8 bytes LE, signed,
//                from 0; INT64_MIN: the counter's row was removed)
//
// and nothing after. Only compiled when the SQLite library has the
// session extension (DISTDB_SQLITE_SESSIONS, from meson).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "distdb/error.hpp"

struct sqlite3;
struct sqlite3_session;

namespace distdb::sqlite {

// True when this build can capture and apply effects on SQLite.
bool sessions_available();

// The code of the error apply_effects() returns when this database does
// not hold what the coordinator's did (a row to change is missing or
// differs, a key is already taken, a table is missing or shaped
// otherwise): the member's data is not the cluster's.
constexpr int kEffectsRefused = 4;  // SQLITE_ABORT

// How a table's rows are keyed, as far as a session is concerned.
struct TableShape {
  std::optional<std::string> refusal;  // why its changes cannot be shipped
  std::string nullable_key;            // a one-column key that may hold NULL: checked after each statement
};

// Records what one transaction changes in the "main" schema, distdb's own
// tables (distdb_*) and SQLite's (sqlite_*) left out. Begin it right after
// the transaction starts; read it before the transaction ends.
class Capture {
 public:
  // Starts recording on `db`. `null_keyed`: the tables that hold rows whose
  // one-column key is NULL (tables_with_null_keys()), whose changes a
  // session could not record. Errors: the session could not be created.
  static Result<std::unique_ptr<Capture>> start(sqlite3* db, std::set<std::string> null_keyed);
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // The envelope described above. ErrorKind::sql when the transaction
  // changed a table whose rows a session cannot record (the write must be
  // refused: the message says what to change); empty when nothing was
  // changed outside distdb's own tables.
  Result<std::string> effects();

  // Before each statement of the transaction.
  void begin_statement();
  // After each statement of the transaction: refuses (ErrorKind::sql) a
  // statement that changed a table whose changes cannot be shipped (see
  // shape_of in the .cpp: no key, a generated column, a virtual table's
  // shadow table, ...), or that left a row whose key is NULL
  // (SQLITE_CONSTRAINT_NOTNULL: SQLite lets `id INT PRIMARY KEY` hold NULL;
  // under row replication it behaves as MariaDB does). The caller undoes
  // the statement; the transaction's other statements stand.
  Status check_keys();

 private:
  Capture(sqlite3* db, sqlite3_session* session);
  static int filter(void* self, const char* table);

  sqlite3* db_;
  sqlite3_session* session_;
  std::map<std::string, TableShape> tables_;  // every table the transaction wrote (the filter's calls)
  std::set<std::string> null_keyed_;
  // sqlite_sequence when the transaction began (nullopt: a row that is no
  // AUTOINCREMENT table's counter).
  std::map<std::string, std::optional<std::int64_t>> counters_before_;
  std::optional<std::string> refused_;  // why the statement running now touched a refused table
};

// The tables of `db` with a nullable one-column key that hold a row whose
// key is NULL (see Capture::check_keys); one indexed lookup per such table.
Result<std::set<std::string>> tables_with_null_keys(sqlite3* db);

// Applies `effects` (another member's Capture::effects()) inside the
// transaction open on `db`. Checked first, as they come from the network:
// a malformed envelope or changeset, or one that names distdb's or
// SQLite's own tables, is refused (invalid_request) before anything runs.
// A conflict (see kEffectsRefused) undoes whatever part was applied.
Status apply_effects(sqlite3* db, std::string_view effects);

}  // namespace distdb::sqlite
