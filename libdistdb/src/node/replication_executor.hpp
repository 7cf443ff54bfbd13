// Performs the replication core's storage tasks (core/storage_ops.hpp) on a
// real database, through one Storage connection.
//
// The executor is the only writer of a node's database: every replicated
// write, catch-up and snapshot goes through it, one task at a time. That is
// what makes its reads of distdb's bookkeeping tables, and its snapshots,
// consistent without further locking.
//
// How an entry is stored (PrepareEntry):
//   begin(txn "ddb.<database hash>-<seq>-<epoch>", set_txn_scope)
//   for each statement: SAVEPOINT; run it; on an SQL error ROLLBACK TO
//     SAVEPOINT (the statement fails alone, identically on every replica)
//   UPDATE distdb_applied (the entry's position), INSERT INTO distdb_log
//   prepare  (XA PREPARE on MariaDB: durable; an open transaction on SQLite)
//
// An entry shipped as effects (core::Entry::effects, docs/design.md section
// 3) is stored the same way with the effects applied in place of the
// statements (Storage::apply_effects_in), the outcomes being the
// coordinator's, and a distdb_effects row beside its log row. The
// coordinator's own run (PrepareEntry::capture_effects) asks the storage
// what the prepared transaction changed (Storage::captured_effects); its
// distdb_effects row is written in the transaction with NULL effects, since
// they are only known once the transaction is prepared, and filled in by the
// next transaction this executor prepares (one more statement in a round
// trip it makes anyway, rather than a write and a log flush of its own),
// or at once before anything else (a catch-up, a DDL entry, a full copy).
// Until then read_log serves them from memory. A NULL row that stays (a
// crash in between) makes this member's log unusable from that entry on: a
// catch-up from it gets a full copy instead.
//
// DDL on MariaDB cannot run inside an XA transaction (it commits implicitly).
// An entry holding DDL (the coordinator puts such a statement in an entry of
// its own) is therefore applied at once in autocommit mode and its position
// recorded right after; its "prepare" is in fact a commit. If that entry is
// later abandoned by a new coordinator, this replica's recorded position no
// longer matches the cluster's log, and catch-up gives it a full copy: it
// cannot silently diverge.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "distdb/core/replica.hpp"
#include "distdb/core/storage_ops.hpp"
#include "distdb/storage.hpp"

namespace distdb {

class SpoolDir;

class ReplicationExecutor {
 public:
  // `storage` writes; `reader` (a second connection to the same database)
  // serves catch-up reads, which must see only committed data even while
  // `storage` holds an entry prepared (on SQLite, an open transaction).
  // `is_ddl` tells statements that cannot run inside a prepared transaction
  // on this backend.
  // `rows`: this member replicates rows (storage.replication): an entry
  // that comes as statements (not DDL) is refused, since a coordinator
  // that sends statements would have every member compute its own values.
  ReplicationExecutor(Storage& storage, Storage& reader, std::function<bool(const std::string&)> is_ddl,
                      std::size_t log_retention, bool rows = false);

  // Records effects still waiting for a transaction to carry them.
  ~ReplicationExecutor();
  ReplicationExecutor(const ReplicationExecutor&) = delete;

  // Where ReadSnapshot writes full copies (node/snapshot_transfer.hpp);
  // without one, ReadSnapshot fails. InstallSnapshot's data is the path of
  // a copy in a file.
  void write_full_copies_to(SpoolDir* spool) { spool_ = spool; }

  // The database this executor replicates into, which its transaction ids
  // name (txn_id_for): a MariaDB server's prepared XA transactions are the
  // whole server's, and another cluster (or another application) may use
  // the same server for another database. recover() then returns, and
  // in-doubt handling touches, only this database's transactions — and
  // those of the format before ids named one ("ddb-<seq>-<epoch>"), left
  // prepared by an older distdb. Without a scope ids use that older format.
  void set_txn_scope(const std::string& database);

  // The largest peer message (limits.max_peer_message_bytes). It bounds
  // what one entry may change under row replication (its effects travel in
  // one Prepare, base64) and the entries one catch-up reply carries.
  void set_peer_message_limit(std::size_t bytes) { peer_message_limit_ = bytes; }
  ReplicationExecutor& operator=(const ReplicationExecutor&) = delete;

