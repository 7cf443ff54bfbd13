// Checksums of the replicated database, compared between members at the
// same log position (docs/design.md, "Divergence is detected and repaired").
//
// A checksum travels as an ordinary statement of a log entry, with a text
// no client can send (kChecksumStatement): every member runs the entries in
// the same order, so the entry's position is where each member takes its
// checksum, inside the same transaction as the entry (a catch-up batch
// included), and reports it in the statement's outcome (`digest`). The
// coordinator compares outcomes before it commits, as it does for every
// statement: a member whose digest differs leaves the view; when it catches
// up, replaying the entry finds a digest other than the logged one, which
// marks it diverged, and it takes a full copy.
//
// What the digest covers, distdb's own tables left out: every table's rows
// (MariaDB: CHECKSUM TABLE; SQLite: every row, sorted), its definition and
// its auto-increment counter (a counter ahead on one member makes the next
// automatic id differ there), every sequence's state, and the definitions
// of views, routines, triggers and events (without their DEFINER, which
// names the connection's host).
#pragma once

#include <string>
#include <string_view>

#include "distdb/storage.hpp"

namespace distdb {

// The statement a checksum entry carries. A comment, so that a node that
// does not know it (none should run it) changes nothing; clients cannot send
// it (sql::classify() refuses names in distdb's reserved space).
inline constexpr std::string_view kChecksumStatement = "/* distdb_checksum */";

inline bool is_checksum_statement(std::string_view sql) { return sql == kChecksumStatement; }

// The digest of the database as transaction `txn` on `storage` sees it (32
// hex digits; an empty `txn`: in autocommit mode), or the error that kept it
// from being read.
Result<std::string> database_digest(Storage& storage, const TxnId& txn);

}  // namespace distdb
