// Replica: one member's replication state machine (sans-IO).
//
// Inputs:  tick()                 one unit of time (the driver's clock, e.g. 10 ms)
//          step(envelope)         a message from another replica
//          propose(tag, sql)      a client's write arriving at this replica
//          storage_done(done)     completion of a storage task
// Outputs: take_ready()           storage tasks to run (in order, one at a
//                                 time), messages to send (at once: none of
//                                 them waits for a storage task of the same
//                                 batch), and replies to clients.
//
// The Coordinator half (election, heartbeats, view) and the TwoPhaseCommit
// half (the write log, rounds, catch-up) share this object's state; see
// docs/design.md for the protocol and its invariants.
#pragma once

#include "distdb/export.hpp"

#include "distdb/core/coordinator.hpp"
#include "distdb/core/two_phase_commit.hpp"

namespace distdb::core {

// Replica: one member. Inputs and outputs as described at the top of this file.
class DISTDB_API Replica final : public Coordinator, public TwoPhaseCommit {
 public:
  Replica(ReplicaConfig config, RecoveredState recovered);

  void tick();
  void step(const Envelope& envelope);
  void propose(ClientTag tag, std::string sql);
  void storage_done(StorageDone done);
  Ready take_ready();
  bool has_ready() const { return !ready_.empty(); }

  NodeId id() const { return config_.id; }
  Role role() const { return role_; }
  Epoch epoch() const { return promised_; }
  NodeId coordinator() const { return coordinator_; }
  EntryId applied() const { return applied_; }
  bool in_view() const { return in_view_now(); }
  // True when this replica is the coordinator of its epoch, has recovered,
  // and has a majority view: it can commit writes.
  bool can_commit() const { return can_commit_now(); }
  std::vector<MemberView> members() const;
  // Whether this member knows that its data may lack committed entries
  // (Staleness, replica_core.hpp): out of the coordinator's view, catching
  // up, waiting for a full copy, or its last apply failed. A read path that
  // promises more than "what this member has committed" refuses or
  // redirects reads while stale() holds.
  Staleness staleness() const { return staleness_now(); }
  bool stale() const { return staleness_now() != Staleness::current; }
  // The above, with the catch-up's failure count and back-off (for the
  // driver's status and log).
  CatchUpStatus catch_up_status() const;
  // Coordinator: the members whose outcomes for an entry differed from
  // ours and that get a full copy at their next catch-up (for the log).
  const std::set<NodeId>& diverged_members() const { return diverged_members_; }
  // Why this replica last stopped being coordinator (for the log).
  const std::string& last_step_down_reason() const { return last_step_down_reason_; }

 private:
  void drain_local_inbox();
  void process(const Envelope& envelope);
};

}  // namespace distdb::core
