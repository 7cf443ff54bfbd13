// Full copies of a node's data, for a replica too far behind the retained
// log or with a log that conflicts with the cluster's.
//
// A snapshot is the list of SQL statements that recreate every object of
// the replicated database (distdb's own tables excluded), in an order that
// lets each be created:
//   - tables (system-versioned ones too), each with its rows as INSERTs of
//     its stored columns: invisible columns included, generated ones left
//     to the server; a system-versioned table with its whole history; the
//     AUTO_INCREMENT counter in the table's DDL;
//   - MariaDB sequences at their position on disk (SETVAL);
//   - routines, then views (each after the views it reads), then triggers
//     (after the rows, so that loading fires none), then events; each
//     routine, trigger and event under the sql_mode it was created with;
//   - SQLite: indexes, views and triggers from sqlite_master.
// It is made and installed by the replication executor, the database's
// only writer, so it is consistent without locking. Snapshots are in the
// backend's own dialect: a cluster's nodes must use the same backend.
//
//
// A snapshot is written to a file (node/snapshot_file.hpp) as it is made,
// rows streaming from the database (Storage::scan), and installed from one
// statement at a time: memory stays bounded whatever the database's size.
// Between members it travels in chunks (node/snapshot_transfer.hpp).
#pragma once

#include <string>

#include "distdb/storage.hpp"
#include "node/snapshot_file.hpp"

namespace distdb {

// Writes a full copy of the database to the file `path` (replaced if it
// exists; removed again if the copy fails).
Result<SnapshotFile> write_snapshot(Storage& storage, const std::string& path);

// Reads the whole file at `path` once to check it (framing, trailer, the
// backend it was made by), then drops every object of the database but
// distdb's own and runs the file's statements. A file that does not check
// leaves the database untouched. The connection's foreign-key checks,
// sql_mode and history-insert setting are what they were before, whatever
// happens.
Status restore_snapshot(Storage& storage, const std::string& path);

// Whether `view` can be read (false: its table or function was dropped
// since, and the view cannot be created again). Through transaction `txn`,
// or in autocommit mode when it is empty.
bool view_is_valid(Storage& storage, const TxnId& txn, const std::string& view);

// `text` as an SQL string literal (MariaDB also escapes backslashes).
std::string sql_string_literal(const std::string& text, bool mariadb);

}  // namespace distdb
