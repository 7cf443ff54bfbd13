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

}  // namespace distdb::core
