// SimStorage: one node's database, faked in memory with the crash semantics
// of the real backends (storage_ops.hpp, include/distdb/storage.hpp).
//
// Data model: a key -> value map. The workload's "SQL" is a tiny language:
//   INSERT k v   fails with 1062 (duplicate key) if k exists; rows_affected 1
//                (with `nondeterministic`, also writes k#at, see below)
//   UPSERT k v   rows_affected 1
//   DELETE k     rows_affected 0 or 1
// anything else fails with 1064 (syntax error). Each statement runs under its
// own savepoint: a failing statement changes nothing and the entry goes on.
//
// Effects (ReplicaConfig::ship_effects): a PrepareEntry with
// capture_effects reports the prepared writes as the entry's effects; an
// entry that carries effects is applied by writing them, not by running its
// statements (as MariaDB applies the coordinator's row events).
//
// What is durable is exactly what storage_ops.hpp promises: the committed
// data, the applied entry id, the log window and the promise. A prepared
// transaction survives crash() only when `prepare_durable` (MariaDB XA); on
// SQLite (false) a crash rolls it back. The task that was executing when the
// crash hit may or may not have taken effect (crash() decides by the RNG);
// its completion is never reported.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "distdb/core/replica.hpp"
#include "distdb/core/storage_ops.hpp"
#include "rng.hpp"

namespace distdb::sim {

using core::Entry;
using core::EntryId;
using core::Epoch;

struct SimStorageOptions {
  bool prepare_durable = false;   // true: MariaDB XA, false: SQLite
  std::size_t log_retention = 200;  // committed entries kept for ReadLog
  std::uint64_t failure_ppm = 0;  // injected storage_unavailable per task
  // Every INSERT k v also writes "k#at" with a value of this node's own (as
  // a NOW(6) or UUID() column would): members that run the statements
  // themselves store different data; members that apply the coordinator's
  // effects store the same (ReplicaConfig::ship_effects).
  bool nondeterministic = false;
};

using KeyValues = std::map<std::string, std::string>;

class SimStorage {
 public:
  SimStorage(NodeId node, SimStorageOptions options);

  // Runs one task to completion (atomically) and returns its completion.
  core::StorageDone execute(const core::StorageTask& task, Rng& rng);

  // The node crashed. `executing` is the task that was running (nullptr if
  // none): it takes effect or not, by the RNG, and is never reported.
  // Everything not durable is lost.
  void crash(const core::StorageTask* executing, Rng& rng);

  // What a restarted node finds (XA RECOVER included).
  core::RecoveredState recover() const;

  void set_failure_ppm(std::uint64_t ppm) { options_.failure_ppm = ppm; }
  // While on, this database refuses to run entries (ApplyEntries,
  // PrepareEntry) with an SQL error, as a MariaDB that deadlocks on every
  // attempt does, and — with `installs` — to install a full copy; it does
  // everything else. Nothing changes when it refuses.
  void refuse_entries(bool on, bool installs = false) {
    refuse_entries_ = on;
    refuse_installs_ = on && installs;
  }
  std::uint64_t refused() const { return refused_; }
  const SimStorageOptions& options() const { return options_; }

  // Inspection (for the checker and the tests).
  NodeId node() const { return node_; }
  const KeyValues& data() const { return data_; }
  EntryId applied() const { return applied_; }
  Epoch promised() const { return promised_; }
  std::optional<EntryId> prepared_id() const;
  const std::map<core::Seq, Entry>& log() const { return log_; }
  std::uint64_t snapshot_installs() const { return snapshot_installs_; }
  std::uint64_t injected_failures() const { return injected_failures_; }

  // Observers, set by the checker: an entry became durably committed here
  // (`before` is the applied id just before it), and a snapshot replaced
  // everything.
  std::function<void(NodeId node, const EntryId& before, const Entry& entry)> on_commit;
  std::function<void(NodeId node, const EntryId& applied)> on_snapshot;
  // Notes for the trace (misuse that the real backend would refuse).
  std::function<void(NodeId node, const std::string& note)> on_note;

 private:
  // A prepared transaction: its entry (with the outcomes it gave) and the
  // rows it wrote (nullopt: deleted), applied to the data at commit.
  struct Prepared {
    Entry entry;
    std::vector<core::StatementOutcome> outcomes;
    std::map<std::string, std::optional<std::string>> writes;
  };

  core::StorageDone run(const core::StorageOp& op);
  bool refuses(const core::StorageOp& op) const;
  core::StorageDone do_prepare(const core::PrepareEntry& op);
  core::StorageDone do_commit(const core::CommitEntry& op);
  core::StorageDone do_apply(const core::ApplyEntries& op);
  core::StorageDone do_read_log(const core::ReadLog& op) const;
  core::StorageDone do_install(const core::InstallSnapshot& op);
  void commit_entry(const Entry& entry, const std::vector<core::StatementOutcome>& outcomes,
                    const std::map<std::string, std::optional<std::string>>& writes);
  void note(const std::string& text) const;
  // Runs `entry`'s statements (or writes its effects) over the committed
  // data, as one transaction would: its writes and one outcome per
  // statement. False when the effects cannot be read.
  bool run_entry(const Entry& entry, const std::vector<core::StatementOutcome>* effects_outcomes,
                 std::map<std::string, std::optional<std::string>>& writes,
                 std::vector<core::StatementOutcome>& outcomes);

  NodeId node_;
  SimStorageOptions options_;

  // Durable.
  KeyValues data_;
  EntryId applied_;
  Epoch promised_ = 0;
  std::map<core::Seq, Entry> log_;  // committed entries, expected outcomes filled
  std::optional<Prepared> prepared_;  // durable only if options_.prepare_durable

  std::uint64_t snapshot_installs_ = 0;
  std::uint64_t injected_failures_ = 0;
  bool refuse_entries_ = false;
  bool refuse_installs_ = false;
  std::uint64_t refused_ = 0;
  std::uint64_t stamps_ = 0;  // nondeterministic: values handed out so far (not durable: a clock)
};

// Runs one statement of the tiny language against `view` (the committed data
// overlaid with `writes`), recording its writes there. Exposed for tests.
// `stamp`, when not null, is what INSERT writes to k#at (nondeterministic).
core::StatementOutcome run_statement(const std::string& sql, const KeyValues& data,
                                     std::map<std::string, std::optional<std::string>>& writes,
                                     const std::string* stamp = nullptr);

// The effects format: the writes, length-prefixed (a deleted key has no value).
std::string encode_effects(const std::map<std::string, std::optional<std::string>>& writes);
bool decode_effects(const std::string& text, std::map<std::string, std::optional<std::string>>& writes);

// The snapshot format (data, applied id and log window), also used by tests.
std::string encode_snapshot(const KeyValues& data, const EntryId& applied, const std::map<core::Seq, Entry>& log);
bool decode_snapshot(const std::string& text, KeyValues& data, EntryId& applied, std::map<core::Seq, Entry>& log);

std::string to_string(const EntryId& id);

}  // namespace distdb::sim
