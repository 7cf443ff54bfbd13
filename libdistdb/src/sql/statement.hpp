// Statement classification: what a client's SQL does, decided before it runs.
//
// Reads run on any one node; writes are replicated to every node in the same
// order, so a write must produce the same effect everywhere. classify() tells
// the two apart and finds what would make a replicated write diverge: more
// than one statement in a request, or a non-deterministic function or
// variable. It is a small hand-written lexer plus keyword rules, not a
// parser: it never fails, and when unsure it answers `write` (the safe
// default: a read sent down the write path is merely slower).
//
// Lexing. Whitespace, `-- ` and `#` line comments and /* */ block comments
// separate tokens; keywords, ';' and function names inside '...' and "..."
// strings, `backtick` identifiers and comments never count, except that a
// quoted name before '(' (`uuid`()) is the function it names.
//
// Executable comments are read exactly as MariaDB reads them, against the
// server's version (see Lexer::executable_comment() for the rules, and the
// MariaDB test suite for the server as the oracle): /*! ... */ and
// /*M! ... */ are code, /*!NNNNN ... */ is code when NNNNN is at most the
// server's version (except MySQL-only 50700..99999), otherwise skipped
// whole. A write is replicated as the server executes it (effective_sql:
// executed comments without their markers, skipped ones gone), so members
// running different server versions still run the same statement.
//
// MariaDB and SQLite disagree on a few lexical points:
//   - a backslash escapes the next character in a MariaDB string, not in
//     an SQLite one (distdb's MariaDB sessions turn NO_BACKSLASH_ESCAPES,
//     ANSI_QUOTES and IGNORE_SPACE off, storage/mariadb_common.cpp);
//   - MariaDB needs a blank or control character after `--` for a comment,
//     SQLite does not;
//   - `#` starts a comment in MariaDB, a parameter (`#name`) in SQLite;
//   - /*! ... */ is code in MariaDB, a plain comment in SQLite;
//   - [name] is a quoted identifier in SQLite only.
// classify(sql) does not know the backend, so it lexes the text both ways
// and merges conservatively: several statements or a non-deterministic call
// seen by either reading counts, and when the two readings give different
// kinds the statement is a write. A caller that knows its backend can ask for
// exactly that dialect with classify(sql, dialect), which avoids the rare
// false alarm of the union (e.g. 'it\'s now()' read the SQLite way).
//
// Compound statements (a trigger, procedure, function or event with a
// BEGIN ... END body; BEGIN NOT ATOMIC, IF, CASE, LOOP, WHILE, REPEAT and
// FOR blocks) are one statement, ';'s of their body included, and every
// statement of the body is checked like a statement of its own.
//
// The classifier routes; it is not the last line of defence for reads:
// a node runs reads on read-only connections (StorageAccess::read_only), so
// a statement taken for a read that would write is refused by the database.
//
// Kinds:
//   read     SELECT (without FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE /
//            INTO / := / NEXTVAL), WITH ... SELECT, VALUES, (SELECT ...)
//            UNION ..., SHOW, DESCRIBE/DESC/EXPLAIN (EXPLAIN ANALYZE and
//            MariaDB's ANALYZE <statement> execute it: they take the kind of
//            the statement), SQLite PRAGMAs that only query.
//   transaction_control  BEGIN, START TRANSACTION, COMMIT, ROLLBACK,
//            SAVEPOINT, RELEASE, END, XA, SET TRANSACTION, LOCK/UNLOCK TABLES.
//   session  SET (except SET TRANSACTION, SET PASSWORD, SET DEFAULT ROLE, and
//            SET STATEMENT ... FOR <stmt>, which takes the kind of <stmt>),
//            USE, SQLite PRAGMAs that set something.
//   write    everything else, including an empty or unrecognised statement.
// Only the first statement decides the kind; non-determinism is looked for
// in all of them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace distdb::sql {

enum class StatementKind { read, write, transaction_control, session };

// The lexical rules to apply (see above). `any` is the union of both.
enum class Dialect { any, mariadb, sqlite };

