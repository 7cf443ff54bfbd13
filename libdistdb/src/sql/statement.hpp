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
// strings, `backtick` identifiers and comments never count. MariaDB
// executable comments /*! ... */, /*!50100 ... */ and /*M!100100 ... */ are
// code whatever the version number (the server's version is not known here).
// MariaDB and SQLite disagree on a few lexical points:
//   - a backslash escapes the next character in a MariaDB string, not in
//     an SQLite one;
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
  // A ';' outside strings and comments is followed by something other than
  // blanks, comments and more ';'.
  bool multiple_statements = false;
};

Classification classify(std::string_view sql);
Classification classify(std::string_view sql, Dialect dialect);

// Why the request cannot be replicated as a write, in one sentence naming
// the culprit, or nullopt when it can. Refused: several statements in one
// request (whatever the kind of the first), session and transaction-control
// statements, and writes with a non-deterministic function or variable.
// A single read is never refused (it is not replicated).
std::optional<std::string> replication_refusal(const Classification& c);

std::string_view to_string(StatementKind kind);

}  // namespace distdb::sql
