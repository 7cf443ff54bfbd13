// Coordinator: the election half of a replica (election.cpp).
#pragma once

#include "distdb/export.hpp"

#include "distdb/core/replica_core.hpp"

namespace distdb::core {

// The Coordinator half (election.cpp): heartbeats, liveness, elections
// (highest id with a majority, durable promises, epochs), the view.
class DISTDB_API Coordinator : public virtual ReplicaCore {
 protected:
  Coordinator() = default;

  void send_heartbeats();
  void check_liveness();
  void maybe_start_election();
  void start_election();
  void on_heartbeat(NodeId from, const Heartbeat& m);
  void on_vote_request(NodeId from, const VoteRequest& m);
  void on_vote_reply(NodeId from, const VoteReply& m);
  void on_promise_persisted(Epoch epoch);
  void become_coordinator();
  void step_down(NodeId new_coordinator, const char* reason) override;
};

}  // namespace distdb::core
