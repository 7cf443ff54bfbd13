// Checker: the invariants of design.md section 2, checked from outside the
// system under test (it reads only Replica's public accessors and the fake
// storages' durable state). In the manner of LogCabin's
// RaftConsensusInvariants: a basic check plus a delta check against what was
// seen before, run after every input the simulator gives a replica, and a
// final check once the cluster has converged.
//
// Continuous (safety):
//   - within an epoch, at most one replica is ever coordinator with
//     can_commit() (I1);
//   - a replica's promised epoch never decreases; its applied seq never
//     decreases except through a snapshot install;
//   - storages commit entries contiguously (seq = applied.seq + 1); one
//     EntryId always names the same statements; no two different entries at
//     one seq are ever each committed on a majority (log matching, I2/I3).
//     An entry committed on a minority only (e.g. by a coordinator that
//     crashed before its participants committed) may be replaced at that
//     seq: such overwrites are counted, and the node must converge (by a
//     snapshot) before the final check;
//   - a client write is answered at most once (no contradicting answers).
// Final (after the liveness phase):
//   - every storage holds the same data and the same applied id;
//   - a write acknowledged as committed with an ok outcome is present
//     (key -> value) everywhere; a write answered not_coordinator, no_quorum
//     or committed with an SQL error has its value nowhere; writes with an
//     unknown outcome are present everywhere or nowhere (implied by equality).
// The final check assumes INSERT-only workloads with unique values, which is
// what the fixture's clients generate.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "distdb/core/replica.hpp"
#include "sim_storage.hpp"

namespace distdb::sim {

// One client write, as the client saw it.
struct WriteRecord {
  core::ClientTag tag = 0;
  NodeId node = 0;  // where it was proposed
  std::string sql;
  std::string key;    // INSERT k v: k
  std::string value;  // INSERT k v: v (unique per write)
  std::uint64_t invoked_at = 0;
  std::optional<core::WriteResult> result;
  std::uint64_t answered_at = 0;
  int answers = 0;
};

const char* kind_name(core::WriteResult::Kind kind);

class Checker {
 public:
  // Installs the commit/snapshot observers on a storage.
  void attach(SimStorage& storage);
  void set_cluster_size(std::size_t nodes) { cluster_size_ = nodes; }
  // Entries committed somewhere that a different entry later replaced at
  // their seq (allowed while they were never on a majority).
  std::uint64_t overwritten_minority_commits() const { return overwritten_; }

  // Delta checks after an input to the replica of `storage.node()`.
  void observe(const core::Replica& replica, const SimStorage& storage);
  // A replica restarted: its in-memory mirrors start over from the storage.
  void restarted(NodeId node);
  // The durable state of a storage never goes back (except by a snapshot).
  void observe_durable(const SimStorage& storage);
  // A message leaves `env.from`, whose storage is `storage`: what it claims
  // (a granted vote, a yes vote, a commit ack) must already be durable.
  void on_send(const core::Envelope& env, const SimStorage& storage);

  // A result arrived for `record` (before it is stored there).
  void on_result(const WriteRecord& record, const core::WriteResult& result);

  // The end-of-run checks over every storage and the whole history.
  void check_final(const std::vector<const SimStorage*>& storages,
                   const std::map<core::ClientTag, WriteRecord>& history);

  void safety_violation(const std::string& what);
  void liveness_violation(const std::string& what);

  bool failed() const { return !safety_.empty() || !liveness_.empty(); }
  const std::vector<std::string>& safety() const { return safety_; }
  const std::vector<std::string>& liveness() const { return liveness_; }
  std::string summary() const;

  // Coordinators seen per epoch (for tests).
  const std::map<core::Epoch, NodeId>& coordinators() const { return coordinator_of_; }

 private:
  struct Seen {
    core::Epoch epoch = 0;
    core::Seq applied = 0;
    std::uint64_t snapshot_installs = 0;
  };
  void on_commit(NodeId node, const EntryId& before, const Entry& entry);
  void on_snapshot(NodeId node, const EntryId& applied, const SimStorage& storage);
  static bool same_entry(const Entry& a, const Entry& b);

  std::map<core::Epoch, NodeId> coordinator_of_;
  std::map<NodeId, Seen> seen_;     // replica mirrors, per incarnation
  std::map<NodeId, Seen> durable_;  // storages
  struct Committed {
    Entry entry;
    std::set<NodeId> nodes;  // every node that ever committed it
  };
  // Every entry committed anywhere, by seq then origin epoch.
  std::map<core::Seq, std::map<core::Epoch, Committed>> committed_;
  std::size_t cluster_size_ = 3;
  std::uint64_t overwritten_ = 0;
  std::vector<std::string> safety_;
  std::vector<std::string> liveness_;
};

}  // namespace distdb::sim