// Something a write uses that lives in one connection of one member.
struct SessionState {
  enum Kind {
    variable,    // @name
    last_value,  // LAST_INSERT_ID(), LASTVAL(s), PREVIOUS VALUE FOR s
    temporary,   // CREATE/DROP TEMPORARY TABLE, SQLite's temp schema
    dynamic,     // PREPARE, EXECUTE, EXECUTE IMMEDIATE, DEALLOCATE PREPARE
    setting,     // SET GLOBAL/SESSION/LOCAL inside a routine or trigger
  };
  std::string culprit;  // as a reader would name it: "the user variable @x"
  Kind kind = variable;
};

struct Classification {
  StatementKind kind = StatementKind::write;
  // The statement's first keyword, uppercased (after any opening
  // parentheses, so "(SELECT 1) UNION (SELECT 2)" gives "SELECT"); empty
  // when the statement is empty or does not start with a word.
  std::string first_keyword;
  // The first non-deterministic function or variable found, as a reader
  // would name it: "NOW()", "CURRENT_TIMESTAMP", "@@hostname",
  // "DATETIME('now')". Also set for reads (where it is harmless).
  std::optional<std::string> nondeterministic;
  // `nondeterministic` is a column default or ON UPDATE value in DDL,
  // evaluated later by each member on its own.
  bool nondeterministic_default = false;
  // A ';' that ends a statement (outside strings, comments and compound
  // bodies) is followed by something other than blanks, comments and more ';'.
  bool multiple_statements = false;
  // Session state a write would use (see SessionState); set for reads too.
  std::optional<SessionState> session_state;
  // The first identifier in distdb's reserved name space (distdb_*).
  std::optional<std::string> reserved_name;
  // A database other than Context::database that the statement names for
  // a table, routine or database of its own (db.t after FROM, INTO, ...;
  // CREATE/DROP DATABASE db). Not set for accounts (GRANT, CREATE USER),
  // which belong to the whole server.
  std::optional<std::string> other_database;
  // An object whose state would differ between members however it was
  // created (an event, a sequence with a cache), with why and what to do.
  std::optional<std::string> unreplicable;
  // A statement MariaDB runs only outside a transaction (DDL) stands
  // anywhere in the text: first, in a compound body, after SET STATEMENT
  // ... FOR. Such an entry is applied in autocommit mode.
  bool ddl = false;
  // The statement defines a stored program (CREATE PROCEDURE, FUNCTION,
  // TRIGGER, EVENT, PACKAGE): what its body computes is computed when it is
  // called or fired, not when the definition is replicated.
  bool defines_program = false;
  // DDL that also reads or writes rows when it runs: CREATE TABLE ...
  // SELECT, or a block holding DDL among other statements.
  bool ddl_runs_queries = false;
  // MariaDB: an executable comment whose meaning depends on the server's
  // version, which the caller did not know (server_version 0).
  bool version_unknown = false;
  // MariaDB: an executable comment that is never closed (the server
  // refuses the statement).
  bool malformed = false;
  // MariaDB: the text as the server executes it, when it holds executable
  // comments (see above); empty when that is the text itself.
  std::string effective_sql;
};

// What a node knows of the database that will run the statement.
struct Context {
  Dialect dialect = Dialect::any;
  // The MariaDB server's version (Storage::server_version()), for
  // version-conditional comments; 0 when not known.
  unsigned long server_version = 0;
  // The database the cluster replicates (MariaDB: db_config.database;
  // SQLite: "main"); empty: other databases are not looked for.
  std::string_view database;
};

Classification classify(std::string_view sql);
Classification classify(std::string_view sql, const Context& context);
Classification classify(std::string_view sql, Dialect dialect, unsigned long server_version = 0);

// Why the request cannot be replicated as a write, in one sentence naming
// the culprit, or nullopt when it can. Refused: several statements in one
// request (whatever the kind of the first), an executable comment the
// server refuses or whose meaning is not known yet, session and
// transaction-control statements, and writes that name distdb's own
// tables or another database, use session state, or call a
// non-deterministic function or variable. A single read is never refused (it is not replicated).
//
// `rows_shipped`: the cluster ships the rows a write changed (Replication::
// rows), so a non-deterministic function is refused only where each member
// evaluates it itself: in DDL (which every member runs as text), such as a
// column default or CREATE TABLE ... SELECT, but not in the body of a
// stored program, which runs only where it is called or fired, on the
// coordinator.
std::optional<std::string> replication_refusal(const Classification& c, bool rows_shipped = false);

std::string_view to_string(StatementKind kind);

}  // namespace distdb::sql
