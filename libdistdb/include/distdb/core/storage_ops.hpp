// What the core asks of its storage, and what the driver reports back.
//
// The driver performs a replica's storage tasks ONE AT A TIME, IN THE ORDER
// GIVEN, and reports each completion with Replica::storage_done(). The core
// relies on that order: e.g. a vote is only sent once the promise before it
// is durable, and any commit queued before the promise has completed too.
//
// Durability (what the simulator's fake storage reproduces at a crash):
//   PersistPromise, CommitEntry, RollbackEntry, ApplyEntries, InstallSnapshot:
//     durable when reported done.
//   PrepareEntry: the prepared transaction survives a crash only on backends
//     whose prepare_survives_crash() is true (MariaDB XA); on SQLite a crash
//     rolls it back. The core never counts on a prepare surviving.
#pragma once

#include "distdb/export.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "distdb/core/types.hpp"

namespace distdb::core {

// Store `epoch` as the promised epoch (never lower than the stored one).
struct PersistPromise {
  Epoch epoch = 0;
};

// Run the entry's statements in one prepared transaction, each under its own
// savepoint (a failing statement is rolled back alone and its outcome
// recorded), record the entry (position and statements with their outcomes)
// as the last applied one in the same transaction, and prepare it. Done
// reports one outcome per statement. A failure to run or prepare at all (the
// database is down) is reported as !ok; nothing stays prepared then.
//
// Shipping effects (ReplicaConfig::ship_effects): with `capture_effects`
// (the coordinator's own run) done also reports what the run changed
// (StorageDone::effects; nullopt for an entry the storage cannot capture,
// e.g. DDL, which every member then runs as statements). An entry that
// carries effects is not run: the effects are applied, and done reports
// `outcomes` (the coordinator's) as this run's, checksum statements aside
// (their digests are taken here).
struct PrepareEntry {
  Entry entry;
  std::vector<StatementOutcome> outcomes;  // with entry.effects: the coordinator's outcomes
  bool capture_effects = false;
};

// Commit the prepared transaction of `id`.
struct CommitEntry {
  EntryId id;
};

// Roll back the prepared transaction of `id`; a missing one is fine.
struct RollbackEntry {
  EntryId id;
};

// Catch-up: apply decided entries in order, each in its own committed
// transaction recording it as applied (an entry with effects: the effects
// are applied, not the statements). An entry whose statements do not give
// the expected outcomes is not committed: applying stops there and done
// reports how many were applied and that this replica has diverged.
struct ApplyEntries {
  std::vector<Entry> entries;
};

// Read committed entries with seq > after.seq, at most `max`, for `reader`.
// Done reports them; if the entry at after.seq is not `after` (a conflicting
// log) or is no longer retained, done says so.
struct ReadLog {
  EntryId after;
  std::size_t max = 0;
  NodeId reader = 0;
  bool join = false;  // carried through to the reply
};

// Make a full copy of the data and of the last applied entry, for `reader`.
struct ReadSnapshot {
  NodeId reader = 0;
};

// Replace all data with a snapshot made by ReadSnapshot.
struct InstallSnapshot {
  EntryId applied;
  std::string data;
};

using StorageOp = std::variant<PersistPromise, PrepareEntry, CommitEntry, RollbackEntry, ApplyEntries, ReadLog,
                               ReadSnapshot, InstallSnapshot>;

struct StorageTask {
  std::uint64_t id = 0;  // echoed in StorageDone
  StorageOp op;
};

struct StorageDone {
  std::uint64_t id = 0;
  bool ok = true;
  Error error;                                 // when !ok
  std::vector<StatementOutcome> outcomes;      // PrepareEntry
  std::optional<std::string> effects;          // PrepareEntry with capture_effects: what the run changed
  bool effects_refused = false;                // PrepareEntry (!ok): the database refused the coordinator's
                                               // rows: it does not hold what the coordinator's holds
  std::size_t applied_count = 0;               // ApplyEntries
  bool diverged = false;                       // ApplyEntries: an entry gave other outcomes
  std::vector<Entry> entries;                  // ReadLog
  bool log_conflict = false;                   // ReadLog: `after` is not in this log
  bool log_truncated = false;                  // ReadLog: entries after `after` are no longer retained
  EntryId snapshot_applied;                    // ReadSnapshot
  std::string snapshot_data;                   // ReadSnapshot
};

DISTDB_API const char* storage_op_name(const StorageOp& op);

}  // namespace distdb::core
