// Full copies of a node's data, for a replica too far behind the retained
// log or with a log that conflicts with the cluster's.
//
// A snapshot is the list of SQL statements that recreate every user table
// (distdb's own tables excluded): its DDL, then its rows as INSERTs. It is
// made and installed by the replication executor, the database's only
// writer, so it is consistent without locking. Snapshots are in the
// backend's own dialect: a cluster's nodes must use the same backend.
#pragma once

#include <string>

#include "distdb/storage.hpp"

namespace distdb {

Result<std::string> make_snapshot(Storage& storage);

// Drops every user table, then runs the snapshot's statements.
Status restore_snapshot(Storage& storage, const std::string& snapshot);

// `text` as an SQL string literal (MariaDB also escapes backslashes).
std::string sql_string_literal(const std::string& text, bool mariadb);

}  // namespace distdb
