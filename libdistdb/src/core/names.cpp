#include "distdb/core/messages.hpp"
#include "distdb/core/replica.hpp"
#include "distdb/core/storage_ops.hpp"

namespace distdb::core {

const char* message_name(const Message& m) {
  static const char* const names[] = {"Heartbeat", "VoteRequest", "VoteReply",      "Prepare",
                                      "PrepareReply", "Decide",    "DecideReply",    "CatchUpRequest",
                                      "CatchUpReply", "ForwardedWrite", "ForwardedReply"};
  return names[m.index()];
}

const char* storage_op_name(const StorageOp& op) {
  static const char* const names[] = {"PersistPromise", "PrepareEntry", "CommitEntry",  "RollbackEntry",
                                      "ApplyEntries",   "ReadLog",      "ReadSnapshot", "InstallSnapshot"};
  return names[op.index()];
}

const char* to_string(Role role) {
  switch (role) {
    case Role::follower: return "follower";
    case Role::candidate: return "candidate";
    case Role::coordinator: return "coordinator";
  }
  return "follower";
}

const char* to_string(Staleness staleness) {
  switch (staleness) {
    case Staleness::current:
      return "current";
    case Staleness::no_coordinator:
      return "no coordinator is known";
    case Staleness::out_of_view:
      return "not in the coordinator's view";
    case Staleness::catching_up:
      return "catching up with the coordinator";
    case Staleness::recovering:
      return "catching up to the best log among its voters";
    case Staleness::apply_failed:
      return "its last attempt to apply entries failed";
    case Staleness::needs_snapshot:
      return "waiting for a full copy of the data";
    case Staleness::commit_failed:
      return "the commit of a decided entry failed";
  }
  return "current";
}

}  // namespace distdb::core