  // A catch-up (ApplyEntries) commits up to this many consecutive entries
  // in one transaction.
  static constexpr std::size_t kCatchUpBatch = 64;

  core::StorageDone perform(const core::StorageTask& task);

  // What the core needs at start: promised epoch, last applied entry, and
  // prepared transactions left by a crash.
  Result<core::RecoveredState> recover();

 private:
  core::StorageDone persist_promise(const core::PersistPromise& op);
  core::StorageDone prepare_entry(const core::PrepareEntry& op);
  core::StorageDone prepare_autocommit(const core::Entry& entry);
  // An entry that carries effects: apply them, report the coordinator's
  // outcomes, record and prepare.
  core::StorageDone prepare_effects(const core::PrepareEntry& op);
  // Applies an entry's effects in open transaction `txn` and works out its
  // outcomes: `given` (the coordinator's) or the log's expectations, and
  // for a checksum statement the digest of this database after the
  // effects. With `expected`, stops with `diverged` at a digest that
  // differs from the logged one, or at effects this database cannot take.
  // False (with `error`) on any other failure.
  bool apply_effects(const TxnId& txn, const core::Entry& entry,
                     const std::vector<core::StatementOutcome>* given, bool expected,
                     std::vector<core::StatementOutcome>& outcomes, bool& diverged, Error& error);
  // The coordinator's entry `id` committed: its captured effects are now
  // to be recorded (unrecorded_), and those carried by that transaction
  // are.
  void note_committed(const core::EntryId& id);
  // Fills in the distdb_effects row of unrecorded_ now, in autocommit mode.
  void record_effects_now();
  core::StorageDone commit_entry(const core::CommitEntry& op);
  core::StorageDone rollback_entry(const core::RollbackEntry& op);
  core::StorageDone apply_entries(const core::ApplyEntries& op);
  core::StorageDone read_log(const core::ReadLog& op);
  core::StorageDone read_snapshot();
  core::StorageDone install_snapshot(const core::InstallSnapshot& op);

  // Runs the entry's statements inside open transaction `txn`, recording
  // each outcome, then records the entry itself (its position and log row)
  // in the same transaction; when `expected` is set, stops at the first
  // outcome that differs from the one the entry carries. Returns false on a
  // storage (not SQL) failure.
  // With `prepared`, the transaction is also prepared once everything is
  // stored (in the same round trip as the last statements, where the
  // storage can), and *prepared says how that went; it stays empty when
  // storing failed or diverged.
  bool store_entry(const TxnId& txn, const core::Entry& entry, bool expected,
                   std::vector<core::StatementOutcome>& outcomes, bool& diverged, Error& error,
                   std::optional<Status>* prepared = nullptr);
  // A statement's outcome; `usable` false (and `error` set) when the
  // failure is the storage's or takes the whole transaction with it.
  core::StatementOutcome outcome_of(const Result<ResultSet>& rs, bool& usable, Error& error) const;
  // A checksum statement's outcome (node/checksum.hpp): the digest of the
  // database as transaction `txn` (empty: autocommit) sees it. False, with
  // `error`, when it could not be taken.
  bool checksum_outcome(const TxnId& txn, const core::Entry& entry, core::StatementOutcome& outcome, Error& error);
  // Logs that replaying `st` of `entry` gave `got` instead of what the
  // cluster decided: the member diverged (loudly, for a checksum).
  void note_divergence(const core::Entry& entry, const core::LoggedStatement& st,
                       const core::StatementOutcome& got) const;
  // The bookkeeping statements that record `entry` as applied.
  // With unrecorded_ effects, also the statement that records them (the
  // transaction of `entry` then carries them: carrying_).
  std::vector<std::string> record_statements(const core::Entry& entry,
                                             const std::vector<core::StatementOutcome>& outcomes);
  // The distdb_log row of `entry`.
  std::string log_row_statement(const core::Entry& entry,
                                const std::vector<core::StatementOutcome>& outcomes) const;
  // Replays decided entries (catch-up) in open transaction `txn`, with
  // their bookkeeping; sets `diverged` at the first outcome that differs
  // from the logged one. Returns false on a storage failure.
  bool replay_run(const TxnId& txn, const std::vector<const core::Entry*>& run, bool& diverged, Error& error);
  Status record_entry_autocommit(const core::Entry& entry,
                                 const std::vector<core::StatementOutcome>& outcomes);
  Result<core::EntryId> read_applied(Storage& from);
  // After a store that asked for a prepare: nothing when the transaction
  // is prepared, otherwise why not (the transaction is then rolled back).
  std::optional<Error> prepare_failure(const TxnId& txn, const std::optional<Status>& prepared);
  // A prepare whose answer was lost may have prepared the transaction all
  // the same; see in_doubt_ below.
  void note_failed_prepare(const TxnId& txn, const Error& error);
  // Whether a commit that failed had in fact gone through earlier.
  bool already_committed(const core::EntryId& id, const Error& commit_error);
  Status resolve_in_doubt();
  // Whether the entry holds DDL (run as statements on every member, never
  // shipped as rows).
  bool entry_has_ddl(const core::Entry& entry) const;
  // Whether it holds DDL that commits by itself (MariaDB): run outside any
  // transaction.
  bool entry_commits_by_itself(const core::Entry& entry) const;
  std::string quote(const std::string& text) const;

  Storage& storage_;
  Storage& reader_;
  SpoolDir* spool_ = nullptr;
  std::optional<TxnId> open_txn_;  // an entry prepared on a backend where that is an open transaction
  std::function<bool(const std::string&)> is_ddl_;
  std::size_t log_retention_;
  bool mariadb_;
  std::optional<core::EntryId> autocommitted_;  // a DDL entry applied at "prepare", awaiting its decision
  // The coordinator's prepared entry whose effects were captured, awaiting
  // its commit to record them (see the top of this file).
  std::optional<std::pair<core::EntryId, std::string>> captured_;
  // Committed, its distdb_effects row still NULL.
  std::optional<std::pair<core::EntryId, std::string>> unrecorded_;
  // The entry whose transaction records unrecorded_.
  std::optional<core::EntryId> carrying_;
  bool capturing_ = false;                      // record_statements() writes a NULL distdb_effects row
  bool rows_ = false;                           // storage.replication is rows
  bool diverged_ = false;                       // such an entry was abandoned: a full copy is needed
  // Transactions whose XA PREPARE (or the COMMIT after it, in catch-up) lost
  // its connection: the server may have prepared them before it went away,
  // and a prepared transaction outlives the session and even a server
  // crash. The core was told the task failed, so it counts on nothing here:
  // each must be rolled back before the next task, or it would hold its row
  // locks for ever (every later entry touching those rows waits, then fails
  // with a lock wait timeout) and block a replay of the same entry (same
  // XA id). A node restart resolves them through recover(); these are for a
  // node that keeps running while its database server restarts.
  std::vector<TxnId> in_doubt_;

  std::string txn_prefix_ = "ddb-";  // set_txn_scope
  std::size_t peer_message_limit_ = 512 * 1024 * 1024;
  std::optional<std::size_t> max_allowed_packet_;  // the server's, read at the first capture
  // The most one entry's effects may hold (see prepare_entry).
  std::size_t max_effects_bytes();
  core::StorageDone refuse_oversized_effects(const core::Entry& entry, const TxnId& txn, std::size_t bytes);
  // Undoes the prepared entry and prepares it again as a write that failed
  // with `code` and `message` on every member.
  core::StorageDone refuse_entry(const core::Entry& entry, const TxnId& txn, int code,
                                 const std::string& message);
  // Prepared transactions recover() found, by entry: decided under the id
  // they were prepared with, whatever the format.
  struct EntryOrder {
    bool operator()(const core::EntryId& a, const core::EntryId& b) const {
      return a.seq != b.seq ? a.seq < b.seq : a.origin < b.origin;
    }
  };
  std::map<core::EntryId, TxnId, EntryOrder> recovered_ids_;
  TxnId txn_for(const core::EntryId& id) const;
};

// The transaction id of an entry in the database named by `prefix`
// (txn_scope_prefix), and back. parse_txn_id accepts ids of that database
// and of the format before ids named one ("ddb-<seq>-<epoch>").
std::string txn_scope_prefix(const std::string& database);
TxnId txn_id_for(const core::EntryId& id, const std::string& prefix = "ddb-");
bool parse_txn_id(const TxnId& txn, const std::string& prefix, core::EntryId& id);

}  // namespace distdb
